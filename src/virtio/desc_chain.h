// A descriptor chain the driver made available, after validation: what the
// device may touch, as host pointers, and nothing else.
#ifndef IOVTEE_SRC_VIRTIO_DESC_CHAIN_H_
#define IOVTEE_SRC_VIRTIO_DESC_CHAIN_H_

#include <cstdint>

#include "src/guest/guest_memory.h"

namespace iovtee::virtio {

// Why a chain was refused. Every value but kNone marks the queue broken: the
// driver broke the virtio rules, and no further buffer is taken from it.
enum class ChainError : uint8_t {
  kNone = 0,
  kHeadOutOfRange,       // split: avail ring entry >= queue size
  kNextOutOfRange,       // next index >= table size
  kChainTooLong,         // more descriptors than the ring/table holds (a loop)
  kNestedIndirect,       // INDIRECT inside an indirect table
  kIndirectWithNext,     // INDIRECT and NEXT on one descriptor
  kIndirectBadLength,    // table length 0, not a multiple of 16, or > ring size
  kIndirectNotAllowed,   // INDIRECT_DESC not negotiated
  kIndirectOutOfMemory,  // the table itself is not inside guest memory
  kWrongDirection,       // a read-only descriptor in a buffer the device writes, or the reverse
  kLengthOverflow,       // total length does not fit 32 bits
  kAddressOutOfMemory,   // a buffer byte outside guest memory
  kTooManySegments,      // more than kMaxChainSegments host segments
  kAvailIndexJump,       // split: avail idx moved more than the queue size
  kDuplicateId,          // a buffer id posted again while the device holds it
  kRingOverrun,          // packed: a buffer made available while the device holds the whole ring
  kCount,
};

// A short stable name for logs, counters and telemetry ("next_out_of_range").
const char* ChainErrorName(ChainError e);

// Chains with more host segments are refused (kTooManySegments). Linux's
// "big packets" Rx chains use 19 descriptors; DPDK's vhost allows 256.
inline constexpr int kMaxChainSegments = 64;

// Which way the data goes, seen from the device.
enum class Direction : uint8_t {
  kDeviceWrites,  // Rx queues: every descriptor must be device-writable
  kDeviceReads,   // Tx queues: every descriptor must be device-readable
};

struct DescChain {
  uint16_t id = 0;          // what the used element must carry
  uint16_t ring_slots = 0;  // packed: ring descriptors the buffer took (used index advance)
  uint16_t nsegs = 0;
  uint32_t len = 0;  // sum of segment lengths
  GuestSegment segs[kMaxChainSegments];
};

// Copies what `src` holds: its fields and its nsegs segments, not the whole
// 64-segment array (a plain assignment moves 1.5 KiB).
inline void CopyChain(DescChain* dst, const DescChain& src) {
  dst->id = src.id;
  dst->ring_slots = src.ring_slots;
  dst->nsegs = src.nsegs;
  dst->len = src.len;
  for (uint16_t i = 0; i < src.nsegs; ++i) dst->segs[i] = src.segs[i];
}

}  // namespace iovtee::virtio

#endif  // IOVTEE_SRC_VIRTIO_DESC_CHAIN_H_
