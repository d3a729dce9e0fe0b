#include "test/softnic/peer/guest_port.h"

#include <rte_bus.h>
#include <rte_dev.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "test/softnic/peer/virtio_path_log.h"
#include "test/softnic/traffic/test_frame.h"

namespace iovtee::softnic {
namespace {

constexpr char kPortName[] = "net_virtio_user_peer";
constexpr uint16_t kMbufCache = 256;

}  // namespace

absl::StatusOr<std::unique_ptr<GuestPort>> GuestPort::Attach(const GuestPortConfig& c) {
  auto g = std::unique_ptr<GuestPort>(new GuestPort());
  g->name_ = kPortName;
  g->role_ = c.role;
  g->corrupt_canary_ = c.corrupt_canary;
  g->canary_every_ = c.canary_every;
  g->canary_countdown_ = c.canary_every == 0 ? UINT64_MAX : 1;
  g->devargs_ = absl::StrCat("path=", c.vhost_path, ",queues=1,queue_size=", c.queue_size,
                             ",packed_vq=", c.packed ? 1 : 0, ",mac=", c.mac);
  if (c.mrg_rxbuf >= 0) absl::StrAppend(&g->devargs_, ",mrg_rxbuf=", c.mrg_rxbuf);
  if (c.in_order >= 0) absl::StrAppend(&g->devargs_, ",in_order=", c.in_order);
  if (c.vectorized) absl::StrAppend(&g->devargs_, ",vectorized=1");
  if (!c.extra_devargs.empty()) absl::StrAppend(&g->devargs_, ",", c.extra_devargs);

  // The pool and the mbuf size first: nothing to undo if they fail. By
  // default one mbuf holds the largest frame (no Rx scatter needed, whatever
  // mrg_rxbuf is); the slack covers what virtio counts into its largest
  // frame (a VLAN tag and the net header).
  const uint32_t fits =
      std::max<uint32_t>(RTE_MBUF_DEFAULT_BUF_SIZE, c.max_frame + RTE_PKTMBUF_HEADROOM + 64);
  g->data_room_ = c.data_room != 0 ? c.data_room : fits;
  const bool scatter = g->data_room_ < fits;
  if (scatter && c.mrg_rxbuf == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "guest mbufs of ", g->data_room_, " bytes cannot hold frames of ", c.max_frame,
        " bytes without mergeable Rx buffers (--guest-mrg-rxbuf=1, or a larger data room)"));
  }
  // The Rx ring (one mbuf per descriptor), the Tx ring full of echoed or
  // generated frames (virtio frees them only when it sends again: with
  // indirect descriptors a frame of `segs` mbufs takes one slot), bursts in
  // flight and the lcore cache, with room.
  const uint32_t room = g->data_room_ - RTE_PKTMBUF_HEADROOM;
  const uint32_t segs = (c.max_frame + CanaryPool::kNetHdrBytes + room - 1) / room;
  const uint32_t mbufs = c.queue_size * (2 + segs) + 4 * kMbufCache - 1;
  if (g->data_room_ > UINT16_MAX) {
    return absl::InvalidArgumentError(
        absl::StrCat("frames of ", c.max_frame, " bytes are too big"));
  }
  auto pool = CanaryPool::Create("peer_guest", mbufs, kMbufCache,
                                 static_cast<uint16_t>(g->data_room_), rte_socket_id());
  if (!pool.ok()) return pool.status();
  g->pool_ = std::move(*pool);
  if (c.role == GuestRole::kCheck) g->linear_.resize(kMaxFrameBytes + 64);

  // The PMD says which burst functions it chose when the port starts.
  VirtioPathLog path_log;
  int r = rte_eal_hotplug_add("vdev", kPortName, g->devargs_.c_str());
  if (r != 0) {
    // A device whose probe failed stays on the vdev bus unprobed; the next
    // attempt probes it again with fresh devargs.
    return absl::UnavailableError(
        absl::StrCat("cannot plug ", kPortName, ",", g->devargs_, ": ", rte_strerror(-r)));
  }
  g->plugged_ = true;
  if (rte_eth_dev_get_port_by_name(kPortName, &g->port_) != 0) {
    return absl::InternalError(absl::StrCat("no ethdev port named ", kPortName, " after probe"));
  }
  const uint16_t port = g->port_;
  rte_eth_conf conf = {};
  if (c.max_frame > RTE_ETHER_MAX_LEN - RTE_ETHER_CRC_LEN) {
    conf.rxmode.mtu = c.max_frame - RTE_ETHER_HDR_LEN;
  }
  if (scatter) conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_SCATTER;
  if ((r = rte_eth_dev_configure(port, 1, 1, &conf)) != 0) {
    return absl::InternalError(absl::StrCat("cannot configure the guest port (mtu ",
                                            conf.rxmode.mtu, scatter ? ", Rx scatter" : "",
                                            "): ", rte_strerror(-r)));
  }
  const int socket = rte_eth_dev_socket_id(port);
  if ((r = rte_eth_rx_queue_setup(port, 0, static_cast<uint16_t>(c.queue_size), socket, nullptr,
                                  g->pool_->pool())) != 0 ||
      (r = rte_eth_tx_queue_setup(port, 0, static_cast<uint16_t>(c.queue_size), socket, nullptr)) !=
          0) {
    return absl::InternalError(
        absl::StrCat("cannot set up the guest port's queues: ", rte_strerror(-r)));
  }
  if ((r = rte_eth_dev_start(port)) != 0) {
    return absl::InternalError(absl::StrCat("cannot start the guest port: ", rte_strerror(-r)));
  }
  g->started_ = true;
  g->rx_path_ = path_log.rx_path();
  g->tx_path_ = path_log.tx_path();
  if (c.vectorized && g->rx_path_.find("vectorized") == std::string::npos) {
    const std::vector<std::string> why = path_log.vectorized_notes();
    return absl::InvalidArgumentError(absl::StrCat(
        "vectorized=1, but the virtio PMD runs the ",
        g->rx_path_.empty() ? "(unreported)" : g->rx_path_, " Rx path",
        why.empty() ? "" : absl::StrCat(": ", absl::StrJoin(why, "; ")),
        c.packed ? " (a packed ring's vectorized Rx path needs AVX512 in DPDK's build and "
                   "the CPU, and VIRTIO_F_IN_ORDER)"
                 : " (a split ring's vectorized Rx path needs mergeable buffers and "
                   "VIRTIO_F_IN_ORDER off, no Rx offloads and 128-bit SIMD: --guest-mrg-rxbuf=0 "
                   "--guest-in-order=0)"));
  }
  return g;
}

