// The net_simnic PMD against the soft NIC device (on a thread of this
// process; the two share memory only through the register memfd and the fds
// sent over the device's socket). Probe and close, the Rx and Tx paths, DMA
// bounds, external memory mapping and unmapping, queue stop/start buffer
// accounting, steering, RSS, statistics.
#include <arpa/inet.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <rte_bus_vdev.h>
#include <rte_ethdev.h>
#include <rte_flow.h>
#include <rte_mbuf.h>
#include <rte_memory.h>
#include <rte_thash.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/common/eal.h"
#include "test/softnic/pmd/pmd_test_util.h"
#include "test/softnic/traffic/checker.h"
#include "test/softnic/traffic/generator.h"
#include "test/softnic/traffic/test_frame.h"
#include "test/softnic/traffic/tsc.h"

namespace iovtee::simnic::test {
namespace {

using ::testing::HasSubstr;

constexpr uint16_t kRoom = RTE_MBUF_DEFAULT_DATAROOM + RTE_PKTMBUF_HEADROOM;  // 2048 + 128
constexpr uint8_t kCanary = 0xa5;

bool MapsMention(const std::string& what) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    if (line.find(what) != std::string::npos) return true;
  }
  return false;
}

// Waits until `cond` holds or `timeout_ms` passes.
template <typename F>
bool WaitFor(F cond, int timeout_ms = 5000) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!cond()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

class SimnicTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    iovtee::test::EalOptions options;
    options.memory_mb = 512;
    ASSERT_TRUE(iovtee::test::StartEal(options).ok());
  }

  void SetUp() override {
    static int counter = 0;
    name_ = "net_simnic_t" + std::to_string(counter++);
    socket_ = SocketDir() + "/" + name_ + ".sock";
    auto device = DeviceThread::Start(name_, socket_);
    ASSERT_TRUE(device.ok()) << device.status();
    device_ = std::move(*device);
  }

  void TearDown() override {
    if (probed_) {
      EXPECT_TRUE(RemovePort(name_).ok());
    }
    device_.reset();
    for (rte_mempool* mp : pools_) rte_mempool_free(mp);
  }

  // Probes the port against this test's device.
  uint16_t Probe(const std::string& extra = "") {
    auto port = ProbePort(name_, "socket=" + socket_ + extra);
    EXPECT_TRUE(port.ok()) << port.status();
    probed_ = port.ok();
    return port.ok() ? *port : RTE_MAX_ETHPORTS;
  }

  rte_mempool* Pool(unsigned n, uint16_t room = kRoom) {
    rte_mempool* mp = MakePool(n, room);
    EXPECT_NE(mp, nullptr);
    pools_.push_back(mp);
    return mp;
  }

  void Remove() {
    ASSERT_TRUE(RemovePort(name_).ok());
    probed_ = false;
  }

  static rte_device* Device(uint16_t port) {
    rte_eth_dev_info info;
    EXPECT_EQ(rte_eth_dev_info_get(port, &info), 0);
    return info.device;
  }

  rte_ether_addr PortMac(uint16_t port) {
    rte_ether_addr mac;
    rte_eth_macaddr_get(port, &mac);
    return mac;
  }

  std::string name_;
  std::string socket_;
  std::unique_ptr<DeviceThread> device_;
  bool probed_ = false;
  std::vector<rte_mempool*> pools_;
};

// ---------------------------------------------------------------------------
// Probe and close

TEST_F(SimnicTest, ProbeRejectsBadDevargsWithClearErrors) {
  const int fds = CountFds();
  const uint16_t ports = rte_eth_dev_count_avail();
  struct Case {
    std::string args;
    std::string message;
  };
  const std::string sock = "socket=" + socket_;
  const std::vector<Case> cases = {
      {"", "missing socket=<path>"},
      {"mac=02:00:00:00:00:01", "missing socket=<path>"},
      {sock + ",colour=blue", "unknown device argument 'colour'"},
      {sock + ",mac=zz:00:00:00:00:01", "is not a MAC address"},
      {sock + ",mac=01:00:5e:00:00:01", "non-zero unicast"},
      {sock + ",rx_buffers=huge", "expected 'fixed' or 'mbuf'"},
      {sock + ",connect_timeout_ms=-5", "not a number of milliseconds"},
      {"socket=/" + std::string(200, 'x'), "path must be 1 to 107 bytes"},
  };
  for (const Case& c : cases) {
    LogCapture log;
    EXPECT_NE(rte_vdev_init(name_.c_str(), c.args.c_str()), 0) << c.args;
    EXPECT_THAT(log.Text(), HasSubstr(c.message)) << c.args;
  }
  EXPECT_EQ(rte_eth_dev_count_avail(), ports);
  EXPECT_EQ(CountFds(), fds);
  EXPECT_FALSE(device_->Stats().connected);
}

TEST_F(SimnicTest, ProbeFailsCleanlyWhenTheSocketIsUnreachable) {
  const int fds = CountFds();
  const uint16_t ports = rte_eth_dev_count_avail();
  LogCapture log;
  const auto start = std::chrono::steady_clock::now();
  const std::string args = "socket=" + SocketDir() + "/nobody.sock,connect_timeout_ms=300";
  EXPECT_NE(rte_vdev_init(name_.c_str(), args.c_str()), 0);
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_GE(waited, std::chrono::milliseconds(300)) << "it retries until the timeout";
  EXPECT_LT(waited, std::chrono::seconds(3));
  EXPECT_THAT(log.Text(), HasSubstr("cannot connect to the device at"));
  EXPECT_THAT(log.Text(), HasSubstr("within 300 ms"));
  EXPECT_EQ(rte_eth_dev_count_avail(), ports);
  EXPECT_EQ(CountFds(), fds) << "the socket and the memfd are closed";
  EXPECT_FALSE(MapsMention("simnic:" + name_)) << "the register memfd is unmapped";
}

TEST_F(SimnicTest, ConnectRetriesUntilTheDeviceListens) {
  // The device comes up 200 ms after the probe starts.
  const std::string late = SocketDir() + "/" + name_ + "-late.sock";
  std::unique_ptr<DeviceThread> late_device;
  std::thread starter([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    auto d = DeviceThread::Start(name_ + "-late", late);
    ASSERT_TRUE(d.ok());
    late_device = std::move(*d);
  });
  auto port = ProbePort(name_, "socket=" + late);
  starter.join();
  ASSERT_TRUE(port.ok()) << port.status();
  EXPECT_TRUE(RemovePort(name_).ok());
  late_device.reset();
}

