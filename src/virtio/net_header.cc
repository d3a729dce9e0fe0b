#include "src/virtio/net_header.h"

#include <cstring>

#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_hash_crc.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_sctp.h>
#include <rte_tcp.h>
#include <rte_udp.h>

namespace iovtee::virtio {
namespace {

constexpr bool Has(uint64_t features, int bit) { return ((features >> bit) & 1) != 0; }

enum class L4 : uint8_t { kNone, kTcp, kUdp, kSctp };

constexpr uint32_t kEtherHdrLen = sizeof(rte_ether_hdr);
constexpr uint32_t kVlanHdrLen = sizeof(rte_vlan_hdr);
constexpr uint32_t kIpv4MinHdrLen = sizeof(rte_ipv4_hdr);
constexpr uint32_t kIpv6HdrLen = sizeof(rte_ipv6_hdr);
constexpr uint32_t kTcpMinHdrLen = sizeof(rte_tcp_hdr);
constexpr uint32_t kTcpMaxHdrLen = 60;
constexpr uint32_t kUdpHdrLen = sizeof(rte_udp_hdr);
constexpr uint32_t kSctpHdrLen = sizeof(rte_sctp_hdr);
constexpr uint16_t kTcpCsumOffset = offsetof(rte_tcp_hdr, cksum);
constexpr uint16_t kUdpCsumOffset = offsetof(rte_udp_hdr, dgram_cksum);
constexpr uint16_t kSctpCsumOffset = offsetof(rte_sctp_hdr, cksum);
constexpr uint32_t kIpv4CsumOffset = offsetof(rte_ipv4_hdr, hdr_checksum);
constexpr uint32_t kTcpFlagsOffset = offsetof(rte_tcp_hdr, tcp_flags);
// Widths of the rte_mbuf tx_offload bitfields.
constexpr uint32_t kMaxL2Len = (1u << 7) - 1;
constexpr uint32_t kMaxL3Len = (1u << 9) - 1;

constexpr uint64_t kTunnelFlags =
    RTE_MBUF_F_TX_TUNNEL_MASK | RTE_MBUF_F_TX_OUTER_IP_CKSUM | RTE_MBUF_F_TX_OUTER_UDP_CKSUM;

static_assert(kTcpCsumOffset == 16 && kUdpCsumOffset == 6 && kSctpCsumOffset == 8);

uint16_t LoadBe16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }

// Checksum fields are read and written as the host-order value of their
// network-order bytes, the representation rte_raw_cksum() sums in; so a sum
// from it is stored with a plain copy, on any host byte order.
void Store16(uint8_t* p, uint16_t v) { std::memcpy(p, &v, sizeof(v)); }

uint16_t Fold(uint32_t sum) {
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

uint8_t IpProto(L4 l4) {
  switch (l4) {
    case L4::kTcp:
      return IPPROTO_TCP;
    case L4::kUdp:
      return IPPROTO_UDP;
    case L4::kSctp:
      return IPPROTO_SCTP;
    case L4::kNone:
      break;
  }
  return 0;
}

// The folded, uncomplemented sum of the TCP/UDP pseudo-header. `l4_len` comes
// from the IP header rather than the mbuf, so Ethernet padding stays out of it.
// Built from the packet's address bytes rather than with rte_ipv{4,6}_phdr_cksum,
// which take the protocol and length from the IP header: with IPv6 extension
// headers both are wrong there.
uint16_t PseudoHeaderSum(const uint8_t* l3, bool ipv4, uint8_t proto, uint32_t l4_len) {
  uint8_t buf[40];
  size_t n;
  if (ipv4) {
    std::memcpy(buf, l3 + offsetof(rte_ipv4_hdr, src_addr), 8);
    buf[8] = 0;
    buf[9] = proto;
    buf[10] = static_cast<uint8_t>(l4_len >> 8);
    buf[11] = static_cast<uint8_t>(l4_len);
    n = 12;
  } else {
    std::memcpy(buf, l3 + offsetof(rte_ipv6_hdr, src_addr), 32);
    buf[32] = static_cast<uint8_t>(l4_len >> 24);
    buf[33] = static_cast<uint8_t>(l4_len >> 16);
    buf[34] = static_cast<uint8_t>(l4_len >> 8);
    buf[35] = static_cast<uint8_t>(l4_len);
    buf[36] = buf[37] = buf[38] = 0;
    buf[39] = proto;
    n = 40;
  }
  return rte_raw_cksum(buf, n);
}

// Calls fn(pointer, length) for each contiguous piece of [off, off + len) of
// m's data. False (and no call past the end) when the range is not inside m.
template <typename Fn>
bool ForEachPiece(const rte_mbuf* m, uint32_t off, uint32_t len, Fn&& fn) {
  if (static_cast<uint64_t>(off) + len > rte_pktmbuf_pkt_len(m)) return false;
  for (const rte_mbuf* seg = m; seg != nullptr && len > 0; seg = seg->next) {
    const uint32_t seg_len = rte_pktmbuf_data_len(seg);
    if (off >= seg_len) {
      off -= seg_len;
      continue;
    }
    const uint32_t n = RTE_MIN(seg_len - off, len);
    fn(rte_pktmbuf_mtod_offset(seg, uint8_t*, off), n);
    len -= n;
    off = 0;
  }
  return len == 0;
}

// The folded, uncomplemented sum of a range of the packet, in rte_raw_cksum()'s
// representation. Not rte_raw_cksum_mbuf(): in DPDK 22.11 it truncates a
// segment's unfolded 32-bit sum to 16 bits before byte-swapping it when the
// segment starts at an odd distance from `off`, losing its carries.
bool RawSum(const rte_mbuf* m, uint32_t off, uint32_t len, uint16_t* out) {
  uint32_t sum = 0;
  uint32_t done = 0;
  const bool ok = ForEachPiece(m, off, len, [&sum, &done](const uint8_t* p, uint32_t n) {
    const uint16_t piece = rte_raw_cksum(p, n);
    // A piece starting at an odd distance holds its words' bytes the other
    // way round.
    sum = Fold(sum + ((done & 1) ? rte_bswap16(piece) : piece));
    done += n;
  });
  *out = Fold(sum);
  return ok;
}

// SCTP's CRC32c (RFC 4960, appendix B) over a range of the packet.
// rte_hash_crc() is not used directly: it loads through misaligned pointers.
bool SctpCrc(const rte_mbuf* m, uint32_t off, uint32_t len, uint32_t* out) {
  uint32_t crc = 0xffffffff;
  const bool ok = ForEachPiece(m, off, len, [&crc](const uint8_t* p, uint32_t n) {
    for (; n >= 8; n -= 8, p += 8) {
      uint64_t v;
      std::memcpy(&v, p, sizeof(v));
      crc = rte_hash_crc_8byte(v, crc);
    }
    for (; n > 0; --n, ++p) crc = rte_hash_crc_1byte(*p, crc);
  });
  // The CRC is stored least significant byte first (RFC 4960, appendix B).
  *out = rte_cpu_to_le_32(~crc);
  return ok;
}

// Writes `len` bytes at packet offset `off`, across segments if need be.
bool StoreBytes(rte_mbuf* m, uint32_t off, const void* src, uint32_t len) {
  const uint8_t* s = static_cast<const uint8_t*>(src);
  return ForEachPiece(m, off, len, [&s](uint8_t* p, uint32_t n) {
    std::memcpy(p, s, n);
    s += n;
  });
}

// ---------------------------------------------------------------------------
// Host -> guest.

// The frame as the sender's offload metadata describes it, checked against the
// frame. Everything the writes below touch lies in the first segment.
struct RxFrame {
  uint8_t* l3;  // IP header
  bool ipv4;
  L4 l4;            // the L4 checksum to complete, if any
  uint32_t l4_off;  // l2_len + l3_len
  uint32_t l4_len;  // L4 header and payload, as the IP header declares it
  bool cwr;         // TCP CWR flag (TSO only)
};

bool CheckRxFrame(const rte_mbuf* m, uint64_t ol, L4 l4, bool gso, RxFrame* f) {
  const uint32_t l2 = m->l2_len;
  const uint32_t l3 = m->l3_len;
  const uint32_t data_len = rte_pktmbuf_data_len(m);
  const uint32_t pkt_len = rte_pktmbuf_pkt_len(m);
  if (l2 + kIpv4MinHdrLen > data_len) return false;
  uint8_t* p = rte_pktmbuf_mtod(m, uint8_t*);
  uint8_t* ip = p + l2;

  // Flags and the version nibble must agree: a checksum written at IPv4
  // offsets into an IPv6 header would corrupt its source address.
  const uint8_t version_ihl = ip[0];
  const uint8_t version = version_ihl >> 4;
  const bool flag4 = (ol & RTE_MBUF_F_TX_IPV4) != 0;
  const bool flag6 = (ol & RTE_MBUF_F_TX_IPV6) != 0;
  if (flag4 && flag6) return false;
  if ((flag4 && version != 4) || (flag6 && version != 6)) return false;
  f->ipv4 = version == 4;
  if (version != 4 && version != 6) return false;
  if ((ol & RTE_MBUF_F_TX_IP_CKSUM) && !f->ipv4) return false;

  uint32_t l4_len;
  int next_proto = -1;  // unknown behind IPv6 extension headers
  if (f->ipv4) {
    if (l3 < kIpv4MinHdrLen || (version_ihl & 0xf) * 4u != l3) return false;
    if (l2 + l3 > data_len) return false;
    const uint32_t total = LoadBe16(ip + offsetof(rte_ipv4_hdr, total_length));
    if (total < l3 || l2 + total > pkt_len) return false;
    l4_len = total - l3;
    next_proto = ip[offsetof(rte_ipv4_hdr, next_proto_id)];
  } else {
    if (l3 < kIpv6HdrLen || l2 + l3 > data_len) return false;
    const uint32_t payload = LoadBe16(ip + offsetof(rte_ipv6_hdr, payload_len));
    if (kIpv6HdrLen + payload < l3 || l2 + kIpv6HdrLen + payload > pkt_len) return false;
    l4_len = kIpv6HdrLen + payload - l3;
    if (l3 == kIpv6HdrLen) next_proto = ip[offsetof(rte_ipv6_hdr, proto)];
  }

  f->l3 = ip;
  f->l4 = l4;
  f->l4_off = l2 + l3;
  f->l4_len = l4_len;
  f->cwr = false;
  if (l4 == L4::kNone) return true;

  if (next_proto >= 0 && next_proto != IpProto(l4)) return false;
  const uint32_t min_hdr = l4 == L4::kTcp   ? kTcpMinHdrLen
                           : l4 == L4::kUdp ? kUdpHdrLen
                                            : kSctpHdrLen;
  if (l4_len < min_hdr || f->l4_off + min_hdr > data_len) return false;
  if (gso) {
    const uint32_t l4_hdr = m->l4_len;
    if (l4 == L4::kTcp && (l4_hdr < kTcpMinHdrLen || l4_hdr > kTcpMaxHdrLen)) return false;
    if (l4 == L4::kUdp && l4_hdr != kUdpHdrLen) return false;
    if (l4_hdr > l4_len || f->l4_off + l4_hdr > data_len) return false;
    if (m->tso_segsz == 0) return false;
    if (l4 == L4::kTcp) f->cwr = (p[f->l4_off + kTcpFlagsOffset] & RTE_TCP_CWR_FLAG) != 0;
  }
  return true;
}

// DATA_VALID tells the guest the L4 checksum need not be verified. That is
// sound for a frame whose checksum a NIC verified on receive (GOOD, and not
// BAD: both bits set is RX_L4_CKSUM_NONE, "checksum not valid in the packet"):
// the switch forwards it unchanged, and one that rewrites the frame requests
// TX checksum offload, which takes the NEEDS_CSUM/software path instead. An
// application that edits checksummed fields without either must clear the RX
// flags. For a tunnelled frame a NIC's L4 verdict is about the inner header
// while the guest would apply DATA_VALID to the outermost checksum, so the
// outer L4 verdict must be GOOD too (internal::NicVerifiedL4, in the header).

// ---------------------------------------------------------------------------
// Guest -> host.

struct TxHeaders {
  uint32_t l2_len;
  uint32_t l3_len;
  uint32_t l4_len;
  bool ipv4;
  uint8_t proto;
};

// Parses Ethernet/IP/L4 headers in the first segment. False when any header is
// truncated, unknown, or when the L4 header is not where a checksum or GSO
// offload could find it (IP fragments, IPv6 routing/fragment headers).
bool ParseTxHeaders(const rte_mbuf* m, TxHeaders* h) {
  const uint32_t data_len = rte_pktmbuf_data_len(m);
  const uint8_t* p = rte_pktmbuf_mtod(m, const uint8_t*);
  if (data_len < kEtherHdrLen) return false;
  uint32_t off = kEtherHdrLen;
  uint16_t ethertype = LoadBe16(p + offsetof(rte_ether_hdr, ether_type));
  for (int tags = 0;
       tags < 2 && (ethertype == RTE_ETHER_TYPE_VLAN || ethertype == RTE_ETHER_TYPE_QINQ); ++tags) {
    if (off + kVlanHdrLen > data_len) return false;
    ethertype = LoadBe16(p + off + offsetof(rte_vlan_hdr, eth_proto));
    off += kVlanHdrLen;
  }
  const uint32_t l2 = off;

  uint8_t proto;
  if (ethertype == RTE_ETHER_TYPE_IPV4) {
    if (off + kIpv4MinHdrLen > data_len) return false;
    const uint8_t version_ihl = p[off];
    const uint32_t ihl = (version_ihl & 0xf) * 4u;
    if ((version_ihl >> 4) != 4 || ihl < kIpv4MinHdrLen || off + ihl > data_len) return false;
    // A fragment's L4 checksum covers the whole datagram, not this frame.
    if (LoadBe16(p + off + offsetof(rte_ipv4_hdr, fragment_offset)) &
        (RTE_IPV4_HDR_MF_FLAG | RTE_IPV4_HDR_OFFSET_MASK)) {
      return false;
    }
    proto = p[off + offsetof(rte_ipv4_hdr, next_proto_id)];
    off += ihl;
    h->ipv4 = true;
  } else if (ethertype == RTE_ETHER_TYPE_IPV6) {
    if (off + kIpv6HdrLen > data_len || (p[off] >> 4) != 6) return false;
    proto = p[off + offsetof(rte_ipv6_hdr, proto)];
    off += kIpv6HdrLen;
    // Hop-by-hop and destination options only: behind a routing header the
    // pseudo-header's destination is not the one in the IPv6 header.
    for (int i = 0; i < 4 && (proto == IPPROTO_HOPOPTS || proto == IPPROTO_DSTOPTS); ++i) {
      if (off + 2 > data_len) return false;
      proto = p[off];
      off += (p[off + 1] + 1u) * 8;
    }
    h->ipv4 = false;
  } else {
    return false;
  }
  if (off > data_len || off - l2 > kMaxL3Len) return false;

  uint32_t l4;
  switch (proto) {
    case IPPROTO_TCP: {
      if (off + kTcpMinHdrLen > data_len) return false;
      l4 = (p[off + offsetof(rte_tcp_hdr, data_off)] >> 4) * 4u;
      if (l4 < kTcpMinHdrLen) return false;
      break;
    }
    case IPPROTO_UDP:
      l4 = kUdpHdrLen;
      break;
    case IPPROTO_SCTP:
      l4 = kSctpHdrLen;
      break;
    default:
      return false;
  }
  if (off + l4 > data_len) return false;
  static_assert(2 * kVlanHdrLen + kEtherHdrLen <= kMaxL2Len);
  h->l2_len = l2;
  h->l3_len = off - l2;
  h->l4_len = l4;
  h->proto = proto;
  return true;
}

void ClearTxOffload(rte_mbuf* m) {
  m->ol_flags &= ~RTE_MBUF_F_TX_OFFLOAD_MASK;
  m->tx_offload = 0;
}

}  // namespace

const char* RxHeaderStatusName(RxHeaderStatus s) {
  switch (s) {
    case RxHeaderStatus::kOk:
      return "ok";
    case RxHeaderStatus::kGsoNotNegotiated:
      return "gso_not_negotiated";
    case RxHeaderStatus::kEcnNotNegotiated:
      return "ecn_not_negotiated";
    case RxHeaderStatus::kTunnelOffload:
      return "tunnel_offload";
    case RxHeaderStatus::kBadOffloadMetadata:
      return "bad_offload_metadata";
    case RxHeaderStatus::kCount:
      break;
  }
  return "unknown";
}

const char* TxHeaderStatusName(TxHeaderStatus s) {
  switch (s) {
    case TxHeaderStatus::kOk:
      return "ok";
    case TxHeaderStatus::kNotNegotiated:
      return "not_negotiated";
    case TxHeaderStatus::kBadGsoType:
      return "bad_gso_type";
    case TxHeaderStatus::kGsoSizeZero:
      return "gso_size_zero";
    case TxHeaderStatus::kGsoWithoutCsum:
      return "gso_without_csum";
    case TxHeaderStatus::kHdrLenOutOfRange:
      return "hdr_len_out_of_range";
    case TxHeaderStatus::kCsumOutOfRange:
      return "csum_out_of_range";
    case TxHeaderStatus::kGsoBadHeaders:
      return "gso_bad_headers";
    case TxHeaderStatus::kCount:
      break;
  }
  return "unknown";
}

RxHeaderStatus internal::FillRxHeaderOffloads(rte_mbuf* m, uint64_t features, VirtioNetHdr* hdr) {
  *hdr = VirtioNetHdr{};
  const uint64_t ol = m->ol_flags;
  const bool tso = (ol & RTE_MBUF_F_TX_TCP_SEG) != 0;
  const bool ufo = (ol & RTE_MBUF_F_TX_UDP_SEG) != 0;
  const uint64_t l4_req = ol & RTE_MBUF_F_TX_L4_MASK;
  const bool ip_csum = (ol & RTE_MBUF_F_TX_IP_CKSUM) != 0;
  const bool guest_csum = Has(features, kNetFGuestCsum);

  if (!tso && !ufo && l4_req == 0 && !ip_csum) {
    if (guest_csum && internal::NicVerifiedL4(m)) hdr->flags = kNetHdrFDataValid;
    return RxHeaderStatus::kOk;
  }
  if (ol & kTunnelFlags) return RxHeaderStatus::kTunnelOffload;

  // Segmentation implies the L4 checksum of its protocol (DPDK documents it
  // for TCP_SEG; virtio requires NEEDS_CSUM with every GSO type).
  L4 l4 = l4_req == RTE_MBUF_F_TX_TCP_CKSUM    ? L4::kTcp
          : l4_req == RTE_MBUF_F_TX_UDP_CKSUM  ? L4::kUdp
          : l4_req == RTE_MBUF_F_TX_SCTP_CKSUM ? L4::kSctp
                                               : L4::kNone;
  if (tso && ufo) return RxHeaderStatus::kBadOffloadMetadata;
  if (tso || ufo) {
    const L4 implied = tso ? L4::kTcp : L4::kUdp;
    if (l4 != L4::kNone && l4 != implied) return RxHeaderStatus::kBadOffloadMetadata;
    l4 = implied;
  }

  RxFrame f;
  if (!CheckRxFrame(m, ol, l4, tso || ufo, &f)) return RxHeaderStatus::kBadOffloadMetadata;

  VirtioNetHdr out{};
  bool gso = tso || ufo;
  if (gso) {
    // A frame that segmentation would leave whole needs none and goes as it
    // is. Any other needs the guest to take it unsegmented, as nothing on the
    // way there can segment. GUEST_TSO*/UFO depend on GUEST_CSUM (virtio 1.1,
    // 5.1.3.1); checked too, as NEEDS_CSUM comes along.
    const uint32_t seg_payload = tso ? f.l4_len - m->l4_len : f.l4_len;
    const bool one_segment = seg_payload <= m->tso_segsz;
    const int bit = ufo ? kNetFGuestUfo : f.ipv4 ? kNetFGuestTso4 : kNetFGuestTso6;
    if (!Has(features, bit) || !guest_csum) {
      if (!one_segment) return RxHeaderStatus::kGsoNotNegotiated;
      gso = false;
    } else if (f.cwr && !Has(features, kNetFGuestEcn)) {
      // Virtio 1.1, 5.1.6.4.1: without GUEST_ECN the device should not send
      // a TSO frame with CWR set: re-segmenting, the guest could not keep CWR
      // to the first segment.
      if (!one_segment) return RxHeaderStatus::kEcnNotNegotiated;
      gso = false;
    }
  }
  if (gso) {
    out.gso_type = ufo ? kNetHdrGsoUdp : f.ipv4 ? kNetHdrGsoTcpv4 : kNetHdrGsoTcpv6;
    if (f.cwr) out.gso_type |= kNetHdrGsoEcn;
    out.gso_size = m->tso_segsz;
    out.hdr_len = static_cast<uint16_t>(f.l4_off + m->l4_len);
  }

  // From here on the frame is written; every check is done.
  if (ip_csum || ((tso || ufo) && f.ipv4)) {
    // The guest verifies IPv4 header checksums itself and no header bit asks
    // it to fill one in. A NIC rewrites the header of every TSO/UFO segment
    // whether asked or not, so senders may leave it stale there: done too.
    // l3_len is the checked length, not the IHL read again from the frame.
    Store16(f.l3 + kIpv4CsumOffset, 0);
    Store16(f.l3 + kIpv4CsumOffset, static_cast<uint16_t>(~rte_raw_cksum(f.l3, m->l3_len)));
  }

  uint8_t* l4p = f.l3 + m->l3_len;
  if (l4 == L4::kSctp) {
    uint32_t crc = 0;
    std::memcpy(l4p + kSctpCsumOffset, &crc, sizeof(crc));
    SctpCrc(m, f.l4_off, f.l4_len, &crc);  // in range: CheckRxFrame
    std::memcpy(l4p + kSctpCsumOffset, &crc, sizeof(crc));
  } else if (l4 != L4::kNone) {
    const uint16_t field = l4 == L4::kTcp ? kTcpCsumOffset : kUdpCsumOffset;
    // Over the length of the whole (unsegmented) L4 packet, also for GSO: the
    // header promises "a fully checksummed packet" once completed, and Linux
    // re-segments from exactly that seed (Intel TSO's length-less seed, which
    // vhost writes through rte_net_intel_cksum_prepare, is not it).
    const uint16_t pseudo = PseudoHeaderSum(f.l3, f.ipv4, IpProto(l4), f.l4_len);
    if (guest_csum) {
      Store16(l4p + field, pseudo);
      out.flags = kNetHdrFNeedsCsum;
      out.csum_start = static_cast<uint16_t>(f.l4_off);
      out.csum_offset = field;
    } else {
      Store16(l4p + field, 0);
      uint16_t raw = 0;
      RawSum(m, f.l4_off, f.l4_len, &raw);  // in range: CheckRxFrame
      uint16_t csum = static_cast<uint16_t>(~Fold(uint32_t{pseudo} + raw));
      // RFC 768: a computed 0 is sent as all ones; 0 means "no checksum".
      if (csum == 0 && l4 == L4::kUdp) csum = 0xffff;
      Store16(l4p + field, csum);
    }
  }
  if (l4 == L4::kNone && guest_csum && internal::NicVerifiedL4(m)) out.flags = kNetHdrFDataValid;
  *hdr = out;
  return RxHeaderStatus::kOk;
}

TxHeaderStatus ParseTxHeader(VirtioNetHdr hdr, uint64_t features, rte_mbuf* m) {
  ClearTxOffload(m);
  const uint32_t pkt_len = rte_pktmbuf_pkt_len(m);
  if (hdr.hdr_len > pkt_len) return TxHeaderStatus::kHdrLenOutOfRange;
  // The device must ignore flag bits it does not know and DATA_VALID/RSC_INFO
  // on Tx (virtio 1.1, 5.1.6.2.2), so only NEEDS_CSUM is tested (vhost
  // compares flags for equality and so ignores NEEDS_CSUM|DATA_VALID).
  const bool needs_csum = (hdr.flags & kNetHdrFNeedsCsum) != 0;
  if (!needs_csum && hdr.gso_type == kNetHdrGsoNone) return TxHeaderStatus::kOk;
  if (needs_csum && !Has(features, kNetFCsum)) return TxHeaderStatus::kNotNegotiated;

  const bool gso = hdr.gso_type != kNetHdrGsoNone;
  const bool ecn = (hdr.gso_type & kNetHdrGsoEcn) != 0;
  const uint8_t gso_type = hdr.gso_type & ~kNetHdrGsoEcn;
  if (gso) {
    int bit;
    switch (gso_type) {
      case kNetHdrGsoTcpv4:
        bit = kNetFHostTso4;
        break;
      case kNetHdrGsoTcpv6:
        bit = kNetFHostTso6;
        break;
      case kNetHdrGsoUdp:
        if (ecn) return TxHeaderStatus::kBadGsoType;
        bit = kNetFHostUfo;
        break;
      default:  // includes GSO_UDP_L4: see kNetFHostUso
        return TxHeaderStatus::kBadGsoType;
    }
    if (!Has(features, bit) || (ecn && !Has(features, kNetFHostEcn))) {
      return TxHeaderStatus::kNotNegotiated;
    }
    if (!needs_csum) return TxHeaderStatus::kGsoWithoutCsum;
    if (hdr.gso_size == 0) return TxHeaderStatus::kGsoSizeZero;
  }
  const uint32_t csum_start = hdr.csum_start;
  const uint32_t csum_offset = hdr.csum_offset;
  if (csum_start + csum_offset + 2 > pkt_len) return TxHeaderStatus::kCsumOutOfRange;

  TxHeaders h{};
  uint64_t flags = 0;
  if (ParseTxHeaders(m, &h) && csum_start == h.l2_len + h.l3_len) {
    if (h.proto == IPPROTO_TCP && csum_offset == kTcpCsumOffset) {
      flags = RTE_MBUF_F_TX_TCP_CKSUM;
    } else if (h.proto == IPPROTO_UDP && csum_offset == kUdpCsumOffset) {
      flags = RTE_MBUF_F_TX_UDP_CKSUM;
    } else if (h.proto == IPPROTO_SCTP && csum_offset == kSctpCsumOffset) {
      flags = RTE_MBUF_F_TX_SCTP_CKSUM;
    }
  }

  if (gso) {
    // Segmentation needs the L4 header the checksum request names; vhost
    // also does not check that TCPV4 comes with IPv4 and TCPV6 with IPv6.
    const bool tcp = gso_type != kNetHdrGsoUdp;
    if (tcp ? flags != RTE_MBUF_F_TX_TCP_CKSUM : flags != RTE_MBUF_F_TX_UDP_CKSUM) {
      return TxHeaderStatus::kGsoBadHeaders;
    }
    if (tcp && h.ipv4 != (gso_type == kNetHdrGsoTcpv4)) return TxHeaderStatus::kGsoBadHeaders;
    flags |= tcp ? RTE_MBUF_F_TX_TCP_SEG : RTE_MBUF_F_TX_UDP_SEG;
    if (h.ipv4) flags |= RTE_MBUF_F_TX_IP_CKSUM;
    m->tso_segsz = hdr.gso_size;
  } else if (flags == 0) {
    // A checksum request flags cannot carry: do what the guest asked, sum
    // from csum_start to the end, in place (Linux's skb_checksum_help).
    uint16_t raw = 0;
    RawSum(m, csum_start, pkt_len - csum_start, &raw);  // in range: checked above
    uint16_t csum = static_cast<uint16_t>(~raw);
    if (csum == 0) csum = 0xffff;  // the same in ones' complement; 0 means "none" to UDP
    // The sum is of 16-bit words counted from csum_start; a field at an odd
    // distance from it straddles two of them and takes the value byte-swapped.
    if (csum_offset & 1) csum = rte_bswap16(csum);
    StoreBytes(m, csum_start + csum_offset, &csum, sizeof(csum));
    return TxHeaderStatus::kOk;
  }

  m->ol_flags |= flags | (h.ipv4 ? RTE_MBUF_F_TX_IPV4 : RTE_MBUF_F_TX_IPV6);
  m->l2_len = h.l2_len;
  m->l3_len = h.l3_len;
  m->l4_len = h.l4_len;
  return TxHeaderStatus::kOk;
}

}  // namespace iovtee::virtio
