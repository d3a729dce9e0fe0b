"""Queries iovtee-switch's telemetry endpoints over DPDK's telemetry socket.

Usage: telemetry_query.py SOCKET OUT_JSON

Writes {"<command>": <reply>, ...} for /iovtee_switch/ports, ports,phy0, acl,
mappings and perf, then asks for /iovtee_switch/perf_reset and polls perf
until the reset shows (p2v packets back to 0: the run's traffic is over by
then), with a deadline; the polled reply is stored as "perf_after_reset".
Exit status 0 when every command answered.
"""

import json
import socket
import sys
import time


def main():
    path, out = sys.argv[1], sys.argv[2]
    deadline = time.monotonic() + 10
    while True:  # the switch is up (the peer's run is over), so this is quick
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            s.connect(path)
            break
        except OSError as e:
            if time.monotonic() > deadline:
                print(f"  telemetry: cannot connect to {path}: {e}", file=sys.stderr)
                return 1
            time.sleep(0.05)
    info = json.loads(s.recv(16384).decode())
    size = max(int(info.get("max_output_len", 16384)), 16384)

    def query(cmd):
        s.send(cmd.encode())
        return json.loads(s.recv(size).decode())

    replies = {}
    for cmd in ("/iovtee_switch/ports", "/iovtee_switch/ports,phy0", "/iovtee_switch/acl",
                "/iovtee_switch/mappings", "/iovtee_switch/perf", "/iovtee_switch/perf_reset"):
        replies[cmd] = query(cmd).get(cmd.split(",")[0])
    deadline = time.monotonic() + 5
    while True:
        perf = query("/iovtee_switch/perf").get("/iovtee_switch/perf") or {}
        if perf.get("p2v/packets") == 0 or time.monotonic() > deadline:
            replies["perf_after_reset"] = perf
            break
        time.sleep(0.01)
    with open(out, "w") as f:
        json.dump(replies, f, indent=1)
    missing = [c for c, r in replies.items() if r is None]
    if missing:
        print(f"  telemetry: no reply to {missing}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
