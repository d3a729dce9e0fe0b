// iovtee: map a NIC Rx queue onto a guest's virtio-net Rx queue.
//
// One RxQueueMapping ties one NIC Rx queue (port, queue) to at most one
// guest Rx virtqueue of a vhost-user device at a time. The NIC refills that
// queue from the mapping's mempool, which lends it the guest's own Rx
// buffers, so the NIC's DMA writes frames straight into guest memory. The
// switch still receives every frame as an mbuf and classifies it. Frames it
// sends to the owning guest through Enqueue() are completed in place, with
// no copy; every other frame takes a copy that is correct first.
//
// Use:
//   1. rte_vhost_driver_register(path, flags); then
//      iovtee::PrepareVhostSocket(path) before rte_vhost_driver_start(path)
//      (completions are out of order: VIRTIO_F_IN_ORDER must be off).
//   2. auto m = RxQueueMapping::Create(port, queue, options);
//      rte_eth_rx_queue_setup(port, queue, nb_desc, socket, &rxconf, m->mempool());
//   3. Poll the queue with m->RxBurst() instead of rte_eth_rx_burst().
//   4. In new_device (or when the guest's Rx ring is enabled): AttachGuest(vid, 0).
//      In destroy_device (and before the guest's memory table changes): DetachGuest().
//   5. Send frames for that guest's Rx queue with m->Enqueue(), never with
//      rte_vhost_enqueue_burst(): the mapping is the only consumer of that ring.
// Never rte_pktmbuf_clone() or rte_pktmbuf_attach() an mbuf received on a
// mapped queue: DPDK finds an indirect mbuf's owner from its data address,
// which is guest memory. Copy it (rte_pktmbuf_copy) or Unshare() it.
// Threads: RxBurst, Enqueue and stats may run on any threads, one thread at
// a time for each; AttachGuest/DetachGuest run on a control thread (vhost's
// callbacks) and wait, bounded, for RxBurst/Enqueue calls in progress.
#ifndef IOVTEE_INCLUDE_IOVTEE_MAPPING_H_
#define IOVTEE_INCLUDE_IOVTEE_MAPPING_H_

#include <rte_mbuf.h>
#include <rte_mempool.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace iovtee {

// Whether a split-ring guest without mergeable buffers reads used ids; see
// MappingOptions::guest_rx_order.
enum class GuestRxOrder : uint8_t {
  kDetect,    // copy every frame, in ring order, until the guest shows it
  kTrustIds,  // lend buffers to the NIC at once
};

struct MappingOptions {
  // Guest buffers the NIC may hold at once (posted in its ring, or received
  // and not yet sent on). 0: half the guest's Rx ring. The rest of the NIC
  // ring uses host buffers, so the guest always keeps buffers for traffic
  // from other ports.
  uint32_t residency_cap = 0;
  // Bytes the NIC may write into one buffer (its per-queue buffer size, the
  // mempool's data room minus RTE_PKTMBUF_HEADROOM). Only guest buffers with
  // room for the virtio-net header plus this many bytes go to the NIC. 1518
  // (a 1500-byte MTU frame with one VLAN tag, FCS stripped) fits Linux
  // virtio-net's mergeable buffers (1536 bytes, header included) and DPDK's
  // virtio PMD.
  uint16_t nic_buffer_size = 1518;
  // mbufs in the mapping's mempool: at least the NIC ring size plus what the
  // switch holds in flight (bursts on the way to other ports).
  uint32_t pool_size = 4096;
  uint16_t mbuf_priv_size = 0;  // as rte_pktmbuf_pool_create's priv_size
  int socket_id = SOCKET_ID_ANY;
  // How long DetachGuest waits for mbufs the switch still holds.
  uint32_t drain_timeout_ms = 1000;
  // Split ring, mergeable buffers off: DPDK's vectorized split Rx path
  // (virtio-user vectorized=1) reads used entries by position and ignores
  // their ids, so it cannot take the out-of-order completions of a mapped
  // queue, and nothing in the negotiation reveals it. kDetect (the default)
  // delivers every frame by copy, in ring order, until the guest posts a
  // buffer out of identity order (only drivers that read ids do), then
  // lends buffers. DPDK's scalar path never shows it: set kTrustIds for
  // guests known to read ids (Linux virtio-net, DPDK with vectorized=0).
  GuestRxOrder guest_rx_order = GuestRxOrder::kDetect;
};

