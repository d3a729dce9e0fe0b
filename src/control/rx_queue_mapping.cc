// RxQueueMapping: the lifecycle around the pool and the guest queue. This is
// the only file that talks to librte_vhost and to the NIC's ethdev.
#include <rte_ethdev.h>
#include <rte_memory.h>
#include <rte_telemetry.h>
#include <rte_vhost.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "iovtee/mapping.h"
#include "iovtee/pause_point.h"
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

// NIC drivers known to write outside the buffer they are given.
// net_pcap (DPDK 22.11, eth_pcap_rx_jumbo): a frame larger than one mbuf
// continues in chained mbufs whose whole headroom it prepends before copying
// into them, i.e. before a guest buffer; and it takes frames of any size (a
// pcap file, or an interface with GRO), whatever the port's MTU says.
const char* LendingHazard(uint16_t port) {
  rte_eth_dev_info info;
  if (rte_eth_dev_info_get(port, &info) != 0 || info.driver_name == nullptr) return nullptr;
  if (std::strcmp(info.driver_name, "net_pcap") == 0) {
    return "net_pcap writes the chained segments of frames larger than one buffer into the mbuf "
           "headroom, which lies outside a guest buffer, and takes frames of any size: frames "
           "from this port reach the guest by copy";
  }
  return nullptr;
}

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
    if (notify_pending_.load(std::memory_order_relaxed)) RetryNotify();
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
    if (delivered > 0) {
      Notify(cursors);
    } else if (notify_pending_.load(std::memory_order_relaxed)) {
      RetryNotify();
    }
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
  bool attached() const { return attached_.load(std::memory_order_acquire); }

 private:
  void DropAll(rte_mbuf** pkts, uint16_t n) {
    for (uint16_t i = 0; i < n; ++i) rte_pktmbuf_free(pkts[i]);
    drop_no_guest_.fetch_add(n, std::memory_order_relaxed);
  }

  // librte_vhost decides whether the guest wants an interrupt from its own
  // copy of the ring cursors: keep them in step with ours, then let it.
  // The non-blocking call never waits for a vhost-user message in progress.
  // -EAGAIN: a vhost-user message holds the queue; the call is retried from
  // the next RxBurst or Enqueue, so the guest is never left waiting.
  void Notify(const virtio::QueueCursors& c) {
    rte_vhost_set_vring_base(vid_, vring_idx_, c.last_avail_idx, c.last_used_idx);
    Call();
  }
  void Call() {
    const int rc = rte_vhost_vring_call_nonblock(vid_, vring_idx_);
    notify_pending_.store(rc == -EAGAIN, std::memory_order_relaxed);
    if (rc == -EAGAIN) notify_retries_.fetch_add(1, std::memory_order_relaxed);
  }
  // From either poller; the two may race to call twice, which is harmless
  // (vhost's own event-idx check decides whether the guest is signalled).
  void RetryNotify() {
    if (!attached()) return;
    Call();
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
  std::atomic<bool> attached_{false};
  std::atomic<bool> notify_pending_{false};
  std::atomic<uint64_t> notify_retries_{0};
  uint64_t validation_errors_previous_ = 0;
  uint64_t attaches_ = 0;
  uint64_t detaches_ = 0;
  uint64_t quarantined_sessions_ = 0;
  uint64_t drop_detach_ = 0;  // frames in the NIC's ring at detach
  GuestRxStats previous_;     // totals of ended sessions
};

absl::Status RxQueueMapping::Impl::MapForDma() {
  rte_eth_dev_info info;
  if (rte_eth_dev_info_get(port_, &info) != 0 || info.device == nullptr) {
    return absl::FailedPreconditionError(absl::StrFormat("port %u has no device", port_));
  }
  // Our own mappings of the guest's fds, whole: page-aligned in the fd's own
  // page size (rte_extmem_register wants both), however the regions sit in
  // them. IOVA == this process's address of the memory: the same rule the
  // pool uses for buf_iova (GuestRxQueue::TakeBuffers).
  for (const GuestMemory::MappedRange& r : memory_->mapped_ranges()) {
    if (rte_extmem_register(r.addr, r.len, nullptr, 0, r.page_size) != 0 && rte_errno != EEXIST) {
      const int err = rte_errno;
      UnmapForDma();
      return absl::InternalError(
          absl::StrFormat("rte_extmem_register of guest memory (%u bytes, pages of %u): %s", r.len,
                          r.page_size, rte_strerror(err)));
    }
    if (rte_dev_dma_map(info.device, r.addr, reinterpret_cast<uint64_t>(r.addr), r.len) != 0) {
      const int err = rte_errno;
      rte_extmem_unregister(r.addr, r.len);
      UnmapForDma();
      return absl::FailedPreconditionError(absl::StrFormat(
          "port %u cannot DMA-map guest memory (%u bytes): %s. The NIC's driver must "
          "implement dma_map (VFIO devices, net_simnic)",
          port_, r.len, rte_strerror(err)));
    }
    dma_mapped_.emplace_back(r.addr, r.len);
  }
  return absl::OkStatus();
}

