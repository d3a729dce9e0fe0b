// Internal to src/virtio: reading guest-shared ring memory safely, and
// turning validated descriptors into a DescChain. Shared by both layouts so
// the rules live in one place.
#ifndef IOVTEE_SRC_VIRTIO_CHAIN_BUILDER_H_
#define IOVTEE_SRC_VIRTIO_CHAIN_BUILDER_H_

#include <cstdint>
#include <cstring>

#include "src/guest/guest_memory.h"
#include "src/virtio/desc_chain.h"
#include "src/virtio/ring_layout.h"

namespace iovtee::virtio::internal {

// Ring fields shared with the driver. Aligned fields use atomics so a load is
// never torn or repeated; ordering is spelled out at each call site.
inline uint16_t Load16(const uint8_t* p) {
  return __atomic_load_n(reinterpret_cast<const uint16_t*>(p), __ATOMIC_RELAXED);
}
inline uint16_t LoadAcquire16(const uint8_t* p) {
  return __atomic_load_n(reinterpret_cast<const uint16_t*>(p), __ATOMIC_ACQUIRE);
}
inline void Store16(uint8_t* p, uint16_t v) {
  __atomic_store_n(reinterpret_cast<uint16_t*>(p), v, __ATOMIC_RELAXED);
}
inline void StoreRelease16(uint8_t* p, uint16_t v) {
  __atomic_store_n(reinterpret_cast<uint16_t*>(p), v, __ATOMIC_RELEASE);
}
inline void Store32(uint8_t* p, uint32_t v) {
  __atomic_store_n(reinterpret_cast<uint32_t*>(p), v, __ATOMIC_RELAXED);
}

// A descriptor is copied once and only the copy is used: the compiler barrier
// stops the compiler from re-reading guest memory after validation (a guest
// that rewrites a descriptor mid-walk gets whatever was read first, which was
// checked). Indirect tables may be unaligned, hence memcpy.
template <class Desc>
inline Desc ReadDesc(const uint8_t* p) {
  Desc d;
  std::memcpy(&d, p, sizeof(d));
  asm volatile("" ::: "memory");
  return d;
}

class ChainBuilder {
 public:
  // `max_descs` bounds an indirect table (the queue size); the walkers bound
  // chain lengths themselves, as only they know which table they are in.
  ChainBuilder(const GuestMemory& memory, Direction direction, bool indirect_allowed,
               uint32_t max_descs, DescChain* out)
      : memory_(memory),
        want_write_(direction == Direction::kDeviceWrites),
        indirect_allowed_(indirect_allowed),
        max_descs_(max_descs),
        out_(out) {
    out_->nsegs = 0;
    out_->len = 0;
  }

  // Adds the memory of one non-indirect descriptor.
  ChainError AddBuffer(uint64_t addr, uint32_t len, uint16_t flags) {
    if (((flags & kDescFWrite) != 0) != want_write_) return ChainError::kWrongDirection;
    if (len == 0) return ChainError::kNone;
    total_ += len;
    if (total_ > UINT32_MAX) return ChainError::kLengthOverflow;
    if (uint8_t* host = memory_.GpaToHost(addr, len)) {
      if (out_->nsegs == kMaxChainSegments) return ChainError::kTooManySegments;
      out_->segs[out_->nsegs++] = GuestSegment{host, addr, len};
    } else {
      // Rare: a buffer that crosses from one region into the next.
      GuestSegment parts[8];
      const int n = memory_.GpaToSegments(addr, len, parts);
      if (n < 0) return ChainError::kAddressOutOfMemory;
      if (out_->nsegs + n > kMaxChainSegments) return ChainError::kTooManySegments;
      for (int i = 0; i < n; ++i) out_->segs[out_->nsegs++] = parts[i];
    }
    out_->len = static_cast<uint32_t>(total_);
    return ChainError::kNone;
  }

  // Checks an INDIRECT descriptor and returns its table. An indirect table is
  // walked with its own descriptor budget: its entry count.
  ChainError OpenIndirect(uint64_t addr, uint32_t len, uint16_t flags, const uint8_t** table,
                          uint32_t* entries) {
    if (!indirect_allowed_) return ChainError::kIndirectNotAllowed;
    if (in_indirect_) return ChainError::kNestedIndirect;
    if (flags & kDescFNext) return ChainError::kIndirectWithNext;
    if (len == 0 || len % 16 != 0 || len / 16 > max_descs_) return ChainError::kIndirectBadLength;
    const uint8_t* t = memory_.GpaToHost(addr, len);
    if (t == nullptr) return ChainError::kIndirectOutOfMemory;
    in_indirect_ = true;
    *table = t;
    *entries = len / 16;
    return ChainError::kNone;
  }

 private:
  const GuestMemory& memory_;
  const bool want_write_;
  const bool indirect_allowed_;
  const uint32_t max_descs_;
  DescChain* const out_;
  uint64_t total_ = 0;
  bool in_indirect_ = false;
};

}  // namespace iovtee::virtio::internal

#endif  // IOVTEE_SRC_VIRTIO_CHAIN_BUILDER_H_
