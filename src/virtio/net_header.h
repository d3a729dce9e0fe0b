// The virtio-net header (virtio 1.1, section 5.1.6) as the device sees it, and
// its translation from and to DPDK mbuf offload requests in both directions:
//
//   host -> guest (Rx queue):  FillRxHeader turns an mbuf's TX offload request
//                              (and a NIC's RX checksum verdict) into a header;
//   guest -> host (Tx queue):  ParseTxHeader turns a header into TX offload
//                              flags and lengths on the mbuf, as librte_vhost
//                              22.11 does with legacy offload flags.
//
// Only offloads the guest negotiated are ever expressed in a header; what the
// guest cannot take is done here in software or reported as a drop reason.
// Neither function allocates, logs or reads outside the mbuf's data; both read
// every packet field they depend on once, so a frame living in guest memory
// cannot change under a check. Headers are little-endian: virtio 1.x headers
// always are, legacy ones are guest-native, so legacy big-endian guests are
// not supported (ring_layout.h admits little-endian hosts only).
#ifndef IOVTEE_SRC_VIRTIO_NET_HEADER_H_
#define IOVTEE_SRC_VIRTIO_NET_HEADER_H_

#include <cstddef>
#include <cstdint>

#include <rte_mbuf.h>

#include "src/virtio/ring_layout.h"

struct rte_mbuf;

