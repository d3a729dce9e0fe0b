// Steering: the Toeplitz hash against Microsoft's published RSS verification
// vectors, RSS queue selection through the reta checked against a Toeplitz
// written here independently, flow rules by MAC and VLAN, and seqlocked table
// reads that never use a half-written table.
#include <cstring>
#include <map>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "test/softnic/device/device_rig.h"
#include "test/softnic/device/toeplitz.h"

namespace iovtee::softnic::testing {
namespace {

// The default key of Microsoft's RSS specification ("Verifying the RSS Hash
// Calculation").
constexpr uint8_t kMsKey[40] = {0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67,
                                0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb,
                                0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30,
                                0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa};

struct MsVector {
  uint8_t dst[4];
  uint16_t dst_port;
  uint8_t src[4];
  uint16_t src_port;
  uint32_t ipv4;
  uint32_t ipv4_tcp;
};
constexpr MsVector kMsVectors[] = {
    {{161, 142, 100, 80}, 1766, {66, 9, 149, 187}, 2794, 0x323e8fc2, 0x51ccc178},
    {{65, 69, 140, 83}, 4739, {199, 92, 111, 2}, 14230, 0xd718262a, 0xc626b0ea},
    {{12, 22, 207, 184}, 38024, {24, 19, 198, 95}, 12898, 0xd2d0a5de, 0x5c2b394a},
    {{209, 142, 163, 6}, 2217, {38, 27, 205, 30}, 48228, 0x82989176, 0xafc7327f},
    {{202, 188, 127, 2}, 1303, {153, 39, 163, 191}, 44251, 0x5d1809c5, 0x10e828a2},
};

// Toeplitz from the specification's pseudo-code, kept apart from the
// device's: for each input bit (MSB first), if set xor in the leftmost 32
// bits of the key, then shift the key left by one bit.
uint32_t SpecToeplitz(const uint8_t* key, const std::vector<uint8_t>& input) {
  uint32_t result = 0;
  uint32_t k = uint32_t{key[0]} << 24 | uint32_t{key[1]} << 16 | uint32_t{key[2]} << 8 | key[3];
  for (size_t i = 0; i < input.size(); ++i) {
    uint8_t next = i + 4 < 40 ? key[i + 4] : 0;
    for (int b = 7; b >= 0; --b) {
      if (input[i] & (1u << b)) result ^= k;
      k = k << 1 | ((next >> b) & 1u);
    }
  }
  return result;
}

std::vector<uint8_t> MsInput(const MsVector& v, bool ports) {
  std::vector<uint8_t> in(v.src, v.src + 4);
  in.insert(in.end(), v.dst, v.dst + 4);
  if (ports) {
    in.push_back(v.src_port >> 8);
    in.push_back(v.src_port & 0xff);
    in.push_back(v.dst_port >> 8);
    in.push_back(v.dst_port & 0xff);
  }
  return in;
}

TEST(ToeplitzTest, SpecImplementationMatchesMicrosoftVectors) {
  for (const MsVector& v : kMsVectors) {
    EXPECT_EQ(SpecToeplitz(kMsKey, MsInput(v, false)), v.ipv4);
    EXPECT_EQ(SpecToeplitz(kMsKey, MsInput(v, true)), v.ipv4_tcp);
  }
}

TEST(ToeplitzTest, TabulatedHasherMatchesMicrosoftVectors) {
  ToeplitzHasher h;
  h.SetKey(kMsKey);
  for (const MsVector& v : kMsVectors) {
    std::vector<uint8_t> in = MsInput(v, true);
    EXPECT_EQ(h.HashAt(in.data(), 8, 0), v.ipv4);
    EXPECT_EQ(h.HashAt(in.data(), 12, 0), v.ipv4_tcp);
    // Piecewise: addresses at 0, ports at 8.
    EXPECT_EQ(h.HashAt(in.data(), 8, 0) ^ h.HashAt(in.data() + 8, 4, 8), v.ipv4_tcp);
    EXPECT_EQ(ToeplitzHasher::Reference(kMsKey, 40, in.data(), 12), v.ipv4_tcp);
  }
}

TEST(ToeplitzTest, MicrosoftIpv6Vector) {
  // src 3ffe:2501:200:1fff::7 port 2794, dst 3ffe:2501:200:3::1 port 1766.
  std::vector<uint8_t> in = {0x3f, 0xfe, 0x25, 0x01, 0x02, 0x00, 0x1f, 0xff, 0,    0,    0,    0, 0,
                             0,    0,    0x07, 0x3f, 0xfe, 0x25, 0x01, 0x02, 0x00, 0x00, 0x03, 0, 0,
                             0,    0,    0,    0,    0,    0x01, 0x0a, 0xea, 0x06, 0xe6};
  ToeplitzHasher h;
  h.SetKey(kMsKey);
  EXPECT_EQ(h.HashAt(in.data(), 32, 0), 0x2cc18cd5u);
  EXPECT_EQ(h.HashAt(in.data(), 36, 0), 0x40207d3du);
  EXPECT_EQ(SpecToeplitz(kMsKey, in), 0x40207d3du);
}

TEST(ToeplitzTest, RandomKeysAgreeWithTheSpecImplementation) {
  std::mt19937 rng(1);
  ToeplitzHasher h;
  for (int k = 0; k < 20; ++k) {
    uint8_t key[40];
    for (auto& b : key) b = static_cast<uint8_t>(rng());
    h.SetKey(key);
    std::vector<uint8_t> in(36);
    for (auto& b : in) b = static_cast<uint8_t>(rng());
    EXPECT_EQ(h.HashAt(in.data(), 36, 0), SpecToeplitz(key, in));
  }
}

class SteeringTest : public ::testing::Test {
 protected:
  void SetUp() override {
    RigOptions o;
    o.driver.num_rxq = 4;
    o.device.log = false;
    auto rig = Rig::Create(o);
    ASSERT_TRUE(rig.ok()) << rig.status();
    rig_ = std::move(*rig);
    for (int q = 0; q < 4; ++q) {
      driver().ConfigureRx(q, 2048);
      driver().StartRx(q);
      for (uint32_t i = 0; i < 64; ++i) {
        ASSERT_TRUE(driver().PostRx(q, rig_->iova((q * 64 + i) * 2048)));
      }
    }
  }
  FakeDriver& driver() { return *rig_->driver; }

