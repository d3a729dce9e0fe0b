// The mapped mempool against real DPDK mempool calls: what a NIC driver's
// refill (rte_mempool_get_bulk) and an mbuf free (rte_pktmbuf_free) see, with
// guest buffers from a DeviceQueue over the driver emulator's guest memory.
#include "src/pool/mapped_pool.h"

#include <rte_mbuf.h>
#include <rte_mempool.h>

#include <memory>
#include <set>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "src/virtio/device_queue.h"
#include "test/common/eal.h"
#include "test/virtio/driver_emulator.h"

namespace iovtee {
namespace {

using virtio::DescChain;
using virtio::DeviceQueue;
using virtio::testing::DriverOptions;
using virtio::testing::GuestArena;
using virtio::testing::VirtioDriver;

constexpr uint16_t kNicBuffer = 1536;
constexpr uint16_t kHdr = 12;

// Lends guest buffers straight from a DeviceQueue: every chain the driver
// posted, as long as it is one segment big enough for the NIC.
class QueueSource final : public GuestBufferSource {
 public:
  QueueSource(DeviceQueue* q, uint16_t generation) : q_(q), generation_(generation) {}
  uint16_t TakeBuffers(GuestBuffer* out, uint16_t n) override {
    ++calls;
    asked += n;
    DescChain chains[64];
    const uint16_t got = q_->Fetch(absl::MakeSpan(chains, n < 64 ? n : 64));
    uint16_t k = 0;
    for (uint16_t i = 0; i < got; ++i) {
      const DescChain& c = chains[i];
      if (c.nsegs != 1 || c.len < kHdr + kNicBuffer) {
        ++unsuitable;
        continue;
      }
      out[k++] = GuestBuffer{c.segs[0].host, reinterpret_cast<rte_iova_t>(c.segs[0].host), c.len,
                             c.id, generation_};
    }
    return k;
  }
  int calls = 0;
  int asked = 0;
  int unsuitable = 0;

 private:
  DeviceQueue* q_;
  uint16_t generation_;
};

class MappedPoolTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ASSERT_TRUE(test::StartEal().ok()); }

  void SetUp() override {
    static int n = 0;
    MappedPoolConfig c;
    c.name = "mp_test_" + std::to_string(n++);
    c.size = 512;
    c.nic_buffer_size = kNicBuffer;
    auto p = MappedPool::Create(c);
    ASSERT_TRUE(p.ok()) << p.status();
    pool_ = std::move(*p);
    DriverOptions o;
    o.size = 256;
    drv_ = std::make_unique<VirtioDriver>(&arena_, o);
    auto q = DeviceQueue::Create(drv_->device_config(), &arena_.memory());
    ASSERT_TRUE(q.ok()) << q.status();
    q_ = std::move(*q);
    source_ = std::make_unique<QueueSource>(q_.get(), 1);
  }

  void TearDown() override {
    if (pool_) {
      EXPECT_EQ(rte_mempool_avail_count(pool_->mempool()), 512u) << "mbufs leaked";
    }
  }

  // Posts `n` guest buffers of `len` bytes each (one descriptor).
  void PostGuest(int n, uint32_t len = kHdr + kNicBuffer) {
    for (int i = 0; i < n; ++i) ASSERT_TRUE(drv_->Post(std::vector<uint32_t>{len}).has_value());
    drv_->Publish();
  }

  std::vector<rte_mbuf*> Get(unsigned n) {
    std::vector<rte_mbuf*> v(n);
    MappedPool::NicRefillScope refill(pool_.get());
    EXPECT_EQ(rte_mempool_get_bulk(pool_->mempool(), reinterpret_cast<void**>(v.data()), n), 0);
    return v;
  }
  void FreeAll(const std::vector<rte_mbuf*>& v) {
    for (rte_mbuf* m : v) rte_pktmbuf_free(m);
  }
  int CountGuest(const std::vector<rte_mbuf*>& v) {
    int g = 0;
    for (rte_mbuf* m : v) g += pool_->GuestBufferOf(m) != nullptr;
    return g;
  }

  GuestArena arena_;
  std::unique_ptr<VirtioDriver> drv_;
  std::unique_ptr<DeviceQueue> q_;
  std::unique_ptr<QueueSource> source_;
  std::unique_ptr<MappedPool> pool_;
};

