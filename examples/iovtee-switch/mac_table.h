// The switch's MAC table: static entries (--mac PORT=MAC; never age, never
// move, valid in every VLAN their port carries) and learned entries per
// (VLAN, MAC) that age out after --mac-aging seconds.
//
// Time is whatever monotonic tick the caller passes (the switch uses the
// TSC), so the table is tested without a clock. No allocation after
// construction: learned entries are capped, and the map is reserved at twice
// the cap so that erasing and inserting never grows it.
#ifndef IOVTEE_EXAMPLES_IOVTEE_SWITCH_MAC_TABLE_H_
#define IOVTEE_EXAMPLES_IOVTEE_SWITCH_MAC_TABLE_H_

#include <cstdint>
#include <cstring>
#include <string>

#include "absl/container/flat_hash_map.h"

namespace iovtee::sw {

// A MAC address as the low 48 bits of an integer, in wire order (byte 0 is
// the lowest byte on little-endian machines); the same bytes, the same key.
// Two loads, no 8-byte read of a partly written stack slot (a 6-byte memcpy
// into a uint64_t stalls on store forwarding: ~15 cycles a key).
inline uint64_t MacKey(const uint8_t* mac) {
  uint32_t lo;
  uint16_t hi;
  std::memcpy(&lo, mac, 4);
  std::memcpy(&hi, mac + 4, 2);
  return uint64_t{lo} | uint64_t{hi} << 32;
}
inline bool IsMulticastMac(const uint8_t* mac) { return (mac[0] & 1) != 0; }

// "02:00:00:00:00:0b" -> 6 bytes; false when malformed.
bool ParseMac(const std::string& s, uint8_t out[6]);

class MacTable {
 public:
  // `capacity` learned entries at most; `aging_ticks` 0: entries never age.
  MacTable(uint32_t capacity, uint64_t aging_ticks);

  // Before forwarding starts (it may allocate). A MAC has one static port.
  void AddStatic(uint64_t mac, uint16_t port) { static_[mac] = port; }
  // The static port of `mac`, or -1.
  int LookupStatic(uint64_t mac) const {
    if (static_.empty()) return -1;
    auto it = static_.find(mac);
    return it == static_.end() ? -1 : it->second;
  }
  bool IsStatic(uint64_t mac) const { return !static_.empty() && static_.count(mac) != 0; }

  enum class Learned : uint8_t {
    kRefreshed,  // known on that port already: only its age changed
    kChanged,    // new, or moved from another port
    kFull,       // not learned: the table is full
  };
  // Records that `mac` in `vlan` was seen on `port` at `now` (static MACs are
  // not learned: kRefreshed).
  Learned Learn(uint16_t vlan, uint64_t mac, uint16_t port, uint64_t now) {
    if (IsStatic(mac)) return Learned::kRefreshed;
    const uint64_t key = Key(vlan, mac);
    auto it = learned_.find(key);
    if (it != learned_.end()) {
      const bool moved = it->second.port != port;
      it->second.port = port;
      it->second.seen = now;
      return moved ? Learned::kChanged : Learned::kRefreshed;
    }
    if (learned_.size() >= capacity_) return Learned::kFull;
    learned_.emplace(key, Entry{port, now});
    return Learned::kChanged;
  }

  // The learned port of `mac` in `vlan`, or -1 (unknown or aged out).
  int LookupLearned(uint16_t vlan, uint64_t mac, uint64_t now) const {
    auto it = learned_.find(Key(vlan, mac));
    if (it == learned_.end() || Aged(it->second, now)) return -1;
    return it->second.port;
  }

  // Removes the aged entries; returns how many.
  size_t Expire(uint64_t now);
  // Forgets what was learned on `port` (its guest went away).
  size_t Forget(uint16_t port);

  size_t learned() const { return learned_.size(); }
  size_t statics() const { return static_.size(); }
  uint32_t capacity() const { return capacity_; }

 private:
  struct Entry {
    uint16_t port;
    uint64_t seen;
  };
  static uint64_t Key(uint16_t vlan, uint64_t mac) { return uint64_t{vlan} << 48 | mac; }
  bool Aged(const Entry& e, uint64_t now) const {
    return aging_ticks_ != 0 && now - e.seen >= aging_ticks_;
  }

  const uint32_t capacity_;
  const uint64_t aging_ticks_;
  absl::flat_hash_map<uint64_t, Entry> learned_;
  absl::flat_hash_map<uint64_t, uint16_t> static_;
};

}  // namespace iovtee::sw

#endif  // IOVTEE_EXAMPLES_IOVTEE_SWITCH_MAC_TABLE_H_
