// The command line of iovtee-switch (after EAL's arguments and "--"), parsed
// and checked before EAL starts: a bad option exits with status 2 and a
// message naming it, without taking any resource.
#ifndef IOVTEE_EXAMPLES_IOVTEE_SWITCH_OPTIONS_H_
#define IOVTEE_EXAMPLES_IOVTEE_SWITCH_OPTIONS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "examples/iovtee-switch/acl.h"
#include "iovtee/mapping.h"

namespace iovtee::sw {

inline constexpr uint16_t kMaxPorts = 32;

// Ports are named by kind and order: phy0, phy1, ... (--phy), vhost0, ...
// (--vhost). Port indexes: phys first, then vhosts.
struct MapSpec {
  uint16_t phy = 0;    // phy port number (phyN)
  uint16_t queue = 0;  // its Rx queue
  uint16_t vhost = 0;  // vhost port number (vhostM)
};

struct StaticMac {
  uint16_t port = 0;  // port index
  uint8_t mac[6] = {};
};

struct SwitchOptions {
  std::vector<std::string> phy_devargs;  // e.g. "net_simnic0,socket=/tmp/nic.sock"
  std::vector<std::string> vhost_paths;  // vhost-user sockets
  bool vhost_client = false;             // connect to the paths instead of listening
  std::vector<MapSpec> maps;             // --map phyN:Q=vhostM
  uint16_t rx_ring = 1024;
  uint16_t tx_ring = 1024;
  uint32_t host_mbufs = 16384;
  MappingOptions mapping;
  uint16_t mtu = 1500;
  std::vector<StaticMac> static_macs;
  uint32_t mac_aging_s = 300;  // 0: learned entries never age
  uint32_t mac_table_size = 4096;
  std::vector<AclRule> acl;
  std::vector<uint16_t> access_vid;  // by port index; 0: trunk
  std::string stats_file;            // JSON written at exit
  double duration_s = 0;             // 0: until SIGINT/SIGTERM
  bool help = false;

  size_t port_count() const { return phy_devargs.size() + vhost_paths.size(); }
  // "phy0", "vhost1", ...
  std::string PortName(size_t index) const;
};

// Parses the switch's arguments (not EAL's, not argv[0]). Accepts
// "--opt value" and "--opt=value". Errors name the option and what it
// accepts; cross-option errors (a --map naming a port that does not exist)
// are found here too.
absl::StatusOr<SwitchOptions> ParseSwitchOptions(const std::vector<std::string>& args);

// The --help text: every option with its default.
std::string SwitchUsage(const char* argv0);

}  // namespace iovtee::sw

#endif  // IOVTEE_EXAMPLES_IOVTEE_SWITCH_OPTIONS_H_
