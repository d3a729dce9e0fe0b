// The PVP guest: a DPDK virtio-user port (a "container guest") connected as
// vhost-user client to the switch's socket, echoing every frame it receives
// with source and destination MAC swapped (testpmd's macswap).
//
// The port is hot-plugged (rte_eal_hotplug_add) once the switch's socket
// exists: virtio-user connects at probe, and a process whose EAL probes it at
// start would wait on a switch that may itself still be starting.
#ifndef IOVTEE_TEST_SOFTNIC_PEER_GUEST_PORT_H_
#define IOVTEE_TEST_SOFTNIC_PEER_GUEST_PORT_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

struct rte_mempool;

namespace iovtee::softnic {

struct GuestPortConfig {
  std::string vhost_path;  // the switch's vhost-user socket (server side)
  bool packed = false;
  int mrg_rxbuf = -1;  // -1: virtio-user's default
  int in_order = -1;
  uint32_t queue_size = 1024;
  bool vectorized = false;
  std::string mac;  // xx:xx:xx:xx:xx:xx
  std::string extra_devargs;
  uint32_t max_frame = 1514;  // bytes of the largest frame (sizes the mbufs)
};

struct GuestCounters {
  uint64_t rx = 0;              // frames received (rx_burst)
  uint64_t tx = 0;              // frames sent back (tx_burst)
  uint64_t drops = 0;           // received but not taken by tx_burst: freed
  uint64_t full_rx_bursts = 0;  // rx_burst calls that returned a full burst: backlog
};

class GuestPort {
 public:
  static constexpr uint16_t kBurst = 32;

  // Probes virtio-user on `config.vhost_path` (which must exist and accept
  // connections: the vhost-user handshake runs here, synchronously), then
  // configures one queue pair and starts it. Needs a running EAL with
  // fd-backed memory. Fails with the step that failed; a failed probe is
  // unplugged again so it may be retried.
  static absl::StatusOr<std::unique_ptr<GuestPort>> Attach(const GuestPortConfig& config);
  // Stops, closes and unplugs the port (the switch sees the guest leave).
  ~GuestPort();
  GuestPort(const GuestPort&) = delete;
  GuestPort& operator=(const GuestPort&) = delete;

  // One burst: receive up to kBurst, swap MACs, send back; what tx_burst does
  // not take is freed and counted as a drop. Returns frames received. No
  // allocation.
  uint32_t Poll();

  const GuestCounters& counters() const { return counters_; }
  // Link state as the PMD reports it (virtio-user: up once the backend is).
  bool link_up() const;
  // The port's own ethdev counters, for the report.
  struct EthStats {
    uint64_t ipackets = 0, opackets = 0, imissed = 0, ierrors = 0, oerrors = 0, rx_nombuf = 0;
  };
  EthStats eth_stats() const;
  const std::string& devargs() const { return devargs_; }

 private:
  GuestPort() = default;

  std::string name_;
  std::string devargs_;
  uint16_t port_ = UINT16_MAX;
  bool plugged_ = false;
  bool started_ = false;
  rte_mempool* pool_ = nullptr;
  GuestCounters counters_;
};

}  // namespace iovtee::softnic

#endif  // IOVTEE_TEST_SOFTNIC_PEER_GUEST_PORT_H_
