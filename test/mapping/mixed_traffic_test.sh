#!/usr/bin/env bash
# Mixed traffic into one guest. Three processes besides the switch:
#   NIC (simnic_peer --mode=nic): stream 1, 64 B, to guest A's MAC
#     -> switch phy0, Rx queue 0 mapped onto vhost0 -> guest A (zero copy)
#   guest B (--mode=guest on vhost1, echo): its own stream 2, 128 B, to A's MAC
#     -> switch vhost1 -> vhost0 -> guest A (copied: foreign frames)
#   guest A (--mode=guest on vhost0, check): verifies every frame of both
#     streams (per-flow sequence, payload CRC, addresses) and counts them.
# Static MAC entries (--mac) send each stream straight to its guest (no flood,
# which would copy). Every frame is counted on the path it took: the
# mapping's zero_copy (+ the NIC ring's first fill with host buffers) equals
# the NIC frames A received, its copy_foreign the stream-2 frames A received;
# what was not received is a counted drop. No canary damaged, no IOMMU fault,
# the mapping's pool whole at exit.
#
# Usage: mixed_traffic_test.sh SIMNIC_PEER IOVTEE_SWITCH PEER_LIB MAPPING_LIB
set -u
# shellcheck disable=SC2034  # used by mapping_lib.sh
PEER=$1 SWITCH=$2 PEER_LIB=$3
# shellcheck source=test/mapping/mapping_lib.sh
source "$4"
mapping_lib_init || exit 1

A_MAC=02:00:00:00:00:0a
B_MAC=02:00:00:00:00:0b
RX_RING=256
n=mixed
go="$WORK/$n.go"

start_peer "$n" nic --size=64 --rate=10000 --duration=3 --warmup=0.5 --linger=30 \
  --dst-mac="$A_MAC" --start-file="$go" || { fail "the NIC did not start"; show_logs "$n"; exit 1; }
start_iovtee_switch "$n" --vhost "$WORK/$n.va" --vhost "$WORK/$n.vb" --map phy0:0=vhost0 \
  --mac "vhost0=$A_MAC" --mac "vhost1=$B_MAC" --rx-ring "$RX_RING"
start_guest "$n-a" "$WORK/$n.va" --guest-mac="$A_MAC" --guest-role=check \
  --guest-check-streams=1,2
A_PID=$GUEST_PID
start_guest "$n-b" "$WORK/$n.vb" --guest-mac="$B_MAC" --guest-role=echo --guest-gen-stream=2 \
  --dst-mac="$A_MAC" --rate=5000 --size=128 --duration=3 --start-file="$go"
B_PID=$GUEST_PID

# Traffic starts once the switch serves both guests (the mapping attached).
if ! wait_until 40 "both guests connected" guests_connected "$n" vhost0 vhost1; then
  fail "the guests did not connect"
  show_logs "$n" "$n-a" "$n-b"
  exit 1
fi
step "guests connected: traffic starts"
touch "$go"
wait_report "$n" 60 || fail "no NIC report"
step "the NIC's run ended"
wait_until 20 "guest B's generator" json_is "$WORK/$n-b.status.json" gen_done true ||
  fail "guest B's generator did not finish"
# Both streams settle at A: everything sent arrived but what the NIC missed
# (or 5 s pass: the checks below tell).
nic_sent=$(field "$n" sent)
nic_warm=$(field "$n" warmup_sent)
missed=$(field "$n" nic_rx_missed)
b_sent=$(jfield "$WORK/$n-b.status.json" gen_sent)
both_streams_in() {
  json_ge "$WORK/$n-a.status.json" s1_received $((nic_sent - missed)) &&
    json_ge "$WORK/$n-a.status.json" s2_received "$b_sent"
}
wait_until 5 "guest A to receive both streams" both_streams_in ||
  echo "  (not every frame arrived: checking the drops below)"

stop_two_guests_and_switch "$n"
a="$WORK/$n-a.json"
b="$WORK/$n-b.json"
a_s1=$(jfield "$a" s1_received)
a_s2=$(jfield "$a" s2_received)
a_warm=$(jfield "$a" warmup_received)
b_sent=$(jfield "$b" gen_sent)
echo "  NIC: sent $nic_sent test + $nic_warm warm-up frames, nic missed $(field "$n" nic_rx_missed)," \
  "iommu faults $(field "$n" iommu_faults)"
echo "  guest B: generated $(jfield "$b" gen_generated), sent $b_sent, refused $(jfield "$b" gen_refused)"
echo "  guest A: stream 1 $a_s1 (lost $(jfield "$a" s1_lost)), stream 2 $a_s2 (lost" \
  "$(jfield "$a" s2_lost)), warm-up $a_warm; corrupted $(jfield "$a" corrupted), duplicates" \
  "$(jfield "$a" duplicates), reordered $(jfield "$a" reordered), unexpected $(jfield "$a" unexpected)"
[ "$(field "$n" completed)" = true ] || fail "the NIC's run: $(field "$n" error)"
expect "$(field "$n" iommu_faults)" -eq 0 iommu_faults
expect "$nic_sent" -gt 0 "NIC frames sent"
expect "$b_sent" -gt 0 "guest B frames sent"
for v in corrupted duplicates reordered unexpected foreign; do
  expect "$(jfield "$a" $v)" -eq 0 "guest A $v"
done
expect "$(jfield "$b" gen_refused)" -eq 0 "guest B frames its Tx refused"

m="ports[name=phy0].mapping"
zc=$(sw "$n" "$m.zero_copy")
cp_host=$(sw "$n" "$m.copy_host_buffer")
cp_foreign=$(sw "$n" "$m.copy_foreign")
copied=$(sw "$n" "$m.copied")
to_a=$(sw "$n" "ports[name=vhost0].tx")
sw_drops=$(sw_sum "$n" 'tx_dropped|rx_dropped')
echo "  switch: to vhost0 $to_a = zero_copy $zc + copied $copied (host buffer $cp_host, foreign" \
  "$cp_foreign); drops $sw_drops; vhost1 rx $(sw "$n" "ports[name=vhost1].rx")"
expect "$(jfield "$a" guest_rx)" -eq "$to_a" "guest A rx (vs switch vhost0 tx)"
expect $((zc + copied)) -eq "$to_a" "zero_copy + copied"
expect "$zc" -gt 0 zero_copy
expect "$cp_host" -le "$RX_RING" "copy_host_buffer (the NIC ring's first fill)"
expect $((cp_host + cp_foreign)) -eq "$copied" "copied (host buffer + foreign only)"
# Each frame on its path: the NIC's (test and warm-up) in place, B's by copy.
expect $((zc + cp_host)) -eq $((a_s1 + a_warm)) "zero_copy + copy_host_buffer (vs NIC frames A got)"
expect "$cp_foreign" -eq "$a_s2" "copy_foreign (vs stream-2 frames A got)"
# Every frame sent arrived or was dropped where a counter says so.
expect $((nic_sent - a_s1)) -le $((missed + sw_drops)) "NIC frames not received (vs counted drops)"
expect $((b_sent - a_s2)) -le "$sw_drops" "guest B frames not received (vs counted drops)"
check_mapping_whole "$n"

rmdir /var/run/dpdk 2>/dev/null
echo "mixed_traffic_test: $fails failed check(s) ($((SECONDS - T0)) s)"
[ "$fails" = 0 ] || show_logs "$n" "$n-a" "$n-b"
[ "$fails" = 0 ]