GuestPort::~GuestPort() { Detach(); }

void GuestPort::Detach() {
  if (plugged_ && port_ != UINT16_MAX) {
    eth_stats();  // the last values, for the report
    if (started_) rte_eth_dev_stop(port_);
    rte_eth_dev_close(port_);  // frees the mbufs of both rings
  }
  if (plugged_) rte_eal_hotplug_remove("vdev", name_.c_str());
  plugged_ = false;
  started_ = false;
  port_ = UINT16_MAX;
  if (pool_ != nullptr && !pool_->counts().pool_check_done) pool_->CheckPool();
}

uint32_t GuestPort::Poll(StreamChecker* checker, uint64_t now) {
  rte_mbuf* pkts[kBurst];
  const uint16_t n = rte_eth_rx_burst(port_, 0, pkts, kBurst);
  if (n == 0) return 0;
  if (corrupt_canary_) {
    CanaryPool::CorruptTail(pkts[0]);
    corrupt_canary_ = false;
  }
  for (uint16_t i = 0; i < n; ++i) {
    if (--canary_countdown_ == 0) {
      canary_countdown_ = canary_every_;
      pool_->Check(pkts[i]);
    }
    counters_.rx_segments += pkts[i]->nb_segs;
  }
  counters_.rx += n;
  counters_.full_rx_bursts += n == kBurst;
  if (role_ == GuestRole::kCheck) {
    for (uint16_t i = 0; i < n; ++i) {
      rte_mbuf* m = pkts[i];
      const uint32_t len = std::min<uint32_t>(m->pkt_len, static_cast<uint32_t>(linear_.size()));
      const auto* data = static_cast<const uint8_t*>(rte_pktmbuf_read(m, 0, len, linear_.data()));
      if (checker != nullptr && data != nullptr) checker->Check(data, len, now);
    }
    rte_pktmbuf_free_bulk(pkts, n);
    return n;
  }
  for (uint16_t i = 0; i < n; ++i) {
    if (i + 1 < n) rte_prefetch0(rte_pktmbuf_mtod(pkts[i + 1], void*));
    auto* eth = rte_pktmbuf_mtod(pkts[i], rte_ether_hdr*);
    const rte_ether_addr dst = eth->dst_addr;
    eth->dst_addr = eth->src_addr;
    eth->src_addr = dst;
  }
  const uint16_t sent = rte_eth_tx_burst(port_, 0, pkts, n);
  if (sent < n) {
    rte_pktmbuf_free_bulk(pkts + sent, n - sent);
    counters_.drops += n - sent;
  }
  counters_.tx += sent;
  return n;
}

uint32_t GuestPort::Generate(Generator& gen, uint32_t n, uint64_t now) {
  rte_mbuf* pkts[kBurst];
  n = std::min<uint32_t>(n, kBurst);
  if (n == 0) return 0;
  if (rte_pktmbuf_alloc_bulk(pool_->pool(), pkts, n) != 0) {
    ++counters_.gen_nombuf;
    return 0;
  }
  uint32_t made = 0;
  for (; made < n; ++made) {
    rte_mbuf* m = pkts[made];
    const uint32_t len = gen.Next(rte_pktmbuf_mtod(m, uint8_t*), rte_pktmbuf_tailroom(m), now);
    if (len == 0) break;  // does not fit one mbuf
    m->data_len = static_cast<uint16_t>(len);
    m->pkt_len = len;
  }
  if (made < n) rte_pktmbuf_free_bulk(pkts + made, n - made);
  const uint16_t sent = rte_eth_tx_burst(port_, 0, pkts, static_cast<uint16_t>(made));
  if (sent < made) rte_pktmbuf_free_bulk(pkts + sent, made - sent);
  counters_.gen_sent += sent;
  counters_.gen_refused += made - sent;
  return made;
}

bool GuestPort::link_up() const {
  if (port_ == UINT16_MAX) return false;
  rte_eth_link link = {};
  return rte_eth_link_get_nowait(port_, &link) == 0 && link.link_status == RTE_ETH_LINK_UP;
}

GuestPort::EthStats GuestPort::eth_stats() const {
  rte_eth_stats s = {};
  if (port_ == UINT16_MAX || rte_eth_stats_get(port_, &s) != 0) return last_stats_;
  last_stats_.ipackets = s.ipackets;
  last_stats_.opackets = s.opackets;
  last_stats_.imissed = s.imissed;
  last_stats_.ierrors = s.ierrors;
  last_stats_.oerrors = s.oerrors;
  last_stats_.rx_nombuf = s.rx_nombuf;
  return last_stats_;
}

}  // namespace iovtee::softnic
