#!/usr/bin/env bash
# Installs what the build needs and configures + builds treerpo.
#
#   scripts/bootstrap.sh [--debs DIR] [--build-dir DIR] [--build-type TYPE] [--no-build]
#
# LibTorch, in this order: $Torch_DIR or $LIBTORCH; the installed PyTorch (how a CUDA host gets a CUDA
# LibTorch); Debian/Ubuntu libtorch-dev (CPU). Other libraries: apt, or with --debs DIR the .deb files in DIR
# (made by scripts/fetch-debs.sh) unpacked into .deps/prefix — for hosts without package access.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build_dir="$root/build"
build_type=Release
debs=""
do_build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --debs) debs=$(cd "$2" && pwd); shift 2 ;;
    --build-dir) build_dir=$2; shift 2 ;;
    --build-type) build_type=$2; shift 2 ;;
    --no-build) do_build=0; shift ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "bootstrap.sh: unknown option '$1'; see --help" >&2; exit 2 ;;
  esac
done

# The Debian packages of every dependency (fetch-debs.sh downloads the same list plus runtime libraries).
packages=(cmake g++ make ccache libsentencepiece-dev nlohmann-json3-dev libcli11-dev libspdlog-dev
  libfmt-dev libyaml-cpp-dev libgtest-dev libpcre2-dev libutf8proc-dev clang-format clang
  libclang-rt-14-dev gnuplot-nox libopenblas0-pthread)

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

cmake_args=(-DCMAKE_BUILD_TYPE="$build_type")
prefix_path=()

# 1. LibTorch
torch_dir="${Torch_DIR:-}"
if [ -z "$torch_dir" ] && [ -n "${LIBTORCH:-}" ]; then torch_dir="$LIBTORCH/share/cmake/Torch"; fi
if [ -z "$torch_dir" ] && command -v python3 >/dev/null &&
   py_prefix=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)' 2>/dev/null); then
  torch_dir="$py_prefix/Torch"
  echo "bootstrap: LibTorch from the installed PyTorch ($py_prefix)" >&2
fi
if [ -z "$torch_dir" ]; then
  if [ -n "$debs" ]; then
    echo "bootstrap: no LibTorch found (set Torch_DIR or LIBTORCH, or install PyTorch)" >&2; exit 2
  fi
  apt_install libtorch-dev
  echo "bootstrap: LibTorch from Debian's libtorch-dev (CPU)" >&2
else
  cmake_args+=(-DTorch_DIR="$torch_dir")
fi

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
