// iovtee-switch: an L2 switch between physical (any DPDK ethdev) ports and
// vhost-user ports, whose phy Rx queues can be mapped onto a guest's Rx queue
// with iovtee. With the mapping off it uses the stock vhost path
// (rte_vhost_enqueue_burst): the baseline the PVP benchmark compares with.
#ifndef IOVTEE_EXAMPLES_IOVTEE_SWITCH_SWITCH_H_
#define IOVTEE_EXAMPLES_IOVTEE_SWITCH_SWITCH_H_

#include <rte_ether.h>
#include <rte_mbuf.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "iovtee/mapping.h"

namespace iovtee::sw {

struct SwitchOptions {
  std::vector<std::string> phy_devargs;  // e.g. "net_simnic0,socket=/tmp/nic.sock"
  std::vector<std::string> vhost_paths;  // vhost-user server sockets
  bool vhost_client = false;             // connect to the paths instead of listening
  // "phy:queue=vhost" pairs: map that phy Rx queue onto the vhost port's guest.
  std::vector<std::string> maps;
  uint16_t rx_ring = 1024;
  uint16_t tx_ring = 1024;
  uint32_t host_mbufs = 16384;
  MappingOptions mapping;
  uint32_t mac_aging_s = 300;
  std::string stats_file;  // JSON written at exit
  double duration_s = 0;   // 0: until SIGINT/SIGTERM
};

struct PortCounters {
  uint64_t rx = 0, tx = 0, tx_dropped = 0, rx_bytes = 0, tx_bytes = 0;
};

// A pause point between the forwarding loop and a control thread (vhost
// callbacks): see RxQueueMapping for the same pattern.
class PausePoint {
 public:
  bool Enter() {
    inside_.fetch_add(1, std::memory_order_seq_cst);
    if (paused_.load(std::memory_order_seq_cst)) {
      inside_.fetch_sub(1, std::memory_order_seq_cst);
      return false;
    }
    return true;
  }
  void Exit() { inside_.fetch_sub(1, std::memory_order_seq_cst); }
  void Pause();
  void Resume() { paused_.store(false, std::memory_order_seq_cst); }

 private:
  std::atomic<int> inside_{0};
  std::atomic<bool> paused_{false};
};

struct Port {
  enum class Kind { kPhy, kVhost } kind;
  std::string name;
  uint16_t index = 0;  // in the switch's port list
  // phy
  uint16_t port_id = 0;
  std::vector<std::unique_ptr<RxQueueMapping>> rx_maps;  // by queue; null = stock pool
  // vhost
  std::string path;
  std::atomic<int> vid{-1};
  std::atomic<bool> ready{false};
  PausePoint pause;
  RxQueueMapping* guest_map = nullptr;  // the mapping whose guest this port is
  // Output staging.
  rte_mbuf* out[64];
  uint16_t nout = 0;
  PortCounters counters;
};

class Switch {
 public:
  explicit Switch(SwitchOptions options) : options_(std::move(options)) {}
  ~Switch();
  absl::Status Init();
  // Runs the forwarding loop on the calling lcore until Stop() or the
  // duration ends.
  void Run();
  void Stop() { quit_.store(true, std::memory_order_relaxed); }
  std::string StatsJson() const;

  // vhost callbacks (static trampolines find the Switch through a global).
  int OnNewDevice(int vid);
  void OnDestroyDevice(int vid);

 private:
  absl::Status InitPhy(const std::string& devargs);
  absl::Status InitVhost(const std::string& path);
  absl::Status ParseMaps();
  void Forward(Port& in, rte_mbuf** pkts, uint16_t n);
  void Output(Port& out, rte_mbuf* m);
  void Flush(Port& out);
  Port* FindVhost(int vid);

  SwitchOptions options_;
  std::vector<std::unique_ptr<Port>> ports_;
  rte_mempool* host_pool_ = nullptr;
  struct MacEntry {
    uint16_t port;
    uint64_t seen_tsc;
  };
  absl::flat_hash_map<uint64_t, MacEntry> macs_;
  uint64_t aging_tsc_ = 0;
  std::atomic<bool> quit_{false};
  uint64_t flooded_ = 0;
  uint64_t unshare_failed_ = 0;
};

}  // namespace iovtee::sw

#endif  // IOVTEE_EXAMPLES_IOVTEE_SWITCH_SWITCH_H_
