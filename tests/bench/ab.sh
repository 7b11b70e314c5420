#!/usr/bin/env bash
# ab.sh - two builds of Tollgate side by side in one run, for changes that
# must not cost anything (a refactor) or must gain something: A (before)
# and B (after) each run their own PDP and data plane in front of one mock
# provider, and every measurement takes turns between them, so the noise
# of a shared machine falls on both alike. Reports medians and B/A:
#   * wrk at concurrency 1 (latency p50/p99) and at 32 (requests/s);
#   * streams: each build's data plane against the other's with
#     tollgate-bench-stream, both ways round (time to first token, cost
#     per chunk), as B/A;
#   * the in-process benchmarks of each build (policy evaluation,
#     decisions with limits, settled usage records/s).
#
#   BENCH_A=/tmp/before/build/bin tests/bench/ab.sh [B_BIN]
#
# B_BIN defaults to build/release/bin (tests/bench/run.sh builds it).
# Knobs: BENCH_AB_ROUNDS (5), BENCH_AB_SECS (5 per wrk run), BENCH_AB_PARTS
# ("c1 c32 inproc stream": which measurements), BENCH_AB_BUNDLE (a policy
# bundle both PDPs serve, e.g. tests/bench/capture-full: what a decision
# record keeps), BENCH_KEEP=1. When B keeps a decision log, the size of
# its records is reported too.
# Like run.sh, it fails only when something does not work, never because a
# number is bad.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
# shellcheck source=tests/bench/lib.sh
. "$here/lib.sh"

A_bin=${BENCH_A:?set BENCH_A to the bin directory of the build to compare against}
B_bin=${1:-$top/build/release/bin}
rounds=${BENCH_AB_ROUNDS:-5}
secs=${BENCH_AB_SECS:-5}
parts=" ${BENCH_AB_PARTS:-c1 c32 inproc stream} "
part() { [[ $parts == *" $1 "* ]]; }
command -v wrk >/dev/null || die "wrk is missing (tests/bench/run.sh installs it)"
for d in "$A_bin" "$B_bin"; do
  for b in tollgate-mock-llm tollgate-pdp tollgate-dataplane \
           tollgate-bench-policy tollgate-bench-decide tollgate-bench-stream; do
    [ -x "$d/$b" ] || die "$d/$b is missing"
  done
done

