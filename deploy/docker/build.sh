#!/usr/bin/env bash
# build.sh - the Tollgate container images, built locally (nothing is ever
# pulled): FROM scratch, one binary each with exactly the shared libraries
# ldd lists, no shell, uid/gid 65532.
#
#   deploy/docker/build.sh [--skip-injector] [--only a,b] [--save DIR] [TAG]
#
# Images (TAG defaults to dev):
#   localhost/tollgate-pdp:TAG        tollgate-pdp (+ zoneinfo, CA certificates)
#   localhost/tollgate-dataplane:TAG  tollgate-dataplane (+ CA certificates)
#   localhost/tollgate-injector:TAG   tollgate-injector (+ CA certificates)
#   localhost/tollgate-mock-llm:TAG   the mock provider, for tests
#   localhost/tollgate-e2e-app:TAG    curl, the "application" of tests/e2e
#
# The binaries come from TG_BIN (a directory) when set, else from build/bin
# after deploy/local/setup.sh build (incremental: fast when nothing
# changed). Each image's root filesystem is staged under build/docker/NAME
# and packed into a reproducible tar (sorted, mtime 0, numeric owners), so
# a second run with the same binaries reuses podman's layer cache and
# yields the same image ids. deploy/docker/Containerfile.NAME is written
# (only when its text changes) and built with build/docker/NAME as context.
#
#   --skip-injector  do not build tollgate-injector (without this flag a
#                    missing tollgate-injector binary is an error)
#   --only LIST      only these images (pdp,dataplane,injector,mock-llm,e2e-app)
#   --save DIR       also write DIR/tollgate-NAME-TAG.oci.tar (podman save
#                    --format oci-archive) for kind load image-archive or
#                    ctr -n k8s.io images import (see deploy/docker/README.md)
#   --save-format F  oci-archive (default) or docker-archive (then .docker.tar)
#   --no-strip       keep the binaries' debug info (default: strip --strip-debug)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)

tag=dev
save=""
save_format=oci-archive
skip_injector=0
strip=1
only="pdp,dataplane,injector,mock-llm,e2e-app"
need_value() { # need_value OPTION ARGC: OPTION must be followed by a value
  [ "$2" -ge 2 ] || { echo "build: $1 needs a value (see --help)" >&2; exit 2; }
}
while [ $# -gt 0 ]; do
  case "$1" in
    --only|--save|--save-format) need_value "$1" $# ;;
  esac
  case "$1" in
    --skip-injector) skip_injector=1 ;;
    --only) only=$2; shift ;;
    --only=*) only=${1#--only=} ;;
    --save) save=$2; shift ;;
    --save=*) save=${1#--save=} ;;
    --save-format) save_format=$2; shift ;;
    --save-format=*) save_format=${1#--save-format=} ;;
    --no-strip) strip=0 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "build: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) tag=$1 ;;
  esac
  shift
done
case "$save_format" in
  oci-archive) save_ext=oci.tar ;;
  docker-archive) save_ext=docker.tar ;;
  *) echo "build: --save-format: oci-archive or docker-archive" >&2; exit 2 ;;
esac
case "$tag" in
  *[!A-Za-z0-9_.-]*|"") echo "build: bad tag \"$tag\"" >&2; exit 2 ;;
esac

die() { echo "build: $*" >&2; exit 1; }
want() { case ",$only," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
for n in ${only//,/ }; do
  case "$n" in pdp|dataplane|injector|mock-llm|e2e-app) ;; *) die "--only: unknown image \"$n\"" ;; esac
done
[ $skip_injector -eq 1 ] && only=$(echo ",$only," | sed 's/,injector,/,/; s/^,//; s/,$//')

command -v podman >/dev/null 2>&1 ||
  die "podman is not installed (apt-get install -y podman runc)"

if [ -n "${TG_BIN:-}" ]; then
  bin=$(cd "$TG_BIN" && pwd)
else
  "$top/deploy/local/setup.sh" "$top/build"
  bin=$top/build/bin
fi

if want injector && [ ! -x "$bin/tollgate-injector" ]; then
  die "$bin/tollgate-injector does not exist: build it first (deploy/local/setup.sh build, once deploy/injector is in the build) or pass --skip-injector"
fi

stage=$top/build/docker
mkdir -p "$stage"
revision=$(git -C "$top" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)

# copy_file SRC ROOT [DEST]: SRC's content (symlinks followed) at DEST
# (default: SRC) under ROOT, keeping the mode.
copy_file() {
  local src=$1 root=$2 dest=${3:-$1}
  mkdir -p "$root$(dirname "$dest")"
  cp -L --preserve=mode "$src" "$root$dest"
}

