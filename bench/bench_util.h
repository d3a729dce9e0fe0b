// Helpers shared by the micro-benchmarks: TSC timing calibrated against
// steady_clock, the CPU share the process got, the CPU model, flags.
#ifndef IOVTEE_BENCH_BENCH_UTIL_H_
#define IOVTEE_BENCH_BENCH_UTIL_H_

#include <unistd.h>
#include <x86intrin.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace iovtee::bench {

using Clock = std::chrono::steady_clock;

// TSC ticks per nanosecond, from a 200 ms busy wait against steady_clock.
inline double TscPerNs() {
  const auto t0 = Clock::now();
  const uint64_t c0 = __rdtsc();
  while (Clock::now() - t0 < std::chrono::milliseconds(200)) {
  }
  const auto t1 = Clock::now();
  const uint64_t c1 = __rdtsc();
  return static_cast<double>(c1 - c0) /
         static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count());
}

inline uint64_t TscBegin() {
  _mm_lfence();
  return __rdtsc();
}
inline uint64_t TscEnd() {
  unsigned aux;
  const uint64_t t = __rdtscp(&aux);
  _mm_lfence();
  return t;
}

// utime + stime of this process, in seconds.
inline double CpuSeconds() {
  std::ifstream f("/proc/self/stat");
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  // Fields after the ")" that closes comm: state is field 3; utime 14, stime 15.
  const size_t p = s.rfind(')');
  if (p == std::string::npos) return 0;
  unsigned long utime = 0, stime = 0;
  if (std::sscanf(s.c_str() + p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime,
                  &stime) != 2) {
    return 0;
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

inline std::string CpuModel() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("model name", 0) == 0) {
      const size_t p = line.find(':');
      return p == std::string::npos ? line : line.substr(p + 2);
    }
  }
  return "unknown";
}

// --name=VALUE, or `fallback`.
inline uint64_t FlagValue(int argc, char** argv, const char* name, uint64_t fallback) {
  const size_t len = std::strlen(name);
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], name, len) == 0 && argv[i][len] == '=') {
      return std::strtoull(argv[i] + len + 1, nullptr, 10);
    }
  }
  return fallback;
}

// Median, min and max of `v` (sorted in place).
struct Spread {
  double median = 0, min = 0, max = 0;
};
inline Spread SpreadOf(std::vector<double> v) {
  if (v.empty()) return {};
  std::sort(v.begin(), v.end());
  return Spread{v[v.size() / 2], v.front(), v.back()};
}

}  // namespace iovtee::bench

#endif  // IOVTEE_BENCH_BENCH_UTIL_H_
