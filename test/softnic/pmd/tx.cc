// Tx queues: setup, start/stop handshakes, and the scalar burst function:
// reclaim what the device completed, one descriptor per segment, one doorbell
// per burst. A segment is freed only after the device marked it done.
#include <cerrno>
#include <cstring>

#include <rte_malloc.h>

#include "test/softnic/pmd/port.h"
#include "test/softnic/pmd/simnic_log.h"

namespace iovtee::simnic {
namespace {

// Frees the segments of every descriptor the device has completed, oldest
// first; stops at the first it still owns.
inline void Reclaim(TxQueue* q) {
  uint32_t clean = q->clean;
  uint64_t errors = 0;
  while (clean != q->tail) {
    const uint32_t idx = clean & q->mask;
    // Acquire: the device has finished reading the buffer.
    const uint16_t status = __atomic_load_n(&q->ring[idx].status, __ATOMIC_ACQUIRE);
    if (!(status & (kTxDone | kTxError))) break;
    if (unlikely(status & kTxError)) ++errors;
    rte_pktmbuf_free_seg(q->sw_ring[idx]);
    q->sw_ring[idx] = nullptr;
    ++clean;
  }
  q->clean = clean;
  if (errors != 0) CounterAdd(&q->errors, errors);
}

TxQueue* GetTxQueue(rte_eth_dev* dev, uint16_t qid) {
  return qid < dev->data->nb_tx_queues ? static_cast<TxQueue*>(dev->data->tx_queues[qid]) : nullptr;
}

}  // namespace

uint16_t TxBurst(void* txq, rte_mbuf** pkts, uint16_t nb_pkts) {
  TxQueue* q = static_cast<TxQueue*>(txq);
  if (unlikely(!LoadRelaxed(&q->started))) return 0;
  const uint32_t size = q->mask + 1;
  if (size - (q->tail - q->clean) < q->free_thresh) Reclaim(q);

  uint32_t tail = q->tail;
  uint16_t sent = 0;
  uint64_t bytes = 0;
  uint64_t dropped = 0;
  for (; sent < nb_pkts; ++sent) {
    rte_mbuf* m = pkts[sent];
    if (unlikely(m->nb_segs > size)) {
      // Could never fit: dropping it keeps the queue from stalling on it.
      rte_pktmbuf_free(m);
      ++dropped;
      continue;
    }
    if (size - (tail - q->clean) < m->nb_segs) {
      q->tail = tail;
      Reclaim(q);
      if (size - (tail - q->clean) < m->nb_segs) break;
    }
    bytes += m->pkt_len;
    for (rte_mbuf* seg = m; seg != nullptr; seg = seg->next) {
      const uint32_t idx = tail & q->mask;
      TxDesc* d = &q->ring[idx];
      d->addr = rte_mbuf_data_iova(seg);
      d->len = seg->data_len;
      d->flags = seg->next == nullptr ? kTxEop : 0;
      d->error = 0;
      StoreRelaxed(&d->status, uint16_t{0});
      q->sw_ring[idx] = seg;
      ++tail;
    }
  }
  if (tail != q->tail || sent != 0) {
    q->tail = tail;
    // Release: descriptors before the doorbell.
    __atomic_store_n(&q->regs->tail, tail, __ATOMIC_RELEASE);
  }
  const uint64_t queued = sent - dropped;
  if (queued != 0) {
    CounterAdd(&q->packets, queued);
    CounterAdd(&q->bytes, bytes);
  }
  if (dropped != 0) CounterAdd(&q->errors, dropped);
  return sent;
}

int TxQueueSetup(rte_eth_dev* dev, uint16_t qid, uint16_t nb_desc, unsigned socket_id,
                 const rte_eth_txconf* conf) {
  Port* port = GetPort(dev);
  if (qid >= kMaxQueues) return -EINVAL;
  if (!rte_is_power_of_2(nb_desc) || nb_desc < kMinRingSize || nb_desc > kMaxRingSize) {
    SIMNIC_LOG(ERR, "%s: tx queue %u: %u descriptors; need a power of two in [%u, %u]",
               port->name.c_str(), qid, nb_desc, kMinRingSize, kMaxRingSize);
    return -EINVAL;
  }
  const uint16_t thresh = conf->tx_free_thresh != 0 ? conf->tx_free_thresh : kDefaultFreeThresh;
  if (thresh >= nb_desc) {
    SIMNIC_LOG(ERR, "%s: tx queue %u: tx_free_thresh %u must be below the ring size %u",
               port->name.c_str(), qid, thresh, nb_desc);
    return -EINVAL;
  }
  auto* q = static_cast<TxQueue*>(
      rte_zmalloc_socket("simnic_txq", sizeof(TxQueue), RTE_CACHE_LINE_SIZE, socket_id));
  auto* sw_ring = static_cast<rte_mbuf**>(rte_zmalloc_socket(
      "simnic_tx_sw_ring", sizeof(rte_mbuf*) * nb_desc, RTE_CACHE_LINE_SIZE, socket_id));
  if (q == nullptr || sw_ring == nullptr) {
    rte_free(q);
    rte_free(sw_ring);
    SIMNIC_LOG(ERR, "%s: tx queue %u: out of memory", port->name.c_str(), qid);
    return -ENOMEM;
  }
  q->ring = reinterpret_cast<TxDesc*>(port->ring_mem(TxRingOffset(qid)));
  q->sw_ring = sw_ring;
  q->regs = &port->regs->txq[qid];
  q->mask = nb_desc - 1;
  q->free_thresh = thresh;
  q->ring_size = nb_desc;
  q->queue_id = qid;
  q->deferred_start = conf->tx_deferred_start != 0;
  q->offloads = conf->offloads | dev->data->dev_conf.txmode.offloads;
  dev->data->tx_queues[qid] = q;
  return 0;
}

void TxQueueDrop(TxQueue* q) {
  for (uint32_t i = 0; i < q->ring_size; ++i) {
    if (q->sw_ring[i] != nullptr) rte_pktmbuf_free_seg(q->sw_ring[i]);
    q->sw_ring[i] = nullptr;
  }
  q->clean = q->tail = 0;
  StoreRelaxed(&q->started, false);
}

void TxQueueAbandon(Port* port, TxQueue* q) {
  uint32_t pending = 0;
  for (uint32_t i = 0; i < q->ring_size; ++i) {
    pending += q->sw_ring[i] != nullptr;
    q->sw_ring[i] = nullptr;
  }
  if (pending != 0) {
    SIMNIC_LOG(ERR, "%s: tx queue %u: %u mbufs left to an unresponsive device (leaked)",
               port->name.c_str(), q->queue_id, pending);
  }
  StoreRelaxed(&q->started, false);
}

void TxQueueRelease(rte_eth_dev* dev, uint16_t qid) {
  auto* q = static_cast<TxQueue*>(dev->data->tx_queues[qid]);
  if (q == nullptr) return;
  if (!q->started || DisableQueue(q->regs, GetPort(dev)->args.ack_timeout_ms) == 0) {
    TxQueueDrop(q);
  } else {
    SIMNIC_LOG(ERR, "%s: tx queue %u released while the device may still read it: %u mbufs leaked",
               GetPort(dev)->name.c_str(), qid, q->tail - q->clean);
  }
  rte_free(q->sw_ring);
  rte_free(q);
  dev->data->tx_queues[qid] = nullptr;
}

int TxQueueStart(rte_eth_dev* dev, uint16_t qid) {
  TxQueue* q = GetTxQueue(dev, qid);
  if (q == nullptr) return -EINVAL;
  if (q->started) return 0;
  std::memset(q->ring, 0, RingBytes(q->ring_size));
  q->clean = q->tail = 0;
  QueueRegs* r = q->regs;
  StoreRelaxed(&r->ring_offset, static_cast<uint32_t>(TxRingOffset(qid)));
  StoreRelaxed(&r->ring_size, q->ring_size);
  StoreRelaxed(&r->buf_len, 0u);
  StoreRelaxed(&r->per_desc_len, 0u);
  StoreRelaxed(&r->scatter, 0u);
  StoreRelaxed(&r->vlan_strip, 0u);
  StoreRelaxed(&r->tail, 0u);
  EnableQueue(r);
  StoreRelaxed(&q->started, true);
  dev->data->tx_queue_state[qid] = RTE_ETH_QUEUE_STATE_STARTED;
  return 0;
}

int TxQueueStop(rte_eth_dev* dev, uint16_t qid) {
  Port* port = GetPort(dev);
  TxQueue* q = GetTxQueue(dev, qid);
  if (q == nullptr) return -EINVAL;
  if (q->started) {
    const int r = DisableQueue(q->regs, port->args.ack_timeout_ms);
    if (r != 0) {
      SIMNIC_LOG(ERR, "%s: tx queue %u: the device did not acknowledge the stop within %d ms",
                 port->name.c_str(), qid, port->args.ack_timeout_ms);
      return r;
    }
  }
  // Sent or not, every pending frame goes back: the device will not read it.
  TxQueueDrop(q);
  dev->data->tx_queue_state[qid] = RTE_ETH_QUEUE_STATE_STOPPED;
  return 0;
}

void TxQueueInfo(rte_eth_dev* dev, uint16_t qid, rte_eth_txq_info* info) {
  const TxQueue* q = GetTxQueue(dev, qid);
  if (q == nullptr) return;
  info->nb_desc = static_cast<uint16_t>(q->ring_size);
  info->conf.tx_free_thresh = q->free_thresh;
  info->conf.tx_deferred_start = q->deferred_start;
  info->conf.offloads = q->offloads;
}

}  // namespace iovtee::simnic
