// A pause point between a control thread and one polling thread, for
// applications that must stop a poller's use of something (a vhost device, a
// mapping) from a callback on another thread without a lock on the fast path.
//
//   poller:   if (p.Enter()) { ...use it...; p.Exit(); }
//   control:  p.Pause();  ...change it...;  p.Resume();
//
// Pause() returns once no poller call is inside; Enter() fails while paused.
// One poller thread at a time per PausePoint (calls may move between threads,
// never overlap).
//
// It is Dekker's pattern: the poller says it is inside, then looks for a
// pause; the control thread pauses, then looks for the poller. Each side
// needs a store-load barrier between its store and its load. The poller's
// would be a locked instruction per call, which waits for every store still
// in flight (on a datapath: stores to cache lines another core holds), so
// the barrier is made asymmetric: the poller's side is a compiler barrier,
// and Pause() runs membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED), which makes
// every thread of the process execute a full barrier before it returns.
// Where the kernel (before 4.14) or a seccomp profile refuses membarrier, the
// poller's store is sequentially consistent instead (one locked instruction
// per Enter, none per Exit).
#ifndef IOVTEE_INCLUDE_IOVTEE_PAUSE_POINT_H_
#define IOVTEE_INCLUDE_IOVTEE_PAUSE_POINT_H_

#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace iovtee {
namespace internal {

// Registers the process for expedited private membarriers, once; false when
// the kernel cannot do them.
inline bool ExpeditedMembarrierReady() {
  static const bool ready = [] {
    const long cmds = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
    if (cmds < 0 || !(cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED)) return false;
    return syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
  }();
  return ready;
}

}  // namespace internal

class PausePoint {
 public:
  PausePoint() : light_(internal::ExpeditedMembarrierReady()) {}
  PausePoint(const PausePoint&) = delete;
  PausePoint& operator=(const PausePoint&) = delete;

  bool Enter() {
    if (light_) {
      inside_.store(true, std::memory_order_relaxed);
      std::atomic_signal_fence(std::memory_order_seq_cst);  // Pause's membarrier does the rest
    } else {
      inside_.store(true, std::memory_order_seq_cst);
    }
    // Acquire: after a Resume, what the control thread changed is seen.
    if (paused_.load(std::memory_order_acquire)) {
      inside_.store(false, std::memory_order_release);
      return false;
    }
    return true;
  }
  // Release: what the call did is done before the control thread sees it out.
  void Exit() { inside_.store(false, std::memory_order_release); }

  void Pause() {
    paused_.store(true, std::memory_order_seq_cst);
    // A poller that has stored `inside` but not yet seen the pause has its
    // store made visible here; one that enters after this sees the pause.
    if (light_ && syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) != 0) {
      // Registered, so it does not fail. If it ever did, a poller's store
      // could still sit in its core's store buffer, which drains within
      // microseconds: give it a millisecond to show before trusting "out".
      const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(1);
      while (!inside_.load(std::memory_order_acquire) && std::chrono::steady_clock::now() < until) {
        std::this_thread::yield();
      }
    }
    while (inside_.load(std::memory_order_acquire)) std::this_thread::yield();
  }
  void Resume() { paused_.store(false, std::memory_order_release); }
  bool paused() const { return paused_.load(std::memory_order_acquire); }
  // Whether the poller's side is barrier-free (membarrier available).
  bool light() const { return light_; }

 private:
  std::atomic<bool> inside_{false};
  std::atomic<bool> paused_{false};
  const bool light_;
};

}  // namespace iovtee

#endif  // IOVTEE_INCLUDE_IOVTEE_PAUSE_POINT_H_
