// Every validation rule of the chain walker, on both layouts where the rule
// applies: a hostile driver gets a typed, counted error, the queue is marked
// broken, nothing is returned to the caller, and no guest byte is written.
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "src/virtio/desc_chain.h"
#include "src/virtio/device_queue.h"
#include "test/virtio/driver_emulator.h"

namespace iovtee::virtio {
namespace {

using testing::ArenaOptions;
using testing::DriverOptions;
using testing::GpaRange;
using testing::GuestArena;
using testing::Segment;
using testing::VirtioDriver;

constexpr uint64_t kIndirect = uint64_t{1} << kFIndirectDesc;
constexpr uint16_t kSize = 256;

class ChainValidationTest : public ::testing::TestWithParam<RingLayout> {
 protected:
  void SetUp() override { Start(kIndirect); }

  void Start(uint64_t features, Direction direction = Direction::kDeviceWrites,
             bool gpa_adjacent = false) {
    ArenaOptions a;
    a.region_sizes = {uint64_t{1} << 20, uint64_t{1} << 20};
    a.gpa_adjacent = gpa_adjacent;
    dev_.reset();
    drv_.reset();
    written_.clear();
    arena_ = std::make_unique<GuestArena>(a);
    DriverOptions o;
    o.layout = GetParam();
    o.size = kSize;
    o.features = features;
    drv_ = std::make_unique<VirtioDriver>(arena_.get(), o);
    QueueConfig c = drv_->device_config();
    c.direction = direction;
    auto q = DeviceQueue::Create(c, &arena_->memory(), drv_->start_cursors());
    ASSERT_TRUE(q.ok()) << q.status();
    dev_ = std::move(*q);
  }

  bool packed() const { return GetParam() == RingLayout::kPacked; }

  // Publishes one raw buffer: split descriptors at table slots 0.., chained
  // by `next` as given; packed descriptors in ring order.
  void PublishRaw(const std::vector<SplitDesc>& descs) {
    if (packed()) {
      std::vector<PackedDesc> p;
      for (const SplitDesc& d : descs) p.push_back(PackedDesc{d.addr, d.len, 7, d.flags});
      drv_->RawPublishPacked(p);
    } else {
      for (size_t i = 0; i < descs.size(); ++i) *drv_->split_desc(i) = descs[i];
      drv_->RawPublishSplit(0);
    }
  }

  // A writable GPA inside guest memory, of `len` bytes.
  uint64_t Buf(uint32_t len) { return arena_->Alloc(len, 64, 0); }

  // An indirect table in guest memory holding `entries` (split or packed
  // format); returns its GPA.
  uint64_t Table(const std::vector<SplitDesc>& entries) {
    const uint64_t gpa = arena_->Alloc(16 * entries.size(), 16, 0);
    written_.push_back({gpa, 16 * entries.size()});
    for (size_t i = 0; i < entries.size(); ++i) {
      const SplitDesc& d = entries[i];
      if (packed()) {
        *arena_->HostAs<PackedDesc>(gpa + 16 * i) = PackedDesc{d.addr, d.len, 0, d.flags};
      } else {
        *arena_->HostAs<SplitDesc>(gpa + 16 * i) = d;
      }
    }
    return gpa;
  }

  // Fetch must refuse with `want`, count it once, break the queue, and leave
  // guest memory untouched.
  void ExpectRefused(ChainError want) {
    DescChain chains[4];
    EXPECT_EQ(dev_->Fetch(chains), 0);
    EXPECT_TRUE(dev_->broken());
    EXPECT_EQ(dev_->last_error(), want)
        << "got " << ChainErrorName(dev_->last_error()) << ", want " << ChainErrorName(want);
    EXPECT_EQ(dev_->stats().errors[static_cast<int>(want)], 1u);
    EXPECT_EQ(dev_->stats().fetched, 0u);
    EXPECT_EQ(dev_->in_flight(), 0);
    // A broken queue stays broken: a legal buffer afterwards is not taken.
    ASSERT_TRUE(drv_->Post(std::vector<uint32_t>{256}).has_value());
    drv_->Publish();
    EXPECT_EQ(dev_->Fetch(chains), 0);
    EXPECT_FALSE(dev_->HasAvailable());
    std::vector<GpaRange> may_change = drv_->MayChangeRanges();
    may_change.insert(may_change.end(), written_.begin(), written_.end());
    const absl::Status canaries = arena_->CheckCanaries(may_change);
    EXPECT_TRUE(canaries.ok()) << canaries;
  }

