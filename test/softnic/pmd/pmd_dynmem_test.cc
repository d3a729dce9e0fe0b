// The PMD's IOMMU mapping of DPDK memory in dynamic memory mode: memory DPDK
// allocates after probe is mapped for the device through the memory event
// callback (frames land in mbufs there), and memory DPDK releases is unmapped
// first. Needs free 2 MiB hugepages (EAL --in-memory --single-file-segments);
// skipped without them (echo 128 > /proc/sys/vm/nr_hugepages to run it).
#include <dirent.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>

#include "gtest/gtest.h"
#include "test/softnic/pmd/pmd_test_util.h"

namespace iovtee::simnic::test {
namespace {

long FreeHugepages() {
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  long value = 0;
  while (meminfo >> key >> value) {
    if (key == "HugePages_Free:") return value;
    meminfo.ignore(256, '\n');
  }
  return 0;
}

class DynamicMemoryTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (FreeHugepages() < 96) return;
    const std::string prefix = "iovtee-t-" + std::to_string(getpid());
    std::vector<std::string> args = {"pmd_dynmem_test",
                                     "--in-memory",
                                     "--single-file-segments",
                                     "--no-pci",
                                     "--file-prefix",
                                     prefix,
                                     "-l",
                                     "0",
                                     "--log-level",
                                     "lib.eal:warning"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    eal_up_ = rte_eal_init(static_cast<int>(argv.size()), argv.data()) >= 0;
  }
  static void TearDownTestSuite() {
    if (!eal_up_) return;
    const std::string dir = rte_eal_get_runtime_dir();
    rte_eal_cleanup();
    if (DIR* d = opendir(dir.c_str())) {
      while (dirent* e = readdir(d)) {
        if (e->d_name[0] != '.') unlink((dir + "/" + e->d_name).c_str());
      }
      closedir(d);
    }
    rmdir(dir.c_str());
    rmdir("/var/run/dpdk");
  }
  void SetUp() override {
    if (!eal_up_) GTEST_SKIP() << "needs 96 free 2 MiB hugepages (HugePages_Free in /proc/meminfo)";
  }

  static bool eal_up_;
};

bool DynamicMemoryTest::eal_up_ = false;

TEST_F(DynamicMemoryTest, MemoryAllocatedAfterProbeIsMappedAndFreedMemoryUnmapped) {
  const std::string name = "net_simnic_dyn";
  auto device = DeviceThread::Start(name, SocketDir() + "/" + name + ".sock");
  ASSERT_TRUE(device.ok()) << device.status();
  auto port = ProbePort(name, "socket=" + (*device)->socket_path());
  ASSERT_TRUE(port.ok()) << port.status();
  const int64_t maps_at_probe = Xstat(*port, "dma_maps_in_use");
  ASSERT_GE(maps_at_probe, 1);
  const uint64_t bytes_at_probe = (*device)->Stats().mapped_bytes;

  // 64 MiB of mbufs: DPDK has to allocate hugepages for them now.
  rte_mempool* mp = MakePool(28000, RTE_MBUF_DEFAULT_BUF_SIZE);
  ASSERT_NE(mp, nullptr);
  EXPECT_GT((*device)->Stats().mapped_bytes, bytes_at_probe + (48ull << 20))
      << "new DPDK memory was not mapped for the device";

  PortSetup setup;
  setup.pools = {mp};
  setup.nb_rxd = 4096;
  ASSERT_TRUE(SetUpPort(*port, setup).ok());
  rte_ether_addr mac;
  rte_eth_macaddr_get(*port, &mac);
  std::vector<std::vector<uint8_t>> frames(
      1000, MakeUdpFrame(mac.addr_bytes, 1000, 0x0a000001, 0x0a000002, 1, 2));
  EXPECT_EQ((*device)->Receive(frames), 1000u);
  std::vector<rte_mbuf*> got;
  RxUntil(*port, 0, 1000, 5000, &got);
  ASSERT_EQ(got.size(), 1000u);
  for (rte_mbuf* m : got) EXPECT_EQ(MbufBytes(m), frames[0]);
  FreeAll(&got);
  EXPECT_EQ(Xstat(*port, "iommu_faults"), 0);

  // Stopped, the queues hold no mbufs: the pool's memory can go back to the
  // system, and out of the device's IOMMU first.
  ASSERT_EQ(rte_eth_dev_stop(*port), 0);
  const uint64_t bytes_with_pool = (*device)->Stats().mapped_bytes;
  rte_mempool_free(mp);
  EXPECT_LT((*device)->Stats().mapped_bytes, bytes_with_pool - (48ull << 20))
      << "freed DPDK memory is still mapped";
  ASSERT_TRUE(RemovePort(name).ok());
}

}  // namespace
}  // namespace iovtee::simnic::test
