#!/usr/bin/env bash
# libiovtee.so exports the C ABI and nothing else.
# Usage: symbols_test.sh LIBIOVTEE_SO IOVTEE_H C_HOST_BINARY
set -u
so=$1
header=$2
host=$3
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# Global dynamic symbols the library defines (upper-case nm types; the
# version node IOVTEE_1 shows as an absolute symbol). Local ones (lower
# case, e.g. TLS) are not visible to other objects.
mapfile -t defined < <(nm -D --defined-only "$so" | awk '$2 ~ /^[A-Z]$/ && $2 != "A" {print $3}')
[ ${#defined[@]} -gt 0 ] || fail "nm -D found no exported symbol in $so"
exported=()
for sym in "${defined[@]}"; do
  name=${sym%%@*}
  case "$sym" in
    iovtee_*@@IOVTEE_1) exported+=("$name") ;;
    *) fail "exported symbol outside the C ABI (or unversioned): $sym" ;;
  esac
done
nm -D --defined-only "$so" | awk '$2 == "A" {print $3}' | grep -qx 'IOVTEE_1' ||
  fail "no IOVTEE_1 version node"

# The functions iovtee.h declares: lines that start with a type and name an
# iovtee_ function (comments start with "/*" or " *").
mapfile -t declared < <(grep -E '^[a-z][a-z0-9_ ]*\*? ?iovtee_[a-z0-9_]+\(' "$header" |
  grep -oE 'iovtee_[a-z0-9_]+\(' | tr -d '(' | sort -u)
[ ${#declared[@]} -ge 10 ] || fail "found only ${#declared[@]} declarations in $header"
diff <(printf '%s\n' "${declared[@]}") <(printf '%s\n' "${exported[@]}" | sort -u) ||
  fail "the exported functions (>) differ from the declared ones (<)"

soname=$(readelf -d "$so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = "libiovtee.so" ] || fail "SONAME is '$soname'"

# The C host uses the library's code through the .so only.
if nm "$host" | grep -E ' [TtWw] iovtee_' >/dev/null; then
  fail "the C host has iovtee code linked in statically"
fi
readelf -d "$host" | grep -q 'NEEDED.*\[libiovtee.so\]' || fail "the C host does not link libiovtee.so"

echo "symbols_test: ${#exported[@]} symbols exported, $fails failure(s)"
[ $fails = 0 ]