  // Sends one frame; returns the queue it landed on (-1: none) and its
  // completion.
  int SendOne(const std::vector<uint8_t>& f, RxCompletion* out = nullptr) {
    Frame fr{f.data(), static_cast<uint32_t>(f.size())};
    rig_->device->Receive(absl::MakeConstSpan(&fr, 1));
    int found = -1;
    for (int q = 0; q < 4; ++q) {
      std::vector<RxCompletion> done = driver().ReapRx(q);
      if (done.empty()) continue;
      EXPECT_EQ(found, -1);
      EXPECT_EQ(done.size(), 1u);
      found = q;
      if (out != nullptr) *out = done[0];
      EXPECT_EQ(memcmp(rig_->host(done[0].addr - Rig::kIova), f.data(), f.size()), 0);
      EXPECT_TRUE(driver().PostRx(q, done[0].addr));
    }
    return found;
  }

  std::unique_ptr<Rig> rig_;
};

TEST_F(SteeringTest, RssFollowsTheRetaWithTheSpecHash) {
  uint16_t reta[simnic::kRetaSize];
  for (int i = 0; i < simnic::kRetaSize; ++i) reta[i] = (i * 7 + i / 5) % 4;
  driver().SetRss(true, kMsKey, reta);
  std::mt19937 rng(7);
  std::map<int, int> per_queue;
  for (int n = 0; n < 400; ++n) {
    FrameSpec s;
    s.ipv6 = n % 4 == 3;
    s.proto = n % 3 == 0 ? 6 : 17;
    for (auto& b : s.src_ip) b = static_cast<uint8_t>(rng());
    for (auto& b : s.dst_ip) b = static_cast<uint8_t>(rng());
    s.src_port = static_cast<uint16_t>(rng());
    s.dst_port = static_cast<uint16_t>(rng());
    s.vlan_tci = n % 5 == 0 ? 42 : -1;
    s.len = 128;
    s.payload_seed = n;
    std::vector<uint8_t> f = BuildFrame(s);
    size_t alen = s.ipv6 ? 16 : 4;
    std::vector<uint8_t> in(s.src_ip, s.src_ip + alen);
    in.insert(in.end(), s.dst_ip, s.dst_ip + alen);
    in.insert(in.end(), {static_cast<uint8_t>(s.src_port >> 8), static_cast<uint8_t>(s.src_port),
                         static_cast<uint8_t>(s.dst_port >> 8), static_cast<uint8_t>(s.dst_port)});
    uint32_t hash = SpecToeplitz(kMsKey, in);
    RxCompletion c;
    int q = SendOne(f, &c);
    ASSERT_EQ(q, reta[hash % simnic::kRetaSize]) << n;
    EXPECT_EQ(c.rss_hash, hash) << n;
    EXPECT_TRUE(c.status & simnic::kRxRssValid);
    ++per_queue[q];
  }
  EXPECT_EQ(per_queue.size(), 4u);
  for (auto [q, count] : per_queue) EXPECT_GT(count, 40) << q;
}

TEST_F(SteeringTest, RssHashesAddressesOnlyForFragmentsAndOtherProtocols) {
  uint16_t reta[simnic::kRetaSize];
  for (int i = 0; i < simnic::kRetaSize; ++i) reta[i] = i % 4;
  driver().SetRss(true, kMsKey, reta);
  const MsVector& v = kMsVectors[0];
  FrameSpec s;
  memcpy(s.src_ip, v.src, 4);
  memcpy(s.dst_ip, v.dst, 4);
  s.src_port = v.src_port;
  s.dst_port = v.dst_port;
  s.proto = 6;
  RxCompletion c;
  SendOne(BuildFrame(s), &c);
  EXPECT_EQ(c.rss_hash, v.ipv4_tcp);
  std::vector<uint8_t> frag = BuildFrame(s);
  frag[14 + 6] = 0x20;  // MF
  SendOne(frag, &c);
  EXPECT_EQ(c.rss_hash, v.ipv4);
  s.proto = 47;  // GRE: no ports
  SendOne(BuildFrame(s), &c);
  EXPECT_EQ(c.rss_hash, v.ipv4);
  // Not IP: queue 0, no hash.
  std::vector<uint8_t> arp = BuildFrame(FrameSpec{});
  arp[12] = 0x08;
  arp[13] = 0x06;
  EXPECT_EQ(SendOne(arp, &c), 0);
  EXPECT_FALSE(c.status & simnic::kRxRssValid);
}

TEST_F(SteeringTest, WithoutRssEverythingGoesToQueueZero) {
  for (int n = 0; n < 20; ++n) {
    FrameSpec s;
    s.src_port = static_cast<uint16_t>(n * 1000);
    RxCompletion c;
    EXPECT_EQ(SendOne(BuildFrame(s), &c), 0);
    EXPECT_FALSE(c.status & simnic::kRxRssValid);
  }
}

simnic::FlowRule Rule(uint8_t last_mac_byte, int vlan, uint16_t queue) {
  simnic::FlowRule r = {};
  const uint8_t mac[6] = {0x02, 0, 0, 0, 0, last_mac_byte};
  memcpy(r.dst_mac, mac, 6);
  r.match_vlan = vlan >= 0;
  r.vlan_id = vlan >= 0 ? static_cast<uint16_t>(vlan) : 0;
  r.valid = 1;
  r.queue = queue;
  return r;
}

TEST_F(SteeringTest, FlowRulesMatchMacAndVlanFirstMatchWins) {
  simnic::FlowRule disabled = Rule(0xa0, -1, 0);
  disabled.valid = 0;
  driver().SetFlowRules(
      {disabled, Rule(0xa0, -1, 2), Rule(0xa0, -1, 3), Rule(0xb0, 100, 3), Rule(0xb0, -1, 1)});
  auto frame = [](uint8_t mac, int tci) {
    FrameSpec s;
    s.dst[5] = mac;
    s.vlan_tci = tci;
    return BuildFrame(s);
  };
  EXPECT_EQ(SendOne(frame(0xa0, -1)), 2);
  EXPECT_EQ(SendOne(frame(0xa0, 5)), 2);
  EXPECT_EQ(SendOne(frame(0xb0, 100)), 3);
  EXPECT_EQ(SendOne(frame(0xb0, 0x3000 | 100)), 3);  // PCP bits do not matter
  EXPECT_EQ(SendOne(frame(0xb0, 200)), 1);
  EXPECT_EQ(SendOne(frame(0xb0, -1)), 1);
  // A rule accepts a MAC that is not the port's (port not promiscuous);
  // a MAC without a rule is filtered.
  EXPECT_EQ(SendOne(frame(0xc0, -1)), -1);
  EXPECT_EQ(rig_->device->Stats().rx_filtered, 1u);
  EXPECT_EQ(SendOne(frame(0x01, -1)), 0);  // the port's MAC, no rule: queue 0
}

TEST_F(SteeringTest, HalfWrittenTablesAreNeverUsed) {
  uint16_t to1[simnic::kRetaSize], to2[simnic::kRetaSize];
  for (int i = 0; i < simnic::kRetaSize; ++i) {
    to1[i] = 1;
    to2[i] = 2;
  }
  driver().SetRss(true, kMsKey, to1);
  EXPECT_EQ(SendOne(BuildFrame(FrameSpec{})), 1);
  // The writer is mid-update: sequence odd, half the table rewritten.
  driver().BeginRssUpdate();
  memcpy(driver().regs()->reta, to2, sizeof(to2) / 2);
  for (int n = 0; n < 5; ++n) {
    FrameSpec s;
    s.src_port = static_cast<uint16_t>(n);
    EXPECT_EQ(SendOne(BuildFrame(s)), 1) << n;
  }
  EXPECT_GT(rig_->device->Stats().stale_tables, 0u);
  memcpy(driver().regs()->reta, to2, sizeof(to2));
  driver().EndRssUpdate();
  EXPECT_EQ(SendOne(BuildFrame(FrameSpec{})), 2);

  // The same for flow rules.
  driver().SetFlowRules({Rule(0x01, -1, 3)});
  EXPECT_EQ(SendOne(BuildFrame(FrameSpec{})), 3);
  __atomic_fetch_add(&driver().regs()->flow_seq, 1, __ATOMIC_SEQ_CST);
  driver().regs()->rules[0].queue = 0;
  EXPECT_EQ(SendOne(BuildFrame(FrameSpec{})), 3);
  __atomic_fetch_add(&driver().regs()->flow_seq, 1, __ATOMIC_SEQ_CST);
  EXPECT_EQ(SendOne(BuildFrame(FrameSpec{})), 0);
}

}  // namespace
}  // namespace iovtee::softnic::testing
