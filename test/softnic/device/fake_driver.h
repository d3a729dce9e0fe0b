// A driver for the soft NIC written from simnic_abi.h alone (no DPDK), for
// the device's tests and benchmark: it owns the register memfd and rings,
// DMA memory between guard pages, and the driver end of the control socket.
#ifndef IOVTEE_TEST_SOFTNIC_DEVICE_FAKE_DRIVER_H_
#define IOVTEE_TEST_SOFTNIC_DEVICE_FAKE_DRIVER_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "test/softnic/simnic_abi.h"

namespace iovtee::softnic::testing {

// Memory the driver DMAs to/from: a memfd, mapped here with a PROT_NONE page
// on each side so any access just outside it crashes.
class DmaArea {
 public:
  static absl::StatusOr<std::unique_ptr<DmaArea>> Create(size_t len);
  ~DmaArea();
  DmaArea(const DmaArea&) = delete;
  DmaArea& operator=(const DmaArea&) = delete;

  int fd() const { return fd_; }
  uint8_t* data() const { return data_; }
  size_t len() const { return len_; }

 private:
  DmaArea() = default;
  int fd_ = -1;
  uint8_t* data_ = nullptr;
  size_t len_ = 0;
  void* reservation_ = nullptr;
  size_t reservation_len_ = 0;
};

struct FakeDriverOptions {
  std::string name = "fake0";
  uint32_t num_rxq = 1;
  uint32_t num_txq = 1;
  uint32_t ring_size = 256;
  uint8_t mac[6] = {0x02, 0, 0, 0, 0, 0x01};
  bool link_up = true;
  bool promiscuous = false;
};

struct RxCompletion {
  uint32_t index;  // free-running descriptor index
  uint64_t addr;
  uint32_t rss_hash;
  uint16_t pkt_len;
  uint16_t status;
  uint16_t vlan_tci;
  uint16_t error;
};

struct TxCompletion {
  uint32_t index;
  uint16_t status;
  uint16_t error;
};

class FakeDriver {
 public:
  static absl::StatusOr<std::unique_ptr<FakeDriver>> Create(FakeDriverOptions options);
  ~FakeDriver();
  FakeDriver(const FakeDriver&) = delete;
  FakeDriver& operator=(const FakeDriver&) = delete;

  // Control connection. SocketPair() keeps one end and returns the other (for
  // Device::Attach); Connect() dials a listening device.
  absl::StatusOr<int> SocketPair();
  absl::Status Connect(const std::string& path);
  void CloseSocket();

  // While waiting for an ack, `pump` runs between polls (a single-threaded
  // test passes the device's PollControl). Without a pump the wait blocks.
  void set_pump(std::function<void()> pump) { pump_ = std::move(pump); }

  // Sends a message (with fd >= 0 attached) and waits up to 5 s for its ack.
  // Returns the ack's status, or -ETIMEDOUT / -EPIPE / -EPROTO (bad ack).
  int Call(simnic::MsgType type, uint64_t iova, uint64_t len, uint64_t offset, int fd);
  int Hello() { return Call(simnic::MsgType::kHello, 0, memfd_len_, 0, memfd_); }
  int Map(uint64_t iova, uint64_t len, int fd, uint64_t offset) {
    return Call(simnic::MsgType::kMap, iova, len, offset, fd);
  }
  int Unmap(uint64_t iova, uint64_t len) { return Call(simnic::MsgType::kUnmap, iova, len, 0, -1); }
  int Bye() { return Call(simnic::MsgType::kBye, 0, 0, 0, -1); }

  simnic::RegisterPage* regs() const { return regs_; }
  int memfd() const { return memfd_; }
  uint32_t ring_size() const { return options_.ring_size; }

  // Queue setup per the ABI. Configure before Start.
  void ConfigureRx(int q, uint32_t buf_len, bool per_desc_len = false, bool scatter = false,
                   bool vlan_strip = false);
  void StartRx(int q);
  void StartTx(int q);
  // Stores enabled = 0 and waits (pumping) until the device acknowledges.
  // Returns false after 5 s without an acknowledgement.
  bool StopRx(int q);
  bool StopTx(int q);
  // Just the first half of a stop (for tests of the handshake itself).
  void DisableRx(int q);
  bool RxStopAcked(int q) const;
  bool TxStopAcked(int q) const;

  // Posts one Rx buffer (buf_len matters for per_desc_len queues) and
  // publishes the tail. Returns false when the ring is full.
  bool PostRx(int q, uint64_t iova, uint32_t buf_len = 0);
  uint32_t RxPosted(int q) const { return rx_tail_[q] - rx_reaped_[q]; }
  // Takes completed descriptors in ring order (stops at the first without
  // DD) and clears their status.
  std::vector<RxCompletion> ReapRx(int q);
  // The same without allocation: at most `max` into `out`.
  size_t ReapRx(int q, RxCompletion* out, size_t max);

  // Posts one Tx descriptor; `publish` false leaves the tail where it was.
  bool PostTx(int q, uint64_t iova, uint32_t len, bool eop, bool publish = true);
  void PublishTx(int q);
  std::vector<TxCompletion> ReapTx(int q);
  size_t ReapTx(int q, TxCompletion* out, size_t max);

  // Seqlocked tables. Begin/End expose the writer's critical section.
  void BeginRssUpdate();
  void EndRssUpdate();
  void SetRss(bool enabled, const uint8_t* key, const uint16_t* reta);
  void SetFlowRules(const std::vector<simnic::FlowRule>& rules);
  void SetLink(bool up);
  void SetPromiscuous(bool on);

 private:
  explicit FakeDriver(FakeDriverOptions options) : options_(std::move(options)) {}
  uint32_t RingOffset(bool rx, int q) const;
  bool WaitAck(uint32_t seq, int* status);
  bool WaitFor(const std::function<bool()>& done);

  FakeDriverOptions options_;
  int memfd_ = -1;
  size_t memfd_len_ = 0;
  simnic::RegisterPage* regs_ = nullptr;
  int sock_ = -1;
  uint32_t seq_ = 0;
  std::function<void()> pump_;
  uint32_t rx_tail_[simnic::kMaxQueues] = {};
  uint32_t rx_reaped_[simnic::kMaxQueues] = {};
  uint32_t tx_tail_[simnic::kMaxQueues] = {};  // posted, maybe unpublished
  uint32_t tx_published_[simnic::kMaxQueues] = {};
  uint32_t tx_reaped_[simnic::kMaxQueues] = {};
};

// Frames for tests: Ethernet [+ 802.1Q] + IPv4/IPv6 + UDP/TCP, payload bytes
// derived from `payload_seed`, total `len` bytes (at least the headers).
struct FrameSpec {
  uint8_t dst[6] = {0x02, 0, 0, 0, 0, 0x01};
  uint8_t src[6] = {0x02, 0, 0, 0, 0, 0x02};
  int vlan_tci = -1;  // -1: untagged
  bool ipv6 = false;
  uint8_t proto = 17;  // 6 TCP, 17 UDP, anything else: no L4 header
  uint8_t src_ip[16] = {10, 0, 0, 1};
  uint8_t dst_ip[16] = {10, 0, 0, 2};
  uint16_t src_port = 1024;
  uint16_t dst_port = 2048;
  uint32_t len = 64;
  uint32_t payload_seed = 0;
};
std::vector<uint8_t> BuildFrame(const FrameSpec& spec);

}  // namespace iovtee::softnic::testing

#endif  // IOVTEE_TEST_SOFTNIC_DEVICE_FAKE_DRIVER_H_
