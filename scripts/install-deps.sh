#!/usr/bin/env bash
# Installs the native libraries ThoughtCrime links against (Debian package names), only when
# one is missing: quiet and quick when everything is already there. iproute2 (ip netns) lets the
# two-host data-parallel test make its network namespaces.
set -euo pipefail
packages=(libopenblas-dev libhdf5-dev libdnnl-dev libopenmpi-dev openmpi-bin pkg-config iproute2)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]}" >&2
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