TEST_F(MappedPoolTest, IsAnOrdinaryPktmbufPoolWithoutAGuest) {
  rte_mempool* mp = pool_->mempool();
  EXPECT_EQ(mp->cache_size, 0u) << "per-lcore caches would strand guest buffers";
  EXPECT_EQ(rte_pktmbuf_data_room_size(mp), RTE_PKTMBUF_HEADROOM + kNicBuffer);
  EXPECT_EQ(rte_mempool_avail_count(mp), 512u);
  std::vector<rte_mbuf*> v = Get(32);
  EXPECT_EQ(CountGuest(v), 0);
  for (rte_mbuf* m : v) {
    EXPECT_EQ(m->pool, mp);
    EXPECT_EQ(m->buf_len, RTE_PKTMBUF_HEADROOM + kNicBuffer);
  }
  EXPECT_EQ(pool_->stats().host_posted, 32u);
  FreeAll(v);
  rte_mbuf* m = rte_pktmbuf_alloc(mp);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(rte_pktmbuf_headroom(m), RTE_PKTMBUF_HEADROOM);
  rte_pktmbuf_free(m);
}

TEST_F(MappedPoolTest, LendsGuestBuffersWhereTheNicWillWriteAfterTheHeader) {
  PostGuest(16);
  pool_->Attach(source_.get(), 1, 64);
  std::vector<rte_mbuf*> v = Get(32);
  EXPECT_EQ(CountGuest(v), 16);
  std::set<uint16_t> ids;
  for (rte_mbuf* m : v) {
    const GuestBuffer* g = pool_->GuestBufferOf(m);
    if (g == nullptr) continue;
    EXPECT_TRUE(ids.insert(g->id).second) << "guest buffer lent twice";
    // What an Intel PMD posts: rte_mbuf_data_iova_default(m).
    EXPECT_EQ(rte_mbuf_data_iova_default(m), g->iova + kHdr);
    EXPECT_EQ(rte_pktmbuf_mtod(m, uint8_t*), g->addr + kHdr);
    // The NIC may write nic_buffer_size bytes: all inside the guest buffer.
    EXPECT_LE(g->addr + kHdr + kNicBuffer, g->addr + g->len);
  }
  const MappedPoolStats s = pool_->stats();
  EXPECT_EQ(s.guest_posted, 16u);
  EXPECT_EQ(s.host_posted, 16u);
  EXPECT_EQ(s.guest_resident, 16u);
  FreeAll(v);
  // Freed undelivered: parked, still the pool's, not the guest's.
  EXPECT_EQ(pool_->stats().guest_parked, 16u);
  EXPECT_EQ(pool_->stats().guest_resident, 16u);
  GuestBuffer back[64];
  EXPECT_EQ(pool_->TakeParked(back, 64), 16);
  EXPECT_EQ(pool_->stats().guest_resident, 0u);
}

TEST_F(MappedPoolTest, SkipsBuffersTooSmallForTheNic) {
  PostGuest(4, kHdr + kNicBuffer - 1);
  PostGuest(4);
  pool_->Attach(source_.get(), 1, 64);
  std::vector<rte_mbuf*> v = Get(32);
  EXPECT_EQ(CountGuest(v), 4);
  EXPECT_EQ(source_->unsuitable, 4);
  FreeAll(v);
  GuestBuffer back[64];
  pool_->TakeParked(back, 64);
}

TEST_F(MappedPoolTest, ResidencyCapBoundsGuestBuffersAndParkedOnesComeFirst) {
  PostGuest(64);
  pool_->Attach(source_.get(), 1, 8);
  std::vector<rte_mbuf*> v = Get(32);
  EXPECT_EQ(CountGuest(v), 8);
  EXPECT_EQ(q_->in_flight(), 8) << "only what the cap allows is taken from the guest";
  FreeAll(v);
  const int asked_before = source_->asked;
  v = Get(32);
  EXPECT_EQ(CountGuest(v), 8) << "the 8 parked buffers are posted again";
  EXPECT_EQ(source_->asked, asked_before) << "at the cap, the guest is not asked";
  EXPECT_EQ(pool_->stats().guest_resident, 8u);
  EXPECT_EQ(pool_->stats().guest_recycled, 8u);
  FreeAll(v);
  GuestBuffer back[64];
  EXPECT_EQ(pool_->TakeParked(back, 64), 8);
}

