#include "examples/iovtee-switch/frame.h"

namespace iovtee::sw {

L3Info ParseL3(const uint8_t* frame, uint32_t len, const L2Info& l2) {
  L3Info l3;
  if (!l2.valid || l2.ether_type != kEtherTypeIpv4) return l3;
  const uint32_t off = l2.l3_offset();
  if (len < off + 20) return l3;
  const uint8_t* ip = frame + off;
  const uint32_t ihl = (ip[0] & 0x0f) * 4u;
  if ((ip[0] >> 4) != 4 || ihl < 20 || len < off + ihl) return l3;
  l3.ipv4 = true;
  l3.proto = ip[9];
  l3.src_ip = LoadBe32(ip + 12);
  l3.dst_ip = LoadBe32(ip + 16);
  // Only the first fragment (offset 0) carries the L4 header.
  const bool later_fragment = (LoadBe16(ip + 6) & 0x1fff) != 0;
  if ((l3.proto == kProtoTcp || l3.proto == kProtoUdp) && !later_fragment && len >= off + ihl + 4) {
    l3.has_ports = true;
    l3.sport = LoadBe16(ip + ihl);
    l3.dport = LoadBe16(ip + ihl + 2);
  }
  return l3;
}

}  // namespace iovtee::sw