# copy_libs BIN ROOT: every library ldd lists for BIN, and the dynamic
# loader, at the same path as on this host: the directory resolved (merged
# /usr: /lib/x86_64-linux-gnu is /usr/lib/x86_64-linux-gnu), the file name
# as the loader asks for it (the soname), the content of the real file.
copy_libs() {
  local exe=$1 root=$2 line path
  local out
  out=$(ldd "$exe") || die "ldd $exe failed (not a dynamic executable?)"
  if grep -q "not found" <<<"$out"; then
    die "ldd $exe: $(grep "not found" <<<"$out" | tr -s ' \t' ' ')"
  fi
  while read -r line; do
    case "$line" in
      *"=> /"*) path=${line#*=> }; path=${path%% (*} ;;
      /*) path=${line%% (*} ;;
      *) continue ;; # linux-vdso.so.1
    esac
    copy_file "$path" "$root" "$(readlink -f "$(dirname "$path")")/$(basename "$path")"
  done <<<"$out"
}

# stage NAME BINARY: build/docker/NAME/rootfs.tar, the image's whole root.
stage() {
  local name=$1 exe=$2 dir=$stage/$1
  local root=$dir/root own=$dir/own
  rm -rf "$root" "$own"
  mkdir -p "$root"/{etc,tmp,run,var/lib,usr/local/bin} "$own"
  chmod 1777 "$root/tmp"

  # Merged /usr, as on the host: /lib -> usr/lib, /lib64 -> usr/lib64, so
  # the loader at /lib64/ld-linux-x86-64.so.2 and the default library
  # directories resolve as they do here.
  for l in /lib /lib64 /lib32 /libx32 /bin /sbin; do
    [ -L "$l" ] && ln -s "$(readlink "$l")" "$root$l"
  done
  copy_libs "$exe" "$root"
  if [ "$name" = tollgate-e2e-app ]; then
    copy_file "$exe" "$root" /usr/bin/curl
  else
    copy_file "$exe" "$root" "/usr/local/bin/$(basename "$exe")"
    if [ $strip -eq 1 ] && command -v strip >/dev/null 2>&1; then
      strip --strip-debug "$root/usr/local/bin/$(basename "$exe")"
    fi
  fi

  cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
tollgate:x:65532:65532:tollgate:/var/lib/tollgate:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
EOF
  cat >"$root/etc/group" <<'EOF'
root:x:0:
tollgate:x:65532:
nogroup:x:65534:
EOF
  # glibc has files and dns built in (2.34+): no libnss_* to copy.
  cat >"$root/etc/nsswitch.conf" <<'EOF'
passwd: files
group: files
hosts: files dns
EOF
  chmod 0644 "$root"/etc/{passwd,group,nsswitch.conf}

  case "$name" in
    tollgate-mock-llm) ;;
    *)
      # libcurl (OpenSSL) reads its CA bundle from this path at run time;
      # nothing else is dlopen'ed (no openssl.cnf is needed: OpenSSL's
      # built-in defaults are Debian's; gnutls and p11-kit start without
      # their configuration files).
      [ -f /etc/ssl/certs/ca-certificates.crt ] ||
        die "/etc/ssl/certs/ca-certificates.crt is missing (apt-get install ca-certificates)"
      copy_file /etc/ssl/certs/ca-certificates.crt "$root"
      chmod 0644 "$root/etc/ssl/certs/ca-certificates.crt"
      ;;
  esac
  if [ "$name" = tollgate-pdp ]; then
    # Policy time windows and calendar budgets in the bundle's timezone.
    [ -d /usr/share/zoneinfo ] || die "/usr/share/zoneinfo is missing (apt-get install tzdata)"
    mkdir -p "$root/usr/share"
    cp -a /usr/share/zoneinfo "$root/usr/share/"
    rm -rf "$root/usr/share/zoneinfo/right" # leap-second variants: unused
  fi
  case "$name" in
    tollgate-pdp|tollgate-dataplane)
      # Owned by 65532, 0700: the ipc socket's volume (the PDP makes
      # /run/tollgate/pdp itself) and the state or spool directory. In
      # Kubernetes and in tests/e2e volumes are mounted over both.
      mkdir -p "$own/run/tollgate" "$own/var/lib/tollgate"
      chmod 0700 "$own/run/tollgate" "$own/var/lib/tollgate"
      ;;
  esac

  # One reproducible tar: everything root-owned, then the service's own
  # directories owned by 65532 (no root needed to build).
  local tarflags=(--sort=name --mtime=@0 --numeric-owner --format=gnu)
  tar "${tarflags[@]}" --owner=0 --group=0 -C "$root" -cf "$dir/rootfs.tar.new" .
  if [ -n "$(ls -A "$own")" ]; then
    (cd "$own" && find . -mindepth 1 -type d | sort) |
      tar "${tarflags[@]}" --owner=65532 --group=65532 --no-recursion \
          -C "$own" -rf "$dir/rootfs.tar.new" -T -
  fi
  if [ -f "$dir/rootfs.tar" ] && cmp -s "$dir/rootfs.tar.new" "$dir/rootfs.tar"; then
    rm -f "$dir/rootfs.tar.new"
  else
    mv "$dir/rootfs.tar.new" "$dir/rootfs.tar"
  fi
  rm -rf "$root" "$own"
}

# containerfile NAME COMPONENT ENTRYPOINT CMD PORTS DESCRIPTION
containerfile() {
  local name=$1 comp=$2 entry=$3 cmd=$4 ports=$5 desc=$6
  local f=$here/Containerfile.$name tmp
  tmp=$(mktemp)
  {
    echo "# Containerfile.$name - written by deploy/docker/build.sh (edit that, not this)."
    echo "# Build context: build/docker/$name, whose rootfs.tar build.sh stages: the"
    echo "# binary, the libraries ldd lists, /etc/passwd and /etc/group (65532 tollgate)."
    echo "# ADD unpacks the tar keeping its owners and modes (COPY would make all root)."
    echo "FROM scratch"
    echo "ADD rootfs.tar /"
    echo "LABEL org.opencontainers.image.title=\"$name\" \\"
    echo "      org.opencontainers.image.description=\"$desc\" \\"
    echo "      org.opencontainers.image.vendor=\"Tollgate\" \\"
    echo "      app.kubernetes.io/name=\"tollgate\" \\"
    echo "      app.kubernetes.io/component=\"$comp\""
    [ -n "$ports" ] && echo "EXPOSE $ports"
    echo "USER 65532:65532"
    echo "ENTRYPOINT [\"$entry\"]"
    [ -n "$cmd" ] && echo "CMD $cmd"
  } >"$tmp"
  if cmp -s "$tmp" "$f"; then rm -f "$tmp"; else mv "$tmp" "$f"; chmod 0644 "$f"; fi
}

built=()
image() {
  local short=$1 exe=$2 entry=$3 cmd=$4 ports=$5 desc=$6
  local name=tollgate-$short
  want "$short" || return 0
  [ -x "$exe" ] || die "$exe does not exist (build it: deploy/local/setup.sh build)"
  stage "$name" "$exe"
  containerfile "$name" "$short" "$entry" "$cmd" "$ports" "$desc"
  podman build -q --pull=never --layers -f "$here/Containerfile.$name" \
    --label org.opencontainers.image.version="$tag" \
    --label org.opencontainers.image.revision="$revision" \
    -t "localhost/$name:$tag" "$stage/$name" >/dev/null ||
    die "podman build of localhost/$name:$tag failed"
  built+=("localhost/$name:$tag")
}

image pdp "$bin/tollgate-pdp" /usr/local/bin/tollgate-pdp \
  '["serve", "--config", "/etc/tollgate/tollgate.json"]' "7070 9091" \
  "Tollgate policy decision point (serve) and its admin CLI"
image dataplane "$bin/tollgate-dataplane" /usr/local/bin/tollgate-dataplane \
  '["--config", "/etc/tollgate/tollgate.json"]' "8080" \
  "Tollgate data plane: the LLM gateway's client API"
image injector "$bin/tollgate-injector" /usr/local/bin/tollgate-injector \
  '["serve", "--config", "/etc/tollgate-injector/injector.json"]' "8443" \
  "Tollgate sidecar injector (Kubernetes mutating admission webhook)"
image mock-llm "$bin/tollgate-mock-llm" /usr/local/bin/tollgate-mock-llm \
  '["--host", "0.0.0.0", "--port", "9090"]' "9090" \
  "Tollgate mock LLM provider, for tests"
image e2e-app "$(command -v curl || echo /usr/bin/curl)" /usr/bin/curl "" "" \
  "curl, the application container of Tollgate's end-to-end tests"

if [ -n "$save" ]; then
  mkdir -p "$save"
  for ref in "${built[@]}"; do
    n=${ref#localhost/}; n=${n%%:*}
    out="$save/$n-$tag.$save_ext"
    rm -f "$out"
    podman save -q --format "$save_format" -o "$out" "$ref" ||
      die "podman save $ref failed"
    echo "build: saved $ref to $out" >&2
  done
fi

echo "build: images (tag $tag, revision $revision):" >&2
for ref in "${built[@]}"; do
  podman image inspect --format "{{.Size}}" "$ref" |
    awk -v r="$ref" '{ printf "  %-40s %6.1f MB\n", r, $1 / 1e6 }' >&2
done
