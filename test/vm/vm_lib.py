"""Processes of a VM scenario: simnic_peer (soft NIC), iovtee-switch, QEMU
guests, and the guest's serial-console protocol (guest/init.sh).

Every process is started here, logged to its own file, and stopped by its
PID (SIGINT, then SIGKILL after a grace period); whatever is left at exit is
killed the same way. Every wait is on a condition with a deadline. Socket
paths live in a fresh directory under /tmp (unix socket paths are short);
logs go to $TEST_UNDECLARED_OUTPUTS_DIR when Bazel runs the test.
"""

import atexit
import gzip
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time

PYTHON = "/usr/bin/python3"


class Failure(Exception):
    """A scenario cannot go on (set-up failed, a deadline passed)."""


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def wait_for(cond, timeout, what, interval=0.05):
    """Polls cond() until it returns a true value (returned) or the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise Failure(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class Checks:
    """Collects pass/fail lines. Integrity checks always count; loss checks
    (frames not delivered, each counted with a reason) count unless the run
    was starved of CPU by other load (see Starvation)."""

    def __init__(self):
        self.failed = []
        self.loss_failed = []

    def __call__(self, ok, what):
        print(f"  {'ok  ' if ok else 'FAIL'}: {what}", flush=True)
        if not ok:
            self.failed.append(what)
        return ok

    def loss(self, ok, what):
        print(f"  {'ok  ' if ok else 'LOSS'}: {what}", flush=True)
        if not ok:
            self.loss_failed.append(what)
        return ok


def cpu_ticks(pid):
    """utime + stime of a process (all its threads), in clock ticks."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return 0


def machine_ticks():
    """(busy, steal) clock ticks of the whole machine, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = v[:8]
    return user + nice + system + irq + softirq, steal


class Starvation:
    """The CPU other work took while the scenario's traffic ran: busy time
    of the machine not spent by the scenario's processes, plus time the
    hypervisor stole from this VM, in cores. A TCG guest that shares two
    cores with builds takes frames too slowly and the switch drops them
    (counted, no_buffer): such a run's loss says nothing about iovtee."""

    LIMIT = 0.3  # other work took more than this many cores: starved

    def __init__(self, pids):
        self.pids = pids
        self.other = 0.0
        self.steal = 0.0

    def start(self):
        self.t0 = time.monotonic()
        self.m0 = machine_ticks()
        self.p0 = sum(cpu_ticks(p) for p in self.pids)

    def stop(self):
        wall = max(time.monotonic() - self.t0, 1e-3)
        busy, steal = machine_ticks()
        ours = sum(cpu_ticks(p) for p in self.pids) - self.p0
        hz = os.sysconf("SC_CLK_TCK")
        self.other = max(0, (busy - self.m0[0]) - ours) / hz / wall
        self.steal = (steal - self.m0[1]) / hz / wall
        return self

    def starved(self):
        return self.other + self.steal > self.LIMIT

    def __str__(self):
        return f"other work took {self.other:.2f} cores, steal {self.steal:.2f} cores"


