# shellcheck shell=bash
# Shell helpers for the OVS tests: one ovs-vswitchd (userspace datapath, DPDK
# with the net_simnic plugin) and its ovsdb-server in a private directory,
# simnic_peer processes as the NIC and the guests, waits on conditions with
# deadlines, everything stopped by PID.
#
# Source test/softnic/peer/peer_lib.sh first (WORK, wait_exit, jfield, ...),
# set OVS_BIN (ovs-vswitchd, ovsdb-server, ovsdb-tool, ovs-vsctl, ovs-appctl,
# ovs-ofctl, vswitch.ovsschema), PEER, PLUGIN and LIBIOVTEE_DIR, then call
# ovs_start.
#
# Layout on 2 cores: OVS's PMD thread on core 1, its main thread and the
# peers on core 0 (the peers sleep when idle; at the tests' rates the three
# processes fit).

OVS_PMD_MASK=${OVS_PMD_MASK:-0x2}
OVS_LCORE_MASK=${OVS_LCORE_MASK:-0x1}

# ovs_env CMD...: runs an OVS tool with this test's directories.
ovs_env() {
  OVS_RUNDIR=$OVS_DIR OVS_LOGDIR=$OVS_DIR OVS_DBDIR=$OVS_DIR OVS_SYSCONFDIR=$OVS_DIR \
    LD_LIBRARY_PATH=$LIBIOVTEE_DIR "$@"
}
vsctl() { ovs_env "$OVS_BIN/ovs-vsctl" --db="unix:$OVS_DIR/db.sock" --timeout=30 "$@"; }
appctl() { ovs_env "$OVS_BIN/ovs-appctl" --timeout=30 -t "$OVS_DIR/ovs-vswitchd.$OVS_PID.ctl" "$@"; }
ofctl() { ovs_env "$OVS_BIN/ovs-ofctl" --timeout=30 -O OpenFlow13 "$@"; }

# wait_until SECONDS DESCRIPTION CMD...: until CMD succeeds (0), or the
# deadline (1, with DESCRIPTION on stderr), or ovs-vswitchd died (1).
wait_until() {
  local deadline=$((SECONDS + $1)) what=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    if [ -n "${OVS_PID:-}" ] && ! kill -0 "$OVS_PID" 2>/dev/null; then
      echo "  ovs-vswitchd died while waiting for: $what" >&2
      return 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "  timed out after $1 s waiting for: $what" >&2
      return 1
    fi
    sleep 0.05
  done
}

# ovs_start: ovsdb-server and ovs-vswitchd with DPDK (no hugepages, no PCI,
# the net_simnic plugin), a netdev bridge br0. Sets OVS_PID, OVS_DIR.
ovs_start() {
  OVS_DIR=$WORK/ovs
  OVS_PREFIX=iovtee-ovs-$$
  mkdir -p "$OVS_DIR"
  ovs_env "$OVS_BIN/ovsdb-tool" create "$OVS_DIR/conf.db" "$OVS_BIN/vswitch.ovsschema" || return 1
  ovs_env "$OVS_BIN/ovsdb-server" --remote="punix:$OVS_DIR/db.sock" --pidfile --log-file \
    --detach --no-chdir "$OVS_DIR/conf.db" >>"$OVS_DIR/console.log" 2>&1 || return 1
  OVSDB_PID=$(cat "$OVS_DIR/ovsdb-server.pid")
  _pids+=("$OVSDB_PID")
  _prefixes+=("$OVS_PREFIX")
  vsctl --no-wait init || return 1
  # --legacy-mem keeps OVS from adding --in-memory (which needs hugepages);
  # IOVA as VA is what iovtee's DMA mapping of guest memory needs.
  vsctl --no-wait set Open_vSwitch . other_config:dpdk-init=true \
    other_config:dpdk-extra="--no-huge -m 1024 --legacy-mem --no-pci --no-shconf \
--no-telemetry --iova-mode=va --file-prefix $OVS_PREFIX -d $PLUGIN" \
    other_config:dpdk-lcore-mask="$OVS_LCORE_MASK" other_config:pmd-cpu-mask="$OVS_PMD_MASK" \
    other_config:per-port-memory=true || return 1
  ovs_env "$OVS_BIN/ovs-vswitchd" --pidfile --log-file --detach --no-chdir \
    "unix:$OVS_DIR/db.sock" >>"$OVS_DIR/console.log" 2>&1 ||
    { tail -n 20 "$OVS_DIR/console.log" >&2; return 1; }
  OVS_PID=$(cat "$OVS_DIR/ovs-vswitchd.pid")
  _pids+=("$OVS_PID")
  vsctl add-br br0 -- set bridge br0 datapath_type=netdev || return 1
  # No NORMAL flow: nothing is forwarded until a case installs its flows.
  ofctl del-flows br0
}

