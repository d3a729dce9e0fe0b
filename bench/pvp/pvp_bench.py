#!/usr/bin/env python3
"""The PVP benchmark: a switch's stock vhost path against the mapping (iovtee)
on the built-in soft NIC, side by side, in the same run, with the same tester.

  simnic_peer (core 0): generator -> soft NIC -> [switch] -> guest (DPDK
      virtio-user, macswap) -> [switch] -> soft NIC -> checker

--switch iovtee (default): iovtee-switch on core 1, phy0 <-> vhost0, modes
  stock and mapped (--map phy0:0=vhost0).
--switch ovs: Open vSwitch 3.1 (userspace datapath, the soft NIC's PMD loaded
  with other_config:dpdk-extra "-d", flows dpdk0 <-> vhost0), its PMD thread
  alone on core 1 (pmd-cpu-mask 0x2; dpdk-lcore-mask 0x1 and every other OVS
  thread on core 0 with the tester); modes stock (the stock build of the same
  source, //ovs-plugin:ovs_stock) and plugin (the plugin build,
  //ovs-plugin:ovs, with options:iovtee-map-rxq0=vhost0 on dpdk0). Each run
  has its own ovsdb-server, ovs-vswitchd, database, sockets and DPDK file
  prefix in a temporary directory, stopped by PID and removed afterwards.

Both switches: NIC Rx and Tx rings of 256 descriptors, guest ring 1024, the
guest without VIRTIO_F_IN_ORDER in every mode (a mapped queue cannot offer
it; --guest-in-order lets each mode negotiate what it offers).

For every size, runs alternate stock and the other mode (A B A B),
`--rounds` times each, and the ratio is taken from the medians of the same
run. Each run reports: Mpps and Gbps back at the tester, the switch's busy
cycles per packet, the CPU share each process got, loss, corruption,
latency. iovtee-switch gives its busy cycles per packet in each direction
(its own per-burst TSC accounting), split by stage (Rx poll, classify,
deliver), and the switch core's capacity (TSC rate over the busy cycles of a
round trip: the loop's throughput with the switch as the bottleneck); OVS gives one figure, the PMD thread's
busy cycles per packet received over both directions (pmd-perf-show: each
frame is received twice, from the NIC and from the guest, so a round trip
costs twice that), and the switch CPU share is its PMD thread's.
Before the throughput runs, one paced run per size and mode (well below
saturation) must show zero loss and zero corruption.

Writes DIR/pvp.csv, DIR/pvp.json, DIR/pvp.txt (the table) and DIR/pvp.png
(gnuplot, when installed), and prints the table.

  bench/pvp/pvp_bench.py [--switch iovtee|ovs]
      [--sizes 64,128,256,512,1024,1514,9000,imix]
      [--rounds 3] [--seconds 5] [--check-rate 100000] [--out DIR]
      [--huge] [--guest-in-order]
  bench/pvp/pvp_bench.py --rounds 0 ...   only the paced zero-loss checks
  bench/pvp/pvp_bench.py --from DIR       rewrite DIR's table, CSV and plot
  Builds with Bazel (--config=opt) first, unless --no-build or, for OVS,
  every one of --ovs-stock, --ovs-plugin, --libiovtee, --simnic-pmd and
  --peer is given (what `bazel run --config=opt //ovs-plugin:pvp_ovs` does).
  Exit status 1 when a check lost, corrupted or reordered frames (other than
  NIC misses and counted drops during hypervisor steal time: see
  CHECK_ATTEMPTS) or a run broke; docs/performance.md has the method and the
  recorded results.
"""

import argparse
import csv
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_SIZES = "64,128,256,512,1024,1514,9000,imix"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg):
    print(msg, flush=True)


def progress(msg):
    if sys.stdout.isatty():
        sys.stdout.write("\r\033[K" + msg)
        sys.stdout.flush()
    else:
        log(msg)


