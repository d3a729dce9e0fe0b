// GuestRxQueue with the mapped pool and the virtio driver emulator: the path a
// frame takes from the NIC (a "NIC refill" is rte_mempool_get_bulk on the
// mapped pool, a "NIC write" a memcpy at rte_pktmbuf_mtod, then FixupRx)
// through the switch into the guest's Rx ring, in place or by copy.
//
// Every test ends (TearDown) with the teardown sequence of the design
// (Detach, TakeParked, ReturnUnused) and checks that the driver reaped each
// outstanding buffer exactly once, saw no protocol violation, that nothing was
// written outside posted buffers (canaries), and that no mbuf leaked.
#include "src/datapath/guest_rx_queue.h"

#include <rte_ether.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/types/span.h"
#include "gtest/gtest.h"
#include "src/pool/mapped_pool.h"
#include "src/virtio/device_queue.h"
#include "src/virtio/net_header.h"
#include "test/common/eal.h"
#include "test/virtio/driver_emulator.h"

namespace iovtee {
namespace {

using virtio::DeviceQueue;
using virtio::QueueCursors;
using virtio::RingLayout;
using virtio::VirtioNetHdr;
using virtio::testing::Completion;
using virtio::testing::DriverOptions;
using virtio::testing::GuestArena;
using virtio::testing::VirtioDriver;

constexpr uint16_t kNic = 2048;  // the NIC's per-queue buffer size
constexpr uint32_t kHdr = 12;    // virtio_net_hdr_mrg_rxbuf (VERSION_1)
constexpr uint32_t kPoolSize = 512;
constexpr uint32_t kForeignSize = 511;
constexpr uint16_t kGen = 1;
constexpr uint32_t kJumbo = 9000;

uint64_t Bit(int b) { return uint64_t{1} << b; }

// --- Frames: recognisable content. Ethernet (locally administered MACs,
// ethertype 0x88b5), then a big-endian sequence number and length, a
// pattern derived from both, and an FNV-1a checksum over everything before it.

uint32_t Fnv1a(absl::Span<const uint8_t> d) {
  uint32_t h = 2166136261u;
  for (uint8_t b : d) {
    h ^= b;
    h *= 16777619u;
  }
  return h;
}

void PutBe32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}
uint32_t GetBe32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}

constexpr uint32_t kMinFrame = 24;

std::vector<uint8_t> MakeFrame(uint32_t seq, uint32_t len) {
  std::vector<uint8_t> f(std::max(len, kMinFrame));
  const uint8_t macs[12] = {0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02};
  std::memcpy(f.data(), macs, sizeof(macs));
  f[12] = 0x88;
  f[13] = 0xb5;
  PutBe32(&f[14], seq);
  f[18] = static_cast<uint8_t>(f.size() >> 8);
  f[19] = static_cast<uint8_t>(f.size());
  for (size_t i = 20; i + 4 < f.size(); ++i) {
    f[i] = static_cast<uint8_t>(seq * 131 + i * 7 + (i >> 8));
  }
  PutBe32(&f[f.size() - 4], Fnv1a(absl::MakeConstSpan(f.data(), f.size() - 4)));
  return f;
}

// The sequence number of a well-formed frame, or nullopt.
std::optional<uint32_t> ParseFrame(absl::Span<const uint8_t> f) {
  if (f.size() < kMinFrame || f[12] != 0x88 || f[13] != 0xb5) return std::nullopt;
  if ((size_t{f[18]} << 8 | f[19]) != (f.size() & 0xffff)) return std::nullopt;
  if (GetBe32(&f[f.size() - 4]) != Fnv1a(f.subspan(0, f.size() - 4))) return std::nullopt;
  const uint32_t seq = GetBe32(&f[14]);
  if (MakeFrame(seq, static_cast<uint32_t>(f.size())) != std::vector<uint8_t>(f.begin(), f.end())) {
    return std::nullopt;
  }
  return seq;
}

// The frame with an 802.1Q tag after the MAC addresses.
std::vector<uint8_t> Tagged(const std::vector<uint8_t>& f, uint16_t tci) {
  std::vector<uint8_t> t(f.begin(), f.begin() + 12);
  const uint8_t tag[4] = {0x81, 0x00, static_cast<uint8_t>(tci >> 8), static_cast<uint8_t>(tci)};
  t.insert(t.end(), tag, tag + 4);
  t.insert(t.end(), f.begin() + 12, f.end());
  return t;
}

// What the guest must read in its buffer: the header, then the frame.
std::vector<uint8_t> Wire(const std::vector<uint8_t>& frame, uint16_t num_buffers, uint8_t flags,
                          uint32_t hdr_len = kHdr) {
  VirtioNetHdr h{};
  h.flags = flags;
  h.num_buffers = num_buffers;
  std::vector<uint8_t> w(hdr_len);
  std::memcpy(w.data(), &h, hdr_len);
  w.insert(w.end(), frame.begin(), frame.end());
  return w;
}

::testing::AssertionResult SameBytes(absl::Span<const uint8_t> got,
                                     absl::Span<const uint8_t> want) {
  if (got.size() != want.size()) {
    return ::testing::AssertionFailure() << got.size() << " bytes, expected " << want.size();
  }
  for (size_t i = 0; i < got.size(); ++i) {
    if (got[i] != want[i]) {
      return ::testing::AssertionFailure() << "first difference at byte " << i << ": 0x" << std::hex
                                           << int{got[i]} << ", expected 0x" << int{want[i]};
    }
  }
  return ::testing::AssertionSuccess();
}

// One frame as the guest reassembles it from the used ring.
struct Received {
  std::vector<uint8_t> header;  // hdr_len bytes
  std::vector<uint8_t> frame;
  std::vector<Completion> bufs;
};

// --- Parameters: ring layout x mergeable buffers.

struct Variant {
  RingLayout layout;
  bool mergeable;
};

std::string VariantName(const ::testing::TestParamInfo<Variant>& info) {
  return absl::StrCat(info.param.layout == RingLayout::kSplit ? "Split" : "Packed",
                      info.param.mergeable ? "Mergeable" : "NoMergeable");
}

class GuestRxQueueTest : public ::testing::TestWithParam<Variant> {
 protected:
  static void SetUpTestSuite() { ASSERT_TRUE(test::StartEal().ok()); }

  void SetUp() override {
    static int n = 0;
    id_ = n++;
    MappedPoolConfig c;
    c.name = absl::StrCat("grq_", id_);
    c.size = kPoolSize;
    c.nic_buffer_size = kNic;
    auto p = MappedPool::Create(c);
    ASSERT_TRUE(p.ok()) << p.status();
    pool_ = std::move(*p);
  }

  void TearDown() override {
    if (rxq_ != nullptr && teardown_) TeardownAndCheck();
    if (drv_ != nullptr) ExpectDriverClean(*drv_, "guest");
    for (auto& d : old_drivers_) {
      if (d != nullptr) ExpectDriverClean(*d, "old session guest");
    }
    if (rxq_ != nullptr) {
      EXPECT_EQ(rxq_->queue().stats().bad_returns, 0u)
          << "the queue returned an id it did not hold";
    }
    EXPECT_EQ(rte_mempool_avail_count(pool_->mempool()), kPoolSize) << "mapped pool mbufs leaked";
    for (rte_mempool* mp : {foreign_, jumbo_}) {
      if (mp == nullptr) continue;
      EXPECT_EQ(rte_mempool_avail_count(mp), kForeignSize) << mp->name << ": mbufs leaked";
      rte_mempool_free(mp);
    }
  }

  bool packed() const { return GetParam().layout == RingLayout::kPacked; }
  bool mergeable() const { return GetParam().mergeable; }

  uint64_t Features(uint64_t extra = 0) const {
    uint64_t f = Bit(virtio::kFVersion1) | extra;
    if (mergeable()) f |= Bit(virtio::kNetFMrgRxbuf);
    if (packed()) f |= Bit(virtio::kFRingPacked);
    return f;
  }

  DriverOptions Options(uint64_t features, uint16_t size, uint32_t hdr_len = kHdr) const {
    DriverOptions o;
    o.layout = GetParam().layout;
    o.size = size;
    o.features = features;
    o.hdr_len = hdr_len;
    return o;
  }

  std::unique_ptr<GuestRxQueue> MakeQueue(VirtioDriver* d, uint64_t features, uint16_t generation,
                                          std::optional<QueueCursors> cursors = std::nullopt) {
    auto q =
        DeviceQueue::Create(d->device_config(), &d->memory(), cursors.value_or(d->start_cursors()));
    EXPECT_TRUE(q.ok()) << q.status();
    if (!q.ok()) return nullptr;
    GuestRxConfig c;
    c.features = features;
    c.pool = pool_.get();
    c.generation = generation;
    c.order_probation = probation_;
    return std::make_unique<GuestRxQueue>(std::move(*q), &d->memory(), c);
  }

  bool probation_ = false;  // queues start with the Rx order on probation
  // The guest (driver) and the queue under test (generation gen_).
  void Start(uint64_t extra_features = 0, uint16_t size = 256) {
    StartCustom(Features(extra_features), size, kHdr);
  }
  void StartCustom(uint64_t queue_features, uint16_t size, uint32_t driver_hdr_len) {
    drv_ = std::make_unique<VirtioDriver>(&arena_, Options(queue_features, size, driver_hdr_len));
    rxq_ = MakeQueue(drv_.get(), queue_features, gen_);
    ASSERT_NE(rxq_, nullptr);
  }

  void Attach(uint32_t cap) { pool_->Attach(rxq_.get(), gen_, cap); }

