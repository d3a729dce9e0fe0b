// GuestMemory: the region table's validation, every translation at its
// boundaries and under hostile (wrapping) input, and the mappings MapFromFds
// owns.
#include "src/guest/guest_memory.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace iovtee {
namespace {

using ::testing::HasSubstr;

constexpr uint64_t kMiB = 1 << 20;

// Owns the heap buffers that stand in for mapped guest memory.
class Arena {
 public:
  uint8_t* Get(size_t size) {
    bufs_.push_back(std::make_unique<uint8_t[]>(size));
    return bufs_.back().get();
  }

 private:
  std::vector<std::unique_ptr<uint8_t[]>> bufs_;
};

std::unique_ptr<GuestMemory> MustCreate(const std::vector<GuestRegion>& regions) {
  auto mem = GuestMemory::Create(regions);
  EXPECT_TRUE(mem.ok()) << mem.status();
  return mem.ok() ? std::move(*mem) : nullptr;
}

// Expects Create to refuse `regions` with InvalidArgument and a message
// containing each of `parts`.
void ExpectRefused(const std::vector<GuestRegion>& regions, const std::vector<std::string>& parts) {
  auto mem = GuestMemory::Create(regions);
  ASSERT_FALSE(mem.ok());
  EXPECT_EQ(mem.status().code(), absl::StatusCode::kInvalidArgument) << mem.status();
  for (const std::string& p : parts) EXPECT_THAT(mem.status().message(), HasSubstr(p));
}

// ---------------------------------------------------------------------------
// Create: validation

TEST(GuestMemoryCreateTest, RejectsEmptyTable) { ExpectRefused({}, {"no regions"}); }

TEST(GuestMemoryCreateTest, AcceptsMaxRegionsAndRejectsOneMore) {
  Arena arena;
  std::vector<GuestRegion> regions;
  for (uint64_t i = 0; i <= GuestMemory::kMaxRegions; ++i) {
    regions.push_back({i * 0x1000, i * 0x1000, 0x10, arena.Get(0x10), 0});
  }
  ExpectRefused(regions, {"513 regions", "512"});
  regions.pop_back();
  auto mem = MustCreate(regions);
  ASSERT_NE(mem, nullptr);
  EXPECT_EQ(mem->regions().size(), GuestMemory::kMaxRegions);
}

TEST(GuestMemoryCreateTest, RejectsZeroSize) {
  Arena arena;
  ExpectRefused({{0x0, 0x0, 0x1000, arena.Get(0x1000), 0}, {0x5000, 0x5000, 0, arena.Get(1), 0}},
                {"region 1", "0x5000", "size is 0"});
}

TEST(GuestMemoryCreateTest, RejectsNullHost) {
  Arena arena;
  ExpectRefused({{0x0, 0x0, 0x1000, arena.Get(0x1000), 0}, {0xa000, 0xa000, 0x1000, nullptr, 0}},
                {"region 1", "0xa000", "null"});
}

TEST(GuestMemoryCreateTest, RejectsGpaRangeThatWraps) {
  Arena arena;
  uint8_t* buf = arena.Get(0x2000);
  // Ends exactly at 2^64: start + size would be 0 for anyone computing an end.
  ExpectRefused({{0xfffffffffffff000, 0x0, 0x1000, buf, 0}},
                {"region 0", "guest physical", "runs past", "0xfffffffffffff000", "0x1000"});
  ExpectRefused({{0x0, 0x0, 0x1000, buf, 0}, {0xfffffffffffff000, 0x10000, 0x2000, buf, 0}},
                {"region 1", "guest physical", "runs past", "0xfffffffffffff000", "0x2000"});
  // The last byte of the address space may be the region's last byte but one.
  EXPECT_NE(MustCreate({{0xfffffffffffff000, 0x0, 0xfff, buf, 0}}), nullptr);
}

TEST(GuestMemoryCreateTest, RejectsUvaRangeThatWraps) {
  Arena arena;
  ExpectRefused({{0x0, 0xffffffffffff0000, 0x10001, arena.Get(0x10001), 0}},
                {"region 0", "user address", "runs past", "0xffffffffffff0000", "0x10001"});
}

TEST(GuestMemoryCreateTest, RejectsVhostHvaRangeThatWraps) {
  Arena arena;
  ExpectRefused({{0x0, 0x0, 0x1000, arena.Get(0x1000), 0xfffffffffffff800}},
                {"region 0", "vhost address", "runs past", "0xfffffffffffff800"});
}

TEST(GuestMemoryCreateTest, RejectsHostRangeThatWraps) {
  // Never dereferenced: Create only does arithmetic on it.
  uint8_t* top = reinterpret_cast<uint8_t*>(UINTPTR_MAX - 0xff);
  ExpectRefused({{0x0, 0x0, 0x1000, top, 0}},
                {"region 0", "host address", "runs past", "0xffffffffffffff00"});
}

TEST(GuestMemoryCreateTest, RejectsGpaOverlap) {
  Arena arena;
  // Listed out of order, and the overlap is a single byte.
  ExpectRefused({{0x10000, 0x10000, 0x1000, arena.Get(0x1000), 0},
                 {0x0, 0x0, 0x1000, arena.Get(0x1000), 0},
                 {0xf000, 0x20000, 0x1001, arena.Get(0x1001), 0}},
                {"regions 2 and 0", "guest physical", "0xf000", "0x10001", "0x10000", "0x11000"});
  // One region inside another.
  ExpectRefused({{0x0, 0x0, 0x100000, arena.Get(0x100000), 0},
                 {0x2000, 0x200000, 0x1000, arena.Get(0x1000), 0},
                 {0x4000, 0x300000, 0x1000, arena.Get(0x1000), 0}},
                {"regions 0 and 1", "guest physical", "0x2000"});
  // Same start.
  ExpectRefused(
      {{0x3000, 0x0, 0x10, arena.Get(0x10), 0}, {0x3000, 0x1000, 0x10, arena.Get(0x10), 0}},
      {"overlap", "guest physical", "0x3000"});
}

TEST(GuestMemoryCreateTest, RejectsUvaOverlap) {
  Arena arena;
  ExpectRefused({{0x0, 0x7f0000001000, 0x1000, arena.Get(0x1000), 0},
                 {0x100000, 0x7f0000000000, 0x1800, arena.Get(0x1800), 0}},
                {"regions 1 and 0", "user addresses", "0x7f0000000000", "0x7f0000001800",
                 "0x7f0000001000", "0x7f0000002000"});
}

TEST(GuestMemoryCreateTest, RejectsVhostHvaOverlap) {
  Arena arena;
  ExpectRefused({{0x0, 0x0, 0x1000, arena.Get(0x1000), 0x7e0000000000},
                 {0x100000, 0x100000, 0x1000, arena.Get(0x1000), 0x7e0000000fff}},
                {"regions 0 and 1", "vhost addresses", "0x7e0000000fff"});
}

TEST(GuestMemoryCreateTest, AcceptsAdjacentRegionsAndSharedZeroVhostHva) {
  Arena arena;
  // Touching in every address space, and two regions without a vhost mapping.
  auto mem = MustCreate({{0x0, 0x1000, 0x1000, arena.Get(0x1000), 0x7e0000000000},
                         {0x1000, 0x2000, 0x1000, arena.Get(0x1000), 0x7e0000001000},
                         {0x2000, 0x0, 0x1000, arena.Get(0x1000), 0},
                         {0x3000, 0x3000, 0x1000, arena.Get(0x1000), 0}});
  EXPECT_NE(mem, nullptr);
}

TEST(GuestMemoryCreateTest, StoresRegionsSortedByGpa) {
  Arena arena;
  uint8_t* a = arena.Get(0x10);
  uint8_t* b = arena.Get(0x10);
  uint8_t* c = arena.Get(0x10);
  auto mem = MustCreate(
      {{0x300, 0x1, 0x10, c, 0x30}, {0x100, 0x2000, 0x10, a, 0}, {0x200, 0x30, 0x10, b, 0x50}});
  ASSERT_NE(mem, nullptr);
  ASSERT_EQ(mem->regions().size(), 3u);
  EXPECT_EQ(mem->regions()[0].guest_phys_addr, 0x100u);
  EXPECT_EQ(mem->regions()[0].host, a);
  EXPECT_EQ(mem->regions()[0].guest_user_addr, 0x2000u);
  EXPECT_EQ(mem->regions()[1].guest_phys_addr, 0x200u);
  EXPECT_EQ(mem->regions()[1].host, b);
  EXPECT_EQ(mem->regions()[1].vhost_hva, 0x50u);
  EXPECT_EQ(mem->regions()[2].guest_phys_addr, 0x300u);
  EXPECT_EQ(mem->regions()[2].host, c);
}

// ---------------------------------------------------------------------------
// Translation

TEST(GuestMemoryTest, SingleRegionBoundaries) {
  Arena arena;
  uint8_t* buf = arena.Get(0x1000);
  auto mem = MustCreate({{0x100000, 0x7f0000000000, 0x1000, buf, 0}});
  ASSERT_NE(mem, nullptr);
  EXPECT_EQ(mem->GpaToHost(0x100000, 1), buf);
  EXPECT_EQ(mem->GpaToHost(0x100000, 0x1000), buf);
  EXPECT_EQ(mem->GpaToHost(0x100fff, 1), buf + 0xfff);
  EXPECT_EQ(mem->GpaToHost(0x100800, 0x800), buf + 0x800);
  EXPECT_EQ(mem->GpaToHost(0x100000, 0x1001), nullptr);
  EXPECT_EQ(mem->GpaToHost(0x100001, 0x1000), nullptr);
  EXPECT_EQ(mem->GpaToHost(0x100fff, 2), nullptr);
  EXPECT_EQ(mem->GpaToHost(0x101000, 1), nullptr);
  EXPECT_EQ(mem->GpaToHost(0x0fffff, 1), nullptr);
  EXPECT_EQ(mem->GpaToHost(0x0fffff, 2), nullptr);
  EXPECT_EQ(mem->GpaToHost(0, 1), nullptr);
  // len == 0 is len == 1: the address itself must be inside.
  EXPECT_EQ(mem->GpaToHost(0x100fff, 0), buf + 0xfff);
  EXPECT_EQ(mem->GpaToHost(0x101000, 0), nullptr);

  uint8_t* p = mem->GpaToHost(0x100010, 4);
  ASSERT_NE(p, nullptr);
  std::memcpy(p, "abcd", 4);
  EXPECT_EQ(std::memcmp(buf + 0x10, "abcd", 4), 0);
}

TEST(GuestMemoryTest, MultiRegionTranslation) {
  Arena arena;
  uint8_t* low = arena.Get(0xa0000);
  uint8_t* mid = arena.Get(0x10000);
  uint8_t* high = arena.Get(0x4000);
  auto mem = MustCreate({{0x100000000, 0x7f0000200000, 0x4000, high, 0},
                         {0x0, 0x7f0000000000, 0xa0000, low, 0},
                         {0x100000, 0x7f0000100000, 0x10000, mid, 0}});
  ASSERT_NE(mem, nullptr);
  EXPECT_EQ(mem->GpaToHost(0x0, 8), low);
  EXPECT_EQ(mem->GpaToHost(0x9ffff, 1), low + 0x9ffff);
  EXPECT_EQ(mem->GpaToHost(0xa0000, 1), nullptr);
  EXPECT_EQ(mem->GpaToHost(0xfffff, 1), nullptr);
  EXPECT_EQ(mem->GpaToHost(0x100000, 0x10000), mid);
  EXPECT_EQ(mem->GpaToHost(0x10ffff, 1), mid + 0xffff);
  EXPECT_EQ(mem->GpaToHost(0x110000, 1), nullptr);
  EXPECT_EQ(mem->GpaToHost(0x100000000, 1), high);
  EXPECT_EQ(mem->GpaToHost(0x100003fff, 1), high + 0x3fff);
  EXPECT_EQ(mem->GpaToHost(0x100004000, 1), nullptr);
  EXPECT_EQ(mem->GpaToHost(0xffffffff, 1), nullptr);
  EXPECT_EQ(mem->GpaToHost(0xffffffff, 2), nullptr);
  // Spans a hole.
  EXPECT_EQ(mem->GpaToHost(0x9fff0, 0x100000), nullptr);
}

TEST(GuestMemoryTest, OverflowAttacksAreRefused) {
  Arena arena;
  uint8_t* zero = arena.Get(0x1000);
  uint8_t* top = arena.Get(0x1000);
  // A region ending at the last representable address, and one at 0 that a
  // wrapped end (gpa + len past 2^64) would land in.
  const uint64_t top_gpa = UINT64_MAX - 0x1000;
  auto mem = MustCreate(
      {{0x0, 0x0, 0x1000, zero, 0x1000}, {top_gpa, UINT64_MAX - 0x1000, 0x1000, top, 0x4000}});
  ASSERT_NE(mem, nullptr);
  EXPECT_EQ(mem->GpaToHost(UINT64_MAX - 1, 1), top + 0xfff);
  EXPECT_EQ(mem->GpaToHost(UINT64_MAX - 1, 16), nullptr);
  EXPECT_EQ(mem->GpaToHost(UINT64_MAX, 1), nullptr);
  EXPECT_EQ(mem->GpaToHost(UINT64_MAX, 2), nullptr);
  EXPECT_EQ(mem->GpaToHost(UINT64_MAX, UINT64_MAX), nullptr);
  EXPECT_EQ(mem->GpaToHost(top_gpa, UINT64_MAX), nullptr);
  EXPECT_EQ(mem->GpaToHost(top_gpa + 1, UINT64_MAX), nullptr);
  EXPECT_EQ(mem->GpaToHost(0x10, UINT64_MAX - 0xf), nullptr);
  EXPECT_EQ(mem->GpaToHost(0x10, UINT64_MAX), nullptr);
  EXPECT_EQ(mem->GpaToHost(0x0, UINT64_MAX), nullptr);
  EXPECT_EQ(mem->GpaToHost(0x0, uint64_t{1} << 63), nullptr);

  GuestSegment segs[4];
  EXPECT_EQ(mem->GpaToSegments(UINT64_MAX - 1, 16, segs), -1);
  EXPECT_EQ(mem->GpaToSegments(UINT64_MAX - 1, 1, segs), 1);
  EXPECT_EQ(mem->GpaToSegments(UINT64_MAX - 1, 2, segs), -1);
  EXPECT_EQ(mem->GpaToSegments(UINT64_MAX, 1, segs), -1);
  EXPECT_EQ(mem->GpaToSegments(0x0, UINT64_MAX, segs), -1);
  EXPECT_EQ(mem->GpaToSegments(top_gpa, UINT64_MAX, segs), -1);

  EXPECT_EQ(mem->UvaToHost(UINT64_MAX - 1, 16), nullptr);
  EXPECT_EQ(mem->UvaToHost(UINT64_MAX - 1, 1), top + 0xfff);
  EXPECT_EQ(mem->UvaToHost(0x10, UINT64_MAX), nullptr);
  EXPECT_EQ(mem->VhostHvaToHost(0x1010, UINT64_MAX), nullptr);
  EXPECT_EQ(mem->VhostHvaToHost(0x4ff0, UINT64_MAX - 0x100), nullptr);
  EXPECT_EQ(mem->VhostHvaToHost(0x4ff0, 0x10), top + 0xff0);
}

TEST(GuestMemoryTest, GpaToHostRefusesRangeCrossingAdjacentRegions) {
  Arena arena;
  uint8_t* a = arena.Get(0x1000);
  uint8_t* b = arena.Get(0x2000);
  auto mem = MustCreate({{0x0, 0x0, 0x1000, a, 0}, {0x1000, 0x1000, 0x2000, b, 0}});
  ASSERT_NE(mem, nullptr);
  EXPECT_EQ(mem->GpaToHost(0xff0, 0x10), a + 0xff0);
  EXPECT_EQ(mem->GpaToHost(0xff0, 0x11), nullptr);
  EXPECT_EQ(mem->GpaToHost(0xfff, 2), nullptr);
  EXPECT_EQ(mem->GpaToHost(0x0, 0x3000), nullptr);
  EXPECT_EQ(mem->GpaToHost(0x1000, 0x10), b);
  EXPECT_EQ(mem->GpaToHost(0x1000, 0x2000), b);
}

TEST(GuestMemoryTest, GpaToSegmentsSplitsAcrossAdjacentRegions) {
  Arena arena;
  uint8_t* a = arena.Get(0x1000);
  uint8_t* b = arena.Get(0x800);
  uint8_t* c = arena.Get(0x1800);
  std::memset(a, 0, 0x1000);
  std::memset(b, 0, 0x800);
  std::memset(c, 0, 0x1800);
  // Listed out of order; host buffers are unrelated to each other.
  auto mem = MustCreate({{0x2800, 0x0, 0x1800, c, 0},
                         {0x1000, 0x10000, 0x1000, a, 0},
                         {0x2000, 0x20000, 0x800, b, 0}});
  ASSERT_NE(mem, nullptr);

  GuestSegment segs[3];
  ASSERT_EQ(mem->GpaToSegments(0x1ff0, 0x820, segs), 3);
  EXPECT_EQ(segs[0].host, a + 0xff0);
  EXPECT_EQ(segs[0].gpa, 0x1ff0u);
  EXPECT_EQ(segs[0].len, 0x10u);
  EXPECT_EQ(segs[1].host, b);
  EXPECT_EQ(segs[1].gpa, 0x2000u);
  EXPECT_EQ(segs[1].len, 0x800u);
  EXPECT_EQ(segs[2].host, c);
  EXPECT_EQ(segs[2].gpa, 0x2800u);
  EXPECT_EQ(segs[2].len, 0x10u);

  // Byte i of the buffer is (i & 0xff) + 1, written segment by segment.
  uint32_t i = 0;
  for (const GuestSegment& s : segs) {
    for (uint32_t k = 0; k < s.len; ++k, ++i) s.host[k] = static_cast<uint8_t>((i & 0xff) + 1);
  }
  ASSERT_EQ(i, 0x820u);
  // Each byte sits at its GPA's place, and nothing around the buffer moved.
  for (uint64_t gpa = 0x1000; gpa < 0x4000; ++gpa) {
    const uint8_t want = gpa >= 0x1ff0 && gpa < 0x1ff0 + 0x820
                             ? static_cast<uint8_t>(((gpa - 0x1ff0) & 0xff) + 1)
                             : 0;
    ASSERT_EQ(*mem->GpaToHost(gpa, 1), want) << std::hex << "gpa 0x" << gpa;
  }
  EXPECT_EQ(a[0xfef], 0);
  EXPECT_EQ(a[0xff0], 1);
  EXPECT_EQ(b[0], 0x11);
  EXPECT_EQ(b[0x7ff], static_cast<uint8_t>(((0x80f) & 0xff) + 1));
  EXPECT_EQ(c[0], static_cast<uint8_t>((0x810 & 0xff) + 1));
  EXPECT_EQ(c[0x10], 0);

  // The whole table, exactly.
  ASSERT_EQ(mem->GpaToSegments(0x1000, 0x3000, segs), 3);
  EXPECT_EQ(segs[0].len + segs[1].len + segs[2].len, 0x3000u);
  EXPECT_EQ(mem->GpaToSegments(0x1000, 0x3001, segs), -1);
  EXPECT_EQ(mem->GpaToSegments(0xfff, 0x10, segs), -1);
}

TEST(GuestMemoryTest, GpaToSegmentsNeedsEnoughSlots) {
  Arena arena;
  uint8_t* a = arena.Get(0x100);
  uint8_t* b = arena.Get(0x100);
  uint8_t* c = arena.Get(0x100);
  auto mem = MustCreate(
      {{0x0, 0x0, 0x100, a, 0}, {0x100, 0x100, 0x100, b, 0}, {0x200, 0x200, 0x100, c, 0}});
  ASSERT_NE(mem, nullptr);
  GuestSegment segs[3];
  EXPECT_EQ(mem->GpaToSegments(0x80, 0x200, absl::MakeSpan(segs, 0)), -1);
  EXPECT_EQ(mem->GpaToSegments(0x80, 0x200, absl::MakeSpan(segs, 2)), -1);
  EXPECT_EQ(mem->GpaToSegments(0x80, 0x200, absl::MakeSpan(segs, 3)), 3);
  EXPECT_EQ(mem->GpaToSegments(0x80, 0x180, absl::MakeSpan(segs, 2)), 2);
  EXPECT_EQ(mem->GpaToSegments(0x80, 0x10, absl::MakeSpan(segs, 1)), 1);
  EXPECT_EQ(segs[0].host, a + 0x80);
  EXPECT_EQ(segs[0].len, 0x10u);
}

TEST(GuestMemoryTest, GpaToSegmentsRefusesHoles) {
  Arena arena;
  uint8_t* a = arena.Get(0x100);
  uint8_t* b = arena.Get(0x100);
  auto mem = MustCreate({{0x0, 0x0, 0x100, a, 0}, {0x101, 0x200, 0x100, b, 0}});
  ASSERT_NE(mem, nullptr);
  GuestSegment segs[4];
  EXPECT_EQ(mem->GpaToSegments(0x0, 0x100, segs), 1);
  EXPECT_EQ(mem->GpaToSegments(0x0, 0x101, segs), -1);
  EXPECT_EQ(mem->GpaToSegments(0xf0, 0x20, segs), -1);
  EXPECT_EQ(mem->GpaToSegments(0x100, 1, segs), -1);
  EXPECT_EQ(mem->GpaToSegments(0x101, 0x100, segs), 1);
  EXPECT_EQ(mem->GpaToSegments(0x101, 0x101, segs), -1);
}

TEST(GuestMemoryTest, GpaToSegmentsZeroLength) {
  Arena arena;
  auto mem = MustCreate({{0x1000, 0x0, 0x100, arena.Get(0x100), 0}});
  ASSERT_NE(mem, nullptr);
  GuestSegment segs[1];
  EXPECT_EQ(mem->GpaToSegments(0x1000, 0, segs), 0);
  EXPECT_EQ(mem->GpaToSegments(0x10ff, 0, segs), 0);
  EXPECT_EQ(mem->GpaToSegments(0x1100, 0, segs), -1);
  EXPECT_EQ(mem->GpaToSegments(0x0, 0, segs), -1);
}

TEST(GuestMemoryTest, GpaToSegmentsRefusesLengthAboveUint32) {
  // 8 GiB of guest memory at a made-up host address: only arithmetic is done.
  uint8_t* host = reinterpret_cast<uint8_t*>(uintptr_t{1} << 44);
  auto mem = MustCreate({{0x100000000, 0x0, uint64_t{8} << 30, host, 0}});
  ASSERT_NE(mem, nullptr);
  GuestSegment segs[2];
  ASSERT_EQ(mem->GpaToSegments(0x100000000, UINT32_MAX, segs), 1);
  EXPECT_EQ(segs[0].len, UINT32_MAX);
  EXPECT_EQ(segs[0].host, host);
  EXPECT_EQ(mem->GpaToSegments(0x100000000, uint64_t{UINT32_MAX} + 1, segs), -1);
  EXPECT_EQ(mem->GpaToSegments(0x100000000, uint64_t{1} << 33, segs), -1);
  // GpaToHost has no such limit.
  EXPECT_EQ(mem->GpaToHost(0x100000000, uint64_t{8} << 30), host);
}

TEST(GuestMemoryTest, UvaTranslation) {
  Arena arena;
  uint8_t* a = arena.Get(0x1000);
  uint8_t* b = arena.Get(0x1000);
  // UVA order is the reverse of GPA order, and adjacent in UVA only.
  auto mem =
      MustCreate({{0x0, 0x7f0000001000, 0x1000, a, 0}, {0x100000, 0x7f0000000000, 0x1000, b, 0}});
  ASSERT_NE(mem, nullptr);
  EXPECT_EQ(mem->UvaToHost(0x7f0000000000, 1), b);
  EXPECT_EQ(mem->UvaToHost(0x7f0000000fff, 1), b + 0xfff);
  EXPECT_EQ(mem->UvaToHost(0x7f0000001000, 0x1000), a);
  EXPECT_EQ(mem->UvaToHost(0x7f0000001fff, 0), a + 0xfff);
  EXPECT_EQ(mem->UvaToHost(0x7f0000002000, 1), nullptr);
  EXPECT_EQ(mem->UvaToHost(0x7effffffffff, 1), nullptr);
  EXPECT_EQ(mem->UvaToHost(0x7f0000000ff0, 0x20), nullptr);
  EXPECT_EQ(mem->UvaToHost(0x7f0000001800, 0x801), nullptr);
  // A GPA is not a UVA.
  EXPECT_EQ(mem->UvaToHost(0x0, 1), nullptr);
  EXPECT_EQ(mem->UvaToHost(0x100000, 1), nullptr);
}

TEST(GuestMemoryTest, VhostHvaTranslation) {
  Arena arena;
  uint8_t* a = arena.Get(0x1000);
  uint8_t* b = arena.Get(0x1000);
  // b has no vhost mapping: vhost_hva 0 must not match addresses [0, 0x1000).
  auto mem = MustCreate({{0x0, 0x0, 0x1000, a, 0x7e0000000000}, {0x1000, 0x1000, 0x1000, b, 0}});
  ASSERT_NE(mem, nullptr);
  EXPECT_EQ(mem->VhostHvaToHost(0x7e0000000000, 0x1000), a);
  EXPECT_EQ(mem->VhostHvaToHost(0x7e0000000fff, 1), a + 0xfff);
  EXPECT_EQ(mem->VhostHvaToHost(0x7e0000000fff, 0), a + 0xfff);
  EXPECT_EQ(mem->VhostHvaToHost(0x7e0000001000, 1), nullptr);
  EXPECT_EQ(mem->VhostHvaToHost(0x7e0000000ff0, 0x11), nullptr);
  EXPECT_EQ(mem->VhostHvaToHost(0x7dffffffffff, 1), nullptr);
  EXPECT_EQ(mem->VhostHvaToHost(0x0, 1), nullptr);
  EXPECT_EQ(mem->VhostHvaToHost(0x10, 0x10), nullptr);
  EXPECT_EQ(mem->VhostHvaToHost(0x1000, 1), nullptr);
}

TEST(GuestMemoryTest, HostToGpaRoundTrip) {
  Arena arena;
  // One allocation, so that the bytes around each region are valid pointers
  // that belong to no region.
  uint8_t* buf = arena.Get(0x5000);
  uint8_t* a = buf + 0x800;
  uint8_t* b = buf + 0x2000;
  uint8_t* other = buf + 0x1800;
  auto mem = MustCreate({{0x200000, 0x0, 0x3000, b, 0}, {0x1000, 0x10000, 0x1000, a, 0}});
  ASSERT_NE(mem, nullptr);
  for (uint64_t gpa : {0x1000ull, 0x1001ull, 0x1fffull, 0x200000ull, 0x201234ull, 0x202fffull}) {
    const uint8_t* p = mem->GpaToHost(gpa, 1);
    ASSERT_NE(p, nullptr) << std::hex << gpa;
    EXPECT_EQ(mem->HostToGpa(p), gpa) << std::hex << gpa;
  }
  EXPECT_EQ(mem->HostToGpa(a + 0x1000), UINT64_MAX);
  EXPECT_EQ(mem->HostToGpa(b + 0x3000), UINT64_MAX);
  EXPECT_EQ(mem->HostToGpa(a - 1), UINT64_MAX);
  EXPECT_EQ(mem->HostToGpa(other), UINT64_MAX);
  EXPECT_EQ(mem->HostToGpa(nullptr), UINT64_MAX);
}

// ---------------------------------------------------------------------------
// Larger tables (the binary search) against a reference model.

// The obvious answer, computed in 128 bits so that it cannot share a wrapping
// bug with the code under test.
struct Reference {
  std::vector<GuestRegion> regions;

