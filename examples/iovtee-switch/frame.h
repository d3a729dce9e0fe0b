// What iovtee-switch reads of a frame: its 802.1Q tag and, for IPv4, the
// 5-tuple the ACL matches on. Pure functions over bytes (no mbuf, no EAL), so
// the classifier is tested without DPDK running.
#ifndef IOVTEE_EXAMPLES_IOVTEE_SWITCH_FRAME_H_
#define IOVTEE_EXAMPLES_IOVTEE_SWITCH_FRAME_H_

#include <cstdint>
#include <cstring>

namespace iovtee::sw {

inline constexpr uint32_t kEthHdrLen = 14;
inline constexpr uint32_t kVlanTagLen = 4;
inline constexpr uint16_t kEtherTypeVlan = 0x8100;
inline constexpr uint16_t kEtherTypeIpv4 = 0x0800;
inline constexpr uint8_t kProtoIcmp = 1;
inline constexpr uint8_t kProtoTcp = 6;
inline constexpr uint8_t kProtoUdp = 17;
// Bytes ParseL3 may look at: Ethernet, one tag, IPv4 with options, L4 ports.
inline constexpr uint32_t kMaxHeaderBytes = kEthHdrLen + kVlanTagLen + 60 + 4;

inline uint16_t LoadBe16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
inline uint32_t LoadBe32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}

// The Layer 2 part, read for every frame.
struct L2Info {
  bool valid = false;       // at least a whole Ethernet header (and tag, if tagged)
  bool tagged = false;      // an 802.1Q tag (TPID 0x8100) follows the MACs
  uint16_t tci = 0;         // the tag's TCI (PCP, DEI, VID) when tagged
  uint16_t ether_type = 0;  // after the tag, if any
  uint16_t vid() const { return tci & 0x0fff; }
  uint32_t l3_offset() const { return kEthHdrLen + (tagged ? kVlanTagLen : 0); }
};

inline L2Info ParseL2(const uint8_t* frame, uint32_t len) {
  L2Info l2;
  if (len < kEthHdrLen) return l2;
  l2.ether_type = LoadBe16(frame + 12);
  if (l2.ether_type == kEtherTypeVlan) {
    if (len < kEthHdrLen + kVlanTagLen) return l2;
    l2.tagged = true;
    l2.tci = LoadBe16(frame + 14);
    l2.ether_type = LoadBe16(frame + 16);
  }
  l2.valid = true;
  return l2;
}

// The IPv4 5-tuple, host byte order.
struct L3Info {
  bool ipv4 = false;       // a complete IPv4 header (version 4, IHL >= 5)
  bool has_ports = false;  // TCP or UDP, not a later fragment, ports present
  uint8_t proto = 0;
  uint32_t src_ip = 0;
  uint32_t dst_ip = 0;
  uint16_t sport = 0;
  uint16_t dport = 0;
};

// `frame` holds the first `len` bytes of the frame (at least min(frame
// length, kMaxHeaderBytes) of them when the frame is longer).
L3Info ParseL3(const uint8_t* frame, uint32_t len, const L2Info& l2);

}  // namespace iovtee::sw

#endif  // IOVTEE_EXAMPLES_IOVTEE_SWITCH_FRAME_H_
