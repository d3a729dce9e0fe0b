// The mapped mempool: the mempool a mapped NIC Rx queue refills from.
//
// Its mbufs are ordinary pktmbufs with host data rooms. When the NIC driver
// refills its ring (rte_mempool_get_bulk from inside rx_burst), the pool
// points some of them at guest Rx buffers instead, so the NIC's DMA writes
// the frame straight into guest memory, right after the virtio-net header.
// When such an mbuf is freed without having been delivered in place, the
// guest buffer stays attached and is handed to the NIC again ("parked"); when
// it was delivered, the header is restored to its host buffer.
//
// Rules that shape it (DPDK 22.11): cache size 0, or per-lcore caches would
// hold guest buffers nobody can drain; dequeue is all-or-nothing; a NIC ring
// is larger than a guest ring, so guest buffers are capped (residency) and
// host buffers fill the rest. Per-mbuf state lives in a side table indexed by
// a dynamic mbuf field, not in ol_flags or the private area (PMDs rewrite the
// former on Rx; OVS owns the latter).
#ifndef IOVTEE_SRC_POOL_MAPPED_POOL_H_
#define IOVTEE_SRC_POOL_MAPPED_POOL_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>
#include <rte_mempool.h>

#include "absl/status/statusor.h"
#include "src/pool/obj_stack.h"

namespace iovtee {

// One guest Rx buffer lent to the NIC: a validated, single-segment descriptor
// chain of the guest's Rx virtqueue.
struct GuestBuffer {
  uint8_t* addr = nullptr;  // start of the buffer: the virtio-net header goes here
  rte_iova_t iova = 0;      // the same byte as the NIC addresses it
  uint32_t len = 0;         // bytes the device may write
  uint16_t id = 0;          // descriptor chain id for the used ring
  uint16_t generation = 0;  // the attach session it belongs to
};

// Where the pool gets guest buffers. Called on the NIC's polling thread,
// inside rx_burst: must not block. Returns buffers whose len is at least
// hdr_len + the pool's nic_buffer_size().
class GuestBufferSource {
 public:
  virtual uint16_t TakeBuffers(GuestBuffer* out, uint16_t n) = 0;

 protected:
  ~GuestBufferSource() = default;
};

struct MappedPoolConfig {
  std::string name;              // for logs and rte_mempool_lookup()
  uint32_t size = 0;             // mbufs; at least the NIC ring size + a burst
  uint16_t nic_buffer_size = 0;  // bytes the NIC may write per buffer (data room - headroom)
  uint16_t priv_size = 0;        // mbuf private area (e.g. OVS's dp_packet)
  int socket_id = SOCKET_ID_ANY;
  uint16_t hdr_len = 12;  // virtio-net header: the frame lands this far into a guest buffer
  // Called for every mbuf after rte_pktmbuf_init (e.g. OVS's dp_packet init).
  void (*obj_init)(rte_mempool*, void* opaque, void* obj, unsigned idx) = nullptr;
  void* obj_init_arg = nullptr;
};

struct MappedPoolStats {
  uint64_t guest_posted = 0;       // guest buffers handed to the NIC
  uint64_t guest_recycled = 0;     // freed undelivered, parked for the NIC again
  uint64_t guest_delivered = 0;    // completed in place
  uint64_t guest_taken = 0;        // parked buffers taken back (copy path, teardown)
  uint64_t guest_orphaned = 0;     // freed after their session ended
  uint64_t host_posted = 0;        // host buffers handed to the NIC
  uint64_t nic_wrote_outside = 0;  // mbufs whose data the NIC driver moved before the buffer
  bool lending_disabled = false;
  uint32_t guest_resident = 0;  // guest buffers the pool holds now (NIC, switch, parked)
  uint32_t guest_parked = 0;
  uint32_t host_free = 0;
};

class MappedPool {
 public:
  static absl::StatusOr<std::unique_ptr<MappedPool>> Create(const MappedPoolConfig& config);
  // The MappedPool behind a mempool, or nullptr for any other mempool.
  static MappedPool* FromMempool(const rte_mempool* mp);
  // Frees the mempool; every mbuf must be back (the NIC queue released).
  ~MappedPool();
  MappedPool(const MappedPool&) = delete;
  MappedPool& operator=(const MappedPool&) = delete;

