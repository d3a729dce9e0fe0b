// iovtee-switch command line: EAL arguments, then "--", then the switch's.
// The switch's options are checked before EAL starts, so a mistake costs
// nothing and exits with status 2.
#include <rte_eal.h>
#include <rte_lcore.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "examples/iovtee-switch/options.h"
#include "examples/iovtee-switch/switch.h"

namespace {

iovtee::sw::Switch* g_sw = nullptr;

void OnSignal(int) {
  if (g_sw != nullptr) g_sw->Stop();
}

}  // namespace

int main(int argc, char** argv) {
  int split = argc;  // index of "--"
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--") == 0) {
      split = i;
      break;
    }
  }
  // "--help" with no "--" is a request for this text, not EAL's.
  if (split == argc) {
    for (int i = 1; i < argc; ++i) {
      if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
        std::fputs(iovtee::sw::SwitchUsage(argv[0]).c_str(), stdout);
        return 0;
      }
    }
  }
  std::vector<std::string> args(argv + std::min(split + 1, argc), argv + argc);
  auto parsed = iovtee::sw::ParseSwitchOptions(args);
  if (!parsed.ok()) {
    std::fprintf(stderr, "iovtee-switch: %s\n", std::string(parsed.status().message()).c_str());
    return 2;
  }
  if (parsed->help) {
    std::fputs(iovtee::sw::SwitchUsage(argv[0]).c_str(), stdout);
    return 0;
  }
  const iovtee::sw::SwitchOptions& o = *parsed;

  if (rte_eal_init(split, argv) < 0) {
    std::fprintf(stderr, "iovtee-switch: EAL initialisation failed (see above)\n");
    return 1;
  }
  int rc = 0;
  {
    iovtee::sw::Switch sw(o);
    absl::Status s = sw.Init();
    if (!s.ok()) {
      std::fprintf(stderr, "iovtee-switch: %s\n", std::string(s.message()).c_str());
      rc = 1;
    } else {
      g_sw = &sw;
      std::signal(SIGINT, OnSignal);
      std::signal(SIGTERM, OnSignal);
      std::fprintf(stderr, "iovtee-switch: forwarding on lcore %u\n", rte_lcore_id());
      sw.Run();
      g_sw = nullptr;
      sw.Shutdown();  // guests detached, ports stopped: final counters
      const std::string stats = sw.StatsJson();
      if (!o.stats_file.empty()) {
        const std::string tmp = o.stats_file + ".tmp";
        std::ofstream(tmp) << stats << "\n";
        if (std::rename(tmp.c_str(), o.stats_file.c_str()) != 0) {
          std::fprintf(stderr, "iovtee-switch: cannot write %s\n", o.stats_file.c_str());
          rc = 1;
        }
      }
      std::printf("%s\n", stats.c_str());
    }
  }
  rte_eal_cleanup();
  return rc;
}
