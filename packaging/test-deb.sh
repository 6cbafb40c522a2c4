#!/usr/bin/env bash
# Install a package and use it as a store box would (needs root):
#   packaging/test-deb.sh [path/to/vitrine_*_amd64.deb]   on this machine (default: build it)
#   packaging/test-deb.sh path/to/vitrine_*_arm64.deb     in an arm64 Debian 12 root
#       (mmdebstrap + qemu-user through binfmt_misc: packaging/arm64-root.sh), where every
#       program, the postinst included, is the arm64 one
# Checks: dpkg -i pulls nothing surprising and succeeds; the system user, directories, unit
# (enabled) and default config are in place; the models were fetched and verified by the
# postinst; `vitrine check-config` passes on the shipped config; `vitrine replay` as the
# service user turns real video into window events; the installed unit verifies offline;
# purge removes the state. Leaves the machine as it found it (purges at the end).
# Under emulation the replay takes the shipped config with 1 frame/s and 5 s windows on the
# first 15 s of the video (qemu runs ARM code ~20x slower); natively the shipped config as is.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" = 0 ] || { echo "test-deb: needs root (dpkg -i)" >&2; exit 1; }
fail() { echo "test-deb: FAIL: $*" >&2; exit 1; }

# Inside the arm64 root (this script re-run by itself): the files are under /vitrine-test.
if [ "${VITRINE_TEST_DEB_INSIDE:-}" = 1 ]; then
  deb=$1 video=$2 quick=1
  work=$(mktemp -d); chmod 755 "$work"
else
  deb=${1:-}; [ -z "$deb" ] || deb=$(realpath "$deb")
  if [ -z "$deb" ]; then
    "$root/packaging/build-deb.sh" amd64 >&2
    deb=$(ls -t "$root"/target/debian/vitrine_*_amd64.deb | head -1)
  fi
  source "$root/scripts/setup.sh" >/dev/null   # media (vtest.avi) and the model mirror variable
  video="$root/.cache/media/vtest.avi" quick=0
  arch=$(dpkg-deb -f "$deb" Architecture)
  if [ "$arch" != "$(dpkg --print-architecture)" ]; then
    [ "$arch" = arm64 ] || fail "no test environment for a $arch package"
    [ -n "${VITRINE_MODEL_MIRROR:-}" ] || fail "VITRINE_MODEL_MIRROR unset: the postinst fetches the models"
    sysroot=$(mktemp -d /var/tmp/vitrine-arm64.XXXXXX)
    trap 'rm -rf --one-file-system "$sysroot"' EXIT
    "$root/packaging/arm64-root.sh" "$sysroot"
    mkdir -p "$sysroot/vitrine-test" "$sysroot/mirror"
    cp "$deb" "$sysroot/vitrine-test/vitrine.deb"
    cp "$root/packaging/test-deb.sh" "$sysroot/vitrine-test/test-deb.sh"
    ffmpeg -v error -i "$video" -t 15 -c copy "$sysroot/vitrine-test/clip.avi"
    # The mounts live in a private mount namespace: they vanish with it, whatever happens.
    unshare -m --propagation private sh -c '
      mount --bind "$0" "$1/mirror" && mount -o remount,bind,ro "$1/mirror" &&
      mount -t proc proc "$1/proc" && mount --bind /dev "$1/dev" &&
      exec chroot "$1" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
        VITRINE_TEST_DEB_INSIDE=1 VITRINE_MODEL_MIRROR=/mirror \
        bash /vitrine-test/test-deb.sh /vitrine-test/vitrine.deb /vitrine-test/clip.avi' \
      "$VITRINE_MODEL_MIRROR" "$sysroot"
    exit
  fi
  work=$(mktemp -d); chmod 755 "$work"
fi
cleanup() { dpkg --purge vitrine >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
dpkg --purge vitrine >/dev/null 2>&1 || true

echo "test-deb: installing $(basename "$deb") ($(du -k "$deb" | cut -f1) KiB) on $(dpkg --print-architecture) ($(uname -m))"
if [ "$quick" = 1 ]; then
  # The arm64 root has the dependencies already (arm64-root.sh), so nothing is downloaded.
  DEBIAN_FRONTEND=noninteractive dpkg -i "$deb" >"$work/install.log" 2>&1 \
    || { cat "$work/install.log"; fail "install"; }
else
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$deb" >"$work/install.log" 2>&1 \
    || { cat "$work/install.log"; fail "install"; }
fi
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
cp "$video" "$work/video.avi"; chmod 644 "$work/video.avi"
install -d -o vitrine "$work/out"
config=/etc/vitrine/agent.toml
if [ "$quick" = 1 ]; then
  config="$work/agent.toml"
  sed 's/^fps = .*/fps = 1/; s/^window_secs = .*/window_secs = 5/' /etc/vitrine/agent.toml > "$config"
  chmod 644 "$config"
  vitrine probe 2>/dev/null | grep "^CPU" || true
fi
runuser -u vitrine -- vitrine replay --quiet --config "$config" \
  --input "$work/video.avi" --start 2026-11-29T10:00:00Z --out "$work/out/events.jsonl" \
  || fail "replay as user vitrine"
n=$(grep -c '"kind":"camera"' "$work/out/events.jsonl" || true)
[ "$n" -ge 2 ] || fail "replay produced $n camera windows"
echo "test-deb: replay from the package: $n window events"

if command -v systemd-analyze >/dev/null; then
  err=$(systemd-analyze verify --man=no "$unit" 2>&1 >/dev/null || true)
  [ -z "$err" ] || fail "installed unit: $err"
fi

dpkg --purge vitrine >/dev/null
[ ! -e /usr/bin/vitrine ] && [ ! -e /var/lib/vitrine ] || fail "purge left files"
! getent passwd vitrine >/dev/null || fail "purge left the user"
echo "test-deb: OK on $(dpkg --print-architecture) (installed, configured, replayed as the service user, purged)"
