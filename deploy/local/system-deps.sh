#!/usr/bin/env bash
# Debian packages the tests use as real peers: kcat (an upstream producer/consumer), Prometheus
# with promtool, and Chromium (the model report is loaded in a headless browser). Installs only
# what is missing; needs root (or sudo) and apt-get.
set -euo pipefail

declare -A wanted=([kcat]=kcat [prometheus]=prometheus [promtool]=prometheus [chromium]=chromium)
missing=()
for tool in "${!wanted[@]}"; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("${wanted[$tool]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0
packages=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')

if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: the tests need these programs: $packages" >&2
    echo "  → install them with your package manager (they are Debian/Ubuntu packages)" >&2
    exit 2
fi
if [ "$(id -u)" -eq 0 ]; then
    sudo=()
elif command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
else
    echo "error: the tests need the Debian packages: $packages (not root, no sudo)" >&2
    echo "  → run: apt-get install -y $packages   (as root)" >&2
    exit 2
fi
echo "installing Debian packages: $packages"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
# shellcheck disable=SC2086
"${sudo[@]}" apt-get install -y -qq --no-install-recommends $packages >/dev/null