  // --- The guest posts.
  std::vector<uint16_t> PostDpdk(int n, VirtioDriver* d = nullptr) {
    if (d == nullptr) d = drv_.get();
    std::vector<uint16_t> ids;
    for (int i = 0; i < n; ++i) {
      auto id = d->PostDpdk();
      EXPECT_TRUE(id.has_value());
      if (id) ids.push_back(*id);
    }
    d->Publish();
    return ids;
  }
  // What a Linux guest posts: mergeable buffers, or small ones.
  std::vector<uint16_t> PostLinux(int n) {
    std::vector<uint16_t> ids;
    for (int i = 0; i < n; ++i) {
      auto id = mergeable() ? drv_->PostLinuxMergeable() : drv_->PostLinuxSmall();
      EXPECT_TRUE(id.has_value());
      if (id) ids.push_back(*id);
    }
    drv_->Publish();
    return ids;
  }
  std::vector<uint16_t> PostGeneric(int n, uint32_t len) {
    std::vector<uint16_t> ids;
    for (int i = 0; i < n; ++i) {
      auto id = drv_->Post(std::vector<uint32_t>{len});
      EXPECT_TRUE(id.has_value());
      if (id) ids.push_back(*id);
    }
    drv_->Publish();
    return ids;
  }

  // --- The NIC.
  std::vector<rte_mbuf*> NicRefill(unsigned n) {
    std::vector<rte_mbuf*> v(n);
    MappedPool::NicRefillScope refill(pool_.get());
    EXPECT_EQ(rte_mempool_get_bulk(pool_->mempool(), reinterpret_cast<void**>(v.data()), n), 0);
    return v;
  }
  // DMA of `frame` where the PMD posted the buffer, the PMD's Rx
  // bookkeeping, then the FixupRx the mapping asks of the switch.
  void NicReceive(rte_mbuf* m, const std::vector<uint8_t>& frame, uint64_t ol_flags = 0,
                  bool fixup = true) {
    ASSERT_LE(frame.size(), kNic) << "more than the NIC writes into one buffer";
    std::memcpy(rte_pktmbuf_mtod(m, void*), frame.data(), frame.size());
    m->data_len = static_cast<uint16_t>(frame.size());
    m->pkt_len = static_cast<uint32_t>(frame.size());
    m->ol_flags = ol_flags;
    m->packet_type = 0;
    if (fixup) pool_->FixupRx(m);
  }
  const GuestBuffer* G(const rte_mbuf* m) const { return pool_->GuestBufferOf(m); }
  int CountGuest(const std::vector<rte_mbuf*>& v) const {
    int n = 0;
    for (rte_mbuf* m : v) n += G(m) != nullptr;
    return n;
  }
  void FreeAll(const std::vector<rte_mbuf*>& v) {
    for (rte_mbuf* m : v) rte_pktmbuf_free(m);
  }

  // --- Mbufs from elsewhere (another port, the host stack).
  rte_mempool* ForeignPool() {
    if (foreign_ == nullptr) {
      foreign_ = rte_pktmbuf_pool_create(absl::StrCat("grq_f", id_).c_str(), kForeignSize, 0, 0,
                                         RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
      EXPECT_NE(foreign_, nullptr);
    }
    return foreign_;
  }
  rte_mempool* JumboPool() {
    if (jumbo_ == nullptr) {
      jumbo_ = rte_pktmbuf_pool_create(absl::StrCat("grq_j", id_).c_str(), kForeignSize, 0, 0,
                                       RTE_PKTMBUF_HEADROOM + 9216, SOCKET_ID_ANY);
      EXPECT_NE(jumbo_, nullptr);
    }
    return jumbo_;
  }
  rte_mbuf* FromPool(rte_mempool* mp, absl::Span<const uint8_t> bytes, uint64_t ol_flags = 0) {
    rte_mbuf* m = rte_pktmbuf_alloc(mp);
    EXPECT_NE(m, nullptr);
    if (m == nullptr) return nullptr;
    char* p = rte_pktmbuf_append(m, static_cast<uint16_t>(bytes.size()));
    EXPECT_NE(p, nullptr);
    if (p != nullptr) std::memcpy(p, bytes.data(), bytes.size());
    m->ol_flags = ol_flags;
    return m;
  }
  rte_mbuf* Foreign(const std::vector<uint8_t>& frame, uint64_t ol_flags = 0) {
    return FromPool(ForeignPool(), frame, ol_flags);
  }
  // A chain of host mbufs holding `frame` in pieces of the given sizes (the
  // last piece takes the rest).
  rte_mbuf* ForeignChain(const std::vector<uint8_t>& frame, std::vector<uint32_t> pieces) {
    rte_mbuf* head = nullptr;
    size_t off = 0;
    for (size_t i = 0; i < pieces.size() && off < frame.size(); ++i) {
      const size_t len = i + 1 == pieces.size() ? frame.size() - off
                                                : std::min<size_t>(pieces[i], frame.size() - off);
      rte_mbuf* seg = FromPool(ForeignPool(), absl::MakeConstSpan(frame.data() + off, len));
      if (head == nullptr) {
        head = seg;
      } else {
        EXPECT_EQ(rte_pktmbuf_chain(head, seg), 0);
      }
      off += len;
    }
    EXPECT_EQ(head->pkt_len, frame.size());
    return head;
  }

  uint16_t Deliver(std::vector<rte_mbuf*> v) {
    return rxq_->Enqueue(v.data(), static_cast<uint16_t>(v.size()));
  }

  // --- The guest reaps.
  std::vector<Received> ReapFrames(VirtioDriver* d = nullptr, uint32_t hdr_len = kHdr) {
    if (d == nullptr) d = drv_.get();
    std::vector<Completion> cs = d->ReapAll();
    std::vector<Received> out;
    for (size_t i = 0; i < cs.size();) {
      Received r;
      const Completion& c = cs[i];
      EXPECT_EQ(c.data.size(), c.len);
      if (c.len < hdr_len) {
        ADD_FAILURE() << "used id " << c.id << " len " << c.len << " has no room for a header";
        ++i;
        continue;
      }
      r.header.assign(c.data.begin(), c.data.begin() + hdr_len);
      r.frame.assign(c.data.begin() + hdr_len, c.data.end());
      VirtioNetHdr h{};
      std::memcpy(&h, r.header.data(), hdr_len);
      size_t n = mergeable() ? h.num_buffers : 1;
      if (n == 0 || i + n > cs.size()) {
        ADD_FAILURE() << "num_buffers " << n << " with " << cs.size() - i << " used entries left";
        n = 1;
      }
      r.bufs.push_back(c);
      for (size_t j = 1; j < n; ++j) {
        const Completion& more = cs[i + j];
        EXPECT_EQ(more.data.size(), more.len);
        r.frame.insert(r.frame.end(), more.data.begin(), more.data.end());
        r.bufs.push_back(more);
      }
      out.push_back(std::move(r));
      i += n;
    }
    return out;
  }

  // Header (num_buffers, flags, every other field 0) and frame, byte for
  // byte; one buffer whose used len is header + frame unless said otherwise.
  void ExpectFrame(const Received& r, const std::vector<uint8_t>& frame, uint16_t num_buffers = 1,
                   uint8_t flags = 0, uint32_t hdr_len = kHdr) {
    const std::vector<uint8_t> want = Wire(frame, num_buffers, flags, hdr_len);
    EXPECT_TRUE(SameBytes(r.header, absl::MakeConstSpan(want.data(), hdr_len))) << "header";
    EXPECT_TRUE(SameBytes(r.frame, frame)) << "frame";
    if (num_buffers <= 1) {  // 0: a legacy header has no num_buffers
      ASSERT_EQ(r.bufs.size(), 1u);
      EXPECT_EQ(r.bufs[0].len, hdr_len + frame.size());
    }
  }

  void ExpectDriverClean(const VirtioDriver& d, const char* who) {
    EXPECT_TRUE(d.violations().empty()) << who << ": " << absl::StrJoin(d.violations(), "; ");
    const absl::Status s = d.CheckIntegrity();
    EXPECT_TRUE(s.ok()) << who << ": " << s;
  }

  // The teardown of the design: stop lending, (the drain happened: the test
  // freed every mbuf), take the parked buffers back, give them and the kept
  // ones to the guest empty. The guest must then get every buffer the device
  // took back exactly once, and the cursors must be those of an empty ring.
  void TeardownAndCheck() {
    pool_->Detach();
    std::vector<GuestBuffer> back(kPoolSize);
    const uint16_t parked = pool_->TakeParked(back.data(), static_cast<uint16_t>(back.size()));
    const MappedPoolStats ps = pool_->stats();
    EXPECT_EQ(ps.guest_parked, 0u);
    EXPECT_EQ(ps.guest_resident, 0u) << "guest buffers the pool neither parked nor gave back";
    const uint64_t empty_before = rxq_->stats().returned_empty;
    const uint16_t returned = rxq_->ReturnUnused(back.data(), parked);
    EXPECT_EQ(rxq_->stats().returned_empty, empty_before + returned);
    const std::vector<Completion> cs = drv_->ReapAll();
    EXPECT_EQ(cs.size(), returned);
    for (const Completion& c : cs) {
      EXPECT_EQ(c.len, 0u) << "id " << c.id << ": a delivery the test did not reap, or a "
                           << "teardown return with data";
    }
    EXPECT_EQ(rxq_->queue().in_flight(), 0) << "buffers the device took and never gave back";
    const QueueCursors c = rxq_->cursors();
    EXPECT_EQ(c.last_avail_idx, c.last_used_idx);
    // Every buffer the driver still has out is one the device never took.
    EXPECT_EQ(drv_->outstanding(),
              drv_->posted_total() - (fetched_base_ + rxq_->queue().stats().fetched));
  }

  // Session 1 (generation 1) lends two buffers; one mbuf is still out (say
  // in another port's Tx ring) when the session is torn down as designed
  // (Detach, drain, TakeParked, ReturnUnused), and comes back after it: the
  // pool parks it again. The guest then resets (its memory is no longer a
  // posted buffer: canaries back). Session 2 (generation 2, rxq_) attaches.
  // With `end_session` the control layer calls EndSession() after the
  // teardown and before the late free.
  void EndedSessionWithALateFree(bool end_session = false) {
    gen_ = 2;
    Start();
    old_arenas_.push_back(std::make_unique<GuestArena>());
    old_drivers_.push_back(
        std::make_unique<VirtioDriver>(old_arenas_.back().get(), Options(Features(), 256)));
    VirtioDriver* old = old_drivers_.back().get();
    old_queues_.push_back(MakeQueue(old, Features(), 1));
    GuestRxQueue* old_q = old_queues_.back().get();
    PostDpdk(2, old);
    pool_->Attach(old_q, 1, 8);
    std::vector<rte_mbuf*> v = NicRefill(2);
    ASSERT_EQ(CountGuest(v), 2);
    pool_->Detach();
    rte_pktmbuf_free(v[0]);  // the drain
    GuestBuffer back[8];
    const uint16_t n = pool_->TakeParked(back, 8);
    ASSERT_EQ(n, 1);
    ASSERT_EQ(old_q->ReturnUnused(back, n), 1);
    ASSERT_EQ(old->ReapAll().size(), 1u);
    if (end_session) pool_->EndSession();
    rte_pktmbuf_free(v[1]);  // the late Tx completion
    ASSERT_EQ(pool_->stats().guest_parked, end_session ? 0u : 1u);
    ASSERT_EQ(pool_->stats().guest_orphaned, end_session ? 1u : 0u);
    old_drivers_.back().reset();  // the guest resets; its buffer memory is its own again
    Attach(8);
  }

  GuestArena arena_;
  std::unique_ptr<MappedPool> pool_;
  std::unique_ptr<VirtioDriver> drv_;
  std::unique_ptr<GuestRxQueue> rxq_;
  // Earlier guest sessions: their own RAM (the canary check of a driver
  // covers its whole arena).
  std::vector<std::unique_ptr<GuestArena>> old_arenas_;
  std::vector<std::unique_ptr<VirtioDriver>> old_drivers_;
  std::vector<std::unique_ptr<GuestRxQueue>> old_queues_;
  rte_mempool* foreign_ = nullptr;
  rte_mempool* jumbo_ = nullptr;
  uint16_t gen_ = kGen;
  uint64_t fetched_base_ = 0;  // chains fetched by queues replaced since
  bool teardown_ = true;
  int id_ = 0;
};

// ---------------------------------------------------------------------------
// Zero-copy.

TEST_P(GuestRxQueueTest, ZeroCopyCompletesFramesInPlaceOutOfOrder) {
  Start();
  PostDpdk(40);
  Attach(64);
  std::vector<rte_mbuf*> v = NicRefill(32);
  ASSERT_EQ(CountGuest(v), 32);
  std::map<uint16_t, std::vector<uint8_t>> sent;  // by guest buffer id
  uint64_t bytes = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    const GuestBuffer* g = G(v[i]);
    // The NIC writes right after where the header goes, in the guest's own
    // buffer, at the address the guest posted.
    EXPECT_EQ(arena_.Gpa(g->addr), drv_->buffer(g->id)->segments[0].gpa);
    EXPECT_EQ(rte_mbuf_data_iova_default(v[i]), g->iova + kHdr);
    std::vector<uint8_t> f = MakeFrame(static_cast<uint32_t>(i), i % 2 ? 1514 : 64);
    NicReceive(v[i], f);
    EXPECT_EQ(rte_pktmbuf_mtod(v[i], uint8_t*), g->addr + kHdr);
    EXPECT_EQ(rte_pktmbuf_headroom(v[i]), 0);
    bytes += f.size();
    sent[g->id] = std::move(f);
  }
  // The switch sends them on in an order unrelated to the posting order, in
  // bursts of 8.
  std::vector<rte_mbuf*> order = v;
  std::shuffle(order.begin(), order.end(), std::mt19937(7));
  std::vector<uint16_t> delivered_ids;
  for (size_t b = 0; b < order.size(); b += 8) {
    std::vector<rte_mbuf*> burst(order.begin() + b, order.begin() + b + 8);
    std::vector<uint16_t> ids;
    for (rte_mbuf* m : burst) ids.push_back(G(m)->id);
    EXPECT_EQ(Deliver(burst), 8);
    const std::vector<Received> rx = ReapFrames();
    ASSERT_EQ(rx.size(), 8u);
    for (size_t k = 0; k < rx.size(); ++k) {
      EXPECT_EQ(rx[k].bufs[0].id, ids[k]) << "used ring order is the delivery order";
      ExpectFrame(rx[k], sent[ids[k]]);
    }
    delivered_ids.insert(delivered_ids.end(), ids.begin(), ids.end());
  }
  EXPECT_FALSE(std::is_sorted(delivered_ids.begin(), delivered_ids.end()));
  const GuestRxStats s = rxq_->stats();
  EXPECT_EQ(s.zero_copy, 32u);
  EXPECT_EQ(s.copied, 0u);
  EXPECT_EQ(s.bytes, bytes);
  EXPECT_EQ(s.lent_to_nic, 32u);
  EXPECT_EQ(pool_->stats().guest_delivered, 32u);
  EXPECT_EQ(rxq_->queue().stats().fetched, 32u) << "in place: no other guest buffer was used";
  EXPECT_EQ(drv_->outstanding(), 8u);
}