TEST_F(MappedPoolTest, FixupRxRemovesHeadroomSoNothingCanPrependOutsideTheBuffer) {
  PostGuest(1);
  pool_->Attach(source_.get(), 1, 8);
  std::vector<rte_mbuf*> v = Get(1);
  rte_mbuf* m = v[0];
  const GuestBuffer* g = pool_->GuestBufferOf(m);
  ASSERT_NE(g, nullptr);
  // The "NIC" writes a 60-byte frame and the PMD sets the lengths.
  std::memset(rte_pktmbuf_mtod(m, void*), 0xab, 60);
  m->data_len = m->pkt_len = 60;
  pool_->FixupRx(m);
  EXPECT_EQ(rte_pktmbuf_headroom(m), 0);
  EXPECT_EQ(rte_pktmbuf_mtod(m, uint8_t*), g->addr + kHdr);
  EXPECT_EQ(rte_pktmbuf_mtod(m, uint8_t*)[59], 0xab);
  EXPECT_EQ(rte_pktmbuf_prepend(m, 4), nullptr)
      << "a VLAN push must fail, not write before the buffer";
  EXPECT_EQ(m->buf_len, g->len - kHdr);
  EXPECT_EQ(rte_pktmbuf_tailroom(m), g->len - kHdr - 60);
  rte_pktmbuf_free(m);
  // Parked again with the NIC geometry restored.
  v = Get(1);
  ASSERT_NE(pool_->GuestBufferOf(v[0]), nullptr);
  EXPECT_EQ(rte_pktmbuf_mtod(v[0], uint8_t*), g->addr + kHdr);
  EXPECT_EQ(rte_mbuf_data_iova_default(v[0]), g->iova + kHdr);
  FreeAll(v);
  GuestBuffer back[8];
  pool_->TakeParked(back, 8);
}

// net_pcap's jumbo path: a chained segment's whole headroom prepended (the
// data now starts before the guest buffer) before the CPU copy. The test
// moves the data pointer only; the pool must see it, cut the mbuf at its
// data, count it, and lend no guest buffer to this queue again, parked ones
// included.
TEST_F(MappedPoolTest, DataMovedIntoTheHeadroomStopsLending) {
  PostGuest(8);
  pool_->Attach(source_.get(), 1, 8);
  std::vector<rte_mbuf*> v = Get(2);
  ASSERT_EQ(CountGuest(v), 2);
  rte_mbuf* m = v[1];
  const GuestBuffer* g = pool_->GuestBufferOf(m);
  ASSERT_NE(g, nullptr);
  const uint16_t headroom = rte_pktmbuf_headroom(m);
  ASSERT_GT(headroom, kHdr);
  uint8_t* data = reinterpret_cast<uint8_t*>(rte_pktmbuf_prepend(m, headroom));
  ASSERT_NE(data, nullptr);
  ASSERT_LT(data, g->addr) << "the prepend reaches before the guest buffer";
  m->data_len = m->pkt_len = 0;
  pool_->FixupRx(m);
  EXPECT_EQ(pool_->stats().nic_wrote_outside, 1u);
  EXPECT_TRUE(pool_->lending_disabled());
  EXPECT_EQ(rte_pktmbuf_mtod(m, uint8_t*), data);
  EXPECT_EQ(rte_pktmbuf_headroom(m), 0) << "nothing can prepend further";
  EXPECT_EQ(rte_pktmbuf_prepend(m, 1), nullptr);
  EXPECT_EQ(m->buf_len, static_cast<uint16_t>(g->addr + g->len - data));
  // The other, well-behaved mbuf still gets the normal fixup.
  pool_->FixupRx(v[0]);
  EXPECT_EQ(rte_pktmbuf_mtod(v[0], uint8_t*), pool_->GuestBufferOf(v[0])->addr + kHdr);
  FreeAll(v);
  EXPECT_EQ(pool_->stats().guest_parked, 2u);
  // No guest buffer for the NIC any more: neither parked nor new ones.
  const int asked = source_->asked;
  v = Get(16);
  EXPECT_EQ(CountGuest(v), 0);
  EXPECT_EQ(source_->asked, asked);
  FreeAll(v);
  GuestBuffer back[8];
  EXPECT_EQ(pool_->TakeParked(back, 8), 2) << "the teardown still gets the parked ones";
}

