#!/usr/bin/env bash
# run.sh - the gateway on this machine: the mock provider on :9090, the PDP
# over ipc, the data plane on http://localhost:8080. Creates a demo key and
# prints it with a curl example. Ctrl-C stops everything.
# The mock plays OpenAI (gpt-4o-mini, mock-small), Azure (mock-azure),
# Anthropic (mock-claude) and Gemini (mock-gemini). Set OPENAI_API_KEY,
# ANTHROPIC_API_KEY or GEMINI_API_KEY to also serve openai/gpt-4o(-mini),
# anthropic/claude-sonnet-4 or gemini/gemini-2.5-flash.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
bin=$top/build/bin
cfg=${TOLLGATE_CONFIG:-$here/tollgate.json}

"$here/setup.sh" "$top/build"
mkdir -p "$here/run" /tmp/tollgate

# The mock provider checks this key; the data plane sends it from config.
export TOLLGATE_MOCK_KEY=${TOLLGATE_MOCK_KEY:-mock-provider-key}

pids=()
stop() {
  trap - INT TERM EXIT
  echo >&2; echo "run: stopping" >&2
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "run: stopped" >&2
  exit 0
}
trap stop INT TERM EXIT

for port in 8080 9090 7071; do
  if (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; then
    echo "run: port $port is already in use (another Tollgate still running?)" >&2
    exit 1
  fi
done

"$bin/tollgate-mock-llm" --port 9090 --api-key "$TOLLGATE_MOCK_KEY" &
pids+=($!)
"$bin/tollgate-pdp" serve --config "$cfg" &
pids+=($!)
"$bin/tollgate-dataplane" --config "$cfg" &
pids+=($!)

for _ in $(seq 100); do
  curl -sf http://127.0.0.1:8080/readyz >/dev/null 2>&1 && break
  sleep 0.1
done
curl -sf http://127.0.0.1:8080/readyz >/dev/null ||
  { echo "run: the gateway did not become ready; see the log above" >&2; exit 1; }

"$bin/tollgate-pdp" tenants set --config "$cfg" demo --tier demo >/dev/null
key=$("$bin/tollgate-pdp" keys create --config "$cfg" --tenant demo \
        --name "run.sh demo key" --format json |
      sed -n 's/.*"key":"\([^"]*\)".*/\1/p')

cat <<MSG

  Tollgate is up on http://localhost:8080 (mock provider on :9090).
  Demo key (tenant "demo"; shown once, also valid after a restart):

    export TOLLGATE_KEY=$key

  Try it:

    curl -s http://localhost:8080/v1/chat/completions \\
      -H "Authorization: Bearer \$TOLLGATE_KEY" -H 'Content-Type: application/json' \\
      -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello"}]}'

  Stream it with "stream": true and curl -N. The mock also plays Azure
  (model mock-azure), Anthropic (mock-claude) and Gemini (mock-gemini);
  Anthropic's Messages API works against any of them:

    curl -s http://localhost:8080/v1/messages \\
      -H "x-api-key: \$TOLLGATE_KEY" -H 'Content-Type: application/json' \\
      -d '{"model":"mock-gemini","max_tokens":64,"messages":[{"role":"user","content":"Hello"}]}'

  Embeddings, from the mock as OpenAI (text-embedding-3-small) or as
  Gemini (mock-gemini-embedding):

    curl -s http://localhost:8080/v1/embeddings \\
      -H "Authorization: Bearer \$TOLLGATE_KEY" -H 'Content-Type: application/json' \\
      -d '{"model":"mock-gemini-embedding","input":["one","two"],"dimensions":4}'

  Usage so far:

    $bin/tollgate-pdp spend --config $cfg

  Ctrl-C stops everything.
MSG
wait -n "${pids[@]}" || true
echo "run: a process exited; stopping the rest" >&2
