#include "examples/iovtee-switch/perf.h"

#include <cmath>
#include <initializer_list>

namespace iovtee::sw {

uint64_t CycleHistogram::Quantile(double q) const {
  const uint64_t total = total_.Get();
  if (total == 0) return 0;
  // The rank of the wanted sample, 1-based: ceil(q * total), at least 1.
  uint64_t rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(total)));
  if (rank == 0) rank = 1;
  uint64_t seen = 0;
  for (int b = 0; b < kBuckets; ++b) {
    seen += buckets_[b].Get();
    if (seen >= rank) return Value(b);
  }
  return Value(kBuckets - 1);  // the buckets moved on while we read
}

void CycleHistogram::Reset() {
  for (Counter& c : buckets_) c.Set(0);
  total_.Set(0);
}

void DirectionPerf::Reset() {
  for (Counter* c : {&bursts, &packets, &cycles, &preempted_bursts, &preempted_packets,
                     &stage_packets, &rx_cycles, &switch_cycles, &tx_cycles}) {
    c->Set(0);
  }
  cycles_per_packet.Reset();
}

void LoopPerf::Reset() {
  p2v.Reset();
  v2p.Reset();
  idle_polls.Set(0);
  idle_cycles.Set(0);
}

}  // namespace iovtee::sw
