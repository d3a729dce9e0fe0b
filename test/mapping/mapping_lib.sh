# shellcheck shell=bash
# Shell helpers for the end-to-end mapping tests: simnic_peer as the soft NIC
# (pvp or nic mode) and as separate guests (guest mode), iovtee-switch in
# between. On top of test/softnic/peer/peer_lib.sh (process start order, PID
# bookkeeping, cleanup, report fields).
#
# Layout on 2 cores: the switch busy-polls core 1; the peer processes share
# core 0 and sleep when idle (nic and guest modes), so four processes fit.
#
# Source it after setting PEER, SWITCH and PEER_LIB, then call mapping_lib_init.
# Files, per NAME: $WORK/NAME.json (report), $WORK/NAME.status.json (status,
# every 100 ms), $WORK/NAME.sw.json (switch stats at exit), logs in $LOGS.

SWITCH_CORE=${SWITCH_CORE:-1}
# A test's switch, NIC and guests are told apart by NAME; sockets live in
# $WORK (a fresh mktemp directory), EAL file prefixes carry $$.

mapping_lib_init() {
  # shellcheck source=/dev/null
  source "$PEER_LIB"
  peer_lib_init --no-testpmd || return 1
  fails=0
  T0=$SECONDS
}

# step MESSAGE: progress, with the seconds since mapping_lib_init.
step() { echo "  [$((SECONDS - T0)) s] $*"; }

# fail MESSAGE: one failed check (the test goes on, and fails at the end).
fail() {
  echo "  FAIL: $*"
  fails=$((fails + 1))
}

# start_iovtee_switch NAME [switch options...]: iovtee-switch with phy0 =
# the soft NIC of NAME ($WORK/NAME.nic, which must listen already). Sets
# SWITCH_PID.
start_iovtee_switch() {
  local name=$1
  shift
  local prefix="iovtee-t-sw$$-$name"
  _prefixes+=("$prefix")
  local cmd=("$SWITCH" -l "$SWITCH_CORE" --no-huge -m 1024 --no-pci --no-shconf --no-telemetry
    --file-prefix "$prefix" -- --phy "net_simnic0,socket=$WORK/$name.nic"
    --stats-file "$WORK/$name.sw.json" "$@")
  echo "${cmd[*]}" >"$LOGS/$name.switch.cmd"
  "${cmd[@]}" </dev/null >"$LOGS/$name.switch.log" 2>&1 &
  SWITCH_PID=$!
  _pids+=("$SWITCH_PID")
}

# start_guest NAME VHOST [peer options...]: simnic_peer --mode=guest on the
# switch's socket VHOST (it attaches once the socket exists). Report
# $WORK/NAME.json, status $WORK/NAME.status.json. Sets GUEST_PID.
start_guest() {
  local name=$1 vhost=$2
  shift 2
  rm -f "$WORK/$name.json" "$WORK/$name.status.json"
  local cmd=("$PEER" --mode=guest --guest-vhost "$vhost" --core "$PEER_CORE"
    --report "$WORK/$name.json" --status-file "$WORK/$name.status.json" "$@")
  echo "${cmd[*]}" >>"$LOGS/$name.guest.cmd"
  "${cmd[@]}" </dev/null >>"$LOGS/$name.guest.log" 2>&1 &
  GUEST_PID=$!
  _pids+=("$GUEST_PID")
  # Its EAL runtime directory (default prefix iovtee-peer-PID): removed by
  # the guest when it exits, by the cleanup when it is killed.
  _prefixes+=("iovtee-peer-$GUEST_PID")
}

# wait_until SECONDS WHAT COMMAND...: polls COMMAND (every 20 ms) until it
# succeeds; on the deadline prints WHAT and returns 1.
wait_until() {
  local secs=$1 what=$2
  local deadline=$((SECONDS + secs))
  shift 2
  until "$@"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "  timed out after $secs s waiting for $what" >&2
      return 1
    fi
    sleep 0.02
  done
}

# Conditions for wait_until.
alive() { kill -0 "$1" 2>/dev/null; }
# json_ge FILE KEY N: the peer JSON FILE's KEY is a number >= N.
json_ge() {
  local v
  v=$(jfield "$1" "$2")
  [ -n "$v" ] && awk -v v="$v" -v n="$3" 'BEGIN { exit !(v + 0 >= n + 0) }'
}
json_is() { [ "$(jfield "$1" "$2")" = "$3" ]; }
# log_count FILE PATTERN N: PATTERN appears at least N times in FILE.
log_count() { [ "$(grep -c -- "$2" "$1" 2>/dev/null)" -ge "$3" ]; }
# guests_connected NAME PORT...: the switch of NAME serves a guest on each
# PORT (it logs "PORT: guest connected" once the mapping, if any, attached).
guests_connected() {
  local name=$1 p
  shift
  for p in "$@"; do
    log_count "$LOGS/$name.switch.log" "$p: guest connected" 1 || return 1
  done
}

