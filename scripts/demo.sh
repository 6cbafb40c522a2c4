#!/usr/bin/env bash
# The demo: installs what it needs (scripts/setup.sh), then runs `vitrine demo`: a real
# pedestrian video and a microphone recording of real and synthesized speech through the real
# models; windows printed as they close and published to a local Mosquitto it starts.
# Extra arguments go to `vitrine demo` (e.g. --realtime, --broker mqtt://host:1883).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/setup.sh"
cd "$root"
cargo build --locked -p vitrine
fetch_models
"$vitrine_bin" demo --media "$root/.cache/media" --models "$root/.cache/models" "$@"
