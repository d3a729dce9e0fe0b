// The net_simnic port: what the driver keeps per ethdev port and per queue,
// and the layout of the shared memfd (register page, then one ring slot per
// queue at a fixed offset).
#ifndef IOVTEE_TEST_SOFTNIC_PMD_PORT_H_
#define IOVTEE_TEST_SOFTNIC_PMD_PORT_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <ethdev_driver.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "test/softnic/pmd/control_channel.h"
#include "test/softnic/pmd/devargs.h"
#include "test/softnic/pmd/dma_mapper.h"
#include "test/softnic/simnic_abi.h"

namespace iovtee::simnic {

// ---------------------------------------------------------------------------
// Shared memfd layout. Every queue has its ring slot whatever its size, so a
// queue can be set up again with another size without moving other rings.

inline constexpr size_t kPageSize = 4096;
inline constexpr size_t kRingBase = (sizeof(RegisterPage) + kPageSize - 1) & ~(kPageSize - 1);
inline constexpr size_t kRingSlot = RingBytes(kMaxRingSize);
inline constexpr size_t RxRingOffset(uint16_t q) { return kRingBase + q * kRingSlot; }
inline constexpr size_t TxRingOffset(uint16_t q) {
  return kRingBase + (kMaxQueues + q) * kRingSlot;
}
inline constexpr size_t kSharedMemSize = kRingBase + 2 * kMaxQueues * kRingSlot;
static_assert(kSharedMemSize <= UINT32_MAX, "ring offsets are 32-bit registers");

inline constexpr uint32_t kMinRingSize = 64;
inline constexpr uint16_t kDefaultFreeThresh = 32;
inline constexpr uint16_t kMaxFreeThresh = 128;
inline constexpr uint32_t kMinRxBufSize = 256;
inline constexpr uint32_t kLinkSpeed = RTE_ETH_SPEED_NUM_100G;

// Ethernet + CRC + two VLAN tags: what a frame of `mtu` bytes may take in a
// buffer (as Intel drivers count it).
inline constexpr uint32_t FrameSizeForMtu(uint32_t mtu) {
  return mtu + RTE_ETHER_HDR_LEN + RTE_ETHER_CRC_LEN + 2 * 4;
}

// ---------------------------------------------------------------------------
// Queues. The first part is the polling thread's; counters are written only
// by it (relaxed atomics, so stats_get may read them from another thread).

struct alignas(RTE_CACHE_LINE_SIZE) RxQueue {
  RxDesc* ring;
  rte_mbuf** sw_ring;  // the mbuf posted at each descriptor, or null
  QueueRegs* regs;
  rte_mempool* mp;
  uint32_t mask;  // ring_size - 1
  uint32_t next;  // free-running: the next descriptor to read
  uint32_t tail;  // free-running: descriptors [next, tail) are posted
  uint16_t free_thresh;
  uint16_t port_id;
  bool fixed_len;  // Intel-style per-queue buffer size
  bool scatter;
  bool rss_hash;
  uint32_t buf_len;     // fixed_len: bytes the device may write per buffer
  rte_mbuf* first_seg;  // frame being assembled across descriptors
  rte_mbuf* last_seg;

  uint64_t packets;
  uint64_t bytes;
  uint64_t errors;  // descriptors the device completed with kRxError
  uint64_t nombuf;  // mbufs the refill could not get

  // Control (not touched by the burst function).
  uint32_t ring_size;
  uint16_t queue_id;
  bool started;
  bool deferred_start;
  bool vlan_strip;
  uint64_t offloads;
  uint16_t nb_desc_requested;
};

struct alignas(RTE_CACHE_LINE_SIZE) TxQueue {
  TxDesc* ring;
  rte_mbuf** sw_ring;  // the segment at each posted descriptor, or null
  QueueRegs* regs;
  uint32_t mask;
  uint32_t clean;  // free-running: the oldest descriptor not yet reclaimed
  uint32_t tail;   // free-running: the next descriptor to fill
  uint16_t free_thresh;
  bool started;  // read by the burst function: a stopped queue sends nothing

  uint64_t packets;
  uint64_t bytes;
  uint64_t errors;  // kTxError completions and frames too long for the ring

