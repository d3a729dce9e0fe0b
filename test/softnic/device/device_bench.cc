// Device-side throughput on one core, with the fake driver in the same loop.
//
//   Rx: generate a burst into scratch buffers, Receive() it into posted
//       descriptors (the device's part), the driver reaps and reposts.
//   Tx: the driver refills completed buffers with fresh frames and posts
//       them, Transmit() drains them into a consumer: the checker, or a
//       no-op to see the device alone.
// Each phase is timed with the TSC; the report gives the device's own rate
// (frames per second of device time), the loop's rate, and the device's
// share of the loop, plus the process's CPU use.
//
// Usage: device_bench [--seconds=S] [--burst=N] [--flows=N] [--queues=N]
// Build with --config=opt for meaningful numbers.
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "test/softnic/device/device_rig.h"
#include "test/softnic/traffic/checker.h"
#include "test/softnic/traffic/generator.h"
#include "test/softnic/traffic/tsc.h"

namespace iovtee::softnic::testing {
namespace {

struct Args {
  double seconds = 2;
  uint32_t burst = 32;
  uint32_t flows = 64;
};

constexpr uint32_t kRing = 1024;
constexpr uint32_t kBufStride = 2048;

double CpuSeconds() {
  rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

struct Result {
  uint64_t frames = 0;
  uint64_t device_cycles = 0;
  uint64_t loop_cycles = 0;
  double cpu_share = 0;  // process CPU time / wall time
  // Device cycles per frame of each burst: the median is robust against the
  // scheduler taking the core away mid-burst (other processes share it).
  std::vector<float> per_frame;

  void AddBurst(uint64_t cycles, size_t frames_in_burst) {
    device_cycles += cycles;
    frames += frames_in_burst;
    if (frames_in_burst != 0 && per_frame.size() < (1u << 24)) {
      per_frame.push_back(static_cast<float>(cycles) / frames_in_burst);
    }
  }
  double MedianCycles() {
    if (per_frame.empty()) return 0;
    std::nth_element(per_frame.begin(), per_frame.begin() + per_frame.size() / 2, per_frame.end());
    return per_frame[per_frame.size() / 2];
  }
};

// device: median ns per frame of device time and the rate it gives; mean:
// all device time / frames (includes preemption); loop: frames / wall time.
void Print(const char* name, uint32_t frame_size, Result r) {
  double hz = TscHz();
  double median_ns = r.MedianCycles() / hz * 1e9;
  double mean_ns = r.device_cycles / hz * 1e9 / r.frames;
  double loop_mpps = r.frames / (r.loop_cycles / hz) / 1e6;
  printf(
      "%-27s %4u B | device %6.1f ns/frame = %6.2f Mpps (mean %6.1f ns) | loop %5.2f Mpps,"
      " device share %4.1f%% | cpu %3.0f%%\n",
      name, frame_size, median_ns, 1e3 / median_ns, mean_ns, loop_mpps,
      100.0 * r.device_cycles / r.loop_cycles, 100.0 * r.cpu_share);
}

std::unique_ptr<Rig> MakeRig() {
  RigOptions o;
  o.driver.ring_size = kRing;
  o.device.log = false;
  o.dma_len = size_t{kRing} * kBufStride;
  auto rig = Rig::Create(o);
  if (!rig.ok()) {
    fprintf(stderr, "rig: %s\n", std::string(rig.status().message()).c_str());
    exit(1);
  }
  return std::move(*rig);
}

std::unique_ptr<Generator> MakeGenerator(const Args& a, uint32_t frame_size) {
  GeneratorConfig c;
  c.flows = MakeFlows(a.flows);
  c.frame_size = frame_size;
  auto g = Generator::Create(c);
  if (!g.ok()) exit(1);
  return std::move(*g);
}

Result BenchRx(const Args& a, uint32_t frame_size) {
  std::unique_ptr<Rig> rig = MakeRig();
  FakeDriver& drv = *rig->driver;
  drv.ConfigureRx(0, kBufStride - simnic::kHeadroom);
  drv.StartRx(0);
  for (uint32_t i = 0; i < kRing; ++i) drv.PostRx(0, rig->iova(i * kBufStride + simnic::kHeadroom));
  std::unique_ptr<Generator> gen = MakeGenerator(a, frame_size);
  std::vector<std::vector<uint8_t>> scratch(a.burst, std::vector<uint8_t>(gen->max_length()));
  std::vector<uint8_t*> ptrs;
  for (auto& s : scratch) ptrs.push_back(s.data());
  std::vector<uint32_t> lens(a.burst);
  std::vector<Frame> frames(a.burst);
  std::vector<RxCompletion> done(kRing);

  Result r;
  const uint64_t duration = static_cast<uint64_t>(a.seconds * TscHz());
  double cpu0 = CpuSeconds();
  uint64_t start = ReadTsc(), now = start;
  while (now - start < duration) {
    size_t n = gen->NextBurst(ptrs, gen->max_length(), absl::MakeSpan(lens), now);
    for (size_t i = 0; i < n; ++i) frames[i] = Frame{ptrs[i], lens[i]};
    uint64_t t0 = ReadTsc();
    size_t got = rig->device->Receive(absl::MakeConstSpan(frames.data(), n));
    uint64_t t1 = ReadTsc();
    r.AddBurst(t1 - t0, got);
    size_t reaped = drv.ReapRx(0, done.data(), done.size());
    for (size_t i = 0; i < reaped; ++i) drv.PostRx(0, done[i].addr);
    now = ReadTsc();
  }
  r.loop_cycles = now - start;
  r.cpu_share = (CpuSeconds() - cpu0) / (r.loop_cycles / TscHz());
  DeviceStats st = rig->device->Stats();
  if (st.rx[0].missed != 0 || st.rx[0].errors != 0 || st.rx[0].packets != r.frames) {
    fprintf(stderr, "rx: unexpected counters: %s\n", rig->device->Describe().c_str());
  }
  return r;
}

// `check`: the consumer runs the checker; otherwise it only touches the
// first byte (the device alone).
Result BenchTx(const Args& a, uint32_t frame_size, bool check) {
  std::unique_ptr<Rig> rig = MakeRig();
  FakeDriver& drv = *rig->driver;
  drv.StartTx(0);
  std::unique_ptr<Generator> gen = MakeGenerator(a, frame_size);
  CheckerOptions co;
  co.num_flows = a.flows;
  co.flows = gen->config().flows;
  Checker checker(co);
  // Descriptor slot i always uses buffer i.
  uint32_t next_slot = 0;
  auto post = [&](uint64_t tsc) {
    uint32_t slot = next_slot++ % kRing;
    uint32_t len = gen->Next(rig->host(slot * kBufStride), kBufStride, tsc);
    drv.PostTx(0, rig->iova(slot * kBufStride), len, true, false);
  };
  for (uint32_t i = 0; i < kRing; ++i) post(ReadTsc());
  drv.PublishTx(0);
  std::vector<TxCompletion> done(kRing);
  uint64_t sink = 0;

  Result r;
  const uint64_t duration = static_cast<uint64_t>(a.seconds * TscHz());
  double cpu0 = CpuSeconds();
  uint64_t start = ReadTsc(), now = start;
  while (now - start < duration) {
    uint64_t t0 = ReadTsc();
    size_t got;
    if (check) {
      got = rig->device->Transmit([&](const TxFrame& f) { checker.Check(f.data, f.len, t0); });
    } else {
      got = rig->device->Transmit([&](const TxFrame& f) { sink += f.data[0]; });
    }
    uint64_t t1 = ReadTsc();
    r.AddBurst(t1 - t0, got);
    size_t reaped = drv.ReapTx(0, done.data(), done.size());
    for (size_t i = 0; i < reaped; ++i) post(t1);
    if (reaped != 0) drv.PublishTx(0);
    now = ReadTsc();
  }
  r.loop_cycles = now - start;
  r.cpu_share = (CpuSeconds() - cpu0) / (r.loop_cycles / TscHz());
  if (check) {
    Summary s = checker.Summarize();
    if (s.corrupted != 0 || s.foreign != 0 || s.duplicates != 0 || s.reordered != 0 ||
        s.received != r.frames) {
      fprintf(stderr, "tx: checker found problems:\n%s", s.ToString().c_str());
    }
  }
  if (sink == 1) printf(" ");
  return r;
}

int Main(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    if (strncmp(argv[i], "--seconds=", 10) == 0) {
      a.seconds = atof(argv[i] + 10);
    } else if (strncmp(argv[i], "--burst=", 8) == 0) {
      a.burst = static_cast<uint32_t>(atoi(argv[i] + 8));
    } else if (strncmp(argv[i], "--flows=", 8) == 0) {
      a.flows = static_cast<uint32_t>(atoi(argv[i] + 8));
    } else {
      fprintf(stderr, "usage: %s [--seconds=S] [--burst=N] [--flows=N]\n", argv[0]);
      return 2;
    }
  }
  if (a.burst == 0 || a.burst > kRing || a.flows == 0 || a.flows > 65536) return 2;
  printf("TSC %.3f GHz, burst %u, %u flows, ring %u, %.1f s per case\n", TscHz() / 1e9, a.burst,
         a.flows, kRing, a.seconds);
  for (uint32_t size : {64u, 1518u}) {
    Print("rx (generate + DMA)", size, BenchRx(a, size));
    Print("tx (drain, no-op consumer)", size, BenchTx(a, size, false));
    Print("tx (drain + checker)", size, BenchTx(a, size, true));
  }
  return 0;
}

}  // namespace
}  // namespace iovtee::softnic::testing

int main(int argc, char** argv) { return iovtee::softnic::testing::Main(argc, argv); }
