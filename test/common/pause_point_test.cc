#include "iovtee/pause_point.h"

#include <atomic>
#include <chrono>
#include <thread>

#include "gtest/gtest.h"

namespace iovtee {
namespace {

TEST(PausePointTest, EnterFailsWhilePaused) {
  PausePoint p;
  ASSERT_TRUE(p.Enter());
  p.Exit();
  p.Pause();
  EXPECT_TRUE(p.paused());
  EXPECT_FALSE(p.Enter());
  p.Resume();
  EXPECT_TRUE(p.Enter());
  p.Exit();
}

// Pause() must not return while a poller call is inside.
TEST(PausePointTest, PauseWaitsForTheCallInside) {
  PausePoint p;
  std::atomic<bool> inside{false}, release{false}, exited{false}, paused{false};
  std::thread poller([&] {
    ASSERT_TRUE(p.Enter());
    inside = true;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!release && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
    exited = true;  // before Exit: Pause cannot have returned yet
    p.Exit();
  });
  while (!inside) std::this_thread::yield();
  std::thread control([&] {
    p.Pause();
    EXPECT_TRUE(exited) << "Pause returned while the poller was inside";
    paused = true;
  });
  // The control thread is (or soon will be) waiting; it must still be.
  for (int i = 0; i < 1000; ++i) {
    std::this_thread::yield();
    ASSERT_FALSE(paused);
  }
  release = true;
  control.join();
  poller.join();
  EXPECT_TRUE(paused);
  EXPECT_FALSE(p.Enter());
}

// This kernel has membarrier: the poller's side has no barrier instruction.
TEST(PausePointTest, PollerSideIsBarrierFreeHere) {
  PausePoint p;
  EXPECT_TRUE(p.light()) << "membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) is not available";
}

// Mutual exclusion under churn: the control thread changes shared state only
// while paused; a poller inside must never see it half changed.
TEST(PausePointTest, PollerNeverSeesAChangeInProgress) {
  PausePoint p;
  std::atomic<bool> changing{false};
  std::atomic<uint64_t> value{0};
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> entered{0}, violations{0};
  std::thread poller([&] {
    while (!stop.load(std::memory_order_relaxed)) {
      if (!p.Enter()) continue;
      const uint64_t before = value.load(std::memory_order_relaxed);
      if (changing.load(std::memory_order_relaxed)) violations.fetch_add(1);
      for (int i = 0; i < 50; ++i) std::atomic_signal_fence(std::memory_order_seq_cst);
      if (changing.load(std::memory_order_relaxed) ||
          value.load(std::memory_order_relaxed) != before) {
        violations.fetch_add(1);
      }
      p.Exit();
      entered.fetch_add(1, std::memory_order_relaxed);
    }
  });
  constexpr int kRounds = 2000;
  for (int round = 0; round < kRounds; ++round) {
    p.Pause();
    changing.store(true, std::memory_order_relaxed);
    value.fetch_add(1, std::memory_order_relaxed);
    changing.store(false, std::memory_order_relaxed);
    p.Resume();
    // Let the poller in between pauses (bounded: a stuck poller fails below).
    const uint64_t seen = entered.load();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (entered.load() == seen && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::yield();
    }
  }
  stop = true;
  poller.join();
  EXPECT_EQ(violations.load(), 0u);
  EXPECT_GE(entered.load(), static_cast<uint64_t>(kRounds)) << "the poller starved";
  EXPECT_EQ(value.load(), static_cast<uint64_t>(kRounds));
}

}  // namespace
}  // namespace iovtee