# ovs_stop: ovs-vswitchd then ovsdb-server, SIGTERM and a deadline; 0 if
# ovs-vswitchd exited by itself.
ovs_stop() {
  local rc=0
  if kill -0 "$OVS_PID" 2>/dev/null; then
    kill -TERM "$OVS_PID"
    wait_exit "$OVS_PID" 20 || { echo "  ovs-vswitchd ignored SIGTERM: killed" >&2; kill -KILL "$OVS_PID"; rc=1; }
  else
    echo "  ovs-vswitchd was not running at the end" >&2
    rc=1
  fi
  kill -TERM "$OVSDB_PID" 2>/dev/null
  wait_exit "$OVSDB_PID" 10 || kill -KILL "$OVSDB_PID" 2>/dev/null
  rm -rf "/var/run/dpdk/$OVS_PREFIX"
  return $rc
}

# ovs_del_bridge: deletes br0 before the end. OVS makes its tap devices
# persistent (br0's internal port, the datapath's ovs-netdev) and removes
# them with the bridge (and the datapath with its last bridge) only: without
# this they stay in the kernel after ovs-vswitchd exits.
ovs_del_bridge() { vsctl --if-exists del-br br0; }

# expect_no_taps: after ovs_del_bridge and ovs_stop, no tap device of
# ovs-vswitchd's is left (skipped without iproute2). Removes what is left
# (an ovs-vswitchd that died leaves them).
expect_no_taps() {
  command -v ip >/dev/null || return 0
  local left dev
  left=$(ip -o link show 2>/dev/null | sed -n -E 's/^[0-9]+: (br0|ovs-netdev)[:@].*/\1/p')
  expect "tap devices left (br0, ovs-netdev)" "$(printf '%s' "$left" | grep -c .)" == 0
  for dev in $left; do ip tuntap del dev "$dev" mode tap 2>/dev/null; done
}

# ovs_log_errors: ERR/EMER lines of ovs-vswitchd's log, less the ones a
# run without a kernel datapath or with ports coming and going always has.
ovs_log_errors() {
  grep -E '\|(ERR|EMER)\|' "$OVS_DIR/ovs-vswitchd.log" |
    grep -v -E 'dpif_netlink|Generic Netlink|ovs_datapath|dpif\|ERR\|failed to (create|open) datapath'
}

# add_nic NAME [Interface options...]: adds the DPDK port dpdk0 (OpenFlow
# port 1) whose device is the soft NIC listening on $WORK/NAME.nic.
add_nic() {
  local name=$1
  shift
  vsctl add-port br0 dpdk0 -- set Interface dpdk0 type=dpdk ofport_request=1 \
    "options:dpdk-devargs=net_simnic0,socket=$WORK/$name.nic" "$@" || return 1
  wait_until 20 "dpdk0 link up" vsctl_has Interface dpdk0 link_state up
}

