#!/usr/bin/env bash
# Fuzz the math-answer checker (src/reward) with libFuzzer for a bounded time.
#   scripts/fuzz_checker.sh [SECONDS]     (default 60)
# Builds tests/reward/fuzz_checker.cpp with clang++ -fsanitize=fuzzer,address,undefined into
# build-fuzz/ and runs it with -timeout=1: any crash, sanitizer report or input taking over a second
# fails the script (exit 1). Seeds come from tests/reward/fuzz_corpus/; new finds stay in build-fuzz/.
set -euo pipefail

seconds="${1:-60}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${root}/build-fuzz"
clang="$(command -v clang++-14 || command -v clang++ || true)"
if [[ -z "${clang}" ]]; then
  echo "fuzz_checker.sh: clang++ not found; install clang-14 and libclang-rt-14-dev" >&2
  exit 2
fi

mkdir -p "${out}/corpus" "${out}/artifacts"
sources=("${root}"/src/reward/*.cpp "${root}/src/util/error.cpp" "${root}/tests/reward/fuzz_checker.cpp")
binary="${out}/fuzz_checker"
# Rebuild only when a source is newer than the binary.
rebuild=0
[[ -x "${binary}" ]] || rebuild=1
for source in "${sources[@]}" "${root}"/src/reward/*.h "${root}"/include/treerpo/reward/*.h; do
  [[ "${source}" -nt "${binary}" ]] && rebuild=1
done
if [[ "${rebuild}" == 1 ]]; then
  echo "fuzz_checker.sh: building ${binary}" >&2
  "${clang}" -std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
    -I"${root}/include" "${sources[@]}" -o "${binary}"
fi

cp -n "${root}"/tests/reward/fuzz_corpus/* "${out}/corpus/" 2>/dev/null || true
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 "${binary}" "${out}/corpus" \
  -max_total_time="${seconds}" -timeout=1 -max_len=4096 -rss_limit_mb=2048 \
  -artifact_prefix="${out}/artifacts/" -print_final_stats=1
