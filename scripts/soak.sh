#!/usr/bin/env bash
# Weeks of running, compressed: the real agent with four cameras and a microphone for DAYS
# simulated days at 60-s windows, its memory, descriptors, threads, outbox and state recorded
# over time; exit 0 when RSS, descriptors and threads stay flat (within 5 % after warm-up).
#   cameras     a time-lapse of the pedestrian video, a frame per simulated minute, played as
#               fast as the box analyses it: every window closes, every track is born and
#               ends, the forecast fills its week, the outbox turns over through Mosquitto
#   microphone  live: ALSA's default device through a PulseAudio null sink playing speech and
#               noise in real time (a live source cannot be sped up), for the run's wall time
# Nightly: scripts/soak.sh 7 (about 15 min here): RSS, descriptors and threads within 5 % after
# the first day. CI runs scripts/soak.sh 1: descriptors and threads flat, RSS under 250 MB.
# Samples: .cache/soak/soak.csv; verdict: .cache/soak/soak.txt (see docs/evaluator.md "Weeks of running").
set -euo pipefail
DAYS=${1:-7}
root=$(cd "$(dirname "$0")/.." && pwd)
export PATH=$PATH:/usr/sbin:/sbin
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
need=()
for p in ffmpeg mosquitto mosquitto-clients pulseaudio pulseaudio-utils libasound2-plugins python3 espeak-ng sox alsa-utils; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || need+=("$p")
done
[ ${#need[@]} -eq 0 ] || as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
if [ -z "${VITRINE_MODEL_MIRROR:-}" ] && [ -d "$root/../shared/models" ]; then
  export VITRINE_MODEL_MIRROR=$(cd "$root/../shared/models" && pwd)
fi
W=${VITRINE_SOAK_DIR:-$root/.cache/soak}; mkdir -p "$W"; cd "$W"
# $VITRINE_BIN: an agent already built (else the workspace's debug build).
BIN=${VITRINE_BIN:-}
if [ -z "$BIN" ]; then
  (cd "$root" && cargo build -q --locked -p vitrine --bin vitrine)
  BIN="${CARGO_TARGET_DIR:-$root/target}/debug/vitrine"
fi
"$root/scripts/fetch-media.sh" "$root/.cache/media" >/dev/null
MODELS=${VITRINE_MODELS_DIR:-$root/.cache/models}
[ -f "$MODELS/yolox_nano.onnx" ] || "$BIN" models fetch --dir "$MODELS" >/dev/null

# The time-lapse: vtest.avi's 795 frames a minute apart, looped to cover the run.
frames=$(( (${DAYS%.*} + 1) * 1440 ))
if [ ! -f "timelapse-$frames.mkv" ]; then
  rm -f timelapse-*.mkv
  ffmpeg -v error -nostdin -y -stream_loop $(( frames / 795 + 1 )) -i "$root/.cache/media/vtest.avi" \
    -vf "setpts=N*60/TB,scale=384:288" -r 1/60 -frames:v "$frames" -c:v mpeg4 -q:v 5 "timelapse-$frames.mkv"
fi

# A microphone: PulseAudio's null sink, its monitor the default source, speech and noise played.
export XDG_RUNTIME_DIR=$W/run HOME=$W/home; mkdir -p "$XDG_RUNTIME_DIR" "$HOME"; chmod 700 "$XDG_RUNTIME_DIR"
pulseaudio --kill 2>/dev/null || true
pulseaudio --daemonize=yes --exit-idle-time=-1 -n --load=module-native-protocol-unix \
  --load="module-null-sink sink_name=fakesink rate=48000 channels=2"
for _ in $(seq 50); do pactl info >/dev/null 2>&1 && break; sleep 0.1; done
pactl set-default-source fakesink.monitor
( while true; do paplay -d fakesink "$root/.cache/media/demo-mic.wav" || sleep 1; done ) & PLAYER=$!
trap 'kill $PLAYER 2>/dev/null; pulseaudio --kill 2>/dev/null || true' EXIT

# A free port (another rig or test run may be using any fixed one).
PORT=$(python3 -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n' "$PORT" > mosquitto.conf
rm -rf state; mkdir -p state
{
  cat <<EOC
# The soak's box (scripts/soak.sh): four cameras, a live microphone, 60-s windows.
[device]
id = "soak-box"
store_id = "soak-store"
timezone = "Europe/Berlin"
EOC
  for c in 1 2 3 4; do
    cat <<EOC

[[cameras]]
id = "cam$c"
file = "$W/timelapse-$frames.mkv"
fps = 0.0166667          # the time-lapse's own rate: a frame a minute
input_size = 320

[[cameras.lines]]
id = "walkway"
from = [0.45, 0.28]
to = [0.45, 0.72]
in = "left"

[[cameras.zones]]
id = "pavement-west"
polygon = [[0.0, 0.31], [0.42, 0.31], [0.42, 0.50], [0.0, 0.45]]

[[cameras.queues]]
id = "kerb"
polygon = [[0.5, 0.3], [1.0, 0.3], [1.0, 0.6], [0.5, 0.6]]
service = [[0.5, 0.6], [1.0, 0.6], [1.0, 0.8], [0.5, 0.8]]

[cameras.heatmap]

[cameras.funnel]
entered = "walkway"
engaged = ["pavement-west"]
checkout = "kerb"

[[cameras.alerts]]
id = "busy"
zone = "pavement-west"
above = 2
EOC
  done
  cat <<EOC

[[microphones]]
id = "floor"
device = "default"

[models]
dir = "$MODELS"
detector = "yolox-nano"

[privacy]
window_secs = 60
k_min = 0

[outbox]
dir = "$W/state"

[mqtt]
url = "mqtt://127.0.0.1:$PORT"
EOC
} > agent.toml
"$BIN" check-config agent.toml >/dev/null
VITRINE_SOAK_PORT=$PORT python3 "$root/scripts/soak.py" "$W" "$DAYS" "$BIN" "$W/agent.toml"
