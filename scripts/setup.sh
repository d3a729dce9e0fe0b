#!/usr/bin/env bash
# Installs the Debian 12 packages iovtee needs, only those that are missing.
# Idempotent: when everything is present it only checks and returns.
# Usage: scripts/setup.sh [--quiet]
set -euo pipefail

PACKAGES=(
  # Build
  bazel-bootstrap g++ pkg-config python3
  # DPDK 22.11 (headers, libraries, PMDs, dpdk-testpmd)
  libdpdk-dev dpdk dpdk-dev
  # Abseil, GoogleTest/GoogleMock
  libabsl-dev libgtest-dev libgmock-dev
  # Style checks, libFuzzer and sanitizer runtimes
  clang clang-format clang-tidy libclang-rt-14-dev
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  [ "${1:-}" = "--quiet" ] || echo "setup: all ${#PACKAGES[@]} packages present"
  exit 0
fi

echo "setup: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup: need root or sudo to install packages" >&2; exit 1; }
  SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "setup: done"
