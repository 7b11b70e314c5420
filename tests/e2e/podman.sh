#!/usr/bin/env bash
# tests/e2e/podman.sh - Tollgate's container images end to end, with podman.
#
#   tests/e2e/podman.sh [sidecar] [central]     (default: both)
#
# (a) sidecar: one pod (podman pod create) as Kubernetes would run an
#     injected application pod: the mock provider, the PDP, the data plane
#     and the application (curl). The PDP and the data plane share a
#     volume at /run/tollgate (a 0777 host directory, like an emptyDir)
#     holding the ipc socket; the application does not mount it. A chat
#     completion gets 200 and its usage is recorded; with the PDP killed
#     the next request gets 503 pdp_unavailable (fail closed); started
#     again, 200 again.
# (b) central: a podman network with one PDP on tls+tcp://0.0.0.0:7070
#     (mutual TLS, certificates made here with openssl), two data planes
#     using it and the mock. 64 concurrent requests against a tenant budget
#     for about 10: the recorded spend never exceeds it and the rest get
#     429 budget_exceeded. A third data plane whose client certificate
#     comes from another CA is refused: /readyz stays 503, requests get 503.
#
# Every Tollgate container runs --read-only --user 65532:65532 --cap-drop
# ALL --security-opt no-new-privileges; state and spool are volumes.
#
# Needs root (or sudo) and podman with runc; installs podman, runc, jq and
# openssl with apt-get when missing. CONTAINERS_CONF defaults to
# deploy/docker/containers.conf (runc: crun fails on hybrid cgroups). When
# podman cannot run containers this FAILS, it does not skip; TG_E2E=0 skips
# it explicitly. Images: deploy/docker/build.sh --skip-injector (TG_BIN: the
# binaries' directory, else it builds them). Container, pod and network
# names start with tg-e2e-PID-; everything is removed on exit, state lives
# in a temporary directory (TG_E2E_KEEP=1 keeps it and the containers).
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
start=$(date +%s)

say() { echo "e2e: $*" >&2; }
if [ "${TG_E2E:-1}" = 0 ]; then
  say "SKIPPED (TG_E2E=0)"
  exit 0
fi

parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(sidecar central)
for p in "${parts[@]}"; do
  case "$p" in sidecar|central) ;; *) say "unknown part \"$p\" (sidecar, central)"; exit 2 ;; esac
done

# --- what the test needs on this machine ------------------------------------
need=()
command -v podman >/dev/null 2>&1 || need+=(podman runc catatonit netavark aardvark-dns iptables)
command -v runc >/dev/null 2>&1 || need+=(runc)
# podman pod create builds its pause image from catatonit (only recommended
# by Debian's podman: absent after --no-install-recommends).
command -v catatonit >/dev/null 2>&1 || [ -x /usr/libexec/podman/catatonit ] || need+=(catatonit)
command -v jq >/dev/null 2>&1 || need+=(jq)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  { $sudo apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null; } ||
    { say "FAILED: could not install ${need[*]} (apt-get); TG_E2E=0 skips this test"; exit 1; }
fi
if [ "$(id -u)" -ne 0 ]; then
  say "FAILED: run as root (rootful podman: the test chowns host directories to uid 65532); TG_E2E=0 skips this test"
  exit 1
fi
export CONTAINERS_CONF=${CONTAINERS_CONF:-$top/deploy/docker/containers.conf}

tag=${TG_E2E_TAG:-e2e}
TG_BIN=${TG_BIN:-} "$top/deploy/docker/build.sh" --skip-injector \
  --only pdp,dataplane,mock-llm,e2e-app "$tag" ||
  { say "FAILED: deploy/docker/build.sh"; exit 1; }
img() { echo "localhost/tollgate-$1:$tag"; }

if ! out=$(timeout 60 podman run --rm --read-only --user 65532:65532 "$(img mock-llm)" --help 2>&1); then
  say "FAILED: podman cannot run containers on this machine (CONTAINERS_CONF=$CONTAINERS_CONF):"
  echo "$out" | tail -5 | sed 's/^/    /' >&2
  say "(crun on hybrid cgroups fails: deploy/docker/containers.conf selects runc; TG_E2E=0 skips this test)"
  exit 1
