#include "test/softnic/traffic/crc32c.h"

#include <nmmintrin.h>

#include <cstring>

namespace iovtee::softnic {
namespace {

// Bytes per stream in one round of the three-stream loops.
constexpr size_t kLong = 256;
constexpr size_t kShort = 64;

// The register state after running `v` through `n` zero bytes: the linear
// map "shift by n bytes" that joins a stream's CRC to the next one's.
uint32_t ShiftSlow(uint32_t v, size_t n) {
  uint64_t c = v;
  for (size_t i = 0; i < n / 8; ++i) c = _mm_crc32_u64(c, 0);
  return static_cast<uint32_t>(c);
}

// The same map tabulated by byte of the input (it is linear).
struct ShiftTable {
  explicit ShiftTable(size_t n) {
    for (int k = 0; k < 4; ++k) {
      for (uint32_t b = 0; b < 256; ++b) t[k][b] = ShiftSlow(b << (8 * k), n);
    }
  }
  uint32_t operator()(uint32_t v) const {
    return t[0][v & 0xff] ^ t[1][(v >> 8) & 0xff] ^ t[2][(v >> 16) & 0xff] ^ t[3][v >> 24];
  }
  uint32_t t[4][256];
};

const ShiftTable& LongShift() {
  static const ShiftTable table(kLong);
  return table;
}
const ShiftTable& ShortShift() {
  static const ShiftTable table(kShort);
  return table;
}

inline uint64_t Load64(const uint8_t* p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}

template <size_t kBlock>
inline void ThreeStreams(uint32_t* crc, const uint8_t** p, size_t* n, const ShiftTable& shift) {
  while (*n >= 3 * kBlock) {
    uint64_t c0 = *crc, c1 = 0, c2 = 0;
    const uint8_t* a = *p;
    for (size_t i = 0; i < kBlock; i += 8) {
      c0 = _mm_crc32_u64(c0, Load64(a + i));
      c1 = _mm_crc32_u64(c1, Load64(a + kBlock + i));
      c2 = _mm_crc32_u64(c2, Load64(a + 2 * kBlock + i));
    }
    uint32_t c = shift(static_cast<uint32_t>(c0)) ^ static_cast<uint32_t>(c1);
    *crc = shift(c) ^ static_cast<uint32_t>(c2);
    *p += 3 * kBlock;
    *n -= 3 * kBlock;
  }
}

}  // namespace

uint32_t Crc32cExtend(uint32_t crc, const void* data, size_t n) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  uint32_t c = ~crc;
  if (n >= 3 * kShort) {
    ThreeStreams<kLong>(&c, &p, &n, LongShift());
    ThreeStreams<kShort>(&c, &p, &n, ShortShift());
  }
  uint64_t c64 = c;
  for (; n >= 8; n -= 8, p += 8) c64 = _mm_crc32_u64(c64, Load64(p));
  c = static_cast<uint32_t>(c64);
  if (n >= 4) {
    uint32_t v;
    memcpy(&v, p, 4);
    c = _mm_crc32_u32(c, v);
    p += 4;
    n -= 4;
  }
  if (n >= 2) {
    uint16_t v;
    memcpy(&v, p, 2);
    c = _mm_crc32_u16(c, v);
    p += 2;
    n -= 2;
  }
  if (n != 0) c = _mm_crc32_u8(c, *p);
  return ~c;
}

}  // namespace iovtee::softnic
