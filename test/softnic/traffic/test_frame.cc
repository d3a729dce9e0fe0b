#include "test/softnic/traffic/test_frame.h"

#include <cstdio>

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

bool ParseMac(const std::string& s, uint8_t out[6]) {
  unsigned v[6];
  char extra;
  if (std::sscanf(s.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                  &extra) != 6) {
    return false;
  }
  for (int i = 0; i < 6; ++i) out[i] = static_cast<uint8_t>(v[i]);
  return true;
}

}  // namespace iovtee::softnic
