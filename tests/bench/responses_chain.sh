#!/usr/bin/env bash
# tests/bench/responses_chain.sh [BIN] - what continuing a stored Responses
# API conversation costs by its length. With previous_response_id the data
# plane fetches each earlier turn from the PDP (one lookup per turn, over
# ipc) and puts it before the input, before the request is decided. One
# conversation of 256 turns is built; then, in rounds taking turns, a
# non-streaming continuation ("store": false, so nothing grows) of its
# turns 1, 16, 64 and 256 is timed (curl's time_total), against two
# references: the same request without previous_response_id, and the same
# history written out in the input (no lookup, the same bytes to parse,
# judge, translate and send upstream). Prints each round's medians, then
# the medians over the rounds, as ratios, and what the lookups add a turn. BIN: the binaries
# (default build/release/bin, built by tests/bench/run.sh or
# deploy/local/setup.sh build/release -DCMAKE_BUILD_TYPE=Release).
# A benchmark, not a test: it fails only when something does not work.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
bin=${1:-$top/build/release/bin}
rounds=${BENCH_ROUNDS:-5}
per=${BENCH_PER:-20}
turns=256
lengths="1 16 64 256"
# shellcheck source=lib.sh
. "$here/lib.sh"
for x in tollgate-pdp tollgate-dataplane tollgate-mock-llm; do
  [ -x "$bin/$x" ] || die "$bin/$x is missing"
done
command -v curl >/dev/null || die "curl is needed"

tmp=$(mktemp -d /tmp/tollgate-chain.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do stop_pid "$p"; done
  [ "${BENCH_KEEP:-0}" = 1 ] && say "logs in $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT

export TOLLGATE_MOCK_KEY=bench-mock-key
mock_port=$(free_port)
dp_port=$(free_port "$mock_port")
"$bin/tollgate-mock-llm" --port "$mock_port" --api-key bench-mock-key \
  >"$tmp/mock.log" 2>&1 &
pids+=($!)
mkdir -p "$tmp/bundle"
echo '{"name": "chain", "revision": 1}' >"$tmp/bundle/bundle.json"
cat >"$tmp/bundle/chain.policy.json" <<'EOF'
{"rules": [{"id": "allow-all", "kind": "access", "effect": "allow"},
           {"id": "audit", "kind": "audit", "capture": "metadata"}]}
EOF
cat >"$tmp/tollgate.json" <<EOF
{
  "pdp": {"listen": ["ipc://$tmp/run/pdp.sock"], "state_dir": "state",
          "bundle": "$tmp/bundle", "pricing_file": "$top/policies/pricing.json"},
  "dataplane": {"listen": "127.0.0.1:$dp_port",
                "pdp_url": "ipc://$tmp/run/pdp.sock", "spool_dir": "spool"},
  "deployments": [{"id": "mock", "provider": "openai_compatible",
                   "model": "gpt-4o-mini",
                   "api_base": "http://127.0.0.1:$mock_port/v1",
                   "api_key": "\${TOLLGATE_MOCK_KEY}"}]
}
EOF
cd "$tmp"
"$bin/tollgate-pdp" serve --config tollgate.json >pdp.log 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -S "$tmp/run/pdp.sock" ] && break; sleep 0.1; done
"$bin/tollgate-pdp" tenants set --config tollgate.json bench >/dev/null
key=$("$bin/tollgate-pdp" keys create --config tollgate.json --tenant bench \
  --name bench --format json 2>/dev/null | tr -d ' \t\r\n' |
  sed -n 's/.*"key":"\([^"]*\)".*/\1/p')
[ -n "$key" ] || die "no key (see $tmp/pdp.log)"
"$bin/tollgate-dataplane" --config tollgate.json >dp.log 2>&1 &
pids+=($!)
url="http://127.0.0.1:$dp_port/v1/responses"
for _ in $(seq 100); do
  curl -sf -o /dev/null "http://127.0.0.1:$dp_port/readyz" && break
  sleep 0.1
done
curl -sf -o /dev/null "http://127.0.0.1:$dp_port/readyz" ||
  die "the data plane is not ready (see $tmp/dp.log)"

# post BODY: the answer's body; fails unless 200.
post() {
  curl -sf -H "authorization: Bearer $key" -H 'content-type: application/json' \
    -d "$1" "$url" || die "POST $1 failed"
}

# The conversation: turn k continues turn k-1; ids[k] is turn k's id, and
# hist[k] the same k turns written out as input messages (what a client
# that stores nothing sends: the second reference, the same history
# without a lookup).
declare -A ids hist
prev=""
items=""
for k in $(seq "$turns"); do
  if [ -z "$prev" ]; then
    body="{\"model\": \"gpt-4o-mini\", \"input\": \"turn $k\"}"
  else
    body="{\"model\": \"gpt-4o-mini\", \"input\": \"turn $k\", \"previous_response_id\": \"$prev\"}"
  fi
  answer=$(post "$body")
  prev=$(sed -n 's/^{"id":"\([^"]*\)".*/\1/p' <<<"$answer")
  text=$(sed -n 's/.*"text":"\([^"]*\)".*/\1/p' <<<"$answer")
  [ -n "$prev" ] && [ -n "$text" ] || die "turn $k: no id or text in $answer"
  ids[$k]=$prev
  items+="{\"role\": \"user\", \"content\": \"turn $k\"}, {\"role\": \"assistant\", \"content\": \"$text\"}, "
  hist[$k]=$items
done
say "built a conversation of $turns turns"

# timed BODY: per requests' median time_total, in microseconds.
timed() {
  for _ in $(seq "$per"); do
    curl -s -o /dev/null -w '%{time_total}\n' -H "authorization: Bearer $key" \
      -H 'content-type: application/json' -d "$1" "$url"
  done | awk '{ printf "%d\n", $1 * 1000000 }' | sort -g |
    awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

declare -A res
ref_body='{"model": "gpt-4o-mini", "input": "next", "store": false}'
for r in $(seq "$rounds"); do
  v=$(timed "$ref_body")
  res[ref]+=" $v"
  line="round $r: reference $v us"
  for n in $lengths; do
    v=$(timed "{\"model\": \"gpt-4o-mini\", \"input\": \"next\", \"store\": false, \"previous_response_id\": \"${ids[$n]}\"}")
    w=$(timed "{\"model\": \"gpt-4o-mini\", \"store\": false, \"input\": [${hist[$n]}{\"role\": \"user\", \"content\": \"next\"}]}")
    res[$n]+=" $v"
    res[i$n]+=" $w"
    line+=", $n turns $v us (written out $w us)"
  done
  echo "$line"
done
ref=$(median ${res[ref]})
out="medians over $rounds rounds of $per: reference (no previous_response_id) $ref us"
for n in $lengths; do
  m=$(median ${res[$n]})
  w=$(median ${res[i$n]})
  out+="; $n turns $m us (x$(ratio "$m" "$ref"); written out $w us, x$(ratio "$m" "$w"): the lookups add $(calc "($m - $w) / $n") us a turn)"
done
echo "$out"
