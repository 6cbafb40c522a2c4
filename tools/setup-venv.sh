#!/usr/bin/env bash
# The Python side of the model tools (tools/quantize.py, tools/ort_bench.py) and of the
# evaluation's anchors (tools/ort_bytetrack.py: onnxruntime + supervision's ByteTrack;
# tools/forecast_anchor.py: statsmodels' Holt-Winters): a venv in
# .cache/pyenv with pinned packages from PyPI. Idempotent; prints its python.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.cache/pyenv"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import onnxruntime, onnx, numpy, supervision, cv2, statsmodels, pandas" 2>/dev/null; then
  command -v python3 >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >/dev/null; }
  python3 -m venv "$venv" 2>/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null; python3 -m venv "$venv"; }
  "$venv/bin/pip" install -q onnx==1.23.2 onnxruntime==1.32.0 numpy==2.4.6 \
    supervision==0.26.1 opencv-python==5.0.0.93 \
    pandas==3.1.1 statsmodels==0.15.0 >&2
fi
echo "$venv/bin/python"
