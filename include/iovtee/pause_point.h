// A pause point between a control thread and one polling thread, for
// applications that must stop a poller's use of something (a vhost device, a
// mapping) from a callback on another thread without a lock on the fast path.
//
//   poller:   if (p.Enter()) { ...use it...; p.Exit(); }
//   control:  p.Pause();  ...change it...;  p.Resume();
//
// Pause() returns once no poller call is inside; Enter() fails while paused.
// Both sides are sequentially consistent (Dekker), so either the poller sees
// the pause or the control thread sees the poller. Cost on the poller: two
// atomic read-modify-writes per call, no lock.
#ifndef IOVTEE_INCLUDE_IOVTEE_PAUSE_POINT_H_
#define IOVTEE_INCLUDE_IOVTEE_PAUSE_POINT_H_

#include <atomic>
#include <thread>

namespace iovtee {

class PausePoint {
 public:
  bool Enter() {
    inside_.fetch_add(1, std::memory_order_seq_cst);
    if (paused_.load(std::memory_order_seq_cst)) {
      inside_.fetch_sub(1, std::memory_order_seq_cst);
      return false;
    }
    return true;
  }
  void Exit() { inside_.fetch_sub(1, std::memory_order_seq_cst); }
  void Pause() {
    paused_.store(true, std::memory_order_seq_cst);
    while (inside_.load(std::memory_order_seq_cst) != 0) std::this_thread::yield();
  }
  void Resume() { paused_.store(false, std::memory_order_seq_cst); }
  bool paused() const { return paused_.load(std::memory_order_seq_cst); }

 private:
  std::atomic<int> inside_{0};
  std::atomic<bool> paused_{false};
};

}  // namespace iovtee

#endif  // IOVTEE_INCLUDE_IOVTEE_PAUSE_POINT_H_
