#!/usr/bin/env bash
# Build the Debian package with cargo-deb (installed on first use):
#   packaging/build-deb.sh           # amd64 (native release build)
#   packaging/build-deb.sh arm64     # arm64 (cross/build.sh aarch64 --release, then package)
#   packaging/build-deb.sh amd64 --test-build
#                                    # amd64 from the binary the test suite built and ran
#                                    # (target/debug: same code, dev profile; CI's package test)
# Output: target/debian/vitrine_<version>-1_<arch>.deb (the path is printed last).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
arch=${1:-amd64}
command -v cargo-deb >/dev/null || cargo install cargo-deb --locked --version 3.8.0
command -v dpkg-shlibdeps >/dev/null || { echo "packaging: installing dpkg-dev" >&2;
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends dpkg-dev >/dev/null; }
case "$arch" in
  amd64)
    if [ "${2:-}" = --test-build ]; then
      # cargo-deb 3.8 warns that dev profiles are for testing only: that is the point here.
      [ -x target/debug/vitrine ] || cargo build --locked -p vitrine
      cargo deb --locked -p vitrine --profile dev --no-build --output target/debian/
    else
      cargo deb --locked -p vitrine --output target/debian/
    fi ;;
  arm64)
    cross/build.sh aarch64 --release
    # The architecture comes from the target; libc6:arm64 (installed by cross/setup.sh) lets
    # dpkg-shlibdeps compute the glibc floor (>= 2.35).
    cargo deb --locked -p vitrine --target aarch64-unknown-linux-gnu --no-build \
      --output target/debian/ ;;
  *) echo "unknown arch $arch: amd64 or arm64" >&2; exit 2 ;;
esac
