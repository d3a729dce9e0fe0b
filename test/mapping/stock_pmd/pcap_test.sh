#!/usr/bin/env bash
# The Rx queue mapping with an unmodified stock PMD as the NIC: net_pcap.
#
#   pcap-feed -> FIFO -> net_pcap rx (phy0, queue 0 mapped onto vhost0)
#     -> iovtee-switch -> guest (dpdk-testpmd, virtio-user, macswap)
#     -> iovtee-switch -> net_pcap tx -> pcap file -> pcap-check
#
# net_pcap reads each frame from its rx_pcap and copies it into an mbuf it
# allocates from the queue's mempool during rte_eth_rx_burst. It would copy
# straight into a guest buffer, but for frames larger than one buffer it
# writes chained segments from their headroom, outside a guest buffer, and it
# takes frames of any size; so the mapping lends net_pcap no guest buffer
# (RxQueueMapping's LendingHazard) and every frame reaches the guest by copy:
# copy_host_buffer must equal the frames sent (net_af_packet, which never
# writes into the headroom, shows the zero-copy case). Every frame that comes
# back is checked (count, order, lengths, payload CRC), and so are the
# switch's counters.
#
# Timing: net_pcap reads rx_pcap as fast as the switch polls, from the moment
# the port starts. The rx_pcap is a FIFO that pcap-feed opens with only the
# file header; it writes the frames once the mapping is attached and testpmd
# forwards (the .go file), then closes it (net_pcap sees the end of the file
# and stops reading). Each run sends at most as many frames as the guest's
# rings hold (1024 buffers and descriptors, --rxd/--txd; a frame takes one
# of each up to 2048 bytes), so a guest that is descheduled for a while
# cannot make anything drop: the result is exact on a busy machine too.
#
# Suites: "default" (64 B, 1518 B, IMIX on a packed ring, and the stock copy
# path as the harness's own control), "jumbo" (frames larger than one guest
# buffer: net_pcap chains segments from the mapped pool).
#
# Usage: pcap_test.sh STOCK_PMD_TRAFFIC IOVTEE_SWITCH PEER_LIB STOCK_PMD_LIB [SUITE]
set -uo pipefail
TOOL=$(realpath "$1")
# shellcheck disable=SC2034  # used by stock_pmd_lib.sh
SWITCH=$(realpath "$2")
# shellcheck source=/dev/null
source "$3"
# shellcheck source=/dev/null
source "$4"
suite=${5:-default}
peer_lib_init || exit 1
fails=0

# run NAME MAP SIZE COUNT EXPECT VIRTIO_USER_EXTRA [testpmd options...]
run() {
  local name=$1 map=$2 size=$3 count=$4 expect=$5 extra=$6
  shift 6
  local start=$EPOCHREALTIME bad=0 t_ready=- t_back=- t_stop=-
  echo "=== $name: net_pcap, map=$map, size $size, $count frames, guest queue_size=1024$extra $*"
  mkfifo "$WORK/$name.in"
  "$TOOL" pcap-feed --out="$WORK/$name.in" --go="$WORK/$name.go" --count="$count" \
    --size="$size" --timeout=40 >"$LOGS/$name.feed.log" 2>&1 &
  local feed=$!
  _pids+=("$feed")
  if ! start_switch "$name" "$map" "net_pcap0,rx_pcap=$WORK/$name.in,tx_pcap=$WORK/$name.out"; then
    bad=1
  else
    start_guest "$name" "$extra" "$@"
    wait_ready "$name" "$map" || bad=1
  fi
  t_ready=$(elapsed "$start")
  if [ $bad = 0 ]; then
    "$TOOL" pcap-wait --pcap="$WORK/$name.out" --count="$count" --timeout=20 | sed 's/^/  /'
    [ "${PIPESTATUS[0]}" = 0 ] || bad=1
  fi
  t_back=$(elapsed "$start")
  [ $bad = 0 ] || kill -KILL "$feed" 2>/dev/null
  wait "$feed" || { echo "  FAIL: pcap-feed: $(tail -n 3 "$LOGS/$name.feed.log")"; bad=1; }
  stop_guest_and_switch "$name" || bad=1
  t_stop=$(elapsed "$start")
  if [ -f "$WORK/$name.out" ]; then
    "$TOOL" pcap-check --pcap="$WORK/$name.out" --count="$count" --size="$size" | sed 's/^/  /'
    [ "${PIPESTATUS[0]}" = 0 ] || bad=1
  else
    echo "  FAIL: net_pcap wrote no $WORK/$name.out"
    bad=1
  fi
  echo "  guest: RX-packets $(guest_forward_stat "$name" RX-packets)" \
    "TX-packets $(guest_forward_stat "$name" TX-packets)" \
    "TX-dropped $(guest_forward_stat "$name" TX-dropped)"
  check_counts "$name" "$map" "$count" "$expect" || bad=1
  if [ $bad = 0 ]; then
    echo "  PASS $name (ready at $t_ready s, all back at $t_back s, stopped at $t_stop s)"
  else
    cp "$WORK/$name.out" "$LOGS/$name.out.pcap" 2>/dev/null
    tail -n 15 "$LOGS/$name.switch.log" "$LOGS/$name.guest.log" | sed 's/^/  | /'
    echo "  FAIL $name (ready at $t_ready s, all back at $t_back s, stopped at $t_stop s)"
    fails=$((fails + 1))
  fi
}

case $suite in
  default)
    run map64 1 64 1000 copy:host_buffer ""
    run map1518 1 1518 1000 copy:host_buffer ""
    run packed_imix 1 imix 1000 copy:host_buffer ",packed_vq=1"
    run stock64 0 64 1000 - ""
    ;;
  jumbo)
    # 2996 and 8996 bytes: more than one buffer, so net_pcap chains mbufs
    # and prepends their whole headroom before copying into them, which for
    # a guest buffer is memory before it. The mapping knows this driver and
    # lends it no guest buffer: the frames come in host buffers and are
    # copied, intact, and nic_wrote_outside stays 0 (check_counts). 100 frames: a 9000-byte frame
    # takes 5 guest Rx buffers and up to 6 Tx descriptors, and all must fit
    # in the guest's 1024-entry rings.
    run jumbo3000 1 3000 100 copy:host_buffer "" --max-pkt-len=9600 --enable-scatter
    run jumbo9000 1 9000 100 copy:host_buffer "" --max-pkt-len=9600 --enable-scatter
    run stock9000 0 9000 100 - "" --max-pkt-len=9600 --enable-scatter
    ;;
  *)
    echo "unknown suite $suite"
    exit 2
    ;;
esac

echo "pcap_test ($suite): $fails failed case(s)"
[ "$fails" = 0 ]
