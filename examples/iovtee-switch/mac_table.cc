#include "examples/iovtee-switch/mac_table.h"

#include <cstdio>

namespace iovtee::sw {

bool ParseMac(const std::string& s, uint8_t out[6]) {
  unsigned v[6];
  char extra;
  if (s.size() != 17 || std::sscanf(s.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2],
                                    &v[3], &v[4], &v[5], &extra) != 6) {
    return false;
  }
  for (int i = 0; i < 6; ++i) out[i] = static_cast<uint8_t>(v[i]);
  return true;
}

MacTable::MacTable(uint32_t capacity, uint64_t aging_ticks)
    : capacity_(capacity), aging_ticks_(aging_ticks) {
  // Twice the cap: erasures leave tombstones, and a table at most half full
  // cleans them up in place instead of growing.
  learned_.reserve(2 * static_cast<size_t>(capacity));
}

size_t MacTable::Expire(uint64_t now) {
  size_t n = 0;
  for (auto it = learned_.begin(); it != learned_.end();) {
    if (Aged(it->second, now)) {
      learned_.erase(it++);
      ++n;
    } else {
      ++it;
    }
  }
  return n;
}

size_t MacTable::Forget(uint16_t port) {
  size_t n = 0;
  for (auto it = learned_.begin(); it != learned_.end();) {
    if (it->second.port == port) {
      learned_.erase(it++);
      ++n;
    } else {
      ++it;
    }
  }
  return n;
}

}  // namespace iovtee::sw
