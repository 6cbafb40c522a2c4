#!/usr/bin/env bash
# The platform-sensitive tests for an ARM target, run under qemu-user:
#   cross/test.sh aarch64
# 1. unit and property tests of signals (geometry, tracking, windows), models (decoding, NMS,
#    the log-mel front end, manifest checks), sensors (pixel conversion on real frames: zune-jpeg
#    takes NEON paths on ARM; motion gating) and the agent library (outbox: on-disk format, CRC,
#    recovery), built --release so they share the package build's dependencies;
# 2. the cross-built `vitrine replay` on real video as two CPUs: a Cortex-A76 (Pi 5, RK3588:
#    half precision and dot products: `probe` must see them, and precision = "f16" must run
#    tract's arm64fp16 kernels) and a Cortex-A72 (Pi 4: neither; `auto`, f32 on the NEON f32
#    kernels), each compared with the native x86 f32 binary's events. qemu-user's `-cpu` sets the instructions and the
#    auxiliary vector; /proc/cpuinfo, which tract reads for `asimdhp` and the core's part
#    number, is the host's under qemu-user 7.2, so the core's own (cross/cpuinfo/) is
#    bind-mounted over it in a private mount namespace.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
arch=${1:-aarch64}
[ "$arch" = aarch64 ] || { echo "only aarch64 runs its tests in CI (armv7: build only)" >&2; exit 2; }
triple=aarch64-unknown-linux-gnu
"$root/cross/setup.sh"
cd "$root"
source scripts/setup.sh          # media and fetch_models
export VITRINE_MEDIA_DIR="$root/.cache/media" VITRINE_MODELS_DIR="$root/.cache/models"
fetch_models
export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc
start=$(date +%s)
# One invocation: one dependency resolution, one build.
/usr/bin/cargo test --locked --release --target "$triple" -p vitrine-signals -p vitrine-models \
  -p vitrine-config -p vitrine -p vitrine-sensors --lib --test convert_real
echo "aarch64 unit tests under qemu: $(( $(date +%s) - start )) s"

# 2. The same real video through the native and the cross-built binary: same windows, and the
#    same aggregates up to float differences between x86 (AVX/FMA) and NEON kernels.
/usr/bin/cargo build --locked --release --target "$triple" -p vitrine
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
# Run "$@" under qemu-aarch64 as core $cpu (its instructions, auxiliary vector and cpuinfo).
as_cpu() {
  unshare -m sh -c 'mount --bind "$0" /proc/cpuinfo && exec "$@"' "$root/cross/cpuinfo/$cpu.txt" \
    qemu-aarch64-static -cpu "$cpu" "$@"
}
# `auto` takes f32 on both (f16 has not passed the suite's acceptance rule: docs/evaluator.md,
# "Precision"), saying on the A76 that it has half precision; the A76 replay runs f16 as
# configured, to prove tract's f16 kernels and their counts.
for cpu in cortex-a76 cortex-a72; do
  case $cpu in
    cortex-a76) auto="f32: aarch64 (fp16: yes, dotprod: yes) has half-precision arithmetic, but"
                want=f16 kernel=arm64fp16_mmm_f16 ;;
    *) auto="f32: aarch64 (fp16: no, dotprod: no) has no half-precision arithmetic"
       want=f32 kernel=arm64simd_mmm_f32 ;;
  esac
  # What `auto` says it takes on this CPU, before anything runs.
  as_cpu "$arm" probe 2> /dev/null > "$work/probe-$cpu.txt" || true
  grep -qF "runs the models in $auto" "$work/probe-$cpu.txt" || {
    echo "aarch64 -cpu $cpu: probe does not say \"$auto\":" >&2; cat "$work/probe-$cpu.txt" >&2; exit 1; }
  conf="$work/demo-$cpu.toml"
  sed "s/^\[models\]\$/[models]\nprecision = \"$([ $want = f16 ] && echo f16 || echo auto)\"/" "$work/demo.toml" > "$conf"
  start=$(date +%s)
  replay as_cpu "$arm" > "$work/arm-$cpu.jsonl" 2> "$work/arm-$cpu.log"
  echo "aarch64 -cpu $cpu replay of 15 s of vtest.avi (15 frames) under qemu: $(( $(date +%s) - start )) s"
  grep -q "detector precision: $want" "$work/arm-$cpu.log" && grep -q "kernels: .*$kernel" "$work/arm-$cpu.log" || {
    echo "aarch64 -cpu $cpu: the detector did not run in $want on $kernel kernels:" >&2
    grep -i "precision\|kernels" "$work/arm-$cpu.log" >&2; exit 1; }
  grep -o "matrix kernels: [^=]*" "$work/arm-$cpu.log" | head -1 | sed "s/ [a-z_]*$//; s/^/aarch64 -cpu $cpu ($want): /"
  python3 - "$work/x86.jsonl" "$work/arm-$cpu.jsonl" "$cpu" <<'PY'
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
assert worst <= 1, f"x86 and aarch64 aggregates differ by {worst}"
print(f"x86 f32 vs aarch64 -cpu {sys.argv[3]}: {len(a)} windows, frames identical, people max / line counts within {worst}")
PY
done
