#!/usr/bin/env bash
# run.sh - Tollgate's benchmark against its performance targets: every
# figure is a ratio to a reference measured in the same run, on loopback,
# against the mock provider:
#   A  wrk -> mock                  (no proxy: what the others add is measured from it)
#   B  wrk -> nginx proxy_pass -> mock   (the reference proxy)
#   F  wrk -> tollgate-bench-floor -> mock: a forwarder made of the data
#      plane's two libraries (libmicrohttpd, libcurl) and nothing else, a
#      thread per connection with blocking transfers: the simplest pairing
#      of them, to tell what the libraries cost from what Tollgate adds
#   D  wrk -> Tollgate data plane (+ PDP over ipc) -> mock, governance off
#      (no bundle: every request allowed, no budget, no rate limit)
#   G  wrk -> Tollgate with governance on: a second data plane + PDP whose
#      bundle is tests/bench/governed (the 20 rules of policy-20 with the
#      per-key rate limit and the monthly tenant budget of budget-rate, and
#      guardrails: PII redacted, secrets blocked, injection recorded), every
#      request checked and reserved against both, scanned, and settled
#   P  wrk -> the Portkey gateway (npm @portkey-ai/gateway, node) -> mock,
#      side by side with G at 32 connections; skipped, never failed, when
#      it cannot be installed or does not answer
# Latency at concurrency 1 (A, B, F, D, G), throughput with p99 < 10 ms (B,
# F, D, G), CPU time per request (user+sys of nginx, of the floor, of each
# data plane + its PDP, of Portkey's node), the PDP ipc round trip against a raw Unix-socket
# ping-pong, policy evaluation alone (20-rule bundle against an empty one),
# decisions with a budget and a rate limit in effect (in process against an
# allow-only bundle; over ipc with 8 requests in flight against Ping),
# settled usage records per second, data-plane RSS, and streaming (SSE)
# chat completions through D against the same streams straight to the
# mock: added time to first token, added cost per chunk, 1,000 streams held
# at once without a stall. Prints a summary block for the README at the end.
#
#   tests/bench/run.sh            (about 5 minutes after the build)
#
# Builds into build/release, installs wrk and nginx-light if missing, and
# Portkey with npm into ${XDG_CACHE_HOME:-~/.cache}/tollgate-bench/portkey
# (tests/bench/portkey.sh). Stops everything it started on exit, Ctrl-C
# included. A benchmark, not a test: it fails only when something does not
# work (a target does not answer a first request with 200, over 1% of
# requests fail at concurrency 1, a process dies), never because a number
# is bad; rarer failures are listed under the summary.
# Knobs (environment): BENCH_LAT_SECS (10 per target, in BENCH_LAT_ROUNDS
# rounds: 5), BENCH_STEP_SECS (5), BENCH_STEPS ("1 2 4 8 16 32 64"),
# BENCH_PORTKEY (1; 0 skips P), BENCH_PORTKEY_ROUNDS (3 rounds of P and G
# at c=32, BENCH_STEP_SECS each), BENCH_PORTKEY_VERSION (1.15.2) and
# BENCH_PORTKEY_DIR (where it is installed; tests/bench/portkey.sh),
# BENCH_IPC_N (20000), BENCH_LIMITS_IPC_N (5000), BENCH_CONC (8),
# BENCH_CONC_SECS (3 per kind), BENCH_STREAM_N (1000), BENCH_STREAM_CHUNKS
# (2000), BENCH_STREAM_ROUNDS (21), BENCH_STREAM_CONC (1000; 0 skips it),
# BENCH_STREAM_CONC_CHUNKS (50), BENCH_STREAM_DELAY_MS (100),
# BENCH_STREAM_CONC_REF (1: the same concurrent streams to the mock too),
# BENCH_NO_BUILD=1 (use build/release as it is), BENCH_KEEP=1 (keep the
# temporary directory with every log).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
build=$top/build/release
bin=$build/bin

lat_secs=${BENCH_LAT_SECS:-10}
step_secs=${BENCH_STEP_SECS:-5}
steps=${BENCH_STEPS:-"1 2 4 8 16 32 64"}
ipc_n=${BENCH_IPC_N:-20000}
limits_ipc_n=${BENCH_LIMITS_IPC_N:-5000}
conc=${BENCH_CONC:-8}
conc_secs=${BENCH_CONC_SECS:-3}
stream_n=${BENCH_STREAM_N:-1000}
stream_chunks=${BENCH_STREAM_CHUNKS:-2000}
stream_rounds=${BENCH_STREAM_ROUNDS:-21}
stream_conc=${BENCH_STREAM_CONC:-1000}
stream_conc_chunks=${BENCH_STREAM_CONC_CHUNKS:-50}
stream_delay_ms=${BENCH_STREAM_DELAY_MS:-100}
stream_conc_ref=${BENCH_STREAM_CONC_REF:-1}
portkey=${BENCH_PORTKEY:-1}
portkey_rounds=${BENCH_PORTKEY_ROUNDS:-3}
portkey_conc=32
stream_stall_x=5
p99_limit_us=10000

# shellcheck source=tests/bench/lib.sh
. "$here/lib.sh"


# ---- prerequisites and build ---------------------------------------------

need_pkgs=()
command -v wrk >/dev/null 2>&1 || need_pkgs+=(wrk)
nginx_bin=$(command -v nginx 2>/dev/null || true)
[ -n "$nginx_bin" ] || { [ -x /usr/sbin/nginx ] && nginx_bin=/usr/sbin/nginx; } ||
  need_pkgs+=(nginx-light)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  say "installing ${need_pkgs[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
    "${need_pkgs[@]}" >/dev/null
  nginx_bin=$(command -v nginx 2>/dev/null || echo /usr/sbin/nginx)
fi
[ -x "$nginx_bin" ] || die "nginx is not installed (apt-get install nginx-light)"

if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
  say "building into $build"
  "$top/deploy/local/setup.sh" "$build" -DTG_SANITIZER=
fi
for b in tollgate-mock-llm tollgate-pdp tollgate-dataplane tollgate-bench-ipc \
         tollgate-bench-policy tollgate-bench-decide tollgate-bench-stream \
         tollgate-bench-guard tollgate-bench-floor; do
  [ -x "$bin/$b" ] || die "$bin/$b is missing; did the build fail?"
done

# ---- processes ------------------------------------------------------------

tmp=$(mktemp -d /tmp/tollgate-bench.XXXXXX)
declare -A pids=()   # name -> pid of what we started
sampler=""
ok=0


