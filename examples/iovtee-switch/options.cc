#include "examples/iovtee-switch/options.h"

#include <cmath>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "examples/iovtee-switch/mac_table.h"
#include "examples/iovtee-switch/vlan.h"

namespace iovtee::sw {
namespace {

absl::Status Bad(const std::string& opt, const std::string& value, const std::string& want) {
  return absl::InvalidArgumentError(
      absl::StrCat("bad value '", value, "' for --", opt, ": expected ", want));
}

template <typename T>
absl::Status ParseUint(const std::string& opt, const std::string& value, uint64_t lo, uint64_t hi,
                       T* out) {
  uint64_t v;
  if (!absl::SimpleAtoi(value, &v) || v < lo || v > hi) {
    return Bad(opt, value, absl::StrCat("an integer in ", lo, "..", hi));
  }
  *out = static_cast<T>(v);
  return absl::OkStatus();
}

bool IsFlag(const std::string& key) { return key == "help" || key == "vhost-client"; }

// Port references are resolved once every --phy and --vhost is known.
struct Pending {
  std::vector<std::string> maps, macs, vlans;
};

absl::Status Apply(const std::string& key, const std::string& v, SwitchOptions* o, Pending* p) {
  if (key == "help") {
    o->help = true;
    return absl::OkStatus();
  }
  if (key == "vhost-client") {
    o->vhost_client = true;
    return absl::OkStatus();
  }
  if (key == "phy") {
    if (v.empty()) return Bad(key, v, "DPDK devargs, e.g. net_simnic0,socket=PATH");
    o->phy_devargs.push_back(v);
    return absl::OkStatus();
  }
  if (key == "vhost") {
    if (v.empty()) return Bad(key, v, "a vhost-user socket path");
    o->vhost_paths.push_back(v);
    return absl::OkStatus();
  }
  if (key == "map") {
    p->maps.push_back(v);
    return absl::OkStatus();
  }
  if (key == "mac") {
    p->macs.push_back(v);
    return absl::OkStatus();
  }
  if (key == "vlan") {
    p->vlans.push_back(v);
    return absl::OkStatus();
  }
  if (key == "acl") {
    auto rule = ParseAclRule(v);
    if (!rule.ok()) return rule.status();
    o->acl.push_back(std::move(*rule));
    return absl::OkStatus();
  }
  if (key == "residency-cap") return ParseUint(key, v, 0, 65536, &o->mapping.residency_cap);
  if (key == "nic-buffer") return ParseUint(key, v, 256, 65535, &o->mapping.nic_buffer_size);
  if (key == "pool-size") return ParseUint(key, v, 64, 1u << 24, &o->mapping.pool_size);
  if (key == "guest-rx-order") {
    if (v == "detect") {
      o->mapping.guest_rx_order = GuestRxOrder::kDetect;
    } else if (v == "trust") {
      o->mapping.guest_rx_order = GuestRxOrder::kTrustIds;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("--guest-rx-order ", v, ": expected detect or trust"));
    }
    return absl::OkStatus();
  }
  if (key == "rx-ring") return ParseUint(key, v, 32, 32768, &o->rx_ring);
  if (key == "tx-ring") return ParseUint(key, v, 32, 32768, &o->tx_ring);
  if (key == "host-mbufs") return ParseUint(key, v, 1024, 1u << 24, &o->host_mbufs);
  if (key == "mtu") return ParseUint(key, v, 68, 16000, &o->mtu);
  if (key == "mac-aging") return ParseUint(key, v, 0, 1000000, &o->mac_aging_s);
  if (key == "mac-table-size") return ParseUint(key, v, 16, 1u << 20, &o->mac_table_size);
  if (key == "duration") {
    double d;
    if (!absl::SimpleAtod(v, &d) || !std::isfinite(d) || d < 0 || d > 1e7) {
      return Bad(key, v, "seconds >= 0 (0: until SIGINT/SIGTERM)");
    }
    o->duration_s = d;
    return absl::OkStatus();
  }
  if (key == "stats-file") {
    if (v.empty()) return Bad(key, v, "a file path");
    o->stats_file = v;
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown option --", key, " (see --help)"));
}

// "phy0" / "vhost1" -> port index, or -1.
int PortIndex(const SwitchOptions& o, const std::string& name) {
  for (size_t i = 0; i < o.port_count(); ++i) {
    if (o.PortName(i) == name) return static_cast<int>(i);
  }
  return -1;
}

std::string PortList(const SwitchOptions& o) {
  std::string s;
  for (size_t i = 0; i < o.port_count(); ++i) absl::StrAppend(&s, i ? ", " : "", o.PortName(i));
  return s.empty() ? "none: add --phy/--vhost" : s;
}

absl::Status NoSuchPort(const std::string& opt, const std::string& v, const std::string& port,
                        const SwitchOptions& o) {
  return absl::InvalidArgumentError(absl::StrCat("bad value '", v, "' for --", opt, ": no port '",
                                                 port, "' (ports: ", PortList(o), ")"));
}

absl::Status ResolveMap(const std::string& v, SwitchOptions* o) {
  const std::string want = "PHY:QUEUE=VHOST, e.g. phy0:0=vhost0";
  const size_t colon = v.find(':'), eq = v.find('=');
  if (colon == std::string::npos || eq == std::string::npos || eq < colon) {
    return Bad("map", v, want);
  }
  const std::string phy = v.substr(0, colon), vhost = v.substr(eq + 1);
  uint32_t queue;
  if (!absl::SimpleAtoi(v.substr(colon + 1, eq - colon - 1), &queue)) return Bad("map", v, want);
  const int pi = PortIndex(*o, phy), vi = PortIndex(*o, vhost);
  if (pi < 0 || pi >= static_cast<int>(o->phy_devargs.size())) {
    return NoSuchPort("map", v, phy, *o);
  }
  if (vi < static_cast<int>(o->phy_devargs.size())) return NoSuchPort("map", v, vhost, *o);
  if (queue != 0) return Bad("map", v, "queue 0 (the switch uses one Rx queue per phy port)");
  MapSpec m;
  m.phy = static_cast<uint16_t>(pi);
  m.queue = static_cast<uint16_t>(queue);
  m.vhost = static_cast<uint16_t>(vi - o->phy_devargs.size());
  for (const MapSpec& other : o->maps) {
    if (other.phy == m.phy && other.queue == m.queue) {
      return Bad("map", v, "each phy queue mapped once");
    }
    if (other.vhost == m.vhost) return Bad("map", v, "each vhost port the guest of one mapping");
  }
  o->maps.push_back(m);
  return absl::OkStatus();
}

absl::Status ResolveMac(const std::string& v, SwitchOptions* o) {
  const size_t eq = v.find('=');
  if (eq == std::string::npos) return Bad("mac", v, "PORT=MAC, e.g. vhost1=02:00:00:00:00:0b");
  const std::string port = v.substr(0, eq);
  const int pi = PortIndex(*o, port);
  if (pi < 0) return NoSuchPort("mac", v, port, *o);
  StaticMac s;
  s.port = static_cast<uint16_t>(pi);
  if (!ParseMac(v.substr(eq + 1), s.mac)) {
    return Bad("mac", v, "PORT=MAC with MAC as xx:xx:xx:xx:xx:xx");
  }
  if (IsMulticastMac(s.mac)) return Bad("mac", v, "a unicast MAC (the first byte even)");
  for (const StaticMac& other : o->static_macs) {
    if (MacKey(other.mac) == MacKey(s.mac)) return Bad("mac", v, "each MAC given once");
  }
  o->static_macs.push_back(s);
  return absl::OkStatus();
}

absl::Status ResolveVlan(const std::string& v, SwitchOptions* o) {
  const size_t eq = v.find('=');
  if (eq == std::string::npos) return Bad("vlan", v, "PORT=VID, e.g. vhost0=100");
  const std::string port = v.substr(0, eq);
  const int pi = PortIndex(*o, port);
  if (pi < 0) return NoSuchPort("vlan", v, port, *o);
  uint16_t vid;
  if (absl::Status s = ParseUint("vlan", v.substr(eq + 1), 1, kMaxVid, &vid); !s.ok()) {
    return Bad("vlan", v, absl::StrCat("PORT=VID with VID in 1..", kMaxVid));
  }
  if (o->access_vid[pi] != 0) return Bad("vlan", v, "one VLAN per port");
  o->access_vid[pi] = vid;
  return absl::OkStatus();
}

}  // namespace

std::string SwitchOptions::PortName(size_t index) const {
  if (index < phy_devargs.size()) return absl::StrCat("phy", index);
  return absl::StrCat("vhost", index - phy_devargs.size());
}

absl::StatusOr<SwitchOptions> ParseSwitchOptions(const std::vector<std::string>& args) {
  SwitchOptions o;
  Pending p;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg.rfind("--", 0) != 0 || arg.size() == 2) {
      return absl::InvalidArgumentError(
          absl::StrCat("unexpected argument '", arg, "' (options start with --; see --help)"));
    }
    std::string key = arg.substr(2), value;
    if (const size_t eq = key.find('='); eq != std::string::npos) {
      value = key.substr(eq + 1);
      key.resize(eq);
      if (IsFlag(key)) {
        return absl::InvalidArgumentError(absl::StrCat("--", key, " takes no value"));
      }
    } else if (!IsFlag(key)) {
      if (i + 1 >= args.size()) {
        return absl::InvalidArgumentError(absl::StrCat("--", key, " needs a value"));
      }
      value = args[++i];
    }
    if (absl::Status s = Apply(key, value, &o, &p); !s.ok()) return s;
  }
  if (o.help) return o;
  if (o.port_count() < 2) {
    return absl::InvalidArgumentError(
        "a switch needs at least two ports: give --phy DEVARGS and/or --vhost PATH");
  }
  if (o.port_count() > kMaxPorts) {
    return absl::InvalidArgumentError(
        absl::StrCat("too many ports (--phy and --vhost): at most ", kMaxPorts));
  }
  o.access_vid.assign(o.port_count(), 0);
  for (const std::string& v : p.maps) {
    if (absl::Status s = ResolveMap(v, &o); !s.ok()) return s;
  }
  for (const std::string& v : p.macs) {
    if (absl::Status s = ResolveMac(v, &o); !s.ok()) return s;
  }
  for (const std::string& v : p.vlans) {
    if (absl::Status s = ResolveVlan(v, &o); !s.ok()) return s;
  }
  return o;
}

