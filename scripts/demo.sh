#!/usr/bin/env bash
# The main job: a short PVP run on the built-in soft NIC with a container guest
# (DPDK virtio-user), stock vs mapped, alternating, printing a table.
# Installs what is missing and builds first. No hugepages needed.
#
#   NIC (soft, device side in simnic_peer) -> iovtee-switch -> guest (macswap)
#     -> iovtee-switch -> NIC, every frame checked by simnic_peer.
#
# Usage: scripts/demo.sh [SECONDS_PER_RUN (default 3)] [SIZES (default "64 1514")]
# Results (table, CSV, JSON, PNG) go to $IOVTEE_DEMO_OUT (default /tmp/iovtee-demo).
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
scripts/setup.sh --quiet || exit 1
seconds=${1:-3}
sizes=${2:-"64 1514"}
echo "demo: PVP on the soft NIC with a DPDK virtio-user guest, stock vs mapped, ${seconds}s per run"
echo "demo: sizes $sizes; a paced zero-loss check per size and mode, then A B A B runs"
# The short form of the PVP benchmark (bench/pvp/pvp_bench.py runs the full one).
exec python3 bench/pvp/pvp_bench.py --sizes "${sizes// /,}" --rounds 2 --seconds "$seconds" \
  --check-rate 20000 --out "${IOVTEE_DEMO_OUT:-/tmp/iovtee-demo}"
