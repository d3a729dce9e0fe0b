// RxQueueMapping: the lifecycle around the pool and the guest queue. This is
// the only file that talks to librte_vhost and to the NIC's ethdev.
#include <rte_ethdev.h>
#include <rte_memory.h>
#include <rte_vhost.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "iovtee/mapping.h"
#include "src/common/log.h"
#include "src/datapath/guest_rx_queue.h"
#include "src/guest/guest_memory.h"
#include "src/pool/mapped_pool.h"
#include "src/virtio/device_queue.h"
#include "src/virtio/net_header.h"
#include "src/virtio/ring_layout.h"

namespace iovtee {
namespace {

constexpr uint64_t kVhostFLogAll = uint64_t{1} << 26;
constexpr int kFAccessPlatform = 33;  // VIRTIO_F_ACCESS_PLATFORM

// A pause point between a control thread and one polling thread: the poller
// brackets each call with Enter/Exit; Pause waits until no call is inside.
// Sequentially consistent on both sides (Dekker), so either the poller sees
// the pause or the control thread sees the poller.
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
  void Pause() {
    paused_.store(true, std::memory_order_seq_cst);
    while (inside_.load(std::memory_order_seq_cst) != 0) std::this_thread::yield();
  }
  void Resume() { paused_.store(false, std::memory_order_seq_cst); }

 private:
  std::atomic<int> inside_{0};
  std::atomic<bool> paused_{false};
};

uint64_t ValidationErrors(const virtio::DeviceQueue& q) {
  uint64_t total = 0;
  for (uint64_t e : q.stats().errors) total += e;
  return total;
}

}  // namespace

class RxQueueMapping::Impl {
 public:
  Impl(uint16_t port, uint16_t queue, const MappingOptions& options,
       std::unique_ptr<MappedPool> pool)
      : port_(port), queue_(queue), options_(options), pool_(std::move(pool)) {}

  ~Impl() {
    if (guest_ != nullptr) {
      const absl::Status s = Detach();
      if (!s.ok()) IOVTEE_LOG(ERR, "mapping %u/%u: %s", port_, queue_, s.ToString().c_str());
    }
    dma_mapped_ = std::move(quarantined_dma_);
    UnmapForDma();
  }

  uint16_t RxBurst(rte_mbuf** pkts, uint16_t n) {
    if (!rx_pause_.Enter()) return 0;
    uint16_t got;
    {
      MappedPool::NicRefillScope refill(pool_.get());
      got = rte_eth_rx_burst(port_, queue_, pkts, n);
    }
    rte_mempool* mp = pool_->mempool();
    for (uint16_t i = 0; i < got; ++i) {
      for (rte_mbuf* seg = pkts[i]; seg != nullptr; seg = seg->next) {
        if (seg->pool == mp) pool_->FixupRx(seg);
      }
    }
    rx_pause_.Exit();
    return got;
  }

  uint16_t Enqueue(rte_mbuf** pkts, uint16_t n) {
    if (!tx_pause_.Enter()) {
      DropAll(pkts, n);
      return 0;
    }
    GuestRxQueue* guest = guest_;
    if (guest == nullptr) {
      tx_pause_.Exit();
      DropAll(pkts, n);
      return 0;
    }
    virtio::QueueCursors cursors;
    const uint16_t delivered = guest->Enqueue(pkts, n, &cursors);
    if (delivered > 0) Notify(cursors);
    tx_pause_.Exit();
    return delivered;
  }

  absl::Status Attach(int vid, uint16_t vring_idx) {
    absl::MutexLock lock(&mu_);
    return AttachLocked(vid, vring_idx);
  }
  absl::Status Detach() {
    absl::MutexLock lock(&mu_);
    return DetachLocked();
  }
  MappingStats Stats() const;

  MappedPool* pool() const { return pool_.get(); }
  uint16_t port() const { return port_; }
  uint16_t queue() const { return queue_; }
  bool attached() const { return guest_ != nullptr; }

