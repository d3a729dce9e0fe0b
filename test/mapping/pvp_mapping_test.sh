#!/usr/bin/env bash
# End to end, the PVP matrix: soft NIC -> iovtee-switch (phy0 Rx queue 0 mapped
# onto vhost0's guest) -> DPDK virtio-user guest (macswap, inside simnic_peer)
# -> switch -> NIC. Split or packed rings (the SET argument), mergeable buffers
# on and off, frames of 64, 128, 512, 1518 and 9004 B (RFC 2544 sizes: 60,
# 124, 508, 1514 and 9000 bytes on the wire), and (split) a stock run.
#
# Every frame is checked by the peer (count, per-flow order, payload CRC); the
# switch's counters must show each frame on the path it took:
#  - NIC -> guest: every frame the switch delivered to vhost0 reached the
#    guest (guest_rx); in place (zero_copy) except the NIC ring's first fill
#    with host buffers (copy_host_buffer, at most the ring: 256); jumbo frames
#    arrive in several 1518-byte NIC buffers (phy Rx scatter, --mtu 9000) and
#    are copied into the guest's buffers (copy_multi_segment, mergeable or one
#    large buffer);
#  - nothing lost but what a counter explains; no IOMMU fault, no validation
#    error, no guest canary damaged (test/softnic/peer/guest_canary.h), the
#    mapping's pool whole again at exit.
# The peer and the switch busy-poll one core each: exclusive.
#
# Usage: pvp_mapping_test.sh SIMNIC_PEER IOVTEE_SWITCH PEER_LIB MAPPING_LIB split|packed
set -u
# shellcheck disable=SC2034  # used by mapping_lib.sh
PEER=$1 SWITCH=$2 PEER_LIB=$3
# shellcheck source=test/mapping/mapping_lib.sh
source "$4"
SET=$5
mapping_lib_init || exit 1

RATE=${IOVTEE_MAPPING_RATE:-20000}
DURATION=${IOVTEE_MAPPING_DURATION:-2}
RX_RING=256

