#!/usr/bin/env bash
# simnic_peer against a stock switch: Debian's dpdk-testpmd with the net_simnic
# plugin, io forwarding on one core.
#  - pvp: testpmd forwards between a net_simnic port (whose device is the
#    peer's soft NIC) and a net_vhost server port (the peer's virtio-user guest
#    connects to it and echoes with MACs swapped); 64 B, 1518 B and IMIX at a
#    moderate rate.
#  - nic-loop: testpmd loops its one net_simnic port (--port-topology=loop):
#    the peer alone; 64 B, and 1518 B with the payload of one frame in 16
#    read (--verify=sample:16, as benchmarks do).
# Each run must complete with every frame back once, intact, in order, no
# IOMMU fault and no drop anywhere. Order: the peer listens on its NIC socket
# before testpmd starts (the PMD connects at probe); the peer hot-plugs its
# guest once testpmd's vhost socket exists. Processes are stopped by PID with
# deadlines; nothing is left under /var/run/dpdk.
#
# Loss is a scheduling matter as much as a correctness one: on a machine where
# other work takes the cores, a starved process drops frames (and the
# generator falls behind its rate) no matter how right it is. So a run whose
# processes did not get most of their cores (the peer < 80% of a core, or
# testpmd < 80% of its forwarding core) and lost frames or sent fewer than a
# quarter of them is retried (two retries for the whole test); if every
# attempt was starved, the loss check is reported as not judged. Integrity
# (corruption, order, duplicates, IOMMU faults, clean start and stop) is judged
# on every attempt.
#
# Usage: simnic_peer_test.sh SIMNIC_PEER LIBRTE_NET_SIMNIC_SO
set -uo pipefail

# shellcheck disable=SC2034  # used by peer_lib.sh
PEER=$(realpath "$1")
# shellcheck disable=SC2034
PLUGIN=$(realpath "$2")
lib=${TEST_SRCDIR:-/nonexistent}/iovtee/test/softnic/peer/peer_lib.sh
[ -f "$lib" ] || lib=$(dirname "$0")/peer_lib.sh
# shellcheck source=test/softnic/peer/peer_lib.sh
. "$lib"
peer_lib_init || exit 1

RATE=${IOVTEE_PEER_TEST_RATE:-200000}
DURATION=${IOVTEE_PEER_TEST_DURATION:-3}

failures=0
not_judged=0
retries=2  # for the whole test, so a busy machine cannot stretch it much

