#!/usr/bin/env bash
# The whole test suite: installs what it needs (scripts/setup.sh), then
#   1. cargo test --workspace --locked: unit, property and integration tests; the integration
#      tests run the real binary on real media through the real models, into a real Mosquitto
#      they start themselves (and check the systemd unit offline);
#   2. field checks: the amd64 Debian package (packaged from the binary step 1 built and tested,
#      to spare CI a second full build; packaging/build-deb.sh amd64 builds the release one)
#      installed and used (packaging/test-deb.sh, root only), USB-camera capture through real V4L2 drivers in a QEMU guest (scripts/hwtest.sh,
#      root only), power cuts in a QEMU guest (scripts/powercut.sh 4: the nightly runs 50, root
#      only), a day of four cameras and a microphone compressed into minutes (scripts/soak.sh 1:
#      memory, descriptors and threads flat; the nightly runs 7 days), the aarch64 cross build
#      tested under qemu (cross/test.sh) and packaged as .deb.
# `scripts/test.sh --quick` runs only 1; any other arguments go to `cargo test` (and skip 2).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/setup.sh"
cd "$root"
export VITRINE_MEDIA_DIR="$root/.cache/media" VITRINE_MODELS_DIR="$root/.cache/models"
field=1
if [ "${1:-}" = --quick ]; then field=0; shift; fi
[ $# -eq 0 ] || field=0
# The evaluation's anchor (onnxruntime + supervision's ByteTrack) runs in a pinned venv.
tools/setup-venv.sh >/dev/null
# Build once (the integration tests' feature set also builds the vitrine binary they run).
t0=$(date +%s)
cargo test --workspace --locked --no-run
fetch_models
t1=$(date +%s)
cargo test --workspace --locked "$@"
echo "cargo test: build $((t1 - t0)) s, tests $(( $(date +%s) - t1 )) s"
[ "$field" = 1 ] || exit 0

t0=$(date +%s)
if [ "$(id -u)" = 0 ]; then
  packaging/build-deb.sh amd64 --test-build
  packaging/test-deb.sh "$(ls -t target/debian/vitrine_*_amd64.deb | head -1)"
  # USB cameras through the real V4L2 drivers (vivid, v4l2loopback) in a QEMU guest.
  scripts/hwtest.sh
  # Power cuts at random moments, the agent on ext4 in a QEMU guest (the tests' binary).
  VITRINE_BIN="$root/target/debug/vitrine" scripts/powercut.sh 4
else
  echo "field: packaging/test-deb.sh, scripts/hwtest.sh and scripts/powercut.sh SKIPPED (need root: dpkg -i, apt-get)" >&2
fi
# A simulated day of a four-camera box with a live microphone: no growth.
VITRINE_BIN="$root/target/debug/vitrine" scripts/soak.sh 1
t1=$(date +%s)
cross/test.sh aarch64
packaging/build-deb.sh arm64
t2=$(date +%s)
echo "field checks: amd64 package + V4L2 guest + power cuts + soak $((t1 - t0)) s, aarch64 build + qemu tests + arm64 package $((t2 - t1)) s"
ls -l target/debian/*.deb target/aarch64-unknown-linux-gnu/release/vitrine
