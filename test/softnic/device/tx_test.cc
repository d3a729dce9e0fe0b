// The Tx path: single and multi-segment frames, faults, frames whose end is
// not posted yet, oversize, the per-call budget, link down, and the stop
// handshake being acknowledged only between bursts.
#include <cstring>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "test/softnic/device/device_rig.h"

namespace iovtee::softnic::testing {
namespace {

using simnic::kErrIommuFault;
using simnic::kErrTooBig;
using simnic::kTxDone;
using simnic::kTxError;
using Frames = std::vector<std::vector<uint8_t>>;

class TxTest : public ::testing::Test {
 protected:
  void SetUp() override { Init({}); }
  void Init(RigOptions o) {
    o.device.log = false;
    auto rig = Rig::Create(o);
    ASSERT_TRUE(rig.ok()) << rig.status();
    rig_ = std::move(*rig);
    for (uint32_t q = 0; q < o.driver.num_txq; ++q) driver().StartTx(q);
  }
  FakeDriver& driver() { return *rig_->driver; }
  Device& device() { return *rig_->device; }

  // Writes `f` at DMA offset `off` and returns its IOVA.
  uint64_t Put(size_t off, const std::vector<uint8_t>& f) {
    memcpy(rig_->host(off), f.data(), f.size());
    return rig_->iova(off);
  }

  std::vector<std::vector<uint8_t>> Drain() {
    std::vector<std::vector<uint8_t>> out;
    device().Transmit([&](const TxFrame& t) { out.emplace_back(t.data, t.data + t.len); });
    return out;
  }

  std::unique_ptr<Rig> rig_;
};

std::vector<uint8_t> Udp(uint32_t len, uint32_t seed) {
  FrameSpec s;
  s.len = len;
  s.payload_seed = seed;
  return BuildFrame(s);
}

TEST_F(TxTest, SingleSegmentFramesAreDeliveredInOrder) {
  std::vector<std::vector<uint8_t>> sent;
  for (uint32_t i = 0; i < 10; ++i) {
    sent.push_back(Udp(60 + i * 100, i));
    ASSERT_TRUE(driver().PostTx(0, Put(i * 2048, sent.back()), sent.back().size(), true));
  }
  EXPECT_EQ(Drain(), sent);
  std::vector<TxCompletion> done = driver().ReapTx(0);
  ASSERT_EQ(done.size(), 10u);
  for (const TxCompletion& c : done) EXPECT_EQ(c.status, kTxDone);
  DeviceStats st = device().Stats();
  EXPECT_EQ(st.tx[0].packets, 10u);
  EXPECT_EQ(st.tx_gathered, 0u);  // nothing was copied
  EXPECT_EQ(driver().regs()->tx_counters[0].packets, 10u);
  EXPECT_EQ(driver().regs()->txq[0].head, 10u);
}

TEST_F(TxTest, MultiSegmentFrameIsGatheredFromSeveralMappings) {
  auto other = DmaArea::Create(4096);
  ASSERT_TRUE(other.ok());
  const uint64_t other_iova = 0x90000000;
  ASSERT_EQ(driver().Map(other_iova, 4096, (*other)->fd(), 0), 0);
  std::vector<uint8_t> f = Udp(1500, 3);
  memcpy(rig_->host(0), f.data(), 100);
  memcpy((*other)->data() + 10, f.data() + 100, 900);
  memcpy(rig_->host(8000), f.data() + 1000, 500);
  ASSERT_TRUE(driver().PostTx(0, rig_->iova(0), 100, false));
  ASSERT_TRUE(driver().PostTx(0, other_iova + 10, 900, false));
  ASSERT_TRUE(driver().PostTx(0, 0, 0, false));  // an empty segment is skipped
  ASSERT_TRUE(driver().PostTx(0, rig_->iova(8000), 500, true));
  std::vector<std::vector<uint8_t>> got = Drain();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], f);
  std::vector<TxCompletion> done = driver().ReapTx(0);
  ASSERT_EQ(done.size(), 4u);
  for (const TxCompletion& c : done) EXPECT_EQ(c.status, kTxDone);
  DeviceStats st = device().Stats();
  EXPECT_EQ(st.tx[0].bytes, 1500u);
  EXPECT_EQ(st.tx_gathered, 1u);
}

TEST_F(TxTest, FaultInAnySegmentDropsTheFrameAndMarksAllItsDescriptors) {
  std::vector<uint8_t> f = Udp(200, 1);
  ASSERT_TRUE(driver().PostTx(0, Put(0, f), 100, false));
  ASSERT_TRUE(driver().PostTx(0, 0x7000000, 100, true));  // unmapped
  std::vector<uint8_t> g = Udp(64, 2);
  ASSERT_TRUE(driver().PostTx(0, Put(4096, g), 64, true));
  EXPECT_EQ(Drain(), Frames{g});
  std::vector<TxCompletion> done = driver().ReapTx(0);
  ASSERT_EQ(done.size(), 3u);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(done[i].status, kTxDone | kTxError) << i;
    EXPECT_EQ(done[i].error, kErrIommuFault) << i;
  }
  EXPECT_EQ(done[2].status, kTxDone);
  DeviceStats st = device().Stats();
  EXPECT_EQ(st.device.iommu_faults, 1u);
  EXPECT_EQ(st.device.last_fault_iova, 0x7000000u);
  EXPECT_EQ(st.tx[0].errors, 1u);
  EXPECT_EQ(st.tx[0].packets, 1u);
}

TEST_F(TxTest, SegmentStraddlingTheMappingEndFaults) {
  ASSERT_TRUE(driver().PostTx(0, rig_->iova(rig_->dma->len() - 10), 60, true));
  EXPECT_TRUE(Drain().empty());
  std::vector<TxCompletion> done = driver().ReapTx(0);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].error, kErrIommuFault);
}

