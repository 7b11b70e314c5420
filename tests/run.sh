#!/usr/bin/env bash
# tests/run.sh - every test: installs what is missing, builds with
# AddressSanitizer + UndefinedBehaviorSanitizer into build/asan (and the
# optimised build of deploy/local/run.sh into build), runs the
# CUnit suites under ctest, then the integration tests and the real-SDK
# client tests (node --test) against real processes on loopback and ipc
# (tests/hierarchy/ alone after them: it loads the machine),
# then a short run (10 s each) of every libFuzzer target (tests/fuzz/run.sh,
# clang, build/fuzz). Safe to run twice.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
build=$top/build/asan

"$top/deploy/local/setup.sh" "$build" -DTG_SANITIZER=address,undefined \
  -DCMAKE_BUILD_TYPE=Debug
# The optimised build deploy/local/run.sh makes, too: -O2 turns on warnings
# (format truncation, array bounds) a debug build never sees.
"$top/deploy/local/setup.sh" "$top/build"

# LMDB and nng keep some memory until exit by design; ASan's leak check
# still runs (detect_leaks=1) and fails a process that leaks.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$top/tests/lsan.supp:print_suppressions=0}

unit_rc=0
(cd "$build" && ctest --output-on-failure -j2) || unit_rc=$?

cd "$top/tests"
if [ ! -d node_modules/openai ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
node_rc=0
conc=()
node --help | grep -q -- --test-concurrency && conc=(--test-concurrency=2)
TG_BIN=$build/bin node --test "${conc[@]}" integration/ clients/ k8s/ || node_rc=$?
# Sidecar PDPs under a central PDP (and its standby): seven or more
# processes and 64 clients, alone, one file at a time.
one=()
node --help | grep -q -- --test-concurrency && one=(--test-concurrency=1)
TG_BIN=$build/bin node --test "${one[@]}" hierarchy/ || node_rc=$?

fuzz_rc=0
"$top/tests/fuzz/run.sh" all "${TG_FUZZ_SECONDS:-10}" || fuzz_rc=$?

e2e_rc=0; TG_BIN=$top/build/bin "$top/tests/e2e/podman.sh" || e2e_rc=$? # images + podman; TG_E2E=0 skips

if [ $unit_rc -ne 0 ] || [ $node_rc -ne 0 ] || [ $fuzz_rc -ne 0 ] || [ $e2e_rc -ne 0 ]; then
  echo "tests: FAILED (unit: exit $unit_rc, integration/clients: exit $node_rc, fuzz: exit $fuzz_rc, e2e: exit $e2e_rc)" >&2
  exit 1
fi
echo "tests: all passed" >&2
