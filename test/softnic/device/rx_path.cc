// The Rx datapath: frames from the wire into the driver's posted buffers.
//
// Per burst: one link check, one queue handshake pass, one table refresh;
// per frame: classify, translate (the IOMMU's last hit answers almost always),
// copy, write the descriptor with DD last. Heads and counters go to the
// register page once per burst.
#include <algorithm>
#include <cstring>

#include "test/softnic/device/device.h"

namespace iovtee::softnic {
namespace {

using simnic::RxDesc;

constexpr uint16_t kEtherTypeVlan = 0x8100;

inline uint16_t LoadBe16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }

// Copies bytes [off, off + n) of the frame as delivered: with a stripped tag,
// output bytes from 12 on come from 4 bytes further in the input.
inline void CopyOut(uint8_t* dst, const uint8_t* frame, uint32_t off, uint32_t n, bool strip) {
  if (strip && off < 12) {
    uint32_t first = std::min(n, 12 - off);
    memcpy(dst, frame + off, first);
    dst += first;
    off += first;
    n -= first;
  }
  memcpy(dst, frame + off + (strip ? 4 : 0), n);
}

inline void WriteRxDesc(RxDesc* d, uint16_t pkt_len, uint32_t hash, uint16_t tci, uint16_t error,
                        uint16_t status) {
  d->rss_hash = hash;
  d->pkt_len = pkt_len;
  d->vlan_tci = tci;
  d->error = error;
  // DD last: the driver reads status with acquire, then the rest.
  __atomic_store_n(&d->status, status, __ATOMIC_RELEASE);
}

}  // namespace

size_t Device::Receive(absl::Span<const Frame> frames) {
  if (frames.empty()) return 0;
  if (regs_ == nullptr || in_rx_burst_) {
    stats_.rx_no_port += frames.size();
    return 0;
  }
  in_rx_burst_ = true;
  size_t delivered = 0;
  if (__atomic_load_n(&regs_->link_up, __ATOMIC_RELAXED) == 0) {
    stats_.device.rx_link_down += frames.size();
    device_counters_dirty_ = true;
  } else {
    uint32_t nq =
        std::min<uint32_t>(__atomic_load_n(&regs_->num_rxq, __ATOMIC_RELAXED), simnic::kMaxQueues);
    SyncRxQueues(nq);
    steering_.Refresh(regs_);
    for (size_t i = 0; i < frames.size(); ++i) {
      if (i + 1 < frames.size()) __builtin_prefetch(frames[i + 1].data);
      const Frame& f = frames[i];
      SteerResult r = steering_.Classify(f.data, f.len);
      if (__builtin_expect(r.verdict != SteerVerdict::kAccept, 0)) {
        ++(r.verdict == SteerVerdict::kRunt ? stats_.rx_runt : stats_.rx_filtered);
        continue;
      }
      if (__builtin_expect(r.queue >= nq || !rxq_[r.queue].state.active, 0)) {
        ++stats_.device.rx_no_queue;
        device_counters_dirty_ = true;
        continue;
      }
      delivered += DeliverRx(rxq_[r.queue], r.queue, f, r);
    }
  }
  PublishCounters();
  in_rx_burst_ = false;
  return delivered;
}

// Descriptors the device owns right now, re-reading the tail only when the
// cached one is used up (the tail is the driver's cache line).
uint32_t Device::RxAvailable(RxQueueState& s) {
  uint32_t avail = s.tail - s.head;
  if (avail != 0) return avail;
  s.tail = __atomic_load_n(&s.regs->tail, __ATOMIC_ACQUIRE);
  avail = s.tail - s.head;
  if (__builtin_expect(avail > s.mask + 1, 0)) {
    // A tail more than a ring ahead (or behind) of head is a driver bug; use
    // what a full ring can hold rather than walking stale descriptors twice.
    ++stats_.ring_errors;
    avail = s.mask + 1;
    s.tail = s.head + avail;
  }
  return avail;
}

