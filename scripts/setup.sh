#!/usr/bin/env bash
# Installs what building, testing and the demo need on Debian 12, with only the Rust toolchain
# present: Debian packages (as root, or through sudo) and the pinned models.
#   ffmpeg           video file decoding (any container/codec), ffprobe
#   mosquitto        the local MQTT broker the tests and the demo start on a free port
#   espeak-ng sox alsa-utils   speech/noise/voice-prompt media (scripts/fetch-media.sh)
#   python3-pip      `pip download` of the pinned Silero VAD wheel (PyPI)
#   curl             upstream model downloads; build-essential for crates that compile C
#   iptables iproute2 openssl   network-fault tests (namespaces, DROP, loss) and the TLS tests' PKI
#   systemd          systemd-analyze, for the offline checks of the service unit
#   procps           pgrep (the watchdog test freezes the agent's decoder)
#   libfaketime      the clock tests (a box booting in 1970, clock steps)
#   libclang-dev pkg-config   nokhwa's V4L2 bindings (bindgen) at build time
#   libasound2-dev   cpal's ALSA bindings at build time (libasound2 at run time)
#   nasm             openh264's x86 assembly (its bundled C++ source is built by cargo)
#   pulseaudio pulseaudio-utils libasound2-plugins   the live-microphone test (null sink,
#                    captured through ALSA's default device)
#   postgresql       the reference ingest's tests and `vitrine-lab bench fleet` (a throwaway server
#                    in a temp directory; the package's own cluster is not used)
#   nodejs npm       the official AsyncAPI parser that checks the MQTT contract (tests/central.rs;
#                    `npm ci` into tests/support/asyncapi, from the lockfile, no install scripts)
#   chromium         the setup page's browser tests (tests/setup.rs), driven headless by
#                    playwright-core (`npm ci` into tests/support/browser, no browser download)
#   gir1.2-gst-rtsp-server-1.0 python3-gi gstreamer1.0-plugins-{base,good,bad}
#                    the local RTSP server of the IP-camera tests (tests/support/rtsp_server.py)
# Models (fetch_models, called after the build): `vitrine models fetch` from
# $VITRINE_MODEL_MIRROR (a mirror directory; default: a sibling ../shared/models if present),
# else the pinned upstream URLs / PyPI. sha256-checked.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else echo "need root for: $*" >&2; exit 1; fi; }

need=()
pkg_missing() { ! dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "ok installed"; }
# The demo (VITRINE_SETUP=demo, set by scripts/demo.sh) needs only the media tools, the broker,
# a C compiler and pip: it builds the agent without the live-capture back ends.
command -v ffmpeg >/dev/null || need+=(ffmpeg)
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v espeak-ng >/dev/null || need+=(espeak-ng)
command -v sox >/dev/null || need+=(sox)
[ -d /usr/share/sounds/alsa ] || need+=(alsa-utils)
command -v curl >/dev/null || need+=(curl ca-certificates)
command -v cc >/dev/null || need+=(build-essential)
python3 -m pip --version >/dev/null 2>&1 || need+=(python3-pip)
pkg_missing tzdata && need+=(tzdata)
if [ "${VITRINE_SETUP:-all}" != demo ]; then
command -v mosquitto_sub >/dev/null || need+=(mosquitto-clients)
command -v iptables >/dev/null || [ -x /usr/sbin/iptables ] || need+=(iptables)
command -v ip >/dev/null || [ -x /usr/sbin/ip ] || need+=(iproute2)
command -v openssl >/dev/null || need+=(openssl)
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v pgrep >/dev/null || need+=(procps)
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need+=(postgresql)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
[ -x /usr/bin/chromium ] || need+=(chromium)
for p in libfaketime libclang-dev pkg-config libasound2-dev nasm pulseaudio pulseaudio-utils libasound2-plugins \
         gir1.2-gst-rtsp-server-1.0 python3-gi gstreamer1.0-plugins-base gstreamer1.0-plugins-good \
         gstreamer1.0-plugins-bad; do
  pkg_missing "$p" && need+=("$p")
done
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}" >&2
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# mosquitto lives in /usr/sbin, which a non-root PATH may lack.
case ":$PATH:" in *:/usr/sbin:*) ;; *) export PATH="$PATH:/usr/sbin" ;; esac

"$root/scripts/fetch-media.sh" "$root/.cache/media" >/dev/null

# The AsyncAPI parser, pinned by the lockfile; install scripts off (one would phone home).
if [ "${VITRINE_SETUP:-all}" != demo ] && [ ! -d "$root/tests/support/asyncapi/node_modules/@asyncapi/parser" ]; then
  (cd "$root/tests/support/asyncapi" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
fi

# playwright-core drives Debian's chromium in the setup page's tests; it downloads no browser.
if [ "${VITRINE_SETUP:-all}" != demo ] && [ ! -d "$root/tests/support/browser/node_modules/playwright-core" ]; then
  (cd "$root/tests/support/browser" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
fi

if [ -z "${VITRINE_MODEL_MIRROR:-}" ] && [ -d "$root/../shared/models" ]; then
  export VITRINE_MODEL_MIRROR=$(cd "$root/../shared/models" && pwd)
fi
vitrine_bin="${CARGO_TARGET_DIR:-$root/target}/debug/vitrine"

# fetch_models: the pinned models into .cache/models, with an already built vitrine binary
# (built by the caller so that tests and demo each build the workspace once).
fetch_models() { "$vitrine_bin" models fetch --dir "$root/.cache/models"; }
