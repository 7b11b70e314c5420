#!/usr/bin/env bash
# portkey.sh - installs the Portkey gateway (npm @portkey-ai/gateway) for
# tests/bench/run.sh's side-by-side target P, once, into a cache outside
# the repository, and prints the path of its start script. run.sh starts
# it itself (node PATH --port=N --headless) so it can stop it.
#
#   tests/bench/portkey.sh        prints e.g. ~/.cache/tollgate-bench/
#                                 portkey/node_modules/@portkey-ai/gateway/
#                                 build/start-server.js
#
# Knobs (environment): BENCH_PORTKEY_VERSION (1.15.2), BENCH_PORTKEY_DIR
# (${XDG_CACHE_HOME:-$HOME/.cache}/tollgate-bench/portkey). Exits non-zero
# with the reason on standard error when node or npm is missing or the
# install fails; npm's own output goes to DIR/npm.log.
set -euo pipefail

version=${BENCH_PORTKEY_VERSION:-1.15.2}
dir=${BENCH_PORTKEY_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tollgate-bench/portkey}
pkg=$dir/node_modules/@portkey-ai/gateway
start=$pkg/build/start-server.js

command -v node >/dev/null 2>&1 || { echo "node is not installed" >&2; exit 1; }

# Installed already, at this version: nothing to do.
if [ -f "$start" ] &&
   grep -q "\"version\": \"$version\"" "$pkg/package.json" 2>/dev/null; then
  echo "$start"
  exit 0
fi

command -v npm >/dev/null 2>&1 || { echo "npm is not installed" >&2; exit 1; }
mkdir -p "$dir"
# No lifecycle scripts: the package's postinstall (patch-package) has
# nothing to patch in the published files.
if ! timeout 600 npm install --prefix "$dir" --no-audit --no-fund \
       --ignore-scripts "@portkey-ai/gateway@$version" >"$dir/npm.log" 2>&1; then
  why=$(awk '/^npm error/ && !/ code |A complete log/ {
               sub(/^npm error [a-z]* */, ""); sub(/\.$/, ""); print; exit }' "$dir/npm.log")
  echo "npm install @portkey-ai/gateway@$version failed" \
       "(${why:-see the log}; $dir/npm.log)" >&2
  exit 1
fi
[ -f "$start" ] || { echo "$start is missing after npm install" >&2; exit 1; }
echo "$start"