cleanup() {
  trap - EXIT INT TERM
  [ -z "$sampler" ] || stop_pid "$sampler"
  for n in portkey dataplane dataplane_g floor nginx pdp pdp_g pdp_limits mock; do
    [ -z "${pids[$n]:-}" ] || stop_pid "${pids[$n]}"
  done
  if [ "$ok" = 1 ] && [ "${BENCH_KEEP:-0}" != 1 ]; then
    rm -rf "$tmp"
  else
    say "logs kept in $tmp"
  fi
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT TERM

alive() { # alive NAME: die with its log tail if it exited
  local n=$1
  kill -0 "${pids[$n]}" 2>/dev/null && return 0
  tail -n 20 "$tmp/$n.log" >&2 || true
  die "$n (pid ${pids[$n]}) exited; log above ($tmp/$n.log)"
}


wait_http() { # wait_http NAME URL: up to 10 s for a 200
  for _ in $(seq 100); do
    curl -sf -o /dev/null "$2" && return 0
    alive "$1"
    sleep 0.1
  done
  die "$1 did not answer $2 within 10 s (log: $tmp/$1.log)"
}


mock_key=bench-mock-key
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
if awk -v l="${load_start%% *}" -v n="$(nproc)" 'BEGIN { exit !(l > n / 2) }'; then
  say "warning: load average ${load_start%% *} on $(nproc) cores before" \
      "starting; something else is busy and the figures will be noisy"
fi
export TOLLGATE_MOCK_KEY=$mock_key

# File descriptors for the concurrent streams: the data plane holds two per
# stream (client and upstream), the mock one per stream (its threads), the
# tool one; everything started from here inherits the limit.
want_fds=$(( stream_conc * 2 + 1024 ))
[ "$want_fds" -ge 8192 ] || want_fds=8192
hard_fds=$(ulimit -Hn)
[ "$hard_fds" = unlimited ] || [ "$hard_fds" -ge "$want_fds" ] ||
  want_fds=$hard_fds
ulimit -n "$want_fds" 2>/dev/null || say "warning: cannot raise ulimit -n to $want_fds"
if [ "$stream_conc" -gt $(( ($(ulimit -n) - 1024) / 2 )) ]; then
  stream_conc=$(( ($(ulimit -n) - 1024) / 2 ))
  [ "$stream_conc" -gt 0 ] || stream_conc=0
  say "warning: ulimit -n is $(ulimit -n) (hard $hard_fds): holding" \
      "$stream_conc concurrent streams"
fi
# The data plane's default max_connections (4096) holds 1,000 streams; more
# need a higher one.
# All load comes from 127.0.0.1: lift the per-address limit to the total.
dp_max_conn=",
    \"max_connections_per_ip\": 1000000"
[ "$stream_conc" -le 4000 ] ||
  dp_max_conn="$dp_max_conn,
    \"max_connections\": $(( stream_conc + 1024 ))"

# The mock picks a free port itself and says which.
: >"$tmp/mock.log"
"$bin/tollgate-mock-llm" --port 0 --api-key "$mock_key" >"$tmp/mock.log" 2>&1 &
pids[mock]=$!
mock_port=""
for _ in $(seq 100); do
  mock_port=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' \
                "$tmp/mock.log" 2>/dev/null) || true
  [ -n "$mock_port" ] && break
  alive mock
  sleep 0.1
done
[ -n "$mock_port" ] || die "the mock did not report its port ($tmp/mock.log)"
wait_http mock "http://127.0.0.1:$mock_port/healthz"

nginx_port=$(free_port) || die "no free port found"
dp_port=$(free_port "$nginx_port") || die "no free port found"

mkdir -p "$tmp/nginx"
nginx_user=""
[ "$(id -u)" -ne 0 ] || nginx_user="user root;"
# One worker per core, like the data plane's default; no access log (the
# data plane writes none per request); long-lived client and upstream
# keep-alive so neither side pays for reconnects.
cat >"$tmp/nginx/nginx.conf" <<EOF
$nginx_user
daemon off;
master_process on;
worker_processes auto;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $tmp/nginx/body;
  proxy_temp_path $tmp/nginx/proxy;
  fastcgi_temp_path $tmp/nginx/fastcgi;
  uwsgi_temp_path $tmp/nginx/uwsgi;
  scgi_temp_path $tmp/nginx/scgi;
  keepalive_requests 1000000;
  keepalive_timeout 75s;
  upstream mock {
    server 127.0.0.1:$mock_port;
    keepalive 64;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:$nginx_port;
    location / {
      proxy_pass http://mock;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering on;
    }
  }
}
EOF
"$nginx_bin" -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" -e "$tmp/nginx/error.log" \
  >"$tmp/nginx.log" 2>&1 &
pids[nginx]=$!
wait_http nginx "http://127.0.0.1:$nginx_port/healthz"

# F, the floor: it forwards every request to the mock's chat completions.
f_port=$(free_port "$nginx_port" "$dp_port") || die "no free port found"
"$bin/tollgate-bench-floor" conn "$f_port" \
  "http://127.0.0.1:$mock_port/v1/chat/completions" >"$tmp/floor.log" 2>&1 &
pids[floor]=$!
for _ in $(seq 100); do ! port_free "$f_port" && break; alive floor; sleep 0.1; done

# Price usage like a real deployment when the repository's table is there.
pricing=""
[ ! -f "$top/policies/pricing.json" ] ||
  pricing=",
    \"pricing_file\": \"$top/policies/pricing.json\""
cat >"$tmp/tollgate.json" <<EOF
{
  "pdp": {
    "listen": ["ipc://$tmp/pdp.sock"],
    "state_dir": "pdp-state"$pricing
  },
  "dataplane": {
    "listen": "127.0.0.1:$dp_port",
    "pdp_url": "ipc://$tmp/pdp.sock",
    "spool_dir": "spool"$dp_max_conn
  },
  "deployments": [
    {
      "id": "mock-gpt-4o-mini",
      "model": "gpt-4o-mini",
      "provider": "openai",
      "api_base": "http://127.0.0.1:$mock_port/v1",
      "api_key": "\${TOLLGATE_MOCK_KEY}"
    }
  ]
}
EOF
cfg=$tmp/tollgate.json
"$bin/tollgate-pdp" serve --config "$cfg" >"$tmp/pdp.log" 2>&1 &
pids[pdp]=$!
"$bin/tollgate-dataplane" --config "$cfg" >"$tmp/dataplane.log" 2>&1 &
pids[dataplane]=$!
wait_http dataplane "http://127.0.0.1:$dp_port/readyz"
alive pdp

new_key() { # new_key CONFIG NAME [OPTION...]: a new key of tenant bench
  local k
  # keys create prints pretty or compact JSON; take "key" either way.
  k=$("$bin/tollgate-pdp" keys create --config "$1" --tenant bench \
        --name "$2" "${@:3}" --format json 2>"$tmp/keys.log" |
      tr -d ' \t\r\n' | sed -n 's/.*"key":"\([^"]*\)".*/\1/p') || true
  [ -n "$k" ] || { cat "$tmp/keys.log" >&2; die "tollgate-pdp keys create ($1) gave no key"; }
  echo "$k"
}
"$bin/tollgate-pdp" tenants set --config "$cfg" bench >/dev/null
key=$(new_key "$cfg" "tests/bench")

