#!/bin/sh
# injector.serve - the webhook over HTTPS: health, a review answered with
# a patch, malformed and oversized bodies refused with 400, then a
# certificate swap the way the kubelet does it (the ..data symlink) while
# requests keep coming: the new certificate is served and no request
# fails; a broken certificate afterwards keeps the good one. SIGTERM stops
# it cleanly. Needs openssl and curl.
#   serve_test.sh BIN CASES_DIR
set -u
bin=$1
cases=$2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/inj-serve-XXXXXX")
pid=
loop=
cleanup() {
  [ -n "$loop" ] && kill "$loop" 2>/dev/null
  [ -n "$pid" ] && kill "$pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
rc=0
fail() { echo "FAIL: $*" >&2; rc=1; }

for t in openssl curl; do
  command -v $t >/dev/null || { echo "serve: $t missing" >&2; exit 1; }
done

mkcert() { # mkcert DIR
  mkdir -p "$1"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -days 2 -subj /CN=localhost -addext subjectAltName=DNS:localhost \
    -keyout "$1/tls.key" -out "$1/tls.crt" 2>/dev/null || exit 1
}
# The kubelet's layout: tls.crt -> ..data/tls.crt, ..data -> ..<timestamp>.
mkdir -p "$tmp/tls"
mkcert "$tmp/tls/..a"
mkcert "$tmp/tls/..b"
mkdir -p "$tmp/tls/..bad"
echo "not a certificate" >"$tmp/tls/..bad/tls.crt"
cp "$tmp/tls/..b/tls.key" "$tmp/tls/..bad/tls.key"
ln -s ..a "$tmp/tls/..data"
ln -s ..data/tls.crt "$tmp/tls/tls.crt"
ln -s ..data/tls.key "$tmp/tls/tls.key"
swap() { ln -s "$1" "$tmp/tls/..new" && mv -T "$tmp/tls/..new" "$tmp/tls/..data"; }

# An encrypted key is refused at start, not asked for on the terminal
# (script gives the server one).
if command -v script >/dev/null; then
  mkdir -p "$tmp/enc"
  openssl genpkey -algorithm ec -pkeyopt ec_paramgen_curve:prime256v1 \
    -aes256 -pass pass:secret -out "$tmp/enc/tls.key" 2>/dev/null &&
    openssl req -x509 -key "$tmp/enc/tls.key" -passin pass:secret -days 2 \
      -subj /CN=localhost -out "$tmp/enc/tls.crt" 2>/dev/null || exit 1
  printf '{"listen": "127.0.0.1:0", "cert_file": "enc/tls.crt", "key_file": "enc/tls.key"}\n' \
    >"$tmp/enc.json"
  timeout 10 script -qec "'$bin' serve --config '$tmp/enc.json'" /dev/null \
    </dev/null >"$tmp/enc.out" 2>&1
  grep -q "the key is not a PEM private key (or is encrypted)" "$tmp/enc.out" ||
    fail "an encrypted key: $(tr -d '\r' <"$tmp/enc.out" | head -3)"
fi

cat >"$tmp/injector.json" <<JSON
{"listen": "127.0.0.1:0", "cert_file": "tls/tls.crt", "key_file": "tls/tls.key",
 "cert_poll_s": 1}
JSON
"$bin" serve --config "$tmp/injector.json" 2>"$tmp/log" &
pid=$!
port=
for _ in $(seq 1 100); do
  port=$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$tmp/log" | head -1)
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] || { cat "$tmp/log" >&2; echo "FAIL: not listening" >&2; exit 1; }

req() { # req CA PATH [curl args...]
  ca=$1; path=$2; shift 2
  curl -sS --max-time 5 --cacert "$ca" --resolve "localhost:$port:127.0.0.1" \
    "$@" "https://localhost:$port$path"
}
code() { req "$@" -o /dev/null -w '%{http_code}'; }

[ "$(req "$tmp/tls/..a/tls.crt" /healthz)" = "ok" ] || fail "healthz"
[ "$(req "$tmp/tls/..a/tls.crt" /readyz)" = "ok" ] || fail "readyz"
req "$tmp/tls/..a/tls.crt" /mutate -H 'Content-Type: application/json' \
  --data-binary @"$cases/sidecar.review.json" >"$tmp/resp.json" || fail "mutate"
grep -q '"patchType":"JSONPatch"' "$tmp/resp.json" || fail "no patch: $(cat "$tmp/resp.json")"
grep -q '"uid":"705ab4f5-6393-11e8-b7cc-42010a800001"' "$tmp/resp.json" || fail "uid not echoed"
[ "$(code "$tmp/tls/..a/tls.crt" /mutate --data-binary 'not json')" = 400 ] ||
  fail "a body that is not JSON"
