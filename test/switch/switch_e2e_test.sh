#!/usr/bin/env bash
# iovtee-switch end to end with the soft NIC and a DPDK virtio-user guest, phy0
# Rx queue 0 mapped onto vhost0's guest (simnic_peer: NIC -> switch -> guest
# in macswap -> switch -> NIC; the peer checks every frame: count, order,
# payload checksum):
#  - acl:   an ACL drops flow 0 (UDP 10.x:1024 -> port 5001) and allows the
#           rest; the guest's MAC is a static entry. Every flow-0 frame is a
#           counted ACL drop (its guest buffer recycles: the mapped pool is
#           whole at exit), every other frame comes back intact, and the
#           telemetry endpoints answer.
#  - vlan:  phy0 is an access port of VLAN 100, vhost0 a trunk: each frame
#           from the NIC gets a tag pushed on its way to the guest (a mapped
#           frame has no headroom: it is copied out of the guest buffer
#           first), the guest echoes it tagged, the switch matches the ACL
#           behind the tag and pops it towards the NIC. 1518 B.
#  - jumbo: --mtu 9000, 9018 B frames: Rx scatter on the mapped queue
#           (1518-byte buffers), multi-segment frames copied to the guest and
#           multi-segment Tx back to the NIC.
# The per-case checks are in check_run.py.
#
# Usage: switch_e2e_test.sh SIMNIC_PEER IOVTEE_SWITCH PEER_LIB CHECK_RUN TELEMETRY_QUERY
set -u
# shellcheck disable=SC2034  # used by peer_lib.sh
PEER=$1
SWITCH=$2
# shellcheck source=/dev/null
source "$3"
CHECK=$4
QUERY=$5
PYTHON=${PYTHON:-/usr/bin/python3}
peer_lib_init || exit 1

fails=0
# Flow 0 of the test frames: UDP from 10.x (warm-up frames come from
# 192.168.0.x), source port 1024 (flow i: 1024 + i), to port 5001.
# shellcheck disable=SC2054  # commas inside an option value
ACL=(--acl drop,proto=udp,src=10.0.0.0/8,sport=1024,dport=5001 --acl allow,proto=udp)

# run NAME SIZE TELEMETRY(0|1) [switch options...] [-- peer options...]
run() {
  local name=$1 size=$2 telemetry=$3
  shift 3
  local swopts=() peeropts=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do swopts+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  peeropts=("$@")
  echo "=== $name: size $size, switch ${swopts[*]}"
  start_peer "$name" pvp --size="$size" --rate=20000 --duration=3 --warmup=1 --linger=15 \
    "${peeropts[@]}" || { fails=$((fails + 1)); return; }
  local prefix="iovtee-t-sw$$-$name"
  _prefixes+=("$prefix")
  local tel=(--no-telemetry)
  [ "$telemetry" = 1 ] && tel=()
  local cmd=("$SWITCH" -l 1 --no-huge -m 1024 --no-pci --no-shconf "${tel[@]}"
    --file-prefix "$prefix" -- --phy "net_simnic0,socket=$WORK/$name.nic"
    --vhost "$WORK/$name.vhost" --map phy0:0=vhost0 --rx-ring 256
    --stats-file "$WORK/$name.sw.json" "${swopts[@]}")
  echo "${cmd[*]}" >"$LOGS/$name.switch.cmd"
  "${cmd[@]}" </dev/null >"$LOGS/$name.switch.log" 2>&1 &
  SWITCH_PID=$!
  _pids+=("$SWITCH_PID")
  if ! wait_report "$name" 60; then
    tail -n 20 "$LOGS/$name.peer.log" "$LOGS/$name.switch.log" >&2
    fails=$((fails + 1))
    return
  fi
  local telemetry_out=()
  if [ "$telemetry" = 1 ]; then
    telemetry_out=("$WORK/$name.telemetry.json")
    "$PYTHON" "$QUERY" "/var/run/dpdk/$prefix/dpdk_telemetry.v2" "${telemetry_out[0]}" ||
      { echo "  FAIL: telemetry query"; fails=$((fails + 1)); }
  fi
  stop_all "$name" || fails=$((fails + 1))
  if [ ! -f "$WORK/$name.sw.json" ]; then
    echo "  FAIL: the switch wrote no stats"
    tail -n 20 "$LOGS/$name.switch.log" >&2
    fails=$((fails + 1))
    return
  fi
  cp "$WORK/$name.json" "$LOGS/$name.peer.json" 2>/dev/null
  cp "$WORK/$name.sw.json" "$LOGS/$name.sw.json" 2>/dev/null
  "$PYTHON" "$CHECK" "$name" "$WORK/$name.json" "$WORK/$name.sw.json" "${telemetry_out[@]}" ||
    fails=$((fails + 1))
}

run acl 64 1 "${ACL[@]}" --mac vhost0=02:00:00:00:00:01
run vlan 1518 0 --vlan phy0=100 "${ACL[@]}"
run jumbo 9018 0 --mtu 9000

echo "switch_e2e_test: $fails failed case(s)"
for d in "/var/run/dpdk/iovtee-t-sw$$-"*; do
  [ -e "$d" ] && { echo "FAIL: $d left behind"; fails=$((fails + 1)); }
done
[ "$fails" = 0 ]