  rte_mempool* mempool() const { return mp_; }
  uint16_t nic_buffer_size() const { return config_.nic_buffer_size; }
  uint16_t hdr_len() const { return config_.hdr_len; }

  // Guest buffers (parked or new) go only to dequeues made inside a
  // NicRefillScope for this pool: the NIC driver's refill inside rx_burst
  // (RxQueueMapping::RxBurst opens it). Any other allocation from the pool
  // (rte_pktmbuf_alloc, a clone, a queue start) gets host buffers, so no one
  // else ever holds an mbuf with guest memory before its data.
  class NicRefillScope {
   public:
    explicit NicRefillScope(MappedPool* pool) : previous_(refilling_) { refilling_ = pool; }
    ~NicRefillScope() { refilling_ = previous_; }
    NicRefillScope(const NicRefillScope&) = delete;
    NicRefillScope& operator=(const NicRefillScope&) = delete;

   private:
    MappedPool* const previous_;
  };

  // Starts lending guest buffers from `source`, at most `residency_cap` at a
  // time, tagged with `generation`. Control thread; the source must outlive
  // the attachment.
  void Attach(GuestBufferSource* source, uint16_t generation, uint32_t residency_cap);
  // Stops taking new guest buffers. Buffers already lent stay lent, and are
  // parked when freed: the caller drains the NIC and takes them back with
  // TakeParked().
  void Detach();
  // Ends the session after teardown: a buffer of it freed from now on (one
  // the switch still held) is orphaned, never parked or lent again.
  void EndSession() { generation_.fetch_add(1, std::memory_order_relaxed); }
  uint16_t generation() const { return generation_.load(std::memory_order_relaxed); }

  // Hot path, for mbufs of this pool (m->pool == mempool()). The guest buffer
  // an mbuf holds, or nullptr for a host buffer. Cost: one load.
  const GuestBuffer* GuestBufferOf(const rte_mbuf* m) const {
    const Entry& e = table_[Index(m)];
    return e.state == State::kGuestLent ? &e.buffer : nullptr;
  }
  // After the NIC wrote into a guest buffer: makes the mbuf start at the
  // frame with no headroom, so nothing can prepend into memory before the
  // guest buffer (rte_pktmbuf_prepend then fails cleanly).
  //
  // A driver that moved the data into the headroom during Rx (net_pcap
  // does for the chained segments of a jumbo frame: rte_pktmbuf_prepend of
  // the whole headroom, then a CPU copy) has already written before the
  // guest buffer: that is counted (nic_wrote_outside), logged, and the pool
  // stops lending guest buffers for good. The mbuf is cut to start at its
  // data, so nothing can prepend further; its frame is delivered by copy.
  void FixupRx(rte_mbuf* m) {
    Entry& e = table_[Index(m)];
    if (e.state != State::kGuestLent) return;
    uint8_t* data = rte_pktmbuf_mtod(m, uint8_t*);
    uint8_t* start = e.buffer.addr + config_.hdr_len;
    if (__builtin_expect(data < start, 0)) {
      WroteOutside(m, data);
      return;
    }
    m->buf_addr = start;
    m->buf_iova = e.buffer.iova + config_.hdr_len;
    m->buf_len = static_cast<uint16_t>(e.buffer.len - config_.hdr_len);
    m->data_off = static_cast<uint16_t>(data - start);
  }
  // Rewrites the index hint of an mbuf of this pool whose dynamic fields were
  // copied from another mbuf (rte_pktmbuf_copy, rte_pktmbuf_attach).
  void RestoreIndexHint(rte_mbuf* m) const {
    *RTE_MBUF_DYNFIELD(m, index_offset_, uint32_t*) = IndexByAddress(m);
  }
  // Stops lending guest buffers for good (e.g. a NIC driver known to write
  // outside them); `why` is logged.
  void DisableLending(const char* why);
  bool lending_disabled() const { return lending_disabled_.load(std::memory_order_relaxed); }
  // Frees mbufs whose guest buffers were completed in place, straight back to
  // the host side: what rte_pktmbuf_free_bulk would do for them, without the
  // generic layers. Only for mbufs rte_pktmbuf_free would give back whole:
  // direct, refcnt 1, one segment. `gs[i]` is GuestBufferOf(ms[i]).
  void FreeDelivered(rte_mbuf* const* ms, const GuestBuffer* const* gs, unsigned n);