TEST_F(MappedPoolTest, DeliveredBuffersAreNotRecycled) {
  PostGuest(4);
  pool_->Attach(source_.get(), 1, 8);
  std::vector<rte_mbuf*> v = Get(4);
  ASSERT_EQ(CountGuest(v), 4);
  // Completed in place: the datapath frees them through FreeDelivered.
  const GuestBuffer* gs[4];
  for (int i = 0; i < 4; ++i) gs[i] = pool_->GuestBufferOf(v[i]);
  void* host_before = v[0]->buf_addr;
  pool_->FreeDelivered(v.data(), gs, 4);
  EXPECT_EQ(rte_mempool_avail_count(pool_->mempool()), 512u) << "all mbufs back";
  const MappedPoolStats s = pool_->stats();
  EXPECT_EQ(s.guest_delivered, 4u);
  EXPECT_EQ(s.guest_parked, 0u);
  EXPECT_EQ(s.guest_resident, 0u);
  v = Get(4);
  EXPECT_EQ(CountGuest(v), 0);
  for (rte_mbuf* m : v) EXPECT_NE(m->buf_addr, host_before);
  FreeAll(v);
}

TEST_F(MappedPoolTest, BuffersOfAnEndedSessionAreOrphanedNotParked) {
  PostGuest(4);
  pool_->Attach(source_.get(), 1, 8);
  std::vector<rte_mbuf*> v = Get(4);
  ASSERT_EQ(CountGuest(v), 4);
  pool_->Detach();
  QueueSource next(q_.get(), 2);
  pool_->Attach(&next, 2, 8);
  FreeAll(v);
  EXPECT_EQ(pool_->stats().guest_orphaned, 4u);
  EXPECT_EQ(pool_->stats().guest_parked, 0u);
  EXPECT_EQ(pool_->stats().guest_resident, 0u);
}

TEST_F(MappedPoolTest, DetachedPoolStillParksTheSessionsBuffersForTeardown) {
  PostGuest(4);
  pool_->Attach(source_.get(), 1, 8);
  std::vector<rte_mbuf*> v = Get(8);
  pool_->Detach();  // as at destroy_device, before the NIC queue is drained
  FreeAll(v);       // the drain
  GuestBuffer back[8];
  EXPECT_EQ(pool_->TakeParked(back, 8), 4);
  std::set<uint16_t> ids;
  for (int i = 0; i < 4; ++i) ids.insert(back[i].id);
  EXPECT_EQ(ids.size(), 4u);
  v = Get(8);
  EXPECT_EQ(CountGuest(v), 0) << "detached: no new guest buffers";
  FreeAll(v);
}

TEST_F(MappedPoolTest, DequeueIsAllOrNothing) {
  PostGuest(8);
  pool_->Attach(source_.get(), 1, 8);
  std::vector<rte_mbuf*> v = Get(8);
  FreeAll(v);                              // 8 parked, 504 host
  std::vector<rte_mbuf*> most = Get(500);  // 8 parked + 492 host
  std::vector<rte_mbuf*> none(20);
  {
    MappedPool::NicRefillScope refill(pool_.get());
    EXPECT_NE(rte_mempool_get_bulk(pool_->mempool(), reinterpret_cast<void**>(none.data()), 20), 0);
  }
  EXPECT_EQ(rte_mempool_avail_count(pool_->mempool()), 12u);
  FreeAll(most);
  EXPECT_EQ(pool_->stats().guest_parked, 8u) << "a failed dequeue loses no parked buffer";
  GuestBuffer back[8];
  pool_->TakeParked(back, 8);
}

