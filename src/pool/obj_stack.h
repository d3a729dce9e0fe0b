// A bounded LIFO of object pointers for the mapped pool's free lists.
//
// Why not an rte_ring: a ring hands out the object freed longest ago, so a
// pool of thousands of mbufs walks all of them (and their side-table
// entries) through the cache, one cold line or more per allocation. A stack
// hands back the ones freed last, still in the cache: the NIC refill and
// the free after delivery keep cycling a set about the size of the NIC ring.
//
// Any lcore may push (mbufs are freed anywhere) and pop, so operations take
// a spinlock; each is one bulk copy under it, once per burst.
#ifndef IOVTEE_SRC_POOL_OBJ_STACK_H_
#define IOVTEE_SRC_POOL_OBJ_STACK_H_

#include <cstdint>
#include <cstring>
#include <memory>

#include <rte_spinlock.h>

namespace iovtee {

class ObjStack {
 public:
  explicit ObjStack(uint32_t capacity)
      : capacity_(capacity), objs_(std::make_unique<void*[]>(capacity)) {
    rte_spinlock_init(&lock_);
  }
  ObjStack(const ObjStack&) = delete;
  ObjStack& operator=(const ObjStack&) = delete;

  // All n or none; false when they do not fit (the pool never overfills it:
  // the stack can hold every object of the pool).
  bool Push(void* const* objs, uint32_t n) {
    rte_spinlock_lock(&lock_);
    const bool fits = n <= capacity_ - top_;
    if (fits) {
      std::memcpy(&objs_[top_], objs, n * sizeof(void*));
      top_ += n;
    }
    rte_spinlock_unlock(&lock_);
    return fits;
  }
  // Exactly n, most recently pushed first, or none (false).
  bool PopBulk(void** objs, uint32_t n) {
    rte_spinlock_lock(&lock_);
    const bool enough = n <= top_;
    if (enough) PopLocked(objs, n);
    rte_spinlock_unlock(&lock_);
    return enough;
  }
  // Up to n; returns how many.
  uint32_t PopBurst(void** objs, uint32_t n) {
    rte_spinlock_lock(&lock_);
    if (n > top_) n = top_;
    PopLocked(objs, n);
    rte_spinlock_unlock(&lock_);
    return n;
  }
  // A snapshot (another lcore may change it right after).
  uint32_t Count() const { return __atomic_load_n(&top_, __ATOMIC_RELAXED); }
  uint32_t capacity() const { return capacity_; }

 private:
  // The top object goes to objs[0]: the hottest is used first.
  void PopLocked(void** objs, uint32_t n) {
    for (uint32_t i = 0; i < n; ++i) objs[i] = objs_[top_ - 1 - i];
    top_ -= n;
  }

  const uint32_t capacity_;
  std::unique_ptr<void*[]> objs_;
  rte_spinlock_t lock_;
  uint32_t top_ = 0;
};

}  // namespace iovtee

#endif  // IOVTEE_SRC_POOL_OBJ_STACK_H_