# G: a second data plane + PDP with governance on, in their own state,
# socket and spool, serving tests/bench/governed. Its deployments are the
# bundle's catalog.json (every deployment its route rules name), pointed at
# this run's mock; the file's first line is "{" so that its deployments
# follow this config's opening lines.
g_port=$(free_port "$nginx_port" "$dp_port" "$f_port") || die "no free port found"
gcfg=$tmp/governed.json
[ "$(head -n 1 "$here/governed/catalog.json")" = "{" ] ||
  die "tests/bench/governed/catalog.json must start with a line holding only {"
{
  cat <<EOF
{
  "pdp": {
    "listen": ["ipc://$tmp/pdp-governed.sock"],
    "state_dir": "pdp-governed-state",
    "bundle": "$here/governed"$pricing
  },
  "dataplane": {
    "listen": "127.0.0.1:$g_port",
    "pdp_url": "ipc://$tmp/pdp-governed.sock",
    "spool_dir": "spool-governed"$dp_max_conn
  },
EOF
  sed -e 1d -e "s|127\.0\.0\.1:9090|127.0.0.1:$mock_port|g" \
    "$here/governed/catalog.json"
} >"$gcfg"
# The bundle's own tests against this config: its route rules meet the
# deployments they will pick from.
"$bin/tollgate-pdp" test "$here/governed" --config "$gcfg" \
  >"$tmp/governed-test.log" 2>&1 ||
  { cat "$tmp/governed-test.log" >&2; die "tests/bench/governed fails its tests against $gcfg"; }
"$bin/tollgate-pdp" serve --config "$gcfg" >"$tmp/pdp_g.log" 2>&1 &
pids[pdp_g]=$!
"$bin/tollgate-dataplane" --config "$gcfg" >"$tmp/dataplane_g.log" 2>&1 &
pids[dataplane_g]=$!
wait_http dataplane_g "http://127.0.0.1:$g_port/readyz"
alive pdp_g
# An enterprise tenant in the EU: its requests meet the enterprise and EU
# route rules, and need a project (x-tollgate-meta-project, which G's
# requests carry).
"$bin/tollgate-pdp" tenants set --config "$gcfg" bench --tier enterprise \
  --label region=eu >/dev/null
gkey=$(new_key "$gcfg" "tests/bench governed" --label team=platform)

sleep 0.5
rss_idle_kb=$(rss_kb "${pids[dataplane]}")

# ---- does every target work? -----------------------------------------------

A_url=http://127.0.0.1:$mock_port
B_url=http://127.0.0.1:$nginx_port
F_url=http://127.0.0.1:$f_port
D_url=http://127.0.0.1:$dp_port
G_url=http://127.0.0.1:$g_port
A_auth=$mock_key
B_auth=$mock_key
F_auth=$mock_key
D_auth=$key
G_auth=$gkey
A_name="mock direct"
B_name="nginx -> mock"
F_name="floor: microhttpd + curl -> mock"
D_name="tollgate -> mock"
G_name="tollgate governed -> mock"

target_headers() { # target_headers T: sets hdrs, T's extra request headers
                   # as curl and wrk both take them
  hdrs=()
  case $1 in
    G) hdrs=(-H "x-tollgate-meta-project: bench") ;;
    P) hdrs=(-H "x-portkey-provider: openai"
             -H "x-portkey-custom-host: http://127.0.0.1:$mock_port/v1") ;;
  esac
}
body='{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello"}]}'
check_target() { # check_target T: 0 when T answers a chat completion with
                 # 200, else 1 with check_err saying what it answered
  local url_var=${1}_url auth_var=${1}_auth code
  target_headers "$1"
  code=$(curl -s -o "$tmp/check-$1.json" -D "$tmp/check-$1.headers" \
           -w '%{http_code}' -H "Authorization: Bearer ${!auth_var}" \
           -H 'Content-Type: application/json' ${hdrs[@]+"${hdrs[@]}"} \
           -d "$body" "${!url_var}/v1/chat/completions") || code=000
  [ "$code" = 200 ] && grep -q '"chat.completion"' "$tmp/check-$1.json" &&
    return 0
  check_err="HTTP $code: $(head -c 300 "$tmp/check-$1.json" 2>/dev/null | tr -d '\n')"
  return 1
}
for t in A B F D G; do
  name_var=${t}_name
  check_target "$t" ||
    die "$t (${!name_var}) answered a chat completion with $check_err"
done
# G's answer carries the rate limit's headers only when key-rate applied.
grep -qi '^x-ratelimit-limit-requests: 100000000' "$tmp/check-G.headers" ||
  die "G answered without key-rate's x-ratelimit-limit-requests; is tests/bench/governed in force? ($tmp/check-G.headers)"
grep -q 'policy: bundle governed' "$tmp/pdp_g.log" ||
  die "G's PDP did not load tests/bench/governed ($tmp/pdp_g.log)"
# G's guardrails scan every request: a prompt holding a (made-up) AWS key
# must be blocked by bench-block-secrets.
code=$(curl -s -o "$tmp/check-G-secret.json" -w '%{http_code}' \
         -H "Authorization: Bearer $G_auth" -H 'Content-Type: application/json' \
         -H "x-tollgate-meta-project: bench" \
         -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"my key is AKIAQ7XLPR4MZKT2WB6N"}]}' \
         "$G_url/v1/chat/completions") || code=000
grep -q guardrail_blocked "$tmp/check-G-secret.json" ||
  die "G did not block a prompt with a secret (HTTP $code); are tests/bench/governed's guardrails in force? ($tmp/check-G-secret.json)"
say "targets A, B, F, D and G answer 200; measuring"

# ---- wrk -------------------------------------------------------------------

# run_wrk LOG TARGET THREADS CONNS SECS: sets w_rps w_p50 w_p99 w_req
# w_non2xx w_sockerr from bench.lua's done() line. Dies when wrk fails or
# the target exits, except for P (Portkey), where it returns 1.
# cpu_ticks B|D|G|P: user+sys clock ticks so far of what serves the target:
# B nginx (its master and workers), F the floor, D or G a data plane and its
# PDP, P node.
cpu_ticks() {
  local p ps
  case $1 in
    B) ps="${pids[nginx]} $(pgrep -P "${pids[nginx]}" | tr '\n' ' ')" ;;
    F) ps=${pids[floor]} ;;
    D) ps="${pids[dataplane]} ${pids[pdp]}" ;;
    G) ps="${pids[dataplane_g]} ${pids[pdp_g]}" ;;
    P) ps=${pids[portkey]} ;;
  esac
  for p in $ps; do cat "/proc/$p/stat" 2>/dev/null; done |
    awk '{ sub(/^.*\) /, ""); t += $12 + $13 } END { print t + 0 }'
}
# "T cN" -> ticks, requests over the runs; cpu_phase ("" or e.g. "pk ")
# before T keeps a section's figures apart
declare -A cpu_t=() cpu_n=()
cpu_phase=""
hz=$(getconf CLK_TCK)
run_wrk() {
  local log=$1 t=$2 th=$3 c=$4 secs=$5 url_var=${2}_url auth_var=${2}_auth
  local line t0=0 k
  [ "$t" = A ] || t0=$(cpu_ticks "$t")
  target_headers "$t"
  if ! BENCH_AUTH=${!auth_var} wrk -t"$th" -c"$c" -d"${secs}s" --latency \
         ${hdrs[@]+"${hdrs[@]}"} -s "$here/bench.lua" \
         "${!url_var}/v1/chat/completions" >"$log" 2>&1; then
    [ "$t" != P ] || return 1
    cat "$log" >&2; target_alive "$t"; die "wrk failed against $t"
  fi
  target_alive "$t" || return 1 # a crash under load is a failure, not a number
  line=$(grep '^WRK ' "$log" | tail -n 1) || true
  if [ -z "$line" ]; then
    [ "$t" != P ] || return 1
    cat "$log" >&2; die "wrk printed no result for $t"
  fi
  w_rps=$(field rps "$line")
  w_p50=$(field p50_us "$line")
  w_p99=$(field p99_us "$line")
  w_req=$(field requests "$line")
  w_non2xx=$(field non2xx "$line")
  w_sockerr=$(( $(field connect "$line") + $(field read "$line") +
                $(field write "$line") + $(field timeout "$line") ))
  w_errs="connect $(field connect "$line"), read $(field read "$line"),"
  w_errs="$w_errs write $(field write "$line"), timeout $(field timeout "$line")"
  if [ "$t" != A ]; then
    k="$cpu_phase$t c$c"
    cpu_t[$k]=$(( ${cpu_t[$k]:-0} + $(cpu_ticks "$t") - t0 ))
    cpu_n[$k]=$(( ${cpu_n[$k]:-0} + w_req ))
  fi
  run_fail[$t]=$(( ${run_fail[$t]:-0} + w_non2xx + w_sockerr ))
  run_total[$t]=$(( ${run_total[$t]:-0} + w_req ))
}
target_alive() { # target_alive T: die naming a process that exited; for P
                 # (Portkey) return 1 instead
  alive mock
  case $1 in
    B) alive nginx ;;
    F) alive floor ;;
    D) alive dataplane; alive pdp ;;
    G) alive dataplane_g; alive pdp_g ;;
    P) kill -0 "${pids[portkey]}" 2>/dev/null ;;
  esac
}
problems=()
declare -A run_fail=() run_total=() # T -> failed, all requests in the run


