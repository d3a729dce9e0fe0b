// The device side of the soft NIC: one object is one NIC port.
//
// It speaks simnic_abi.h to a driver (the net_simnic PMD, or a test's fake
// driver): it accepts the driver's control connection, maps the register
// memfd it is given, keeps the IOMMU from kMap/kUnmap, and moves frames:
//  - Receive(): frames "from the wire" are steered to an Rx queue and written
//    by DMA into the buffers the driver posted;
//  - Transmit(): frames the driver posted on its Tx queues are read by DMA
//    and handed to a consumer.
// Every DMA address goes through the IOMMU; an address outside it is a fault:
// counted, logged (rate-limited), and never accessed.
//
// Threading: a Device is driven by one thread at a time; all its methods run
// there (typically one busy-poll loop calls PollControl, Receive and Transmit
// in turn). Because control messages and DMA share that thread, an unmap or a
// queue stop is acknowledged only between bursts, so an acknowledged range or
// queue is never touched again. Distinct Devices are independent. Nothing
// here needs DPDK or an EAL.
#ifndef IOVTEE_TEST_SOFTNIC_DEVICE_DEVICE_H_
#define IOVTEE_TEST_SOFTNIC_DEVICE_DEVICE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "test/softnic/device/control_link.h"
#include "test/softnic/device/iommu.h"
#include "test/softnic/device/steering.h"
#include "test/softnic/simnic_abi.h"

namespace iovtee::softnic {

// A frame on the wire: Ethernet header first, no FCS.
struct Frame {
  const uint8_t* data = nullptr;
  uint32_t len = 0;
};

// A frame the driver transmitted. `data` is valid only during the consumer
// call (it may point into the driver's buffer, which is completed next).
struct TxFrame {
  const uint8_t* data = nullptr;
  uint32_t len = 0;
  uint16_t queue = 0;
};

struct DeviceOptions {
  std::string name = "simnic";  // for logs and Describe()
  size_t max_mappings = Iommu::kDefaultMaxMappings;
  uint32_t tx_burst = 64;  // frames taken from each Tx queue per Transmit()
  bool log = true;         // connection events and rate-limited faults on stderr
};

// `device`, `rx` and `tx` are the register page's counters (continued from
// the page at kHello, so they restart with each new driver); the rest count
// over the Device's lifetime.
struct DeviceStats {
  bool connected = false;  // a driver's register page is mapped
  std::string driver_name;
  uint64_t connections = 0;  // lifetime: control connections accepted/attached
  uint64_t disconnects = 0;  // lifetime: connections lost (EOF, socket errors)
  uint64_t control_messages = 0;
  uint64_t control_errors = 0;  // messages acked with a negative status
  size_t mappings = 0;
  uint64_t mapped_bytes = 0;

  simnic::DeviceCounters device = {};
  simnic::QueueCounters rx[simnic::kMaxQueues] = {};
  simnic::QueueCounters tx[simnic::kMaxQueues] = {};

  // Rx drops the register page has no counter for.
  uint64_t rx_runt = 0;      // shorter than an Ethernet header
  uint64_t rx_filtered = 0;  // not for this port (see steering.h)
  uint64_t rx_no_port = 0;   // no driver connected: there is no port
  // Tx frames completed without delivery because the link was down.
  uint64_t tx_link_down = 0;
  uint64_t tx_gathered = 0;   // multi-segment frames copied into one buffer
  uint64_t ring_errors = 0;   // queues refused at start, tail beyond the ring
  uint64_t stale_tables = 0;  // bursts steered with an older RSS/flow table
};

class Device {
 public:
  // Frames in one Rx burst may span at most this many descriptors each
  // (scatter); a frame that needs more is oversize.
  static constexpr uint32_t kMaxRxSegments = 64;
  // Tx frames may have at most this many segments and kMaxFrame bytes.
  static constexpr uint32_t kMaxTxSegments = 64;

  static absl::StatusOr<std::unique_ptr<Device>> Create(DeviceOptions options);
  ~Device();
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;

  // Listens for the driver on a unix socket path (non-blocking; connections
  // are accepted by PollControl). A stale socket file is replaced.
  absl::Status Listen(const std::string& path);
  // Uses an already-connected stream socket (e.g. one end of a socketpair);
  // takes ownership. Fails when a driver is connected.
  absl::Status Attach(int fd);

  // Accepts a connection if none is up, reads and answers the control
  // messages that have arrived (at most a few dozen per call), and answers
  // queue start/stop handshakes. Never blocks. On EOF the port is dropped
  // (every mapping and the register page unmapped) and a new driver may
  // connect. Does nothing when called from inside a Transmit() consumer.
  // Returns the number of messages handled.
  int PollControl();

  // True while a driver's register page is mapped (after kHello, until kBye
  // or disconnect).
  bool connected() const { return regs_ != nullptr; }

