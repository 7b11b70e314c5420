#!/usr/bin/env bash
# topology.sh - what the deployment mode costs per decision, on this
# machine, in one run: one PDP listening on ipc:// (sidecar mode) and on
# tls+tcp:// with mutual TLS (central mode, here over loopback: add the
# network's own round trip for a real cluster), Ping and Decide round trips
# through each, and the central/sidecar ratio. Uses the optimised build
# (deploy/local/setup.sh build); certificates are made with openssl.
#   tests/bench/topology.sh [-n ROUND_TRIPS]
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
. "$here/lib.sh"
n=20000
[ "${1:-}" = "-n" ] && n=$2
bin=$top/build/bin
"$top/deploy/local/setup.sh" "$top/build" >/dev/null

tmp=$(mktemp -d /tmp/tgtopo-XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && stop_pid "$pid"; rm -rf "$tmp"; }
trap cleanup EXIT

cert() { # cert NAME SAN USAGE: NAME.crt/.key signed by ca
  printf 'basicConstraints=critical,CA:FALSE\nextendedKeyUsage=%s\nsubjectAltName=DNS:%s\n' \
    "$3" "$2" >"$tmp/$1.ext"
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$tmp/$1.key" -out "$tmp/$1.csr" -subj "/CN=$2" 2>/dev/null
  openssl x509 -req -in "$tmp/$1.csr" -CA "$tmp/ca.crt" -CAkey "$tmp/ca.key" \
    -CAcreateserial -out "$tmp/$1.crt" -days 1 -extfile "$tmp/$1.ext" 2>/dev/null
}
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -keyout "$tmp/ca.key" -out "$tmp/ca.crt" -days 1 -subj /CN=bench-ca \
  -addext basicConstraints=critical,CA:TRUE 2>/dev/null
cert pdp pdp.bench serverAuth
cert dp dp.bench clientAuth

port=$(free_port)
cat >"$tmp/tollgate.json" <<JSON
{
  "pdp": {"listen": ["ipc://$tmp/pdp.sock", "tls+tcp://127.0.0.1:$port"],
          "state_dir": "state", "pricing_file": "$top/policies/pricing.json",
          "tls": {"cert_file": "pdp.crt", "key_file": "pdp.key", "client_ca_file": "ca.crt"}},
  "dataplane": {"listen": "127.0.0.1:1", "pdp_url": "ipc://$tmp/pdp.sock", "spool_dir": "spool"},
  "deployments": [{"id": "m", "model": "gpt-4o-mini", "provider": "openai",
                   "api_base": "http://127.0.0.1:1/v1"}]
}
JSON
"$bin/tollgate-pdp" serve --config "$tmp/tollgate.json" >"$tmp/pdp.log" 2>&1 &
pid=$!
"$bin/tollgate-pdp" tenants set --config "$tmp/tollgate.json" bench >/dev/null
key=$("$bin/tollgate-pdp" keys create --config "$tmp/tollgate.json" --tenant bench \
        --name topology --format json | tr -d ' \n' | sed -n 's/.*"key":"\([^"]*\)".*/\1/p')
[ -n "$key" ] || die "no key"

say "sidecar: ipc://, $n round trips each"
"$bin/tollgate-bench-ipc" -n "$n" --key "$key" "ipc://$tmp/pdp.sock" >"$tmp/ipc.txt" 2>&1 ||
  { cat "$tmp/ipc.txt" >&2; die "bench over ipc failed"; }
say "central: tls+tcp:// (mutual TLS, loopback), $n round trips each"
"$bin/tollgate-bench-ipc" -n "$n" --key "$key" --tls-cert "$tmp/dp.crt" \
  --tls-key "$tmp/dp.key" --tls-ca "$tmp/ca.crt" --server-name pdp.bench \
  "tls+tcp://127.0.0.1:$port" >"$tmp/tls.txt" 2>&1 ||
  { cat "$tmp/tls.txt" >&2; die "bench over tls+tcp failed"; }

get() { awk -v n="$2" -v f="$3" '$1 == n { for (i = 2; i <= NF; i++) {
          split($i, kv, "="); if (kv[1] == f) print kv[2] } }' "$1"; }
printf '\n%-34s %10s %10s\n' "decision round trip (µs)" p50 p99
for k in pdp_ping pdp_decide; do
  for m in ipc tls; do
    label="$k over $([ $m = ipc ] && echo 'ipc (sidecar)' || echo 'tls+tcp (central)')"
    printf '%-34s %10s %10s\n' "$label" "$(get "$tmp/$m.txt" $k p50_us)" "$(get "$tmp/$m.txt" $k p99_us)"
  done
  printf '%-34s %10s %10s\n' "  ratio central / sidecar" \
    "$(ratio "$(get "$tmp/tls.txt" $k p50_us)" "$(get "$tmp/ipc.txt" $k p50_us)")" \
    "$(ratio "$(get "$tmp/tls.txt" $k p99_us)" "$(get "$tmp/ipc.txt" $k p99_us)")"
done
