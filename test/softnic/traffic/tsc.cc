#include "test/softnic/traffic/tsc.h"

#include <chrono>
#include <thread>

namespace iovtee::softnic {
namespace {

double Calibrate() {
  using Clock = std::chrono::steady_clock;
  // Two samples 20 ms apart; the sleep's imprecision cancels because both
  // clocks are read at the same points. Take the best of three against
  // preemption between the paired reads.
  double best = 0;
  double best_pair_ns = 1e18;
  for (int i = 0; i < 3; ++i) {
    auto t0 = Clock::now();
    uint64_t c0 = ReadTsc();
    auto t0b = Clock::now();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    auto t1 = Clock::now();
    uint64_t c1 = ReadTsc();
    auto t1b = Clock::now();
    double pair_ns = std::chrono::duration<double, std::nano>((t0b - t0) + (t1b - t1)).count();
    double ns =
        std::chrono::duration<double, std::nano>((t1 + (t1b - t1) / 2) - (t0 + (t0b - t0) / 2))
            .count();
    if (pair_ns < best_pair_ns) {
      best_pair_ns = pair_ns;
      best = static_cast<double>(c1 - c0) * 1e9 / ns;
    }
  }
  return best;
}

}  // namespace

double TscHz() {
  static const double hz = Calibrate();
  return hz;
}

}  // namespace iovtee::softnic
