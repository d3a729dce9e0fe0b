#include "examples/iovtee-switch/telemetry.h"

#include <rte_cycles.h>
#include <rte_telemetry.h>

#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "examples/iovtee-switch/log.h"
#include "examples/iovtee-switch/stats.h"

namespace iovtee::sw {
namespace {

absl::Mutex g_mu;
Switch* g_sw ABSL_GUARDED_BY(g_mu) = nullptr;

// Adds "PREFIXname": value entries to a telemetry dict (names may hold '/').
class TelDict {
 public:
  TelDict(rte_tel_data* d, std::string prefix) : d_(d), prefix_(std::move(prefix)) {}
  void operator()(const char* name, uint64_t v) {
    rte_tel_data_add_dict_u64(d_, (prefix_ + name).c_str(), v);
  }

 private:
  rte_tel_data* d_;
  std::string prefix_;
};

int Ports(const char*, const char* params, rte_tel_data* d) {
  absl::MutexLock lock(&g_mu);
  if (g_sw == nullptr) return -1;
  const std::string only = params != nullptr ? params : "";
  rte_tel_data_start_dict(d);
  bool found = false;
  for (const auto& p : g_sw->ports()) {
    if (!only.empty() && p->name != only) continue;
    found = true;
    TelDict f(d, only.empty() ? p->name + "/" : "");
    ForEachPortCounter(*p, f);
    TelDict drops(d, only.empty() ? p->name + "/drop_" : "drop_");
    ForEachDrop(*p, drops);
  }
  if (only.empty()) {
    rte_tel_data_add_dict_u64(d, "flooded", g_sw->flooded());
    rte_tel_data_add_dict_u64(d, "macs_learned", g_sw->macs_learned());
    rte_tel_data_add_dict_u64(d, "mac_table_full", g_sw->mac_table_full());
  }
  return found ? 0 : -EINVAL;  // an unknown port name
}

int Acl(const char*, const char*, rte_tel_data* d) {
  absl::MutexLock lock(&g_mu);
  if (g_sw == nullptr) return -1;
  rte_tel_data_start_dict(d);
  for (size_t r = 0; r < g_sw->acl().size(); ++r) {
    rte_tel_data_add_dict_string(d, absl::StrCat("rule", r).c_str(), g_sw->acl()[r].text.c_str());
    rte_tel_data_add_dict_u64(d, absl::StrCat("rule", r, "/hits").c_str(), g_sw->acl_hits(r));
  }
  rte_tel_data_add_dict_u64(d, "no_match", g_sw->acl_no_match());
  return 0;
}

int Mappings(const char*, const char*, rte_tel_data* d) {
  absl::MutexLock lock(&g_mu);
  if (g_sw == nullptr) return -1;
  rte_tel_data_start_dict(d);
  for (const auto& p : g_sw->ports()) {
    if (!p->rx_map) continue;
    const std::string prefix = absl::StrCat(p->name, "q", p->rx_map->queue_id(), "/");
    rte_tel_data_add_dict_string(d, (prefix + "guest").c_str(), p->rx_map_guest.c_str());
    TelDict f(d, prefix);
    ForEachMappingField(*p->rx_map, f);
  }
  return 0;
}

int Perf(const char*, const char*, rte_tel_data* d) {
  absl::MutexLock lock(&g_mu);
  if (g_sw == nullptr) return -1;
  const LoopPerf& perf = g_sw->perf();
  rte_tel_data_start_dict(d);
  rte_tel_data_add_dict_u64(d, "tsc_hz", rte_get_tsc_hz());
  rte_tel_data_add_dict_u64(d, "idle_polls", perf.idle_polls.Get());
  rte_tel_data_add_dict_u64(d, "idle_cycles", perf.idle_cycles.Get());
  TelDict p2v(d, "p2v/");
  ForEachPerfField(perf.p2v, p2v);
  TelDict v2p(d, "v2p/");
  ForEachPerfField(perf.v2p, v2p);
  return 0;
}

int PerfReset(const char*, const char*, rte_tel_data* d) {
  absl::MutexLock lock(&g_mu);
  if (g_sw == nullptr) return -1;
  g_sw->RequestPerfReset();  // done by the forwarding loop within a millisecond
  rte_tel_data_start_dict(d);
  rte_tel_data_add_dict_u64(d, "reset_requested", 1);
  return 0;
}

}  // namespace

void RegisterTelemetry(Switch* sw) {
  static const bool registered = [] {
    struct Cmd {
      const char* name;
      telemetry_cb fn;
      const char* help;
    };
    static const Cmd kCmds[] = {
        {"/iovtee_switch/ports", Ports,
         "Per-port counters and drops by reason. Parameter: a port name, e.g. phy0 (optional)"},
        {"/iovtee_switch/acl", Acl, "ACL rules and their hits"},
        {"/iovtee_switch/mappings", Mappings,
         "Per-mapping iovtee counters and the mapping pool's occupancy"},
        {"/iovtee_switch/perf", Perf,
         "Busy cycles per packet (p2v, v2p: mean, p50, p99), bursts, idle polls"},
        {"/iovtee_switch/perf_reset", PerfReset, "Restarts the cycle accounting"},
    };
    for (const Cmd& c : kCmds) {
      if (rte_telemetry_register_cmd(c.name, c.fn, c.help) != 0) {
        SW_LOG(WARNING, "telemetry command %s not registered", c.name);
      }
    }
    return true;
  }();
  (void)registered;
  absl::MutexLock lock(&g_mu);
  g_sw = sw;
}

void UnregisterTelemetry(Switch* sw) {
  absl::MutexLock lock(&g_mu);
  if (g_sw == sw) g_sw = nullptr;
}

}  // namespace iovtee::sw