TEST_F(SimnicTest, ProbeMapsDpdkMemoryAndCloseSaysBye) {
  const int fds = CountFds();
  const uint16_t port = Probe(",mac=02:11:22:33:44:55");
  ASSERT_NE(port, RTE_MAX_ETHPORTS);
  const softnic::DeviceStats s = device_->Stats();
  EXPECT_TRUE(s.connected);
  EXPECT_EQ(s.driver_name, name_);
  // --no-huge memory is one memfd: one mapping of all of it.
  EXPECT_EQ(s.mappings, 1u);
  EXPECT_GE(s.mapped_bytes, 512ull << 20);
  EXPECT_EQ(Xstat(port, "dma_maps_in_use"), 1);
  const rte_ether_addr mac = PortMac(port);
  const uint8_t want[6] = {0x02, 0x11, 0x22, 0x33, 0x44, 0x55};
  EXPECT_EQ(std::memcmp(mac.addr_bytes, want, 6), 0);

  Remove();
  EXPECT_TRUE(WaitFor([&] { return !device_->Stats().connected; }));
  EXPECT_EQ(device_->Stats().mappings, 0u);
  // The device thread (in this process) closes its side after it marks the
  // driver gone: wait for the count, a leak still fails at the deadline.
  EXPECT_TRUE(WaitFor([&] { return CountFds() == fds; }))
      << CountFds() << " fds, " << fds << " before the probe";
  EXPECT_FALSE(MapsMention("simnic:" + name_));
}

TEST_F(SimnicTest, DefaultMacIsLocallyAdministeredAndPerName) {
  const uint16_t port = Probe();
  ASSERT_NE(port, RTE_MAX_ETHPORTS);
  const rte_ether_addr mac = PortMac(port);
  EXPECT_EQ(mac.addr_bytes[0], 0x02);
  EXPECT_TRUE(rte_is_unicast_ether_addr(&mac));
  rte_eth_dev_info info;
  ASSERT_EQ(rte_eth_dev_info_get(port, &info), 0);
  EXPECT_EQ(info.max_rx_queues, kMaxQueues);
  EXPECT_EQ(info.reta_size, kRetaSize);
  EXPECT_EQ(info.hash_key_size, kRssKeySize);
  EXPECT_EQ(info.max_rx_pktlen, kMaxFrame);
  EXPECT_TRUE(info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_SCATTER);
  EXPECT_TRUE(info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_MULTI_SEGS);
}

// ---------------------------------------------------------------------------
// Rx

struct RxCase {
  uint32_t frame_size;  // RFC 2544 size with FCS: frame_size - 4 bytes arrive
  bool scatter;
};

class SimnicRxSizeTest : public SimnicTest, public ::testing::WithParamInterface<RxCase> {};

// The generator's frames through the device's DMA and rx_burst; the checker
// verifies every frame (sequence per flow, lengths, header and payload CRCs).
TEST_P(SimnicRxSizeTest, EveryFrameArrivesIntactAndInOrder) {
  const RxCase c = GetParam();
  const uint32_t frame_len = softnic::FrameBytes(c.frame_size);
  const uint16_t port = Probe();
  ASSERT_NE(port, RTE_MAX_ETHPORTS);
  rte_mempool* mp = Pool(4096);
  PortSetup setup;
  setup.pools = {mp};
  setup.nb_rxd = 1024;
  if (c.scatter) {
    setup.rx_offloads = RTE_ETH_RX_OFFLOAD_SCATTER;
    setup.mtu = 9000;
  }
  ASSERT_TRUE(SetUpPort(port, setup).ok());
  const rte_ether_addr mac = PortMac(port);

  softnic::FlowSpec base;
  std::memcpy(base.dst_mac, mac.addr_bytes, 6);
  softnic::GeneratorConfig gc;
  gc.flows = softnic::MakeFlows(4, base);
  gc.frame_size = c.frame_size;
  auto gen = softnic::Generator::Create(gc);
  ASSERT_TRUE(gen.ok()) << gen.status();
  softnic::CheckerOptions co;
  co.num_flows = 4;
  co.flows = gc.flows;
  softnic::Checker checker(co);

  // Bursts of 100 (500 descriptors at 9000 B), each checked and freed
  // before the next, so the ring is always refilled.
  constexpr int kFrames = 2000;
  for (int i = 0; i < kFrames; i += 100) {
    std::vector<std::vector<uint8_t>> burst(100, std::vector<uint8_t>((*gen)->max_length()));
    for (auto& f : burst) {
      f.resize((*gen)->Next(f.data(), static_cast<uint32_t>(f.size()), softnic::ReadTsc()));
      ASSERT_EQ(f.size(), frame_len);
    }
    ASSERT_EQ(device_->Receive(burst), 100u) << "at frame " << i;
    std::vector<rte_mbuf*> got;
    RxUntil(port, 0, 100, 2000, &got);
    ASSERT_EQ(got.size(), 100u);
    for (rte_mbuf* m : got) {
      EXPECT_EQ(m->port, port);
      EXPECT_EQ(rte_mbuf_check(m, 1, nullptr), 0);
      if (frame_len > kRoom - RTE_PKTMBUF_HEADROOM) {
        EXPECT_GT(m->nb_segs, 1);
      }
      const std::vector<uint8_t> bytes = MbufBytes(m);
      EXPECT_EQ(
          checker.Check(bytes.data(), static_cast<uint32_t>(bytes.size()), softnic::ReadTsc()),
          softnic::Verdict::kOk);
    }
    FreeAll(&got);
  }
  const softnic::Summary sum = checker.Summarize((*gen)->sent_per_flow());
  EXPECT_TRUE(sum.Clean()) << sum.ToString();
  EXPECT_EQ(sum.received, static_cast<uint64_t>(kFrames));

  rte_eth_stats st;
  ASSERT_EQ(rte_eth_stats_get(port, &st), 0);
  EXPECT_EQ(st.ipackets, static_cast<uint64_t>(kFrames));
  EXPECT_EQ(st.ibytes, uint64_t{kFrames} * frame_len);
  EXPECT_EQ(st.ierrors, 0u);
  EXPECT_EQ(st.imissed, 0u);
  ASSERT_EQ(rte_eth_dev_stop(port), 0);
  EXPECT_EQ(rte_mempool_avail_count(mp), 4096u);
}

