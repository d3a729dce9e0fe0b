// iovtee-switch: an L2 switch between physical (any DPDK ethdev) ports and
// vhost-user ports, whose phy Rx queues can be mapped onto a guest's Rx queue
// with iovtee. With the mapping off it uses the stock vhost path
// (rte_vhost_enqueue_burst): the baseline the PVP benchmark compares with.
//
// The forwarding loop runs on one lcore, polls every port, and for each
// burst: VLAN ingress rule, ACL, MAC learning and lookup, VLAN push/pop on
// the way out, then delivers what the burst produced before the next poll.
// It allocates nothing; every frame is delivered or counted as a drop with a
// reason on a port.
#ifndef IOVTEE_EXAMPLES_IOVTEE_SWITCH_SWITCH_H_
#define IOVTEE_EXAMPLES_IOVTEE_SWITCH_SWITCH_H_

#include <rte_mbuf.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "examples/iovtee-switch/acl.h"
#include "examples/iovtee-switch/mac_table.h"
#include "examples/iovtee-switch/options.h"
#include "examples/iovtee-switch/perf.h"
#include "examples/iovtee-switch/vlan.h"
#include "iovtee/mapping.h"
#include "iovtee/pause_point.h"

namespace iovtee::sw {

inline constexpr uint16_t kBurst = 32;

// Why a frame was dropped. The first ones count on the port the frame came
// in on (rx_dropped), the rest on the port it was going out of (tx_dropped).
enum class Drop : uint8_t {
  kAcl = 0,        // an ACL rule said drop
  kVlan,           // a tagged frame on an access port
  kMalformed,      // shorter than its Ethernet header (and tag)
  kSamePort,       // its destination is behind the port it came in on
  kNoOutput,       // flooded, but no other port carries its VLAN
  kNoMbuf,         // a copy (flood, unshare, tag push) found no host mbuf
  kTxRingFull,     // phy: the Tx ring took fewer frames than offered
  kGuestNotReady,  // vhost: no guest connected
  kGuestRefused,   // vhost: the guest's Rx ring was full (mapped: see the
                   // mapping's drop_* counters for why)
  kCount,
};
inline constexpr int kDropCount = static_cast<int>(Drop::kCount);
inline constexpr Drop kFirstTxDrop = Drop::kNoMbuf;
const char* DropName(Drop d);

struct PortCounters {
  Counter rx, tx, rx_bytes, tx_bytes;
  Counter drops[kDropCount];
  Counter vlan_pushed, vlan_popped;  // on the way out of this port
  Counter unshared;                  // frames copied out of a guest buffer on their way here
  uint64_t rx_dropped() const;
  uint64_t tx_dropped() const;
};

struct Port {
  enum class Kind { kPhy, kVhost } kind = Kind::kPhy;
  std::string name;
  uint16_t index = 0;  // in the switch's port list
  PortVlan vlan;
  // phy
  uint16_t port_id = 0;
  std::string devargs;
  std::unique_ptr<RxQueueMapping> rx_map;  // queue 0; null: the stock host pool
  std::string rx_map_guest;                // the vhost port it maps to
  // vhost
  std::string path;
  std::atomic<int> vid{-1};
  std::atomic<bool> ready{false};
  std::atomic<bool> forget_macs{false};  // set by destroy_device, done by the loop
  PausePoint pause;
  RxQueueMapping* guest_map = nullptr;  // the mapping whose guest this port is
  rte_mempool* guest_pool = nullptr;    // its mempool: frames from it go here in place
  // Output staging, flushed after every input burst.
  rte_mbuf* out[kBurst];
  uint16_t nout = 0;
  bool dirty = false;  // in the switch's list of ports to flush
  PortCounters counters;
};

class Switch {
 public:
  explicit Switch(SwitchOptions options);
  ~Switch();
  Switch(const Switch&) = delete;
  Switch& operator=(const Switch&) = delete;

  // Creates the pools, probes and starts the ports, registers the vhost
  // sockets and the telemetry commands. Errors name the option or port.
  absl::Status Init();
  // Runs the forwarding loop on the calling lcore until Stop() or the
  // duration ends.
  void Run();
  void Stop() { quit_.store(true, std::memory_order_relaxed); }
  // After Run: unregisters the vhost sockets (guests are detached) and stops
  // the phy ports, so every mbuf is back in its pool and the counters are
  // final. Idempotent; the destructor calls it.
  void Shutdown();
  std::string StatsJson() const;

  // vhost callbacks (static trampolines find the Switch through a global).
  int OnNewDevice(int vid);
  void OnDestroyDevice(int vid);
  void OnFeaturesChanged(int vid, uint64_t features);

  // For telemetry (any thread).
  const std::vector<std::unique_ptr<Port>>& ports() const { return ports_; }
  const std::vector<AclRule>& acl() const { return options_.acl; }
  uint64_t acl_hits(size_t rule) const { return acl_hits_[rule].Get(); }
  uint64_t acl_no_match() const { return acl_no_match_.Get(); }
  const LoopPerf& perf() const { return perf_; }
  void RequestPerfReset() { perf_reset_.store(true, std::memory_order_relaxed); }
  uint64_t flooded() const { return flooded_.Get(); }
  uint64_t mac_table_full() const { return mac_table_full_.Get(); }
  uint64_t macs_learned() const { return macs_learned_.Get(); }
  rte_mempool* host_pool() const { return host_pool_; }

 private:
  absl::Status InitPhy(size_t phy_index);
  absl::Status InitVhost(size_t vhost_index);
  uint16_t Receive(Port& p, rte_mbuf** pkts);
  void Forward(Port& in, rte_mbuf** pkts, uint16_t n, uint64_t now);
  int Lookup(int vlan, uint64_t mac, uint64_t now) const;
  void Flood(Port& in, rte_mbuf* m, int vlan, bool tagged);
  void Emit(Port& out, rte_mbuf* m, int vlan, bool tagged);
  rte_mbuf* Unshare(rte_mbuf* m);
  void Stage(Port& out, rte_mbuf* m);
  void Flush(Port& out);
  void FlushAll();
  void Housekeeping(uint64_t now);
  void Free(rte_mbuf* m);
  void DropIn(Port& in, rte_mbuf* m, Drop why);
  void DropOut(Port& out, rte_mbuf* m, Drop why);
  Port* FindVhost(int vid);

  SwitchOptions options_;
  std::vector<std::unique_ptr<Port>> ports_;
  rte_mempool* host_pool_ = nullptr;
  MacTable macs_;
  std::unique_ptr<Counter[]> acl_hits_;
  Counter acl_no_match_;
  LoopPerf perf_;
  std::atomic<bool> perf_reset_{false};
  std::atomic<bool> quit_{false};
  bool shut_down_ = false;
  uint64_t tsc_hz_ = 0;
  uint64_t next_mac_expiry_ = 0;
  Counter flooded_;
  Counter mac_table_full_;
  Counter macs_learned_;  // entries in the table, as of the last housekeeping
  // Ports with staged frames, and dropped mbufs, both done after each burst.
  uint16_t dirty_[kMaxPorts];
  uint16_t ndirty_ = 0;
  rte_mbuf* free_[kBurst];
  uint16_t nfree_ = 0;
};

}  // namespace iovtee::sw

#endif  // IOVTEE_EXAMPLES_IOVTEE_SWITCH_SWITCH_H_