  const GuestRegion* Find(uint64_t gpa) const {
    for (const GuestRegion& r : regions) {
      if (gpa >= r.guest_phys_addr &&
          static_cast<unsigned __int128>(gpa) <
              static_cast<unsigned __int128>(r.guest_phys_addr) + r.size) {
        return &r;
      }
    }
    return nullptr;
  }

  uint8_t* GpaToHost(uint64_t gpa, uint64_t len) const {
    const GuestRegion* r = Find(gpa);
    const unsigned __int128 end = static_cast<unsigned __int128>(gpa) + std::max<uint64_t>(len, 1);
    if (r == nullptr || end > static_cast<unsigned __int128>(r->guest_phys_addr) + r->size) {
      return nullptr;
    }
    return r->host + (gpa - r->guest_phys_addr);
  }

  // The number of segments, or -1.
  int Segments(uint64_t gpa, uint64_t len) const {
    if (len > UINT32_MAX) return -1;
    if (len == 0) return Find(gpa) ? 0 : -1;
    int n = 0;
    unsigned __int128 at = gpa;
    const unsigned __int128 end = static_cast<unsigned __int128>(gpa) + len;
    while (at < end) {
      if (at > UINT64_MAX) return -1;
      const GuestRegion* r = Find(static_cast<uint64_t>(at));
      if (r == nullptr) return -1;
      at = static_cast<unsigned __int128>(r->guest_phys_addr) + r->size;
      ++n;
    }
    return n;
  }
};

class GuestMemoryTableTest : public ::testing::TestWithParam<int> {};

TEST_P(GuestMemoryTableTest, MatchesReference) {
  const int count = GetParam();
  std::mt19937_64 rng(count);
  Arena arena;
  Reference ref;
  uint64_t gpa = 0x1000;
  for (int i = 0; i < count; ++i) {
    const uint64_t size = 1 + rng() % 64;
    // About one region in three touches the one before it.
    if (rng() % 3 != 0) gpa += 1 + rng() % 64;
    ref.regions.push_back({gpa, 0x7f0000000000 + gpa * 2, size, arena.Get(size), 0});
    gpa += size;
  }
  std::vector<GuestRegion> shuffled = ref.regions;
  std::shuffle(shuffled.begin(), shuffled.end(), rng);
  auto mem = MustCreate(shuffled);
  ASSERT_NE(mem, nullptr);
  const uint64_t lo = ref.regions.front().guest_phys_addr;
  const uint64_t hi = ref.regions.back().guest_phys_addr + ref.regions.back().size;

  std::vector<uint64_t> addrs = {0, lo - 1, lo, hi - 1, hi, hi + 1, UINT64_MAX, UINT64_MAX - 1};
  for (const GuestRegion& r : ref.regions) {
    const uint64_t first = r.guest_phys_addr;
    const uint64_t last = r.guest_phys_addr + r.size - 1;
    addrs.insert(addrs.end(), {first - 1, first, first + 1, last - 1, last, last + 1});
    // Every region's own bytes, exactly.
    EXPECT_EQ(mem->GpaToHost(first, r.size), r.host) << std::hex << first;
    EXPECT_EQ(mem->GpaToHost(last, 1), r.host + r.size - 1) << std::hex << last;
    EXPECT_EQ(mem->HostToGpa(r.host + r.size - 1), last);
  }
  for (int i = 0; i < 5000; ++i) addrs.push_back(lo - 70 + rng() % (hi - lo + 140));
  const uint64_t lens[] = {0, 1, 2, 7, 63, 64, 65, 200, UINT32_MAX, UINT64_MAX, UINT64_MAX - 5};

  GuestSegment segs[GuestMemory::kMaxRegions];
  for (uint64_t a : addrs) {
    for (uint64_t len : lens) {
      ASSERT_EQ(mem->GpaToHost(a, len), ref.GpaToHost(a, len))
          << std::hex << "gpa 0x" << a << " len 0x" << len;
    }
    const uint64_t len = rng() % 300;
    const int want = ref.Segments(a, len);
    const int got = mem->GpaToSegments(a, len, segs);
    ASSERT_EQ(got, want) << std::hex << "gpa 0x" << a << " len 0x" << len;
    uint64_t at = a;
    for (int k = 0; k < got; ++k) {
      ASSERT_EQ(segs[k].gpa, at);
      ASSERT_EQ(segs[k].host, ref.GpaToHost(at, 1));
      ASSERT_NE(ref.GpaToHost(at, segs[k].len), nullptr);
      at += segs[k].len;
    }
    if (got >= 0) {
      ASSERT_EQ(at - a, len);
    }
  }
}

// 8 is the largest table searched linearly; the rest take the binary search.
INSTANTIATE_TEST_SUITE_P(Sizes, GuestMemoryTableTest, ::testing::Values(1, 2, 8, 9, 64, 512));

// ---------------------------------------------------------------------------
// MapFromFds

// A memfd the test itself maps, as QEMU and librte_vhost would.
class Memfd {
 public:
  Memfd(const std::string& name, size_t size) : name_(name), size_(size) {
    fd_ = memfd_create(name.c_str(), MFD_CLOEXEC);
    EXPECT_GE(fd_, 0) << std::strerror(errno);
    EXPECT_EQ(ftruncate(fd_, static_cast<off_t>(size)), 0) << std::strerror(errno);
    void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
    EXPECT_NE(p, MAP_FAILED) << std::strerror(errno);
    map_ = p == MAP_FAILED ? nullptr : static_cast<uint8_t*>(p);
  }
  ~Memfd() {
    Unmap();
    Close();
  }
  void Unmap() {
    if (map_ != nullptr) munmap(map_, size_);
    map_ = nullptr;
  }
  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }
  int fd() const { return fd_; }
  uint8_t* map() const { return map_; }

