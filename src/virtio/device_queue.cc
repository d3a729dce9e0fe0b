// The layout-independent half of DeviceQueue: configuration checks, the
// per-burst dispatch to the split or packed half, and the record of which
// buffer ids the device holds (so no buffer is used or returned twice).
#include "src/virtio/device_queue.h"

#include "absl/strings/str_format.h"
#include "src/virtio/chain_builder.h"

namespace iovtee::virtio {
namespace {

bool Aligned(const uint8_t* p, uintptr_t a) {
  return (reinterpret_cast<uintptr_t>(p) & (a - 1)) == 0;
}

}  // namespace

absl::StatusOr<std::unique_ptr<DeviceQueue>> DeviceQueue::Create(
    const QueueConfig& config, const GuestMemory* memory, std::optional<QueueCursors> start) {
  const bool packed = config.layout == RingLayout::kPacked;
  const QueueCursors cursors =
      start.value_or(packed ? QueueCursors{0x8000, 0x8000} : QueueCursors{0, 0});
  if (memory == nullptr) return absl::InvalidArgumentError("virtqueue: no guest memory");
  if (config.size == 0 || config.size > kMaxQueueSize) {
    return absl::InvalidArgumentError(
        absl::StrFormat("virtqueue: size %u out of range 1..%u", config.size, kMaxQueueSize));
  }
  if (!packed && (config.size & (config.size - 1)) != 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("virtqueue: split ring size %u is not a power of two", config.size));
  }
  if (packed != ((config.features >> kFRingPacked) & 1)) {
    return absl::InvalidArgumentError(
        "virtqueue: layout does not match the negotiated VIRTIO_F_RING_PACKED feature");
  }
  if (config.desc == nullptr || config.driver_area == nullptr || config.device_area == nullptr) {
    return absl::InvalidArgumentError("virtqueue: a ring address is not in guest memory");
  }
  // Virtio 1.1, 2.6 and 2.7: descriptor table 16, avail 2, used 4, events 4.
  if (!Aligned(config.desc, 16) || !Aligned(config.driver_area, packed ? 4 : 2) ||
      !Aligned(config.device_area, 4)) {
    return absl::InvalidArgumentError("virtqueue: misaligned ring address");
  }
  if (packed && ((cursors.last_avail_idx & 0x7fff) >= config.size ||
                 (cursors.last_used_idx & 0x7fff) >= config.size)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("virtqueue: packed cursors avail=%#x used=%#x outside a ring of %u",
                        cursors.last_avail_idx, cursors.last_used_idx, config.size));
  }
  if (!packed &&
      static_cast<uint16_t>(cursors.last_avail_idx - cursors.last_used_idx) > config.size) {
    return absl::InvalidArgumentError(
        absl::StrFormat("virtqueue: cursors avail=%u used=%u are more than %u apart",
                        cursors.last_avail_idx, cursors.last_used_idx, config.size));
  }
  return std::unique_ptr<DeviceQueue>(new DeviceQueue(config, memory, cursors));
}

DeviceQueue::DeviceQueue(const QueueConfig& config, const GuestMemory* memory, QueueCursors cursors)
    : config_(config),
      memory_(memory),
      event_idx_((config.features >> kFEventIdx) & 1),
      indirect_((config.features >> kFIndirectDesc) & 1) {
  if (config.layout == RingLayout::kPacked) {
    last_avail_ = cursors.last_avail_idx & 0x7fff;
    avail_wrap_ = cursors.last_avail_idx >> 15;
    used_idx_ = cursors.last_used_idx & 0x7fff;
    used_wrap_ = cursors.last_used_idx >> 15;
    // Packed buffer ids are 16-bit and need not be below the ring size.
    held_.assign(65536 / 64, 0);
    ring_slots_.assign(65536, 0);
  } else {
    last_avail_ = cursors.last_avail_idx;
    used_idx_ = cursors.last_used_idx;
    held_.assign((config.size + 63) / 64, 0);
  }
}

QueueCursors DeviceQueue::cursors() const {
  if (config_.layout == RingLayout::kPacked) {
    return {static_cast<uint16_t>(last_avail_ | (avail_wrap_ << 15)),
            static_cast<uint16_t>(used_idx_ | (used_wrap_ << 15))};
  }
  return {last_avail_, used_idx_};
}

bool DeviceQueue::Fail(ChainError e) {
  ++stats_.errors[static_cast<int>(e)];
  last_error_ = e;
  return false;
}

bool DeviceQueue::TakeId(uint16_t id) {
  uint64_t& word = held_[id / 64];
  const uint64_t bit = uint64_t{1} << (id % 64);
  if (word & bit) return false;
  word |= bit;
  ++in_flight_;
  return true;
}

bool DeviceQueue::ReleaseId(uint16_t id) {
  if (id / 64 >= held_.size()) return false;
  uint64_t& word = held_[id / 64];
  const uint64_t bit = uint64_t{1} << (id % 64);
  if (!(word & bit)) return false;
  word &= ~bit;
  --in_flight_;
  if (!ring_slots_.empty()) held_slots_ -= ring_slots_[id];
  return true;
}

uint16_t DeviceQueue::Fetch(absl::Span<DescChain> out) {
  if (broken() || out.empty()) return 0;
  const uint16_t n = config_.layout == RingLayout::kPacked ? FetchPacked(out) : FetchSplit(out);
  stats_.fetched += n;
  return n;
}

bool DeviceQueue::HasAvailable() const {
  if (broken()) return false;
  return config_.layout == RingLayout::kPacked ? HasAvailablePacked() : HasAvailableSplit();
}

uint16_t DeviceQueue::Return(absl::Span<const UsedBuffer> used) {
  // Drop ids the device does not hold, so a caller bug can never hand the
  // driver a buffer it did not post or one it already got back.
  UsedBuffer valid[64];
  uint16_t total = 0;
  while (!used.empty()) {
    uint16_t n = 0;
    size_t i = 0;
    for (; i < used.size() && n < 64; ++i) {
      if (!ReleaseId(used[i].id)) {
        ++stats_.bad_returns;
        continue;
      }
      valid[n++] = used[i];
    }
    used.remove_prefix(i);
    if (n == 0) continue;
    if (config_.layout == RingLayout::kPacked) {
      ReturnPacked(absl::MakeConstSpan(valid, n));
    } else {
      ReturnSplit(absl::MakeConstSpan(valid, n));
    }
    total += n;
  }
  stats_.returned += total;
  return total;
}

bool DeviceQueue::NotifyDue() {
  // Nothing returned since the last call: nothing to signal. (Comparing used
  // positions would not do: a packed ring can come round to the same one.)
  if (stats_.returned == returned_at_signal_) return false;
  returned_at_signal_ = stats_.returned;
  const bool due = config_.layout == RingLayout::kPacked ? NotifyDuePacked() : NotifyDueSplit();
  ++(due ? stats_.notifies : stats_.notifies_suppressed);
  return due;
}

void DeviceQueue::EnableKicks(bool enable) {
  kicks_enabled_ = enable;
  if (config_.layout == RingLayout::kPacked) {
    EnableKicksPacked(enable);
  } else {
    EnableKicksSplit(enable);
  }
}

}  // namespace iovtee::virtio
