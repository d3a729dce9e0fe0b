#!/usr/bin/env bash
# The main job: a short PVP run on the built-in soft NIC with a container guest
# (DPDK virtio-user), stock vs mapped, alternating, printing a table.
# Installs what is missing and builds first. No hugepages needed.
#
#   NIC (soft, device side in simnic_peer) -> iovtee-switch -> guest (macswap)
#     -> iovtee-switch -> NIC, every frame checked by simnic_peer.
#
# Usage: scripts/demo.sh [SECONDS_PER_RUN (default 5)] [SIZES (default "64 1518")]
# The full benchmark (more sizes, IMIX, plots) is issue #6's; this is its short form.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
scripts/setup.sh --quiet || exit 1
seconds=${1:-5}
sizes=${2:-"64 1518"}
echo "demo: building (optimised)..."
bazel build --config=opt //examples/iovtee-switch //test/softnic/peer:simnic_peer \
  >/tmp/iovtee-demo-build.log 2>&1 || { tail -20 /tmp/iovtee-demo-build.log; exit 1; }
bin=$(bazel info --config=opt bazel-bin 2>/dev/null)
PEER="$bin/test/softnic/peer/simnic_peer"
SWITCH="$bin/examples/iovtee-switch/iovtee-switch"
# shellcheck source=/dev/null
source test/softnic/peer/peer_lib.sh
PEER_CORE=0
peer_lib_init || exit 1

results=()
# run MODE SIZE ROUND
run() {
  local mode=$1 size=$2 round=$3 name="$1-$2-$3"
  start_peer "$name" pvp --size="$size" --rate=0 --duration="$seconds" --warmup=1 --linger=15 ||
    return 1
  local prefix="iovtee-demo$$-$name" mapargs=()
  _prefixes+=("$prefix")
  [ "$mode" = mapped ] && mapargs=(--map phy0:0=vhost0)
  "$SWITCH" -l 1 --no-huge -m 1024 --no-pci --no-shconf --no-telemetry --file-prefix "$prefix" \
    -- --phy "net_simnic0,socket=$WORK/$name.nic" --vhost "$WORK/$name.vhost" "${mapargs[@]}" \
    --rx-ring 256 --stats-file "$WORK/$name.sw.json" </dev/null >"$WORK/$name.switch.log" 2>&1 &
  SWITCH_PID=$!
  _pids+=("$SWITCH_PID")
  local t0 s0
  t0=$(date +%s.%N)
  s0=$(cpu_ticks "$SWITCH_PID")
  wait_report "$name" $((seconds + 60)) || return 1
  local s1 t1 share
  s1=$(cpu_ticks "$SWITCH_PID")
  t1=$(date +%s.%N)
  share=$(awk -v a="$s0" -v b="$s1" -v t0="$t0" -v t1="$t1" -v hz="$(getconf CLK_TCK)" \
    'BEGIN { printf "%.0f", 100 * (b - a) / hz / (t1 - t0) }')
  stop_all "$name" >/dev/null 2>&1
  local zc="-"
  [ "$mode" = mapped ] && zc=$(grep -o '"zero_copy":[0-9]*' "$WORK/$name.sw.json" | cut -d: -f2)
  results+=("$(printf '%-6s %5s %2s %9s %8s %8s %9s %6s%% %6s%% %10s' "$mode" "$size" "$round" \
    "$(field "$name" rx_mpps)" "$(field "$name" lost)" "$(field "$name" corrupted)" \
    "$(field "$name" p50_ns)" "$share" "$(awk -v s="$(field "$name" cpu_share)" \
    'BEGIN { printf "%.0f", 100 * s }')" "$zc")")
  echo "  $mode ${size} B round $round: $(field "$name" rx_mpps) Mpps back"
}

echo "demo: PVP, ${seconds}s per run, sizes: $sizes; stock and mapped alternate (A B A B)"
for size in $sizes; do
  for round in 1 2; do
    run stock "$size" "$round" || echo "  stock $size run $round failed (logs in $WORK)"
    run mapped "$size" "$round" || echo "  mapped $size run $round failed (logs in $WORK)"
  done
done
echo
printf '%-6s %5s %2s %9s %8s %8s %9s %7s %7s %10s\n' mode bytes rd "Mpps" lost corrupt "p50 ns" \
  "sw cpu" "tst cpu" "zero-copy"
for r in "${results[@]}"; do echo "$r"; done
cat <<'MSG'

Mpps: frames back at the tester per second. sw cpu / tst cpu: the share of a core the
switch and the tester got. On 2 cores the tester (generator + checker + guest on one core)
is the bottleneck today, so stock and mapped rates are close; see docs/performance.md.
MSG
