// Per-burst TSC accounting of the forwarding loop, like OVS's pmd-perf-show:
// the busy cycles of each burst divided by its packets, kept in a histogram
// weighted by packets (so the median is the cost of the median packet), per
// direction; polls that found nothing are counted apart.
//
// One writer (the forwarding loop), readers on other threads (telemetry):
// every value is a relaxed atomic that only the writer modifies.
#ifndef IOVTEE_EXAMPLES_IOVTEE_SWITCH_PERF_H_
#define IOVTEE_EXAMPLES_IOVTEE_SWITCH_PERF_H_

#include <atomic>
#include <cstdint>

namespace iovtee::sw {

// A counter with one writing thread: a plain load and store, no locked
// instruction, and torn-free reads from other threads.
class Counter {
 public:
  void Add(uint64_t n) {
    v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void Set(uint64_t v) { v_.store(v, std::memory_order_relaxed); }
  uint64_t Get() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

// Values 0..2^kMaxExp-1 (larger ones land in the last bucket): exact below
// 64, then 64 buckets per power of two (under 1.6% apart).
class CycleHistogram {
 public:
  static constexpr int kSub = 64;
  static constexpr int kMaxExp = 28;
  static constexpr int kBuckets = kSub + (kMaxExp - 6) * kSub;

  static int Bucket(uint64_t v) {
    if (v < kSub) return static_cast<int>(v);
    const int e = 63 - __builtin_clzll(v);  // 6 .. 63
    if (e >= kMaxExp) return kBuckets - 1;
    return kSub + (e - 6) * kSub + static_cast<int>((v >> (e - 6)) & (kSub - 1));
  }
  // The middle of a bucket's range.
  static uint64_t Value(int b) {
    if (b < kSub) return static_cast<uint64_t>(b);
    const int e = (b - kSub) / kSub + 6;
    const uint64_t lo = (uint64_t{kSub} + static_cast<uint64_t>((b - kSub) % kSub)) << (e - 6);
    return lo + ((uint64_t{1} << (e - 6)) >> 1);
  }

  void Add(uint64_t value, uint64_t weight) {
    buckets_[Bucket(value)].Add(weight);
    total_.Add(weight);
  }
  uint64_t total() const { return total_.Get(); }
  // The smallest value with at least q (0..1) of the weight at or below it;
  // 0 when empty.
  uint64_t Quantile(double q) const;
  // Only by the writer (or with no writer running).
  void Reset();

 private:
  Counter buckets_[kBuckets];
  Counter total_;
};

// One direction of the loop: bursts received on phy ports (P->V) or on vhost
// ports (V->P), from the Rx burst through classification to the delivery of
// what it produced.
// One burst in kStageSampling also has its cycles split by stage (means per
// packet over the sampled bursts): the Rx poll (PMD, and for a mapped queue
// the guest-buffer refill), the switch's own work (classification, VLAN,
// copies), and the delivery. Sampled because a TSC read is not free (about
// 90 cycles on a VM).
// A burst that took longer than `preempted_cycles` lost the core to another
// thread: it is counted apart, its time is not the switch's work.
struct DirectionPerf {
  static constexpr uint32_t kStageSampling = 16;

  Counter bursts;
  Counter packets;
  Counter cycles;
  Counter preempted_bursts;
  Counter preempted_packets;
  CycleHistogram cycles_per_packet;
  Counter stage_packets;  // packets of the sampled bursts
  Counter rx_cycles;
  Counter switch_cycles;
  Counter tx_cycles;

  // False when the burst was preempted (and not counted as busy).
  bool AddBurst(uint32_t n, uint64_t burst_cycles, uint64_t preempted_cycles) {
    bursts.Add(1);
    packets.Add(n);
    if (burst_cycles > preempted_cycles) {
      preempted_bursts.Add(1);
      preempted_packets.Add(n);
      return false;
    }
    cycles.Add(burst_cycles);
    cycles_per_packet.Add(burst_cycles / n, n);
    return true;
  }
  void AddStages(uint32_t n, uint64_t rx, uint64_t sw, uint64_t tx) {
    stage_packets.Add(n);
    rx_cycles.Add(rx);
    switch_cycles.Add(sw);
    tx_cycles.Add(tx);
  }
  // Packets whose cycles are counted.
  uint64_t busy_packets() const { return packets.Get() - preempted_packets.Get(); }
  void Reset();
};

struct LoopPerf {
  DirectionPerf p2v;
  DirectionPerf v2p;
  Counter idle_polls;   // Rx polls that returned nothing
  Counter idle_cycles;  // their cycles
  void Reset();
};

}  // namespace iovtee::sw

#endif  // IOVTEE_EXAMPLES_IOVTEE_SWITCH_PERF_H_
