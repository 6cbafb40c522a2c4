#!/usr/bin/env bash
# Power cuts, the way storage engines test them (SQLite's crash tests, Mosquitto's power-cut
# rig): the real agent runs in a QEMU guest on Debian's kernel, its state on a real ext4
# filesystem, and the power is cut at random moments, CUTS times; every boot checks what a
# store's box would need after a cut, and a last boot runs to a clean stop.
#
# The data disk is served by scripts/powercut-disk.py: a disk with a volatile write cache. What
# the guest wrote but did not flush is lost at a cut, sector by sector at random (torn and out
# of order), as on real hardware; a killed QEMU on a plain file would keep every write in the
# host's page cache and prove nothing.
#
# The agent: one camera reading a time-lapse of the pedestrian video (a frame every 15 minutes,
# 15-minute windows, so store hours pass and the forecast history is rewritten), a real
# Mosquitto on the host (10.0.2.2 from the guest), and on every third boot a signed remote
# configuration request (journal, trial, commit or roll back), so cuts also land mid-apply.
#
# After every boot (the guest reports before the agent starts): the filesystem is clean
# (e2fsck -fn after the journal's replay), the configuration is one that was written whole
# (the original or a requested one) and passes check-config, the forecast history and the
# remote-config state parse, the agent starts (its outbox opens). At the end, over every
# message the broker acknowledged: no seq missing (nothing stored is lost; gap records count),
# every delivery of a seq byte-identical (at-least-once, never a reused seq), every payload
# whole JSON with its schema's fields. Re-sends after a cut (acknowledged less than the ack
# watermark's 5 s before it) are counted, not failures.
#
# Usage: scripts/powercut.sh [CUTS]      (default 50; CI runs a few; exit 0 when all held)
# Needs root and Debian packages only (installed here). About 30 s per cut (software
# emulation); guest timings are meaningless. Report: .cache/powercut/report.txt.
set -euo pipefail
export PATH=$PATH:/usr/sbin:/sbin
CUTS=${1:-50}
root=$(cd "$(dirname "$0")/.." && pwd)
W=${VITRINE_POWERCUT_DIR:-$root/.cache/powercut}; mkdir -p "$W"; cd "$W"
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
KVER=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {sub("linux-image-", "", $2); print $2; exit}')
[ -n "$KVER" ] || { echo "powercut: cannot find Debian's current kernel (apt-get update?)" >&2; exit 1; }
need=()
for p in qemu-system-x86 busybox-static e2fsprogs mosquitto mosquitto-clients ffmpeg python3; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || need+=("$p")
done
[ ${#need[@]} -eq 0 ] || as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
[ -f img.deb ] || { apt-get download "linux-image-$KVER" >/dev/null 2>&1 && mv linux-image-${KVER}_*.deb img.deb; }
[ -d kroot ] || dpkg-deb -x img.deb kroot
depmod -b kroot "$KVER"

# The agent, its model and its video.
# $VITRINE_BIN: an agent already built (CI passes its debug build); else the workspace's
# release build, the agent a box runs (under emulation it gets through several store hours a
# boot, so the forecast history is rewritten while the power goes).
BIN=${VITRINE_BIN:-}
if [ -z "$BIN" ]; then
  (cd "$root" && cargo build -q --release --locked -p vitrine --bin vitrine)
  BIN="${CARGO_TARGET_DIR:-$root/target}/release/vitrine"
fi
"$root/scripts/fetch-media.sh" "$root/.cache/media" >/dev/null
MODELS=${VITRINE_MODELS_DIR:-$root/.cache/models}
[ -f "$MODELS/yolox_nano.onnx" ] || "$BIN" models fetch --dir "$MODELS" >/dev/null
[ -f timelapse-900.mkv ] || ffmpeg -v error -nostdin -y -i "$root/.cache/media/vtest.avi" \
  -vf "setpts=N*900/TB,scale=384:288" -r 1/900 -c:v mpeg4 -q:v 4 timelapse-900.mkv

# The guest's root: read-only ext4 image with the agent, ffmpeg, e2fsck and their libraries.
rm -rf rootfs; mkdir -p rootfs/{bin,sbin,proc,sys,dev,tmp,data,opt/models,opt/media}
cp /bin/busybox rootfs/bin/
for a in $(/bin/busybox --list); do [ -e "rootfs/bin/$a" ] || ln -s busybox "rootfs/bin/$a"; done
cp "$BIN" rootfs/bin/vitrine
cp /usr/bin/ffmpeg /usr/bin/ffprobe rootfs/bin/
cp /sbin/e2fsck rootfs/sbin/
for l in $(ldd "$BIN" /usr/bin/ffmpeg /usr/bin/ffprobe /sbin/e2fsck | grep -o "/lib[^ ]*\|/usr/lib[^ ]*" | sort -u); do
  mkdir -p "rootfs$(dirname "$l")"; cp -L "$l" "rootfs$l"; done
cp "$MODELS/yolox_nano.onnx" rootfs/opt/models/
cp timelapse-900.mkv rootfs/opt/media/
cp "$root/scripts/powercut-guest.sh" rootfs/init2; chmod +x rootfs/init2
rm -f root.img; mke2fs -q -t ext4 -d rootfs root.img $(( $(du -sm rootfs | cut -f1) * 13 / 10 + 16 ))M > /dev/null

# The initramfs: modules for virtio disks, ext4 and the network, then the root above.
rm -rf ir; mkdir -p ir/{bin,proc,sys,dev,newroot}
cp /bin/busybox ir/bin/
M=kroot/lib/modules/$KVER
for m in $(grep -E "^kernel/(fs/ext4/ext4|drivers/block/virtio_blk|drivers/virtio/virtio_pci|drivers/net/ethernet/intel/e1000/e1000|crypto/crc32c_generic).ko:" "$M/modules.dep" | tr -d ':' | tr ' ' '\n' | sort -u); do
  mkdir -p "ir/lib/modules/$KVER/$(dirname "$m")"; cp "$M/$m" "ir/lib/modules/$KVER/$m"; done
cp "$M"/modules.* "ir/lib/modules/$KVER/"
cat > ir/init <<'EOI'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc p /proc; mount -t sysfs s /sys; mount -t devtmpfs d /dev
for m in crc32c_generic virtio_pci virtio_blk ext4 e1000; do modprobe $m; done
i=0; while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
mount -t ext4 -o ro /dev/vda /newroot || { echo "PC-ROOT-FAILED"; poweroff -f; }
umount /proc /sys; mount --move /dev /newroot/dev
exec switch_root /newroot /init2
EOI
chmod +x ir/init; (cd ir && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1) > initrd.gz

# The central side: a broker, a subscriber keeping every message, the configuration key.
# A free port (another rig or test run may be using any fixed one).
PORT=$(python3 -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
pkill -f "mosquitto -c $W/mosquitto.conf" 2>/dev/null || true
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n' "$PORT" > mosquitto.conf
mosquitto -c "$W/mosquitto.conf" > mosquitto.log 2>&1 & BROKER=$!
SUB=""
cleanup() { kill "$BROKER" ${SUB:+"$SUB"} 2>/dev/null || true; pkill -f "qemu-system-x86_64.*$W/" 2>/dev/null || true; }
trap cleanup EXIT
sleep 0.5
kill -0 "$BROKER" 2>/dev/null || { echo "powercut: mosquitto did not start:" >&2; cat mosquitto.log >&2; exit 1; }
rm -f wire.log; mosquitto_sub -h 127.0.0.1 -p "$PORT" -V mqttv5 -q 1 -t 'vitrine/#' -v > wire.log & SUB=$!
rm -f central.key; PUBLIC=$("$BIN" config-keygen --out central.key 2>/dev/null)
config() {  # $1: the line's x position
  cat <<EOC
# The power-cut rig's box (scripts/powercut.sh)
[device]
id = "pc-box"
store_id = "pc-store"

[[cameras]]
id = "walkway"
file = "/opt/media/timelapse-900.mkv"
fps = 0.00111111         # the time-lapse's own rate: a frame every 15 minutes

[[cameras.lines]]
id = "walkway-x"
from = [$1, 0.28]
to = [$1, 0.72]
in = "left"

[[cameras.zones]]
id = "pavement-west"
polygon = [[0.0, 0.31], [0.42, 0.31], [0.42, 0.50], [0.0, 0.45]]

[models]
dir = "/opt/models"
detector = "yolox-nano"
input_size = 256

[privacy]
window_secs = 900
k_min = 0

[outbox]
dir = "/data/vitrine/state"

[mqtt]
url = "mqtt://10.0.2.2:$PORT"

[remote_config]
public_key = "$PUBLIC"
apply_timeout_secs = 30
EOC
}
rm -rf datafs known.txt; mkdir -p datafs/vitrine/state
config 0.45 > datafs/vitrine/agent.toml
sha256sum datafs/vitrine/agent.toml | cut -d' ' -f1 > known.txt
rm -f data.img; mke2fs -q -t ext4 -d datafs data.img 256M > /dev/null

# One boot: $1 number, $2 mode (cut|final), $3 seconds before the cut or the clean stop, $4
# counted from the agent's start (starting) or from its pipeline running (running).
clock=$(date -u +%s)
boot() {
  local n=$1 mode=$2 secs=$3 phase=${4:-starting} log online
  online=$(grep -c '"state":"online"' wire.log || true)
  log=$(printf 'boot-%03d.log' "$n")
  rm -f nbd.sock
  python3 "$root/scripts/powercut-disk.py" data.img "$W/nbd.sock" "$n" > "disk-$n.txt" & local DISK=$!
  while [ ! -S nbd.sock ]; do sleep 0.1; done
  ( qemu-system-x86_64 -accel tcg -cpu "${VITRINE_POWERCUT_CPU:-max}" -m 1024 -smp 2 -display none -no-reboot -serial "file:$W/$log" \
    -rtc base="$(date -u -d "@$clock" +%Y-%m-%dT%H:%M:%S)" \
    -kernel "kroot/boot/vmlinuz-$KVER" -initrd initrd.gz \
    -append "console=ttyS0 quiet loglevel=3 panic=-1 pc.mode=$mode pc.secs=$secs" \
    -drive "file=$W/root.img,if=virtio,format=raw,readonly=on" \
    -drive "file=nbd:unix:$W/nbd.sock,if=virtio,format=raw,cache=writeback" \
    -nic user,model=e1000 < /dev/null > qemu.log 2>&1; true ) 2>/dev/null & local QEMU=$!
  local t=0
  while ! grep -qs "PC-AGENT-STARTED\|PC-ROOT-FAILED\|PC-MOUNT-FAILED" "$log" && [ $t -lt 1200 ] && kill -0 "$QEMU" 2>/dev/null; do sleep 0.25; t=$((t+1)); done
  kill -0 "$QEMU" 2>/dev/null || { echo "powercut: QEMU ended early:" >&2; cat qemu.log >&2; }
  if [ "$mode" = cut ]; then
    if [ $((n % 3)) = 0 ]; then request "$n" "$online" & fi
    if [ "$phase" = running ]; then
      # Timed from the pipeline's start, so that a slow (emulated, loaded) machine still cuts
      # while events are being stored and sent.
      t=0; while ! grep -qs "pipeline running" "$log" && [ $t -lt 1200 ]; do sleep 0.25; t=$((t+1)); done
    fi
    sleep "$secs"
    pkill -9 -f "qemu-system-x86_64.*$W/nbd.sock" || true
  else
    # The guest powers itself off after a clean stop (the disk then hears a disconnect).
    t=0; while kill -0 "$QEMU" 2>/dev/null && [ $t -lt 2400 ]; do sleep 0.25; t=$((t+1)); done
    pkill -9 -f "qemu-system-x86_64.*$W/nbd.sock" || true
  fi
  wait "$QEMU" 2>/dev/null || true
  wait "$DISK" 2>/dev/null || true
  sed -i 's/\r$//' "$log"
  # The next boot starts where this one's store time ended (an hour of it per minute or so).
  local last
  last=$(python3 "$root/scripts/powercut-check.py" last-end wire.log)
  [ "$last" -gt "$clock" ] && clock=$last
  echo "boot $n ($mode at $phase + ${secs}s): $(grep -c '"seq"' wire.log) deliveries so far; $(cat "disk-$n.txt")"
}
# A signed request moving the line a little, once the agent is online: journal, trial, commit
# or roll back.
request() {
  local n=$1 body="req-$1.toml" online=$2 t=0
  while [ "$(grep -c '"state":"online"' wire.log)" -le "$online" ] && [ $t -lt 240 ]; do sleep 0.25; t=$((t+1)); done
  sleep $((RANDOM % 4))
  config "0.$((40 + n % 10))" > "$body"
  sha256sum "$body" | cut -d' ' -f1 >> known.txt
  "$BIN" config-request --store pc-store --device pc-box --key central.key --version "$n" --config "$body" > "req-$n.json"
  mosquitto_pub -h 127.0.0.1 -p "$PORT" -V mqttv5 -q 1 -t vitrine/pc-store/pc-box/config/set -f "req-$n.json"
}

rm -f boot-*.log disk-*.txt req-*.toml req-*.json
for n in $(seq 1 "$CUTS"); do
  # A quarter of the cuts in the agent's first seconds (outbox opening, rollback, models
  # loading), the rest up to 30 s into its storing and sending.
  boot "$n" cut $(python3 -c "import random; random.seed($n); print(*(('starting', round(random.uniform(0, 3), 1)) if random.random() < 0.25 else ('running', round(random.uniform(0, 30), 1)))[::-1])")
done
boot $((CUTS + 1)) final 60
sleep 2
python3 "$root/scripts/powercut-check.py" report "$W" "$CUTS" | tee report.txt
