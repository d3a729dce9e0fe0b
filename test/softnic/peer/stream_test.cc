// Streams from several generators into one StreamChecker: each verified
// against its own flow table, warm-up frames apart, anything else counted.
#include "test/softnic/peer/stream.h"

#include <gtest/gtest.h>

#include <vector>

#include "test/softnic/traffic/test_frame.h"

namespace iovtee::softnic {
namespace {

constexpr uint8_t kOwnMac[6] = {0x02, 0, 0, 0, 0, 0x0a};

std::unique_ptr<Generator> MakeGen(uint32_t stream, uint32_t flows, bool warmup = false,
                                   const uint8_t* dst = kOwnMac) {
  GeneratorConfig c;
  c.flows = StreamFlows(stream, flows, dst, warmup);
  c.frame_size = 128;
  auto g = Generator::Create(std::move(c));
  EXPECT_TRUE(g.ok());
  return std::move(*g);
}

std::vector<uint8_t> Next(Generator& g) {
  std::vector<uint8_t> f(kMaxFrameBytes);
  f.resize(g.Next(f.data(), static_cast<uint32_t>(f.size()), 0));
  return f;
}

TEST(StreamTest, FlowTablesFollowTheConvention) {
  const std::vector<FlowSpec> f = StreamFlows(7, 3, kOwnMac);
  ASSERT_EQ(f.size(), 3u);
  EXPECT_EQ(f[2].src_ip, 0x0a070003u);  // 10.7.0.3
  EXPECT_EQ(f[2].src_mac[3], 7);
  EXPECT_EQ(f[2].src_mac[5], 2);
  EXPECT_EQ(f[2].src_port, 1026);
  EXPECT_EQ(f[0].dst_mac[5], 0x0a);
  EXPECT_EQ(StreamFlows(7, 1, kOwnMac, true)[0].src_ip, kWarmUpSrcIp);
}

TEST(StreamTest, ClassifiesBySourceAddress) {
  auto s2 = MakeGen(2, 1);
  auto w = MakeGen(2, 1, true);
  std::vector<uint8_t> f = Next(*s2);
  FrameClass c = ClassifyFrame(f.data(), static_cast<uint32_t>(f.size()));
  EXPECT_EQ(c.kind, FrameClass::kTest);
  EXPECT_EQ(c.stream, 2u);
  f = Next(*w);
  EXPECT_EQ(ClassifyFrame(f.data(), static_cast<uint32_t>(f.size())).kind, FrameClass::kWarmUp);
  const uint8_t arp[60] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0x08, 0x06};
  EXPECT_EQ(ClassifyFrame(arp, sizeof(arp)).kind, FrameClass::kOther);
}

TEST(StreamTest, EachStreamIsCheckedOnItsOwn) {
  const StreamExpect expect[] = {{1, 4}, {2, 2}};
  StreamChecker checker(expect, kOwnMac);
  auto s1 = MakeGen(1, 4);
  auto s2 = MakeGen(2, 2);
  auto s3 = MakeGen(3, 1);
  auto w = MakeGen(1, 4, true);
  for (int i = 0; i < 40; ++i) {
    std::vector<uint8_t> f = Next(*s1);
    checker.Check(f.data(), static_cast<uint32_t>(f.size()), 0);
    if (i % 2 == 0) {
      f = Next(*s2);
      checker.Check(f.data(), static_cast<uint32_t>(f.size()), 0);
    }
  }
  std::vector<uint8_t> f = Next(*w);
  checker.Check(f.data(), static_cast<uint32_t>(f.size()), 0);
  f = Next(*s3);  // not expected
  checker.Check(f.data(), static_cast<uint32_t>(f.size()), 0);
  // Stream 2 skips one frame of each of its flows: gaps, in stream 2 only.
  Next(*s2);
  Next(*s2);
  for (int i = 0; i < 2; ++i) {
    f = Next(*s2);
    checker.Check(f.data(), static_cast<uint32_t>(f.size()), 0);
  }
  // One changed payload byte in stream 1.
  f = Next(*s1);
  f[f.size() - 5] ^= 1;
  checker.Check(f.data(), static_cast<uint32_t>(f.size()), 0);

  const std::vector<StreamChecker::Result> r = checker.Summarize();
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].stream, 1u);
  EXPECT_EQ(r[0].summary.received, 40u);
  EXPECT_EQ(r[0].summary.corrupted, 1u);
  EXPECT_EQ(r[0].summary.lost, 0u);
  EXPECT_EQ(r[1].stream, 2u);
  EXPECT_EQ(r[1].summary.received, 22u);
  EXPECT_EQ(r[1].summary.lost, 2u);
  EXPECT_EQ(r[1].summary.corrupted, 0u);
  EXPECT_EQ(checker.WarmUp().received, 1u);
  EXPECT_EQ(checker.unexpected(), 1u);
}

TEST(StreamTest, AFrameForAnotherGuestIsCorrupted) {
  const StreamExpect expect[] = {{1, 1}};
  StreamChecker checker(expect, kOwnMac);
  const uint8_t other[6] = {0x02, 0, 0, 0, 0, 0x0b};
  auto g = MakeGen(1, 1, false, other);
  std::vector<uint8_t> f = Next(*g);
  checker.Check(f.data(), static_cast<uint32_t>(f.size()), 0);
  EXPECT_EQ(checker.Summarize()[0].summary.corrupted, 1u);
}

}  // namespace
}  // namespace iovtee::softnic
