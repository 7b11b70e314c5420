#!/usr/bin/env bash
# leases.sh - what a sidecar PDP (pdp.upstream) costs a request, against a
# local PDP and against asking a central PDP for every decision, in one
# run on loopback in front of one mock provider:
#   m  wrk -> mock                                        (the floor)
#   a  wrk -> data plane -> local PDP over ipc; a key with no limits
#   b  wrk -> data plane -> sidecar PDP over ipc, replicating from the
#      central PDP and admitting a tenant budget and a key rate limit
#      against the leases the central PDP grants it
#   c  wrk -> data plane -> central PDP over loopback tcp:// for every
#      decision and report; the same budget and rate limit, enforced there
#   d  as c, with a standby (pdp.ha): every reply that acknowledges a write
#      (the decision's reservation, the report) waits until the standby
#      pulled it
# Latency at concurrency 1 (p50/p99 added over m) and throughput at
# concurrency 32 (requests/s, p99), in rounds that take turns; medians, and
# b/a, c/a, d/a and d/c. The budget ($1000 monthly) and the rate limit (1,000,000 rpm)
# are far from anything a run reaches: it measures the machinery, not
# refusals. Uses the optimised build (deploy/local/setup.sh build) and wrk
# with bench.lua.
#   tests/bench/leases.sh       (about 2 minutes on 2 cores after the build)
# A benchmark: it fails only when something does not work (a path that does
# not answer 200 at first, over 1% of a run's requests not answered 200, a
# process that exits, a sidecar that takes no lease), never because of a
# number; rarer failures are listed under the table. Stops everything it
# started on exit.
# Knobs: BENCH_LEASES_ROUNDS (3), BENCH_LEASES_LAT_SECS (3 per wrk run at
# c=1), BENCH_LEASES_THR_SECS (4 per wrk run at c=32), BENCH_LEASES_FAIL_PCT
# (1: a run with more failed requests stops the benchmark), BENCH_NO_BUILD=1,
# BENCH_BIN=DIR (another build's bin directory; nothing is built),
# BENCH_KEEP=1 (keep the temporary directory: configs and logs).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
# shellcheck source=tests/bench/lib.sh
. "$here/lib.sh"
rounds=${BENCH_LEASES_ROUNDS:-3}
lat_secs=${BENCH_LEASES_LAT_SECS:-3}
thr_secs=${BENCH_LEASES_THR_SECS:-4}
conc=32
bin=${BENCH_BIN:-$top/build/bin}

command -v wrk >/dev/null || die "wrk is missing (tests/bench/run.sh installs it)"
[ "${BENCH_NO_BUILD:-0}" = 1 ] || [ -n "${BENCH_BIN:-}" ] ||
  "$top/deploy/local/setup.sh" "$top/build" >/dev/null
for b in tollgate-mock-llm tollgate-pdp tollgate-dataplane; do
  [ -x "$bin/$b" ] || die "$bin/$b is missing; did the build fail?"
done

