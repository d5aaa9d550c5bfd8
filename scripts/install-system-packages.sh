#!/usr/bin/env bash
# Install Debian/Ubuntu system packages that ethos's tests or features need, e.g.
#   scripts/install-system-packages.sh postgresql
# Idempotent: only packages not already installed are installed, and `apt-get update` runs at
# most once per call (and not at all when nothing is missing). Needs root to install; a user
# without root who lacks a package is told what to run instead.
set -euo pipefail

if [ "$#" -eq 0 ]; then
    echo "usage: $0 PACKAGE [PACKAGE...]   (e.g. $0 postgresql)" >&2
    exit 2
fi

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
    echo "install-system-packages: this system has no dpkg/apt-get; install these packages" \
         "with your system's package manager: $*" >&2
    exit 1
fi

missing=()
for pkg in "$@"; do
    if dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        echo "install-system-packages: $pkg already installed"
    else
        missing+=("$pkg")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    echo "install-system-packages: nothing to do"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install-system-packages: not installed: ${missing[*]}" >&2
    echo "  installing needs root; run:  sudo $0 ${missing[*]}" >&2
    echo "  (or: sudo apt-get update && sudo apt-get install -y --no-install-recommends" \
         "${missing[*]})" >&2
    exit 1
fi

echo "install-system-packages: apt-get update"
apt-get update
echo "install-system-packages: installing ${missing[*]}"
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
echo "install-system-packages: installed ${missing[*]}"
