// splitmix64: a tiny deterministic generator, so a fixed seed gives the same
// inputs and choices on every run and machine (fuzz replay and harnesses).
#ifndef IOVTEE_TEST_FUZZ_SPLITMIX_H_
#define IOVTEE_TEST_FUZZ_SPLITMIX_H_

#include <cstddef>
#include <cstdint>

namespace iovtee::fuzz {

class SplitMix {
 public:
  explicit SplitMix(uint64_t seed) : s_(seed) {}
  uint64_t Next() {
    uint64_t z = (s_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // Uniform enough in [0, n); 0 when n is 0.
  size_t Below(size_t n) { return n == 0 ? 0 : static_cast<size_t>(Next() % n); }

 private:
  uint64_t s_;
};

}  // namespace iovtee::fuzz

#endif  // IOVTEE_TEST_FUZZ_SPLITMIX_H_
