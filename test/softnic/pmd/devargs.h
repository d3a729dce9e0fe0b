// Parsing of the net_simnic device arguments
// (--vdev net_simnic0,socket=/path,mac=02:..,rx_buffers=fixed|mbuf,...).
#ifndef IOVTEE_TEST_SOFTNIC_PMD_DEVARGS_H_
#define IOVTEE_TEST_SOFTNIC_PMD_DEVARGS_H_

#include <string>

#include <rte_ether.h>

namespace iovtee::simnic {

inline constexpr char kArgSocket[] = "socket";
inline constexpr char kArgMac[] = "mac";
inline constexpr char kArgRxBuffers[] = "rx_buffers";
inline constexpr char kArgConnectTimeoutMs[] = "connect_timeout_ms";
inline constexpr char kArgAckTimeoutMs[] = "ack_timeout_ms";

// What the Rx descriptors tell the device about buffer sizes.
enum class RxBufferMode {
  // Intel style: one size per queue (data room - RTE_PKTMBUF_HEADROOM), the
  // frame always at buf_iova + RTE_PKTMBUF_HEADROOM.
  kFixed,
  // virtio-PMD style: each descriptor carries its own mbuf's buffer length.
  kMbuf,
};

struct Devargs {
  std::string socket_path;  // required: the device's listening unix socket
  rte_ether_addr mac{};     // given, or derived from the port name
  RxBufferMode rx_buffers = RxBufferMode::kFixed;
  int connect_timeout_ms = 5000;  // connect retries until then
  int ack_timeout_ms = 5000;      // each control message and queue-stop handshake
};

// Parses `args` for port `port_name`. On bad input logs what is wrong (and
// which keys and values are accepted) and returns false.
bool ParseDevargs(const char* port_name, const char* args, Devargs* out);

// A locally administered unicast MAC derived from the port name, so that each
// port has a stable, distinct address without configuration.
rte_ether_addr DefaultMac(const char* port_name);

}  // namespace iovtee::simnic

#endif  // IOVTEE_TEST_SOFTNIC_PMD_DEVARGS_H_
