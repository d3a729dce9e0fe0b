// Notification rules, both directions and both layouts: when the device must
// interrupt the driver (NotifyDue) and how it tells the driver not to kick
// (EnableKicks), in flag mode and event-idx mode, across 16-bit index wrap.
// The device's answers are checked against the driver emulator's own view.
#include <memory>
#include <vector>

#include "gtest/gtest.h"
#include "src/virtio/device_queue.h"
#include "src/virtio/ring_layout.h"
#include "test/virtio/driver_emulator.h"

namespace iovtee::virtio {
namespace {

using testing::DriverOptions;
using testing::GuestArena;
using testing::VirtioDriver;

constexpr uint64_t kEventIdx = uint64_t{1} << kFEventIdx;

TEST(NeedEventTest, Arithmetic) {
  // Notify when the index moves past `event`: old < event + 1 <= new.
  EXPECT_TRUE(NeedEvent(5, 6, 5));
  EXPECT_TRUE(NeedEvent(5, 10, 0));
  EXPECT_FALSE(NeedEvent(5, 5, 0));
  EXPECT_FALSE(NeedEvent(5, 12, 6));
  EXPECT_FALSE(NeedEvent(5, 5, 5));
  // Across 16-bit wrap.
  EXPECT_TRUE(NeedEvent(65535, 0, 65535));
  EXPECT_TRUE(NeedEvent(65534, 2, 65530));
  EXPECT_FALSE(NeedEvent(3, 2, 65530));
  EXPECT_TRUE(NeedEvent(1, 2, 65530));
  EXPECT_FALSE(NeedEvent(65535, 65535, 65530));
}

class Fixture {
 public:
  Fixture(RingLayout layout, uint64_t features, QueueCursors start = {}, uint16_t size = 64) {
    DriverOptions o;
    o.layout = layout;
    o.size = size;
    o.features = features;
    o.start = start;
    drv = std::make_unique<VirtioDriver>(&arena, o);
    auto q = DeviceQueue::Create(drv->device_config(), &arena.memory(), drv->start_cursors());
    EXPECT_TRUE(q.ok()) << q.status();
    dev = std::move(*q);
  }

  // Posts, publishes, fetches and returns `n` buffers; the device returns
  // them in one batch.
  void Cycle(int n) {
    for (int i = 0; i < n; ++i) ASSERT_TRUE(drv->Post(std::vector<uint32_t>{128}).has_value());
    drv->Publish();
    std::vector<DescChain> chains(n);
    ASSERT_EQ(dev->Fetch(absl::MakeSpan(chains)), n);
    std::vector<UsedBuffer> used;
    for (const DescChain& c : chains) used.push_back({c.id, 64});
    ASSERT_EQ(dev->Return(used), n);
    drv->ReapAll();
  }

