#!/usr/bin/env bash
# Fuzz the parsers that read user files with libFuzzer, each for a bounded time.
#   scripts/fuzz.sh [TARGET|all] [SECONDS] [-- LIBFUZZER_FLAGS...]    (default: all, 20 s each)
# Targets (tests/fuzz/<target>.cpp, seeds in tests/fuzz/corpus/<target>/): checker, tokenizer,
# safetensors, model_folder (config.json + model.safetensors.index.json), config (YAML + --set),
# jsonl, results (eval --out), trainer_state (+ SHA256SUMS), optimizer (optimizer.state).
# Each is built with clang++ -fsanitize=fuzzer,address,undefined into build-fuzz/ and run with
# -timeout=1 and -rss_limit_mb=2048: a crash, sanitizer report, input over a second or over 2 GB
# fails the script (libFuzzer's non-zero exit); the input that did is left in build-fuzz/artifacts/.
# New corpus finds stay in build-fuzz/corpus/<target>/. Targets that read tensors link the pinned LibTorch (not
# instrumented itself).
set -euo pipefail

target="${1:-all}"
seconds="${2:-20}"
shift $(($# > 2 ? 2 : $#))
[[ "${1:-}" == "--" ]] && shift
extra=("$@")
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${root}/build-fuzz"
clang="$(command -v clang++-14 || command -v clang++ || true)"
if [[ -z "${clang}" ]]; then
  echo "fuzz.sh: clang++ not found; install clang-14 and libclang-rt-14-dev" >&2
  exit 2
fi
ccache="$(command -v ccache || true)"
all=(checker tokenizer safetensors model_folder config jsonl results trainer_state optimizer)

torch_dir() {
  "${root}/.venv/bin/python" -c 'import os, torch; print(os.path.dirname(torch.__file__))'
}

# Compile and link flags of the targets that read tensors.
torch_cflags() {
  local torch
  torch="$(torch_dir)"
  # LibTorch carries its own fmt headers; the system's (that libfmt was built with) must win.
  mkdir -p "${out}/fmt-first"
  ln -sfn /usr/include/fmt "${out}/fmt-first/fmt"
  echo "-I${out}/fmt-first -isystem ${torch}/include -isystem ${torch}/include/torch/csrc/api/include"
}
torch_libs() {
  local torch
  torch="$(torch_dir)"
  # libtorch exports an old std::filesystem: libstdc++ first makes the system's the one bound.
  echo "-Wl,--push-state,--no-as-needed -lstdc++ -Wl,--pop-state -L${torch}/lib"
  echo "-Wl,-rpath,${torch}/lib -ltorch -ltorch_cpu -lc10"
}

# Sources and link flags of a target.
sources_of() {
  local s=("${root}/tests/fuzz/$1.cpp" "${root}/src/util/error.cpp")
  case "$1" in
    checker) s+=("${root}"/src/reward/*.cpp) ;;
    tokenizer)
      for f in "${root}"/src/tokenizer/*.cpp; do
        [[ "${f}" == */sentencepiece_module.cpp ]] || s+=("${f}")
      done ;;
    safetensors) s+=("${root}/src/model/safetensors.cpp") ;;
    model_folder) s+=("${root}"/src/model/*.cpp "${root}/src/util/checksums.cpp" "${root}/src/util/log.cpp"
      "${root}/src/util/host_transfer.cpp") ;;
    config) s+=("${root}"/src/config/*.cpp) ;;
    jsonl) s+=("${root}/src/eval/dataset.cpp") ;;
    results) s+=("${root}/src/eval/results_file.cpp" "${root}"/src/reward/*.cpp) ;;
    trainer_state) s+=("${root}/src/train/checkpoint.cpp" "${root}/src/util/checksums.cpp" "${root}"/src/config/*.cpp) ;;
    optimizer) s+=("${root}/src/train/adamw.cpp" "${root}/src/model/safetensors.cpp") ;;
    *) echo "fuzz.sh: unknown target '$1' (one of: ${all[*]})" >&2; exit 2 ;;
  esac
  printf '%s\n' "${s[@]}"
}

libs_of() {
  case "$1" in
    tokenizer) echo "-lpcre2-8 -lutf8proc -ldl" ;;
    config | jsonl | results) echo "-lyaml-cpp -lfmt" ;;
    trainer_state) echo "-lyaml-cpp -lfmt -lspdlog -lcrypto" ;;
    safetensors | optimizer) torch_libs ;;
    model_folder) echo "-lfmt -lspdlog -lcrypto $(torch_libs)" ;;
  esac
}

cflags_of() {
  case "$1" in
    safetensors | optimizer | model_folder) torch_cflags ;;
  esac
}

build() {
  local name="$1" binary="${out}/fuzz_$1" rebuild=0 objects=()
  mapfile -t sources < <(sources_of "${name}")
  [[ -x "${binary}" ]] || rebuild=1
  for f in "${sources[@]}" "${root}"/tests/fuzz/*.h $(find "${root}/include" "${root}/src" -name '*.h'); do
    [[ "${f}" -nt "${binary}" ]] && rebuild=1
  done
  [[ "${rebuild}" == 0 ]] && return 0
  echo "fuzz.sh: building ${binary}" >&2
  local flags=(-std=c++17 -O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all
    -I"${root}/include" -I"${root}/src/eval" -DTREERPO_SENTENCEPIECE_MODULE=\"\")
  local libs cflags
  libs="$(libs_of "${name}" | tr '\n' ' ')"
  cflags="$(cflags_of "${name}")"
  # Objects per source, so targets sharing sources compile each once; an object is redone when its
  # source or any project header is newer.
  mkdir -p "${out}/obj"
  # The newest header, found without a pipe into head: under pipefail, head leaving early kills ls with
  # SIGPIPE (exit 141) whenever the list outgrows one write.
  local newest_header="" h
  for h in "${root}"/tests/fuzz/*.h $(find "${root}/include" "${root}/src" -name '*.h'); do
    [[ -z "${newest_header}" || "${h}" -nt "${newest_header}" ]] && newest_header="${h}"
  done
  for f in "${sources[@]}"; do
    local o="${out}/obj/$(echo "${f#"${root}"/}" | tr '/' '_').o"
    if [[ ! -f "${o}" || "${f}" -nt "${o}" || "${newest_header}" -nt "${o}" ]]; then
      # shellcheck disable=SC2086
      ${ccache} "${clang}" "${flags[@]}" ${cflags} -c "${f}" -o "${o}"
    fi
    objects+=("${o}")
  done
  # shellcheck disable=SC2086
  "${clang}" -fsanitize=fuzzer,address,undefined "${objects[@]}" ${libs} -o "${binary}"
}

run() {
  local name="$1" corpus="${out}/corpus/$1"
  mkdir -p "${corpus}" "${out}/artifacts"
  cp -n "${root}/tests/fuzz/corpus/${name}"/* "${corpus}/" 2>/dev/null || true
  # Seeds (real tokenizer files) may exceed libFuzzer's default length; mutations may grow them a little.
  local max_len=65536 biggest
  biggest="$(find "${corpus}" -type f -printf '%s\n' | sort -n | tail -1)"
  if (( ${biggest:-0} * 2 > max_len )); then max_len=$(( biggest * 2 )); fi
  echo "fuzz.sh: ${name} for ${seconds} s" >&2
  # Leaks inside LibTorch's own readers are suppressed (scripts/sanitize.supp says which and why).
  LSAN_OPTIONS="suppressions=${root}/scripts/sanitize.supp:print_suppressions=0" \
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 "${out}/fuzz_${name}" "${corpus}" \
    -max_total_time="${seconds}" -timeout=1 -max_len="${max_len}" -rss_limit_mb=2048 \
    -artifact_prefix="${out}/artifacts/${name}-" -print_final_stats=1 "${extra[@]}"
}

targets=("${target}")
[[ "${target}" == all ]] && targets=("${all[@]}")
for t in "${targets[@]}"; do build "${t}"; done
for t in "${targets[@]}"; do run "${t}"; done
