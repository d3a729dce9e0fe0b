#include "src/datapath/guest_rx_queue.h"

#include <rte_memcpy.h>

#include <algorithm>
#include <cstring>

#include "src/common/log.h"
#include "src/virtio/net_header.h"

namespace iovtee {

using virtio::DescChain;
using virtio::UsedBuffer;
using virtio::VirtioNetHdr;

namespace {

constexpr uint16_t kFetchBurst = 64;
constexpr uint16_t kFreeBurst = 64;
// Mergeable buffers one copied frame may use: a 9018-byte frame in Linux's
// smallest mergeable buffers (1536 bytes) needs 6.
constexpr int kMaxMergeBuffers = 16;

// Copies bytes into a sequence of chains, segment by segment, and keeps how
// many bytes went into each chain (the used lengths).
class ChainWriter {
 public:
  ChainWriter(const DescChain* chains, int n) : chains_(chains), n_(n) {}
  void Write(const uint8_t* src, uint32_t len) {
    while (len > 0 && chain_ < n_) {
      const DescChain& c = chains_[chain_];
      if (seg_ == c.nsegs) {
        ++chain_;
        seg_ = 0;
        continue;
      }
      const GuestSegment& s = c.segs[seg_];
      const uint32_t k = std::min(len, s.len - off_);
      std::memcpy(s.host + off_, src, k);
      src += k;
      len -= k;
      off_ += k;
      written_[chain_] += k;
      if (off_ == s.len) {
        ++seg_;
        off_ = 0;
      }
    }
  }
  uint32_t written(int chain) const { return written_[chain]; }