// 64, 1518 and 9004 B frames: 60, 1514 and 9000 bytes arrive.
INSTANTIATE_TEST_SUITE_P(Sizes, SimnicRxSizeTest,
                         ::testing::Values(RxCase{64, false}, RxCase{1518, false},
                                           RxCase{9004, true}),
                         [](const auto& info) { return std::to_string(info.param.frame_size); });

TEST_F(SimnicTest, VlanStripAndRssHashAreReported) {
  const uint16_t port = Probe();
  ASSERT_NE(port, RTE_MAX_ETHPORTS);
  PortSetup setup;
  setup.pools = {Pool(1024)};
  setup.rx_offloads = RTE_ETH_RX_OFFLOAD_VLAN_STRIP;
  setup.rss = true;
  ASSERT_TRUE(SetUpPort(port, setup).ok());
  const rte_ether_addr mac = PortMac(port);
  auto tagged = MakeUdpFrame(mac.addr_bytes, 100, 0x0a000001, 0x0a000002, 1, 2, 123);
  ASSERT_EQ(device_->Receive({tagged}), 1u);
  std::vector<rte_mbuf*> got;
  RxUntil(port, 0, 1, 2000, &got);
  ASSERT_EQ(got.size(), 1u);
  rte_mbuf* m = got[0];
  EXPECT_TRUE(m->ol_flags & RTE_MBUF_F_RX_VLAN_STRIPPED);
  EXPECT_TRUE(m->ol_flags & RTE_MBUF_F_RX_VLAN);
  EXPECT_EQ(m->vlan_tci, 123);
  EXPECT_EQ(m->pkt_len, 96u);
  std::vector<uint8_t> untagged(tagged.begin(), tagged.begin() + 12);
  untagged.insert(untagged.end(), tagged.begin() + 16, tagged.end());
  EXPECT_EQ(MbufBytes(m), untagged);
  // The hash is the Toeplitz hash of the IPv4/UDP 4-tuple under the key.
  ASSERT_TRUE(m->ol_flags & RTE_MBUF_F_RX_RSS_HASH);
  uint8_t key[40];
  rte_eth_rss_conf conf{};
  conf.rss_key = key;
  conf.rss_key_len = sizeof(key);
  ASSERT_EQ(rte_eth_dev_rss_hash_conf_get(port, &conf), 0);
  uint32_t tuple[3] = {0x0a000001, 0x0a000002, (1u << 16) | 2};
  EXPECT_EQ(m->hash.rss, rte_softrss(tuple, 3, key));
  FreeAll(&got);
}

// ---------------------------------------------------------------------------
// DMA bounds and external memory

// A memfd-backed region registered as external memory, with a pinned-extbuf
// mempool whose buffers are kElt apart: each buffer (128 B headroom + kData)
// is followed by guard bytes up to the next element.
class ExtMemPool {
 public:
  static constexpr uint16_t kData = 1024;
  static constexpr uint16_t kElt = 4096;

  ExtMemPool(unsigned n) : n_(n), len_(size_t{n} * kElt) {
    fd_ = memfd_create("pmdt_ext", MFD_CLOEXEC);
    EXPECT_EQ(ftruncate(fd_, len_), 0);
    base_ = static_cast<uint8_t*>(mmap(nullptr, len_, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0));
    EXPECT_NE(base_, MAP_FAILED);
    Fill();
    EXPECT_EQ(rte_extmem_register(base_, len_, nullptr, 0, 4096), 0);
    rte_pktmbuf_extmem ext{base_, iova(), len_, kElt};
    static int counter = 0;
    const std::string name = "pmdt_ext" + std::to_string(counter++);
    mp_ = rte_pktmbuf_pool_create_extbuf(name.c_str(), n, 0, 0, RTE_PKTMBUF_HEADROOM + kData,
                                         SOCKET_ID_ANY, &ext, 1);
    EXPECT_NE(mp_, nullptr);
  }
  ~ExtMemPool() {
    rte_mempool_free(mp_);
    rte_extmem_unregister(base_, len_);
    munmap(base_, len_);
    close(fd_);
  }

  rte_mempool* pool() const { return mp_; }
  uint8_t* base() const { return base_; }
  size_t len() const { return len_; }
  rte_iova_t iova() const { return reinterpret_cast<uintptr_t>(base_); }
  void Fill() { std::memset(base_, kCanary, len_); }

  // Bytes of element i outside [headroom, headroom + written) that are not
  // canaries; `written` 0 checks the whole element.
  size_t Trampled(unsigned i, size_t written) const {
    const uint8_t* e = base_ + size_t{i} * kElt;
    size_t bad = 0;
    for (size_t b = 0; b < kElt; ++b) {
      const bool inside = b >= RTE_PKTMBUF_HEADROOM && b < RTE_PKTMBUF_HEADROOM + written;
      if (!inside && e[b] != kCanary) ++bad;
    }
    return bad;
  }
  size_t TrampledAnywhere(size_t written) const {
    size_t bad = 0;
    for (unsigned i = 0; i < n_; ++i) bad += Trampled(i, written);
    return bad;
  }

 private:
  unsigned n_;
  size_t len_;
  int fd_ = -1;
  uint8_t* base_ = nullptr;
  rte_mempool* mp_ = nullptr;
};