fi
say "images built and podman runs containers ($(($(date +%s) - start)) s)"

# --- state, names, cleanup --------------------------------------------------
# PID and a random part: a run killed without its cleanup (SIGKILL) leaves
# its containers, pod and network behind, and a later run with the same PID
# (likely in a fresh CI container) must not collide with them.
id=tg-e2e-$$-$RANDOM
tmp=$(mktemp -d "/tmp/$id.XXXXXX")
failed=0
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [ -n "${watchdog:-}" ] && kill "$watchdog" 2>/dev/null
  if [ $rc -ne 0 ] || [ $failed -ne 0 ]; then
    for c in $(podman ps -a --filter "name=^$id-" --format '{{.Names}}' 2>/dev/null); do
      case "$c" in *-infra) continue ;; esac
      echo "---- podman logs $c (last 25 lines)" >&2
      podman logs --tail 25 "$c" 2>&1 | cut -c1-400 >&2 || true
    done
  fi
  if [ "${TG_E2E_KEEP:-0}" = 1 ]; then
    say "kept $tmp and the containers named $id-*"
  else
    podman pod rm -f -t 0 "$id-pod" >/dev/null 2>&1 || true
    podman ps -a --filter "name=^$id-" --format '{{.Names}}' 2>/dev/null |
      xargs -r podman rm -f -t 0 >/dev/null 2>&1 || true
    podman network rm -f "$id-net" >/dev/null 2>&1 || true
    rm -rf "$tmp"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT TERM
