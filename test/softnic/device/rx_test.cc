// The Rx path against a fake driver: frames land exactly at the descriptor's
// address and never beyond its buffer, faults write nothing, scatter, oversize,
// missed, link down, VLAN strip, the accept policy and the queue handshake.
#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "test/softnic/device/device_rig.h"

namespace iovtee::softnic::testing {
namespace {

using simnic::kErrIommuFault;
using simnic::kErrTooBig;
using simnic::kRxDone;
using simnic::kRxEop;
using simnic::kRxError;
using simnic::kRxVlanStripped;

constexpr uint8_t kCanary = 0xa5;
using Frames = std::vector<std::vector<uint8_t>>;

class RxTest : public ::testing::Test {
 protected:
  void SetUp() override { Init({}); }

  void Init(RigOptions options) {
    options.device.log = false;
    auto rig = Rig::Create(options);
    ASSERT_TRUE(rig.ok()) << rig.status();
    rig_ = std::move(*rig);
    memset(rig_->dma->data(), kCanary, rig_->dma->len());
  }

  FakeDriver& driver() { return *rig_->driver; }
  Device& device() { return *rig_->device; }

  size_t Receive(const std::vector<std::vector<uint8_t>>& frames) {
    std::vector<Frame> f;
    for (const auto& v : frames) f.push_back(Frame{v.data(), static_cast<uint32_t>(v.size())});
    return device().Receive(absl::MakeConstSpan(f));
  }
  size_t Receive(const std::vector<uint8_t>& frame) {
    return Receive(std::vector<std::vector<uint8_t>>{frame});
  }

  // Bytes of the DMA area outside [keep_off, keep_off + keep_len) (list) that
  // no longer hold the canary.
  size_t Touched(const std::vector<std::pair<size_t, size_t>>& keep) {
    std::vector<uint8_t> snap(rig_->dma->data(), rig_->dma->data() + rig_->dma->len());
    for (auto [off, len] : keep) memset(snap.data() + off, kCanary, len);
    std::vector<uint8_t> canary(snap.size(), kCanary);
    if (snap == canary) return 0;
    size_t n = 0;
    for (uint8_t b : snap) n += b != kCanary;
    return n;
  }

