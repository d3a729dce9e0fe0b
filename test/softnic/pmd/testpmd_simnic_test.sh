#!/usr/bin/env bash
# dpdk-testpmd (Debian's, unmodified) forwards in io mode between two
# net_simnic ports, loaded as a plugin (-d librte_net_simnic.so). Their
# devices live in another process, device_host, which generates test frames on
# port 0's device and checks that every one arrives on port 1's device, intact
# and in order. Runs 64, 1518 and 9004 B frames (60, 1514 and 9000 bytes; the
# last with scatter). Every process is stopped by PID with a deadline, and no
# DPDK runtime directory is left behind.
#
# Usage: testpmd_simnic_test.sh DEVICE_HOST LIBRTE_NET_SIMNIC_SO PEER_LIB_SH
set -uo pipefail

host=$(realpath "$1")
plugin=$(realpath "$2")
testpmd=${IOVTEE_TESTPMD:-/usr/bin/dpdk-testpmd}
count=${IOVTEE_TESTPMD_FRAMES:-20000}

if [ ! -x "$testpmd" ]; then
  echo "FAIL: $testpmd not found (Debian package dpdk)"
  exit 1
fi

# Unix socket paths must stay short: a directory under /tmp, not TEST_TMPDIR.
work=$(mktemp -d /tmp/iovtee-tp.XXXXXX)
logs=${TEST_UNDECLARED_OUTPUTS_DIR:-$work}
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT

# wait_exit and stop: the process helpers the peer's tests use too.
# shellcheck source=/dev/null
source "$3"

failures=0
run_case() {  # frame_size window [testpmd options...]
  local size=$1 window=$2
  shift 2
  local prefix="iovtee-t-tp$$-$size"
  local result="$work/result-$size"
  local hostlog="$logs/device_host-$size.log" pmdlog="$logs/testpmd-$size.log"
  echo "=== frame size $size: $count frames, testpmd $*"

  "$host" --sock0="$work/s0-$size" --sock1="$work/s1-$size" --count="$count" \
    --frame_size="$size" --window="$window" --timeout_s=90 --result="$result" \
    >"$hostlog" 2>&1 &
  local hpid=$!
  pids+=("$hpid")

  "$testpmd" -l 0-1 --no-huge -m 512 --no-pci --no-shconf --file-prefix "$prefix" \
    -d "$plugin" \
    --vdev "net_simnic0,socket=$work/s0-$size" --vdev "net_simnic1,socket=$work/s1-$size" \
    --log-level=pmd.net.simnic:info \
    -- --forward-mode=io --auto-start --stats-period=1 --nb-cores=1 --rxq=1 --txq=1 \
    --rxd=1024 --txd=1024 --total-num-mbufs=16384 "$@" \
    </dev/null >"$pmdlog" 2>&1 &
  local tpid=$!
  pids+=("$tpid")

  # The check ends with a result line; either process dying first is a failure.
  local deadline=$((SECONDS + 120))
  while [ ! -f "$result" ] && kill -0 "$hpid" 2>/dev/null && kill -0 "$tpid" 2>/dev/null &&
    [ "$SECONDS" -lt "$deadline" ]; do
    sleep 0.2
  done

  local ok=1
  if [ -f "$result" ]; then
    sed 's/^/  /' "$result"
    grep -q '^PASS' "$result" || ok=0
  else
    echo "  no result from device_host (testpmd or device_host died, or timeout)"
    ok=0
  fi
  local trc hrc
  stop "$tpid" testpmd 30
  trc=$?
  # device_host lingers until both ports said bye, then exits.
  if ! wait_exit "$hpid" 40; then
    echo "  device_host (pid $hpid) still running: killed"
    kill -KILL "$hpid" 2>/dev/null
  fi
  wait "$hpid"
  hrc=$?
  echo "  testpmd exit $trc, device_host exit $hrc"
  [ "$trc" -eq 0 ] && [ "$hrc" -eq 0 ] || ok=0

  # The driver must have attached both ports and closed them cleanly.
  if [ "$(grep -c 'attached to' "$pmdlog")" -ne 2 ]; then
    echo "  testpmd did not probe both net_simnic ports"
    ok=0
  fi
  if grep -E 'net_simnic: .*(did not|leaked|cannot)' "$pmdlog"; then
    echo "  driver errors in testpmd's log"
    ok=0
  fi
  # testpmd leaves its runtime directory (the multi-process socket's) even
  # with --no-shconf; it is ours to remove, by its unique prefix.
  if [ -e "/var/run/dpdk/$prefix" ]; then
    echo "  removing testpmd's runtime directory: $(ls "/var/run/dpdk/$prefix" | tr '\n' ' ')"
    rm -rf "/var/run/dpdk/$prefix"
  fi
  if [ "$ok" -ne 1 ]; then
    failures=$((failures + 1))
    echo "  --- testpmd log (tail) ---"
    tail -n 40 "$pmdlog" | sed 's/\x1b\[[0-9;]*[A-Za-z]//g; s/^/  /'
    echo "  --- device_host log (tail) ---"
    tail -n 20 "$hostlog" | sed 's/^/  /'
  fi
}

run_case 64 256
run_case 1518 256
# 9000 bytes in five 2 KiB mbufs: a smaller window keeps the Tx ring from
# filling (testpmd's io mode drops what the ring does not take).
run_case 9004 64 --enable-scatter --max-pkt-len=9018

rmdir /var/run/dpdk 2>/dev/null
if [ "$failures" -ne 0 ]; then
  echo "FAIL: $failures case(s) failed"
  exit 1
fi
echo "PASS"