tmp=$(mktemp -d /tmp/tollgate-ab.XXXXXX)
pids=()
ok=0
cleanup() {
  trap - EXIT INT TERM
  for p in "${pids[@]}"; do stop_pid "$p"; done
  if [ "$ok" = 1 ] && [ "${BENCH_KEEP:-0}" != 1 ]; then rm -rf "$tmp"
  else say "logs kept in $tmp"; fi
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT TERM
wait_up() { # wait_up URL LOG: up to 10 s for a 200
  for _ in $(seq 100); do
    curl -sf -o /dev/null "$1" && return 0
    sleep 0.1
  done
  tail -n 20 "$2" >&2; die "$1 did not answer within 10 s"
}

export TOLLGATE_MOCK_KEY=ab-mock-key
"$B_bin/tollgate-mock-llm" --port 0 --api-key "$TOLLGATE_MOCK_KEY" \
  >"$tmp/mock.log" 2>&1 &
pids+=($!)
mock_port=""
for _ in $(seq 100); do
  mock_port=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' \
                "$tmp/mock.log") || true
  [ -n "$mock_port" ] && break
  sleep 0.1
done
[ -n "$mock_port" ] || die "the mock did not report its port ($tmp/mock.log)"

bundle_json=
if [ -n "${BENCH_AB_BUNDLE:-}" ]; then
  bundle_json="\"bundle\": \"$(cd "$BENCH_AB_BUNDLE" && pwd)\", \"bundle_watch\": false,"
fi
declare -A url key
start_stack() { # start_stack A|B BIN: PDP + data plane, a tenant and a key
  local t=$1 bin=$2 d=$tmp/$1 port
  port=$(free_port "$mock_port" ${url[A]:+"${url[A]##*:}"}) || die "no free port"
  mkdir -p "$d"
  cat >"$d/tollgate.json" <<EOF
{
  "pdp": {"listen": ["ipc://$d/pdp.sock"], "state_dir": "state",
          $bundle_json
          "pricing_file": "$top/policies/pricing.json"},
  "dataplane": {"listen": "127.0.0.1:$port", "pdp_url": "ipc://$d/pdp.sock",
                "spool_dir": "spool", "max_connections_per_ip": 1000000},
  "deployments": [{"id": "mock", "model": "gpt-4o-mini", "provider": "openai",
                   "api_base": "http://127.0.0.1:$mock_port/v1",
                   "api_key": "\${TOLLGATE_MOCK_KEY}"}]
}
EOF
  "$bin/tollgate-pdp" serve --config "$d/tollgate.json" >"$d/pdp.log" 2>&1 &
  pids+=($!)
  "$bin/tollgate-dataplane" --config "$d/tollgate.json" >"$d/dp.log" 2>&1 &
  pids+=($!)
  url[$t]=http://127.0.0.1:$port
  wait_up "${url[$t]}/readyz" "$d/dp.log"
  "$bin/tollgate-pdp" tenants set --config "$d/tollgate.json" ab >/dev/null
  key[$t]=$("$bin/tollgate-pdp" keys create --config "$d/tollgate.json" \
              --tenant ab --name ab --format json | tr -d ' \n' |
            sed -n 's/.*"key":"\([^"]*\)".*/\1/p')
  [ -n "${key[$t]}" ] || die "$t: keys create gave no key"
}
start_stack A "$A_bin"
start_stack B "$B_bin"

declare -A vals # "NAME FIELD T" -> space-separated values
add() { vals["$1"]="${vals["$1"]:-} $2"; }
wrk_run() { # wrk_run T CONNS THREADS: latency at c=1, requests/s above
  local t=$1 c=$2 line
  line=$(BENCH_AUTH=${key[$t]} wrk -t"$3" -c"$c" -d"${secs}s" --latency \
           -s "$here/bench.lua" "${url[$t]}/v1/chat/completions" |
         grep '^WRK ') || die "wrk failed against $t"
  [ "$(field non2xx "$line")" = 0 ] || die "$t answered non-2xx under load: $line"
  if [ "$c" = 1 ]; then
    add "wrk_c1 p50_us $t" "$(field p50_us "$line")"
    add "wrk_c1 p99_us $t" "$(field p99_us "$line")"
  else
    add "wrk_c$c rps $t" "$(field rps "$line")"
    add "wrk_c$c p99_us $t" "$(field p99_us "$line")"
  fi
}
lines_run() { # lines_run T CMD...: adds every k=v of every "NAME k=v" line
  local t=$1 name kv
  shift
  while read -r name rest; do
    [ "$name" != ratio ] && [ "${name:0:1}" != "#" ] || continue
    for kv in $rest; do
      # rates and times only, not the sizes of the run
      [[ $kv =~ ^[a-z_0-9]*(per_|_us=|rps=)[a-z_0-9]*=?[0-9.]+$ ]] &&
        add "$name ${kv%%=*} $t" "${kv#*=}"
    done
  done < <("$@" 2>/dev/null)
}

say "warming up"
for t in A B; do BENCH_AUTH=${key[$t]} wrk -t1 -c4 -d2s -s "$here/bench.lua" \
  "${url[$t]}/v1/chat/completions" >/dev/null; done
for r in $(seq "$rounds"); do
  order="A B"; [ $((r % 2)) = 0 ] && order="B A"
  say "round $r/$rounds ($order)"
  if part c1; then for t in $order; do wrk_run "$t" 1 1; done; fi
  if part c32; then for t in $order; do wrk_run "$t" 32 2; done; fi
  part inproc || continue
  for t in $order; do
    bin=$A_bin; [ "$t" = B ] && bin=$B_bin
    lines_run "$t" "$bin/tollgate-bench-policy" \
      --bundle "$top/tests/bench/policy-20" \
      --config "$top/policies/examples.config.json"
    mkdir -p "$tmp/decide-$t-$r"
    lines_run "$t" "$bin/tollgate-bench-decide" --dir "$tmp/decide-$t-$r"
  done
done
# Streams: one build's data plane as the gateway and the other's as the
# reference, then the other way round (the tool's own order costs
# something), each ratio put as B/A.
stream_run() { # stream_run GATEWAY REF: adds stream ttft/chunk ratios B/A
  local g=$1 ref=$2 line inv=0
  [ "$g" = A ] && inv=1
  "$B_bin/tollgate-bench-stream" --url "${url[$g]}" --key "${key[$g]}" \
    --ref-url "${url[$ref]}" --ref-key "${key[$ref]}" -n 300 -w 30 \
    --chunks 1000 --chunk-rounds 11 --conc 0 >"$tmp/stream.log" 2>&1 ||
    { cat "$tmp/stream.log" >&2; die "tollgate-bench-stream failed"; }
  while read -r line; do
    for kv in $line; do
      case $kv in p50=* | p99=* | per_chunk=*) ;; *) continue ;; esac
      v=${kv#*=}
      [ "$inv" = 0 ] || v=$(awk -v v="$v" 'BEGIN { printf "%.3f", 1 / v }')
      add "stream_$(cut -d' ' -f2 <<<"$line" | cut -d_ -f1) ${kv%%=*}_B/A X" "$v"
    done
  done < <(grep '^ratio' "$tmp/stream.log")
}
for r in $(seq 3); do
  part stream || break
  say "streams $r/3: B's data plane against A's, then A's against B's"
  stream_run B A
  stream_run A B
done

echo "# ab: A=$A_bin B=$B_bin, $rounds rounds, medians"
printf '%-34s %12s %12s %7s\n' measure A B B/A
for k in $(printf '%s\n' "${!vals[@]}" | grep ' [AB]$' | sed 's/ [AB]$//' |
           sort -u | tr ' ' '|'); do
  k=${k//|/ }
  a=$(median ${vals["$k A"]:-}) b=$(median ${vals["$k B"]:-})
  [ -n "$a" ] && [ -n "$b" ] || continue
  printf '%-34s %12s %12s %7s\n' "$k" "$a" "$b" "$(ratio "$b" "$a")"
done
for k in $(printf '%s\n' "${!vals[@]}" | grep ' X$' | sed 's/ X$//' | sort -u | tr ' ' '|'); do
  k=${k//|/ }
  printf '%-34s %12s %12s %7s\n' "$k" "" "" "$(median ${vals["$k X"]})"
done
# What B's decision log keeps a request in (a build without one says so).
if "$B_bin/tollgate-pdp" decisions list --config "$tmp/B/tollgate.json" \
     --format jsonl --limit 2000 >"$tmp/records.jsonl" 2>/dev/null &&
   [ -s "$tmp/records.jsonl" ]; then
  awk '{ n++; b += length($0) + 1 } END {
         printf "decision records (B): %d sampled, %.0f bytes each on average\n", n, b / n }' \
    "$tmp/records.jsonl"
fi
ok=1