std::string SwitchUsage(const char* argv0) {
  return absl::StrCat("usage: ", argv0, " [EAL options] -- [options]\n", R"(
An L2 switch between DPDK ethdev ports ("phy") and vhost-user ports: MAC
learning with aging, static MACs, VLAN access ports, an IPv4 ACL, counters
for every drop. A phy Rx queue can be mapped onto a vhost port's guest with
iovtee (--map): the NIC then writes frames straight into the guest's Rx
buffers and frames for that guest are delivered without a copy. Without
--map the stock vhost path (rte_vhost_enqueue_burst, one copy) is used.

Ports (named phy0, phy1, ... and vhost0, vhost1, ... in the order given):
  --phy DEVARGS            a phy port probed from devargs (repeatable), e.g.
                           net_simnic0,socket=/tmp/nic.sock
  --vhost PATH             a vhost-user port (repeatable); server socket unless
  --vhost-client           connect to the --vhost paths instead of listening
  --mtu N                  MTU of the phy ports (default 1500). Rx scatter is
                           turned on when a frame (N + 18 bytes, + 4 for a VLAN
                           tag) does not fit one Rx buffer; Tx sends
                           multi-segment frames
Mapping (iovtee):
  --map PHY:Q=VHOST        map that phy Rx queue onto the guest Rx queue of the
                           vhost port, e.g. phy0:0=vhost0 (repeatable)
  --residency-cap N        guest buffers the NIC may hold (default 0: half the
                           guest ring)
  --nic-buffer N           a mapped queue's Rx buffer size (default 1518)
  --pool-size N            mbufs in each mapped pool (default 4096)
  --guest-rx-order detect|trust
                           split ring, mergeable off: copy every frame in ring
                           order until the guest shows it reads used ids
                           (detect, the default: safe for DPDK's vectorized
                           Rx path), or lend buffers at once (trust: Linux,
                           DPDK with vectorized=0)
Switching:
  --mac PORT=MAC           a static MAC entry: frames for MAC go to PORT, in every
                           VLAN the port carries; never ages (repeatable), e.g.
                           --mac vhost1=02:00:00:00:00:0b
  --mac-aging S            learned MACs age out after S seconds (default 300;
                           0: never)
  --mac-table-size N       learned MACs at most (default 4096); beyond it frames
                           to unknown MACs are flooded
  --vlan PORT=VID          PORT is an access port of VLAN VID (1..4094): its
                           frames are untagged; on trunk ports (every port
                           without --vlan) they carry tag VID (repeatable)
  --acl RULE               an IPv4 ACL rule (repeatable; first match wins; no
                           match: allow; frames that are not IPv4 are allowed;
                           IPv4 behind one VLAN tag is matched):
                           drop|allow[,proto=udp|tcp|icmp|any][,src=CIDR|any]
                           [,dst=CIDR|any][,sport=N|any][,dport=N|any]
                           e.g. --acl drop,proto=udp,src=10.0.0.0/24,dport=53
Resources:
  --rx-ring N / --tx-ring N   phy ring sizes (default 1024)
  --host-mbufs N           mbufs in the host pool (default 16384)
Run:
  --duration S             stop after S seconds (default 0: until SIGINT/SIGTERM)
  --stats-file PATH        write the counters as JSON at exit: per port (rx, tx,
                           rx_dropped, tx_dropped, bytes, drops by reason), per
                           ACL rule (hits), per mapping (every iovtee
                           MappingStats field, pool_mbufs, pool_free_mbufs,
                           read after the guest is detached and the ports are
                           stopped) and the loop's cycles per packet (perf)
  --help                   this text

Telemetry (dpdk-telemetry.py, when EAL runs with telemetry):
  /iovtee_switch/ports       per-port counters and drops by reason
  /iovtee_switch/acl         hits per ACL rule
  /iovtee_switch/mappings    per-mapping counters and pool occupancy
  /iovtee_switch/perf        busy cycles per packet (P->V, V->P: p50, p99,
                             mean), bursts, idle polls
  /iovtee_switch/perf_reset  restarts the cycle accounting (e.g. after warm-up)
Logs: rte_log type iovtee.switch (EAL --log-level=iovtee.switch:debug).

Exit status: 0 done, 1 set-up failed, 2 bad options.
)");
}

}  // namespace iovtee::sw