 private:
  void DropAll(rte_mbuf** pkts, uint16_t n) {
    for (uint16_t i = 0; i < n; ++i) rte_pktmbuf_free(pkts[i]);
    drop_no_guest_.fetch_add(n, std::memory_order_relaxed);
  }

  // librte_vhost decides whether the guest wants an interrupt from its own
  // copy of the ring cursors: keep them in step with ours, then let it.
  // The non-blocking call never waits for a vhost-user message in progress.
  void Notify(const virtio::QueueCursors& c) {
    rte_vhost_set_vring_base(vid_, vring_idx_, c.last_avail_idx, c.last_used_idx);
    rte_vhost_vring_call_nonblock(vid_, vring_idx_);
  }

  absl::Status AttachLocked(int vid, uint16_t vring_idx);
  absl::Status DetachLocked();
  absl::Status MapForDma();
  void UnmapForDma();

  const uint16_t port_;
  const uint16_t queue_;
  const MappingOptions options_;
  std::unique_ptr<MappedPool> pool_;
  PausePoint rx_pause_;
  PausePoint tx_pause_;

  // Guest session; written only by Attach/Detach while the pollers are
  // paused (Detach) or before the pool is attached (Attach).
  int vid_ = -1;
  uint16_t vring_idx_ = 0;
  uint16_t generation_ = 0;
  std::unique_ptr<GuestMemory> memory_;
  std::unique_ptr<GuestRxQueue> guest_holder_;
  GuestRxQueue* guest_ = nullptr;
  std::vector<std::pair<void*, size_t>> dma_mapped_;
  // Guest memory of sessions whose drain failed: released at destruction.
  std::vector<std::unique_ptr<GuestMemory>> quarantine_;
  std::vector<std::pair<void*, size_t>> quarantined_dma_;

  // Attach, Detach and Stats: the control plane, one at a time.
  mutable absl::Mutex mu_;
  std::atomic<uint64_t> drop_no_guest_{0};
  uint64_t validation_errors_previous_ = 0;
  uint64_t attaches_ = 0;
  uint64_t detaches_ = 0;
  GuestRxStats previous_;  // totals of ended sessions
};

absl::Status RxQueueMapping::Impl::MapForDma() {
  rte_eth_dev_info info;
  if (rte_eth_dev_info_get(port_, &info) != 0 || info.device == nullptr) {
    return absl::FailedPreconditionError(absl::StrFormat("port %u has no device", port_));
  }
  for (const GuestRegion& r : memory_->regions()) {
    // IOVA == this process's address of the memory: the same rule the pool
    // uses for buf_iova (GuestRxQueue::TakeBuffers).
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    if (rte_extmem_register(r.host, r.size, nullptr, 0, page) != 0 && rte_errno != EEXIST) {
      UnmapForDma();
      return absl::InternalError(
          absl::StrFormat("rte_extmem_register of guest region gpa 0x%x (%u bytes): %s",
                          r.guest_phys_addr, r.size, rte_strerror(rte_errno)));
    }
    if (rte_dev_dma_map(info.device, r.host, reinterpret_cast<uint64_t>(r.host), r.size) != 0) {
      const int err = rte_errno;
      rte_extmem_unregister(r.host, r.size);
      UnmapForDma();
      return absl::FailedPreconditionError(absl::StrFormat(
          "port %u cannot DMA-map guest memory (gpa 0x%x, %u bytes): %s. The NIC's driver must "
          "implement dma_map (VFIO devices, net_simnic)",
          port_, r.guest_phys_addr, r.size, rte_strerror(err)));
    }
    dma_mapped_.emplace_back(r.host, r.size);
  }
  return absl::OkStatus();
}

