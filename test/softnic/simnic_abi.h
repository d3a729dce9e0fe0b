// The soft NIC's "hardware interface": what the driver (the net_simnic PMD)
// and the device (test/softnic/device) share, and nothing else.
//
// Like a PCI NIC, the device has a register page and descriptor rings in
// memory the driver allocates; buffers are reached only by DMA, through an
// IOMMU table the driver fills. Here "PCI" is a memfd shared over a unix
// socket, and DMA is the device process mapping the driver's memory from fds
// the driver sends (MAP messages). Driver and device may be threads of one
// process or two processes: the same protocol either way.
//
// Completion is signalled by the DD bits only: `head` and the counters are
// published once per burst. An Rx descriptor with kRxError carries no data
// (pkt_len 0) and counts as a whole frame (kRxEop), except that a scattered
// frame whose n-th piece faults consumes n such descriptors. The driver seals
// its memfds against shrinking (F_SEAL_SHRINK).
//
// All fields are little-endian host integers. Fields written by one side and
// read by the other are accessed with __atomic loads/stores; the ordering
// rules are stated next to each field.
#ifndef IOVTEE_TEST_SOFTNIC_SIMNIC_ABI_H_
#define IOVTEE_TEST_SOFTNIC_SIMNIC_ABI_H_

#include <cstddef>
#include <cstdint>

namespace iovtee::simnic {

inline constexpr char kDriverName[] = "net_simnic";
inline constexpr uint32_t kMagic = 0x4e4d4953;  // "SIMN"
inline constexpr uint32_t kAbiVersion = 1;

inline constexpr int kMaxQueues = 16;  // per direction
inline constexpr int kMaxFlowRules = 64;
inline constexpr int kRetaSize = 128;
inline constexpr int kRssKeySize = 40;
inline constexpr uint32_t kMaxRingSize = 4096;
inline constexpr uint32_t kMaxFrame = 9018;  // 9000 MTU + Ethernet + VLAN
inline constexpr uint32_t kHeadroom = 128;   // RTE_PKTMBUF_HEADROOM

// ---------------------------------------------------------------------------
// Descriptors (32 bytes, both directions).

// Rx descriptor. The driver writes addr and buf_len, then clears status; the
// device writes pkt_len, rss_hash, vlan_tci, error, then status (DD last,
// release). The driver reads status with acquire, then the rest.
struct RxDesc {
  uint64_t addr;      // IOVA of the first byte the device may write
  uint32_t buf_len;   // bytes the device may write from addr (per_desc_len queues)
  uint32_t rss_hash;  // device: Toeplitz hash when kRxRssValid
  uint16_t pkt_len;   // device: bytes written into this buffer
  uint16_t status;    // device: kRx* bits
  uint16_t vlan_tci;  // device: stripped tag when kRxVlanStripped
  uint16_t error;     // device: kErr* when kRxError
  uint64_t reserved;
};
static_assert(sizeof(RxDesc) == 32);

inline constexpr uint16_t kRxDone = 1u << 0;  // DD: the device is done with it
inline constexpr uint16_t kRxEop = 1u << 1;   // last buffer of the frame
inline constexpr uint16_t kRxRssValid = 1u << 2;
inline constexpr uint16_t kRxVlanStripped = 1u << 3;
inline constexpr uint16_t kRxError = 1u << 4;  // see error; no data was written

// Tx descriptor. The driver writes addr, len, flags, clears status; the
// device reads the frame and sets status (release).
struct TxDesc {
  uint64_t addr;  // IOVA of the frame bytes
  uint32_t len;
  uint16_t flags;   // kTx* bits
  uint16_t status;  // device: kTxDone, kTxError
  uint16_t error;   // device: kErr* when kTxError
  uint16_t reserved16[3];
  uint64_t reserved;
};
static_assert(sizeof(TxDesc) == 32);

inline constexpr uint16_t kTxEop = 1u << 0;  // last segment of the frame
inline constexpr uint16_t kTxDone = 1u << 0;
inline constexpr uint16_t kTxError = 1u << 1;

// Error codes in descriptors (and fault records).
inline constexpr uint16_t kErrNone = 0;
inline constexpr uint16_t kErrIommuFault = 1;  // an address outside every IOMMU mapping
inline constexpr uint16_t kErrTooBig = 2;      // frame larger than the buffers (no scatter)

// ---------------------------------------------------------------------------
// The register page: the first bytes of the shared memfd.

// Queue registers. The driver owns the ring and `tail`; the device owns
// `head`. A queue is usable by the device only while `enabled` is 1 and its
// `generation` matches what it last saw.
// Start: the driver zeroes the ring, sets tail = 0, bumps generation, then
// stores enabled = 1 (release); a device that sees a new generation while
// enabled restarts at head = 0.
// Stop: the driver stores enabled = 0 with sequential consistency (a full
// fence before it reads stopped_generation) and waits until
// stopped_generation equals generation. The device withdraws an
// acknowledgement it gave between the generation bump and enabled = 1. The device acknowledges only
// between bursts, so once the driver sees the acknowledgement no DMA of that queue is in progress
// or will happen: the driver may free every posted buffer.
struct alignas(64) QueueRegs {
  // Driver-written (configuration before enabled = 1, release on enabled).
  uint32_t ring_offset;  // byte offset of the descriptor ring in the memfd
  uint32_t ring_size;    // descriptors, a power of two <= kMaxRingSize
  // Rx buffer size. Intel-style (per_desc_len == 0): the device writes at
  // most buf_len bytes at each descriptor's addr, whatever the descriptor
  // says, like SRRCTL.BSIZEPKT. virtio-style (per_desc_len == 1): each
  // descriptor's own buf_len.
  uint32_t buf_len;
  uint32_t per_desc_len;
  uint32_t scatter;     // Rx: frames may span descriptors
  uint32_t vlan_strip;  // Rx: strip one VLAN tag into the descriptor
  uint32_t enabled;     // release-stored last
  uint32_t generation;  // bumped at every start
  // Driver-written doorbell: the next descriptor index the driver will fill
  // (free-running 32-bit; descriptors [head, tail) belong to the device).
  alignas(64) uint32_t tail;
  // Device-written: the next descriptor the device will process, and the
  // generation it acknowledged as stopped.
  alignas(64) uint32_t head;
  uint32_t stopped_generation;
};

// One steering rule (rte_flow ETH [/ VLAN] -> QUEUE).
struct FlowRule {
  uint8_t dst_mac[6];
  uint8_t match_vlan;  // 1: the frame must carry vlan_id
  uint8_t valid;
  uint16_t vlan_id;
  uint16_t queue;
};

// Device counters (device-written, relaxed; readers tolerate tearing across
// fields, never within one).
struct QueueCounters {
  uint64_t packets;
  uint64_t bytes;
  uint64_t missed;  // Rx: no descriptor posted when a frame arrived
  uint64_t errors;  // faults and oversize frames on this queue
};

struct DeviceCounters {
  uint64_t iommu_faults;     // DMA to/from an address with no mapping: never performed
  uint64_t rx_oversize;      // frames dropped: larger than the buffers, scatter off
  uint64_t rx_no_queue;      // frames dropped: steered to a queue that is not enabled
  uint64_t rx_link_down;     // frames dropped: link down
  uint64_t last_fault_iova;  // the most recent faulting address
};

struct alignas(4096) RegisterPage {
  uint32_t magic;        // kMagic, written by the driver at creation
  uint32_t abi_version;  // kAbiVersion
  uint32_t num_rxq;
  uint32_t num_txq;
  uint32_t link_up;  // driver: administrative state (dev_set_link_up/down)
  uint32_t mtu;
  uint8_t mac[6];  // the port's MAC address (frames to it are accepted)
  uint8_t promiscuous;
  uint8_t pad0;

