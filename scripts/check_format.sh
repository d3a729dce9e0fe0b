#!/usr/bin/env bash
# Fails when a C/C++ source differs from what clang-format makes of it.
# Under Bazel it checks the files given as data; by hand, run it from the
# repository root (or pass --fix to rewrite the files in place).
set -euo pipefail
cf=$(command -v clang-format || command -v clang-format-14 || true)
[ -n "$cf" ] || { echo "clang-format not found: run scripts/setup.sh" >&2; exit 1; }
# Under Bazel the runfiles hold only .clang-format: follow it back to the
# source tree (the test is tagged "external", so it is never cached).
if [ -n "${TEST_SRCDIR:-}" ] && [ -L .clang-format ]; then
  cd "$(dirname "$(readlink -f .clang-format)")"
fi
fix=0
[ "${1:-}" = "--fix" ] && fix=1
mapfile -t files < <(find src include test examples ovs-plugin bench \
  \( -name '*.h' -o -name '*.cc' -o -name '*.c' \) -not -path '*/corpus/*' 2>/dev/null | sort)
[ ${#files[@]} -gt 0 ] || { echo "no sources found" >&2; exit 1; }
if [ $fix = 1 ]; then
  "$cf" -i --style=file "${files[@]}"
  exit 0
fi
bad=0
for f in "${files[@]}"; do
  if ! "$cf" --style=file --dry-run --Werror "$f" >/dev/null 2>&1; then
    echo "needs formatting: $f (scripts/check_format.sh --fix)"
    bad=$((bad + 1))
  fi
done
echo "checked ${#files[@]} files, $bad need formatting"
[ $bad -eq 0 ]