void RxQueueMapping::Impl::UnmapForDma() {
  rte_eth_dev_info info;
  const bool have_dev = rte_eth_dev_info_get(port_, &info) == 0 && info.device != nullptr;
  for (const auto& [addr, len] : dma_mapped_) {
    if (have_dev) rte_dev_dma_unmap(info.device, addr, reinterpret_cast<uint64_t>(addr), len);
    rte_extmem_unregister(addr, len);
  }
  dma_mapped_.clear();
}

absl::Status RxQueueMapping::Impl::AttachLocked(int vid, uint16_t vring_idx) {
  if (guest_ != nullptr) {
    return absl::FailedPreconditionError(
        absl::StrFormat("mapping %u/%u already serves vhost device %d", port_, queue_, vid_));
  }
  if (vring_idx % 2 != 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "vring %u is a guest Tx queue; map a guest Rx queue (even index)", vring_idx));
  }
  uint64_t features = 0;
  if (rte_vhost_get_negotiated_features(vid, &features) != 0) {
    return absl::NotFoundError(absl::StrFormat("vhost device %d not found", vid));
  }
  if (features & (uint64_t{1} << virtio::kFInOrder)) {
    return absl::FailedPreconditionError(
        "the guest negotiated VIRTIO_F_IN_ORDER, but mapped completions are out of order: call "
        "iovtee::PrepareVhostSocket() before rte_vhost_driver_start()");
  }
  if (features & (uint64_t{1} << kFAccessPlatform)) {
    return absl::FailedPreconditionError(
        "the guest negotiated VIRTIO_F_ACCESS_PLATFORM (a vIOMMU): descriptors carry IOVAs, "
        "which the mapping does not translate yet");
  }
  if (rte_eal_iova_mode() != RTE_IOVA_VA) {
    return absl::FailedPreconditionError(
        "EAL runs in IOVA-as-PA mode: guest memory is DMA-mapped with IOVA = its virtual "
        "address, which could collide with DPDK's physical IOVAs; start EAL with --iova-mode=va");
  }
  if (features & kVhostFLogAll) {
    return absl::UnavailableError("dirty-page logging (live migration) is on: not mapped");
  }
  rte_vhost_memory* vmem = nullptr;
  if (rte_vhost_get_mem_table(vid, &vmem) != 0) {
    return absl::UnavailableError(absl::StrFormat("vhost device %d has no memory table", vid));
  }
  std::vector<GuestRegionFd> regions;
  for (uint32_t i = 0; i < vmem->nregions; ++i) {
    const rte_vhost_mem_region& r = vmem->regions[i];
    GuestRegionFd g;
    g.guest_phys_addr = r.guest_phys_addr;
    g.guest_user_addr = r.guest_user_addr;
    g.size = r.size;
    g.mmap_offset = r.host_user_addr - reinterpret_cast<uint64_t>(r.mmap_addr);
    g.fd = r.fd;
    g.vhost_hva = r.host_user_addr;
    regions.push_back(g);
  }
  free(vmem);
  auto memory = GuestMemory::MapFromFds(regions);
  if (!memory.ok()) return memory.status();

  rte_vhost_vring vring;
  if (rte_vhost_get_vhost_vring(vid, vring_idx, &vring) != 0 || vring.size == 0) {
    return absl::FailedPreconditionError(
        absl::StrFormat("vhost device %d: vring %u is not set up", vid, vring_idx));
  }
  const bool packed = features & (uint64_t{1} << virtio::kFRingPacked);
  virtio::QueueConfig qc;
  qc.layout = packed ? virtio::RingLayout::kPacked : virtio::RingLayout::kSplit;
  qc.size = vring.size;
  qc.features = features;
  qc.direction = virtio::Direction::kDeviceWrites;
  const uint64_t desc_bytes =
      packed ? virtio::PackedDescBytes(vring.size) : virtio::SplitDescBytes(vring.size);
  const uint64_t driver_bytes =
      packed ? virtio::PackedEventBytes() : virtio::SplitAvailBytes(vring.size) + 2;
  const uint64_t device_bytes =
      packed ? virtio::PackedEventBytes() : virtio::SplitUsedBytes(vring.size) + 2;
  qc.desc = (*memory)->VhostHvaToHost(reinterpret_cast<uint64_t>(vring.desc), desc_bytes);
  qc.driver_area = (*memory)->VhostHvaToHost(reinterpret_cast<uint64_t>(vring.avail), driver_bytes);
  qc.device_area = (*memory)->VhostHvaToHost(reinterpret_cast<uint64_t>(vring.used), device_bytes);
  uint16_t last_avail = 0, last_used = 0;
  if (rte_vhost_get_vring_base(vid, vring_idx, &last_avail, &last_used) != 0) {
    return absl::InternalError("rte_vhost_get_vring_base failed");
  }
  auto dq =
      virtio::DeviceQueue::Create(qc, memory->get(), virtio::QueueCursors{last_avail, last_used});
  if (!dq.ok()) {
    return absl::FailedPreconditionError(
        absl::StrFormat("vhost device %d vring %u: %s", vid, vring_idx, dq.status().message()));
  }
  const uint16_t hdr_len = static_cast<uint16_t>(virtio::NetHdrSize(features));
  if (hdr_len != pool_->hdr_len()) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "the guest's virtio-net header is %u bytes; this mapping's pool was built for %u", hdr_len,
        pool_->hdr_len()));
  }
  memory_ = std::move(*memory);
  absl::Status s = MapForDma();
  if (!s.ok()) {
    memory_.reset();
    return s;
  }
  // Only now that nothing can fail: this writes to the guest's ring.
  (*dq)->EnableKicks(false);  // the mapping polls the ring; kicks would be wasted
  ++generation_;
  GuestRxConfig gc;
  gc.features = features;
  gc.pool = pool_.get();
  gc.generation = generation_;
  guest_holder_ = std::make_unique<GuestRxQueue>(std::move(*dq), memory_.get(), gc);
  vid_ = vid;
  vring_idx_ = vring_idx;
  uint32_t cap = options_.residency_cap != 0 ? options_.residency_cap : vring.size / 2u;
  tx_pause_.Pause();
  guest_ = guest_holder_.get();
  tx_pause_.Resume();
  pool_->Attach(guest_, generation_, cap);
  ++attaches_;
  IOVTEE_LOG(INFO,
             "mapping %u/%u: guest vhost %d vring %u attached (%s ring of %u, residency cap %u, "
             "features 0x%" PRIx64 ")",
             port_, queue_, vid, vring_idx, packed ? "packed" : "split", vring.size, cap, features);
  return absl::OkStatus();
}

