#!/usr/bin/env bash
# tests/bench/write_ahead.sh BASE_BIN [NEW_BIN] - what "write before you
# act" costs: the same measurements against an older build (BASE_BIN, e.g.
# a worktree of the commit before, built Release) and this one (NEW_BIN,
# default build/release/bin), in one run, taking turns:
#
#   decide   tollgate-bench-ipc against a PDP running tests/bench/budget-rate
#            (a rate limit and a budget: every decision reserves, and in the
#            new build records the reservation before it answers): Decide
#            round trips one at a time (p50/p99) and with 8 in flight
#            (per second), against Ping on the same PDP as the reference.
#   stream   tollgate-bench-stream through each gateway (PDP + data plane,
#            the mock behind) against the mock directly: the time to first
#            token the gateway adds (the new build commits a usage intent
#            before going upstream and the final report before the stream
#            ends).
#
# Prints each round's figures and the medians; a benchmark, not a test: it
# fails only when something does not work. Needs both builds' binaries:
#   git worktree add /tmp/base HEAD~N && cmake -S /tmp/base -B /tmp/base/b \
#     -DCMAKE_BUILD_TYPE=Release && cmake --build /tmp/base/b -j2
#   tests/bench/write_ahead.sh /tmp/base/b/bin
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
base=${1:?usage: write_ahead.sh BASE_BIN [NEW_BIN]}
new=${2:-$top/build/release/bin}
rounds=${BENCH_ROUNDS:-3}
ipc_n=${BENCH_IPC_N:-3000}
secs=${BENCH_CONC_SECS:-3}
stream_n=${BENCH_STREAM_N:-300}

say() { echo "write_ahead: $*" >&2; }
die() { echo "write_ahead: FAILED: $*" >&2; exit 1; }
for b in "$base" "$new"; do
  for x in tollgate-pdp tollgate-dataplane tollgate-mock-llm \
           tollgate-bench-ipc tollgate-bench-stream; do
    [ -x "$b/$x" ] || die "$b/$x is missing"
  done
done

tmp=$(mktemp -d /tmp/tollgate-wa.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ "${BENCH_KEEP:-0}" = 1 ] && say "logs in $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT

port() { echo $((20000 + RANDOM % 12000)); }
export TOLLGATE_MOCK_KEY=bench-mock-key
mock_port=$(port)
"$new/tollgate-mock-llm" --port "$mock_port" --api-key bench-mock-key \
  >"$tmp/mock.log" 2>&1 &
pids+=($!)

# start NAME BIN: a PDP (budget-rate bundle) and a data plane of that build.
start() {
  local n=$1 b=$2 dp
  dp=$(port)
  mkdir -p "$tmp/$n"
  cat >"$tmp/$n/tollgate.json" <<EOF
{
  "pdp": {"listen": ["ipc://$tmp/$n/pdp.sock"], "state_dir": "state",
          "bundle": "$here/budget-rate",
          "pricing_file": "$here/budget-rate/pricing.json"},
  "dataplane": {"listen": "127.0.0.1:$dp", "pdp_url": "ipc://$tmp/$n/pdp.sock",
                "pdp_timeout_ms": 1000, "spool_dir": "spool"},
  "deployments": [{"id": "mock", "provider": "openai_compatible",
                   "model": "gpt-4o-mini",
                   "api_base": "http://127.0.0.1:$mock_port/v1",
                   "api_key": "\${TOLLGATE_MOCK_KEY}"}]
}
EOF
  "$b/tollgate-pdp" serve --config "$tmp/$n/tollgate.json" \
    >"$tmp/$n/pdp.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do [ -S "$tmp/$n/pdp.sock" ] && break; sleep 0.1; done
  "$b/tollgate-pdp" tenants set --config "$tmp/$n/tollgate.json" bench \
    >/dev/null
  "$b/tollgate-pdp" keys create --config "$tmp/$n/tollgate.json" \
    --tenant bench --name bench --format json 2>/dev/null |
    tr -d ' \t\r\n' | sed -n 's/.*"key":"\([^"]*\)".*/\1/p' >"$tmp/$n/key"
  [ -s "$tmp/$n/key" ] || die "no key for $n ($tmp/$n/pdp.log)"
  "$b/tollgate-dataplane" --config "$tmp/$n/tollgate.json" \
    >"$tmp/$n/dp.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do
    curl -sf -o /dev/null "http://127.0.0.1:$dp/healthz" && break
    sleep 0.1
  done
  echo "$dp" >"$tmp/$n/port"
}
start base "$base"
start new "$new"

field() { # field FILE NAME KEY
  awk -v n="$2" -v f="$3" '$1 == n { for (i = 2; i <= NF; i++) {
      split($i, kv, "="); if (kv[1] == f) print kv[2] } }' "$1"
}
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

for r in $(seq "$rounds"); do
  for n in base new; do
    b=$base; [ "$n" = new ] && b=$new
    "$new/tollgate-bench-ipc" -n "$ipc_n" -w 500 --key "$(cat "$tmp/$n/key")" \
      --conc 8 --secs "$secs" "ipc://$tmp/$n/pdp.sock" \
      >"$tmp/$n/ipc.$r" 2>&1 || { cat "$tmp/$n/ipc.$r" >&2; die "bench-ipc $n"; }
    "$new/tollgate-bench-stream" --url "http://127.0.0.1:$(cat "$tmp/$n/port")" \
      --key "$(cat "$tmp/$n/key")" \
      --ref-url "http://127.0.0.1:$mock_port" --ref-key bench-mock-key \
      -n "$stream_n" --ttft-only \
      >"$tmp/$n/stream.$r" 2>&1 || { cat "$tmp/$n/stream.$r" >&2; die "bench-stream $n"; }
    printf '%s round %d: decide p50 %s us p99 %s us (ping p50 %s), %s decisions/s with 8 in flight (ping %s/s); stream ttft added p50 %s us p99 %s us\n' \
      "$n" "$r" \
      "$(field "$tmp/$n/ipc.$r" pdp_decide p50_us)" \
      "$(field "$tmp/$n/ipc.$r" pdp_decide p99_us)" \
      "$(field "$tmp/$n/ipc.$r" pdp_ping p50_us)" \
      "$(field "$tmp/$n/ipc.$r" pdp_decide_c8 per_s)" \
      "$(field "$tmp/$n/ipc.$r" pdp_ping_c8 per_s)" \
      "$(field "$tmp/$n/stream.$r" ttft_added p50_us)" \
      "$(field "$tmp/$n/stream.$r" ttft_added p99_us)"
  done
done
for n in base new; do
  d=$(for r in $(seq "$rounds"); do field "$tmp/$n/ipc.$r" pdp_decide_c8 per_s; done | median)
  p=$(for r in $(seq "$rounds"); do field "$tmp/$n/ipc.$r" pdp_ping_c8 per_s; done | median)
  l=$(for r in $(seq "$rounds"); do field "$tmp/$n/ipc.$r" pdp_decide p50_us; done | median)
  t=$(for r in $(seq "$rounds"); do field "$tmp/$n/stream.$r" ttft_added p50_us; done | median)
  echo "$n median: decisions/s c8 $d (ping $p, ratio $(awk -v a="$d" -v b="$p" 'BEGIN { printf "%.2f", a / b }')), decide p50 $l us, stream ttft added p50 $t us"
done
