#!/usr/bin/env python3
"""The PVP benchmark: iovtee-switch with the mapping off (stock vhost path) and
on, side by side, on the built-in soft NIC, in the same run.

  simnic_peer (core 0): generator -> soft NIC -> [switch] -> guest (DPDK
      virtio-user, macswap) -> [switch] -> soft NIC -> checker
  iovtee-switch (core 1): phy0 <-> vhost0, stock or --map phy0:0=vhost0

For every size, runs alternate stock, mapped, stock, mapped, ... (A B A B),
`--rounds` times each, and the ratio mapped/stock is taken from the medians
of the same run. Each run reports: Mpps and Gbps back at the tester, the
switch's busy cycles per packet in each direction (its own per-burst TSC
accounting), the CPU share each process got, loss, corruption, latency.
Before the throughput runs, one paced run per size and mode (well below
saturation) must show zero loss and zero corruption.

Writes DIR/pvp.csv, DIR/pvp.json, DIR/pvp.txt (the table) and DIR/pvp.png
(gnuplot, when installed), and prints the table.

  bench/pvp/pvp_bench.py [--sizes 64,128,256,512,1024,1514,9000,imix]
      [--rounds 3] [--seconds 5] [--check-rate 100000] [--out DIR]
"""

import argparse
import csv
import json
import os
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


