# shellcheck shell=bash
# Shell helpers for the stock-PMD mapping tests: iovtee-switch with one phy
# port (a stock DPDK PMD) and one vhost-user port, Debian's dpdk-testpmd as
# the guest (virtio-user, macswap), waits on conditions with deadlines, and
# the checks of the switch's counters.
#
# Source test/softnic/peer/peer_lib.sh first (WORK, LOGS, _pids, _prefixes,
# stop, wait_exit, wait_for_socket, cleanup on exit), then this file, and set
# SWITCH and TOOL (stock_pmd_traffic).
#
# Layout on 2 cores: the switch polls lcore 0; testpmd's main lcore (which
# sleeps and prints) is on core 0 and its forwarding lcore on core 1.

SW_PID=
GUEST_PID=

# elapsed START: seconds since START (an $EPOCHREALTIME), to 0.1 s.
elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

# wait_log FILE PATTERN PID SECONDS: until FILE has a line matching the
# extended regex PATTERN (0), or PID died or the deadline passed (1).
wait_log() {
  local file=$1 pattern=$2 pid=$3 deadline=$((SECONDS + $4))
  until grep -qE "$pattern" "$file" 2>/dev/null; do
    kill -0 "$pid" 2>/dev/null || { echo "  pid $pid exited before '$pattern' in $file" >&2; return 1; }
    [ "$SECONDS" -ge "$deadline" ] && { echo "  no '$pattern' in $file after $4 s" >&2; return 1; }
    sleep 0.02
  done
}

# start_switch NAME MAP(0|1) PHY_DEVARGS [switch options...]: iovtee-switch
# with phy0 = PHY_DEVARGS and vhost0 on $WORK/NAME.vhost (phy0 queue 0 mapped
# onto vhost0's guest when MAP is 1), stats in $WORK/NAME.sw.json. Returns
# once the vhost socket exists. Sets SW_PID.
# SWITCH_EXTRA: more switch options for every run (e.g. --mtu 9000).
SWITCH_EXTRA=()
start_switch() {
  local name=$1 map=$2 phy=$3
  shift 3
  local prefix="iovtee-t-stock$$-$name-sw"
  _prefixes+=("$prefix")
  local mapargs=()
  [ "$map" = 1 ] && mapargs=(--map phy0:0=vhost0)
  local cmd=("$SWITCH" -l 0 --no-huge -m 1024 --no-pci --no-shconf --no-telemetry
    --file-prefix "$prefix" -- --phy "$phy" --vhost "$WORK/$name.vhost" "${mapargs[@]}"
    --stats-file "$WORK/$name.sw.json" "${SWITCH_EXTRA[@]}" "$@")
  echo "${cmd[*]}" >"$LOGS/$name.switch.cmd"
  "${cmd[@]}" </dev/null >"$LOGS/$name.switch.log" 2>&1 &
  SW_PID=$!
  _pids+=("$SW_PID")
  wait_for_socket "$WORK/$name.vhost" "$SW_PID" 20
}

# start_guest NAME VIRTIO_USER_EXTRA [testpmd options...]: Debian's testpmd
# with a virtio-user port on $WORK/NAME.vhost (1024-entry rings, plus
# VIRTIO_USER_EXTRA devargs such as ",packed_vq=1"), macswap forwarding.
# Sets GUEST_PID.
start_guest() {
  local name=$1 extra=$2
  shift 2
  local prefix="iovtee-t-stock$$-$name-guest"
  _prefixes+=("$prefix")
  local cmd=("$TESTPMD" -l 0-1 --no-huge -m 1024 --no-pci --no-shconf --no-telemetry
    --file-prefix "$prefix"
    --vdev "net_virtio_user0,path=$WORK/$name.vhost,queues=1,queue_size=1024$extra"
    -- --forward-mode=macswap --auto-start --stats-period=1 --nb-cores=1 --rxq=1 --txq=1
    --rxd=1024 --txd=1024
    --no-mlockall --total-num-mbufs=8192 "$@")
  echo "${cmd[*]}" >"$LOGS/$name.guest.cmd"
  "${cmd[@]}" </dev/null >"$LOGS/$name.guest.log" 2>&1 &
  GUEST_PID=$!
  _pids+=("$GUEST_PID")
}