TEST_F(SimnicTest, DmaLandsAtHeadroomAndNeverBeyondTheQueueBufferSize) {
  const uint16_t port = Probe();
  ASSERT_NE(port, RTE_MAX_ETHPORTS);
  ExtMemPool ext(512);
  rte_device* dev = Device(port);
  ASSERT_EQ(rte_dev_dma_map(dev, ext.base(), ext.iova(), ext.len()), 0);
  EXPECT_EQ(Xstat(port, "dma_maps_in_use"), 2);

  PortSetup setup;
  setup.pools = {ext.pool()};
  setup.mtu = 990;  // frames up to 1016 B: one 1024-byte buffer, no scatter
  ASSERT_TRUE(SetUpPort(port, setup).ok());
  rte_eth_rxq_info qinfo;
  ASSERT_EQ(rte_eth_rx_queue_info_get(port, 0, &qinfo), 0);
  EXPECT_EQ(qinfo.rx_buf_size, ExtMemPool::kData);
  EXPECT_FALSE(qinfo.scattered_rx);
  const rte_ether_addr mac = PortMac(port);

  // Frames bigger than the buffers, scatter off: dropped, nothing written.
  std::vector<std::vector<uint8_t>> big(20, MakeUdpFrame(mac.addr_bytes, 1514, 1, 2, 3, 4));
  EXPECT_EQ(device_->Receive(big), 0u);
  std::vector<rte_mbuf*> got;
  RxUntil(port, 0, 1, 50, &got);
  EXPECT_TRUE(got.empty());
  EXPECT_EQ(Xstat(port, "rx_oversize"), 20);
  EXPECT_EQ(ext.TrampledAnywhere(0), 0u) << "an oversize frame wrote into a buffer";

  // Frames of exactly the buffer size: they land at buf_iova + 128.
  std::vector<std::vector<uint8_t>> full;
  for (int i = 0; i < 300; ++i) {
    full.push_back(
        MakeUdpFrame(mac.addr_bytes, ExtMemPool::kData, 1, 2, 3, 4, -1, static_cast<uint8_t>(i)));
  }
  // In two bursts: the ring (256) holds fewer than 300.
  EXPECT_EQ(device_->Receive({full.begin(), full.begin() + 150}), 150u);
  RxUntil(port, 0, 150, 2000, &got);
  EXPECT_EQ(device_->Receive({full.begin() + 150, full.end()}), 150u);
  RxUntil(port, 0, 150, 2000, &got);
  ASSERT_EQ(got.size(), 300u);
  for (size_t i = 0; i < got.size(); ++i) {
    rte_mbuf* m = got[i];
    EXPECT_EQ(rte_pktmbuf_mtod(m, uint8_t*), static_cast<uint8_t*>(m->buf_addr) + 128);
    EXPECT_EQ(m->data_off, RTE_PKTMBUF_HEADROOM);
    EXPECT_EQ(m->nb_segs, 1);
    EXPECT_TRUE(m->ol_flags & RTE_MBUF_F_EXTERNAL) << "the pinned-extbuf flag survives Rx";
    EXPECT_EQ(MbufBytes(m), full[i]);
  }
  FreeAll(&got);
  EXPECT_EQ(ext.TrampledAnywhere(ExtMemPool::kData), 0u)
      << "a byte before buf_iova + 128 or after the per-queue size was written";

  ASSERT_EQ(rte_eth_dev_stop(port), 0);
  EXPECT_EQ(rte_mempool_avail_count(ext.pool()), 512u);
  Remove();  // before the pool and the memory go
}

TEST_F(SimnicTest, DmaUnmapStopsEveryWriteAndFaultsAreCounted) {
  const uint16_t port = Probe();
  ASSERT_NE(port, RTE_MAX_ETHPORTS);
  ExtMemPool ext(512);
  rte_device* dev = Device(port);
  {
    LogCapture log;
    rte_log_set_level_pattern("pmd.net.simnic", RTE_LOG_DEBUG);
    ASSERT_EQ(rte_dev_dma_map(dev, ext.base(), ext.iova(), ext.len()), 0);
    rte_log_set_level_pattern("pmd.net.simnic", RTE_LOG_NOTICE);
    EXPECT_THAT(log.Text(), HasSubstr("/memfd:pmdt_ext"));
    std::printf("%s", log.Text().c_str());  // which way the file was opened
  }
  PortSetup setup;
  setup.pools = {ext.pool()};
  setup.mtu = 990;
  ASSERT_TRUE(SetUpPort(port, setup).ok());
  const rte_ether_addr mac = PortMac(port);

  // Mapped: frames land in the external memory.
  std::vector<std::vector<uint8_t>> frames(50, MakeUdpFrame(mac.addr_bytes, 500, 1, 2, 3, 4));
  EXPECT_EQ(device_->Receive(frames), 50u);
  std::vector<rte_mbuf*> got;
  RxUntil(port, 0, 50, 2000, &got);
  ASSERT_EQ(got.size(), 50u);
  for (rte_mbuf* m : got) EXPECT_EQ(MbufBytes(m), frames[0]);
  FreeAll(&got);

  // Unmapped while buffers are posted: once dma_unmap returns, nothing
  // reaches the memory; every frame is an IOMMU fault.
  ASSERT_EQ(rte_dev_dma_unmap(dev, ext.base(), ext.iova(), ext.len()), 0);
  EXPECT_EQ(Xstat(port, "dma_maps_in_use"), 1);
  ext.Fill();
  rte_eth_stats_reset(port);
  EXPECT_EQ(device_->Receive(frames), 0u);
  RxUntil(port, 0, 1, 50, &got);
  EXPECT_TRUE(got.empty());
  EXPECT_EQ(ext.TrampledAnywhere(0), 0u) << "DMA after dma_unmap returned";
  EXPECT_EQ(Xstat(port, "iommu_faults"), 50);
  const int64_t fault = Xstat(port, "last_fault_iova");
  EXPECT_GE(fault, static_cast<int64_t>(ext.iova()));
  EXPECT_LT(fault, static_cast<int64_t>(ext.iova() + ext.len()));
  rte_eth_stats st;
  ASSERT_EQ(rte_eth_stats_get(port, &st), 0);
  EXPECT_EQ(st.ierrors, 50u);
  EXPECT_EQ(Xstat(port, "rx_q0_error_descs"), 50);

  // Unmapping what is not mapped is refused; so is mapping anonymous memory.
  {
    LogCapture log;
    EXPECT_LT(rte_dev_dma_unmap(dev, ext.base(), ext.iova(), ext.len()), 0);
    EXPECT_THAT(log.Text(), HasSubstr("is not a range mapped by dma_map"));
  }
  {
    const size_t len = 1 << 20;
    void* anon = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT_EQ(rte_extmem_register(anon, len, nullptr, 0, 4096), 0);
    LogCapture log;
    EXPECT_LT(rte_dev_dma_map(dev, anon, reinterpret_cast<uintptr_t>(anon), len), 0);
    EXPECT_EQ(rte_errno, EINVAL);
    EXPECT_THAT(log.Text(), HasSubstr("is anonymous memory"));
    rte_extmem_unregister(anon, len);
    munmap(anon, len);
  }

  ASSERT_EQ(rte_eth_dev_stop(port), 0);
  EXPECT_EQ(rte_mempool_avail_count(ext.pool()), 512u);
  Remove();
}

