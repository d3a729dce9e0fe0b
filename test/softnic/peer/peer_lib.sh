# shellcheck shell=bash
# Shell helpers shared by simnic_peer_test.sh and pvp_measure.sh: start
# simnic_peer and Debian's dpdk-testpmd (the switch) in the order the soft NIC
# and vhost-user need, wait on conditions with deadlines, stop every process
# by PID, and leave no socket or DPDK runtime directory behind.
#
# Layout on a 2-core machine: testpmd's forwarding lcore on core 1 (its main
# lcore, which only sleeps and prints, on core 0), the peer polling core 0.
#
# Source it, then set PEER, PLUGIN (and optionally TESTPMD) and call
# peer_lib_init. Every function prints what went wrong on stderr.

TESTPMD=${TESTPMD:-/usr/bin/dpdk-testpmd}
PEER_CORE=${PEER_CORE:-0}
SWITCH_LCORES=${SWITCH_LCORES:-0-1}  # main lcore first, then the forwarding one
_pids=()
_prefixes=()

# peer_lib_init [--no-testpmd]: a work directory, cleanup at exit; checks for
# testpmd unless the caller brings its own switch.
peer_lib_init() {
  # Unix socket paths must stay short: a directory under /tmp, not TEST_TMPDIR.
  WORK=$(mktemp -d /tmp/iovtee-peer.XXXXXX)
  LOGS=${TEST_UNDECLARED_OUTPUTS_DIR:-$WORK}
  trap _peer_lib_cleanup EXIT
  [ "${1:-}" = --no-testpmd ] && return 0
  [ -x "$TESTPMD" ] || { echo "FAIL: $TESTPMD not found (Debian package dpdk)" >&2; return 1; }
}

_peer_lib_cleanup() {
  local p
  for p in "${_pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
  for p in "${_prefixes[@]}"; do rm -rf "/var/run/dpdk/$p"; done
  rm -rf "$WORK"
}

# wait_exit PID SECONDS: 0 if the process exited within SECONDS.
wait_exit() {
  local pid=$1 deadline=$((SECONDS + $2))
  while kill -0 "$pid" 2>/dev/null; do
    [ "$SECONDS" -ge "$deadline" ] && return 1
    sleep 0.05
  done
  return 0
}

# stop PID NAME GRACE: SIGINT, SIGKILL after GRACE seconds; returns the exit
# status.
stop() {
  local pid=$1 name=$2 grace=$3
  kill -INT "$pid" 2>/dev/null
  if ! wait_exit "$pid" "$grace"; then
    echo "  $name (pid $pid) did not exit within ${grace}s of SIGINT: killed" >&2
    kill -KILL "$pid" 2>/dev/null
  fi
  wait "$pid"
}

# wait_for_socket PATH PID SECONDS: until PATH is a socket, PID dies, or the
# deadline.
wait_for_socket() {
  local path=$1 pid=$2 deadline=$((SECONDS + $3))
  while [ ! -S "$path" ]; do
    kill -0 "$pid" 2>/dev/null || { echo "  pid $pid died before creating $path" >&2; return 1; }
    [ "$SECONDS" -ge "$deadline" ] && { echo "  no socket $path after $3 s" >&2; return 1; }
    sleep 0.02
  done
}

# start_peer NAME MODE [peer options...]: starts simnic_peer (pvp, nic-loop or
# nic mode) with its NIC on $WORK/NAME.nic (and in pvp mode its guest on
# $WORK/NAME.vhost), report in $WORK/NAME.json, status (every 100 ms) in
# $WORK/NAME.status.json; returns once the NIC listens. Sets PEER_PID.
start_peer() {
  local name=$1 mode=$2
  shift 2
  local guest=()
  [ "$mode" = pvp ] && guest=(--guest-vhost "$WORK/$name.vhost")
  local cmd=("$PEER" --mode="$mode" --nic-socket "$WORK/$name.nic" "${guest[@]}"
    --core "$PEER_CORE" --report "$WORK/$name.json" --status-file "$WORK/$name.status.json" "$@")
  echo "${cmd[*]}" >"$LOGS/$name.peer.cmd"
  "${cmd[@]}" >"$LOGS/$name.peer.log" 2>&1 &
  PEER_PID=$!
  _pids+=("$PEER_PID")
  wait_for_socket "$WORK/$name.nic" "$PEER_PID" 20
}

