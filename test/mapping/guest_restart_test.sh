#!/usr/bin/env bash
# A mapped guest killed with SIGKILL mid-traffic and restarted, 20 times in a
# row, while the NIC keeps sending:
#   NIC (simnic_peer --mode=nic, one process for the whole test): 64 B to the
#     guest's MAC at 10 kpps, checks what comes back
#   switch: phy0 Rx queue 0 mapped onto vhost0
#   guest (simnic_peer --mode=guest, echo), a new process each round
# Each round: start a guest, wait until frames come back through it (traffic
# resumes), kill it with SIGKILL while frames flow, wait until the switch has
# let it go (destroy_device: the mapping detached, the NIC drained). The
# 21st guest is stopped with SIGTERM. Then:
#  - the NIC saw no IOMMU fault (no DMA into a dead guest's memory, which the
#    mapping must have unmapped) and every frame back intact, in order, once;
#  - the switch saw no validation error; detaches == attaches (or one less);
#  - no guest found a canary damaged (a killed guest's last status, written
#    every 100 ms, and the last guest's report);
#  - the mapping's pool is whole at exit, no guest buffer held.
#
# Usage: guest_restart_test.sh SIMNIC_PEER IOVTEE_SWITCH PEER_LIB MAPPING_LIB
set -u
# shellcheck disable=SC2034  # used by mapping_lib.sh
PEER=$1 SWITCH=$2 PEER_LIB=$3
# shellcheck source=test/mapping/mapping_lib.sh
source "$4"
mapping_lib_init || exit 1

ROUNDS=${IOVTEE_RESTART_ROUNDS:-20}
MAC=02:00:00:00:00:0a
n=restart
go="$WORK/$n.go"

# Frames back at the NIC so far (warm-up and test), from its status file.
nic_back() {
  local r w
  r=$(jfield "$WORK/$n.status.json" received)
  w=$(jfield "$WORK/$n.status.json" warmup_received)
  echo $((${r:-0} + ${w:-0}))
}
# This round's guest echoed `want` frames and as many more came back.
resumed() {
  json_ge "$WORK/$g.status.json" guest_tx "$want" && [ "$(nic_back)" -ge $((before + want)) ]
}

start_peer "$n" nic --size=64 --rate=10000 --duration=80 --warmup=0.5 --linger=30 \
  --dst-mac="$MAC" --start-file="$go" || { fail "the NIC did not start"; show_logs "$n"; exit 1; }
start_iovtee_switch "$n" --vhost "$WORK/$n.v" --map phy0:0=vhost0 --mac "vhost0=$MAC" \
  --rx-ring 256

for ((i = 0; i <= ROUNDS; i++)); do
  g="$n-g$i"
  # What came back so far, from a NIC status written after the last guest
  # was gone (the file is rewritten every 100 ms).
  s0=$(jfield "$WORK/$n.status.json" status_writes)
  [ -z "$s0" ] || wait_until 5 "a fresh NIC status" \
    json_ge "$WORK/$n.status.json" status_writes $((s0 + 2)) || fail "the NIC's status is stale"
  before=$(nic_back)
  start_guest "$g" "$WORK/$n.v" --guest-mac="$MAC" --guest-role=echo
  pid=$GUEST_PID
  [ "$i" = 0 ] && touch "$go"
  # Traffic resumes: frames come back through this guest. Vary how many
  # before the kill, so it lands at different points of the ring.
  want=$((50 * (i % 4 + 1)))
  if ! wait_until 20 "frames back through guest $i" resumed; then
    fail "round $i: traffic did not resume"
    show_logs "$n" "$g"
    break
  fi
  [ "$i" = "$ROUNDS" ] && break
  kill -KILL "$pid"
  wait "$pid" 2>/dev/null
  rm -rf "/var/run/dpdk/iovtee-peer-$pid" # EAL cannot clean up after SIGKILL
  v=$(jfield "$WORK/$g.status.json" canary_violations)
  [ "${v:-0}" = 0 ] || fail "round $i: guest saw $v canary violations"
  # The switch lets the dead guest go (the mapping detaches) before the next
  # one connects: one vhost device per port.
  if ! wait_until 20 "the switch to see guest $i leave" \
    log_count "$LOGS/$n.switch.log" "vhost0: guest gone" $((i + 1)); then
    fail "round $i: the switch did not notice the guest's death"
    show_logs "$n"
    break
  fi
  [ $((i % 5)) = 4 ] && step "round $((i + 1)) of $ROUNDS: $(nic_back) frames back so far"
done
step "guest $i of $ROUNDS is up: stopping"

stop_guest "$GUEST_PID" last || fail "the last guest did not stop cleanly"
kill -USR1 "$PEER_PID" # the NIC ends its measurement now
wait_report "$n" 30 || fail "no NIC report"
stop_switch_and_nic "$n" || fail "the switch or the NIC did not stop cleanly"
step "stopped"

check_guest_report "$WORK/$n-g$i.json" "the last guest"
echo "  NIC: sent $(field "$n" sent) received $(field "$n" received) lost $(field "$n" lost);" \
  "corrupted $(field "$n" corrupted) duplicates $(field "$n" duplicates) reordered" \
  "$(field "$n" reordered) foreign $(field "$n" foreign); iommu faults $(field "$n" iommu_faults);" \
  "nic missed $(field "$n" nic_rx_missed)"
[ "$(field "$n" completed)" = true ] || fail "the NIC's run: $(field "$n" error)"
expect "$(field "$n" iommu_faults)" -eq 0 iommu_faults
expect "$(field "$n" received)" -gt 0 "frames back"
for v in corrupted duplicates reordered foreign; do
  expect "$(field "$n" $v)" -eq 0 "NIC $v"
done
m="ports[name=phy0].mapping"
attaches=$(sw "$n" "$m.attaches")
detaches=$(sw "$n" "$m.detaches")
echo "  mapping: attaches $attaches detaches $detaches, zero_copy $(sw "$n" "$m.zero_copy")," \
  "copied $(sw "$n" "$m.copied"), guest buffers lent $(sw "$n" "$m.guest_buffers_lent")" \
  "recycled $(sw "$n" "$m.guest_buffers_recycled") orphaned $(sw "$n" "$m.guest_buffers_orphaned")"
expect "$attaches" -eq $((ROUNDS + 1)) attaches
expect "$detaches" -ge $((attaches - 1)) detaches
expect "$detaches" -le "$attaches" detaches
check_mapping_whole "$n"

rmdir /var/run/dpdk 2>/dev/null
echo "guest_restart_test: $fails failed check(s) ($((SECONDS - T0)) s)"
[ "$fails" = 0 ]
