#!/usr/bin/env bash
# Installs what the build needs and configures + builds treerpo.
#
#   scripts/bootstrap.sh [--debs DIR] [--build-dir DIR] [--build-type TYPE] [--sanitize] [--no-build]
#
# LibTorch 2.x, in this order: $Torch_DIR or $LIBTORCH; the installed PyTorch (python3 -c 'import torch',
# how a GPU host with PyTorch gets its own CUDA LibTorch); else the pinned wheel
# (scripts/requirements-torch.txt) installed into the project environment .venv (git-ignored).
# The oracle tests' Python: $TREERPO_PYTHON, else .venv with scripts/requirements-oracles.txt beside the
# pinned torch (installed if missing or stale). Other libraries: apt, or with --debs DIR the .deb files
# in DIR (made by scripts/fetch-debs.sh) unpacked into .deps/prefix, for hosts without package access.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build_dir="$root/build"
build_type=Release
debs=""
do_build=1
sanitize=OFF
while [ $# -gt 0 ]; do
  case "$1" in
    --debs) debs=$(cd "$2" && pwd); shift 2 ;;
    --build-dir) build_dir=$2; shift 2 ;;
    --build-type) build_type=$2; shift 2 ;;
    --no-build) do_build=0; shift ;;
    --sanitize) sanitize=ON; shift ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "bootstrap.sh: unknown option '$1'; see --help" >&2; exit 2 ;;
  esac
done

# The Debian packages of every dependency (fetch-debs.sh downloads the same list plus runtime libraries).
packages=(cmake g++ make ccache libsentencepiece-dev nlohmann-json3-dev libcli11-dev libspdlog-dev
  libfmt-dev libyaml-cpp-dev libssl-dev libgtest-dev libpcre2-dev libutf8proc-dev clang-format clang
  libclang-rt-14-dev gnuplot-nox libopenblas0-pthread libgloo-dev chromium chromium-driver)

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

missing_packages() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  echo "${missing[@]:-}"
}

apt_install() {
  local missing
  missing=$(missing_packages "$@")
  [ -z "$missing" ] && return 0
  echo "bootstrap: installing $missing" >&2
  as_root apt-get update -qq
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends $missing >/dev/null
}

cmake_args=(-DCMAKE_BUILD_TYPE="$build_type" -DTREERPO_SANITIZE="$sanitize")
prefix_path=()
venv="$root/.venv"

# The project environment: the pinned torch wheel and the oracle libraries, installed once; a stamp
# of both requirement files tells when they changed.
project_venv() {
  local stamp="$venv/.treerpo-requirements" want
  want=$(cat "$root/scripts/requirements-torch.txt" "$root/scripts/requirements-oracles.txt" | sha256sum)
  if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then return 0; fi
  if [ -n "$debs" ]; then
    echo "bootstrap: no package access with --debs; set Torch_DIR and TREERPO_PYTHON instead" >&2; exit 2
  fi
  echo "bootstrap: installing the pinned torch and the oracle libraries into $venv" >&2
  python3 -m venv "$venv" 2>/dev/null || { apt_install python3-venv && python3 -m venv "$venv"; }
  "$venv/bin/python" -m pip install -q --disable-pip-version-check \
    -r "$root/scripts/requirements-torch.txt" -r "$root/scripts/requirements-oracles.txt"
  echo "$want" > "$stamp"
}

# 1. LibTorch 2.x
torch_dir="${Torch_DIR:-}"
if [ -z "$torch_dir" ] && [ -n "${LIBTORCH:-}" ]; then torch_dir="$LIBTORCH/share/cmake/Torch"; fi
if [ -z "$torch_dir" ] && command -v python3 >/dev/null &&
   py_prefix=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)' 2>/dev/null); then
  torch_dir="$py_prefix/Torch"
  echo "bootstrap: LibTorch from the installed PyTorch ($py_prefix)" >&2
fi
python="${TREERPO_PYTHON:-}"
if [ -z "$torch_dir" ] || [ -z "$python" ]; then
  if [ -z "$python" ] && [ -n "$torch_dir" ] && python3 -c \
       'import torch, transformers, tokenizers, safetensors, tensorboard, jsonschema, selenium' 2>/dev/null; then
    python=$(command -v python3)
  else
    project_venv
    [ -n "$python" ] || python="$venv/bin/python"
    if [ -z "$torch_dir" ]; then
      torch_dir="$("$venv/bin/python" -c 'import torch; print(torch.utils.cmake_prefix_path)')/Torch"
      echo "bootstrap: LibTorch from the pinned wheel in $venv" >&2
    fi
  fi
fi
cmake_args+=(-DTorch_DIR="$torch_dir" -DTREERPO_PYTHON="$python")

# 2. The other libraries
if [ -n "$debs" ]; then
  prefix="$root/.deps/prefix"
  mkdir -p "$prefix"
  for deb in "$debs"/*.deb; do dpkg-deb -x "$deb" "$prefix"; done
  prefix_path+=("$prefix/usr")
  export PATH="$prefix/usr/bin:$PATH"
  export LD_LIBRARY_PATH="$prefix/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  cmake_args+=(-DCMAKE_INSTALL_RPATH="$prefix/usr/lib/x86_64-linux-gnu" -DCMAKE_BUILD_RPATH="$prefix/usr/lib/x86_64-linux-gnu")
  echo "bootstrap: libraries from $debs unpacked into $prefix" >&2
else
  apt_install "${packages[@]}"
fi
if [ ${#prefix_path[@]} -gt 0 ]; then
  cmake_args+=(-DCMAKE_PREFIX_PATH="$(IFS=';'; echo "${prefix_path[*]}")")
fi

# 3. Configure and build
cmake -S "$root" -B "$build_dir" "${cmake_args[@]}" >/dev/null
if [ "$do_build" = 1 ]; then
  cmake --build "$build_dir" -j"$(nproc)"
fi