  // RSS: hash over IPv4/IPv6 addresses and TCP/UDP ports (Toeplitz), queue =
  // reta[hash % kRetaSize]. Published with rss_seq as a seqlock (odd while
  // the driver writes).
  uint32_t rss_seq;
  uint32_t rss_enabled;
  uint8_t rss_key[kRssKeySize];
  uint16_t reta[kRetaSize];

  // Flow rules, checked before RSS, first match wins. Seqlock as for RSS.
  uint32_t flow_seq;
  uint32_t num_flow_rules;
  FlowRule rules[kMaxFlowRules];

  QueueRegs rxq[kMaxQueues];
  QueueRegs txq[kMaxQueues];

  QueueCounters rx_counters[kMaxQueues];
  QueueCounters tx_counters[kMaxQueues];
  DeviceCounters device;
};

// The shared memfd: the register page, then the rings at the offsets the
// driver chooses (each ring 4096-aligned).
inline constexpr size_t RingBytes(uint32_t size) { return size_t{32} * size; }

// ---------------------------------------------------------------------------
// Control messages on the unix stream socket. Each message is one Msg,
// optionally with one fd (SCM_RIGHTS). The driver sends; the device answers
// every message with kAck carrying the same seq and a status (0 or -errno).

enum class MsgType : uint32_t {
  kHello = 1,  // fd: the register memfd; len: its size
  kMap = 2,    // fd: backs [iova, iova + len) at file offset `offset`
  kUnmap = 3,  // [iova, iova + len) must be exactly a mapping made by kMap
  kAck = 4,
  kBye = 5,  // the driver closes the port; the device stops using it
};

struct Msg {
  MsgType type;
  uint32_t seq;
  uint64_t iova;
  uint64_t len;
  uint64_t offset;
  int32_t status;  // kAck: 0 or -errno
  uint32_t pad;
  char name[32];  // kHello: the port name, for logs
};
static_assert(sizeof(Msg) == 72);

}  // namespace iovtee::simnic

#endif  // IOVTEE_TEST_SOFTNIC_SIMNIC_ABI_H_