tmp=$(mktemp -d /tmp/tgleases-XXXXXX)
declare -A pids=() # name -> pid of what we started; its log is $tmp/NAME.log
cleanup() {
  trap - EXIT INT TERM
  # data planes first (their spools drain into the PDPs), then the PDPs
  for n in dp_a dp_b dp_c dp_d pdp_a sidecar central central_d standby mock; do
    [ -z "${pids[$n]:-}" ] || stop_pid "${pids[$n]}"
  done
  if [ "${BENCH_KEEP:-0}" = 1 ]; then say "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT TERM

start() { # start NAME CMD...: in the background, output to $tmp/NAME.log
  local n=$1
  shift
  "$@" >"$tmp/$n.log" 2>&1 &
  pids[$n]=$!
}
alive() { # alive NAME...: die with the log's tail of one that exited
  local n
  for n in "$@"; do
    kill -0 "${pids[$n]}" 2>/dev/null && continue
    tail -n 20 "$tmp/$n.log" >&2 || true
    die "$n (pid ${pids[$n]}) exited; its log's tail is above"
  done
}
wait_ready() { # wait_ready NAME URL PROCS...: up to 30 s for a 200
  local n=$1 url=$2
  shift 2
  for _ in $(seq 300); do
    curl -sf -o /dev/null "$url" && return 0
    alive "$@"
    sleep 0.1
  done
  tail -n 20 "$tmp/$n.log" >&2
  die "$n did not answer $url with 200 within 30 s"
}
pdp_cli() { # pdp_cli CONFIG ARGS...: a tollgate-pdp command on CONFIG's state
  local cfg=$1
  shift
  "$bin/tollgate-pdp" "$@" --config "$cfg" 2>>"$tmp/cli.log" ||
    { tail -n 5 "$tmp/cli.log" >&2; die "tollgate-pdp $* failed"; }
}
new_key() { # new_key CONFIG TENANT [LIMIT ARGS...]: prints the key
  local cfg=$1 tenant=$2 k
  shift 2
  k=$(pdp_cli "$cfg" keys create --tenant "$tenant" --name bench-leases \
        --format json "$@" | tr -d ' \t\r\n' | sed -n 's/.*"key":"\([^"]*\)".*/\1/p')
  [ -n "$k" ] || die "keys create gave no key (tenant $tenant)"
  echo "$k"
}

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
export TOLLGATE_MOCK_KEY=bench-leases-mock-key
start mock "$bin/tollgate-mock-llm" --port 0 --api-key "$TOLLGATE_MOCK_KEY"
mock_port=
for _ in $(seq 100); do
  mock_port=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' \
                "$tmp/mock.log") || true
  [ -n "$mock_port" ] && break
  alive mock
  sleep 0.1
done
[ -n "$mock_port" ] || die "the mock did not report its port ($tmp/mock.log)"

tcp_port=$(free_port "$mock_port") || die "no free port"
port_a=$(free_port "$mock_port" "$tcp_port") || die "no free port"
port_b=$(free_port "$mock_port" "$tcp_port" "$port_a") || die "no free port"
port_c=$(free_port "$mock_port" "$tcp_port" "$port_a" "$port_b") || die "no free port"
admin_sc=$(free_port "$mock_port" "$tcp_port" "$port_a" "$port_b" "$port_c") ||
  die "no free port"
admin_c=$(free_port "$mock_port" "$tcp_port" "$port_a" "$port_b" "$port_c" "$admin_sc") ||
  die "no free port"
used=("$mock_port" "$tcp_port" "$port_a" "$port_b" "$port_c" "$admin_sc" "$admin_c")
port_d=$(free_port "${used[@]}") || die "no free port"
tcp_d=$(free_port "${used[@]}" "$port_d") || die "no free port"
tcp_sb=$(free_port "${used[@]}" "$port_d" "$tcp_d") || die "no free port"
admin_d=$(free_port "${used[@]}" "$port_d" "$tcp_d" "$tcp_sb") || die "no free port"
admin_sb=$(free_port "${used[@]}" "$port_d" "$tcp_d" "$tcp_sb" "$admin_d") || die "no free port"

# One allow-all bundle: the central serves it (and so the sidecar, which
# replicates it), the local PDP serves the same, so the policy is the same
# on all three paths.
mkdir -p "$tmp/bundle" "$tmp/a" "$tmp/b" "$tmp/c" "$tmp/d" "$tmp/s"
echo '{"name": "bench-leases", "revision": 1}' >"$tmp/bundle/bundle.json"
echo '{"rules": [{"id": "allow-all", "kind": "access", "effect": "allow"}]}' \
  >"$tmp/bundle/access.policy.json"
deployments() { # the "deployments" section: the mock, with its key
  cat <<EOF
"deployments": [{"id": "mock", "model": "gpt-4o-mini", "provider": "openai",
                   "api_base": "http://127.0.0.1:$mock_port/v1",
                   "api_key": "\${TOLLGATE_MOCK_KEY}"}]
EOF
}
dataplane() { # dataplane PORT PDP_URL DIR: the "dataplane" section
  cat <<EOF
"dataplane": {"listen": "127.0.0.1:$1", "pdp_url": "$2",
                "spool_dir": "$3/spool", "max_connections_per_ip": 1000000}
EOF
}
cat >"$tmp/c/central.json" <<EOF
{
  "pdp": {"listen": ["ipc://$tmp/c/central.sock", "tcp://127.0.0.1:$tcp_port"],
          "allow_plain_tcp": true, "state_dir": "$tmp/c/state",
          "admin_listen": "127.0.0.1:$admin_c",
          "pricing_file": "$top/policies/pricing.json",
          "bundle": "$tmp/bundle", "bundle_watch": false},
  $(dataplane "$port_c" "tcp://127.0.0.1:$tcp_port" "$tmp/c"),
  $(deployments)
}
EOF
cat >"$tmp/b/sidecar.json" <<EOF
{
  "pdp": {"listen": ["ipc://$tmp/b/sc.sock"], "state_dir": "$tmp/b/state",
          "allow_plain_tcp": true, "admin_listen": "127.0.0.1:$admin_sc",
          "upstream": {"url": "tcp://127.0.0.1:$tcp_port", "node_id": "bench-sc"}},
  $(dataplane "$port_b" "ipc://$tmp/b/sc.sock" "$tmp/b"),
  $(deployments)
}
EOF
cat >"$tmp/a/local.json" <<EOF
{
  "pdp": {"listen": ["ipc://$tmp/a/pdp.sock"], "state_dir": "$tmp/a/state",
          "pricing_file": "$top/policies/pricing.json",
          "bundle": "$tmp/bundle", "bundle_watch": false},
  $(dataplane "$port_a" "ipc://$tmp/a/pdp.sock" "$tmp/a"),
  $(deployments)
}
EOF
ha_pdp() { # ha_pdp DIR TCP_PORT ROLE PEER_PORT ADMIN: the "pdp" section
  cat <<EOF
"pdp": {"listen": ["tcp://127.0.0.1:$2"], "allow_plain_tcp": true,
          "state_dir": "$1/state", "admin_listen": "127.0.0.1:$5",
          "pricing_file": "$top/policies/pricing.json",
          "bundle": "$tmp/bundle", "bundle_watch": false,
          "ha": {"role": "$3", "peer": "tcp://127.0.0.1:$4"}}
EOF
}
cat >"$tmp/d/central.json" <<EOF
{
  $(ha_pdp "$tmp/d" "$tcp_d" active "$tcp_sb" "$admin_d"),
  $(dataplane "$port_d" "tcp://127.0.0.1:$tcp_d" "$tmp/d"),
  $(deployments)
}
EOF
cat >"$tmp/s/standby.json" <<EOF
{
  $(ha_pdp "$tmp/s" "$tcp_sb" standby "$tcp_d" "$admin_sb"),
  $(dataplane "$port_d" "tcp://127.0.0.1:$tcp_d" "$tmp/s"),
  $(deployments)
}
EOF
central=$tmp/c/central.json sidecar=$tmp/b/sidecar.json local=$tmp/a/local.json
central_d=$tmp/d/central.json

# Keys, tenants and limits are made on the central PDP (the sidecar
# replicates them): tenant bench with a $1000 monthly budget, and a key for
# (b) and another for (c), each with 1,000,000 requests a minute.
start central "$bin/tollgate-pdp" serve --config "$central"
start pdp_a "$bin/tollgate-pdp" serve --config "$local"
pdp_cli "$central" tenants set bench >/dev/null
pdp_cli "$central" budgets set tenant:bench --limit-usd 1000 --window monthly >/dev/null
key_b=$(new_key "$central" bench --rpm 1000000)
key_c=$(new_key "$central" bench --rpm 1000000)
pdp_cli "$local" tenants set local >/dev/null
key_a=$(new_key "$local" local)
start central_d "$bin/tollgate-pdp" serve --config "$central_d"
pdp_cli "$central_d" tenants set bench >/dev/null
pdp_cli "$central_d" budgets set tenant:bench --limit-usd 1000 --window monthly >/dev/null
key_d=$(new_key "$central_d" bench --rpm 1000000)
start standby "$bin/tollgate-pdp" serve --config "$tmp/s/standby.json"
start dp_d "$bin/tollgate-dataplane" --config "$central_d"
start sidecar "$bin/tollgate-pdp" serve --config "$sidecar"
start dp_a "$bin/tollgate-dataplane" --config "$local"
start dp_c "$bin/tollgate-dataplane" --config "$central"
# what each target needs running (word lists)
declare -A procs=([m]="mock" [a]="mock pdp_a dp_a" [b]="mock central sidecar dp_b"
                  [c]="mock central dp_c" [d]="mock central_d standby dp_d")
wait_ready mock "http://127.0.0.1:$mock_port/healthz" mock
# shellcheck disable=SC2086 # procs[] are word lists
{
  wait_ready dp_a "http://127.0.0.1:$port_a/readyz" ${procs[a]}
  wait_ready dp_c "http://127.0.0.1:$port_c/readyz" ${procs[c]}
  wait_ready dp_d "http://127.0.0.1:$port_d/readyz" ${procs[d]}
  # (d) measures a pair only once the standby follows the active.
  for _ in $(seq 300); do
    curl -sf "http://127.0.0.1:$admin_d/metrics" | grep -q '^tollgate_ha_standby_in_sync 1' && break
    alive ${procs[d]}
    sleep 0.1
  done
  # The sidecar's data plane reads the replicated pricing once, at start:
  # start it once the sidecar has synced (its admin /readyz says so).
  wait_ready sidecar "http://127.0.0.1:$admin_sc/readyz" central sidecar
  start dp_b "$bin/tollgate-dataplane" --config "$sidecar"
  wait_ready dp_b "http://127.0.0.1:$port_b/readyz" ${procs[b]}
}

declare -A url=([m]=http://127.0.0.1:$mock_port [a]=http://127.0.0.1:$port_a
                [b]=http://127.0.0.1:$port_b [c]=http://127.0.0.1:$port_c
                [d]=http://127.0.0.1:$port_d)
declare -A auth=([m]=$TOLLGATE_MOCK_KEY [a]=$key_a [b]=$key_b [c]=$key_c [d]=$key_d)
declare -A name=([m]="mock direct" [a]="local PDP, ipc, no limits"
                 [b]="sidecar PDP, ipc, leases" [c]="central PDP, tcp, each decision"
                 [d]="central PDP + standby, tcp")

# Every path answers 200 before anything is measured; the sidecar only once
# the key has replicated (401 before) and it holds leases for its limits.
body='{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello"}]}'
for t in m a c d b; do
  code=000
  for _ in $(seq 150); do
    code=$(curl -s -o "$tmp/first-$t.json" -w '%{http_code}' \
             -H "Authorization: Bearer ${auth[$t]}" -H 'Content-Type: application/json' \
             -d "$body" "${url[$t]}/v1/chat/completions") || code=000
    [ "$code" = 200 ] && break
    # shellcheck disable=SC2086
    alive ${procs[$t]}
    sleep 0.1
  done
  [ "$code" = 200 ] ||
    { head -c 600 "$tmp/first-$t.json" >&2; echo >&2
      die "$t (${name[$t]}) answered HTTP $code, not 200, for 15 s"; }
done
say "all five targets answer 200; measuring"

failed_why() { # failed_why T: what T's data plane (and a sidecar) said
  [ "$1" != m ] || return 0
  say "the data plane's warnings, most frequent first:"
  awk '/ (warn|error|fatal) / { sub(/^[^ ]+ /, ""); gsub(/req_[0-9a-f]+/, "req_*");
                                c[$0]++ } END { for (l in c) print c[l] "\t" l }' \
    "$tmp/dp_$1.log" | sort -rn | head -n 5 >&2
  [ "$1" = b ] || return 0
  say "the sidecar's upstream metrics, then the central PDP's lease metrics:"
  curl -sf "http://127.0.0.1:$admin_sc/metrics" | grep '^tollgate_upstream' >&2 || true
  curl -sf "http://127.0.0.1:$admin_c/metrics" | grep '^tollgate_leases' >&2 || true
}
declare -A v=() # "t measure" -> space-separated values, one per round
# A run where over fail_pct% of the requests failed means the path does not
# work: the benchmark stops there. Rarer failures (a 503 when the machine
# stalls a process past the data plane's 50 ms PDP timeout) are listed under
# the table and the figures they touch marked "!", as run.sh does.
fail_pct=${BENCH_LEASES_FAIL_PCT:-1}
problems=()
declare -A mark=() # "t cN" -> "!" when a run of it had failed requests
# shellcheck disable=SC2086 # procs[] are word lists
run_wrk() { # run_wrk T CONNS SECS WHEN: adds its figures to v
  local t=$1 c=$2 th=1 line fails req
  [ "$c" = 1 ] || th=2
  BENCH_AUTH=${auth[$t]} wrk -t"$th" -c"$c" -d"$3s" --latency -s "$here/bench.lua" \
    "${url[$t]}/v1/chat/completions" >"$tmp/wrk.log" 2>&1 ||
    { cat "$tmp/wrk.log" >&2; alive ${procs[$t]}; die "wrk failed against $t"; }
  alive ${procs[$t]} # a crash under load is a failure, not a number
  line=$(grep '^WRK ' "$tmp/wrk.log") || { cat "$tmp/wrk.log" >&2; die "no result from wrk ($t)"; }
  fails=$(( $(field non2xx "$line") + $(field connect "$line") + $(field read "$line") +
            $(field write "$line") + $(field timeout "$line") ))
  req=$(field requests "$line")
  if [ "$fails" != 0 ]; then
    if awk -v f="$fails" -v n="$req" -v p="$fail_pct" 'BEGIN { exit !(f * 100 > n * p) }'; then
      failed_why "$t"
      die "$t (${name[$t]}) at c=$c ($4): $fails of $req requests not answered 200" \
          "(over $fail_pct%): $line"
    fi
    problems+=("$t at c=$c ($4): $fails of $req requests not answered 200")
    [ "$4" = warm-up ] || mark[$t c$c]='!'
  fi
  [ "$4" = warm-up ] ||
    say "  $t c=$c: p50 $(field p50_us "$line") p99 $(field p99_us "$line") µs," \
        "$(field rps "$line") req/s, $fails failed"
  v["$t c$c p50"]="${v["$t c$c p50"]:-} $(field p50_us "$line")"
  v["$t c$c p99"]="${v["$t c$c p99"]:-} $(field p99_us "$line")"
  v["$t c$c rps"]="${v["$t c$c rps"]:-} $(field rps "$line")"
}

say "warming up"
for t in m a b c d; do run_wrk "$t" 4 2 warm-up; done
v=()
rot() { # rot N WORDS...: the words rotated left N times
  local n=$1
  shift
  local w=("$@") i
  for ((i = 0; i < ${#w[@]}; i++)); do echo -n "${w[(i + n) % ${#w[@]}]} "; done
}
for r in $(seq "$rounds"); do
  say "round $r/$rounds: c=1 ${lat_secs}s ($(rot $((r - 1)) m a b c d)), c=$conc ${thr_secs}s ($(rot $((r - 1)) a b c d))"
  for t in $(rot $((r - 1)) m a b c d); do run_wrk "$t" 1 "$lat_secs" "round $r"; done
  for t in $(rot $((r - 1)) a b c d); do run_wrk "$t" "$conc" "$thr_secs" "round $r"; done
done

# The sidecar must have admitted against leases, or (b) measured nothing.
metrics=$(curl -sf "http://127.0.0.1:$admin_sc/metrics") ||
  die "the sidecar's admin API did not answer /metrics"
metric() { sed -n "s/^tollgate_upstream_$1 \([0-9.]*\)$/\1/p" <<<"$metrics"; }
granted=$(metric leases_granted_total)
[ "${granted:-0}" -gt 0 ] ||
  { grep -i lease "$tmp/sidecar.log" | tail -n 10 >&2
    die "the sidecar admitted without a lease (tollgate_upstream_leases_granted_total ${granted:-absent})"; }

# shellcheck disable=SC2086 # v[] are lists of numbers
med() { median ${v["$1"]}; }
f0() { awk -v x="$1" 'BEGIN { printf "%.0f", x }'; }
# (d) must have waited for its standby, or it measured nothing more than c.
held=$(curl -sf "http://127.0.0.1:$admin_d/metrics" | sed -n 's/^tollgate_ha_held_total \([0-9]*\)$/\1/p')
[ "${held:-0}" -gt 0 ] || die "the active PDP of (d) held no reply for its standby"
declare -A add=()
for t in a b c d; do
  for p in p50 p99; do add[$t $p]=$(calc "$(med "$t c1 $p") - $(med "m c1 $p")"); done
done
row() { printf '  %-34s %8s %8s %9s %9s %11s %8s\n' "$@"; }
{
  echo
  echo '```'
  echo "Sidecar PDP (leases) against a local PDP and a central PDP," \
       "$(date -u '+%Y-%m-%d %H:%M UTC'), nproc=$(nproc)"
  echo "load average at start $load_start, at end $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "wrk + bench.lua (~1 KB prompt, non-streaming), loopback, mock provider;" \
       "medians of $rounds rounds taking turns"
  echo "c=1: wrk -t1 -c1 ${lat_secs}s; c=$conc: wrk -t2 -c$conc ${thr_secs}s; µs;" \
       "added = over m"
  row "" "c=1 p50" "p99" "added p50" "added p99" "c=$conc req/s" "p99"
  row "m ${name[m]}" "$(f0 "$(med "m c1 p50")")" "$(f0 "$(med "m c1 p99")")${mark[m c1]:-}"
  for t in a b c d; do
    row "$t ${name[$t]}" "$(f0 "$(med "$t c1 p50")")" "$(f0 "$(med "$t c1 p99")")${mark[$t c1]:-}" \
      "$(f0 "${add[$t p50]}")" "$(f0 "${add[$t p99]}")" \
      "$(f0 "$(med "$t c$conc rps")")${mark[$t c$conc]:-}" "$(f0 "$(med "$t c$conc p99")")"
  done
  for tr in b/a c/a d/a d/c; do
    t=${tr%/*} r=${tr#*/}
    row "ratio $tr" "" "" "$(ratio "${add[$t p50]}" "${add[$r p50]}")" \
      "$(ratio "${add[$t p99]}" "${add[$r p99]}")" \
      "$(ratio "$(med "$t c$conc rps")" "$(med "$r c$conc rps")")" \
      "$(ratio "$(med "$t c$conc p99")" "$(med "$r c$conc p99")")"
  done
  echo "  standby: $held replies of (d) waited for it"
  echo "  sidecar: $granted leases granted, $(metric leases_refused_total) refused;" \
       "$(metric call_failures_total) calls to the central PDP unanswered;" \
       "$(metric unreachable_denied_total) decisions denied for it"
  echo '```'
  if [ ${#problems[@]} -gt 0 ]; then
    echo
    echo "Noticed while measuring (\"!\" above: a round with failed requests):"
    for p in "${problems[@]}"; do echo "  - $p"; done
    for t in a b c d; do
      awk -v t="$t" '/ (warn|error|fatal) / { sub(/^[^ ]+ /, ""); gsub(/req_[0-9a-f]+/, "req_*");
          c[$0]++ } END { for (l in c) printf "  - data plane %s: %d x %s\n", t, c[l], l }' \
        "$tmp/dp_$t.log"
    done
  fi
}
