#!/usr/bin/env bash
# A DPDK virtio-user guest on its vectorized split-ring Rx path (vectorized=1,
# mergeable buffers off, VIRTIO_F_IN_ORDER off) behind a mapped Rx queue:
# soft NIC -> iovtee-switch (phy0 Rx queue 0 mapped onto vhost0) -> guest
# (macswap, inside simnic_peer) -> switch -> NIC, 64 B.
#
# That Rx path reads used entries by position and ignores their ids, so it
# cannot take a mapped queue's out-of-order completions, and nothing in the
# negotiation shows it. The library's answer (docs/user-guide.md, "Guests
# without mergeable buffers on a split ring"): a split ring without mergeable
# buffers starts on Rx order probation and copies every frame in ring order
# until the guest posts a buffer out of identity order, which this path never
# does. So every frame must arrive intact, by copy:
#   zero_copy == 0, copy_order_unproven == every frame delivered to vhost0,
#   and the probation never ended (the library's log).
# The guest must really run the vectorized path: the peer reads the virtio
# PMD's own log line ("using vectorized Rx path") and refuses to attach
# otherwise; the report's guest_rx_path is checked here too.
#
# Two controls with the same guest but vectorized=0 (DPDK's standard Rx path,
# which reads used ids): under the default detection it is on probation too
# (it never posts out of order either: copies); with --guest-rx-order trust
# its buffers go to the NIC at once (zero copy), and its frames are intact
# as well. So what keeps the vectorized guest's frames intact is the
# probation, not the guest's configuration. And the check of the check: with
# the vectorized path turned off under it (EAL --force-max-simd-bitwidth=64)
# the peer refuses to run, saying why.
#
# Each run also checks what every PVP run must show: every frame the peer
# sent came back once, intact and in order, or is a counted drop; no IOMMU
# fault, no validation error, no guest canary damaged, the mapping's pool
# whole at exit. The peer and the switch busy-poll one core each: exclusive.
#
# Usage: vectorized_guest_test.sh SIMNIC_PEER IOVTEE_SWITCH PEER_LIB MAPPING_LIB
set -u
# shellcheck disable=SC2034  # used by mapping_lib.sh
PEER=$1 SWITCH=$2 PEER_LIB=$3
# shellcheck source=test/mapping/mapping_lib.sh
source "$4"
mapping_lib_init || exit 1

RATE=${IOVTEE_MAPPING_RATE:-20000}
DURATION=${IOVTEE_MAPPING_DURATION:-2}
RX_RING=256
# The guest of every case: split ring, no mergeable buffers, no IN_ORDER.
GUEST=(--guest-mrg-rxbuf=0 --guest-in-order=0)

