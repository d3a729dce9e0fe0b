// The generator and checker against each other, without a NIC: every frame
// verifies, one changed byte anywhere is caught, loss, duplicates and
// reordering are told apart, the IMIX mix is exact, pacing holds its rate.
#include <algorithm>
#include <cstring>
#include <map>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "test/softnic/traffic/checker.h"
#include "test/softnic/traffic/crc32c.h"
#include "test/softnic/traffic/generator.h"
#include "test/softnic/traffic/latency_histogram.h"
#include "test/softnic/traffic/test_frame.h"
#include "test/softnic/traffic/tsc.h"

namespace iovtee::softnic {
namespace {

using Bytes = std::vector<uint8_t>;

uint32_t BitwiseCrc32c(const uint8_t* p, size_t n) {
  uint32_t crc = ~0u;
  for (size_t i = 0; i < n; ++i) {
    crc ^= p[i];
    for (int b = 0; b < 8; ++b) crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1)));
  }
  return ~crc;
}

TEST(Crc32cTest, KnownVectorsAndEveryLengthPath) {
  const char* digits = "123456789";
  EXPECT_EQ(Crc32c(digits, 9), 0xe3069283u);
  Bytes zeros(32, 0);
  EXPECT_EQ(Crc32c(zeros.data(), 32), 0x8a9136aau);
  std::mt19937 rng(3);
  Bytes data(5100);
  for (auto& b : data) b = static_cast<uint8_t>(rng());
  for (size_t n : {0, 1, 7, 8, 63, 64, 191, 192, 193, 767, 768, 769, 1000, 1472, 4999}) {
    for (size_t off : {0, 1, 5}) {
      EXPECT_EQ(Crc32c(data.data() + off, n), BitwiseCrc32c(data.data() + off, n))
          << n << " " << off;
    }
    size_t half = n / 3;
    EXPECT_EQ(Crc32cExtend(Crc32c(data.data(), half), data.data() + half, n - half),
              Crc32c(data.data(), n));
  }
}