# run_once NAME MODE [peer options...]: one run; sets RESULT to pass, fail or
# starved-loss.
run_once() {
  local name=$1 mode=$2
  shift 2
  RESULT=fail
  start_peer "$name" "$mode" --rate "$RATE" --duration "$DURATION" --warmup 0.5 \
    --setup-timeout 20 --linger 20 "$@" || return
  start_switch "$name" "$mode"
  local t0 c0
  t0=$(date +%s.%N)
  c0=$(cpu_ticks "$SWITCH_PID")
  wait_report "$name" 60
  local have_report=$?
  local c1 t1
  c1=$(cpu_ticks "$SWITCH_PID")
  t1=$(date +%s.%N)
  stop_all "$name"
  local stopped=$?
  [ -e "$WORK/$name.nic" ] && { echo "  the peer left its NIC socket behind"; stopped=1; }
  if [ "$have_report" -ne 0 ]; then
    tail -n 30 "$LOGS/$name.peer.log" | sed 's/^/  peer: /'
    tail -n 30 "$LOGS/$name.testpmd.log" | sed 's/\x1b\[[0-9;]*[A-Za-z]//g; s/^/  testpmd: /'
    return
  fi
  # testpmd's share of a core while the peer ran (its forwarding lcore spins;
  # main lcore and vhost thread sleep).
  local switch_share
  switch_share=$(awk -v c0="$c0" -v c1="$c1" -v t0="$t0" -v t1="$t1" -v hz="$(getconf CLK_TCK)" \
    'BEGIN { printf "%.2f", (c1 - c0) / hz / (t1 - t0) }')
  local v ok=1 integrity=1
  printf '  sent %s received %s lost %s corrupted %s reordered %s duplicates %s foreign %s\n' \
    "$(field "$name" sent)" "$(field "$name" received)" "$(field "$name" lost)" \
    "$(field "$name" corrupted)" "$(field "$name" reordered)" "$(field "$name" duplicates)" \
    "$(field "$name" foreign)"
  awk -v mpps="$(field "$name" rx_mpps)" -v p50="$(field "$name" p50_ns)" \
    -v p99="$(field "$name" p99_ns)" -v max="$(field "$name" max_ns)" \
    -v peer="$(field "$name" cpu_share)" -v sw="$switch_share" \
    'BEGIN { printf "  %.3f Mpps back, latency p50 %.1f us p99 %.1f us max %.1f us; cpu share: peer %.2f, testpmd %.2f\n", mpps, p50 / 1e3, p99 / 1e3, max / 1e3, peer, sw }'
  printf '  nic rx missed %s, iommu faults %s; guest rx %s tx %s drops %s\n' \
    "$(field "$name" nic_rx_missed)" "$(field "$name" iommu_faults)" \
    "$(field "$name" guest_rx)" "$(field "$name" guest_tx)" "$(field "$name" guest_drops)"
  local starved=0
  awk -v p="$(field "$name" cpu_share)" -v s="$switch_share" 'BEGIN { exit !(p < 0.8 || s < 0.8) }' &&
    starved=1
  [ "$(field "$name" completed)" = true ] || { echo "  not completed: $(field "$name" error)"; ok=0; }
  for v in corrupted reordered duplicates foreign iommu_faults rx_oversize ring_errors \
    control_errors nic_tx_errors; do
    [ "$(field "$name" $v)" = 0 ] || { echo "  $v = $(field "$name" $v), want 0"; integrity=0; }
  done
  # The payload of every frame (--verify=all), or of the first and every Nth
  # (--verify=sample:N).
  local verify every read want
  verify=$(field "$name" verify)
  every=1
  [[ "$verify" == sample:* ]] && every=${verify#sample:}
  read=$(field "$name" payload_checked)
  want=$((($(field "$name" received) + every - 1) / every))
  echo "  verify $verify: payload read of $read frames"
  [ "$read" = "$want" ] || { echo "  payload_checked = $read, want $want"; integrity=0; }
  # The generator must have run near its rate (the credit it may lose to
  # preemption is bounded), or "no loss" means little.
  local sent min
  sent=$(field "$name" sent)
  min=$(awk -v r="$RATE" -v d="$DURATION" 'BEGIN { printf "%d", r * d / 4 }')
  local enough=1
  [ "${sent:-0}" -ge "$min" ] || { echo "  sent $sent frames, fewer than $min"; enough=0; }
  if [ "$mode" = pvp ]; then
    [ "$(field "$name" guest_present)" = true ] || { echo "  no guest"; ok=0; }
    # No byte outside a buffer the guest posted was written (guest_canary.h).
    printf '  guest canaries: %s buffers checked on receive, %s pool objects at exit, %s violations\n' \
      "$(field "$name" canary_checked)" "$(field "$name" canary_pool_checked)" \
      "$(field "$name" canary_violations)"
    [ "$(field "$name" canary_violations)" = 0 ] || { echo "  canary violations"; integrity=0; }
    [ "$(field "$name" canary_pool_check_done)" = true ] ||
      { echo "  the guest's pool was not checked at exit"; integrity=0; }
  fi
  grep -q 'attached to' "$LOGS/$name.testpmd.log" || { echo "  testpmd did not probe net_simnic"; ok=0; }
  if grep -E 'net_simnic: .*(did not|leaked|cannot)' "$LOGS/$name.testpmd.log"; then
    echo "  driver errors in testpmd's log"
    ok=0
  fi
  [ "$stopped" -eq 0 ] || ok=0
  if [ "$ok" -ne 1 ] || [ "$integrity" -ne 1 ]; then
    return
  fi
  local lossless=$enough
  # Measured frames only: warm-up frames may be dropped while testpmd starts.
  for v in lost guest_drops; do
    [ "$(field "$name" $v)" = 0 ] || { echo "  $v = $(field "$name" $v), want 0"; lossless=0; }
  done
  [ "$(field "$name" received)" = "$sent" ] || lossless=0
  if [ "$lossless" -eq 1 ]; then
    RESULT=pass
  elif [ "$starved" -eq 1 ]; then
    RESULT="starved-loss"
  fi
}

# run_case NAME MODE [peer options...]
run_case() {
  local name=$1 mode=$2 attempt
  shift 2
  attempt=1
  while :; do
    echo "=== $name ($mode $*), attempt $attempt"
    local t=$SECONDS
    run_once "$name-$attempt" "$mode" "$@"
    echo "  -> $RESULT ($((SECONDS - t)) s)"
    case $RESULT in
      pass) return ;;
      fail)
        failures=$((failures + 1))
        return
        ;;
    esac
    [ "$retries" -gt 0 ] || break
    retries=$((retries - 1))
    attempt=$((attempt + 1))
    echo "  frames lost (or too few sent) while a process was starved of CPU: retrying"
  done
  echo "  loss NOT JUDGED: the processes were starved of CPU (other load on the machine)"
  not_judged=$((not_judged + 1))
}

run_case pvp-64 pvp --size 64 --guest-queue-size 4096
run_case pvp-1518 pvp --size 1518 --guest-queue-size 4096
run_case pvp-imix pvp --imix --guest-queue-size 4096
run_case loop-64 nic-loop --size 64
# Benchmarks read one payload in N; everything else is still checked.
run_case loop-1518-sampled nic-loop --size 1518 --verify=sample:16

rmdir /var/run/dpdk 2>/dev/null
if [ "$failures" -ne 0 ]; then
  echo "FAIL: $failures case(s) failed"
  exit 1
fi
[ "$not_judged" -eq 0 ] || echo "($not_judged case(s) with loss not judged: machine busy)"
echo "PASS"