 private:
  std::string name_;
  size_t size_;
  int fd_ = -1;
  uint8_t* map_ = nullptr;
};

std::vector<int> OpenFds() {
  std::vector<int> fds;
  DIR* d = opendir("/proc/self/fd");
  if (d == nullptr) return fds;
  const int own = dirfd(d);
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    const int fd = std::atoi(e->d_name);
    if (fd != own) fds.push_back(fd);
  }
  closedir(d);
  std::sort(fds.begin(), fds.end());
  return fds;
}

// Lines of /proc/self/maps that map the memfd called `name`.
int MappingsOf(const std::string& name) {
  std::ifstream maps("/proc/self/maps");
  const std::string tag = "/memfd:" + name + " ";
  int n = 0;
  for (std::string line; std::getline(maps, line);) {
    if (line.find(tag) != std::string::npos) ++n;
  }
  return n;
}

std::string UniqueName(const char* what) {
  return std::string("iovtee_gm_") + what + "_" + std::to_string(getpid());
}

TEST(GuestMemoryMapTest, SharesDataWithTheCallersMapping) {
  const std::string name = UniqueName("share");
  Memfd f(name, 2 * kMiB);
  ASSERT_NE(f.map(), nullptr);
  auto mem =
      GuestMemory::MapFromFds({{0x40000000, 0x7f0000000000, 2 * kMiB, 0, f.fd(), 0x7e0000000000}});
  ASSERT_TRUE(mem.ok()) << mem.status();
  const GuestMemory& m = **mem;
  ASSERT_EQ(m.regions().size(), 1u);
  EXPECT_EQ(m.regions()[0].vhost_hva, 0x7e0000000000u);
  // Its own view, not the caller's.
  EXPECT_NE(m.regions()[0].host, f.map());

  uint8_t* p = m.GpaToHost(0x40000000 + 0x1234, 5);
  ASSERT_NE(p, nullptr);
  std::memcpy(p, "guest", 5);
  EXPECT_EQ(std::memcmp(f.map() + 0x1234, "guest", 5), 0);

  std::memcpy(f.map() + 2 * kMiB - 4, "host", 4);
  uint8_t* q = m.GpaToHost(0x40000000 + 2 * kMiB - 4, 4);
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(std::memcmp(q, "host", 4), 0);
  EXPECT_EQ(m.GpaToHost(0x40000000 + 2 * kMiB - 4, 5), nullptr);
  EXPECT_EQ(m.UvaToHost(0x7f0000001234, 5), p);
  EXPECT_EQ(m.VhostHvaToHost(0x7e0000001234, 5), p);
  EXPECT_EQ(m.HostToGpa(p), 0x40000000u + 0x1234);
}