# stop_guest PID NAME: SIGTERM (a guest detaches, checks its canaries and
# writes its report); SIGKILL after 20 s. Returns its exit status.
stop_guest() {
  local pid=$1 name=$2
  kill -TERM "$pid" 2>/dev/null
  if ! wait_exit "$pid" 20; then
    echo "  guest $name (pid $pid) did not exit within 20 s of SIGTERM: killed" >&2
    kill -KILL "$pid" 2>/dev/null
  fi
  wait "$pid"
  local rc=$?
  if [ -e "/var/run/dpdk/iovtee-peer-$pid" ]; then
    echo "  guest $name left /var/run/dpdk/iovtee-peer-$pid behind" >&2
    rm -rf "/var/run/dpdk/iovtee-peer-$pid"
    rc=1
  fi
  return "$rc"
}

# stop_switch_and_nic NAME: the switch first (SIGINT: it detaches its guests,
# stops its ports and writes its stats), then the NIC peer, which exits once
# the switch has closed its port. Returns 0 when both exited with status 0.
stop_switch_and_nic() {
  local name=$1 src prc
  stop "$SWITCH_PID" iovtee-switch 20
  src=$?
  if ! wait_exit "$PEER_PID" 20; then
    echo "  simnic_peer (pid $PEER_PID) still running 20 s after the switch: stopping it" >&2
    stop "$PEER_PID" simnic_peer 5
  fi
  wait "$PEER_PID"
  prc=$?
  rm -rf "/var/run/dpdk/iovtee-t-sw$$-$name"
  [ "$src" -eq 0 ] && [ "$prc" -eq 0 ] && return 0
  echo "  exit status: iovtee-switch $src, simnic_peer $prc" >&2
  return 1
}

# case_verdict NAME FAILS_BEFORE T0: PASS when no check failed since the case
# began (fails was FAILS_BEFORE at T0, in $SECONDS), else FAIL and the logs.
case_verdict() {
  local name=$1 before=$2 t0=$3 verdict=PASS
  [ "$fails" -eq "$before" ] || verdict=FAIL
  echo "  $verdict $name ($((SECONDS - t0)) s)"
  [ "$verdict" = PASS ] || show_logs "$name"
}

# stop_two_guests_and_switch NAME: guests B ($B_PID) then A ($A_PID), then the
# switch and the NIC; each must stop cleanly, and each guest's report must be
# whole ($WORK/NAME-a.json, $WORK/NAME-b.json: check_guest_report).
stop_two_guests_and_switch() {
  local name=$1
  step "stopping"
  stop_guest "$B_PID" B || fail "guest B did not stop cleanly"
  stop_guest "$A_PID" A || fail "guest A did not stop cleanly"
  stop_switch_and_nic "$name" || fail "the switch or the NIC did not stop cleanly"
  step "stopped"
  check_guest_report "$WORK/$name-a.json" "guest A"
  check_guest_report "$WORK/$name-b.json" "guest B"
}

# sw NAME PATH: a value from the switch's stats JSON ($WORK/NAME.sw.json).
# PATH: keys separated by dots, list items by index or, for items with a
# "name", by [name=VALUE], e.g. ports[name=vhost0].tx,
# ports[name=phy0].mapping.zero_copy, acl[0].hits. Prints nothing when the
# path does not exist. The JSON is flattened once (one python start).
PYTHON=/usr/bin/python3
[ -x "$PYTHON" ] || PYTHON=python3
sw() {
  local json="$WORK/$1.sw.json" flat="$WORK/$1.sw.flat"
  if [ ! -f "$flat" ] || [ "$json" -nt "$flat" ]; then
    "$PYTHON" - "$json" >"$flat" <<'PY'
import json, sys
def walk(v, path):
    if isinstance(v, dict):
        for k, x in v.items():
            walk(x, f"{path}.{k}" if path else k)
    elif isinstance(v, list):
        for i, x in enumerate(v):
            walk(x, f"{path}[{i}]")
            if isinstance(x, dict) and "name" in x:
                walk(x, f"{path}[name={x['name']}]")
    else:
        print(f"{path}={str(v).lower() if isinstance(v, bool) else v}")
try:
    walk(json.load(open(sys.argv[1])), "")
except (OSError, ValueError):
    pass
PY
  fi
  awk -v k="$2=" 'index($0, k) == 1 { print substr($0, length(k) + 1); exit }' "$flat"
}

# sw_sum NAME KEYS: the sum over the switch's ports of the counters named in
# KEYS (separated by |), e.g. sw_sum NAME 'tx_dropped|rx_dropped'.
sw_sum() {
  sw "$1" ports >/dev/null # flattens the JSON if needed
  awk -F= -v keys="$2" '
    BEGIN { n = split(keys, k, "|"); for (i = 1; i <= n; i++) want[k[i]] = 1 }
    $1 ~ /^ports\[[0-9]+\]\./ { c = $1; sub(/^ports\[[0-9]+\]\./, "", c); if (c in want) s += $2 }
    END { print s + 0 }' "$WORK/$1.sw.flat"
}

