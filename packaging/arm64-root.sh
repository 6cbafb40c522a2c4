#!/usr/bin/env bash
# An arm64 Debian 12 root for testing the arm64 package on an x86_64 machine (needs root):
#   packaging/arm64-root.sh DIR
# mmdebstrap builds it with the package's dependencies (ffmpeg, adduser, tzdata, libasound2);
# qemu-user-static, registered with binfmt_misc (flag F: the interpreter is loaded once, so it
# also runs inside the chroot), executes every arm64 program in it, dpkg's maintainer scripts
# included. The root is built once per machine and kept as a tarball in /var/cache/vitrine
# (about 3.5 minutes to build, seconds to unpack).
set -euo pipefail
dir=${1:?usage: packaging/arm64-root.sh DIR}
pkgs=ffmpeg,adduser,tzdata,libasound2
need=()
for p in mmdebstrap arch-test binfmt-support qemu-user-static; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# binfmt_misc: containers often start without it mounted; binfmt-support registers qemu's
# formats from /usr/share/binfmts.
[ -e /proc/sys/fs/binfmt_misc/register ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || update-binfmts --enable qemu-aarch64
[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || { echo "arm64-root: qemu-aarch64 not registered with binfmt_misc" >&2; exit 1; }
cache=/var/cache/vitrine/arm64-bookworm-$(echo "$pkgs" | sha256sum | cut -c1-12).tar
if [ ! -s "$cache" ]; then
  mkdir -p "$(dirname "$cache")"
  start=$(date +%s)
  mmdebstrap --quiet --mode=root --architectures=arm64 --variant=apt --include="$pkgs" \
    bookworm "${cache%.tar}.part.tar"
  mv "${cache%.tar}.part.tar" "$cache"
  echo "arm64-root: built $(basename "$cache") in $(( $(date +%s) - start )) s" >&2
fi
tar -C "$dir" -xf "$cache"
