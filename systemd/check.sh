#!/usr/bin/env bash
# Offline checks of the service unit, as CI runs them (no running systemd needed):
#   1. `systemd-analyze verify` with an empty stderr (it exits 0 even on invalid values);
#   2. `systemd-analyze security --offline=true`: exposure at most 2.0 ("OK").
# Usage: systemd/check.sh [path/to/vitrine]  (default: target/debug/vitrine, built if missing)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
unit="$root/systemd/vitrine.service"
bin=${1:-$root/target/debug/vitrine}
[ -x "$bin" ] || (cd "$root" && cargo build --locked -q -p vitrine)
command -v systemd-analyze >/dev/null || { echo "systemd-analyze not found (apt-get install systemd)" >&2; exit 1; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
# The unit names /usr/bin/vitrine, which verify checks for: point it at the built binary.
sed "s#/usr/bin/vitrine#$bin#g" "$unit" > "$work/vitrine.service"
err=$(systemd-analyze verify --man=no "$work/vitrine.service" 2>&1 >/dev/null || true)
if [ -n "$err" ]; then
  echo "systemd-analyze verify vitrine.service:" >&2; echo "$err" >&2; exit 1
fi
sec=$(systemd-analyze security --offline=true --no-pager "$work/vitrine.service" 2>&1 || true)
level=$(echo "$sec" | sed -n 's/.*Overall exposure level for vitrine.service: \([0-9.]*\).*/\1/p')
if [ -z "$level" ]; then echo "$sec" >&2; echo "no exposure level reported" >&2; exit 1; fi
if awk "BEGIN{exit !($level > 2.0)}"; then
  echo "$sec" | grep -E '^✗' >&2 || true
  echo "exposure $level > 2.0" >&2; exit 1
fi
echo "vitrine.service: verify clean, exposure $level (<= 2.0)"