TEST_P(GuestRxQueueTest, ZeroCopyAfterVlanPopMovesTheFrameBehindTheHeader) {
  Start();
  PostDpdk(4);
  Attach(8);
  std::vector<rte_mbuf*> v = NicRefill(2);
  ASSERT_EQ(CountGuest(v), 2);
  const std::vector<uint8_t> f[2] = {MakeFrame(1, 1514), MakeFrame(2, 64)};
  std::vector<uint16_t> ids;
  for (int i = 0; i < 2; ++i) {
    NicReceive(v[i], Tagged(f[i], static_cast<uint16_t>(100 + i)));
    ids.push_back(G(v[i])->id);
    // The switch pops the tag: MACs move up 4 bytes, the front is trimmed.
    uint8_t* p = rte_pktmbuf_mtod(v[i], uint8_t*);
    std::memmove(p + 4, p, 12);
    ASSERT_NE(rte_pktmbuf_adj(v[i], 4), nullptr);
    EXPECT_EQ(rte_pktmbuf_mtod(v[i], uint8_t*), G(v[i])->addr + kHdr + 4);
  }
  EXPECT_EQ(Deliver(v), 2);
  const std::vector<Received> rx = ReapFrames();
  ASSERT_EQ(rx.size(), 2u);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(rx[i].bufs[0].id, ids[i]);
    ExpectFrame(rx[i], f[i]);
  }
  EXPECT_EQ(rxq_->stats().zero_copy, 2u);
  EXPECT_EQ(rxq_->stats().copied, 0u);
}

TEST_P(GuestRxQueueTest, VlanPushOnAMappedMbufFailsAndWritesNothing) {
  Start();
  PostDpdk(2);
  Attach(8);
  std::vector<rte_mbuf*> v = NicRefill(1);
  rte_mbuf* m = v[0];
  const GuestBuffer* g = G(m);
  ASSERT_NE(g, nullptr);
  const std::vector<uint8_t> f = MakeFrame(3, 1514);
  NicReceive(m, f);
  m->vlan_tci = 42;
  const uint16_t off = m->data_off;
  EXPECT_EQ(rte_vlan_insert(&m), -ENOSPC);
  EXPECT_EQ(rte_pktmbuf_prepend(m, 1), nullptr);
  EXPECT_EQ(m->data_off, off);
  EXPECT_EQ(m->data_len, f.size());
  EXPECT_EQ(m->pkt_len, f.size());
  EXPECT_TRUE(SameBytes(absl::MakeConstSpan(rte_pktmbuf_mtod(m, uint8_t*), f.size()), f));
  // Nothing before the frame was written: not the header room inside the
  // buffer, not the bytes before the buffer (canaries outside it).
  const uint64_t gpa = arena_.Gpa(g->addr);
  std::vector<uint8_t> hdr(kHdr);
  arena_.Read(gpa, absl::MakeSpan(hdr));
  for (uint32_t i = 0; i < kHdr; ++i) EXPECT_EQ(hdr[i], GuestArena::Canary(gpa + i)) << i;
  const absl::Status s = drv_->CheckIntegrity();
  EXPECT_TRUE(s.ok()) << s;
  const uint16_t id = g->id;
  EXPECT_EQ(Deliver({m}), 1);
  const std::vector<Received> rx = ReapFrames();
  ASSERT_EQ(rx.size(), 1u);
  EXPECT_EQ(rx[0].bufs[0].id, id);
  ExpectFrame(rx[0], f);
  EXPECT_EQ(rxq_->stats().zero_copy, 1u);
}

TEST_P(GuestRxQueueTest, HeaderFlagsCarryTheNicChecksumVerdict) {
  Start(Bit(virtio::kNetFGuestCsum));
  PostDpdk(4);
  Attach(1);
  std::vector<rte_mbuf*> v = NicRefill(1);
  ASSERT_EQ(CountGuest(v), 1);
  const std::vector<uint8_t> f[3] = {MakeFrame(1, 128), MakeFrame(2, 600), MakeFrame(3, 70)};
  NicReceive(v[0], f[0], RTE_MBUF_F_RX_L4_CKSUM_GOOD);
  EXPECT_EQ(Deliver({v[0], Foreign(f[1], RTE_MBUF_F_RX_L4_CKSUM_GOOD), Foreign(f[2])}), 3);
  const std::vector<Received> rx = ReapFrames();
  ASSERT_EQ(rx.size(), 3u);
  ExpectFrame(rx[0], f[0], 1, virtio::kNetHdrFDataValid);
  ExpectFrame(rx[1], f[1], 1, virtio::kNetHdrFDataValid);
  ExpectFrame(rx[2], f[2], 1, 0);
  EXPECT_EQ(rxq_->stats().zero_copy, 1u);
  EXPECT_EQ(rxq_->stats().copied, 2u);
}

