#!/usr/bin/env bash
# The platform-sensitive tests for an ARM target, run under qemu-user:
#   cross/test.sh aarch64      # 64-bit Raspberry Pi OS, RK3588 boards
#   cross/test.sh armv7        # 32-bit Raspberry Pi OS (Pi 2/3/4), built with -Zbuild-std
# 1. unit and property tests of signals (geometry, tracking, windows), models (decoding, NMS,
#    the log-mel front end, manifest checks), sensors (pixel conversion on real frames: zune-jpeg
#    takes NEON paths on ARM; motion gating) and the agent library (outbox: on-disk format, CRC,
#    recovery; on armv7 also every 32-bit `usize`), built --release so they share the package
#    build's dependencies;
# 2. the cross-built `vitrine replay` on real video as two CPUs each, compared with the native
#    x86 f32 binary's events: aarch64 as a Cortex-A76 (Pi 5, RK3588: half precision and dot
#    products: `probe` must see them, and precision = "f16" must run tract's arm64fp16 kernels)
#    and a Cortex-A72 (Pi 4: neither; `auto`, f32 on the NEON f32 kernels); armv7 as a
#    Cortex-A7 (Pi 2: tract's A7-tuned NEON kernels) and a Pi 4 on a 32-bit OS (generic NEON).
#    qemu-user's `-cpu` sets the instructions and the auxiliary vector; /proc/cpuinfo, which
#    tract reads for NEON, `asimdhp` and the core's part number, is the host's under qemu-user
#    7.2, so the core's own (cross/cpuinfo/) is bind-mounted over it in a private mount
#    namespace;
# 3. `probe` where /proc/cpuinfo is hidden (a procfs mounted `subset=pid`, as systemd's
#    ProcSubset=pid does): the agent must say that tract will take its slowest kernels.
# `cross/test.sh ARCH --build-only` builds what 1 and 2 run and stops (a later run finds it built,
# unless a build for the other ARM target ran in between: it rebuilds this target's tree).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
arch=${1:-aarch64}
build_only=0
[ "${2:-}" = --build-only ] && build_only=1
case "$arch" in
  aarch64) triple=aarch64-unknown-linux-gnu qemu=qemu-aarch64-static
           # What the daemon is built with on this target (cross/build.sh): its default features,
           # and not the sensors crate's `default` flag, which `-p vitrine-sensors` would add and
           # so build that crate and the agent twice (for the tests, then for the binary).
           features=(--no-default-features --features vitrine/default) ;;
  armv7)   triple=armv7-unknown-linux-gnueabihf qemu=qemu-arm-static
           # qemu-arm finds the armhf loader and libc of the cross toolchain (no armhf dpkg arch).
           export VITRINE_CROSS_ARMV7=1 RUSTC_BOOTSTRAP=1 QEMU_LD_PREFIX=/usr/arm-linux-gnueabihf
           features=(-Zbuild-std=std,panic_abort,test --no-default-features --features vitrine/v4l,vitrine/rtsp) ;;
  *) echo "unknown target $arch: aarch64 or armv7" >&2; exit 2 ;;
esac
"$root/cross/setup.sh"
cd "$root"
export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc
# One invocation: one dependency resolution, one build.
unit_tests() {
  /usr/bin/cargo test --locked --release --target "$triple" "${features[@]}" -p vitrine-signals \
    -p vitrine-models -p vitrine-config -p vitrine -p vitrine-sensors --lib --test convert_real "$@"
}
# The shipped binary, from the dependencies the unit tests built (same features, same std crates).
build_binary() {
  if [ "$arch" = armv7 ]; then cross/build.sh armv7 --release
  else /usr/bin/cargo build --locked --release --target "$triple" -p vitrine; fi
}
if [ "$build_only" = 1 ]; then
  start=$(date +%s)
  unit_tests --no-run
  build_binary
  echo "$arch: unit tests and binary built in $(( $(date +%s) - start )) s"
  exit 0
fi
source scripts/setup.sh          # media and fetch_models
export VITRINE_MEDIA_DIR="$root/.cache/media" VITRINE_MODELS_DIR="$root/.cache/models"
fetch_models
start=$(date +%s)
unit_tests
echo "$arch unit tests under qemu: $(( $(date +%s) - start )) s"

# 2. The same real video through the native and the cross-built binary (built from the
#    dependencies step 1 built: same features, same standard library crates): same windows, and the
#    same aggregates up to float differences between x86 (AVX/FMA) and NEON kernels.
build_binary
native="$root/target/debug/vitrine"
[ -x "$native" ] || cargo build --locked -p vitrine
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
# qemu-user emulates NEON slowly (~1 s per frame as an A72, ~3 s in f16 as an A76 here): the
# first 15 s of the video at 1 frame/s in 5 s windows (3 windows) keeps this step near a minute.
ffmpeg -v error -i "$VITRINE_MEDIA_DIR/vtest.avi" -t 15 -c copy "$work/clip.avi"
cat > "$work/demo.toml" <<TOML
[device]
id = "arm-check"
store_id = "lab"
[[cameras]]
id = "walkway"
file = "$work/clip.avi"
fps = 1
[[cameras.lines]]
id = "walkway-x045"
from = [0.45, 0.28]
to = [0.45, 0.72]
in = "left"
[[cameras.zones]]
id = "pavement-west"
polygon = [[0.0, 0.31], [0.42, 0.31], [0.42, 0.50], [0.0, 0.45]]
[models]
dir = "$VITRINE_MODELS_DIR"
[privacy]
window_secs = 5
[outbox]
dir = "$work/state"
TOML
conf="$work/demo.toml"
replay() { "$@" replay --quiet --config "$conf" --camera walkway --input "$work/clip.avi" \
  --start 2026-11-29T10:00:00Z; }