class Run:
    """One scenario's work directory, processes and cleanup."""

    def __init__(self, name, bins):
        self.name = name
        self.bins = bins
        self.work = tempfile.mkdtemp(prefix="iovtee-vm.", dir="/tmp")
        self.logs = os.environ.get("TEST_UNDECLARED_OUTPUTS_DIR", self.work)
        os.makedirs(self.logs, exist_ok=True)
        self.procs = []  # (label, Popen)
        self.prefixes = []
        self.keep = os.environ.get("IOVTEE_VM_KEEP") == "1"
        atexit.register(self.cleanup)

    def path(self, name):
        return os.path.join(self.work, name)

    def logpath(self, name):
        return os.path.join(self.logs, f"{self.name}.{name}")

    def spawn(self, label, argv, cpus=None, realtime=False, **kw):
        with open(self.logpath(f"{label}.cmd"), "w") as f:
            f.write(" ".join(argv) + "\n")
        if "stdout" not in kw:
            kw["stdout"] = open(self.logpath(f"{label}.log"), "w")
            kw["stderr"] = subprocess.STDOUT
        kw.setdefault("stdin", subprocess.DEVNULL)

        def pin():
            if cpus is not None:
                os.sched_setaffinity(0, cpus)
            if realtime:
                os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))

        p = subprocess.Popen(argv, preexec_fn=pin, **kw)
        self.procs.append((label, p))
        return p

    def stop(self, label, p, grace, sig=signal.SIGINT):
        """Signals p by PID; SIGKILL after `grace` s. Returns its exit status."""
        if p.poll() is None:
            try:
                os.kill(p.pid, sig)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                log(f"{label} (pid {p.pid}) did not exit within {grace} s: killed")
                os.kill(p.pid, signal.SIGKILL)
                p.wait()
        return p.returncode

    def cleanup(self):
        for label, p in self.procs:
            if p.poll() is None:
                try:
                    os.kill(p.pid, signal.SIGKILL)
                    p.wait(timeout=10)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    pass
        for prefix in self.prefixes:
            shutil.rmtree(f"/var/run/dpdk/{prefix}", ignore_errors=True)
        if not self.keep:
            shutil.rmtree(self.work, ignore_errors=True)
        self.procs = []


# ---- guest image ---------------------------------------------------------


class Image:
    """The kernel and initramfs: the cached Debian base (build_guest.sh) plus
    an overlay with this tree's init and vmcheck."""

    def __init__(self, run, builder, init_sh, vmcheck):
        out = subprocess.run(["bash", builder], stdout=subprocess.PIPE, check=False, text=True)
        if out.returncode != 0:
            raise Failure(f"{builder} failed (exit {out.returncode})")
        self.dir = out.stdout.strip().splitlines()[-1]
        self.kernel = os.path.join(self.dir, "vmlinux")
        with open(os.path.join(self.dir, "versions")) as f:
            self.versions = f.read().split()
        stage = run.path("overlay")
        os.makedirs(os.path.join(stage, "bin"))
        shutil.copy(init_sh, os.path.join(stage, "init"))
        shutil.copy(vmcheck, os.path.join(stage, "bin", "vmcheck"))
        for p in ("init", "bin/vmcheck"):
            os.chmod(os.path.join(stage, p), 0o755)
        files = "\n".join(["bin", "bin/vmcheck", "init"]) + "\n"
        cpio = subprocess.run([os.path.join(self.dir, "busybox"), "cpio", "-o", "-H", "newc"],
                              input=files.encode(), stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, cwd=stage, check=True).stdout
        self.initrd = run.path("initrd.img")
        # Two archives back to back: the kernel unpacks both, the overlay's
        # files last (gzip'd too: a raw archive after a compressed one would
        # need 4-byte alignment).
        with open(self.initrd, "wb") as f:
            with open(os.path.join(self.dir, "base.cpio.gz"), "rb") as base:
                shutil.copyfileobj(base, f)
            f.write(gzip.compress(cpio, compresslevel=1))


# ---- the guest -----------------------------------------------------------


