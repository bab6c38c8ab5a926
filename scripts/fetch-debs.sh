#!/usr/bin/env bash
# Downloads the .deb files bootstrap.sh --debs needs, on a machine that has apt (same distribution as the
# target), into DIR. Carry DIR to a host without package access (e.g. a GPU host with PyTorch) and run
#   scripts/bootstrap.sh --debs DIR
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: scripts/fetch-debs.sh DIR" >&2; exit 2; }
mkdir -p "$1"
cd "$1"
# Headers/CMake files and the runtime libraries they link to (not LibTorch: it comes with PyTorch;
# libgloo-dev only for the Gloo headers LibTorch's ProcessGroupGloo.hpp includes).
apt-get download libsentencepiece-dev libsentencepiece0 nlohmann-json3-dev libcli11-dev \
  libspdlog-dev libspdlog1.10 libfmt-dev libfmt9 libyaml-cpp-dev libyaml-cpp0.7 libgtest-dev \
  libgmock-dev googletest libpcre2-dev libpcre2-8-0 libpcre2-16-0 libpcre2-32-0 libpcre2-posix3 \
  libutf8proc-dev libutf8proc2 libssl-dev libssl3 ccache libgloo-dev
ls -1 "$PWD"/*.deb