  std::unique_ptr<Rig> rig_;
};

std::vector<uint8_t> Udp(uint32_t len, uint32_t seed = 0) {
  FrameSpec s;
  s.len = len;
  s.payload_seed = seed;
  return BuildFrame(s);
}

TEST_F(RxTest, FramesLandExactlyAtDescriptorAddress) {
  driver().ConfigureRx(0, 2048);
  driver().StartRx(0);
  std::vector<std::vector<uint8_t>> frames;
  std::vector<std::pair<size_t, size_t>> written;
  for (uint32_t i = 0; i < 8; ++i) {
    // Intel-style: the driver posts buf_iova + 128 (its headroom) as addr.
    size_t off = i * 4096 + simnic::kHeadroom;
    ASSERT_TRUE(driver().PostRx(0, rig_->iova(off)));
    frames.push_back(Udp(60 + i * 250, i));
    written.push_back({off, frames.back().size()});
  }
  EXPECT_EQ(Receive(frames), 8u);
  std::vector<RxCompletion> done = driver().ReapRx(0);
  ASSERT_EQ(done.size(), 8u);
  for (uint32_t i = 0; i < 8; ++i) {
    EXPECT_EQ(done[i].status, kRxDone | kRxEop) << i;
    EXPECT_EQ(done[i].pkt_len, frames[i].size());
    EXPECT_EQ(done[i].error, 0);
    EXPECT_EQ(memcmp(rig_->host(written[i].first), frames[i].data(), frames[i].size()), 0) << i;
  }
  EXPECT_EQ(Touched(written), 0u);
  DeviceStats st = device().Stats();
  EXPECT_EQ(st.rx[0].packets, 8u);
  uint64_t bytes = 0;
  for (auto& f : frames) bytes += f.size();
  EXPECT_EQ(st.rx[0].bytes, bytes);
  // The register page carries the same counters and the head.
  EXPECT_EQ(driver().regs()->rx_counters[0].packets, 8u);
  EXPECT_EQ(driver().regs()->rx_counters[0].bytes, bytes);
  EXPECT_EQ(driver().regs()->rxq[0].head, 8u);
}

TEST_F(RxTest, IntelStyleBufLenBoundsEveryWrite) {
  driver().ConfigureRx(0, 256);  // scatter off
  driver().StartRx(0);
  // Descriptors claim nothing about size: the queue's buf_len rules.
  ASSERT_TRUE(driver().PostRx(0, rig_->iova(0), 100000));
  ASSERT_TRUE(driver().PostRx(0, rig_->iova(4096)));
  std::vector<uint8_t> big = Udp(257), fits = Udp(256, 1);
  EXPECT_EQ(Receive(Frames{big, fits}), 1u);
  std::vector<RxCompletion> done = driver().ReapRx(0);
  ASSERT_EQ(done.size(), 2u);
  EXPECT_EQ(done[0].status, kRxDone | kRxEop | kRxError);
  EXPECT_EQ(done[0].error, kErrTooBig);
  EXPECT_EQ(done[0].pkt_len, 0);
  EXPECT_EQ(done[1].status, kRxDone | kRxEop);
  EXPECT_EQ(memcmp(rig_->host(4096), fits.data(), 256), 0);
  EXPECT_EQ(Touched({{4096, 256}}), 0u);
  DeviceStats st = device().Stats();
  EXPECT_EQ(st.device.rx_oversize, 1u);
  EXPECT_EQ(st.rx[0].errors, 1u);
  EXPECT_EQ(driver().regs()->device.rx_oversize, 1u);
}

TEST_F(RxTest, PerDescriptorLengthBoundsEveryWrite) {
  driver().ConfigureRx(0, 0, /*per_desc_len=*/true);
  driver().StartRx(0);
  ASSERT_TRUE(driver().PostRx(0, rig_->iova(0), 99));
  ASSERT_TRUE(driver().PostRx(0, rig_->iova(4096), 100));
  std::vector<uint8_t> f = Udp(100);
  EXPECT_EQ(Receive(Frames{f, f}), 1u);
  std::vector<RxCompletion> done = driver().ReapRx(0);
  ASSERT_EQ(done.size(), 2u);
  EXPECT_EQ(done[0].error, kErrTooBig);
  EXPECT_EQ(done[1].pkt_len, 100);
  EXPECT_EQ(Touched({{4096, 100}}), 0u);
}

TEST_F(RxTest, BufferAtTheEndOfAMappingMeetsTheGuardPage) {
  // The last 256 bytes of the area: a PROT_NONE page follows in the driver's
  // view and in the device's. Exactly 256 bytes fit; a buffer that claims
  // more than the mapping holds faults instead of touching the guard.
  driver().ConfigureRx(0, 0, /*per_desc_len=*/true);
  driver().StartRx(0);
  size_t end = rig_->dma->len();
  ASSERT_TRUE(driver().PostRx(0, rig_->iova(end - 256), 256));
  ASSERT_TRUE(driver().PostRx(0, rig_->iova(end - 256), 4096));
  std::vector<uint8_t> fits = Udp(256), over = Udp(300, 1);
  EXPECT_EQ(Receive(Frames{fits, over}), 1u);
  std::vector<RxCompletion> done = driver().ReapRx(0);
  ASSERT_EQ(done.size(), 2u);
  EXPECT_EQ(done[0].status, kRxDone | kRxEop);
  EXPECT_EQ(done[1].status, kRxDone | kRxEop | kRxError);
  EXPECT_EQ(done[1].error, kErrIommuFault);
  EXPECT_EQ(memcmp(rig_->host(end - 256), fits.data(), 256), 0);
  EXPECT_EQ(device().Stats().device.iommu_faults, 1u);
}

TEST_F(RxTest, MappingLengthIsExactNotPageRounded) {
  // A second mapping of 4096 - 100 bytes: the device maps whole pages but
  // must honour the length to the byte.
  auto area = DmaArea::Create(4096);
  ASSERT_TRUE(area.ok());
  memset((*area)->data(), kCanary, 4096);
  const uint64_t iova = 0x90000000;
  ASSERT_EQ(driver().Map(iova, 4096 - 100, (*area)->fd(), 0), 0);
  driver().ConfigureRx(0, 2048);
  driver().StartRx(0);
  ASSERT_TRUE(driver().PostRx(0, iova + 3900));  // 96 bytes left in the mapping
  ASSERT_TRUE(driver().PostRx(0, iova + 3900));
  std::vector<uint8_t> over = Udp(97), fits = Udp(96);
  Receive(Frames{over, fits});
  std::vector<RxCompletion> done = driver().ReapRx(0);
  ASSERT_EQ(done.size(), 2u);
  EXPECT_EQ(done[0].error, kErrIommuFault);
  EXPECT_EQ(done[1].status, kRxDone | kRxEop);
  EXPECT_EQ(memcmp((*area)->data() + 3900, fits.data(), 96), 0);
  EXPECT_EQ((*area)->data()[3996], kCanary);
}

TEST_F(RxTest, UnmappedIovaFaultsAndWritesNothing) {
  driver().ConfigureRx(0, 2048);
  driver().StartRx(0);
  const uint64_t bad = 0x7000000;
  ASSERT_TRUE(driver().PostRx(0, bad));
  // Straddles the end of the mapping: also a fault, though half is mapped.
  ASSERT_TRUE(driver().PostRx(0, rig_->iova(rig_->dma->len() - 30)));
  ASSERT_TRUE(driver().PostRx(0, rig_->iova(0)));
  std::vector<uint8_t> f = Udp(60);
  EXPECT_EQ(Receive(Frames{f, f, f}), 1u);
  std::vector<RxCompletion> done = driver().ReapRx(0);
  ASSERT_EQ(done.size(), 3u);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(done[i].status, kRxDone | kRxEop | kRxError) << i;
    EXPECT_EQ(done[i].error, kErrIommuFault) << i;
    EXPECT_EQ(done[i].pkt_len, 0) << i;
  }
  EXPECT_EQ(done[2].status, kRxDone | kRxEop);
  EXPECT_EQ(Touched({{0, 60}}), 0u);
  DeviceStats st = device().Stats();
  EXPECT_EQ(st.device.iommu_faults, 2u);
  EXPECT_EQ(st.device.last_fault_iova, rig_->iova(rig_->dma->len() - 30));
  EXPECT_EQ(st.rx[0].errors, 2u);
  EXPECT_EQ(st.rx[0].packets, 1u);
  EXPECT_EQ(driver().regs()->device.iommu_faults, 2u);
}

TEST_F(RxTest, AddressAdjacentMappingsAreNotContiguous) {
  auto area = DmaArea::Create(8192);
  ASSERT_TRUE(area.ok());
  const uint64_t iova = 0x90000000;
  ASSERT_EQ(driver().Map(iova, 4096, (*area)->fd(), 0), 0);
  ASSERT_EQ(driver().Map(iova + 4096, 4096, (*area)->fd(), 4096), 0);
  driver().ConfigureRx(0, 2048);
  driver().StartRx(0);
  ASSERT_TRUE(driver().PostRx(0, iova + 4096 - 50));
  Receive(Udp(100));
  std::vector<RxCompletion> done = driver().ReapRx(0);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].error, kErrIommuFault);
}

