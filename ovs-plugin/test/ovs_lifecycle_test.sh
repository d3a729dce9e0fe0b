#!/usr/bin/env bash
# Open vSwitch with iovtee under change, with traffic flowing the whole time:
# the soft NIC and its traffic generator/checker in one simnic_peer (nic
# mode), the guest of the mapped port vhost0 in another (guest mode, echo),
# flows dpdk0 <-> vhost0.
#   1. the guest is killed (SIGKILL) and a new one started: the mapping
#      detaches in destroy_device and attaches the new guest;
#   2. the mapping is removed (ovs-vsctl remove ... options) and added back at
#      run time: OVS reconfigures both ports, traffic goes on through vhost
#      meanwhile;
#   3. ovs-vswitchd is stopped with the guest attached and started again on
#      the same database: the mapping comes back from the Interface options.
# Frames may be lost while a guest is gone; none may be corrupted,
# duplicated or reordered, the soft NIC must see no IOMMU fault (no DMA into
# memory it was not given), and every mapping must be destroyed whole.
#
# Usage: ovs_lifecycle_test.sh OVS_VSWITCHD LIBIOVTEE_SO SIMNIC_PEER LIBRTE_NET_SIMNIC_SO PEER_LIB
set -uo pipefail

OVS_BIN=$(dirname "$(realpath "$1")")
LIBIOVTEE_DIR=$(dirname "$(realpath "$2")")
# shellcheck disable=SC2034  # used by peer_lib.sh / ovs_lib.sh
PEER=$(realpath "$3")
# shellcheck disable=SC2034
PLUGIN=$(realpath "$4")
# shellcheck source=test/softnic/peer/peer_lib.sh
. "$5"
ovs_lib=${TEST_SRCDIR:-/nonexistent}/iovtee/ovs-plugin/test/ovs_lib.sh
[ -f "$ovs_lib" ] || ovs_lib=$(dirname "$0")/ovs_lib.sh
# shellcheck source=ovs-plugin/test/ovs_lib.sh
. "$ovs_lib" || exit 1
peer_lib_init --no-testpmd || exit 1

RATE=${IOVTEE_OVS_TEST_RATE:-20000}
GUEST_OPTS=(--guest-role echo --guest-queue-size 4096)

# received NAME: frames the NIC peer NAME got back so far (its status file).
received() { jfield "$WORK/$1.status.json" received; }

# wait_progress NAME FRAMES SECONDS: until NAME got FRAMES more frames back.
wait_progress() {
  local name=$1 want start
  start=$(received "$name")
  want=$((${start:-0} + $2))
  wait_until "$3" "$2 more frames back at $name" progress_reached "$name" "$want"
}
progress_reached() { [ "$(received "$1")" -ge "$2" ] 2>/dev/null; }

zero_copy_grows() {
  local before=$1
  [ "$(iovtee_counter zero_copy)" -gt "$before" ] 2>/dev/null
}
no_mapping() { ! appctl iovtee/show dpdk0 2>/dev/null | grep -q 'rxq 0 ->'; }

# kill_guest PID: SIGKILL, as a crashed guest; removes its EAL directory.
kill_guest() {
  kill -KILL "$1"
  wait "$1" 2>/dev/null
  rm -rf "/var/run/dpdk/iovtee-peer-$1"
}

check_nic_run() {
  local n=$1 v
  expect "$n completed" "$(f "$n" completed)" == true
  for v in corrupted duplicates reordered foreign iommu_faults rx_oversize; do
    expect "$n $v" "$(f "$n" "$v")" == 0
  done
  expect "$n frames back" "$(f "$n" received)" -gt 0
}

check_mapping_clean() {
  local c
  for c in validation_errors quarantined_sessions drop_broken_queue; do
    expect "mapping $c" "$(iovtee_counter "$c")" == 0
  done
}

ovs_start || { echo "FAIL: OVS did not start"; exit 1; }
vsctl add-port br0 vhost0 -- set Interface vhost0 type=dpdkvhostuser ofport_request=2 ||
  { echo "FAIL: vhost-user port"; exit 1; }

echo "=== traffic: NIC (nic mode) <-> OVS <-> guest (guest mode, echo)"
start_nic_peer nic --start-file "$WORK/go" --rate "$RATE" --duration 600 --warmup 0 \
  --setup-timeout 60 --linger 20 || { echo "FAIL: NIC peer"; exit 1; }
nic_pid=$PEER_PID
add_nic nic options:n_rxq_desc=1024 options:iovtee-map-rxq0=vhost0 || { echo "FAIL: dpdk0"; exit 1; }
start_guest guest1 vhost0 "${GUEST_OPTS[@]}"
guest_pid=$PEER_PID
wait_until 20 "guest1 attached" iovtee_attached || { echo "FAIL: no attach"; exit 1; }
flows in_port=1,actions=output:2 in_port=2,actions=output:1
touch "$WORK/go"
wait_progress nic 20000 60
expect "traffic flows, zero copy" "$(iovtee_counter zero_copy)" -gt 0

echo "=== 1. guest killed under traffic, a new guest started"
kill_guest "$guest_pid"
wait_until 20 "the mapping detached from the dead guest" iovtee_waiting
expect "detached after SIGKILL" "$(iovtee_waiting && echo yes)" == yes
check_mapping_clean
start_guest guest2 vhost0 "${GUEST_OPTS[@]}"
guest_pid=$PEER_PID
wait_until 20 "guest2 attached" iovtee_attached
expect "new guest attached" "$(iovtee_attached && echo yes)" == yes
expect "attaches so far" "$(iovtee_counter attaches)" == 2
zc=$(iovtee_counter zero_copy)
wait_progress nic 20000 60
expect "frames back after the restart" "$?" == 0
wait_until 10 "zero copy to the new guest" zero_copy_grows "$zc"
expect "zero copy to the new guest" "$(iovtee_counter zero_copy)" -gt "$zc"

