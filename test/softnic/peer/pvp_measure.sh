#!/usr/bin/env bash
# Measures (not a test) simnic_peer's own capacity and a stock PVP loop, with
# Debian's dpdk-testpmd as the switch (io forwarding, one core), unpaced:
#   nic-loop  testpmd loops its net_simnic port: the peer alone
#   pvp       testpmd forwards net_simnic <-> net_vhost; the peer's guest echoes
# at 64 B and 1518 B (1514-byte frames). Prints one line per run: Mpps
# offered and back, loss, latency, the CPU share each process got (1.00 = a
# full core), the peer's CPU cycles per frame back (peer_cyc, idle polling
# included) and its busy cycles per frame back (busy_cyc: iterations that moved
# frames, preemption left out: its cost whatever share of a core it got), and
# the exact commands.
#
# Throughput runs check every frame's headers, sequence and loss but read the
# payload (and a guest's buffer canaries) of one frame in 64 only
# (--verify=sample:64; VERIFY=all for every byte): at 1518 B reading every
# payload costs the tester more than the switch's copy of it.
#
# Usage: pvp_measure.sh SIMNIC_PEER LIBRTE_NET_SIMNIC_SO [SECONDS [CASES...]]
#   CASES: loop-64 loop-1518 pvp-64 pvp-1518 (default: all), or MODE-SIZE
#   with SIZE an RFC 2544 size or "imix". Extra peer options: PEER_ARGS;
#   the checker's verify mode: VERIFY (default sample:64).
#   bazel run --config=opt //test/softnic/peer:pvp_measure -- 10 pvp-64
set -uo pipefail

# shellcheck disable=SC2034  # used by peer_lib.sh
PEER=$(realpath "$1")
# shellcheck disable=SC2034
PLUGIN=$(realpath "$2")
SECS=${3:-10}
shift $(($# < 3 ? $# : 3))
CASES=("$@")
[ ${#CASES[@]} -gt 0 ] || CASES=(loop-64 loop-1518 pvp-64 pvp-1518)
lib=${RUNFILES_DIR:-/nonexistent}/iovtee/test/softnic/peer/peer_lib.sh
[ -f "$lib" ] || lib=$(dirname "$(realpath "$0")")/peer_lib.sh
# shellcheck source=test/softnic/peer/peer_lib.sh
. "$lib"
peer_lib_init || exit 1
LOGS=$WORK  # keep the logs until the end, then print where they were
VERIFY=${VERIFY:-sample:64}
echo "peer --verify=$VERIFY, $SECS s per case"

printf '%-10s %8s %8s %7s %8s %9s %9s %6s %8s %8s %8s\n' case offered back Gbps loss% p50_us p99_us peer testpmd peer_cyc busy_cyc
for c in "${CASES[@]}"; do
  mode=${c%%-*}
  size=${c#*-}
  [ "$mode" = loop ] && mode=nic-loop
  if [ "$size" = imix ]; then size_args=(--imix); else size_args=(--size "$size"); fi
  # shellcheck disable=SC2086
  start_peer "$c" "$mode" --rate 0 --duration "$SECS" --warmup 1 "${size_args[@]}" \
    --verify="$VERIFY" ${PEER_ARGS:-} || { echo "$c: the peer did not start"; continue; }
  start_switch "$c" "$mode"
  t0=$(date +%s.%N)
  c0=$(cpu_ticks "$SWITCH_PID")
  wait_report "$c" $((SECS + 60))
  c1=$(cpu_ticks "$SWITCH_PID")
  t1=$(date +%s.%N)
  stop_all "$c"
  if [ ! -f "$WORK/$c.json" ]; then
    echo "$c: no report"
    tail -n 20 "$LOGS/$c.peer.log"
    continue
  fi
  awk -v c="$c" -v off="$(field "$c" tx_mpps)" -v back="$(field "$c" rx_mpps)" \
    -v gbps="$(field "$c" rx_gbps)" -v sent="$(field "$c" sent)" -v lost="$(field "$c" lost)" \
    -v p50="$(field "$c" p50_ns)" -v p99="$(field "$c" p99_ns)" \
    -v peer="$(field "$c" cpu_share)" -v hz="$(getconf CLK_TCK)" \
    -v cyc="$(field "$c" cycles_per_frame)" -v busy="$(field "$c" busy_cycles_per_frame)" \
    -v c0="$c0" -v c1="$c1" -v t0="$t0" -v t1="$t1" \
    'BEGIN { printf "%-10s %8.3f %8.3f %7.2f %8.3f %9.1f %9.1f %6.2f %8.2f %8.0f %8.0f\n", c, off, back, gbps,
             (sent > 0 ? 100 * lost / sent : 0), p50 / 1e3, p99 / 1e3, peer,
             (c1 - c0) / hz / (t1 - t0), cyc, busy }'
  printf '  nic missed %s, guest rx %s drops %s, peer nic-tx polls full %s of %s\n' \
    "$(field "$c" nic_rx_missed)" "$(field "$c" guest_rx)" "$(field "$c" guest_drops)" \
    "$(field "$c" nic_tx_full_polls)" "$(field "$c" nic_tx_polls)"
  echo "  peer:    $(cat "$LOGS/$c.peer.cmd")"
  echo "  testpmd: $(cat "$LOGS/$c.testpmd.cmd")"
  cp "$WORK/$c.json" "/tmp/pvp_measure-$c.json"
done
rmdir /var/run/dpdk 2>/dev/null
echo "(reports copied to /tmp/pvp_measure-CASE.json)"
