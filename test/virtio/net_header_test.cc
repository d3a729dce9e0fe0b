// The virtio-net header and its translation from and to mbuf offload flags,
// on real mbufs holding real frames. Checksums are verified by an independent
// big-endian implementation (and rte_ipv4_cksum for IPv4 headers), SCTP's CRC
// by a bitwise CRC32c; frames that must not be read past live in heap blocks
// of exactly their size, so AddressSanitizer (--config=asan) catches overreads.
#include "src/virtio/net_header.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include <rte_errno.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_mbuf_ptype.h>
#include <rte_mempool.h>
#include <rte_sctp.h>
#include <rte_tcp.h>
#include <rte_udp.h>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "test/common/eal.h"

namespace iovtee::virtio {
namespace {

constexpr uint64_t Bit(int b) { return uint64_t{1} << b; }

constexpr uint64_t kGuestOffloads = Bit(kNetFGuestCsum) | Bit(kNetFGuestTso4) |
                                    Bit(kNetFGuestTso6) | Bit(kNetFGuestEcn) | Bit(kNetFGuestUfo) |
                                    Bit(kFVersion1);
constexpr uint64_t kHostOffloads = Bit(kNetFCsum) | Bit(kNetFHostTso4) | Bit(kNetFHostTso6) |
                                   Bit(kNetFHostEcn) | Bit(kNetFHostUfo) | Bit(kFVersion1);
constexpr uint64_t kTxFlagsOfInterest = RTE_MBUF_F_TX_L4_MASK | RTE_MBUF_F_TX_TCP_SEG |
                                        RTE_MBUF_F_TX_UDP_SEG | RTE_MBUF_F_TX_IPV4 |
                                        RTE_MBUF_F_TX_IPV6 | RTE_MBUF_F_TX_IP_CKSUM;

// ---------------------------------------------------------------------------
// Frames.

struct FrameSpec {
  bool ipv6 = false;
  uint8_t proto = IPPROTO_TCP;
  uint32_t payload = 100;
  int vlans = 0;              // 1: 802.1Q; 2: 802.1ad outer + 802.1Q inner
  int ipv4_option_words = 0;  // IHL - 5
  int tcp_option_words = 0;   // data offset - 5
  uint8_t ipv6_ext = 0;       // 0, IPPROTO_DSTOPTS or IPPROTO_ROUTING (one 8-byte header)
  uint8_t tcp_flags = RTE_TCP_ACK_FLAG;
  uint16_t ipv4_frag = 0x4000;  // DF
  uint32_t padding = 0;         // bytes after the IP packet (Ethernet padding)

  // Chainable setters: FrameSpec().Ipv6().Udp().Payload(333).
  FrameSpec Ipv6(bool v = true) const { return With(&FrameSpec::ipv6, v); }
  FrameSpec Udp() const { return With(&FrameSpec::proto, uint8_t{IPPROTO_UDP}); }
  FrameSpec Sctp() const { return With(&FrameSpec::proto, uint8_t{IPPROTO_SCTP}); }
  FrameSpec Proto(uint8_t v) const { return With(&FrameSpec::proto, v); }
  FrameSpec Payload(uint32_t v) const { return With(&FrameSpec::payload, v); }
  FrameSpec Vlans(int v) const { return With(&FrameSpec::vlans, v); }
  FrameSpec Ipv4Options(int words) const { return With(&FrameSpec::ipv4_option_words, words); }
  FrameSpec TcpOptions(int words) const { return With(&FrameSpec::tcp_option_words, words); }
  FrameSpec Ipv6Ext(uint8_t v) const { return With(&FrameSpec::ipv6_ext, v); }
  FrameSpec TcpFlags(uint8_t v) const { return With(&FrameSpec::tcp_flags, v); }
  FrameSpec Ipv4Frag(uint16_t v) const { return With(&FrameSpec::ipv4_frag, v); }
  FrameSpec Padding(uint32_t v) const { return With(&FrameSpec::padding, v); }

 private:
  template <typename T>
  FrameSpec With(T FrameSpec::*field, T v) const {
    FrameSpec s = *this;
    s.*field = v;
    return s;
  }
};

struct Frame {
  std::vector<uint8_t> bytes;
  uint32_t l2 = 0;
  uint32_t l3 = 0;
  uint32_t l4_hdr = 0;
  uint32_t l4_total = 0;  // L4 header + payload
  bool ipv6 = false;
  uint8_t proto = 0;
  uint32_t l4_off() const { return l2 + l3; }
  uint32_t csum_field() const {
    return l4_off() + (proto == IPPROTO_TCP   ? offsetof(rte_tcp_hdr, cksum)
                       : proto == IPPROTO_UDP ? offsetof(rte_udp_hdr, dgram_cksum)
                                              : offsetof(rte_sctp_hdr, cksum));
  }
};

void PutBe16(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
uint16_t GetBe16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }

// Independent Internet checksum: big-endian words, whatever the host order.
uint32_t SumBe(const uint8_t* p, size_t n, uint32_t sum = 0) {
  for (size_t i = 0; i + 1 < n; i += 2) sum += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
  if (n & 1) sum += static_cast<uint32_t>(p[n - 1] << 8);
  return sum;
}
uint16_t FoldBe(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

uint32_t PseudoSumBe(const Frame& f) {
  const uint8_t* ip = f.bytes.data() + f.l2;
  uint32_t sum = f.ipv6 ? SumBe(ip + 8, 32) : SumBe(ip + 12, 8);
  sum += f.proto;
  sum += f.l4_total >> 16;
  sum += f.l4_total & 0xffff;
  return sum;
}

bool L4ChecksumOk(const Frame& f, const std::vector<uint8_t>& bytes) {
  Frame g = f;
  g.bytes = bytes;
  const uint32_t sum = PseudoSumBe(g) + SumBe(bytes.data() + f.l4_off(), f.l4_total);
  return FoldBe(sum) == 0xffff;
}

// Bitwise CRC32c (Castagnoli, reflected), SCTP's checksum.
uint32_t Crc32c(const uint8_t* p, size_t n) {
  uint32_t crc = 0xffffffff;
  for (size_t i = 0; i < n; ++i) {
    crc ^= p[i];
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1)));
  }
  return ~crc;
}

bool SctpCrcOk(const Frame& f, const std::vector<uint8_t>& bytes) {
  std::vector<uint8_t> l4(bytes.begin() + f.l4_off(), bytes.begin() + f.l4_off() + f.l4_total);
  const size_t at = offsetof(rte_sctp_hdr, cksum);
  const uint32_t stored = l4[at] | l4[at + 1] << 8 | l4[at + 2] << 16 | uint32_t{l4[at + 3]} << 24;
  std::fill(l4.begin() + at, l4.begin() + at + 4, 0);
  return stored == Crc32c(l4.data(), l4.size());  // RFC 4960 B: least significant byte first
}

Frame BuildFrame(const FrameSpec& s) {
  Frame f;
  f.ipv6 = s.ipv6;
  f.proto = s.proto;
  f.l2 = RTE_ETHER_HDR_LEN + 4 * s.vlans;
  f.l3 = s.ipv6 ? 40 + (s.ipv6_ext ? 8 : 0) : 20 + 4 * s.ipv4_option_words;
  f.l4_hdr = s.proto == IPPROTO_TCP ? 20 + 4 * s.tcp_option_words : s.proto == IPPROTO_UDP ? 8 : 12;
  f.l4_total = f.l4_hdr + s.payload;
  f.bytes.assign(f.l2 + f.l3 + f.l4_total + s.padding, 0);
  uint8_t* p = f.bytes.data();

  const uint8_t macs[12] = {0x52, 0x54, 0, 0x12, 0x34, 0x56, 0x52, 0x54, 0, 0xab, 0xcd, 0xef};
  std::memcpy(p, macs, sizeof(macs));
  uint32_t off = 12;
  if (s.vlans == 2) {
    PutBe16(p + off, RTE_ETHER_TYPE_QINQ);
    PutBe16(p + off + 2, 100);
    off += 4;
  }
  if (s.vlans >= 1) {
    PutBe16(p + off, RTE_ETHER_TYPE_VLAN);
    PutBe16(p + off + 2, 200);
    off += 4;
  }
  PutBe16(p + off, s.ipv6 ? RTE_ETHER_TYPE_IPV6 : RTE_ETHER_TYPE_IPV4);

  uint8_t* ip = p + f.l2;
  if (!s.ipv6) {
    ip[0] = static_cast<uint8_t>(0x40 | (f.l3 / 4));
    PutBe16(ip + 2, f.l3 + f.l4_total);
    PutBe16(ip + 4, 0x1234);
    PutBe16(ip + 6, s.ipv4_frag);
    ip[8] = 64;
    ip[9] = s.proto;
    const uint8_t addrs[8] = {10, 0, 0, 1, 10, 0, 0, 2};
    std::memcpy(ip + 12, addrs, 8);
    for (uint32_t i = 20; i < f.l3; ++i) ip[i] = 1;  // NOP options
    PutBe16(ip + 10, static_cast<uint16_t>(~FoldBe(SumBe(ip, f.l3))));
  } else {
    ip[0] = 0x60;
    PutBe16(ip + 4, f.l3 - 40 + f.l4_total);
    ip[6] = s.ipv6_ext ? s.ipv6_ext : s.proto;
    ip[7] = 64;
    for (int i = 0; i < 16; ++i) {
      ip[8 + i] = static_cast<uint8_t>(0x20 + i);
      ip[24 + i] = static_cast<uint8_t>(0x40 + i);
    }
    if (s.ipv6_ext) {
      ip[40] = s.proto;  // next header; length 0: 8 bytes
      ip[41] = 0;
      if (s.ipv6_ext == IPPROTO_DSTOPTS) ip[42] = 1;  // PadN over the rest
      if (s.ipv6_ext == IPPROTO_DSTOPTS) ip[43] = 4;
    }
  }

  uint8_t* l4 = p + f.l4_off();
  PutBe16(l4, 40000);
  PutBe16(l4 + 2, 5001);
  if (s.proto == IPPROTO_TCP) {
    PutBe16(l4 + 4, 0x1111);
    PutBe16(l4 + 8, 0x2222);
    l4[12] = static_cast<uint8_t>((f.l4_hdr / 4) << 4);
    l4[13] = s.tcp_flags;
    PutBe16(l4 + 14, 0xffff);
    for (uint32_t i = 20; i < f.l4_hdr; ++i) l4[i] = 1;  // NOP options
  } else if (s.proto == IPPROTO_UDP) {
    PutBe16(l4 + 4, f.l4_total);
  } else {
    PutBe16(l4 + 4, 0xcafe);
  }
  for (uint32_t i = 0; i < s.payload; ++i) l4[f.l4_hdr + i] = static_cast<uint8_t>(i * 31 + 7);
  for (uint32_t i = 0; i < s.padding; ++i) p[f.l2 + f.l3 + f.l4_total + i] = 0x5a;
  return f;
}