  // Takes up to n parked guest buffers back (their mbufs go back to host
  // buffers). For the copy path and for teardown.
  uint16_t TakeParked(GuestBuffer* out, uint16_t n);

  MappedPoolStats stats() const;

 private:
  enum class State : uint8_t { kHost, kGuestLent, kGuestParked };
  struct Entry {
    const rte_mbuf* obj = nullptr;
    State state = State::kHost;
    GuestBuffer buffer;
    void* host_addr = nullptr;  // the mbuf's own data room, to restore
    rte_iova_t host_iova = 0;
    uint16_t host_len = 0;
  };

  explicit MappedPool(const MappedPoolConfig& config);
  // The side-table index of an mbuf of this pool. The dynamic field is a
  // hint, checked against the mbuf's address: rte_pktmbuf_attach/copy copy
  // dynamic fields, so a clone carries its original's index.
  uint32_t Index(const rte_mbuf* m) const {
    const uint32_t hint = *RTE_MBUF_DYNFIELD(m, index_offset_, const uint32_t*);
    if (hint < table_.size() && table_[hint].obj == m) return hint;
    return IndexByAddress(m);
  }
  uint32_t IndexByAddress(const rte_mbuf* m) const;
  static Entry* EntryOf(const GuestBuffer* g) {
    return reinterpret_cast<Entry*>(reinterpret_cast<uintptr_t>(g) - offsetof(Entry, buffer));
  }
  void PointAtGuest(rte_mbuf* m, Entry& e);
  void WroteOutside(rte_mbuf* m, uint8_t* data);
  void PointAtHost(rte_mbuf* m, Entry& e);

  // rte_mempool ops.
  static int OpAlloc(rte_mempool* mp);
  static void OpFree(rte_mempool* mp);
  static int OpEnqueue(rte_mempool* mp, void* const* objs, unsigned n);
  static int OpDequeue(rte_mempool* mp, void** objs, unsigned n);
  static unsigned OpGetCount(const rte_mempool* mp);
  static void InitObject(rte_mempool* mp, void* arg, void* obj, unsigned idx);
  int Enqueue(void* const* objs, unsigned n);
  int Dequeue(void** objs, unsigned n);

  friend struct MappedPoolOps;
  static thread_local MappedPool* refilling_;

  const MappedPoolConfig config_;
  rte_mempool* mp_ = nullptr;
  int index_offset_ = -1;
  bool initialised_ = false;  // populate enqueues raw objects before init
  std::vector<Entry> table_;
  // Runs of objects at a fixed stride, in index order (usually one).
  struct Chunk {
    uintptr_t start;
    uint32_t first;
    uint32_t count;
  };
  std::vector<Chunk> chunks_;
  uintptr_t stride_ = 0;
  std::unique_ptr<ObjStack> host_;    // mbufs with host buffers, free
  std::unique_ptr<ObjStack> parked_;  // mbufs holding guest buffers, free

  std::atomic<GuestBufferSource*> source_{nullptr};
  std::atomic<uint16_t> generation_{0};
  std::atomic<uint32_t> residency_cap_{0};
  std::atomic<uint32_t> resident_{0};
  std::atomic<bool> lending_disabled_{false};

  struct alignas(64) Counters {
    std::atomic<uint64_t> guest_posted{0}, guest_recycled{0}, guest_delivered{0}, guest_taken{0},
        guest_orphaned{0}, host_posted{0}, nic_wrote_outside{0};
  } counters_;
};

}  // namespace iovtee

#endif  // IOVTEE_SRC_POOL_MAPPED_POOL_H_