// DMA registration needs page-aligned ranges that are whole pages: a region
// that starts at an unaligned offset of its fd still sits inside one.
TEST(GuestMemoryMapTest, MappedRangesArePageAlignedAndHoldUnalignedRegions) {
  const std::string name = UniqueName("ranges");
  Memfd f(name, 3 * kMiB);
  const uint64_t off = 0x1800;  // not page aligned
  auto mem = GuestMemory::MapFromFds({{0x0, 0x7f0000000000, kMiB, off, f.fd(), 0x7e0000000000}});
  ASSERT_TRUE(mem.ok()) << mem.status();
  const auto ranges = (*mem)->mapped_ranges();
  ASSERT_EQ(ranges.size(), 1u);
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  EXPECT_EQ(ranges[0].page_size, page);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(ranges[0].addr) % page, 0u);
  EXPECT_EQ(ranges[0].len % page, 0u);
  const GuestRegion& r = (*mem)->regions()[0];
  EXPECT_GE(r.host, ranges[0].addr);
  EXPECT_LE(r.host + r.size, ranges[0].addr + ranges[0].len);
  EXPECT_EQ(r.host, ranges[0].addr + off);
  // Create() maps nothing of its own.
  auto plain = GuestMemory::Create({GuestRegion{0, 0x1000, 0x1000, f.map(), 0x1000}});
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_TRUE((*plain)->mapped_ranges().empty());
}

