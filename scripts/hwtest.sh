#!/usr/bin/env bash
# USB-camera capture through the real V4L2 drivers, in a throwaway QEMU guest (software
# emulation; a build host has no camera and cannot load kernel modules itself):
#   vivid        Linux's virtual camera driver: YUYV capture, then an unplug (the driver is
#                unbound from the device mid-stream) and a replug (bound again)
#   v4l2loopback a camera fed MJPEG frames of the real pedestrian video by a writer
#                (built from Debian's v4l2loopback-dkms source against the guest kernel);
#                then the writer is paused (open, silent): the read times out as lost
# Both are captured by vitrine's own V4l2Camera (sensors/examples/v4l2_check.rs), with the
# capture mode chosen from what the driver offers, and a missing format refused by name.
# Needs root and Debian packages only (installed here: qemu-system-x86, busybox-static, the
# guest kernel and its headers). About a minute; guest timings are meaningless (TCG).
# Usage: scripts/hwtest.sh          (exit 0 when every check passed)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
W=${VITRINE_HWTEST_DIR:-$root/.cache/hwtest}; mkdir -p "$W"; cd "$W"
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
KVER=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {sub("linux-image-", "", $2); print $2; exit}')
[ -n "$KVER" ] || { echo "hwtest: cannot find Debian's current kernel (apt-get update?)" >&2; exit 1; }
need=()
for p in qemu-system-x86 busybox-static linux-headers-$KVER make gcc; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || need+=("$p")
done
[ ${#need[@]} -eq 0 ] || as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
[ -f img.deb ] || { apt-get download "linux-image-$KVER" >/dev/null && mv linux-image-${KVER}_*.deb img.deb; }
[ -d kroot ] || dpkg-deb -x img.deb kroot
depmod -b kroot "$KVER"
if [ ! -f v4l2loopback.ko ]; then
  rm -rf dk lbsrc; apt-get download v4l2loopback-dkms >/dev/null && dpkg-deb -x v4l2loopback-dkms_*.deb dk
  cp -r dk/usr/src/v4l2loopback-* lbsrc && make -s -C "/usr/src/linux-headers-$KVER" M="$W/lbsrc" modules >/dev/null
  cp lbsrc/v4l2loopback.ko .
fi
# The check binary, and real MJPEG frames for the loopback camera.
(cd "$root" && cargo build -q --locked -p vitrine-sensors --example v4l2_check)
BIN="${CARGO_TARGET_DIR:-$root/target}/debug/examples/v4l2_check"
"$root/scripts/fetch-media.sh" "$root/.cache/media" >/dev/null
for i in 0 1 2; do
  ffmpeg -v error -nostdin -y -ss $((20 + i)) -i "$root/.cache/media/vtest.avi" -frames:v 1 -vf scale=640:480 -q:v 4 "f$i.jpg"
done
rm -rf ir; mkdir -p ir/{bin,proc,sys,dev,tmp,test}
cp /bin/busybox ir/bin/
M=kroot/lib/modules/$KVER
for m in $(grep -E "^kernel/drivers/media/test-drivers/vivid/vivid.ko:" "$M/modules.dep" | tr -d ':' | tr ' ' '\n' | sort -u); do
  mkdir -p "ir/lib/modules/$KVER/$(dirname "$m")"; cp "$M/$m" "ir/lib/modules/$KVER/$m"; done
cp "$M"/modules.* "ir/lib/modules/$KVER/"
cp v4l2loopback.ko "$BIN" f0.jpg f1.jpg f2.jpg ir/test/
for l in $(ldd "$BIN" | grep -o "/lib[^ ]*" | sort -u); do mkdir -p "ir$(dirname "$l")"; cp -L "$l" "ir$l"; done
cat > ir/init <<'EOI'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc p /proc; mount -t sysfs s /sys; mount -t devtmpfs d /dev; mount -t tmpfs t /tmp
export HOME=/tmp RUST_BACKTRACE=1; cd /test
modprobe vivid n_devs=1 node_types=0x1 input_types=0x0
./v4l2_check probe 2>&1 | sed 's/^/[vivid-probe] /'
./v4l2_check capture /dev/video0 yuyv 10 --unplug > /tmp/cap.log 2>&1 &
i=0; while ! grep -q READY-FOR-UNPLUG /tmp/cap.log && [ $i -lt 600 ]; do sleep 0.2; i=$((i+1)); done
echo vivid.0 > /sys/bus/platform/drivers/vivid/unbind
sleep 3
echo vivid.0 > /sys/bus/platform/drivers/vivid/bind
wait
sed 's/^/[vivid-yuyv] /' /tmp/cap.log
insmod ./v4l2loopback.ko video_nr=10 exclusive_caps=1 card_label=fakecam
./v4l2_check feed /dev/video10 640 480 10 f0.jpg f1.jpg f2.jpg > /tmp/feed.log 2>&1 &
FEED=$!
sleep 2
./v4l2_check capture /dev/video10 mjpeg 10 2>&1 | sed 's/^/[loopback-mjpeg] /'
./v4l2_check capture /dev/video10 nv12 1 2>&1 | sed 's/^/[loopback-no-nv12] /'
./v4l2_check capture /dev/video10 mjpeg 3 --stall > /tmp/stall.log 2>&1 &
STALL=$!
i=0; while ! grep -q READY-FOR-STALL /tmp/stall.log && [ $i -lt 600 ]; do sleep 0.2; i=$((i+1)); done
kill -STOP $FEED
wait $STALL
kill -CONT $FEED
sed 's/^/[loopback-stall] /' /tmp/stall.log
sed 's/^/[feeder] /' /tmp/feed.log
echo "VMTEST-DONE"; poweroff -f
EOI
chmod +x ir/init; (cd ir && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1) > initrd.gz
timeout 600 qemu-system-x86_64 -accel tcg -cpu max -m 1024 -smp 1 -nographic -no-reboot \
  -kernel "kroot/boot/vmlinuz-$KVER" -initrd initrd.gz -append "console=ttyS0 quiet loglevel=3 panic=-1" \
  | tr -d '\r' | grep -a -E "^\[|VMTEST" | tee guest.log
fail=0
check() { if grep -qE "$2" guest.log; then echo "hwtest ok: $1"; else echo "hwtest FAILED: $1 (no line matching: $2)"; fail=1; fi; }
check "probe lists vivid with its modes"                 '^\[vivid-probe\]   yuyv 640x480 fps'
check "vivid YUYV opened with the requested format"      '^\[vivid-yuyv\] opened: yuyv 640x480'
check "vivid frames captured and converted"              '^\[vivid-yuyv\] captured 10 frames'
check "unplug reported as a lost device"                 '^\[vivid-yuyv\] LOST: '
check "replugged camera reopened and captured"           '^\[vivid-yuyv\] REOPENED after'
check "v4l2loopback MJPEG opened"                        '^\[loopback-mjpeg\] opened: mjpeg 640x480'
check "MJPEG frames decoded (real picture, not flat)"    '^\[loopback-mjpeg\] frame 9: 640x480 .* stddev ([2-9][0-9]|[1-9][0-9][0-9])'
check "a format the camera lacks is refused by name"     '^\[loopback-no-nv12\] ERROR: .*does not offer nv12'
check "a camera open but silent times out as lost"    '^\[loopback-stall\] LOST: .*stopped sending'
check "the guest finished"                               'VMTEST-DONE'
exit $fail