class Guest:
    """A QEMU guest (TCG, PVH boot of the Debian kernel, memfd shared memory)
    with virtio-net-pci devices on vhost-user sockets, driven over its serial
    console."""

    KERNEL_ARGS = ("console=ttyS0 quiet loglevel=4 panic=-1 ipv6.disable=1 "
                   "tsc=reliable no_timer_check")

    def __init__(self, run, image, name, nics, mem_mb=256, cpus=None, smp=1):
        """nics: list of dicts: socket, mac, and optional queues, mrg_rxbuf
        (bool), packed (bool), mtu, rx_queue_size, guest_offloads (bool), csum (bool)."""
        self.run = run
        self.name = name
        self.nics = nics
        argv = ["qemu-system-x86_64", "-machine", "q35,accel=tcg", "-cpu", "max",
                "-smp", str(smp), "-m", f"{mem_mb}M",
                "-object", f"memory-backend-memfd,id=mem,size={mem_mb}M,share=on",
                "-numa", "node,memdev=mem",
                "-kernel", image.kernel, "-initrd", image.initrd,
                "-append", self.KERNEL_ARGS,
                "-nodefaults", "-no-user-config", "-display", "none", "-vga", "none",
                "-chardev", "stdio,id=con,signal=off", "-serial", "chardev:con"]
        for i, n in enumerate(nics):
            q = n.get("queues", 1)
            argv += ["-chardev", f"socket,id=vu{i},path={n['socket']}",
                     "-netdev", f"vhost-user,id=n{i},chardev=vu{i},queues={q}"]
            dev = f"virtio-net-pci,netdev=n{i},mac={n['mac']},vectors=0"
            if q > 1:
                dev += ",mq=on"
            if not n.get("mrg_rxbuf", True):
                dev += ",mrg_rxbuf=off"
            if n.get("packed", False):
                dev += ",packed=on"
            if n.get("mtu"):
                dev += f",host_mtu={n['mtu']}"
            if not n.get("guest_offloads", True):
                # No TSO/UFO/ECN towards the guest: Linux then posts single
                # small buffers instead of "big packets" page chains.
                dev += ",guest_tso4=off,guest_tso6=off,guest_ecn=off,guest_ufo=off"
            if not n.get("csum", True):
                # The guest computes its own checksums (no partial ones).
                dev += ",csum=off"
            if n.get("rx_queue_size"):
                dev += f",rx_queue_size={n['rx_queue_size']}"
            argv += ["-device", dev]
        self.console_log = open(run.logpath(f"{name}.console.log"), "w")
        self.proc = run.spawn(name, argv, cpus=cpus, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE,
                              stderr=open(run.logpath(f"{name}.qemu.log"), "w"))
        self.lock = threading.Condition()
        self.boots = 0
        self.boot_s = []
        self.outputs = {}
        self.done = {}
        self.kernel_lines = []  # (boot, line) of kernel messages after boot
        self.errors = []
        self.next_id = 1
        self.start = time.monotonic()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    _line = re.compile(r"@@(READY|O|DONE|ERROR) ?(.*)$")

    def _read(self):
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace").rstrip("\r\n")
            t = time.monotonic() - self.start
            self.console_log.write(f"{t:8.3f} {line}\n")
            self.console_log.flush()
            m = self._line.search(line)
            with self.lock:
                if not m:
                    if line.strip():
                        self.kernel_lines.append((self.boots, line))
                elif m.group(1) == "READY":
                    self.boots += 1
                    self.boot_s.append(t)
                elif m.group(1) == "O":
                    cid, _, rest = m.group(2).partition(" ")
                    self.outputs.setdefault(cid, []).append(rest)
                elif m.group(1) == "DONE":
                    cid, _, rc = m.group(2).partition(" ")
                    self.done[cid] = int(rc or "1")
                else:
                    self.errors.append(m.group(2))
                self.lock.notify_all()
        with self.lock:
            self.lock.notify_all()

    def _wait(self, cond, timeout, what):
        deadline = time.monotonic() + timeout
        with self.lock:
            while not cond():
                if self.proc.poll() is not None:
                    raise Failure(f"{self.name}: QEMU exited ({self.proc.returncode}) "
                                  f"while waiting for {what}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Failure(f"{self.name}: timed out after {timeout} s waiting for {what}")
                self.lock.wait(min(left, 0.5))

    def wait_ready(self, boots=1, timeout=90):
        self._wait(lambda: self.boots >= boots, timeout, f"boot {boots}")
        if self.errors:
            raise Failure(f"{self.name}: {self.errors}")
        return self.boot_s[boots - 1]

    def send(self, cmd):
        with self.lock:
            cid = str(self.next_id)
            self.next_id += 1
        self.console_log.write(f"         >>> {cid} {cmd}\n")
        self.proc.stdin.write(f"{cid} {cmd}\n".encode())
        self.proc.stdin.flush()
        return cid

    def sh(self, cmd, timeout=60, check=True):
        """Runs a shell command in the guest; returns its output lines."""
        cid = self.send(cmd)
        self._wait(lambda: cid in self.done, timeout, f"`{cmd}`")
        with self.lock:
            rc, out = self.done[cid], self.outputs.get(cid, [])
        if check and rc != 0:
            raise Failure(f"{self.name}: `{cmd}` exited {rc}: " + " | ".join(out[-10:]))
        return out

    def sh_rc(self, cmd, timeout=60):
        cid = self.send(cmd)
        self._wait(lambda: cid in self.done, timeout, f"`{cmd}`")
        with self.lock:
            return self.done[cid], self.outputs.get(cid, [])

    def kv(self, cmd, timeout=60):
        """A command's key=value output as a dict (numbers as int/float)."""
        return parse_kv(self.sh(cmd, timeout))

    def bg(self, tag, cmd):
        """Starts cmd in the background in the guest (output in /tmp/TAG.out)."""
        self.sh(f"{cmd} >/tmp/{tag}.out 2>&1 & echo $! >/tmp/{tag}.pid")

    def wait_file(self, path, timeout=30):
        """Until `path` exists in the guest (e.g. a checker's first status)."""
        polls = int(timeout * 10)
        rc, _ = self.sh_rc(f"i=0; while [ ! -e {path} ] && [ $i -lt {polls} ]; do sleep 0.1; "
                           f"i=$((i+1)); done; [ -e {path} ]", timeout=timeout + 30)
        if rc != 0:
            raise Failure(f"{self.name}: no {path} after {timeout} s")

    def bg_stop(self, tag, timeout=30, sig="INT"):
        """Signals the background command, waits for it, returns its output."""
        polls = int(timeout * 10)
        self.sh(f"p=$(cat /tmp/{tag}.pid); kill -{sig} $p 2>/dev/null; i=0; "
                f"while kill -0 $p 2>/dev/null && [ $i -lt {polls} ]; do sleep 0.1; i=$((i+1)); "
                f"done; ! kill -0 $p 2>/dev/null", timeout=timeout + 30)
        return self.sh(f"cat /tmp/{tag}.out")

    def bg_wait(self, tag, timeout):
        """Waits for the background command to end by itself; its output."""
        polls = int(timeout * 10)
        self.sh(f"p=$(cat /tmp/{tag}.pid); i=0; "
                f"while kill -0 $p 2>/dev/null && [ $i -lt {polls} ]; do sleep 0.1; i=$((i+1)); "
                f"done; ! kill -0 $p 2>/dev/null", timeout=timeout + 30)
        return self.sh(f"cat /tmp/{tag}.out")

    def sysfs_stats(self, ifname="eth0"):
        out = self.sh(f"cd /sys/class/net/{ifname}/statistics && for f in *; do "
                      f"echo $f=$(cat $f); done")
        return parse_kv(out)

    def poweroff(self, timeout=60):
        """Powers the guest off and waits for QEMU to exit."""
        self.send("poweroff -f")
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log(f"{self.name}: did not power off within {timeout} s: stopping QEMU")
        rc = self.run.stop(self.name, self.proc, 10, sig=signal.SIGTERM)
        self.reader.join(timeout=10)
        return rc

    def kernel_problems(self):
        """Kernel messages (warnings and worse) after the first boot that
        look like trouble; boot-time noise of the emulated machine is not."""
        bad = re.compile(r"WARNING|BUG|Oops|Call Trace|panic|virtio|eth\d|net_failover|"
                         r"hung task|soft lockup|rcu.*stall|refcount|corrupt|error", re.I)
        with self.lock:
            return [l for b, l in self.kernel_lines if bad.search(l)]


def parse_kv(lines):
    out = {}
    for line in lines:
        k, sep, v = line.partition("=")
        if not sep or " " in k:
            continue
        try:
            out[k] = int(v)
        except ValueError:
            try:
                out[k] = float(v)
            except ValueError:
                out[k] = v
    return out


# ---- host processes ------------------------------------------------------


class Peer:
    """simnic_peer --mode=nic: the soft NIC, its generator (gated by a start
    file) and the checker of what comes back."""

    def __init__(self, run, args, core=0):
        self.run = run
        self.socket = run.path("nic.sock")
        self.report = run.path("peer.json")
        self.status = run.path("peer.status.json")
        self.start_file = run.path("peer.start")
        argv = [run.bins["peer"], "--mode=nic", f"--nic-socket={self.socket}",
                f"--core={core}", f"--report={self.report}", f"--status-file={self.status}",
                f"--start-file={self.start_file}"] + list(args)
        # The soft NIC stands in for hardware, which does not queue for a
        # CPU behind QEMU: real-time priority, so a busy vCPU thread on the
        # same core does not stretch its pacing (it sleeps when idle, and
        # at the scenarios' rates it needs a tenth of a core).
        self.proc = run.spawn("peer", argv, realtime=True)
        wait_for(lambda: os.path.exists(self.socket) or self.proc.poll() is not None, 20,
                 "the soft NIC's socket")
        if self.proc.poll() is not None:
            raise Failure(f"simnic_peer exited ({self.proc.returncode}); see its log")

    def go(self):
        open(self.start_file, "w").close()

    def status_json(self):
        try:
            with open(self.status) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def wait_report(self, timeout):
        wait_for(lambda: os.path.exists(self.report) or self.proc.poll() is not None, timeout,
                 "simnic_peer's report")
        if not os.path.exists(self.report):
            raise Failure(f"simnic_peer exited ({self.proc.returncode}) without a report")
        shutil.copy(self.report, self.run.logpath("peer.json"))
        with open(self.report) as f:
            return json.load(f)

    def finish(self, timeout=30):
        """After the switch has closed its port the peer exits by itself."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log("simnic_peer still running after the switch stopped: stopping it")
        return self.run.stop("peer", self.proc, 5)


class Switch:
    """examples/iovtee-switch: phy ports on the soft NIC, vhost-user server
    ports for the guests, counters as JSON at exit."""

    def __init__(self, run, phys, vhosts, args, core=1):
        self.run = run
        self.prefix = f"iovtee-t-vm{os.getpid()}-{run.name}"
        run.prefixes.append(self.prefix)
        self.stats_path = run.path("switch.json")
        self.vhosts = vhosts
        argv = [run.bins["switch"], "-l", str(core), "--no-huge", "-m", "1024", "--no-pci",
                "--no-shconf", "--no-telemetry", "--file-prefix", self.prefix, "--"]
        for p in phys:
            argv += ["--phy", p]
        for v in vhosts:
            argv += ["--vhost", v]
        argv += ["--stats-file", self.stats_path] + list(args)
        self.proc = run.spawn("switch", argv)
        wait_for(lambda: all(os.path.exists(v) for v in vhosts) or self.proc.poll() is not None,
                 30, "the switch's vhost-user sockets")
        if self.proc.poll() is not None:
            raise Failure(f"iovtee-switch exited ({self.proc.returncode}); see its log")

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        """SIGINT; the stats file is written at exit. Returns (status, stats)."""
        rc = self.run.stop("switch", self.proc, 30)
        shutil.rmtree(f"/var/run/dpdk/{self.prefix}", ignore_errors=True)
        stats = None
        try:
            with open(self.stats_path) as f:
                stats = json.load(f)
            shutil.copy(self.stats_path, self.run.logpath("switch.json"))
        except (OSError, ValueError):
            pass
        return rc, stats


def ports(stats):
    return {p["name"]: p for p in stats["ports"]}