TEST_F(RxTest, UnmapTakesEffectBeforeItsAck) {
  auto area = DmaArea::Create(8192);
  ASSERT_TRUE(area.ok());
  const uint64_t iova = 0x90000000;
  ASSERT_EQ(driver().Map(iova, 8192, (*area)->fd(), 0), 0);
  driver().ConfigureRx(0, 2048);
  driver().StartRx(0);
  ASSERT_TRUE(driver().PostRx(0, iova));
  std::vector<uint8_t> f = Udp(64);
  EXPECT_EQ(Receive(f), 1u);
  EXPECT_EQ(memcmp((*area)->data(), f.data(), 64), 0);
  EXPECT_EQ(device().Stats().mappings, 2u);

  ASSERT_EQ(driver().Unmap(iova, 8192), 0);
  EXPECT_EQ(device().Stats().mappings, 1u);
  memset((*area)->data(), kCanary, 8192);
  ASSERT_TRUE(driver().PostRx(0, iova));
  EXPECT_EQ(Receive(f), 0u);
  std::vector<RxCompletion> done = driver().ReapRx(0);
  ASSERT_EQ(done.size(), 2u);
  EXPECT_EQ(done[1].error, kErrIommuFault);
  for (int i = 0; i < 8192; ++i) ASSERT_EQ((*area)->data()[i], kCanary) << i;
}