std::vector<uint8_t> Bytes(const rte_mbuf* m) {
  std::vector<uint8_t> out;
  for (const rte_mbuf* s = m; s != nullptr; s = s->next) {
    const uint8_t* d = rte_pktmbuf_mtod(s, const uint8_t*);
    out.insert(out.end(), d, d + rte_pktmbuf_data_len(s));
  }
  return out;
}

// ---------------------------------------------------------------------------
// One EAL and one mbuf pool for the whole binary (rte_eal_init runs once per
// process, even when it fails).

constexpr unsigned kPoolSize = 1023;
rte_mempool* g_pool = nullptr;

class EalEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    // No telemetry socket: a crashed test would leave /tmp/dpdk_telemetry.v2
    // behind, and every later sandboxed EAL (no runtime directory, so it
    // cannot tell the socket is stale) would fail to start.
    iovtee::test::EalOptions options;
    options.extra = {"--no-telemetry"};
    const absl::Status eal = iovtee::test::StartEal(options);
    ASSERT_TRUE(eal.ok()) << eal;
    g_pool = rte_pktmbuf_pool_create("net_header_test", kPoolSize, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                     SOCKET_ID_ANY);
    ASSERT_NE(g_pool, nullptr) << rte_strerror(rte_errno);
  }
  void TearDown() override {
    rte_mempool_free(g_pool);
    g_pool = nullptr;
  }
};

[[maybe_unused]] ::testing::Environment* const kEalEnvironment =
    ::testing::AddGlobalTestEnvironment(new EalEnvironment);

class NetHeaderTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_NE(pool_, nullptr) << "EAL or the pool did not come up"; }
  void TearDown() override {
    for (rte_mbuf* m : mbufs_) rte_pktmbuf_free(m);
    EXPECT_EQ(rte_mempool_avail_count(pool_), kPoolSize) << "mbuf leaked";
  }

  // The frame in an mbuf chain: the first segment holds `first` bytes, each
  // further one `rest` (0: as much as a segment holds).
  rte_mbuf* Mbuf(const std::vector<uint8_t>& bytes, uint32_t first = 0, uint32_t rest = 0) {
    if (first == 0) first = RTE_MBUF_DEFAULT_DATAROOM;
    if (rest == 0) rest = RTE_MBUF_DEFAULT_DATAROOM;
    rte_mbuf* head = nullptr;
    uint32_t off = 0;
    do {
      const uint32_t n =
          std::min<uint32_t>(off == 0 ? first : rest, static_cast<uint32_t>(bytes.size()) - off);
      rte_mbuf* m = rte_pktmbuf_alloc(pool_);
      EXPECT_NE(m, nullptr);
      if (m == nullptr) return head;
      char* d = rte_pktmbuf_append(m, static_cast<uint16_t>(n));
      EXPECT_NE(d, nullptr) << n << " bytes do not fit a segment";
      if (d == nullptr) {
        rte_pktmbuf_free(m);
        return head;
      }
      if (n > 0) std::memcpy(d, bytes.data() + off, n);
      if (head == nullptr) {
        head = m;
        mbufs_.push_back(m);
      } else {
        EXPECT_EQ(rte_pktmbuf_chain(head, m), 0);
      }
      off += n;
    } while (off < bytes.size());
    return head;
  }

  rte_mbuf* Request(const Frame& f, uint64_t ol_flags, uint16_t tso_segsz = 0) {
    rte_mbuf* m = Mbuf(f.bytes);
    m->ol_flags |= ol_flags;
    m->l2_len = f.l2;
    m->l3_len = f.l3;
    m->l4_len = f.l4_hdr;
    m->tso_segsz = tso_segsz;
    return m;
  }

  rte_mempool* const pool_ = g_pool;
  std::vector<rte_mbuf*> mbufs_;
};

// An mbuf whose data is a heap block of exactly the frame's size (attached as
// an external buffer), so AddressSanitizer reports any access past the frame.
class ExactMbuf {
 public:
  ExactMbuf(rte_mempool* mp, const std::vector<uint8_t>& bytes)
      : buf_(new uint8_t[bytes.size()]), m_(rte_pktmbuf_alloc(mp)) {
    shinfo_.free_cb = [](void*, void*) {};
    shinfo_.fcb_opaque = nullptr;
    rte_mbuf_ext_refcnt_set(&shinfo_, 1);
    const auto len = static_cast<uint16_t>(bytes.size());
    rte_pktmbuf_attach_extbuf(m_, buf_.get(), reinterpret_cast<uintptr_t>(buf_.get()), len,
                              &shinfo_);
    if (len > 0) std::memcpy(rte_pktmbuf_append(m_, len), bytes.data(), len);
  }
  ~ExactMbuf() { rte_pktmbuf_free(m_); }
  ExactMbuf(const ExactMbuf&) = delete;
  ExactMbuf& operator=(const ExactMbuf&) = delete;
  rte_mbuf* get() { return m_; }

 private:
  std::unique_ptr<uint8_t[]> buf_;
  rte_mbuf_ext_shared_info shinfo_{};
  rte_mbuf* m_;
};

// Emulates the guest completing a NEEDS_CSUM frame (virtio 1.1, 5.1.6.4).
std::vector<uint8_t> CompleteAsGuest(std::vector<uint8_t> bytes, const VirtioNetHdr& h) {
  const uint16_t csum = static_cast<uint16_t>(
      ~FoldBe(SumBe(bytes.data() + h.csum_start, bytes.size() - h.csum_start)));
  PutBe16(bytes.data() + h.csum_start + h.csum_offset, csum);
  return bytes;
}

// rte_mbuf's length fields are bitfields, which EXPECT_EQ cannot bind.
uint32_t L2Len(const rte_mbuf* m) { return static_cast<uint32_t>(m->l2_len); }
uint32_t L3Len(const rte_mbuf* m) { return static_cast<uint32_t>(m->l3_len); }
uint32_t L4Len(const rte_mbuf* m) { return static_cast<uint32_t>(m->l4_len); }
uint32_t SegSz(const rte_mbuf* m) { return static_cast<uint32_t>(m->tso_segsz); }

bool IsZero(const VirtioNetHdr& h) {
  static constexpr VirtioNetHdr kZero{};
  return std::memcmp(&h, &kZero, sizeof(h)) == 0;
}

// ---------------------------------------------------------------------------
// Layout, sizes and names.

TEST(NetHeaderLayoutTest, SizeFollowsFeatures) {
  EXPECT_EQ(NetHdrSize(0), 10u);
  EXPECT_EQ(NetHdrSize(kGuestOffloads & ~Bit(kFVersion1)), 10u);
  EXPECT_EQ(NetHdrSize(Bit(kNetFMrgRxbuf)), 12u);
  EXPECT_EQ(NetHdrSize(Bit(kFVersion1)), 12u);
  EXPECT_EQ(NetHdrSize(Bit(kFVersion1) | Bit(kNetFMrgRxbuf)), 12u);
  static_assert(NetHdrSize(0) == kNetHdrLegacySize && kNetHdrMrgSize == sizeof(VirtioNetHdr));
}