# vsctl_has TABLE RECORD COLUMN VALUE: the column's value is VALUE.
vsctl_has() { [ "$(vsctl get "$1" "$2" "$3" 2>/dev/null | tr -d '"')" = "$4" ]; }

# del_nic: removes dpdk0 (the soft NIC's driver closes the port, which lets
# a lingering simnic_peer exit).
del_nic() {
  ofctl del-flows br0
  vsctl --if-exists del-port br0 dpdk0
}

# flows RULE...: replaces br0's OpenFlow table at once (one bundle).
flows() {
  printf '%s\n' "$@" >"$WORK/flows.txt"
  ofctl --bundle replace-flows br0 "$WORK/flows.txt"
}

# pmd_ticks: CPU ticks of OVS's PMD threads.
pmd_ticks() {
  local t sum=0 v
  for t in /proc/"$OVS_PID"/task/*; do
    grep -q '^pmd' "$t/comm" 2>/dev/null || continue
    v=$(awk '{print $14 + $15}' "$t/stat" 2>/dev/null) && sum=$((sum + v))
  done
  echo "$sum"
}

# pmd_share_since TICKS0 TIME0: the PMD threads' share of a core since then
# (pmd_ticks, date +%s.%N) into PMD_SHARE; STARVED=1 below 0.8 of a core.
pmd_share_since() {
  PMD_SHARE=$(awk -v c0="$1" -v c1="$(pmd_ticks)" -v t0="$2" -v t1="$(date +%s.%N)" \
    -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", (c1 - c0) / hz / (t1 - t0) }')
  STARVED=$(awk -v s="$PMD_SHARE" 'BEGIN { print (s < 0.8) ? 1 : 0 }')
}

# iovtee_show [IFACE]: ovs-appctl iovtee/show.
iovtee_show() { appctl iovtee/show "$@"; }

# iovtee_counter NAME: a counter of dpdk0's rxq 0 mapping (iovtee/show).
iovtee_counter() {
  appctl iovtee/show dpdk0 2>/dev/null | sed -n "s/^    $1: \([0-9]*\)$/\1/p" | head -n 1
}

# iovtee_attached: dpdk0 rxq 0's mapping has a guest.
iovtee_attached() { appctl iovtee/show dpdk0 2>/dev/null | grep -q 'rxq 0 -> .*: attached'; }
iovtee_waiting() { appctl iovtee/show dpdk0 2>/dev/null | grep -q 'rxq 0 -> .*: waiting for a guest'; }

# start_pvp_peer NAME VHOST [peer options...]: simnic_peer in pvp mode, its
# NIC on $WORK/NAME.nic, its guest connecting to OVS's vhost-user port VHOST.
# Returns once the NIC listens. Sets PEER_PID.
start_pvp_peer() {
  local name=$1 vhost=$2
  shift 2
  _start_peer "$name" --mode=pvp --nic-socket "$WORK/$name.nic" --guest-vhost "$OVS_DIR/$vhost" "$@" ||
    return 1
  wait_for_socket "$WORK/$name.nic" "$PEER_PID" 20
}

# start_nic_peer NAME [peer options...]: simnic_peer in nic mode. Sets PEER_PID.
start_nic_peer() {
  local name=$1
  shift
  _start_peer "$name" --mode=nic --nic-socket "$WORK/$name.nic" "$@" || return 1
  wait_for_socket "$WORK/$name.nic" "$PEER_PID" 20
}

# start_guest NAME VHOST [peer options...]: simnic_peer in guest mode (a DPDK
# virtio-user guest of OVS's port VHOST). Sets PEER_PID.
start_guest() {
  local name=$1 vhost=$2
  shift 2
  _start_peer "$name" --mode=guest --guest-vhost "$OVS_DIR/$vhost" "$@"
}

_start_peer() {
  local name=$1
  shift
  local cmd=("$PEER" "$@" --core 0 --report "$WORK/$name.json"
    --status-file "$WORK/$name.status.json")
  echo "${cmd[*]}" >"$LOGS/$name.peer.cmd"
  "${cmd[@]}" </dev/null >"$LOGS/$name.peer.log" 2>&1 &
  PEER_PID=$!
  _pids+=("$PEER_PID")
}

# wait_peer_report NAME PID SECONDS: until the report exists, the peer died,
# ovs-vswitchd died or the deadline.
wait_peer_report() {
  local name=$1 pid=$2 deadline=$((SECONDS + $3))
  while [ ! -f "$WORK/$name.json" ]; do
    kill -0 "$pid" 2>/dev/null || { echo "  peer $name exited without a report" >&2; return 1; }
    kill -0 "$OVS_PID" 2>/dev/null || { echo "  ovs-vswitchd died" >&2; return 1; }
    [ "$SECONDS" -ge "$deadline" ] && { echo "  no report from $name after $3 s" >&2; return 1; }
    sleep 0.05
  done
}

# finish_peer PID NAME: waits for a peer that ends by itself (its report is
# written; it lingers until OVS closes the NIC), stops it otherwise.
# Returns its exit status.
finish_peer() {
  local pid=$1 name=$2
  if ! wait_exit "$pid" 20; then
    echo "  $name (pid $pid) still running: stopping it" >&2
    stop "$pid" "$name" 5
    return 1
  fi
  wait "$pid"
}

# f NAME KEY: a value of peer NAME's report.
f() { jfield "$WORK/$1.json" "$2"; }

# expect DESCRIPTION ACTUAL OP EXPECTED: one check, printed; counts failures
# in CHECK_FAILURES.
CHECK_FAILURES=0
expect() {
  local what=$1 actual=$2 op=$3 want=$4 ok=1
  if [ -z "$actual" ]; then
    ok=0
  else
    case $op in
      ==) [ "$actual" = "$want" ] || ok=0 ;;
      -ge|-le|-gt|-lt|-eq) [ "$actual" "$op" "$want" ] || ok=0 ;;
      *) ok=0 ;;
    esac
  fi
  if [ "$ok" = 1 ]; then
    printf '  ok   %s: %s\n' "$what" "$actual"
  else
    printf '  FAIL %s: %s, want %s %s\n' "$what" "${actual:-<missing>}" "$op" "$want"
    CHECK_FAILURES=$((CHECK_FAILURES + 1))
  fi
}

# check_traffic NAME: what every run must show: the run completed, no frame
# corrupted, duplicated, reordered or foreign, no IOMMU fault, no canary hit.
check_traffic() {
  local name=$1 v
  expect "$name completed" "$(f "$name" completed)" == true
  for v in corrupted duplicates reordered foreign iommu_faults rx_oversize; do
    expect "$name $v" "$(f "$name" "$v")" == 0
  done
  if [ -n "$(f "$name" canary_violations)" ]; then
    expect "$name canary_violations" "$(f "$name" canary_violations)" == 0
  fi
}
