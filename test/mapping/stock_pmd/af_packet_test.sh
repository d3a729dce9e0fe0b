#!/usr/bin/env bash
# The Rx queue mapping with an unmodified stock PMD as the NIC: net_af_packet
# on one end of a veth pair.
#
#   veth-loop (raw socket on wire0) -> veth -> sw0 -> net_af_packet rx (phy0,
#     queue 0 mapped onto vhost0) -> iovtee-switch -> guest (dpdk-testpmd,
#     virtio-user, macswap) -> iovtee-switch -> net_af_packet tx -> sw0
#     -> veth -> wire0 -> veth-loop
#
# net_af_packet copies each frame out of its PACKET_MMAP ring into an mbuf it
# allocates from the queue's mempool during rte_eth_rx_burst, so with the
# mapping that one copy lands straight in a guest buffer and the switch
# completes it in place: zero_copy must equal the frames sent. veth-loop
# keeps at most 64 frames unanswered (far below every ring on the way), so
# nothing may be lost, on a busy machine too; it checks every frame (count,
# order, lengths, payload CRC) and the switch's counters are checked after.
#
# The whole test runs in a private network namespace (unshare --net): the
# veth pair and anything else in it vanish with the last process, however
# the test ends. Without the capabilities for that (CAP_SYS_ADMIN and
# CAP_NET_ADMIN) it prints why and passes; anything else that fails fails.
#
# net_af_packet needs mbufs with room for its whole frame slot (framesz 2048
# by default: 2016 bytes) and refuses the mapping's default 1536-byte NIC
# buffer, so the mapped switch runs with --nic-buffer 2048: DPDK's virtio PMD
# posts 2048 + 12-byte buffers, which still qualify.
#
# Usage: af_packet_test.sh STOCK_PMD_TRAFFIC IOVTEE_SWITCH PEER_LIB STOCK_PMD_LIB
set -uo pipefail

if [ -z "${IOVTEE_STOCK_PMD_NETNS:-}" ]; then
  if ! unshare --net true 2>/dev/null; then
    capeff=$((16#$(awk '/^CapEff:/ {print $2}' /proc/self/status)))
    if (((capeff >> 21) & 1)) && (((capeff >> 12) & 1)); then
      echo "FAIL: unshare --net fails although CAP_SYS_ADMIN and CAP_NET_ADMIN are held"
      exit 1
    fi
    echo "SKIP: no CAP_SYS_ADMIN/CAP_NET_ADMIN (CapEff $(printf %x "$capeff")):" \
      "cannot make a network namespace with a veth pair"
    exit 0
  fi
  IOVTEE_STOCK_PMD_NETNS=1 exec unshare --net -- "$0" "$@"
fi

TOOL=$(realpath "$1")
# shellcheck disable=SC2034  # used by stock_pmd_lib.sh
SWITCH=$(realpath "$2")
# shellcheck source=/dev/null
source "$3"
# shellcheck source=/dev/null
source "$4"
peer_lib_init || exit 1
fails=0

# No IPv6 autoconfiguration: nothing but the test's frames on the wire.
sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
if ! ip link add sw0 type veth peer name wire0 || ! ip link set sw0 up ||
  ! ip link set wire0 up; then
  echo "FAIL: cannot make the veth pair sw0/wire0 in the test's network namespace"
  exit 1
fi

# run NAME MAP SIZE COUNT EXPECT VIRTIO_USER_EXTRA
run() {
  local name=$1 map=$2 size=$3 count=$4 expect=$5 extra=$6
  local start=$EPOCHREALTIME bad=0 t_ready=- t_back=- t_stop=-
  echo "=== $name: net_af_packet on veth, map=$map, size $size, $count frames," \
    "guest queue_size=1024$extra"
  local nicbuf=()
  [ "$map" = 1 ] && nicbuf=(--nic-buffer 2048)
  if ! start_switch "$name" "$map" "net_af_packet0,iface=sw0" "${nicbuf[@]}"; then
    bad=1
  else
    start_guest "$name" "$extra"
    wait_ready "$name" "$map" || bad=1
  fi
  t_ready=$(elapsed "$start")
  if [ $bad = 0 ]; then
    "$TOOL" veth-loop --iface=wire0 --count="$count" --size="$size" --window=64 --timeout=20 |
      sed 's/^/  /'
    [ "${PIPESTATUS[0]}" = 0 ] || bad=1
  fi
  t_back=$(elapsed "$start")
  stop_guest_and_switch "$name" || bad=1
  t_stop=$(elapsed "$start")
  echo "  guest: RX-packets $(guest_forward_stat "$name" RX-packets)" \
    "TX-packets $(guest_forward_stat "$name" TX-packets)" \
    "TX-dropped $(guest_forward_stat "$name" TX-dropped)"
  check_counts "$name" "$map" "$count" "$expect" || bad=1
  if [ $bad = 0 ]; then
    echo "  PASS $name (ready at $t_ready s, all back at $t_back s, stopped at $t_stop s)"
  else
    tail -n 15 "$LOGS/$name.switch.log" "$LOGS/$name.guest.log" | sed 's/^/  | /'
    echo "  FAIL $name (ready at $t_ready s, all back at $t_back s, stopped at $t_stop s)"
    fails=$((fails + 1))
  fi
}

run map64 1 64 20000 zero-copy ""
run map1518 1 1518 10000 zero-copy ""
run packed_imix 1 imix 12000 zero-copy ",packed_vq=1"
run stock64 0 64 20000 - ""

echo "af_packet_test: $fails failed case(s)"
[ "$fails" = 0 ]
