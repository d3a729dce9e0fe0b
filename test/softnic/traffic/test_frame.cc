#include "test/softnic/traffic/test_frame.h"

namespace iovtee::softnic {
namespace {

uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

struct PatternBase {
  static constexpr uint32_t kWords = (kMaxPatternLen + 7) / 8;
  PatternBase() {
    for (uint32_t i = 0; i < kWords; ++i) words[i] = SplitMix64(0x5eed0000ull + i);
  }
  uint64_t words[kWords];
};

const PatternBase& Base() {
  static const PatternBase base;
  return base;
}

}  // namespace

void FillPattern(uint8_t* dst, uint32_t flow, uint32_t len) {
  const uint64_t* base = Base().words;
  const uint64_t key = SplitMix64(flow);
  uint32_t words = len / 8;
  for (uint32_t i = 0; i < words; ++i) {
    uint64_t v = base[i] ^ key;
    memcpy(dst + 8 * i, &v, 8);
  }
  if (uint32_t rest = len % 8; rest != 0) {
    uint64_t v = base[words] ^ key;
    memcpy(dst + 8 * words, &v, rest);
  }
}

}  // namespace iovtee::softnic