// The device runs in its own thread, writing into buffers of a second area
// as fast as the driver reposts them; the driver unmaps the area while that
// goes on. Once the ack is in, nothing may change in the area again.
TEST_F(RxTest, UnmapUnderTrafficStopsDmaAtTheAck) {
  auto area = DmaArea::Create(64 * 2048);
  ASSERT_TRUE(area.ok());
  const uint64_t iova = 0x90000000;
  ASSERT_EQ(driver().Map(iova, (*area)->len(), (*area)->fd(), 0), 0);
  driver().ConfigureRx(0, 2048);
  driver().StartRx(0);
  driver().set_pump(nullptr);  // acks now come from the device thread

  std::atomic<bool> stop{false};
  std::thread dev([&] {
    std::vector<uint8_t> f = Udp(1000);
    Frame frames[8];
    for (auto& fr : frames) fr = Frame{f.data(), 1000};
    while (!stop.load()) {
      device().PollControl();
      device().Receive(absl::MakeConstSpan(frames));
    }
  });
  // Reaps and reposts until `want` completions of the given kind arrived (or
  // 5 s passed: the machine may be busy); returns {written, faulted}.
  auto repost = [&](uint64_t want, bool count_faults) {
    uint64_t written = 0, faulted = 0;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while ((count_faults ? faulted : written) < want &&
           std::chrono::steady_clock::now() < deadline) {
      for (const RxCompletion& c : driver().ReapRx(0)) {
        ++((c.status & kRxError) ? faulted : written);
      }
      uint32_t i = 0;
      while (driver().PostRx(0, iova + (i++ % 64) * 2048)) {
      }
      std::this_thread::yield();
    }
    return std::pair{written, faulted};
  };
  EXPECT_GE(repost(500, false).first, 500u);
  ASSERT_EQ(driver().Unmap(iova, (*area)->len()), 0);
  // Completions already in the ring were written before the ack.
  driver().ReapRx(0);
  memset((*area)->data(), kCanary, (*area)->len());
  auto [written, faulted] = repost(500, true);
  EXPECT_EQ(written, 0u);
  EXPECT_GE(faulted, 500u);
  stop = true;
  dev.join();
  for (size_t i = 0; i < (*area)->len(); ++i) ASSERT_EQ((*area)->data()[i], kCanary) << i;
  EXPECT_GT(device().Stats().device.iommu_faults, 0u);
}

TEST_F(RxTest, ScatterSplitsAtBufLenWithEopOnTheLast) {
  driver().ConfigureRx(0, 512, false, /*scatter=*/true);
  driver().StartRx(0);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(driver().PostRx(0, rig_->iova(i * 4096)));
  std::vector<uint8_t> f = Udp(1500);
  EXPECT_EQ(Receive(f), 1u);
  std::vector<RxCompletion> done = driver().ReapRx(0);
  ASSERT_EQ(done.size(), 3u);
  const uint16_t lens[] = {512, 512, 476};
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(done[i].pkt_len, lens[i]);
    EXPECT_EQ(done[i].status, kRxDone | (i == 2 ? kRxEop : 0)) << i;
    EXPECT_EQ(memcmp(rig_->host(i * 4096), f.data() + i * 512, lens[i]), 0) << i;
  }
  EXPECT_EQ(Touched({{0, 512}, {4096, 512}, {8192, 476}}), 0u);
  EXPECT_EQ(device().Stats().rx[0].packets, 1u);
}