struct MappingStats {
  bool attached = false;
  uint64_t zero_copy = 0;  // frames completed in place
  uint64_t copied = 0;     // frames delivered by copy
  uint64_t bytes = 0;
  uint64_t copy_foreign = 0;  // copy reasons
  uint64_t copy_host_buffer = 0;
  uint64_t copy_multi_segment = 0;
  uint64_t copy_shared = 0;
  uint64_t copy_stale_session = 0;
  uint64_t copy_layout = 0;
  uint64_t copy_order_unproven = 0;  // the guest's Rx order is on probation
  uint64_t drop_no_buffer = 0;       // drop reasons
  uint64_t drop_too_big = 0;
  uint64_t drop_offload = 0;
  uint64_t drop_broken_queue = 0;
  uint64_t drop_no_guest = 0;        // Enqueue with no guest attached
  uint32_t guest_buffers_held = 0;   // guest buffers lent to the NIC side now
  uint64_t guest_buffers_lent = 0;   // ever
  uint64_t host_buffers_posted = 0;  // NIC refills served with host buffers
  uint64_t guest_buffers_recycled = 0;
  uint64_t guest_buffers_orphaned = 0;
  uint64_t validation_errors = 0;  // the guest broke the virtio rules
  uint64_t attaches = 0;
  uint64_t detaches = 0;
  bool order_probation = false;       // frames are copied until the guest reads ids
  uint64_t quarantined_sessions = 0;  // detaches that kept guest memory mapped (drain failed)
  uint64_t notify_retries = 0;        // guest notifications deferred (vhost queue busy)
  uint32_t pool_mbufs = 0;            // the mapping's mempool: size
  uint32_t pool_free_mbufs = 0;       // and mbufs in it now (whole: equal, with the port stopped)
  uint64_t nic_wrote_outside = 0;  // received mbufs the NIC's driver put before their guest buffer
  bool lending_disabled = false;   // guest buffers are no longer lent to the NIC (see logs)
  uint64_t drop_detach = 0;        // frames in the NIC's ring when a guest was detached
};

// Every counter of `s` with its name (the names the switch's JSON, the
// telemetry endpoint and the C ABI use), in a fixed order.
std::vector<std::pair<const char*, uint64_t>> StatsFields(const MappingStats& s);

// Telemetry (registered when the first mapping is created, if telemetry is
// on): /iovtee/mappings lists the mappings as "PORT:QUEUE";
// /iovtee/mapping,PORT:QUEUE gives that mapping's StatsFields.

// Turns off what the mapping cannot honour on a vhost-user socket
// (VIRTIO_F_IN_ORDER). Call between rte_vhost_driver_register and
// rte_vhost_driver_start.
absl::Status PrepareVhostSocket(const std::string& path);

class RxQueueMapping {
 public:
  // Creates the mapping's mempool for NIC (port_id, queue_id). Fails with a
  // message naming the problem (unknown port, bad options, no memory).
  static absl::StatusOr<std::unique_ptr<RxQueueMapping>> Create(uint16_t port_id, uint16_t queue_id,
                                                                const MappingOptions& options);
  // Detaches any guest. The port must be stopped or closed first: the
  // mempool is freed, and the NIC must not hold any of its mbufs.
  ~RxQueueMapping();

  // The mempool to give rte_eth_rx_queue_setup for this queue.
  rte_mempool* mempool() const;
  uint16_t port_id() const;
  uint16_t queue_id() const;

  // rte_eth_rx_burst for the mapped queue, plus what the mapping needs: no
  // headroom before frames in guest buffers (nothing can prepend into
  // memory outside a guest buffer; rte_pktmbuf_prepend fails instead), and a
  // pause point for DetachGuest. Returns 0 while a detach is in progress.
  uint16_t RxBurst(rte_mbuf** pkts, uint16_t n);

  // Starts lending the guest's Rx buffers (vring `vring_idx`, normally 0) to
  // the NIC. Maps the guest's memory itself and DMA-maps it for the NIC's
  // device. Fails cleanly (nothing changed) on a guest the mapping cannot
  // serve, with a message saying why.
  absl::Status AttachGuest(int vid, uint16_t vring_idx);

  // Stops lending and gives the guest back every buffer the mapping holds:
  // the NIC queue is drained (stopped and started again with host buffers)
  // while RxBurst is paused, unused buffers are returned as empty used
  // entries, and vhost's vring base is set so GET_VRING_BASE and reconnect
  // see the truth. No DMA reaches the guest's memory after it returns.
  absl::Status DetachGuest();
  bool attached() const;

  // Delivers frames to the attached guest's Rx queue: in place for frames in
  // its own buffers, by copy otherwise. Consumes every mbuf (freed whether
  // delivered or dropped; drops are counted by reason). Returns how many
  // were delivered.
  uint16_t Enqueue(rte_mbuf** pkts, uint16_t n);

  MappingStats stats() const;

  // Copies a frame out of a guest buffer into a host mbuf from `mp`, for a
  // switch that must grow a frame in front (VLAN push, encapsulation). For
  // any other mbuf it returns `m` itself. On failure returns nullptr and
  // leaves `m` untouched.
  static rte_mbuf* Unshare(rte_mbuf* m, rte_mempool* mp);

  class Impl;

 private:
  explicit RxQueueMapping(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace iovtee

#endif  // IOVTEE_INCLUDE_IOVTEE_MAPPING_H_