TEST(GuestMemoryMapTest, MappingOutlivesTheCallersMappingAndFd) {
  const std::string name = UniqueName("outlive");
  Memfd f(name, 1 * kMiB);
  ASSERT_NE(f.map(), nullptr);
  for (size_t i = 0; i < kMiB; i += 4096) f.map()[i] = static_cast<uint8_t>(i >> 12);
  auto mem = GuestMemory::MapFromFds({{0x0, 0x7f0000000000, kMiB, 0, f.fd(), 0}});
  ASSERT_TRUE(mem.ok()) << mem.status();
  // What librte_vhost does on SET_MEM_TABLE.
  f.Unmap();
  f.Close();
  EXPECT_GE(MappingsOf(name), 1);

  for (size_t i = 0; i < kMiB; i += 4096) {
    const uint8_t* p = (*mem)->GpaToHost(i, 1);
    ASSERT_NE(p, nullptr);
    ASSERT_EQ(*p, static_cast<uint8_t>(i >> 12)) << i;
  }
  uint8_t* last = (*mem)->GpaToHost(kMiB - 1, 1);
  ASSERT_NE(last, nullptr);
  *last = 0x5a;
  EXPECT_EQ(*(*mem)->GpaToHost(kMiB - 1, 1), 0x5a);
}