TEST_F(RxTest, ScatterWithPerDescriptorLengths) {
  driver().ConfigureRx(0, 0, /*per_desc_len=*/true, /*scatter=*/true);
  driver().StartRx(0);
  ASSERT_TRUE(driver().PostRx(0, rig_->iova(0), 100));
  ASSERT_TRUE(driver().PostRx(0, rig_->iova(4096), 1000));
  ASSERT_TRUE(driver().PostRx(0, rig_->iova(8192), 2000));
  std::vector<uint8_t> f = Udp(1500);
  EXPECT_EQ(Receive(f), 1u);
  std::vector<RxCompletion> done = driver().ReapRx(0);
  ASSERT_EQ(done.size(), 3u);
  EXPECT_EQ(done[0].pkt_len, 100);
  EXPECT_EQ(done[1].pkt_len, 1000);
  EXPECT_EQ(done[2].pkt_len, 400);
  EXPECT_EQ(done[2].status, kRxDone | kRxEop);
  EXPECT_EQ(memcmp(rig_->host(8192), f.data() + 1100, 400), 0);
  EXPECT_EQ(Touched({{0, 100}, {4096, 1000}, {8192, 400}}), 0u);
}

TEST_F(RxTest, ScatterWithTooFewDescriptorsIsMissedAndConsumesNone) {
  driver().ConfigureRx(0, 512, false, true);
  driver().StartRx(0);
  ASSERT_TRUE(driver().PostRx(0, rig_->iova(0)));
  ASSERT_TRUE(driver().PostRx(0, rig_->iova(4096)));
  std::vector<uint8_t> f = Udp(1500);
  EXPECT_EQ(Receive(f), 0u);
  EXPECT_TRUE(driver().ReapRx(0).empty());
  EXPECT_EQ(device().Stats().rx[0].missed, 1u);
  EXPECT_EQ(Touched({}), 0u);
  ASSERT_TRUE(driver().PostRx(0, rig_->iova(8192)));
  EXPECT_EQ(Receive(f), 1u);
  EXPECT_EQ(driver().ReapRx(0).size(), 3u);
}

TEST_F(RxTest, ScatterFaultWritesNoPieceAndConsumesUpToTheFault) {
  driver().ConfigureRx(0, 512, false, true);
  driver().StartRx(0);
  ASSERT_TRUE(driver().PostRx(0, rig_->iova(0)));
  ASSERT_TRUE(driver().PostRx(0, 0x7000000));  // unmapped
  ASSERT_TRUE(driver().PostRx(0, rig_->iova(8192)));
  EXPECT_EQ(Receive(Udp(1500)), 0u);
  std::vector<RxCompletion> done = driver().ReapRx(0);
  ASSERT_EQ(done.size(), 2u);
  for (const RxCompletion& c : done) {
    EXPECT_EQ(c.status, kRxDone | kRxEop | kRxError);
    EXPECT_EQ(c.error, kErrIommuFault);
  }
  EXPECT_EQ(Touched({}), 0u);
  EXPECT_EQ(device().Stats().rx[0].errors, 1u);
  // The third descriptor is still posted and takes the next frame.
  std::vector<uint8_t> small = Udp(200);
  EXPECT_EQ(Receive(small), 1u);
  done = driver().ReapRx(0);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].addr, rig_->iova(8192));
}

