#include "test/softnic/pmd/devargs.h"

#include <sys/un.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include <rte_kvargs.h>

#include "test/softnic/pmd/simnic_log.h"

namespace iovtee::simnic {
namespace {

constexpr char kUsage[] =
    "socket=<path> [mac=<xx:xx:xx:xx:xx:xx>] [rx_buffers=fixed|mbuf] "
    "[connect_timeout_ms=<0..600000>] [ack_timeout_ms=<1..600000>]";

bool ParseMs(const char* port, const char* key, const char* value, int min, int* out) {
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(value, &end, 10);
  if (errno != 0 || end == value || *end != '\0' || v < min || v > 600000) {
    SIMNIC_LOG(ERR, "%s: %s=%s is not a number of milliseconds in [%d, 600000]", port, key, value,
               min);
    return false;
  }
  *out = static_cast<int>(v);
  return true;
}

bool ParsePair(const char* port, const char* key, const char* value, Devargs* out) {
  if (std::strcmp(key, kArgSocket) == 0) {
    if (value[0] == '\0' || std::strlen(value) >= sizeof(sockaddr_un::sun_path)) {
      SIMNIC_LOG(ERR, "%s: socket=%s: the path must be 1 to %zu bytes long", port, value,
                 sizeof(sockaddr_un::sun_path) - 1);
      return false;
    }
    out->socket_path = value;
    return true;
  }
  if (std::strcmp(key, kArgMac) == 0) {
    if (rte_ether_unformat_addr(value, &out->mac) != 0) {
      SIMNIC_LOG(ERR, "%s: mac=%s is not a MAC address (xx:xx:xx:xx:xx:xx)", port, value);
      return false;
    }
    if (!rte_is_unicast_ether_addr(&out->mac) || rte_is_zero_ether_addr(&out->mac)) {
      SIMNIC_LOG(ERR, "%s: mac=%s must be a non-zero unicast address", port, value);
      return false;
    }
    return true;
  }
  if (std::strcmp(key, kArgRxBuffers) == 0) {
    if (std::strcmp(value, "fixed") == 0) {
      out->rx_buffers = RxBufferMode::kFixed;
    } else if (std::strcmp(value, "mbuf") == 0) {
      out->rx_buffers = RxBufferMode::kMbuf;
    } else {
      SIMNIC_LOG(ERR, "%s: rx_buffers=%s: expected 'fixed' or 'mbuf'", port, value);
      return false;
    }
    return true;
  }
  if (std::strcmp(key, kArgConnectTimeoutMs) == 0) {
    return ParseMs(port, key, value, 0, &out->connect_timeout_ms);
  }
  if (std::strcmp(key, kArgAckTimeoutMs) == 0) {
    return ParseMs(port, key, value, 1, &out->ack_timeout_ms);
  }
  SIMNIC_LOG(ERR, "%s: unknown device argument '%s'; accepted: %s", port, key, kUsage);
  return false;
}

}  // namespace

rte_ether_addr DefaultMac(const char* port_name) {
  // FNV-1a over the name: stable across runs, distinct for distinct names.
  uint64_t h = 0xcbf29ce484222325ull;
  for (const char* p = port_name; *p != '\0'; ++p) {
    h ^= static_cast<uint8_t>(*p);
    h *= 0x100000001b3ull;
  }
  rte_ether_addr mac;
  mac.addr_bytes[0] = 0x02;  // locally administered, unicast
  for (int i = 1; i < RTE_ETHER_ADDR_LEN; ++i) {
    mac.addr_bytes[i] = static_cast<uint8_t>(h >> (8 * (i - 1)));
  }
  return mac;
}

bool ParseDevargs(const char* port_name, const char* args, Devargs* out) {
  *out = Devargs{};
  out->mac = DefaultMac(port_name);
  if (args != nullptr && args[0] != '\0') {
    // Parse with no key list, so that an unknown key can be named in the
    // error instead of a bare "invalid arguments".
    rte_kvargs* kv = rte_kvargs_parse(args, nullptr);
    if (kv == nullptr) {
      SIMNIC_LOG(ERR, "%s: cannot parse device arguments '%s'; expected %s", port_name, args,
                 kUsage);
      return false;
    }
    bool ok = true;
    for (unsigned i = 0; ok && i < kv->count; ++i) {
      const char* value = kv->pairs[i].value != nullptr ? kv->pairs[i].value : "";
      ok = ParsePair(port_name, kv->pairs[i].key, value, out);
    }
    rte_kvargs_free(kv);
    if (!ok) return false;
  }
  if (out->socket_path.empty()) {
    SIMNIC_LOG(ERR, "%s: missing socket=<path> (the device's unix socket); expected %s", port_name,
               kUsage);
    return false;
  }
  return true;
}

}  // namespace iovtee::simnic