# run NAME MAP(0|1) SIZE [peer options...] [-- switch options...]
# ORDER_UNPROVEN=1: a split ring without mergeable buffers (see below).
ORDER_UNPROVEN=0
run() {
  local name=$1 map=$2 size=$3 t0=$SECONDS
  shift 3
  # IOVTEE_MAPPING_CASES="split-64 ...": only these (by hand, when debugging).
  [ -n "${IOVTEE_MAPPING_CASES:-}" ] && [[ " $IOVTEE_MAPPING_CASES " != *" $name "* ]] && return
  local popts=() sopts=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do popts+=("$1"); shift; done
  [ $# -gt 0 ] && shift && sopts=("$@")
  echo "=== $name: map=$map size=$size ${popts[*]} ${sopts[*]:+| switch ${sopts[*]}}"
  local before=$fails
  local rate=$RATE
  [ "$size" -gt 1518 ] && rate=$((RATE / 2))
  if ! start_peer "$name" pvp --size="$size" --rate="$rate" --duration="$DURATION" \
    --warmup=0.5 --linger=15 "${popts[@]}"; then
    fail "the peer did not start"
    show_logs "$name"
    return
  fi
  local mapargs=()
  [ "$map" = 1 ] && mapargs=(--map phy0:0=vhost0)
  start_iovtee_switch "$name" --vhost "$WORK/$name.vhost" "${mapargs[@]}" \
    --rx-ring "$RX_RING" "${sopts[@]}"
  if ! wait_report "$name" 60; then
    fail "no report"
    show_logs "$name"
    stop_switch_and_nic "$name"
    return
  fi
  local t_report=$SECONDS
  stop_switch_and_nic "$name" || fail "the switch or the peer did not stop cleanly"
  echo "  (report after $((t_report - t0)) s, both stopped $((SECONDS - t_report)) s later)"

  check_pvp_report "$name"
  local lost to_guest
  lost=$(field "$name" lost)
  to_guest=$(sw "$name" "ports[name=vhost0].tx")
  if [ "$map" = 1 ]; then
    local m="ports[name=phy0].mapping" zc copied cp_host cp_multi cp_order drops=0 r
    zc=$(sw "$name" "$m.zero_copy")
    copied=$(sw "$name" "$m.copied")
    cp_host=$(sw "$name" "$m.copy_host_buffer")
    cp_multi=$(sw "$name" "$m.copy_multi_segment")
    cp_order=$(sw "$name" "$m.copy_order_unproven")
    for r in drop_no_buffer drop_too_big drop_offload drop_broken_queue drop_no_guest; do
      drops=$((drops + $(sw "$name" "$m.$r")))
    done
    echo "  mapping: to guest $to_guest = zero_copy $zc + copied $copied (host buffer $cp_host," \
      "multi-segment $cp_multi, order unproven $cp_order); dropped $drops (counted above);" \
      "attaches $(sw "$name" "$m.attaches") detaches $(sw "$name" "$m.detaches")"
    expect "$(sw "$name" "$m.attaches")" -ge 1 attaches
    expect $((zc + copied)) -eq "$to_guest" "zero_copy + copied (vs switch vhost0 tx)"
    if [ "$size" -gt 1518 ]; then
      # Jumbo: every frame spans several NIC buffers and is copied, whether
      # its buffers were the guest's (multi-segment) or not (host buffer).
      expect "$zc" -eq 0 "zero_copy (jumbo frames span several NIC buffers)"
      expect "$cp_multi" -gt 0 copy_multi_segment
      expect $((cp_multi + cp_host)) -eq "$copied" "copy_multi_segment + copy_host_buffer"
    elif [ "$ORDER_UNPROVEN" = 1 ]; then
      # Split ring without mergeable buffers: DPDK's virtio may read used
      # entries by position (its vectorized path does), so the mapping copies
      # in ring order until the guest shows it reads ids, which DPDK's scalar
      # path never does (MappingOptions::guest_rx_order).
      expect "$zc" -eq 0 "zero_copy (order on probation)"
      expect $((cp_order + cp_host)) -eq "$copied" "copy_order_unproven + copy_host_buffer"
      expect "$cp_host" -le "$RX_RING" copy_host_buffer
    else
      # Only the NIC ring's first fill (host buffers, before the guest was
      # attached) may reach the guest from host buffers.
      expect "$zc" -gt 0 zero_copy
      expect "$cp_host" -eq "$copied" "copied (all from host buffers)"
      expect "$cp_host" -le "$RX_RING" copy_host_buffer
    fi
    check_mapping_whole "$name"
  fi
  case_verdict "$name" "$before" "$t0"
}

# Jumbo: phy MTU 9000 (Rx scatter into the 1518-byte buffers), and a NIC ring
# that holds more of those frames.
JUMBO=(--mtu 9000 --rx-ring 1024)
case $SET in
  split)
    run split-64 1 64
    run split-128 1 128
    run split-512 1 512
    run split-1518 1 1518
    # Mergeable: small guest buffers, frames spread over several of them.
    run split-9004 1 9004 --guest-data-room=2048 -- "${JUMBO[@]}"
    ORDER_UNPROVEN=1 run split-nomrg-64 1 64 --guest-mrg-rxbuf=0
    run split-stock-64 0 64
    ;;
  packed)
    run packed-64 1 64 --guest-packed
    run packed-128 1 128 --guest-packed
    run packed-512 1 512 --guest-packed
    run packed-1518 1 1518 --guest-packed
    run packed-9004 1 9004 --guest-packed --guest-data-room=2048 -- "${JUMBO[@]}"
    run packed-nomrg-64 1 64 --guest-packed --guest-mrg-rxbuf=0
    # No mergeable buffers: the guest posts buffers that hold a whole frame.
    run packed-nomrg-9004 1 9004 --guest-packed --guest-mrg-rxbuf=0 -- "${JUMBO[@]}"
    ;;
  *)
    echo "unknown set $SET (split or packed)"
    exit 2
    ;;
esac

rmdir /var/run/dpdk 2>/dev/null
echo "pvp_mapping_test $SET: $fails failed check(s)"
[ "$fails" = 0 ]
