// Rx queues: setup, start (fill the whole ring), stop (handshake, then every
// posted mbuf back to its pool), and the scalar burst function, shaped like
// ixgbe's: DD bit read with acquire, refill in all-or-nothing bursts.
#include <cerrno>
#include <cinttypes>
#include <cstring>

#include <rte_malloc.h>
#include <rte_prefetch.h>

#include "test/softnic/pmd/port.h"
#include "test/softnic/pmd/simnic_log.h"

namespace iovtee::simnic {
namespace {

// Hands `m` to the device at descriptor `d`.
inline void PostRx(const RxQueue* q, RxDesc* d, rte_mbuf* m) {
  uint32_t room;
  if (q->fixed_len) {
    // Intel: the frame at buf_iova + headroom, at most the queue's size.
    m->data_off = RTE_PKTMBUF_HEADROOM;
    room = q->buf_len;
  } else {
    // virtio: each buffer's own length (the standard headroom left free).
    m->data_off = RTE_MIN(static_cast<uint16_t>(RTE_PKTMBUF_HEADROOM), m->buf_len);
    room = m->buf_len - m->data_off;
  }
  m->nb_segs = 1;
  m->next = nullptr;
  d->addr = m->buf_iova + m->data_off;
  d->buf_len = room;
  d->rss_hash = 0;
  d->pkt_len = 0;
  d->vlan_tci = 0;
  d->error = 0;
  StoreRelaxed(&d->status, uint16_t{0});
}

// Posts fresh mbufs on every free descriptor, free_thresh at a time; a burst
// the pool cannot serve whole is counted and retried on the next call.
inline void Refill(RxQueue* q) {
  const uint32_t size = q->mask + 1;
  uint32_t tail = q->tail;
  bool posted = false;
  while (size - (tail - q->next) >= q->free_thresh) {
    rte_mbuf* bufs[kMaxFreeThresh];
    if (unlikely(rte_mempool_get_bulk(q->mp, reinterpret_cast<void**>(bufs), q->free_thresh) !=
                 0)) {
      CounterAdd(&q->nombuf, q->free_thresh);
      break;
    }
    for (uint16_t i = 0; i < q->free_thresh; ++i) {
      const uint32_t idx = (tail + i) & q->mask;
      q->sw_ring[idx] = bufs[i];
      PostRx(q, &q->ring[idx], bufs[i]);
    }
    tail += q->free_thresh;
    posted = true;
  }
  if (posted) {
    q->tail = tail;
    // Release: the descriptors are written before the device may read them.
    __atomic_store_n(&q->regs->tail, tail, __ATOMIC_RELEASE);
  }
}

RxQueue* GetRxQueue(rte_eth_dev* dev, uint16_t qid) {
  return qid < dev->data->nb_rx_queues ? static_cast<RxQueue*>(dev->data->rx_queues[qid]) : nullptr;
}

}  // namespace

uint16_t RxBurst(void* rxq, rte_mbuf** pkts, uint16_t nb_pkts) {
  RxQueue* q = static_cast<RxQueue*>(rxq);
  uint32_t next = q->next;
  const uint32_t tail = q->tail;
  rte_mbuf* first = q->first_seg;
  rte_mbuf* last = q->last_seg;
  uint16_t nb_rx = 0;
  uint64_t bytes = 0;
  uint64_t errors = 0;

  while (nb_rx < nb_pkts && next != tail) {
    const uint32_t idx = next & q->mask;
    RxDesc* d = &q->ring[idx];
    // Acquire: the device writes the other fields and the buffer first.
    const uint16_t status = __atomic_load_n(&d->status, __ATOMIC_ACQUIRE);
    if (!(status & kRxDone)) break;
    rte_mbuf* m = q->sw_ring[idx];
    q->sw_ring[idx] = nullptr;
    ++next;
    rte_prefetch0(q->sw_ring[next & q->mask]);

    if (unlikely(status & kRxError)) {
      // Nothing was written (an IOMMU fault, a frame too big): the buffer
      // and any frame it belonged to go back.
      rte_pktmbuf_free_seg(m);
      if (first != nullptr) rte_pktmbuf_free(first);
      first = last = nullptr;
      ++errors;
      continue;
    }

    const uint16_t len = d->pkt_len;
    m->data_len = len;
    m->pkt_len = len;
    if (first == nullptr) {
      first = m;
    } else {
      first->pkt_len += len;
      ++first->nb_segs;
      last->next = m;
    }
    last = m;
    if (!(status & kRxEop)) continue;  // scatter: more buffers follow

    // The last descriptor of a frame carries its offload results.
    uint64_t flags = first->ol_flags & RTE_MBUF_F_EXTERNAL;
    if (q->rss_hash && (status & kRxRssValid)) {
      first->hash.rss = d->rss_hash;
      flags |= RTE_MBUF_F_RX_RSS_HASH;
    }
    if (status & kRxVlanStripped) {
      first->vlan_tci = d->vlan_tci;
      flags |= RTE_MBUF_F_RX_VLAN | RTE_MBUF_F_RX_VLAN_STRIPPED;
    } else {
      first->vlan_tci = 0;
    }
    first->ol_flags = flags;
    first->port = q->port_id;
    first->packet_type = RTE_PTYPE_L2_ETHER;
    bytes += first->pkt_len;
    pkts[nb_rx++] = first;
    first = last = nullptr;
  }

  q->next = next;
  q->first_seg = first;
  q->last_seg = last;
  if (nb_rx != 0) {
    CounterAdd(&q->packets, nb_rx);
    CounterAdd(&q->bytes, bytes);
  }
  if (errors != 0) CounterAdd(&q->errors, errors);
  Refill(q);
  return nb_rx;
}

int RxQueueSetup(rte_eth_dev* dev, uint16_t qid, uint16_t nb_desc, unsigned socket_id,
                 const rte_eth_rxconf* conf, rte_mempool* mp) {
  Port* port = GetPort(dev);
  if (qid >= kMaxQueues) return -EINVAL;
  if (!rte_is_power_of_2(nb_desc) || nb_desc < kMinRingSize || nb_desc > kMaxRingSize) {
    SIMNIC_LOG(ERR, "%s: rx queue %u: %u descriptors; need a power of two in [%u, %u]",
               port->name.c_str(), qid, nb_desc, kMinRingSize, kMaxRingSize);
    return -EINVAL;
  }
  const uint16_t thresh = conf->rx_free_thresh != 0 ? conf->rx_free_thresh : kDefaultFreeThresh;
  if (thresh > kMaxFreeThresh || thresh > nb_desc / 2) {
    SIMNIC_LOG(ERR, "%s: rx queue %u: rx_free_thresh %u; need at most %u and half the ring",
               port->name.c_str(), qid, thresh, kMaxFreeThresh);
    return -EINVAL;
  }
  const uint16_t data_room = rte_pktmbuf_data_room_size(mp);
  const bool fixed = port->rx_buffers() == RxBufferMode::kFixed;
  if (fixed && data_room < RTE_PKTMBUF_HEADROOM + kMinRxBufSize) {
    SIMNIC_LOG(ERR, "%s: rx queue %u: mempool %s has a data room of %u bytes; need %u",
               port->name.c_str(), qid, mp->name, data_room, RTE_PKTMBUF_HEADROOM + kMinRxBufSize);
    return -EINVAL;
  }

  auto* q = static_cast<RxQueue*>(
      rte_zmalloc_socket("simnic_rxq", sizeof(RxQueue), RTE_CACHE_LINE_SIZE, socket_id));
  auto* sw_ring = static_cast<rte_mbuf**>(rte_zmalloc_socket(
      "simnic_rx_sw_ring", sizeof(rte_mbuf*) * nb_desc, RTE_CACHE_LINE_SIZE, socket_id));
  if (q == nullptr || sw_ring == nullptr) {
    rte_free(q);
    rte_free(sw_ring);
    SIMNIC_LOG(ERR, "%s: rx queue %u: out of memory", port->name.c_str(), qid);
    return -ENOMEM;
  }
  q->ring = reinterpret_cast<RxDesc*>(port->ring_mem(RxRingOffset(qid)));
  q->sw_ring = sw_ring;
  q->regs = &port->regs->rxq[qid];
  q->mp = mp;
  q->mask = nb_desc - 1;
  q->free_thresh = thresh;
  q->port_id = dev->data->port_id;
  q->fixed_len = fixed;
  q->buf_len = fixed ? data_room - RTE_PKTMBUF_HEADROOM : 0;
  q->ring_size = nb_desc;
  q->queue_id = qid;
  q->deferred_start = conf->rx_deferred_start != 0;
  q->offloads = conf->offloads | dev->data->dev_conf.rxmode.offloads;
  dev->data->rx_queues[qid] = q;
  return 0;
}

void RxQueueDrop(RxQueue* q) {
  for (uint32_t i = 0; i < q->ring_size; ++i) {
    if (q->sw_ring[i] != nullptr) rte_pktmbuf_free_seg(q->sw_ring[i]);
    q->sw_ring[i] = nullptr;
  }
  if (q->first_seg != nullptr) rte_pktmbuf_free(q->first_seg);
  q->first_seg = q->last_seg = nullptr;
  q->next = q->tail = 0;
  q->started = false;
}

void RxQueueAbandon(Port* port, RxQueue* q) {
  uint32_t posted = 0;
  for (uint32_t i = 0; i < q->ring_size; ++i) {
    posted += q->sw_ring[i] != nullptr;
    q->sw_ring[i] = nullptr;
  }
  if (posted != 0) {
    SIMNIC_LOG(ERR, "%s: rx queue %u: %u mbufs left to an unresponsive device (leaked)",
               port->name.c_str(), q->queue_id, posted);
  }
  if (q->first_seg != nullptr) rte_pktmbuf_free(q->first_seg);  // completed: ours
  q->first_seg = q->last_seg = nullptr;
  q->started = false;
}

void RxQueueRelease(rte_eth_dev* dev, uint16_t qid) {
  auto* q = static_cast<RxQueue*>(dev->data->rx_queues[qid]);
  if (q == nullptr) return;
  if (!q->started || DisableQueue(q->regs, GetPort(dev)->args.ack_timeout_ms) == 0) {
    RxQueueDrop(q);
  } else {
    // The device never confirmed the stop: it may still write into the
    // posted buffers, so they are left to it rather than freed.
    SIMNIC_LOG(ERR, "%s: rx queue %u released while the device may still use it: %u mbufs leaked",
               GetPort(dev)->name.c_str(), qid, q->tail - q->next);
  }
  rte_free(q->sw_ring);
  rte_free(q);
  dev->data->rx_queues[qid] = nullptr;
}

int RxQueueStart(rte_eth_dev* dev, uint16_t qid) {
  Port* port = GetPort(dev);
  RxQueue* q = GetRxQueue(dev, qid);
  if (q == nullptr) return -EINVAL;
  if (q->started) return 0;

  q->scatter = (q->offloads & RTE_ETH_RX_OFFLOAD_SCATTER) != 0;
  if (q->fixed_len && !q->scatter && FrameSizeForMtu(dev->data->mtu) > q->buf_len) {
    // As ixgbe and i40e do: frames the MTU allows but one buffer cannot hold
    // are received in several.
    SIMNIC_LOG(INFO, "%s: rx queue %u: MTU %u frames exceed the %u-byte buffers: scatter on",
               port->name.c_str(), qid, dev->data->mtu, q->buf_len);
    q->scatter = true;
  }
  if (q->scatter) dev->data->scattered_rx = 1;
  q->rss_hash = (q->offloads & RTE_ETH_RX_OFFLOAD_RSS_HASH) != 0;
  q->vlan_strip = (q->offloads & RTE_ETH_RX_OFFLOAD_VLAN_STRIP) != 0;

  // The whole ring, or the start fails, as Intel drivers do.
  if (rte_mempool_get_bulk(q->mp, reinterpret_cast<void**>(q->sw_ring), q->ring_size) != 0) {
    SIMNIC_LOG(ERR, "%s: rx queue %u: cannot fill %u descriptors from mempool %s (%u available)",
               port->name.c_str(), qid, q->ring_size, q->mp->name, rte_mempool_avail_count(q->mp));
    std::memset(q->sw_ring, 0, sizeof(rte_mbuf*) * q->ring_size);
    return -ENOMEM;
  }
  std::memset(q->ring, 0, RingBytes(q->ring_size));
  for (uint32_t i = 0; i < q->ring_size; ++i) PostRx(q, &q->ring[i], q->sw_ring[i]);
  q->next = 0;
  q->tail = q->ring_size;
  q->first_seg = q->last_seg = nullptr;

  QueueRegs* r = q->regs;
  StoreRelaxed(&r->ring_offset, static_cast<uint32_t>(RxRingOffset(qid)));
  StoreRelaxed(&r->ring_size, q->ring_size);
  StoreRelaxed(&r->buf_len, q->buf_len);
  StoreRelaxed(&r->per_desc_len, q->fixed_len ? 0u : 1u);
  StoreRelaxed(&r->scatter, q->scatter ? 1u : 0u);
  StoreRelaxed(&r->vlan_strip, q->vlan_strip ? 1u : 0u);
  StoreRelaxed(&r->tail, q->tail);
  EnableQueue(r);
  q->started = true;
  dev->data->rx_queue_state[qid] = RTE_ETH_QUEUE_STATE_STARTED;
  return 0;
}

int RxQueueStop(rte_eth_dev* dev, uint16_t qid) {
  Port* port = GetPort(dev);
  RxQueue* q = GetRxQueue(dev, qid);
  if (q == nullptr) return -EINVAL;
  if (q->started) {
    const int r = DisableQueue(q->regs, port->args.ack_timeout_ms);
    if (r != 0) {
      // Freeing now could let the device write into reused buffers; they
      // stay posted until a later stop succeeds or the port is closed.
      SIMNIC_LOG(ERR, "%s: rx queue %u: the device did not acknowledge the stop within %d ms",
                 port->name.c_str(), qid, port->args.ack_timeout_ms);
      return r;
    }
  }
  RxQueueDrop(q);
  dev->data->rx_queue_state[qid] = RTE_ETH_QUEUE_STATE_STOPPED;
  return 0;
}

void RxQueueInfo(rte_eth_dev* dev, uint16_t qid, rte_eth_rxq_info* info) {
  const RxQueue* q = GetRxQueue(dev, qid);
  if (q == nullptr) return;
  info->mp = q->mp;
  info->scattered_rx = q->scatter;
  info->nb_desc = static_cast<uint16_t>(q->ring_size);
  info->rx_buf_size = q->fixed_len ? static_cast<uint16_t>(q->buf_len) : 0;
  info->conf.rx_free_thresh = q->free_thresh;
  info->conf.rx_deferred_start = q->deferred_start;
  info->conf.offloads = q->offloads;
}

}  // namespace iovtee::simnic
