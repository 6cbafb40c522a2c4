#!/usr/bin/env bash
# Cross-compile Vitrine for ARM on a Debian 12 x86_64 machine, with Debian packages only.
#   cross/build.sh aarch64 [--release] [cargo args]   # Raspberry Pi 4/5 (64-bit OS), glibc >= 2.34
#   cross/build.sh armv7   [--release] [cargo args]   # 32-bit Raspberry Pi OS, glibc >= 2.34
# Output: target/<triple>/{debug,release}/vitrine. Installs what it needs (cross/setup.sh).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
arch=${1:?usage: cross/build.sh aarch64|armv7 [cargo build args]}; shift
case "$arch" in
  aarch64) triple=aarch64-unknown-linux-gnu ;;
  armv7)   triple=armv7-unknown-linux-gnueabihf; export VITRINE_CROSS_ARMV7=1 ;;
  *) echo "unknown target $arch: use aarch64 or armv7" >&2; exit 2 ;;
esac
"$root/cross/setup.sh"
cd "$root"
# Debian's rustc-web carries the ARM standard library (rustup's toolchain here has only x86_64).
export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc
if [ "$arch" = armv7 ]; then
  # No prebuilt armhf std in Debian's rustc-web: build it from rust-web-src.
  export RUSTC_BOOTSTRAP=1
  # Debian's armhf multiarch does not install here (mirror size mismatch), so there is no
  # libasound2-dev:armhf: armv7 builds leave out ALSA microphones (cameras, RTSP and files stay).
  # `test` among the std crates: the standard library cross/test.sh's test build has, so the two
  # builds share every dependency (without it, each of the ~280 crates was built twice: 7 min).
  exec /usr/bin/cargo build --locked --target "$triple" -Zbuild-std=std,panic_abort,test -p vitrine \
    --no-default-features --features v4l,rtsp "$@"
fi
exec /usr/bin/cargo build --locked --target "$triple" -p vitrine "$@"
