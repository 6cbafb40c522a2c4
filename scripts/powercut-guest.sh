#!/bin/sh
# The power-cut rig's guest (scripts/powercut.sh): checks what a cut left on the data disk,
# then runs the agent until the power goes (pc.mode=cut) or stops it cleanly (pc.mode=final).
# Every line for the host starts with PC-.
mount -t proc p /proc; mount -t sysfs s /sys; mount -t tmpfs t /tmp
arg() { tr ' ' '\n' < /proc/cmdline | sed -n "s/^$1=//p"; }
MODE=$(arg pc.mode); SECS=$(arg pc.secs)
echo "PC-MODE $MODE $SECS"
ip link set lo up; ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0; ip route add default via 10.0.2.2
i=0; while [ ! -b /dev/vdb ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
# The journal is replayed by the first mount; then the filesystem must check clean.
mount -t ext4 /dev/vdb /data || { echo "PC-MOUNT-FAILED"; poweroff -f; }
umount /data
e2fsck -fn /dev/vdb > /tmp/fsck.log 2>&1; echo "PC-FSCK rc=$?"
grep -v "^Pass\|^e2fsck\| files (.*blocks$" /tmp/fsck.log | sed 's/^/PC-FSCK-SAYS /'
mount -t ext4 /dev/vdb /data || { echo "PC-MOUNT-FAILED"; poweroff -f; }
cd /data/vitrine
echo "PC-CONFIG $(sha256sum agent.toml | cut -d' ' -f1)"
[ -f agent.toml.applying ] && echo "PC-TRIAL-MARKER present"
/bin/vitrine check-config agent.toml > /tmp/check.log 2>&1; echo "PC-CHECK rc=$?"
[ -f state/forecast.json ] && echo "PC-FORECAST $(tr -d '\n' < state/forecast.json)"
[ -f state/remote-config.json ] && echo "PC-REMOTE $(tr -d '\n' < state/remote-config.json)"
ls -la state | sed 's/^/PC-STATE /'
export HOME=/tmp RUST_LOG=info NO_COLOR=1
cd /tmp
/bin/vitrine run --config /data/vitrine/agent.toml > /tmp/agent.log 2>&1 &
AGENT=$!
echo "PC-AGENT-STARTED"
tail -f /tmp/agent.log | sed 's/^/[agent] /' &
if [ "$MODE" = final ]; then
  sleep "$SECS"
  kill -TERM $AGENT
  wait $AGENT; echo "PC-AGENT-EXIT rc=$?"
  sleep 2
  sync; umount /data || echo "PC-UMOUNT-FAILED"
  e2fsck -fn /dev/vdb > /tmp/fsck.log 2>&1; echo "PC-FINAL-FSCK rc=$?"
  echo "PC-FINAL-DONE"
  poweroff -f
fi
wait $AGENT; echo "PC-AGENT-EXIT rc=$?"
sleep 100000