TEST_F(SimnicTest, MbufModeUsesEachBuffersOwnLength) {
  const uint16_t port = Probe(",rx_buffers=mbuf");
  ASSERT_NE(port, RTE_MAX_ETHPORTS);
  PortSetup setup;
  setup.pools = {Pool(1024, RTE_PKTMBUF_HEADROOM + 600)};
  ASSERT_TRUE(SetUpPort(port, setup).ok());
  const rte_ether_addr mac = PortMac(port);
  EXPECT_EQ(device_->Receive({MakeUdpFrame(mac.addr_bytes, 600, 1, 2, 3, 4),
                              MakeUdpFrame(mac.addr_bytes, 601, 1, 2, 3, 4)}),
            1u);
  std::vector<rte_mbuf*> got;
  RxUntil(port, 0, 1, 2000, &got);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0]->pkt_len, 600u);
  EXPECT_EQ(Xstat(port, "rx_oversize"), 1);
  FreeAll(&got);
}

// ---------------------------------------------------------------------------
// Queue start/stop buffer accounting

TEST_F(SimnicTest, RxQueueStopReturnsEveryPostedMbufAndStartRefills) {
  const uint16_t port = Probe();
  ASSERT_NE(port, RTE_MAX_ETHPORTS);
  rte_mempool* mp = Pool(1024);
  PortSetup setup;
  setup.pools = {mp};
  setup.nb_rxd = 512;
  setup.rx_deferred = {true};
  ASSERT_TRUE(SetUpPort(port, setup).ok());
  EXPECT_EQ(rte_mempool_avail_count(mp), 1024u) << "a deferred queue takes nothing at start";

  ASSERT_EQ(rte_eth_dev_rx_queue_start(port, 0), 0);
  EXPECT_EQ(rte_mempool_avail_count(mp), 512u) << "start fills the whole ring";

  const rte_ether_addr mac = PortMac(port);
  std::vector<std::vector<uint8_t>> frames(100, MakeUdpFrame(mac.addr_bytes, 200, 1, 2, 3, 4));
  EXPECT_EQ(device_->Receive(frames), 100u);
  std::vector<rte_mbuf*> held;
  RxUntil(port, 0, 100, 2000, &held);
  ASSERT_EQ(held.size(), 100u);

  ASSERT_EQ(rte_eth_dev_rx_queue_stop(port, 0), 0);
  EXPECT_EQ(rte_mempool_avail_count(mp), 1024u - 100u)
      << "every posted mbuf is back; only those the application holds are out";
  FreeAll(&held);
  EXPECT_EQ(rte_mempool_avail_count(mp), 1024u);
  // Stopped: frames for the queue are dropped by the device, nothing posted.
  EXPECT_EQ(device_->Receive(frames), 0u);

  ASSERT_EQ(rte_eth_dev_rx_queue_start(port, 0), 0);
  EXPECT_EQ(rte_mempool_avail_count(mp), 512u);
  EXPECT_EQ(device_->Receive(frames), 100u);
  RxUntil(port, 0, 100, 2000, &held);
  EXPECT_EQ(held.size(), 100u);
  FreeAll(&held);
  ASSERT_EQ(rte_eth_dev_stop(port), 0);
  EXPECT_EQ(rte_mempool_avail_count(mp), 1024u);
}

TEST_F(SimnicTest, QueueStopTimesOutWhileTheDeviceDoesNotAnswerAndKeepsTheBuffers) {
  const uint16_t port = Probe(",ack_timeout_ms=200");
  ASSERT_NE(port, RTE_MAX_ETHPORTS);
  rte_mempool* mp = Pool(1024);
  PortSetup setup;
  setup.pools = {mp};
  ASSERT_TRUE(SetUpPort(port, setup).ok());
  ASSERT_EQ(rte_mempool_avail_count(mp), 1024u - 256u);
  // The device is held off: it cannot acknowledge.
  device_->With([&](softnic::Device&) {
    LogCapture log;
    EXPECT_EQ(rte_eth_dev_rx_queue_stop(port, 0), -ETIMEDOUT);
    EXPECT_THAT(log.Text(), HasSubstr("did not acknowledge the stop within 200 ms"));
    EXPECT_EQ(rte_eth_dev_tx_queue_stop(port, 0), -ETIMEDOUT);
  });
  EXPECT_EQ(rte_mempool_avail_count(mp), 1024u - 256u)
      << "buffers the device may still write must not be reused";
  // Once it answers, the stop completes and every buffer comes back.
  EXPECT_EQ(rte_eth_dev_rx_queue_stop(port, 0), 0);
  EXPECT_EQ(rte_eth_dev_tx_queue_stop(port, 0), 0);
  EXPECT_EQ(rte_mempool_avail_count(mp), 1024u);
}

TEST_F(SimnicTest, RxQueueStartFailsWithEnomemWhenThePoolCannotFillTheRing) {
  const uint16_t port = Probe();
  ASSERT_NE(port, RTE_MAX_ETHPORTS);
  rte_mempool* mp = Pool(300);
  PortSetup setup;
  setup.pools = {mp};
  setup.nb_rxd = 512;
  setup.rx_deferred = {true};
  ASSERT_TRUE(SetUpPort(port, setup).ok());
  LogCapture log;
  EXPECT_EQ(rte_eth_dev_rx_queue_start(port, 0), -ENOMEM);
  EXPECT_THAT(log.Text(), HasSubstr("cannot fill 512 descriptors"));
  EXPECT_EQ(rte_mempool_avail_count(mp), 300u) << "nothing taken on failure";
  // Without deferral the whole port start fails and gives everything back.
  ASSERT_EQ(rte_eth_dev_stop(port), 0);
  setup.rx_deferred = {false};
  setup.start = false;
  ASSERT_TRUE(SetUpPort(port, setup).ok());
  EXPECT_EQ(rte_eth_dev_start(port), -ENOMEM);
  EXPECT_EQ(rte_mempool_avail_count(mp), 300u);
}

