#!/usr/bin/env python3
"""Tests of the PVP runner's own logic: the paced check's rules and the
tables it writes from a recorded run (docs/results), without running one."""

import json
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.realpath(__file__))
sys.path.insert(0, HERE)
import pvp_bench  # noqa: E402

RECORDED = os.environ.get("PVP_RECORDED", os.path.join(HERE, "../../docs/results/pvp-4k.json"))


class CheckRules(unittest.TestCase):
    def test_large_frames_keep_the_bit_rate_of_1514(self):
        self.assertEqual(pvp_bench.check_rate(100000, "64"), 100000)
        self.assertEqual(pvp_bench.check_rate(100000, "1514"), 100000)
        self.assertEqual(pvp_bench.check_rate(100000, "imix"), 100000)
        self.assertEqual(pvp_bench.check_rate(100000, "9000"), 100000 * 1514 // 9000)

    def test_only_nic_misses_during_steal_are_repeated(self):
        base = {"lost": 10, "corrupted": 0, "reordered": 0, "steal_ms": 20, "nic_missed": 10}
        self.assertTrue(pvp_bench.stalled_loss(base))
        self.assertFalse(pvp_bench.stalled_loss(dict(base, steal_ms=0)), "no steal: a real loss")
        self.assertFalse(pvp_bench.stalled_loss(dict(base, nic_missed=9)), "lost beyond misses")
        self.assertFalse(pvp_bench.stalled_loss(dict(base, corrupted=1)))
        self.assertFalse(pvp_bench.stalled_loss(dict(base, reordered=1)))
        self.assertFalse(pvp_bench.stalled_loss(dict(base, lost=0)), "nothing lost")
        self.assertTrue(pvp_bench.stalled_loss(dict(base, lost=12, switch_drops=2)),
                        "misses plus drops the switch counted with a reason")
        self.assertFalse(pvp_bench.stalled_loss(dict(base, lost=13, switch_drops=2)))

    def test_capacity_is_tsc_over_a_round_trip(self):
        sw = {"perf": {"tsc_hz": 2000000000, "p2v": {"cycles_per_packet_mean": 300},
                       "v2p": {"cycles_per_packet_mean": 200}}}
        self.assertAlmostEqual(pvp_bench.capacity(sw), 4.0)
        self.assertIsNone(pvp_bench.capacity({"perf": {"tsc_hz": 2000000000}}))


class Outputs(unittest.TestCase):
    def test_tables_from_a_recorded_run(self):
        with open(RECORDED) as f:
            summary = json.load(f)
        with tempfile.TemporaryDirectory() as d:
            src = os.path.join(d, "in")
            os.makedirs(src)
            with open(os.path.join(src, "pvp.json"), "w") as f:
                json.dump(summary, f)
            out = os.path.join(d, "out")
            r = subprocess.run([sys.executable, os.path.join(HERE, "pvp_bench.py"), "--from", src,
                                "--out", out], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
            self.assertEqual(r.returncode, 1 if summary.get("failures") else 0, r.stdout)
            with open(os.path.join(out, "pvp.txt")) as f:
                text = f.read()
            sizes = list(dict.fromkeys(x["size"] for x in summary["results"]))
            for size in sizes:
                self.assertRegex(text, rf"\n *{size} +ratio mapped/stock throughput [0-9.]+x")
            # The medians in the table are those of the recorded rounds.
            stock64 = sorted(x["mpps"] for x in summary["results"]
                             if x["size"] == "64" and x["mode"] == "stock")
            self.assertIn(f"{stock64[len(stock64) // 2]:.3f}", text)
            with open(os.path.join(out, "pvp.csv")) as f:
                rows = f.read().strip().splitlines()
            self.assertEqual(len(rows), 1 + len(summary["results"]))
            with open(os.path.join(out, "pvp.csv.median")) as f:
                self.assertEqual(len(f.read().strip().splitlines()), len(sizes))


if __name__ == "__main__":
    unittest.main()
