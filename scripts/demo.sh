#!/usr/bin/env bash
# The demo: installs what it needs (scripts/setup.sh with VITRINE_SETUP=demo: the media tools,
# the broker, a C compiler; not the test suite's browsers, databases and emulators), builds the
# agent and the lab without the live-capture back ends they do not use (no USB, RTSP or ALSA:
# the demo plays files), then runs `vitrine-lab demo` (the agent in the lab's process): a real pedestrian video and a microphone recording of real
# and synthesized speech through the real models; windows printed as they close and published
# to a local Mosquitto it starts.
# Extra arguments go to `vitrine-lab demo` (e.g. --realtime, --broker mqtt://host:1883).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
started=$(date +%s)
step() { echo "demo: $* ($(( $(date +%s) - started )) s so far)" >&2; }
step "1/4 packages and media (ffmpeg, mosquitto, espeak-ng, sox; Debian's PETS2009 video)"
export VITRINE_SETUP=demo
source "$root/scripts/setup.sh"
cd "$root"
step "2/4 building the agent and the lab (about 5-10 minutes the first time on a 2-core box; cargo shows its progress)"
# `vitrine` fetches the models (step 3); `vitrine-lab` runs the demo.
cargo build --locked -p vitrine -p vitrine-lab --no-default-features
step "3/4 models (pinned, sha256-checked)"
fetch_models
step "4/4 running: windows print as they close"
"$vitrine_bin-lab" demo --media "$root/.cache/media" --models "$root/.cache/models" "$@"
