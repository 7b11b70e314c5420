#!/bin/sh
# layout.sh - the dependency rules of the source tree, checked on the tree:
# no module of the PDP's core (pdp/ outside cli/) includes a command-line
# header or calls a CLI function (the CLI is an adapter over the core,
# never the other way), and every subsystem folder says in its README.md
# what it owns and what it may call, and includes across folders follow
# the one-way order of README.md's module map. Prints each offending line;
# exits 1 if any.
top=${TG_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$top" || exit 2
cli='pdp_cli[a-z_]*|pdp_state_cli|pdp_policy_cli'
rc=0
for f in $(find pdp -name '*.[ch]' ! -path 'pdp/cli/*' ! -name pdp_main.c | sort); do
  bad=$(grep -En "#include \"($cli)\.h\"|\bpdp_(cli|pc|state_cli)_[a-z_]+\(" "$f")
  if [ -n "$bad" ]; then
    echo "$bad" | sed "s|^|$f:|"
    rc=1
  fi
done
for d in pdp/*/ dataplane/*/; do
  if ! grep -q '^Owns' "${d}README.md" 2>/dev/null ||
     ! grep -q '^May call' "${d}README.md"; then
    echo "${d}README.md: missing, or without an 'Owns' and a 'May call' paragraph"
    rc=1
  fi
done
# Calls go one way (README.md, "Module map"): each folder may include the
# headers of its own folder, of common/, and of the folders listed here.
allowed() {
  case $1 in
    pdp/state | pdp/cli | dataplane/providers | dataplane/routing | \
      dataplane/pdplink | dataplane/telemetry) echo "" ;;
    pdp/policy) echo "pdp/state" ;;
    pdp/migrate) echo "pdp/state" ;;
    pdp/admin) echo "pdp/policy pdp/state" ;;
    pdp/serve) echo "pdp/admin pdp/policy pdp/state" ;;
    dataplane/guard) echo "dataplane/pdplink" ;;
    dataplane/http) echo "dataplane/providers dataplane/routing dataplane/pdplink dataplane/telemetry dataplane/guard" ;;
  esac
}
headers=$(find common pdp dataplane -name '*.h' | sort)
for d in pdp/*/ dataplane/*/; do
  d=${d%/}
  [ "$d" = pdp/cli ] && continue # the CLI may call everything
  ok="$d common common/guard $(allowed "$d")"
  for f in "$d"/*.[ch]; do
    for h in $(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f"); do
      home=$(echo "$headers" | grep "/$h\$" | head -n 1)
      home=${home%/*}
      [ -n "$home" ] || continue
      case " $ok " in *" $home "*) ;; *)
        echo "$f: includes $home/$h; $d may include only: $ok"
        rc=1 ;;
      esac
    done
  done
done
[ $rc -eq 0 ] && echo "layout: no core module depends on the CLI; every folder says what it owns; calls go one way"
exit $rc
