// Helpers for the net_simnic PMD tests: a soft NIC device running on its own
// thread (it shares memory with the PMD only through the memfd and the fds
// sent over its socket, as it would from another process), port set-up over
// the public ethdev API, and capture of rte_log output.
#ifndef IOVTEE_TEST_SOFTNIC_PMD_PMD_TEST_UTIL_H_
#define IOVTEE_TEST_SOFTNIC_PMD_PMD_TEST_UTIL_H_

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <rte_ethdev.h>
#include <rte_mempool.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "test/softnic/device/device.h"

namespace iovtee::simnic::test {

// A directory for sockets: $TEST_TMPDIR when its paths fit a sockaddr_un,
// else a fresh directory under /tmp (removed by the caller's cleanup).
std::string SocketDir();

// One soft NIC device, polled by a thread of its own until destruction.
class DeviceThread {
 public:
  // Listens on `socket_path` and starts polling.
  static absl::StatusOr<std::unique_ptr<DeviceThread>> Start(const std::string& name,
                                                             const std::string& socket_path);
  ~DeviceThread();

  const std::string& socket_path() const { return socket_path_; }

  // Runs `fn` on the device, with the polling loop held off (the device is
  // driven by one thread at a time).
  void With(const std::function<void(softnic::Device&)>& fn);

  // Frames "from the wire"; returns how many the device delivered.
  size_t Receive(const std::vector<std::vector<uint8_t>>& frames);

  // Frames the driver transmitted since the last call, in order.
  std::vector<std::vector<uint8_t>> TakeTx();
  // When set, every transmitted frame goes to `fn` (on the device thread)
  // instead of the TakeTx() list.
  void SetTxConsumer(std::function<void(const softnic::TxFrame&)> fn);

  softnic::DeviceStats Stats();

 private:
  DeviceThread() = default;
  void Loop();

  std::string socket_path_;
  std::unique_ptr<softnic::Device> device_;
  std::mutex mu_;  // guards device_ calls, tx_frames_, tx_consumer_
  std::vector<std::vector<uint8_t>> tx_frames_;
  std::function<void(const softnic::TxFrame&)> tx_consumer_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Collects everything rte_log writes while alive.
class LogCapture {
 public:
  LogCapture();
  ~LogCapture();
  std::string Text();

 private:
  char* buf_ = nullptr;
  size_t len_ = 0;
  FILE* f_ = nullptr;
};

// Hot-plugs a net_simnic port (rte_vdev_init); returns its port id.
absl::StatusOr<uint16_t> ProbePort(const std::string& name, const std::string& args);
// Stops (if started) and removes the port (rte_vdev_uninit -> dev_close).
absl::Status RemovePort(const std::string& name);

struct PortSetup {
  uint16_t nb_rxq = 1;
  uint16_t nb_txq = 1;
  uint16_t nb_rxd = 256;
  uint16_t nb_txd = 256;
  uint64_t rx_offloads = 0;
  uint64_t tx_offloads = 0;
  bool rss = false;
  uint16_t mtu = 1500;
  bool promiscuous = true;
  bool start = true;
  // Per Rx queue; the last one repeats for the rest.
  std::vector<rte_mempool*> pools;
  std::vector<bool> rx_deferred;  // per queue, default false
};

// Configures, sets up queues and (optionally) starts the port.
absl::Status SetUpPort(uint16_t port, const PortSetup& setup);

// A pktmbuf pool without per-lcore cache (so rte_mempool_avail_count is
// exact) and a unique name.
rte_mempool* MakePool(unsigned n, uint16_t data_room);

// Polls rx_burst on `queue` until `want` frames arrived or `timeout_ms`
// passed, appending them to `out`.
void RxUntil(uint16_t port, uint16_t queue, size_t want, int timeout_ms,
             std::vector<rte_mbuf*>* out);

// The frame an mbuf chain holds, as one byte vector.
std::vector<uint8_t> MbufBytes(const rte_mbuf* m);

void FreeAll(std::vector<rte_mbuf*>* mbufs);

// An xstat of `port` by name, or -1.
int64_t Xstat(uint16_t port, const std::string& name);

// Number of open fds of this process.
int CountFds();

// Builds an Ethernet frame: dst, src, optional VLAN tag, then IPv4/UDP with
// the given addresses and ports, padded with `payload_byte` to `len` bytes.
std::vector<uint8_t> MakeUdpFrame(const uint8_t dst[6], uint32_t len, uint32_t src_ip,
                                  uint32_t dst_ip, uint16_t src_port, uint16_t dst_port,
                                  int vlan_id = -1, uint8_t payload_byte = 0x5a);

}  // namespace iovtee::simnic::test

#endif  // IOVTEE_TEST_SOFTNIC_PMD_PMD_TEST_UTIL_H_