TEST_F(SimnicTest, RefillFailureIsCountedAndRetried) {
  const uint16_t port = Probe();
  ASSERT_NE(port, RTE_MAX_ETHPORTS);
  rte_mempool* mp = Pool(64 + 40);
  PortSetup setup;
  setup.pools = {mp};
  setup.nb_rxd = 64;
  ASSERT_TRUE(SetUpPort(port, setup).ok());
  const rte_ether_addr mac = PortMac(port);
  std::vector<std::vector<uint8_t>> frames(64, MakeUdpFrame(mac.addr_bytes, 100, 1, 2, 3, 4));
  EXPECT_EQ(device_->Receive(frames), 64u);
  std::vector<rte_mbuf*> held;
  RxUntil(port, 0, 64, 2000, &held);
  ASSERT_EQ(held.size(), 64u);
  // 40 spare mbufs: one burst of 32 refilled, the second failed.
  rte_eth_stats st;
  ASSERT_EQ(rte_eth_stats_get(port, &st), 0);
  EXPECT_GE(st.rx_nombuf, 32u);
  EXPECT_EQ(device_->Receive(frames), 32u) << "32 descriptors were posted again";
  FreeAll(&held);
  RxUntil(port, 0, 32, 2000, &held);  // this poll's refill succeeds again
  EXPECT_EQ(held.size(), 32u);
  FreeAll(&held);
  EXPECT_EQ(device_->Receive(frames), 64u) << "the ring is full again";
  RxUntil(port, 0, 64, 2000, &held);
  FreeAll(&held);
}

// ---------------------------------------------------------------------------
// Tx

TEST_F(SimnicTest, TxFramesReachTheDeviceIntactAndInOrder) {
  const uint16_t port = Probe();
  ASSERT_NE(port, RTE_MAX_ETHPORTS);
  rte_mempool* mp = Pool(4096);
  PortSetup setup;
  setup.pools = {mp};
  setup.tx_offloads = RTE_ETH_TX_OFFLOAD_MULTI_SEGS;
  ASSERT_TRUE(SetUpPort(port, setup).ok());

  // The device's transmit side feeds the checker directly.
  softnic::GeneratorConfig gc;
  gc.flows = softnic::MakeFlows(3);
  gc.size_mode = softnic::SizeMode::kImix;
  auto imix = softnic::Generator::Create(gc);
  ASSERT_TRUE(imix.ok());
  gc.size_mode = softnic::SizeMode::kFixed;
  gc.flows = softnic::MakeFlows(3, [] {
    softnic::FlowSpec f;
    f.src_ip = 0x0b000001;
    return f;
  }());
  gc.frame_size = 9004;
  auto jumbo = softnic::Generator::Create(gc);
  ASSERT_TRUE(jumbo.ok());
  softnic::CheckerOptions co;
  co.num_flows = 3;
  softnic::Checker imix_checker(co);
  softnic::Checker jumbo_checker(co);
  std::atomic<uint64_t> delivered{0};
  std::atomic<uint64_t> bad{0};
  device_->SetTxConsumer([&](const softnic::TxFrame& f) {
    // Flows are told apart by source address: 10.x IMIX, 11.x jumbo.
    softnic::Checker& c = f.data[26] == 0x0a ? imix_checker : jumbo_checker;
    if (c.Check(f.data, f.len, softnic::ReadTsc()) != softnic::Verdict::kOk) ++bad;
    ++delivered;
  });

  // IMIX frames in one segment, 9000-byte frames as chains of 2000-byte
  // segments, interleaved.
  constexpr int kFrames = 3000;
  std::vector<uint8_t> buf(softnic::kMaxFrameBytes);
  for (int i = 0; i < kFrames; ++i) {
    softnic::Generator& g = i % 4 == 3 ? **jumbo : **imix;
    const uint32_t len = g.Next(buf.data(), static_cast<uint32_t>(buf.size()), softnic::ReadTsc());
    rte_mbuf* head = nullptr;
    for (uint32_t off = 0; off < len; off += 2000) {
      rte_mbuf* seg = rte_pktmbuf_alloc(mp);
      ASSERT_NE(seg, nullptr);
      const uint32_t n = std::min<uint32_t>(2000, len - off);
      std::memcpy(rte_pktmbuf_append(seg, static_cast<uint16_t>(n)), &buf[off], n);
      if (head == nullptr) {
        head = seg;
      } else {
        ASSERT_EQ(rte_pktmbuf_chain(head, seg), 0);
      }
    }
    while (rte_eth_tx_burst(port, 0, &head, 1) == 0) std::this_thread::yield();
  }
  ASSERT_TRUE(WaitFor([&] { return delivered.load() >= static_cast<uint64_t>(kFrames); }));
  device_->SetTxConsumer(nullptr);
  EXPECT_EQ(bad.load(), 0u);
  const softnic::Summary s1 = imix_checker.Summarize((*imix)->sent_per_flow());
  const softnic::Summary s2 = jumbo_checker.Summarize((*jumbo)->sent_per_flow());
  EXPECT_TRUE(s1.Clean()) << s1.ToString();
  EXPECT_TRUE(s2.Clean()) << s2.ToString();
  EXPECT_EQ(s1.received + s2.received, static_cast<uint64_t>(kFrames));

  rte_eth_stats st;
  ASSERT_EQ(rte_eth_stats_get(port, &st), 0);
  EXPECT_EQ(st.opackets, static_cast<uint64_t>(kFrames));
  EXPECT_EQ(st.oerrors, 0u);
  // A transmitted mbuf is freed only once the device completed it; stop
  // frees what is still on the ring.
  ASSERT_EQ(rte_eth_dev_stop(port), 0);
  EXPECT_EQ(rte_mempool_avail_count(mp), 4096u);
}

// ---------------------------------------------------------------------------
// Steering, RSS