// Inlined into Receive's loop: what a frame costs there is mostly this.
__attribute__((always_inline)) inline bool Device::DeliverRx(RxQueueState& s, int q, const Frame& f,
                                                             const SteerResult& r) {
  simnic::QueueCounters& c = stats_.rx[q];
  rx_touched_ |= 1u << q;
  if (RxAvailable(s) == 0) {
    ++c.missed;
    return false;
  }
  bool strip = s.vlan_strip && f.len >= 18 && LoadBe16(f.data + 12) == kEtherTypeVlan;
  uint16_t tci = strip ? LoadBe16(f.data + 14) : 0;
  uint32_t out_len = strip ? f.len - 4 : f.len;
  uint16_t flags = (strip ? simnic::kRxVlanStripped : 0) | (r.hash_valid ? simnic::kRxRssValid : 0);

  RxDesc* d = &s.ring[s.head & s.mask];
  __builtin_prefetch(&s.ring[(s.head + 4) & s.mask], 1);
  // Read the descriptor once: a driver rewriting it under us cannot make the
  // translated range and the written range differ.
  uint64_t addr = d->addr;
  uint32_t cap = s.per_desc_len ? std::min<uint32_t>(d->buf_len, UINT16_MAX) : s.buf_len;
  if (__builtin_expect(out_len <= cap && out_len <= simnic::kMaxFrame, 1)) {
    uint8_t* dst = iommu_.Translate(addr, out_len);
    if (__builtin_expect(dst == nullptr, 0)) {
      LogFault("rx", q, addr, out_len);
      CompleteRxError(s, q, 1, simnic::kErrIommuFault);
      return false;
    }
    CopyOut(dst, f.data, 0, out_len, strip);
    WriteRxDesc(d, static_cast<uint16_t>(out_len), r.hash, tci, simnic::kErrNone,
                simnic::kRxDone | simnic::kRxEop | flags);
    ++s.head;
    ++c.packets;
    c.bytes += out_len;
    return true;
  }
  if (!s.scatter || out_len > simnic::kMaxFrame) {
    ++stats_.device.rx_oversize;
    device_counters_dirty_ = true;
    CompleteRxError(s, q, 1, simnic::kErrTooBig);
    return false;
  }
  return DeliverRxScattered(s, q, f, r, out_len, flags, tci, strip);
}

// A frame over several descriptors. Every piece is translated before any
// byte is written, so a fault leaves all buffers untouched; a frame that
// needs more descriptors than are posted is missed without consuming any.
bool Device::DeliverRxScattered(RxQueueState& s, int q, const Frame& f, const SteerResult& r,
                                uint32_t out_len, uint16_t flags, uint16_t tci, bool strip) {
  simnic::QueueCounters& c = stats_.rx[q];
  struct Piece {
    RxDesc* desc;
    uint8_t* dst;
    uint32_t len;
  };
  Piece pieces[kMaxRxSegments];
  uint32_t n = 0;
  uint32_t remaining = out_len;
  while (remaining != 0) {
    if (n == kMaxRxSegments) {
      ++stats_.device.rx_oversize;
      device_counters_dirty_ = true;
      CompleteRxError(s, q, 1, simnic::kErrTooBig);
      return false;
    }
    if (n == s.tail - s.head) {
      s.tail = __atomic_load_n(&s.regs->tail, __ATOMIC_ACQUIRE);
      uint32_t avail = std::min(s.tail - s.head, s.mask + 1);
      if (n >= avail) {
        ++c.missed;
        return false;
      }
    }
    RxDesc* d = &s.ring[(s.head + n) & s.mask];
    uint64_t addr = d->addr;
    uint32_t cap = s.per_desc_len ? std::min<uint32_t>(d->buf_len, UINT16_MAX) : s.buf_len;
    uint32_t len = std::min(remaining, cap);
    if (len == 0) {  // a zero-length descriptor can never take a byte
      ++stats_.device.rx_oversize;
      device_counters_dirty_ = true;
      CompleteRxError(s, q, n + 1, simnic::kErrTooBig);
      return false;
    }
    uint8_t* dst = iommu_.Translate(addr, len);
    if (dst == nullptr) {
      LogFault("rx", q, addr, len);
      // The descriptors up to the faulting one are consumed, each as its own
      // errored unit, so the driver's in-order completion stays simple.
      CompleteRxError(s, q, n + 1, simnic::kErrIommuFault);
      return false;
    }
    pieces[n++] = Piece{d, dst, len};
    remaining -= len;
  }
  uint32_t off = 0;
  for (uint32_t i = 0; i < n; ++i) {
    CopyOut(pieces[i].dst, f.data, off, pieces[i].len, strip);
    off += pieces[i].len;
    uint16_t status = simnic::kRxDone | flags | (i + 1 == n ? simnic::kRxEop : 0);
    WriteRxDesc(pieces[i].desc, static_cast<uint16_t>(pieces[i].len), r.hash, tci, simnic::kErrNone,
                status);
  }
  s.head += n;
  ++c.packets;
  c.bytes += out_len;
  return true;
}

// Completes `count` descriptors from head, each as a one-descriptor unit
// (kRxError | kRxEop) carrying `error` and no data; the frame counts once.
void Device::CompleteRxError(RxQueueState& s, int q, uint32_t count, uint16_t error) {
  for (uint32_t i = 0; i < count; ++i) {
    WriteRxDesc(&s.ring[(s.head + i) & s.mask], 0, 0, 0, error,
                simnic::kRxDone | simnic::kRxEop | simnic::kRxError);
  }
  s.head += count;
  ++stats_.rx[q].errors;
}

}  // namespace iovtee::softnic
