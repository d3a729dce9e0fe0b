// The virtio ring formats as the device sees them in guest memory (virtio 1.1,
// sections 2.6 split and 2.7 packed). rte_vhost.h hides Linux's virtio headers
// from C++, so the project defines its own. Virtio rings are little-endian;
// only little-endian hosts are supported.
#ifndef IOVTEE_SRC_VIRTIO_RING_LAYOUT_H_
#define IOVTEE_SRC_VIRTIO_RING_LAYOUT_H_

#include <cstddef>
#include <cstdint>

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "virtio rings are little-endian");

namespace iovtee::virtio {

// Descriptor flags, both layouts.
inline constexpr uint16_t kDescFNext = 1;
inline constexpr uint16_t kDescFWrite = 2;
inline constexpr uint16_t kDescFIndirect = 4;
// Packed layout only.
inline constexpr uint16_t kDescFAvail = 1u << 7;
inline constexpr uint16_t kDescFUsed = 1u << 15;

// Feature bits the device side cares about.
inline constexpr int kFIndirectDesc = 28;  // VIRTIO_RING_F_INDIRECT_DESC
inline constexpr int kFEventIdx = 29;      // VIRTIO_RING_F_EVENT_IDX
inline constexpr int kFVersion1 = 32;      // VIRTIO_F_VERSION_1
inline constexpr int kFRingPacked = 34;    // VIRTIO_F_RING_PACKED
inline constexpr int kFInOrder = 35;       // VIRTIO_F_IN_ORDER
inline constexpr uint16_t kMaxQueueSize = 32768;

// Split ring descriptor table entry.
struct SplitDesc {
  uint64_t addr;
  uint32_t len;
  uint16_t flags;
  uint16_t next;
};
static_assert(sizeof(SplitDesc) == 16);

// Split ring used element.
struct UsedElem {
  uint32_t id;
  uint32_t len;
};
static_assert(sizeof(UsedElem) == 8);

// Split avail ring ("driver area"): le16 flags, le16 idx, le16 ring[size],
// le16 used_event. Split used ring ("device area"): le16 flags, le16 idx,
// UsedElem ring[size], le16 avail_event. Accessed by offset (no flexible
// array members in C++).
inline constexpr uint16_t kAvailFNoInterrupt = 1;
inline constexpr uint16_t kUsedFNoNotify = 1;
inline constexpr size_t kSplitRingHeaderBytes = 4;

inline constexpr size_t SplitDescBytes(uint16_t size) { return size_t{16} * size; }
inline constexpr size_t SplitAvailBytes(uint16_t size) { return 6 + size_t{2} * size; }
inline constexpr size_t SplitUsedBytes(uint16_t size) { return 6 + size_t{8} * size; }

// Packed ring descriptor (also the entry format of a packed indirect table).
struct PackedDesc {
  uint64_t addr;
  uint32_t len;
  uint16_t id;
  uint16_t flags;
};
static_assert(sizeof(PackedDesc) == 16);

// Packed event suppression structure; the driver area holds the driver's,
// the device area the device's.
inline constexpr uint16_t kEventFEnable = 0;
inline constexpr uint16_t kEventFDisable = 1;
inline constexpr uint16_t kEventFDesc = 2;
struct PackedEvent {
  uint16_t off_wrap;  // bits 0-14 descriptor offset, bit 15 wrap counter
  uint16_t flags;
};
static_assert(sizeof(PackedEvent) == 4);

inline constexpr size_t PackedDescBytes(uint16_t size) { return size_t{16} * size; }
inline constexpr size_t PackedEventBytes() { return sizeof(PackedEvent); }

// True when a notification is due: the other side asked for one at `event`
// and the index moved from `old_idx` to `new_idx` past it (16-bit wrap safe).
inline constexpr bool NeedEvent(uint16_t event, uint16_t new_idx, uint16_t old_idx) {
  return static_cast<uint16_t>(new_idx - event - 1) < static_cast<uint16_t>(new_idx - old_idx);
}

}  // namespace iovtee::virtio

#endif  // IOVTEE_SRC_VIRTIO_RING_LAYOUT_H_
