// DeviceQueue over a packed ring, driven by the driver emulator: every
// posting style round-trips, out-of-order returns advance the used position by
// each buffer's own descriptor count, wrap counters flip both ways with chains
// straddling the ring end, cursors survive a reconnect, bad returns are
// refused.
#include <algorithm>
#include <memory>
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

// A packed cursor (position | wrap << 15) moved on by `slots`.
uint16_t Advance(uint16_t cursor, uint32_t slots, uint16_t size) {
  uint32_t pos = (cursor & 0x7fff) + slots;
  bool wrap = cursor >> 15;
  while (pos >= size) {
    pos -= size;
    wrap = !wrap;
  }
  return static_cast<uint16_t>(pos | (wrap ? 0x8000 : 0));
}

using PackedRingTest = RingTest<RingLayout::kPacked>;

TEST_F(PackedRingTest, EmptyRingFetchesNothing) {
  Init({.size = 64});
  DescChain chains[4];
  EXPECT_EQ(queue().Fetch(absl::MakeSpan(chains)), 0);
  EXPECT_FALSE(queue().HasAvailable());
  // Posted but the head's flags not yet written: nothing.
  const uint32_t lens[] = {100, 200, 300};
  ASSERT_TRUE(driver_->Post(lens).has_value());
  EXPECT_FALSE(queue().HasAvailable());
  EXPECT_EQ(queue().Fetch(absl::MakeSpan(chains)), 0);
  driver_->Publish();
  EXPECT_TRUE(queue().HasAvailable());
  std::vector<uint16_t> ids = device_->Fetch();
  ASSERT_EQ(ids.size(), 1u);
  EXPECT_EQ(device_->held(ids[0])->ring_slots, 3);
  EXPECT_FALSE(queue().HasAvailable());
  EXPECT_EQ(queue().Fetch(absl::MakeSpan(chains)), 0);
  device_->Write(ids[0], 600);
  device_->Return(ids);
  EXPECT_THAT(ReapIds(), ElementsAreArray(ids));
  EXPECT_EQ(queue().cursors().last_used_idx, 0x8000 | 3);
}

struct StyleCase {
  PostStyle style;
  bool indirect;
};

class PackedStyleTest : public PackedRingTest, public ::testing::WithParamInterface<StyleCase> {};

TEST_P(PackedStyleTest, RoundTrips) {
  const StyleCase p = GetParam();
  Init({.size = 256, .features = p.indirect ? kIndirect : 0});
  std::vector<uint16_t> posted = PostMany(p.style, 12);
  ASSERT_GE(posted.size(), 12u);
  EXPECT_EQ(driver_->Publish().published, posted.size());
  std::vector<uint16_t> fetched = device_->Fetch(SIZE_MAX, 5);
  EXPECT_THAT(fetched, ElementsAreArray(posted));
  EXPECT_EQ(queue().in_flight(), posted.size());
  uint32_t slots = 0;
  for (uint16_t id : posted) {
    const DescChain* c = device_->held(id);
    ASSERT_NE(c, nullptr);
    slots += c->ring_slots;
    if (p.style == PostStyle::kLinuxBig) {
      EXPECT_EQ(c->ring_slots, p.indirect ? 1 : kLinuxBigDescs);
      EXPECT_EQ(c->nsegs, kLinuxBigDescs);
    } else {
      EXPECT_EQ(c->ring_slots, 1);
    }
  }
  EXPECT_EQ(queue().cursors().last_avail_idx, Advance(0x8000, slots, 256));
  for (size_t i = 0; i < posted.size(); ++i) {
    const DescChain* c = device_->held(posted[i]);
    device_->Write(posted[i], i == 0 ? 0 : i % 3 == 0 ? c->len : c->len / (i + 1) + 1);
  }
  EXPECT_EQ(device_->Return(posted), posted.size());
  EXPECT_EQ(queue().in_flight(), 0);
  EXPECT_THAT(ReapIds(), ElementsAreArray(posted));
  EXPECT_EQ(queue().cursors().last_used_idx, Advance(0x8000, slots, 256));
  EXPECT_EQ(driver_->next_used(), queue().cursors().last_used_idx);
  EXPECT_EQ(queue().stats().bad_returns, 0u);
}