# Warm every path (connections, caches, the PDP's LMDB pages).
for t in A B F D G; do run_wrk "$tmp/warm-$t.log" "$t" 1 4 2; done

# 1. latency at concurrency 1: A, B, F, D and G take turns in short rounds, so a
# burst of noise from the rest of the machine hits them alike; each figure
# is the median over the rounds.
lat_rounds=${BENCH_LAT_ROUNDS:-5}
round_secs=$(( lat_secs / lat_rounds )); [ "$round_secs" -ge 1 ] || round_secs=1
declare -A l50=() l99=() lreq=() lfail=()
say "latency c=1: $lat_rounds rounds of ${round_secs}s for each of A, B, F, D, G"
for r in $(seq "$lat_rounds"); do
  for t in A B F D G; do
    run_wrk "$tmp/lat-$t-$r.log" "$t" 1 1 "$round_secs"
    l50[$t]="${l50[$t]:-} $w_p50" l99[$t]="${l99[$t]:-} $w_p99"
    lreq[$t]=$(( ${lreq[$t]:-0} + w_req ))
    lfail[$t]=$(( ${lfail[$t]:-0} + w_non2xx + w_sockerr ))
  done
done
for t in A B F D G; do
  # A rare failure is a finding to report; many mean it does not work.
  if [ $(( lfail[$t] * 100 )) -gt "${lreq[$t]}" ]; then
    cat "$tmp/lat-$t-$lat_rounds.log" >&2
    die "$t failed ${lfail[$t]} of ${lreq[$t]} requests at c=1 (over 1%)"
  elif [ "${lfail[$t]}" != 0 ]; then
    problems+=("latency, $t at c=1: ${lfail[$t]} of ${lreq[$t]} requests failed (non-2xx or socket errors)")
  fi
  printf -v "${t}_p50" %s "$(median ${l50[$t]})"
  printf -v "${t}_p99" %s "$(median ${l99[$t]})"
  say "latency c=1 $t: p50 ${l50[$t]# } us; p99 ${l99[$t]# } us"
done
add_B50=$(calc "$B_p50 - $A_p50"); add_B99=$(calc "$B_p99 - $A_p99")
add_F50=$(calc "$F_p50 - $A_p50"); add_F99=$(calc "$F_p99 - $A_p99")
add_D50=$(calc "$D_p50 - $A_p50"); add_D99=$(calc "$D_p99 - $A_p99")
add_G50=$(calc "$G_p50 - $A_p50"); add_G99=$(calc "$G_p99 - $A_p99")
lat_r50=$(ratio "$add_D50" "$add_B50")
lat_r99=$(ratio "$add_D99" "$add_B99")
lat_g50=$(ratio "$add_G50" "$add_B50")
lat_g99=$(ratio "$add_G99" "$add_B99")

# 2. throughput with p99 under 10 ms, stepping the connection count; B, F,
# D and G take turns at each step. A step with a failed request does not
# count. Every step runs: on a noisy box one bad step says little about the
# next.
rss_peak_kb=0 rss_top_kb=0 top_c=0
declare -A best_rps=([B]=0 [F]=0 [D]=0 [G]=0) best_c=([B]=0 [F]=0 [D]=0 [G]=0)
declare -A best_p99=([B]=0 [F]=0 [D]=0 [G]=0)
declare -A s_rps=() s_p99=() s_fail=()
for c in $steps; do
  th=2; [ "$c" -ge 2 ] || th=1
  for t in B F D G; do
    if [ "$t" = D ]; then
      (while :; do rss_kb "${pids[dataplane]}"; sleep 0.2; done) \
        >"$tmp/rss-c$c.txt" 2>/dev/null &
      sampler=$!
    fi
    run_wrk "$tmp/thr-$t-c$c.log" "$t" "$th" "$c" "$step_secs"
    if [ "$t" = D ]; then
      stop_pid "$sampler"; sampler=""
      step_rss=$(sort -n "$tmp/rss-c$c.txt" | tail -n 1)
      step_rss=${step_rss:-0}
      [ "$step_rss" -le "$rss_peak_kb" ] || rss_peak_kb=$step_rss
      rss_top_kb=$step_rss top_c=$c
    fi
    s_rps[$t,$c]=$w_rps s_p99[$t,$c]=$w_p99
    s_fail[$t,$c]=$(( w_non2xx + w_sockerr ))
    note=""
    if [ "$w_non2xx" != 0 ] || [ "$w_sockerr" != 0 ]; then
      note=" ($w_non2xx non-2xx, $w_sockerr socket errors: step not counted)"
      problems+=("throughput, $t at c=$c: $w_non2xx non-2xx, $w_sockerr socket errors ($w_errs) of $w_req requests")
    fi
    say "throughput $t c=$c: $w_rps req/s p99 ${w_p99} us$note"
    if [ -z "$note" ] &&
       awk -v p="$w_p99" -v l="$p99_limit_us" -v r="$w_rps" \
           -v b="${best_rps[$t]}" 'BEGIN { exit !(p < l && r > b) }'; then
      best_rps[$t]=$w_rps best_c[$t]=$c best_p99[$t]=$w_p99
    fi
  done
done
for t in B F D G; do
  printf -v "${t}_best_rps" %s "${best_rps[$t]}"
  printf -v "${t}_best_c" %s "${best_c[$t]}"
  printf -v "${t}_best_p99" %s "${best_p99[$t]}"
done
thr_f_ratio=$(ratio "$F_best_rps" "$B_best_rps")
thr_ratio=$(ratio "$D_best_rps" "$B_best_rps")
thr_g_ratio=$(ratio "$G_best_rps" "$B_best_rps")
sleep 1
rss_after_kb=$(rss_kb "${pids[dataplane]}")

# 2b. Portkey side by side: the same request through the Portkey gateway
# (node) to the mock, P, G and F taking turns at 32 connections; each figure is
# the median over the rounds. Portkey is a comparison, not a target: when it
# cannot be installed, does not start or does not answer, the summary says
# why and the run goes on. It listens on every interface (it has no option
# for the address), for the minute it runs.
p_skip="" p_version=""
declare -A p_rps=() p_p99=()
portkey_start() { # portkey_start: 0 once Portkey answers, else 1 with p_skip
  local js
  if ! js=$("$here/portkey.sh" 2>"$tmp/portkey-install.log"); then
    p_skip=$(tail -n 1 "$tmp/portkey-install.log")
    return 1
  fi
  p_version=$(sed -n 's/^  "version": "\(.*\)",$/\1/p' "${js%/build/*}/package.json")
  p_port=$(free_port "$nginx_port" "$dp_port" "$g_port" "$f_port") ||
    { p_skip="no free port found"; return 1; }
  P_url=http://127.0.0.1:$p_port P_auth=$mock_key P_name="portkey -> mock"
  say "Portkey $p_version: node $js --port=$p_port --headless"
  node "$js" --port="$p_port" --headless >"$tmp/portkey.log" 2>&1 &
  pids[portkey]=$!
  for _ in $(seq 150); do # node takes a few seconds: up to 30 s
    check_target P && return 0
    kill -0 "${pids[portkey]}" 2>/dev/null ||
      { p_skip="node exited ($tmp/portkey.log: $(tail -n 1 "$tmp/portkey.log"))"; return 1; }
    sleep 0.2
  done
  p_skip="no 200 to a chat completion within 30 s ($check_err)"
  return 1
}
if [ "$portkey" = 0 ]; then
  p_skip="BENCH_PORTKEY=0"
