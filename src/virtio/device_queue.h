// The device side of one virtqueue, split or packed, behind one interface.
//
// A DeviceQueue takes buffers the driver made available (Fetch), validating
// every descriptor before anything is touched, and gives them back used, in
// any order and in batches (Return). It knows rings, not packets: what goes
// into a buffer is the caller's business.
//
// Threading: one thread at a time per queue (the polling thread). Guest
// memory is shared with a driver that may be hostile: every descriptor is read
// once into a local copy, validated, and only the copy is used.
#ifndef IOVTEE_SRC_VIRTIO_DEVICE_QUEUE_H_
#define IOVTEE_SRC_VIRTIO_DEVICE_QUEUE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "src/guest/guest_memory.h"
#include "src/virtio/desc_chain.h"
#include "src/virtio/ring_layout.h"

namespace iovtee::virtio {

enum class RingLayout : uint8_t { kSplit, kPacked };

struct QueueConfig {
  RingLayout layout = RingLayout::kSplit;
  uint16_t size = 0;      // split: power of two; both: 1..32768
  uint64_t features = 0;  // negotiated: EVENT_IDX, INDIRECT_DESC, RING_PACKED
  Direction direction = Direction::kDeviceWrites;
  // Host pointers to the ring parts, already translated through GuestMemory
  // (Create checks alignment, not reachability). Split: descriptor table,
  // avail ring, used ring. Packed: descriptor ring, driver event suppression,
  // device event suppression.
  uint8_t* desc = nullptr;
  uint8_t* driver_area = nullptr;
  uint8_t* device_area = nullptr;
};

// Where the device stands, in librte_vhost's vring-base encoding: free-running
// 16-bit indexes; packed rings put the wrap counter in bit 15.
struct QueueCursors {
  uint16_t last_avail_idx = 0;
  uint16_t last_used_idx = 0;
};

// A buffer handed back to the driver: the DescChain's id, and the number of
// bytes the device wrote into it (Rx) or 0.
struct UsedBuffer {
  uint16_t id = 0;
  uint32_t len = 0;
};

struct QueueStats {
  uint64_t fetched = 0;      // chains taken
  uint64_t returned = 0;     // chains given back used
  uint64_t bad_returns = 0;  // Return of an id the device did not hold (caller bug)
  uint64_t notifies = 0;     // NotifyDue() said yes
  uint64_t notifies_suppressed = 0;
  uint64_t errors[static_cast<int>(ChainError::kCount)] = {};
};

class DeviceQueue {
 public:
  // Validates the configuration (size, alignment, features vs layout) and
  // starts from `cursors`, with no buffer held. Without cursors the queue
  // starts as a fresh ring: split {0, 0}; packed {0x8000, 0x8000} (both wrap
  // counters start at 1, virtio 1.1, 2.7.1).
  static absl::StatusOr<std::unique_ptr<DeviceQueue>> Create(
      const QueueConfig& config, const GuestMemory* memory,
      std::optional<QueueCursors> cursors = std::nullopt);

  // Takes up to out.size() available chains into `out`, in ring order, and
  // returns how many. Stops at the first invalid chain: the error is counted,
  // the queue becomes broken(), and every later call returns 0. A chain that
  // was not fully valid is never returned. Cost: one acquire load per call
  // (split) or per chain (packed), plus the walk; no allocation.
  uint16_t Fetch(absl::Span<DescChain> out);

  // True when Fetch would find at least one chain (a hint; the driver races).
  bool HasAvailable() const;

  // Gives chains back as used, in the order given, visible to the driver
  // together (one release store). Ids the device does not hold are skipped
  // and counted in stats().bad_returns. Returns how many were returned.
  uint16_t Return(absl::Span<const UsedBuffer> used);

  // Whether the driver wants an interrupt for what was returned since the
  // last call (event-idx or flag rules of the layout); false when nothing was
  // returned since. Each call moves the "last signalled" point, so call it
  // once per batch, after Return, and interrupt the driver when it says so.
  bool NotifyDue();

  // Asks the driver to kick (true) or not to kick (false) when it adds
  // buffers. A polling device keeps kicks off.
  void EnableKicks(bool enable);

  QueueCursors cursors() const;
  uint16_t in_flight() const { return in_flight_; }
  bool broken() const { return last_error_ != ChainError::kNone; }
  ChainError last_error() const { return last_error_; }
  const QueueStats& stats() const { return stats_; }
  const QueueConfig& config() const { return config_; }

 private:
  DeviceQueue(const QueueConfig& config, const GuestMemory* memory, QueueCursors cursors);

  // Layout-specific halves (split_ring.cc, packed_ring.cc).
  uint16_t FetchSplit(absl::Span<DescChain> out);
  bool FastSplitChain(uint16_t head, DescChain* out) const;
  uint16_t FetchPacked(absl::Span<DescChain> out);
  bool HasAvailableSplit() const;
  bool HasAvailablePacked() const;
  // Write used entries for ids already released from held_.
  void ReturnSplit(absl::Span<const UsedBuffer> used);
  void ReturnPacked(absl::Span<const UsedBuffer> used);
  bool NotifyDueSplit();
  bool NotifyDuePacked();
  void EnableKicksSplit(bool enable);
  void EnableKicksPacked(bool enable);

  // Shared bookkeeping.
  bool Fail(ChainError e);
  bool TakeId(uint16_t id);     // false if already held
  bool ReleaseId(uint16_t id);  // false if not held

  QueueConfig config_;
  const GuestMemory* memory_;
  bool event_idx_;
  bool indirect_;
  bool kicks_enabled_ = true;

  // Split: free-running indexes. Packed: ring positions (0..size-1) plus wrap
  // counters.
  uint16_t last_avail_ = 0;
  uint16_t used_idx_ = 0;
  bool avail_wrap_ = true;
  bool used_wrap_ = true;
  uint16_t signalled_used_ = 0;
  bool signalled_used_valid_ = false;
  uint64_t returned_at_signal_ = 0;

  uint16_t in_flight_ = 0;
  std::vector<uint64_t> held_;        // bitmap of ids the device holds
  std::vector<uint16_t> ring_slots_;  // packed: descriptors each held id took
  uint32_t held_slots_ = 0;           // packed: their sum
  ChainError last_error_ = ChainError::kNone;
  QueueStats stats_;
};

}  // namespace iovtee::virtio

#endif  // IOVTEE_SRC_VIRTIO_DEVICE_QUEUE_H_
