#!/usr/bin/env bash
# Build the Debian package with cargo-deb (installed on first use):
#   packaging/build-deb.sh           # amd64 (native release build)
#   packaging/build-deb.sh arm64     # arm64 (cross/build.sh aarch64 --release, then package)
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
    cargo deb --locked -p vitrine --output target/debian/ 2>&1 | tail -1 ;;
  arm64)
    cross/build.sh aarch64 --release
    # dpkg-shlibdeps cannot read arm64 libraries here without libc6:arm64: the
    # dependencies are given (glibc >= 2.34 is the floor of Debian's rustc-web builds).
    cargo deb --locked -p vitrine --target aarch64-unknown-linux-gnu --no-build \
      --deb-arch arm64 --output target/debian/ 2>&1 | tail -1 ;;
  *) echo "unknown arch $arch: amd64 or arm64" >&2; exit 2 ;;
esac
