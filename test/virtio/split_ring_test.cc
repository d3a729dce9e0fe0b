// DeviceQueue over a split ring, driven by the driver emulator: every posting
// style round-trips, returns come back in any order and in batches, indexes
// wrap at 65535, cursors survive a reconnect, bad returns are refused.
#include <algorithm>
#include <memory>
#include <numeric>
#include <random>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "src/virtio/device_queue.h"
#include "test/virtio/driver_emulator.h"
#include "test/virtio/ring_test_fixture.h"

namespace iovtee::virtio::testing {
namespace {

using ::testing::ElementsAreArray;
using ::testing::IsEmpty;

constexpr uint64_t kIndirect = uint64_t{1} << kFIndirectDesc;
constexpr uint64_t kEventIdx = uint64_t{1} << kFEventIdx;

using SplitRingTest = RingTest<RingLayout::kSplit>;

TEST_F(SplitRingTest, EmptyRingFetchesNothing) {
  Init({});
  DescChain chains[4];
  EXPECT_EQ(queue().Fetch(absl::MakeSpan(chains)), 0);
  EXPECT_FALSE(queue().HasAvailable());
  // Posted but not published: still nothing.
  ASSERT_TRUE(driver_->PostDpdk().has_value());
  EXPECT_FALSE(queue().HasAvailable());
  EXPECT_EQ(queue().Fetch(absl::MakeSpan(chains)), 0);
  driver_->Publish();
  EXPECT_TRUE(queue().HasAvailable());
  std::vector<uint16_t> ids = device_->Fetch();
  ASSERT_EQ(ids.size(), 1u);
  EXPECT_FALSE(queue().HasAvailable());
  EXPECT_EQ(queue().Fetch(absl::MakeSpan(chains)), 0);
  EXPECT_EQ(queue().stats().fetched, 1u);
  device_->Write(ids[0], 100);
  device_->Return(ids);
  EXPECT_THAT(ReapIds(), ElementsAreArray(ids));
}

struct StyleCase {
  PostStyle style;
  bool indirect;
};

class SplitStyleTest : public SplitRingTest, public ::testing::WithParamInterface<StyleCase> {};

TEST_P(SplitStyleTest, RoundTrips) {
  const StyleCase p = GetParam();
  Init({.size = 256, .features = p.indirect ? kIndirect : 0});
  std::vector<uint16_t> posted = PostMany(p.style, 12);
  ASSERT_GE(posted.size(), 12u);
  EXPECT_EQ(driver_->Publish().published, posted.size());
  EXPECT_EQ(driver_->unpublished(), 0u);

  // Fetch in ring order; CheckFetched (inside the model) compares segments,
  // GPAs, host pointers and lengths with what was posted.
  std::vector<uint16_t> fetched = device_->Fetch(SIZE_MAX, 5);
  EXPECT_THAT(fetched, ElementsAreArray(posted));
  EXPECT_EQ(queue().in_flight(), posted.size());
  for (uint16_t id : posted) {
    const DescChain* c = device_->held(id);
    ASSERT_NE(c, nullptr);
    const PostedBuffer* b = driver_->buffer(id);
    if (p.style == PostStyle::kLinuxBig) {
      EXPECT_EQ(b->indirect, p.indirect);
      EXPECT_EQ(c->nsegs, kLinuxBigDescs);
      EXPECT_EQ(c->segs[0].len, driver_->options().hdr_len);
    } else if (p.style == PostStyle::kDpdkPmd) {
      EXPECT_EQ(c->len, kDpdkDataRoom + driver_->options().hdr_len);
      EXPECT_EQ(c->segs[0].gpa % 64, (kDpdkMbufHeader + kDpdkHeadroom - 12) % 64);
    } else if (p.style == PostStyle::kLinuxSmall) {
      EXPECT_EQ(c->len, 12 + kGoodPacketLen);
    } else if (p.style == PostStyle::kLinuxMergeable) {
      EXPECT_GE(c->len, 1536u);
      EXPECT_EQ(c->nsegs, 1);
    }
  }
  // Full buffers, partly written ones, and an empty one.
  for (size_t i = 0; i < posted.size(); ++i) {
    const DescChain* c = device_->held(posted[i]);
    const uint32_t len = i == 0 ? 0 : i % 3 == 0 ? c->len : c->len / (i + 1) + 1;
    device_->Write(posted[i], len);
  }
  EXPECT_EQ(device_->Return(posted), posted.size());
  EXPECT_EQ(queue().in_flight(), 0);
  EXPECT_THAT(ReapIds(), ElementsAreArray(posted));
  EXPECT_EQ(queue().stats().returned, posted.size());
  EXPECT_EQ(queue().stats().bad_returns, 0u);
  EXPECT_EQ(driver_->outstanding(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Styles, SplitStyleTest,
                         ::testing::Values(StyleCase{PostStyle::kGeneric, false},
                                           StyleCase{PostStyle::kLinuxMergeable, false},
                                           StyleCase{PostStyle::kLinuxSmall, false},
                                           StyleCase{PostStyle::kLinuxBig, false},
                                           StyleCase{PostStyle::kLinuxBig, true},
                                           StyleCase{PostStyle::kDpdkPmd, false},
                                           StyleCase{PostStyle::kDpdkPmd, true}),
                         [](const ::testing::TestParamInfo<StyleCase>& info) {
                           return std::string(PostStyleName(info.param.style)) +
                                  (info.param.indirect ? "_indirect" : "");
                         });

TEST_F(SplitRingTest, GenericMultiSegmentAndIndirectChains) {
  Init({.size = 64, .features = kIndirect});
  const uint32_t lens[] = {1, 0, 4096, 77, 3000};
  auto a = driver_->Post(lens, true, /*indirect=*/false);
  auto b = driver_->Post(lens, true, /*indirect=*/true);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(driver_->buffer(*a)->ring_descs, 5);
  EXPECT_EQ(driver_->buffer(*b)->ring_descs, 1);
  driver_->Publish();
  ASSERT_EQ(device_->Fetch().size(), 2u);
  EXPECT_EQ(device_->held(*a)->nsegs, 4);  // the empty descriptor gives no segment
  EXPECT_EQ(device_->held(*b)->len, 1 + 4096 + 77 + 3000);
  device_->Write(*a, 5000);
  device_->Write(*b, 7174);
  device_->Return({*b, *a});
  EXPECT_THAT(ReapIds(), ElementsAreArray({*b, *a}));
}

TEST_F(SplitRingTest, MergeableBuffersShareFragsAndFollowTheAverage) {
  Init({.size = 256});
  std::vector<uint16_t> ids;
  for (int i = 0; i < 40; ++i) ids.push_back(*driver_->PostLinuxMergeable(i < 20 ? 1000 : 3000));
  // 1536-byte buffers: 21 in a 32 KiB frag, the last one taking the hole.
  const PostedBuffer* first = driver_->buffer(ids[0]);
  const PostedBuffer* second = driver_->buffer(ids[1]);
  EXPECT_EQ(first->segments[0].len, 1536u);
  EXPECT_EQ(second->segments[0].gpa, first->segments[0].gpa + 1536);
  EXPECT_EQ(driver_->buffer(ids[25])->segments[0].len, 3072u);
  driver_->Publish();
  device_->Fetch();
  for (uint16_t id : ids) device_->Write(id, 1400);
  device_->Return(ids);
  EXPECT_EQ(ReapIds().size(), ids.size());
  EXPECT_EQ(driver_->mergeable_avg(), 1400u);
}

TEST_F(SplitRingTest, ReverseAndRandomReturnOrder) {
  Init({.size = 128, .features = kIndirect});
  std::mt19937 rng(7);
  for (int round = 0; round < 6; ++round) {
    std::vector<uint16_t> ids;
    for (int i = 0; i < 20; ++i) {
      const PostStyle styles[] = {PostStyle::kDpdkPmd, PostStyle::kLinuxMergeable,
                                  PostStyle::kLinuxBig};
      ids.push_back(*driver_->PostStyled(styles[i % 3]));
    }
    driver_->Publish();
    ASSERT_EQ(device_->Fetch().size(), ids.size());
    for (uint16_t id : ids) device_->Write(id, 60 + id);
    std::vector<uint16_t> order = ids;
    if (round % 2 == 0) {
      std::reverse(order.begin(), order.end());
    } else {
      std::shuffle(order.begin(), order.end(), rng);
    }
    EXPECT_EQ(device_->Return(order), order.size());
    // The driver sees them in the order they were returned, each once.
    EXPECT_THAT(ReapIds(), ElementsAreArray(order));
  }
}

TEST_F(SplitRingTest, OutOfOrderReturnsScatterTheFreeListAndChainsStillWalk) {
  // Direct 19-descriptor chains, returned out of order, so that reposted
  // chains use descriptor indexes from several earlier chains.
  Init({.size = 128});
  std::mt19937 rng(3);
  for (int round = 0; round < 10; ++round) {
    std::vector<uint16_t> ids = PostMany(PostStyle::kLinuxBig, 6);
    std::vector<uint16_t> small = PostMany(PostStyle::kLinuxSmall, 5);
    ids.insert(ids.end(), small.begin(), small.end());
    driver_->Publish();
    ASSERT_EQ(device_->Fetch().size(), ids.size());
    std::shuffle(ids.begin(), ids.end(), rng);
    // Return in three batches with reaps in between.
    for (size_t start = 0; start < ids.size(); start += 4) {
      std::vector<uint16_t> batch(ids.begin() + start,
                                  ids.begin() + std::min(ids.size(), start + 4));
      for (uint16_t id : batch) device_->Write(id, 20000 + 100 * id);
      device_->Return(batch);
      EXPECT_THAT(ReapIds(), ElementsAreArray(batch));
    }
  }
  EXPECT_EQ(driver_->free_descs(), 128);
}

TEST_F(SplitRingTest, BatchedReturnsLargerThanOneInternalBatch) {
  Init({.size = 256});
  std::vector<uint16_t> ids = PostMany(PostStyle::kDpdkPmd, 256);
  ASSERT_EQ(ids.size(), 256u);
  EXPECT_FALSE(driver_->PostDpdk().has_value());  // full
  driver_->Publish();
  ASSERT_EQ(device_->Fetch(SIZE_MAX, 64).size(), 256u);
  EXPECT_EQ(queue().in_flight(), 256);
  for (uint16_t id : ids) device_->Write(id, id * 7 % 2000 + 1);
  std::vector<uint16_t> order(ids.rbegin(), ids.rend());
  // One call with 200 (more than the device's internal batch of 64), then
  // the rest one by one.
  EXPECT_EQ(device_->Return(absl::MakeConstSpan(order).subspan(0, 200)), 200);
  EXPECT_EQ(*driver_->split_used_idx(), 200);
  for (size_t i = 200; i < order.size(); ++i) device_->Return({order[i]});
  EXPECT_THAT(ReapIds(), ElementsAreArray(order));
  EXPECT_EQ(queue().in_flight(), 0);
}

TEST_F(SplitRingTest, IndexesWrapAt65535) {
  for (uint16_t start : {uint16_t{65530}, uint16_t{65535}, uint16_t{65528}}) {
    SCOPED_TRACE(start);
    Init({.size = 32, .features = kIndirect, .start = QueueCursors{start, start}});
    EXPECT_EQ(queue().cursors().last_avail_idx, start);
    uint16_t avail = start, used = start;
    std::mt19937 rng(start);
    for (int round = 0; round < 20; ++round) {
      // Leave a few buffers posted across rounds, so the wrap happens with
      // buffers outstanding.
      std::vector<uint16_t> ids =
          PostMany(round % 2 ? PostStyle::kLinuxBig : PostStyle::kDpdkPmd, 1 + rng() % 12);
      driver_->Publish();
      std::vector<uint16_t> got = device_->Fetch();
      avail = static_cast<uint16_t>(avail + got.size());
      EXPECT_EQ(queue().cursors().last_avail_idx, avail);
      EXPECT_EQ(driver_->next_avail(), avail);
      std::vector<uint16_t> held = device_->held_ids();
      std::shuffle(held.begin(), held.end(), rng);
      held.resize(held.size() - held.size() / 3);
      for (uint16_t id : held) device_->Write(id, 1000);
      device_->Return(held);
      used = static_cast<uint16_t>(used + held.size());
      EXPECT_EQ(queue().cursors().last_used_idx, used);
      EXPECT_EQ(*driver_->split_used_idx(), used);
      EXPECT_THAT(ReapIds(), ElementsAreArray(held));
      EXPECT_EQ(driver_->next_used(), used);
    }
    EXPECT_NE(static_cast<uint16_t>(used - start), used - start) << "did not wrap";
    std::vector<uint16_t> rest = device_->held_ids();
    for (uint16_t id : rest) device_->Write(id, 1);
    device_->Return(rest);
    ReapIds();
    TearDown();
  }
}

TEST_F(SplitRingTest, CursorsAfterOperationsAndReconnect) {
  Init({.size = 32, .start = QueueCursors{100, 100}});
  std::vector<uint16_t> ids = PostMany(PostStyle::kLinuxMergeable, 10);
  driver_->Publish();
  std::vector<uint16_t> got = device_->Fetch(6);
  ASSERT_EQ(got.size(), 6u);
  for (uint16_t id : got) device_->Write(id, 300);
  device_->Return({got[4], got[1]});
  EXPECT_EQ(queue().cursors().last_avail_idx, 106);
  EXPECT_EQ(queue().cursors().last_used_idx, 102);
  EXPECT_EQ(queue().in_flight(), 4);
  // Give the rest back before the backend goes away, then reconnect: the new
  // queue must take the four unfetched buffers, then new ones.
  device_->Return({got[0], got[2], got[3], got[5]});
  ASSERT_TRUE(device_->Reconnect().ok());
  EXPECT_EQ(queue().cursors().last_avail_idx, 106);
  EXPECT_EQ(queue().cursors().last_used_idx, 106);
  EXPECT_EQ(queue().in_flight(), 0);
  EXPECT_TRUE(queue().HasAvailable());
  std::vector<uint16_t> more = PostMany(PostStyle::kLinuxMergeable, 3);
  driver_->Publish();
  std::vector<uint16_t> after = device_->Fetch();
  std::vector<uint16_t> want(ids.begin() + 6, ids.end());
  want.insert(want.end(), more.begin(), more.end());
  EXPECT_THAT(after, ElementsAreArray(want));
  for (uint16_t id : after) device_->Write(id, 64);
  device_->Return(after);
  EXPECT_EQ(ReapIds().size(), 13u);
  EXPECT_EQ(queue().cursors().last_used_idx, 113);
}

TEST_F(SplitRingTest, BadReturnsAreRefusedAndCounted) {
  Init({.size = 16});
  std::vector<uint16_t> ids = PostMany(PostStyle::kDpdkPmd, 3);
  driver_->Publish();
  device_->Fetch();
  device_->Write(ids[0], 10);
  device_->Write(ids[2], 20);
  // Never fetched (outside the ring and inside it), then a valid one.
  EXPECT_EQ(queue().Return({UsedBuffer{9, 5}, UsedBuffer{200, 5}}), 0);
  EXPECT_EQ(queue().stats().bad_returns, 2u);
  EXPECT_FALSE(driver_->HasUsed());
  EXPECT_EQ(device_->Return({ids[0]}), 1);
  // Twice: refused the second time, alone or inside a batch.
  EXPECT_EQ(queue().Return({UsedBuffer{ids[0], 10}}), 0);
  EXPECT_EQ(device_->Return({ids[2]}), 1);
  EXPECT_EQ(queue().Return({UsedBuffer{ids[2], 1}, UsedBuffer{ids[1], 0}}), 1);
  EXPECT_EQ(queue().stats().bad_returns, 4u);
  EXPECT_EQ(queue().stats().returned, 3u);
  EXPECT_EQ(queue().in_flight(), 0);
  std::vector<Completion> done = driver_->ReapAll();
  ASSERT_EQ(done.size(), 3u);
  EXPECT_EQ(done[2].id, ids[1]);
  device_->VerifyAll(absl::MakeConstSpan(done).subspan(0, 2));
  // ids[1] went back through the raw Return with len 0 (the model still
  // holds it): take it off the model's books.
  EXPECT_EQ(done[2].len, 0u);
  EXPECT_EQ(device_->Return({ids[1]}), 0);
  EXPECT_EQ(queue().stats().bad_returns, 5u);
  EXPECT_FALSE(queue().broken());
  device_->VerifyAll({done[2]});
}

TEST_F(SplitRingTest, FetchBurstSmallerThanAvailable) {
  Init({.size = 64, .features = kEventIdx});
  std::vector<uint16_t> ids = PostMany(PostStyle::kLinuxSmall, 40);
  driver_->Publish();
  DescChain chains[3];
  std::vector<uint16_t> got;
  while (uint16_t n = queue().Fetch(absl::MakeSpan(chains))) {
    EXPECT_LE(n, 3);
    for (uint16_t i = 0; i < n; ++i) {
      EXPECT_TRUE(driver_->CheckFetched(chains[i]).ok());
      got.push_back(chains[i].id);
      queue().Return({UsedBuffer{chains[i].id, 0}});
    }
  }
  EXPECT_THAT(got, ElementsAreArray(ids));
  EXPECT_EQ(driver_->ReapAll().size(), ids.size());
}

TEST_F(SplitRingTest, BuffersCrossingGpaAdjacentRegions) {
  ArenaOptions two;
  two.region_sizes = {1 << 20, 1 << 20};
  Init({.size = 16, .features = kIndirect}, two);
  const uint64_t boundary = arena_->region(1).gpa;
  ASSERT_EQ(boundary, arena_->region(0).gpa + arena_->region(0).len);
  ASSERT_TRUE(arena_->AllocAt(boundary - 1000, 3000));
  const Segment segs[] = {{boundary - 1000, 3000, true}};
  auto direct = driver_->PostSegments(segs);
  ASSERT_TRUE(arena_->AllocAt(boundary + 8192, 100));
  const Segment two_segs[] = {{boundary + 8192, 100, true}, {boundary - 1000 - 5000, 5000, true}};
  ASSERT_TRUE(arena_->AllocAt(boundary - 6000, 5000));
  auto indirect = driver_->PostSegments(two_segs, /*indirect=*/true);
  ASSERT_TRUE(direct && indirect);
  driver_->Publish();
  ASSERT_EQ(device_->Fetch().size(), 2u);
  const DescChain* c = device_->held(*direct);
  ASSERT_EQ(c->nsegs, 2);
  EXPECT_EQ(c->segs[0].len, 1000u);
  EXPECT_EQ(c->segs[1].host, arena_->Host(boundary));
  device_->Write(*direct, 3000);
  device_->Write(*indirect, 2000);
  device_->Return({*direct, *indirect});
  ReapIds();
}

TEST_F(SplitRingTest, RingPartsAtMinimumAlignment) {
  Init({.size = 32, .features = kIndirect | kEventIdx, .tight_ring_alignment = true});
  EXPECT_EQ(driver_->driver_area_gpa() % 4, 2u);
  EXPECT_EQ(driver_->device_area_gpa() % 8, 4u);
  std::vector<uint16_t> ids = PostMany(PostStyle::kLinuxBig, 4);
  driver_->Publish();
  ASSERT_EQ(device_->Fetch().size(), ids.size());
  for (uint16_t id : ids) device_->Write(id, 70000);
  device_->Return(ids);
  EXPECT_EQ(ReapIds().size(), ids.size());
}

TEST_F(SplitRingTest, EmulatorCatchesAMisbehavingDevice) {
  // The oracles themselves: an unknown id in the used ring, a write into the
  // avail ring and a write outside any buffer are all reported.
  Init({.size = 8});
  std::vector<uint16_t> ids = PostMany(PostStyle::kLinuxSmall, 2);
  driver_->Publish();
  device_->Fetch();
  auto* used = const_cast<UsedElem*>(driver_->split_used_elem(0));
  used->id = 5;
  used->len = 10;
  *const_cast<uint16_t*>(driver_->split_used_idx()) = 1;
  EXPECT_EQ(driver_->ReapAll().size(), 0u);
  ASSERT_EQ(driver_->violations().size(), 1u);
  EXPECT_THAT(driver_->violations()[0], ::testing::HasSubstr("not outstanding"));
  EXPECT_FALSE(driver_->HasUsed());  // it stopped reaping
  *driver_->split_avail_ring(7) ^= 1;
  EXPECT_FALSE(driver_->CheckIntegrity().ok());
  *driver_->split_avail_ring(7) ^= 1;
  EXPECT_TRUE(driver_->CheckIntegrity().ok());
  const uint64_t next_to_buffer = driver_->buffer(ids[0])->segments[0].gpa - 1;
  arena_->Host(next_to_buffer)[0] ^= 0x80;
  EXPECT_FALSE(driver_->CheckIntegrity().ok());
  arena_->Host(next_to_buffer)[0] ^= 0x80;
  device_.reset();
  driver_.reset();
}

}  // namespace
}  // namespace iovtee::virtio::testing
