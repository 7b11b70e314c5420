#!/usr/bin/env bash
# profile.sh - where a request's time goes on the c=1 path (and at c=32):
# a data plane and its PDP over ipc in front of the mock, a key with a
# budget and a rate limit (no bundle; PROFILE_LIMITS=0: none), wrk at one
# concurrency for a few seconds while
#   * /proc counts each process's CPU time (user+sys, from /proc/PID/stat)
#     and its context switches (voluntary and not, summed over its
#     threads), per request;
#   * perf (Debian's linux-perf, when it is installed and allowed) samples
#     both processes and lists the functions and shared objects that take
#     the most samples;
#   * strace -c -f (when installed) counts each process's system calls per
#     request in a separate, slower run (strace slows what it traces; only
#     the counts are used).
# Prints a report; figures, never pass/fail (it fails only when something
# does not run). Uses the optimised build (deploy/local/setup.sh build).
#   tests/bench/profile.sh              (about 1 minute)
# Knobs: PROFILE_CONC (1), PROFILE_SECS (6), PROFILE_LIMITS (1; 0: the key
# has no budget and no rate limit, so its decisions are reused),
# BENCH_NO_BUILD=1,
# BENCH_BIN=DIR, BENCH_KEEP=1 (keep the temporary directory: perf data,
# configs, logs).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
# shellcheck source=tests/bench/lib.sh
. "$here/lib.sh"
conc=${PROFILE_CONC:-1}
secs=${PROFILE_SECS:-6}
bin=${BENCH_BIN:-$top/build/bin}

command -v wrk >/dev/null || die "wrk is missing (tests/bench/run.sh installs it)"
[ "${BENCH_NO_BUILD:-0}" = 1 ] || [ -n "${BENCH_BIN:-}" ] ||
  "$top/deploy/local/setup.sh" "$top/build" >/dev/null