TEST(NetHeaderLayoutTest, WireLayoutIsLittleEndian) {
  VirtioNetHdr h{};
  h.flags = 1;
  h.gso_type = 4;
  h.hdr_len = 0x0201;
  h.gso_size = 0x0403;
  h.csum_start = 0x0605;
  h.csum_offset = 0x0807;
  h.num_buffers = 0x0a09;
  uint8_t wire[12];
  std::memcpy(wire, &h, sizeof(wire));
  const uint8_t want[12] = {1, 4, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  EXPECT_EQ(std::memcmp(wire, want, sizeof(want)), 0);
}

TEST(NetHeaderLayoutTest, EveryStatusHasADistinctName) {
  std::vector<std::string> names;
  for (int i = 0; i < static_cast<int>(RxHeaderStatus::kCount); ++i) {
    names.push_back(RxHeaderStatusName(static_cast<RxHeaderStatus>(i)));
    EXPECT_NE(names.back(), "unknown");
  }
  EXPECT_STREQ(RxHeaderStatusName(RxHeaderStatus::kCount), "unknown");
  EXPECT_STREQ(RxHeaderStatusName(RxHeaderStatus::kGsoNotNegotiated), "gso_not_negotiated");
  std::sort(names.begin(), names.end());
  EXPECT_EQ(std::adjacent_find(names.begin(), names.end()), names.end());

  names.clear();
  for (int i = 0; i < static_cast<int>(TxHeaderStatus::kCount); ++i) {
    names.push_back(TxHeaderStatusName(static_cast<TxHeaderStatus>(i)));
    EXPECT_NE(names.back(), "unknown");
  }
  EXPECT_STREQ(TxHeaderStatusName(TxHeaderStatus::kCount), "unknown");
  EXPECT_STREQ(TxHeaderStatusName(TxHeaderStatus::kCsumOutOfRange), "csum_out_of_range");
  std::sort(names.begin(), names.end());
  EXPECT_EQ(std::adjacent_find(names.begin(), names.end()), names.end());
}

TEST(NetHeaderLayoutTest, IndependentCrc32cMatchesTheCheckValue) {
  const char* s = "123456789";
  EXPECT_EQ(Crc32c(reinterpret_cast<const uint8_t*>(s), 9), 0xe3069283u);
}

// ---------------------------------------------------------------------------
// Host -> guest: FillRxHeader.

TEST_F(NetHeaderTest, FillWithoutOffloadIsZeroAndLeavesFrame) {
  const Frame f = BuildFrame(FrameSpec());
  rte_mbuf* m = Request(f, 0);
  VirtioNetHdr h;
  std::memset(&h, 0xab, sizeof(h));
  ASSERT_EQ(FillRxHeader(m, kGuestOffloads, &h), RxHeaderStatus::kOk);
  EXPECT_TRUE(IsZero(h));
  EXPECT_EQ(Bytes(m), f.bytes);
}

struct CsumCase {
  bool ipv6;
  uint8_t proto;
  int vlans;
};

class FillCsumTest : public NetHeaderTest, public ::testing::WithParamInterface<CsumCase> {};

TEST_P(FillCsumTest, NeedsCsumWithGuestCsumCompletesToValidChecksum) {
  const CsumCase c = GetParam();
  const Frame f = BuildFrame(FrameSpec().Ipv6(c.ipv6).Proto(c.proto).Payload(333).Vlans(c.vlans));
  const uint64_t l4 = c.proto == IPPROTO_TCP ? RTE_MBUF_F_TX_TCP_CKSUM : RTE_MBUF_F_TX_UDP_CKSUM;
  rte_mbuf* m = Request(f, l4 | (c.ipv6 ? RTE_MBUF_F_TX_IPV6 : RTE_MBUF_F_TX_IPV4));
  const uint64_t ol_before = m->ol_flags;
  VirtioNetHdr h;
  ASSERT_EQ(FillRxHeader(m, kGuestOffloads, &h), RxHeaderStatus::kOk);
  EXPECT_EQ(h.flags, kNetHdrFNeedsCsum);
  EXPECT_EQ(h.csum_start, f.l4_off());
  EXPECT_EQ(h.csum_offset, c.proto == IPPROTO_TCP ? 16 : 6);
  EXPECT_EQ(h.gso_type, kNetHdrGsoNone);
  EXPECT_EQ(h.gso_size, 0);
  EXPECT_EQ(h.hdr_len, 0);
  EXPECT_EQ(h.num_buffers, 0);
  EXPECT_EQ(m->ol_flags, ol_before) << "the mbuf's request is left as it was";

  const std::vector<uint8_t> out = Bytes(m);
  // The field holds the pseudo-header sum (over the L4 length), uncomplemented.
  EXPECT_EQ(GetBe16(out.data() + f.csum_field()), FoldBe(PseudoSumBe(f)));
  EXPECT_FALSE(L4ChecksumOk(f, out));
  EXPECT_TRUE(L4ChecksumOk(f, CompleteAsGuest(out, h)));
}

TEST_P(FillCsumTest, WithoutGuestCsumTheChecksumIsCompletedInSoftware) {
  const CsumCase c = GetParam();
  const Frame f = BuildFrame(FrameSpec().Ipv6(c.ipv6).Proto(c.proto).Payload(333).Vlans(c.vlans));
  const uint64_t l4 = c.proto == IPPROTO_TCP ? RTE_MBUF_F_TX_TCP_CKSUM : RTE_MBUF_F_TX_UDP_CKSUM;
  rte_mbuf* m = Request(f, l4);  // no IPV4/IPV6 flag: the version nibble decides
  VirtioNetHdr h;
  ASSERT_EQ(FillRxHeader(m, kGuestOffloads & ~Bit(kNetFGuestCsum), &h), RxHeaderStatus::kOk);
  EXPECT_TRUE(IsZero(h));
  EXPECT_TRUE(L4ChecksumOk(f, Bytes(m)));
  if (!c.ipv6 && c.vlans == 0) {
    const std::vector<uint8_t> out = Bytes(m);
    const auto* ip = reinterpret_cast<const rte_ipv4_hdr*>(out.data() + f.l2);
    const auto* l4h = out.data() + f.l4_off();
    EXPECT_EQ(FoldBe(SumBe(l4h, f.l4_total) + PseudoSumBe(f)), 0xffff);
    EXPECT_EQ(rte_raw_cksum(ip, f.l3), 0xffff) << "IPv4 header untouched and valid";
  }
}

INSTANTIATE_TEST_SUITE_P(
    Frames, FillCsumTest,
    ::testing::Values(CsumCase{false, IPPROTO_TCP, 0}, CsumCase{false, IPPROTO_UDP, 0},
                      CsumCase{true, IPPROTO_TCP, 0}, CsumCase{true, IPPROTO_UDP, 0},
                      CsumCase{false, IPPROTO_TCP, 1}, CsumCase{true, IPPROTO_UDP, 2}));

TEST_F(NetHeaderTest, SoftwareChecksumSpansSegmentsOfOddSizes) {
  for (bool ipv6 : {false, true}) {
    for (uint8_t proto : {uint8_t{IPPROTO_TCP}, uint8_t{IPPROTO_UDP}}) {
      const Frame f = BuildFrame(FrameSpec().Ipv6(ipv6).Proto(proto).Payload(1001));
      rte_mbuf* m = Mbuf(f.bytes, /*first=*/f.l4_off() + f.l4_hdr + 3, /*rest=*/97);
      ASSERT_GT(m->nb_segs, 5);
      m->ol_flags = proto == IPPROTO_TCP ? RTE_MBUF_F_TX_TCP_CKSUM : RTE_MBUF_F_TX_UDP_CKSUM;
      m->l2_len = f.l2;
      m->l3_len = f.l3;
      VirtioNetHdr h;
      ASSERT_EQ(FillRxHeader(m, 0, &h), RxHeaderStatus::kOk);
      EXPECT_TRUE(IsZero(h));
      EXPECT_TRUE(L4ChecksumOk(f, Bytes(m))) << "ipv6=" << ipv6 << " proto=" << int{proto};
    }
  }
}

TEST_F(NetHeaderTest, SoftwareChecksumCoversTheIpPacketNotTheEthernetPadding) {
  // An 18-byte UDP packet in a frame padded to the 60-byte Ethernet minimum.
  const Frame f = BuildFrame(FrameSpec().Udp().Payload(10).Padding(8));
  ASSERT_EQ(f.bytes.size(), 60u);
  rte_mbuf* m = Request(f, RTE_MBUF_F_TX_UDP_CKSUM | RTE_MBUF_F_TX_IPV4);
  VirtioNetHdr h;
  ASSERT_EQ(FillRxHeader(m, 0, &h), RxHeaderStatus::kOk);
  const std::vector<uint8_t> out = Bytes(m);
  EXPECT_TRUE(L4ChecksumOk(f, out));
  EXPECT_TRUE(std::equal(out.end() - 8, out.end(), f.bytes.end() - 8));
}

TEST_F(NetHeaderTest, UdpChecksumOfZeroIsSentAsAllOnes) {
  Frame f = BuildFrame(FrameSpec().Udp().Payload(16));
  // Make the payload's last word cancel the rest: the checksum computes to 0.
  const uint32_t last = f.l4_off() + f.l4_total - 2;
  PutBe16(f.bytes.data() + last, 0);
  const uint16_t c = static_cast<uint16_t>(
      ~FoldBe(PseudoSumBe(f) + SumBe(f.bytes.data() + f.l4_off(), f.l4_total)));
  PutBe16(f.bytes.data() + last, c);
  rte_mbuf* m = Request(f, RTE_MBUF_F_TX_UDP_CKSUM | RTE_MBUF_F_TX_IPV4);
  VirtioNetHdr h;
  ASSERT_EQ(FillRxHeader(m, 0, &h), RxHeaderStatus::kOk);
  const std::vector<uint8_t> out = Bytes(m);
  EXPECT_EQ(GetBe16(out.data() + f.csum_field()), 0xffff);
  EXPECT_TRUE(L4ChecksumOk(f, out));
}

TEST_F(NetHeaderTest, Ipv4HeaderChecksumIsComputedInSoftware) {
  for (int options : {0, 3}) {
    Frame f = BuildFrame(FrameSpec().Udp().Ipv4Options(options));
    PutBe16(f.bytes.data() + f.l2 + 10, 0xdead);  // stale
    for (uint64_t features : {uint64_t{0}, kGuestOffloads}) {
      rte_mbuf* m = Request(f, RTE_MBUF_F_TX_IP_CKSUM | RTE_MBUF_F_TX_IPV4);
      VirtioNetHdr h;
      ASSERT_EQ(FillRxHeader(m, features, &h), RxHeaderStatus::kOk);
      EXPECT_TRUE(IsZero(h)) << "no header bit for the IPv4 checksum";
      std::vector<uint8_t> out = Bytes(m);
      const uint16_t stored = GetBe16(out.data() + f.l2 + 10);
      // rte_ipv4_cksum over the header with a zero checksum field gives the
      // value to store (in host order of the wire bytes).
      PutBe16(out.data() + f.l2 + 10, 0);
      const auto* ip = reinterpret_cast<const rte_ipv4_hdr*>(out.data() + f.l2);
      EXPECT_EQ(rte_be_to_cpu_16(rte_ipv4_cksum(ip)), stored);
      // Only the IPv4 checksum changed.
      PutBe16(out.data() + f.l2 + 10, 0xdead);
      EXPECT_EQ(out, f.bytes);
    }
  }
}

TEST_F(NetHeaderTest, SctpCrcIsAlwaysComputedInSoftware) {
  for (bool ipv6 : {false, true}) {
    for (uint64_t features : {uint64_t{0}, kGuestOffloads}) {
      const Frame f = BuildFrame(FrameSpec().Ipv6(ipv6).Sctp().Payload(203));
      rte_mbuf* m = Mbuf(f.bytes, f.l4_off() + 12 + 5, 50);
      m->ol_flags = RTE_MBUF_F_TX_SCTP_CKSUM | (ipv6 ? RTE_MBUF_F_TX_IPV6 : RTE_MBUF_F_TX_IPV4);
      m->l2_len = f.l2;
      m->l3_len = f.l3;
      VirtioNetHdr h;
      ASSERT_EQ(FillRxHeader(m, features, &h), RxHeaderStatus::kOk);
      EXPECT_TRUE(IsZero(h)) << "NEEDS_CSUM means a ones' complement sum, not a CRC";
      EXPECT_TRUE(SctpCrcOk(f, Bytes(m)));
    }
  }
}

TEST_F(NetHeaderTest, TsoBecomesGsoTcpWithNeedsCsum) {
  for (bool ipv6 : {false, true}) {
    Frame f = BuildFrame(FrameSpec().Ipv6(ipv6).Payload(4000).TcpOptions(3));
    if (!ipv6) PutBe16(f.bytes.data() + f.l2 + 10, 0);  // left for the NIC
    rte_mbuf* m =
        Request(f, RTE_MBUF_F_TX_TCP_SEG | (ipv6 ? RTE_MBUF_F_TX_IPV6 : RTE_MBUF_F_TX_IPV4), 1448);
    VirtioNetHdr h;
    ASSERT_EQ(FillRxHeader(m, kGuestOffloads, &h), RxHeaderStatus::kOk);
    EXPECT_EQ(h.gso_type, ipv6 ? kNetHdrGsoTcpv6 : kNetHdrGsoTcpv4);
    EXPECT_EQ(h.gso_size, 1448);
    EXPECT_EQ(h.hdr_len, f.l2 + f.l3 + 32);
    EXPECT_EQ(h.flags, kNetHdrFNeedsCsum) << "TSO implies the TCP checksum";
    EXPECT_EQ(h.csum_start, f.l4_off());
    EXPECT_EQ(h.csum_offset, 16);
    const std::vector<uint8_t> out = Bytes(m);
    EXPECT_TRUE(L4ChecksumOk(f, CompleteAsGuest(out, h)));
    if (!ipv6) {
      EXPECT_EQ(rte_raw_cksum(out.data() + f.l2, f.l3), 0xffff) << "IPv4 header fixed";
    }
  }
}

TEST_F(NetHeaderTest, TsoNeedsTheGuestFeatures) {
  const Frame f4 = BuildFrame(FrameSpec().Payload(4000));
  const Frame f6 = BuildFrame(FrameSpec().Ipv6().Payload(4000));
  struct {
    const Frame* f;
    uint64_t features;
    RxHeaderStatus want;
  } cases[] = {
      {&f4, kGuestOffloads & ~Bit(kNetFGuestTso4), RxHeaderStatus::kGsoNotNegotiated},
      {&f6, kGuestOffloads & ~Bit(kNetFGuestTso6), RxHeaderStatus::kGsoNotNegotiated},
      {&f4, kGuestOffloads & ~Bit(kNetFGuestCsum), RxHeaderStatus::kGsoNotNegotiated},
      {&f4, 0, RxHeaderStatus::kGsoNotNegotiated},
      {&f4, kGuestOffloads & ~Bit(kNetFGuestTso6), RxHeaderStatus::kOk},
      {&f6, kGuestOffloads & ~Bit(kNetFGuestTso4), RxHeaderStatus::kOk},
  };
  for (const auto& c : cases) {
    rte_mbuf* m = Request(*c.f, RTE_MBUF_F_TX_TCP_SEG, 1000);
    VirtioNetHdr h;
    EXPECT_EQ(FillRxHeader(m, c.features, &h), c.want);
    if (c.want != RxHeaderStatus::kOk) {
      EXPECT_TRUE(IsZero(h));
      EXPECT_EQ(Bytes(m), c.f->bytes) << "a refused frame is not touched";
    }
  }
}

TEST_F(NetHeaderTest, TsoOfASingleSegmentIsDeliveredWithoutGso) {
  const Frame f = BuildFrame(FrameSpec().Payload(1000));
  rte_mbuf* m = Request(f, RTE_MBUF_F_TX_TCP_SEG | RTE_MBUF_F_TX_IPV4, 1000);
  VirtioNetHdr h;
  ASSERT_EQ(FillRxHeader(m, Bit(kNetFGuestCsum), &h), RxHeaderStatus::kOk);
  EXPECT_EQ(h.gso_type, kNetHdrGsoNone);
  EXPECT_EQ(h.flags, kNetHdrFNeedsCsum);
  EXPECT_TRUE(L4ChecksumOk(f, CompleteAsGuest(Bytes(m), h)));

  rte_mbuf* m2 = Request(f, RTE_MBUF_F_TX_TCP_SEG | RTE_MBUF_F_TX_IPV4, 999);
  EXPECT_EQ(FillRxHeader(m2, Bit(kNetFGuestCsum), &h), RxHeaderStatus::kGsoNotNegotiated);

  rte_mbuf* m3 = Request(f, RTE_MBUF_F_TX_TCP_SEG | RTE_MBUF_F_TX_IPV4, 1000);
  ASSERT_EQ(FillRxHeader(m3, 0, &h), RxHeaderStatus::kOk);
  EXPECT_TRUE(IsZero(h));
  EXPECT_TRUE(L4ChecksumOk(f, Bytes(m3)));
}

TEST_F(NetHeaderTest, TsoWithCwrNeedsGuestEcn) {
  const Frame f = BuildFrame(
      FrameSpec().Payload(3000).TcpFlags(RTE_TCP_ACK_FLAG | RTE_TCP_CWR_FLAG | RTE_TCP_ECE_FLAG));
  rte_mbuf* m = Request(f, RTE_MBUF_F_TX_TCP_SEG | RTE_MBUF_F_TX_IPV4, 1448);
  VirtioNetHdr h;
  ASSERT_EQ(FillRxHeader(m, kGuestOffloads, &h), RxHeaderStatus::kOk);
  EXPECT_EQ(h.gso_type, kNetHdrGsoTcpv4 | kNetHdrGsoEcn);

  rte_mbuf* m2 = Request(f, RTE_MBUF_F_TX_TCP_SEG | RTE_MBUF_F_TX_IPV4, 1448);
  EXPECT_EQ(FillRxHeader(m2, kGuestOffloads & ~Bit(kNetFGuestEcn), &h),
            RxHeaderStatus::kEcnNotNegotiated);
  EXPECT_TRUE(IsZero(h));

  const Frame plain = BuildFrame(FrameSpec().Payload(3000));
  rte_mbuf* m3 = Request(plain, RTE_MBUF_F_TX_TCP_SEG | RTE_MBUF_F_TX_IPV4, 1448);
  ASSERT_EQ(FillRxHeader(m3, kGuestOffloads & ~Bit(kNetFGuestEcn), &h), RxHeaderStatus::kOk);
  EXPECT_EQ(h.gso_type, kNetHdrGsoTcpv4);
}

TEST_F(NetHeaderTest, UdpFragmentationBecomesGsoUdp) {
  for (bool ipv6 : {false, true}) {
    const Frame f = BuildFrame(FrameSpec().Ipv6(ipv6).Udp().Payload(5000));
    rte_mbuf* m = Request(f, RTE_MBUF_F_TX_UDP_SEG, 1480);
    VirtioNetHdr h;
    ASSERT_EQ(FillRxHeader(m, kGuestOffloads, &h), RxHeaderStatus::kOk);
    EXPECT_EQ(h.gso_type, kNetHdrGsoUdp);
    EXPECT_EQ(h.gso_size, 1480);
    EXPECT_EQ(h.hdr_len, f.l4_off() + 8);
    EXPECT_EQ(h.flags, kNetHdrFNeedsCsum);
    EXPECT_EQ(h.csum_offset, 6);
    EXPECT_TRUE(L4ChecksumOk(f, CompleteAsGuest(Bytes(m), h)));

    rte_mbuf* m2 = Request(f, RTE_MBUF_F_TX_UDP_SEG, 1480);
    EXPECT_EQ(FillRxHeader(m2, kGuestOffloads & ~Bit(kNetFGuestUfo), &h),
              RxHeaderStatus::kGsoNotNegotiated);
  }
}

TEST_F(NetHeaderTest, DataValidOnlyForANicVerifiedChecksumAndGuestCsum) {
  const Frame f = BuildFrame(FrameSpec());
  struct {
    uint64_t rx_flags;
    uint32_t ptype;
    uint64_t features;
    uint8_t want;
  } cases[] = {
      {RTE_MBUF_F_RX_L4_CKSUM_GOOD, 0, kGuestOffloads, kNetHdrFDataValid},
      {RTE_MBUF_F_RX_L4_CKSUM_GOOD | RTE_MBUF_F_RX_IP_CKSUM_GOOD, 0, Bit(kNetFGuestCsum),
       kNetHdrFDataValid},
      {RTE_MBUF_F_RX_L4_CKSUM_GOOD, 0, kGuestOffloads & ~Bit(kNetFGuestCsum), 0},
      {RTE_MBUF_F_RX_L4_CKSUM_BAD, 0, kGuestOffloads, 0},
      {RTE_MBUF_F_RX_L4_CKSUM_NONE, 0, kGuestOffloads, 0},  // GOOD and BAD bits both set
      {RTE_MBUF_F_RX_L4_CKSUM_UNKNOWN, 0, kGuestOffloads, 0},
      {RTE_MBUF_F_RX_L4_CKSUM_GOOD, RTE_PTYPE_TUNNEL_VXLAN, kGuestOffloads, 0},
      {RTE_MBUF_F_RX_L4_CKSUM_GOOD | RTE_MBUF_F_RX_OUTER_L4_CKSUM_GOOD, RTE_PTYPE_TUNNEL_VXLAN,
       kGuestOffloads, kNetHdrFDataValid},
  };
  for (const auto& c : cases) {
    rte_mbuf* m = Request(f, c.rx_flags);
    m->packet_type = c.ptype;
    VirtioNetHdr h;
    ASSERT_EQ(FillRxHeader(m, c.features, &h), RxHeaderStatus::kOk);
    EXPECT_EQ(h.flags, c.want) << std::hex << c.rx_flags << " " << c.ptype;
    EXPECT_EQ(h.gso_type | h.csum_start | h.csum_offset | h.hdr_len | h.gso_size, 0);
  }
  // A frame with a checksum request is not "verified": it gets NEEDS_CSUM.
  rte_mbuf* m = Request(f, RTE_MBUF_F_RX_L4_CKSUM_GOOD | RTE_MBUF_F_TX_TCP_CKSUM);
  VirtioNetHdr h;
  ASSERT_EQ(FillRxHeader(m, kGuestOffloads, &h), RxHeaderStatus::kOk);
  EXPECT_EQ(h.flags, kNetHdrFNeedsCsum);
  // An IPv4 header checksum alone leaves the NIC's L4 verdict standing.
  rte_mbuf* m2 = Request(f, RTE_MBUF_F_RX_L4_CKSUM_GOOD | RTE_MBUF_F_TX_IP_CKSUM);
  ASSERT_EQ(FillRxHeader(m2, kGuestOffloads, &h), RxHeaderStatus::kOk);
  EXPECT_EQ(h.flags, kNetHdrFDataValid);
}

TEST_F(NetHeaderTest, FillRefusesMetadataThatDoesNotDescribeTheFrame) {
  const Frame tcp4 = BuildFrame(FrameSpec().Payload(3000));
  const Frame udp4 = BuildFrame(FrameSpec().Udp());
  const Frame tcp6 = BuildFrame(FrameSpec().Ipv6());
  struct Case {
    const char* what;
    const Frame* f;
    uint64_t ol;
    void (*tweak)(rte_mbuf*);
    RxHeaderStatus want;
  };
  const Case cases[] = {
      {"IPV4 flag on IPv6", &tcp6, RTE_MBUF_F_TX_TCP_CKSUM | RTE_MBUF_F_TX_IPV4, nullptr,
       RxHeaderStatus::kBadOffloadMetadata},
      {"IPV6 flag on IPv4", &tcp4, RTE_MBUF_F_TX_TCP_CKSUM | RTE_MBUF_F_TX_IPV6, nullptr,
       RxHeaderStatus::kBadOffloadMetadata},
      {"both IP flags", &tcp4, RTE_MBUF_F_TX_TCP_CKSUM | RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IPV6,
       nullptr, RxHeaderStatus::kBadOffloadMetadata},
      {"IP_CKSUM on IPv6", &tcp6, RTE_MBUF_F_TX_IP_CKSUM, nullptr,
       RxHeaderStatus::kBadOffloadMetadata},
      {"TCP checksum on UDP", &udp4, RTE_MBUF_F_TX_TCP_CKSUM, nullptr,
       RxHeaderStatus::kBadOffloadMetadata},
      {"UDP checksum on TCP", &tcp4, RTE_MBUF_F_TX_UDP_CKSUM, nullptr,
       RxHeaderStatus::kBadOffloadMetadata},
      {"TSO and UFO", &tcp4, RTE_MBUF_F_TX_TCP_SEG | RTE_MBUF_F_TX_UDP_SEG, nullptr,
       RxHeaderStatus::kBadOffloadMetadata},
      {"TSO with UDP checksum", &tcp4, RTE_MBUF_F_TX_TCP_SEG | RTE_MBUF_F_TX_UDP_CKSUM, nullptr,
       RxHeaderStatus::kBadOffloadMetadata},
      {"TSO of UDP", &udp4, RTE_MBUF_F_TX_TCP_SEG, nullptr, RxHeaderStatus::kBadOffloadMetadata},
      {"TSO, tso_segsz 0", &tcp4, RTE_MBUF_F_TX_TCP_SEG, [](rte_mbuf* m) { m->tso_segsz = 0; },
       RxHeaderStatus::kBadOffloadMetadata},
      {"TSO, l4_len 19", &tcp4, RTE_MBUF_F_TX_TCP_SEG, [](rte_mbuf* m) { m->l4_len = 19; },
       RxHeaderStatus::kBadOffloadMetadata},
      {"UFO, l4_len 20", &udp4, RTE_MBUF_F_TX_UDP_SEG, [](rte_mbuf* m) { m->l4_len = 20; },
       RxHeaderStatus::kBadOffloadMetadata},
      {"l2_len beyond the frame", &udp4, RTE_MBUF_F_TX_UDP_CKSUM,
       [](rte_mbuf* m) {
         m->l2_len = 127;
         m->l3_len = 511;
       },
       RxHeaderStatus::kBadOffloadMetadata},
      {"l3_len not the IHL", &tcp4, RTE_MBUF_F_TX_TCP_CKSUM, [](rte_mbuf* m) { m->l3_len = 24; },
       RxHeaderStatus::kBadOffloadMetadata},
      {"l3_len short of IPv6", &tcp6, RTE_MBUF_F_TX_TCP_CKSUM, [](rte_mbuf* m) { m->l3_len = 20; },
       RxHeaderStatus::kBadOffloadMetadata},
      {"IP length beyond the frame", &tcp4, RTE_MBUF_F_TX_TCP_CKSUM,
       [](rte_mbuf* m) { rte_pktmbuf_trim(m, 1); }, RxHeaderStatus::kBadOffloadMetadata},
      {"tunnel TSO", &tcp4, RTE_MBUF_F_TX_TCP_SEG | RTE_MBUF_F_TX_TUNNEL_VXLAN, nullptr,
       RxHeaderStatus::kTunnelOffload},
      {"outer checksum", &tcp4, RTE_MBUF_F_TX_IP_CKSUM | RTE_MBUF_F_TX_OUTER_IP_CKSUM, nullptr,
       RxHeaderStatus::kTunnelOffload},
  };
  for (const Case& c : cases) {
    rte_mbuf* m = Request(*c.f, c.ol, 1000);
    if (c.tweak) c.tweak(m);
    const std::vector<uint8_t> before = Bytes(m);
    VirtioNetHdr h;
    std::memset(&h, 0xab, sizeof(h));
    EXPECT_EQ(FillRxHeader(m, kGuestOffloads, &h), c.want) << c.what;
    EXPECT_TRUE(IsZero(h)) << c.what;
    EXPECT_EQ(Bytes(m), before) << c.what;
  }
}

TEST_F(NetHeaderTest, FillNeverReadsPastATruncatedFrame) {
  const Frame f = BuildFrame(FrameSpec().Payload(40).TcpOptions(2));
  for (size_t len = 0; len < f.bytes.size(); ++len) {
    ExactMbuf m(pool_, std::vector<uint8_t>(f.bytes.begin(), f.bytes.begin() + len));
    m.get()->ol_flags |= RTE_MBUF_F_TX_TCP_SEG | RTE_MBUF_F_TX_IP_CKSUM | RTE_MBUF_F_TX_IPV4;
    m.get()->l2_len = f.l2;
    m.get()->l3_len = f.l3;
    m.get()->l4_len = f.l4_hdr;
    m.get()->tso_segsz = 10;
    VirtioNetHdr h;
    EXPECT_EQ(FillRxHeader(m.get(), kGuestOffloads, &h), RxHeaderStatus::kBadOffloadMetadata)
        << len;
  }
  ExactMbuf m(pool_, f.bytes);
  m.get()->ol_flags |= RTE_MBUF_F_TX_TCP_SEG | RTE_MBUF_F_TX_IPV4;
  m.get()->l2_len = f.l2;
  m.get()->l3_len = f.l3;
  m.get()->l4_len = f.l4_hdr;
  m.get()->tso_segsz = 10;
  for (uint64_t features : {kGuestOffloads, Bit(kNetFGuestCsum)}) {
    VirtioNetHdr h;
    EXPECT_NE(FillRxHeader(m.get(), features, &h), RxHeaderStatus::kBadOffloadMetadata);
  }
}

TEST_F(NetHeaderTest, FillingOneFrameForSeveralGuestsInTurnIsConsistent) {
  const Frame f = BuildFrame(FrameSpec().Udp().Payload(500));
  rte_mbuf* m = Request(f, RTE_MBUF_F_TX_UDP_CKSUM | RTE_MBUF_F_TX_IP_CKSUM | RTE_MBUF_F_TX_IPV4);
  VirtioNetHdr a1, b, a2;
  ASSERT_EQ(FillRxHeader(m, kGuestOffloads, &a1), RxHeaderStatus::kOk);
  const std::vector<uint8_t> for_a = Bytes(m);
  ASSERT_EQ(FillRxHeader(m, 0, &b), RxHeaderStatus::kOk);
  EXPECT_TRUE(L4ChecksumOk(f, Bytes(m)));
  ASSERT_EQ(FillRxHeader(m, kGuestOffloads, &a2), RxHeaderStatus::kOk);
  EXPECT_EQ(Bytes(m), for_a);
  EXPECT_EQ(std::memcmp(&a1, &a2, sizeof(a1)), 0);
}

// ---------------------------------------------------------------------------
// Guest -> host: ParseTxHeader.

VirtioNetHdr CsumHdr(const Frame& f) {
  VirtioNetHdr h{};
  h.flags = kNetHdrFNeedsCsum;
  h.csum_start = static_cast<uint16_t>(f.l4_off());
  h.csum_offset = static_cast<uint16_t>(f.csum_field() - f.l4_off());
  return h;
}

VirtioNetHdr GsoHdr(const Frame& f, uint8_t gso_type, uint16_t gso_size) {
  VirtioNetHdr h = CsumHdr(f);
  h.gso_type = gso_type;
  h.gso_size = gso_size;
  h.hdr_len = static_cast<uint16_t>(f.l4_off() + f.l4_hdr);
  return h;
}

// As a Linux guest sends it: the pseudo-header sum in the checksum field.
Frame WithSeed(Frame f) {
  PutBe16(f.bytes.data() + f.csum_field(), FoldBe(PseudoSumBe(f)));
  return f;
}

TEST_F(NetHeaderTest, ParseWithoutOffloadSetsNothing) {
  const Frame f = BuildFrame(FrameSpec());
  rte_mbuf* m = Mbuf(f.bytes);
  VirtioNetHdr h{};
  h.csum_start = 0xffff;  // ignored without NEEDS_CSUM
  h.flags = kNetHdrFDataValid | kNetHdrFRscInfo | 0x40;
  h.num_buffers = 7;
  ASSERT_EQ(ParseTxHeader(h, kHostOffloads, m), TxHeaderStatus::kOk);
  EXPECT_EQ(m->ol_flags & RTE_MBUF_F_TX_OFFLOAD_MASK, 0u);
  EXPECT_EQ(m->tx_offload, 0u);
  EXPECT_EQ(Bytes(m), f.bytes);
}

struct ParseCase {
  FrameSpec spec;
  uint64_t want_l4;
};

class ParseCsumTest : public NetHeaderTest, public ::testing::WithParamInterface<ParseCase> {};

TEST_P(ParseCsumTest, NeedsCsumBecomesL4ChecksumFlag) {
  const ParseCase c = GetParam();
  const Frame f = BuildFrame(c.spec);
  rte_mbuf* m = Mbuf(f.bytes);
  ASSERT_EQ(ParseTxHeader(CsumHdr(f), Bit(kNetFCsum), m), TxHeaderStatus::kOk);
  EXPECT_EQ(m->ol_flags & kTxFlagsOfInterest,
            c.want_l4 | (f.ipv6 ? RTE_MBUF_F_TX_IPV6 : RTE_MBUF_F_TX_IPV4));
  EXPECT_EQ(L2Len(m), f.l2);
  EXPECT_EQ(L3Len(m), f.l3);
  EXPECT_EQ(L4Len(m), f.l4_hdr);
  EXPECT_EQ(SegSz(m), 0u);
  EXPECT_EQ(Bytes(m), f.bytes) << "the NIC completes the checksum, not the parser";
}

INSTANTIATE_TEST_SUITE_P(
    Frames, ParseCsumTest,
    ::testing::Values(
        ParseCase{FrameSpec(), RTE_MBUF_F_TX_TCP_CKSUM},
        ParseCase{FrameSpec().Udp(), RTE_MBUF_F_TX_UDP_CKSUM},
        ParseCase{FrameSpec().Sctp(), RTE_MBUF_F_TX_SCTP_CKSUM},
        ParseCase{FrameSpec().Ipv6(), RTE_MBUF_F_TX_TCP_CKSUM},
        ParseCase{FrameSpec().Ipv6().Udp(), RTE_MBUF_F_TX_UDP_CKSUM},
        ParseCase{FrameSpec().Vlans(1).Ipv4Options(2).TcpOptions(3), RTE_MBUF_F_TX_TCP_CKSUM},
        ParseCase{FrameSpec().Ipv6().Udp().Vlans(2), RTE_MBUF_F_TX_UDP_CKSUM},
        ParseCase{FrameSpec().Ipv6().Ipv6Ext(IPPROTO_DSTOPTS), RTE_MBUF_F_TX_TCP_CKSUM}));

TEST_F(NetHeaderTest, ParseGsoTcp) {
  for (bool ipv6 : {false, true}) {
    const Frame f = BuildFrame(FrameSpec().Ipv6(ipv6).Payload(9000).TcpOptions(3));
    rte_mbuf* m = Mbuf(f.bytes, 2048, 2048);
    const VirtioNetHdr h = GsoHdr(f, ipv6 ? kNetHdrGsoTcpv6 : kNetHdrGsoTcpv4, 1448);
    ASSERT_EQ(ParseTxHeader(h, kHostOffloads, m), TxHeaderStatus::kOk);
    EXPECT_EQ(m->ol_flags & kTxFlagsOfInterest,
              RTE_MBUF_F_TX_TCP_SEG | RTE_MBUF_F_TX_TCP_CKSUM |
                  (ipv6 ? RTE_MBUF_F_TX_IPV6 : RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM));
    EXPECT_EQ(SegSz(m), 1448u);
    EXPECT_EQ(L2Len(m), f.l2);
    EXPECT_EQ(L3Len(m), f.l3);
    EXPECT_EQ(L4Len(m), 32u);
  }
}

TEST_F(NetHeaderTest, ParseGsoTcpWithEcn) {
  const Frame f =
      BuildFrame(FrameSpec().Payload(3000).TcpFlags(RTE_TCP_ACK_FLAG | RTE_TCP_CWR_FLAG));
  rte_mbuf* m = Mbuf(f.bytes);
  VirtioNetHdr h = GsoHdr(f, kNetHdrGsoTcpv4 | kNetHdrGsoEcn, 1448);
  ASSERT_EQ(ParseTxHeader(h, kHostOffloads, m), TxHeaderStatus::kOk);
  EXPECT_TRUE(m->ol_flags & RTE_MBUF_F_TX_TCP_SEG);
  EXPECT_EQ(ParseTxHeader(h, kHostOffloads & ~Bit(kNetFHostEcn), m),
            TxHeaderStatus::kNotNegotiated);
  EXPECT_EQ(m->ol_flags & RTE_MBUF_F_TX_OFFLOAD_MASK, 0u);
}

TEST_F(NetHeaderTest, ParseGsoUdpIsUdpFragmentation) {
  for (bool ipv6 : {false, true}) {
    const Frame f = BuildFrame(FrameSpec().Ipv6(ipv6).Udp().Payload(4000));
    rte_mbuf* m = Mbuf(f.bytes);
    ASSERT_EQ(ParseTxHeader(GsoHdr(f, kNetHdrGsoUdp, 1480), kHostOffloads, m), TxHeaderStatus::kOk);
    EXPECT_EQ(m->ol_flags & kTxFlagsOfInterest,
              RTE_MBUF_F_TX_UDP_SEG | RTE_MBUF_F_TX_UDP_CKSUM |
                  (ipv6 ? RTE_MBUF_F_TX_IPV6 : RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM));
    EXPECT_EQ(SegSz(m), 1480u);
    EXPECT_EQ(L4Len(m), 8u);
  }
}

TEST_F(NetHeaderTest, ParseRefusesInvalidHeaders) {
  const Frame tcp4 = BuildFrame(FrameSpec().Payload(3000));
  const Frame tcp6 = BuildFrame(FrameSpec().Ipv6().Payload(3000));
  const Frame udp4 = BuildFrame(FrameSpec().Udp().Payload(3000));
  const Frame frag4 = BuildFrame(FrameSpec().Payload(3000).Ipv4Frag(0x2000));  // MF
  const Frame rh6 = BuildFrame(FrameSpec().Ipv6().Payload(3000).Ipv6Ext(IPPROTO_ROUTING));
  const Frame short_tcp = [&] {
    Frame f = BuildFrame(FrameSpec().Payload(3000));
    f.bytes[f.l4_off() + 12] = 4 << 4;  // data offset 16 bytes
    return f;
  }();
  const uint32_t len4 = static_cast<uint32_t>(tcp4.bytes.size());

  struct Case {
    const char* what;
    const Frame* f;
    VirtioNetHdr h;
    uint64_t features;
    TxHeaderStatus want;
  };
  auto with = [](VirtioNetHdr h, auto fn) {
    fn(h);
    return h;
  };
  const VirtioNetHdr tso4 = GsoHdr(tcp4, kNetHdrGsoTcpv4, 1448);
  const Case cases[] = {
      {"hdr_len beyond the packet", &tcp4,
       with(tso4, [&](VirtioNetHdr& h) { h.hdr_len = static_cast<uint16_t>(len4 + 1); }),
       kHostOffloads, TxHeaderStatus::kHdrLenOutOfRange},
      {"hdr_len 0xffff, no offload", &tcp4,
       with(VirtioNetHdr{}, [](VirtioNetHdr& h) { h.hdr_len = 0xffff; }), kHostOffloads,
       TxHeaderStatus::kHdrLenOutOfRange},
      {"NEEDS_CSUM without CSUM", &tcp4, CsumHdr(tcp4), kHostOffloads & ~Bit(kNetFCsum),
       TxHeaderStatus::kNotNegotiated},
      {"TCPV4 without HOST_TSO4", &tcp4, tso4, kHostOffloads & ~Bit(kNetFHostTso4),
       TxHeaderStatus::kNotNegotiated},
      {"TCPV6 without HOST_TSO6", &tcp6, GsoHdr(tcp6, kNetHdrGsoTcpv6, 1448),
       kHostOffloads & ~Bit(kNetFHostTso6), TxHeaderStatus::kNotNegotiated},
      {"UDP without HOST_UFO", &udp4, GsoHdr(udp4, kNetHdrGsoUdp, 1448),
       kHostOffloads & ~Bit(kNetFHostUfo), TxHeaderStatus::kNotNegotiated},
      {"gso_type 2", &tcp4, with(tso4, [](VirtioNetHdr& h) { h.gso_type = 2; }), kHostOffloads,
       TxHeaderStatus::kBadGsoType},
      {"gso_type UDP_L4", &udp4, GsoHdr(udp4, kNetHdrGsoUdpL4, 1448),
       kHostOffloads | Bit(kNetFHostUso), TxHeaderStatus::kBadGsoType},
      {"gso_type 0x7f", &tcp4, with(tso4, [](VirtioNetHdr& h) { h.gso_type = 0x7f; }),
       kHostOffloads, TxHeaderStatus::kBadGsoType},
      {"ECN alone", &tcp4, with(tso4, [](VirtioNetHdr& h) { h.gso_type = kNetHdrGsoEcn; }),
       kHostOffloads, TxHeaderStatus::kBadGsoType},
      {"UDP with ECN", &udp4, GsoHdr(udp4, kNetHdrGsoUdp | kNetHdrGsoEcn, 1448), kHostOffloads,
       TxHeaderStatus::kBadGsoType},
      {"GSO without NEEDS_CSUM", &tcp4, with(tso4, [](VirtioNetHdr& h) { h.flags = 0; }),
       kHostOffloads, TxHeaderStatus::kGsoWithoutCsum},
      {"gso_size 0", &tcp4, with(tso4, [](VirtioNetHdr& h) { h.gso_size = 0; }), kHostOffloads,
       TxHeaderStatus::kGsoSizeZero},
      {"csum_start at the end", &tcp4,
       with(CsumHdr(tcp4), [&](VirtioNetHdr& h) { h.csum_start = static_cast<uint16_t>(len4); }),
       kHostOffloads, TxHeaderStatus::kCsumOutOfRange},
      {"csum field one byte past the end", &tcp4,
       with(CsumHdr(tcp4),
            [&](VirtioNetHdr& h) {
              h.csum_start = static_cast<uint16_t>(len4 - 2);
              h.csum_offset = 1;
            }),
       kHostOffloads, TxHeaderStatus::kCsumOutOfRange},
      {"csum_start and offset 0xffff", &tcp4,
       with(CsumHdr(tcp4),
            [](VirtioNetHdr& h) {
              h.csum_start = 0xffff;
              h.csum_offset = 0xffff;
            }),
       kHostOffloads, TxHeaderStatus::kCsumOutOfRange},
      {"GSO with csum_start inside the IP header", &tcp4,
       with(tso4, [](VirtioNetHdr& h) { h.csum_start = 20; }), kHostOffloads,
       TxHeaderStatus::kGsoBadHeaders},
      {"TCPV4 with the UDP checksum offset", &tcp4,
       with(tso4, [](VirtioNetHdr& h) { h.csum_offset = 6; }), kHostOffloads,
       TxHeaderStatus::kGsoBadHeaders},
      {"TCPV4 on IPv6", &tcp6, GsoHdr(tcp6, kNetHdrGsoTcpv4, 1448), kHostOffloads,
       TxHeaderStatus::kGsoBadHeaders},
      {"TCPV6 on IPv4", &tcp4, GsoHdr(tcp4, kNetHdrGsoTcpv6, 1448), kHostOffloads,
       TxHeaderStatus::kGsoBadHeaders},
      {"UDP GSO on TCP", &tcp4, with(tso4, [](VirtioNetHdr& h) { h.gso_type = kNetHdrGsoUdp; }),
       kHostOffloads, TxHeaderStatus::kGsoBadHeaders},
      {"TCP GSO on UDP", &udp4, GsoHdr(udp4, kNetHdrGsoTcpv4, 1448), kHostOffloads,
       TxHeaderStatus::kGsoBadHeaders},
      {"GSO of an IPv4 fragment", &frag4, GsoHdr(frag4, kNetHdrGsoTcpv4, 1448), kHostOffloads,
       TxHeaderStatus::kGsoBadHeaders},
      {"GSO behind an IPv6 routing header", &rh6, GsoHdr(rh6, kNetHdrGsoTcpv6, 1448), kHostOffloads,
       TxHeaderStatus::kGsoBadHeaders},
      {"GSO with TCP data offset < 5", &short_tcp, GsoHdr(short_tcp, kNetHdrGsoTcpv4, 1448),
       kHostOffloads, TxHeaderStatus::kGsoBadHeaders},
  };
  for (const Case& c : cases) {
    rte_mbuf* m = Mbuf(c.f->bytes);
    // Stale offload state must not survive a refusal.
    m->ol_flags |= RTE_MBUF_F_TX_TCP_SEG | RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM;
    m->l2_len = 14;
    m->tso_segsz = 99;
    EXPECT_EQ(ParseTxHeader(c.h, c.features, m), c.want) << c.what;
    EXPECT_EQ(m->ol_flags & RTE_MBUF_F_TX_OFFLOAD_MASK, 0u) << c.what;
    EXPECT_EQ(m->tx_offload, 0u) << c.what;
    EXPECT_EQ(Bytes(m), c.f->bytes) << c.what;
  }
}

TEST_F(NetHeaderTest, ParseNeverReadsPastATruncatedFrame) {
  // Every prefix of a TSO frame, in a heap block of exactly its size.
  const Frame f = WithSeed(BuildFrame(FrameSpec().Payload(64).Vlans(2).TcpOptions(3)));
  const uint32_t csum_end = f.csum_field() + 2;
  const uint32_t headers_end = f.l4_off() + f.l4_hdr;
  for (uint32_t len = 0; len <= f.bytes.size(); ++len) {
    const std::vector<uint8_t> prefix(f.bytes.begin(), f.bytes.begin() + len);
    {
      ExactMbuf m(pool_, prefix);
      const TxHeaderStatus want = len < csum_end      ? TxHeaderStatus::kCsumOutOfRange
                                  : len < headers_end ? TxHeaderStatus::kGsoBadHeaders
                                                      : TxHeaderStatus::kOk;
      VirtioNetHdr h = GsoHdr(f, kNetHdrGsoTcpv4, 100);
      h.hdr_len = 0;  // a hint only; kHdrLenOutOfRange would hide the other checks
      EXPECT_EQ(ParseTxHeader(h, kHostOffloads, m.get()), want) << len;
      if (want != TxHeaderStatus::kOk) {
        EXPECT_EQ(m.get()->ol_flags & RTE_MBUF_F_TX_OFFLOAD_MASK, 0u);
      }
      EXPECT_TRUE(m.get()->ol_flags & RTE_MBUF_F_EXTERNAL) << "non-offload flags survive";
    }
    {
      // Checksum only: a frame cut inside its TCP header cannot be offloaded,
      // but the checksum the guest asked for can still be completed.
      ExactMbuf m(pool_, prefix);
      const TxHeaderStatus want =
          len < csum_end ? TxHeaderStatus::kCsumOutOfRange : TxHeaderStatus::kOk;
      EXPECT_EQ(ParseTxHeader(CsumHdr(f), kHostOffloads, m.get()), want) << len;
      EXPECT_EQ(m.get()->ol_flags & RTE_MBUF_F_TX_TCP_CKSUM,
                len >= headers_end ? RTE_MBUF_F_TX_TCP_CKSUM : 0u)
          << len;
    }
  }
}

TEST_F(NetHeaderTest, ParseOfHostileHeadersNeverReadsPastATruncatedFrame) {
  // csum_start 0 keeps the checksum field inside even a 2-byte frame, so the
  // header parser itself runs on every prefix of every kind of frame.
  const Frame frames[] = {
      BuildFrame(FrameSpec().Vlans(2).Ipv4Options(3).TcpOptions(4).Payload(8)),
      BuildFrame(FrameSpec().Ipv6().Udp().Vlans(1).Ipv6Ext(IPPROTO_DSTOPTS).Payload(8)),
      BuildFrame(FrameSpec().Ipv6().Ipv6Ext(IPPROTO_ROUTING).Payload(8)),
      BuildFrame(FrameSpec().Sctp().Payload(8)),
  };
  for (const Frame& f : frames) {
    for (uint32_t len = 0; len <= f.bytes.size(); ++len) {
      const std::vector<uint8_t> prefix(f.bytes.begin(), f.bytes.begin() + len);
      for (uint8_t gso_type : {kNetHdrGsoNone, kNetHdrGsoTcpv4, kNetHdrGsoTcpv6, kNetHdrGsoUdp}) {
        VirtioNetHdr h{};
        h.flags = kNetHdrFNeedsCsum;
        h.gso_type = gso_type;
        h.gso_size = 1;
        ExactMbuf m(pool_, prefix);
        const TxHeaderStatus want = len < 2                      ? TxHeaderStatus::kCsumOutOfRange
                                    : gso_type != kNetHdrGsoNone ? TxHeaderStatus::kGsoBadHeaders
                                                                 : TxHeaderStatus::kOk;
        EXPECT_EQ(ParseTxHeader(h, kHostOffloads, m.get()), want) << len;
        EXPECT_EQ(m.get()->ol_flags & RTE_MBUF_F_TX_OFFLOAD_MASK, 0u) << len;
      }
      // And with the checksum where it belongs, GSO matching the frame.
      VirtioNetHdr h = CsumHdr(f);
      h.gso_type = f.proto == IPPROTO_UDP ? kNetHdrGsoUdp
                   : f.ipv6               ? kNetHdrGsoTcpv6
                                          : kNetHdrGsoTcpv4;
      h.gso_size = 1;
      ExactMbuf m(pool_, prefix);
      ParseTxHeader(h, kHostOffloads, m.get());
    }
  }
}

TEST_F(NetHeaderTest, ParseCompletesInSoftwareWhatFlagsCannotCarry) {
  // An IPv4 fragment (MF): its L4 checksum spans the datagram, not this frame.
  const Frame frag = WithSeed(BuildFrame(FrameSpec().Payload(1200).Ipv4Frag(0x2000)));
  // Behind an IPv6 routing header.
  const Frame rh6 = WithSeed(BuildFrame(FrameSpec().Ipv6().Payload(700).Ipv6Ext(IPPROTO_ROUTING)));
  for (const Frame* f : {&frag, &rh6}) {
    rte_mbuf* m = Mbuf(f->bytes, 100, 333);
    ASSERT_EQ(ParseTxHeader(CsumHdr(*f), kHostOffloads, m), TxHeaderStatus::kOk);
    EXPECT_EQ(m->ol_flags & RTE_MBUF_F_TX_OFFLOAD_MASK, 0u);
    EXPECT_TRUE(L4ChecksumOk(*f, Bytes(m)));
  }

  // A checksum over an arbitrary range, its field straddling two segments.
  // Completing it (virtio 1.1, 5.1.6.2) sums the range with the field's old
  // content as the seed, so the new range sum plus that seed is all ones.
  const Frame f = BuildFrame(FrameSpec().Payload(500));
  constexpr uint32_t kStart = 61;
  for (uint16_t csum_offset : {38, 37}) {  // field at 99..100 or 98..99
    VirtioNetHdr h{};
    h.flags = kNetHdrFNeedsCsum;
    h.csum_start = kStart;
    h.csum_offset = csum_offset;
    const uint32_t field = kStart + csum_offset;
    rte_mbuf* m = Mbuf(f.bytes, /*first=*/field + 1, 64);
    ASSERT_EQ(ParseTxHeader(h, kHostOffloads, m), TxHeaderStatus::kOk);
    EXPECT_EQ(m->ol_flags & RTE_MBUF_F_TX_OFFLOAD_MASK, 0u);
    const std::vector<uint8_t> out = Bytes(m);
    std::vector<uint8_t> seed(f.bytes.size() - kStart, 0);
    seed[field - kStart] = f.bytes[field];
    seed[field - kStart + 1] = f.bytes[field + 1];
    EXPECT_EQ(
        FoldBe(SumBe(out.data() + kStart, out.size() - kStart) + SumBe(seed.data(), seed.size())),
        0xffff)
        << csum_offset;
    std::vector<uint8_t> rest(out);
    rest[field] = f.bytes[field];
    rest[field + 1] = f.bytes[field + 1];
    EXPECT_EQ(rest, f.bytes) << "only the two checksum bytes changed";
  }
}

// ---------------------------------------------------------------------------
// Round trip: a frame filled for a guest and sent back by it carries the same
// offload request.

struct RoundTripCase {
  const char* what;
  FrameSpec spec;
  uint64_t request;
  uint16_t tso_segsz;
  uint64_t want;  // the request as ParseTxHeader states it
};

class RoundTripTest : public NetHeaderTest, public ::testing::WithParamInterface<RoundTripCase> {};

TEST_P(RoundTripTest, FillThenParsePreservesTheRequest) {
  const RoundTripCase c = GetParam();
  const Frame f = BuildFrame(c.spec);
  rte_mbuf* m = Request(f, c.request, c.tso_segsz);
  VirtioNetHdr h;
  ASSERT_EQ(FillRxHeader(m, kGuestOffloads, &h), RxHeaderStatus::kOk) << c.what;

  // The guest sends the same frame back with the header it was given (Rx
  // and Tx GSO type values and flags are the same on the wire).
  rte_mbuf* back = Mbuf(Bytes(m));
  ASSERT_EQ(ParseTxHeader(h, kHostOffloads, back), TxHeaderStatus::kOk) << c.what;
  EXPECT_EQ(back->ol_flags & kTxFlagsOfInterest, c.want) << c.what;
  if (c.want & (RTE_MBUF_F_TX_L4_MASK | RTE_MBUF_F_TX_TCP_SEG | RTE_MBUF_F_TX_UDP_SEG)) {
    EXPECT_EQ(L2Len(back), L2Len(m)) << c.what;
    EXPECT_EQ(L3Len(back), L3Len(m)) << c.what;
  }
  if (c.want & (RTE_MBUF_F_TX_TCP_SEG | RTE_MBUF_F_TX_UDP_SEG)) {
    EXPECT_EQ(L4Len(back), L4Len(m)) << c.what;
    EXPECT_EQ(SegSz(back), c.tso_segsz) << c.what;
  }
  // Whoever completes the checksum from the seed gets it right.
  const std::vector<uint8_t> done =
      (h.flags & kNetHdrFNeedsCsum) ? CompleteAsGuest(Bytes(back), h) : Bytes(back);
  if ((c.request & (RTE_MBUF_F_TX_L4_MASK | RTE_MBUF_F_TX_TCP_SEG | RTE_MBUF_F_TX_UDP_SEG)) == 0) {
    // Nothing was asked of the L4 checksum.
  } else if (f.proto == IPPROTO_SCTP) {
    EXPECT_TRUE(SctpCrcOk(f, done)) << c.what;
  } else {
    EXPECT_TRUE(L4ChecksumOk(f, done)) << c.what;
  }
}

constexpr uint64_t kV4 = RTE_MBUF_F_TX_IPV4;
constexpr uint64_t kV6 = RTE_MBUF_F_TX_IPV6;

INSTANTIATE_TEST_SUITE_P(
    Requests, RoundTripTest,
    ::testing::Values(
        RoundTripCase{"tcp4 csum", FrameSpec(), RTE_MBUF_F_TX_TCP_CKSUM | kV4, 0,
                      RTE_MBUF_F_TX_TCP_CKSUM | kV4},
        RoundTripCase{"udp6 csum", FrameSpec().Ipv6().Udp(), RTE_MBUF_F_TX_UDP_CKSUM | kV6, 0,
                      RTE_MBUF_F_TX_UDP_CKSUM | kV6},
        RoundTripCase{
            "tcp4 tso", FrameSpec().Payload(5000).TcpOptions(3),
            RTE_MBUF_F_TX_TCP_SEG | RTE_MBUF_F_TX_TCP_CKSUM | RTE_MBUF_F_TX_IP_CKSUM | kV4, 1448,
            RTE_MBUF_F_TX_TCP_SEG | RTE_MBUF_F_TX_TCP_CKSUM | RTE_MBUF_F_TX_IP_CKSUM | kV4},
        RoundTripCase{"tcp6 tso", FrameSpec().Ipv6().Payload(5000).Vlans(1),
                      RTE_MBUF_F_TX_TCP_SEG | kV6, 1220,
                      RTE_MBUF_F_TX_TCP_SEG | RTE_MBUF_F_TX_TCP_CKSUM | kV6},
        RoundTripCase{
            "udp4 ufo", FrameSpec().Udp().Payload(5000),
            RTE_MBUF_F_TX_UDP_SEG | RTE_MBUF_F_TX_IP_CKSUM | kV4, 1480,
            RTE_MBUF_F_TX_UDP_SEG | RTE_MBUF_F_TX_UDP_CKSUM | RTE_MBUF_F_TX_IP_CKSUM | kV4},
        // SCTP's CRC and the IPv4 header checksum are completed on the way in,
        // so there is nothing left to request on the way back.
        RoundTripCase{"sctp4 crc", FrameSpec().Sctp(), RTE_MBUF_F_TX_SCTP_CKSUM | kV4, 0, 0},
        RoundTripCase{"ipv4 header only", FrameSpec(), RTE_MBUF_F_TX_IP_CKSUM | kV4, 0, 0}));

}  // namespace
}  // namespace iovtee::virtio