// ---------------------------------------------------------------------------
// Copy path.

TEST_P(GuestRxQueueTest, ForeignMbufsAreCopied) {
  Start();
  PostLinux(16);
  std::vector<std::vector<uint8_t>> f;
  std::vector<rte_mbuf*> v;
  uint64_t bytes = 0;
  for (uint32_t i = 0; i < 16; ++i) {
    f.push_back(MakeFrame(i, i == 0 ? 64 : i == 15 ? 1514 : 60 + i * 97));
    bytes += f.back().size();
    v.push_back(Foreign(f.back()));
  }
  EXPECT_EQ(Deliver(v), 16);
  const std::vector<Received> rx = ReapFrames();
  ASSERT_EQ(rx.size(), 16u);
  for (size_t i = 0; i < rx.size(); ++i) ExpectFrame(rx[i], f[i]);
  const GuestRxStats s = rxq_->stats();
  EXPECT_EQ(s.copied, 16u);
  EXPECT_EQ(s.copies[static_cast<int>(CopyReason::kForeign)], 16u);
  EXPECT_EQ(s.zero_copy, 0u);
  EXPECT_EQ(s.bytes, bytes);
}

TEST_P(GuestRxQueueTest, MultiSegmentHostMbufsAreCopiedContiguously) {
  Start();
  PostLinux(8);
  std::vector<std::vector<uint8_t>> f = {MakeFrame(1, 1514), MakeFrame(2, 400)};
  std::vector<rte_mbuf*> v = {ForeignChain(f[0], {14, 700, 0}), ForeignChain(f[1], {100, 100, 0})};
  EXPECT_EQ(v[0]->nb_segs, 3);
  EXPECT_EQ(v[1]->nb_segs, 3);
  if (mergeable()) {
    // Larger than one Linux mergeable buffer (1536 bytes): two of them.
    f.push_back(MakeFrame(3, 3000));
    v.push_back(ForeignChain(f[2], {1000, 1000, 0}));
  }
  EXPECT_EQ(Deliver(v), v.size());
  const std::vector<Received> rx = ReapFrames();
  ASSERT_EQ(rx.size(), f.size());
  ExpectFrame(rx[0], f[0]);
  ExpectFrame(rx[1], f[1]);
  if (mergeable()) {
    ExpectFrame(rx[2], f[2], 2);
    ASSERT_EQ(rx[2].bufs.size(), 2u);
    // Linux mergeable buffers posted before any reap are 1536 bytes; the
    // first is filled before the second is used.
    EXPECT_EQ(rx[2].bufs[0].len, 1536u);
    EXPECT_EQ(rx[2].bufs[1].len, kHdr + 3000 - 1536);
  }
  EXPECT_EQ(rxq_->stats().copies[static_cast<int>(CopyReason::kForeign)], f.size());
}

TEST_P(GuestRxQueueTest, JumboFramesUseMergeableOrBigBuffers) {
  Start(mergeable() ? 0 : Bit(virtio::kFIndirectDesc));
  std::vector<uint16_t> posted;
  if (mergeable()) {
    posted = PostLinux(12);  // 1536-byte buffers: 6 per 9000-byte frame
  } else {
    for (int i = 0; i < 2; ++i) {
      auto id = drv_->PostLinuxBig();
      ASSERT_TRUE(id.has_value());
      EXPECT_TRUE(drv_->buffer(*id)->indirect);
      posted.push_back(*id);
    }
    drv_->Publish();
  }
  const std::vector<uint8_t> f[2] = {MakeFrame(1, kJumbo), MakeFrame(2, kJumbo)};
  rte_mbuf* single = FromPool(JumboPool(), f[0]);
  rte_mbuf* chain = ForeignChain(f[1], {1800, 1800, 1800, 1800, 0});
  EXPECT_EQ(single->nb_segs, 1);
  EXPECT_EQ(chain->nb_segs, 5);
  EXPECT_EQ(Deliver({single, chain}), 2);
  const std::vector<Received> rx = ReapFrames();
  ASSERT_EQ(rx.size(), 2u);
  std::set<uint16_t> used;
  for (int i = 0; i < 2; ++i) {
    if (mergeable()) {
      ExpectFrame(rx[i], f[i], 6);
      ASSERT_EQ(rx[i].bufs.size(), 6u);
      uint32_t total = 0;
      for (size_t k = 0; k < 6; ++k) {
        const Completion& c = rx[i].bufs[k];
        // Each 1536-byte buffer is filled before the next is used.
        if (k < 5) {
          EXPECT_EQ(c.len, 1536u) << "buffer " << k;
        }
        total += c.len;
        EXPECT_TRUE(used.insert(c.id).second) << "id " << c.id << " used twice";
      }
      EXPECT_EQ(total, kHdr + kJumbo);
      EXPECT_EQ(rx[i].bufs[5].len, kHdr + kJumbo - 5 * 1536);
    } else {
      ExpectFrame(rx[i], f[i], 1);
      EXPECT_EQ(rx[i].bufs[0].len, kHdr + kJumbo);
      EXPECT_EQ(rx[i].bufs[0].style, virtio::testing::PostStyle::kLinuxBig);
    }
  }
  EXPECT_EQ(rxq_->stats().copied, 2u);
}

TEST_P(GuestRxQueueTest, JumboFrameWithOnlySmallBuffersIsDroppedTooBigWithoutMergeable) {
  if (mergeable()) GTEST_SKIP() << "mergeable guests take jumbo frames in small buffers";
  Start();
  const std::vector<uint16_t> ids = PostLinux(1);
  EXPECT_EQ(Deliver({FromPool(JumboPool(), MakeFrame(1, kJumbo))}), 0);
  EXPECT_EQ(rxq_->stats().drops[static_cast<int>(DropReason::kTooBig)], 1u);
  EXPECT_EQ(rxq_->stats().drops[static_cast<int>(DropReason::kNoBuffer)], 0u);
  EXPECT_FALSE(drv_->HasUsed());
  EXPECT_EQ(rxq_->queue().in_flight(), 1) << "the buffer is kept for the next frame";
  // The buffer is not lost: the next frame that fits goes into it.
  const std::vector<uint8_t> f = MakeFrame(2, 1514);
  EXPECT_EQ(Deliver({Foreign(f)}), 1);
  const std::vector<Received> rx = ReapFrames();
  ASSERT_EQ(rx.size(), 1u);
  EXPECT_EQ(rx[0].bufs[0].id, ids[0]);
  ExpectFrame(rx[0], f);
  EXPECT_EQ(drv_->outstanding(), 0u);
}

TEST_P(GuestRxQueueTest, MixedBurstCountsEachFrameOnItsPath) {
  Start();
  PostDpdk(8);
  Attach(64);
  // The guest has 8 buffers: the NIC gets 8 guest and 8 host buffers.
  std::vector<rte_mbuf*> nic = NicRefill(16);
  ASSERT_EQ(CountGuest(nic), 8);
  const std::vector<uint16_t> copy_ids = PostDpdk(12);
  std::vector<rte_mbuf*> burst;
  std::vector<std::vector<uint8_t>> f;
  std::vector<int> mapped_id;  // guest buffer id, or -1
  uint32_t seq = 0;
  for (size_t i = 0; i < nic.size(); ++i) {
    f.push_back(MakeFrame(seq++, 64 + 90 * static_cast<uint32_t>(i)));
    NicReceive(nic[i], f.back());
    burst.push_back(nic[i]);
    mapped_id.push_back(G(nic[i]) ? G(nic[i])->id : -1);
    if (i % 4 == 1) {
      f.push_back(MakeFrame(seq++, 1000));
      burst.push_back(Foreign(f.back()));
      mapped_id.push_back(-1);
    }
  }
  ASSERT_EQ(burst.size(), 20u);
  EXPECT_EQ(Deliver(burst), 20);
  const std::vector<Received> rx = ReapFrames();
  ASSERT_EQ(rx.size(), 20u);
  std::set<uint16_t> copies_into;
  for (size_t i = 0; i < rx.size(); ++i) {
    ExpectFrame(rx[i], f[i]);
    if (mapped_id[i] >= 0) {
      EXPECT_EQ(rx[i].bufs[0].id, mapped_id[i]) << "frame " << i << " completed in place";
    } else {
      copies_into.insert(rx[i].bufs[0].id);
    }
  }
  EXPECT_EQ(copies_into, std::set<uint16_t>(copy_ids.begin(), copy_ids.end()));
  const GuestRxStats s = rxq_->stats();
  EXPECT_EQ(s.zero_copy, 8u);
  EXPECT_EQ(s.copied, 12u);
  EXPECT_EQ(s.copies[static_cast<int>(CopyReason::kForeign)], 4u);
  EXPECT_EQ(s.copies[static_cast<int>(CopyReason::kHostBuffer)], 8u)
      << "NIC frames in host buffers";
  EXPECT_EQ(pool_->stats().guest_delivered, 8u);
}

// ---------------------------------------------------------------------------
// Drops.

