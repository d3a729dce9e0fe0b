// Micro-benchmark of the device side of a virtqueue: the cost of fetching and
// returning one buffer, split and packed, in bursts of 1 and 32.
//
//   bazel run --config=opt //bench:virtio_ring_bench [-- --buffers=N --repeats=N]
//
// Two ways to count:
//   device:     the timed block is only the device: Fetch(burst), Return(burst),
//               NotifyDue() per burst, over a full ring's worth of buffers.
//               The driver emulator refills the ring (post + publish) and reaps
//               between timed blocks, outside the timing. TSC, calibrated
//               against steady_clock.
//   round-trip: the timed loop also holds the driver: post + publish a burst,
//               Fetch, Return, NotifyDue, reap. steady_clock around the loop.
// Each case runs `repeats` times; the median ns per buffer is printed with the
// spread, and the CPU share the process got while it ran (utime + stime from
// /proc/self/stat over wall time: below 100% means the scheduler gave the core
// to someone else and the numbers are suspect).
//
// The driver posts DPDK-PMD-style buffers (one 2 KiB descriptor), VERSION_1 +
// EVENT_IDX negotiated, queue size 256, kicks off (a polling device), one
// thread.
#include <unistd.h>
#include <x86intrin.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_util.h"
#include "src/virtio/desc_chain.h"
#include "src/virtio/device_queue.h"
#include "src/virtio/ring_layout.h"
#include "test/virtio/driver_emulator.h"

namespace iovtee::virtio {
namespace {

using bench::Clock;
using bench::CpuModel;
using bench::CpuSeconds;
using bench::FlagValue;
using bench::TscBegin;
using bench::TscEnd;
using bench::TscPerNs;

using testing::Completion;
using testing::DriverOptions;
using testing::GuestArena;
using testing::VirtioDriver;

constexpr uint16_t kQueueSize = 256;
constexpr uint32_t kRxLen = 64;  // bytes "written" per buffer

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "virtio_ring_bench: %s\n", what);
  std::exit(1);
}

struct Case {
  RingLayout layout;
  uint16_t burst;
  bool round_trip;
};

struct Result {
  std::vector<double> ns_per_buffer;  // one per repeat
  double cpu_share = 0;
};

class Bench {
 public:
  Bench(const Case& c, double tsc_per_ns) : c_(c), tsc_per_ns_(tsc_per_ns) {
    arena_ = std::make_unique<GuestArena>();
    DriverOptions o;
    o.layout = c.layout;
    o.size = kQueueSize;
    o.features = uint64_t{1} << kFEventIdx;
    o.copy_data_on_reap = false;
    driver_ = std::make_unique<VirtioDriver>(arena_.get(), o);
    auto q =
        DeviceQueue::Create(driver_->device_config(), &arena_->memory(), driver_->start_cursors());
    if (!q.ok()) Die(q.status().ToString().c_str());
    queue_ = std::move(*q);
    queue_->EnableKicks(false);
    chains_.resize(32);
    used_.resize(32);
    done_.reserve(kQueueSize);
  }

  // Runs about `buffers` buffers through the queue; returns ns per buffer.
  double Run(uint64_t buffers) {
    return c_.round_trip ? RunRoundTrip(buffers) : RunDeviceOnly(buffers);
  }

 private:
  void Post(int n) {
    for (int i = 0; i < n; ++i) {
      if (!driver_->PostDpdk()) Die("driver could not post");
    }
    driver_->Publish();
  }

  // Fetch + Return + NotifyDue of one burst; returns buffers moved.
  uint16_t DeviceBurst() {
    const uint16_t n = queue_->Fetch(absl::MakeSpan(chains_.data(), c_.burst));
    for (uint16_t i = 0; i < n; ++i) used_[i] = UsedBuffer{chains_[i].id, kRxLen};
    queue_->Return(absl::MakeConstSpan(used_.data(), n));
    queue_->NotifyDue();
    return n;
  }

