// The guest's C frame checker against the host's C++ traffic generator: it
// accepts every frame the generator makes (both streams, warm-up, 64 B to
// jumbo), tracks sequences as the host's Checker does, and catches one
// changed byte anywhere a frame is checked.
#include "test/vm/guest/frame_check.h"

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <vector>

#include "test/softnic/traffic/crc32c.h"
#include "test/softnic/traffic/generator.h"
#include "test/softnic/traffic/test_frame.h"

namespace iovtee::softnic {
namespace {

constexpr uint8_t kGuestMac[6] = {0x02, 0, 0, 0, 0, 0x01};

// The flow table of a stream as test/softnic/peer/stream.h documents it.
std::vector<FlowSpec> Stream(uint32_t stream, uint32_t flows, bool warmup = false) {
  FlowSpec base;
  std::memcpy(base.dst_mac, kGuestMac, 6);
  base.src_ip = warmup ? 0xc0a80001 : (0x0a000001 | stream << 16);
  std::vector<FlowSpec> out = MakeFlows(flows, base);
  for (uint32_t i = 0; i < flows; ++i) {
    const uint8_t mac[6] = {2,
                            0,
                            0,
                            static_cast<uint8_t>(stream),
                            static_cast<uint8_t>(i >> 8),
                            static_cast<uint8_t>(i)};
    std::memcpy(out[i].src_mac, mac, 6);
  }
  return out;
}

std::unique_ptr<Generator> MakeGenerator(std::vector<FlowSpec> flows, uint32_t size,
                                         bool imix = false) {
  GeneratorConfig config;
  config.flows = std::move(flows);
  config.frame_size = size;
  config.size_mode = imix ? SizeMode::kImix : SizeMode::kFixed;
  auto g = Generator::Create(std::move(config));
  EXPECT_TRUE(g.ok()) << g.status();
  return std::move(*g);
}

struct Frame {
  std::vector<uint8_t> bytes;
};

Frame Next(Generator& g) {
  Frame f;
  f.bytes.resize(kMaxFrameBytes);
  uint32_t n = g.Next(f.bytes.data(), static_cast<uint32_t>(f.bytes.size()), 12345);
  f.bytes.resize(n);
  return f;
}

class FrameCheckTest : public ::testing::Test {
 protected:
  void Init(std::vector<uint32_t> ids, std::vector<uint32_t> flows, bool resync = false) {
    ASSERT_EQ(vc_init(&checker_, kGuestMac, ids.data(), flows.data(),
                      static_cast<uint32_t>(ids.size()), resync),
              0);
  }
  vc_verdict Check(const Frame& f) {
    return vc_check(&checker_, f.bytes.data(), static_cast<uint32_t>(f.bytes.size()));
  }
  vc_totals Totals() {
    vc_totals t;
    vc_get_totals(&checker_, &t);
    return t;
  }
  vc_checker checker_;
};

TEST(Crc32cTest, MatchesTheHostImplementation) {
  std::vector<uint8_t> data(9000);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 131 + 7);
  for (uint32_t n : {0u, 1u, 7u, 8u, 14u, 63u, 1500u, 9000u}) {
    EXPECT_EQ(vc_crc32c(0, data.data(), n), Crc32c(data.data(), n)) << n;
    EXPECT_EQ(vc_crc32c(vc_crc32c(0, data.data(), n / 3), data.data() + n / 3, n - n / 3),
              Crc32c(data.data(), n))
        << n;
  }
}

TEST_F(FrameCheckTest, AcceptsEveryGeneratedFrameOfEveryStreamAndSize) {
  Init({1, 2}, {4, 3});
  uint64_t made = 0;
  for (uint32_t size : {64u, 65u, 570u, 1518u, 9018u}) {
    Init({1, 2}, {4, 3});
    auto g1 = MakeGenerator(Stream(1, 4), size);
    auto g2 = MakeGenerator(Stream(2, 3), size);
    for (int i = 0; i < 40; ++i) {
      ASSERT_EQ(Check(Next(*g1)), VC_OK)
          << size << " " << i << " " << vc_reason_name(checker_.last_corruption);
      ASSERT_EQ(Check(Next(*g2)), VC_OK) << size << " " << i;
      made += 2;
    }
    vc_totals t = Totals();
    EXPECT_EQ(t.ok, 80u);
    EXPECT_EQ(t.missing + t.gap_events + t.reordered + t.duplicates + t.corrupted, 0u);
  }
  EXPECT_EQ(made, 400u);
  Init({1}, {4});
  auto imix = MakeGenerator(Stream(1, 4), 64, /*imix=*/true);
  for (int i = 0; i < 48; ++i) ASSERT_EQ(Check(Next(*imix)), VC_OK);
  auto warm = MakeGenerator(Stream(1, 4, /*warmup=*/true), 64);
  for (int i = 0; i < 8; ++i) ASSERT_EQ(Check(Next(*warm)), VC_WARMUP);
  EXPECT_EQ(Totals().warmup, 8u);
}

TEST_F(FrameCheckTest, EveryChangedByteIsCaught) {
  Init({1}, {4});
  auto g = MakeGenerator(Stream(1, 4), 128);
  Frame f = Next(*g);
  // Bytes 0..5 are the destination MAC (ours), 6..11 the source; a damaged
  // header byte may turn the frame foreign (no longer IPv4/UDP/test), never
  // OK. Byte 24..25 is the IPv4 checksum, 40..41 the UDP checksum (0: not
  // set; damage makes it wrong).
  for (size_t i = 0; i < f.bytes.size(); ++i) {
    Frame bad = f;
    bad.bytes[i] ^= 0x20;
    uint32_t stream, flow, seq, reason;
    vc_verdict v = vc_inspect(kGuestMac, bad.bytes.data(), static_cast<uint32_t>(bad.bytes.size()),
                              &stream, &flow, &seq, &reason);
    EXPECT_TRUE(v == VC_CORRUPTED || v == VC_FOREIGN) << "byte " << i << " verdict " << v;
  }
  Frame cut = f;
  cut.bytes.resize(f.bytes.size() - 1);
  EXPECT_EQ(Check(cut), VC_CORRUPTED);
  EXPECT_EQ(checker_.last_corruption, static_cast<uint32_t>(VC_R_IP_LEN));
  EXPECT_EQ(Check(f), VC_OK);
}

TEST_F(FrameCheckTest, AFrameForAnotherGuestOrFromTheWrongFlowIsCorrupted) {
  Init({1}, {4});
  auto g = MakeGenerator(Stream(1, 4), 64);
  Frame f = Next(*g);
  Frame other = f;
  other.bytes[5] = 0x02;  // destination: 02:00:00:00:00:02
  EXPECT_EQ(Check(other), VC_CORRUPTED);
  EXPECT_EQ(checker_.last_corruption, static_cast<uint32_t>(VC_R_ADDRESS));
  Frame wrong_mac = f;
  wrong_mac.bytes[11] = 3;  // flow 0's frame from flow 3's station
  EXPECT_EQ(Check(wrong_mac), VC_CORRUPTED);
  // Stream 2's valid frames are not expected by a stream-1 checker.
  auto g2 = MakeGenerator(Stream(2, 4), 64);
  EXPECT_EQ(Check(Next(*g2)), VC_FOREIGN);
}

TEST_F(FrameCheckTest, EchoedFramesPassWithMacsSwapped) {
  Init({1}, {4});
  auto g = MakeGenerator(Stream(1, 4), 64);
  Frame f = Next(*g);
  uint8_t tmp[6];
  std::memcpy(tmp, f.bytes.data(), 6);
  std::memcpy(f.bytes.data(), f.bytes.data() + 6, 6);
  std::memcpy(f.bytes.data() + 6, tmp, 6);
  EXPECT_EQ(Check(f), VC_OK);
}

TEST_F(FrameCheckTest, SequenceGapsDuplicatesAndLateFrames) {
  Init({1}, {1});
  auto g = MakeGenerator(Stream(1, 1), 64);
  std::vector<Frame> frames;
  for (int i = 0; i < 6; ++i) frames.push_back(Next(*g));
  EXPECT_EQ(Check(frames[0]), VC_OK);
  EXPECT_EQ(Check(frames[2]), VC_OK);  // 1 skipped
  EXPECT_EQ(Check(frames[2]), VC_DUPLICATE);
  EXPECT_EQ(Check(frames[1]), VC_OK);  // late
  EXPECT_EQ(Check(frames[5]), VC_OK);  // 3, 4 skipped
  vc_totals t = Totals();
  EXPECT_EQ(t.ok, 4u);
  EXPECT_EQ(t.duplicates, 1u);
  EXPECT_EQ(t.reordered, 1u);
  EXPECT_EQ(t.gap_events, 2u);
  EXPECT_EQ(t.missing, 2u);
}

TEST_F(FrameCheckTest, ResyncStartsEachFlowWhereItIsFound) {
  Init({1}, {2}, /*resync=*/true);
  auto g = MakeGenerator(Stream(1, 2), 64);
  for (int i = 0; i < 10; ++i) Next(*g);  // frames before the checker started
  for (int i = 0; i < 10; ++i) ASSERT_EQ(Check(Next(*g)), VC_OK);
  vc_totals t = Totals();
  EXPECT_EQ(t.ok, 10u);
  EXPECT_EQ(t.missing, 0u);
  EXPECT_EQ(t.gap_events, 0u);
}

TEST(PayloadCheckTest, AUdpSocketsViewOfTheFrame) {
  auto g = MakeGenerator(Stream(1, 4), 570);
  Frame f = Next(*g);
  const uint32_t off = 14 + 20 + 8;
  uint32_t flow = 9, seq = 9;
  ASSERT_EQ(vc_check_payload(f.bytes.data() + off, static_cast<uint32_t>(f.bytes.size() - off),
                             &flow, &seq),
            0);
  EXPECT_EQ(flow, 0u);
  EXPECT_EQ(seq, 0u);
  f.bytes[off + 100] ^= 1;
  EXPECT_NE(vc_check_payload(f.bytes.data() + off, static_cast<uint32_t>(f.bytes.size() - off),
                             &flow, &seq),
            0);
}

}  // namespace
}  // namespace iovtee::softnic
