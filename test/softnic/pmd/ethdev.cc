// The net_simnic ethdev: probe/remove, device-level ops, statistics, and the
// vdev driver registration (with dma_map/dma_unmap for external memory).
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <new>

#include <bus_vdev_driver.h>
#include <ethdev_vdev.h>
#include <rte_errno.h>
#include <rte_malloc.h>
#include <rte_memory.h>

#include "test/softnic/pmd/port.h"
#include "test/softnic/pmd/simnic_log.h"

namespace iovtee::simnic {

// Defines g_log_type and registers it at static initialisation.
RTE_LOG_REGISTER(g_log_type, pmd.net.simnic, NOTICE);

namespace {

constexpr uint64_t kRxOffloads =
    RTE_ETH_RX_OFFLOAD_SCATTER | RTE_ETH_RX_OFFLOAD_VLAN_STRIP | RTE_ETH_RX_OFFLOAD_RSS_HASH;
constexpr uint64_t kRxQueueOffloads = RTE_ETH_RX_OFFLOAD_VLAN_STRIP;
constexpr uint64_t kTxOffloads = RTE_ETH_TX_OFFLOAD_MULTI_SEGS;
constexpr uint64_t kRssOffloads = RTE_ETH_RSS_IPV4 | RTE_ETH_RSS_NONFRAG_IPV4_TCP |
                                  RTE_ETH_RSS_NONFRAG_IPV4_UDP | RTE_ETH_RSS_IPV6 |
                                  RTE_ETH_RSS_NONFRAG_IPV6_TCP | RTE_ETH_RSS_NONFRAG_IPV6_UDP;
constexpr uint16_t kMaxMtu = kMaxFrame - RTE_ETHER_HDR_LEN - 4;  // one VLAN tag
constexpr uint16_t kDefaultRingSize = 1024;

// The key Intel NICs default to (also DPDK's rss_intel_key).
constexpr uint8_t kDefaultRssKey[kRssKeySize] = {
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3,
    0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3,
    0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa};

RxQueue* RxQ(rte_eth_dev* dev, uint16_t q) {
  return static_cast<RxQueue*>(dev->data->rx_queues[q]);
}
TxQueue* TxQ(rte_eth_dev* dev, uint16_t q) {
  return static_cast<TxQueue*>(dev->data->tx_queues[q]);
}

// ---------------------------------------------------------------------------
// Configuration

int DevConfigure(rte_eth_dev* dev) {
  Port* port = GetPort(dev);
  rte_eth_conf* conf = &dev->data->dev_conf;
  const uint16_t nb_rx = dev->data->nb_rx_queues;
  const uint16_t nb_tx = dev->data->nb_tx_queues;
  if (nb_rx > kMaxQueues || nb_tx > kMaxQueues) {
    SIMNIC_LOG(ERR, "%s: %u rx / %u tx queues; at most %d each", port->name.c_str(), nb_rx, nb_tx,
               kMaxQueues);
    return -EINVAL;
  }
  const rte_eth_rx_mq_mode mq = conf->rxmode.mq_mode;
  if ((mq & ~RTE_ETH_MQ_RX_RSS_FLAG) != 0) {
    SIMNIC_LOG(ERR, "%s: rx mq_mode %#x: only RSS (or none) is supported", port->name.c_str(), mq);
    return -ENOTSUP;
  }
  if (conf->txmode.mq_mode != RTE_ETH_MQ_TX_NONE) {
    SIMNIC_LOG(ERR, "%s: tx mq_mode %#x is not supported", port->name.c_str(),
               conf->txmode.mq_mode);
    return -ENOTSUP;
  }
  const rte_eth_rss_conf& rss = conf->rx_adv_conf.rss_conf;
  const bool rss_mode = (mq & RTE_ETH_MQ_RX_RSS_FLAG) != 0;
  if (rss_mode && rss.rss_key != nullptr && rss.rss_key_len != kRssKeySize) {
    SIMNIC_LOG(ERR, "%s: RSS key of %u bytes; the key is %d bytes", port->name.c_str(),
               rss.rss_key_len, kRssKeySize);
    return -EINVAL;
  }
  // As Intel drivers do: RSS mode implies delivering the hash.
  if (rss_mode) conf->rxmode.offloads |= RTE_ETH_RX_OFFLOAD_RSS_HASH;

  std::lock_guard<std::mutex> lock(port->table_mu);
  port->rss_hf = rss_mode ? (rss.rss_hf & kRssOffloads) : 0;
  uint16_t reta[kRetaSize];
  for (int i = 0; i < kRetaSize; ++i) reta[i] = nb_rx != 0 ? i % nb_rx : 0;
  WriteRss(port, rss_mode ? rss.rss_key : nullptr, reta, port->rss_hf != 0);
  StoreRelaxed(&port->regs->num_rxq, uint32_t{nb_rx});
  StoreRelaxed(&port->regs->num_txq, uint32_t{nb_tx});
  return 0;
}

int DevInfosGet(rte_eth_dev* dev, rte_eth_dev_info* info) {
  info->max_rx_queues = kMaxQueues;
  info->max_tx_queues = kMaxQueues;
  info->max_rx_pktlen = kMaxFrame;
  info->min_rx_bufsize = kMinRxBufSize;
  info->min_mtu = RTE_ETHER_MIN_MTU;
  info->max_mtu = kMaxMtu;
  info->max_mac_addrs = 1;
  info->rx_offload_capa = kRxOffloads;
  info->rx_queue_offload_capa = kRxQueueOffloads;
  info->tx_offload_capa = kTxOffloads;
  info->tx_queue_offload_capa = 0;
  info->flow_type_rss_offloads = kRssOffloads;
  info->reta_size = kRetaSize;
  info->hash_key_size = kRssKeySize;
  info->rx_desc_lim.nb_max = kMaxRingSize;
  info->rx_desc_lim.nb_min = kMinRingSize;
  info->rx_desc_lim.nb_align = kMinRingSize;  // and a power of two (checked at setup)
  info->tx_desc_lim = info->rx_desc_lim;
  info->tx_desc_lim.nb_seg_max = kMaxRingSize;
  info->tx_desc_lim.nb_mtu_seg_max = 64;  // the device gathers at most 64 segments
  info->default_rxconf.rx_free_thresh = kDefaultFreeThresh;
  info->default_txconf.tx_free_thresh = kDefaultFreeThresh;
  info->default_rxportconf.ring_size = kDefaultRingSize;
  info->default_txportconf.ring_size = kDefaultRingSize;
  info->default_rxportconf.burst_size = 32;
  info->default_txportconf.burst_size = 32;
  info->default_rxportconf.nb_queues = 1;
  info->default_txportconf.nb_queues = 1;
  info->speed_capa = RTE_ETH_LINK_SPEED_100G;
  // Rules live in the device's table across stop/start.
  info->dev_capa = RTE_ETH_DEV_CAPA_FLOW_RULE_KEEP;
  return 0;
}

// ---------------------------------------------------------------------------
// Start / stop / close

int DevStop(rte_eth_dev* dev);

int DevStart(rte_eth_dev* dev) {
  Port* port = GetPort(dev);
  RegisterPage* regs = port->regs;
  StoreRelaxed(&regs->num_rxq, uint32_t{dev->data->nb_rx_queues});
  StoreRelaxed(&regs->num_txq, uint32_t{dev->data->nb_tx_queues});
  StoreRelaxed(&regs->mtu, uint32_t{dev->data->mtu});
  dev->data->scattered_rx = 0;
  int r = 0;
  for (uint16_t q = 0; r == 0 && q < dev->data->nb_rx_queues; ++q) {
    RxQueue* rxq = RxQ(dev, q);
    if (rxq == nullptr) {
      SIMNIC_LOG(ERR, "%s: rx queue %u is not set up", port->name.c_str(), q);
      r = -EINVAL;
    } else if (!rxq->deferred_start) {
      r = RxQueueStart(dev, q);
    }
  }
  for (uint16_t q = 0; r == 0 && q < dev->data->nb_tx_queues; ++q) {
    TxQueue* txq = TxQ(dev, q);
    if (txq == nullptr) {
      SIMNIC_LOG(ERR, "%s: tx queue %u is not set up", port->name.c_str(), q);
      r = -EINVAL;
    } else if (!txq->deferred_start) {
      r = TxQueueStart(dev, q);
    }
  }
  if (r != 0) {
    DevStop(dev);  // every mbuf a started queue took goes back
    return r;
  }
  __atomic_store_n(&regs->link_up, 1u, __ATOMIC_RELEASE);
  return 0;
}

int DevStop(rte_eth_dev* dev) {
  Port* port = GetPort(dev);
  __atomic_store_n(&port->regs->link_up, 0u, __ATOMIC_RELEASE);
  // A queue the device does not release keeps its mbufs (logged); the port
  // still stops, as Intel drivers do, and close frees them after kBye.
  for (uint16_t q = 0; q < dev->data->nb_rx_queues; ++q) {
    if (RxQ(dev, q) != nullptr) RxQueueStop(dev, q);
  }
  for (uint16_t q = 0; q < dev->data->nb_tx_queues; ++q) {
    if (TxQ(dev, q) != nullptr) TxQueueStop(dev, q);
  }
  rte_eth_link link{};
  rte_eth_linkstatus_set(dev, &link);
  return 0;
}

void MemEventCallback(rte_mem_event type, const void* addr, size_t len, void* arg) {
  static_cast<Port*>(arg)->dma->OnMemEvent(type, addr, len);
}

void UnregisterMemCallback(Port* port) {
  if (port->mem_callback_name.empty()) return;
  rte_mem_event_callback_unregister(port->mem_callback_name.c_str(), port);
  port->mem_callback_name.clear();
}

// Sends kBye once. Returns true when the device acknowledged it: from then on
// it touches no ring, no buffer and no mapping of this port.
bool SayBye(Port* port) {
  if (!port->hello_done) return false;
  port->hello_done = false;
  Msg bye{};
  bye.type = MsgType::kBye;
  const int r = port->channel.Request(bye, -1, port->args.ack_timeout_ms);
  if (r != 0) {
    SIMNIC_LOG(ERR, "%s: the device did not acknowledge kBye: %s", port->name.c_str(),
               std::strerror(-r));
  }
  return r == 0;
}

// Undoes whatever of probe's setup is done; safe on a partly set-up port.
void DestroyPort(Port* port) {
  UnregisterMemCallback(port);  // no IOMMU messages after kBye
  SayBye(port);
  port->channel.Close();
  if (port->dma != nullptr) port->dma->Clear();
  if (port->mem != nullptr) munmap(port->mem, kSharedMemSize);
  if (port->memfd >= 0) close(port->memfd);
  delete port;
}

int DevClose(rte_eth_dev* dev) {
  if (rte_eal_process_type() != RTE_PROC_PRIMARY) return 0;
  Port* port = GetPort(dev);
  if (port == nullptr) return 0;
  FlowFlushAll(port);
  UnregisterMemCallback(port);
  // kBye before the queues go: once acknowledged, even queues whose stop the
  // device never confirmed can give their mbufs back. Without it, buffers the
  // device may still write are left to it rather than reused.
  const bool quiesced = SayBye(port);
  for (uint16_t q = 0; q < dev->data->nb_rx_queues; ++q) {
    RxQueue* rxq = RxQ(dev, q);
    if (rxq == nullptr) continue;
    if (quiesced) {
      RxQueueDrop(rxq);
    } else {
      RxQueueAbandon(port, rxq);
    }
    RxQueueRelease(dev, q);
  }
  for (uint16_t q = 0; q < dev->data->nb_tx_queues; ++q) {
    TxQueue* txq = TxQ(dev, q);
    if (txq == nullptr) continue;
    if (quiesced) {
      TxQueueDrop(txq);
    } else {
      TxQueueAbandon(port, txq);
    }
    TxQueueRelease(dev, q);
  }
  DestroyPort(port);
  *static_cast<Port**>(dev->data->dev_private) = nullptr;
  // mac_addrs and dev_private are freed by rte_eth_dev_release_port().
  return 0;
}

// ---------------------------------------------------------------------------
// Link and port settings

int LinkUpdate(rte_eth_dev* dev, int wait_to_complete) {
  Port* port = GetPort(dev);
  rte_eth_link link{};
  const bool up = dev->data->dev_started && LoadRelaxed(&port->regs->link_up) != 0;
  link.link_status = up ? RTE_ETH_LINK_UP : RTE_ETH_LINK_DOWN;
  link.link_speed = up ? kLinkSpeed : RTE_ETH_SPEED_NUM_NONE;
  link.link_duplex = RTE_ETH_LINK_FULL_DUPLEX;
  link.link_autoneg = RTE_ETH_LINK_FIXED;
  return rte_eth_linkstatus_set(dev, &link);
}

int SetLinkUp(rte_eth_dev* dev) {
  __atomic_store_n(&GetPort(dev)->regs->link_up, 1u, __ATOMIC_RELEASE);
  LinkUpdate(dev, 0);
  return 0;
}

int SetLinkDown(rte_eth_dev* dev) {
  __atomic_store_n(&GetPort(dev)->regs->link_up, 0u, __ATOMIC_RELEASE);
  LinkUpdate(dev, 0);
  return 0;
}

int PromiscuousEnable(rte_eth_dev* dev) {
  StoreRelaxed(&GetPort(dev)->regs->promiscuous, uint8_t{1});
  return 0;
}

int PromiscuousDisable(rte_eth_dev* dev) {
  StoreRelaxed(&GetPort(dev)->regs->promiscuous, uint8_t{0});
  return 0;
}

void WriteMac(Port* port, const rte_ether_addr& mac) {
  for (int i = 0; i < RTE_ETHER_ADDR_LEN; ++i) StoreRelaxed(&port->regs->mac[i], mac.addr_bytes[i]);
}

int MacAddrSet(rte_eth_dev* dev, rte_ether_addr* mac) {
  WriteMac(GetPort(dev), *mac);
  return 0;
}

int MtuSet(rte_eth_dev* dev, uint16_t mtu) {
  Port* port = GetPort(dev);
  if (mtu > kMaxMtu) return -EINVAL;
  if (dev->data->dev_started) {
    // Like ixgbe: a running queue cannot switch to scatter.
    for (uint16_t q = 0; q < dev->data->nb_rx_queues; ++q) {
      const RxQueue* rxq = RxQ(dev, q);
      if (rxq != nullptr && rxq->started && rxq->fixed_len && !rxq->scatter &&
          FrameSizeForMtu(mtu) > rxq->buf_len) {
        SIMNIC_LOG(ERR,
                   "%s: MTU %u frames do not fit rx queue %u's %u-byte buffers; stop the "
                   "port or enable scatter",
                   port->name.c_str(), mtu, q, rxq->buf_len);
        return -EINVAL;
      }
    }
  }
  StoreRelaxed(&port->regs->mtu, uint32_t{mtu});
  return 0;
}

// ---------------------------------------------------------------------------
// Statistics. Rx packets/bytes are what rx_burst returned; missed, errors and
// everything on Tx come from the device's counters (relative to the last
// reset); rx_nombuf counts mbufs the refill could not get.

uint64_t Since(const uint64_t* counter, uint64_t base) { return LoadRelaxed(counter) - base; }

int StatsGet(rte_eth_dev* dev, rte_eth_stats* stats) {
  Port* port = GetPort(dev);
  const RegisterPage* regs = port->regs;
  for (uint16_t q = 0; q < dev->data->nb_rx_queues && q < kMaxQueues; ++q) {
    const QueueCounters& c = regs->rx_counters[q];
    const uint64_t missed = Since(&c.missed, port->rx_base[q].missed);
    const uint64_t errors = Since(&c.errors, port->rx_base[q].errors);
    stats->imissed += missed;
    stats->ierrors += errors;
    if (q < RTE_ETHDEV_QUEUE_STAT_CNTRS) stats->q_errors[q] = errors;
    const RxQueue* rxq = RxQ(dev, q);
    if (rxq == nullptr) continue;
    const uint64_t packets = LoadRelaxed(&rxq->packets);
    const uint64_t bytes = LoadRelaxed(&rxq->bytes);
    stats->ipackets += packets;
    stats->ibytes += bytes;
    stats->rx_nombuf += LoadRelaxed(&rxq->nombuf);
    if (q < RTE_ETHDEV_QUEUE_STAT_CNTRS) {
      stats->q_ipackets[q] = packets;
      stats->q_ibytes[q] = bytes;
    }
  }
  stats->imissed += Since(&regs->device.rx_no_queue, port->device_base.rx_no_queue);
  for (uint16_t q = 0; q < dev->data->nb_tx_queues && q < kMaxQueues; ++q) {
    const QueueCounters& c = regs->tx_counters[q];
    const uint64_t packets = Since(&c.packets, port->tx_base[q].packets);
    const uint64_t bytes = Since(&c.bytes, port->tx_base[q].bytes);
    stats->opackets += packets;
    stats->obytes += bytes;
    stats->oerrors += Since(&c.errors, port->tx_base[q].errors);
    const TxQueue* txq = TxQ(dev, q);
    if (txq != nullptr) stats->oerrors += LoadRelaxed(&txq->errors);
    if (q < RTE_ETHDEV_QUEUE_STAT_CNTRS) {
      stats->q_opackets[q] = packets;
      stats->q_obytes[q] = bytes;
    }
  }
  return 0;
}

void SnapshotQueue(QueueCounters* base, const QueueCounters& c) {
  base->packets = LoadRelaxed(&c.packets);
  base->bytes = LoadRelaxed(&c.bytes);
  base->missed = LoadRelaxed(&c.missed);
  base->errors = LoadRelaxed(&c.errors);
}

int StatsReset(rte_eth_dev* dev) {
  Port* port = GetPort(dev);
  const RegisterPage* regs = port->regs;
  for (int q = 0; q < kMaxQueues; ++q) {
    SnapshotQueue(&port->rx_base[q], regs->rx_counters[q]);
    SnapshotQueue(&port->tx_base[q], regs->tx_counters[q]);
  }
  port->device_base.iommu_faults = LoadRelaxed(&regs->device.iommu_faults);
  port->device_base.rx_oversize = LoadRelaxed(&regs->device.rx_oversize);
  port->device_base.rx_no_queue = LoadRelaxed(&regs->device.rx_no_queue);
  port->device_base.rx_link_down = LoadRelaxed(&regs->device.rx_link_down);
  // The polling threads own the driver counters; a reset racing a burst may
  // lose that burst's update, as with Intel's software counters.
  for (uint16_t q = 0; q < dev->data->nb_rx_queues; ++q) {
    if (RxQueue* rxq = RxQ(dev, q)) {
      StoreRelaxed(&rxq->packets, uint64_t{0});
      StoreRelaxed(&rxq->bytes, uint64_t{0});
      StoreRelaxed(&rxq->errors, uint64_t{0});
      StoreRelaxed(&rxq->nombuf, uint64_t{0});
    }
  }
  for (uint16_t q = 0; q < dev->data->nb_tx_queues; ++q) {
    if (TxQueue* txq = TxQ(dev, q)) {
      StoreRelaxed(&txq->packets, uint64_t{0});
      StoreRelaxed(&txq->bytes, uint64_t{0});
      StoreRelaxed(&txq->errors, uint64_t{0});
    }
  }
  return 0;
}

// Extended statistics: the device's port counters, the IOMMU table size, then
// per-queue counters the basic stats do not show.
enum DeviceXstat {
  kXIommuFaults,
  kXRxOversize,
  kXRxNoQueue,
  kXRxLinkDown,
  kXLastFaultIova,
  kXDmaMaps,
  kNumDeviceXstats,
};
constexpr const char* kDeviceXstatNames[kNumDeviceXstats] = {"iommu_faults",    "rx_oversize",
                                                             "rx_no_queue",     "rx_link_down",
                                                             "last_fault_iova", "dma_maps_in_use"};
constexpr const char* kRxQueueXstatNames[] = {"errors", "missed", "nombuf", "error_descs"};
constexpr int kNumRxQueueXstats = 4;
constexpr const char* kTxQueueXstatNames[] = {"errors", "dropped"};
constexpr int kNumTxQueueXstats = 2;

int XstatsCount(const rte_eth_dev* dev) {
  return kNumDeviceXstats + kNumRxQueueXstats * dev->data->nb_rx_queues +
         kNumTxQueueXstats * dev->data->nb_tx_queues;
}

int XstatsGetNames(rte_eth_dev* dev, rte_eth_xstat_name* names, unsigned size) {
  const int n = XstatsCount(dev);
  if (names == nullptr || size < static_cast<unsigned>(n)) return n;
  int i = 0;
  for (const char* name : kDeviceXstatNames) {
    std::snprintf(names[i++].name, RTE_ETH_XSTATS_NAME_SIZE, "%s", name);
  }
  for (uint16_t q = 0; q < dev->data->nb_rx_queues; ++q) {
    for (const char* name : kRxQueueXstatNames) {
      std::snprintf(names[i++].name, RTE_ETH_XSTATS_NAME_SIZE, "rx_q%u_%s", q, name);
    }
  }
  for (uint16_t q = 0; q < dev->data->nb_tx_queues; ++q) {
    for (const char* name : kTxQueueXstatNames) {
      std::snprintf(names[i++].name, RTE_ETH_XSTATS_NAME_SIZE, "tx_q%u_%s", q, name);
    }
  }
  return n;
}

int XstatsGet(rte_eth_dev* dev, rte_eth_xstat* xstats, unsigned n) {
  const int count = XstatsCount(dev);
  if (xstats == nullptr || n < static_cast<unsigned>(count)) return count;
  Port* port = GetPort(dev);
  const RegisterPage* regs = port->regs;
  const DeviceCounters& base = port->device_base;
  uint64_t values[kNumDeviceXstats];
  values[kXIommuFaults] = Since(&regs->device.iommu_faults, base.iommu_faults);
  values[kXRxOversize] = Since(&regs->device.rx_oversize, base.rx_oversize);
  values[kXRxNoQueue] = Since(&regs->device.rx_no_queue, base.rx_no_queue);
  values[kXRxLinkDown] = Since(&regs->device.rx_link_down, base.rx_link_down);
  values[kXLastFaultIova] = LoadRelaxed(&regs->device.last_fault_iova);
  values[kXDmaMaps] = port->dma->size();
  int i = 0;
  auto put = [&](uint64_t v) {
    xstats[i].id = i;
    xstats[i].value = v;
    ++i;
  };
  for (uint64_t v : values) put(v);
  for (uint16_t q = 0; q < dev->data->nb_rx_queues; ++q) {
    const QueueCounters& c = regs->rx_counters[q];
    const RxQueue* rxq = RxQ(dev, q);
    const uint64_t v[kNumRxQueueXstats] = {Since(&c.errors, port->rx_base[q].errors),
                                           Since(&c.missed, port->rx_base[q].missed),
                                           rxq != nullptr ? LoadRelaxed(&rxq->nombuf) : 0,
                                           rxq != nullptr ? LoadRelaxed(&rxq->errors) : 0};
    for (uint64_t x : v) put(x);
  }
  for (uint16_t q = 0; q < dev->data->nb_tx_queues; ++q) {
    const QueueCounters& c = regs->tx_counters[q];
    const TxQueue* txq = TxQ(dev, q);
    const uint64_t v[kNumTxQueueXstats] = {Since(&c.errors, port->tx_base[q].errors),
                                           txq != nullptr ? LoadRelaxed(&txq->errors) : 0};
    for (uint64_t x : v) put(x);
  }
  return count;
}

// ---------------------------------------------------------------------------
// RSS

int RetaUpdate(rte_eth_dev* dev, rte_eth_rss_reta_entry64* conf, uint16_t reta_size) {
  Port* port = GetPort(dev);
  if (reta_size != kRetaSize) {
    SIMNIC_LOG(ERR, "%s: RETA of %u entries; the table has %d", port->name.c_str(), reta_size,
               kRetaSize);
    return -EINVAL;
  }
  std::lock_guard<std::mutex> lock(port->table_mu);
  uint16_t reta[kRetaSize];
  for (int i = 0; i < kRetaSize; ++i) reta[i] = LoadRelaxed(&port->regs->reta[i]);
  for (int i = 0; i < kRetaSize; ++i) {
    const rte_eth_rss_reta_entry64& group = conf[i / RTE_ETH_RETA_GROUP_SIZE];
    const int bit = i % RTE_ETH_RETA_GROUP_SIZE;
    if (!(group.mask & (uint64_t{1} << bit))) continue;
    if (group.reta[bit] >= dev->data->nb_rx_queues) {
      SIMNIC_LOG(ERR, "%s: RETA entry %d names queue %u; %u rx queues are configured",
                 port->name.c_str(), i, group.reta[bit], dev->data->nb_rx_queues);
      return -EINVAL;
    }
    reta[i] = group.reta[bit];
  }
  WriteRss(port, nullptr, reta, port->rss_hf != 0);
  return 0;
}

int RetaQuery(rte_eth_dev* dev, rte_eth_rss_reta_entry64* conf, uint16_t reta_size) {
  Port* port = GetPort(dev);
  if (reta_size != kRetaSize) return -EINVAL;
  std::lock_guard<std::mutex> lock(port->table_mu);
  for (int i = 0; i < kRetaSize; ++i) {
    rte_eth_rss_reta_entry64& group = conf[i / RTE_ETH_RETA_GROUP_SIZE];
    const int bit = i % RTE_ETH_RETA_GROUP_SIZE;
    if (group.mask & (uint64_t{1} << bit)) group.reta[bit] = LoadRelaxed(&port->regs->reta[i]);
  }
  return 0;
}

int RssHashUpdate(rte_eth_dev* dev, rte_eth_rss_conf* conf) {
  Port* port = GetPort(dev);
  if (conf->rss_key != nullptr && conf->rss_key_len != kRssKeySize) {
    SIMNIC_LOG(ERR, "%s: RSS key of %u bytes; the key is %d bytes", port->name.c_str(),
               conf->rss_key_len, kRssKeySize);
    return -EINVAL;
  }
  if ((conf->rss_hf & ~kRssOffloads) != 0) {
    SIMNIC_LOG(
        ERR, "%s: rss_hf %#" PRIx64 " has types this device does not hash (supported %#" PRIx64 ")",
        port->name.c_str(), conf->rss_hf, kRssOffloads);
    return -EINVAL;
  }
  std::lock_guard<std::mutex> lock(port->table_mu);
  port->rss_hf = conf->rss_hf;
  WriteRss(port, conf->rss_key, nullptr, port->rss_hf != 0);
  return 0;
}

int RssHashConfGet(rte_eth_dev* dev, rte_eth_rss_conf* conf) {
  Port* port = GetPort(dev);
  std::lock_guard<std::mutex> lock(port->table_mu);
  if (conf->rss_key != nullptr) {
    if (conf->rss_key_len < kRssKeySize) return -EINVAL;
    for (int i = 0; i < kRssKeySize; ++i) conf->rss_key[i] = LoadRelaxed(&port->regs->rss_key[i]);
    conf->rss_key_len = kRssKeySize;
  }
  conf->rss_hf = port->rss_hf;
  return 0;
}

// ---------------------------------------------------------------------------

// constexpr: the tables are filled at compile time, so no constructor order
// question arises between them and the registration constructors.
constexpr eth_dev_ops MakeOps() {
  eth_dev_ops ops{};
  ops.dev_configure = DevConfigure;
  ops.dev_infos_get = DevInfosGet;
  ops.dev_start = DevStart;
  ops.dev_stop = DevStop;
  ops.dev_close = DevClose;
  ops.dev_set_link_up = SetLinkUp;
  ops.dev_set_link_down = SetLinkDown;
  ops.link_update = LinkUpdate;
  ops.promiscuous_enable = PromiscuousEnable;
  ops.promiscuous_disable = PromiscuousDisable;
  ops.mac_addr_set = MacAddrSet;
  ops.mtu_set = MtuSet;
  ops.stats_get = StatsGet;
  ops.stats_reset = StatsReset;
  ops.xstats_get = XstatsGet;
  ops.xstats_get_names = XstatsGetNames;
  ops.rx_queue_setup = RxQueueSetup;
  ops.rx_queue_release = RxQueueRelease;
  ops.tx_queue_setup = TxQueueSetup;
  ops.tx_queue_release = TxQueueRelease;
  ops.rx_queue_start = RxQueueStart;
  ops.rx_queue_stop = RxQueueStop;
  ops.tx_queue_start = TxQueueStart;
  ops.tx_queue_stop = TxQueueStop;
  ops.rxq_info_get = RxQueueInfo;
  ops.txq_info_get = TxQueueInfo;
  ops.reta_update = RetaUpdate;
  ops.reta_query = RetaQuery;
  ops.rss_hash_update = RssHashUpdate;
  ops.rss_hash_conf_get = RssHashConfGet;
  ops.flow_ops_get = FlowOpsGet;
  return ops;
}

constexpr eth_dev_ops kOps = MakeOps();

// ---------------------------------------------------------------------------
// Probe / remove

// Creates the register memfd, connects, says hello and maps DPDK memory.
// Returns 0 or -errno after logging.
int SetUpPort(Port* port) {
  const std::string memfd_name = "simnic:" + port->name;
  port->memfd = memfd_create(memfd_name.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING);
  // Sealed against shrinking: the device maps it, and a shorter file would
  // turn its accesses into SIGBUS.
  if (port->memfd < 0 || ftruncate(port->memfd, kSharedMemSize) != 0 ||
      fcntl(port->memfd, F_ADD_SEALS, F_SEAL_SHRINK) != 0) {
    const int err = errno;
    SIMNIC_LOG(ERR, "%s: cannot create the %zu-byte register memfd: %s", port->name.c_str(),
               kSharedMemSize, std::strerror(err));
    return -err;
  }
  void* mem = mmap(nullptr, kSharedMemSize, PROT_READ | PROT_WRITE, MAP_SHARED, port->memfd, 0);
  if (mem == MAP_FAILED) {
    const int err = errno;
    SIMNIC_LOG(ERR, "%s: cannot map the register memfd: %s", port->name.c_str(),
               std::strerror(err));
    return -err;
  }
  port->mem = mem;
  port->regs = static_cast<RegisterPage*>(mem);
  RegisterPage* regs = port->regs;
  regs->magic = kMagic;
  regs->abi_version = kAbiVersion;
  regs->mtu = RTE_ETHER_MTU;
  WriteMac(port, port->args.mac);
  for (int q = 0; q < kMaxQueues; ++q) {
    regs->rxq[q].ring_offset = static_cast<uint32_t>(RxRingOffset(q));
    regs->txq[q].ring_offset = static_cast<uint32_t>(TxRingOffset(q));
  }
  uint16_t reta[kRetaSize];
  for (int i = 0; i < kRetaSize; ++i) reta[i] = 0;
  WriteRss(port, kDefaultRssKey, reta, false);

  int r = port->channel.Connect(port->args.socket_path, port->args.connect_timeout_ms);
  if (r != 0) {
    SIMNIC_LOG(ERR, "%s: cannot connect to the device at %s within %d ms: %s", port->name.c_str(),
               port->args.socket_path.c_str(), port->args.connect_timeout_ms, std::strerror(-r));
    return r;
  }
  Msg hello{};
  hello.type = MsgType::kHello;
  hello.len = kSharedMemSize;
  std::snprintf(hello.name, sizeof(hello.name), "%s", port->name.c_str());
  // The device may still be coming up: the connect timeout bounds the hello.
  const int hello_timeout = port->args.connect_timeout_ms > port->args.ack_timeout_ms
                                ? port->args.connect_timeout_ms
                                : port->args.ack_timeout_ms;
  r = port->channel.Request(hello, port->memfd, hello_timeout);
  if (r != 0) {
    SIMNIC_LOG(ERR, "%s: the device at %s did not accept kHello: %s", port->name.c_str(),
               port->args.socket_path.c_str(), std::strerror(-r));
    return r;
  }
  port->hello_done = true;

  port->dma = std::make_unique<DmaMapper>(port->name, &port->channel, port->args.ack_timeout_ms);
  // The callback first, then the walk: memory allocated in between is seen
  // by one or both (DmaMapper maps it once). Dynamic memory mode only; legacy
  // memory (--no-huge, --legacy-mem) never changes after init, which DPDK
  // reports as ENOTSUP.
  char cb_name[RTE_MEM_EVENT_CALLBACK_NAME_LEN];
  std::snprintf(cb_name, sizeof(cb_name), "net_simnic:%s", port->name.c_str());
  if (rte_mem_event_callback_register(cb_name, MemEventCallback, port) == 0) {
    port->mem_callback_name = cb_name;
  } else if (rte_errno != ENOTSUP) {
    SIMNIC_LOG(ERR, "%s: cannot register a memory event callback: %s", port->name.c_str(),
               rte_strerror(rte_errno));
    return -rte_errno;
  }
  return port->dma->MapDpdkMemory();
}

int Probe(rte_vdev_device* vdev) {
  const char* name = rte_vdev_device_name(vdev);
  if (rte_eal_process_type() != RTE_PROC_PRIMARY) {
    SIMNIC_LOG(ERR, "%s: secondary processes are not supported", name);
    return -ENOTSUP;
  }
  auto* port = new (std::nothrow) Port;
  if (port == nullptr) return -ENOMEM;
  port->name = name;
  if (!ParseDevargs(name, rte_vdev_device_args(vdev), &port->args)) {
    delete port;
    return -EINVAL;
  }
  int r = SetUpPort(port);
  if (r != 0) {
    DestroyPort(port);
    return r;
  }
  rte_eth_dev* dev = rte_eth_vdev_allocate(vdev, sizeof(Port*));
  rte_ether_addr* mac = static_cast<rte_ether_addr*>(
      rte_zmalloc_socket(name, sizeof(rte_ether_addr), 0, vdev->device.numa_node));
  if (dev == nullptr || mac == nullptr) {
    SIMNIC_LOG(ERR, "%s: cannot allocate the ethdev", name);
    rte_free(mac);
    if (dev != nullptr) rte_eth_dev_release_port(dev);
    DestroyPort(port);
    return -ENOMEM;
  }
  *mac = port->args.mac;
  port->dev = dev;
  *static_cast<Port**>(dev->data->dev_private) = port;
  dev->data->mac_addrs = mac;
  dev->data->dev_link.link_speed = RTE_ETH_SPEED_NUM_NONE;
  dev->data->dev_link.link_duplex = RTE_ETH_LINK_FULL_DUPLEX;
  dev->data->dev_link.link_autoneg = RTE_ETH_LINK_FIXED;
  dev->data->mtu = RTE_ETHER_MTU;
  dev->dev_ops = &kOps;
  dev->rx_pkt_burst = RxBurst;
  dev->tx_pkt_burst = TxBurst;
  rte_eth_dev_probing_finish(dev);
  char mac_str[RTE_ETHER_ADDR_FMT_SIZE];
  rte_ether_format_addr(mac_str, sizeof(mac_str), mac);
  SIMNIC_LOG(INFO, "%s: port %u attached to %s, mac %s, rx_buffers=%s, %zu DMA mapping(s)", name,
             dev->data->port_id, port->args.socket_path.c_str(), mac_str,
             port->args.rx_buffers == RxBufferMode::kFixed ? "fixed" : "mbuf", port->dma->size());
  return 0;
}

int Remove(rte_vdev_device* vdev) {
  rte_eth_dev* dev = rte_eth_dev_allocated(rte_vdev_device_name(vdev));
  if (dev == nullptr) return 0;  // already closed
  if (dev->data->dev_started) rte_eth_dev_stop(dev->data->port_id);
  return rte_eth_dev_close(dev->data->port_id);
}

Port* PortOf(rte_vdev_device* vdev) {
  rte_eth_dev* dev = rte_eth_dev_allocated(rte_vdev_device_name(vdev));
  return dev != nullptr ? GetPort(dev) : nullptr;
}

int DmaMap(rte_vdev_device* vdev, void* addr, uint64_t iova, size_t len) {
  Port* port = PortOf(vdev);
  const int r = port != nullptr ? port->dma->MapExternal(addr, iova, len) : -ENODEV;
  if (r != 0) rte_errno = -r;
  return r;
}

int DmaUnmap(rte_vdev_device* vdev, void* addr, uint64_t iova, size_t len) {
  Port* port = PortOf(vdev);
  const int r = port != nullptr ? port->dma->UnmapExternal(addr, iova, len) : -ENODEV;
  if (r != 0) rte_errno = -r;
  return r;
}

constexpr rte_vdev_driver MakeDriver() {
  rte_vdev_driver drv{};
  drv.probe = Probe;
  drv.remove = Remove;
  drv.dma_map = DmaMap;
  drv.dma_unmap = DmaUnmap;
  return drv;
}

// Constant-initialised: RTE_PMD_REGISTER_VDEV's constructor fills in the name,
// which a dynamic initialiser running after it would wipe out.
rte_vdev_driver g_simnic_driver = MakeDriver();

}  // namespace

RTE_PMD_REGISTER_VDEV(net_simnic, g_simnic_driver);
RTE_PMD_REGISTER_PARAM_STRING(net_simnic,
                              "socket=<path> "
                              "mac=<xx:xx:xx:xx:xx:xx> "
                              "rx_buffers=fixed|mbuf "
                              "connect_timeout_ms=<int> "
                              "ack_timeout_ms=<int>");

}  // namespace iovtee::simnic
