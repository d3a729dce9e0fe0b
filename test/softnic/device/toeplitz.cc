#include "test/softnic/device/toeplitz.h"

namespace iovtee::softnic {
namespace {

// The 32 key bits starting at bit `bit` (bit 0 is the MSB of key[0]).
uint32_t KeyWindow(const uint8_t* key, size_t key_len, size_t bit) {
  uint64_t w = 0;
  size_t byte = bit / 8;
  for (size_t i = 0; i < 5; ++i) {
    w = (w << 8) | (byte + i < key_len ? key[byte + i] : 0);
  }
  return static_cast<uint32_t>(w >> (8 - bit % 8));
}

}  // namespace

void ToeplitzHasher::SetKey(const uint8_t* key) {
  static_assert(kMaxInput * 8 + 32 <= simnic::kRssKeySize * 8, "key too short for the input");
  for (size_t pos = 0; pos < kMaxInput; ++pos) {
    uint32_t bit_value[8];
    for (size_t b = 0; b < 8; ++b) bit_value[b] = KeyWindow(key, simnic::kRssKeySize, pos * 8 + b);
    table_[pos][0] = 0;
    // Each byte value extends a smaller one by its lowest set bit.
    for (unsigned v = 1; v < 256; ++v) {
      unsigned low = static_cast<unsigned>(__builtin_ctz(v));  // bit 0 is the byte's LSB
      table_[pos][v] = table_[pos][v & (v - 1)] ^ bit_value[7 - low];
    }
  }
}

uint32_t ToeplitzHasher::Reference(const uint8_t* key, size_t key_len, const uint8_t* data,
                                   size_t len) {
  uint32_t hash = 0;
  for (size_t i = 0; i < len * 8; ++i) {
    if (data[i / 8] & (0x80u >> (i % 8))) hash ^= KeyWindow(key, key_len, i);
  }
  return hash;
}

}  // namespace iovtee::softnic
