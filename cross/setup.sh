#!/usr/bin/env bash
# Installs the Debian packages a field technician needs to cross-compile Vitrine for ARM on a
# Debian 12 (bookworm) x86_64 machine: Debian's rustc-web (1.96, bookworm-security) ships the
# arm64 standard library, gcc cross toolchains link, qemu-user runs ARM test binaries.
# Idempotent; needs root (or sudo). Source it or run it.
set -euo pipefail
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
need=()
dpkg --print-foreign-architectures | grep -qx arm64 || { $SUDO dpkg --add-architecture arm64; need+=(update); }
# libclang-dev: bindgen for the V4L2 bindings; g++: openh264's bundled C++; libasound2-dev:arm64:
# the ALSA library cpal links against.
pkgs=(pkg-config libclang-dev rustc-web cargo-web libstd-rust-web-dev libstd-rust-web-dev:arm64
      gcc-aarch64-linux-gnu g++-aarch64-linux-gnu libc6-dev-arm64-cross libasound2-dev:arm64
      qemu-user-static)
if [ "${VITRINE_CROSS_ARMV7:-0}" = 1 ]; then
  # armv7: no Debian std for armhf in rustc-web; build std from source (RUSTC_BOOTSTRAP, -Zbuild-std).
  pkgs+=(rust-web-src gcc-arm-linux-gnueabihf g++-arm-linux-gnueabihf libc6-dev-armhf-cross)
fi
missing=()
for p in "${pkgs[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