echo "=== 2. mapping removed and added back at run time"
vsctl remove Interface dpdk0 options iovtee-map-rxq0
wait_until 20 "the mapping gone" no_mapping
expect "mapping removed" "$(no_mapping && echo yes)" == yes
wait_progress nic 20000 60
expect "frames back without the mapping" "$?" == 0
vsctl set Interface dpdk0 options:iovtee-map-rxq0=vhost0
wait_until 20 "the guest attached to the new mapping" iovtee_attached
expect "mapping back, guest attached" "$(iovtee_attached && echo yes)" == yes
wait_progress nic 20000 60
expect "frames back with the new mapping" "$?" == 0
wait_until 10 "zero copy again" zero_copy_grows 0
expect "zero copy again" "$(iovtee_counter zero_copy)" -gt 0
check_mapping_clean

kill -USR1 "$nic_pid"   # end the measurement
wait_peer_report nic "$nic_pid" 30
iovtee_show >"$LOGS/lifecycle.iovtee.txt" 2>&1
check_nic_run nic
printf '  sent %s received %s lost %s (lost while a guest was gone or ports reconfigured)\n' \
  "$(f nic sent)" "$(f nic received)" "$(f nic lost)"

echo "=== 3. ovs-vswitchd stopped with the guest attached, started again"
# The NIC peer ends once its driver (OVS) is gone; the guest loses its
# vhost-user server and is stopped.
ovs_stop_keep_db() {
  kill -TERM "$OVS_PID"
  wait_exit "$OVS_PID" 20 || { kill -KILL "$OVS_PID"; return 1; }
}
ovs_stop_keep_db
expect "ovs-vswitchd exited on SIGTERM with a guest attached" "$?" == 0
cp "$OVS_DIR/ovs-vswitchd.log" "$LOGS/ovs-vswitchd.1.log"
first_log_errors=$(ovs_log_errors)
finish_peer "$nic_pid" nic >/dev/null
kill -INT "$guest_pid" 2>/dev/null
finish_peer "$guest_pid" guest2 >/dev/null
expect "guest2 canary violations" "$(f guest2 canary_violations)" == 0
rm -f "$OVS_DIR/vhost0" "$OVS_DIR/ovs-vswitchd.pid"

start_nic_peer nic2 --start-file "$WORK/go2" --rate "$RATE" --duration 3 --warmup 0 \
  --setup-timeout 60 --linger 20 || { echo "FAIL: NIC peer"; exit 1; }
nic_pid=$PEER_PID
# Same database: br0, vhost0 and dpdk0 with its iovtee option; only the
# soft NIC's socket is new.
vsctl --no-wait set Interface dpdk0 "options:dpdk-devargs=net_simnic0,socket=$WORK/nic2.nic"
ovs_env "$OVS_BIN/ovs-vswitchd" --pidfile --log-file --detach --no-chdir \
  "unix:$OVS_DIR/db.sock" >>"$OVS_DIR/console.log" 2>&1
OVS_PID=$(cat "$OVS_DIR/ovs-vswitchd.pid")
_pids+=("$OVS_PID")
wait_until 30 "dpdk0 link up after the restart" vsctl_has Interface dpdk0 link_state up
start_guest guest3 vhost0 "${GUEST_OPTS[@]}"
guest_pid=$PEER_PID
wait_until 20 "guest3 attached after the restart" iovtee_attached
expect "mapping from the database, guest attached" "$(iovtee_attached && echo yes)" == yes
flows in_port=1,actions=output:2 in_port=2,actions=output:1
touch "$WORK/go2"
wait_peer_report nic2 "$nic_pid" 60
check_nic_run nic2
expect "nic2 lost" "$(f nic2 lost)" == 0
expect "zero copy after the restart" "$(iovtee_counter zero_copy)" -gt 0
check_mapping_clean
del_nic
finish_peer "$nic_pid" nic2 >/dev/null
kill -INT "$guest_pid"
finish_peer "$guest_pid" guest3
expect "guest3 exit status" "$?" == 0
expect "guest3 canary violations" "$(f guest3 canary_violations)" == 0

echo "=== OVS"
expect "every mapping destroyed whole" \
  "$(iovtee_show | grep -c 'waiting for their mbufs')" == 0
ovs_del_bridge
ovs_stop
expect "ovs-vswitchd exited on SIGTERM" "$?" == 0
expect_no_taps
cp "$OVS_DIR/ovs-vswitchd.log" "$LOGS/" 2>/dev/null
errors=$(printf '%s\n%s' "$first_log_errors" "$(ovs_log_errors)" | grep .)
[ -z "$errors" ] || echo "$errors" | sed 's/^/  log: /'
expect "ERR lines in ovs-vswitchd.log" "$(printf '%s' "$errors" | grep -c .)" == 0
expect "mbufs left out at destroy" \
  "$(cat "$LOGS"/ovs-vswitchd*.log | grep -c 'pool are still out')" == 0

rmdir /var/run/dpdk 2>/dev/null
if [ "$CHECK_FAILURES" -ne 0 ]; then
  echo "FAIL: $CHECK_FAILURES check(s) failed"
  exit 1
fi
echo "PASS"