elif portkey_start; then
  say "Portkey against G: $portkey_rounds rounds of ${step_secs}s each at" \
      "c=$portkey_conc"
  cpu_phase="pk "
  run_wrk "$tmp/warm-P.log" P 2 "$portkey_conc" 2 ||
    p_skip="wrk against Portkey failed ($tmp/warm-P.log)"
  for r in $(seq "$portkey_rounds"); do
    [ -z "$p_skip" ] || break
    for t in P G F; do
      if ! run_wrk "$tmp/portkey-$t-$r.log" "$t" 2 "$portkey_conc" "$step_secs"; then
        p_skip="wrk against Portkey failed or node exited ($tmp/portkey-$t-$r.log)"
        break
      fi
      p_rps[$t]="${p_rps[$t]:-} $w_rps" p_p99[$t]="${p_p99[$t]:-} $w_p99"
      [ "$w_non2xx" = 0 ] && [ "$w_sockerr" = 0 ] ||
        problems+=("Portkey side by side, $t at c=$portkey_conc: $w_non2xx non-2xx, $w_sockerr socket errors ($w_errs) of $w_req requests")
      say "Portkey side by side $t c=$portkey_conc: $w_rps req/s p99 ${w_p99} us"
    done
  done
  cpu_phase=""
fi
if [ -n "${pids[portkey]:-}" ]; then
  stop_pid "${pids[portkey]}"; unset 'pids[portkey]'
fi
[ -z "$p_skip" ] || say "Portkey skipped: $p_skip"

# 2c. G's limits read back once its load is settled: the rate limit's
# x-ratelimit-remaining-requests says how many requests key-rate counted in
# the last minute; a request whose worst case (max_tokens 1,000,000,000,
# the most the data plane takes, at $0.60 per 1M: $600) is over
# tenant-monthly's $500 is refused naming what the budget has settled;
# tollgate-pdp spend sums the usage records.
sleep 1
target_headers G
curl -s -o "$tmp/probe-rate.json" -D "$tmp/probe-rate.headers" \
  -H "Authorization: Bearer $gkey" -H 'Content-Type: application/json' \
  "${hdrs[@]}" -d "$body" "$G_url/v1/chat/completions" || true
g_rate=$(sed -n 's/^x-ratelimit-remaining-requests: \([0-9]*\).*/\1/Ip' \
           "$tmp/probe-rate.headers")
g_rate=${g_rate:+$(( 100000000 - g_rate ))}
curl -s -o "$tmp/probe-budget.json" -H "Authorization: Bearer $gkey" \
  -H 'Content-Type: application/json' "${hdrs[@]}" \
  -d '{"model":"gpt-4o-mini","max_tokens":1000000000,"messages":[{"role":"user","content":"Hello"}]}' \
  "$G_url/v1/chat/completions" || true
g_budget=$(sed -n 's/.*rule tenant-monthly.*spent \$\([0-9.]*\),.*/\1/p' \
             "$tmp/probe-budget.json")
"$bin/tollgate-pdp" spend --config "$gcfg" --format json >"$tmp/spend-g.json" 2>&1 || true
g_spend=$(tr -d ' \n' <"$tmp/spend-g.json" |
          sed -n 's/.*"total":{"requests":\([0-9]*\),.*"cost_usd":"\([0-9.]*\)".*/\1 requests, $\2/p')
if [ -z "$g_rate" ] || [ -z "$g_budget" ]; then
  problems+=("G: the limits did not read back (rate: ${g_rate:-none}, budget: ${g_budget:-none}; $tmp/probe-rate.headers, $tmp/probe-budget.json)")
fi
g_charged="key-rate counted ${g_rate:-?} requests in the last minute;"
g_charged="$g_charged tenant-monthly settled \$${g_budget:-?} (spend: ${g_spend:-?})"

# 3. the PDP ipc round trip against a raw Unix-socket ping-pong
say "PDP ipc round trip: $ipc_n round trips each"
"$bin/tollgate-bench-ipc" -n "$ipc_n" --key "$key" "ipc://$tmp/pdp.sock" \
  >"$tmp/ipc.log" 2>&1 || { cat "$tmp/ipc.log" >&2; die "tollgate-bench-ipc failed"; }
cat "$tmp/ipc.log" >&2
ipc_get() { # ipc_get NAME FIELD
  awk -v n="$1" -v f="$2" '$1 == n { for (i = 2; i <= NF; i++) {
      split($i, kv, "="); if (kv[1] == f) print kv[2] } }' "$tmp/ipc.log"
}
alive dataplane; alive pdp; alive nginx; alive mock

# 3b. decisions with a budget and a rate limit in effect, over ipc: a second
# PDP (its own state) running tests/bench/budget-rate; Decide latency one at
# a time, then Ping, Decide and Usage with $conc requests in flight.
say "PDP with budget + rate limit over ipc: $limits_ipc_n round trips each," \
    "then ${conc_secs}s per kind with $conc in flight"
sed -e "s|\"ipc://$tmp/pdp.sock\"\]|\"ipc://$tmp/pdp-limits.sock\"]|" \
    -e "s|\"state_dir\": \"pdp-state\"|\"state_dir\": \"pdp-limits-state\", \"bundle\": \"$here/budget-rate\"|" \
    "$cfg" >"$tmp/limits.json"
"$bin/tollgate-pdp" serve --config "$tmp/limits.json" >"$tmp/pdp_limits.log" 2>&1 &
pids[pdp_limits]=$!
"$bin/tollgate-pdp" tenants set --config "$tmp/limits.json" bench >/dev/null
lkey=$("$bin/tollgate-pdp" keys create --config "$tmp/limits.json" \
         --tenant bench --name "tests/bench limits" --format json \
         2>"$tmp/lkeys.log" | tr -d ' \t\r\n' |
       sed -n 's/.*"key":"\([^"]*\)".*/\1/p') || true
[ -n "$lkey" ] || { cat "$tmp/lkeys.log" >&2; die "keys create for the limits PDP gave no key"; }
"$bin/tollgate-bench-ipc" -n "$limits_ipc_n" -w 1000 --key "$lkey" \
  --conc "$conc" --secs "$conc_secs" --usage "ipc://$tmp/pdp-limits.sock" \
  >"$tmp/ipc-limits.log" 2>&1 ||
  { cat "$tmp/ipc-limits.log" >&2; alive pdp_limits; die "tollgate-bench-ipc (limits) failed"; }
cat "$tmp/ipc-limits.log" >&2
alive pdp_limits
grep -q 'policy: bundle budget-rate' "$tmp/pdp_limits.log" ||
  die "the limits PDP did not load tests/bench/budget-rate ($tmp/pdp_limits.log)"
stop_pid "${pids[pdp_limits]}"; unset 'pids[pdp_limits]'
lim_get() { # lim_get NAME FIELD
  awk -v n="$1" -v f="$2" '$1 == n { for (i = 2; i <= NF; i++) {
      split($i, kv, "="); if (kv[1] == f) print kv[2] } }' "$tmp/ipc-limits.log"
}
lim_ratio() { # lim_ratio NAME FIELD: from a "ratio NAME f=v" line
  awk -v n="$1" -v f="$2" '$1 == "ratio" && $2 == n { for (i = 3; i <= NF; i++) {
      split($i, kv, "="); if (kv[1] == f) print kv[2] } }' "$tmp/ipc-limits.log"
}

# 4. policy evaluation alone, in process on one thread: the 20-rule bundle
# against an empty bundle in the same run
say "policy evaluation: tests/bench/policy-20 against an empty bundle"
"$bin/tollgate-bench-policy" --bundle "$top/tests/bench/policy-20" \
  --config "$top/policies/examples.config.json" >"$tmp/policy.log" 2>&1 ||
  { cat "$tmp/policy.log" >&2; die "tollgate-bench-policy failed"; }