rte_flow* MacRule(uint16_t port, const uint8_t mac[6], int vlan, uint16_t queue,
                  rte_flow_error* error) {
  rte_flow_attr attr{};
  attr.ingress = 1;
  rte_flow_item_eth eth_spec{};
  rte_flow_item_eth eth_mask{};
  std::memcpy(eth_spec.hdr.dst_addr.addr_bytes, mac, 6);
  std::memset(eth_mask.hdr.dst_addr.addr_bytes, 0xff, 6);
  rte_flow_item_vlan vlan_spec{};
  rte_flow_item_vlan vlan_mask{};
  vlan_spec.hdr.vlan_tci = rte_cpu_to_be_16(static_cast<uint16_t>(vlan));
  vlan_mask.hdr.vlan_tci = rte_cpu_to_be_16(0x0fff);
  std::vector<rte_flow_item> pattern = {{RTE_FLOW_ITEM_TYPE_ETH, &eth_spec, nullptr, &eth_mask}};
  if (vlan >= 0) pattern.push_back({RTE_FLOW_ITEM_TYPE_VLAN, &vlan_spec, nullptr, &vlan_mask});
  pattern.push_back({RTE_FLOW_ITEM_TYPE_END, nullptr, nullptr, nullptr});
  rte_flow_action_queue q{queue};
  rte_flow_action actions[] = {{RTE_FLOW_ACTION_TYPE_QUEUE, &q},
                               {RTE_FLOW_ACTION_TYPE_END, nullptr}};
  return rte_flow_create(port, &attr, pattern.data(), actions, error);
}

TEST_F(SimnicTest, FlowRulesSteerByMacAndVlanAndRssSpreadsTheRestPerReta) {
  const uint16_t port = Probe();
  ASSERT_NE(port, RTE_MAX_ETHPORTS);
  PortSetup setup;
  setup.nb_rxq = 4;
  setup.rss = true;
  setup.pools = {Pool(8192)};
  ASSERT_TRUE(SetUpPort(port, setup).ok());

  const uint8_t mac_a[6] = {0x02, 0xaa, 0, 0, 0, 1};
  const uint8_t mac_b[6] = {0x02, 0xbb, 0, 0, 0, 2};
  rte_flow_error error;
  rte_flow* rule_a = MacRule(port, mac_a, -1, 3, &error);
  ASSERT_NE(rule_a, nullptr) << error.message;
  rte_flow* rule_b = MacRule(port, mac_b, 100, 2, &error);
  ASSERT_NE(rule_b, nullptr) << error.message;

  // RETA: entry i -> queue i % 2, so RSS traffic uses queues 0 and 1 only.
  rte_eth_rss_reta_entry64 reta[kRetaSize / RTE_ETH_RETA_GROUP_SIZE] = {};
  for (int i = 0; i < kRetaSize; ++i) {
    reta[i / 64].mask |= uint64_t{1} << (i % 64);
    reta[i / 64].reta[i % 64] = i % 2;
  }
  ASSERT_EQ(rte_eth_dev_rss_reta_update(port, reta, kRetaSize), 0);

  const rte_ether_addr own = PortMac(port);
  std::vector<std::vector<uint8_t>> frames;
  for (int i = 0; i < 64; ++i) {
    frames.push_back(MakeUdpFrame(mac_a, 100, 0x0a000000 + i, 0x0a0000ff, 1000 + i, 80));
    frames.push_back(MakeUdpFrame(mac_b, 100, 0x0a000000 + i, 0x0a0000ff, 1000 + i, 80, 100));
    frames.push_back(MakeUdpFrame(mac_b, 100, 0x0b000000 + i, 0x0a0000ff, 2000 + i, 80, 200));
    frames.push_back(MakeUdpFrame(own.addr_bytes, 100, 0x0c000000 + i, 0x0a0000fe, 3000 + i, 53));
  }
  EXPECT_EQ(device_->Receive(frames), frames.size());
  std::vector<rte_mbuf*> q[4];
  for (int i = 0; i < 4; ++i) RxUntil(port, i, i >= 2 ? 64 : 1, 500, &q[i]);
  RxUntil(port, 0, 1000, 200, &q[0]);
  RxUntil(port, 1, 1000, 200, &q[1]);
  ASSERT_EQ(q[3].size(), 64u);
  ASSERT_EQ(q[2].size(), 64u);
  for (rte_mbuf* m : q[3]) EXPECT_EQ(std::memcmp(rte_pktmbuf_mtod(m, uint8_t*), mac_a, 6), 0);
  for (rte_mbuf* m : q[2]) EXPECT_EQ(std::memcmp(rte_pktmbuf_mtod(m, uint8_t*), mac_b, 6), 0);
  EXPECT_EQ(q[0].size() + q[1].size(), 128u);
  EXPECT_FALSE(q[0].empty());
  EXPECT_FALSE(q[1].empty());
  for (int i = 0; i < 2; ++i) {
    for (rte_mbuf* m : q[i]) {
      ASSERT_TRUE(m->ol_flags & RTE_MBUF_F_RX_RSS_HASH);
      EXPECT_EQ(m->hash.rss % kRetaSize % 2, static_cast<uint32_t>(i)) << "queue = reta[hash]";
    }
  }
  for (auto& v : q) FreeAll(&v);

  // Without the rules, A's frames follow RSS too.
  ASSERT_EQ(rte_flow_destroy(port, rule_a, &error), 0);
  EXPECT_EQ(device_->Receive({frames[0]}), 1u);
  RxUntil(port, 0, 1, 200, &q[0]);
  RxUntil(port, 1, 1, 200, &q[1]);
  RxUntil(port, 3, 1, 50, &q[3]);
  EXPECT_EQ(q[0].size() + q[1].size(), 1u);
  EXPECT_TRUE(q[3].empty());
  for (auto& v : q) FreeAll(&v);
  EXPECT_EQ(rte_flow_flush(port, &error), 0);
}

