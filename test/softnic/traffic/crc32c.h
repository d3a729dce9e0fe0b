// CRC32C (Castagnoli) with the SSE4.2 instruction, three streams in parallel
// for long buffers (the instruction has a latency of 3 cycles and a
// throughput of 1, so one stream uses a third of it).
#ifndef IOVTEE_TEST_SOFTNIC_TRAFFIC_CRC32C_H_
#define IOVTEE_TEST_SOFTNIC_TRAFFIC_CRC32C_H_

#include <cstddef>
#include <cstdint>

namespace iovtee::softnic {

// The CRC32C of data[0, n) continued from `crc`, the CRC32C of what came
// before (0 for none): Crc32cExtend(Crc32cExtend(0, a), b) == CRC of a || b.
// About 8 bytes per cycle for long buffers.
uint32_t Crc32cExtend(uint32_t crc, const void* data, size_t n);

inline uint32_t Crc32c(const void* data, size_t n) { return Crc32cExtend(0, data, n); }

}  // namespace iovtee::softnic

#endif  // IOVTEE_TEST_SOFTNIC_TRAFFIC_CRC32C_H_
