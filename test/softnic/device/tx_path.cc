// The Tx datapath: frames the driver posted, read by DMA and handed on.
#include <algorithm>
#include <cstring>

#include "test/softnic/device/device.h"

namespace iovtee::softnic {
namespace {

using simnic::TxDesc;

inline void CompleteTx(TxDesc* d, uint16_t error) {
  d->error = error;
  uint16_t status = simnic::kTxDone | (error != simnic::kErrNone ? simnic::kTxError : 0);
  __atomic_store_n(&d->status, status, __ATOMIC_RELEASE);
}

}  // namespace

size_t Device::Transmit(absl::FunctionRef<void(const TxFrame&)> consume) {
  if (regs_ == nullptr || in_tx_burst_) return 0;
  in_tx_burst_ = true;
  uint32_t nq =
      std::min<uint32_t>(__atomic_load_n(&regs_->num_txq, __ATOMIC_RELAXED), simnic::kMaxQueues);
  SyncTxQueues(nq);
  bool link_up = __atomic_load_n(&regs_->link_up, __ATOMIC_RELAXED) != 0;
  size_t delivered = 0;
  for (uint32_t q = 0; q < nq; ++q) {
    // The consumer may have run Receive(), which cannot drop the port, but
    // check anyway: the ring pointers below are into the register memfd.
    if (txq_[q].state.active && regs_ != nullptr) {
      delivered += DrainTx(txq_[q], static_cast<int>(q), link_up, consume);
    }
  }
  PublishCounters();
  in_tx_burst_ = false;
  return delivered;
}

size_t Device::DrainTx(TxQueueState& s, int q, bool link_up,
                       absl::FunctionRef<void(const TxFrame&)> consume) {
  simnic::QueueCounters& c = stats_.tx[q];
  uint32_t size = s.mask + 1;
  uint32_t tail = __atomic_load_n(&s.regs->tail, __ATOMIC_ACQUIRE);
  uint32_t avail = tail - s.head;
  if (avail == 0) return 0;
  if (avail > size) {
    ++stats_.ring_errors;
    avail = size;
  }
  size_t delivered = 0;
  for (uint32_t frames = 0; avail != 0 && frames < options_.tx_burst; ++frames) {
    {
      // The common case: a frame in one descriptor, delivered.
      TxDesc* d = &s.ring[s.head & s.mask];
      const uint64_t addr = d->addr;
      const uint32_t len = d->len;
      if (__builtin_expect(
              (d->flags & simnic::kTxEop) != 0 && len - 1 < simnic::kMaxFrame && link_up, 1)) {
        if (const uint8_t* p = iommu_.Translate(addr, len); __builtin_expect(p != nullptr, 1)) {
          consume(TxFrame{p, len, static_cast<uint16_t>(q)});
          ++c.packets;
          c.bytes += len;
          ++delivered;
          CompleteTx(d, simnic::kErrNone);
          ++s.head;
          --avail;
          __builtin_prefetch(&s.ring[(s.head + 2) & s.mask]);
          continue;
        }
      }
    }
    // Gather one frame: descriptors up to kTxEop. Each is read once.
    uint32_t n = 0;
    uint32_t total = 0;
    uint32_t nseg = 0;
    uint16_t error = simnic::kErrNone;
    bool eop = false;
    while (n < avail) {
      TxDesc* d = &s.ring[(s.head + n) & s.mask];
      uint64_t addr = d->addr;
      uint32_t len = d->len;
      uint16_t flags = d->flags;
      ++n;
      if (error == simnic::kErrNone && len != 0) {
        if (nseg == kMaxTxSegments || len > simnic::kMaxFrame - total) {
          error = simnic::kErrTooBig;
        } else {
          const uint8_t* p = iommu_.Translate(addr, len);
          if (p == nullptr) {
            LogFault("tx", q, addr, len);
            error = simnic::kErrIommuFault;
          } else {
            segments_[nseg++] = Segment{p, len};
            total += len;
          }
        }
      }
      if (flags & simnic::kTxEop) {
        eop = true;
        break;
      }
    }
    if (!eop) {
      // The rest of the frame is not posted yet: leave it for the next call,
      // unless a whole ring holds no end of frame, which cannot complete.
      if (avail < size) break;
      error = simnic::kErrTooBig;
    }
    if (error == simnic::kErrNone && link_up) {
      const uint8_t* data;
      if (nseg == 1) {
        data = segments_[0].data;
      } else {
        uint8_t* out = tx_scratch_.get();
        uint32_t off = 0;
        for (uint32_t i = 0; i < nseg; ++i) {
          memcpy(out + off, segments_[i].data, segments_[i].len);
          off += segments_[i].len;
        }
        data = out;
        if (nseg > 1) ++stats_.tx_gathered;
      }
      consume(TxFrame{data, total, static_cast<uint16_t>(q)});
      ++c.packets;
      c.bytes += total;
      ++delivered;
    } else if (error != simnic::kErrNone) {
      ++c.errors;
    } else {
      ++stats_.tx_link_down;
    }
    for (uint32_t i = 0; i < n; ++i) CompleteTx(&s.ring[(s.head + i) & s.mask], error);
    s.head += n;
    avail -= n;
    __builtin_prefetch(&s.ring[(s.head + 2) & s.mask]);
  }
  // Set after the loop: a consumer that ran Receive() has published (and
  // cleared) the flags once already.
  tx_touched_ |= 1u << q;
  return delivered;
}

}  // namespace iovtee::softnic
