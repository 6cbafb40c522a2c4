#!/usr/bin/env bash
# The whole test suite: installs what it needs (scripts/setup.sh), then
#   cargo test --workspace --locked
# Unit, property and integration tests; the integration tests run the real binary on real
# media through the real models, into a real Mosquitto they start themselves.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/setup.sh"
cd "$root"
export VITRINE_MEDIA_DIR="$root/.cache/media" VITRINE_MODELS_DIR="$root/.cache/models"
# Build once (the integration tests' feature set also builds the vitrine binary they run).
cargo test --workspace --locked --no-run
fetch_models
cargo test --workspace --locked "$@"