TEST(GuestMemoryMapTest, RegionsAtNonZeroMmapOffsets) {
  const std::string name = UniqueName("offset");
  Memfd f(name, 4 * kMiB + 0x2000);
  ASSERT_NE(f.map(), nullptr);
  uint8_t* file = f.map();
  file[0] = 0xa0;
  file[2 * kMiB - 1] = 0xa1;
  file[2 * kMiB] = 0xb0;
  file[4 * kMiB - 1] = 0xb1;
  file[4 * kMiB + 0x1234] = 0xc0;
  // Two regions in one memfd (as QEMU lays out RAM below and above 4 GiB), and
  // one at an offset that is not page aligned. Listed out of GPA order.
  auto mem = GuestMemory::MapFromFds({
      {0x100000000, 0x7f0000200000, 2 * kMiB, 2 * kMiB, f.fd(), 0},
      {0x0, 0x7f0000000000, 2 * kMiB, 0, f.fd(), 0},
      {0x200000000, 0x7f0000400000, 0x100, 4 * kMiB + 0x1234, f.fd(), 0},
  });
  ASSERT_TRUE(mem.ok()) << mem.status();
  const GuestMemory& m = **mem;
  ASSERT_EQ(m.regions().size(), 3u);
  EXPECT_EQ(m.regions()[0].guest_phys_addr, 0x0u);
  EXPECT_EQ(m.regions()[1].guest_phys_addr, 0x100000000u);
  EXPECT_EQ(m.regions()[2].guest_phys_addr, 0x200000000u);

  EXPECT_EQ(*m.GpaToHost(0x0, 1), 0xa0);
  EXPECT_EQ(*m.GpaToHost(2 * kMiB - 1, 1), 0xa1);
  EXPECT_EQ(m.GpaToHost(2 * kMiB, 1), nullptr);
  EXPECT_EQ(*m.GpaToHost(0x100000000, 1), 0xb0);
  EXPECT_EQ(*m.GpaToHost(0x100000000 + 2 * kMiB - 1, 1), 0xb1);
  EXPECT_EQ(m.GpaToHost(0x100000000 + 2 * kMiB, 1), nullptr);
  EXPECT_EQ(*m.GpaToHost(0x200000000, 1), 0xc0);
  EXPECT_EQ(*m.UvaToHost(0x7f0000200000, 1), 0xb0);

  std::memcpy(m.GpaToHost(0x100000000 + 0x10, 3), "abc", 3);
  EXPECT_EQ(std::memcmp(file + 2 * kMiB + 0x10, "abc", 3), 0);
  std::memcpy(m.GpaToHost(0x200000000 + 0xff, 1), "z", 1);
  EXPECT_EQ(file[4 * kMiB + 0x1234 + 0xff], 'z');
}

