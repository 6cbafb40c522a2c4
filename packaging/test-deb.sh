#!/usr/bin/env bash
# Install the amd64 package on this machine and use it as a store box would (needs root):
#   packaging/test-deb.sh [path/to/vitrine_*.deb]   (default: build it with build-deb.sh)
# Checks: dpkg -i pulls nothing surprising and succeeds; the system user, directories, unit
# (enabled) and default config are in place; the models were fetched and verified by the
# postinst; `vitrine check-config` passes on the shipped config; `vitrine replay` as the
# service user turns real video into window events; the installed unit verifies offline;
# purge removes the state. Leaves the machine as it found it (purges at the end).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" = 0 ] || { echo "test-deb: needs root (dpkg -i)" >&2; exit 1; }
deb=${1:-}; [ -z "$deb" ] || deb=$(realpath "$deb")
if [ -z "$deb" ]; then
  "$root/packaging/build-deb.sh" amd64 >&2
  deb=$(ls -t "$root"/target/debian/vitrine_*_amd64.deb | head -1)
fi
source "$root/scripts/setup.sh" >/dev/null   # media (vtest.avi) and the model mirror variable
fail() { echo "test-deb: FAIL: $*" >&2; exit 1; }
work=$(mktemp -d); chmod 755 "$work"
cleanup() { dpkg --purge vitrine >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
dpkg --purge vitrine >/dev/null 2>&1 || true

echo "test-deb: installing $(basename "$deb") ($(du -k "$deb" | cut -f1) KiB)"
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$deb" >"$work/install.log" 2>&1 \
  || { cat "$work/install.log"; fail "install"; }
dpkg-query -W -f='${Status}\n' vitrine | grep -q "install ok installed" || fail "not installed"
[ -x /usr/bin/vitrine ] || fail "/usr/bin/vitrine"
getent passwd vitrine >/dev/null || fail "system user vitrine"
id -nG vitrine | grep -qw video || fail "vitrine not in group video"
[ -f /etc/vitrine/agent.toml ] || fail "default config"
[ "$(stat -c %a /etc/vitrine/tls)" = 700 ] || fail "/etc/vitrine/tls mode"
unit=$(ls /lib/systemd/system/vitrine.service /usr/lib/systemd/system/vitrine.service 2>/dev/null | head -1)
[ -n "$unit" ] || fail "unit not installed"
[ -L /etc/systemd/system/multi-user.target.wants/vitrine.service ] || fail "unit not enabled"
vitrine models list --dir /var/lib/vitrine/models | grep -A1 yolox-nano | grep -q "ok" || fail "models not fetched by postinst"
[ "$(stat -c %U /var/lib/vitrine/models)" = vitrine ] || fail "models not owned by vitrine"

vitrine check-config /etc/vitrine/agent.toml || fail "check-config on the shipped config"
# As the service user, on real video, with the shipped config's camera geometry.
cp "$root/.cache/media/vtest.avi" "$work/"; chmod 644 "$work/vtest.avi"
install -d -o vitrine "$work/out"
runuser -u vitrine -- vitrine replay --quiet --config /etc/vitrine/agent.toml \
  --input "$work/vtest.avi" --start 2026-11-29T10:00:00Z --out "$work/out/events.jsonl" \
  || fail "replay as user vitrine"
n=$(grep -c '"kind":"camera"' "$work/out/events.jsonl" || true)
[ "$n" -ge 2 ] || fail "replay produced $n camera windows"
echo "test-deb: replay from the package: $n window events"

err=$(systemd-analyze verify --man=no "$unit" 2>&1 >/dev/null || true)
[ -z "$err" ] || fail "installed unit: $err"

dpkg --purge vitrine >/dev/null
[ ! -e /usr/bin/vitrine ] && [ ! -e /var/lib/vitrine ] || fail "purge left files"
! getent passwd vitrine >/dev/null || fail "purge left the user"
echo "test-deb: OK (installed, configured, replayed as the service user, purged)"