head -c 5000000 /dev/zero | tr '\0' ' ' >"$tmp/huge"
[ "$(code "$tmp/tls/..a/tls.crt" /mutate --data-binary @"$tmp/huge")" = 400 ] ||
  fail "a body over 4 MiB"
[ "$(code "$tmp/tls/..a/tls.crt" /mutate)" = 405 ] || fail "GET /mutate"
[ "$(code "$tmp/tls/..a/tls.crt" /nope)" = 404 ] || fail "an unknown path"
grep -q "400 malformed review: not JSON" "$tmp/log" || fail "the 400 is not logged"
# Keep-alive: the API server reuses its connection (a TLS handshake per
# pod creation otherwise); only a daemon a reload replaced closes them.
conns=$(req "$tmp/tls/..a/tls.crt" /healthz -o /dev/null -o /dev/null \
  -w '%{num_connects} ' "https://localhost:$port/readyz")
[ "$conns" = "1 0 " ] || fail "the connection is not kept alive (new connections: $conns)"

# Requests without pause through the swap: none may fail.
(
  while [ ! -f "$tmp/stop" ]; do
    curl -sS -k --max-time 5 -o /dev/null -w '%{http_code}\n' \
      --data-binary @"$cases/sidecar.review.json" \
      "https://127.0.0.1:$port/mutate" >>"$tmp/codes" 2>>"$tmp/curlerr" ||
      echo fail >>"$tmp/codes"
  done
) &
loop=$!
sleep 1
swap ..b
ok=
for _ in $(seq 1 100); do
  [ "$(req "$tmp/tls/..b/tls.crt" /healthz 2>/dev/null)" = "ok" ] && { ok=1; break; }
  sleep 0.1
done
[ -n "$ok" ] || fail "the new certificate is not served"
sleep 1
touch "$tmp/stop"; wait "$loop"; loop=
total=$(wc -l <"$tmp/codes")
bad=$(grep -cv '^200$' "$tmp/codes")
[ "$total" -ge 5 ] || fail "only $total requests during the swap"
[ "$bad" -eq 0 ] || fail "$bad of $total requests failed during the swap: $(sort "$tmp/codes" | uniq -c | tr '\n' ' ') $(head -3 "$tmp/curlerr")"
grep -q "certificate reloaded" "$tmp/log" || fail "the reload is not logged"

swap ..bad
sleep 3
[ "$(req "$tmp/tls/..b/tls.crt" /healthz)" = "ok" ] || fail "a broken certificate replaced the good one"
grep -q "certificate reload refused, keeping the old one: the certificate is not" "$tmp/log" ||
  fail "the refused certificate is not logged"
[ "$(grep -c "certificate reload refused" "$tmp/log")" -eq 1 ] || fail "the refusal is logged more than once"

# A pair OpenSSL accepts but GnuTLS refuses (brainpool): the old daemon
# keeps serving on the listening socket, and a good pair after it is still
# picked up.
mkdir -p "$tmp/tls/..bp"
if openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:brainpoolP256r1 \
     -nodes -days 2 -subj /CN=localhost -keyout "$tmp/tls/..bp/tls.key" \
     -out "$tmp/tls/..bp/tls.crt" 2>/dev/null; then
  swap ..bp
  for _ in $(seq 1 50); do
    grep -q "the TLS library refused the new certificate" "$tmp/log" && break
    sleep 0.1
  done
  grep -q "the TLS library refused the new certificate" "$tmp/log" ||
    fail "the pair GnuTLS refuses is not logged"
  [ "$(req "$tmp/tls/..b/tls.crt" /healthz)" = "ok" ] ||
    fail "a pair GnuTLS refuses took the webhook down"
  swap ..a
  ok=
  for _ in $(seq 1 100); do
    [ "$(req "$tmp/tls/..a/tls.crt" /healthz 2>/dev/null)" = "ok" ] && { ok=1; break; }
    sleep 0.1
  done
  [ -n "$ok" ] || fail "a good pair after one GnuTLS refused is not served"
else
  echo "serve: openssl cannot make a brainpool key; skipping that swap" >&2
fi

kill -TERM "$pid"
wait "$pid"; st=$?
pid=
[ $st -eq 0 ] || fail "exit status $st after SIGTERM"
if grep -qi "private\|BEGIN" "$tmp/log"; then fail "key material in the log"; fi
[ $rc -eq 0 ] && echo "serve: $total requests through a certificate swap, all answered" ||
  cat "$tmp/log" >&2
exit $rc
