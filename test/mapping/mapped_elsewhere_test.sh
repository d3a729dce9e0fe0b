#!/usr/bin/env bash
# Mapped frames that do not go to the mapping's guest. phy0's Rx queue 0 is
# mapped onto guest A (vhost0), so the NIC writes into A's buffers, but every
# NIC frame is for guest B (vhost1, not mapped) or dropped by the switch:
#   NIC (--mode=nic): stream 1, 4 flows, 512 B, to B's MAC
#   switch: --acl drops flow 1 (source 10.1.0.2); flows 0, 2, 3 go to B, copied
#     out of A's buffers; each buffer goes back to A's ring for the next refill
#   guest B (--mode=guest, check): verifies every frame it gets
#   guest A (--mode=guest, check): gets nothing; its buffers are lent and
#     recycled
# Every frame is delivered intact to B or counted (ACL hits, NIC misses,
# switch drops); after the run the mapping's pool is whole again
# (pool_free_mbufs == pool_mbufs with the ports stopped, no guest buffer held);
# no canary damaged in either guest, no IOMMU fault, no validation error.
#
# Usage: mapped_elsewhere_test.sh SIMNIC_PEER IOVTEE_SWITCH PEER_LIB MAPPING_LIB
set -u
# shellcheck disable=SC2034  # used by mapping_lib.sh
PEER=$1 SWITCH=$2 PEER_LIB=$3
# shellcheck source=test/mapping/mapping_lib.sh
source "$4"
mapping_lib_init || exit 1

A_MAC=02:00:00:00:00:0a
B_MAC=02:00:00:00:00:0b
FLOWS=4
DROPPED_FLOW=1 # source 10.1.0.1 + 1
n=elsewhere
go="$WORK/$n.go"

start_peer "$n" nic --size=512 --rate=10000 --duration=3 --warmup=0.5 --linger=30 \
  --flows="$FLOWS" --dst-mac="$B_MAC" --start-file="$go" ||
  { fail "the NIC did not start"; show_logs "$n"; exit 1; }
start_iovtee_switch "$n" --vhost "$WORK/$n.va" --vhost "$WORK/$n.vb" --map phy0:0=vhost0 \
  --mac "vhost0=$A_MAC" --mac "vhost1=$B_MAC" --rx-ring 256 \
  --acl "drop,proto=udp,src=10.1.0.2/32,dst=any,sport=any,dport=any"
start_guest "$n-a" "$WORK/$n.va" --guest-mac="$A_MAC" --guest-role=check
A_PID=$GUEST_PID
start_guest "$n-b" "$WORK/$n.vb" --guest-mac="$B_MAC" --guest-role=check --flows="$FLOWS"
B_PID=$GUEST_PID

if ! wait_until 40 "both guests connected" guests_connected "$n" vhost0 vhost1; then
  fail "the guests did not connect"
  show_logs "$n" "$n-a" "$n-b"
  exit 1
fi
step "guests connected: traffic starts"
touch "$go"
wait_report "$n" 60 || fail "no NIC report"
step "the NIC's run ended"
nic_sent=$(field "$n" sent)
dropped_sent=$(field "$n" "f${DROPPED_FLOW}_sent")
# B settles: every frame of the flows the ACL lets through, but for those the
# NIC missed (or 5 s: the checks below tell).
missed=$(field "$n" nic_rx_missed)
wait_until 5 "guest B to receive the allowed flows" \
  json_ge "$WORK/$n-b.status.json" s1_received $((nic_sent - dropped_sent - missed)) ||
  echo "  (not every frame arrived: checking the drops below)"

stop_two_guests_and_switch "$n"
a="$WORK/$n-a.json"
b="$WORK/$n-b.json"
[ "$(field "$n" completed)" = true ] || fail "the NIC's run: $(field "$n" error)"
expect "$(field "$n" iommu_faults)" -eq 0 iommu_faults
expect "$nic_sent" -gt 0 "NIC frames sent"
for v in corrupted duplicates reordered unexpected foreign; do
  expect "$(jfield "$b" $v)" -eq 0 "guest B $v"
done
expect "$(jfield "$a" guest_rx)" -eq 0 "guest A rx (nothing is for A)"

hits=$(sw "$n" "acl[0].hits")
missed=$(field "$n" nic_rx_missed)
sw_drops=$(sw_sum "$n" tx_dropped) # the ACL's drops are counted apart (hits)
echo "  NIC: sent $nic_sent (flow $DROPPED_FLOW: $dropped_sent), missed $missed; ACL hits $hits;" \
  "switch tx drops $sw_drops; B got $(jfield "$b" s1_received) (+ $(jfield "$b" warmup_received)" \
  "warm-up), switch to vhost1 $(sw "$n" "ports[name=vhost1].tx")"
# Flow by flow: the dropped flow never reached B and every one of its frames
# the switch received is an ACL hit; the others arrived whole.
expect "$(jfield "$b" "s1_f${DROPPED_FLOW}_received")" -eq 0 "B's frames of the dropped flow"
expect "$hits" -le "$dropped_sent" "ACL hits (vs frames of the dropped flow)"
expect $((dropped_sent - hits)) -le "$missed" "dropped-flow frames not hit (vs NIC misses)"
for ((f = 0; f < FLOWS; f++)); do
  [ "$f" = "$DROPPED_FLOW" ] && continue
  sent_f=$(field "$n" "f${f}_sent")
  got_f=$(jfield "$b" "s1_f${f}_received")
  expect "$got_f" -le "$sent_f" "B's frames of flow $f"
  expect $((sent_f - got_f)) -le $((missed + sw_drops)) "flow $f frames not at B (vs counted drops)"
done
expect "$(jfield "$b" guest_rx)" -eq "$(sw "$n" "ports[name=vhost1].tx")" \
  "guest B rx (vs switch vhost1 tx)"

m="ports[name=phy0].mapping"
echo "  mapping: zero_copy $(sw "$n" "$m.zero_copy"), guest buffers lent $(sw "$n" \
  "$m.guest_buffers_lent"), recycled $(sw "$n" "$m.guest_buffers_recycled"), host buffers" \
  "posted $(sw "$n" "$m.host_buffers_posted"); phy0 unshared $(sw "$n" "ports[name=phy0].unshared")"
expect "$(sw "$n" "$m.zero_copy")" -eq 0 "zero_copy (nothing is for the mapping's guest)"
# The NIC wrote into A's buffers, and each came back for the next refill.
expect "$(sw "$n" "$m.guest_buffers_lent")" -gt 0 guest_buffers_lent
expect "$(sw "$n" "$m.guest_buffers_recycled")" -gt 0 guest_buffers_recycled
expect "$(sw "$n" "$m.guest_buffers_orphaned")" -eq 0 guest_buffers_orphaned
check_mapping_whole "$n"

rmdir /var/run/dpdk 2>/dev/null
echo "mapped_elsewhere_test: $fails failed check(s) ($((SECONDS - T0)) s)"
[ "$fails" = 0 ] || show_logs "$n" "$n-a" "$n-b"
[ "$fails" = 0 ]
