#!/usr/bin/env bash
# End to end through the C ABI: soft NIC -> c_pvp_host (a C program over
# libiovtee.so; NIC Rx queue 0 mapped onto the guest's Rx queue) -> DPDK
# virtio-user guest (macswap, in simnic_peer) -> c_pvp_host -> NIC. The peer
# checks every frame (count, order, payload checksum); the mapping's counters,
# read by name through the C ABI, must account for every frame to the guest.
#
# Usage: c_pvp_test.sh SIMNIC_PEER C_PVP_HOST NET_SIMNIC_PLUGIN PEER_LIB
set -u
PEER=$1
HOST=$2
PLUGIN=$3
# shellcheck source=/dev/null
source "$4"
peer_lib_init || exit 1

# stat NAME KEY: a "key value" line of the host's stats file.
stat() { awk -v k="$2" '$1 == k {print $2}' "$WORK/$1.host.stats"; }

fails=0
run() {
  local name=$1 size=$2
  shift 2
  echo "=== $name: size=$size $*"
  start_peer "$name" pvp --size="$size" --rate=20000 --duration=3 --warmup=1 --linger=15 "$@" ||
    { fails=$((fails + 1)); return; }
  local prefix="iovtee-t-sw$$-$name"
  _prefixes+=("$prefix")
  local cmd=("$HOST" -l 1 --no-huge -m 1024 --no-pci --no-shconf --no-telemetry
    --file-prefix "$prefix" -d "$PLUGIN" --vdev "net_simnic0,socket=$WORK/$name.nic"
    -- "$WORK/$name.vhost" "$WORK/$name.host.stats")
  echo "${cmd[*]}" >"$LOGS/$name.host.cmd"
  "${cmd[@]}" </dev/null >"$LOGS/$name.host.log" 2>&1 &
  SWITCH_PID=$!
  _pids+=("$SWITCH_PID")
  if ! wait_report "$name" 60; then
    tail -n 20 "$LOGS/$name.peer.log" "$LOGS/$name.host.log" >&2
    fails=$((fails + 1))
    return
  fi
  local bad=0
  stop_all "$name" || { tail -n 20 "$LOGS/$name.host.log" >&2; bad=1; }
  local sent received lost corrupted reordered faults missed guest_drops
  sent=$(field "$name" sent)
  received=$(field "$name" received)
  lost=$(field "$name" lost)
  corrupted=$(field "$name" corrupted)
  reordered=$(field "$name" reordered)
  faults=$(field "$name" iommu_faults)
  missed=$(field "$name" nic_rx_missed)
  guest_drops=$(field "$name" guest_drops)
  echo "  peer: sent $sent received $received lost $lost corrupted $corrupted reordered $reordered iommu_faults $faults"
  if [ ! -f "$WORK/$name.host.stats" ]; then
    echo "  FAIL: c_pvp_host wrote no stats"
    fails=$((fails + 1))
    return
  fi
  echo "  host: $(tr '\n' ' ' <"$WORK/$name.host.stats")"
  local to_guest zc cp_host cp_foreign cp_order verr attaches detaches busy host_drops
  to_guest=$(stat "$name" to_guest)
  host_drops=$(($(stat "$name" to_guest_dropped) + $(stat "$name" to_nic_dropped)))
  zc=$(stat "$name" zero_copy)
  cp_host=$(stat "$name" copy_host_buffer)
  cp_foreign=$(stat "$name" copy_foreign)
  cp_order=$(stat "$name" copy_order_unproven)
  verr=$(stat "$name" validation_errors)
  attaches=$(stat "$name" attaches)
  detaches=$(stat "$name" detaches)
  busy=$(stat "$name" busy_refused)
  [ -n "$sent" ] && [ "$sent" -gt 0 ] || { echo "  FAIL: nothing sent"; bad=1; }
  [ "$lost" -le $((missed + host_drops + guest_drops)) ] ||
    { echo "  FAIL: $lost frames lost, more than the drops counted ($missed + $host_drops + $guest_drops)"; bad=1; }
  [ "$corrupted" = 0 ] || { echo "  FAIL: $corrupted frames corrupted"; bad=1; }
  [ "$reordered" = 0 ] || { echo "  FAIL: $reordered frames reordered"; bad=1; }
  [ "$faults" = 0 ] || { echo "  FAIL: $faults IOMMU faults"; bad=1; }
  [ "$attaches" -ge 1 ] || { echo "  FAIL: the mapping never attached"; bad=1; }
  [ "$detaches" = "$attaches" ] || { echo "  FAIL: $attaches attaches, $detaches detaches"; bad=1; }
  [ "$busy" -ge 1 ] || { echo "  FAIL: a second attach was not refused with -EBUSY"; bad=1; }
  [ "$zc" -gt 0 ] || { echo "  FAIL: no zero-copy completion"; bad=1; }
  echo "  mapping: to guest $to_guest = zero_copy $zc + copy_host_buffer $cp_host + foreign $cp_foreign + order_unproven $cp_order"
  [ $((zc + cp_host + cp_foreign + cp_order)) = "$to_guest" ] ||
    { echo "  FAIL: frames to the guest not all accounted for"; bad=1; }
  # Only the NIC ring's first fill (host buffers, before the guest was
  # attached) may reach the guest by copy.
  [ "$cp_host" -le 256 ] || { echo "  FAIL: $cp_host frames copied from host buffers"; bad=1; }
  [ "$verr" = 0 ] || { echo "  FAIL: validation errors"; bad=1; }
  [ "$(stat "$name" pool_free_mbufs)" = "$(stat "$name" pool_mbufs)" ] ||
    { echo "  FAIL: mbufs missing from the mapping's pool with the port stopped"; bad=1; }
  [ "$bad" = 0 ] && echo "  PASS $name" || fails=$((fails + 1))
}

run split64 64
run packed1518 1518 --guest-packed=1

echo "c_pvp_test: $fails failed case(s)"
[ "$fails" = 0 ]