TEST_F(RxTest, MissedWhenNoDescriptorIsPosted) {
  driver().ConfigureRx(0, 2048);
  driver().StartRx(0);
  ASSERT_TRUE(driver().PostRx(0, rig_->iova(0)));
  ASSERT_TRUE(driver().PostRx(0, rig_->iova(4096)));
  std::vector<uint8_t> f = Udp(64);
  EXPECT_EQ(Receive(Frames(5, f)), 2u);
  EXPECT_EQ(device().Stats().rx[0].missed, 3u);
  EXPECT_EQ(driver().regs()->rx_counters[0].missed, 3u);
  // Posting later picks up where the device left off.
  ASSERT_TRUE(driver().PostRx(0, rig_->iova(8192)));
  EXPECT_EQ(Receive(f), 1u);
  EXPECT_EQ(driver().ReapRx(0).size(), 3u);
}

TEST_F(RxTest, LinkDownDropsAndCounts) {
  driver().ConfigureRx(0, 2048);
  driver().StartRx(0);
  ASSERT_TRUE(driver().PostRx(0, rig_->iova(0)));
  driver().SetLink(false);
  EXPECT_EQ(Receive(std::vector(3, Udp(64))), 0u);
  EXPECT_EQ(device().Stats().device.rx_link_down, 3u);
  EXPECT_EQ(driver().regs()->device.rx_link_down, 3u);
  EXPECT_TRUE(driver().ReapRx(0).empty());
  driver().SetLink(true);
  EXPECT_EQ(Receive(Udp(64)), 1u);
}

TEST_F(RxTest, VlanStripMovesTheTagIntoTheDescriptor) {
  driver().ConfigureRx(0, 2048, false, false, /*vlan_strip=*/true);
  driver().StartRx(0);
  ASSERT_TRUE(driver().PostRx(0, rig_->iova(0)));
  ASSERT_TRUE(driver().PostRx(0, rig_->iova(4096)));
  FrameSpec s;
  s.vlan_tci = 0x2064;  // PCP 1, VID 100
  s.len = 100;
  std::vector<uint8_t> tagged = BuildFrame(s);
  std::vector<uint8_t> untagged = Udp(100);
  EXPECT_EQ(Receive(Frames{tagged, untagged}), 2u);
  std::vector<RxCompletion> done = driver().ReapRx(0);
  ASSERT_EQ(done.size(), 2u);
  EXPECT_EQ(done[0].status, kRxDone | kRxEop | kRxVlanStripped);
  EXPECT_EQ(done[0].vlan_tci, 0x2064);
  EXPECT_EQ(done[0].pkt_len, 96);
  std::vector<uint8_t> stripped(tagged.begin(), tagged.begin() + 12);
  stripped.insert(stripped.end(), tagged.begin() + 16, tagged.end());
  EXPECT_EQ(memcmp(rig_->host(0), stripped.data(), 96), 0);
  EXPECT_EQ(done[1].status, kRxDone | kRxEop);
  EXPECT_EQ(done[1].pkt_len, 100);
  EXPECT_EQ(Touched({{0, 96}, {4096, 100}}), 0u);
}

TEST_F(RxTest, VlanStripAcrossTinyScatterBuffers) {
  // 10-byte buffers: the stripped tag's gap falls inside the second piece.
  driver().ConfigureRx(0, 10, false, true, true);
  driver().StartRx(0);
  for (int i = 0; i < 16; ++i) ASSERT_TRUE(driver().PostRx(0, rig_->iova(i * 64)));
  FrameSpec s;
  s.vlan_tci = 7;
  s.len = 64;
  std::vector<uint8_t> tagged = BuildFrame(s);
  EXPECT_EQ(Receive(tagged), 1u);
  std::vector<RxCompletion> done = driver().ReapRx(0);
  ASSERT_EQ(done.size(), 6u);
  std::vector<uint8_t> got;
  for (const RxCompletion& c : done) {
    got.insert(got.end(), rig_->host(c.addr - Rig::kIova),
               rig_->host(c.addr - Rig::kIova) + c.pkt_len);
  }
  std::vector<uint8_t> stripped(tagged.begin(), tagged.begin() + 12);
  stripped.insert(stripped.end(), tagged.begin() + 16, tagged.end());
  EXPECT_EQ(got, stripped);
  EXPECT_EQ(done.back().status, kRxDone | kRxEop | kRxVlanStripped);
}