TEST_P(GuestRxQueueTest, NoBufferDropLosesNoBuffer) {
  Start();
  EXPECT_EQ(Deliver({Foreign(MakeFrame(1, 500))}), 0);
  EXPECT_EQ(rxq_->stats().drops[static_cast<int>(DropReason::kNoBuffer)], 1u);
  const std::vector<uint16_t> ids = PostLinux(1);
  const std::vector<uint8_t> f = MakeFrame(2, 500);
  EXPECT_EQ(Deliver({Foreign(f)}), 1);
  std::vector<Received> rx = ReapFrames();
  ASSERT_EQ(rx.size(), 1u);
  EXPECT_EQ(rx[0].bufs[0].id, ids[0]);
  ExpectFrame(rx[0], f);
  if (mergeable()) {
    // Two buffers are not enough for a jumbo frame: nothing is delivered
    // and both stay with the device for the next frame.
    std::vector<uint16_t> first = PostLinux(2);
    EXPECT_EQ(Deliver({FromPool(JumboPool(), MakeFrame(3, kJumbo))}), 0);
    EXPECT_EQ(rxq_->stats().drops[static_cast<int>(DropReason::kNoBuffer)], 2u);
    EXPECT_FALSE(drv_->HasUsed());
    EXPECT_EQ(rxq_->queue().in_flight(), 2);
    std::vector<uint16_t> more = PostLinux(4);
    const std::vector<uint8_t> j = MakeFrame(4, kJumbo);
    EXPECT_EQ(Deliver({FromPool(JumboPool(), j)}), 1);
    rx = ReapFrames();
    ASSERT_EQ(rx.size(), 1u);
    ExpectFrame(rx[0], j, 6);
    std::set<uint16_t> got;
    for (const Completion& c : rx[0].bufs) got.insert(c.id);
    first.insert(first.end(), more.begin(), more.end());
    EXPECT_EQ(got, std::set<uint16_t>(first.begin(), first.end()));
  }
  EXPECT_EQ(drv_->outstanding(), 0u);
}

TEST_P(GuestRxQueueTest, BrokenQueueDropsAndNeverCrashes) {
  Start();
  PostDpdk(4);
  Attach(8);
  std::vector<rte_mbuf*> v = NicRefill(4);
  ASSERT_EQ(CountGuest(v), 4);
  const std::vector<uint8_t> f = MakeFrame(1, 300);
  NicReceive(v[0], f);
  NicReceive(v[1], MakeFrame(2, 300));
  NicReceive(v[2], MakeFrame(3, 300));
  const uint16_t id0 = G(v[0])->id;
  // A hostile descriptor: a head index out of the table (split), a buffer
  // outside guest memory (packed).
  if (packed()) {
    virtio::PackedDesc d{};
    d.addr = 0x1000;
    d.len = 4096;
    d.id = 77;
    d.flags = virtio::kDescFWrite;
    drv_->RawPublishPacked(absl::MakeConstSpan(&d, 1));
  } else {
    drv_->RawPublishSplit(drv_->size() + 3);
  }
  // In place needs no fetch; the first copy fetches, finds the hostile
  // descriptor and stops the queue; everything after is dropped.
  EXPECT_EQ(Deliver({v[0], Foreign(MakeFrame(9, 100)), v[1], Foreign(MakeFrame(10, 100))}), 1);
  EXPECT_TRUE(rxq_->broken());
  EXPECT_EQ(rxq_->queue().last_error(), packed() ? virtio::ChainError::kAddressOutOfMemory
                                                 : virtio::ChainError::kHeadOutOfRange);
  GuestRxStats s = rxq_->stats();
  EXPECT_EQ(s.drops[static_cast<int>(DropReason::kNoBuffer)], 1u);
  EXPECT_EQ(s.drops[static_cast<int>(DropReason::kBrokenQueue)], 2u);
  EXPECT_EQ(Deliver({v[2]}), 0);
  EXPECT_EQ(rxq_->stats().drops[static_cast<int>(DropReason::kBrokenQueue)], 3u);
  // The NIC gets no new guest buffer from a broken queue.
  std::vector<rte_mbuf*> w = NicRefill(8);
  EXPECT_EQ(rxq_->stats().lent_to_nic, 4u);
  FreeAll(w);
  rte_pktmbuf_free(v[3]);
  const std::vector<Received> rx = ReapFrames();
  ASSERT_EQ(rx.size(), 1u);
  EXPECT_EQ(rx[0].bufs[0].id, id0);
  ExpectFrame(rx[0], f);
}

// ---------------------------------------------------------------------------
// Copy reasons for mbufs that do sit in this guest's buffers.

TEST_P(GuestRxQueueTest, CopyReasonStaleSession) {
  gen_ = 2;
  Start();
  // Session 1, on a ring the guest has since reset.
  old_arenas_.push_back(std::make_unique<GuestArena>());
  old_drivers_.push_back(
      std::make_unique<VirtioDriver>(old_arenas_.back().get(), Options(Features(), 256)));
  VirtioDriver* old = old_drivers_.back().get();
  old_queues_.push_back(MakeQueue(old, Features(), 1));
  PostDpdk(4, old);
  pool_->Attach(old_queues_.back().get(), 1, 8);
  std::vector<rte_mbuf*> v = NicRefill(4);
  ASSERT_EQ(CountGuest(v), 4);
  const std::vector<uint8_t> f[2] = {MakeFrame(1, 64), MakeFrame(2, 1514)};
  NicReceive(v[0], f[0]);
  NicReceive(v[1], f[1]);
  // Session 2 starts while the frames are still in the switch.
  pool_->Detach();
  Attach(8);
  PostLinux(2);
  EXPECT_EQ(Deliver({v[0], v[1]}), 2);
  FreeAll({v[2], v[3]});
  const std::vector<Received> rx = ReapFrames();
  ASSERT_EQ(rx.size(), 2u);
  ExpectFrame(rx[0], f[0]);
  ExpectFrame(rx[1], f[1]);
  const GuestRxStats s = rxq_->stats();
  EXPECT_EQ(s.copies[static_cast<int>(CopyReason::kStaleSession)], 2u);
  EXPECT_EQ(s.zero_copy, 0u);
  const MappedPoolStats ps = pool_->stats();
  EXPECT_EQ(ps.guest_delivered, 0u);
  EXPECT_EQ(ps.guest_orphaned, 4u);
  EXPECT_EQ(ps.guest_parked, 0u);
  EXPECT_TRUE(old->ReapAll().empty()) << "nothing goes back to the ended session";
}

TEST_P(GuestRxQueueTest, CopyReasonShared) {
  Start();
  PostDpdk(3);
  Attach(1);
  std::vector<rte_mbuf*> v = NicRefill(1);
  rte_mbuf* m = v[0];
  ASSERT_NE(G(m), nullptr);
  const uint16_t lent = G(m)->id;
  const std::vector<uint8_t> f = MakeFrame(1, 777);
  NicReceive(m, f);
  rte_mbuf_refcnt_update(m, 1);  // someone else still reads it
  EXPECT_EQ(Deliver({m}), 1);
  EXPECT_EQ(rte_mbuf_refcnt_read(m), 1);
  ASSERT_NE(G(m), nullptr) << "its buffer is still lent, not the guest's";
  const std::vector<Received> rx = ReapFrames();
  ASSERT_EQ(rx.size(), 1u);
  EXPECT_NE(rx[0].bufs[0].id, lent);
  ExpectFrame(rx[0], f);
  EXPECT_EQ(rxq_->stats().copies[static_cast<int>(CopyReason::kShared)], 1u);
  EXPECT_EQ(pool_->stats().guest_delivered, 0u);
  rte_pktmbuf_free(m);
  EXPECT_EQ(pool_->stats().guest_recycled, 1u);
}

TEST_P(GuestRxQueueTest, CopyReasonMultiSegment) {
  Start();
  PostDpdk(3);
  Attach(1);
  std::vector<rte_mbuf*> v = NicRefill(1);
  ASSERT_NE(G(v[0]), nullptr);
  const std::vector<uint8_t> f = MakeFrame(1, 1000);
  NicReceive(v[0], f);
  // The switch appends a trailer in a host mbuf.
  std::vector<uint8_t> trailer(200);
  for (size_t i = 0; i < trailer.size(); ++i) trailer[i] = static_cast<uint8_t>(0xc0 ^ i);
  ASSERT_EQ(rte_pktmbuf_chain(v[0], Foreign(trailer)), 0);
  std::vector<uint8_t> want = f;
  want.insert(want.end(), trailer.begin(), trailer.end());
  EXPECT_EQ(Deliver({v[0]}), 1);
  const std::vector<Received> rx = ReapFrames();
  ASSERT_EQ(rx.size(), 1u);
  ExpectFrame(rx[0], want);
  EXPECT_EQ(rxq_->stats().copies[static_cast<int>(CopyReason::kMultiSegment)], 1u);
  EXPECT_EQ(pool_->stats().guest_recycled, 1u) << "the head's buffer is parked again";
}

TEST_P(GuestRxQueueTest, CopyReasonLayout) {
  Start();
  PostDpdk(3);
  Attach(1);
  std::vector<rte_mbuf*> v = NicRefill(1);
  rte_mbuf* m = v[0];
  const GuestBuffer* g = G(m);
  ASSERT_NE(g, nullptr);
  const std::vector<uint8_t> f = MakeFrame(1, 500);
  // A switch that skipped FixupRx: the mbuf still has headroom, and a VLAN
  // push lands in the header room of the guest buffer, before the frame's
  // place.
  NicReceive(m, f, 0, /*fixup=*/false);
  m->vlan_tci = 0x123;
  ASSERT_EQ(rte_vlan_insert(&m), 0);
  EXPECT_EQ(rte_pktmbuf_mtod(m, uint8_t*), g->addr + kHdr - 4);
  EXPECT_EQ(Deliver({m}), 1);
  const std::vector<Received> rx = ReapFrames();
  ASSERT_EQ(rx.size(), 1u);
  ExpectFrame(rx[0], Tagged(f, 0x123));
  EXPECT_EQ(rxq_->stats().copies[static_cast<int>(CopyReason::kLayout)], 1u);
  EXPECT_EQ(rxq_->stats().zero_copy, 0u);
}