# wait_ready NAME MAP: the switch has the guest (with MAP=1: the mapping is
# attached to it) and testpmd forwards, so its Rx buffers are posted. Then
# creates $WORK/NAME.go, the traffic tool's signal to start.
wait_ready() {
  local name=$1 map=$2 pattern='switch: vhost0: guest connected'
  [ "$map" = 1 ] && pattern='mapping 0/0: guest vhost [0-9]+ vring 0 attached'
  wait_log "$LOGS/$name.switch.log" "$pattern" "$SW_PID" 20 &&
    wait_log "$LOGS/$name.guest.log" 'start packet forwarding' "$GUEST_PID" 20 &&
    touch "$WORK/$name.go"
}

# stop_guest_and_switch NAME: stops testpmd (if started), waits until the switch has let
# the guest go (the mapping's detach), stops the switch (which writes its
# stats), removes the DPDK runtime directories both leave even with
# --no-shconf. Returns 0 when both exited with status 0.
stop_guest_and_switch() {
  local name=$1 grc=0 src=1
  if [ -n "$GUEST_PID" ]; then
    stop "$GUEST_PID" testpmd 20
    grc=$?
    [ -n "$SW_PID" ] && wait_log "$LOGS/$name.switch.log" 'switch: vhost0: guest gone' "$SW_PID" 20
  fi
  if [ -n "$SW_PID" ]; then
    stop "$SW_PID" iovtee-switch 20
    src=$?
  fi
  GUEST_PID=''
  SW_PID=''
  rm -rf "/var/run/dpdk/iovtee-t-stock$$-$name-sw" "/var/run/dpdk/iovtee-t-stock$$-$name-guest"
  [ "$grc" = 0 ] && [ "$src" = 0 ] && return 0
  echo "  exit status: testpmd $grc, iovtee-switch $src" >&2
  return 1
}

# sw_stat NAME PORT [mapping] KEY: a counter from the switch's stats JSON
# (empty when absent). The JSON is flattened once, into NAME.sw.flat.
sw_stat() {
  local flat="$WORK/$1.sw.flat" key
  if [ ! -f "$flat" ]; then
    python3 - "$WORK/$1.sw.json" >"$flat" <<'EOF'
import json, sys
for port in json.load(open(sys.argv[1]))["ports"]:
    for k, v in port.items():
        items = v.items() if k == "mapping" else [(None, v)]
        for mk, mv in items:
            if isinstance(mv, (dict, list)):
                continue
            name = f"{port['name']}.mapping.{mk}" if mk else f"{port['name']}.{k}"
            print(name, int(mv) if isinstance(mv, bool) else mv)
EOF
  fi
  key=$(IFS=.; echo "${*:2}")
  awk -v k="$key" '$1 == k { print $2 }' "$flat"
}

# guest_forward_stat NAME KEY: testpmd's closing forward statistics of its
# port (RX-packets, RX-dropped, TX-packets, TX-dropped).
guest_forward_stat() {
  sed -n "/Forward statistics for port 0/,/------/s/.*$2: *\([0-9]*\).*/\1/p" \
    "$LOGS/$1.guest.log" | tail -n 1
}