INSTANTIATE_TEST_SUITE_P(Styles, PackedStyleTest,
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

TEST_F(PackedRingTest, OutOfOrderReturnsAdvanceByEachBuffersOwnLength) {
  // Buffers of 1, 3 and 2 descriptors returned in reverse: the used entries
  // go at positions 0, 2 and 5 (the device skips by the returned buffer's
  // length), and the driver reads them the same way.
  Init({.size = 16});
  const uint32_t one[] = {500};
  const uint32_t three[] = {100, 200, 300};
  const uint32_t two[] = {1000, 1000};
  const uint16_t a = *driver_->Post(one);
  const uint16_t b = *driver_->Post(three);
  const uint16_t c = *driver_->Post(two);
  driver_->Publish();
  ASSERT_EQ(device_->Fetch().size(), 3u);
  for (uint16_t id : {a, b, c}) device_->Write(id, 150);
  device_->Return({c, b, a});
  EXPECT_EQ(driver_->packed_desc(0)->id, c);
  EXPECT_EQ(driver_->packed_desc(2)->id, b);
  EXPECT_EQ(driver_->packed_desc(5)->id, a);
  EXPECT_THAT(ReapIds(), ElementsAreArray({c, b, a}));
  EXPECT_EQ(queue().cursors().last_used_idx, 0x8000 | 6);
  EXPECT_EQ(driver_->next_used(), 0x8000 | 6);
  EXPECT_EQ(driver_->free_descs(), 16);
}

TEST_F(PackedRingTest, RandomOrderAndBatchesAcrossManyLaps) {
  Init({.size = 64, .features = kIndirect});
  std::mt19937 rng(11);
  for (int round = 0; round < 40; ++round) {
    std::vector<uint16_t> ids;
    for (int i = 0; i < 10; ++i) {
      const uint32_t lens[] = {64, 1500, 9000, 70};
      std::optional<uint16_t> id =
          driver_->Post(absl::MakeConstSpan(lens, 1 + rng() % 4), true, rng() % 3 == 0);
      if (id.has_value()) ids.push_back(*id);
    }
    driver_->Publish();
    ASSERT_EQ(device_->Fetch(SIZE_MAX, 1 + rng() % 8).size(), ids.size());
    std::shuffle(ids.begin(), ids.end(), rng);
    for (size_t start = 0; start < ids.size();) {
      const size_t n = std::min<size_t>(1 + rng() % 5, ids.size() - start);
      std::vector<uint16_t> batch(ids.begin() + start, ids.begin() + start + n);
      for (uint16_t id : batch) device_->Write(id, rng() % 12000);
      device_->Return(batch);
      EXPECT_THAT(ReapIds(), ElementsAreArray(batch));
      start += n;
    }
    EXPECT_EQ(driver_->next_used(), queue().cursors().last_used_idx);
    EXPECT_EQ(driver_->next_avail(), queue().cursors().last_avail_idx);
  }
}

TEST_F(PackedRingTest, WrapCountersFlipBothWaysWithChainsStraddlingTheEnd) {
  // 3-descriptor chains in a ring of 7 (packed sizes need not be powers of
  // two): every lap ends inside a chain.
  for (uint16_t start : {uint16_t{0x8000}, uint16_t{0x0000 | 5}, uint16_t{0x8000 | 6}}) {
    SCOPED_TRACE(start);
    Init({.size = 7, .start = QueueCursors{start, start}});
    EXPECT_EQ(queue().cursors().last_avail_idx, start);
    uint16_t cursor = start;
    bool saw_wrap[2] = {false, false};
    std::vector<uint16_t> flips;
    for (int round = 0; round < 30; ++round) {
      const uint32_t lens[] = {300, 200, 100};
      std::optional<uint16_t> a = driver_->Post(lens);
      std::optional<uint16_t> b = driver_->Post(absl::MakeConstSpan(lens, 2));
      ASSERT_TRUE(a && b);
      driver_->Publish();
      ASSERT_EQ(device_->Fetch().size(), 2u);
      device_->Write(*a, 600);
      device_->Write(*b, 333);
      device_->Return({*b, *a});
      EXPECT_THAT(ReapIds(), ElementsAreArray({*b, *a}));
      cursor = Advance(cursor, 5, 7);
      saw_wrap[cursor >> 15] = true;
      ASSERT_EQ(queue().cursors().last_avail_idx, cursor);
      ASSERT_EQ(queue().cursors().last_used_idx, cursor);
      ASSERT_EQ(driver_->next_avail(), cursor);
      ASSERT_EQ(driver_->next_used(), cursor);
    }
    EXPECT_TRUE(saw_wrap[0] && saw_wrap[1]);
    TearDown();
  }
}

TEST_F(PackedRingTest, FullRingWithOutstandingBuffersAcrossTheEnd) {
  Init({.size = 32, .features = kEventIdx});
  std::mt19937 rng(5);
  uint64_t returned = 0;
  for (int round = 0; round < 50; ++round) {
    // Fill whatever is free with 1..4-descriptor chains; return about half.
    while (true) {
      const uint32_t lens[] = {2048, 2048, 2048, 2048};
      if (!driver_->Post(absl::MakeConstSpan(lens, 1 + rng() % 4))) break;
    }
    EXPECT_LE(driver_->free_descs(), 3);
    driver_->Publish();
    device_->Fetch();
    std::vector<uint16_t> held = device_->held_ids();
    std::shuffle(held.begin(), held.end(), rng);
    held.resize((held.size() + 1) / 2);
    for (uint16_t id : held) device_->Write(id, rng() % 8192);
    device_->Return(held);
    returned += held.size();
    EXPECT_THAT(ReapIds(), ElementsAreArray(held));
  }
  EXPECT_EQ(queue().stats().returned, returned);
  std::vector<uint16_t> rest = device_->held_ids();
  device_->Return(rest);
  ReapIds();
  EXPECT_EQ(driver_->free_descs(), 32);
}

TEST_F(PackedRingTest, BatchedReturnsLargerThanOneInternalBatch) {
  Init({.size = 256});
  std::vector<uint16_t> ids = PostMany(PostStyle::kDpdkPmd, 256);
  ASSERT_EQ(ids.size(), 256u);
  EXPECT_FALSE(driver_->PostDpdk().has_value());
  driver_->Publish();
  ASSERT_EQ(device_->Fetch(SIZE_MAX, 64).size(), 256u);
  for (uint16_t id : ids) device_->Write(id, id * 7 % 2000 + 1);
  std::vector<uint16_t> order(ids.rbegin(), ids.rend());
  EXPECT_EQ(device_->Return(absl::MakeConstSpan(order).subspan(0, 200)), 200);
  std::vector<uint16_t> first = ReapIds();
  EXPECT_THAT(first, ElementsAreArray(order.begin(), order.begin() + 200));
  for (size_t i = 200; i < order.size(); ++i) device_->Return({order[i]});
  ReapIds();
  EXPECT_EQ(queue().cursors().last_used_idx, 0x0000);  // one full lap
}

TEST_F(PackedRingTest, DpdkReusesTheIdTheDeviceWroteIntoTheSlot) {
  Init({.size = 8});
  std::vector<uint16_t> ids = PostMany(PostStyle::kDpdkPmd, 8);
  EXPECT_THAT(ids, ElementsAreArray({0, 1, 2, 3, 4, 5, 6, 7}));
  driver_->Publish();
  device_->Fetch();
  std::vector<uint16_t> order = {5, 2, 7, 0, 1, 3, 6, 4};
  device_->Return(order);
  ReapIds();
  // Slot i now holds order[i]'s id: the PMD posts with those ids, in order.
  std::vector<uint16_t> again = PostMany(PostStyle::kDpdkPmd, 8);
  EXPECT_THAT(again, ElementsAreArray(order));
  driver_->Publish();
  EXPECT_THAT(device_->Fetch(), ElementsAreArray(order));
  device_->Return(again);
  ReapIds();
}

TEST_F(PackedRingTest, CursorsAfterOperationsAndReconnect) {
  Init({.size = 16, .features = kIndirect, .start = QueueCursors{0x0000 | 9, 0x0000 | 9}});
  const uint32_t lens[] = {1000, 1000};
  std::vector<uint16_t> ids;
  for (int i = 0; i < 6; ++i) ids.push_back(*driver_->Post(lens, true, i % 2 == 1));
  // Slots 2,1,2,1,2,1 from position 9 (wrap 0): the fifth chain takes
  // slots 15 and 0, straddling the end; the last ends at 2, wrap 1.
  driver_->Publish();
  std::vector<uint16_t> got = device_->Fetch(4);
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(queue().cursors().last_avail_idx, 0x0000 | 15);
  for (uint16_t id : got) device_->Write(id, 1500);
  device_->Return({got[3], got[0]});
  EXPECT_EQ(queue().cursors().last_used_idx, 0x0000 | 12);
  device_->Return({got[1], got[2]});
  EXPECT_EQ(queue().cursors().last_used_idx, 0x0000 | 15);
  ASSERT_TRUE(device_->Reconnect().ok());
  EXPECT_EQ(queue().cursors().last_avail_idx, 0x0000 | 15);
  EXPECT_EQ(queue().cursors().last_used_idx, 0x0000 | 15);
  EXPECT_TRUE(queue().HasAvailable());
  std::vector<uint16_t> rest = device_->Fetch();
  EXPECT_THAT(rest, ElementsAreArray({ids[4], ids[5]}));
  for (uint16_t id : rest) device_->Write(id, 2000);
  device_->Return(rest);
  EXPECT_EQ(ReapIds().size(), 6u);
  EXPECT_EQ(queue().cursors().last_used_idx, 0x8000 | 2);
  EXPECT_EQ(driver_->next_used(), 0x8000 | 2);
}

TEST_F(PackedRingTest, BadReturnsAreRefusedAndCounted) {
  Init({.size = 16});
  std::vector<uint16_t> ids = PostMany(PostStyle::kLinuxSmall, 3);
  driver_->Publish();
  device_->Fetch();
  for (uint16_t id : ids) device_->Write(id, 99);
  EXPECT_EQ(queue().Return({UsedBuffer{12, 5}, UsedBuffer{60000, 5}}), 0);
  EXPECT_EQ(queue().stats().bad_returns, 2u);
  EXPECT_FALSE(driver_->HasUsed());
  EXPECT_EQ(device_->Return({ids[1]}), 1);
  EXPECT_EQ(queue().Return({UsedBuffer{ids[1], 99}}), 0);
  EXPECT_EQ(queue().stats().bad_returns, 3u);
  // A bad id inside a batch does not disturb the good ones.
  const uint16_t batch[] = {ids[0], ids[1], ids[2]};
  EXPECT_EQ(device_->Return(batch), 2);
  EXPECT_EQ(queue().stats().bad_returns, 4u);
  EXPECT_EQ(queue().in_flight(), 0);
  // The driver gets ids[1] once.
  std::vector<Completion> done = driver_->ReapAll();
  ASSERT_EQ(done.size(), 3u);
  EXPECT_EQ(done[0].id, ids[1]);
  EXPECT_EQ(done[1].id, ids[0]);
  EXPECT_EQ(done[2].id, ids[2]);
  device_->VerifyAll(done);
  EXPECT_EQ(queue().cursors().last_used_idx, 0x8000 | 3);
}

TEST_F(PackedRingTest, EmulatorCatchesAMisbehavingDevice) {
  // The oracles themselves: a used descriptor with an id never posted, a len
  // larger than the buffer, and a write outside any buffer are all reported.
  Init({.size = 8});
  const uint16_t id = *driver_->PostDpdk();
  driver_->Publish();
  device_->Fetch();
  PackedDesc* d = driver_->packed_desc(0);
  d->len = 100000;
  d->flags = kDescFAvail | kDescFUsed;
  EXPECT_EQ(driver_->ReapAll().size(), 1u);
  ASSERT_EQ(driver_->violations().size(), 1u);
  EXPECT_THAT(driver_->violations()[0], ::testing::HasSubstr("exceeds"));
  const uint64_t elsewhere = arena_->Alloc(64);
  arena_->Host(elsewhere)[3] ^= 1;
  EXPECT_FALSE(driver_->CheckIntegrity().ok());
  arena_->Host(elsewhere)[3] ^= 1;
  EXPECT_TRUE(driver_->CheckIntegrity().ok());
  arena_->Free(elsewhere);
  // The device still holds the buffer it never returned; forget about it.
  (void)id;
  device_.reset();
  driver_.reset();
}

TEST_F(PackedRingTest, DefaultCursorsStartAFreshRing) {
  // Virtio 1.1, 2.7.1: both wrap counters start at 1, which librte_vhost and
  // QEMU encode as vring base 0x8000. DeviceQueue::Create's default cursors
  // must therefore take buffers from a freshly initialised packed ring.
  Init({.size = 16});
  auto fresh = DeviceQueue::Create(driver_->device_config(), &arena_->memory());
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  EXPECT_EQ((*fresh)->cursors().last_avail_idx, 0x8000);
  ASSERT_TRUE(driver_->PostDpdk().has_value());
  driver_->Publish();
  EXPECT_TRUE((*fresh)->HasAvailable());
  DescChain chain;
  ASSERT_EQ((*fresh)->Fetch(absl::MakeSpan(&chain, 1)), 1);
  EXPECT_TRUE(driver_->CheckFetched(chain).ok());
  EXPECT_EQ((*fresh)->Return({UsedBuffer{chain.id, 0}}), 1);
  EXPECT_EQ(driver_->ReapAll().size(), 1u);
}

}  // namespace
}  // namespace iovtee::virtio::testing
