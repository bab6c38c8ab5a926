#!/usr/bin/env bash
# AddressSanitizer + UndefinedBehaviorSanitizer build of the project and its whole test suite.
#   scripts/sanitize.sh [BUILD_DIR]      (default build-asan)
# Builds with -DTREERPO_SANITIZE=ON (RelWithDebInfo, which the option makes -O1 -g1: reports carry source lines) and runs
# CTest there. Any ASan or UBSan report, or a leak LeakSanitizer finds, fails its test. LibTorch and
# Python are not instrumented: scripts/sanitize.supp lists the leak reports inside them that are
# suppressed, each with its reason; none names project code.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-${root}/build-asan}"
start=$(date +%s)
"${root}/scripts/bootstrap.sh" --build-dir "${build}" --build-type RelWithDebInfo --sanitize
built=$(date +%s)
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:${ASAN_OPTIONS:-}"
export LSAN_OPTIONS="suppressions=${root}/scripts/sanitize.supp:print_suppressions=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
ctest --test-dir "${build}" --output-on-failure -j"$(nproc)"
echo "sanitize.sh: build $((built - start)) s, tests $(($(date +%s) - built)) s" >&2