cat "$tmp/policy.log" >&2
pol_get() { # pol_get NAME FIELD
  awk -v n="$1" -v f="$2" '$1 == n { for (i = 2; i <= NF; i++) {
      split($i, kv, "="); if (kv[1] == f) print kv[2] } }' "$tmp/policy.log"
}

# 4b. a full decision with the budget + rate limit (tests/bench/budget-rate)
# against an allow-only bundle, in process; settled usage records per second
# (grouped, 256 in flight) against one at a time.
say "decisions with limits in process; settled usage records per second"
"$bin/tollgate-bench-decide" --dir "$tmp" >"$tmp/decide.log" 2>&1 ||
  { cat "$tmp/decide.log" >&2; die "tollgate-bench-decide failed"; }
cat "$tmp/decide.log" >&2
dec_get() { # dec_get NAME FIELD
  awk -v n="$1" -v f="$2" '$1 == n { for (i = 2; i <= NF; i++) {
      split($i, kv, "="); if (kv[1] == f) print kv[2] } }' "$tmp/decide.log"
}
dec_ratio() { # dec_ratio NAME FIELD: from a "ratio NAME f=v" line
  awk -v n="$1" -v f="$2" '$1 == "ratio" && $2 == n { for (i = 3; i <= NF; i++) {
      split($i, kv, "="); if (kv[1] == f) print kv[2] } }' "$tmp/decide.log"
}

# 4c. guardrails in process: scan MB/s, the input guardrails on a 4 KB
# prompt and the output guardrails per streamed chunk, each beside a
# reference in the same run; the hold-back before an answer's first byte.
say "guardrails in process (every built-in detector)"
"$bin/tollgate-bench-guard" >"$tmp/guard.log" 2>&1 ||
  { cat "$tmp/guard.log" >&2; die "tollgate-bench-guard failed"; }
cat "$tmp/guard.log" >&2

# 5. streaming chat completions: the data plane against the mock directly
# (the reference), in one tool: time to first content event, cost per
# chunk, and $stream_conc streams held at once (gaps between events against
# the configured delay, completions, data-plane RSS).
say "streams: time to first token ($stream_n each), cost per chunk" \
    "($stream_chunks chunks, $stream_rounds rounds), $stream_conc at once"
stream_ref=()
[ "$stream_conc_ref" = 1 ] || stream_ref=(--no-conc-ref)
"$bin/tollgate-bench-stream" --url "$D_url" --key "$key" \
  --ref-url "$A_url" --ref-key "$mock_key" -n "$stream_n" \
  -w $(( stream_n / 10 )) --chunks "$stream_chunks" \
  --chunk-rounds "$stream_rounds" --conc "$stream_conc" \
  --conc-chunks "$stream_conc_chunks" --conc-delay-ms "$stream_delay_ms" \
  --stall-x "$stream_stall_x" --pid "${pids[dataplane]}" ${stream_ref[@]+"${stream_ref[@]}"} \
  >"$tmp/stream.log" 2>&1 ||
  { cat "$tmp/stream.log" >&2; alive dataplane; alive pdp; alive mock;
    die "tollgate-bench-stream failed"; }