# expect VALUE OP WANT WHAT: one numeric check (OP: -eq -le -ge -lt -gt); a
# missing value fails.
expect() {
  local v=$1 op=$2 want=$3
  shift 3
  if [ -z "$v" ] || ! test "$v" "$op" "$want" 2>/dev/null; then
    fail "$* = '${v}', want $op $want"
  fi
}

# check_guest_report FILE WHAT: what every guest report must show, whatever
# the test: it ended cleanly, no canary damaged, its pool checked at exit.
check_guest_report() {
  local f=$1 what=$2
  [ -f "$f" ] || { fail "$what: no report"; return; }
  [ "$(jfield "$f" completed)" = true ] || fail "$what: not completed: $(jfield "$f" error)"
  expect "$(jfield "$f" canary_violations)" -eq 0 "$what canary_violations"
  [ "$(jfield "$f" canary_pool_check_done)" = true ] || fail "$what: pool canaries not checked"
  expect "$(jfield "$f" canary_checked)" -ge "$(jfield "$f" guest_rx)" "$what canary_checked"
}

# check_mapping_whole NAME: after the switch stopped, the mapping's pool holds
# every mbuf again and the NIC holds no guest buffer; no validation error.
check_mapping_whole() {
  local name=$1 pm pf
  pm=$(sw "$name" "ports[name=phy0].mapping.pool_mbufs")
  pf=$(sw "$name" "ports[name=phy0].mapping.pool_free_mbufs")
  echo "  mapping pool: $pf of $pm mbufs free at exit, guest buffers held $(sw "$name" \
    "ports[name=phy0].mapping.guest_buffers_held"), validation errors $(sw "$name" \
    "ports[name=phy0].mapping.validation_errors")"
  expect "$pm" -gt 0 "pool_mbufs"
  expect "$pf" -eq "${pm:-x}" "pool_free_mbufs"
  expect "$(sw "$name" "ports[name=phy0].mapping.guest_buffers_held")" -eq 0 guest_buffers_held
  expect "$(sw "$name" "ports[name=phy0].mapping.validation_errors")" -eq 0 validation_errors
}

# show_logs NAME...: the tails of the logs of a failed step.
show_logs() {
  local n f
  for n in "$@"; do
    for f in "$LOGS/$n".*log; do
      [ -f "$f" ] && tail -n 15 "$f" | sed "s|^|  $(basename "$f"): |"
    done
  done
}

# check_pvp_report NAME: what every PVP run (simnic_peer --mode=pvp with its
# guest on the switch's vhost0, after stop_switch_and_nic) must show: the run
# completed; every frame back once, intact and in order; what did not come
# back is a counted drop (the NIC ring full, the switch's or the guest's
# drops, frames still in the guest's ring when the peer stopped polling);
# every frame the switch delivered reached the guest; no IOMMU fault, no ring
# or control error, no guest canary damaged, the guest's pool checked.
check_pvp_report() {
  local name=$1 v
  local sent received lost to_guest guest_rx sw_drops
  sent=$(field "$name" sent)
  received=$(field "$name" received)
  lost=$(field "$name" lost)
  echo "  peer: sent $sent received $received lost $lost corrupted $(field "$name" corrupted)" \
    "reordered $(field "$name" reordered) duplicates $(field "$name" duplicates)" \
    "iommu_faults $(field "$name" iommu_faults); guest rx $(field "$name" guest_rx)" \
    "segments $(field "$name" guest_rx_segments)," \
    "canaries checked $(field "$name" canary_checked) + $(field "$name" canary_pool_checked)" \
    "at exit, violations $(field "$name" canary_violations)"
  [ "$(field "$name" completed)" = true ] || fail "not completed: $(field "$name" error)"
  expect "$sent" -gt 0 sent
  for v in corrupted reordered duplicates foreign iommu_faults rx_oversize ring_errors \
    control_errors nic_tx_errors canary_violations; do
    expect "$(field "$name" $v)" -eq 0 "$v"
  done
  [ "$(field "$name" canary_pool_check_done)" = true ] || fail "guest pool canaries not checked"
  [ -f "$WORK/$name.sw.json" ] || { fail "the switch wrote no stats"; return; }
  sw_drops=$(sw_sum "$name" 'tx_dropped|rx_dropped')
  to_guest=$(sw "$name" "ports[name=vhost0].tx")
  guest_rx=$(field "$name" guest_rx)
  expect "$guest_rx" -le "$to_guest" "guest_rx (vs switch vhost0 tx)"
  # All back: the guest polled every frame the switch gave it.
  [ "$lost" = 0 ] && expect "$guest_rx" -eq "$to_guest" "guest_rx (vs switch vhost0 tx)"
  local unpolled=$((to_guest - guest_rx))
  local counted=$(($(field "$name" nic_rx_missed) + sw_drops + $(field "$name" guest_drops) + unpolled))
  echo "  counted drops: $counted (nic missed $(field "$name" nic_rx_missed), switch $sw_drops," \
    "guest $(field "$name" guest_drops), left in the guest's ring $unpolled)"
  expect "$lost" -le "$counted" "lost (vs counted drops)"
}