void RxQueueMapping::Impl::UnmapForDma() {
  if (dma_mapped_.empty()) return;
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
  gc.order_probation = !packed && !(features & (uint64_t{1} << virtio::kNetFMrgRxbuf)) &&
                       options_.guest_rx_order == GuestRxOrder::kDetect;
  guest_holder_ = std::make_unique<GuestRxQueue>(std::move(*dq), memory_.get(), gc);
  vid_ = vid;
  vring_idx_ = vring_idx;
  uint32_t cap = options_.residency_cap != 0 ? options_.residency_cap : vring.size / 2u;
  tx_pause_.Pause();
  guest_ = guest_holder_.get();
  attached_.store(true, std::memory_order_release);
  tx_pause_.Resume();
  if (const char* hazard = LendingHazard(port_)) {
    pool_->DisableLending(hazard);
  }
  pool_->Attach(guest_, generation_, cap);
  ++attaches_;
  IOVTEE_LOG(INFO,
             "mapping %u/%u: guest vhost %d vring %u attached (%s ring of %u, residency cap %u, "
             "features 0x%" PRIx64 "%s)",
             port_, queue_, vid, vring_idx, packed ? "packed" : "split", vring.size, cap, features,
             gc.order_probation ? ", Rx order on probation: frames are copied until the guest "
                                  "shows it reads used ids"
                                : "");
  return absl::OkStatus();
}