TEST_F(SimnicTest, UnsupportedFlowRulesGetClearErrors) {
  const uint16_t port = Probe();
  ASSERT_NE(port, RTE_MAX_ETHPORTS);
  PortSetup setup;
  setup.nb_rxq = 2;
  setup.pools = {Pool(1024)};
  ASSERT_TRUE(SetUpPort(port, setup).ok());
  rte_flow_attr attr{};
  attr.ingress = 1;
  rte_flow_action_queue q{1};
  rte_flow_action to_queue[] = {{RTE_FLOW_ACTION_TYPE_QUEUE, &q},
                                {RTE_FLOW_ACTION_TYPE_END, nullptr}};
  rte_flow_error error{};

  rte_flow_item ipv4_only[] = {{RTE_FLOW_ITEM_TYPE_IPV4, nullptr, nullptr, nullptr},
                               {RTE_FLOW_ITEM_TYPE_END, nullptr, nullptr, nullptr}};
  EXPECT_NE(rte_flow_validate(port, &attr, ipv4_only, to_queue, &error), 0);
  EXPECT_EQ(error.type, RTE_FLOW_ERROR_TYPE_ITEM);
  EXPECT_THAT(error.message, HasSubstr("ETH [/ VLAN] / END"));

  rte_flow_item_eth spec{};
  rte_flow_item_eth half{};
  std::memset(half.hdr.dst_addr.addr_bytes, 0xff, 3);
  rte_flow_item partial[] = {{RTE_FLOW_ITEM_TYPE_ETH, &spec, nullptr, &half},
                             {RTE_FLOW_ITEM_TYPE_END, nullptr, nullptr, nullptr}};
  EXPECT_NE(rte_flow_validate(port, &attr, partial, to_queue, &error), 0);
  EXPECT_THAT(error.message, HasSubstr("mask must be full"));

  rte_flow_item_eth full{};
  std::memset(full.hdr.dst_addr.addr_bytes, 0xff, 6);
  rte_flow_item eth[] = {{RTE_FLOW_ITEM_TYPE_ETH, &spec, nullptr, &full},
                         {RTE_FLOW_ITEM_TYPE_END, nullptr, nullptr, nullptr}};
  rte_flow_action drop[] = {{RTE_FLOW_ACTION_TYPE_DROP, nullptr},
                            {RTE_FLOW_ACTION_TYPE_END, nullptr}};
  EXPECT_NE(rte_flow_validate(port, &attr, eth, drop, &error), 0);
  EXPECT_EQ(error.type, RTE_FLOW_ERROR_TYPE_ACTION);
  EXPECT_THAT(error.message, HasSubstr("QUEUE"));

  rte_flow_action_queue bad_q{7};
  rte_flow_action to_bad[] = {{RTE_FLOW_ACTION_TYPE_QUEUE, &bad_q},
                              {RTE_FLOW_ACTION_TYPE_END, nullptr}};
  EXPECT_NE(rte_flow_validate(port, &attr, eth, to_bad, &error), 0);
  EXPECT_EQ(error.type, RTE_FLOW_ERROR_TYPE_ACTION_CONF);

  attr.ingress = 0;
  attr.egress = 1;
  EXPECT_NE(rte_flow_validate(port, &attr, eth, to_queue, &error), 0);
  EXPECT_EQ(error.type, RTE_FLOW_ERROR_TYPE_ATTR);
  attr.ingress = 1;
  attr.egress = 0;
  EXPECT_EQ(rte_flow_validate(port, &attr, eth, to_queue, &error), 0);
}

// ---------------------------------------------------------------------------
// Link, statistics

TEST_F(SimnicTest, LinkDownDropsAreCountedAndStatsReset) {
  const uint16_t port = Probe();
  ASSERT_NE(port, RTE_MAX_ETHPORTS);
  PortSetup setup;
  setup.pools = {Pool(1024)};
  setup.nb_rxd = 128;
  ASSERT_TRUE(SetUpPort(port, setup).ok());
  rte_eth_link link;
  ASSERT_EQ(rte_eth_link_get_nowait(port, &link), 0);
  EXPECT_EQ(link.link_status, RTE_ETH_LINK_UP);
  EXPECT_EQ(link.link_speed, RTE_ETH_SPEED_NUM_100G);
  const rte_ether_addr mac = PortMac(port);
  std::vector<std::vector<uint8_t>> frames(30, MakeUdpFrame(mac.addr_bytes, 128, 1, 2, 3, 4));

  ASSERT_EQ(rte_eth_dev_set_link_down(port), 0);
  ASSERT_EQ(rte_eth_link_get_nowait(port, &link), 0);
  EXPECT_EQ(link.link_status, RTE_ETH_LINK_DOWN);
  EXPECT_EQ(device_->Receive(frames), 0u);
  EXPECT_EQ(Xstat(port, "rx_link_down"), 30);

  ASSERT_EQ(rte_eth_dev_set_link_up(port), 0);
  // 128 descriptors, 30 + 100 + 30 frames without polling: 32 missed.
  EXPECT_EQ(device_->Receive(frames), 30u);
  std::vector<std::vector<uint8_t>> more(100, frames[0]);
  EXPECT_EQ(device_->Receive(more), 98u);
  EXPECT_EQ(device_->Receive(frames), 0u);
  std::vector<rte_mbuf*> got;
  RxUntil(port, 0, 128, 2000, &got);
  EXPECT_EQ(got.size(), 128u);
  FreeAll(&got);
  rte_eth_stats st;
  ASSERT_EQ(rte_eth_stats_get(port, &st), 0);
  EXPECT_EQ(st.ipackets, 128u);
  EXPECT_EQ(st.ibytes, 128u * 128u);
  EXPECT_EQ(st.imissed, 32u);
  EXPECT_EQ(st.q_ipackets[0], 128u);
  EXPECT_EQ(Xstat(port, "rx_q0_missed"), 32);

  // A queue that does not exist: counted as no-queue drops (in imissed).
  rte_flow_error error;
  const uint8_t mac_x[6] = {0x02, 0x77, 0, 0, 0, 1};
  ASSERT_EQ(rte_eth_dev_stop(port), 0);
  ASSERT_TRUE(SetUpPort(port,
                        [&] {
                          PortSetup s = setup;
                          s.nb_rxq = 2;
                          s.rx_deferred = {false, true};
                          return s;
                        }())
                  .ok());
  ASSERT_NE(MacRule(port, mac_x, -1, 1, &error), nullptr);
  ASSERT_EQ(rte_eth_stats_reset(port), 0);
  EXPECT_EQ(device_->Receive({MakeUdpFrame(mac_x, 64, 1, 2, 3, 4)}), 0u);
  EXPECT_EQ(Xstat(port, "rx_no_queue"), 1);
  ASSERT_EQ(rte_eth_stats_get(port, &st), 0);
  EXPECT_EQ(st.imissed, 1u);
  EXPECT_EQ(st.ipackets, 0u);
  EXPECT_EQ(Xstat(port, "rx_link_down"), 0) << "reset";
}

}  // namespace
}  // namespace iovtee::simnic::test
