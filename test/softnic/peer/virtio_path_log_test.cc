#include "test/softnic/peer/virtio_path_log.h"

#include <gtest/gtest.h>
#include <rte_log.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "test/common/eal.h"

namespace iovtee::softnic {
namespace {

class VirtioPathLogTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ASSERT_TRUE(test::StartEal().ok()); }

  void SetUp() override {
    init_ = rte_log_register(VirtioPathLog::kInitLogType);
    driver_ = rte_log_register(VirtioPathLog::kDriverLogType);
    ASSERT_GE(init_, 0);
    ASSERT_GE(driver_, 0);
    // What the driver registers them with.
    rte_log_set_level(init_, RTE_LOG_NOTICE);
    rte_log_set_level(driver_, RTE_LOG_NOTICE);
    // Whatever EAL logs goes to `out_` unless the scanner passes it on.
    out_ = open_memstream(&buf_, &len_);
    ASSERT_NE(out_, nullptr);
    rte_openlog_stream(out_);
  }

  void TearDown() override {
    rte_openlog_stream(nullptr);
    std::fclose(out_);
    std::free(buf_);
  }

  std::string Out() {
    std::fflush(out_);
    return std::string(buf_, len_);
  }

  int init_ = -1, driver_ = -1;
  FILE* out_ = nullptr;
  char* buf_ = nullptr;
  size_t len_ = 0;
};

TEST_F(VirtioPathLogTest, RecordsTheChosenPathsAndPassesEveryLineOn) {
  {
    VirtioPathLog log;
    EXPECT_EQ(rte_log_get_level(init_), static_cast<int>(RTE_LOG_INFO));
    EXPECT_EQ(rte_log_get_level(driver_), static_cast<int>(RTE_LOG_INFO));
    EXPECT_EQ(log.rx_path(), "");
    // The lines DPDK 22.11's set_rxtx_funcs() logs when a port starts.
    rte_log(RTE_LOG_INFO, init_, "set_rxtx_funcs(): virtio: using standard Tx path on port 3\n");
    rte_log(RTE_LOG_INFO, init_, "set_rxtx_funcs(): virtio: using inorder Rx path on port 3\n");
    rte_log(RTE_LOG_INFO, driver_,
            "virtio_dev_configure(): disabled split ring vectorized rx for mrg_rxbuf enabled\n");
    rte_log(
        RTE_LOG_INFO, init_,
        "set_rxtx_funcs(): virtio: using vectorized Rx path on port 3\n");  // restart: last wins
    EXPECT_EQ(log.rx_path(), "vectorized");
    EXPECT_EQ(log.tx_path(), "standard");
    ASSERT_EQ(log.vectorized_notes().size(), 1u);
    EXPECT_NE(log.vectorized_notes()[0].find("for mrg_rxbuf enabled"), std::string::npos);
  }
  // Levels are back; the scanner stays, passing everything on.
  EXPECT_EQ(rte_log_get_level(init_), static_cast<int>(RTE_LOG_NOTICE));
  EXPECT_EQ(rte_log_get_level(driver_), static_cast<int>(RTE_LOG_NOTICE));
  rte_log(RTE_LOG_NOTICE, init_, "after\n");
  {
    VirtioPathLog again;  // the same scanner, a fresh record
    EXPECT_EQ(again.rx_path(), "");
    rte_log(RTE_LOG_INFO, init_, "set_rxtx_funcs(): virtio: using standard Rx path on port 4\n");
    EXPECT_EQ(again.rx_path(), "standard");
  }
  EXPECT_EQ(Out(),
            "set_rxtx_funcs(): virtio: using standard Tx path on port 3\n"
            "set_rxtx_funcs(): virtio: using inorder Rx path on port 3\n"
            "virtio_dev_configure(): disabled split ring vectorized rx for mrg_rxbuf enabled\n"
            "set_rxtx_funcs(): virtio: using vectorized Rx path on port 3\n"
            "after\n"
            "set_rxtx_funcs(): virtio: using standard Rx path on port 4\n");
}

TEST_F(VirtioPathLogTest, LeavesAMoreVerboseLevelAlone) {
  rte_log_set_level(init_, RTE_LOG_DEBUG);
  {
    VirtioPathLog log;
    EXPECT_EQ(rte_log_get_level(init_), static_cast<int>(RTE_LOG_DEBUG));
  }
  EXPECT_EQ(rte_log_get_level(init_), static_cast<int>(RTE_LOG_DEBUG));
}

TEST_F(VirtioPathLogTest, PackedRingPathsAndOtherLines) {
  VirtioPathLog log;
  log.ScanLine("set_rxtx_funcs(): virtio: using packed ring vectorized Rx path on port 0");
  log.ScanLine("set_rxtx_funcs(): virtio: using packed ring standard Tx path on port 0");
  EXPECT_EQ(log.rx_path(), "packed ring vectorized");
  EXPECT_EQ(log.tx_path(), "packed ring standard");
  log.ScanLine("unrelated line about Rx paths");
  EXPECT_EQ(log.rx_path(), "packed ring vectorized");
  EXPECT_TRUE(log.vectorized_notes().empty());
}

}  // namespace
}  // namespace iovtee::softnic
