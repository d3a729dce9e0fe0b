// The packed-ring half of DeviceQueue (virtio 1.1, 2.7).
//
// One descriptor ring shared both ways. A descriptor is available when its
// AVAIL bit equals the driver's wrap counter and its USED bit does not; the
// device marks a used descriptor by setting both bits to its own wrap counter.
// Driver area: the driver's event suppression; device area: the device's.
#include "src/virtio/chain_builder.h"
#include "src/virtio/device_queue.h"

namespace iovtee::virtio {

using internal::ChainBuilder;
using internal::Load16;
using internal::LoadAcquire16;
using internal::ReadDesc;
using internal::Store16;
using internal::Store32;
using internal::StoreRelease16;

namespace {

constexpr size_t kDescLen = 8;
constexpr size_t kDescId = 12;
constexpr size_t kDescFlags = 14;
constexpr size_t kEventOffWrap = 0;
constexpr size_t kEventFlags = 2;

bool IsAvail(uint16_t flags, bool wrap) {
  return ((flags & kDescFAvail) != 0) == wrap && ((flags & kDescFUsed) != 0) != wrap;
}

// Walks the buffer whose head is at `slot`: chained descriptors follow in the
// ring; an indirect descriptor's table is read in order (NEXT ignored there).
ChainError WalkPacked(const uint8_t* ring, uint16_t size, uint16_t slot, ChainBuilder& b,
                      uint16_t* id, uint16_t* slots) {
  for (uint32_t seen = 1;; ++seen) {
    if (seen > size) return ChainError::kChainTooLong;
    const PackedDesc d = ReadDesc<PackedDesc>(ring + 16 * slot);
    *id = d.id;  // the buffer id is the one in the chain's last descriptor
    *slots = static_cast<uint16_t>(seen);
    if (d.flags & kDescFIndirect) {
      const uint8_t* table;
      uint32_t entries;
      ChainError e = b.OpenIndirect(d.addr, d.len, d.flags, &table, &entries);
      if (e != ChainError::kNone) return e;
      for (uint32_t i = 0; i < entries; ++i) {
        const PackedDesc t = ReadDesc<PackedDesc>(table + 16 * i);
        if (t.flags & kDescFIndirect) return ChainError::kNestedIndirect;
        e = b.AddBuffer(t.addr, t.len, t.flags);
        if (e != ChainError::kNone) return e;
      }
      return ChainError::kNone;
    }
    const ChainError e = b.AddBuffer(d.addr, d.len, d.flags);
    if (e != ChainError::kNone) return e;
    if (!(d.flags & kDescFNext)) return ChainError::kNone;
    if (++slot == size) slot = 0;
  }
}

}  // namespace

bool DeviceQueue::HasAvailablePacked() const {
  return IsAvail(LoadAcquire16(config_.desc + 16 * last_avail_ + kDescFlags), avail_wrap_);
}

uint16_t DeviceQueue::FetchPacked(absl::Span<DescChain> out) {
  const uint16_t size = config_.size;
  uint16_t n = 0;
  while (n < out.size()) {
    // Acquire: the driver writes a buffer's descriptors, then the head's flags
    // (release); once the head shows available, the rest is visible.
    const uint16_t flags = LoadAcquire16(config_.desc + 16 * last_avail_ + kDescFlags);
    if (!IsAvail(flags, avail_wrap_)) break;
    // A slot is free for the driver only after the device used it: with the
    // whole ring held, nothing can legally be available. (Ids are 16-bit, so
    // the id bitmap alone would let a hostile driver go on for 65536.)
    if (held_slots_ >= size) {
      Fail(ChainError::kRingOverrun);
      break;
    }
    ChainBuilder b(*memory_, config_.direction, indirect_, size, &out[n]);
    uint16_t id = 0;
    uint16_t slots = 0;
    const ChainError e = WalkPacked(config_.desc, size, last_avail_, b, &id, &slots);
    if (e != ChainError::kNone) {
      Fail(e);
      break;
    }
    // A chain that runs into slots the device still holds: the used ring
    // would have more entries than slots.
    if (held_slots_ + slots > size) {
      Fail(ChainError::kRingOverrun);
      break;
    }
    if (!TakeId(id)) {
      Fail(ChainError::kDuplicateId);
      break;
    }
    ring_slots_[id] = slots;
    held_slots_ += slots;
    out[n].id = id;
    out[n].ring_slots = slots;
    last_avail_ += slots;
    if (last_avail_ >= size) {
      last_avail_ -= size;
      avail_wrap_ = !avail_wrap_;
    }
    ++n;
  }
  if (n > 0 && kicks_enabled_ && event_idx_) EnableKicksPacked(true);
  return n;
}

void DeviceQueue::ReturnPacked(absl::Span<const UsedBuffer> used) {
  const uint16_t size = config_.size;
  uint8_t* head_flags = nullptr;
  uint16_t head_value = 0;
  for (const UsedBuffer& u : used) {
    uint8_t* d = config_.desc + 16 * used_idx_;
    Store16(d + kDescId, u.id);
    Store32(d + kDescLen, u.len);
    // AVAIL and USED both equal to our wrap counter mark it used; WRITE tells
    // the driver the device wrote data (as librte_vhost does for Rx).
    uint16_t flags = used_wrap_ ? (kDescFAvail | kDescFUsed) : 0;
    if (u.len > 0) flags |= kDescFWrite;
    if (head_flags == nullptr) {
      head_flags = d + kDescFlags;
      head_value = flags;
    } else {
      Store16(d + kDescFlags, flags);
    }
    used_idx_ += ring_slots_[u.id];
    if (used_idx_ >= size) {
      used_idx_ -= size;
      used_wrap_ = !used_wrap_;
    }
  }
  // Release, and last: the driver polls the first used position, so the batch
  // (ids, lens, other flags, the data written into the buffers) becomes
  // visible to it at once when that flag flips.
  if (head_flags != nullptr) StoreRelease16(head_flags, head_value);
}

bool DeviceQueue::NotifyDuePacked() {
  uint16_t old_idx = signalled_used_;
  const uint16_t new_idx = used_idx_;
  const bool valid = signalled_used_valid_;
  signalled_used_ = new_idx;
  signalled_used_valid_ = true;
  // Store-load order between our used flags and the driver's event fields.
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  const uint16_t flags = Load16(config_.driver_area + kEventFlags);
  if (flags != kEventFDesc) return flags != kEventFDisable;
  if (!valid) return true;
  // The driver asks to be told when the used descriptor at `off` of lap
  // `wrap` is written. Put old, new and off on one line: positions of the
  // previous lap are shifted down by the ring size (16-bit arithmetic).
  const uint16_t off_wrap = Load16(config_.driver_area + kEventOffWrap);
  uint16_t off = off_wrap & 0x7fff;
  if (new_idx <= old_idx) old_idx -= config_.size;
  if (static_cast<bool>(off_wrap >> 15) != used_wrap_) off -= config_.size;
  return NeedEvent(off, new_idx, old_idx);
}

void DeviceQueue::EnableKicksPacked(bool enable) {
  uint8_t* ev = config_.device_area;
  if (enable && event_idx_) {
    // Ask for a kick when the driver makes the descriptor at our position
    // available; the offset goes out before the flags that make it count.
    Store16(ev + kEventOffWrap, static_cast<uint16_t>(last_avail_ | (avail_wrap_ << 15)));
    StoreRelease16(ev + kEventFlags, kEventFDesc);
  } else {
    StoreRelease16(ev + kEventFlags, enable ? kEventFEnable : kEventFDisable);
  }
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

}  // namespace iovtee::virtio
