#!/usr/bin/env python3
"""Counts test cases from Bazel's build event files and prints "N passed, N failed".

Usage: test_summary.py BEP_JSON [BEP_JSON ...]

For each BEP file bep-NAME.json, the bazel exit code is read from rc-NAME in the
same folder. Test cases come from each test target's test.xml; a target that
failed without a failing case in its test.xml (crash, timeout, no xml) counts as
one failed case, and so does a target that did not build. Exit status 1 when
anything failed or a bazel invocation failed, else 0.
"""
import json
import os
import sys
import xml.etree.ElementTree as ET
from urllib.parse import unquote, urlparse


def parse_xml(path):
    """Returns (passed, failed, skipped, failed_names) from a gtest/Bazel test.xml."""
    root = ET.parse(path).getroot()
    passed = failed = skipped = 0
    names = []
    for case in root.iter("testcase"):
        name = "%s.%s" % (case.get("classname", ""), case.get("name", ""))
        if case.find("failure") is not None or case.find("error") is not None:
            failed += 1
            names.append(name)
        elif case.find("skipped") is not None or case.get("status") == "notrun" \
                or case.get("result") == "skipped":
            skipped += 1
        else:
            passed += 1
    return passed, failed, skipped, names


def summarise(bep_path):
    passed = failed = skipped = 0
    failures = []
    results = {}
    broken_targets = []
    name = os.path.basename(bep_path)[len("bep-"):-len(".json")]
    rc_path = os.path.join(os.path.dirname(bep_path), "rc-%s" % name)
    rc = int(open(rc_path).read().strip()) if os.path.exists(rc_path) else 1
    if not os.path.exists(bep_path):
        return 0, 1, 0, ["[%s] bazel produced no build events (rc=%d)" % (name, rc)], rc
    with open(bep_path) as f:
        for line in f:
            ev = json.loads(line)
            eid = ev.get("id", {})
            if "testResult" in eid:
                label = eid["testResult"]["label"]
                # Keep the last attempt of each target (flaky retries).
                results[label] = ev.get("testResult", {})
            elif "targetCompleted" in eid:
                completed = ev.get("completed")
                if ev.get("aborted") or (completed is not None and not completed.get("success")):
                    broken_targets.append(eid["targetCompleted"]["label"])
    for label, res in sorted(results.items()):
        status = res.get("status", "NO_STATUS")
        xml = None
        for o in res.get("testActionOutput", []):
            if o.get("name") == "test.xml":
                xml = unquote(urlparse(o["uri"]).path)
        p = f_ = s = 0
        names = []
        if xml and os.path.exists(xml):
            try:
                p, f_, s, names = parse_xml(xml)
            except ET.ParseError:
                pass
        if status != "PASSED" and f_ == 0:
            f_ = 1
            names = ["(target %s)" % status]
        if status == "PASSED" and p + f_ + s == 0:
            p = 1
        passed += p
        failed += f_
        skipped += s
        failures += ["[%s] %s %s" % (name, label, n) for n in names]
    for label in broken_targets:
        if label not in results:
            failed += 1
            failures.append("[%s] %s did not build" % (name, label))
    if rc not in (0, 3) and failed == 0:
        failed += 1
        failures.append("[%s] bazel exited with %d" % (name, rc))
    return passed, failed, skipped, failures, rc


def main(argv):
    total_p = total_f = total_s = 0
    all_failures = []
    bad_rc = False
    for path in argv[1:]:
        p, f_, s, failures, rc = summarise(path)
        total_p += p
        total_f += f_
        total_s += s
        all_failures += failures
        bad_rc = bad_rc or rc != 0
    if all_failures:
        print("Failures:")
        for line in all_failures:
            print("  " + line)
    line = "%d passed, %d failed" % (total_p, total_f)
    if total_s:
        line += ", %d skipped" % total_s
    print(line)
    return 1 if (total_f or bad_rc or not argv[1:]) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
