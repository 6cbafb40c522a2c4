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
#      tested under qemu as two CPUs (cross/test.sh), packaged as .deb and that package
#      installed and used in an arm64 Debian root (root only), the armv7 build tested under
#      qemu-arm as two CPUs.
# `scripts/test.sh --quick` runs only 1; any other arguments go to `cargo test` (and skip 2).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# Every stage timed; the table is printed at the end, also when a stage fails.
stages=()
stage() {
  local name=$1 t
  shift
  t=$(date +%s)
  "$@"
  stages+=("$(printf '%-52s %5d s' "$name" $(( $(date +%s) - t )))")
}
stage_table() {
  if [ ${#stages[@]} -gt 0 ]; then
    echo "== scripts/test.sh: time per stage"
    printf '  %s\n' "${stages[@]}"
  fi
}
trap stage_table EXIT
t_setup=$(date +%s)
source "$root/scripts/setup.sh"
stages+=("$(printf '%-52s %5d s' "setup (packages, media)" $(( $(date +%s) - t_setup )))")
cd "$root"
export VITRINE_MEDIA_DIR="$root/.cache/media" VITRINE_MODELS_DIR="$root/.cache/models"
field=1
if [ "${1:-}" = --quick ]; then field=0; shift; fi
[ $# -eq 0 ] || field=0
# The evaluation's anchor (onnxruntime + supervision's ByteTrack) runs in a pinned venv.
stage "python venv (tools/setup-venv.sh)" tools/setup-venv.sh >/dev/null
# Build once (the integration tests' feature set also builds the vitrine binary they run).
stage "cargo test: build" cargo test --workspace --locked --no-run
stage "models (pinned, sha256)" fetch_models
stage "cargo test: run" cargo test --workspace --locked "$@"
[ "$field" = 1 ] || exit 0

if [ "$(id -u)" = 0 ]; then
  stage "amd64 .deb: package" packaging/build-deb.sh amd64 --test-build
  stage "amd64 .deb: installed and used" packaging/test-deb.sh "$(ls -t target/debian/vitrine_*_amd64.deb | head -1)"
  # USB cameras through the real V4L2 drivers (vivid, v4l2loopback) in a QEMU guest.
  stage "V4L2 drivers in a QEMU guest" scripts/hwtest.sh
  # Power cuts at random moments, the agent on ext4 in a QEMU guest (the tests' binary).
  stage "power cuts x4 in a QEMU guest" env VITRINE_BIN="$root/target/debug/vitrine" scripts/powercut.sh 4
else
  echo "field: packaging/test-deb.sh (amd64 and arm64), scripts/hwtest.sh and scripts/powercut.sh SKIPPED (need root: dpkg -i, apt-get, chroot)" >&2
fi
# A simulated day of a four-camera box with a live microphone: no growth.
stage "soak: a day of four cameras" env VITRINE_BIN="$root/target/debug/vitrine" scripts/soak.sh 1
stage "aarch64: build + qemu tests" cross/test.sh aarch64
stage "arm64 .deb: package" packaging/build-deb.sh arm64
if [ "$(id -u)" = 0 ]; then
  stage "arm64 .deb: installed and used in an arm64 root" \
    packaging/test-deb.sh "$(ls -t target/debian/vitrine_*_arm64.deb | head -1)"
fi
stage "armv7: build + qemu tests" cross/test.sh armv7
ls -l target/debian/*.deb target/aarch64-unknown-linux-gnu/release/vitrine \
  target/armv7-unknown-linux-gnueabihf/release/vitrine
