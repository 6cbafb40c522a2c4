#!/usr/bin/env bash
# Real demo/test media from Debian's registries (no ../shared needed):
#   vtest.avi       opencv-doc: PETS2009 S2L1, 768x576 10 fps 79.5 s, 4-8 pedestrians from above
#   speech.wav      espeak-ng: ~15 s of synthesized English speech, 16 kHz
#   prompts.wav     alsa-utils: real recorded voice prompts (Front_Center ... Rear_Right), 48 kHz
#   noise.wav       sox: 15 s brown noise at a known level (-30 dBFS RMS), no speech
#   demo-mic.wav    80 s: prompts and speech separated by quiet room noise (the demo microphone)
#   melody.wav      sox: 14.7 s of a plucked-string melody (music for the sound categories)
# Usage: scripts/fetch-media.sh [DIR]   (default .cache/media; idempotent)
set -euo pipefail
dir=${1:-${VITRINE_MEDIA_DIR:-$(dirname "$0")/../.cache/media}}
mkdir -p "$dir"; dir=$(cd "$dir" && pwd)
need=()
for c in ffmpeg:ffmpeg espeak-ng:espeak-ng sox:sox; do command -v "${c%%:*}" >/dev/null || need+=("${c##*:}"); done
[ -d /usr/share/sounds/alsa ] || need+=(alsa-utils)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]} (apt)" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if [ ! -s "$dir/vtest.avi" ]; then
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download opencv-doc >/dev/null 2>&1 || { apt-get update -qq && apt-get download opencv-doc >/dev/null; })
  dpkg-deb --fsys-tarfile "$tmp"/opencv-doc_*.deb | tar -x -C "$tmp" --wildcards './usr/share/doc/opencv-doc/examples/data/vtest.avi'
  mv "$tmp/usr/share/doc/opencv-doc/examples/data/vtest.avi" "$dir/vtest.avi"
  rm -rf "$tmp"
fi
if [ ! -s "$dir/speech.wav" ]; then
  espeak-ng -v en -s 150 -w "$dir/.speech-22k.wav" \
    "Welcome to our store. Today we have fresh bread, local cheese and seasonal fruit at the front counter. \
     Please ask our staff if you need help finding anything. The fitting rooms are at the back, next to the shoes."
  sox "$dir/.speech-22k.wav" -r 16000 -c 1 -b 16 "$dir/speech.wav"; rm -f "$dir/.speech-22k.wav"
fi
if [ ! -s "$dir/prompts.wav" ]; then
  sox /usr/share/sounds/alsa/Front_Center.wav /usr/share/sounds/alsa/Front_Left.wav /usr/share/sounds/alsa/Front_Right.wav \
      /usr/share/sounds/alsa/Rear_Left.wav /usr/share/sounds/alsa/Rear_Right.wav "$dir/prompts.wav"
fi
if [ ! -s "$dir/noise.wav" ]; then
  # Brown noise normalized to -30 dBFS RMS (sox gain -n sets the peak; fix RMS with a measured gain).
  sox -n -r 16000 -c 1 -b 16 "$dir/.noise.wav" synth 15 brownnoise
  rms=$(sox "$dir/.noise.wav" -n stat 2>&1 | awk '/RMS +amplitude/ {print $3}')
  gain=$(awk -v r="$rms" 'BEGIN { printf "%.3f", -30 - 20*log(r)/log(10) }')
  sox "$dir/.noise.wav" "$dir/noise.wav" gain "$gain"; rm -f "$dir/.noise.wav"
fi
if [ ! -s "$dir/melody.wav" ]; then
  t=$(mktemp -d); i=0
  for n in C4 E4 G4 C5 G4 E4 C4 D4 F4 A4 D5 A4 F4 D4; do
    sox -n -r 16000 -c 1 -b 16 "$t/$(printf %02d $i).wav" synth 0.35 pluck $n fade 0 0.35 0.1; i=$((i + 1))
  done
  sox "$t"/*.wav "$t/phrase.wav"; sox "$t/phrase.wav" "$t/phrase.wav" "$t/phrase.wav" "$dir/melody.wav"
  rm -rf "$t"
fi
if [ ! -s "$dir/demo-mic.wav" ]; then
  t=$(mktemp -d)
  sox -n -r 16000 -c 1 -b 16 "$t/quiet.wav" synth 8 brownnoise gain -45
  sox "$dir/prompts.wav" -r 16000 -c 1 -b 16 "$t/prompts.wav"
  sox "$t/quiet.wav" "$dir/speech.wav" "$t/quiet.wav" "$t/prompts.wav" "$t/quiet.wav" "$t/quiet.wav" \
      "$dir/speech.wav" "$t/quiet.wav" "$t/prompts.wav" "$t/quiet.wav" "$dir/demo-mic.wav" trim 0 80
  rm -rf "$t"
fi
ls -l "$dir"
