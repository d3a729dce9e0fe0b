#include "test/softnic/peer/guest_port.h"

#include <rte_bus.h>
#include <rte_dev.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace iovtee::softnic {
namespace {

constexpr char kPortName[] = "net_virtio_user_peer";
constexpr uint16_t kMbufCache = 256;

}  // namespace

absl::StatusOr<std::unique_ptr<GuestPort>> GuestPort::Attach(const GuestPortConfig& c) {
  auto g = std::unique_ptr<GuestPort>(new GuestPort());
  g->name_ = kPortName;
  g->devargs_ = absl::StrCat("path=", c.vhost_path, ",queues=1,queue_size=", c.queue_size,
                             ",packed_vq=", c.packed ? 1 : 0, ",mac=", c.mac);
  if (c.mrg_rxbuf >= 0) absl::StrAppend(&g->devargs_, ",mrg_rxbuf=", c.mrg_rxbuf);
  if (c.in_order >= 0) absl::StrAppend(&g->devargs_, ",in_order=", c.in_order);
  if (c.vectorized) absl::StrAppend(&g->devargs_, ",vectorized=1");
  if (!c.extra_devargs.empty()) absl::StrAppend(&g->devargs_, ",", c.extra_devargs);

  // The pool and the mbuf size first: nothing to undo if they fail. One mbuf
  // holds the largest frame (no Rx scatter needed, whatever mrg_rxbuf is).
  const uint32_t data_room =
      std::max<uint32_t>(RTE_MBUF_DEFAULT_BUF_SIZE, c.max_frame + RTE_PKTMBUF_HEADROOM + 64);
  if (data_room > UINT16_MAX) {
    return absl::InvalidArgumentError(
        absl::StrCat("frames of ", c.max_frame, " bytes are too big"));
  }
  // Rx ring + Tx ring in flight + a burst + the lcore cache, with room.
  const uint32_t mbufs = 4 * c.queue_size + 4 * kMbufCache - 1;
  g->pool_ = rte_pktmbuf_pool_create("peer_guest", mbufs, kMbufCache, 0,
                                     static_cast<uint16_t>(data_room), rte_socket_id());
  if (g->pool_ == nullptr) {
    return absl::ResourceExhaustedError(absl::StrCat("cannot create the guest's pool of ", mbufs,
                                                     " mbufs: ", rte_strerror(rte_errno),
                                                     " (more EAL memory: -m)"));
  }

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
  if ((r = rte_eth_dev_configure(port, 1, 1, &conf)) != 0) {
    return absl::InternalError(absl::StrCat("cannot configure the guest port (mtu ",
                                            conf.rxmode.mtu, "): ", rte_strerror(-r)));
  }
  const int socket = rte_eth_dev_socket_id(port);
  if ((r = rte_eth_rx_queue_setup(port, 0, static_cast<uint16_t>(c.queue_size), socket, nullptr,
                                  g->pool_)) != 0 ||
      (r = rte_eth_tx_queue_setup(port, 0, static_cast<uint16_t>(c.queue_size), socket, nullptr)) !=
          0) {
    return absl::InternalError(
        absl::StrCat("cannot set up the guest port's queues: ", rte_strerror(-r)));
  }
  if ((r = rte_eth_dev_start(port)) != 0) {
    return absl::InternalError(absl::StrCat("cannot start the guest port: ", rte_strerror(-r)));
  }
  g->started_ = true;
  return g;
}

GuestPort::~GuestPort() {
  if (plugged_ && port_ != UINT16_MAX) {
    if (started_) rte_eth_dev_stop(port_);
    rte_eth_dev_close(port_);
  }
  if (plugged_) rte_eal_hotplug_remove("vdev", name_.c_str());
  if (pool_ != nullptr) rte_mempool_free(pool_);
}

uint32_t GuestPort::Poll() {
  rte_mbuf* pkts[kBurst];
  const uint16_t n = rte_eth_rx_burst(port_, 0, pkts, kBurst);
  if (n == 0) return 0;
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
  counters_.rx += n;
  counters_.tx += sent;
  counters_.full_rx_bursts += n == kBurst;
  return n;
}

bool GuestPort::link_up() const {
  rte_eth_link link = {};
  return rte_eth_link_get_nowait(port_, &link) == 0 && link.link_status == RTE_ETH_LINK_UP;
}

GuestPort::EthStats GuestPort::eth_stats() const {
  rte_eth_stats s = {};
  EthStats out;
  if (rte_eth_stats_get(port_, &s) != 0) return out;
  out.ipackets = s.ipackets;
  out.opackets = s.opackets;
  out.imissed = s.imissed;
  out.ierrors = s.ierrors;
  out.oerrors = s.oerrors;
  out.rx_nombuf = s.rx_nombuf;
  return out;
}

}  // namespace iovtee::softnic
