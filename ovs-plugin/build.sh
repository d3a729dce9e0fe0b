#!/usr/bin/env bash
# Builds Open vSwitch from Debian's openvswitch-source (3.1) with DPDK, either
# with iovtee (the patch series in patches/, the glue in glue/, linked with
# libiovtee.so) or stock (the same source and flags, nothing applied).
#
# Usage:
#   ovs-plugin/build.sh --libiovtee PATH/libiovtee.so [options]   # plugin
#   ovs-plugin/build.sh --stock [options]                         # stock
# Options:
#   --include DIR   iovtee's public headers (default: include/ of this repo)
#   --cache DIR     where builds live (default $IOVTEE_OVS_CACHE, else
#                   /var/cache/iovtee/ovs)
#   --jobs N        make -jN (default: the number of CPUs)
#   --copy-to DIR   copy the programs tests need into DIR afterwards:
#                   ovs-vswitchd ovsdb-server ovsdb-tool ovs-vsctl ovs-appctl
#                   ovs-ofctl vswitch.ovsschema
#
# A build lives in CACHE/ovs-<debian version>-<iovtee-HASH|stock>/, HASH
# covering the series and this script: a change to either builds afresh (a
# cold build takes 5-10 minutes on 2 cores). The glue and iovtee.h are copied
# into the tree on every run when their content changed, and make rebuilds
# what depends on them (seconds). libiovtee.so is linked dynamically and
# copied into the build's lib/ on every run (ovs-vswitchd's RUNPATH points
# there; LD_LIBRARY_PATH takes precedence). The last line of output is
# "OVS_BUILD=<dir>"; the OVS tree is <dir>/src.
# No OVS source is kept in this repository: the tree is extracted from
# /usr/src/openvswitch/openvswitch.tar.gz (installed on demand).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
tarball=/usr/src/openvswitch/openvswitch.tar.gz

stock=0
libiovtee=""
include_dir="$repo/include"
cache="${IOVTEE_OVS_CACHE:-/var/cache/iovtee/ovs}"
jobs=$(nproc)
copy_to=""

die() {
  echo "build.sh: $*" >&2
  exit 1
}

while [ $# -gt 0 ]; do
  case "$1" in
    --stock) stock=1 ;;
    --libiovtee) libiovtee="$2"; shift ;;
    --include) include_dir="$2"; shift ;;
    --cache) cache="$2"; shift ;;
    --jobs) jobs="$2"; shift ;;
    --copy-to) copy_to="$2"; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (--help)" ;;
  esac
  shift
done

if [ "$stock" = 0 ]; then
  [ -n "$libiovtee" ] || die "--libiovtee PATH is required (or --stock)"
  [ -f "$libiovtee" ] || die "no such file: $libiovtee"
  [ -f "$include_dir/iovtee/iovtee.h" ] || die "no iovtee/iovtee.h under $include_dir"
  libiovtee=$(cd "$(dirname "$libiovtee")" && pwd)/$(basename "$libiovtee")
fi

# Debian packages the build needs; installed when missing (as scripts/setup.sh).
need=(openvswitch-source libdpdk-dev pkg-config gcc make patch)
[ "$stock" = 0 ] && need+=(autoconf automake libtool)
missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  echo "build.sh: installing ${missing[*]}"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null || die "apt-get install ${missing[*]} failed"
fi
[ -f "$tarball" ] || die "$tarball missing after installing openvswitch-source"

ovs_version=$(dpkg-query -W -f='${Version}' openvswitch-source)
series=()
if [ "$stock" = 1 ]; then
  kind=stock
else
  mapfile -t series < <(grep -v '^\s*\(#\|$\)' "$here/patches/series")
  hash=$( (
    cd "$here"
    for p in "${series[@]}"; do sha256sum "patches/$p"; done
    sha256sum build.sh
  ) | sha256sum | cut -c1-12)
  kind=iovtee-$hash
fi
dir="$cache/ovs-$ovs_version-$kind"
mkdir -p "$cache"

# One build of a directory at a time (Bazel and a shell may race).
exec 9>"$dir.lock"
flock 9

# install_if_changed SRC DST: copies only a changed file, so that make
# rebuilds only what depends on it.
install_if_changed() {
  cmp -s "$1" "$2" || cp "$1" "$2"
}

