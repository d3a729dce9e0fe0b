"""Checks one switch_e2e_test case: the peer's report against the switch's
--stats-file (and telemetry replies, when given).

Usage: check_run.py CASE PEER_REPORT SWITCH_STATS [TELEMETRY_JSON]
Prints what it compared; exit status 1 on any failure.
"""

import json
import sys

failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
        print(f"  FAIL: {what}")


def main():
    case, peer_path, sw_path = sys.argv[1:4]
    tel_path = sys.argv[4] if len(sys.argv) > 4 else None
    with open(peer_path) as f:
        peer = json.load(f)
    with open(sw_path) as f:
        sw = json.load(f)
    dev, guest = peer["device"], peer["guest"]
    ports = {p["name"]: p for p in sw["ports"]}
    phy, vhost = ports["phy0"], ports["vhost0"]
    m = phy["mapping"]
    acl = sw["acl"]

    print(f"  peer: sent {peer['sent']} received {peer['received']} lost {peer['lost']} "
          f"corrupted {peer['corrupted']} reordered {peer['reordered']} "
          f"iommu_faults {dev['iommu_faults']} nic_rx_missed {dev['nic_rx_missed']} "
          f"guest_drops {guest['guest_drops']}")
    for p in (phy, vhost):
        drops = {k: v for k, v in p["drops"].items() if v}
        print(f"  {p['name']}: rx {p['rx']} tx {p['tx']} rx_dropped {p['rx_dropped']} "
              f"tx_dropped {p['tx_dropped']} pushed {p['vlan_pushed']} popped {p['vlan_popped']} "
              f"unshared {p['unshared']} drops {drops}")
    print("  mapping: " + " ".join(f"{k} {v}" for k, v in m.items() if v and k != "port"))
    print(f"  acl: {[(r['rule'], r['hits']) for r in acl]} no_match {sw['acl_no_match']}; "
          f"flooded {sw['flooded']} macs {sw['macs']}")
    print(f"  perf: p2v {sw['perf']['p2v']} v2p {sw['perf']['v2p']}")

    # Integrity: every frame that came back is intact and in order.
    check(peer["sent"] > 0 and peer["received"] > 0, "traffic flowed")
    for k in ("corrupted", "reordered", "duplicates", "foreign"):
        check(peer[k] == 0, f"peer {k} == 0 (got {peer[k]})")
    check(dev["iommu_faults"] == 0, f"no IOMMU fault (got {dev['iommu_faults']})")
    check(guest.get("canary_violations", 0) == 0, "no write outside a guest buffer (canaries)")

    # Every frame not back is a drop counted with a reason somewhere. The
    # ACL's drops are of flow 0 only (its test frames; warm-up frames come
    # from other addresses).
    acl_test_drops = acl[0]["hits"] if case in ("acl", "vlan") else 0
    counted = (dev["nic_rx_missed"] + guest["guest_drops"] + phy["tx_dropped"] +
               vhost["tx_dropped"] + sum(v for k, v in phy["drops"].items()
                                         if k in ("vlan", "malformed", "same_port")) +
               sum(v for k, v in vhost["drops"].items() if k in ("vlan", "malformed", "same_port")))
    check(peer["lost"] <= acl_test_drops + counted,
          f"lost {peer['lost']} <= ACL drops {acl_test_drops} + other counted drops {counted}")

    # The mapping: attached, no rule broken, and every mbuf back in its pool
    # after the guest detached and the ports stopped.
    check(m["attaches"] >= 1, "the mapping attached")
    check(m["validation_errors"] == 0, "no validation errors")
    check(m["pool_free_mbufs"] == m["pool_mbufs"],
          f"mapped pool whole at exit ({m['pool_free_mbufs']} of {m['pool_mbufs']} free)")
    check(sw["host_pool_free_mbufs"] == sw["host_pool_mbufs"], "host pool whole at exit")
    check(m["guest_buffers_held"] == 0, "no guest buffer held at exit")
    check(m["zero_copy"] + m["copied"] == vhost["tx"],
          f"frames to the guest {vhost['tx']} == zero_copy + copied")

    # Cycle accounting covered both directions (unless telemetry reset it).
    if not tel_path:
        for d in ("p2v", "v2p"):
            perf = sw["perf"][d]
            check(perf["packets"] > 0 and perf["cycles_per_packet_p50"] > 0,
                  f"perf {d}: packets and a median")
            check(perf["cycles_per_packet_p50"] <= perf["cycles_per_packet_p99"],
                  f"perf {d}: p50 <= p99")
        check(sw["perf"]["p2v"]["packets"] == phy["rx"], "p2v packets == phy0 rx")
        check(sw["perf"]["v2p"]["packets"] == vhost["rx"], "v2p packets == vhost0 rx")

    if case in ("acl", "vlan"):
        flows = peer["per_flow"]
        f0_sent, f0_received = flows["f0_sent"], flows["f0_received"]
        check(f0_received == 0, f"flow 0 (dropped by the ACL) received {f0_received} == 0")
        check(0 < acl[0]["hits"] <= f0_sent and
              f0_sent - acl[0]["hits"] <= dev["nic_rx_missed"],
              f"ACL drop rule hits {acl[0]['hits']} == flow 0 sent {f0_sent} "
              f"(less what the NIC missed)")
        check(phy["drops"]["acl"] == acl[0]["hits"], "phy0 acl drops == the drop rule's hits")
        check(vhost["drops"]["acl"] == 0, "no ACL drop on vhost0")
        # Every frame went through the ACL once: all are IPv4 UDP, and in
        # the vlan case those from the guest carry a tag.
        evaluated = sum(p["rx"] - p["drops"]["vlan"] - p["drops"]["malformed"] for p in (phy, vhost))
        check(acl[0]["hits"] + acl[1]["hits"] + sw["acl_no_match"] == evaluated,
              f"ACL hits + no_match == frames evaluated {evaluated}")
        check(sw["acl_no_match"] == 0, "every frame matched a rule (IPv4 UDP)")
        for i in range(1, peer["flows"]):
            check(flows[f"f{i}_received"] > 0, f"flow {i} came back")
        check(m["guest_buffers_recycled"] > 0, "dropped mapped frames recycled their buffers")

    if case == "acl":
        check(m["zero_copy"] > 0, "frames delivered in place")
        check(m["copy_foreign"] == 0, "no foreign copies")
        check(sw["static_macs"] == 1, "one static MAC")
        check(sw["flooded"] == 0, "the static guest MAC: nothing flooded")

    if case == "vlan":
        check(phy["access_vlan"] == 100 and vhost["access_vlan"] == 0, "phy0 access, vhost0 trunk")
        # All frames to the guest had a tag pushed, all to the NIC had it popped.
        check(vhost["tx"] > 0 and vhost["tx"] <= vhost["vlan_pushed"] <= vhost["tx"] +
              vhost["tx_dropped"], "every frame to the guest was tagged")
        check(phy["tx"] > 0 and phy["tx"] <= phy["vlan_popped"] <= phy["tx"] + phy["tx_dropped"],
              "every frame to the NIC was untagged")
        check(vhost["vlan_popped"] == 0 and phy["vlan_pushed"] == 0, "no tag the wrong way")
        # A push cannot happen in a guest buffer: copied out first.
        check(m["zero_copy"] == 0, "no frame in place (each needed a push)")
        check(vhost["unshared"] > 0, "mapped frames were unshared for the push")
        check(m["copy_foreign"] <= vhost["unshared"] <= m["copy_foreign"] + vhost["tx_dropped"],
              "unshared frames reached the guest as foreign copies")
        check(m["copy_foreign"] + m["copy_host_buffer"] == vhost["tx"],
              "frames to the guest == foreign + host-buffer copies")

    if case == "jumbo":
        check(m["zero_copy"] == 0, "no frame in place (each spans several NIC buffers)")
        check(m["copy_multi_segment"] > 0, "multi-segment frames copied to the guest")
        check(m["copy_multi_segment"] + m["copy_host_buffer"] == vhost["tx"],
              "frames to the guest == multi-segment + host-buffer copies")
        check(int(peer["size"]) == 9018, "9018-byte frames")

    if tel_path:
        with open(tel_path) as f:
            tel = json.load(f)
        t_ports = tel["/iovtee_switch/ports"]
        check(t_ports.get("phy0/rx", 0) > 0 and "vhost0/drop_guest_refused" in t_ports,
              "telemetry ports")
        check(tel["/iovtee_switch/ports,phy0"].get("drop_acl", 0) > 0, "telemetry ports,phy0")
        check(tel["/iovtee_switch/acl"].get("rule0") == acl[0]["rule"] and
              tel["/iovtee_switch/acl"].get("rule0/hits", 0) > 0, "telemetry acl")
        t_map = tel["/iovtee_switch/mappings"]
        check(t_map.get("phy0q0/guest") == "vhost0" and t_map.get("phy0q0/zero_copy", 0) > 0 and
              t_map.get("phy0q0/pool_mbufs") == m["pool_mbufs"], "telemetry mappings")
        t_perf = tel["/iovtee_switch/perf"]
        check(t_perf.get("p2v/packets", 0) > 0 and t_perf.get("v2p/cycles_per_packet_p50", 0) > 0,
              "telemetry perf")
        check(tel["perf_after_reset"].get("p2v/packets") == 0, "telemetry perf_reset")

    print(f"  {'PASS' if not failures else 'FAIL'} {case}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