# start_switch NAME MODE [testpmd application options...]: Debian's testpmd
# with the net_simnic plugin, io forwarding on one core: pvp forwards between
# the NIC port and a vhost-user server port, nic-loop loops the NIC port to
# itself. Sets SWITCH_PID.
start_switch() {
  local name=$1 mode=$2
  shift 2
  local prefix="iovtee-t-sw$$-$name"
  local vdevs=(--vdev "net_simnic0,socket=$WORK/$name.nic")
  local topology=()
  if [ "$mode" = pvp ]; then
    vdevs+=(--vdev "net_vhost0,iface=$WORK/$name.vhost,queues=1")
  else
    topology=(--port-topology=loop)
  fi
  _prefixes+=("$prefix")
  local cmd=("$TESTPMD" -l "$SWITCH_LCORES" --no-huge -m 512 --no-pci --no-shconf
    --no-telemetry --file-prefix "$prefix" -d "$PLUGIN" "${vdevs[@]}"
    --log-level=pmd.net.simnic:info -- --forward-mode=io "${topology[@]}" --auto-start
    --stats-period=1 --nb-cores=1 --rxq=1 --txq=1 --rxd=4096 --txd=4096
    --total-num-mbufs=32768 "$@")
  echo "${cmd[*]}" >"$LOGS/$name.testpmd.cmd"
  "${cmd[@]}" </dev/null >"$LOGS/$name.testpmd.log" 2>&1 &
  SWITCH_PID=$!
  _pids+=("$SWITCH_PID")
}

# wait_report NAME SECONDS: until the peer's report exists (0), or either
# process died or the deadline passed (1).
wait_report() {
  local name=$1 deadline=$((SECONDS + $2))
  while [ ! -f "$WORK/$name.json" ]; do
    kill -0 "$PEER_PID" 2>/dev/null || { echo "  the peer exited without a report" >&2; return 1; }
    kill -0 "$SWITCH_PID" 2>/dev/null || { echo "  testpmd died" >&2; return 1; }
    [ "$SECONDS" -ge "$deadline" ] && { echo "  no report after $2 s" >&2; return 1; }
    sleep 0.05
  done
}

# cpu_ticks PID: utime + stime in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }

# stop_all NAME: stops testpmd (its close is acknowledged by the lingering
# peer, which then exits), removes testpmd's runtime directory. Returns 0 when
# both exited with status 0.
stop_all() {
  local name=$1 trc prc
  stop "$SWITCH_PID" testpmd 20
  trc=$?
  if ! wait_exit "$PEER_PID" 20; then
    echo "  simnic_peer (pid $PEER_PID) still running 20 s after testpmd: stopping it" >&2
    stop "$PEER_PID" simnic_peer 5
  fi
  wait "$PEER_PID"
  prc=$?
  # testpmd leaves its runtime directory even with --no-shconf; the peer
  # removes its own (default EAL arguments).
  rm -rf "/var/run/dpdk/iovtee-t-sw$$-$name"
  if [ -e "/var/run/dpdk/iovtee-peer-$PEER_PID" ]; then
    echo "  simnic_peer left /var/run/dpdk/iovtee-peer-$PEER_PID behind" >&2
    rm -rf "/var/run/dpdk/iovtee-peer-$PEER_PID"
    prc=1
  fi
  [ "$trc" -eq 0 ] && [ "$prc" -eq 0 ] && return 0
  echo "  exit status: testpmd $trc, simnic_peer $prc" >&2
  return 1
}

# field NAME KEY: a value from the peer's JSON report (keys are unique).
field() { jfield "$WORK/$1.json" "$2"; }

# jfield FILE KEY: a value from any simnic_peer JSON file (report or status;
# one key per line, keys unique); empty if the file or key is missing.
jfield() {
  sed -n "s/^ *\"$2\": \"\{0,1\}\([^\",]*\)\"\{0,1\},\{0,1\}$/\1/p" "$1" 2>/dev/null | head -n 1
}
