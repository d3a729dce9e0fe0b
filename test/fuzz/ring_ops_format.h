// The input format of ring_ops_fuzz (described there), shared with the
// corpus generator.
#ifndef IOVTEE_TEST_FUZZ_RING_OPS_FORMAT_H_
#define IOVTEE_TEST_FUZZ_RING_OPS_FORMAT_H_

#include <cstdint>

namespace iovtee::virtio::fuzz {

// Byte 0.
inline constexpr uint8_t kOpsPacked = 1;
inline constexpr uint8_t kOpsIndirect = 2;    // VIRTIO_RING_F_INDIRECT_DESC
inline constexpr uint8_t kOpsEventIdx = 4;    // VIRTIO_RING_F_EVENT_IDX
inline constexpr uint8_t kOpsTightRings = 8;  // ring parts at minimum alignment

inline constexpr int kOpsHeaderBytes = 5;
inline constexpr int kOpsMaxOps = 4096;
// Two GPA-adjacent regions, so buffers may cross from one into the other.
inline constexpr uint64_t kOpsRegionBytes = 64 * 1024;
inline constexpr int kOpsMaxReconnects = 4;  // per input
inline constexpr uint64_t kOpsGpaBase = uint64_t{1} << 32;

// Opcode byte % kOpCount, then the operands named.
enum Op : uint8_t {
  kOpPost,          // u8 nseg-1 (%4), u16 len-1 (%4096) each, u8 mode (1 indirect, 14 read-only)
  kOpPostStyled,    // u8 style: mergeable, small, big, dpdk, generic (%5)
  kOpPublish,       //
  kOpFetch,         // u8 burst-1 (%32)
  kOpReturn,        // u8 count (%33): held buffers returned, random pick and length
  kOpNotify,        //
  kOpKicks,         // u8 enable (&1)
  kOpReap,          // u8 max-1 (%64)
  kOpHostileDesc,   // u16 index (%size), 16 raw descriptor bytes
  kOpHostileField,  // u8 which, u16 value, u16 index: avail idx/flags/ring[index], used_event;
                    // packed: driver event off_wrap/flags, a descriptor's flags
  kOpRawPublish,    // split: u16 head; packed: u8 n-1 (%3), then n descriptors
  kOpReconnect,     // recreate the queue from its cursors (nothing held; kOpsMaxReconnects)
  kOpCount,
};

}  // namespace iovtee::virtio::fuzz

#endif  // IOVTEE_TEST_FUZZ_RING_OPS_FORMAT_H_