# check_counts NAME MAP COUNT EXPECT: the switch's counters after a run of
# COUNT frames that all came back. Every frame crossed the switch once each
# way. With MAP=1 every frame to the guest is accounted for (zero-copy +
# copies by reason = vhost0's tx), nothing dropped, no validation error, one
# attach and one detach, no guest buffer left lent; EXPECT says which path:
# "zero-copy" (every frame completed in place) or "copy:REASON" (every frame
# copied for REASON). Prints the counters; returns 1 on any failure.
check_counts() {
  local name=$1 map=$2 count=$3 expect=$4 bad=0 k v
  local s="$WORK/$name.sw.json"
  [ -f "$s" ] || { echo "  FAIL: the switch wrote no stats"; return 1; }
  for k in phy0:rx phy0:tx vhost0:rx vhost0:tx; do
    v=$(sw_stat "$name" "${k%%:*}" "${k##*:}")
    [ "$v" = "$count" ] || { echo "  FAIL: $k = $v, expected $count"; bad=1; }
  done
  for k in phy0 vhost0; do
    v=$(sw_stat "$name" "$k" tx_dropped)
    [ "$v" = 0 ] || { echo "  FAIL: $k tx_dropped = $v"; bad=1; }
  done
  if [ "$map" != 1 ]; then
    [ -z "$(sw_stat "$name" phy0 mapping attaches)" ] || { echo "  FAIL: a mapping in a stock run"; bad=1; }
    return $bad
  fi
  local zc copied copies=0 drops=0 line="  mapping:"
  zc=$(sw_stat "$name" phy0 mapping zero_copy)
  copied=$(sw_stat "$name" phy0 mapping copied)
  for k in copy_foreign copy_host_buffer copy_multi_segment copy_shared copy_stale_session \
    copy_layout copy_order_unproven; do
    v=$(sw_stat "$name" phy0 mapping "$k")
    [ -n "$v" ] || continue
    copies=$((copies + v))
    [ "$v" = 0 ] || line+=" $k $v"
  done
  for k in drop_no_buffer drop_too_big drop_offload drop_broken_queue drop_no_guest; do
    v=$(sw_stat "$name" phy0 mapping "$k")
    drops=$((drops + v))
    [ "$v" = 0 ] || line+=" $k $v"
  done
  echo "$line zero_copy $zc copied $copied (by reason $copies) drops $drops," \
    "guest buffers lent $(sw_stat "$name" phy0 mapping guest_buffers_lent)" \
    "held $(sw_stat "$name" phy0 mapping guest_buffers_held)" \
    "recycled $(sw_stat "$name" phy0 mapping guest_buffers_recycled)," \
    "host buffers posted $(sw_stat "$name" phy0 mapping host_buffers_posted)"
  [ "$copied" = "$copies" ] || { echo "  FAIL: copied $copied, but $copies by reason"; bad=1; }
  [ $((zc + copied)) = "$count" ] ||
    { echo "  FAIL: zero_copy + copied = $((zc + copied)), vhost0 tx $count"; bad=1; }
  [ "$drops" = 0 ] || { echo "  FAIL: $drops frames dropped by the mapping"; bad=1; }
  for k in validation_errors guest_buffers_held guest_buffers_orphaned nic_wrote_outside; do
    v=$(sw_stat "$name" phy0 mapping "$k")
    [ "$v" = 0 ] || { echo "  FAIL: $k = $v"; bad=1; }
  done
  [ "$(sw_stat "$name" phy0 mapping attaches)" = 1 ] || { echo "  FAIL: attaches != 1"; bad=1; }
  [ "$(sw_stat "$name" phy0 mapping detaches)" = 1 ] || { echo "  FAIL: detaches != 1"; bad=1; }
  local total free
  total=$(sw_stat "$name" phy0 mapping pool_mbufs)
  free=$(sw_stat "$name" phy0 mapping pool_free_mbufs)
  [ "$total" = "$free" ] || { echo "  FAIL: pool has $free of $total mbufs back"; bad=1; }
  case $expect in
    zero-copy)
      [ "$zc" = "$count" ] || { echo "  FAIL: $zc of $count frames zero-copy"; bad=1; } ;;
    copy:*)
      v=$(sw_stat "$name" phy0 mapping "copy_${expect#copy:}")
      [ "$v" = "$count" ] || { echo "  FAIL: copy_${expect#copy:} = $v of $count"; bad=1; } ;;
  esac
  return $bad
}
