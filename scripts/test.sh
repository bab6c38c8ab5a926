#!/usr/bin/env bash
# The test command (README, CI): installs what is missing, builds, checks formatting, runs every test suite,
# a bounded fuzzing session of every parser that reads user files (TREERPO_FUZZ_SECONDS each, default 20)
# and the whole suite again under AddressSanitizer + UndefinedBehaviorSanitizer (scripts/sanitize.sh, its
# own build in build-asan/; TREERPO_SANITIZE=0 skips it for a quick local run, CI always runs it).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh --build-dir build
scripts/check-format.sh
ctest --test-dir build --output-on-failure -j"$(nproc)"
scripts/fuzz.sh all "${TREERPO_FUZZ_SECONDS:-20}"
if [[ "${TREERPO_SANITIZE:-1}" == 1 ]]; then scripts/sanitize.sh; fi
echo "all tests passed"
