// The time stamp counter as the traffic generator's clock: cheap to read
// (about 20 cycles), invariant on these machines (constant_tsc, nonstop_tsc),
// and shared by every core, so a timestamp taken on one core can be compared
// with the counter read on another.
#ifndef IOVTEE_TEST_SOFTNIC_TRAFFIC_TSC_H_
#define IOVTEE_TEST_SOFTNIC_TRAFFIC_TSC_H_

#include <x86intrin.h>

#include <cstdint>

namespace iovtee::softnic {

inline uint64_t ReadTsc() { return __rdtsc(); }

// TSC ticks per second, measured once against CLOCK_MONOTONIC over about
// 20 ms on first use (thread-safe); later calls return the cached value.
double TscHz();

inline double TscToNs(double cycles) { return cycles * 1e9 / TscHz(); }

}  // namespace iovtee::softnic

#endif  // IOVTEE_TEST_SOFTNIC_TRAFFIC_TSC_H_