  void Reap() {
    done_.clear();
    driver_->Reap(&done_);
  }

  double RunDeviceOnly(uint64_t buffers) {
    // A full ring per timed block: the timer's own cost is spread over 256.
    const int per_block = kQueueSize - kQueueSize % c_.burst;
    uint64_t ticks = 0;
    uint64_t moved = 0;
    while (moved < buffers) {
      Post(per_block);
      const uint64_t t0 = TscBegin();
      uint64_t got = 0;
      for (int b = 0; b < per_block / c_.burst; ++b) got += DeviceBurst();
      ticks += TscEnd() - t0;
      if (got != static_cast<uint64_t>(per_block)) Die("device fetched fewer than posted");
      moved += got;
      Reap();
    }
    return static_cast<double>(ticks) / tsc_per_ns_ / static_cast<double>(moved);
  }

  double RunRoundTrip(uint64_t buffers) {
    uint64_t moved = 0;
    const auto t0 = Clock::now();
    while (moved < buffers) {
      Post(c_.burst);
      const uint16_t got = DeviceBurst();
      if (got != c_.burst) Die("device fetched fewer than posted");
      moved += got;
      Reap();
    }
    const auto t1 = Clock::now();
    return static_cast<double>(
               std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count()) /
           static_cast<double>(moved);
  }

  Case c_;
  double tsc_per_ns_;
  std::unique_ptr<GuestArena> arena_;
  std::unique_ptr<VirtioDriver> driver_;
  std::unique_ptr<DeviceQueue> queue_;
  std::vector<DescChain> chains_;
  std::vector<UsedBuffer> used_;
  std::vector<Completion> done_;
};

int Main(int argc, char** argv) {
  const uint64_t buffers = FlagValue(argc, argv, "--buffers", 1 << 20);
  const int repeats = static_cast<int>(FlagValue(argc, argv, "--repeats", 9));
  const double tsc = TscPerNs();
  std::printf("# virtio_ring_bench: %s, %u online CPUs, TSC %.3f GHz\n", CpuModel().c_str(),
              std::thread::hardware_concurrency(), tsc);
  std::printf("# queue %u, DPDK-style 2 KiB buffers, EVENT_IDX, kicks off; %llu buffers x %d\n",
              kQueueSize, static_cast<unsigned long long>(buffers), repeats);
  std::printf("%-7s %5s  %-10s  %10s  %10s  %10s  %9s\n", "layout", "burst", "driver", "median ns",
              "min ns", "max ns", "CPU share");
  const Case cases[] = {
      {RingLayout::kSplit, 1, false},  {RingLayout::kSplit, 32, false},
      {RingLayout::kPacked, 1, false}, {RingLayout::kPacked, 32, false},
      {RingLayout::kSplit, 1, true},   {RingLayout::kSplit, 32, true},
      {RingLayout::kPacked, 1, true},  {RingLayout::kPacked, 32, true},
  };
  for (const Case& c : cases) {
    Bench bench(c, tsc);
    bench.Run(buffers / 8);  // warm-up: page faults, caches, branch predictors
    Result r;
    const double cpu0 = CpuSeconds();
    const auto wall0 = Clock::now();
    for (int i = 0; i < repeats; ++i) r.ns_per_buffer.push_back(bench.Run(buffers));
    const double wall = std::chrono::duration<double>(Clock::now() - wall0).count();
    r.cpu_share = (CpuSeconds() - cpu0) / wall;
    std::vector<double> v = r.ns_per_buffer;
    std::sort(v.begin(), v.end());
    std::printf("%-7s %5u  %-10s  %10.1f  %10.1f  %10.1f  %8.0f%%\n",
                c.layout == RingLayout::kSplit ? "split" : "packed", c.burst,
                c.round_trip ? "round-trip" : "device", v[v.size() / 2], v.front(), v.back(),
                100 * r.cpu_share);
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace
}  // namespace iovtee::virtio

int main(int argc, char** argv) { return iovtee::virtio::Main(argc, argv); }
