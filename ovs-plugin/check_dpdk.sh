#!/usr/bin/env bash
# Runs Open vSwitch's own DPDK system tests (make check-dpdk,
# tests/system-dpdk.at) on a stock build and on the iovtee build of the same
# source (ovs-plugin/build.sh), and prints, per test, the result of each.
#
# Usage: ovs-plugin/check_dpdk.sh --libiovtee PATH/libiovtee.so [--hugepages N]
#                                 [--tests LIST]
#   --hugepages N  2 MiB pages to reserve when none are (default 1024); the
#                  tests need hugetlbfs mounted and free hugepages. They are
#                  released and the mount removed afterwards.
#   --tests LIST   autotest test numbers/ranges (default: every test that
#                  does not kill processes by name, see below)
# Root only (network namespaces, hugepages). Each build runs the suite twice:
# as shipped, and with --no-pci added to its dpdk-extra (EAL otherwise probes
# this machine's own virtio NIC, bound to the kernel, and logs ERR lines that
# fail every test that starts OVS); SUITES="as-is" or "no-pci" picks one.
# Results go to CACHE/check-dpdk-<stock|iovtee-HASH>-<suite>.log and the
# summary to stdout.
#
# Left out by default: the tests that start dpdk-testpmd and end it with
# 'pkill -f -x -9 "tail -f /dev/null"' (ping vhost-user ports, ping
# vhost-user-client ports, MTU increase/decrease/upper/lower bound vport
# port): a kill by process name could hit processes this script does not own.
# The PHY tests skip themselves here (no VFIO/igb_uio NIC); the MFEX tests
# skip without AVX512 and scapy.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
libiovtee=""
pages=1024
tests=""

die() {
  echo "check_dpdk.sh: $*" >&2
  exit 1
}

while [ $# -gt 0 ]; do
  case "$1" in
    --libiovtee) libiovtee="$2"; shift ;;
    --hugepages) pages="$2"; shift ;;
    --tests) tests="$2"; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (--help)" ;;
  esac
  shift
done
[ -n "$libiovtee" ] || die "--libiovtee PATH is required"
[ "$(id -u)" -eq 0 ] || die "must run as root"

stock_dir=$("$here/build.sh" --stock | sed -n 's/^OVS_BUILD=//p')
plugin_dir=$("$here/build.sh" --libiovtee "$libiovtee" | sed -n 's/^OVS_BUILD=//p')
[ -d "$stock_dir" ] && [ -d "$plugin_dir" ] || die "builds failed"

# The test list, by name (numbers depend on the testsuite's includes).
list=$("$stock_dir/src/tests/system-dpdk-testsuite" --list 2>/dev/null || true)
if [ -z "$list" ]; then
  make -C "$stock_dir/src" tests/system-dpdk-testsuite >/dev/null
  list=$("$stock_dir/src/tests/system-dpdk-testsuite" --list)
fi
if [ -z "$tests" ]; then
  tests=$(awk '/^ *[0-9]+: / && !/ping vhost-user|MTU .* vport port/ {sub(":", "", $1); printf "%s ", $1}' <<<"$list")
fi

# Hugepages for the run, undone at exit.
mounted=""
reserved=0
# OVS's tests run EAL with the default file prefix: it leaves an empty
# /var/run/dpdk/rte, removed if it was not there before.
had_rte=0
[ -e /var/run/dpdk/rte ] && had_rte=1
cleanup() {
  [ -n "$mounted" ] && umount "$mounted" && rmdir "$mounted"
  [ "$reserved" = 1 ] && echo 0 >/proc/sys/vm/nr_hugepages
  if [ "$had_rte" = 0 ]; then
    rmdir /var/run/dpdk/rte 2>/dev/null
    rmdir /var/run/dpdk 2>/dev/null
  fi
  return 0
}
trap cleanup EXIT
if [ "$(awk '/HugePages_Total/ {print $2}' /proc/meminfo)" = 0 ]; then
  echo "$pages" >/proc/sys/vm/nr_hugepages
  reserved=1
fi
if ! mount | grep -q hugetlbfs; then
  mounted=$(mktemp -d /tmp/iovtee-hugetlbfs.XXXXXX)
  mount -t hugetlbfs nodev "$mounted"
fi
grep -E 'HugePages_(Total|Free)' /proc/meminfo

# run KIND DIR SUITE: the testsuite as 'make check-dpdk' runs it (after
# 'make all'), one test at a time.
run() {
  local kind=$1 dir=$2 suite=$3 log
  log="$(dirname "$dir")/check-dpdk-$(basename "$dir" | sed 's/^ovs-[^-]*-[^-]*-//')-$suite.log"
  echo "== $kind ($suite): tests/system-dpdk-testsuite in $dir (tests $tests)"
  make -C "$dir/src" all tests/system-dpdk-testsuite >/dev/null 2>&1 || die "make in $dir failed"
  local script=tests/system-dpdk-testsuite
  if [ "$suite" = no-pci ]; then
    # This machine's own NIC (virtio, bound to the kernel) is probed by EAL,
    # which logs ERR lines the tests do not allow: add --no-pci to the
    # suite's dpdk-extra, the same on both builds.
    sed "s/other_config:dpdk-extra=--log-level=pmd\.\*:error/&' --no-pci'/" \
      "$dir/src/tests/system-dpdk-testsuite" >"$dir/src/tests/system-dpdk-testsuite.no-pci"
    script=tests/system-dpdk-testsuite.no-pci
  fi
  # Through a short symlink: the tests put vhost-user sockets in their run
  # directory, and a path past 107 bytes is truncated by the socket API
  # (the cache's build directories are long).
  local link
  link=$(mktemp -u /tmp/ovsck.XXXXXX)
  ln -s "$dir/src" "$link"
  # shellcheck disable=SC2086
  (cd "$link" && /bin/bash "$script" -C tests \
    AUTOTEST_PATH='utilities:vswitchd:ovsdb:vtep:tests:ipsec::' $tests -j1) >"$log" 2>&1 || true
  rm -f "$link"
  cp "$dir/src/tests/system-dpdk-testsuite.log" "$log.testsuite" 2>/dev/null || true
  grep -E '^ *[0-9]+: .*(ok|skipped|FAILED|expected failure)' "$log" | sed "s/^/  $kind /"
  grep -E '^[0-9]+ tests? (were|was)|^ERROR:|^All [0-9]+ tests|tests? (were )?skipped|failed' "$log" |
    sed "s/^/  $kind /" | tail -n 4
}
for suite in ${SUITES:-as-is no-pci}; do
  run stock "$stock_dir" "$suite"
  run iovtee "$plugin_dir" "$suite"
done
