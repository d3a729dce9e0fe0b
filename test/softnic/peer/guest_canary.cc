#include "test/softnic/peer/guest_canary.h"

#include <rte_errno.h>

#include <array>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace iovtee::softnic {
namespace {

// Position-dependent bytes: a stray write of a constant, or of a frame's
// bytes, cannot match them by chance over a whole canary.
template <size_t N>
constexpr std::array<uint8_t, N> Pattern(uint8_t seed) {
  std::array<uint8_t, N> p = {};
  for (size_t i = 0; i < N; ++i) p[i] = static_cast<uint8_t>(seed + i * 0x3d);
  return p;
}
constexpr auto kHead = Pattern<CanaryPool::kHeadBytes>(0xa5);
constexpr auto kTail = Pattern<CanaryPool::kTailBytes>(0x5a);

uint8_t* Head(rte_mbuf* m) { return static_cast<uint8_t*>(m->buf_addr); }
uint8_t* Tail(rte_mbuf* m) { return static_cast<uint8_t*>(m->buf_addr) + m->buf_len; }

}  // namespace

absl::StatusOr<std::unique_ptr<CanaryPool>> CanaryPool::Create(const std::string& name, uint32_t n,
                                                               uint16_t cache, uint16_t data_room,
                                                               int socket) {
  if (data_room < RTE_PKTMBUF_HEADROOM + 64 || uint32_t{data_room} + kTailBytes > UINT16_MAX) {
    return absl::InvalidArgumentError(absl::StrCat("guest mbuf data room ", data_room,
                                                   " out of range (", RTE_PKTMBUF_HEADROOM + 64,
                                                   "..", UINT16_MAX - kTailBytes, ")"));
  }
  auto p = std::unique_ptr<CanaryPool>(new CanaryPool());
  p->pool_ = rte_pktmbuf_pool_create(name.c_str(), n, cache, 0,
                                     static_cast<uint16_t>(data_room + kTailBytes), socket);
  if (p->pool_ == nullptr) {
    return absl::ResourceExhaustedError(absl::StrCat("cannot create the guest's pool of ", n,
                                                     " mbufs: ", rte_strerror(rte_errno),
                                                     " (more EAL memory: -m)"));
  }
  // Every object is in the pool now: carve the tail off and write both
  // canaries. Nothing resets buf_len of a direct mbuf afterwards.
  rte_mempool_obj_iter(p->pool_, InitObject, nullptr);
  return p;
}

CanaryPool::~CanaryPool() {
  if (pool_ != nullptr) rte_mempool_free(pool_);
}

void CanaryPool::InitObject(rte_mempool*, void*, void* obj, unsigned) {
  auto* m = static_cast<rte_mbuf*>(obj);
  m->buf_len = static_cast<uint16_t>(m->buf_len - kTailBytes);
  std::memcpy(Head(m), kHead.data(), kHead.size());
  std::memcpy(Tail(m), kTail.data(), kTail.size());
}

bool CanaryPool::CheckBuffer(rte_mbuf* m) {
  const bool head_ok = std::memcmp(Head(m), kHead.data(), kHead.size()) == 0;
  const bool tail_ok = std::memcmp(Tail(m), kTail.data(), kTail.size()) == 0;
  if (head_ok && tail_ok) return true;
  uint64_t offset = 0;
  if (!head_ok) {
    while (Head(m)[offset] == kHead[offset]) ++offset;
  } else {
    uint64_t i = 0;
    while (Tail(m)[i] == kTail[i]) ++i;
    offset = m->buf_len + i;
  }
  uint64_t expected = UINT64_MAX;
  first_offset_.compare_exchange_strong(expected, offset, std::memory_order_relaxed);
  violations_.fetch_add(1, std::memory_order_relaxed);
  // Re-arm: the next check reports only new damage.
  std::memcpy(Head(m), kHead.data(), kHead.size());
  std::memcpy(Tail(m), kTail.data(), kTail.size());
  return false;
}

uint32_t CanaryPool::Check(rte_mbuf* m) {
  uint32_t bad = 0;
  uint32_t segs = 0;
  for (rte_mbuf* s = m; s != nullptr; s = s->next) {
    ++segs;
    bad += !CheckBuffer(s);
  }
  checked_.fetch_add(segs, std::memory_order_relaxed);
  return bad;
}

struct PoolCheck {
  CanaryPool* pool;
  uint32_t bad;
};

void CanaryPool::CheckObject(rte_mempool*, void* opaque, void* obj, unsigned) {
  auto* c = static_cast<PoolCheck*>(opaque);
  c->bad += !c->pool->CheckBuffer(static_cast<rte_mbuf*>(obj));
  c->pool->pool_checked_.fetch_add(1, std::memory_order_relaxed);
}

uint32_t CanaryPool::CheckPool() {
  PoolCheck c = {this, 0};
  rte_mempool_obj_iter(pool_, CheckObject, &c);
  pool_check_done_.store(true, std::memory_order_relaxed);
  return c.bad;
}

void CanaryPool::CorruptTail(rte_mbuf* m) { Tail(m)[0] ^= 0xff; }

CanaryCounts CanaryPool::counts() const {
  CanaryCounts c;
  c.checked = checked_.load(std::memory_order_relaxed);
  c.violations = violations_.load(std::memory_order_relaxed);
  c.pool_checked = pool_checked_.load(std::memory_order_relaxed);
  const uint64_t first = first_offset_.load(std::memory_order_relaxed);
  c.first_offset = first == UINT64_MAX ? 0 : first;
  c.pool_check_done = pool_check_done_.load(std::memory_order_relaxed);
  return c;
}

}  // namespace iovtee::softnic