replay "$native" > "$work/x86.jsonl" 2> /dev/null
arm="$root/target/$triple/release/vitrine"
# Run "$@" under qemu as core $cpu (its instructions, auxiliary vector and /proc/cpuinfo,
# cross/cpuinfo/$info.txt).
as_cpu() {
  unshare -m sh -c 'mount --bind "$0" /proc/cpuinfo && exec "$@"' "$root/cross/cpuinfo/$info.txt" \
    $qemu -cpu "$cpu" "$@"
}
# Each CPU: qemu's -cpu, its cpuinfo file, what `auto` must say on it, the precision the replay
# runs in and the kernels the log must name. aarch64: `auto` takes f32 on both (f16 has not passed
# the suite's acceptance rule: docs/evaluator.md, "Precision"), saying on the A76 that it has half
# precision; the A76 replay runs f16 as configured, to prove tract's f16 kernels and their counts.
# armv7: f32 on tract's NEON kernels (the A7-tuned ones on a Pi 2's Cortex-A7).
case "$arch" in
  aarch64) cpus=("cortex-a76 cortex-a76 f16 arm64fp16_mmm_f16"
                 "cortex-a72 cortex-a72 f32 arm64simd_mmm_f32") ;;
  armv7)   cpus=("cortex-a7 cortex-a7 f32 armv7neon_mmm_f32"
                 "max cortex-a72-aarch32 f32 armv7neon_mmm_f32") ;;
esac
for spec in "${cpus[@]}"; do
  read -r cpu info want kernel <<< "$spec"
  case "$info" in
    cortex-a76) auto="f32: aarch64 (fp16: yes, dotprod: yes) has half-precision arithmetic, but" ;;
    cortex-a72) auto="f32: aarch64 (fp16: no, dotprod: no) has no half-precision arithmetic" ;;
    *)          auto="f32: arm (neon: yes, fp16: no, dotprod: no) has no half-precision arithmetic" ;;
  esac
  name="$arch -cpu $cpu ($info)"
  # What `auto` says it takes on this CPU, before anything runs.
  as_cpu "$arm" probe 2> /dev/null > "$work/probe-$info.txt" || true
  grep -qF "runs the models in $auto" "$work/probe-$info.txt" || {
    echo "$name: probe does not say \"$auto\":" >&2; cat "$work/probe-$info.txt" >&2; exit 1; }
  conf="$work/demo-$info.toml"
  sed "s/^\[models\]\$/[models]\nprecision = \"$([ $want = f16 ] && echo f16 || echo auto)\"/" "$work/demo.toml" > "$conf"
  start=$(date +%s)
  replay as_cpu "$arm" > "$work/arm-$info.jsonl" 2> "$work/arm-$info.log"
  echo "$name replay of 15 s of vtest.avi (15 frames) under qemu: $(( $(date +%s) - start )) s"
  grep -q "detector precision: $want" "$work/arm-$info.log" && grep -q "kernels: .*$kernel" "$work/arm-$info.log" || {
    echo "$name: the detector did not run in $want on $kernel kernels:" >&2
    grep -i "precision\|kernels" "$work/arm-$info.log" >&2; exit 1; }
  grep -o "matrix kernels: [^=]*" "$work/arm-$info.log" | head -1 | sed "s/ [a-z_]*$//; s/^/$name, $want: /"
  python3 - "$work/x86.jsonl" "$work/arm-$info.jsonl" "$name" <<'PY'
import json, sys
a, b = ([json.loads(l) for l in open(p)] for p in sys.argv[1:3])
assert len(a) == len(b) and len(a) >= 3, (len(a), len(b))
def figures(e):
    c = e
    lines = sum((l["in"] or 0) + (l["out"] or 0) for l in c["lines"])
    return c["people"]["max"] or 0, lines, e["coverage"]["frames_analysed"]
worst = 0
for x, y in zip(a, b):
    assert x["window"] == y["window"] and x["seq"] == y["seq"], (x["window"], y["window"])
    (px, lx, fx), (py, ly, fy) = figures(x), figures(y)
    assert fx == fy, ("frames analysed differ", fx, fy)
    worst = max(worst, abs(px - py), abs(lx - ly))
assert worst <= 1, f"x86 and {sys.argv[3]} aggregates differ by {worst}"
print(f"x86 f32 vs {sys.argv[3]}: {len(a)} windows, frames identical, people max / line counts within {worst}")
PY
done
# 3. A sandbox that hides /proc/cpuinfo (procfs `subset=pid`, systemd's ProcSubset=pid): tract
#    then takes its slowest kernels, and the agent must say so with the fix.
read -r cpu info _ <<< "${cpus[0]}"
unshare -m sh -c 'mount -t proc -o subset=pid proc /proc && exec "$@"' sh \
  $qemu -cpu "$cpu" "$arm" probe 2> /dev/null > "$work/probe-hidden.txt" || true
grep -q "/proc/cpuinfo cannot be read.*ProcSubset=pid" "$work/probe-hidden.txt" || {
  echo "$arch: probe under a hidden /proc/cpuinfo does not warn:" >&2; cat "$work/probe-hidden.txt" >&2; exit 1; }
echo "$arch -cpu $cpu with /proc/cpuinfo hidden: probe warns that tract takes its slowest kernels"
