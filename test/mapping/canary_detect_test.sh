#!/usr/bin/env bash
# The tests of the tests: the canaries around the guests' Rx buffers
# (test/softnic/peer/guest_canary.h) catch a stray write, and the checks the
# mapping tests run on a guest's report fail on it. A guest started with
# --guest-corrupt-canary damages one tail canary byte of the first frame it
# receives, as a device writing one byte past a posted buffer would:
#  - guest mode (behind the mapped port, NIC in another process): its report
#    shows exactly one violation, at the first byte past the buffer, and
#    check_guest_report (mapping_lib.sh) fails on it;
#  - pvp mode (the peer's own guest): its report shows exactly one violation.
#
# Usage: canary_detect_test.sh SIMNIC_PEER IOVTEE_SWITCH PEER_LIB MAPPING_LIB
set -u
# shellcheck disable=SC2034  # used by mapping_lib.sh
PEER=$1 SWITCH=$2 PEER_LIB=$3
# shellcheck source=test/mapping/mapping_lib.sh
source "$4"
mapping_lib_init || exit 1

MAC=02:00:00:00:00:0a

# One damaged canary, reported where it was, and the usual checks fail.
expect_one_violation() {
  local f=$1 what=$2
  echo "  $what: canary violations $(jfield "$f" canary_violations) (first at byte" \
    "$(jfield "$f" canary_first_offset) of a buffer of $(jfield "$f" guest_data_room)), buffers" \
    "checked $(jfield "$f" canary_checked) + $(jfield "$f" canary_pool_checked) at exit"
  expect "$(jfield "$f" canary_violations)" -eq 1 "$what canary_violations"
  # The first byte past the posted area: buf_len, the data room.
  expect "$(jfield "$f" canary_first_offset)" -eq "$(jfield "$f" guest_data_room)" \
    "$what canary_first_offset"
  [ "$(jfield "$f" canary_pool_check_done)" = true ] || fail "$what: pool not checked at exit"
}

# 1. A guest behind the mapped port.
n=detect
go="$WORK/$n.go"
start_peer "$n" nic --size=64 --rate=10000 --duration=1 --warmup=0 --linger=30 \
  --dst-mac="$MAC" --start-file="$go" || { fail "the NIC did not start"; show_logs "$n"; exit 1; }
start_iovtee_switch "$n" --vhost "$WORK/$n.v" --map phy0:0=vhost0 --mac "vhost0=$MAC" \
  --rx-ring 256
start_guest "$n-a" "$WORK/$n.v" --guest-mac="$MAC" --guest-role=check --guest-corrupt-canary
if wait_until 40 "the guest connected" guests_connected "$n" vhost0; then
  touch "$go"
  wait_report "$n" 30 || fail "no NIC report"
  wait_until 10 "frames at the guest" json_ge "$WORK/$n-a.status.json" guest_rx 1000 ||
    fail "the guest got no frames"
  # A violation is written to the status at once (a killed guest keeps it).
  expect "$(jfield "$WORK/$n-a.status.json" canary_violations)" -eq 1 "status canary_violations"
else
  fail "the guest did not connect"
fi
stop_guest "$GUEST_PID" a || fail "the guest did not stop cleanly"
stop_switch_and_nic "$n" || fail "the switch or the NIC did not stop cleanly"
step "guest mode done"
expect_one_violation "$WORK/$n-a.json" "guest"
before=$fails
# In a subshell: its failure must not count against this test.
if ! (
  check_guest_report "$WORK/$n-a.json" "the damaged guest"
  [ "$fails" -gt "$before" ]
) >/dev/null; then
  fail "check_guest_report passed a guest with a damaged canary"
fi

# 2. The peer's own guest (pvp).
n=detect-pvp
start_peer "$n" pvp --size=64 --rate=10000 --duration=1 --warmup=0 --linger=15 \
  --guest-corrupt-canary || { fail "the peer did not start"; show_logs "$n"; exit 1; }
start_iovtee_switch "$n" --vhost "$WORK/$n.vhost" --map phy0:0=vhost0 --rx-ring 256
wait_report "$n" 60 || fail "no pvp report"
stop_switch_and_nic "$n" || fail "the switch or the peer did not stop cleanly"
step "pvp done"
expect_one_violation "$WORK/$n.json" "pvp guest"
expect "$(field "$n" corrupted)" -eq 0 "corrupted frames (the canary is outside the frame)"

rmdir /var/run/dpdk 2>/dev/null
echo "canary_detect_test: $fails failed check(s) ($((SECONDS - T0)) s)"
[ "$fails" = 0 ]