// ---------------------------------------------------------------------------
// Recycling and the copy path's use of parked buffers.

TEST_P(GuestRxQueueTest, DroppedMappedMbufIsPostedAgainNeverReturnedTwice) {
  Start();
  PostDpdk(4);
  Attach(4);
  std::vector<rte_mbuf*> v = NicRefill(4);
  ASSERT_EQ(CountGuest(v), 4);
  std::vector<uint16_t> ids;
  std::vector<std::vector<uint8_t>> a;
  for (uint32_t i = 0; i < 4; ++i) {
    ids.push_back(G(v[i])->id);
    a.push_back(MakeFrame(i, 200 + i));
    NicReceive(v[i], a.back());
  }
  rte_pktmbuf_free(v[1]);  // the switch drops it
  MappedPoolStats ps = pool_->stats();
  EXPECT_EQ(ps.guest_recycled, 1u);
  EXPECT_EQ(ps.guest_parked, 1u);
  EXPECT_EQ(Deliver({v[0], v[2], v[3]}), 3);
  // The next refill posts the parked buffer again, in NIC geometry.
  std::vector<rte_mbuf*> w = NicRefill(1);
  const GuestBuffer* g = G(w[0]);
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(g->id, ids[1]);
  EXPECT_EQ(rte_pktmbuf_mtod(w[0], uint8_t*), g->addr + kHdr);
  EXPECT_EQ(rte_mbuf_data_iova_default(w[0]), g->iova + kHdr);
  EXPECT_EQ(rxq_->stats().lent_to_nic, 4u) << "no new buffer taken from the guest";
  const std::vector<uint8_t> b = MakeFrame(99, 1514);
  NicReceive(w[0], b);
  EXPECT_EQ(Deliver(w), 1);
  const std::vector<Received> rx = ReapFrames();
  ASSERT_EQ(rx.size(), 4u);
  std::map<uint16_t, int> times;
  for (const Received& r : rx) ++times[r.bufs[0].id];
  for (uint16_t id : ids) EXPECT_EQ(times[id], 1) << "id " << id;
  ExpectFrame(rx[0], a[0]);
  ExpectFrame(rx[1], a[2]);
  ExpectFrame(rx[2], a[3]);
  EXPECT_EQ(rx[3].bufs[0].id, ids[1]);
  ExpectFrame(rx[3], b);  // the dropped frame never reaches the guest
  // At the cap with nothing parked: host buffers.
  std::vector<rte_mbuf*> h = NicRefill(8);
  EXPECT_EQ(CountGuest(h), 0);
  FreeAll(h);
}

TEST_P(GuestRxQueueTest, CopyPathTakesParkedBuffersWhenTheRingIsEmpty) {
  Start();
  const std::vector<uint16_t> posted = PostDpdk(8);
  Attach(8);
  std::vector<rte_mbuf*> v = NicRefill(8);
  ASSERT_EQ(CountGuest(v), 8);
  FreeAll(v);
  ASSERT_EQ(pool_->stats().guest_parked, 8u);
  EXPECT_FALSE(rxq_->queue().HasAvailable());
  const std::vector<uint8_t> f[3] = {MakeFrame(1, 64), MakeFrame(2, 700), MakeFrame(3, 1514)};
  EXPECT_EQ(Deliver({Foreign(f[0]), Foreign(f[1]), Foreign(f[2])}), 3);
  MappedPoolStats ps = pool_->stats();
  EXPECT_EQ(ps.guest_taken, 3u);
  EXPECT_EQ(ps.guest_parked, 5u);
  EXPECT_EQ(ps.guest_resident, 5u);
  std::vector<Received> rx = ReapFrames();
  ASSERT_EQ(rx.size(), 3u);
  const std::set<uint16_t> lent(posted.begin(), posted.end());
  std::set<uint16_t> got;
  for (int i = 0; i < 3; ++i) {
    ExpectFrame(rx[i], f[i]);
    EXPECT_TRUE(lent.count(rx[i].bufs[0].id));
    EXPECT_TRUE(got.insert(rx[i].bufs[0].id).second);
  }
  // A frame larger than one buffer: two parked ones when mergeable, else
  // dropped as too big (and its buffer kept for copies, not lost).
  const std::vector<uint8_t> big = MakeFrame(4, 3000);
  EXPECT_EQ(Deliver({FromPool(JumboPool(), big)}), mergeable() ? 1 : 0);
  if (mergeable()) {
    rx = ReapFrames();
    ASSERT_EQ(rx.size(), 1u);
    ExpectFrame(rx[0], big, 2);
    for (const Completion& c : rx[0].bufs) {
      EXPECT_TRUE(lent.count(c.id));
      EXPECT_TRUE(got.insert(c.id).second);
    }
    EXPECT_EQ(pool_->stats().guest_taken, 5u);
  } else {
    EXPECT_EQ(rxq_->stats().drops[static_cast<int>(DropReason::kTooBig)], 1u);
    EXPECT_EQ(pool_->stats().guest_taken, 4u);
  }
  // The buffers the copy path took are no longer the NIC's.
  std::vector<rte_mbuf*> w = NicRefill(8);
  for (rte_mbuf* m : w) {
    if (G(m) != nullptr) {
      EXPECT_FALSE(got.count(G(m)->id)) << G(m)->id;
    }
  }
  FreeAll(w);
}

// ---------------------------------------------------------------------------
// Teardown and reconnect.

TEST_P(GuestRxQueueTest, TeardownReturnsEveryBufferAndAReconnectContinues) {
  Start();
  const std::vector<uint16_t> lent_ids = PostDpdk(40);
  std::vector<uint16_t> small;
  for (int i = 0; i < 4; ++i) small.push_back(*drv_->PostLinuxSmall());  // too small for the NIC
  drv_->Publish();
  Attach(64);
  std::vector<rte_mbuf*> v = NicRefill(48);
  ASSERT_EQ(CountGuest(v), 40);
  EXPECT_EQ(rxq_->stats().unsuitable, 4u);
  EXPECT_EQ(rxq_->stats().lent_to_nic, 40u);
  std::vector<rte_mbuf*> deliver, rest;
  std::vector<std::vector<uint8_t>> f;
  std::set<uint16_t> delivered;
  for (rte_mbuf* m : v) {
    if (G(m) != nullptr && deliver.size() < 8) {
      f.push_back(MakeFrame(static_cast<uint32_t>(f.size()), 1514));
      NicReceive(m, f.back());
      delivered.insert(G(m)->id);
      deliver.push_back(m);
    } else {
      rest.push_back(m);
    }
  }
  EXPECT_EQ(Deliver(deliver), 8);
  std::vector<Received> rx = ReapFrames();
  ASSERT_EQ(rx.size(), 8u);
  for (size_t i = 0; i < rx.size(); ++i) ExpectFrame(rx[i], f[i]);

  // destroy_device: stop lending, drain the NIC (its queue stop frees what
  // it holds), take back what the pool parks, give everything back.
  pool_->Detach();
  FreeAll(rest);
  std::vector<GuestBuffer> back(64);
  const uint16_t parked = pool_->TakeParked(back.data(), 64);
  EXPECT_EQ(parked, 32);
  EXPECT_EQ(rxq_->ReturnUnused(back.data(), parked), 36);
  EXPECT_EQ(rxq_->stats().returned_empty, 36u);
  const std::vector<Completion> cs = drv_->ReapAll();
  ASSERT_EQ(cs.size(), 36u);
  std::set<uint16_t> empty_ids;
  for (const Completion& c : cs) {
    EXPECT_EQ(c.len, 0u);
    EXPECT_TRUE(empty_ids.insert(c.id).second) << "id " << c.id << " returned twice";
  }
  std::set<uint16_t> want(lent_ids.begin(), lent_ids.end());
  for (uint16_t id : delivered) want.erase(id);
  want.insert(small.begin(), small.end());
  EXPECT_EQ(empty_ids, want);
  EXPECT_EQ(drv_->outstanding(), 0u);
  EXPECT_EQ(rxq_->queue().in_flight(), 0);
  const QueueCursors c = rxq_->cursors();
  EXPECT_EQ(c.last_avail_idx, c.last_used_idx);
  EXPECT_EQ(c.last_used_idx, drv_->next_used());
  EXPECT_EQ(c.last_avail_idx, drv_->next_avail());
  EXPECT_EQ(pool_->stats().guest_resident, 0u);

  // A new backend picks up where this one stopped (GET/SET_VRING_BASE).
  fetched_base_ += rxq_->queue().stats().fetched;
  old_queues_.push_back(std::move(rxq_));
  gen_ = 2;
  rxq_ = MakeQueue(drv_.get(), Features(), gen_, c);
  ASSERT_NE(rxq_, nullptr);
  Attach(64);
  PostDpdk(5);
  std::vector<rte_mbuf*> w = NicRefill(4);
  ASSERT_EQ(CountGuest(w), 4);
  f.clear();
  std::vector<rte_mbuf*> burst;
  for (rte_mbuf* m : w) {
    EXPECT_EQ(G(m)->generation, 2);
    f.push_back(MakeFrame(100 + static_cast<uint32_t>(f.size()), 64));
    NicReceive(m, f.back());
    burst.push_back(m);
  }
  f.push_back(MakeFrame(200, 1514));
  burst.push_back(Foreign(f.back()));
  EXPECT_EQ(Deliver(burst), 5);
  rx = ReapFrames();
  ASSERT_EQ(rx.size(), 5u);
  for (size_t i = 0; i < rx.size(); ++i) ExpectFrame(rx[i], f[i]);
  EXPECT_EQ(rxq_->stats().zero_copy, 4u);
  EXPECT_EQ(rxq_->stats().copied, 1u);
}