TEST_F(RxTest, AcceptPolicy) {
  driver().ConfigureRx(0, 2048);
  driver().StartRx(0);
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(driver().PostRx(0, rig_->iova(i * 4096)));
  FrameSpec other;
  other.dst[5] = 0x99;  // unicast, not the port's MAC
  FrameSpec bcast;
  memset(bcast.dst, 0xff, 6);
  FrameSpec mcast;
  const uint8_t m[6] = {0x01, 0x00, 0x5e, 0, 0, 1};
  memcpy(mcast.dst, m, 6);
  std::vector<uint8_t> runt(13, 0);
  EXPECT_EQ(Receive(Frames{BuildFrame(other), BuildFrame(bcast), BuildFrame(mcast),
                           BuildFrame(FrameSpec{}), runt}),
            3u);
  DeviceStats st = device().Stats();
  EXPECT_EQ(st.rx_filtered, 1u);
  EXPECT_EQ(st.rx_runt, 1u);
  driver().SetPromiscuous(true);
  EXPECT_EQ(Receive(BuildFrame(other)), 1u);
}

TEST_F(RxTest, FramesForADisabledOrMissingQueueAreCountedNoQueue) {
  RigOptions o;
  o.driver.num_rxq = 2;
  Init(o);
  driver().ConfigureRx(0, 2048);
  driver().StartRx(0);
  ASSERT_TRUE(driver().PostRx(0, rig_->iova(0)));
  simnic::FlowRule r = {};
  const uint8_t mac[6] = {0x02, 0, 0, 0, 0, 0x01};
  memcpy(r.dst_mac, mac, 6);
  r.valid = 1;
  r.queue = 1;
  driver().SetFlowRules({r});
  EXPECT_EQ(Receive(Udp(64)), 0u);
  r.queue = 5;  // beyond num_rxq
  driver().SetFlowRules({r});
  EXPECT_EQ(Receive(Udp(64)), 0u);
  EXPECT_EQ(device().Stats().device.rx_no_queue, 2u);
  EXPECT_EQ(driver().regs()->device.rx_no_queue, 2u);
}

TEST_F(RxTest, BadRingConfigurationIsRefused) {
  driver().ConfigureRx(0, 2048);
  driver().regs()->rxq[0].ring_size = 3;
  driver().StartRx(0);
  EXPECT_EQ(Receive(Udp(64)), 0u);
  DeviceStats st = device().Stats();
  EXPECT_EQ(st.ring_errors, 1u);
  EXPECT_EQ(st.device.rx_no_queue, 1u);
  // A new start with a good ring works.
  driver().regs()->rxq[0].ring_size = driver().ring_size();
  ASSERT_TRUE(driver().StopRx(0));
  driver().StartRx(0);
  ASSERT_TRUE(driver().PostRx(0, rig_->iova(0)));
  EXPECT_EQ(Receive(Udp(64)), 1u);
}

TEST_F(RxTest, StopIsAckedBetweenBurstsAndNothingIsWrittenAfter) {
  driver().ConfigureRx(0, 2048);
  driver().StartRx(0);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(driver().PostRx(0, rig_->iova(i * 4096)));
  std::vector<uint8_t> f = Udp(64);
  EXPECT_EQ(Receive(f), 1u);
  driver().DisableRx(0);
  EXPECT_FALSE(driver().RxStopAcked(0));  // the device has not looked yet
  EXPECT_EQ(Receive(f), 0u);              // the next burst acks first, then drops
  EXPECT_TRUE(driver().RxStopAcked(0));
  EXPECT_EQ(device().Stats().device.rx_no_queue, 1u);
  EXPECT_EQ(Touched({{0, 64}}), 0u);

  // Restart: the ring is zeroed and the device starts again at descriptor 0.
  driver().StartRx(0);
  ASSERT_TRUE(driver().PostRx(0, rig_->iova(8 * 4096)));
  EXPECT_EQ(Receive(f), 1u);
  std::vector<RxCompletion> done = driver().ReapRx(0);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].index, 0u);
  EXPECT_EQ(driver().regs()->rxq[0].head, 1u);
}

