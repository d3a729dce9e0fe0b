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

}  // namespace
}  // namespace iovtee
