#include "test/softnic/peer/guest_canary.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "test/common/eal.h"

namespace iovtee::softnic {
namespace {

constexpr uint16_t kDataRoom = RTE_MBUF_DEFAULT_BUF_SIZE;

class CanaryPoolTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ASSERT_TRUE(test::StartEal().ok()); }

  void SetUp() override {
    static int n = 0;
    auto p =
        CanaryPool::Create("canary_test_" + std::to_string(n++), 63, 0, kDataRoom, SOCKET_ID_ANY);
    ASSERT_TRUE(p.ok()) << p.status();
    pool_ = std::move(*p);
    m_ = rte_pktmbuf_alloc(pool_->pool());
    ASSERT_NE(m_, nullptr);
  }

  void TearDown() override {
    if (m_ != nullptr) rte_pktmbuf_free(m_);
  }

  uint8_t* buf() const { return static_cast<uint8_t*>(m_->buf_addr); }
  // What DPDK's virtio PMD posts for this mbuf (virtqueue_enqueue_recv_refill
  // and the packed/vectorized refills alike).
  uint64_t posted_start() const { return RTE_PKTMBUF_HEADROOM - CanaryPool::kNetHdrBytes; }
  uint64_t posted_len() const {
    return m_->buf_len - RTE_PKTMBUF_HEADROOM + CanaryPool::kNetHdrBytes;
  }

  std::unique_ptr<CanaryPool> pool_;
  rte_mbuf* m_ = nullptr;
};

TEST_F(CanaryPoolTest, BufferIsShortenedByTheTail) {
  EXPECT_EQ(m_->buf_len, kDataRoom);
  EXPECT_EQ(rte_pktmbuf_data_room_size(pool_->pool()), kDataRoom + CanaryPool::kTailBytes);
  EXPECT_EQ(rte_pktmbuf_headroom(m_), RTE_PKTMBUF_HEADROOM);
}

TEST_F(CanaryPoolTest, WritesInsideThePostedAreaAreFine) {
  // The whole posted area, header included, as a device filling it would.
  std::memset(buf() + posted_start(), 0xee, posted_len());
  EXPECT_EQ(pool_->Check(m_), 0u);
  const CanaryCounts c = pool_->counts();
  EXPECT_EQ(c.checked, 1u);
  EXPECT_EQ(c.violations, 0u);
}

TEST_F(CanaryPoolTest, EveryByteOutsideIsCaughtOnce) {
  std::vector<uint64_t> outside = {0, 1, posted_start() - 1};
  const uint64_t end = posted_start() + posted_len();
  for (uint64_t i = 0; i < CanaryPool::kTailBytes; i += 9) outside.push_back(end + i);
  outside.push_back(end + CanaryPool::kTailBytes - 1);
  uint64_t expected = 0;
  for (uint64_t off : outside) {
    buf()[off] ^= 0x01;
    EXPECT_EQ(pool_->Check(m_), 1u) << "byte " << off;
    ++expected;
    EXPECT_EQ(pool_->counts().violations, expected);
    // Re-armed: the same damage is not counted again.
    EXPECT_EQ(pool_->Check(m_), 0u) << "byte " << off;
  }
  EXPECT_EQ(pool_->counts().first_offset, 0u);
}

TEST_F(CanaryPoolTest, FirstOffsetNamesTheTailByte) {
  CanaryPool::CorruptTail(m_);
  EXPECT_EQ(pool_->Check(m_), 1u);
  EXPECT_EQ(pool_->counts().first_offset, m_->buf_len);
}

TEST_F(CanaryPoolTest, ChecksEverySegment) {
  rte_mbuf* tail = rte_pktmbuf_alloc(pool_->pool());
  ASSERT_NE(tail, nullptr);
  ASSERT_EQ(rte_pktmbuf_chain(m_, tail), 0);
  CanaryPool::CorruptTail(tail);
  EXPECT_EQ(pool_->Check(m_), 1u);
  EXPECT_EQ(pool_->counts().checked, 2u);
}

TEST_F(CanaryPoolTest, PoolCheckAtExitFindsDamageInFreedBuffers) {
  buf()[3] = static_cast<uint8_t>(~buf()[3]);
  rte_pktmbuf_free(m_);
  m_ = nullptr;
  EXPECT_EQ(pool_->CheckPool(), 1u);
  const CanaryCounts c = pool_->counts();
  EXPECT_EQ(c.pool_checked, 63u);
  EXPECT_TRUE(c.pool_check_done);
  EXPECT_EQ(c.violations, 1u);
  EXPECT_EQ(pool_->CheckPool(), 0u);
}

TEST(CanaryPoolCreateTest, RejectsDataRoomsOutOfRange) {
  ASSERT_TRUE(test::StartEal().ok());
  EXPECT_FALSE(CanaryPool::Create("canary_small", 15, 0, RTE_PKTMBUF_HEADROOM, SOCKET_ID_ANY).ok());
  EXPECT_FALSE(CanaryPool::Create("canary_big", 15, 0, UINT16_MAX, SOCKET_ID_ANY).ok());
}

}  // namespace
}  // namespace iovtee::softnic
