// device_host: two soft NIC devices in a process of their own, for a DPDK
// application (dpdk-testpmd with net_simnic ports) in another process.
//
// Device 0 receives generated test frames "from the wire" (to be forwarded by
// the application); device 1 checks every frame the application transmits on
// it: each must arrive once, intact, in order. Frames are generated only while
// fewer than --window are in flight, so a forwarding application never has
// to drop for lack of ring space: any loss is a bug. Before the test frames,
// warm-up frames (another flow, 192.168.0.1) are sent one at a time until one
// comes back, so the application is known to forward: testpmd, for one,
// flushes its Rx queues once after starting the ports, dropping whatever has
// arrived by then.
//
// Usage: device_host --sock0=PATH --sock1=PATH --count=N --frame_size=RFC2544_SIZE
//                    [--flows=4] [--window=256] [--timeout_s=60] [--result=PATH]
// Writes "PASS ..." or "FAIL ..." to --result (and stdout) when the traffic
// check ends, then keeps serving both devices until their drivers said bye
// (so the application's close is acknowledged) or 30 s pass.
// Exit status: 0 pass, 1 check failed, 2 bad usage or set-up error.
#include <sched.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "test/softnic/device/device.h"
#include "test/softnic/traffic/checker.h"
#include "test/softnic/traffic/generator.h"
#include "test/softnic/traffic/tsc.h"

namespace iovtee::softnic {
namespace {

constexpr uint32_t kWarmUpSrcIp = 0xc0a80001;  // 192.168.0.1
constexpr uint32_t kSrcIpOffset = 26;          // untagged Ethernet + IPv4 source

struct Args {
  std::string sock0;
  std::string sock1;
  std::string result;
  uint64_t count = 0;
  uint32_t frame_size = 64;
  uint32_t flows = 4;
  uint64_t window = 256;
  int timeout_s = 60;
};

bool ParseArgs(int argc, char** argv, Args* a) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const size_t eq = arg.find('=');
    if (arg.rfind("--", 0) != 0 || eq == std::string::npos) return false;
    const std::string key = arg.substr(2, eq - 2);
    const std::string value = arg.substr(eq + 1);
    if (key == "sock0") {
      a->sock0 = value;
    } else if (key == "sock1") {
      a->sock1 = value;
    } else if (key == "result") {
      a->result = value;
    } else if (key == "count") {
      a->count = std::strtoull(value.c_str(), nullptr, 10);
    } else if (key == "frame_size") {
      a->frame_size = static_cast<uint32_t>(std::strtoul(value.c_str(), nullptr, 10));
    } else if (key == "flows") {
      a->flows = static_cast<uint32_t>(std::strtoul(value.c_str(), nullptr, 10));
    } else if (key == "window") {
      a->window = std::strtoull(value.c_str(), nullptr, 10);
    } else if (key == "timeout_s") {
      a->timeout_s = std::atoi(value.c_str());
    } else {
      return false;
    }
  }
  return !a->sock0.empty() && !a->sock1.empty() && a->count > 0 && a->window > 0 && a->flows > 0;
}

void Report(const Args& args, const std::string& line) {
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
  if (args.result.empty()) return;
  // Written whole, then renamed, so a watcher never reads half a line.
  const std::string tmp = args.result + ".tmp";
  if (FILE* f = std::fopen(tmp.c_str(), "w")) {
    std::fprintf(f, "%s\n", line.c_str());
    std::fclose(f);
    std::rename(tmp.c_str(), args.result.c_str());
  }
}

