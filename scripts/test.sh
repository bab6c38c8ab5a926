#!/usr/bin/env bash
# The test command (README, CI): installs what is missing, builds, checks formatting, runs every test suite
# and a bounded fuzzing session of the answer checker.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh --build-dir build
scripts/check-format.sh
ctest --test-dir build --output-on-failure -j"$(nproc)"
scripts/fuzz_checker.sh "${TREERPO_FUZZ_SECONDS:-60}"
echo "all tests passed"