# The whole test is bounded: a watchdog ends it after TG_E2E_TIMEOUT s.
# bash runs the TERM trap only once the command it waits for has ended, so
# the watchdog also ends that command (a hung podman): the test's children
# and theirs (a command substitution's), then, if the cleanup has not
# stopped the watchdog within 10 s, kills them.
kids() {
  local p
  for p in "$@"; do
    if [ -r "/proc/$p/task/$p/children" ]; then
      cat /proc/"$p"/task/*/children 2>/dev/null || true
    else
      pgrep -P "$p" 2>/dev/null || true
    fi
  done
}
watch() {
  local s k top="" hung
  sleep "$1" </dev/null >/dev/null 2>&1 &
  s=$!
  trap 'kill $s 2>/dev/null; exit 0' TERM
  wait $s
  # The test itself gone (killed without its cleanup): its PID may be
  # another process's by now.
  local ppid=""
  read -r _ _ _ ppid _ 2>/dev/null <"/proc/$BASHPID/stat" || true
  [ -z "$ppid" ] || [ "$ppid" = $$ ] || exit 0
  say "FAILED: timed out after $1 s"
  for k in $(kids $$); do [ "$k" = "$BASHPID" ] || top="$top $k"; done
  hung="$top $(kids $top)"
  kill -TERM $$
  kill -TERM $hung 2>/dev/null || true
  sleep 10 </dev/null >/dev/null 2>&1 &
  s=$!
  wait $s
  kill -KILL $hung 2>/dev/null || true
}
watch "${TG_E2E_TIMEOUT:-300}" </dev/null &
watchdog=$!

fail() { failed=1; say "FAILED: $*"; exit 1; }
ok() { say "ok: $*"; }

sec=(--read-only --user 65532:65532 --cap-drop ALL --security-opt no-new-privileges)
mock_key=mock-$RANDOM$RANDOM
cfg=/etc/tollgate/tollgate.json

# volume_dir DIR: a host directory as Kubernetes makes an emptyDir (root,
# 0777). The config lists the mount points in "private_volumes", so the
# processes trust the directories they make directly inside them.
volume_dir() { mkdir -p "$1"; chmod 0777 "$1"; }

# write_bundle DIR: allow every key; tenant "capped" has a daily budget of
# 10 worst cases of the request below (gpt-4o-mini: $0.15 in, $0.60 out
# per 1M tokens; the prompt estimate is 4 + ceil(bytes / 4) tokens).
budget_msg='[[mock chunks=100]] hi'
budget_max=100
worst=$(( (( (4 + (${#budget_msg} + 3) / 4) * 150000 + budget_max * 600000) + 999999) / 1000000 ))
limit=$((10 * worst))
limit_usd=$(printf '0.%06d' "$limit")
write_bundle() {
  mkdir -p "$1/bundle"
  cat >"$1/bundle/bundle.json" <<EOF
{"name": "e2e", "revision": 1, "default": "deny", "timezone": "UTC"}
EOF
  cat >"$1/bundle/e2e.policy.json" <<EOF
{"rules": [
  {"id": "allow-all", "kind": "access", "effect": "allow"},
  {"id": "audit-metadata", "kind": "audit", "capture": "metadata"},
  {"id": "capped-daily", "kind": "budget", "scope": "tenant", "window": "daily",
   "limit_usd": $limit_usd,
   "when": {"all": [{"eq": ["tenant.id", "capped"]}, {"eq": ["request.model", "gpt-4o-mini"]}]}}
]}
EOF
  cp "$top/policies/pricing.json" "$1/pricing.json"
  chmod -R a+rX "$1"
}

# config FILE PDP-SECTION DATAPLANE-SECTION MOCK-URL
config() {
  cat >"$1" <<EOF
{
  "log_format": "json",
  "private_volumes": ["/run/tollgate", "/var/lib/tollgate"],
  "pdp": $2,
  "dataplane": $3,
  "deployments": [
    {"id": "mock-gpt-4o-mini", "model": "gpt-4o-mini", "provider": "openai",
     "api_base": "$4", "api_key": "\${TOLLGATE_MOCK_KEY}"}
  ]
}
EOF
  chmod 0644 "$1"
}

# pdp_cli CONTAINER ARGS...: the admin CLI inside the PDP's container.
pdp_cli() { local c=$1; shift; podman exec "$c" tollgate-pdp "$@"; }

# new_key CONTAINER TENANT: a key of TENANT (made if missing).
new_key() {
  pdp_cli "$1" tenants set --config $cfg "$2" >/dev/null || fail "tenants set $2"
  pdp_cli "$1" keys create --config $cfg --tenant "$2" --name "e2e $2" --format json |
    jq -er .key || fail "keys create --tenant $2"
}

# spend CONTAINER TENANT: that tenant's line of `spend --format json`.
spend() {
  pdp_cli "$1" spend --config $cfg --format json |
    jq -c --arg t "$2" '(.tenants // [])[] | select(.tenant == $t)'
}

# wait_spend CONTAINER TENANT N: until the tenant has N requests recorded.
wait_spend() {
  local s="" n
  for _ in $(seq 60); do
    s=$(spend "$1" "$2") || s="" # (set -e: a failed attempt is retried)
    n=$(jq -r '.requests // 0' <<<"${s:-null}")
    [ "$n" -ge "$3" ] && { echo "$s"; return 0; }
    sleep 0.5
  done
  fail "tenant $2: $3 requests never recorded (spend: ${s:-none})"
}

chat_body() { jq -cn --arg m "$1" --argjson max "$2" \
  '{model: "gpt-4o-mini", messages: [{role: "user", content: $m}], max_tokens: $max}'; }

# app PODMAN-ARGS... -- CURL-ARGS...: curl in the application container,
# in the pod (--pod NAME) or on the network (--network NAME).
app() {
  local opts=()
  while [ "$1" != -- ]; do opts+=("$1"); shift; done
  shift
  podman run --rm "${opts[@]}" "${sec[@]}" "$(img e2e-app)" "$@"
}

# --- (a) sidecar -------------------------------------------------------------
sidecar() {
  local d=$tmp/sidecar pod=$id-pod
  local at=(--pod "$pod") sock=ipc:///run/tollgate/pdp/pdp.sock
  mkdir -p "$d/etc"
  write_bundle "$d/etc"
  volume_dir "$d/run"      # the socket's volume, PDP and data plane only
  volume_dir "$d/pdp-lib"  # the PDP's state (LMDB)
  volume_dir "$d/dp-lib"   # the data plane's spool
  config "$d/etc/tollgate.json" \
    "{\"listen\": [\"$sock\"], \"state_dir\": \"/var/lib/tollgate/pdp\",
      \"admin_listen\": \"127.0.0.1:7071\", \"pricing_file\": \"pricing.json\", \"bundle\": \"bundle\"}" \
    "{\"listen\": \"0.0.0.0:8080\", \"pdp_url\": \"$sock\", \"pdp_timeout_ms\": 200,
      \"on_pdp_error\": \"deny\", \"spool_dir\": \"/var/lib/tollgate/spool\"}" \
    "http://127.0.0.1:9090/v1"

  podman pod create --name "$pod" >/dev/null || fail "podman pod create"
  podman run -d "${at[@]}" --name "$id-mock" "${sec[@]}" "$(img mock-llm)" \
    --host 127.0.0.1 --port 9090 --api-key "$mock_key" >/dev/null || fail "start the mock"
  podman run -d "${at[@]}" --name "$id-pdp" "${sec[@]}" \
    -v "$d/etc:/etc/tollgate:ro" -v "$d/run:/run/tollgate" -v "$d/pdp-lib:/var/lib/tollgate" \
    "$(img pdp)" serve --config $cfg >/dev/null || fail "start the PDP"
  podman run -d "${at[@]}" --name "$id-dp" "${sec[@]}" -e TOLLGATE_MOCK_KEY="$mock_key" \
    -v "$d/etc:/etc/tollgate:ro" -v "$d/run:/run/tollgate" -v "$d/dp-lib:/var/lib/tollgate" \
    "$(img dataplane)" --config $cfg >/dev/null || fail "start the data plane"

  # Ready: the data plane answers /readyz 200 once it reaches the PDP.
  app "${at[@]}" -- -sf -o /dev/null --retry 30 --retry-delay 1 --retry-all-errors \
    --max-time 2 http://127.0.0.1:8080/readyz || fail "sidecar: the data plane never became ready"
  ok "sidecar: pod up, data plane ready over $sock ($(($(date +%s) - start)) s)"

  local key out code body
  key=$(new_key "$id-pdp" demo)
  body=$(chat_body hello 16)
  req() {
    app "${at[@]}" -- -sS --max-time 10 -w '\n%{http_code}' -H "Authorization: Bearer $key" \
      -H 'Content-Type: application/json' -d "$body" "$@" http://127.0.0.1:8080/v1/chat/completions
  }
  out=$(req) || fail "sidecar: curl failed"
  code=${out##*$'\n'}
  [ "$code" = 200 ] || fail "sidecar: chat completion: $code: ${out%$'\n'*}"
  jq -e '.choices[0].message.content | length > 0' <<<"${out%$'\n'*}" >/dev/null ||
    fail "sidecar: no answer in ${out%$'\n'*}"
  ok "sidecar: app -> data plane -> mock: 200"
  local s
  s=$(wait_spend "$id-pdp" demo 1)
  jq -e '.prompt_tokens > 0 and .completion_tokens > 0 and .cost_micro_usd > 0' <<<"$s" >/dev/null ||
    fail "sidecar: usage recorded without tokens or cost: $s"
  ok "sidecar: usage recorded ($s)"

  # Fail closed: without its PDP the data plane refuses.
  podman kill "$id-pdp" >/dev/null || fail "podman kill the PDP"
  out=$(req) || fail "sidecar: curl failed"
  code=${out##*$'\n'}
  [ "$code" = 503 ] || fail "sidecar: with the PDP down: $code (want 503): ${out%$'\n'*}"
  jq -e '.error.code == "pdp_unavailable" and (.error.message | test("tollgate-pdp"))' \
    <<<"${out%$'\n'*}" >/dev/null || fail "sidecar: the 503 does not name the PDP: ${out%$'\n'*}"
  ok "sidecar: PDP killed -> 503 pdp_unavailable"

  podman start "$id-pdp" >/dev/null || fail "podman start the PDP"
  out=$(req -f --retry 20 --retry-delay 1 --retry-all-errors 2>&1) ||
    fail "sidecar: no 200 after the PDP came back: $out"
  ok "sidecar: PDP started again -> 200 ($(($(date +%s) - start)) s)"
  wait_spend "$id-pdp" demo 2 >/dev/null

  # The PDP made the socket's directory in the shared volume, 0700, its own.
  [ "$(stat -c '%u %a' "$d/run/pdp")" = "65532 700" ] ||
    fail "sidecar: /run/tollgate/pdp is $(stat -c 'uid %u mode %a' "$d/run/pdp") (want uid 65532 mode 700)"
  podman pod rm -f -t 0 "$pod" >/dev/null
}

# --- (b) central -------------------------------------------------------------
# cert DIR NAME CA EXT: DIR/NAME.{key,crt} signed by CA (DIR/CA.{key,crt}).
cert() {
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$1/$2.key" -subj "/CN=$2" -out "$1/$2.csr" 2>/dev/null
  printf '%s\n' "$4" >"$1/$2.ext"
  openssl x509 -req -in "$1/$2.csr" -CA "$1/$3.crt" -CAkey "$1/$3.key" -CAcreateserial \
    -days 1 -sha256 -extfile "$1/$2.ext" -out "$1/$2.crt" 2>/dev/null || fail "openssl: $2"
}
ca() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
    -keyout "$1/$2.key" -out "$1/$2.crt" -subj "/CN=$2" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    2>/dev/null || fail "openssl: CA $2"
}
# tls_dir DIR NAME CA: DIR/tls-NAME holding tls.crt, tls.key and ca.crt
# (the trusted CA: ours, whichever signed NAME).
tls_dir() {
  local t=$1/tls-$2
  mkdir -p "$t"
  cp "$1/$2.crt" "$t/tls.crt"; cp "$1/$2.key" "$t/tls.key"; cp "$1/ca.crt" "$t/ca.crt"
  chown -R 65532:65532 "$t"; chmod 0700 "$t"; chmod 0600 "$t/tls.key"; chmod 0644 "$t"/*.crt
}

central() {
  local d=$tmp/central net=$id-net pdp=$id-pdp c=$tmp/central/certs
  mkdir -p "$d/etc/tls" "$c"
  write_bundle "$d/etc"
  ca "$c" ca
  ca "$c" other-ca
  cert "$c" "$pdp" ca "subjectAltName=DNS:$pdp
extendedKeyUsage=serverAuth"
  for n in dp1 dp2; do cert "$c" "$id-$n" ca "extendedKeyUsage=clientAuth"; done
  cert "$c" "$id-dp3" other-ca "extendedKeyUsage=clientAuth"
  for n in "$pdp" "$id-dp1" "$id-dp2" "$id-dp3"; do tls_dir "$c" "$n"; done
  volume_dir "$d/pdp-lib"
  for n in dp1 dp2 dp3; do volume_dir "$d/$n-lib"; done
  local t=/etc/tollgate/tls
  config "$d/etc/tollgate.json" \
    "{\"listen\": [\"tls+tcp://0.0.0.0:7070\"],
      \"tls\": {\"cert_file\": \"$t/tls.crt\", \"key_file\": \"$t/tls.key\", \"client_ca_file\": \"$t/ca.crt\"},
      \"probe_listen\": \"0.0.0.0:9091\",
      \"state_dir\": \"/var/lib/tollgate/pdp\", \"pricing_file\": \"pricing.json\", \"bundle\": \"bundle\"}" \
    "{\"listen\": \"0.0.0.0:8080\", \"pdp_url\": \"tls+tcp://$pdp:7070\",
      \"pdp_tls\": {\"cert_file\": \"$t/tls.crt\", \"key_file\": \"$t/tls.key\", \"ca_file\": \"$t/ca.crt\",
                    \"server_name\": \"$pdp\"},
      \"pdp_timeout_ms\": 500, \"on_pdp_error\": \"deny\", \"spool_dir\": \"/var/lib/tollgate/spool\"}" \
    "http://$id-mock:9090/v1"

  # Names are resolved from /etc/hosts (--add-host), not by aardvark-dns:
  # its answers stall for seconds while it reloads as containers join the
  # network, which timed requests out here. The PDP is still dialled by
  # name and its certificate checked against that name.
  local at=(--network "$net") hosts=()
  add_host() {
    local ip
    ip=$(podman inspect --format "{{(index .NetworkSettings.Networks \"$net\").IPAddress}}" "$1") &&
      [ -n "$ip" ] || fail "central: no address for $1"
    hosts+=(--add-host "$1:$ip")
  }
  podman network create "$net" >/dev/null 2>"$d/network.err" ||
    fail "podman network create: $(cat "$d/network.err")"
  podman run -d "${at[@]}" --name "$id-mock" "${sec[@]}" "$(img mock-llm)" \
    --host 0.0.0.0 --port 9090 --api-key "$mock_key" >/dev/null || fail "start the mock"
  add_host "$id-mock"
  podman run -d "${at[@]}" --name "$pdp" "${sec[@]}" \
    -v "$d/etc:/etc/tollgate:ro" -v "$c/tls-$pdp:$t:ro" -v "$d/pdp-lib:/var/lib/tollgate" \
    "$(img pdp)" serve --config $cfg >/dev/null || fail "start the PDP"
  add_host "$pdp"
  local dphosts=("${hosts[@]}")
  for n in dp1 dp2 dp3; do
    podman run -d "${at[@]}" "${dphosts[@]}" --name "$id-$n" "${sec[@]}" -e TOLLGATE_MOCK_KEY="$mock_key" \
      -v "$d/etc:/etc/tollgate:ro" -v "$c/tls-$id-$n:$t:ro" -v "$d/$n-lib:/var/lib/tollgate" \
      "$(img dataplane)" --config $cfg >/dev/null || fail "start data plane $n"
    add_host "$id-$n"
  done
  at+=("${hosts[@]}")
  for n in dp1 dp2; do
    app "${at[@]}" -- -sf -o /dev/null --retry 30 --retry-delay 1 --retry-all-errors --max-time 2 \
      "http://$id-$n:8080/readyz" || fail "central: data plane $n never became ready"
  done
  # The PDP's probe port answers probes and metrics, never the admin API.
  local code
  code=$(app "${at[@]}" -- -s -o /dev/null -w '%{http_code}' --max-time 5 "http://$pdp:9091/readyz") || true
  [ "$code" = 200 ] || fail "central: PDP probe_listen /readyz: $code (want 200)"
  code=$(app "${at[@]}" -- -s -o /dev/null -w '%{http_code}' --max-time 5 "http://$pdp:9091/admin/v1/tenants") || true
  [ "$code" = 404 ] || fail "central: PDP probe_listen serves /admin/v1/tenants: $code (want 404)"
  ok "central: PDP on tls+tcp with mutual TLS, data planes 1 and 2 ready ($(($(date +%s) - start)) s)"

  # 32 concurrent requests through each data plane, one key each, against
  # the tenant's budget for about 10.
  local k1 k2 body out=$d/out
  k1=$(new_key "$pdp" capped)
  k2=$(pdp_cli "$pdp" keys create --config $cfg --tenant capped --name "e2e capped 2" --format json | jq -er .key) ||
    fail "keys create"
  body=$(chat_body "$budget_msg" "$budget_max")
  mkdir -p "$out"; chmod 0777 "$out"
  {
    for i in $(seq 0 63); do
      [ "$i" -gt 0 ] && echo next
      if [ $((i % 2)) -eq 0 ]; then n=dp1 k=$k1; else n=dp2 k=$k2; fi
      echo "url = \"http://$id-$n:8080/v1/chat/completions\""
      echo "header = \"Authorization: Bearer $k\""
      echo "header = \"Content-Type: application/json\""
      echo "data = \"${body//\"/\\\"}\""
      echo "output = \"/out/r$i.json\""
      echo "max-time = 30"
      echo "silent"
      echo "write-out = \"%{http_code} $i %{time_total}\\n\""
    done
  } >"$d/requests.curl"
  chmod 0644 "$d/requests.curl"
  app "${at[@]}" -v "$d/requests.curl:/requests.curl:ro" -v "$out:/out" -- \
    -s -Z --parallel-max 64 -K /requests.curl >"$d/codes" 2>"$d/curl.err" ||
    fail "central: curl failed: $(tail -c 300 "$d/curl.err"; sort "$d/codes" | uniq -c | head -5)"
  local n200 n429 other
  n200=$(awk '$1 == 200' "$d/codes" | wc -l)
  n429=$(awk '$1 == 429' "$d/codes" | wc -l)
  other=$(awk '$1 != 200 && $1 != 429' "$d/codes" | wc -l)
  [ "$other" -eq 0 ] || fail "central: answers other than 200 and 429: $(awk '$1 != 200 && $1 != 429' "$d/codes" | sort | uniq -c | head -5 | tr '\n' ';') $(cat "$out/r$(awk '$1 != 200 && $1 != 429 {print $2; exit}' "$d/codes").json")"
  [ "$n200" -ge 1 ] && [ "$n200" -le 10 ] || fail "central: $n200 requests passed (want 1 to 10 of 64)"
  [ "$n429" -ge 54 ] || fail "central: only $n429 of 64 refused"
  for i in $(awk '$1 == 429 {print $2}' "$d/codes"); do
    jq -e '.error.code == "budget_exceeded" and (.error.message | test("capped-daily"))' "$out/r$i.json" >/dev/null ||
      fail "central: a 429 that is not budget_exceeded: $(cat "$out/r$i.json")"
  done
  local per1 per2
  per1=$(awk '$1 == 200 && $2 % 2 == 0' "$d/codes" | wc -l)
  per2=$((n200 - per1))
  ok "central: 64 concurrent requests: $n200 allowed (dp1 $per1, dp2 $per2), $n429 refused budget_exceeded"
  local s
  s=$(wait_spend "$pdp" capped "$n200")
  jq -e --argjson lim "$limit" --argjson n "$n200" \
    '.requests == $n and .cost_micro_usd > 0 and .cost_micro_usd <= $lim' <<<"$s" >/dev/null ||
    fail "central: recorded spend over the budget of $limit micro-USD or miscounted: $s"
  ok "central: recorded spend $(jq .cost_micro_usd <<<"$s") <= budget $limit micro-USD (no overshoot)"

  # The data plane whose certificate another CA signed is never let in.
  code=$(app "${at[@]}" -- -s -o /dev/null -w '%{http_code}' --max-time 5 "http://$id-dp3:8080/readyz") || true
  [ "$code" = 503 ] || fail "central: data plane 3 (wrong CA) /readyz: $code (want 503)"
  code=$(app "${at[@]}" -v "$out:/out" -- -s -o /out/dp3.json -w '%{http_code}' --max-time 10 \
    -H "Authorization: Bearer $k1" -H 'Content-Type: application/json' -d "$(chat_body hi 8)" \
    "http://$id-dp3:8080/v1/chat/completions") || true
  [ "$code" = 503 ] || fail "central: data plane 3 (wrong CA) answered $code (want 503): $(cat "$out/dp3.json" 2>/dev/null)"
  code=$(app "${at[@]}" -- -s -o /dev/null -w '%{http_code}' --max-time 5 "http://$id-dp3:8080/readyz") || true
  [ "$code" = 503 ] || fail "central: data plane 3 (wrong CA) /readyz became $code"
  ok "central: a data plane with a certificate from another CA: /readyz 503, requests 503 ($(($(date +%s) - start)) s)"
}

for p in "${parts[@]}"; do "$p"; done
say "passed (${parts[*]}) in $(($(date +%s) - start)) s"
