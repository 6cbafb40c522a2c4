#!/usr/bin/env bash
# The Python side of the model tools (tools/quantize.py, tools/ort_bench.py) and of the
# evaluation's anchors (tools/ort_bytetrack.py: onnxruntime + supervision's ByteTrack;
# tools/forecast_anchor.py: statsmodels' Holt-Winters): a venv in
# .cache/pyenv with pinned packages from PyPI. Idempotent; prints its python.
#
# `tools/setup-venv.sh --boxmot` makes a second venv, .cache/pyenv-boxmot, for the accuracy
# suite's further anchors: BoxMOT's OC-SORT, BoT-SORT, Hybrid-SORT and Deep OC-SORT (and
# TrackEval, HOTA's reference implementation). It pulls PyTorch (several GB); CI does not make
# it, `vitrine-lab eval suite` runs those anchors when it is there.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
ensure_python() {
  command -v python3 >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >/dev/null; }
  python3 -m venv "$1" 2>/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null; python3 -m venv "$1"; }
}
if [ "${1:-}" = --boxmot ]; then
  venv="$root/.cache/pyenv-boxmot"
  if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import boxmot, trackeval, onnxruntime, supervision" 2>/dev/null; then
    ensure_python "$venv"
    "$venv/bin/pip" install -q boxmot==25.0.0 trackeval==1.3.0 onnxruntime==1.32.0 supervision==0.26.1 >&2
  fi
  echo "$venv/bin/python"
  exit 0
fi
venv="$root/.cache/pyenv"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import onnxruntime, onnx, numpy, supervision, cv2, statsmodels, pandas" 2>/dev/null; then
  ensure_python "$venv"
  "$venv/bin/pip" install -q onnx==1.23.2 onnxruntime==1.32.0 numpy==2.4.6 \
    supervision==0.26.1 opencv-python==5.0.0.93 \
    pandas==3.1.1 statsmodels==0.15.0 >&2
fi
echo "$venv/bin/python"
