// One guest's Rx virtqueue as the mapping drives it: the only consumer of
// its avail ring (librte_vhost must never enqueue to it).
//
// Two users, possibly on two threads: the mapped pool takes guest buffers for
// the NIC (TakeBuffers, from inside the NIC's rx_burst), and the switch's
// send path delivers frames (Enqueue): in place for mbufs that already sit in
// one of this guest's buffers, by copy for everything else. A spinlock per
// queue, taken once per burst, orders the two; the pool side only tries it.
#ifndef IOVTEE_SRC_DATAPATH_GUEST_RX_QUEUE_H_
#define IOVTEE_SRC_DATAPATH_GUEST_RX_QUEUE_H_

#include <rte_mbuf.h>
#include <rte_spinlock.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "src/guest/guest_memory.h"
#include "src/pool/mapped_pool.h"
#include "src/virtio/device_queue.h"

namespace iovtee {

// Why a frame for the guest was copied rather than completed in place.
enum class CopyReason : uint8_t {
  kForeign = 0,    // not from this mapping's pool (another port)
  kHostBuffer,     // from the mapped NIC queue, in a host buffer: the guest had none to
                   // lend, or the residency cap was reached
  kMultiSegment,   // spread over several mbufs
  kShared,         // refcount > 1 or attached: someone else may still read it
  kStaleSession,   // its guest buffer belongs to an earlier guest session
  kLayout,         // the data no longer starts inside its guest buffer
  kOrderUnproven,  // from the mapped NIC queue while the guest's Rx order is on probation
  kCount,
};
const char* CopyReasonName(CopyReason r);

// Why a frame for the guest was dropped.
enum class DropReason : uint8_t {
  kNoBuffer = 0,  // the guest posted no (or not enough) Rx buffers
  kTooBig,        // larger than a buffer and mergeable buffers are off
  kOffload,       // an offload the guest cannot take (e.g. TSO without GUEST_TSO)
  kBrokenQueue,   // the guest broke the virtio rules; the queue is stopped
  kCount,
};
const char* DropReasonName(DropReason r);

struct GuestRxStats {
  uint64_t zero_copy = 0;  // frames completed in place
  uint64_t copied = 0;     // frames delivered by copy
  uint64_t bytes = 0;      // frame bytes delivered, both ways
  uint64_t copies[static_cast<int>(CopyReason::kCount)] = {};
  uint64_t drops[static_cast<int>(DropReason::kCount)] = {};
  uint64_t lent_to_nic = 0;     // guest buffers handed to the pool
  uint64_t unsuitable = 0;      // chains the NIC cannot use, kept for copies
  uint64_t returned_empty = 0;  // buffers given back unused (teardown)
  uint64_t order_proven = 0;    // 1 once the guest showed it reads used ids
};

struct GuestRxConfig {
  uint64_t features = 0;       // negotiated virtio-net features
  MappedPool* pool = nullptr;  // null: copy only
  uint16_t generation = 0;     // this guest session
  // Start with the guest's Rx order on probation (see below). The mapping
  // sets it for split rings without mergeable buffers unless told to trust
  // the guest.
  bool order_probation = false;
};

// Rx order probation. DPDK's vectorized split-ring Rx path (virtio-user
// `vectorized=1`, mergeable buffers off) reads used entries by position and
// ignores their ids: it needs every buffer completed in the order it was
// made available, which a mapped queue cannot promise (buffers lent to the
// NIC complete after later ones used for copies). Nothing in the feature
// negotiation tells that path apart from drivers that read ids. So a queue
// on probation lends nothing to the NIC and completes every frame by copy,
// strictly in ring order, until the guest shows it reads ids: it posts a
// buffer whose head is not the avail slot's own index, which the
// vectorized path (avail[i] == i, written once) never does.

class GuestRxQueue final : public GuestBufferSource {
 public:
  // `memory` must outlive the queue. The header length follows `features`.
  GuestRxQueue(std::unique_ptr<virtio::DeviceQueue> queue, const GuestMemory* memory,
               const GuestRxConfig& config);
  ~GuestRxQueue() = default;

  // GuestBufferSource: single-segment chains with room for the header plus
  // the pool's NIC buffer size; other chains are kept for the copy path.
  // Never blocks: returns 0 when the send path holds the queue.
  uint16_t TakeBuffers(GuestBuffer* out, uint16_t n) override;

  // Delivers the frames to the guest and frees every mbuf (delivered or
  // dropped, each counted). Returns how many were delivered.
  // `cursors`, when given, receives the queue's cursors after the burst
  // (taken under the same lock, for the caller's vring-base sync).
  uint16_t Enqueue(rte_mbuf* const* pkts, uint16_t n, virtio::QueueCursors* cursors = nullptr);

  // Whether the guest wants an interrupt for what was delivered since the
  // last call (virtio notification rules). The caller signals the callfd.
  bool NotifyDue();

  // Teardown, after the pool gave back every lent buffer (TakeParked): gives
  // `buffers` and every chain kept for copies back to the guest as used with
  // length 0, which Linux virtio-net and DPDK's virtio PMD both accept as an
  // empty buffer to discard. Returns how many.
  uint16_t ReturnUnused(const GuestBuffer* buffers, uint16_t n);

  virtio::QueueCursors cursors() const;
  bool broken() const;
  // True while the guest's Rx order is on probation (see above).
  bool order_probation() const;
  uint16_t hdr_len() const { return hdr_len_; }
  GuestRxStats stats() const;
  const virtio::DeviceQueue& queue() const { return *queue_; }

 private:
  // Buffers for one copied frame; false when the guest has none.
  bool TakeChainForCopy(virtio::DescChain* out);
  bool CopyOne(rte_mbuf* m, std::vector<virtio::UsedBuffer>* used);
  void Drop(DropReason r) { ++stats_.drops[static_cast<int>(r)]; }
  // Fetches from the ring, and ends the order probation when a chain shows
  // the guest reads ids.
  uint16_t FetchChains(virtio::DescChain* out, uint16_t n);
  // Chains kept for the copy path, oldest first: copies use them in the
  // order the guest made them available.
  void KeepBack(const virtio::DescChain& c);
  void KeepFront(const virtio::DescChain& c);
  bool TakeKept(virtio::DescChain* out);

  std::unique_ptr<virtio::DeviceQueue> queue_;
  const GuestMemory* memory_;
  const GuestRxConfig config_;
  const uint16_t hdr_len_;
  const bool mergeable_;
  const uint32_t nic_room_;  // hdr_len + the pool's NIC buffer size

  mutable rte_spinlock_t lock_ = RTE_SPINLOCK_INITIALIZER;
  // Chains taken from the ring that the NIC cannot use, for the copy path.
  std::vector<virtio::DescChain> kept_;  // a ring of queue-size entries
  size_t kept_head_ = 0;
  size_t kept_count_ = 0;
  bool order_probation_;
  uint16_t copy_hint_ = 1;                // frames left in the burst being delivered
  std::vector<virtio::UsedBuffer> used_;  // per-burst scratch
  std::vector<virtio::DescChain> fetch_;  // per-burst scratch
  std::vector<virtio::DescChain> merge_;  // the buffers of one copied frame
  GuestRxStats stats_;
};

}  // namespace iovtee

#endif  // IOVTEE_SRC_DATAPATH_GUEST_RX_QUEUE_H_
