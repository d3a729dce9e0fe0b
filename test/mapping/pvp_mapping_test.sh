#!/usr/bin/env bash
# End to end: soft NIC -> iovtee-switch (phy0 Rx queue 0 mapped onto vhost0's
# guest) -> DPDK virtio-user guest (macswap, in simnic_peer) -> switch -> NIC.
# Every frame is checked by the peer (count, order, payload checksum); the
# switch's counters must show each frame on the path it took.
#
# Usage: pvp_mapping_test.sh SIMNIC_PEER IOVTEE_SWITCH PEER_LIB
set -u
PEER=$1
SWITCH=$2
# shellcheck source=/dev/null
source "$3"
peer_lib_init || exit 1

fails=0
# json_field FILE KEY: the first numeric value of "KEY": N in a one-line JSON.
json_field() { grep -o "\"$2\":[0-9]*" "$1" | head -n 1 | cut -d: -f2; }

# run NAME MAP(0|1) SIZE [peer options...]
run() {
  local name=$1 map=$2 size=$3
  shift 3
  echo "=== $name: map=$map size=$size $*"
  start_peer "$name" pvp --size="$size" --rate=20000 --duration=3 --warmup=1 --linger=15 "$@" ||
    { fails=$((fails + 1)); return; }
  local prefix="iovtee-t-sw$$-$name"
  _prefixes+=("$prefix")
  local mapargs=()
  [ "$map" = 1 ] && mapargs=(--map phy0:0=vhost0)
  local cmd=("$SWITCH" -l 1 --no-huge -m 1024 --no-pci --no-shconf --no-telemetry
    --file-prefix "$prefix" -- --phy "net_simnic0,socket=$WORK/$name.nic"
    --vhost "$WORK/$name.vhost" "${mapargs[@]}" --rx-ring 256 --stats-file "$WORK/$name.sw.json")
  echo "${cmd[*]}" >"$LOGS/$name.switch.cmd"
  "${cmd[@]}" </dev/null >"$LOGS/$name.switch.log" 2>&1 &
  SWITCH_PID=$!
  _pids+=("$SWITCH_PID")
  if ! wait_report "$name" 60; then
    tail -n 20 "$LOGS/$name.peer.log" "$LOGS/$name.switch.log" >&2
    fails=$((fails + 1))
    return
  fi
  stop_all "$name" || fails=$((fails + 1))
  local r="$WORK/$name.json" s="$WORK/$name.sw.json"
  local sent received lost corrupted faults reordered
  sent=$(field "$name" sent)
  received=$(field "$name" received)
  lost=$(field "$name" lost)
  corrupted=$(field "$name" corrupted)
  reordered=$(field "$name" reordered)
  faults=$(field "$name" iommu_faults)
  echo "  peer: sent $sent received $received lost $lost corrupted $corrupted reordered $reordered iommu_faults $faults"
  local bad=0
  [ -n "$sent" ] && [ "$sent" -gt 0 ] || { echo "  FAIL: nothing sent"; bad=1; }
  # Nothing lost: every frame the peer did not get back is a drop counted
  # with a reason (the NIC ring full: the switch did not poll in time; the
  # switch or the guest could not send). On a quiet machine all are 0.
  local missed guest_drops sw_drops=0
  missed=$(field "$name" nic_rx_missed)
  guest_drops=$(field "$name" guest_drops)
  if [ -f "$s" ]; then
    for d in $(grep -o '"tx_dropped":[0-9]*' "$s" | cut -d: -f2); do sw_drops=$((sw_drops + d)); done
  fi
  echo "  counted drops: nic missed $missed, switch $sw_drops, guest $guest_drops"
  [ "$lost" -le $((missed + sw_drops + guest_drops)) ] ||
    { echo "  FAIL: $lost frames lost, more than the drops counted"; bad=1; }
  [ "$corrupted" = 0 ] || { echo "  FAIL: $corrupted frames corrupted"; bad=1; }
  [ "$reordered" = 0 ] || { echo "  FAIL: $reordered frames reordered"; bad=1; }
  [ "$faults" = 0 ] || { echo "  FAIL: $faults IOMMU faults"; bad=1; }
  if [ ! -f "$s" ]; then
    echo "  FAIL: the switch wrote no stats"
    bad=1
  else
    local to_guest zc cp_host cp_foreign verr attached_ok
    to_guest=$(grep -o '"name":"vhost0","rx":[0-9]*,"tx":[0-9]*' "$s" | sed 's/.*"tx"://')
    echo "  switch: $(cat "$s")"
    if [ "$map" = 1 ]; then
      zc=$(json_field "$s" zero_copy)
      cp_host=$(json_field "$s" copy_host_buffer)
      cp_foreign=$(json_field "$s" copy_foreign)
      verr=$(json_field "$s" validation_errors)
      attached_ok=$(json_field "$s" attaches)
      echo "  mapping: to guest $to_guest = zero_copy $zc + copy_host_buffer $cp_host (+ foreign $cp_foreign)"
      [ "$attached_ok" -ge 1 ] || { echo "  FAIL: the mapping never attached"; bad=1; }
      [ "$zc" -gt 0 ] || { echo "  FAIL: no zero-copy completion"; bad=1; }
      [ $((zc + cp_host + cp_foreign)) = "$to_guest" ] ||
        { echo "  FAIL: frames to the guest not all accounted for"; bad=1; }
      # Only the NIC ring's first fill (host buffers, before the guest was
      # attached) may reach the guest by copy.
      [ "$cp_host" -le 256 ] || { echo "  FAIL: $cp_host frames copied from host buffers"; bad=1; }
      [ "$cp_foreign" = 0 ] || { echo "  FAIL: foreign copies in a one-guest loop"; bad=1; }
      [ "$verr" = 0 ] || { echo "  FAIL: validation errors"; bad=1; }
    fi
  fi
  [ "$bad" = 0 ] && echo "  PASS $name" || fails=$((fails + 1))
}

run split64 1 64
run split1518 1 1518
run packed64 1 64 --guest-packed=1
run nomrg64 1 64 --guest-mrg-rxbuf=0
run stock64 0 64

echo "pvp_mapping_test: $fails failed case(s)"
[ "$fails" = 0 ]
