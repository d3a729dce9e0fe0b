// The split-ring half of DeviceQueue (virtio 1.1, 2.6).
//
// Driver area (avail): flags, idx, ring[size], used_event.
// Device area (used):  flags, idx, {id, len}[size], avail_event.
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

constexpr size_t kFlags = 0;
constexpr size_t kIdx = 2;
constexpr size_t kRing = 4;

// Walks the chain starting at `head`. The main table and an indirect table
// each bound the walk by their own length, so a loop ends as kChainTooLong.
ChainError WalkSplit(const uint8_t* desc, uint16_t size, uint16_t head, ChainBuilder& b) {
  if (head >= size) return ChainError::kHeadOutOfRange;
  const uint8_t* table = desc;
  uint32_t entries = size;
  uint32_t seen = 0;
  uint32_t i = head;
  for (;;) {
    if (++seen > entries) return ChainError::kChainTooLong;
    const SplitDesc d = ReadDesc<SplitDesc>(table + 16 * i);
    if (d.flags & kDescFIndirect) {
      const ChainError e = b.OpenIndirect(d.addr, d.len, d.flags, &table, &entries);
      if (e != ChainError::kNone) return e;
      i = 0;
      seen = 0;
      continue;
    }
    const ChainError e = b.AddBuffer(d.addr, d.len, d.flags);
    if (e != ChainError::kNone) return e;
    if (!(d.flags & kDescFNext)) return ChainError::kNone;
    if (d.next >= entries) return ChainError::kNextOutOfRange;
    i = d.next;
  }
}

}  // namespace

// The common chain, one plain descriptor in the right direction wholly inside
// one region, without the general walk. Anything else returns false and
// takes the walk, which applies every rule.
bool DeviceQueue::FastSplitChain(uint16_t head, DescChain* out) const {
  if (head >= config_.size) return false;
  const SplitDesc d = ReadDesc<SplitDesc>(config_.desc + 16 * head);
  const uint16_t want = config_.direction == Direction::kDeviceWrites ? kDescFWrite : 0;
  if ((d.flags & (kDescFNext | kDescFIndirect | kDescFWrite)) != want || d.len == 0) return false;
  uint8_t* host = memory_->GpaToHost(d.addr, d.len);
  if (host == nullptr) return false;
  out->nsegs = 1;
  out->len = d.len;
  out->segs[0] = GuestSegment{host, d.addr, d.len};
  return true;
}

bool DeviceQueue::HasAvailableSplit() const {
  return LoadAcquire16(config_.driver_area + kIdx) != last_avail_;
}

uint16_t DeviceQueue::FetchSplit(absl::Span<DescChain> out) {
  const uint16_t size = config_.size;
  // Acquire: the ring entries and descriptors the driver wrote before it
  // published avail->idx are visible once we see the new idx.
  const uint16_t avail = LoadAcquire16(config_.driver_area + kIdx);
  const uint16_t pending = avail - last_avail_;
  if (pending > size) {
    Fail(ChainError::kAvailIndexJump);
    return 0;
  }
  const uint16_t want = pending < out.size() ? pending : static_cast<uint16_t>(out.size());
  uint16_t n = 0;
  for (; n < want; ++n) {
    const uint16_t head = Load16(config_.driver_area + kRing + 2 * (last_avail_ & (size - 1)));
    if (!FastSplitChain(head, &out[n])) {
      // Everything else, checked rule by rule (the descriptor is read again:
      // what the fast path saw does not matter).
      ChainBuilder b(*memory_, config_.direction, indirect_, size, &out[n]);
      const ChainError e = WalkSplit(config_.desc, size, head, b);
      if (e != ChainError::kNone) {
        Fail(e);
        break;
      }
    }
    if (!TakeId(head)) {
      Fail(ChainError::kDuplicateId);
      break;
    }
    out[n].id = head;
    out[n].ring_slots = 1;
    ++last_avail_;
  }
  // With event-idx the driver kicks only when it passes avail_event: keep it
  // at our position so kicks (if wanted) come for new buffers only.
  if (kicks_enabled_ && event_idx_) Store16(config_.device_area + kRing + 8 * size, last_avail_);
  return n;
}

void DeviceQueue::ReturnSplit(absl::Span<const UsedBuffer> used) {
  const uint16_t mask = config_.size - 1;
  uint8_t* ring = config_.device_area + kRing;
  for (const UsedBuffer& u : used) {
    uint8_t* elem = ring + 8 * (used_idx_ & mask);
    Store32(elem, u.id);
    Store32(elem + 4, u.len);
    ++used_idx_;
  }
  // Release: the driver that sees the new used->idx sees the elements, and
  // the data the device wrote into the buffers before this call.
  StoreRelease16(config_.device_area + kIdx, used_idx_);
}

bool DeviceQueue::NotifyDueSplit() {
  const uint16_t old_idx = signalled_used_;
  const bool valid = signalled_used_valid_;
  signalled_used_ = used_idx_;
  signalled_used_valid_ = true;
  // Store-load order: our used->idx store must be globally visible before we
  // read the driver's wish, or both sides can miss each other's update.
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  if (event_idx_) {
    const uint16_t used_event = Load16(config_.driver_area + kRing + 2 * config_.size);
    return !valid || NeedEvent(used_event, used_idx_, old_idx);
  }
  return !(Load16(config_.driver_area + kFlags) & kAvailFNoInterrupt);
}

void DeviceQueue::EnableKicksSplit(bool enable) {
  if (event_idx_) {
    // With event-idx the used->flags hint is not used (virtio 1.1, 2.6.10);
    // a disabled queue simply stops moving avail_event.
    if (enable) Store16(config_.device_area + kRing + 8 * config_.size, last_avail_);
  } else {
    Store16(config_.device_area + kFlags, enable ? 0 : kUsedFNoNotify);
  }
  // The driver must see the new setting before it next checks; pairs with the
  // driver's barrier between publishing avail->idx and reading it.
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

}  // namespace iovtee::virtio
