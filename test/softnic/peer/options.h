// Command line of simnic_peer: what to run, parsed and checked before any
// resource is taken.
#ifndef IOVTEE_TEST_SOFTNIC_PEER_OPTIONS_H_
#define IOVTEE_TEST_SOFTNIC_PEER_OPTIONS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "test/softnic/traffic/checker.h"

namespace iovtee::softnic {

enum class PeerMode {
  kPvp,      // NIC -> switch -> guest (macswap) -> switch -> NIC
  kNicLoop,  // NIC -> switch -> NIC: no guest, no EAL
  kNic,      // NIC only: frames come back through the switch from anywhere (no EAL)
  kGuest,    // guest only: a virtio-user port of the switch (echo or check)
};

enum class GuestRoleOption { kEcho, kCheck };

struct StreamOption {
  uint32_t stream = 1;
  uint32_t flows = 0;  // 0: --flows
};

struct PeerOptions {
  PeerMode mode = PeerMode::kPvp;
  std::string nic_socket;   // pvp, nic-loop, nic: the soft NIC listens here
  std::string guest_vhost;  // pvp, guest: the switch's vhost-user socket (server)

  // The guest: DPDK's virtio-user PMD. -1 leaves virtio-user's own default.
  bool guest_packed = false;
  int guest_mrg_rxbuf = -1;
  int guest_in_order = -1;
  uint32_t guest_queue_size = 1024;
  bool guest_vectorized = false;
  uint8_t guest_mac[6] = {0x02, 0, 0, 0, 0, 0x01};
  std::string guest_devargs;     // appended verbatim to virtio-user's devargs
  uint32_t guest_data_room = 0;  // Rx mbuf data room with headroom; 0: fits the largest frame
  GuestRoleOption guest_role = GuestRoleOption::kEcho;
  std::vector<StreamOption> guest_check_streams = {StreamOption{}};  // role check
  uint32_t guest_gen_stream = 0;      // guest mode: 0 none, else the stream it generates
  bool guest_corrupt_canary = false;  // debug: damage one canary (tests of the tests)

  // Traffic.
  uint32_t stream = 1;       // the NIC generator's stream (stream.h)
  uint32_t frame_size = 64;  // RFC 2544 size, FCS included (test_frame.h)
  bool imix = false;
  uint32_t flows = 4;
  double rate_pps = 0;  // 0: as fast as the NIC takes frames
  double duration_s = 10;
  double warmup_s = 1;
  bool have_dst_mac = false;  // --dst-mac given
  uint8_t dst_mac[6] = {};
  VerifyMode verify;  // how much of each frame the checkers read

  // Run control.
  int core = 0;
  double setup_timeout_s = 30;        // driver connect, guest socket, first frames back
  double linger_s = 10;               // after the run, until the NIC's driver closes the port
  std::string report;                 // JSON report path ("" = none)
  std::string status_file;            // JSON status, rewritten every 100 ms ("" = none)
  std::string start_file;             // nic, guest generator: start traffic once it exists
  int idle_sleep_us = -1;             // sleep when idle; -1: 0 in pvp/nic-loop, 50 otherwise
  std::vector<std::string> eal_args;  // after "--"; empty = the defaults
  bool help = false;
};

// Parses argv. Accepts --opt=value and --opt value; flags also take =0/=1.
// Errors name the option and what it accepts.
absl::StatusOr<PeerOptions> ParsePeerOptions(int argc, char** argv);

// The --help text: every option with its default.
std::string PeerUsage(const char* argv0);

// "02:00:00:00:00:01".
std::string FormatMac(const uint8_t mac[6]);

// "pvp", "nic-loop", "nic", "guest".
const char* ModeName(PeerMode mode);

}  // namespace iovtee::softnic

#endif  // IOVTEE_TEST_SOFTNIC_PEER_OPTIONS_H_