def bazel_build(targets, opt):
    """Builds `targets`; returns the bazel-bin directory of that configuration."""
    cfg = ["--config=opt"] if opt else []
    r = subprocess.run(["bazel", "build"] + cfg + targets, cwd=TOP,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        sys.exit("pvp_bench: build failed:\n" + r.stdout[-3000:])
    out = subprocess.run(["bazel", "info"] + cfg + ["bazel-bin"], cwd=TOP,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    return out.stdout.strip()


def build(opt=True):
    bindir = bazel_build(["//examples/iovtee-switch", "//test/softnic/peer:simnic_peer"], opt)
    return (os.path.join(bindir, "examples/iovtee-switch/iovtee-switch"),
            os.path.join(bindir, "test/softnic/peer/simnic_peer"))


def cpu_ticks(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return None
    fields = s[s.rfind(")") + 2:].split()
    return int(fields[11]) + int(fields[12])  # utime, stime


def wait_for(cond, seconds, what, procs=()):
    deadline = time.monotonic() + seconds
    while not cond():
        for name, p in procs:
            if p.poll() is not None:
                raise RuntimeError(f"{name} exited ({p.returncode}) while waiting for {what}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"no {what} after {seconds} s")
        time.sleep(0.02)


def stop(p, grace):
    if p.poll() is not None:
        return p.returncode
    p.send_signal(signal.SIGINT)
    try:
        return p.wait(grace)
    except subprocess.TimeoutExpired:
        p.kill()
        return p.wait()


def size_args(size):
    return ["--imix"] if size == "imix" else [f"--size={size}"]


# NIC Rx and Tx descriptors, for every switch and mode. Small rings keep the
# mbufs a switch cycles through in its cache (a 1024-entry Tx ring keeps ~1000
# of them in flight); the same for both modes.
NIC_RING = 256

# The guest's virtio features, the same in every mode: VIRTIO_F_IN_ORDER off.
# A mapped queue cannot offer it (its completions are out of order), and
# DPDK's in-order Rx path is cheaper for the guest; with the guest on the
# tester's core, letting only the stock mode have it would measure the guest.
# --guest-in-order lets each mode negotiate what it offers.
GUEST_IN_ORDER_OFF = ["--guest-in-order=off"]


def peer_run_args(rate, seconds, size):
    """The peer's traffic options, the same for every switch."""
    # Throughput runs read one payload in 64 (every frame's headers,
    # sequence and loss are still checked); paced checks read all.
    return [f"--rate={rate}", "--verify=all" if rate else "--verify=sample:64",
            f"--duration={seconds}", "--warmup=1", "--linger=15"] + size_args(size) + \
        GUEST_IN_ORDER_OFF


# --huge: both processes on 2 MB hugepages instead of 4 KiB pages, in memory
# (memfd-backed, as vhost-user and the soft NIC need: no files in hugetlbfs).
# The switch runs IOVA-as-VA, as the mapping requires with hugepages.
HUGE_SWITCH_MB, HUGE_PEER_MB = 1024, 512


def huge_pages_free_mb():
    free = size_kb = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("HugePages_Free:"):
                free = int(line.split()[1])
            elif line.startswith("Hugepagesize:"):
                size_kb = int(line.split()[1])
    return free * size_kb // 1024


# The paced zero-loss check. Frames larger than 1514 B are paced at the same
# bit rate as 1514 B frames at --check-rate (a 9000 B frame takes six NIC
# buffers: the ring holds a sixth of the time).
def check_rate(rate, size):
    return rate * 1514 // int(size) if size.isdigit() and int(size) > 1514 else rate


# A VM's vCPUs can stop for milliseconds when the hypervisor runs something
# else (steal time); the NIC then finds its ring empty and misses frames,
# however fast the switch, and a stopped tester fills the switch's Tx ring.
# A check whose only loss is such misses and counted switch drops, during
# measured steal, is run again (each attempt is reported); any other loss,
# or a loss without steal, fails at once.
CHECK_ATTEMPTS = 3


def steal_ms():
    with open("/proc/stat") as f:
        fields = f.readline().split()
    return int(fields[8]) * 1000 // CLK_TCK if len(fields) > 8 else 0


def stalled_loss(c):
    """Only frames the NIC missed or the switch dropped with a reason (e.g. its
    Tx ring full while the tester was stopped), during measured steal time."""
    counted = (c.get("nic_missed") or 0) + (c.get("switch_drops") or 0)
    return bool(c["lost"] and not c["corrupted"] and not c["reordered"] and c.get("steal_ms")
                and c.get("nic_missed") is not None and c["lost"] <= counted)


class Runner:
    def __init__(self, switch, peer, work, logs, huge=False):
        self.switch, self.peer, self.work, self.logs = switch, peer, work, logs
        self.huge = huge
        self.n = 0

    def run(self, mode, size, seconds, rate):
        """One PVP run; returns a dict of results (raises on a broken run)."""
        self.n += 1
        name = f"{self.n:03d}-{mode}-{size}"
        nic = os.path.join(self.work, name + ".nic")
        vhost = os.path.join(self.work, name + ".vhost")
        report = os.path.join(self.work, name + ".json")
        swstats = os.path.join(self.work, name + ".sw.json")
        jumbo = size == "9000"
        peer_cmd = [self.peer, "--mode=pvp", "--nic-socket", nic, "--guest-vhost", vhost,
                    "--core", "0", "--report", report] + peer_run_args(rate, seconds, size)
        prefix = f"iovtee-pvp{os.getpid()}-{name}"
        if self.huge:
            peer_cmd += ["--", "-l", "0", "--in-memory", "--single-file-segments", "-m",
                         str(HUGE_PEER_MB), "--no-pci", "--no-telemetry", "--file-prefix",
                         prefix + "-peer"]
            mem = ["--iova-mode=va", "--in-memory", "--single-file-segments", "-m",
                   str(HUGE_SWITCH_MB)]
        else:
            mem = ["--no-huge", "-m", "1024", "--no-shconf"]
        sw_cmd = [self.switch, "-l", "1"] + mem + ["--no-pci",
                  "--no-telemetry", "--file-prefix", prefix, "--",
                  "--phy", f"net_simnic0,socket={nic}", "--vhost", vhost,
                  "--rx-ring", str(NIC_RING), "--tx-ring", str(NIC_RING),
                  "--stats-file", swstats]
        if jumbo:
            sw_cmd += ["--mtu", "9000"]
        if mode == "mapped":
            sw_cmd += ["--map", "phy0:0=vhost0"]
        with open(os.path.join(self.logs, name + ".cmd"), "w") as f:
            f.write(" ".join(peer_cmd) + "\n" + " ".join(sw_cmd) + "\n")
        peer_log = open(os.path.join(self.logs, name + ".peer.log"), "w")
        sw_log = open(os.path.join(self.logs, name + ".switch.log"), "w")
        peer = subprocess.Popen(peer_cmd, stdout=peer_log, stderr=subprocess.STDOUT)
        sw = None
        try:
            wait_for(lambda: os.path.exists(nic), 20, "soft NIC socket", [("simnic_peer", peer)])
            sw = subprocess.Popen(sw_cmd, stdin=subprocess.DEVNULL, stdout=sw_log,
                                  stderr=subprocess.STDOUT)
            t0, s0 = time.monotonic(), cpu_ticks(sw.pid)
            wait_for(lambda: os.path.exists(report), seconds + 90, "peer report",
                     [("simnic_peer", peer), ("iovtee-switch", sw)])
            t1, s1 = time.monotonic(), cpu_ticks(sw.pid)
            sw_share = (s1 - s0) / CLK_TCK / (t1 - t0) if s0 is not None and s1 else 0.0
            stop(sw, 20)
            if peer.wait(30) != 0:
                raise RuntimeError(f"simnic_peer exited {peer.returncode}")
        finally:
            for p in (sw, peer):
                if p is not None and p.poll() is None:
                    p.kill()
                    p.wait()
            peer_log.close()
            sw_log.close()
            for d in (prefix, prefix + "-peer"):  # the peer's, with --huge
                shutil.rmtree(f"/var/run/dpdk/{d}", ignore_errors=True)
        with open(report) as f:
            r = json.load(f)
        sw = {}
        if os.path.exists(swstats):
            with open(swstats) as f:
                sw = json.load(f)
        return summarize(mode, size, r, sw, sw_share)


# --- Open vSwitch as the switch (--switch ovs) ---

OVS_PROGRAMS = ("ovs-vswitchd", "ovsdb-server", "ovsdb-tool", "ovs-vsctl", "ovs-appctl",
                "ovs-ofctl", "vswitch.ovsschema")
OVS_NIC_RING = NIC_RING  # dpdk0's Rx and Tx descriptors, as iovtee-switch's
OVS_PMD_CORE = 1
OVS_OTHER_CORE = 0


def on_core(core):
    """preexec_fn: the child and every thread it starts run on `core` (OVS
    moves its PMD threads to pmd-cpu-mask's cores itself)."""
    return lambda: os.sched_setaffinity(0, {core})


def task_ticks(pid):
    """CPU ticks of a process's threads: (PMD threads, every other thread)."""
    pmd = other = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                comm = f.read().strip()
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                st = f.read()
        except OSError:
            continue
        fields = st[st.rfind(")") + 2:].split()
        t = int(fields[11]) + int(fields[12])
        if comm.startswith("pmd"):
            pmd += t
        else:
            other += t
    return pmd, other


def cpu_list(text):
    """The CPUs of a list such as "0-1,3"."""
    cpus = set()
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        if lo.strip().isdigit():
            cpus.update(range(int(lo), int(hi or lo) + 1))
    return cpus


def task_cpus(pid):
    """{thread name/id: the CPUs it may run on ("0-1")} of a process."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                comm = f.read().strip()
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                cpus = [ln.split(":", 1)[1].strip() for ln in f if ln.startswith("Cpus_allowed_list")]
        except OSError:
            continue
        out[f"{comm}/{tid}"] = cpus[0] if cpus else "?"
    return out


def json_file(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


class Ovs:
    """ovsdb-server and ovs-vswitchd of one OVS build in a directory of their
    own (database, sockets, pid-named control sockets, logs): the userspace
    datapath, DPDK without hugepages or PCI with the soft NIC's PMD loaded
    (-d) and its own --file-prefix, the PMD thread on OVS_PMD_CORE and every
    other thread on OVS_OTHER_CORE. Both run in the foreground as children and
    are stopped by PID."""

    def __init__(self, bindir, libdir, simnic_pmd, rundir, prefix, bridge):
        self.bindir, self.dir, self.prefix, self.bridge = bindir, rundir, prefix, bridge
        self.simnic_pmd = simnic_pmd
        self.env = dict(os.environ, OVS_RUNDIR=rundir, OVS_LOGDIR=rundir, OVS_DBDIR=rundir,
                        OVS_SYSCONFDIR=rundir, LD_LIBRARY_PATH=libdir)
        self.db_sock = os.path.join(rundir, "db.sock")
        self.db = self.vs = None
        self.ctl = None

    def tool(self, prog, *args):
        r = subprocess.run([os.path.join(self.bindir, prog)] + list(args), env=self.env,
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError(f"{prog} {' '.join(args)}: {r.stderr.strip() or r.returncode}")
        return r.stdout

    def vsctl(self, *args):
        return self.tool("ovs-vsctl", f"--db=unix:{self.db_sock}", "--timeout=30", *args)

    def appctl(self, *args):
        return self.tool("ovs-appctl", "--timeout=30", "-t", self.ctl, *args)

    def ofctl(self, *args):
        return self.tool("ovs-ofctl", "--timeout=30", "-O", "OpenFlow13", *args)

    def procs(self):
        return [(n, p) for n, p in (("ovsdb-server", self.db), ("ovs-vswitchd", self.vs)) if p]

    def start(self):
        d = self.dir
        self.tool("ovsdb-tool", "create", os.path.join(d, "conf.db"),
                  os.path.join(self.bindir, "vswitch.ovsschema"))
        with open(os.path.join(d, "ovsdb-server.console"), "w") as out:
            self.db = subprocess.Popen(
                [os.path.join(self.bindir, "ovsdb-server"), os.path.join(d, "conf.db"),
                 f"--remote=punix:{self.db_sock}", f"--log-file={d}/ovsdb-server.log",
                 "-vconsole:off"], env=self.env, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, preexec_fn=on_core(OVS_OTHER_CORE))
        wait_for(lambda: os.path.exists(self.db_sock), 20, "ovsdb-server's socket", self.procs())
        self.vsctl("--no-wait", "init")
        # --legacy-mem keeps OVS from adding --in-memory (which needs
        # hugepages); iovtee's DMA mapping of guest memory needs IOVA as VA.
        extra = (f"--no-huge -m 1024 --legacy-mem --no-pci --no-shconf --no-telemetry "
                 f"--iova-mode=va --file-prefix {self.prefix} -d {self.simnic_pmd}")
        self.vsctl("--no-wait", "set", "Open_vSwitch", ".", "other_config:dpdk-init=true",
                   f"other_config:dpdk-extra={extra}",
                   f"other_config:dpdk-lcore-mask={1 << OVS_OTHER_CORE:#x}",
                   f"other_config:pmd-cpu-mask={1 << OVS_PMD_CORE:#x}",
                   "other_config:per-port-memory=true")
        with open(os.path.join(d, "ovs-vswitchd.console"), "w") as out:
            self.vs = subprocess.Popen(
                [os.path.join(self.bindir, "ovs-vswitchd"), f"unix:{self.db_sock}",
                 f"--log-file={d}/ovs-vswitchd.log", "-vconsole:off"], env=self.env,
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                preexec_fn=on_core(OVS_OTHER_CORE))
        self.ctl = os.path.join(d, f"ovs-vswitchd.{self.vs.pid}.ctl")
        wait_for(lambda: os.path.exists(self.ctl), 30, "ovs-vswitchd's control socket",
                 self.procs())
        # Waits until ovs-vswitchd has applied it (DPDK initialised).
        self.vsctl("add-br", self.bridge, "--", "set", "bridge", self.bridge,
                   "datapath_type=netdev")
        self.ofctl("del-flows", self.bridge)  # nothing forwarded until flows are set

    def stop(self):
        """Stops both by PID; returns what went wrong (ovs-vswitchd gone
        early, a signal ignored)."""
        problems = []
        if self.vs is not None:
            if self.vs.poll() is not None:
                problems.append(f"ovs-vswitchd exited ({self.vs.returncode}) before the end")
            else:
                try:
                    # The bridge's tap devices are persistent: removed only
                    # with the bridge (and the datapath with the last one).
                    self.vsctl("--if-exists", "del-br", self.bridge)
                except Exception as e:  # stop it anyway
                    problems.append(f"del-br: {e}")
                self.vs.terminate()
                try:
                    self.vs.wait(20)
                except subprocess.TimeoutExpired:
                    problems.append("ovs-vswitchd ignored SIGTERM: killed")
                    self.vs.kill()
                    self.vs.wait()
        if self.db is not None and self.db.poll() is None:
            self.db.terminate()
            try:
                self.db.wait(10)
            except subprocess.TimeoutExpired:
                self.db.kill()
                self.db.wait()
        shutil.rmtree(f"/var/run/dpdk/{self.prefix}", ignore_errors=True)
        return problems


class OvsRunner:
    """PVP runs with Open vSwitch: mode stock on the stock build, mode plugin
    on the plugin build with dpdk0's Rx queue 0 mapped onto vhost0's guest.
    Each run starts its own OVS in its own directory."""

    MODES = ("stock", "plugin")

    def __init__(self, builds, libdir, simnic_pmd, peer, work, logs):
        self.builds, self.libdir, self.simnic_pmd = builds, libdir, simnic_pmd
        self.peer, self.work, self.logs = peer, work, logs
        self.bridge = f"pvp{os.getpid() % 100000}"
        self.n = 0

    def run(self, mode, size, seconds, rate):
        """One PVP run; returns a dict of results (raises on a broken run)."""
        self.n += 1
        name = f"{self.n:03d}-ovs-{mode}-{size}"
        d = os.path.join(self.work, name)
        os.makedirs(d)
        nic = os.path.join(d, "nic")
        vhost = os.path.join(d, "vhost0")  # OVS puts dpdkvhostuser sockets in its run dir
        report = os.path.join(d, "peer.json")
        status = os.path.join(d, "peer.status.json")
        prefix = f"iovtee-pvp{os.getpid()}-{name}"
        ovs = Ovs(self.builds[mode], self.libdir, self.simnic_pmd, d, prefix, self.bridge)
        mtu = ["mtu_request=9000"] if size == "9000" else []
        nic_opts = ["type=dpdk", "ofport_request=1",
                    f"options:dpdk-devargs=net_simnic0,socket={nic}",
                    f"options:n_rxq_desc={OVS_NIC_RING}", f"options:n_txq_desc={OVS_NIC_RING}"] + mtu
        if mode == "plugin":
            nic_opts.append("options:iovtee-map-rxq0=vhost0")
        peer_cmd = [self.peer, "--mode=pvp", "--nic-socket", nic, "--guest-vhost", vhost,
                    "--core", str(OVS_OTHER_CORE), "--report", report,
                    "--status-file", status] + peer_run_args(rate, seconds, size)
        with open(os.path.join(self.logs, name + ".cmd"), "w") as f:
            f.write(" ".join(peer_cmd) + "\n" + f"OVS build: {self.builds[mode]}\n"
                    + "dpdk0: " + " ".join(nic_opts) + "\n")
        peer_log = open(os.path.join(self.logs, name + ".peer.log"), "w")
        peer = None
        problems = []
        m = {}
        try:
            ovs.start()
            ovs.vsctl("add-port", self.bridge, "vhost0", "--", "set", "Interface", "vhost0",
                      "type=dpdkvhostuser", "ofport_request=2", *mtu)
            # The peer's guest attaches once vhost0's socket exists; its NIC
            # waits for OVS's PMD (dpdk0) to connect.
            peer = subprocess.Popen(peer_cmd, stdin=subprocess.DEVNULL, stdout=peer_log,
                                    stderr=subprocess.STDOUT)
            procs = [("simnic_peer", peer)] + ovs.procs()
            wait_for(lambda: os.path.exists(nic), 20, "soft NIC socket", procs)
            ovs.vsctl("add-port", self.bridge, "dpdk0", "--", "set", "Interface", "dpdk0",
                      *nic_opts)
            wait_for(lambda: ovs.vsctl("get", "Interface", "dpdk0", "link_state").strip()
                     == "up", 30, "dpdk0 link up", procs)
            if mode == "plugin":
                # The guest attached to the mapping: frames land in its buffers.
                wait_for(lambda: re.search(r"rxq 0 -> .*: attached",
                                           ovs.appctl("iovtee/show", "dpdk0")),
                         30, "the guest attached to dpdk0's mapping", procs)
            ovs.ofctl("add-flow", self.bridge, "in_port=1,actions=output:2")
            ovs.ofctl("add-flow", self.bridge, "in_port=2,actions=output:1")
            # OVS's counters and CPU shares cover the measurement (from the
            # peer's measure phase to its report, drain included).
            wait_for(lambda: os.path.exists(report) or
                     (json_file(status) or {}).get("phase") in ("measure", "drain"),
                     90, "the peer's measurement", procs)
            ovs.appctl("dpif-netdev/pmd-stats-clear")
            t0, (p0, o0) = time.monotonic(), task_ticks(ovs.vs.pid)
            m["cpus"] = task_cpus(ovs.vs.pid)
            wait_for(lambda: os.path.exists(report), seconds + 90, "peer report", procs)
            t1, (p1, o1) = time.monotonic(), task_ticks(ovs.vs.pid)
            m["pmd_share"] = (p1 - p0) / CLK_TCK / (t1 - t0)
            m["other_share"] = (o1 - o0) / CLK_TCK / (t1 - t0)
            m["perf"] = ovs.appctl("dpif-netdev/pmd-perf-show")
            m["rxq"] = ovs.appctl("dpif-netdev/pmd-rxq-show")
            if mode == "plugin":
                m["iovtee"] = ovs.appctl("iovtee/show", "dpdk0")
            ovs.ofctl("del-flows", self.bridge)
            # Closing dpdk0 ends the peer's linger.
            ovs.vsctl("del-port", self.bridge, "dpdk0")
            if peer.wait(30) != 0:
                raise RuntimeError(f"simnic_peer exited {peer.returncode}")
            r = json_file(report)
            if r is None:
                raise RuntimeError("no readable peer report")
        finally:
            if peer is not None and peer.poll() is None:
                peer.kill()
                peer.wait()
            problems = ovs.stop()
            peer_log.close()
            for f_ in ("ovs-vswitchd.log", "ovsdb-server.log", "ovs-vswitchd.console"):
                if os.path.exists(os.path.join(d, f_)):
                    shutil.copy(os.path.join(d, f_), os.path.join(self.logs, f"{name}.{f_}"))
            with open(os.path.join(self.logs, name + ".ovs.txt"), "w") as f:
                for k in ("perf", "rxq", "iovtee"):
                    f.write(m.get(k, "") + "\n")
                f.write(json.dumps(m.get("cpus", {}), indent=1) + "\n")
            shutil.rmtree(d, ignore_errors=True)
        if problems:
            raise RuntimeError("; ".join(problems))
        res = summarize_ovs(mode, size, r, m)
        if mode == "plugin" and not res["zero_copy"]:
            raise RuntimeError("no frame went zero copy: the mapping did not serve the guest "
                               f"(logs/{name}.ovs.txt)")
        return res


def pmd_perf(text):
    """OVS's PMD thread over the measurement (pmd-perf-show): busy cycles per
    packet received, packets received, upcalls."""
    def num(pattern):
        x = re.search(pattern, text)
        return float(x.group(1)) if x else None
    rx, upcalls = num(r"Rx packets:\s+(\d+)"), num(r"- Upcalls:\s+(\d+)")
    return {"cycles": num(r"Rx packets:\s+\d+\s+\(\s*[\d.]+ Kpps,\s*([\d.]+) cycles/pkt\)"),
            "rx": None if rx is None else int(rx),
            "upcalls": None if upcalls is None else int(upcalls)}


def iovtee_counters(text):
    """The counters of iovtee/show (one mapping)."""
    return {k: int(v) for k, v in re.findall(r"^\s+(\w+): (\d+)$", text or "", re.M)}


def summarize_ovs(mode, size, r, m):
    res = summarize(mode, size, r, {}, m["pmd_share"])
    perf = pmd_perf(m["perf"])
    c = iovtee_counters(m.get("iovtee"))
    pmd = [cpu_list(v) for k, v in m["cpus"].items() if k.startswith("pmd")]
    other = set().union(*[cpu_list(v) for k, v in m["cpus"].items() if not k.startswith("pmd")])
    res.update({
        "p2v_cycles": None, "v2p_cycles": None, "p2v_rx": None, "p2v_switch": None,
        "p2v_tx": None,
        "pmd_cycles": perf["cycles"], "pmd_rx_packets": perf["rx"], "upcalls": perf["upcalls"],
        "ovs_other_cpu": m["other_share"],
        # The PMD thread alone on its core: pinned there, nothing else of OVS.
        "pmd_alone": (bool(pmd) and all(c == {OVS_PMD_CORE} for c in pmd)
                      and OVS_PMD_CORE not in other),
        "zero_copy": c.get("zero_copy") if mode == "plugin" else None,
        "copied": c.get("copied") if mode == "plugin" else None,
    })
    return res


def find(obj, key):
    """The first value of `key` anywhere in a nested JSON object."""
    if isinstance(obj, dict):
        if key in obj:
            return obj[key]
        for v in obj.values():
            x = find(v, key)
            if x is not None:
                return x
    elif isinstance(obj, list):
        for v in obj:
            x = find(v, key)
            if x is not None:
                return x
    return None


def perf_median(sw, direction):
    """Switch busy cycles per packet for a direction ("p2v" / "v2p")."""
    perf = find(sw, "perf")
    if not isinstance(perf, dict):
        return None
    d = perf.get(direction)
    if isinstance(d, dict):
        for k in ("cycles_per_packet_p50", "cycles_per_packet_median", "median", "p50"):
            if k in d:
                return d[k]
    return None


def perf_value(sw, direction, key):
    perf = find(sw, "perf")
    d = perf.get(direction) if isinstance(perf, dict) else None
    return d.get(key) if isinstance(d, dict) else None


def perf_stage(sw, direction, stage):
    perf = find(sw, "perf")
    d = perf.get(direction) if isinstance(perf, dict) else None
    return d.get(f"{stage}_cycles_per_packet") if isinstance(d, dict) else None


def capacity(sw):
    """What the switch core could forward, Mpps, in a PVP loop: its TSC rate
    over its mean busy cycles for one frame's round trip (P->V + V->P). Exact
    when the switch is the bottleneck; when the tester is, bursts are shorter
    and per-burst costs are shared by fewer frames, so this underestimates."""
    perf = find(sw, "perf")
    hz = perf.get("tsc_hz") if isinstance(perf, dict) else None
    a = perf_value(sw, "p2v", "cycles_per_packet_mean")
    b = perf_value(sw, "v2p", "cycles_per_packet_mean")
    return hz / (a + b) / 1e6 if hz and a and b else None


def burst(sw, direction):
    """Mean frames per busy poll: per-burst costs are shared by this many."""
    b, n = perf_value(sw, direction, "bursts"), perf_value(sw, direction, "packets")
    return n / b if b and n else None


def switch_drops(sw):
    """Frames the switch dropped, each with a reason (its per-port counters)."""
    ports = sw.get("ports") if isinstance(sw, dict) else None
    if not isinstance(ports, list):
        return None
    return sum(sum((p.get("drops") or {}).values()) for p in ports)


def summarize(mode, size, r, sw, sw_share):
    g = lambda k: find(r, k)
    res = {
        "mode": mode, "size": size,
        "mpps": g("rx_mpps") or 0.0,
        "gbps": g("rx_gbps") or 0.0,
        "sent": g("sent"), "received": g("received"),
        "lost": g("lost"), "corrupted": g("corrupted"), "reordered": g("reordered"),
        "nic_missed": g("nic_rx_missed"),
        "switch_drops": switch_drops(sw),
        # The tester's own busy cycles per frame back (NIC emulation, generator,
        # checker and guest): which side limits a run.
        "tester_cycles": g("busy_cycles_per_frame"),
        "p50_us": (g("p50_ns") or 0) / 1000.0, "p99_us": (g("p99_ns") or 0) / 1000.0,
        "peer_cpu": g("cpu_share") or 0.0, "switch_cpu": sw_share,
        "p2v_cycles": perf_median(sw, "p2v"), "v2p_cycles": perf_median(sw, "v2p"),
        "p2v_rx": perf_stage(sw, "p2v", "rx"), "p2v_switch": perf_stage(sw, "p2v", "switch"),
        "p2v_tx": perf_stage(sw, "p2v", "tx"),
        "v2p_rx": perf_stage(sw, "v2p", "rx"), "v2p_switch": perf_stage(sw, "v2p", "switch"),
        "v2p_tx": perf_stage(sw, "v2p", "tx"),
        "cap_mpps": capacity(sw),
        "p2v_burst": burst(sw, "p2v"), "v2p_burst": burst(sw, "v2p"),
        "zero_copy": find(sw, "zero_copy") if mode == "mapped" else None,
        "iommu_faults": g("iommu_faults"),
    }
    return res


def cpu_model():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown"


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


MODES = {"iovtee": ("stock", "mapped"), "ovs": OvsRunner.MODES}
OVS_FOOTNOTE = """\
* OVS's PMD thread: busy cycles per packet received (pmd-perf-show), NIC->guest
  and guest->NIC passes together (a round trip costs twice this); sw cpu is the
  PMD thread's share of its core."""


STAGE_KEYS = ("p2v_rx", "p2v_switch", "p2v_tx", "v2p_rx", "v2p_switch", "v2p_tx")
BURST_KEYS = ("p2v_burst", "v2p_burst")
IOVTEE_FOOTNOTE = """\
cap Mpps: the switch core's capacity in this loop, its TSC rate over its mean
  busy cycles per round trip (P->V + V->P); the throughput the loop would have
  with the switch as the bottleneck (an underestimate when the tester is)."""


def table(results, sizes, switch="iovtee"):
    ovs = switch == "ovs"
    stages = {}
    modes = MODES[switch]
    lines = []
    cyc_hdr = f"{'cyc/pkt*':>9}" if ovs else f"{'P->V cyc':>9} {'V->P cyc':>9} {'cap Mpps':>8}"
    hdr = (f"{'size':>5} {'mode':>6} {'Mpps':>7} {'Gbps':>7} {cyc_hdr} "
           f"{'sw cpu':>7} {'tst cpu':>7} {'lost':>6} {'corrupt':>7} {'p50 us':>7} {'p99 us':>7}")
    lines.append(hdr)
    for size in sizes:
        med = {}
        for mode in modes:
            rs = [x for x in results if x["size"] == size and x["mode"] == mode]
            if not rs:
                continue
            m = lambda k: (statistics.median([x[k] for x in rs if x.get(k) is not None])
                           if any(x.get(k) is not None for x in rs) else None)
            med[mode] = {k: m(k) for k in ("mpps", "gbps", "p2v_cycles", "v2p_cycles",
                                           "switch_cpu", "peer_cpu", "p50_us", "p99_us")
                         + (("pmd_cycles",) if ovs else STAGE_KEYS + BURST_KEYS + ("cap_mpps",))
                         + ("tester_cycles",)}
            lost = sum(x["lost"] or 0 for x in rs)
            bad = sum(x["corrupted"] or 0 for x in rs)
            d = med[mode]
            cyc = (fmt(d["pmd_cycles"], "9.0f") if ovs else
                   f"{fmt(d['p2v_cycles'], '9.0f')} {fmt(d['v2p_cycles'], '9.0f')} "
                   f"{fmt(d['cap_mpps'], '8.2f')}")
            lines.append(f"{size:>5} {mode:>6} {fmt(d['mpps'], '7.3f')} {fmt(d['gbps'], '7.2f')} "
                         f"{cyc} "
                         f"{fmt(100 * d['switch_cpu'], '6.0f')}% {fmt(100 * d['peer_cpu'], '6.0f')}% "
                         f"{lost:>6} {bad:>7} {fmt(d['p50_us'], '7.1f')} {fmt(d['p99_us'], '7.1f')}")
        a, b = modes
        if a in med and b in med and med[a]["mpps"]:
            s, mp = med[a], med[b]
            ratio = mp["mpps"] / s["mpps"]
            k, label = ("pmd_cycles", "cycles/pkt") if ovs else ("p2v_cycles", "P->V cycles")
            cyc = (f", {label} {mp[k] / s[k]:.2f}x" if mp[k] and s[k] else "")
            if not ovs and mp["cap_mpps"] and s["cap_mpps"]:
                cyc += f", switch capacity {mp['cap_mpps'] / s['cap_mpps']:.2f}x"
            lines.append(f"{size:>5} {'ratio':>6} {b}/{a} throughput {ratio:.2f}x{cyc}")
            stages[size] = med
    if ovs:
        lines.append(OVS_FOOTNOTE)
    else:
        lines.append(IOVTEE_FOOTNOTE)
        lines.append("")
        lines.append("Switch busy cycles per packet by stage (medians): Rx poll / classify / "
                     "deliver, frames per busy poll; the tester's busy cycles per frame")
        lines.append(f"{'size':>5} {'mode':>6} {'P->V rx':>8} {'switch':>7} {'tx':>6} "
                     f"{'burst':>6}   {'V->P rx':>8} {'switch':>7} {'tx':>6} {'burst':>6}   "
                     f"{'tester':>6}")
        for size, med in stages.items():
            for mode in modes:
                d = med.get(mode)
                if d is None:
                    continue
                widths = ("8.0f", "7.0f", "6.0f")
                p2v = " ".join(fmt(d[k], w) for k, w in zip(STAGE_KEYS[:3], widths))
                v2p = " ".join(fmt(d[k], w) for k, w in zip(STAGE_KEYS[3:], widths))
                lines.append(f"{size:>5} {mode:>6} {p2v} {fmt(d['p2v_burst'], '6.1f')}   {v2p} "
                             f"{fmt(d['v2p_burst'], '6.1f')}   {fmt(d['tester_cycles'], '6.0f')}")
    return "\n".join(lines)


PLOT_TITLES = {"iovtee": "iovtee PVP: stock vhost path vs mapped Rx queue",
               "ovs": "OVS-DPDK PVP: stock OVS vs OVS with the iovtee plugin (mapped Rx queue)"}


def plot(csv_path, png_path, sizes, switch="iovtee"):
    if shutil.which("gnuplot") is None:
        return False
    a, b = MODES[switch]
    # iovtee: the switch core's capacity beside what the tester got back.
    extra = (f", '' using 4 title '{a}: switch capacity', '' using 5 title '{b}: switch "
             "capacity'" if switch == "iovtee" else "")
    script = f"""
set terminal pngcairo size 1000,500
set output '{png_path}'
set datafile separator ','
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set ylabel 'Mpps (median)'
set yrange [0:*]
set key outside right top
set xlabel 'frame size (bytes)'
set title '{PLOT_TITLES[switch]}'
plot '{csv_path}.median' using 2:xtic(1) title '{a}', '' using 3 title '{b}'{extra}
"""
    with open(csv_path + ".gp", "w") as f:
        f.write(script)
    r = subprocess.run(["gnuplot", csv_path + ".gp"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    return r.returncode == 0


CSV_KEYS = {
    "iovtee": ["size", "mode", "round", "mpps", "gbps", "p2v_cycles", "v2p_cycles", "p2v_rx",
               "p2v_switch", "p2v_tx", "v2p_rx", "v2p_switch", "v2p_tx", "cap_mpps",
               "p2v_burst", "v2p_burst", "tester_cycles",
               "switch_cpu",
               "peer_cpu", "sent", "received", "lost", "corrupted", "reordered", "p50_us",
               "p99_us", "zero_copy", "iommu_faults"],
    "ovs": ["size", "mode", "round", "mpps", "gbps", "pmd_cycles", "pmd_rx_packets", "upcalls",
            "switch_cpu", "ovs_other_cpu", "pmd_alone", "peer_cpu", "sent", "received", "lost",
            "corrupted", "reordered", "p50_us", "p99_us", "zero_copy", "copied",
            "iommu_faults"],
}
OVS_PATH_OPTIONS = ("ovs_stock", "ovs_plugin", "libiovtee", "simnic_pmd", "peer")


def ovs_binaries(a):
    """(OVS builds by mode, libiovtee's directory, the soft NIC's PMD, the
    peer) from the options, bazel-out (--no-build) or a build."""
    given = [k for k in OVS_PATH_OPTIONS if getattr(a, k)]
    if given and len(given) != len(OVS_PATH_OPTIONS):
        sys.exit("pvp_bench: give all of --ovs-stock, --ovs-plugin, --libiovtee, --simnic-pmd "
                 "and --peer, or none")
    if given:
        paths = {k: os.path.abspath(getattr(a, k)) for k in OVS_PATH_OPTIONS}
    else:
        if a.no_build:
            bindir = os.path.join(TOP, "bazel-out", "k8-fastbuild" if a.fastbuild else "k8-opt",
                                  "bin")
        else:
            log("pvp_bench: building OVS (stock and plugin), the peer and libiovtee "
                f"({'unoptimised' if a.fastbuild else 'optimised'}; a cold OVS build takes "
                "5-10 minutes)...")
            bindir = bazel_build(["//ovs-plugin:ovs", "//ovs-plugin:ovs_stock",
                                  "//test/softnic/peer:simnic_peer",
                                  "//test/softnic/pmd:librte_net_simnic.so", "//:libiovtee.so"],
                                 opt=not a.fastbuild)
        paths = {"ovs_stock": os.path.join(bindir, "ovs-plugin/ovs_stock"),
                 "ovs_plugin": os.path.join(bindir, "ovs-plugin/ovs"),
                 "libiovtee": os.path.join(bindir, "src/capi/libiovtee.so"),
                 "simnic_pmd": os.path.join(bindir, "test/softnic/pmd/librte_net_simnic.so"),
                 "peer": os.path.join(bindir, "test/softnic/peer/simnic_peer")}
    for k in ("ovs_stock", "ovs_plugin"):
        if os.path.isfile(paths[k]):  # ovs-vswitchd given: its directory
            paths[k] = os.path.dirname(paths[k])
        for prog in OVS_PROGRAMS:
            if not os.path.exists(os.path.join(paths[k], prog)):
                sys.exit(f"pvp_bench: no {prog} in {paths[k]}")
    for k in ("libiovtee", "simnic_pmd", "peer"):
        if not os.path.isfile(paths[k]):
            sys.exit(f"pvp_bench: no such file: {paths[k]}")
    builds = {"stock": paths["ovs_stock"], "plugin": paths["ovs_plugin"]}
    return builds, os.path.dirname(paths["libiovtee"]), paths["simnic_pmd"], paths["peer"]


def write_outputs(out, summary):
    """pvp.txt, pvp.csv, pvp.json, pvp.png in `out` from a run's summary."""
    results, sizes, switch = summary["results"], summary["sizes"], summary["switch"]
    modes = MODES[switch]
    os.makedirs(out, exist_ok=True)
    text = table(results, sizes, switch)
    with open(os.path.join(out, "pvp.txt"), "w") as f:
        f.write(text + "\n")
    with open(os.path.join(out, "pvp.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_KEYS[switch], extrasaction="ignore")
        w.writeheader()
        for r in results:
            w.writerow(r)
    with open(os.path.join(out, "pvp.json"), "w") as f:
        json.dump(summary, f, indent=1)
    # Medians per size for the plot: Mpps per mode (then capacity per mode).
    keys = ("mpps", "cap_mpps") if switch == "iovtee" else ("mpps",)
    with open(os.path.join(out, "pvp.csv.median"), "w") as f:
        for size in sizes:
            row = [size]
            for k in keys:
                for mode in modes:
                    v = [x[k] for x in results
                         if x["size"] == size and x["mode"] == mode and x.get(k) is not None]
                    row.append(f"{statistics.median(v):.4f}" if v else "0")
            f.write(",".join(row) + "\n")
    plotted = plot(os.path.join(out, "pvp.csv"), os.path.join(out, "pvp.png"), sizes, switch)
    log(text)
    log(f"\nresults in {out} (pvp.txt, pvp.csv, pvp.json"
        + (", pvp.png" if plotted else "; no plot: gnuplot not installed") + ")")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--switch", choices=("iovtee", "ovs"), default="iovtee",
                    help="iovtee-switch (modes stock, mapped) or Open vSwitch (modes stock, "
                         "plugin); default iovtee")
    ap.add_argument("--sizes", default=DEFAULT_SIZES)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--check-rate", type=int, default=100000,
                    help="frames/s of the paced zero-loss check run (0: skip the check)")
    ap.add_argument("--out", help="results directory (default bench/pvp/results, with --switch "
                                  "ovs bench/pvp/results-ovs)")
    ap.add_argument("--no-build", action="store_true",
                    help="use what is in bazel-out (k8-opt, or k8-fastbuild with --fastbuild)")
    ap.add_argument("--fastbuild", action="store_true", help="unoptimised binaries (tests)")
    ap.add_argument("--from", dest="from_dir", metavar="DIR",
                    help="run nothing: rewrite the table, CSV and plot from DIR/pvp.json "
                         "(into --out, default DIR)")
    ap.add_argument("--huge", action="store_true",
                    help="2 MB hugepages for the switch and the guest (iovtee only; needs "
                         f"{HUGE_SWITCH_MB + HUGE_PEER_MB} MB of free hugepages); default: "
                         "4 KiB pages (--no-huge)")
    ap.add_argument("--guest-in-order", action="store_true",
                    help="let the guest negotiate VIRTIO_F_IN_ORDER where the switch offers it "
                         "(stock modes only); default: off in every mode")
    ovs_opts = ap.add_argument_group("--switch ovs: the binaries (all of them, or none to build)")
    ovs_opts.add_argument("--ovs-stock", metavar="DIR",
                          help="the stock OVS build: ovs-vswitchd, ovsdb-server, ovsdb-tool, "
                               "ovs-vsctl, ovs-appctl, ovs-ofctl, vswitch.ovsschema (or "
                               "ovs-vswitchd's path)")
    ovs_opts.add_argument("--ovs-plugin", metavar="DIR", help="the plugin build (the same)")
    ovs_opts.add_argument("--libiovtee", metavar="PATH", help="libiovtee.so")
    ovs_opts.add_argument("--simnic-pmd", metavar="PATH", help="librte_net_simnic.so")
    ovs_opts.add_argument("--peer", metavar="PATH", help="simnic_peer")
    a = ap.parse_args()
    if a.from_dir:
        with open(os.path.join(a.from_dir, "pvp.json")) as f:
            summary = json.load(f)
        summary.setdefault("switch", "iovtee")
        if "sizes" not in summary:
            summary["sizes"] = list(dict.fromkeys(r["size"] for r in summary["results"]))
        write_outputs(a.out or a.from_dir, summary)
        return 1 if summary.get("failures") else 0
    if a.guest_in_order:
        GUEST_IN_ORDER_OFF.clear()
    if a.huge and a.switch != "iovtee":
        sys.exit("pvp_bench: --huge goes with --switch iovtee")
    if a.huge and huge_pages_free_mb() < HUGE_SWITCH_MB + HUGE_PEER_MB:
        sys.exit(f"pvp_bench: --huge needs {HUGE_SWITCH_MB + HUGE_PEER_MB} MB of free hugepages, "
                 f"{huge_pages_free_mb()} MB are free (e.g. echo 1024 > "
                 "/proc/sys/vm/nr_hugepages)")
    sizes = [s.strip() for s in a.sizes.split(",") if s.strip()]
    if os.cpu_count() < 2:
        sys.exit("pvp_bench: needs 2 cores (the switch and the tester each poll one)")
    if a.switch == "iovtee" and any(getattr(a, k) for k in OVS_PATH_OPTIONS):
        sys.exit("pvp_bench: --ovs-stock, --ovs-plugin, --libiovtee, --simnic-pmd and --peer "
                 "go with --switch ovs")
    if a.out is None:
        a.out = os.path.join(TOP, "bench/pvp/results" + ("-ovs" if a.switch == "ovs" else ""))
    ovs_builds = None
    if a.switch == "ovs":
        ovs_builds, libdir, simnic_pmd, peer = ovs_binaries(a)
    elif a.no_build:
        cfg = "k8-fastbuild" if a.fastbuild else "k8-opt"
        bindir = os.path.join(TOP, "bazel-out", cfg, "bin")
        switch = os.path.join(bindir, "examples/iovtee-switch/iovtee-switch")
        peer = os.path.join(bindir, "test/softnic/peer/simnic_peer")
    else:
        log("pvp_bench: building (optimised)...")
        switch, peer = build(opt=not a.fastbuild)
    modes = MODES[a.switch]
    os.makedirs(a.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="iovtee-pvp.", dir="/tmp")  # short socket paths
    logs = os.path.join(a.out, "logs")
    os.makedirs(logs, exist_ok=True)
    if a.switch == "ovs":
        runner = OvsRunner(ovs_builds, libdir, simnic_pmd, peer, work, logs)
    else:
        runner = Runner(switch, peer, work, logs, huge=a.huge)
    results, checks, failures, stalled = [], [], [], []
    total = len(sizes) * (2 * a.rounds + (2 if a.check_rate else 0))
    done = 0
    try:
        for size in sizes:
            if a.check_rate:
                for mode in modes:
                    done += 1
                    progress(f"[{done}/{total}] {size} B {mode}: zero-loss check at "
                             f"{check_rate(a.check_rate, size)} frames/s")
                    try:
                        rate = check_rate(a.check_rate, size)
                        for attempt in range(1, CHECK_ATTEMPTS + 1):
                            steal0 = steal_ms()
                            c = runner.run(mode, size, min(a.seconds, 3), rate)
                            c.update({"steal_ms": steal_ms() - steal0, "attempt": attempt,
                                      "rate": rate})
                            checks.append(c)
                            if not stalled_loss(c) or attempt == CHECK_ATTEMPTS:
                                break
                            log(f"{size} B {mode}: {c['lost']} frames missed by the NIC while "
                                f"the VM lost {c['steal_ms']} ms to the hypervisor: checking "
                                "again")
                        if stalled_loss(c):
                            # Counted with a reason (the NIC found no descriptor while the
                            # VM was not running), on every attempt: not the datapath's.
                            stalled.append(f"{size} B {mode}: {c['lost']} frames missed by the "
                                           f"NIC during {c['steal_ms']} ms of steal time, in "
                                           f"each of {CHECK_ATTEMPTS} attempts")
                        elif c["lost"] or c["corrupted"] or c["reordered"]:
                            failures.append(f"{size} B {mode}: lost {c['lost']}, corrupted "
                                            f"{c['corrupted']}, reordered {c['reordered']} "
                                            f"at {rate} frames/s")
                    except Exception as e:  # a broken run is reported, the rest goes on
                        failures.append(f"{size} B {mode} check: {e}")
            for rnd in range(a.rounds):
                for mode in modes:
                    done += 1
                    progress(f"[{done}/{total}] {size} B {mode} round {rnd + 1}")
                    try:
                        r = runner.run(mode, size, a.seconds, 0)
                        r["round"] = rnd + 1
                        results.append(r)
                        if r["corrupted"]:
                            failures.append(f"{size} B {mode} round {rnd + 1}: "
                                            f"{r['corrupted']} corrupted frames")
                        if r.get("pmd_alone") is False:
                            failures.append(f"{size} B {mode} round {rnd + 1}: OVS's PMD thread "
                                            f"was not alone on core {OVS_PMD_CORE} (see "
                                            "logs/*.ovs.txt)")
                    except Exception as e:
                        failures.append(f"{size} B {mode} round {rnd + 1}: {e}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if sys.stdout.isatty():
        print()
    summary = {"results": results, "checks": checks, "failures": failures, "stalled": stalled,
               "cpu": cpu_model(), "cores": os.cpu_count(),
               "rounds": a.rounds, "seconds": a.seconds, "nic_ring": NIC_RING,
               "guest_in_order": "negotiated" if a.guest_in_order else "off",
               "memory": "2 MB hugepages" if a.huge else "4 KiB pages",
               "switch": a.switch, "sizes": sizes, "check_rate": a.check_rate}
    if a.switch == "ovs":
        summary.update({"ovs_builds": ovs_builds, "nic_ring": OVS_NIC_RING,
                        "pmd_core": OVS_PMD_CORE})
    write_outputs(a.out, summary)
    if checks:
        ok = [c for c in checks if not (c["lost"] or c["corrupted"] or c["reordered"])]
        retried = [c for c in checks if c.get("attempt", 1) < CHECK_ATTEMPTS and stalled_loss(c)]
        log(f"zero-loss checks at {a.check_rate} frames/s (larger frames at the bit rate of "
            f"1514 B): {len(ok)} of {len(checks) - len(retried)} clean"
            + (f"; {len(retried)} more attempts lost frames only while the VM was stalled "
               "(steal time) and were repeated" if retried else ""))
        for s_ in stalled:
            log("STALLED: " + s_)
    for f_ in failures:
        log("FAIL: " + f_)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