TEST_F(TxTest, FrameWaitsUntilItsEndIsPosted) {
  std::vector<uint8_t> f = Udp(300, 4);
  Put(0, f);
  ASSERT_TRUE(driver().PostTx(0, rig_->iova(0), 150, false));
  EXPECT_TRUE(Drain().empty());
  EXPECT_TRUE(driver().ReapTx(0).empty());  // not even completed
  ASSERT_TRUE(driver().PostTx(0, rig_->iova(150), 150, true));
  EXPECT_EQ(Drain(), Frames{f});
  EXPECT_EQ(driver().ReapTx(0).size(), 2u);
}

TEST_F(TxTest, OversizeFrameIsNotDelivered) {
  // Seven 1400-byte segments: 9800 bytes, more than kMaxFrame.
  for (int i = 0; i < 7; ++i) ASSERT_TRUE(driver().PostTx(0, rig_->iova(i * 1400), 1400, i == 6));
  EXPECT_TRUE(Drain().empty());
  std::vector<TxCompletion> done = driver().ReapTx(0);
  ASSERT_EQ(done.size(), 7u);
  for (const TxCompletion& c : done) EXPECT_EQ(c.error, kErrTooBig);
  EXPECT_EQ(device().Stats().tx[0].errors, 1u);
}

TEST_F(TxTest, BudgetBoundsOneCallAndQueuesAreDrainedInTurn) {
  RigOptions o;
  o.driver.num_txq = 2;
  o.device.tx_burst = 4;
  Init(o);
  std::vector<uint8_t> f = Udp(64, 5);
  uint64_t iova = Put(0, f);
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(driver().PostTx(0, iova, 64, true));
    ASSERT_TRUE(driver().PostTx(1, iova, 64, true));
  }
  std::vector<int> per_queue(2);
  auto count = [&](const TxFrame& t) { ++per_queue[t.queue]; };
  EXPECT_EQ(device().Transmit(count), 8u);
  EXPECT_EQ(per_queue, (std::vector<int>{4, 4}));
  EXPECT_EQ(device().Transmit(count), 8u);
  EXPECT_EQ(device().Transmit(count), 4u);
  EXPECT_EQ(device().Transmit(count), 0u);
}

TEST_F(TxTest, LinkDownCompletesWithoutDelivering) {
  std::vector<uint8_t> f = Udp(64, 6);
  ASSERT_TRUE(driver().PostTx(0, Put(0, f), 64, true));
  driver().SetLink(false);
  EXPECT_TRUE(Drain().empty());
  std::vector<TxCompletion> done = driver().ReapTx(0);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].status, kTxDone);
  EXPECT_EQ(device().Stats().tx_link_down, 1u);
}

TEST_F(TxTest, StopIsAckedOnlyAfterTheBurst) {
  std::vector<uint8_t> f = Udp(64, 7);
  uint64_t iova = Put(0, f);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(driver().PostTx(0, iova, 64, true));
  int seen = 0;
  device().Transmit([&](const TxFrame& t) {
    if (++seen != 1) return;
    // Mid-burst: the driver stops the queue and the device is polled (and
    // loops a frame back) from inside the consumer. No ack may happen yet.
    __atomic_store_n(&driver().regs()->txq[0].enabled, 0u, __ATOMIC_SEQ_CST);
    EXPECT_EQ(device().PollControl(), 0);
    Frame back{t.data, t.len};
    device().Receive(absl::MakeConstSpan(&back, 1));
    EXPECT_FALSE(driver().TxStopAcked(0));
  });
  EXPECT_EQ(seen, 3);  // the burst in progress completes
  EXPECT_FALSE(driver().TxStopAcked(0));
  device().PollControl();
  EXPECT_TRUE(driver().TxStopAcked(0));
  // After the ack nothing more is taken from the ring.
  ASSERT_TRUE(driver().PostTx(0, iova, 64, true));
  EXPECT_TRUE(Drain().empty());
}

TEST_F(TxTest, LoopbackFromTheConsumerIntoRx) {
  driver().ConfigureRx(0, 2048);
  driver().StartRx(0);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(driver().PostRx(0, rig_->iova(65536 + i * 2048)));
  std::vector<uint8_t> f = Udp(128, 8);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(driver().PostTx(0, Put(i * 2048, f), 128, true));
  device().Transmit([&](const TxFrame& t) {
    Frame back{t.data, t.len};
    device().Receive(absl::MakeConstSpan(&back, 1));
  });
  std::vector<RxCompletion> rx = driver().ReapRx(0);
  ASSERT_EQ(rx.size(), 4u);
  for (const RxCompletion& c : rx) {
    EXPECT_EQ(memcmp(rig_->host(c.addr - Rig::kIova), f.data(), f.size()), 0);
  }
  EXPECT_EQ(driver().regs()->txq[0].head, 4u);
}

TEST_F(TxTest, TxQueueRestartBeginsAtDescriptorZero) {
  std::vector<uint8_t> f = Udp(64, 9);
  uint64_t iova = Put(0, f);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(driver().PostTx(0, iova, 64, true));
  EXPECT_EQ(Drain().size(), 5u);
  ASSERT_TRUE(driver().StopTx(0));
  driver().StartTx(0);
  ASSERT_TRUE(driver().PostTx(0, iova, 64, true));
  EXPECT_EQ(Drain().size(), 1u);
  std::vector<TxCompletion> done = driver().ReapTx(0);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].index, 0u);
}

}  // namespace
}  // namespace iovtee::softnic::testing