  // Frames from the wire, in order. Each is steered (steering.h) and written
  // into the next posted descriptor(s) of its queue. Returns how many were
  // delivered; the rest are counted by reason: no port, link down, runt,
  // filtered, no queue, missed, oversize, IOMMU fault. No allocation.
  //
  // What the driver sees in its ring:
  //  - delivered: each descriptor gets pkt_len (bytes in its buffer, written
  //    from addr), rss_hash, vlan_tci, error 0 and then status (kRxDone, last
  //    piece kRxEop, plus kRxRssValid / kRxVlanStripped), DD stored last with
  //    release. A buffer holds at most QueueRegs.buf_len bytes
  //    (per_desc_len 0) or the descriptor's buf_len (per_desc_len 1).
  //  - missed (queue counter `missed`): no descriptor posted, or fewer than a
  //    scattered frame needs; nothing is consumed.
  //  - oversize (no scatter, larger than kMaxFrame, or more than
  //    kMaxRxSegments pieces) or an IOMMU fault: no byte is written anywhere;
  //    the frame consumes one descriptor, or for a scattered frame whose
  //    n-th piece faults, the n descriptors up to the faulting one. Each is
  //    completed as a unit of its own: kRxDone | kRxEop | kRxError, pkt_len 0,
  //    error kErrTooBig or kErrIommuFault. The queue's `errors` counts the
  //    frame once.
  // QueueRegs.head and the counters in the register page are stored once
  // per burst.
  size_t Receive(absl::Span<const Frame> frames);

  // Drains every enabled Tx queue (at most options.tx_burst frames each): a
  // frame's segments up to kTxEop are read through the IOMMU and passed to
  // `consume` as one contiguous view (copied only when there are several
  // segments), then all its descriptors are completed: status kTxDone
  // (release), or kTxDone | kTxError with error kErrIommuFault (a segment
  // outside the IOMMU) or kErrTooBig (more than kMaxFrame bytes or
  // kMaxTxSegments segments, or a full ring without kTxEop); such frames are
  // not delivered. Zero-length segments are skipped. A frame whose kTxEop
  // descriptor is not posted yet waits. With the link down frames are
  // completed (kTxDone) but not delivered. `consume` may call Receive()
  // (loopback) but not Transmit(). Returns the number of frames delivered.
  size_t Transmit(absl::FunctionRef<void(const TxFrame&)> consume);

  DeviceStats Stats() const;
  // One line: connection, queues, mappings, steering and main counters.
  std::string Describe() const;

 private:
  // Where a queue stands in the start/stop handshake.
  struct QueueState {
    uint32_t generation = 0;  // the generation last started (or refused)
    bool active = false;
    bool refused = false;  // that generation had a bad configuration
  };
  struct RxQueueState {
    QueueState state;
    simnic::QueueRegs* regs = nullptr;
    simnic::RxDesc* ring = nullptr;
    uint32_t mask = 0;
    uint32_t head = 0;
    uint32_t tail = 0;  // the last tail read
    uint32_t buf_len = 0;
    bool per_desc_len = false;
    bool scatter = false;
    bool vlan_strip = false;
  };
  struct TxQueueState {
    QueueState state;
    simnic::QueueRegs* regs = nullptr;
    simnic::TxDesc* ring = nullptr;
    uint32_t mask = 0;
    uint32_t head = 0;
  };
  struct Segment {
    const uint8_t* data;
    uint32_t len;
  };

  explicit Device(DeviceOptions options);

  // Control plane (device.cc).
  int HandleMessage(const ControlMessage& m);
  int OnHello(const simnic::Msg& msg, int fd);
  void DropPort();
  void OnDisconnect();
  // Queue handshakes for queues [0, n): start on a new generation, ack stops.
  bool QueueHandshake(simnic::QueueRegs* r, QueueState* s);
  void SyncRxQueues(uint32_t n);
  void SyncTxQueues(uint32_t n);
  bool ValidRing(uint32_t offset, uint32_t size, const char* what, int q);
  void PublishCounters();
  void LogFault(const char* dir, int q, uint64_t iova, uint64_t len);
  void Log(const char* fmt, ...) __attribute__((format(printf, 2, 3)));

  // Rx datapath (rx_path.cc).
  uint32_t RxAvailable(RxQueueState& s);
  bool DeliverRx(RxQueueState& s, int q, const Frame& f, const SteerResult& r);
  bool DeliverRxScattered(RxQueueState& s, int q, const Frame& f, const SteerResult& r,
                          uint32_t out_len, uint16_t flags, uint16_t tci, bool strip);
  void CompleteRxError(RxQueueState& s, int q, uint32_t count, uint16_t error);

  // Tx datapath (tx_path.cc).
  size_t DrainTx(TxQueueState& s, int q, bool link_up,
                 absl::FunctionRef<void(const TxFrame&)> consume);

  DeviceOptions options_;
  ControlLink link_;
  Iommu iommu_;
  Steering steering_;

  simnic::RegisterPage* regs_ = nullptr;
  size_t regs_len_ = 0;
  std::string driver_name_;
  RxQueueState rxq_[simnic::kMaxQueues];
  TxQueueState txq_[simnic::kMaxQueues];
  bool in_rx_burst_ = false;
  bool in_tx_burst_ = false;
  // Queues whose head or counters are to be published at the end of the
  // burst (bit q).
  uint32_t rx_touched_ = 0;
  uint32_t tx_touched_ = 0;
  static_assert(simnic::kMaxQueues <= 32, "one bit per queue");

  DeviceStats stats_;  // the counters; published to the register page per burst
  bool device_counters_dirty_ = false;

  Segment segments_[kMaxTxSegments];
  std::unique_ptr<uint8_t[]> tx_scratch_;  // kMaxFrame bytes, for gathered frames

  uint64_t last_log_ns_ = 0;
  uint64_t logs_suppressed_ = 0;
};

}  // namespace iovtee::softnic

#endif  // IOVTEE_TEST_SOFTNIC_DEVICE_DEVICE_H_
