#!/usr/bin/env bash
# setup.sh - installs what Tollgate needs on Debian 12 and builds it.
# Safe to run again: installs only what is missing, rebuilds incrementally.
#   deploy/local/setup.sh [BUILD_DIR] [extra cmake args...]
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$top/build}
shift || true

pkgs=(build-essential cmake pkg-config git ca-certificates curl
      libnng-dev libprotobuf-c-dev protobuf-c-compiler libmicrohttpd-dev
      libcurl4-openssl-dev liblmdb-dev libcjson-dev libcunit1-dev libssl-dev
      libvectorscan-dev lmdb-utils libyaml-dev)
command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
command -v npm >/dev/null 2>&1 || pkgs+=(npm)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
    missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null
echo "setup: built into $build/bin" >&2