// ---------------------------------------------------------------------------
// Notifications.

TEST_P(GuestRxQueueTest, NotifyDueFollowsTheDriversInterruptSuppression) {
  Start();
  PostDpdk(4);
  Attach(4);
  std::vector<rte_mbuf*> v = NicRefill(4);
  ASSERT_EQ(CountGuest(v), 4);
  for (uint32_t i = 0; i < 4; ++i) NicReceive(v[i], MakeFrame(i, 100));
  auto suppress = [&](bool off) {
    if (packed()) {
      drv_->packed_driver_event()->flags = off ? virtio::kEventFDisable : virtio::kEventFEnable;
    } else {
      *drv_->split_avail_flags() = off ? virtio::kAvailFNoInterrupt : 0;
    }
    drv_->ResyncShadow();
  };
  EXPECT_FALSE(rxq_->NotifyDue()) << "nothing delivered";
  suppress(true);
  EXPECT_EQ(Deliver({v[0]}), 1);
  EXPECT_FALSE(rxq_->NotifyDue());
  suppress(false);
  EXPECT_EQ(Deliver({v[1]}), 1);
  EXPECT_TRUE(rxq_->NotifyDue());
  EXPECT_FALSE(rxq_->NotifyDue()) << "nothing new since";
  EXPECT_EQ(Deliver({v[2], v[3]}), 2);
  EXPECT_TRUE(rxq_->NotifyDue());
  EXPECT_EQ(ReapFrames().size(), 4u);
}

TEST_P(GuestRxQueueTest, NotifyDueFollowsTheDriversUsedEvent) {
  Start(Bit(virtio::kFEventIdx));
  PostDpdk(5);
  Attach(5);
  std::vector<rte_mbuf*> v = NicRefill(5);
  ASSERT_EQ(CountGuest(v), 5);
  for (uint32_t i = 0; i < 5; ++i) NicReceive(v[i], MakeFrame(i, 100));
  EXPECT_EQ(Deliver({v[0]}), 1);
  EXPECT_TRUE(rxq_->NotifyDue()) << "the first completion is always signalled";
  // The guest asks to be woken when the used entry after the next one is
  // written.
  auto ask_at = [&](uint16_t ahead) {
    const uint16_t u = rxq_->cursors().last_used_idx;
    if (packed()) {
      virtio::PackedEvent* ev = drv_->packed_driver_event();
      ev->off_wrap = static_cast<uint16_t>(((u & 0x7fff) + ahead) | (u & 0x8000));
      ev->flags = virtio::kEventFDesc;
    } else {
      *drv_->split_used_event() = static_cast<uint16_t>(u + ahead);
    }
    drv_->ResyncShadow();
  };
  ask_at(1);
  EXPECT_EQ(Deliver({v[1]}), 1);
  EXPECT_FALSE(rxq_->NotifyDue());
  EXPECT_EQ(Deliver({v[2]}), 1);
  EXPECT_TRUE(rxq_->NotifyDue());
  ask_at(100);  // far ahead: no interrupt for now
  EXPECT_EQ(Deliver({v[3], v[4]}), 2);
  EXPECT_FALSE(rxq_->NotifyDue());
  EXPECT_EQ(ReapFrames().size(), 5u);
}

// ---------------------------------------------------------------------------
// Header length: a legacy guest's 10-byte header with a pool that places
// frames after a 12-byte one.

TEST_P(GuestRxQueueTest, LegacyHeaderGuestNeverGetsBuffersTooShortForTheNic) {
  if (mergeable()) GTEST_SKIP() << "a legacy header is 10 bytes only without mergeable buffers";
  constexpr uint32_t kLegacyHdr = 10;
  StartCustom(packed() ? Bit(virtio::kFRingPacked) : 0, 256, kLegacyHdr);
  ASSERT_EQ(rxq_->hdr_len(), kLegacyHdr);
  ASSERT_EQ(pool_->hdr_len(), kHdr);
  const std::vector<uint16_t> short_ids = PostGeneric(2, kLegacyHdr + kNic);
  PostGeneric(2, kHdr + kNic);
  Attach(8);
  std::vector<rte_mbuf*> v = NicRefill(4);
  std::vector<rte_mbuf*> guest;
  for (rte_mbuf* m : v) {
    if (G(m) == nullptr) {
      rte_pktmbuf_free(m);
      continue;
    }
    // The NIC may write kNic bytes after pool_->hdr_len(): all of it must be
    // inside the guest buffer.
    EXPECT_GE(G(m)->len, pool_->hdr_len() + kNic) << "id " << G(m)->id;
    guest.push_back(m);
  }
  EXPECT_EQ(guest.size(), 2u);
  std::vector<std::vector<uint8_t>> f;
  for (rte_mbuf* m : guest) {
    f.push_back(MakeFrame(static_cast<uint32_t>(f.size()), kNic));  // as much as the NIC writes
    NicReceive(m, f.back());
  }
  f.push_back(MakeFrame(7, 1514));
  guest.push_back(Foreign(f.back()));  // into one of the short buffers, by copy
  EXPECT_EQ(Deliver(guest), 3);
  const std::vector<Received> rx = ReapFrames(nullptr, kLegacyHdr);
  ASSERT_EQ(rx.size(), 3u);
  for (size_t i = 0; i < rx.size(); ++i) ExpectFrame(rx[i], f[i], 0, 0, kLegacyHdr);
  EXPECT_TRUE(std::count(short_ids.begin(), short_ids.end(), rx[2].bufs[0].id));
  EXPECT_EQ(rxq_->stats().zero_copy, 2u);
}

// ---------------------------------------------------------------------------
// Ended sessions and hostile rings: what must never happen to a guest buffer.

TEST_P(GuestRxQueueTest, CopyPathNeverFillsABufferOfAnEndedSession) {
  EndedSessionWithALateFree();
  // Session 2's guest has posted nothing yet. The parked buffer is session
  // 1's: a copy into it would write memory the guest no longer lent, and
  // return an id this ring never posted.
  EXPECT_EQ(Deliver({Foreign(MakeFrame(1, 500))}), 0);
  EXPECT_EQ(rxq_->stats().drops[static_cast<int>(DropReason::kNoBuffer)], 1u);
  EXPECT_EQ(rxq_->stats().copied, 0u);
  const absl::Status s = old_arenas_.back()->CheckCanaries({});
  EXPECT_TRUE(s.ok()) << "the ended session's memory was written: " << s;
  EXPECT_FALSE(drv_->HasUsed());
}

TEST_P(GuestRxQueueTest, LateFreeAfterEndSessionIsOrphaned) {
  EndedSessionWithALateFree(/*end_session=*/true);
  PostDpdk(1);
  const std::vector<uint8_t> f = MakeFrame(1, 500);
  EXPECT_EQ(Deliver({Foreign(f)}), 1);
  const std::vector<Received> rx = ReapFrames();
  ASSERT_EQ(rx.size(), 1u);
  ExpectFrame(rx[0], f);
  const absl::Status s = old_arenas_.back()->CheckCanaries({});
  EXPECT_TRUE(s.ok()) << s;
}

TEST_P(GuestRxQueueTest, ParkedBufferOfAnEndedSessionNeverReachesTheNicAgain) {
  EndedSessionWithALateFree();
  PostDpdk(2);
  const uint64_t orphaned = pool_->stats().guest_orphaned;
  std::vector<rte_mbuf*> w = NicRefill(2);
  EXPECT_EQ(CountGuest(w), 1) << "one buffer of session 2, and a host buffer";
  EXPECT_EQ(pool_->stats().guest_orphaned, orphaned + 1);
  EXPECT_EQ(pool_->stats().guest_parked, 0u);
  for (rte_mbuf* m : w) {
    if (G(m) != nullptr) {
      EXPECT_EQ(G(m)->generation, gen_) << "a buffer of the ended session was posted to the NIC";
    }
  }
  FreeAll(w);
}

// A packed driver that makes a descriptor available again over a slot the
// device took and has not used would have the device hold more buffers than
// the ring has slots (kept_[] is sized to the ring): the queue refuses it
// (ring_overrun) and breaks.
TEST_P(GuestRxQueueTest, PackedRingNeverHoldsMoreBuffersThanSlots) {
  if (!packed()) GTEST_SKIP() << "split rings bound ids by the ring size";
  Start(0, 16);
  PostDpdk(16);
  Attach(64);
  std::vector<rte_mbuf*> v = NicRefill(16);
  ASSERT_EQ(CountGuest(v), 16);
  const uint64_t gpa = arena_.Alloc(4096, 64);
  ASSERT_NE(gpa, 0u);
  virtio::PackedDesc d{};
  d.addr = gpa;
  d.len = kHdr + kNic;
  d.id = 100;
  d.flags = virtio::kDescFWrite;
  drv_->RawPublishPacked(absl::MakeConstSpan(&d, 1));
  std::vector<rte_mbuf*> w = NicRefill(1);
  EXPECT_LE(rxq_->queue().in_flight(), drv_->size());
  FreeAll(v);
  FreeAll(w);
}

// ---------------------------------------------------------------------------
// The NIC thread (refill: TakeBuffers through the pool) against the send
// thread (Enqueue, switch drops, the guest reaping and reposting).

struct NicThreadResult {
  uint32_t frames = 0;
  uint32_t retries = 0;
};