  std::unique_ptr<GuestArena> arena_;
  std::unique_ptr<VirtioDriver> drv_;
  std::unique_ptr<DeviceQueue> dev_;
  std::vector<GpaRange> written_;  // guest memory the test itself wrote
};

INSTANTIATE_TEST_SUITE_P(Layouts, ChainValidationTest,
                         ::testing::Values(RingLayout::kSplit, RingLayout::kPacked),
                         [](const auto& info) {
                           return info.param == RingLayout::kSplit ? "Split" : "Packed";
                         });

TEST_P(ChainValidationTest, AcceptsLegalChainAsSegments) {
  const uint64_t a = Buf(100), b = Buf(200);
  PublishRaw({{a, 100, kDescFWrite | kDescFNext, 1}, {b, 200, kDescFWrite, 0}});
  DescChain c;
  ASSERT_EQ(dev_->Fetch({&c, 1}), 1);
  EXPECT_FALSE(dev_->broken());
  ASSERT_EQ(c.nsegs, 2);
  EXPECT_EQ(c.len, 300u);
  EXPECT_EQ(c.segs[0].gpa, a);
  EXPECT_EQ(c.segs[0].host, arena_->Host(a));
  EXPECT_EQ(c.segs[1].len, 200u);
  EXPECT_EQ(c.id, packed() ? 7 : 0);
  EXPECT_EQ(c.ring_slots, packed() ? 2 : 1);
}

TEST_P(ChainValidationTest, SkipsZeroLengthDescriptors) {
  const uint64_t a = Buf(64);
  PublishRaw({{a, 0, kDescFWrite | kDescFNext, 1}, {a, 64, kDescFWrite, 0}});
  DescChain c;
  ASSERT_EQ(dev_->Fetch({&c, 1}), 1);
  EXPECT_EQ(c.nsegs, 1);
  EXPECT_EQ(c.len, 64u);
}

TEST_P(ChainValidationTest, SplitHeadOutOfRange) {
  if (packed()) GTEST_SKIP() << "packed rings have no head index";
  drv_->RawPublishSplit(kSize);
  ExpectRefused(ChainError::kHeadOutOfRange);
}

TEST_P(ChainValidationTest, SplitNextOutOfRange) {
  if (packed()) GTEST_SKIP() << "packed chains follow ring order";
  PublishRaw({{Buf(64), 64, kDescFWrite | kDescFNext, kSize}});
  ExpectRefused(ChainError::kNextOutOfRange);
}

TEST_P(ChainValidationTest, SplitLoopIsChainTooLong) {
  if (packed()) GTEST_SKIP();
  // A zero-length descriptor pointing at itself adds no segment, so only the
  // loop bound can end the walk.
  *drv_->split_desc(0) = {Buf(64), 0, kDescFWrite | kDescFNext, 0};
  drv_->RawPublishSplit(0);
  ExpectRefused(ChainError::kChainTooLong);
}

TEST_P(ChainValidationTest, SplitTwoCycleIsRefused) {
  if (packed()) GTEST_SKIP();
  const uint64_t a = Buf(64);
  *drv_->split_desc(0) = {a, 64, kDescFWrite | kDescFNext, 1};
  *drv_->split_desc(1) = {a, 64, kDescFWrite | kDescFNext, 0};
  drv_->RawPublishSplit(0);
  // The segment cap (64) is reached before the loop bound (256).
  ExpectRefused(ChainError::kTooManySegments);
}

TEST_P(ChainValidationTest, PackedChainLongerThanRing) {
  if (!packed()) GTEST_SKIP();
  // Zero-length descriptors, all with NEXT: the walk wraps the ring and must
  // stop at the ring size.
  std::vector<SplitDesc> descs(kSize, SplitDesc{Buf(64), 0, kDescFWrite | kDescFNext, 0});
  PublishRaw(descs);
  ExpectRefused(ChainError::kChainTooLong);
}

TEST_P(ChainValidationTest, IndirectLoopIsChainTooLong) {
  if (packed()) GTEST_SKIP() << "packed indirect tables are read in order, no links";
  const uint64_t a = Buf(64);
  const uint64_t t =
      Table({{a, 0, kDescFWrite | kDescFNext, 1}, {a, 0, kDescFWrite | kDescFNext, 0}});
  PublishRaw({{t, 32, kDescFIndirect, 0}});
  ExpectRefused(ChainError::kChainTooLong);
}

TEST_P(ChainValidationTest, IndirectNextOutOfTable) {
  if (packed()) GTEST_SKIP();
  const uint64_t t =
      Table({{Buf(64), 64, kDescFWrite | kDescFNext, 2}, {Buf(64), 64, kDescFWrite, 0}});
  PublishRaw({{t, 32, kDescFIndirect, 0}});
  ExpectRefused(ChainError::kNextOutOfRange);
}

TEST_P(ChainValidationTest, NestedIndirect) {
  const uint64_t inner = Table({{Buf(64), 64, kDescFWrite, 0}});
  const uint64_t outer = Table({{inner, 16, kDescFIndirect, 0}});
  PublishRaw({{outer, 16, kDescFIndirect, 0}});
  ExpectRefused(ChainError::kNestedIndirect);
}

TEST_P(ChainValidationTest, IndirectWithNext) {
  const uint64_t t = Table({{Buf(64), 64, kDescFWrite, 0}});
  PublishRaw({{t, 16, kDescFIndirect | kDescFNext, 1}, {Buf(64), 64, kDescFWrite, 0}});
  ExpectRefused(ChainError::kIndirectWithNext);
}

TEST_P(ChainValidationTest, IndirectEmptyTable) {
  PublishRaw({{Table({{Buf(64), 64, kDescFWrite, 0}}), 0, kDescFIndirect, 0}});
  ExpectRefused(ChainError::kIndirectBadLength);
}

TEST_P(ChainValidationTest, IndirectLengthNotMultipleOf16) {
  PublishRaw({{Table({{Buf(64), 64, kDescFWrite, 0}, {0, 0, 0, 0}}), 24, kDescFIndirect, 0}});
  ExpectRefused(ChainError::kIndirectBadLength);
}

TEST_P(ChainValidationTest, IndirectTableLargerThanRing) {
  std::vector<SplitDesc> entries(kSize + 1, SplitDesc{Buf(64), 64, kDescFWrite, 0});
  PublishRaw({{Table(entries), 16 * (kSize + 1), kDescFIndirect, 0}});
  ExpectRefused(ChainError::kIndirectBadLength);
}

TEST_P(ChainValidationTest, IndirectNotNegotiated) {
  Start(/*features=*/0);
  PublishRaw({{Table({{Buf(64), 64, kDescFWrite, 0}}), 16, kDescFIndirect, 0}});
  ExpectRefused(ChainError::kIndirectNotAllowed);
}

TEST_P(ChainValidationTest, IndirectTableOutsideMemory) {
  const GpaRange r0 = arena_->region(0);
  // Straddles the end of region 0 (the next region is not adjacent).
  PublishRaw({{r0.gpa + r0.len - 8, 16, kDescFIndirect, 0}});
  ExpectRefused(ChainError::kIndirectOutOfMemory);
}

TEST_P(ChainValidationTest, ReadOnlyDescriptorInRxBuffer) {
  PublishRaw({{Buf(64), 64, kDescFWrite | kDescFNext, 1}, {Buf(64), 64, 0, 0}});
  ExpectRefused(ChainError::kWrongDirection);
}

TEST_P(ChainValidationTest, ReadOnlyDescriptorInsideIndirectRxTable) {
  PublishRaw({{Table({{Buf(64), 64, 0, 0}}), 16, kDescFIndirect, 0}});
  ExpectRefused(ChainError::kWrongDirection);
}

TEST_P(ChainValidationTest, WritableDescriptorInTxBuffer) {
  Start(kIndirect, Direction::kDeviceReads);
  PublishRaw({{Buf(64), 64, kDescFWrite, 0}});
  ExpectRefused(ChainError::kWrongDirection);
}

TEST_P(ChainValidationTest, TxBufferAccepted) {
  Start(kIndirect, Direction::kDeviceReads);
  PublishRaw({{Buf(64), 64, 0, 0}});
  DescChain c;
  EXPECT_EQ(dev_->Fetch({&c, 1}), 1);
  EXPECT_FALSE(dev_->broken());
}

TEST_P(ChainValidationTest, TotalLengthOverflow) {
  PublishRaw({{Buf(64), 64, kDescFWrite | kDescFNext, 1}, {Buf(64), 0xffffffe0u, kDescFWrite, 0}});
  ExpectRefused(ChainError::kLengthOverflow);
}

TEST_P(ChainValidationTest, AddressBeyondGuestMemory) {
  const GpaRange r1 = arena_->region(1);
  PublishRaw({{r1.gpa + r1.len - 32, 64, kDescFWrite, 0}});
  ExpectRefused(ChainError::kAddressOutOfMemory);
}

TEST_P(ChainValidationTest, AddressInHoleBetweenRegions) {
  const GpaRange r0 = arena_->region(0);
  PublishRaw({{r0.gpa + r0.len + 4096, 64, kDescFWrite, 0}});
  ExpectRefused(ChainError::kAddressOutOfMemory);
}

TEST_P(ChainValidationTest, AddressWrapsAround64Bits) {
  PublishRaw({{UINT64_MAX - 15, 64, kDescFWrite, 0}});
  ExpectRefused(ChainError::kAddressOutOfMemory);
}

TEST_P(ChainValidationTest, AddressZero) {
  PublishRaw({{0, 64, kDescFWrite, 0}});
  ExpectRefused(ChainError::kAddressOutOfMemory);
}

TEST_P(ChainValidationTest, BufferCrossingAdjacentRegionsIsSplit) {
  Start(kIndirect, Direction::kDeviceWrites, /*gpa_adjacent=*/true);
  const GpaRange r0 = arena_->region(0);
  const uint64_t gpa = r0.gpa + r0.len - 100;
  ASSERT_TRUE(arena_->AllocAt(gpa, 300));
  ASSERT_TRUE(drv_->PostSegments(std::vector<Segment>{{gpa, 300, true}}).has_value());
  drv_->Publish();
  DescChain c;
  ASSERT_EQ(dev_->Fetch({&c, 1}), 1);
  ASSERT_EQ(c.nsegs, 2);
  EXPECT_EQ(c.segs[0].len, 100u);
  EXPECT_EQ(c.segs[0].host, arena_->Host(gpa));
  EXPECT_EQ(c.segs[1].len, 200u);
  EXPECT_EQ(c.segs[1].gpa, r0.gpa + r0.len);
  EXPECT_EQ(c.segs[1].host, arena_->Host(r0.gpa + r0.len));
  EXPECT_EQ(c.len, 300u);
}

TEST_P(ChainValidationTest, TooManySegments) {
  std::vector<uint32_t> lens(kMaxChainSegments + 1, 64);
  ASSERT_TRUE(drv_->Post(lens).has_value());
  drv_->Publish();
  ExpectRefused(ChainError::kTooManySegments);
}

TEST_P(ChainValidationTest, MaxSegmentsAccepted) {
  std::vector<uint32_t> lens(kMaxChainSegments, 64);
  ASSERT_TRUE(drv_->Post(lens, true, /*indirect=*/true).has_value());
  drv_->Publish();
  DescChain c;
  ASSERT_EQ(dev_->Fetch({&c, 1}), 1);
  EXPECT_EQ(c.nsegs, kMaxChainSegments);
}

TEST_P(ChainValidationTest, SplitAvailIndexJump) {
  if (packed()) GTEST_SKIP() << "packed rings have no avail index";
  *drv_->split_avail_idx() = kSize + 1;
  drv_->ResyncShadow();
  ExpectRefused(ChainError::kAvailIndexJump);
}

TEST_P(ChainValidationTest, SplitAvailIndexGoingBackwards) {
  if (packed()) GTEST_SKIP();
  *drv_->split_avail_idx() = static_cast<uint16_t>(drv_->start_cursors().last_avail_idx - 1);
  drv_->ResyncShadow();
  ExpectRefused(ChainError::kAvailIndexJump);
}

TEST_P(ChainValidationTest, SameBufferPostedTwiceWhileHeld) {
  const uint64_t a = Buf(64);
  PublishRaw({{a, 64, kDescFWrite, 0}});
  DescChain c[2];
  ASSERT_EQ(dev_->Fetch({c, 1}), 1);
  // The same head (split) / the same buffer id (packed) again, while held.
  PublishRaw({{a, 64, kDescFWrite, 0}});
  EXPECT_EQ(dev_->Fetch({c + 1, 1}), 0);
  EXPECT_EQ(dev_->last_error(), ChainError::kDuplicateId);
  EXPECT_EQ(dev_->stats().errors[static_cast<int>(ChainError::kDuplicateId)], 1u);
  EXPECT_EQ(dev_->in_flight(), 1);
}

TEST_P(ChainValidationTest, SameIdAfterReturnIsFine) {
  const uint64_t a = Buf(64);
  DescChain c;
  for (int round = 0; round < 3; ++round) {
    PublishRaw({{a, 64, kDescFWrite, 0}});
    ASSERT_EQ(dev_->Fetch({&c, 1}), 1) << round;
    const UsedBuffer u{c.id, 10};
    ASSERT_EQ(dev_->Return({&u, 1}), 1);
  }
  EXPECT_FALSE(dev_->broken());
}

TEST_P(ChainValidationTest, DescriptorRewrittenAfterFetchDoesNotMatter) {
  const uint64_t a = Buf(64);
  PublishRaw({{a, 64, kDescFWrite, 0}});
  DescChain c;
  ASSERT_EQ(dev_->Fetch({&c, 1}), 1);
  // The guest points the descriptor elsewhere while the device holds it.
  if (packed()) {
    drv_->packed_desc(0)->addr = 0;
    drv_->packed_desc(0)->len = 0xffffffff;
  } else {
    drv_->split_desc(0)->addr = 0;
    drv_->split_desc(0)->len = 0xffffffff;
  }
  EXPECT_EQ(c.segs[0].host, arena_->Host(a));
  EXPECT_EQ(c.len, 64u);
}

TEST_P(ChainValidationTest, ErrorStopsBurstAfterValidChains) {
  const uint64_t a = Buf(64);
  if (packed()) {
    drv_->RawPublishPacked(std::vector<PackedDesc>{{a, 64, 1, kDescFWrite}});
    drv_->RawPublishPacked(std::vector<PackedDesc>{{a, 64, 2, 0}});  // read-only
  } else {
    *drv_->split_desc(0) = {a, 64, kDescFWrite, 0};
    *drv_->split_desc(1) = {a, 64, 0, 0};
    drv_->RawPublishSplit(0);
    drv_->RawPublishSplit(1);
  }
  DescChain c[4];
  EXPECT_EQ(dev_->Fetch(c), 1);
  EXPECT_EQ(c[0].len, 64u);
  EXPECT_TRUE(dev_->broken());
  EXPECT_EQ(dev_->last_error(), ChainError::kWrongDirection);
  // The one taken can still be given back.
  const UsedBuffer u{c[0].id, 0};
  EXPECT_EQ(dev_->Return({&u, 1}), 1);
}

TEST(ChainErrorNameTest, EveryErrorHasItsOwnName) {
  std::set<std::string> names;
  for (int i = 0; i < static_cast<int>(ChainError::kCount); ++i) {
    const std::string name = ChainErrorName(static_cast<ChainError>(i));
    EXPECT_NE(name, "unknown") << i;
    EXPECT_TRUE(names.insert(name).second) << name;
  }
}

TEST(DeviceQueueCreateTest, RejectsBadConfigs) {
  GuestArena arena;
  DriverOptions o;
  VirtioDriver drv(&arena, o);
  QueueConfig c = drv.device_config();
  EXPECT_TRUE(DeviceQueue::Create(c, &arena.memory()).ok());
  EXPECT_FALSE(DeviceQueue::Create(c, nullptr).ok());
  QueueConfig bad = c;
  bad.size = 100;  // split: not a power of two
  EXPECT_FALSE(DeviceQueue::Create(bad, &arena.memory()).ok());
  bad = c;
  bad.size = 0;
  EXPECT_FALSE(DeviceQueue::Create(bad, &arena.memory()).ok());
  bad = c;
  bad.desc += 8;
  EXPECT_FALSE(DeviceQueue::Create(bad, &arena.memory()).ok());
  bad = c;
  bad.device_area = nullptr;
  EXPECT_FALSE(DeviceQueue::Create(bad, &arena.memory()).ok());
  bad = c;
  bad.features |= uint64_t{1} << kFRingPacked;  // layout mismatch
  EXPECT_FALSE(DeviceQueue::Create(bad, &arena.memory()).ok());
  // Split cursors further apart than the ring.
  EXPECT_FALSE(DeviceQueue::Create(c, &arena.memory(), QueueCursors{300, 0}).ok());
}

}  // namespace
}  // namespace iovtee::virtio
