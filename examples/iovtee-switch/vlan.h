// VLANs in iovtee-switch: a port is either an access port of one VLAN
// (--vlan PORT=VID: its frames are untagged on it) or a trunk (the default):
// it carries every VLAN, tagged with its VID, and VLAN 0 untagged.
#ifndef IOVTEE_EXAMPLES_IOVTEE_SWITCH_VLAN_H_
#define IOVTEE_EXAMPLES_IOVTEE_SWITCH_VLAN_H_

#include <cstdint>

#include "examples/iovtee-switch/frame.h"

namespace iovtee::sw {

inline constexpr uint16_t kMaxVid = 4094;

struct PortVlan {
  uint16_t access_vid = 0;  // 0: trunk
  bool access() const { return access_vid != 0; }
};

// The VLAN a frame received on the port belongs to, or -1: a tagged frame on
// an access port is dropped.
inline int IngressVlan(const PortVlan& p, const L2Info& l2) {
  if (p.access()) return l2.tagged ? -1 : p.access_vid;
  return l2.tagged ? l2.vid() : 0;
}

enum class TagAction : uint8_t {
  kNone,       // send as it is
  kPush,       // insert a tag with the VLAN's VID
  kPop,        // remove the tag
  kNotMember,  // the port does not carry this VLAN
};

// What a frame of `vlan` (tagged or not, as it is now) needs to leave on the
// port.
inline TagAction EgressAction(const PortVlan& p, int vlan, bool tagged) {
  bool want_tag;
  if (p.access()) {
    if (vlan != p.access_vid) return TagAction::kNotMember;
    want_tag = false;
  } else {
    want_tag = vlan != 0;
  }
  if (want_tag == tagged) return TagAction::kNone;
  return want_tag ? TagAction::kPush : TagAction::kPop;
}

}  // namespace iovtee::sw

#endif  // IOVTEE_EXAMPLES_IOVTEE_SWITCH_VLAN_H_
