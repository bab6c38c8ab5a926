#!/usr/bin/env bash
# Whether the GPU check's bundle (.gpu, made by `scripts/gpu_check.sh prepare`) runs on a machine that
# has a PyTorch install and little else, as the lent GPU host has: a bare Debian 12 (debootstrap
# --variant=minbase, plus the libssl3 this machine's Python needs) with the repository at /repo and
# .venv at /opt/torch/.venv, so the binary's build-time RUNPATH (this checkout's .venv and
# /usr/local/cuda) finds nothing there and every library comes from the bundle or the path gpu_check
# builds from the host's torch. Runs every gpu_check step there in its CPU mode.
#
#   scripts/bundle_check.sh [ROOTFS]     ROOTFS: the bare system, made on first use and then reused
#                                        (default /tmp/treerpo-bare); the report lands in
#                                        runs/bundle_check/
#
# Needs root (debootstrap, chroot, bind mounts) and Debian's mirror on first use; not part of the test
# command (it is a check of a build artefact for another machine, run after changing `prepare`).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
case "${1:-}" in
  -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  -*) echo "bundle_check: unknown option '$1' (scripts/bundle_check.sh [ROOTFS])" >&2; exit 2 ;;
esac
rootfs=${1:-/tmp/treerpo-bare}
# The bare system is ours only when this script made it: never mount into (or unmount /proc of) another.
marker="$rootfs/.treerpo-bundle-check"
if [ ! -f "$marker" ] && [ -e "$rootfs" ] && [ -n "$(ls -A "$rootfs" 2> /dev/null || echo x)" ]; then
  echo "bundle_check: $rootfs is not a bare system this script made; name an empty or new folder" >&2
  exit 2
fi
[ -x "$root/.gpu/bin/treerpo-train" ] ||
  { echo "bundle_check: no $root/.gpu/bin/treerpo-train; run 'scripts/gpu_check.sh prepare' first" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "bundle_check: needs root (debootstrap, chroot and bind mounts); run it as root" >&2; exit 2; }
[ -f "$root/.venv/pyvenv.cfg" ] ||
  { echo "bundle_check: no $root/.venv (the torch the bundle runs against); run scripts/bootstrap.sh" >&2; exit 2; }
# The interpreter .venv was made from, mounted where the venv expects it.
python_prefix=$(dirname "$(sed -n 's/^home *= *//p' "$root/.venv/pyvenv.cfg")")

if [ ! -f "$marker" ]; then
  command -v debootstrap > /dev/null || apt-get install -y -q debootstrap >&2
  debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian >&2
  cp /etc/resolv.conf "$rootfs/etc/"
  chroot "$rootfs" apt-get install -y -q libssl3 >&2 # for this machine's Python's ssl module, not the binary
  touch "$marker"
fi

mounted=()
unmount() {
  local i
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount "${mounted[i]}" || true; done
}
trap unmount EXIT
bind() {
  mkdir -p "$rootfs$2"
  mount --bind "$1" "$rootfs$2"
  mounted+=("$rootfs$2")
}
bind "$root" /repo
bind "$root/.venv" /opt/torch/.venv
bind "$python_prefix" "$python_prefix"
bind /dev /dev
mkdir -p "$rootfs/proc"
mount -t proc proc "$rootfs/proc"
mounted+=("$rootfs/proc")

rm -rf "$rootfs/tmp/gpu_check"
rc=0
chroot "$rootfs" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/root TMPDIR=/tmp \
  TREERPO_PYTHON=/opt/torch/.venv/bin/python bash /repo/scripts/gpu_check.sh run --device cpu /tmp/gpu_check || rc=$?
mkdir -p "$root/runs/bundle_check"
cp "$rootfs/tmp/gpu_check/"* "$root/runs/bundle_check/" 2> /dev/null || true
echo "bundle_check: gpu_check exit $rc on a bare Debian 12; its report in runs/bundle_check/" >&2
exit "$rc"