  uint32_t ring_size;
  uint16_t queue_id;
  bool deferred_start;
  uint64_t offloads;
};

template <typename T>
inline T LoadRelaxed(const T* p) {
  return __atomic_load_n(p, __ATOMIC_RELAXED);
}
template <typename T>
inline void StoreRelaxed(T* p, T v) {
  __atomic_store_n(p, v, __ATOMIC_RELAXED);
}
// Counters have a single writer; a relaxed load+store is enough and cheaper
// than an atomic add.
inline void CounterAdd(uint64_t* c, uint64_t v) {
  __atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + v, __ATOMIC_RELAXED);
}

// ---------------------------------------------------------------------------
// The port (dev_private holds a pointer to it).

struct Port {
  std::string name;
  Devargs args;
  rte_eth_dev* dev = nullptr;

  int memfd = -1;
  void* mem = nullptr;
  RegisterPage* regs = nullptr;

  ControlChannel channel;
  std::unique_ptr<DmaMapper> dma;
  std::string mem_callback_name;  // empty unless registered
  bool hello_done = false;

  // Writers of the seqlocked tables and of the configuration registers.
  std::mutex table_mu;
  uint64_t rss_hf = 0;
  std::vector<rte_flow*> flows;  // owned, in table order

  // stats_reset: device counters cannot be cleared by the driver, so
  // statistics are reported relative to these snapshots.
  DeviceCounters device_base{};
  QueueCounters rx_base[kMaxQueues]{};
  QueueCounters tx_base[kMaxQueues]{};

  RxBufferMode rx_buffers() const { return args.rx_buffers; }
  uint8_t* ring_mem(size_t offset) { return static_cast<uint8_t*>(mem) + offset; }
};

inline Port* GetPort(const rte_eth_dev* dev) {
  return *static_cast<Port**>(dev->data->dev_private);
}

// Queue register handshakes (queue_regs.cc).
// Publishes a configured queue: bumps generation and stores enabled = 1.
void EnableQueue(QueueRegs* regs);
// enabled = 0, then waits up to timeout_ms until the device acknowledges the
// current generation. Returns 0 or -ETIMEDOUT.
int DisableQueue(QueueRegs* regs, int timeout_ms);

// Rx (rx.cc).
int RxQueueSetup(rte_eth_dev* dev, uint16_t qid, uint16_t nb_desc, unsigned socket_id,
                 const rte_eth_rxconf* conf, rte_mempool* mp);
void RxQueueRelease(rte_eth_dev* dev, uint16_t qid);
int RxQueueStart(rte_eth_dev* dev, uint16_t qid);
int RxQueueStop(rte_eth_dev* dev, uint16_t qid);
void RxQueueInfo(rte_eth_dev* dev, uint16_t qid, rte_eth_rxq_info* info);
// Frees every mbuf the queue holds without a handshake: only when the device
// is known to no longer use the queue (after kBye).
void RxQueueDrop(RxQueue* q);
// Forgets the posted mbufs (leaked, logged): the device did not confirm it
// stopped, so they may still be written.
void RxQueueAbandon(Port* port, RxQueue* q);
uint16_t RxBurst(void* rxq, rte_mbuf** pkts, uint16_t nb_pkts);

// Tx (tx.cc).
int TxQueueSetup(rte_eth_dev* dev, uint16_t qid, uint16_t nb_desc, unsigned socket_id,
                 const rte_eth_txconf* conf);
void TxQueueRelease(rte_eth_dev* dev, uint16_t qid);
int TxQueueStart(rte_eth_dev* dev, uint16_t qid);
int TxQueueStop(rte_eth_dev* dev, uint16_t qid);
void TxQueueInfo(rte_eth_dev* dev, uint16_t qid, rte_eth_txq_info* info);
void TxQueueDrop(TxQueue* q);
void TxQueueAbandon(Port* port, TxQueue* q);
uint16_t TxBurst(void* txq, rte_mbuf** pkts, uint16_t nb_pkts);

// RSS and steering tables (tables.cc, flow.cc).
void WriteRss(Port* port, const uint8_t* key, const uint16_t* reta, bool enabled);
void WriteFlowTable(Port* port);
int FlowOpsGet(rte_eth_dev* dev, const rte_flow_ops** ops);
void FlowFlushAll(Port* port);

}  // namespace iovtee::simnic

// An rte_flow handle: the rule as written into the device's table.
struct rte_flow {
  iovtee::simnic::FlowRule rule;
};

#endif  // IOVTEE_TEST_SOFTNIC_PMD_PORT_H_
