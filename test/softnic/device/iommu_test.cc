// The IOMMU table on its own: exact ranges, straddles, the last-hit cache
// after unmap, and the guard pages around every mapping.
#include "test/softnic/device/iommu.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "gtest/gtest.h"

namespace iovtee::softnic {
namespace {

class IommuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fd_ = memfd_create("iommu-test", 0);
    ASSERT_GE(fd_, 0);
    ASSERT_EQ(ftruncate(fd_, 4 * 4096), 0);
    void* p = mmap(nullptr, 4 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
    ASSERT_NE(p, MAP_FAILED);
    file_ = static_cast<uint8_t*>(p);
    for (int i = 0; i < 4 * 4096; ++i) file_[i] = static_cast<uint8_t>(i * 7);
  }
  void TearDown() override {
    munmap(file_, 4 * 4096);
    close(fd_);
  }
  int fd_ = -1;
  uint8_t* file_ = nullptr;
};

TEST_F(IommuTest, TranslatesOnlyWholeRangesInsideOneMapping) {
  Iommu iommu;
  ASSERT_EQ(iommu.Map(0x10000, 1000, fd_, 0), 0);
  ASSERT_EQ(iommu.Map(0x10000 + 1000, 1000, fd_, 1000), 0);  // IOVA-adjacent
  uint8_t* p = iommu.Translate(0x10000, 1000);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p[999], file_[999]);
  EXPECT_EQ(iommu.Translate(0x10000 + 999, 1), p + 999);
  EXPECT_EQ(iommu.Translate(0x10000 + 999, 2), nullptr);  // straddles two mappings
  EXPECT_EQ(iommu.Translate(0x10000 - 1, 2), nullptr);
  EXPECT_EQ(iommu.Translate(0x10000 + 1500, 500)[0], file_[1500]);
  EXPECT_EQ(iommu.Translate(0x10000 + 1500, 501), nullptr);
  EXPECT_EQ(iommu.Translate(~uint64_t{0}, 2), nullptr);
  EXPECT_EQ(iommu.Translate(0x10000 + 2000, 0), nullptr);  // len 0 still needs a byte
  EXPECT_EQ(iommu.size(), 2u);
  EXPECT_EQ(iommu.mapped_bytes(), 2000u);
}

TEST_F(IommuTest, UnmapInvalidatesTheCachedHit) {
  Iommu iommu;
  ASSERT_EQ(iommu.Map(0x10000, 4096, fd_, 0), 0);
  ASSERT_NE(iommu.Translate(0x10000, 64), nullptr);
  ASSERT_EQ(iommu.Unmap(0x10000, 4096), 0);
  EXPECT_EQ(iommu.Translate(0x10000, 64), nullptr);
  // Remapping the IOVA at another file offset gives the new bytes.
  ASSERT_EQ(iommu.Map(0x10000, 4096, fd_, 8192), 0);
  EXPECT_EQ(iommu.Translate(0x10000, 1)[0], file_[8192]);
}

TEST_F(IommuTest, UnalignedOffsetKeepsTheDelta) {
  Iommu iommu;
  ASSERT_EQ(iommu.Map(0x5000, 300, fd_, 4096 + 4000), 0);
  uint8_t* p = iommu.Translate(0x5000, 300);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(memcmp(p, file_ + 8096, 300), 0);
  p[0] = 0xee;  // shared: the driver sees device writes
  EXPECT_EQ(file_[8096], 0xee);
}

TEST_F(IommuTest, LimitsAndErrors) {
  Iommu iommu(2);
  EXPECT_EQ(iommu.Map(0, 4096, fd_, 0), 0);
  EXPECT_EQ(iommu.Map(4096, 4096, fd_, 0), 0);
  EXPECT_EQ(iommu.Map(8192, 4096, fd_, 0), -ENOSPC);
  EXPECT_EQ(iommu.Map(100, 1, fd_, 0), -EEXIST);
  EXPECT_EQ(iommu.Map(1 << 20, 4096, 9999, 0), -EBADF);
  iommu.Clear();
  EXPECT_EQ(iommu.size(), 0u);
  EXPECT_EQ(iommu.Translate(0, 1), nullptr);
}

TEST_F(IommuTest, GuardPagesSurroundEveryMapping) {
  Iommu iommu;
  ASSERT_EQ(iommu.Map(0x10000, 4096, fd_, 0), 0);
  uint8_t* p = iommu.Translate(0x10000, 4096);
  ASSERT_NE(p, nullptr);
  // Both neighbours of the mapping are inaccessible in this process.
  EXPECT_DEATH({ p[4096] = 1; }, "");
  EXPECT_DEATH({ p[-1] = 1; }, "");
}

}  // namespace
}  // namespace iovtee::softnic
