#!/usr/bin/env bash
# System packages the tests need beyond pip: the libraries Qt loads (offscreen and under X),
# fonts (without them every glyph renders as a box), and Xvfb + xauth for the real-window tests.
# Installs them with apt-get where there is apt-get and root or sudo; does nothing when they are
# already there. Elsewhere it says what to install and carries on: the offscreen tests still run.
set -euo pipefail

PACKAGES=(
  xvfb xauth fonts-dejavu-core libegl1 libgl1 libopengl0 libglib2.0-0 libfontconfig1
  libfreetype6 libxkbcommon0 libdbus-1-3 libxkbcommon-x11-0 libx11-xcb1 libxcb-cursor0
  libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-randr0 libxcb-render-util0
  libxcb-shape0 libxcb-xfixes0 libxcb-sync1 libxcb-xkb1 libxcb-shm0
)

if ! command -v apt-get >/dev/null 2>&1; then
  if ! command -v xvfb-run >/dev/null 2>&1; then
    echo "install-test-deps: no apt-get here; install Xvfb (xvfb-run) and the Qt xcb libraries" \
      "with your system's package manager for the real-window tests." >&2
  fi
  exit 0
fi

if dpkg-query -W -f='${Status}\n' "${PACKAGES[@]}" 2>/dev/null | grep -qv "install ok installed" \
  || [ "$(dpkg-query -W -f='${Status}\n' "${PACKAGES[@]}" 2>/dev/null | wc -l)" -ne "${#PACKAGES[@]}" ]; then
  SUDO=""
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      SUDO="sudo -n"
    elif command -v sudo >/dev/null 2>&1 && [ -t 0 ]; then
      SUDO="sudo"
    else
      echo "install-test-deps: not root and no sudo; please run:" >&2
      echo "  sudo apt-get install --no-install-recommends ${PACKAGES[*]}" >&2
      exit 0
    fi
  fi
  echo "install-test-deps: installing ${PACKAGES[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null
fi
