// Canaries around the Rx buffers a DPDK virtio PMD posts, so a backend (or a
// NIC whose DMA was pointed into the guest's buffers) that writes one byte
// outside a posted buffer is caught.
//
// What DPDK 22.11's virtio PMD posts for an Rx mbuf, on every path (split and
// packed, in-order or not, mergeable or not, scalar or vectorized:
// virtqueue_enqueue_recv_refill[_inorder], virtqueue_refill_single_packed,
// virtio_recv_refill_packed_vec, virtio_rxq_rearm_vec):
//   addr = buf_addr + RTE_PKTMBUF_HEADROOM - hdr_size
//   len  = buf_len - RTE_PKTMBUF_HEADROOM + hdr_size
// that is, from the virtio-net header in front of the frame to the end of the
// mbuf's buffer. hdr_size is 12 (virtio_net_hdr_mrg_rxbuf) whenever
// VIRTIO_F_VERSION_1, mergeable buffers or packed rings are negotiated, and
// virtio-user always offers VERSION_1 (DPDK's vhost library accepts it), so
// the posted area starts 12 bytes before the frame. Everything else in the
// buffer is a canary here:
//   head: [buf_addr, buf_addr + RTE_PKTMBUF_HEADROOM - 12)
//   tail: kTailBytes after the posted area, carved off the buffer (buf_len is
//         shortened by kTailBytes when the pool is made, so the PMD never
//         posts them)
// Nothing in the guest writes there either: virtio's Tx pushes its header at
// data_off - hdr_size, which for received and freshly allocated mbufs is
// inside the posted area.
#ifndef IOVTEE_TEST_SOFTNIC_PEER_GUEST_CANARY_H_
#define IOVTEE_TEST_SOFTNIC_PEER_GUEST_CANARY_H_

#include <rte_mbuf.h>
#include <rte_mempool.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace iovtee::softnic {

struct CanaryCounts {
  uint64_t checked = 0;       // buffers (mbuf segments) checked on receive
  uint64_t violations = 0;    // buffers found with a canary byte changed (receive or exit)
  uint64_t pool_checked = 0;  // pool objects checked at exit
  uint64_t first_offset = 0;  // offset from buf_addr of the first changed byte seen
  bool pool_check_done = false;
};

class CanaryPool {
 public:
  // The virtio-net header in front of each posted frame (see above).
  static constexpr uint16_t kNetHdrBytes = 12;
  static constexpr uint16_t kHeadBytes = RTE_PKTMBUF_HEADROOM - kNetHdrBytes;
  static constexpr uint16_t kTailBytes = 64;

  // A pktmbuf pool of `n` mbufs whose buffers hold `data_room` bytes
  // (RTE_PKTMBUF_HEADROOM included, as rte_pktmbuf_pool_create's
  // data_room_size) for the PMD, plus kTailBytes of canary behind them.
  // Every object's canaries are written here.
  static absl::StatusOr<std::unique_ptr<CanaryPool>> Create(const std::string& name, uint32_t n,
                                                            uint16_t cache, uint16_t data_room,
                                                            int socket);
  ~CanaryPool();  // frees the pool: every mbuf must be back
  CanaryPool(const CanaryPool&) = delete;
  CanaryPool& operator=(const CanaryPool&) = delete;

  rte_mempool* pool() const { return pool_; }

  // Checks both canaries of every segment of `m`; a changed canary is
  // counted once and written again, so one stray write counts once. Returns
  // the segments found damaged. About 180 bytes compared per segment.
  uint32_t Check(rte_mbuf* m);
  // Checks every object of the pool (all mbufs must be back, e.g. after the
  // port is closed). Counts like Check(). Returns the objects found damaged.
  uint32_t CheckPool();

  // For tests of the tests: changes one tail canary byte of `m`, as a
  // device writing one byte past the posted buffer would.
  static void CorruptTail(rte_mbuf* m);

  // Thread-safe snapshot.
  CanaryCounts counts() const;

 private:
  CanaryPool() = default;
  static void InitObject(rte_mempool* mp, void* opaque, void* obj, unsigned idx);
  static void CheckObject(rte_mempool* mp, void* opaque, void* obj, unsigned idx);
  bool CheckBuffer(rte_mbuf* m);

  rte_mempool* pool_ = nullptr;
  std::atomic<uint64_t> checked_{0};
  std::atomic<uint64_t> violations_{0};
  std::atomic<uint64_t> pool_checked_{0};
  std::atomic<uint64_t> first_offset_{UINT64_MAX};
  std::atomic<bool> pool_check_done_{false};
};

}  // namespace iovtee::softnic

#endif  // IOVTEE_TEST_SOFTNIC_PEER_GUEST_CANARY_H_