tmp=$(mktemp -d /tmp/tgprofile-XXXXXX)
declare -A pids=()
cleanup() {
  trap - EXIT INT TERM
  for n in dp pdp mock; do [ -z "${pids[$n]:-}" ] || stop_pid "${pids[$n]}"; done
  if [ "${BENCH_KEEP:-0}" = 1 ]; then say "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
start() { local n=$1; shift; "$@" >"$tmp/$n.log" 2>&1 & pids[$n]=$!; }

export TOLLGATE_MOCK_KEY=bench-profile-mock-key
start mock "$bin/tollgate-mock-llm" --port 0 --api-key "$TOLLGATE_MOCK_KEY"
mock_port=
for _ in $(seq 100); do
  mock_port=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/mock.log") || true
  [ -n "$mock_port" ] && break
  sleep 0.1
done
[ -n "$mock_port" ] || die "the mock did not report its port"
port=$(free_port "$mock_port") || die "no free port"
cat >"$tmp/tollgate.json" <<EOF
{
  "pdp": {"listen": ["ipc://$tmp/pdp.sock"], "state_dir": "$tmp/state",
          "pricing_file": "$top/policies/pricing.json"},
  "dataplane": {"listen": "127.0.0.1:$port", "pdp_url": "ipc://$tmp/pdp.sock",
                "spool_dir": "$tmp/spool", "max_connections_per_ip": 1000000},
  "deployments": [{"id": "mock", "model": "gpt-4o-mini", "provider": "openai",
                   "api_base": "http://127.0.0.1:$mock_port/v1",
                   "api_key": "\${TOLLGATE_MOCK_KEY}"}]
}
EOF
cfg=$tmp/tollgate.json
start pdp "$bin/tollgate-pdp" serve --config "$cfg"
"$bin/tollgate-pdp" tenants set bench --config "$cfg" >/dev/null 2>>"$tmp/cli.log" ||
  die "tenants set failed: $(tail -n 3 "$tmp/cli.log")"
limits=(--limit-usd 1000 --window monthly --rpm 1000000)
[ "${PROFILE_LIMITS:-1}" = 1 ] || limits=()
key=$("$bin/tollgate-pdp" keys create --tenant bench --name profile --format json \
        "${limits[@]}" --config "$cfg" 2>>"$tmp/cli.log" |
      tr -d ' \t\r\n' | sed -n 's/.*"key":"\([^"]*\)".*/\1/p')
[ -n "$key" ] || die "keys create gave no key: $(tail -n 3 "$tmp/cli.log")"
start dp "$bin/tollgate-dataplane" --config "$cfg"
for _ in $(seq 300); do
  curl -sf -o /dev/null "http://127.0.0.1:$port/readyz" && break
  sleep 0.1
done
url=http://127.0.0.1:$port/v1/chat/completions
body='{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello"}]}'
code=$(curl -s -o "$tmp/first.json" -w '%{http_code}' -H "Authorization: Bearer $key" \
         -H 'Content-Type: application/json' -d "$body" "$url") || code=000
[ "$code" = 200 ] || die "the first request got HTTP $code: $(head -c 300 "$tmp/first.json")"

th=1
[ "$conc" = 1 ] || th=2
run_wrk() { # run_wrk SECS: the WRK line
  BENCH_AUTH=$key wrk -t"$th" -c"$conc" -d"$1s" --latency -s "$here/bench.lua" "$url" \
    >"$tmp/wrk.log" 2>&1 || { cat "$tmp/wrk.log" >&2; die "wrk failed"; }
  grep '^WRK ' "$tmp/wrk.log" || die "no result from wrk"
}
ticks() { # ticks PID: utime+stime of the process, in clock ticks
  awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}
switches() { # switches PID: voluntary and involuntary, over its threads
  cat /proc/"$1"/task/*/status 2>/dev/null |
    awk '/^voluntary_ctxt_switches/ { v += $2 } /^nonvoluntary_ctxt_switches/ { n += $2 }
         END { print v + 0, n + 0 }'
}
run_wrk 2 >/dev/null # warm up
hz=$(getconf CLK_TCK)
# 1. CPU time and context switches, nothing else attached.
declare -A t0=() s0=() t1=() s1=()
for n in dp pdp mock; do t0[$n]=$(ticks "${pids[$n]}"); s0[$n]=$(switches "${pids[$n]}"); done
line=$(run_wrk "$secs")
for n in dp pdp mock; do t1[$n]=$(ticks "${pids[$n]}"); s1[$n]=$(switches "${pids[$n]}"); done
reqs=$(field requests "$line")
[ "${reqs:-0}" -gt 0 ] || die "wrk made no request: $line"
# 2. perf samples (a separate run: perf costs the processes some time).
perf_ok=0
if command -v perf >/dev/null; then
  perf record -o "$tmp/perf.data" -F 999 -p "${pids[dp]},${pids[pdp]}" \
    -- sleep "$secs" >"$tmp/perf.log" 2>&1 &
  perf_pid=$!
  sleep 0.3
  run_wrk "$secs" >/dev/null
  wait "$perf_pid" && perf_ok=1
fi

{
  echo
  echo '```'
  echo "Profile of the data plane + PDP path at c=$conc, $(date -u '+%Y-%m-%d %H:%M UTC')," \
       "nproc=$(nproc), load average $(cut -d' ' -f1-3 /proc/loadavg)"
  if [ "${PROFILE_LIMITS:-1}" = 1 ]; then
    echo -n "a key budget + rate limit in force (no bundle); "
  else
    echo -n "no budget, no rate limit (decisions reused); "
  fi
  echo "wrk -c$conc ${secs}s: $reqs requests," \
       "p50 $(field p50_us "$line") µs, p99 $(field p99_us "$line") µs, $(field rps "$line") req/s"
  printf '  %-10s %14s %22s %22s\n' process "CPU µs/request" "voluntary cs/request" "involuntary cs/request"
  for n in dp pdp mock; do
    read -r v1 i1 <<<"${s1[$n]}"
    read -r v0 i0 <<<"${s0[$n]}"
    printf '  %-10s %14.0f %22.1f %22.1f\n' "$n" \
      "$(calc "(${t1[$n]} - ${t0[$n]}) * 1000000 / $hz / $reqs")" \
      "$(calc "($v1 - $v0) / $reqs")" "$(calc "($i1 - $i0) / $reqs")"
  done
  if [ "$perf_ok" = 1 ]; then
    echo
    echo "perf (a second run, sampled at 999 Hz): the 25 symbols with the most samples:"
    perf report -i "$tmp/perf.data" --no-children --sort comm,dso,sym --stdio -g none 2>/dev/null |
      grep -v '^#' | grep '%' | head -n 25 | cut -c1-120 || true
    echo
    echo "perf: samples by shared object:"
    perf report -i "$tmp/perf.data" --no-children --sort comm,dso --stdio -g none 2>/dev/null |
      grep -v '^#' | grep '%' | head -n 14 || true
  else
    echo "(perf not available or not allowed: $(tail -n 1 "$tmp/perf.log" 2>/dev/null))"
  fi
  if command -v strace >/dev/null; then
    st_pids=()
    for n in dp pdp; do
      strace -c -f -p "${pids[$n]}" -o "$tmp/strace-$n.txt" 2>/dev/null &
      st_pids+=($!)
    done
    sleep 0.5
    line=$(run_wrk 3)
    kill -INT "${st_pids[@]}" 2>/dev/null || true
    wait "${st_pids[@]}" 2>/dev/null || true
    reqs=$(field requests "$line")
    echo
    echo "system calls per request under strace -c -f ($reqs requests; strace slows them):"
    for n in dp pdp; do
      echo "  $n:"
      awk -v r="$reqs" '$1 ~ /^[0-9.]+$/ && NF >= 5 { printf "    %-18s %8.2f\n", $NF, $4 / r }' \
        "$tmp/strace-$n.txt" | sort -k2 -gr | head -n 10 || true
    done
  fi
  echo '```'
}
