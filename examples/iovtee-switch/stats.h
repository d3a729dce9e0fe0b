// The names the switch's counters are exported under, one list shared by the
// --stats-file JSON and the telemetry endpoints.
#ifndef IOVTEE_EXAMPLES_IOVTEE_SWITCH_STATS_H_
#define IOVTEE_EXAMPLES_IOVTEE_SWITCH_STATS_H_

#include <cstdint>
#include <string>

#include "examples/iovtee-switch/switch.h"
#include "iovtee/mapping.h"

namespace iovtee::sw {

// Calls f(name, value) for a port's counters (drops by reason excluded).
template <typename F>
void ForEachPortCounter(const Port& p, F&& f) {
  const PortCounters& c = p.counters;
  f("rx", c.rx.Get());
  f("tx", c.tx.Get());
  f("tx_dropped", c.tx_dropped());
  f("rx_bytes", c.rx_bytes.Get());
  f("tx_bytes", c.tx_bytes.Get());
  f("rx_dropped", c.rx_dropped());
  f("vlan_pushed", c.vlan_pushed.Get());
  f("vlan_popped", c.vlan_popped.Get());
  f("unshared", c.unshared.Get());
}

// Calls f(reason, count) for every drop reason.
template <typename F>
void ForEachDrop(const Port& p, F&& f) {
  for (int d = 0; d < kDropCount; ++d) f(DropName(static_cast<Drop>(d)), p.counters.drops[d].Get());
}

// Calls f(name, value) for every field of iovtee::MappingStats under its
// own name (the library's StatsFields: one list for the switch's JSON,
// telemetry and the C ABI), pool_mbufs and pool_free_mbufs included.
template <typename F>
void ForEachMappingField(const RxQueueMapping& map, F&& f) {
  for (const auto& [name, value] : StatsFields(map.stats())) f(name, value);
}

// Calls f(name, value) for one direction's cycle accounting.
template <typename F>
void ForEachPerfField(const DirectionPerf& d, F&& f) {
  const uint64_t busy = d.busy_packets(), staged = d.stage_packets.Get();
  f("bursts", d.bursts.Get());
  f("packets", d.packets.Get());
  f("cycles", d.cycles.Get());
  f("cycles_per_packet_mean", busy ? d.cycles.Get() / busy : 0);
  f("cycles_per_packet_p50", d.cycles_per_packet.Quantile(0.5));
  f("cycles_per_packet_p99", d.cycles_per_packet.Quantile(0.99));
  f("rx_cycles_per_packet", staged ? d.rx_cycles.Get() / staged : 0);
  f("switch_cycles_per_packet", staged ? d.switch_cycles.Get() / staged : 0);
  f("tx_cycles_per_packet", staged ? d.tx_cycles.Get() / staged : 0);
  f("preempted_bursts", d.preempted_bursts.Get());
  f("preempted_packets", d.preempted_packets.Get());
}

}  // namespace iovtee::sw

#endif  // IOVTEE_EXAMPLES_IOVTEE_SWITCH_STATS_H_
