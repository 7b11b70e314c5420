#!/usr/bin/env bash
# tests/fuzz/run.sh TARGET SECONDS - builds the libFuzzer targets (clang,
# -fsanitize=fuzzer,address,undefined) into build/fuzz if needed and runs
# TARGET ("all": each in turn) for SECONDS on a copy of its checked-in
# corpus (tests/fuzz/corpus/TARGET) plus its regression inputs
# (tests/fuzz/crashes/TARGET, which must all pass first). Exits non-zero on
# the first crash, leak or timeout and prints the input that caused it
# (kept under build/fuzz/findings/TARGET/). Installs clang and libFuzzer's
# runtime when missing.
#   tests/fuzz/run.sh all 10          # the short run of tests/run.sh
#   tests/fuzz/run.sh req_parse 3600  # a long run of one target
#   FUZZ_JOBS=2 tests/fuzz/run.sh policy 600   # parallel workers
#   FUZZ_NO_BUILD=1 tests/fuzz/run.sh all 60     # no rebuild first
#   FUZZ_BUILD=/tmp/f FUZZ_NO_BUILD=1 ...        # binaries copied elsewhere
set -euo pipefail

if [ $# -ne 2 ] || ! [[ $2 =~ ^[0-9]+$ ]]; then
  echo "usage: $0 TARGET|all SECONDS" >&2
  exit 2
fi
target=$1
secs=$2
top=$(cd "$(dirname "$0")/../.." && pwd)
fuzz=$top/tests/fuzz
build=${FUZZ_BUILD:-$top/build/fuzz}

pkgs=(clang libclang-rt-14-dev)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
    missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "fuzz: installing ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

targets=$(sed -n '/^set(TG_FUZZ_TARGETS/,/)/p' "$fuzz/CMakeLists.txt" |
  tr -d '()' | sed 's/set//; s/TG_FUZZ_TARGETS//' | tr -s ' \n' '\n' | sed '/^$/d')
if [ "$target" = all ]; then
  run=$targets
elif grep -qx "$target" <<<"$targets"; then
  run=$target
else
  echo "fuzz: no target '$target'; targets: all" $targets >&2
  exit 2
fi

t0=$(date +%s)
# FUZZ_NO_BUILD=1 runs the binaries already in build/fuzz (a long run while
# the tree is being edited).
if [ -z "${FUZZ_NO_BUILD:-}" ]; then
  # fuzzer-no-link: coverage feedback from every library, not only the
  # harness (the fuzz targets add -fsanitize=fuzzer, which links libFuzzer).
  cmake -S "$top" -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug \
    -DCMAKE_C_FLAGS=-fsanitize=fuzzer-no-link -DTG_SANITIZER=address,undefined \
    -DTG_FUZZ=ON >/dev/null
  cmake --build "$build" -j"$(nproc)" --target fuzz_all >/dev/null
fi
echo "fuzz: built in $(( $(date +%s) - t0 ))s" >&2

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$top/tests/lsan.supp:print_suppressions=0}

rc=0
for t in $run; do
  bin=$build/bin/fuzz_$t
  work=$build/work/$t
  found=$build/findings/$t
  # The harnesses that write files (config, policy) write them here: a
  # tmpfs when there is one, so a run waits on no disk.
  scratch=$(mktemp -d "${FUZZ_TMP:-$( [ -d /dev/shm ] && [ -w /dev/shm ] && echo /dev/shm || echo "${TMPDIR:-/tmp}")}/tg-fuzz-$t.XXXXXX")
  rm -rf "$work"
  mkdir -p "$work" "$found"
  cp -a "$fuzz/corpus/$t/." "$work/"
  log=$build/findings/$t.log
  # Regression inputs first: each must run clean.
  if [ -d "$fuzz/crashes/$t" ] && [ -n "$(ls -A "$fuzz/crashes/$t")" ]; then
    if ! TMPDIR=$scratch "$bin" -runs=0 "$fuzz/crashes/$t"/* >"$log" 2>&1; then
      echo "fuzz: $t: a regression input in tests/fuzz/crashes/$t fails:" >&2
      tail -n 60 "$log" >&2
      rc=1
      rm -rf "$scratch"
      continue
    fi
  fi
  # -timeout: one input taking longer is a finding (a hang); -rss_limit_mb
  # keeps a runaway allocation a finding too.
  if TMPDIR=$scratch "$bin" -max_total_time="$secs" -max_len=65536 \
      -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$found/" ${FUZZ_JOBS:+-jobs=$FUZZ_JOBS -workers=$FUZZ_JOBS} \
      "$work" "$fuzz/corpus/$t" >"$log" 2>&1; then
    stats=$(grep -E '^stat::(number_of_executed_units|average_exec_per_sec):' "$log" |
      awk '{printf "%s ", $2}')
    echo "fuzz: $t: ok (execs, execs/s: ${stats:-?})" >&2
  else
    echo "fuzz: $t: FAILED; log: $log" >&2
    grep -E 'ERROR|SUMMARY|runtime error|==[0-9]+==' "$log" | head -n 5 >&2
    sed -n '/^    #[0-9]/p' "$log" | head -n 25 >&2
    for a in "$found"/crash-* "$found"/leak-* "$found"/timeout-* "$found"/oom-*; do
      [ -e "$a" ] || continue
      echo "fuzz: $t: input: $a ($(wc -c <"$a") bytes):" >&2
      head -c 400 "$a" | od -c | head -n 12 >&2
    done
    echo "fuzz: keep it as a regression input: cp INPUT $fuzz/crashes/$t/" >&2
    rc=1
  fi
  rm -rf "$scratch"
done
exit $rc