namespace iovtee::virtio {

// virtio-net feature bits (virtio 1.1, section 5.1.3). "Host" bits let the
// driver hand the device partial work on Tx, "guest" bits let the device hand
// the driver partial work on Rx. VIRTIO_F_VERSION_1 is kFVersion1.
inline constexpr int kNetFCsum = 0;       // VIRTIO_NET_F_CSUM
inline constexpr int kNetFGuestCsum = 1;  // VIRTIO_NET_F_GUEST_CSUM
inline constexpr int kNetFGuestTso4 = 7;  // VIRTIO_NET_F_GUEST_TSO4
inline constexpr int kNetFGuestTso6 = 8;  // VIRTIO_NET_F_GUEST_TSO6
inline constexpr int kNetFGuestEcn = 9;   // VIRTIO_NET_F_GUEST_ECN
inline constexpr int kNetFGuestUfo = 10;  // VIRTIO_NET_F_GUEST_UFO
inline constexpr int kNetFHostTso4 = 11;  // VIRTIO_NET_F_HOST_TSO4
inline constexpr int kNetFHostTso6 = 12;  // VIRTIO_NET_F_HOST_TSO6
inline constexpr int kNetFHostEcn = 13;   // VIRTIO_NET_F_HOST_ECN
inline constexpr int kNetFHostUfo = 14;   // VIRTIO_NET_F_HOST_UFO
inline constexpr int kNetFMrgRxbuf = 15;  // VIRTIO_NET_F_MRG_RXBUF
// UDP segmentation (USO). Never to be offered: DPDK 22.11 has no mbuf flag for
// it (RTE_MBUF_F_TX_UDP_SEG is IP fragmentation, i.e. UFO), so GSO_UDP_L4 is
// refused on Tx and never produced on Rx.
inline constexpr int kNetFGuestUso4 = 54;  // VIRTIO_NET_F_GUEST_USO4
inline constexpr int kNetFGuestUso6 = 55;  // VIRTIO_NET_F_GUEST_USO6
inline constexpr int kNetFHostUso = 56;    // VIRTIO_NET_F_HOST_USO

// The offload features whose header semantics this file implements; the
// control layer offers at most these (plus MRG_RXBUF, which only sizes the
// header).
inline constexpr uint64_t kNetHeaderOffloadFeatures =
    (uint64_t{1} << kNetFCsum) | (uint64_t{1} << kNetFGuestCsum) | (uint64_t{1} << kNetFGuestTso4) |
    (uint64_t{1} << kNetFGuestTso6) | (uint64_t{1} << kNetFGuestEcn) |
    (uint64_t{1} << kNetFGuestUfo) | (uint64_t{1} << kNetFHostTso4) |
    (uint64_t{1} << kNetFHostTso6) | (uint64_t{1} << kNetFHostEcn) | (uint64_t{1} << kNetFHostUfo);

// VirtioNetHdr::flags.
inline constexpr uint8_t kNetHdrFNeedsCsum = 1;  // VIRTIO_NET_HDR_F_NEEDS_CSUM
inline constexpr uint8_t kNetHdrFDataValid = 2;  // VIRTIO_NET_HDR_F_DATA_VALID
inline constexpr uint8_t kNetHdrFRscInfo = 4;    // VIRTIO_NET_HDR_F_RSC_INFO

// VirtioNetHdr::gso_type.
inline constexpr uint8_t kNetHdrGsoNone = 0;    // VIRTIO_NET_HDR_GSO_NONE
inline constexpr uint8_t kNetHdrGsoTcpv4 = 1;   // VIRTIO_NET_HDR_GSO_TCPV4
inline constexpr uint8_t kNetHdrGsoUdp = 3;     // VIRTIO_NET_HDR_GSO_UDP (UFO)
inline constexpr uint8_t kNetHdrGsoTcpv6 = 4;   // VIRTIO_NET_HDR_GSO_TCPV6
inline constexpr uint8_t kNetHdrGsoUdpL4 = 5;   // VIRTIO_NET_HDR_GSO_UDP_L4 (USO)
inline constexpr uint8_t kNetHdrGsoEcn = 0x80;  // VIRTIO_NET_HDR_GSO_ECN (TCP only)

// struct virtio_net_hdr_mrg_rxbuf. Legacy devices without MRG_RXBUF use only
// the first 10 bytes (no num_buffers).
struct VirtioNetHdr {
  uint8_t flags;
  uint8_t gso_type;
  uint16_t hdr_len;      // le16
  uint16_t gso_size;     // le16
  uint16_t csum_start;   // le16
  uint16_t csum_offset;  // le16
  uint16_t num_buffers;  // le16
};
static_assert(sizeof(VirtioNetHdr) == 12);
static_assert(offsetof(VirtioNetHdr, hdr_len) == 2);
static_assert(offsetof(VirtioNetHdr, gso_size) == 4);
static_assert(offsetof(VirtioNetHdr, csum_start) == 6);
static_assert(offsetof(VirtioNetHdr, csum_offset) == 8);
static_assert(offsetof(VirtioNetHdr, num_buffers) == 10);

inline constexpr size_t kNetHdrLegacySize = offsetof(VirtioNetHdr, num_buffers);
inline constexpr size_t kNetHdrMrgSize = sizeof(VirtioNetHdr);

// Bytes of virtio-net header in front of every frame, both directions: 12 with
// VERSION_1 or MRG_RXBUF, 10 for a legacy device without mergeable buffers.
inline constexpr size_t NetHdrSize(uint64_t features) {
  return ((features >> kFVersion1) & 1) || ((features >> kNetFMrgRxbuf) & 1) ? kNetHdrMrgSize
                                                                             : kNetHdrLegacySize;
}

// What FillRxHeader decided. Every value but kOk means the frame cannot be
// delivered to this guest and is to be dropped (and counted) by the caller.
enum class RxHeaderStatus : uint8_t {
  kOk = 0,
  kGsoNotNegotiated,    // TSO/UFO requested; the guest lacks GUEST_TSO4/TSO6/UFO
                        // (or GUEST_CSUM, which they depend on). Nobody can segment.
  kEcnNotNegotiated,    // TSO of a segment with CWR set; the guest lacks GUEST_ECN
  kTunnelOffload,       // outer/tunnel offload flags: virtio-net 1.1 cannot express them
  kBadOffloadMetadata,  // ol_flags or l2/l3/l4_len/tso_segsz do not describe the frame
  kCount,
};

// A short stable name for logs, counters and telemetry ("gso_not_negotiated").
const char* RxHeaderStatusName(RxHeaderStatus s);

// Host -> guest. Builds the header for a frame the device delivers into a guest
// Rx buffer, from m's TX offload request (what the sender left for "the NIC"
// to do) under the guest's negotiated `features`:
//  - L4 checksum (RTE_MBUF_F_TX_{TCP,UDP}_CKSUM, implied by TCP_SEG/UDP_SEG):
//    with GUEST_CSUM, NEEDS_CSUM with csum_start = l2_len + l3_len and the
//    offset of the checksum field, which is set to the pseudo-header sum
//    (over the L4 length the IP header declares) as the guest completes it;
//    without GUEST_CSUM the full checksum is computed here (multi-segment
//    mbufs included).
//  - SCTP (RTE_MBUF_F_TX_SCTP_CKSUM): the CRC32c is always computed here;
//    NEEDS_CSUM promises a ones'-complement sum, which SCTP's CRC is not.
//  - RTE_MBUF_F_TX_IP_CKSUM: the IPv4 header checksum is computed here; no
//    virtio-net bit asks the guest for it.
//  - RTE_MBUF_F_TX_TCP_SEG: GSO_TCPV4/TCPV6 (+GSO_ECN when the frame carries
//    CWR), gso_size = tso_segsz, hdr_len = l2_len + l3_len + l4_len, and the
//    IPv4 header checksum computed. RTE_MBUF_F_TX_UDP_SEG (UDP fragmentation,
//    UFO) gives GSO_UDP likewise. A guest without the GUEST_ feature (or
//    GUEST_ECN for CWR) gets kGsoNotNegotiated (kEcnNotNegotiated), unless the
//    frame fits one segment: then it is delivered unsegmented, without GSO.
//  - No L4 request and a NIC verdict of RTE_MBUF_F_RX_L4_CKSUM_GOOD: DATA_VALID
//    when the guest negotiated GUEST_CSUM (see the .cc for why that is sound).
// Every field not set is zero; num_buffers is left 0 for the caller, who
// writes the number of buffers used with MRG_RXBUF and 1 otherwise (VERSION_1
// without MRG_RXBUF). *hdr is a full 12-byte struct in host memory: copy
// NetHdrSize(features) bytes of it to the guest, never write it in place over
// a 10-byte legacy header. m's flags and lengths are not changed, and the
// writes into the frame are idempotent, so one frame may be filled for several
// guests in turn (each copy taken before the next Fill).
// Cost: headers only, plus one pass over the L4 payload when a checksum is
// completed in software. On any status but kOk *hdr is zero and the frame is
// untouched.
RxHeaderStatus FillRxHeader(rte_mbuf* m, uint64_t features, VirtioNetHdr* hdr);

namespace internal {
// FillRxHeader for frames with Tx offload requests.
RxHeaderStatus FillRxHeaderOffloads(rte_mbuf* m, uint64_t features, VirtioNetHdr* hdr);

// The NIC verified the L4 checksum (and, in a tunnel, the outer one: the
// guest applies DATA_VALID to the outermost checksum).
inline bool NicVerifiedL4(const rte_mbuf* m) {
  const uint64_t ol = m->ol_flags;
  if ((ol & RTE_MBUF_F_RX_L4_CKSUM_MASK) != RTE_MBUF_F_RX_L4_CKSUM_GOOD) return false;
  return (m->packet_type & RTE_PTYPE_TUNNEL_MASK) == 0 ||
         (ol & RTE_MBUF_F_RX_OUTER_L4_CKSUM_MASK) == RTE_MBUF_F_RX_OUTER_L4_CKSUM_GOOD;
}
}  // namespace internal

// The common case (no offload requested) inline: it runs once per frame.
inline RxHeaderStatus FillRxHeader(rte_mbuf* m, uint64_t features, VirtioNetHdr* hdr) {
  constexpr uint64_t kRequests = RTE_MBUF_F_TX_TCP_SEG | RTE_MBUF_F_TX_UDP_SEG |
                                 RTE_MBUF_F_TX_L4_MASK | RTE_MBUF_F_TX_IP_CKSUM;
  if ((m->ol_flags & kRequests) != 0) return internal::FillRxHeaderOffloads(m, features, hdr);
  *hdr = VirtioNetHdr{};
  if (((features >> kNetFGuestCsum) & 1) && internal::NicVerifiedL4(m)) {
    hdr->flags = kNetHdrFDataValid;
  }
  return RxHeaderStatus::kOk;
}

// What ParseTxHeader found. Every value but kOk means the guest broke the
// virtio-net rules for this frame; the caller drops it (its checksum may be
// incomplete or it may exceed the MTU) and counts the reason.
enum class TxHeaderStatus : uint8_t {
  kOk = 0,
  kNotNegotiated,     // NEEDS_CSUM without CSUM, or a GSO type/ECN without its HOST_ feature
  kBadGsoType,        // unknown gso_type, GSO_UDP_L4 (USO), or ECN on a non-TCP type
  kGsoSizeZero,       // GSO requested with gso_size 0
  kGsoWithoutCsum,    // GSO without NEEDS_CSUM (virtio 1.1, 5.1.6.2.1)
  kHdrLenOutOfRange,  // hdr_len beyond the packet
  kCsumOutOfRange,    // csum_start + csum_offset + 2 beyond the packet
  kGsoBadHeaders,     // GSO frame whose headers are truncated, unparseable, fragmented,
                      // or disagree with gso_type or csum_start/csum_offset
  kCount,
};

// A short stable name for logs, counters and telemetry ("csum_out_of_range").
const char* TxHeaderStatusName(TxHeaderStatus s);

// Guest -> host. Translates the header of a frame the guest sent into TX
// offload flags and lengths on m (which holds the frame, without the header),
// like librte_vhost 22.11's legacy dequeue offload: the Ethernet (up to two
// VLAN tags), IPv4/IPv6 and TCP/UDP/SCTP headers are parsed from m's first
// segment with bounds checks and set l2_len/l3_len/l4_len and
// RTE_MBUF_F_TX_IPV4/IPV6; NEEDS_CSUM whose csum_start/csum_offset name the TCP,
// UDP or SCTP checksum sets RTE_MBUF_F_TX_{TCP,UDP,SCTP}_CKSUM; GSO_TCPV4/V6
// sets RTE_MBUF_F_TX_TCP_SEG, GSO_UDP sets RTE_MBUF_F_TX_UDP_SEG, both with
// tso_segsz = gso_size (and RTE_MBUF_F_TX_IP_CKSUM over IPv4, as DPDK's TSO
// contract asks: every segment gets a new IPv4 header).
// A valid NEEDS_CSUM that cannot be expressed as flags (IPv6 routing header,
// IP fragment, a tunnel's inner checksum, headers outside the first segment)
// is completed here in software, as the guest asked, and returns kOk.
// The L4 checksum field keeps the guest's pseudo-header sum; a caller sending
// to a NIC runs rte_eth_tx_prepare() to convert it where the PMD needs to.
// `hdr` is taken by value so that a header still in guest memory is read once.
// num_buffers and the DATA_VALID/RSC_INFO flags are ignored (the driver must
// not set them). On any status but kOk, m's TX offload flags and lengths are
// cleared and the frame is untouched.
TxHeaderStatus ParseTxHeader(VirtioNetHdr hdr, uint64_t features, rte_mbuf* m);

}  // namespace iovtee::virtio

#endif  // IOVTEE_SRC_VIRTIO_NET_HEADER_H_
