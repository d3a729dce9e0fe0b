// The input format of chain_walk_fuzz (described there), shared with the
// corpus generator.
#ifndef IOVTEE_TEST_FUZZ_CHAIN_WALK_FORMAT_H_
#define IOVTEE_TEST_FUZZ_CHAIN_WALK_FORMAT_H_

#include <cstddef>
#include <cstdint>

namespace iovtee::virtio::fuzz {

// Byte 0.
inline constexpr uint8_t kCwPacked = 1;
inline constexpr uint8_t kCwIndirect = 2;        // VIRTIO_RING_F_INDIRECT_DESC
inline constexpr uint8_t kCwEventIdx = 4;        // VIRTIO_RING_F_EVENT_IDX
inline constexpr uint8_t kCwDeviceReads = 8;     // a Tx queue (else Rx)
inline constexpr uint8_t kCwRingsInRegion = 16;  // rings at the start of region 0
inline constexpr uint8_t kCwTwoRegions = 32;
inline constexpr uint8_t kCwRawCursors = 64;  // size and cursors unsanitised

inline constexpr size_t kCwHeaderBytes = 16;
inline constexpr uint64_t kRegion0Gpa = uint64_t{1} << 32;
inline constexpr uint64_t kRegionHole = uint64_t{1} << 20;

// Byte 12 % 3: where region 1 lies in GPA.
inline constexpr uint64_t RegionOneGpa(uint8_t placement, uint64_t size0, uint64_t size1) {
  switch (placement % 3) {
    case 0:
      return kRegion0Gpa + size0;
    case 1:
      return kRegion0Gpa + size0 + kRegionHole;
    default:  // ends one byte short of 2^64, the highest a region may
      return UINT64_MAX - size1;
  }
}

}  // namespace iovtee::virtio::fuzz

#endif  // IOVTEE_TEST_FUZZ_CHAIN_WALK_FORMAT_H_
