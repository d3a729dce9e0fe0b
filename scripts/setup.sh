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
  # Stock PMD tests (veth pairs, private network namespaces), benchmark plots
  iproute2 util-linux gnuplot-nox
  # Linux guests in QEMU (software emulation; the guest kernel, busybox and
  # iperf3 are downloaded into /var/cache/iovtee/vm by test/vm/build_guest.sh)
  qemu-system-x86
  # The OVS-DPDK plugin: Debian's OVS 3.1 source, patched and built by ovs-plugin/build.sh
  openvswitch-source autoconf automake libtool
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# DPDK's driver SDK headers (ethdev_driver.h, bus_vdev_driver.h, ...) are not
# in libdpdk-dev; the soft NIC PMD needs them. They come from Debian's source
# package of the very DPDK version installed, and only those five headers are
# kept, outside the repository (bazel/system_libs.bzl finds them here).
dpdk_version=$(dpkg-query -W -f='${Version}' libdpdk-dev)
sdk_dir="${IOVTEE_DPDK_SDK:-/var/cache/iovtee/dpdk-sdk-${dpdk_version}}"
sdk_headers=(lib/ethdev/ethdev_driver.h lib/ethdev/ethdev_vdev.h
  drivers/bus/vdev/bus_vdev_driver.h lib/eal/include/bus_driver.h lib/eal/include/dev_driver.h)
if [ ! -f "$sdk_dir/include/ethdev_driver.h" ]; then
  echo "setup: fetching DPDK $dpdk_version driver SDK headers from Debian's source package"
  if ! grep -rqs '^Types: deb-src\|^deb-src ' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    $SUDO tee /etc/apt/sources.list.d/iovtee-deb-src.sources >/dev/null <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    $SUDO apt-get update -qq
  fi
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && apt-get source --download-only -qq "dpdk=$dpdk_version" >/dev/null 2>&1) || {
    echo "setup: apt-get source dpdk=$dpdk_version failed" >&2
    exit 1
  }
  patterns=()
  for h in "${sdk_headers[@]}"; do patterns+=("*/$h"); done
  tar -xJf "$tmp"/dpdk_*.orig.tar.xz -C "$tmp" --wildcards "${patterns[@]}"
  $SUDO mkdir -p "$sdk_dir/include"
  for h in "${sdk_headers[@]}"; do $SUDO cp "$tmp"/dpdk-*/"$h" "$sdk_dir/include/"; done
  echo "setup: DPDK driver SDK headers in $sdk_dir/include"
fi

[ "${1:-}" = "--quiet" ] || echo "setup: all ${#PACKAGES[@]} packages present; DPDK SDK headers in $sdk_dir"