cat "$tmp/stream.log" >&2
alive dataplane; alive pdp; alive mock
st_get() { # st_get NAME FIELD
  awk -v n="$1" -v f="$2" '$1 == n { for (i = 2; i <= NF; i++) {
      split($i, kv, "="); if (kv[1] == f) print kv[2] } }' "$tmp/stream.log"
}
st_ratio() { # st_ratio NAME FIELD: from a "ratio NAME f=v" line
  awk -v n="$1" -v f="$2" '$1 == "ratio" && $2 == n { for (i = 3; i <= NF; i++) {
      split($i, kv, "="); if (kv[1] == f) print kv[2] } }' "$tmp/stream.log"
}
if [ "$stream_conc" -gt 0 ]; then
  for t in tollgate direct; do
    [ -n "$(st_get "conc_$t" streams)" ] || continue
    st_done=$(st_get "conc_$t" completed) st_stalls=$(st_get "conc_$t" stalls)
    [ "$st_done" = "$stream_conc" ] ||
      problems+=("streams, $t: $st_done of $stream_conc concurrent streams completed with [DONE] ($(sed -n "s/^# conc_$t: //p" "$tmp/stream.log"))")
    [ "$st_stalls" = 0 ] ||
      problems+=("streams, $t: $st_stalls of $stream_conc concurrent streams stalled (a gap over ${stream_stall_x}x the ${stream_delay_ms} ms delay)")
  done
fi

# Anything the gateway logged at warn or worse while we measured, but for
# what this setup means to do (D's PDP serves no bundle).
expected='pricing_file is not set|pdp\.bundle is not set'
dp_warn=$(grep -ciE ' (warn|error|fatal) ' "$tmp/dataplane.log" || true)
pdp_warn=$(grep -viE "$expected" "$tmp/pdp.log" |
           grep -ciE ' (warn|error|fatal) ' || true)
lpdp_warn=$(grep -viE "$expected" "$tmp/pdp_limits.log" |
            grep -ciE ' (warn|error|fatal) ' || true)
gdp_warn=$(grep -ciE ' (warn|error|fatal) ' "$tmp/dataplane_g.log" || true)
gpdp_warn=$(grep -viE "$expected" "$tmp/pdp_g.log" |
            grep -ciE ' (warn|error|fatal) ' || true)

# ---- summary ---------------------------------------------------------------

# log_digest FILE NAME: its warn/error lines, counted, ids and times
# stripped, most frequent first (awk only: no SIGPIPE under pipefail).
log_digest() {
  awk -v x="$expected" '/ (warn|error|fatal) / && $0 !~ x {
      sub(/^[^ ]+ /, ""); gsub(/req_[0-9a-f]+/, "req_*"); c[$0]++ }
    END { for (l in c) printf "%d\t%s\n", c[l], l }' "$1" | sort -rn |
    awk -F '\t' -v n="$2" 'NR <= 5 { printf "    %s: %6d x %s\n", n, $1, $2 }'
}
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
f0() { [ -z "$1" ] || awk -v v="$1" 'BEGIN { printf "%.0f", v }'; }
row() { printf '  %-40s %8s %8s  %s\n' "$@"; }
ipc_ratio() { # ipc_ratio NAME p50|p99
  awk -v n="$1" -v f="$2" '$1 == "ratio" && $2 == n { for (i = 3; i <= NF; i++) {
      split($i, kv, "="); if (kv[1] == f) print kv[2] } }' "$tmp/ipc.log"
}
rss_growth=$(ratio "$rss_after_kb" "$rss_idle_kb")
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
{
  echo
  echo '```'
  echo "Tollgate benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), nproc=$(nproc), $(uname -sr)"
  echo "load average at start $load_start, at end $load_end"
  echo "loopback; mock provider; non-streaming chat completion, ~1 KB prompt"
  echo
  echo "Latency at concurrency 1: wrk -t1 -c1, median of $lat_rounds rounds of ${round_secs}s"
  row "" "p50 us" "p99 us"
  row "A mock direct" "$(f0 "$A_p50")" "$(f0 "$A_p99")"
  row "B nginx proxy_pass -> mock" "$(f0 "$B_p50")" "$(f0 "$B_p99")"
  row "F floor: microhttpd + curl -> mock" "$(f0 "$F_p50")" "$(f0 "$F_p99")"
  row "D tollgate (PDP decision) -> mock" "$(f0 "$D_p50")" "$(f0 "$D_p99")"
  row "G tollgate governed -> mock" "$(f0 "$G_p50")" "$(f0 "$G_p99")"
  row "added by nginx (B-A)" "$(f0 "$add_B50")" "$(f0 "$add_B99")"
  row "added by the floor (F-A)" "$(f0 "$add_F50")" "$(f0 "$add_F99")"
  row "added by tollgate (D-A)" "$(f0 "$add_D50")" "$(f0 "$add_D99")"
  row "added by tollgate governed (G-A)" "$(f0 "$add_G50")" "$(f0 "$add_G99")"
  row "ratio (F-A)/(B-A)" "$(ratio "$add_F50" "$add_B50")" "$(ratio "$add_F99" "$add_B99")" "(the two libraries alone)"
  row "ratio (D-A)/(B-A)" "$lat_r50" "$lat_r99" "target: p99 <= 3"
  row "ratio (G-A)/(B-A)" "$lat_g50" "$lat_g99" "target: p99 <= 3"
  echo
  echo "Throughput with p99 < 10 ms: wrk -t2, ${step_secs}s per step, connections $steps"
  for t in B F D G; do
    name_var=${t}_name best_var=${t}_best_rps c_var=${t}_best_c p_var=${t}_best_p99
    if [ "${!c_var}" = 0 ]; then
      printf '  %-40s %8s        no step had p99 < 10 ms and no failure\n' \
        "$t ${!name_var}" "none"
    else
      printf '  %-40s %8s req/s  at c=%s, p99 %s us\n' "$t ${!name_var}" \
        "$(f0 "${!best_var}")" "${!c_var}" "$(f0 "${!p_var}")"
    fi
  done
  printf '  %-40s %8s        (the two libraries alone)\n' "ratio F/B" "$thr_f_ratio"
  printf '  %-40s %8s        target: >= 0.50\n' "ratio D/B" "$thr_ratio"
  printf '  %-40s %8s        target: >= 0.50\n' "ratio G/B" "$thr_g_ratio"
  printf '  %-8s' "conns"; for c in $steps; do printf ' %7s' "$c"; done; echo
  for t in B F D G; do
    printf '  %-8s' "$t req/s"
    for c in $steps; do printf ' %7s' "$(f0 "${s_rps[$t,$c]:-}")"; done; echo
    printf '  %-8s' "$t p99 ms"
    for c in $steps; do
      v=${s_p99[$t,$c]:-}
      [ -z "$v" ] || v=$(awk -v v="$v" 'BEGIN { printf "%.1f", v / 1000 }')
      [ "${s_fail[$t,$c]:-0}" = 0 ] || v="$v!"
      printf ' %7s' "$v"
    done; echo
  done
  echo "  (!: some requests failed; such a step does not count)"
  cpu_us() { # cpu_us T C: CPU µs per request of T's processes at c=C
    [ "${cpu_n[$1 c$2]:-0}" -gt 0 ] || { echo n/a; return; }
    calc "${cpu_t[$1 c$2]} * 1000000 / $hz / ${cpu_n[$1 c$2]}" | xargs printf '%.0f'
  }
  top=${steps##* }
  echo "  CPU per request (user+sys, µs; B: nginx, F: the floor, D and G: data plane + PDP):"
  printf '  %-8s' ""; for t in B F D G; do printf ' %7s' "$t"; done; echo
  for c in 1 "$top"; do
    printf '  %-8s' "c=$c"; for t in B F D G; do printf ' %7s' "$(cpu_us "$t" "$c")"; done; echo
  done
  printf '  %-40s %8s\n' "ratio G/B at c=$top" "$(ratio "$(cpu_us G "$top")" "$(cpu_us B "$top")")"
  for t in D G; do
    [ "${run_fail[$t]:-0}" = 0 ] ||
      echo "  $t failed ${run_fail[$t]} of ${run_total[$t]} requests in the run (non-2xx or socket errors)"
  done
  echo "  G's limits after the load: $g_charged"
  echo
  if [ -n "$p_skip" ]; then
    echo "Portkey side by side: skipped: $p_skip"
  else
    echo "Portkey side by side (npm @portkey-ai/gateway $p_version, node $(node --version)):" \
         "wrk -t2 -c$portkey_conc, median of $portkey_rounds rounds of ${step_secs}s, P, G and F taking turns"
    printf '  %-40s %8s %8s %8s\n' "" "req/s" "p99 ms" "CPU us"
    for t in P G F; do
      name_var=${t}_name
      printf '  %-40s %8s %8s %8s\n' "$t ${!name_var}" "$(f0 "$(median "${p_rps[$t]}")")" \
        "$(awk -v v="$(median "${p_p99[$t]}")" 'BEGIN { printf "%.1f", v / 1000 }')" \
        "$(cpu_us "pk $t" "$portkey_conc")"
    done
    printf '  %-40s %8s        target: >= 30\n' "ratio G/P (req/s)" \
      "$(ratio "$(median "${p_rps[G]}")" "$(median "${p_rps[P]}")")"
    printf '  %-40s %8s        (the two libraries alone)\n' "ratio F/P (req/s)" \
      "$(ratio "$(median "${p_rps[F]}")" "$(median "${p_rps[P]}")")"
  fi
  echo
  echo "PDP round trip over ipc: $ipc_n round trips of each, one at a time"
  row "" "p50 us" "p99 us"
  row "raw AF_UNIX ping-pong, 64 B, two threads" "$(ipc_get raw_unix p50_us)" "$(ipc_get raw_unix p99_us)"
  row "nng req/rep echo over ipc, in-process" "$(ipc_get nng_echo p50_us)" "$(ipc_get nng_echo p99_us)"
  row "PDP Ping over nng ipc" "$(ipc_get pdp_ping p50_us)" "$(ipc_get pdp_ping p99_us)"
  row "PDP Decide over nng ipc (ALLOW)" "$(ipc_get pdp_decide p50_us)" "$(ipc_get pdp_decide p99_us)"
  row "ratio PDP Ping / raw" "$(ipc_ratio pdp_ping/raw_unix p50)" "$(ipc_ratio pdp_ping/raw_unix p99)" "target: <= 5"
  row "ratio PDP Decide / raw" "$(ipc_ratio pdp_decide/raw_unix p50)" "$(ipc_ratio pdp_decide/raw_unix p99)"
  row "ratio nng echo / raw" "$(ipc_ratio nng_echo/raw_unix p50)" "$(ipc_ratio nng_echo/raw_unix p99)" "(nng's own floor)"
  row "ratio nng ctx+aio / nng echo" "$(ipc_ratio nng_ctx/nng_echo p50)" "$(ipc_ratio nng_ctx/nng_echo p99)" "(the pattern in use)"
  row "ratio nng pair1 / nng echo" "$(ipc_ratio nng_pair/nng_echo p50)" "$(ipc_ratio nng_pair/nng_echo p99)"
  echo
  echo "PDP policy evaluation alone: one thread, in process, tests/bench/policy-20"
  printf '  %-40s %8s decisions/s  target: >= 200000\n' "20-rule bundle" "$(f0 "$(pol_get policy_eval decisions_per_s)")"
  printf '  %-40s %8s decisions/s\n' "empty bundle (reference)" "$(f0 "$(pol_get policy_empty decisions_per_s)")"
  printf '  %-40s %8s        (%s ns added per decision)\n' "ratio 20-rule / empty" "$(pol_get ratio throughput)" "$(pol_get ratio added_ns)"
  echo
  echo "Decisions with a budget and a rate limit in effect (tests/bench/budget-rate)"
  printf '  %-40s %8s decisions/s  (%s ns each)\n' "in process, full decision + settle" "$(f0 "$(dec_get decide_limits decisions_per_s)")" "$(dec_get decide_limits ns_per_decision)"
  printf '  %-40s %8s decisions/s  (%s ns each)\n' "same, allow-only bundle (reference)" "$(f0 "$(dec_get decide_allow decisions_per_s)")" "$(dec_get decide_allow ns_per_decision)"
  printf '  %-40s %8s        (%s ns added per decision)\n' "ratio limits / allow-only" "$(dec_ratio decide_limits/decide_allow throughput)" "$(dec_ratio decide_limits/decide_allow added_ns)"
  row "over ipc, one at a time" "p50 us" "p99 us"
  row "PDP Decide with limits (ALLOW)" "$(lim_get pdp_decide p50_us)" "$(lim_get pdp_decide p99_us)"
  row "PDP Ping (reference)" "$(lim_get pdp_ping p50_us)" "$(lim_get pdp_ping p99_us)"
  printf '  over ipc, %s in flight, %ss per kind\n' "$conc" "$conc_secs"
  printf '  %-40s %8s req/s\n' "PDP Decide with limits (ALLOW)" "$(lim_get "pdp_decide_c$conc" per_s)"
  printf '  %-40s %8s req/s\n' "PDP Ping (reference)" "$(lim_get "pdp_ping_c$conc" per_s)"
  printf '  %-40s %8s\n' "ratio Decide / Ping" "$(lim_ratio "pdp_decide_c$conc/pdp_ping_c$conc" throughput)"
  echo
  echo "Settled usage records (durable: acked after the LMDB commit)"
  printf '  %-40s %8s records/s\n' "in process, $(dec_get usage_grouped in_flight) in flight (group commit)" "$(f0 "$(dec_get usage_grouped records_per_s)")"
  printf '  %-40s %8s records/s\n' "in process, one at a time (reference)" "$(f0 "$(dec_get usage_sync records_per_s)")"
  printf '  %-40s %8s\n' "ratio grouped / one at a time" "$(dec_ratio usage_grouped/usage_sync throughput)"
  printf '  %-40s %8s acks/s\n' "Usage over ipc, $conc in flight" "$(f0 "$(lim_get "pdp_usage_c$conc" per_s)")"
  echo
  echo "Data plane RSS (VmRSS)"
  printf '  %-40s %8s MB  target: <= 16 MB\n' "idle after start" "$(mb "$rss_idle_kb")"
  printf '  %-40s %8s MB\n' "peak during the c=$top_c step (highest)" "$(mb "$rss_top_kb")"
  printf '  %-40s %8s MB\n' "peak during any step" "$(mb "$rss_peak_kb")"
  printf '  %-40s %8s MB  %sx idle\n' "1 s after the load" "$(mb "$rss_after_kb")" "$rss_growth"
  echo
  echo "Streams (SSE chat completions, [[mock ...]] directives): D against A"
  row "time to first content event, $stream_n each" "p50 us" "p99 us"
  row "D tollgate -> mock" "$(f0 "$(st_get ttft_tollgate p50_us)")" "$(f0 "$(st_get ttft_tollgate p99_us)")"
  row "A mock direct (reference)" "$(f0 "$(st_get ttft_direct p50_us)")" "$(f0 "$(st_get ttft_direct p99_us)")"
  row "added by tollgate (D-A)" "$(f0 "$(st_get ttft_added p50_us)")" "$(f0 "$(st_get ttft_added p99_us)")"
  row "ratio D/A" "$(st_ratio ttft_tollgate/ttft_direct p50)" "$(st_ratio ttft_tollgate/ttft_direct p99)"
  printf '  %-40s %8s\n' "cost per chunk, chunks=$stream_chunks, no delay" "us/chunk"
  printf '  %-40s %8s  (median of %s streams: %s ms)\n' "D tollgate -> mock" "$(st_get chunk_tollgate us_per_chunk)" "$stream_rounds" "$(st_get chunk_tollgate stream_ms_p50)"
  printf '  %-40s %8s  (median of %s streams: %s ms)\n' "A mock direct (reference)" "$(st_get chunk_direct us_per_chunk)" "$stream_rounds" "$(st_get chunk_direct stream_ms_p50)"
  printf '  %-40s %8s\n' "added by tollgate (D-A)" "$(st_get chunk_added us_per_chunk)"
  printf '  %-40s %8s\n' "ratio D/A" "$(st_ratio chunk_tollgate/chunk_direct per_chunk)"
  if [ "$stream_conc" -gt 0 ]; then
    echo "  $stream_conc streams at once, chunks=$stream_conc_chunks every $stream_delay_ms ms;" \
         "gap = a stream's largest gap between events"
    printf '  %-22s %11s %19s %7s %22s\n' "" "completed" "gap p50/p99/max ms" \
      "stalls" "1st content p50/p99 ms"
    for t in tollgate direct; do
      [ -n "$(st_get "conc_$t" streams)" ] || continue
      name="D tollgate -> mock"; [ "$t" = tollgate ] || name="A mock direct"
      printf '  %-22s %11s %19s %7s %22s\n' "$name" \
        "$(st_get "conc_$t" completed)/$(st_get "conc_$t" streams)" \
        "$(f0 "$(st_get "conc_$t" gap_p50_ms)")/$(f0 "$(st_get "conc_$t" gap_p99_ms)")/$(f0 "$(st_get "conc_$t" gap_max_ms)")" \
        "$(st_get "conc_$t" stalls)" \
        "$(f0 "$(st_get "conc_$t" first_p50_ms)")/$(f0 "$(st_get "conc_$t" first_p99_ms)")"
    done
    printf '  %-40s p50 %s, p99 %s, max %s  (stall: > %sx)\n' \
      "ratio D gap / configured delay" "$(st_ratio conc_tollgate/delay gap_p50)" \
      "$(st_ratio conc_tollgate/delay gap_p99)" "$(st_ratio conc_tollgate/delay gap_max)" "$stream_stall_x"
    [ -z "$(st_get conc_direct streams)" ] ||
      printf '  %-40s p50 %s, p99 %s, max %s\n' \
        "ratio A gap / configured delay" "$(st_ratio conc_direct/delay gap_p50)" \
        "$(st_ratio conc_direct/delay gap_p99)" "$(st_ratio conc_direct/delay gap_max)"
    printf '  %-40s %s -> %s -> %s MB\n' "data plane RSS before/peak/1 s after" \
      "$(mb "$(st_get conc_tollgate rss_before_kb)")" \
      "$(mb "$(st_get conc_tollgate rss_peak_kb)")" \
      "$(mb "$(st_get conc_tollgate rss_after_kb)")"
  fi
  echo '```'
  if [ ${#problems[@]} -gt 0 ] || [ "$dp_warn" != 0 ] || [ "$pdp_warn" != 0 ] ||
     [ "$lpdp_warn" != 0 ] || [ "$gdp_warn" != 0 ] || [ "$gpdp_warn" != 0 ]; then
    echo
    echo "Noticed while measuring:"
    for p in "${problems[@]}"; do echo "  - $p"; done
    [ "$dp_warn" = 0 ] || echo "  - the data plane logged $dp_warn warn/error lines:"
    log_digest "$tmp/dataplane.log" dataplane
    [ "$pdp_warn" = 0 ] || echo "  - the PDP logged $pdp_warn warn/error lines:"
    log_digest "$tmp/pdp.log" pdp
    [ "$lpdp_warn" = 0 ] || echo "  - the limits PDP logged $lpdp_warn warn/error lines:"
    log_digest "$tmp/pdp_limits.log" pdp_limits
    [ "$gdp_warn" = 0 ] || echo "  - G's data plane logged $gdp_warn warn/error lines:"
    log_digest "$tmp/dataplane_g.log" dataplane_g
    [ "$gpdp_warn" = 0 ] || echo "  - G's PDP logged $gpdp_warn warn/error lines:"
    log_digest "$tmp/pdp_g.log" pdp_g
  fi
}
ok=1