# run NAME RX_PATH EXPECT(probation|zero-copy) [peer options...] [-- switch options...]
run() {
  local name=$1 rx_path=$2 want=$3 t0=$SECONDS
  shift 3
  local popts=() sopts=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do popts+=("$1"); shift; done
  [ $# -gt 0 ] && shift && sopts=("$@")
  echo "=== $name: ${GUEST[*]} ${popts[*]} ${sopts[*]:+| switch ${sopts[*]}}"
  local before=$fails
  if ! start_peer "$name" pvp --size=64 --rate="$RATE" --duration="$DURATION" --warmup=0.5 \
    --linger=15 "${GUEST[@]}" "${popts[@]}"; then
    fail "the peer did not start"
    show_logs "$name"
    return
  fi
  start_iovtee_switch "$name" --vhost "$WORK/$name.vhost" --map phy0:0=vhost0 \
    --rx-ring "$RX_RING" "${sopts[@]}"
  if ! wait_report "$name" 60; then
    fail "no report"
    show_logs "$name"
    stop_switch_and_nic "$name"
    return
  fi
  stop_switch_and_nic "$name" || fail "the switch or the peer did not stop cleanly"
  [ -f "$WORK/$name.sw.json" ] || { fail "the switch wrote no stats"; show_logs "$name"; return; }

  check_pvp_report "$name"
  local got_path
  got_path=$(field "$name" guest_rx_path)
  echo "  guest: Rx path '$got_path', Tx path '$(field "$name" guest_tx_path)';" \
    "$(grep -o 'net_virtio_user path=[^ ]*' "$LOGS/$name.peer.log" | head -n 1)"
  [ "$got_path" = "$rx_path" ] || fail "guest_rx_path = '$got_path', want '$rx_path'"

  local m="ports[name=phy0].mapping" to_guest zc copied cp_order cp_host swlog
  to_guest=$(sw "$name" "ports[name=vhost0].tx")
  zc=$(sw "$name" "$m.zero_copy")
  copied=$(sw "$name" "$m.copied")
  cp_order=$(sw "$name" "$m.copy_order_unproven")
  cp_host=$(sw "$name" "$m.copy_host_buffer")
  swlog="$LOGS/$name.switch.log"
  echo "  mapping: to guest $to_guest = zero_copy $zc + copied $copied (order unproven" \
    "$cp_order, host buffer $cp_host)"
  expect "$(sw "$name" "$m.attaches")" -ge 1 attaches
  expect "$to_guest" -gt 0 "frames delivered to vhost0"
  expect $((zc + copied)) -eq "$to_guest" "zero_copy + copied (vs switch vhost0 tx)"
  if [ "$want" = probation ]; then
    expect "$zc" -eq 0 "zero_copy (Rx order on probation)"
    expect "$cp_order" -eq "$to_guest" "copy_order_unproven (vs frames delivered to vhost0)"
    # The stats at exit come after the detach (no probation then): the
    # library's log says when a probation starts and when it ends.
    log_count "$swlog" "Rx order on probation" 1 || fail "the mapping did not start on probation"
    log_count "$swlog" "Rx order probation ends" 1 && fail "the probation ended"
  else
    # Trusted: buffers lent to the NIC at once; only the NIC ring's first
    # fill (host buffers, before the guest attached) is copied.
    log_count "$swlog" "Rx order on probation" 1 && fail "the trusted guest was on probation"
    expect "$zc" -gt 0 zero_copy
    expect "$cp_order" -eq 0 copy_order_unproven
    expect "$cp_host" -eq "$copied" "copied (all from host buffers)"
    expect "$cp_host" -le "$RX_RING" copy_host_buffer
  fi
  check_mapping_whole "$name"
  case_verdict "$name" "$before" "$t0"
}

# refused: the tests' own check. EAL's --force-max-simd-bitwidth=64 makes
# the PMD turn the vectorized path off (it logs why); the peer must then
# refuse to run rather than measure a scalar guest as a vectorized one.
refused() {
  local name=refused t0=$SECONDS before=$fails prc
  local prefix="iovtee-t-peer$$-$name"
  echo "=== $name: --guest-vectorized with EAL --force-max-simd-bitwidth=64"
  _prefixes+=("$prefix")
  if ! start_peer "$name" pvp --size=64 --rate="$RATE" --duration=1 --warmup=0 --linger=15 \
    "${GUEST[@]}" --guest-vectorized -- -l "$PEER_CORE" --no-huge -m 512 --no-pci --no-shconf \
    --no-telemetry --file-prefix "$prefix" --force-max-simd-bitwidth=64; then
    fail "the peer did not start"
    show_logs "$name"
    return
  fi
  start_iovtee_switch "$name" --vhost "$WORK/$name.vhost" --map phy0:0=vhost0 --rx-ring "$RX_RING"
  wait_report "$name" 60 || fail "no report"
  stop "$SWITCH_PID" iovtee-switch 20
  wait_exit "$PEER_PID" 20 || stop "$PEER_PID" simnic_peer 5
  wait "$PEER_PID"
  prc=$?
  rm -rf "/var/run/dpdk/$prefix" "/var/run/dpdk/iovtee-t-sw$$-$name"
  local error
  error=$(grep -o '"error": "[^"]*' "$WORK/$name.json" 2>/dev/null | cut -c11-)
  echo "  peer exit status $prc, error: $error"
  expect "$prc" -eq 1 "the peer's exit status"
  [[ "$error" == *"vectorized=1, but the virtio PMD runs the standard Rx path"* ]] ||
    fail "the peer did not refuse the guest for its Rx path"
  [[ "$error" == *"max SIMD bitwidth too low"* ]] || fail "the refusal does not say why"
  expect "$(field "$name" guest_rx)" -eq 0 "frames the refused guest received"
  case_verdict "$name" "$before" "$t0"
}

run vectorized vectorized probation --guest-vectorized
run scalar standard probation
run scalar-trusted standard zero-copy -- --guest-rx-order trust
refused

rmdir /var/run/dpdk 2>/dev/null
echo "vectorized_guest_test: $fails failed check(s)"
[ "$fails" = 0 ]
