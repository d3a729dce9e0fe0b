#!/bin/busybox sh
# shellcheck shell=dash
# /init of the test guest: mounts, loads the virtio-net modules in
# dependency order (no modules.dep: busybox insmod), then serves commands on
# the serial console until powered off.
#
# Console protocol (vm_lib.py is the other side), one line each way:
#   guest: @@READY <uptime>                 booted, modules loaded
#   host:  <id> <shell command>             run it (a subshell, stdin /dev/null)
#   guest: @@O <id> <line>                  each line of its stdout+stderr
#   guest: @@DONE <id> <exit status>
# Kernel messages (loglevel 4: warnings and worse) come on the same console
# without the @@ prefix; the host keeps them and judges them.
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
exec </dev/console >/dev/console 2>&1
stty -echo 2>/dev/null

while read -r m; do
  insmod "/lib/modules/$m.ko" || echo "@@ERROR insmod $m failed"
done </lib/modules/order
ip link set lo up
echo "@@READY $(cut -d' ' -f1 /proc/uptime)"

while read -r id cmd; do
  [ -n "$id" ] || continue
  (eval "$cmd") </dev/null >/tmp/.out 2>&1
  rc=$?
  sed "s/^/@@O $id /" /tmp/.out
  echo "@@DONE $id $rc"
done
echo "@@ERROR console closed"
poweroff -f
