#!/usr/bin/env bash
# One scenario of vm_test.py, as Bazel runs it (BUILD.bazel passes the paths).
# Usage: vm_test.sh SCENARIO VM_TEST_PY SIMNIC_PEER IOVTEE_SWITCH BUILD_GUEST_SH INIT_SH VMCHECK
set -u
if ! command -v qemu-system-x86_64 >/dev/null; then
  echo "FAIL: qemu-system-x86_64 not found (Debian package qemu-system-x86; scripts/setup.sh)" >&2
  exit 1
fi
exec /usr/bin/python3 -B "$2" "$1" --peer "$3" --switch "$4" --builder "$5" --init "$6" \
  --vmcheck "$7"
