#!/usr/bin/env bash
# Fails when any tracked C++ file differs from .clang-format's layout (prints the offending files).
set -euo pipefail
cd "$(dirname "$0")/.."
files=$(git ls-files '*.cpp' '*.h' '*.hpp' '*.cu')
[ -z "$files" ] && exit 0
# shellcheck disable=SC2086
if ! clang-format --dry-run --Werror $files 2>/tmp/treerpo-format.log; then
  grep -o '^[^:]*:[0-9]*:[0-9]*: error' /tmp/treerpo-format.log | cut -d: -f1 | sort -u | sed 's/^/format drift: /' >&2
  echo "run: clang-format -i \$(git ls-files '*.cpp' '*.h')" >&2
  exit 1
fi