 private:
  const DescChain* chains_;
  const int n_;
  int chain_ = 0;
  uint16_t seg_ = 0;
  uint32_t off_ = 0;
  uint32_t written_[kMaxMergeBuffers] = {};
};

// Whether `len` (10 or 12) bytes at p equal h's first bytes.
inline bool SameBytes(const uint8_t* p, const VirtioNetHdr* h, uint16_t len) {
  const auto* q = reinterpret_cast<const uint8_t*>(h);
  uint64_t a, b;
  std::memcpy(&a, p, 8);
  std::memcpy(&b, q, 8);
  if (a != b) return false;
  if (len == 12) {
    uint32_t c, d;
    std::memcpy(&c, p + 8, 4);
    std::memcpy(&d, q + 8, 4);
    return c == d;
  }
  return std::memcmp(p + 8, q + 8, len - 8) == 0;
}

}  // namespace

const char* CopyReasonName(CopyReason r) {
  switch (r) {
    case CopyReason::kForeign:
      return "foreign";
    case CopyReason::kHostBuffer:
      return "host_buffer";
    case CopyReason::kMultiSegment:
      return "multi_segment";
    case CopyReason::kShared:
      return "shared";
    case CopyReason::kStaleSession:
      return "stale_session";
    case CopyReason::kLayout:
      return "layout";
    case CopyReason::kOrderUnproven:
      return "order_unproven";
    case CopyReason::kCount:
      break;
  }
  return "unknown";
}

const char* DropReasonName(DropReason r) {
  switch (r) {
    case DropReason::kNoBuffer:
      return "no_buffer";
    case DropReason::kTooBig:
      return "too_big";
    case DropReason::kOffload:
      return "offload";
    case DropReason::kBrokenQueue:
      return "broken_queue";
    case DropReason::kCount:
      break;
  }
  return "unknown";
}

GuestRxQueue::GuestRxQueue(std::unique_ptr<virtio::DeviceQueue> queue, const GuestMemory* memory,
                           const GuestRxConfig& config)
    : queue_(std::move(queue)),
      memory_(memory),
      config_(config),
      hdr_len_(static_cast<uint16_t>(virtio::NetHdrSize(config.features))),
      mergeable_((config.features >> virtio::kNetFMrgRxbuf) & 1),
      nic_room_(config.pool != nullptr ? std::max<uint32_t>(hdr_len_, config.pool->hdr_len()) +
                                             config.pool->nic_buffer_size()
                                       : UINT32_MAX),
      order_probation_(config.order_probation &&
                       queue_->config().layout == virtio::RingLayout::kSplit) {
  kept_.resize(queue_->config().size);
  fetch_.resize(kFetchBurst);
  merge_.resize(kMaxMergeBuffers);
  used_.reserve(256);
}

void GuestRxQueue::KeepBack(const DescChain& c) {
  CopyChain(&kept_[(kept_head_ + kept_count_++) % kept_.size()], c);
}

void GuestRxQueue::KeepFront(const DescChain& c) {
  kept_head_ = (kept_head_ + kept_.size() - 1) % kept_.size();
  CopyChain(&kept_[kept_head_], c);
  ++kept_count_;
}

bool GuestRxQueue::TakeKept(DescChain* out) {
  if (kept_count_ == 0) return false;
  CopyChain(out, kept_[kept_head_]);
  kept_head_ = (kept_head_ + 1) % kept_.size();
  --kept_count_;
  return true;
}

uint16_t GuestRxQueue::FetchChains(DescChain* out, uint16_t n) {
  // Split ring: the chains come from consecutive avail slots. Only read on
  // probation (a call per fetch otherwise spent for nothing).
  const uint16_t slot = order_probation_ ? queue_->cursors().last_avail_idx : 0;
  const uint16_t got = queue_->Fetch(absl::MakeSpan(out, n));
  if (order_probation_) {
    const uint16_t mask = static_cast<uint16_t>(queue_->config().size - 1);
    for (uint16_t i = 0; i < got; ++i) {
      if (out[i].id != ((slot + i) & mask)) {
        order_probation_ = false;
        ++stats_.order_proven;
        IOVTEE_LOG(INFO,
                   "guest Rx queue: the guest posted descriptor %u in avail slot %u, so it reads "
                   "used ids: Rx order probation ends, its buffers now go to the NIC",
                   out[i].id, (slot + i) & mask);
        break;
      }
    }
  }
  return got;
}

uint16_t GuestRxQueue::TakeBuffers(GuestBuffer* out, uint16_t n) {
  // The NIC refill must never wait for the send path: it gets host buffers
  // this time instead.
  if (!rte_spinlock_trylock(&lock_)) return 0;
  if (order_probation_) {
    rte_spinlock_unlock(&lock_);
    return 0;
  }
  uint16_t k = 0;
  while (k < n) {
    const uint16_t want = std::min<uint16_t>(n - k, kFetchBurst);
    const uint16_t got = FetchChains(fetch_.data(), want);
    for (uint16_t i = 0; i < got; ++i) {
      const DescChain& c = fetch_[i];
      if (c.nsegs == 1 && c.len >= nic_room_) {
        // The mapping registers guest memory for DMA with IOVA == this
        // process's address of it.
        out[k++] = GuestBuffer{c.segs[0].host, reinterpret_cast<rte_iova_t>(c.segs[0].host), c.len,
                               c.id, config_.generation};
      } else {
        KeepBack(c);
        ++stats_.unsuitable;
      }
    }
    if (got < want) break;
  }
  stats_.lent_to_nic += k;
  rte_spinlock_unlock(&lock_);
  return k;
}

bool GuestRxQueue::TakeChainForCopy(DescChain* out) {
  if (TakeKept(out)) return true;
  // One ring read for the frames of this burst still to come (each needs at
  // least one buffer), not one per frame. Unused ones stay kept, in order.
  const uint16_t want = std::min<uint16_t>(std::max<uint16_t>(copy_hint_, 1), kFetchBurst);
  const uint16_t got = FetchChains(fetch_.data(), want);
  if (got > 0) {
    CopyChain(out, fetch_[0]);
    for (uint16_t i = 1; i < got; ++i) KeepBack(fetch_[i]);
    return true;
  }
  // The guest has nothing left on its ring: take back a buffer the pool
  // holds for the NIC but has not posted.
  GuestBuffer g;
  if (config_.pool != nullptr && config_.pool->TakeParked(&g, 1) == 1 &&
      g.generation == config_.generation) {
    out->id = g.id;
    out->ring_slots = 0;  // the queue remembers the real count
    out->nsegs = 1;
    out->len = g.len;
    out->segs[0] = GuestSegment{g.addr, memory_->HostToGpa(g.addr), g.len};
    return true;
  }
  return false;
}

bool GuestRxQueue::CopyOne(rte_mbuf* m, std::vector<UsedBuffer>* used) {
  VirtioNetHdr hdr;
  if (virtio::FillRxHeader(m, config_.features, &hdr) != virtio::RxHeaderStatus::kOk) {
    Drop(DropReason::kOffload);
    return false;
  }
  const uint32_t need = hdr_len_ + m->pkt_len;
  int nbuf = 0;
  uint32_t room = 0;
  while (room < need && nbuf < (mergeable_ ? kMaxMergeBuffers : 1)) {
    if (!TakeChainForCopy(&merge_[nbuf])) break;
    room += merge_[nbuf++].len;
  }
  if (room < need) {
    // Keep the buffers for the next frame, first in line: an unused buffer
    // is not lost, and the order the guest posted them in holds.
    for (int i = nbuf - 1; i >= 0; --i) KeepFront(merge_[i]);
    Drop(nbuf == 0 || mergeable_ ? DropReason::kNoBuffer : DropReason::kTooBig);
    return false;
  }
  hdr.num_buffers = static_cast<uint16_t>(nbuf);
  if (nbuf == 1 && merge_[0].nsegs > 0 && m->nb_segs == 1 && merge_[0].segs[0].len >= need) {
    // The common case: one mbuf segment into a buffer's first segment.
    uint8_t* dst = merge_[0].segs[0].host;
    std::memcpy(dst, &hdr, hdr_len_);
    rte_memcpy(dst + hdr_len_, rte_pktmbuf_mtod(m, const uint8_t*), m->data_len);
    used->push_back(UsedBuffer{merge_[0].id, need});
    stats_.bytes += m->pkt_len;
    return true;
  }
  // The header opens the first buffer; the frame follows, then continues in
  // the next buffers (mergeable: those carry data only). `room >= need`
  // guarantees everything fits.
  ChainWriter w(merge_.data(), nbuf);
  w.Write(reinterpret_cast<const uint8_t*>(&hdr), hdr_len_);
  for (const rte_mbuf* seg = m; seg != nullptr; seg = seg->next) {
    w.Write(rte_pktmbuf_mtod(seg, const uint8_t*), seg->data_len);
  }
  for (int i = 0; i < nbuf; ++i) used->push_back(UsedBuffer{merge_[i].id, w.written(i)});
  stats_.bytes += m->pkt_len;
  return true;
}

uint16_t GuestRxQueue::Enqueue(rte_mbuf* const* pkts, uint16_t n, virtio::QueueCursors* cursors) {
  MappedPool* pool = config_.pool;
  rte_mempool* mp = pool != nullptr ? pool->mempool() : nullptr;
  uint16_t delivered = 0;
  // Every mbuf is freed at the end, in bulk: the mapped pool has no per-lcore
  // cache, so one free is one ring operation; a burst makes it one per pool.
  rte_mbuf* done[kFreeBurst];
  uint16_t ndone = 0;
  auto release = [&](rte_mbuf* m) {
    done[ndone++] = m;
    if (ndone == kFreeBurst) {
      rte_pktmbuf_free_bulk(done, ndone);
      ndone = 0;
    }
  };
  // Completed in place: freed through the pool's short path.
  rte_mbuf* in_place[kFreeBurst];
  const GuestBuffer* in_place_buf[kFreeBurst];
  uint16_t nin = 0;
  uint64_t zc = 0, zc_bytes = 0;  // kept in registers, added once
  rte_spinlock_lock(&lock_);
  used_.clear();
  for (uint16_t i = 0; i < n; ++i) {
    rte_mbuf* m = pkts[i];
    copy_hint_ = static_cast<uint16_t>(n - i);
    if (queue_->broken()) {
      Drop(DropReason::kBrokenQueue);
      release(m);
      continue;
    }
    const GuestBuffer* g = m->pool == mp ? pool->GuestBufferOf(m) : nullptr;
    CopyReason why = m->pool != mp      ? CopyReason::kForeign
                     : order_probation_ ? CopyReason::kOrderUnproven
                                        : CopyReason::kHostBuffer;
    if (g != nullptr) {
      uint8_t* data = rte_pktmbuf_mtod(m, uint8_t*);
      uint8_t* start = g->addr + hdr_len_;
      if (g->generation != config_.generation) {
        why = CopyReason::kStaleSession;
      } else if (m->nb_segs != 1) {
        why = CopyReason::kMultiSegment;
      } else if (rte_mbuf_refcnt_read(m) != 1 || !RTE_MBUF_DIRECT(m)) {
        why = CopyReason::kShared;
      } else if (data < start || data + m->data_len > g->addr + g->len) {
        why = CopyReason::kLayout;
      } else {
        VirtioNetHdr hdr;
        if (virtio::FillRxHeader(m, config_.features, &hdr) != virtio::RxHeaderStatus::kOk) {
          Drop(DropReason::kOffload);
          release(m);  // its buffer stays parked for the NIC
          continue;
        }
        // The switch may have trimmed the front (e.g. a VLAN pop): the guest
        // expects the frame right after the header.
        if (data != start) std::memmove(start, data, m->data_len);
        hdr.num_buffers = 1;
        // The header usually holds these bytes already, from the buffer's
        // previous frame (neither the NIC nor the guest writes there): then
        // leave the line alone, the guest's core may hold it, and a store
        // would pull it over. A guest that changes its own header between
        // this read and the used entry only confuses itself.
        if (!SameBytes(g->addr, &hdr, hdr_len_)) std::memcpy(g->addr, &hdr, hdr_len_);
        used_.push_back(UsedBuffer{g->id, static_cast<uint32_t>(hdr_len_ + m->data_len)});
        zc_bytes += m->data_len;
        ++zc;
        in_place[nin] = m;
        in_place_buf[nin++] = g;
        if (nin == kFreeBurst) {
          pool->FreeDelivered(in_place, in_place_buf, nin);
          nin = 0;
        }
        continue;
      }
    }
    if (CopyOne(m, &used_)) {
      ++stats_.copied;
      ++stats_.copies[static_cast<int>(why)];
      ++delivered;
    }
    release(m);
  }
  stats_.zero_copy += zc;
  stats_.bytes += zc_bytes;
  delivered = static_cast<uint16_t>(delivered + zc);
  if (!used_.empty()) queue_->Return(used_);
  if (cursors != nullptr) *cursors = queue_->cursors();
  rte_spinlock_unlock(&lock_);
  if (nin > 0) pool->FreeDelivered(in_place, in_place_buf, nin);
  if (ndone > 0) rte_pktmbuf_free_bulk(done, ndone);
  return delivered;
}

bool GuestRxQueue::NotifyDue() {
  rte_spinlock_lock(&lock_);
  const bool due = queue_->NotifyDue();
  rte_spinlock_unlock(&lock_);
  return due;
}

uint16_t GuestRxQueue::ReturnUnused(const GuestBuffer* buffers, uint16_t n) {
  rte_spinlock_lock(&lock_);
  used_.clear();
  for (uint16_t i = 0; i < n; ++i) used_.push_back(UsedBuffer{buffers[i].id, 0});
  DescChain c;
  while (TakeKept(&c)) used_.push_back(UsedBuffer{c.id, 0});
  const uint16_t returned = queue_->Return(used_);
  stats_.returned_empty += returned;
  rte_spinlock_unlock(&lock_);
  return returned;
}

virtio::QueueCursors GuestRxQueue::cursors() const {
  rte_spinlock_lock(&lock_);
  const virtio::QueueCursors c = queue_->cursors();
  rte_spinlock_unlock(&lock_);
  return c;
}

bool GuestRxQueue::broken() const { return queue_->broken(); }

bool GuestRxQueue::order_probation() const {
  rte_spinlock_lock(&lock_);
  const bool p = order_probation_;
  rte_spinlock_unlock(&lock_);
  return p;
}

GuestRxStats GuestRxQueue::stats() const {
  rte_spinlock_lock(&lock_);
  const GuestRxStats s = stats_;
  rte_spinlock_unlock(&lock_);
  return s;
}

}  // namespace iovtee