absl::Status RxQueueMapping::Impl::DetachLocked() {
  if (guest_ == nullptr) return absl::OkStatus();
  absl::Status result = absl::OkStatus();
  pool_->Detach();  // no new guest buffers; lent ones are parked when freed
  rx_pause_.Pause();
  tx_pause_.Pause();
  // Drain: the NIC gives back every posted mbuf. Nothing polls the queue now.
  int rc = rte_eth_dev_rx_queue_stop(port_, queue_);
  if (rc != 0) {
    result = absl::InternalError(
        absl::StrFormat("port %u: rx_queue_stop(%u) failed (%d): guest buffers may stay in the "
                        "NIC until the port stops",
                        port_, queue_, rc));
  }
  // Frames the switch still holds come back as it frees them.
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.drain_timeout_ms);
  std::vector<GuestBuffer> back;
  GuestBuffer chunk[64];
  for (;;) {
    uint16_t got;
    while ((got = pool_->TakeParked(chunk, 64)) > 0) back.insert(back.end(), chunk, chunk + got);
    if (pool_->stats().guest_resident == 0) break;
    if (std::chrono::steady_clock::now() > deadline) {
      IOVTEE_LOG(WARNING,
                 "mapping %u/%u: %u guest buffers still held by the switch after %u ms; the guest "
                 "gets them back only through a device reset",
                 port_, queue_, pool_->stats().guest_resident, options_.drain_timeout_ms);
      break;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  pool_->EndSession();
  guest_->ReturnUnused(back.data(), static_cast<uint16_t>(back.size()));
  const virtio::QueueCursors c = guest_->cursors();
  rte_vhost_set_vring_base(vid_, vring_idx_, c.last_avail_idx, c.last_used_idx);
  // The guest reclaims the returned buffers now, not at its next interrupt.
  rte_vhost_vring_call_nonblock(vid_, vring_idx_);
  if (rc == 0 && (rc = rte_eth_dev_rx_queue_start(port_, queue_)) != 0) {
    result = absl::InternalError(absl::StrFormat(
        "port %u: rx_queue_start(%u) failed (%d) after the drain", port_, queue_, rc));
  }
  if (rc == 0) {
    UnmapForDma();
  } else {
    // The NIC may still hold guest buffers: keep their memory mapped (in this
    // process and for the device) until the mapping is destroyed, after the
    // port has been stopped.
    quarantine_.push_back(std::move(memory_));
    for (const auto& m : dma_mapped_) quarantined_dma_.push_back(m);
    dma_mapped_.clear();
  }
  const GuestRxStats s = guest_->stats();
  previous_.zero_copy += s.zero_copy;
  previous_.copied += s.copied;
  previous_.bytes += s.bytes;
  for (int i = 0; i < static_cast<int>(CopyReason::kCount); ++i) previous_.copies[i] += s.copies[i];
  for (int i = 0; i < static_cast<int>(DropReason::kCount); ++i) previous_.drops[i] += s.drops[i];
  previous_.lent_to_nic += s.lent_to_nic;
  validation_errors_previous_ += ValidationErrors(guest_->queue());
  guest_ = nullptr;
  guest_holder_.reset();
  memory_.reset();
  ++detaches_;
  tx_pause_.Resume();
  rx_pause_.Resume();
  IOVTEE_LOG(INFO, "mapping %u/%u: guest vhost %d detached, %zu buffers given back", port_, queue_,
             vid_, back.size());
  vid_ = -1;
  return result;
}

MappingStats RxQueueMapping::Impl::Stats() const {
  absl::MutexLock lock(&mu_);
  GuestRxStats g = previous_;
  uint64_t validation = validation_errors_previous_;
  if (guest_ != nullptr) {
    const GuestRxStats s = guest_->stats();
    g.zero_copy += s.zero_copy;
    g.copied += s.copied;
    g.bytes += s.bytes;
    for (int i = 0; i < static_cast<int>(CopyReason::kCount); ++i) g.copies[i] += s.copies[i];
    for (int i = 0; i < static_cast<int>(DropReason::kCount); ++i) g.drops[i] += s.drops[i];
    validation += ValidationErrors(guest_->queue());
  }
  const MappedPoolStats p = pool_->stats();
  MappingStats m;
  m.attached = guest_ != nullptr;
  m.zero_copy = g.zero_copy;
  m.copied = g.copied;
  m.bytes = g.bytes;
  m.copy_foreign = g.copies[static_cast<int>(CopyReason::kForeign)];
  m.copy_host_buffer = g.copies[static_cast<int>(CopyReason::kHostBuffer)];
  m.copy_multi_segment = g.copies[static_cast<int>(CopyReason::kMultiSegment)];
  m.copy_shared = g.copies[static_cast<int>(CopyReason::kShared)];
  m.copy_stale_session = g.copies[static_cast<int>(CopyReason::kStaleSession)];
  m.copy_layout = g.copies[static_cast<int>(CopyReason::kLayout)];
  m.drop_no_buffer = g.drops[static_cast<int>(DropReason::kNoBuffer)];
  m.drop_too_big = g.drops[static_cast<int>(DropReason::kTooBig)];
  m.drop_offload = g.drops[static_cast<int>(DropReason::kOffload)];
  m.drop_broken_queue = g.drops[static_cast<int>(DropReason::kBrokenQueue)];
  m.drop_no_guest = drop_no_guest_.load(std::memory_order_relaxed);
  m.guest_buffers_held = p.guest_resident;
  m.guest_buffers_lent = p.guest_posted;
  m.host_buffers_posted = p.host_posted;
  m.guest_buffers_recycled = p.guest_recycled;
  m.guest_buffers_orphaned = p.guest_orphaned;
  m.validation_errors = validation;
  m.attaches = attaches_;
  m.detaches = detaches_;
  return m;
}

absl::Status PrepareVhostSocket(const std::string& path) {
  if (rte_vhost_driver_disable_features(path.c_str(), uint64_t{1} << virtio::kFInOrder) != 0) {
    return absl::NotFoundError(absl::StrFormat(
        "vhost-user socket %s is not registered (call rte_vhost_driver_register first)", path));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<RxQueueMapping>> RxQueueMapping::Create(
    uint16_t port_id, uint16_t queue_id, const MappingOptions& options) {
  if (!rte_eth_dev_is_valid_port(port_id)) {
    return absl::NotFoundError(absl::StrFormat("port %u does not exist", port_id));
  }
  MappedPoolConfig pc;
  pc.name = absl::StrFormat("iovtee_p%uq%u", port_id, queue_id);
  pc.size = options.pool_size;
  pc.nic_buffer_size = options.nic_buffer_size;
  pc.priv_size = options.mbuf_priv_size;
  pc.socket_id =
      options.socket_id != SOCKET_ID_ANY ? options.socket_id : rte_eth_dev_socket_id(port_id);
  // Version 1 and mergeable guests both use the 12-byte header; only legacy
  // guests without mergeable buffers use 10 (AttachGuest refuses those).
  pc.hdr_len = virtio::kNetHdrMrgSize;
  auto pool = MappedPool::Create(pc);
  if (!pool.ok()) return pool.status();
  return std::unique_ptr<RxQueueMapping>(
      new RxQueueMapping(std::make_unique<Impl>(port_id, queue_id, options, std::move(*pool))));
}

RxQueueMapping::RxQueueMapping(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RxQueueMapping::~RxQueueMapping() = default;

rte_mempool* RxQueueMapping::mempool() const { return impl_->pool()->mempool(); }
uint16_t RxQueueMapping::port_id() const { return impl_->port(); }
uint16_t RxQueueMapping::queue_id() const { return impl_->queue(); }
uint16_t RxQueueMapping::RxBurst(rte_mbuf** pkts, uint16_t n) { return impl_->RxBurst(pkts, n); }
absl::Status RxQueueMapping::AttachGuest(int vid, uint16_t vring_idx) {
  return impl_->Attach(vid, vring_idx);
}
absl::Status RxQueueMapping::DetachGuest() { return impl_->Detach(); }
bool RxQueueMapping::attached() const { return impl_->attached(); }
uint16_t RxQueueMapping::Enqueue(rte_mbuf** pkts, uint16_t n) { return impl_->Enqueue(pkts, n); }
MappingStats RxQueueMapping::stats() const { return impl_->Stats(); }

rte_mbuf* RxQueueMapping::Unshare(rte_mbuf* m, rte_mempool* mp) {
  MappedPool* pool = MappedPool::FromMempool(m->pool);
  if (pool == nullptr || pool->GuestBufferOf(m) == nullptr) return m;
  rte_mbuf* copy = rte_pktmbuf_copy(m, mp, 0, UINT32_MAX);
  if (copy == nullptr) return nullptr;
  rte_pktmbuf_free(m);  // the guest buffer is parked for the NIC again
  return copy;
}

}  // namespace iovtee