TEST(GuestMemoryMapTest, BadFdFailsAndLeaksNothing) {
  const std::vector<int> before = OpenFds();
  const std::string name = UniqueName("badfd");
  int closed;
  {
    Memfd f(name, 4096);
    closed = f.fd();
  }
  auto mem = GuestMemory::MapFromFds({{0x0, 0x0, 4096, 0, closed, 0}});
  ASSERT_FALSE(mem.ok());
  EXPECT_THAT(mem.status().message(), HasSubstr("region 0"));
  EXPECT_THAT(mem.status().message(), HasSubstr(std::strerror(EBADF)));

  mem = GuestMemory::MapFromFds({{0x0, 0x0, 4096, 0, -1, 0}});
  ASSERT_FALSE(mem.ok());
  EXPECT_EQ(mem.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(mem.status().message(), HasSubstr("region 0"));
  EXPECT_EQ(OpenFds(), before);
  EXPECT_EQ(MappingsOf(name), 0);
}

TEST(GuestMemoryMapTest, FailureOnALaterRegionUndoesTheEarlierOnes) {
  const std::string name = UniqueName("undo");
  Memfd f(name, 2 * kMiB);
  f.Unmap();
  int sock[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sock), 0);
  // The same file, opened read-only: a shared writable mapping is refused.
  const int read_only =
      open(("/proc/self/fd/" + std::to_string(f.fd())).c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(read_only, 0) << std::strerror(errno);
  const std::vector<int> before = OpenFds();

  struct Case {
    int bad_fd;
    int err;
    const char* what;
  } cases[] = {
      {sock[0], ENODEV, "mmap"},
      {read_only, EACCES, "mmap"},
      {1000000, EBADF, "dup"},
  };
  for (const Case& c : cases) {
    // Regions 0 and 1 are mapped before region 2 fails.
    auto mem = GuestMemory::MapFromFds({{0x0, 0x0, kMiB, 0, f.fd(), 0},
                                        {0x100000, 0x100000, kMiB, kMiB, f.fd(), 0},
                                        {0x200000, 0x200000, 4096, 0, c.bad_fd, 0}});
    ASSERT_FALSE(mem.ok()) << c.bad_fd;
    EXPECT_THAT(mem.status().message(), HasSubstr("region 2"));
    EXPECT_THAT(mem.status().message(), HasSubstr(c.what));
    EXPECT_THAT(mem.status().message(), HasSubstr(std::strerror(c.err)));
    EXPECT_EQ(MappingsOf(name), 0) << mem.status();
    EXPECT_EQ(OpenFds(), before) << mem.status();
  }
  close(read_only);
  close(sock[0]);
  close(sock[1]);
}

TEST(GuestMemoryMapTest, InvalidTableMapsNothing) {
  const std::string name = UniqueName("invalid");
  Memfd f(name, 2 * kMiB);
  f.Unmap();
  const std::vector<int> before = OpenFds();
  struct Case {
    std::vector<GuestRegionFd> regions;
    const char* message;
  } cases[] = {
      {{}, "no regions"},
      {{{0x0, 0x0, kMiB, 0, f.fd(), 0}, {0x80000, 0x100000, kMiB, kMiB, f.fd(), 0}},
       "guest physical"},
      {{{0x0, 0x0, kMiB, 0, f.fd(), 0}, {0x100000, 0x80000, kMiB, kMiB, f.fd(), 0}},
       "user addresses"},
      {{{0x0, 0x0, kMiB, 0, f.fd(), 0x1000}, {0x100000, 0x100000, kMiB, kMiB, f.fd(), 0x2000}},
       "vhost addresses"},
      {{{0x0, 0x0, 0, 0, f.fd(), 0}}, "size is 0"},
      {{{UINT64_MAX - 10, 0x0, kMiB, 0, f.fd(), 0}}, "guest physical"},
      {{{0x0, 0x0, kMiB, UINT64_MAX - 10, f.fd(), 0}}, "mmap_offset"},
      // Past the end of the file: mapping would succeed, touching would SIGBUS.
      {{{0x0, 0x0, kMiB, 0, f.fd(), 0}, {0x100000, 0x100000, kMiB, kMiB + 1, f.fd(), 0}},
       "region 1"},
  };
  for (const Case& c : cases) {
    auto mem = GuestMemory::MapFromFds(c.regions);
    ASSERT_FALSE(mem.ok()) << c.message;
    EXPECT_EQ(mem.status().code(), absl::StatusCode::kInvalidArgument) << mem.status();
    EXPECT_THAT(mem.status().message(), HasSubstr(c.message));
    EXPECT_EQ(MappingsOf(name), 0) << c.message;
    EXPECT_EQ(OpenFds(), before) << c.message;
  }
}

TEST(GuestMemoryMapTest, DestructorReleasesMappingsAndFds) {
  const std::string name = UniqueName("dtor");
  Memfd f(name, 4 * kMiB);
  f.Unmap();
  const std::vector<int> before = OpenFds();
  ASSERT_EQ(MappingsOf(name), 0);

  auto mem = GuestMemory::MapFromFds(
      {{0x0, 0x0, 2 * kMiB, 0, f.fd(), 0}, {0x100000000, 0x200000, 2 * kMiB, 2 * kMiB, f.fd(), 0}});
  ASSERT_TRUE(mem.ok()) << mem.status();
  EXPECT_GE(MappingsOf(name), 1);
  const std::vector<int> during = OpenFds();
  ASSERT_EQ(during.size(), before.size() + 2);
  // The duplicates must not leak into children a host may exec.
  for (int fd : during) {
    if (std::find(before.begin(), before.end(), fd) != before.end()) continue;
    EXPECT_NE(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0) << "fd " << fd;
  }

  mem->reset();
  EXPECT_EQ(MappingsOf(name), 0);
  EXPECT_EQ(OpenFds(), before);
}

}  // namespace
}  // namespace iovtee
