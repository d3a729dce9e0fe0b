// iovtee-switch command line: EAL arguments, then "--", then the switch's.
#include <getopt.h>
#include <rte_eal.h>
#include <rte_lcore.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "absl/strings/numbers.h"
#include "examples/iovtee-switch/switch.h"

namespace {

iovtee::sw::Switch* g_sw = nullptr;

void OnSignal(int) {
  if (g_sw != nullptr) g_sw->Stop();
}

void Usage(const char* prog) {
  std::printf(
      "Usage: %s [EAL options] -- [options]\n"
      "An L2 switch (MAC learning, flooding) between DPDK ethdev ports and vhost-user\n"
      "ports. A phy Rx queue can be mapped onto a vhost port's guest with iovtee: the NIC\n"
      "then writes frames for that guest straight into its buffers.\n\n"
      "  --phy DEVARGS         a phy port, probed from devargs (repeatable), e.g.\n"
      "                        net_simnic0,socket=/tmp/nic.sock; named phy0, phy1, ...\n"
      "  --vhost PATH          a vhost-user port, server socket (repeatable); named vhost0, ...\n"
      "  --vhost-client        connect to the vhost paths instead of listening\n"
      "  --map PHY:Q=VHOST     map that phy Rx queue onto the vhost port's guest Rx queue,\n"
      "                        e.g. phy0:0=vhost0 (repeatable); without it: stock copy path\n"
      "  --residency-cap N     guest buffers the NIC may hold (default: half the guest ring)\n"
      "  --nic-buffer N        the mapped queue's NIC buffer size (default 1536)\n"
      "  --pool-size N         mbufs in each mapped pool (default 4096)\n"
      "  --rx-ring N / --tx-ring N   NIC ring sizes (default 1024)\n"
      "  --duration SECONDS    stop after this long (default: run until SIGINT/SIGTERM)\n"
      "  --stats-file PATH     write per-port and per-mapping counters as JSON at exit\n"
      "  --help                this text\n",
      prog);
}

bool ParseU32(const char* s, uint32_t* out) { return absl::SimpleAtoi(s, out); }

}  // namespace

int main(int argc, char** argv) {
  const int eal = rte_eal_init(argc, argv);
  if (eal < 0) {
    std::fprintf(stderr, "iovtee-switch: EAL initialisation failed (see above); --help after --\n");
    return 2;
  }
  argc -= eal;
  argv += eal;
  iovtee::sw::SwitchOptions o;
  enum {
    kPhy = 256,
    kVhost,
    kVhostClient,
    kMap,
    kCap,
    kNicBuf,
    kPool,
    kRxRing,
    kTxRing,
    kDuration,
    kStats,
    kHelp
  };
  static const option kOptions[] = {
      {"phy", required_argument, nullptr, kPhy},
      {"vhost", required_argument, nullptr, kVhost},
      {"vhost-client", no_argument, nullptr, kVhostClient},
      {"map", required_argument, nullptr, kMap},
      {"residency-cap", required_argument, nullptr, kCap},
      {"nic-buffer", required_argument, nullptr, kNicBuf},
      {"pool-size", required_argument, nullptr, kPool},
      {"rx-ring", required_argument, nullptr, kRxRing},
      {"tx-ring", required_argument, nullptr, kTxRing},
      {"duration", required_argument, nullptr, kDuration},
      {"stats-file", required_argument, nullptr, kStats},
      {"help", no_argument, nullptr, kHelp},
      {nullptr, 0, nullptr, 0},
  };
  optind = 1;
  int c;
  uint32_t v = 0;
  while ((c = getopt_long(argc, argv, "", kOptions, nullptr)) != -1) {
    bool ok = true;
    switch (c) {
      case kPhy:
        o.phy_devargs.push_back(optarg);
        break;
      case kVhost:
        o.vhost_paths.push_back(optarg);
        break;
      case kVhostClient:
        o.vhost_client = true;
        break;
      case kMap:
        o.maps.push_back(optarg);
        break;
      case kCap:
        ok = ParseU32(optarg, &o.mapping.residency_cap);
        break;
      case kNicBuf:
        ok = ParseU32(optarg, &v) && v <= 65535;
        o.mapping.nic_buffer_size = v;
        break;
      case kPool:
        ok = ParseU32(optarg, &o.mapping.pool_size);
        break;
      case kRxRing:
        ok = ParseU32(optarg, &v) && v <= 32768;
        o.rx_ring = v;
        break;
      case kTxRing:
        ok = ParseU32(optarg, &v) && v <= 32768;
        o.tx_ring = v;
        break;
      case kDuration:
        ok = absl::SimpleAtod(optarg, &o.duration_s);
        break;
      case kStats:
        o.stats_file = optarg;
        break;
      case kHelp:
        Usage(argv[0]);
        rte_eal_cleanup();
        return 0;
      default:
        Usage(argv[0]);
        rte_eal_cleanup();
        return 2;
    }
    if (!ok) {
      std::fprintf(stderr, "iovtee-switch: bad value for --%s: %s\n", kOptions[c - kPhy].name,
                   optarg);
      rte_eal_cleanup();
      return 2;
    }
  }
  int rc = 0;
  {
    iovtee::sw::Switch sw(o);
    absl::Status s = sw.Init();
    if (!s.ok()) {
      std::fprintf(stderr, "iovtee-switch: %s\n", s.ToString().c_str());
      rc = 1;
    } else {
      g_sw = &sw;
      std::signal(SIGINT, OnSignal);
      std::signal(SIGTERM, OnSignal);
      std::fprintf(stderr, "iovtee-switch: forwarding on lcore %u\n", rte_lcore_id());
      sw.Run();
      g_sw = nullptr;
      const std::string stats = sw.StatsJson();
      if (!o.stats_file.empty()) {
        std::ofstream(o.stats_file) << stats << "\n";
      }
      std::printf("%s\n", stats.c_str());
    }
  }
  rte_eal_cleanup();
  return rc;
}
