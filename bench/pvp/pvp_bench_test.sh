#!/bin/bash
# Runs pvp_bench_test.py against the recorded 4 KiB run in docs/results.
set -euo pipefail
here=$(dirname "$(realpath "$0")")
dir=${TEST_SRCDIR:-}/${TEST_WORKSPACE:-}
[ -f "$dir/bench/pvp/pvp_bench_test.py" ] || dir=$here/../..
export PVP_RECORDED=$dir/docs/results/pvp-4k.json
exec python3 "$dir/bench/pvp/pvp_bench_test.py" -v