  GuestArena arena;
  std::unique_ptr<VirtioDriver> drv;
  std::unique_ptr<DeviceQueue> dev;
};

TEST(SplitNotifyTest, FlagMode) {
  Fixture f(RingLayout::kSplit, 0);
  EXPECT_FALSE(f.dev->NotifyDue()) << "nothing returned yet";
  f.Cycle(1);
  EXPECT_TRUE(f.dev->NotifyDue());
  EXPECT_FALSE(f.dev->NotifyDue()) << "nothing new since the last signal";
  *f.drv->split_avail_flags() = kAvailFNoInterrupt;
  f.Cycle(2);
  EXPECT_FALSE(f.dev->NotifyDue());
  *f.drv->split_avail_flags() = 0;
  f.Cycle(1);
  EXPECT_TRUE(f.dev->NotifyDue());
  EXPECT_EQ(f.dev->stats().notifies, 2u);
  EXPECT_EQ(f.dev->stats().notifies_suppressed, 1u);
}

TEST(SplitNotifyTest, EventIdxFirstSignalAlwaysFires) {
  Fixture f(RingLayout::kSplit, kEventIdx);
  *f.drv->split_used_event() = 100;  // far ahead
  f.Cycle(1);
  EXPECT_TRUE(f.dev->NotifyDue()) << "no signal sent yet: the device cannot know old";
  f.Cycle(1);
  EXPECT_FALSE(f.dev->NotifyDue());
}

TEST(SplitNotifyTest, EventIdxFiresWhenUsedPassesUsedEvent) {
  Fixture f(RingLayout::kSplit, kEventIdx);
  f.Cycle(1);
  ASSERT_TRUE(f.dev->NotifyDue());  // used idx now 1
  *f.drv->split_used_event() = 3;   // wants a signal when entry 3 is used
  f.Cycle(2);                       // used 1 -> 3: entry 3 not yet written
  EXPECT_FALSE(f.dev->NotifyDue());
  f.Cycle(1);  // 3 -> 4 passes used_event
  EXPECT_TRUE(f.dev->NotifyDue());
  f.Cycle(5);  // 4 -> 9: used_event 3 is behind
  EXPECT_FALSE(f.dev->NotifyDue());
  *f.drv->split_used_event() = 9;
  f.Cycle(3);  // 9 -> 12: passes 9 in the middle of a batch
  EXPECT_TRUE(f.dev->NotifyDue());
}

TEST(SplitNotifyTest, EventIdxAcrossIndexWrap) {
  Fixture f(RingLayout::kSplit, kEventIdx, QueueCursors{65530, 65530});
  f.Cycle(1);
  ASSERT_TRUE(f.dev->NotifyDue());     // used 65531
  *f.drv->split_used_event() = 65535;  // wants a signal when 65535 is used
  f.Cycle(3);                          // 65531 -> 65534
  EXPECT_FALSE(f.dev->NotifyDue());
  f.Cycle(3);  // 65534 -> 1 (wraps), passes 65535
  EXPECT_TRUE(f.dev->NotifyDue());
  *f.drv->split_used_event() = 2;
  f.Cycle(1);  // 1 -> 2
  EXPECT_FALSE(f.dev->NotifyDue());
  f.Cycle(1);  // 2 -> 3
  EXPECT_TRUE(f.dev->NotifyDue());
  EXPECT_EQ(f.dev->cursors().last_used_idx, 3);
}

TEST(SplitKickTest, FlagModeMatchesDriverView) {
  Fixture f(RingLayout::kSplit, 0);
  f.dev->EnableKicks(false);
  EXPECT_EQ(*f.drv->split_used_flags(), kUsedFNoNotify);
  ASSERT_TRUE(f.drv->Post(std::vector<uint32_t>{64}).has_value());
  EXPECT_FALSE(f.drv->Publish().kick);
  f.dev->EnableKicks(true);
  EXPECT_EQ(*f.drv->split_used_flags(), 0);
  ASSERT_TRUE(f.drv->Post(std::vector<uint32_t>{64}).has_value());
  EXPECT_TRUE(f.drv->Publish().kick);
}

TEST(SplitKickTest, EventIdxTracksDevicePosition) {
  Fixture f(RingLayout::kSplit, kEventIdx, QueueCursors{65534, 65534});
  f.dev->EnableKicks(true);
  EXPECT_EQ(*f.drv->split_avail_event(), 65534);
  // The driver publishes 65534 -> 65535: passes avail_event, so it kicks.
  ASSERT_TRUE(f.drv->Post(std::vector<uint32_t>{64}).has_value());
  EXPECT_TRUE(f.drv->Publish().kick);
  // Device has not fetched: avail_event still 65534, the driver does not
  // kick again for 65535 -> 0.
  ASSERT_TRUE(f.drv->Post(std::vector<uint32_t>{64}).has_value());
  EXPECT_FALSE(f.drv->Publish().kick);
  DescChain c[2];
  ASSERT_EQ(f.dev->Fetch(c), 2);
  EXPECT_EQ(*f.drv->split_avail_event(), 0) << "avail_event follows the fetch across wrap";
  ASSERT_TRUE(f.drv->Post(std::vector<uint32_t>{64}).has_value());
  EXPECT_TRUE(f.drv->Publish().kick);
  // Disabled: avail_event stops moving, so kicks stop after it is passed.
  f.dev->EnableKicks(false);
  ASSERT_EQ(f.dev->Fetch(c), 1);
  EXPECT_EQ(*f.drv->split_avail_event(), 0);
  ASSERT_TRUE(f.drv->Post(std::vector<uint32_t>{64}).has_value());
  EXPECT_FALSE(f.drv->Publish().kick);
}

TEST(PackedNotifyTest, EnableAndDisable) {
  Fixture f(RingLayout::kPacked, 0);
  f.drv->packed_driver_event()->flags = kEventFEnable;
  f.Cycle(1);
  EXPECT_TRUE(f.dev->NotifyDue());
  EXPECT_FALSE(f.dev->NotifyDue());
  f.drv->packed_driver_event()->flags = kEventFDisable;
  f.Cycle(3);
  EXPECT_FALSE(f.dev->NotifyDue());
  f.drv->packed_driver_event()->flags = kEventFEnable;
  f.Cycle(1);
  EXPECT_TRUE(f.dev->NotifyDue());
}

TEST(PackedNotifyTest, DescModeSameLap) {
  Fixture f(RingLayout::kPacked, kEventIdx, QueueCursors{0x8000, 0x8000}, 64);
  f.Cycle(1);
  ASSERT_TRUE(f.dev->NotifyDue());  // first signal; used position 1, wrap 1
  f.drv->packed_driver_event()->off_wrap = 0x8000 | 5;
  f.drv->packed_driver_event()->flags = kEventFDesc;
  f.Cycle(3);  // 1 -> 4
  EXPECT_FALSE(f.dev->NotifyDue());
  f.Cycle(2);  // 4 -> 6 passes descriptor 5
  EXPECT_TRUE(f.dev->NotifyDue());
}

TEST(PackedNotifyTest, DescModeAcrossRingWrap) {
  // 16-entry ring starting near its end, wrap counter 1.
  Fixture f(RingLayout::kPacked, kEventIdx, QueueCursors{0x8000 | 12, 0x8000 | 12}, 16);
  f.Cycle(1);
  ASSERT_TRUE(f.dev->NotifyDue());  // used position 13, wrap 1
  // Wants descriptor 1 of the next lap (wrap 0).
  f.drv->packed_driver_event()->off_wrap = 1;
  f.drv->packed_driver_event()->flags = kEventFDesc;
  f.Cycle(3);  // 13 -> 16 = 0 of the next lap: not yet
  EXPECT_FALSE(f.dev->NotifyDue());
  EXPECT_EQ(f.dev->cursors().last_used_idx, 0);  // position 0, wrap 0
  f.Cycle(2);                                    // 0 -> 2 passes 1
  EXPECT_TRUE(f.dev->NotifyDue());
  // An event for the previous lap (wrap 1, offset 14) is behind: no signal.
  f.drv->packed_driver_event()->off_wrap = 0x8000 | 14;
  f.Cycle(1);
  EXPECT_FALSE(f.dev->NotifyDue());
}

TEST(PackedNotifyTest, DescModeBatchCrossingRingEnd) {
  Fixture f(RingLayout::kPacked, kEventIdx, QueueCursors{0x8000 | 12, 0x8000 | 12}, 16);
  f.Cycle(1);
  ASSERT_TRUE(f.dev->NotifyDue());  // 13, wrap 1
  f.drv->packed_driver_event()->off_wrap = 0x8000 | 14;
  f.drv->packed_driver_event()->flags = kEventFDesc;
  f.Cycle(5);  // 13 -> 2 of the next lap, passing 14 of this lap
  EXPECT_TRUE(f.dev->NotifyDue());
}

TEST(PackedKickTest, DeviceEventMatchesDriverView) {
  Fixture f(RingLayout::kPacked, 0);
  f.dev->EnableKicks(false);
  EXPECT_EQ(f.drv->packed_device_event()->flags, kEventFDisable);
  ASSERT_TRUE(f.drv->Post(std::vector<uint32_t>{64}).has_value());
  EXPECT_FALSE(f.drv->Publish().kick);
  f.dev->EnableKicks(true);
  EXPECT_EQ(f.drv->packed_device_event()->flags, kEventFEnable);
  ASSERT_TRUE(f.drv->Post(std::vector<uint32_t>{64}).has_value());
  EXPECT_TRUE(f.drv->Publish().kick);
}

TEST(PackedKickTest, EventIdxAsksForNextPosition) {
  Fixture f(RingLayout::kPacked, kEventIdx, QueueCursors{0x8000 | 14, 0x8000 | 14}, 16);
  f.dev->EnableKicks(true);
  EXPECT_EQ(f.drv->packed_device_event()->flags, kEventFDesc);
  EXPECT_EQ(f.drv->packed_device_event()->off_wrap, 0x8000 | 14);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(f.drv->Post(std::vector<uint32_t>{64}).has_value());
  EXPECT_TRUE(f.drv->Publish().kick);
  DescChain c[3];
  ASSERT_EQ(f.dev->Fetch(c), 3);
  // 14 + 3 = 17 -> position 1 of the next lap (wrap 0).
  EXPECT_EQ(f.drv->packed_device_event()->off_wrap, 1);
  ASSERT_TRUE(f.drv->Post(std::vector<uint32_t>{64}).has_value());
  EXPECT_TRUE(f.drv->Publish().kick);
}

}  // namespace
}  // namespace iovtee::virtio
