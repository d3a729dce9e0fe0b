#!/usr/bin/env bash
# The main job: a PVP run on the built-in soft NIC with a container guest,
# printing stock vs mapped results. Installs what is missing and builds first.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
scripts/setup.sh --quiet
bazel build --config=opt //...

if [ ! -x bazel-bin/bench/pvp ]; then
  cat <<'MSG'

iovtee demo: the PVP benchmark does not exist yet (issue #6, after the soft
NIC #4 and the Rx queue mapping #5). What exists was built above; running the
EAL smoke test (DPDK without hugepages) to show the toolchain works:
MSG
  bazel test --config=opt --test_output=all //test/common:eal_test 2>&1 | grep -E '^\[|PASSED|FAILED'
  exit 0
fi
exec bazel-bin/bench/pvp "$@"