start=$(date +%s)
[ -f "$dir/.built" ] && touch "$dir/.configured"  # a build by an earlier build.sh
if [ ! -f "$dir/.configured" ]; then
  echo "build.sh: setting up Open vSwitch $ovs_version ($kind) in $dir"
  rm -rf "$dir"
  mkdir -p "$dir/src" "$dir/lib" "$dir/include/iovtee"
  tar -xzf "$tarball" -C "$dir/src" --strip-components=1
  configure_env=()
  if [ "$stock" = 0 ]; then
    cp "$here"/glue/netdev-dpdk-iovtee.c "$here"/glue/netdev-dpdk-iovtee.h "$dir/src/lib/"
    cp "$include_dir/iovtee/iovtee.h" "$dir/include/iovtee/"
    cp "$libiovtee" "$dir/lib/libiovtee.so"
    for p in "${series[@]}"; do
      patch -d "$dir/src" -p1 -s --no-backup-if-mismatch <"$here/patches/$p" ||
        die "patch $p does not apply to openvswitch-source $ovs_version"
    done
    # The series adds files to lib/automake.mk: regenerate Makefile.in (the
    # tarball's was made by the same automake 1.16.5 Debian 12 ships).
    (cd "$dir/src" && automake --foreign Makefile) >"$dir/automake.log" 2>&1 ||
      die "automake failed, see $dir/automake.log"
    configure_env=(CPPFLAGS="-I$dir/include" LIBS="-L$dir/lib -Wl,-rpath,$dir/lib -liovtee")
  fi
  (cd "$dir/src" && ./configure --with-dpdk=shared --enable-Werror "${configure_env[@]}") \
    >"$dir/configure.log" 2>&1 || die "configure failed, see $dir/configure.log"
  touch "$dir/.configured"
fi

if [ "$stock" = 0 ]; then
  install_if_changed "$here/glue/netdev-dpdk-iovtee.c" "$dir/src/lib/netdev-dpdk-iovtee.c"
  install_if_changed "$here/glue/netdev-dpdk-iovtee.h" "$dir/src/lib/netdev-dpdk-iovtee.h"
  install_if_changed "$include_dir/iovtee/iovtee.h" "$dir/include/iovtee/iovtee.h"
  # The newest library serves (linked dynamically, by the ABI in iovtee.h).
  cp "$libiovtee" "$dir/lib/libiovtee.so.tmp" && mv -f "$dir/lib/libiovtee.so.tmp" "$dir/lib/libiovtee.so"
fi
# Incremental: nothing to do when no input changed since the last build.
inputs=$( (cat "$dir/src/lib/netdev-dpdk-iovtee.c" "$dir/src/lib/netdev-dpdk-iovtee.h" \
  "$dir/include/iovtee/iovtee.h" 2>/dev/null || true) | sha256sum | cut -c1-16)
if [ "$(cat "$dir/.built" 2>/dev/null)" != "$inputs" ]; then
  rm -f "$dir/.built"
  nice make -C "$dir/src" -j"$jobs" >"$dir/make.log" 2>&1 ||
    die "make failed, see $dir/make.log (tail: $(tail -n 5 "$dir/make.log" | tr '\n' ' '))"
  echo "$inputs" >"$dir/.built"
  echo "build.sh: built in $(($(date +%s) - start)) s"
fi

if [ -n "$copy_to" ]; then
  mkdir -p "$copy_to"
  for f in vswitchd/ovs-vswitchd ovsdb/ovsdb-server ovsdb/ovsdb-tool utilities/ovs-vsctl \
    utilities/ovs-appctl utilities/ovs-ofctl vswitchd/vswitch.ovsschema; do
    cp -f "$dir/src/$f" "$copy_to/"
  done
fi

# Older builds of the plugin (other hashes) are removed; stock builds stay.
for old in "$cache"/ovs-*-iovtee-*; do
  [ -d "$old" ] || continue
  [ "$old" = "$dir" ] && continue
  (
    flock -n 8 || exit 0
    rm -rf "$old"
    rm -f "$old.lock"
  ) 8>"$old.lock"
done

echo "OVS_BUILD=$dir"
