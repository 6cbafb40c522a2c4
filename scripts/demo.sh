#!/usr/bin/env bash
# The demo: installs what it needs (scripts/setup.sh with VITRINE_SETUP=demo: the media tools,
# the broker, a C compiler; not the test suite's browsers, databases and emulators), builds the
# agent without the live-capture back ends it does not use (no USB, RTSP or ALSA: the demo plays
# files), then runs `vitrine demo`: a real pedestrian video and a microphone recording of real
# and synthesized speech through the real models; windows printed as they close and published
# to a local Mosquitto it starts.
# Extra arguments go to `vitrine demo` (e.g. --realtime, --broker mqtt://host:1883).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
started=$(date +%s)
step() { echo "demo: $* ($(( $(date +%s) - started )) s so far)" >&2; }
step "1/4 packages and media (ffmpeg, mosquitto, espeak-ng, sox; Debian's PETS2009 video)"
export VITRINE_SETUP=demo
source "$root/scripts/setup.sh"
cd "$root"
step "2/4 building the agent (about 5-10 minutes the first time on a 2-core box; cargo shows its progress)"
cargo build --locked -p vitrine --no-default-features --features tools
step "3/4 models (pinned, sha256-checked)"
fetch_models
step "4/4 running: windows print as they close"
"$vitrine_bin" demo --media "$root/.cache/media" --models "$root/.cache/models" "$@"
