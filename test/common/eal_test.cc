// The EAL helper itself: EAL comes up without hugepages, DPDK memory works,
// and nothing is left in the runtime directory afterwards.
#include "test/common/eal.h"

#include <sys/stat.h>

#include <rte_eal.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "gtest/gtest.h"
#include "src/common/log.h"

namespace iovtee::test {
namespace {

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

TEST(EalTest, StartsWithoutHugepagesAndCleansUp) {
  ASSERT_TRUE(StartEal().ok());
  EXPECT_TRUE(StartEal().ok()) << "second start must be a no-op";
  // Inside Bazel's sandbox /var/run is read-only and EAL runs without a
  // runtime directory; outside it the directory carries our unique prefix.
  const std::string runtime_dir = rte_eal_get_runtime_dir();
  if (!runtime_dir.empty()) {
    EXPECT_NE(runtime_dir.find(FilePrefix()), std::string::npos) << runtime_dir;
    EXPECT_TRUE(Exists(runtime_dir));
  }
  EXPECT_EQ(rte_eal_has_hugepages(), 0);

  rte_mempool* mp =
      rte_pktmbuf_pool_create("eal_test", 511, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
  ASSERT_NE(mp, nullptr);
  rte_mbuf* m = rte_pktmbuf_alloc(mp);
  ASSERT_NE(m, nullptr);
  EXPECT_NE(rte_pktmbuf_mtod(m, void*), nullptr);
  EXPECT_NE(rte_mbuf_data_iova(m), RTE_BAD_IOVA);
  rte_pktmbuf_free(m);
  EXPECT_EQ(rte_mempool_avail_count(mp), 511u);
  rte_mempool_free(mp);

  EXPECT_GE(LogType(), 0);
  EXPECT_EQ(rte_log_get_level(LogType()), static_cast<int>(RTE_LOG_INFO));

  StopEal();
  if (!runtime_dir.empty()) {
    EXPECT_FALSE(Exists(runtime_dir)) << runtime_dir << " left behind";
  }
  EXPECT_FALSE(StartEal().ok()) << "EAL cannot restart after cleanup";
}

}  // namespace
}  // namespace iovtee::test
