#include "examples/iovtee-switch/perf.h"

#include <cstdint>

#include "gtest/gtest.h"

namespace iovtee::sw {
namespace {

TEST(CycleHistogramTest, BucketsAreMonotonicAndTight) {
  int last = -1;
  for (uint64_t v = 0; v < (uint64_t{1} << CycleHistogram::kMaxExp); v += 1 + v / 97) {
    const int b = CycleHistogram::Bucket(v);
    ASSERT_GE(b, last) << v;
    ASSERT_LT(b, CycleHistogram::kBuckets) << v;
    last = b;
    const uint64_t back = CycleHistogram::Value(b);
    // Exact below 64, then within 1/64 of the value.
    const uint64_t err = back > v ? back - v : v - back;
    ASSERT_LE(err, v / 64) << v;
  }
  EXPECT_EQ(CycleHistogram::Bucket(uint64_t{1} << 40), CycleHistogram::kBuckets - 1);
  EXPECT_EQ(CycleHistogram::Bucket(UINT64_MAX), CycleHistogram::kBuckets - 1);
}

TEST(CycleHistogramTest, QuantilesAreWeighted) {
  CycleHistogram h;
  EXPECT_EQ(h.Quantile(0.5), 0u);
  h.Add(40, 90);    // 90 packets at 40 cycles
  h.Add(1000, 10);  // 10 packets at 1000 cycles
  EXPECT_EQ(h.total(), 100u);
  EXPECT_EQ(h.Quantile(0.5), 40u);
  EXPECT_EQ(h.Quantile(0.9), 40u);
  const uint64_t p99 = h.Quantile(0.99);
  EXPECT_GE(p99, 1000u - 1000u / 64);
  EXPECT_LE(p99, 1000u + 1000u / 64);
  EXPECT_EQ(h.Quantile(0), 40u);
  h.Reset();
  EXPECT_EQ(h.total(), 0u);
  EXPECT_EQ(h.Quantile(0.5), 0u);
}

TEST(DirectionPerfTest, BurstCyclesAreSharedByItsPackets) {
  DirectionPerf d;
  EXPECT_TRUE(d.AddBurst(32, 3200, 10000));   // 100 cycles per packet, 32 packets
  EXPECT_TRUE(d.AddBurst(1, 500, 10000));     // one packet at 500
  EXPECT_FALSE(d.AddBurst(4, 20000, 10000));  // preempted: counted apart
  EXPECT_EQ(d.bursts.Get(), 3u);
  EXPECT_EQ(d.packets.Get(), 37u);
  EXPECT_EQ(d.preempted_bursts.Get(), 1u);
  EXPECT_EQ(d.preempted_packets.Get(), 4u);
  EXPECT_EQ(d.busy_packets(), 33u);
  EXPECT_EQ(d.cycles.Get(), 3700u);
  EXPECT_EQ(d.cycles_per_packet.total(), 33u);
  const uint64_t p50 = d.cycles_per_packet.Quantile(0.5);
  EXPECT_GE(p50, 99u);
  EXPECT_LE(p50, 101u);
  d.AddStages(32, 1000, 1200, 1000);
  EXPECT_EQ(d.stage_packets.Get(), 32u);
  EXPECT_EQ(d.switch_cycles.Get(), 1200u);
  d.Reset();
  EXPECT_EQ(d.packets.Get(), 0u);
  EXPECT_EQ(d.stage_packets.Get(), 0u);
  EXPECT_EQ(d.cycles_per_packet.total(), 0u);
  LoopPerf l;
  l.p2v.AddBurst(1, 10, 100);
  l.idle_polls.Add(5);
  l.Reset();
  EXPECT_EQ(l.p2v.packets.Get(), 0u);
  EXPECT_EQ(l.idle_polls.Get(), 0u);
}

}  // namespace
}  // namespace iovtee::sw