// The driver bumps the generation before it sets enabled: a device looking in
// between acknowledges the new generation as stopped. That acknowledgement
// must be withdrawn before the device uses the queue, or a stop right after
// the start would be "acknowledged" while the device works on the queue.
TEST_F(RxTest, StaleAckFromTheStartWindowIsWithdrawn) {
  driver().ConfigureRx(0, 2048);
  simnic::QueueRegs& r = driver().regs()->rxq[0];
  __atomic_store_n(&r.generation, r.generation + 1, __ATOMIC_RELEASE);  // start, first half
  device().PollControl();
  EXPECT_EQ(r.stopped_generation, r.generation);       // acked in the window
  __atomic_store_n(&r.enabled, 1u, __ATOMIC_RELEASE);  // start, second half
  ASSERT_TRUE(driver().PostRx(0, rig_->iova(0)));
  EXPECT_EQ(Receive(Udp(64)), 1u);
  EXPECT_NE(r.stopped_generation, r.generation);  // withdrawn before the DMA
  driver().DisableRx(0);
  EXPECT_FALSE(driver().RxStopAcked(0));
  device().PollControl();
  EXPECT_TRUE(driver().RxStopAcked(0));
}

TEST_F(RxTest, PollControlAcksAStopWithoutTraffic) {
  driver().ConfigureRx(0, 2048);
  driver().StartRx(0);
  EXPECT_TRUE(driver().StopRx(0));  // pumps PollControl
}

// Stop and restart while the device thread receives bursts: after each ack
// the ring and the buffers must stay exactly as they were.
TEST_F(RxTest, StopUnderTrafficFreezesRingAndBuffers) {
  driver().set_pump(nullptr);
  driver().ConfigureRx(0, 2048);
  std::atomic<bool> stop{false};
  std::thread dev([&] {
    std::vector<uint8_t> f = Udp(512);
    Frame frames[32];
    for (auto& fr : frames) fr = Frame{f.data(), 512};
    while (!stop.load()) {
      device().PollControl();
      device().Receive(absl::MakeConstSpan(frames));
    }
  });
  const size_t ring_bytes = simnic::RingBytes(driver().ring_size());
  uint8_t* ring = reinterpret_cast<uint8_t*>(driver().regs()) + driver().regs()->rxq[0].ring_offset;
  for (int round = 0; round < 12; ++round) {
    driver().StartRx(0);
    // Traffic until some frames arrived, then a varying number of extra
    // rounds so the stop lands at different points of a burst.
    uint64_t done = 0;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    for (int spin = 0; done < 64 || spin < round * 5; ++spin) {
      if (std::chrono::steady_clock::now() > deadline) break;
      done += driver().ReapRx(0).size();
      uint32_t i = 0;
      while (driver().PostRx(0, rig_->iova((i++ % 128) * 4096))) {
      }
      std::this_thread::yield();
    }
    ASSERT_TRUE(driver().StopRx(0)) << round;
    std::vector<uint8_t> ring_copy(ring, ring + ring_bytes);
    std::vector<uint8_t> dma_copy(rig_->dma->data(), rig_->dma->data() + 128 * 4096);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    ASSERT_EQ(memcmp(ring_copy.data(), ring, ring_bytes), 0) << round;
    ASSERT_EQ(memcmp(dma_copy.data(), rig_->dma->data(), dma_copy.size()), 0) << round;
    EXPECT_GT(done, 0u) << round;
  }
  stop = true;
  dev.join();
}

}  // namespace
}  // namespace iovtee::softnic::testing