// RFC 791's definition, byte by byte.
uint16_t ReferenceIpv4Checksum(const uint8_t* ip) {
  uint32_t sum = 0;
  for (int i = 0; i < 20; i += 2) sum += static_cast<uint32_t>(ip[i] << 8 | ip[i + 1]);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

TEST(TestFrameTest, WordWiseHelpersMatchTheirDefinitions) {
  std::mt19937 rng(11);
  uint8_t b[24];
  for (int round = 0; round < 20000; ++round) {
    for (auto& x : b) x = static_cast<uint8_t>(rng());
    if (round % 4 == 0) memset(b, 0xff, 20);  // largest sums
    if (round % 4 == 1) memset(b, 0, 20);
    EXPECT_EQ(Ipv4HeaderChecksum(b), ReferenceIpv4Checksum(b)) << round;
    EXPECT_EQ(TestHeaderCrc(b), BitwiseCrc32c(b, 14)) << round;
    // With the checksum stored, the header checks.
    const uint16_t c = ReferenceIpv4Checksum((b[10] = 0, b[11] = 0, b));
    b[10] = static_cast<uint8_t>(c >> 8);
    b[11] = static_cast<uint8_t>(c);
    EXPECT_EQ(Ipv4HeaderChecksum(b), 0) << round;
  }
}

TEST(LatencyHistogramTest, BucketsAndPercentiles) {
  for (uint64_t v : {0ull, 1ull, 31ull, 32ull, 33ull, 1000ull, 123456789ull, ~0ull}) {
    int b = LatencyHistogram::Bucket(v);
    EXPECT_LE(v, LatencyHistogram::BucketUpper(b)) << v;
    if (b > 0) {
      EXPECT_GT(v, LatencyHistogram::BucketUpper(b - 1)) << v;
    }
    if (v >= 32) {
      EXPECT_LE(LatencyHistogram::BucketUpper(b) - v, v / 16) << v;
    }
  }
  LatencyHistogram h;
  for (uint64_t v = 1; v <= 1000; ++v) h.Record(v * 100);
  EXPECT_EQ(h.count(), 1000u);
  EXPECT_EQ(h.min(), 100u);
  EXPECT_EQ(h.max(), 100000u);
  EXPECT_NEAR(h.Percentile(50), 50000, 50000 / 16);
  EXPECT_GE(h.Percentile(50), 50000u);
  EXPECT_NEAR(h.Percentile(99), 99000, 99000 / 16);
  EXPECT_EQ(h.Percentile(100), 100000u);
  EXPECT_DOUBLE_EQ(h.mean(), 50050);
}

TEST(TscTest, CalibratedRateIsPlausible) {
  double hz = TscHz();
  EXPECT_GT(hz, 5e8);
  EXPECT_LT(hz, 1e10);
  EXPECT_EQ(TscHz(), hz);  // cached
}

std::unique_ptr<Generator> MakeGenerator(GeneratorConfig c) {
  auto g = Generator::Create(std::move(c));
  EXPECT_TRUE(g.ok()) << g.status();
  return g.ok() ? std::move(*g) : nullptr;
}

Bytes NextFrame(Generator& g, uint64_t tsc = 0) {
  Bytes f(g.max_length());
  f.resize(g.Next(f.data(), static_cast<uint32_t>(f.size()), tsc));
  return f;
}

TEST(GeneratorTest, FrameSizeConventionAndHeaders) {
  GeneratorConfig c;
  c.flows = MakeFlows(2);
  c.flows[1].vlan_tci = 0x0064;
  c.frame_size = 64;
  auto g = MakeGenerator(c);
  Bytes a = NextFrame(*g), b = NextFrame(*g), a2 = NextFrame(*g);
  EXPECT_EQ(a.size(), 60u);  // "64 B": 60 bytes + FCS
  EXPECT_EQ(b.size(), 64u);  // the tag comes on top
  EXPECT_EQ(b[12], 0x81);
  EXPECT_EQ(b[15], 0x64);
  // IPv4 header checksum is valid; lengths are consistent.
  EXPECT_EQ(Ipv4HeaderChecksum(a.data() + 14), 0);
  EXPECT_EQ(a[14 + 2] << 8 | a[14 + 3], 46);
  EXPECT_EQ(a[34 + 4] << 8 | a[34 + 5], 26);
  TestHeader h = LoadTestHeader(a.data() + 42);
  EXPECT_EQ(h.magic, kTestMagic);
  EXPECT_EQ(h.flow, 0);
  EXPECT_EQ(h.seq, 0u);
  EXPECT_EQ(h.payload_len, kTestHeaderLen);
  EXPECT_EQ(LoadTestHeader(a2.data() + 42).seq, 1u);
  EXPECT_EQ(LoadTestHeader(b.data() + 46).flow, 1);
  // Flows differ in source address and port.
  EXPECT_NE(memcmp(a.data() + 26, b.data() + 30, 4), 0);
  EXPECT_EQ(g->sent(), 3u);
  EXPECT_EQ(g->sent_per_flow()[0], 2u);

  c.frame_size = 1518;
  g = MakeGenerator(c);
  EXPECT_EQ(NextFrame(*g).size(), 1514u);
  EXPECT_EQ(NextFrame(*g).size(), 1518u);
}

TEST(GeneratorTest, RejectsBadConfigurations) {
  GeneratorConfig c;
  c.flows.clear();
  EXPECT_FALSE(Generator::Create(c).ok());
  c.flows = MakeFlows(1);
  c.frame_size = 63;
  EXPECT_FALSE(Generator::Create(c).ok());
  c.frame_size = 9023;
  EXPECT_FALSE(Generator::Create(c).ok());
  c.frame_size = 9022;
  EXPECT_TRUE(Generator::Create(c).ok());
  c.flows[0].vlan_tci = 1;
  EXPECT_FALSE(Generator::Create(c).ok());  // 9022 bytes with the tag
  c.frame_size = 64;
  c.rate_pps = -1;
  EXPECT_FALSE(Generator::Create(c).ok());
  c.rate_pps = 0;
  c.flows = MakeFlows(65537);
  EXPECT_FALSE(Generator::Create(c).ok());
}

TEST(GeneratorTest, DoesNotWritePastTheBuffer) {
  GeneratorConfig c;
  c.frame_size = 128;
  auto g = MakeGenerator(c);
  Bytes buf(200, 0xcc);
  EXPECT_EQ(g->Next(buf.data(), 123, 0), 0u);  // too small: nothing consumed
  EXPECT_EQ(buf[0], 0xcc);
  EXPECT_EQ(g->sent(), 0u);
  EXPECT_EQ(g->Next(buf.data(), 124, 0), 124u);
  EXPECT_EQ(buf[124], 0xcc);
}

TEST(GeneratorTest, ImixMixIsExactPerFlowAndOverall) {
  GeneratorConfig c;
  c.flows = MakeFlows(5);
  c.size_mode = SizeMode::kImix;
  auto g = MakeGenerator(c);
  EXPECT_EQ(g->max_length(), 1514u);
  std::map<uint32_t, int> overall;
  std::vector<std::map<uint32_t, int>> per_flow(5);
  Bytes buf(g->max_length());
  // Start mid-way: any 12 * flows consecutive frames have the exact mix.
  for (int i = 0; i < 7; ++i) g->Next(buf.data(), static_cast<uint32_t>(buf.size()), 0);
  for (int i = 0; i < 12 * 5 * 10; ++i) {
    uint32_t peek = g->next_length();
    uint32_t len = g->Next(buf.data(), static_cast<uint32_t>(buf.size()), 0);
    EXPECT_EQ(len, peek);
    ++overall[len];
    ++per_flow[LoadTestHeader(buf.data() + 42).flow][len];
  }
  EXPECT_EQ(overall, (std::map<uint32_t, int>{{60, 350}, {566, 200}, {1514, 50}}));
  for (const auto& m : per_flow) {
    EXPECT_EQ(m, (std::map<uint32_t, int>{{60, 70}, {566, 40}, {1514, 10}}));
  }
}

// Frames written into staging buffers that keep their image tags are
// byte-for-byte the frames written whole, whatever held the buffer before:
// frames of other flows and sizes, another generator's, foreign bytes.
TEST(GeneratorTest, ImageTagsWriteOnlyThePerFrameFields) {
  GeneratorConfig c;
  c.flows = MakeFlows(5);
  c.flows[2].vlan_tci = 0x0042;
  c.size_mode = SizeMode::kImix;
  auto staged = MakeGenerator(c), whole = MakeGenerator(c);
  GeneratorConfig w = c;
  w.flows = MakeFlows(3, FlowSpec{.src_ip = 0xc0a80001});
  w.size_mode = SizeMode::kFixed;
  w.frame_size = 570;
  auto other = MakeGenerator(w);
  const uint32_t cap = staged->max_length();
  std::vector<Bytes> bufs(8, Bytes(cap, 0xee));
  uint8_t* ptrs[8];
  for (int i = 0; i < 8; ++i) ptrs[i] = bufs[i].data();
  uint64_t tags[8] = {};
  uint32_t lens[8];
  std::mt19937 rng(5);
  Bytes expect(cap);
  for (int round = 0; round < 500; ++round) {
    const size_t n = 1 + rng() % 8;
    const uint64_t tsc = rng();
    if (round % 7 == 3) {
      // The other generator takes the same buffers (a warm-up stream).
      ASSERT_EQ(other->NextBurst(absl::MakeConstSpan(ptrs, n), cap, absl::MakeSpan(lens, n), tsc,
                                 absl::MakeSpan(tags, n)),
                n);
      continue;
    }
    if (round % 11 == 5) {
      bufs[0][rng() % cap] ^= 0x10;  // someone else wrote: the tag says so
      tags[0] = 0;
    }
    ASSERT_EQ(staged->NextBurst(absl::MakeConstSpan(ptrs, n), cap, absl::MakeSpan(lens, n), tsc,
                                absl::MakeSpan(tags, n)),
              n);
    for (size_t i = 0; i < n; ++i) {
      ASSERT_EQ(whole->Next(expect.data(), cap, tsc), lens[i]);
      ASSERT_EQ(memcmp(bufs[i].data(), expect.data(), lens[i]), 0) << round << " " << i;
    }
  }
  EXPECT_EQ(staged->sent(), whole->sent());
}

TEST(GeneratorTest, PacingHoldsTheRate) {
  GeneratorConfig c;
  c.rate_pps = 1e6;
  auto g = MakeGenerator(c);
  const double cycles_per_frame = TscHz() / 1e6;
  uint64_t t0 = 1'000'000'000;
  EXPECT_EQ(g->Allowance(t0, 32), 1u);
  EXPECT_EQ(g->Allowance(t0, 32), 0u);
  size_t total = 1;
  // Calls every 7 us for 10 ms: one frame per us, within a frame or two.
  for (double t = 7; t <= 10000; t += 7) {
    total += g->Allowance(t0 + static_cast<uint64_t>(t * cycles_per_frame), 32);
  }
  EXPECT_NEAR(static_cast<double>(total), 9997, 2);  // due at 0, 1, ... 9996 us
  // A 50 ms stall is not paid back in full: at most 1 ms of credit.
  uint64_t later = t0 + static_cast<uint64_t>(60000 * cycles_per_frame);
  size_t burst = 0;
  for (int i = 0; i < 1000; ++i) burst += g->Allowance(later, 32);
  EXPECT_LE(burst, 1001u);
  EXPECT_GE(burst, 999u);
  // Unlimited: whatever is asked.
  c.rate_pps = 0;
  g = MakeGenerator(c);
  EXPECT_EQ(g->Allowance(0, 32), 32u);
}

class CheckerTest : public ::testing::Test {
 protected:
  void Init(GeneratorConfig c) {
    flows_ = c.flows;
    gen_ = MakeGenerator(c);
    CheckerOptions o;
    o.num_flows = static_cast<uint32_t>(flows_.size());
    o.flows = flows_;
    checker_ = std::make_unique<Checker>(o);
  }
  std::vector<FlowSpec> flows_;
  std::unique_ptr<Generator> gen_;
  std::unique_ptr<Checker> checker_;
};

TEST_F(CheckerTest, SelfTestEveryFrameVerifies) {
  GeneratorConfig c;
  c.flows = MakeFlows(7);
  c.flows[3].vlan_tci = 0x2005;
  c.size_mode = SizeMode::kImix;
  Init(c);
  Bytes bufs[32];
  uint8_t* ptrs[32];
  uint32_t lens[32];
  for (int i = 0; i < 32; ++i) {
    bufs[i].resize(gen_->max_length());
    ptrs[i] = bufs[i].data();
  }
  for (int round = 0; round < 300; ++round) {
    size_t n = gen_->NextBurst(absl::MakeConstSpan(ptrs), gen_->max_length(), absl::MakeSpan(lens),
                               ReadTsc());
    ASSERT_EQ(n, 32u);
    uint64_t now = ReadTsc();
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(checker_->Check(ptrs[i], lens[i], now), Verdict::kOk);
  }
  Summary s = checker_->Summarize(gen_->sent_per_flow());
  EXPECT_TRUE(s.Clean()) << s.ToString();
  EXPECT_EQ(s.received, 9600u);
  EXPECT_EQ(s.sent, 9600u);
  EXPECT_EQ(s.latency.count, 9600u);
  EXPECT_GT(s.latency.max_ns, 0);
  EXPECT_LT(s.latency.p50_ns, 1e8);
}

TEST_F(CheckerTest, OneChangedByteAnywhereIsCaught) {
  GeneratorConfig c;
  c.flows = MakeFlows(3);
  c.flows[1].vlan_tci = 0x0123;
  c.frame_size = 128;
  Init(c);
  // Each flow twice: its first frame (every check runs), then another once
  // the checker knows the flow's shape (the headers are compared).
  for (int f = 0; f < 6; ++f) {
    Bytes good = NextFrame(*gen_, ReadTsc());
    for (size_t i = 0; i < good.size(); ++i) {
      for (uint8_t flip : {0x01, 0x80, 0xff}) {
        Bytes bad = good;
        bad[i] ^= flip;
        Verdict v = checker_->Check(bad.data(), static_cast<uint32_t>(bad.size()), ReadTsc());
        EXPECT_TRUE(v == Verdict::kCorrupted || v == Verdict::kForeign)
            << "flow " << f << " byte " << i << " flip " << int{flip};
      }
    }
    // Truncated by one byte.
    EXPECT_EQ(checker_->Check(good.data(), static_cast<uint32_t>(good.size() - 1), 0),
              Verdict::kCorrupted);
    EXPECT_EQ(checker_->Check(good.data(), static_cast<uint32_t>(good.size()), ReadTsc()),
              Verdict::kOk);
  }
  Summary s = checker_->Summarize(gen_->sent_per_flow());
  EXPECT_EQ(s.received, 6u);
  EXPECT_GT(s.corrupted, 0u);
  EXPECT_EQ(s.lost, 0u);
}

TEST_F(CheckerTest, PayloadOfAnotherFlowIsCaught) {
  GeneratorConfig c;
  c.flows = MakeFlows(2);
  c.frame_size = 256;
  Init(c);
  Bytes a = NextFrame(*gen_), b = NextFrame(*gen_);
  memcpy(a.data() + 60, b.data() + 60, a.size() - 60);  // pattern only
  EXPECT_EQ(checker_->Check(a.data(), static_cast<uint32_t>(a.size()), 0), Verdict::kCorrupted);
  // Two pattern words swapped within the frame.
  Bytes d = NextFrame(*gen_);
  std::swap_ranges(d.begin() + 64, d.begin() + 72, d.begin() + 80);
  EXPECT_EQ(checker_->Check(d.data(), static_cast<uint32_t>(d.size()), 0), Verdict::kCorrupted);
}

TEST_F(CheckerTest, ToleratesMacSwapVlanChangesAndAFilledUdpChecksum) {
  GeneratorConfig c;
  c.flows = MakeFlows(2);
  c.flows[1].vlan_tci = 0x0064;
  c.frame_size = 100;
  Init(c);
  auto check = [&](const Bytes& f) {
    return checker_->Check(f.data(), static_cast<uint32_t>(f.size()), ReadTsc());
  };
  Bytes a = NextFrame(*gen_);
  std::swap_ranges(a.begin(), a.begin() + 6, a.begin() + 6);  // MAC swap
  EXPECT_EQ(check(a), Verdict::kOk);
  Bytes tagged = NextFrame(*gen_);
  Bytes stripped(tagged.begin(), tagged.begin() + 12);
  stripped.insert(stripped.end(), tagged.begin() + 16, tagged.end());
  EXPECT_EQ(check(stripped), Verdict::kOk);
  // A tag pushed on an untagged flow is fine; a different tag on a tagged
  // flow is not.
  Bytes b = NextFrame(*gen_);
  Bytes pushed(b.begin(), b.begin() + 12);
  pushed.insert(pushed.end(), {0x81, 0x00, 0x00, 0x07});
  pushed.insert(pushed.end(), b.begin() + 12, b.end());
  EXPECT_EQ(check(pushed), Verdict::kOk);
  Bytes retagged = NextFrame(*gen_);
  retagged[15] = 0x65;
  EXPECT_EQ(check(retagged), Verdict::kCorrupted);
  // IP addresses and ports swapped together (an echoing guest).
  Bytes e = NextFrame(*gen_);
  std::swap_ranges(e.begin() + 26, e.begin() + 30, e.begin() + 30);
  std::swap_ranges(e.begin() + 34, e.begin() + 36, e.begin() + 36);
  EXPECT_EQ(check(e), Verdict::kOk);
  // A correct UDP checksum is accepted, a wrong one is not.
  Bytes u = NextFrame(*gen_);
  const uint32_t ip = u[12] == 0x81 ? 18 : 14, udp = ip + 20;
  uint32_t sum = 0;
  for (uint32_t i = ip + 12; i < ip + 20; i += 2) sum += u[i] << 8 | u[i + 1];
  uint32_t udp_len = u[udp + 4] << 8 | u[udp + 5];
  sum += 17 + udp_len;
  for (uint32_t i = udp; i < udp + udp_len; i += 2) {
    sum += u[i] << 8 | (i + 1 < udp + udp_len ? u[i + 1] : 0);
  }
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  uint16_t csum = static_cast<uint16_t>(~sum);
  u[udp + 6] = static_cast<uint8_t>(csum >> 8);
  u[udp + 7] = static_cast<uint8_t>(csum);
  Bytes wrong = u;
  EXPECT_EQ(check(u), Verdict::kOk);
  wrong[udp + 7] ^= 1;
  EXPECT_EQ(check(wrong), Verdict::kCorrupted);
}

TEST_F(CheckerTest, LossDuplicatesAndReorderingAreToldApart) {
  GeneratorConfig c;
  c.flows = MakeFlows(2);
  Init(c);
  std::vector<Bytes> f0, f1;
  for (int i = 0; i < 10; ++i) {
    f0.push_back(NextFrame(*gen_));
    f1.push_back(NextFrame(*gen_));
  }
  auto check = [&](const Bytes& f) {
    return checker_->Check(f.data(), static_cast<uint32_t>(f.size()), ReadTsc());
  };
  // Flow 0: 0 1 2 4 3 5 5 7 8 9 (6 lost, 3 late, 5 twice).
  for (int seq : {0, 1, 2, 4, 3, 5}) EXPECT_EQ(check(f0[seq]), Verdict::kOk) << seq;
  EXPECT_EQ(check(f0[5]), Verdict::kDuplicate);
  for (int seq : {7, 8, 9}) EXPECT_EQ(check(f0[seq]), Verdict::kOk) << seq;
  EXPECT_EQ(check(f0[3]), Verdict::kDuplicate);  // late duplicates are caught too
  // Flow 1: all ten, in order.
  for (const Bytes& f : f1) EXPECT_EQ(check(f), Verdict::kOk);
  Summary s = checker_->Summarize(gen_->sent_per_flow());
  EXPECT_FALSE(s.Clean());
  const FlowSummary& a = s.flows[0];
  EXPECT_EQ(a.sent, 10u);
  EXPECT_EQ(a.received, 9u);
  EXPECT_EQ(a.lost, 1u);
  EXPECT_EQ(a.missing, 1u);
  EXPECT_EQ(a.duplicates, 2u);
  EXPECT_EQ(a.reordered, 1u);
  EXPECT_EQ(a.gap_events, 2u);
  const FlowSummary& b = s.flows[1];
  EXPECT_EQ(b.received, 10u);
  EXPECT_EQ(b.lost + b.duplicates + b.reordered + b.gap_events, 0u);
  EXPECT_EQ(s.lost, 1u);
  EXPECT_EQ(s.duplicates, 2u);
  EXPECT_NE(s.ToString().find("flow 0: sent 10 received 9 lost 1"), std::string::npos)
      << s.ToString();
  // The lost frame arriving late fills the gap.
  EXPECT_EQ(check(f0[6]), Verdict::kOk);
  s = checker_->Summarize(gen_->sent_per_flow());
  EXPECT_EQ(s.lost, 0u);
  EXPECT_EQ(s.flows[0].missing, 0u);
}

TEST_F(CheckerTest, FramesOlderThanTheWindowCountAsTooLate) {
  GeneratorConfig c;
  Init(c);
  Bytes first = NextFrame(*gen_);
  for (uint32_t i = 1; i < Checker::kReorderWindow + 10; ++i) {
    Bytes f = NextFrame(*gen_);
    ASSERT_EQ(checker_->Check(f.data(), static_cast<uint32_t>(f.size()), 0), Verdict::kOk);
  }
  EXPECT_EQ(checker_->Check(first.data(), static_cast<uint32_t>(first.size()), 0), Verdict::kOk);
  Summary s = checker_->Summarize(gen_->sent_per_flow());
  EXPECT_EQ(s.too_late, 1u);
  EXPECT_EQ(s.reordered, 1u);
  EXPECT_EQ(s.lost, 0u);
}

TEST_F(CheckerTest, LatencyIsNowMinusTimestamp) {
  GeneratorConfig c;
  Init(c);
  const uint64_t t0 = 123456789000;
  for (int i = 0; i < 100; ++i) {
    Bytes f = NextFrame(*gen_, t0);
    checker_->Check(f.data(), static_cast<uint32_t>(f.size()), t0 + 16000 + i * 160);
  }
  const LatencyHistogram& h = checker_->latency();
  EXPECT_EQ(h.count(), 100u);
  EXPECT_NEAR(static_cast<double>(h.min()), 16000, 16);
  EXPECT_NEAR(static_cast<double>(h.max()), 16000 + 99 * 160, 16);
  EXPECT_NEAR(static_cast<double>(h.Percentile(50)), 16000 + 49 * 160, 24000 / 16);
  Summary s = checker_->Summarize();
  EXPECT_NEAR(s.latency.min_ns, 16000 * 1e9 / TscHz(), 100);
}

TEST(VerifyModeTest, ParsesAndPrints) {
  for (const char* text : {"all", "headers", "sample:8", "sample:1000"}) {
    auto m = VerifyMode::Parse(text);
    ASSERT_TRUE(m.ok()) << text;
    EXPECT_EQ(m->ToString(), text);
  }
  EXPECT_EQ(VerifyMode::Parse("sample:1")->ToString(), "all");
  for (const char* text : {"", "some", "sample:", "sample:0", "sample:-1", "sample:x", "All"}) {
    EXPECT_FALSE(VerifyMode::Parse(text).ok()) << text;
  }
}

// Without the payload every frame's headers and test header are still
// checked and every frame counted; only payload damage goes unseen, in the
// frames whose payload is not read.
TEST_F(CheckerTest, HeadersAndSampledModesCheckAllButUnreadPayloads) {
  for (const char* mode : {"headers", "sample:5"}) {
    SCOPED_TRACE(mode);
    const VerifyMode verify = *VerifyMode::Parse(mode);
    auto init = [&](GeneratorConfig c) {
      Init(c);
      CheckerOptions o;
      o.num_flows = static_cast<uint32_t>(flows_.size());
      o.flows = flows_;
      o.verify = verify;
      checker_ = std::make_unique<Checker>(o);
    };
    // Damage in the headers or the test header: always caught.
    GeneratorConfig c;
    c.flows = MakeFlows(3);
    c.flows[1].vlan_tci = 0x0123;
    c.size_mode = SizeMode::kImix;
    init(c);
    for (int i = 0; i < 36; ++i) {
      Bytes good = NextFrame(*gen_, ReadTsc());
      const size_t l2 = good[12] == 0x81 ? 18 : 14;  // flow 1 is tagged
      for (size_t at : {size_t{3}, size_t{9}, l2 + 8, l2 + 16, l2 + 22, l2 + 28 + 3, l2 + 28 + 5,
                        l2 + 28 + 9, l2 + 28 + 13, l2 + 28 + 16}) {
        Bytes bad = good;
        bad[at] ^= 0x04;
        Verdict v = checker_->Check(bad.data(), static_cast<uint32_t>(bad.size()), ReadTsc());
        EXPECT_TRUE(v == Verdict::kCorrupted || v == Verdict::kForeign) << i << " byte " << at;
      }
      ASSERT_EQ(checker_->Check(good.data(), static_cast<uint32_t>(good.size()), ReadTsc()),
                Verdict::kOk);
    }
    Summary s = checker_->Summarize(gen_->sent_per_flow());
    EXPECT_TRUE(s.Clean() || (s.corrupted + s.foreign > 0 && s.lost == 0 && s.received == 36))
        << s.ToString();
    EXPECT_EQ(s.received, 36u);

    // Damage in the payload: caught in exactly the frames whose payload is
    // read (the first, then every fifth; never with headers).
    c.size_mode = SizeMode::kFixed;
    c.frame_size = 570;
    init(c);
    uint64_t caught = 0;
    for (int i = 0; i < 60; ++i) {
      Bytes bad = NextFrame(*gen_, ReadTsc());
      bad[bad.size() - 1 - i] ^= 0x04;
      const bool read = verify.payload_every != 0 && i % 5 == 0;
      EXPECT_EQ(checker_->Check(bad.data(), static_cast<uint32_t>(bad.size()), ReadTsc()),
                read ? Verdict::kCorrupted : Verdict::kOk)
          << i;
      caught += read;
    }
    s = checker_->Summarize(gen_->sent_per_flow());
    EXPECT_EQ(s.payload_checked, caught);
    EXPECT_EQ(s.corrupted, caught);
    EXPECT_EQ(s.received, 60 - caught);
  }
}

TEST_F(CheckerTest, ForeignFramesAreCountedApart) {
  GeneratorConfig c;
  Init(c);
  Bytes f = NextFrame(*gen_);
  Bytes arp = f;
  arp[12] = 0x08;
  arp[13] = 0x06;
  Bytes tcp = f;
  tcp[23] = 6;
  Bytes other_generator = f;
  TestHeader h = LoadTestHeader(f.data() + 42);
  h.flow = 9;  // valid CRC, flow unknown here
  StoreTestHeader(other_generator.data() + 42, h);
  uint32_t check = Crc32c(other_generator.data() + 42, 14) ^ Crc32c(nullptr, 0);
  memcpy(other_generator.data() + 56, &check, 4);
  Bytes runt(10, 0);
  for (const Bytes* b : {&arp, &tcp, &other_generator, &runt}) {
    EXPECT_EQ(checker_->Check(b->data(), static_cast<uint32_t>(b->size()), 0), Verdict::kForeign);
  }
  Summary s = checker_->Summarize(gen_->sent_per_flow());
  EXPECT_EQ(s.foreign, 4u);
  EXPECT_EQ(s.lost, 1u);
}

}  // namespace
}  // namespace iovtee::softnic
