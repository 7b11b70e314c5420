#!/usr/bin/env bash
# tests/bench/guard_accuracy.sh - the accuracy of the built-in guardrail
# detectors on the labelled corpus tests/corpus/guardrails.tsv: per detector
# TP, FP, FN, TN, precision and recall, the totals of the pii and secret
# categories, and every case a detector gets wrong (FN/FP lines).
#
# It builds the unit test test_common_guard_builtin in build/ if needed (the
# same binary ctest runs, which asserts the thresholds) and runs it from the
# repository root with TG_GUARD_ACCURACY=1. Exits with the test's status.
#   tests/bench/guard_accuracy.sh            # build/ (configured if absent)
#   BUILD=build/asan tests/bench/guard_accuracy.sh
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD:-build}
cd "$top"
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S . -B "$build" >/dev/null
fi
cmake --build "$build" -j"$(nproc)" --target test_common_guard_builtin >/dev/null
TG_SRC="$top" TG_GUARD_ACCURACY=1 "$build/tests/unit/test_common_guard_builtin"