def build(opt=True):
    cfg = ["--config=opt"] if opt else []
    targets = ["//examples/iovtee-switch", "//test/softnic/peer:simnic_peer"]
    r = subprocess.run(["bazel", "build"] + cfg + targets, cwd=TOP,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        sys.exit("pvp_bench: build failed:\n" + r.stdout[-3000:])
    out = subprocess.run(["bazel", "info"] + cfg + ["bazel-bin"], cwd=TOP,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    bindir = out.stdout.strip()
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


class Runner:
    def __init__(self, switch, peer, work, logs):
        self.switch, self.peer, self.work, self.logs = switch, peer, work, logs
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
                    "--core", "0", "--report", report, f"--rate={rate}",
                    # Throughput runs read one payload in 64 (every frame's headers,
                    # sequence and loss are still checked); paced checks read all.
                    "--verify=all" if rate else "--verify=sample:64",
                    f"--duration={seconds}", "--warmup=1", "--linger=15"] + size_args(size)
        if jumbo:
            peer_cmd += ["--guest-mbuf-size=10240"]
        prefix = f"iovtee-pvp{os.getpid()}-{name}"
        sw_cmd = [self.switch, "-l", "1", "--no-huge", "-m", "1024", "--no-pci", "--no-shconf",
                  "--no-telemetry", "--file-prefix", prefix, "--",
                  "--phy", f"net_simnic0,socket={nic}", "--vhost", vhost,
                  "--rx-ring", "256", "--stats-file", swstats]
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
            shutil.rmtree(f"/var/run/dpdk/{prefix}", ignore_errors=True)
        with open(report) as f:
            r = json.load(f)
        sw = {}
        if os.path.exists(swstats):
            with open(swstats) as f:
                sw = json.load(f)
        return summarize(mode, size, r, sw, sw_share)


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


def perf_stage(sw, direction, stage):
    perf = find(sw, "perf")
    d = perf.get(direction) if isinstance(perf, dict) else None
    return d.get(f"{stage}_cycles_per_packet") if isinstance(d, dict) else None


def summarize(mode, size, r, sw, sw_share):
    g = lambda k: find(r, k)
    res = {
        "mode": mode, "size": size,
        "mpps": g("rx_mpps") or 0.0,
        "gbps": g("rx_gbps") or 0.0,
        "sent": g("sent"), "received": g("received"),
        "lost": g("lost"), "corrupted": g("corrupted"), "reordered": g("reordered"),
        "p50_us": (g("p50_ns") or 0) / 1000.0, "p99_us": (g("p99_ns") or 0) / 1000.0,
        "peer_cpu": g("cpu_share") or 0.0, "switch_cpu": sw_share,
        "p2v_cycles": perf_median(sw, "p2v"), "v2p_cycles": perf_median(sw, "v2p"),
        "p2v_rx": perf_stage(sw, "p2v", "rx"), "p2v_switch": perf_stage(sw, "p2v", "switch"),
        "p2v_tx": perf_stage(sw, "p2v", "tx"),
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


def table(results, sizes):
    lines = []
    hdr = (f"{'size':>5} {'mode':>6} {'Mpps':>7} {'Gbps':>7} {'P->V cyc':>9} {'V->P cyc':>9} "
           f"{'sw cpu':>7} {'tst cpu':>7} {'lost':>6} {'corrupt':>7} {'p50 us':>7} {'p99 us':>7}")
    lines.append(hdr)
    for size in sizes:
        med = {}
        for mode in ("stock", "mapped"):
            rs = [x for x in results if x["size"] == size and x["mode"] == mode]
            if not rs:
                continue
            m = lambda k: (statistics.median([x[k] for x in rs if x[k] is not None])
                           if any(x[k] is not None for x in rs) else None)
            med[mode] = {k: m(k) for k in ("mpps", "gbps", "p2v_cycles", "v2p_cycles",
                                           "switch_cpu", "peer_cpu", "p50_us", "p99_us")}
            lost = sum(x["lost"] or 0 for x in rs)
            bad = sum(x["corrupted"] or 0 for x in rs)
            d = med[mode]
            lines.append(f"{size:>5} {mode:>6} {fmt(d['mpps'], '7.3f')} {fmt(d['gbps'], '7.2f')} "
                         f"{fmt(d['p2v_cycles'], '9.0f')} {fmt(d['v2p_cycles'], '9.0f')} "
                         f"{fmt(100 * d['switch_cpu'], '6.0f')}% {fmt(100 * d['peer_cpu'], '6.0f')}% "
                         f"{lost:>6} {bad:>7} {fmt(d['p50_us'], '7.1f')} {fmt(d['p99_us'], '7.1f')}")
        if "stock" in med and "mapped" in med and med["stock"]["mpps"]:
            s, mp = med["stock"], med["mapped"]
            ratio = mp["mpps"] / s["mpps"]
            cyc = (f", P->V cycles {mp['p2v_cycles'] / s['p2v_cycles']:.2f}x"
                   if mp["p2v_cycles"] and s["p2v_cycles"] else "")
            lines.append(f"{size:>5} {'ratio':>6} mapped/stock throughput {ratio:.2f}x{cyc}")
    return "\n".join(lines)


def plot(csv_path, png_path, sizes):
    if shutil.which("gnuplot") is None:
        return False
    script = f"""
set terminal pngcairo size 900,500
set output '{png_path}'
set datafile separator ','
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set ylabel 'Mpps back at the tester (median)'
set xlabel 'frame size (bytes)'
set key top right
set title 'iovtee PVP: stock vhost path vs mapped Rx queue'
plot '{csv_path}.median' using 2:xtic(1) title 'stock', '' using 3 title 'mapped'
"""
    with open(csv_path + ".gp", "w") as f:
        f.write(script)
    r = subprocess.run(["gnuplot", csv_path + ".gp"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    return r.returncode == 0


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default=DEFAULT_SIZES)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--check-rate", type=int, default=100000,
                    help="frames/s of the paced zero-loss check run (0: skip the check)")
    ap.add_argument("--out", default=os.path.join(TOP, "bench/pvp/results"))
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--fastbuild", action="store_true", help="unoptimised binaries (tests)")
    a = ap.parse_args()
    sizes = [s.strip() for s in a.sizes.split(",") if s.strip()]
    if os.cpu_count() < 2:
        sys.exit("pvp_bench: needs 2 cores (the switch and the tester each poll one)")
    if a.no_build:
        cfg = "k8-fastbuild" if a.fastbuild else "k8-opt"
        bindir = os.path.join(TOP, "bazel-out", cfg, "bin")
        switch = os.path.join(bindir, "examples/iovtee-switch/iovtee-switch")
        peer = os.path.join(bindir, "test/softnic/peer/simnic_peer")
    else:
        log("pvp_bench: building (optimised)...")
        switch, peer = build(opt=not a.fastbuild)
    os.makedirs(a.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="iovtee-pvp.", dir="/tmp")  # short socket paths
    logs = os.path.join(a.out, "logs")
    os.makedirs(logs, exist_ok=True)
    runner = Runner(switch, peer, work, logs)
    results, checks, failures = [], [], []
    total = len(sizes) * (2 * a.rounds + (2 if a.check_rate else 0))
    done = 0
    try:
        for size in sizes:
            if a.check_rate:
                for mode in ("stock", "mapped"):
                    done += 1
                    progress(f"[{done}/{total}] {size} B {mode}: zero-loss check at "
                             f"{a.check_rate} frames/s")
                    try:
                        c = runner.run(mode, size, min(a.seconds, 3), a.check_rate)
                        checks.append(c)
                        if c["lost"] or c["corrupted"] or c["reordered"]:
                            failures.append(f"{size} B {mode}: lost {c['lost']}, corrupted "
                                            f"{c['corrupted']}, reordered {c['reordered']} "
                                            f"at {a.check_rate} frames/s")
                    except Exception as e:  # a broken run is reported, the rest goes on
                        failures.append(f"{size} B {mode} check: {e}")
            for rnd in range(a.rounds):
                for mode in ("stock", "mapped"):
                    done += 1
                    progress(f"[{done}/{total}] {size} B {mode} round {rnd + 1}")
                    try:
                        r = runner.run(mode, size, a.seconds, 0)
                        r["round"] = rnd + 1
                        results.append(r)
                        if r["corrupted"]:
                            failures.append(f"{size} B {mode} round {rnd + 1}: "
                                            f"{r['corrupted']} corrupted frames")
                    except Exception as e:
                        failures.append(f"{size} B {mode} round {rnd + 1}: {e}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if sys.stdout.isatty():
        print()
    text = table(results, sizes)
    with open(os.path.join(a.out, "pvp.txt"), "w") as f:
        f.write(text + "\n")
    keys = ["size", "mode", "round", "mpps", "gbps", "p2v_cycles", "v2p_cycles", "p2v_rx",
            "p2v_switch", "p2v_tx", "switch_cpu",
            "peer_cpu", "sent", "received", "lost", "corrupted", "reordered", "p50_us",
            "p99_us", "zero_copy", "iommu_faults"]
    with open(os.path.join(a.out, "pvp.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys, extrasaction="ignore")
        w.writeheader()
        for r in results:
            w.writerow(r)
    with open(os.path.join(a.out, "pvp.json"), "w") as f:
        json.dump({"results": results, "checks": checks, "failures": failures,
                   "cpu": cpu_model(), "cores": os.cpu_count(),
                   "rounds": a.rounds, "seconds": a.seconds}, f, indent=1)
    # Medians per size for the plot.
    with open(os.path.join(a.out, "pvp.csv.median"), "w") as f:
        for size in sizes:
            row = [size]
            for mode in ("stock", "mapped"):
                v = [x["mpps"] for x in results if x["size"] == size and x["mode"] == mode]
                row.append(f"{statistics.median(v):.4f}" if v else "0")
            f.write(",".join(row) + "\n")
    plotted = plot(os.path.join(a.out, "pvp.csv"), os.path.join(a.out, "pvp.png"), sizes)
    log(text)
    log(f"\nresults in {a.out} (pvp.txt, pvp.csv, pvp.json"
        + (", pvp.png" if plotted else "; no plot: gnuplot not installed") + ")")
    if checks:
        ok = [c for c in checks if not (c["lost"] or c["corrupted"] or c["reordered"])]
        log(f"zero-loss checks at {a.check_rate} frames/s: {len(ok)} of {len(checks)} clean")
    for f_ in failures:
        log("FAIL: " + f_)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
