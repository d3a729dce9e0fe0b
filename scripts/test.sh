#!/usr/bin/env bash
# Runs the whole iovtee test suite on a fresh Debian 12 machine: installs what
# is missing, builds, runs every test, then the unit tests again under
# ASan+UBSan, then each fuzz test under libFuzzer for a while, and ends with
# the line "N passed, N failed".
# Exit status: 0 when every test passed and everything built, 1 otherwise.
#
# Environment:
#   IOVTEE_HEAVY=1     also run the heavy suites (tag "heavy": long VM/OVS/soak runs)
#   IOVTEE_NO_ASAN=1   skip the sanitizer pass (local iteration only)
#   IOVTEE_NO_FUZZ=1   skip the libFuzzer pass
#   IOVTEE_FUZZ_SECONDS  how long each fuzz test runs libFuzzer (default 30)
#   IOVTEE_TEST_ARGS   extra arguments for every bazel test invocation
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

scripts/setup.sh --quiet || { echo "0 passed, 1 failed"; exit 1; }

out="$top/out/test"
rm -rf "$out"
mkdir -p "$out"

filters="-heavy"
[ "${IOVTEE_HEAVY:-0}" = "1" ] && filters=""
# shellcheck disable=SC2206
extra=(${IOVTEE_TEST_ARGS:-})

bep=()
run() {  # run NAME bazel-args...
  local name=$1
  shift
  echo "=== bazel test ($name) ==="
  bazel test --keep_going --build_event_json_file="$out/bep-$name.json" "$@" "${extra[@]}" -- //...
  echo "$?" >"$out/rc-$name"
  bep+=("$out/bep-$name.json")
}

run main --test_tag_filters="$filters"
if [ "${IOVTEE_NO_ASAN:-0}" != "1" ]; then
  run asan --config=asan --build_tests_only --test_tag_filters=unit
fi
# The fuzz tests under libFuzzer (clang, ASan+UBSan; bazel/fuzz.bzl). A crash
# fails the test; its reproducer is in bazel-testlogs/<test>/test.outputs/.
if [ "${IOVTEE_NO_FUZZ:-0}" != "1" ]; then
  fuzz_seconds=${IOVTEE_FUZZ_SECONDS:-30}
  run fuzz --config=fuzz --build_tests_only --test_tag_filters=fuzz \
    --test_env=IOVTEE_FUZZ_SECONDS="$fuzz_seconds" --test_timeout=$((fuzz_seconds * 2 + 120))
fi

# Nothing a test started may outlive the run: DPDK runtime dirs of our tests.
rm -rf /var/run/dpdk/iovtee-t-* 2>/dev/null
rmdir /var/run/dpdk 2>/dev/null

python3 scripts/test_summary.py "${bep[@]}"
