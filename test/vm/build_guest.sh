#!/usr/bin/env bash
# Builds (once) the test guest from Debian packages and prints the directory
# holding it:
#   vmlinux          the kernel of linux-image-amd64's current package,
#                    decompressed (QEMU boots it directly, PVH)
#   base.cpio.gz     initramfs base: busybox (busybox-static), the virtio
#                    and virtio-net modules with their dependencies, iperf3
#                    with its libraries (Debian's, from their packages)
#   modules.order    the modules to insmod, in dependency order
#   versions         the packages and versions it was built from
# The test adds its own init and checker as a second cpio (the kernel
# unpacks concatenated archives in order).
#
# Nothing is installed: packages are fetched with `apt-get download` and
# unpacked with `dpkg -x`. The cache directory is keyed by every package
# version and the layout version below, so a new Debian kernel (or busybox,
# iperf3) gives a new directory and an old one is never reused by mistake.
# Without network or apt metadata, the newest complete build is used.
#
# Cache: $IOVTEE_VM_CACHE, else /var/cache/iovtee/vm (root), else
# $HOME/.cache/iovtee/vm. Override the kernel with IOVTEE_VM_KERNEL_PKG (e.g.
# linux-image-6.1.0-56-amd64).
#
# Usage: build_guest.sh [--print-key]
set -euo pipefail

LAYOUT=2  # bump when what goes into the directory changes
# virtio-net over PCI and everything it needs; the order is computed from the
# modules' own "depends=" (no modules.dep in an unpacked package).
ROOT_MODULES=(virtio_pci virtio_net)
# Userland packages unpacked into the image (iperf3 and its libraries).
USER_PKGS=(busybox-static iperf3 libiperf0 libsctp1 libssl3 libc6)
PYTHON=/usr/bin/python3

log() { echo "build_guest: $*" >&2; }
die() { log "$*"; exit 1; }

cache_root() {
  if [ -n "${IOVTEE_VM_CACHE:-}" ]; then
    echo "$IOVTEE_VM_CACHE"
  elif [ "$(id -u)" = 0 ]; then
    echo /var/cache/iovtee/vm
  else
    echo "${HOME:-/tmp}/.cache/iovtee/vm"
  fi
}

# candidate_version PKG: the version apt would install.
candidate_version() {
  apt-cache policy "$1" 2>/dev/null | sed -n 's/^ *Candidate: *//p' | grep -v '(none)' | head -n 1
}

# The concrete kernel package behind linux-image-amd64.
kernel_package() {
  if [ -n "${IOVTEE_VM_KERNEL_PKG:-}" ]; then
    echo "$IOVTEE_VM_KERNEL_PKG"
    return
  fi
  apt-cache depends linux-image-amd64 2>/dev/null |
    sed -n 's/^ *Depends: *\(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -n 1
}

CACHE=$(cache_root)
mkdir -p "$CACHE"

# The key: every package and its version.
key=""
kpkg=$(kernel_package || true)
declare -A VERSION=()
if [ -n "$kpkg" ]; then
  for p in "$kpkg" "${USER_PKGS[@]}"; do
    v=$(candidate_version "$p" || true)
    [ -n "$v" ] || { key=""; break; }
    VERSION[$p]=$v
    key+="${p}=${v};"
  done
fi
if [ -z "$key" ]; then
  # No apt metadata (offline): the newest complete build, if any.
  newest=$(find "$CACHE" -mindepth 2 -maxdepth 2 -name complete -printf '%T@ %h\n' 2>/dev/null |
    sort -rn | head -n 1 | cut -d' ' -f2-)
  [ -n "$newest" ] || die "apt-cache knows no linux-image-amd64 (run apt-get update) and $CACHE holds no build"
  log "no apt metadata: using $newest"
  echo "$newest"
  exit 0
fi
key+="layout=$LAYOUT"
short=$(printf '%s' "$key" | sha256sum | cut -c1-12)
DIR="$CACHE/${kpkg#linux-image-}-${VERSION[$kpkg]}-$short"
if [ "${1:-}" = --print-key ]; then
  echo "$key"
  exit 0
fi
if [ -f "$DIR/complete" ]; then
  echo "$DIR"
  exit 0
fi

# One builder at a time; a second one waits and then finds the result.
exec 9>"$CACHE/.lock"
flock -w 600 9 || die "another build holds $CACHE/.lock"
if [ -f "$DIR/complete" ]; then
  echo "$DIR"
  exit 0
fi