absl::Status RxQueueMapping::Impl::DetachLocked() {
  if (guest_ == nullptr) return absl::OkStatus();
  absl::Status result = absl::OkStatus();
  pool_->Detach();  // no new guest buffers; lent ones are parked when freed
  rx_pause_.Pause();
  tx_pause_.Pause();
  // Frames the NIC received and nobody polled yet: a queue stop would free
  // them unseen. Take them (the refill outside NicRefillScope posts host
  // buffers) and count them as dropped at detach.
  {
    rte_mbuf* pkts[32];
    uint64_t dropped = 0;
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(10);
    for (uint16_t got; (got = rte_eth_rx_burst(port_, queue_, pkts, 32)) > 0;) {
      rte_pktmbuf_free_bulk(pkts, got);
      dropped += got;
      if (std::chrono::steady_clock::now() > until) break;  // the NIC keeps receiving
    }
    drop_detach_ += dropped;
  }
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
  bool all_back = true;
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
      all_back = false;
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
  if (rc == 0 && all_back) {
    UnmapForDma();
  } else {
    // The NIC (or the switch: an mbuf sitting in some Tx ring) may still
    // hold guest buffers: keep their memory mapped, in this process and for
    // the device, until the mapping is destroyed, after the port has been
    // stopped. Unmapping now would turn a late read into a crash or an IOMMU
    // fault.
    ++quarantined_sessions_;
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
  attached_.store(false, std::memory_order_release);
  notify_pending_.store(false, std::memory_order_relaxed);
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
  bool probation = false;
  if (guest_ != nullptr) {
    const GuestRxStats s = guest_->stats();
    probation = guest_->order_probation();
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
  m.copy_order_unproven = g.copies[static_cast<int>(CopyReason::kOrderUnproven)];
  m.order_probation = probation;
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
  m.quarantined_sessions = quarantined_sessions_;
  m.notify_retries = notify_retries_.load(std::memory_order_relaxed);
  m.pool_mbufs = pool_->mempool()->size;
  m.pool_free_mbufs = rte_mempool_avail_count(pool_->mempool());
  m.nic_wrote_outside = p.nic_wrote_outside;
  m.lending_disabled = p.lending_disabled;
  m.drop_detach = drop_detach_;
  return m;
}

std::vector<std::pair<const char*, uint64_t>> StatsFields(const MappingStats& s) {
  return {
      {"attached", s.attached},
      {"zero_copy", s.zero_copy},
      {"copied", s.copied},
      {"bytes", s.bytes},
      {"copy_foreign", s.copy_foreign},
      {"copy_host_buffer", s.copy_host_buffer},
      {"copy_multi_segment", s.copy_multi_segment},
      {"copy_shared", s.copy_shared},
      {"copy_stale_session", s.copy_stale_session},
      {"copy_layout", s.copy_layout},
      {"copy_order_unproven", s.copy_order_unproven},
      {"drop_no_buffer", s.drop_no_buffer},
      {"drop_too_big", s.drop_too_big},
      {"drop_offload", s.drop_offload},
      {"drop_broken_queue", s.drop_broken_queue},
      {"drop_no_guest", s.drop_no_guest},
      {"guest_buffers_held", s.guest_buffers_held},
      {"guest_buffers_lent", s.guest_buffers_lent},
      {"host_buffers_posted", s.host_buffers_posted},
      {"guest_buffers_recycled", s.guest_buffers_recycled},
      {"guest_buffers_orphaned", s.guest_buffers_orphaned},
      {"validation_errors", s.validation_errors},
      {"attaches", s.attaches},
      {"detaches", s.detaches},
      {"order_probation", s.order_probation},
      {"quarantined_sessions", s.quarantined_sessions},
      {"notify_retries", s.notify_retries},
      {"pool_mbufs", s.pool_mbufs},
      {"pool_free_mbufs", s.pool_free_mbufs},
      {"nic_wrote_outside", s.nic_wrote_outside},
      {"lending_disabled", s.lending_disabled},
      {"drop_detach", s.drop_detach},
  };
}

namespace {

// Every live mapping, for telemetry. Telemetry runs on its own thread.
absl::Mutex registry_mu;
std::vector<RxQueueMapping*>* registry = nullptr;  // guarded by registry_mu

int TelemetryList(const char*, const char*, rte_tel_data* d) {
  rte_tel_data_start_array(d, RTE_TEL_STRING_VAL);
  absl::MutexLock lock(&registry_mu);
  if (registry == nullptr) return 0;
  for (const RxQueueMapping* m : *registry) {
    const std::string name = absl::StrFormat("%u:%u", m->port_id(), m->queue_id());
    rte_tel_data_add_array_string(d, name.c_str());
  }
  return 0;
}

int TelemetryMapping(const char*, const char* params, rte_tel_data* d) {
  unsigned port = 0, queue = 0;
  char extra = 0;
  if (params == nullptr || std::sscanf(params, "%u:%u%c", &port, &queue, &extra) != 2) return -1;
  absl::MutexLock lock(&registry_mu);
  if (registry == nullptr) return -1;
  for (const RxQueueMapping* m : *registry) {
    if (m->port_id() != port || m->queue_id() != queue) continue;
    rte_tel_data_start_dict(d);
    for (const auto& [name, value] : StatsFields(m->stats())) {
      rte_tel_data_add_dict_u64(d, name, value);
    }
    return 0;
  }
  return -1;
}

void Register(RxQueueMapping* m) {
  absl::MutexLock lock(&registry_mu);
  if (registry == nullptr) {
    registry = new std::vector<RxQueueMapping*>();
    // Fails harmlessly when telemetry is off or the names are taken.
    rte_telemetry_register_cmd("/iovtee/mappings", TelemetryList,
                               "Lists iovtee Rx queue mappings as PORT:QUEUE. No parameters");
    rte_telemetry_register_cmd("/iovtee/mapping", TelemetryMapping,
                               "Counters of one iovtee mapping. Parameters: PORT:QUEUE");
  }
  registry->push_back(m);
}

void Unregister(RxQueueMapping* m) {
  absl::MutexLock lock(&registry_mu);
  if (registry == nullptr) return;
  registry->erase(std::remove(registry->begin(), registry->end(), m), registry->end());
}

}  // namespace

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

RxQueueMapping::RxQueueMapping(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {
  Register(this);
}
RxQueueMapping::~RxQueueMapping() {
  // First, so telemetry never reads a mapping being destroyed.
  Unregister(this);
}

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
  // Any segment may sit in a guest buffer (a frame the NIC scattered).
  bool guest = false;
  for (const rte_mbuf* seg = m; seg != nullptr && !guest; seg = seg->next) {
    MappedPool* pool = MappedPool::FromMempool(seg->pool);
    guest = pool != nullptr && pool->GuestBufferOf(seg) != nullptr;
  }
  if (!guest) return m;
  rte_mbuf* copy = rte_pktmbuf_copy(m, mp, 0, UINT32_MAX);
  if (copy == nullptr) return nullptr;
  // rte_pktmbuf_copy copied m's dynamic fields, the pool's index hint
  // included: give a copy in a mapped pool its own back.
  if (MappedPool* target = MappedPool::FromMempool(copy->pool)) target->RestoreIndexHint(copy);
  rte_pktmbuf_free(m);  // the guest buffers are parked for the NIC again
  return copy;
}

}  // namespace iovtee