int Run(const Args& args) {
  std::unique_ptr<Device> dev[2];
  const std::string socks[2] = {args.sock0, args.sock1};
  for (int i = 0; i < 2; ++i) {
    DeviceOptions o;
    o.name = absl::StrCat("host", i);
    auto d = Device::Create(o);
    if (!d.ok()) {
      std::fprintf(stderr, "device_host: %s\n", d.status().ToString().c_str());
      return 2;
    }
    dev[i] = std::move(*d);
    if (absl::Status s = dev[i]->Listen(socks[i]); !s.ok()) {
      std::fprintf(stderr, "device_host: %s\n", s.ToString().c_str());
      return 2;
    }
  }
  GeneratorConfig gc;
  gc.flows = MakeFlows(args.flows);
  gc.frame_size = args.frame_size;
  auto gen = Generator::Create(gc);
  if (!gen.ok()) {
    std::fprintf(stderr, "device_host: %s\n", gen.status().ToString().c_str());
    return 2;
  }
  CheckerOptions co;
  co.num_flows = args.flows;
  co.flows = gc.flows;
  Checker checker(co);

  GeneratorConfig wc = gc;
  wc.flows = MakeFlows(1, [] {
    FlowSpec f;
    f.src_ip = kWarmUpSrcIp;
    return f;
  }());
  auto warm_up = Generator::Create(wc);
  if (!warm_up.ok()) return 2;

  std::vector<uint8_t> frame((*gen)->max_length());
  uint32_t frame_len = 0;  // a generated frame not yet taken by device 0
  uint64_t sent = 0;
  uint64_t seen = 0;  // test frames device 1 transmitted, whatever the verdict
  uint64_t bad = 0;
  uint64_t warm_up_sent = 0;
  uint64_t warm_up_seen = 0;
  auto next_warm_up = std::chrono::steady_clock::now();
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + std::chrono::seconds(args.timeout_s);
  bool timed_out = false;
  auto consume = [&](const TxFrame& f) {
    // Test and warm-up frames differ in the source address's first byte.
    if (f.len > kSrcIpOffset && f.data[kSrcIpOffset] == (kWarmUpSrcIp >> 24)) {
      ++warm_up_seen;
      return;
    }
    ++seen;
    if (checker.Check(f.data, f.len, ReadTsc()) != Verdict::kOk) ++bad;
  };
  while (seen < args.count) {
    int work = dev[0]->PollControl() + dev[1]->PollControl();
    if (warm_up_seen == 0) {
      const auto now = std::chrono::steady_clock::now();
      if (now >= next_warm_up) {
        const uint32_t n = (*warm_up)->Next(frame.data(), static_cast<uint32_t>(frame.size()), 0);
        warm_up_sent += dev[0]->Receive({Frame{frame.data(), n}});
        next_warm_up = now + std::chrono::milliseconds(10);
      }
    }
    while (warm_up_seen != 0 && sent < args.count && sent - seen < args.window) {
      if (frame_len == 0) {
        frame_len = (*gen)->Next(frame.data(), static_cast<uint32_t>(frame.size()), ReadTsc());
      }
      // One frame per call: one that is not taken (no port yet, link down,
      // no buffer posted) is offered again, so sequence numbers stay dense.
      if (dev[0]->Receive({Frame{frame.data(), frame_len}}) != 1) break;
      frame_len = 0;
      ++sent;
      ++work;
    }
    work += static_cast<int>(dev[1]->Transmit(consume));
    if (std::chrono::steady_clock::now() > deadline) {
      timed_out = true;
      break;
    }
    if (work == 0) sched_yield();
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const Summary sum = checker.Summarize((*gen)->sent_per_flow());
  const bool pass = !timed_out && bad == 0 && sum.Clean() && sum.received == args.count;
  std::string line = absl::StrCat(
      pass ? "PASS" : "FAIL", " frame_size=", args.frame_size, " sent=", sent,
      " received=", sum.received, " bad=", bad, " lost=", sum.lost, " reordered=", sum.reordered,
      " duplicates=", sum.duplicates, " corrupted=", sum.corrupted, " foreign=", sum.foreign,
      timed_out ? " TIMEOUT" : "", " seconds=", secs, " warm_up=", warm_up_seen, "/", warm_up_sent);
  if (!pass) {
    absl::StrAppend(&line, "\n", sum.ToString(), "\n", dev[0]->Describe(), "\n",
                    dev[1]->Describe());
  }
  Report(args, line);

  // Serve until both drivers closed their ports (kBye or disconnect).
  const auto linger = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while ((dev[0]->connected() || dev[1]->connected()) &&
         std::chrono::steady_clock::now() < linger) {
    dev[0]->PollControl();
    dev[1]->PollControl();
    dev[1]->Transmit(consume);
    usleep(100);
  }
  return pass ? 0 : 1;
}

}  // namespace
}  // namespace iovtee::softnic

int main(int argc, char** argv) {
  iovtee::softnic::Args args;
  if (!iovtee::softnic::ParseArgs(argc, argv, &args)) {
    std::fprintf(stderr,
                 "usage: %s --sock0=PATH --sock1=PATH --count=N [--frame_size=64] [--flows=4] "
                 "[--window=256] [--timeout_s=60] [--result=PATH]\n",
                 argv[0]);
    return 2;
  }
  return iovtee::softnic::Run(args);
}