log "building $DIR ($key)"
WORK=$(mktemp -d "$CACHE/.build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/debs" "$WORK/x"
(
  cd "$WORK/debs"
  pins=()
  for p in "$kpkg" "${USER_PKGS[@]}"; do pins+=("$p=${VERSION[$p]}"); done
  # The download runs as the caller (no _apt sandbox for a private dir).
  apt-get download -q -o APT::Sandbox::User=root "${pins[@]}" >&2
) || die "apt-get download failed"
for deb in "$WORK"/debs/*.deb; do dpkg -x "$deb" "$WORK/x"; done
X=$WORK/x
kver=${kpkg#linux-image-}

# The kernel: the ELF inside the bzImage, found by its compression magic.
"$PYTHON" - "$X/boot/vmlinuz-$kver" "$WORK/vmlinux" <<'PY' || die "cannot decompress the kernel"
import gzip, lzma, sys, zlib
data = open(sys.argv[1], "rb").read()
for magic, kind in ((b"\xfd7zXZ\x00", "xz"), (b"\x1f\x8b\x08", "gzip")):
    at = data.find(magic)
    while at >= 0:
        try:
            if kind == "xz":
                out = lzma.LZMADecompressor().decompress(data[at:])
            else:
                out = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data[at:])
        except (lzma.LZMAError, zlib.error):
            out = b""
        if out[:4] == b"\x7fELF":
            open(sys.argv[2], "wb").write(out)
            sys.exit(0)
        at = data.find(magic, at + 1)
sys.exit("no xz or gzip ELF payload found")
PY

# Modules: the closure of ROOT_MODULES over "depends=", dependencies first.
"$PYTHON" - "$X/lib/modules/$kver" "$WORK/modules.order" "${ROOT_MODULES[@]}" <<'PY' ||
import os, re, sys
root, out, wanted = sys.argv[1], sys.argv[2], sys.argv[3:]
paths = {}
for d, _, files in os.walk(root):
    for f in files:
        if f.endswith(".ko"):
            paths[f[:-3].replace("-", "_")] = os.path.join(d, f)
order, seen = [], set()
def visit(name):
    if name in seen:
        return
    seen.add(name)
    if name not in paths:
        sys.exit("module %s not in the package" % name)
    m = re.search(rb"\0depends=([^\0]*)\0", open(paths[name], "rb").read())
    for dep in (m.group(1).decode().split(",") if m and m.group(1) else []):
        visit(dep.replace("-", "_"))
    order.append(name)
for w in wanted:
    visit(w)
with open(out, "w") as f:
    for name in order:
        f.write("%s %s\n" % (name, os.path.relpath(paths[name], root)))
PY
  die "cannot resolve the modules"

# The initramfs base.
R=$WORK/root
mkdir -p "$R/bin" "$R/sbin" "$R/usr/bin" "$R/usr/sbin" "$R/lib/modules" "$R/lib64" "$R/etc" "$R/proc" \
  "$R/sys" "$R/dev" "$R/tmp" "$R/run"
cp "$X/bin/busybox" "$R/bin/busybox"
while read -r name rel; do
  cp "$X/lib/modules/$kver/$rel" "$R/lib/modules/$name.ko"
  echo "$name" >>"$R/lib/modules/order"
done <"$WORK/modules.order"
# iperf3 and the libraries it needs, all from the unpacked packages.
cp "$X/usr/bin/iperf3" "$R/usr/bin/iperf3"
libdirs=("$X/lib/x86_64-linux-gnu" "$X/usr/lib/x86_64-linux-gnu")
pending=("$X/usr/bin/iperf3")
declare -A copied=()
while [ ${#pending[@]} -gt 0 ]; do
  elf=${pending[0]}
  pending=("${pending[@]:1}")
  for lib in $(readelf -d "$elf" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
    [ -n "${copied[$lib]:-}" ] && continue
    found=""
    for d in "${libdirs[@]}"; do [ -e "$d/$lib" ] && found="$d/$lib" && break; done
    [ -n "$found" ] || die "iperf3 needs $lib, which no unpacked package has"
    mkdir -p "$R/lib/x86_64-linux-gnu"
    cp -L "$found" "$R/lib/x86_64-linux-gnu/$lib"
    copied[$lib]=1
    pending+=("$found")
  done
done
interp=$(readelf -l "$X/usr/bin/iperf3" | sed -n 's/.*interpreter: \(.*\)\]/\1/p')
cp -L "$X$interp" "$R$interp" 2>/dev/null ||
  cp -L "$X/lib/x86_64-linux-gnu/$(basename "$interp")" "$R$interp"
printf 'root:x:0:0:root:/:/bin/sh\n' >"$R/etc/passwd"
printf 'root:x:0:\n' >"$R/etc/group"
printf '127.0.0.1 localhost\n' >"$R/etc/hosts"
(cd "$R" && find . | sort | "$X/bin/busybox" cpio -o -H newc 2>/dev/null) | gzip -1 >"$WORK/base.cpio.gz"

mkdir -p "$DIR"
mv "$WORK/vmlinux" "$WORK/base.cpio.gz" "$WORK/modules.order" "$DIR/"
cp "$X/bin/busybox" "$DIR/busybox"  # the host-side cpio writer for overlays
printf '%s\n' "$key" | tr ';' '\n' >"$DIR/versions"
echo "$kver" >"$DIR/kernel.release"
touch "$DIR/complete"
# Older builds are dead weight (each ~70 MB).
for d in "$CACHE"/*/; do
  d=${d%/}
  [ "$d" = "$DIR" ] || { [ -f "$d/complete" ] && rm -rf "$d"; }
done
log "done: $(du -sh "$DIR" | cut -f1) in $DIR"
echo "$DIR"