TEST_P(GuestRxQueueTest, TakeBuffersFromTheNicThreadWhileEnqueueRuns) {
  constexpr int kBursts = 3000;
  constexpr unsigned kBurst = 16;
  Start();
  PostDpdk(256);
  Attach(64);
  rte_ring* link = rte_ring_create(absl::StrCat("grq_l", id_).c_str(), 1024, SOCKET_ID_ANY,
                                   RING_F_SP_ENQ | RING_F_SC_DEQ);
  ASSERT_NE(link, nullptr);
  std::atomic<bool> nic_done{false};
  NicThreadResult nic_result;
  MappedPool* pool = pool_.get();
  std::thread nic([&] {
    uint32_t seq = 0;
    for (int it = 0; it < kBursts; ++it) {
      rte_mbuf* b[kBurst];
      MappedPool::NicRefillScope refill(pool);
      while (rte_mempool_get_bulk(pool->mempool(), reinterpret_cast<void**>(b), kBurst) != 0) {
        ++nic_result.retries;
        std::this_thread::yield();
      }
      for (rte_mbuf* m : b) {
        const std::vector<uint8_t> f = MakeFrame(seq, 60 + (seq * 37) % 1455);
        ++seq;
        std::memcpy(rte_pktmbuf_mtod(m, void*), f.data(), f.size());
        m->data_len = static_cast<uint16_t>(f.size());
        m->pkt_len = static_cast<uint32_t>(f.size());
        m->ol_flags = 0;
        pool->FixupRx(m);
      }
      unsigned sent = 0;
      while (sent < kBurst) {
        sent += rte_ring_enqueue_burst(link, reinterpret_cast<void**>(b + sent), kBurst - sent,
                                       nullptr);
        if (sent < kBurst) std::this_thread::yield();
      }
    }
    nic_result.frames = seq;
    nic_done.store(true, std::memory_order_release);
  });

  uint64_t switch_drops = 0, delivered = 0, mapped_delivered = 0;
  std::set<uint32_t> seen;
  int bad = 0;
  auto reap = [&] {
    for (const Received& r : ReapFrames()) {
      const std::optional<uint32_t> seq = ParseFrame(r.frame);
      if (!seq.has_value()) {
        if (++bad < 5) ADD_FAILURE() << "id " << r.bufs[0].id << ": frame corrupted";
        continue;
      }
      if (!seen.insert(*seq).second && ++bad < 5) ADD_FAILURE() << "seq " << *seq << " twice";
      if (r.header != Wire({}, 1, 0) && ++bad < 5) ADD_FAILURE() << "bad header, seq " << *seq;
      if (r.bufs.size() != 1 || r.bufs[0].len != kHdr + r.frame.size()) ++bad;
    }
  };
  for (;;) {
    const bool done = nic_done.load(std::memory_order_acquire);
    rte_mbuf* pkts[32];
    const unsigned n = rte_ring_dequeue_burst(link, reinterpret_cast<void**>(pkts), 32, nullptr);
    if (n == 0 && done) break;
    std::vector<rte_mbuf*> burst;
    for (unsigned i = 0; i < n; ++i) {
      const uint32_t seq = GetBe32(rte_pktmbuf_mtod(pkts[i], uint8_t*) + 14);
      if (seq % 7 == 3) {  // the switch sends these elsewhere
        rte_pktmbuf_free(pkts[i]);
        ++switch_drops;
        continue;
      }
      mapped_delivered += G(pkts[i]) != nullptr;
      burst.push_back(pkts[i]);
    }
    if (!burst.empty()) delivered += Deliver(burst);
    reap();
    bool posted = false;
    while (drv_->outstanding() < drv_->size() && drv_->free_descs() > 0) {
      if (!drv_->PostDpdk().has_value()) break;
      posted = true;
    }
    if (posted) drv_->Publish();
    if (n == 0) std::this_thread::yield();
  }
  nic.join();
  reap();
  rte_ring_free(link);

  const GuestRxStats s = rxq_->stats();
  uint64_t drops = 0;
  for (uint64_t d : s.drops) drops += d;
  EXPECT_EQ(bad, 0);
  EXPECT_EQ(nic_result.frames, uint32_t{kBursts} * kBurst);
  EXPECT_EQ(switch_drops + delivered + drops, nic_result.frames);
  EXPECT_EQ(seen.size(), delivered);
  EXPECT_EQ(s.zero_copy + s.copied, delivered);
  EXPECT_EQ(s.zero_copy, mapped_delivered) << "every mapped frame sent to the guest is in place";
  EXPECT_EQ(pool_->stats().guest_delivered, s.zero_copy);
  EXPECT_GT(s.zero_copy, 0u);
  EXPECT_GT(s.copied, 0u);
  EXPECT_GT(pool_->stats().guest_recycled, 0u);
  EXPECT_GT(s.lent_to_nic, 0u);
}

// --- Rx order probation (split ring, mergeable off: what DPDK's vectorized
// Rx path runs on, which reads used entries by position).

using OrderProbationTest = GuestRxQueueTest;

TEST_P(OrderProbationTest, CopiesEveryFrameInRingOrderAndLendsNothing) {
  probation_ = true;
  Start();
  Attach(64);
  ASSERT_TRUE(rxq_->order_probation());
  const std::vector<uint16_t> ids = PostDpdk(8);
  // The NIC refill gets host buffers only: the guest's are not lent.
  std::vector<rte_mbuf*> nic = NicRefill(3);
  EXPECT_EQ(CountGuest(nic), 0);
  std::vector<std::vector<uint8_t>> frames;
  for (uint32_t i = 0; i < 4; ++i) frames.push_back(MakeFrame(i, 60 + 100 * i));
  for (int i = 0; i < 3; ++i) NicReceive(nic[i], frames[i == 0 ? 0 : i + 1]);
  // NIC frame, foreign frame, NIC frames: completed in the order the guest
  // made its buffers available, whatever the source.
  EXPECT_EQ(Deliver({nic[0], Foreign(frames[1]), nic[1], nic[2]}), 4);
  const std::vector<Completion> cs = drv_->ReapAll();
  ASSERT_EQ(cs.size(), 4u);
  for (size_t i = 0; i < cs.size(); ++i) {
    EXPECT_EQ(cs[i].id, ids[i]) << "completion " << i << " out of ring order";
    ASSERT_EQ(cs[i].len, kHdr + frames[i].size());
    EXPECT_TRUE(SameBytes(absl::MakeConstSpan(cs[i].data).subspan(kHdr), frames[i]));
  }
  const GuestRxStats s = rxq_->stats();
  EXPECT_EQ(s.zero_copy, 0u);
  EXPECT_EQ(s.copies[static_cast<int>(CopyReason::kOrderUnproven)], 3u);
  EXPECT_EQ(s.copies[static_cast<int>(CopyReason::kForeign)], 1u);
  EXPECT_EQ(s.lent_to_nic, 0u);
  EXPECT_EQ(s.order_proven, 0u);
  EXPECT_TRUE(rxq_->order_probation());
}

TEST_P(OrderProbationTest, EndsWhenTheGuestPostsAHeadOutOfIdentityOrder) {
  probation_ = true;
  Start();
  Attach(64);
  PostDpdk(8);  // ids 0..7 in avail slots 0..7: identity, like the vectorized path
  std::vector<rte_mbuf*> v;
  for (uint32_t i = 0; i < 8; ++i) v.push_back(Foreign(MakeFrame(i, 64)));
  EXPECT_EQ(Deliver(v), 8);
  EXPECT_EQ(ReapFrames().size(), 8u);
  EXPECT_TRUE(rxq_->order_probation()) << "identity so far: still on probation";
  // The emulated guest keeps its free descriptors as Linux does (a LIFO):
  // the next buffer's head is 7, in avail slot 8.
  const std::vector<uint16_t> next = PostDpdk(1);
  ASSERT_EQ(next.size(), 1u);
  ASSERT_NE(next[0], 8) << "the emulator posted in identity order; the test needs otherwise";
  EXPECT_EQ(Deliver({Foreign(MakeFrame(8, 64))}), 1);
  EXPECT_EQ(ReapFrames().size(), 1u);
  EXPECT_FALSE(rxq_->order_probation());
  EXPECT_EQ(rxq_->stats().order_proven, 1u);
  // From now on the guest's buffers go to the NIC.
  PostDpdk(4);
  std::vector<rte_mbuf*> nic = NicRefill(4);
  EXPECT_EQ(CountGuest(nic), 4);
  FreeAll(nic);
}

TEST_P(OrderProbationTest, PackedRingsAreNeverOnProbation) {
  probation_ = true;
  // Packed: DPDK's vectorized packed path needs VIRTIO_F_IN_ORDER, which a
  // mapped device never offers; ids are always read.
  drv_ = std::make_unique<VirtioDriver>(&arena_, [&] {
    DriverOptions o = Options(Bit(virtio::kFVersion1) | Bit(virtio::kFRingPacked), 256);
    o.layout = RingLayout::kPacked;
    return o;
  }());
  rxq_ = MakeQueue(drv_.get(), Bit(virtio::kFVersion1) | Bit(virtio::kFRingPacked), gen_);
  ASSERT_NE(rxq_, nullptr);
  EXPECT_FALSE(rxq_->order_probation());
}

INSTANTIATE_TEST_SUITE_P(SplitNoMergeable, OrderProbationTest,
                         ::testing::Values(Variant{RingLayout::kSplit, false}), VariantName);

INSTANTIATE_TEST_SUITE_P(Layouts, GuestRxQueueTest,
                         ::testing::Values(Variant{RingLayout::kSplit, true},
                                           Variant{RingLayout::kSplit, false},
                                           Variant{RingLayout::kPacked, true},
                                           Variant{RingLayout::kPacked, false}),
                         VariantName);

}  // namespace
}  // namespace iovtee
