#!/usr/bin/env bash
# Measures (not a test) a PVP loop with Open vSwitch as the switch, stock and
# with iovtee, on the same harness: simnic_peer in pvp mode (soft NIC,
# generator/checker and a DPDK virtio-user guest echoing with MACs swapped)
# on core 0, ovs-vswitchd's PMD thread on core 1, flows dpdk0 <-> vhost0,
# unpaced. The iovtee run maps dpdk0's Rx queue onto vhost0's guest. Prints
# one line per run: Mpps offered and back, Gbps, loss, latency, the PMD
# thread's CPU share, OVS's processing cycles per packet (pmd-stats-show,
# both directions, preemption included), and for iovtee the zero-copy share.
#
# Usage: pvp_ovs.sh STOCK_VSWITCHD IOVTEE_VSWITCHD LIBIOVTEE_SO SIMNIC_PEER
#                   LIBRTE_NET_SIMNIC_SO PEER_LIB [SECONDS [CASES...]]
#   CASES: stock-64 iovtee-64 stock-1518 iovtee-1518 (default: all)
#   bazel run --config=opt //ovs-plugin:pvp_ovs -- 10
set -uo pipefail

STOCK_BIN=$(dirname "$(realpath "$1")")
IOVTEE_BIN=$(dirname "$(realpath "$2")")
LIBIOVTEE_DIR=$(dirname "$(realpath "$3")")
# shellcheck disable=SC2034  # used by peer_lib.sh / ovs_lib.sh
PEER=$(realpath "$4")
# shellcheck disable=SC2034
PLUGIN=$(realpath "$5")
# shellcheck source=test/softnic/peer/peer_lib.sh
. "$6"
SECS=${7:-10}
shift $(($# < 7 ? $# : 7))
CASES=("$@")
[ ${#CASES[@]} -gt 0 ] || CASES=(stock-64 iovtee-64 stock-1518 iovtee-1518)
ovs_lib=${RUNFILES_DIR:-/nonexistent}/iovtee/ovs-plugin/test/ovs_lib.sh
[ -f "$ovs_lib" ] || ovs_lib=$(dirname "$(realpath "$0")")/test/ovs_lib.sh
# shellcheck source=ovs-plugin/test/ovs_lib.sh
. "$ovs_lib" || exit 1
peer_lib_init --no-testpmd || exit 1

# pmd_cycles_per_packet: OVS's "avg processing cycles per packet" of the PMD.
pmd_cycles_per_packet() {
  appctl dpif-netdev/pmd-stats-show | sed -n 's/^ *avg processing cycles per packet: \([0-9.]*\).*/\1/p' | head -n 1
}

printf '%-12s %8s %8s %7s %7s %9s %9s %5s %9s %7s\n' case offered back Gbps loss% p50_us p99_us pmd ovs_cyc/pkt zc%
for c in "${CASES[@]}"; do
  kind=${c%%-*}
  size=${c#*-}
  if [ "$kind" = iovtee ]; then OVS_BIN=$IOVTEE_BIN; map=(options:iovtee-map-rxq0=vhost0); else
    OVS_BIN=$STOCK_BIN; map=(); fi
  WORK_BASE=$WORK
  WORK=$WORK_BASE/$c
  mkdir -p "$WORK"
  ovs_start || { echo "$c: OVS did not start"; WORK=$WORK_BASE; continue; }
  vsctl add-port br0 vhost0 -- set Interface vhost0 type=dpdkvhostuser ofport_request=2
  start_pvp_peer "$c" vhost0 --rate 0 --duration "$SECS" --warmup 1 --size "$size" \
    --guest-queue-size 4096 --setup-timeout 30 --linger 20
  pid=$PEER_PID
  add_nic "$c" options:n_rxq_desc=1024 "${map[@]}"
  [ "$kind" = iovtee ] && wait_until 20 "guest attached" iovtee_attached
  flows in_port=1,actions=output:2 in_port=2,actions=output:1
  appctl dpif-netdev/pmd-stats-clear >/dev/null
  t0=$(date +%s.%N)
  c0=$(pmd_ticks)
  wait_peer_report "$c" "$pid" $((SECS + 60))
  c1=$(pmd_ticks)
  t1=$(date +%s.%N)
  cyc=$(pmd_cycles_per_packet)
  zc=""
  if [ "$kind" = iovtee ]; then
    zc=$(awk -v z="$(iovtee_counter zero_copy)" -v c="$(iovtee_counter copied)" \
      'BEGIN { if (z + c > 0) printf "%.1f", 100 * z / (z + c) }')
  fi
  del_nic
  finish_peer "$pid" "$c" >/dev/null
  ovs_stop
  if [ -f "$WORK/$c.json" ]; then
    awk -v c="$c" -v off="$(f "$c" tx_mpps)" -v back="$(f "$c" rx_mpps)" \
      -v gbps="$(f "$c" rx_gbps)" -v sent="$(f "$c" sent)" -v lost="$(f "$c" lost)" \
      -v p50="$(f "$c" p50_ns)" -v p99="$(f "$c" p99_ns)" -v hz="$(getconf CLK_TCK)" \
      -v c0="$c0" -v c1="$c1" -v t0="$t0" -v t1="$t1" -v cyc="$cyc" -v zc="$zc" \
      'BEGIN { printf "%-12s %8.3f %8.3f %7.2f %7.3f %9.1f %9.1f %5.2f %9.0f %7s\n", c, off, back,
               gbps, (sent > 0 ? 100 * lost / sent : 0), p50 / 1e3, p99 / 1e3,
               (c1 - c0) / hz / (t1 - t0), cyc, zc }'
    printf '  nic missed %s, guest rx %s drops %s, peer cpu %s\n' "$(f "$c" nic_rx_missed)" \
      "$(f "$c" guest_rx)" "$(f "$c" guest_drops)" "$(f "$c" cpu_share)"
  else
    echo "$c: no report"
    tail -n 20 "$LOGS/$c.peer.log"
  fi
  WORK=$WORK_BASE
done
rmdir /var/run/dpdk 2>/dev/null