TEST_F(MappedPoolTest, FreesFromManyThreads) {
  PostGuest(128);
  pool_->Attach(source_.get(), 1, 128);
  std::vector<rte_mbuf*> v = Get(256);
  ASSERT_EQ(CountGuest(v), 128);
  std::vector<rte_mbuf*> a(v.begin(), v.begin() + 128), b(v.begin() + 128, v.end());
  std::thread t1([&] { FreeAll(a); });
  std::thread t2([&] { FreeAll(b); });
  t1.join();
  t2.join();
  EXPECT_EQ(pool_->stats().guest_parked, 128u);
  EXPECT_EQ(rte_mempool_avail_count(pool_->mempool()), 512u);
  GuestBuffer back[128];
  EXPECT_EQ(pool_->TakeParked(back, 128), 128);
}

TEST_F(MappedPoolTest, OnlyTheNicRefillGetsGuestBuffers) {
  PostGuest(8);
  pool_->Attach(source_.get(), 1, 8);
  std::vector<rte_mbuf*> v = Get(4);  // NIC refill: guest buffers
  EXPECT_EQ(CountGuest(v), 4);
  FreeAll(v);  // 4 parked
  // Anyone else (an alloc, a clone for flooding, a queue start) gets host
  // buffers, parked ones included.
  std::vector<rte_mbuf*> other(8);
  ASSERT_EQ(rte_mempool_get_bulk(pool_->mempool(), reinterpret_cast<void**>(other.data()), 8), 0);
  EXPECT_EQ(CountGuest(other), 0);
  rte_mbuf* m = rte_pktmbuf_alloc(pool_->mempool());
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(pool_->GuestBufferOf(m), nullptr);
  EXPECT_EQ(rte_pktmbuf_headroom(m), RTE_PKTMBUF_HEADROOM);
  rte_pktmbuf_free(m);
  FreeAll(other);
  EXPECT_EQ(pool_->stats().guest_parked, 4u);
  EXPECT_EQ(source_->calls, 1) << "the guest is asked only by the NIC refill";
  GuestBuffer back[8];
  EXPECT_EQ(pool_->TakeParked(back, 8), 4);
}

TEST_F(MappedPoolTest, IndirectHeaderFromThePoolHasItsOwnEntry) {
  // A switch may take indirect headers from the port's pool to clone a host
  // frame; the clone copies the original's dynamic fields, index hint
  // included, and must still be recognised as its own object. (Mapped
  // mbufs themselves must never be cloned or attached: DPDK finds an
  // indirect mbuf's owner from the data address, which is guest memory.)
  rte_mempool* host =
      rte_pktmbuf_pool_create("mp_clone_src", 63, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
  ASSERT_NE(host, nullptr);
  PostGuest(4);
  pool_->Attach(source_.get(), 1, 8);
  std::vector<rte_mbuf*> v = Get(1);
  ASSERT_NE(pool_->GuestBufferOf(v[0]), nullptr);
  rte_mbuf* original = rte_pktmbuf_alloc(host);
  ASSERT_NE(original, nullptr);
  // Make the original's index hint name the lent mbuf's entry.
  const uint32_t hint =
      *RTE_MBUF_DYNFIELD(v[0], rte_mbuf_dynfield_lookup("iovtee_pool_index", nullptr), uint32_t*);
  *RTE_MBUF_DYNFIELD(original, rte_mbuf_dynfield_lookup("iovtee_pool_index", nullptr), uint32_t*) =
      hint;
  rte_mbuf* c = rte_pktmbuf_clone(original, pool_->mempool());
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(pool_->GuestBufferOf(c), nullptr) << "the clone took the lent mbuf's entry";
  rte_pktmbuf_free(c);
  rte_pktmbuf_free(original);
  EXPECT_NE(pool_->GuestBufferOf(v[0]), nullptr) << "freeing the clone touched another entry";
  FreeAll(v);
  EXPECT_EQ(pool_->stats().guest_parked, 1u);
  GuestBuffer back[8];
  EXPECT_EQ(pool_->TakeParked(back, 8), 1);
  rte_mempool_free(host);
}

TEST(MappedPoolCreateTest, RejectsBadConfigs) {
  ASSERT_TRUE(test::StartEal().ok());
  MappedPoolConfig c;
  c.name = "bad";
  c.size = 8;
  c.nic_buffer_size = kNicBuffer;
  EXPECT_FALSE(MappedPool::Create(c).ok());
  c.size = 512;
  c.nic_buffer_size = 10;
  EXPECT_FALSE(MappedPool::Create(c).ok());
}

}  // namespace
}  // namespace iovtee
