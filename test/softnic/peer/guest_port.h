// A guest: a DPDK virtio-user port (a "container guest") connected as
// vhost-user client to the switch's socket. It either echoes every frame it
// receives with source and destination MAC swapped (testpmd's macswap), or
// checks every frame (StreamChecker) and frees it; it may also send frames
// of its own generator. Its Rx buffers come from a CanaryPool: every received
// buffer's canaries are checked before the buffer is used again, and every
// buffer of the pool once more when the port is gone.
//
// The port is hot-plugged (rte_eal_hotplug_add) once the switch's socket
// exists: virtio-user connects at probe, and a process whose EAL probes it at
// start would wait on a switch that may itself still be starting.
#ifndef IOVTEE_TEST_SOFTNIC_PEER_GUEST_PORT_H_
#define IOVTEE_TEST_SOFTNIC_PEER_GUEST_PORT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "test/softnic/peer/guest_canary.h"
#include "test/softnic/peer/stream.h"
#include "test/softnic/traffic/generator.h"

namespace iovtee::softnic {

enum class GuestRole {
  kEcho,   // send every frame back, MACs swapped
  kCheck,  // verify every frame, send nothing back
};

struct GuestPortConfig {
  std::string vhost_path;  // the switch's vhost-user socket (server side)
  bool packed = false;
  int mrg_rxbuf = -1;  // -1: virtio-user's default
  int in_order = -1;
  uint32_t queue_size = 1024;
  // vectorized=1. Attach fails unless the PMD really runs a vectorized Rx
  // path (DPDK turns it off without error, e.g. for mergeable buffers,
  // VIRTIO_F_IN_ORDER on a split ring, Rx offloads).
  bool vectorized = false;
  std::string mac;  // xx:xx:xx:xx:xx:xx
  std::string extra_devargs;
  uint32_t max_frame = 1514;  // bytes of the largest frame received (MTU)
  // Rx mbuf data room, RTE_PKTMBUF_HEADROOM included (the canary tail is on
  // top). 0: one mbuf holds the largest frame. Smaller than the largest frame
  // needs mergeable buffers (the port then enables Rx scatter).
  uint32_t data_room = 0;
  GuestRole role = GuestRole::kEcho;
  // Canaries of one received buffer in `canary_every` are checked as it
  // arrives (1: every buffer; 0: none); every buffer's at the end whatever
  // this says, and a damaged canary stays damaged, so sampling loses only
  // when a stray write is seen, not whether (--verify).
  uint32_t canary_every = 1;
  // Debug: damage the tail canary of the first frame received, before it is
  // checked (proves the check and the harness catch a stray write).
  bool corrupt_canary = false;
};

struct GuestCounters {
  uint64_t rx = 0;              // frames received (rx_burst)
  uint64_t tx = 0;              // frames sent back (tx_burst)
  uint64_t drops = 0;           // received but not taken by tx_burst: freed
  uint64_t full_rx_bursts = 0;  // rx_burst calls that returned a full burst: backlog
  uint64_t rx_segments = 0;     // mbufs of the received frames (> rx: multi-segment)
  uint64_t gen_sent = 0;        // generated frames taken by tx_burst
  uint64_t gen_refused = 0;     // generated, not taken by tx_burst (freed: sequence gaps)
  uint64_t gen_nombuf = 0;      // bursts not generated for want of mbufs
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
  // Detach() if not done.
  ~GuestPort();
  GuestPort(const GuestPort&) = delete;
  GuestPort& operator=(const GuestPort&) = delete;

  // One burst: receive up to kBurst, check every buffer's canaries, then echo
  // (what tx_burst does not take is freed and counted as a drop) or check
  // each frame with `checker` and free it. Returns frames received. No
  // allocation.
  uint32_t Poll(StreamChecker* checker, uint64_t now);

  // Sends up to `n` frames of `gen` (n <= kBurst), stamped `now`. Returns
  // frames generated (sent or refused). A frame must fit one mbuf.
  uint32_t Generate(Generator& gen, uint32_t n, uint64_t now);

  // Stops, closes and unplugs the port (the switch sees the guest leave),
  // then checks the canaries of every mbuf of the pool. Idempotent.
  void Detach();

  const GuestCounters& counters() const { return counters_; }
  CanaryCounts canaries() const { return pool_->counts(); }
  // Link state as the PMD reports it (virtio-user: up once the backend is).
  bool link_up() const;
  // The port's own ethdev counters, for the report.
  struct EthStats {
    uint64_t ipackets = 0, opackets = 0, imissed = 0, ierrors = 0, oerrors = 0, rx_nombuf = 0;
  };
  // Valid until Detach(); afterwards the last values read.
  EthStats eth_stats() const;
  const std::string& devargs() const { return devargs_; }
  uint32_t data_room() const { return data_room_; }
  // The burst functions the PMD chose, from its log (virtio_path_log.h):
  // e.g. "vectorized", "standard", "inorder", "mergeable buffer", "packed
  // ring standard"; "" if it did not say.
  const std::string& rx_path() const { return rx_path_; }
  const std::string& tx_path() const { return tx_path_; }

 private:
  GuestPort() = default;

  std::string name_;
  std::string devargs_;
  std::string rx_path_;
  std::string tx_path_;
  uint16_t port_ = UINT16_MAX;
  bool plugged_ = false;
  bool started_ = false;
  GuestRole role_ = GuestRole::kEcho;
  bool corrupt_canary_ = false;
  uint32_t canary_every_ = 1;
  uint64_t canary_countdown_ = 1;
  uint32_t data_room_ = 0;
  std::unique_ptr<CanaryPool> pool_;
  std::vector<uint8_t> linear_;  // a multi-segment frame, copied for the checker
  GuestCounters counters_;
  mutable EthStats last_stats_;
};

}  // namespace iovtee::softnic

#endif  // IOVTEE_TEST_SOFTNIC_PEER_GUEST_PORT_H_
