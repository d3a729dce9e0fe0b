#include "examples/iovtee-switch/switch.h"

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_prefetch.h>
#include <rte_vhost.h>

#include <algorithm>
#include <cstring>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "examples/iovtee-switch/frame.h"
#include "examples/iovtee-switch/log.h"
#include "examples/iovtee-switch/telemetry.h"

namespace iovtee::sw {
namespace {

constexpr uint16_t kGuestRxVring = 0;  // vhost vring index of the guest's Rx queue 0
constexpr uint16_t kGuestTxVring = 1;

Switch* g_switch = nullptr;

int NewDevice(int vid) { return g_switch->OnNewDevice(vid); }
void DestroyDevice(int vid) { g_switch->OnDestroyDevice(vid); }
int FeaturesChanged(int vid, uint64_t features) {
  g_switch->OnFeaturesChanged(vid, features);
  return 0;
}

const rte_vhost_device_ops kVhostOps = {
    .new_device = NewDevice,
    .destroy_device = DestroyDevice,
    .features_changed = FeaturesChanged,
};

// Inserts an 802.1Q tag after the MACs. False when the mbuf has no headroom
// (mapped frames never have any: Unshare them first).
bool PushTag(rte_mbuf* m, uint16_t vid) {
  uint8_t* p = reinterpret_cast<uint8_t*>(rte_pktmbuf_prepend(m, kVlanTagLen));
  if (p == nullptr) return false;
  std::memmove(p, p + kVlanTagLen, 2 * RTE_ETHER_ADDR_LEN);
  const uint8_t tag[4] = {kEtherTypeVlan >> 8, kEtherTypeVlan & 0xff,
                          static_cast<uint8_t>(vid >> 8), static_cast<uint8_t>(vid)};
  std::memcpy(p + 2 * RTE_ETHER_ADDR_LEN, tag, sizeof(tag));
  return true;
}

// Removes the tag (the first segment holds it: ParseL2 checked). In place,
// also in a guest buffer: the frame only moves forward inside it.
void PopTag(rte_mbuf* m) {
  uint8_t* p = rte_pktmbuf_mtod(m, uint8_t*);
  std::memmove(p + kVlanTagLen, p, 2 * RTE_ETHER_ADDR_LEN);
  rte_pktmbuf_adj(m, kVlanTagLen);
}

}  // namespace

const char* DropName(Drop d) {
  switch (d) {
    case Drop::kAcl:
      return "acl";
    case Drop::kVlan:
      return "vlan";
    case Drop::kMalformed:
      return "malformed";
    case Drop::kSamePort:
      return "same_port";
    case Drop::kNoOutput:
      return "no_output";
    case Drop::kNoMbuf:
      return "no_mbuf";
    case Drop::kTxRingFull:
      return "tx_ring_full";
    case Drop::kGuestNotReady:
      return "guest_not_ready";
    case Drop::kGuestRefused:
      return "guest_refused";
    case Drop::kCount:
      break;
  }
  return "unknown";
}

uint64_t PortCounters::rx_dropped() const {
  uint64_t s = 0;
  for (int d = 0; d < static_cast<int>(kFirstTxDrop); ++d) s += drops[d].Get();
  return s;
}

uint64_t PortCounters::tx_dropped() const {
  uint64_t s = 0;
  for (int d = static_cast<int>(kFirstTxDrop); d < kDropCount; ++d) s += drops[d].Get();
  return s;
}

Switch::Switch(SwitchOptions options)
    : options_(std::move(options)),
      macs_(options_.mac_table_size, rte_get_tsc_hz() * options_.mac_aging_s),
      acl_hits_(new Counter[options_.acl.size() + 1]) {}

Switch::~Switch() {
  Shutdown();
  UnregisterTelemetry(this);
  for (auto& p : ports_) {
    if (p->kind != Port::Kind::kPhy) continue;
    rte_eth_dev_close(p->port_id);
    p->rx_map.reset();  // after the port released its mbufs
  }
  if (host_pool_ != nullptr) rte_mempool_free(host_pool_);
  g_switch = nullptr;
}

absl::Status Switch::Init() {
  g_switch = this;
  tsc_hz_ = rte_get_tsc_hz();
  for (const StaticMac& s : options_.static_macs) macs_.AddStatic(MacKey(s.mac), s.port);
  host_pool_ = rte_pktmbuf_pool_create("sw_host", options_.host_mbufs, 256, 0,
                                       RTE_MBUF_DEFAULT_BUF_SIZE, rte_socket_id());
  if (host_pool_ == nullptr) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("cannot create %u host mbufs (--host-mbufs): %s", options_.host_mbufs,
                        rte_strerror(rte_errno)));
  }
  for (size_t i = 0; i < options_.port_count(); ++i) {
    auto port = std::make_unique<Port>();
    port->index = static_cast<uint16_t>(i);
    port->name = options_.PortName(i);
    port->vlan.access_vid = options_.access_vid[i];
    ports_.push_back(std::move(port));
  }
  for (size_t i = 0; i < options_.phy_devargs.size(); ++i) {
    if (absl::Status s = InitPhy(i); !s.ok()) return s;
  }
  for (size_t i = 0; i < options_.vhost_paths.size(); ++i) {
    if (absl::Status s = InitVhost(i); !s.ok()) return s;
  }
  RegisterTelemetry(this);
  return absl::OkStatus();
}

absl::Status Switch::InitPhy(size_t phy_index) {
  Port& port = *ports_[phy_index];
  port.kind = Port::Kind::kPhy;
  port.devargs = options_.phy_devargs[phy_index];
  const std::string dev = port.devargs.substr(0, port.devargs.find(','));
  if (rte_dev_probe(port.devargs.c_str()) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--phy ", port.devargs, ": cannot probe the device (see the log above)"));
  }
  if (rte_eth_dev_get_port_by_name(dev.c_str(), &port.port_id) != 0) {
    return absl::NotFoundError(
        absl::StrCat("--phy ", port.devargs, ": no ethdev port named ", dev));
  }
  const uint16_t pid = port.port_id;
  rte_eth_dev_info info;
  if (rte_eth_dev_info_get(pid, &info) != 0) {
    return absl::InternalError(absl::StrCat(port.name, ": cannot read the device info"));
  }
  // The mapping's pool must exist before the queue is set up.
  for (const MapSpec& m : options_.maps) {
    if (m.phy != phy_index) continue;
    auto mapping = RxQueueMapping::Create(pid, m.queue, options_.mapping);
    if (!mapping.ok()) {
      return absl::Status(mapping.status().code(),
                          absl::StrCat("--map ", port.name, ":", m.queue, "=vhost", m.vhost, ": ",
                                       mapping.status().message()));
    }
    port.rx_map = std::move(*mapping);
    port.rx_map_guest = absl::StrCat("vhost", m.vhost);
  }

  rte_eth_conf conf = {};
  const uint16_t mtu = options_.mtu;
  if (mtu < info.min_mtu || mtu > info.max_mtu) {
    return absl::InvalidArgumentError(absl::StrFormat("--mtu %u: %s (%s) takes an MTU in %u..%u",
                                                      mtu, port.name, dev, info.min_mtu,
                                                      info.max_mtu));
  }
  conf.rxmode.mtu = mtu;
  // The largest frame received: the MTU, the Ethernet header and one VLAN
  // tag (trunk ports carry tagged frames); the NIC strips the FCS.
  const uint32_t frame = mtu + RTE_ETHER_HDR_LEN + RTE_VLAN_HLEN;
  const uint32_t host_room = rte_pktmbuf_data_room_size(host_pool_) - RTE_PKTMBUF_HEADROOM;
  const uint32_t rx_room = port.rx_map ? options_.mapping.nic_buffer_size : host_room;
  const bool scatter = frame > rx_room;
  if (scatter) {
    if (!(info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_SCATTER)) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "--mtu %u: %s (%s) must scatter %u-byte frames over %u-byte Rx buffers, and its driver "
          "has no Rx scatter; use a smaller --mtu%s",
          mtu, port.name, dev, frame, rx_room, port.rx_map ? " or a larger --nic-buffer" : ""));
    }
    conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_SCATTER;
  }
  // Frames from vhost ports arrive in host mbufs, and scattered ones in
  // chains: both may be multi-segment on the way out.
  const bool multi_seg = scatter || frame > host_room;
  if (info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_MULTI_SEGS) {
    conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_MULTI_SEGS;
  } else if (multi_seg) {
    return absl::FailedPreconditionError(
        absl::StrFormat("--mtu %u: %s (%s) must send multi-segment frames, and its driver has no "
                        "RTE_ETH_TX_OFFLOAD_MULTI_SEGS; use a smaller --mtu",
                        mtu, port.name, dev));
  }
  if (rte_eth_dev_configure(pid, 1, 1, &conf) != 0) {
    return absl::InternalError(absl::StrCat(port.name, " (", dev, "): cannot configure the port"));
  }
  rte_mempool* rx_pool = port.rx_map ? port.rx_map->mempool() : host_pool_;
  rte_eth_rxconf rxconf = info.default_rxconf;
  rxconf.offloads = conf.rxmode.offloads;
  rte_eth_txconf txconf = info.default_txconf;
  txconf.offloads = conf.txmode.offloads;
  if (rte_eth_rx_queue_setup(pid, 0, options_.rx_ring, rte_eth_dev_socket_id(pid), &rxconf,
                             rx_pool) != 0 ||
      rte_eth_tx_queue_setup(pid, 0, options_.tx_ring, rte_eth_dev_socket_id(pid), &txconf) != 0) {
    return absl::InternalError(absl::StrCat(port.name, " (", dev, "): cannot set up its queues"));
  }
  if (rte_eth_dev_start(pid) != 0) {
    return absl::InternalError(absl::StrCat(port.name, " (", dev, "): cannot start"));
  }
  rte_eth_promiscuous_enable(pid);
  SW_LOG(INFO, "%s = %s (port %u), MTU %u, Rx buffers %u bytes%s%s%s", port.name.c_str(),
         port.devargs.c_str(), pid, mtu, rx_room, scatter ? ", Rx scatter" : "",
         port.rx_map ? ", queue 0 mapped onto " : "", port.rx_map_guest.c_str());
  return absl::OkStatus();
}

absl::Status Switch::InitVhost(size_t vhost_index) {
  Port& port = *ports_[options_.phy_devargs.size() + vhost_index];
  port.kind = Port::Kind::kVhost;
  port.path = options_.vhost_paths[vhost_index];
  for (const MapSpec& m : options_.maps) {
    if (m.vhost != vhost_index) continue;
    port.guest_map = ports_[m.phy]->rx_map.get();
    port.guest_pool = port.guest_map->mempool();
  }
  const uint64_t flags = options_.vhost_client ? RTE_VHOST_USER_CLIENT : 0;
  if (rte_vhost_driver_register(port.path.c_str(), flags) != 0) {
    return absl::InternalError(
        absl::StrCat("--vhost ", port.path, ": cannot register the vhost-user socket"));
  }
  if (port.guest_map != nullptr) {
    if (absl::Status s = PrepareVhostSocket(port.path); !s.ok()) return s;
  }
  // Guest Tx offloads (checksum, TSO, UFO) would reach phy ports as offload
  // requests they may not honour (net_simnic has none): the guest computes
  // its checksums and segments itself.
  constexpr uint64_t kHostOffloads = (uint64_t{1} << 0)      // VIRTIO_NET_F_CSUM
                                     | (uint64_t{1} << 11)   // HOST_TSO4
                                     | (uint64_t{1} << 12)   // HOST_TSO6
                                     | (uint64_t{1} << 13)   // HOST_ECN
                                     | (uint64_t{1} << 14);  // HOST_UFO
  if (rte_vhost_driver_disable_features(port.path.c_str(), kHostOffloads) != 0) {
    return absl::InternalError(
        absl::StrCat("--vhost ", port.path, ": cannot turn off guest Tx offloads"));
  }
  if (rte_vhost_driver_callback_register(port.path.c_str(), &kVhostOps) != 0 ||
      rte_vhost_driver_start(port.path.c_str()) != 0) {
    return absl::InternalError(
        absl::StrCat("--vhost ", port.path, ": cannot start the vhost-user socket"));
  }
  SW_LOG(INFO, "%s = %s%s%s", port.name.c_str(), port.path.c_str(),
         port.guest_map ? " (mapped guest)" : "",
         port.vlan.access() ? absl::StrCat(", access VLAN ", port.vlan.access_vid).c_str() : "");
  return absl::OkStatus();
}

Port* Switch::FindVhost(int vid) {
  char ifname[256];
  if (rte_vhost_get_ifname(vid, ifname, sizeof(ifname)) != 0) return nullptr;
  for (auto& p : ports_) {
    if (p->kind == Port::Kind::kVhost && p->path == ifname) return p.get();
  }
  return nullptr;
}

int Switch::OnNewDevice(int vid) {
  Port* p = FindVhost(vid);
  if (p == nullptr) return -1;
  if (p->vid.load() >= 0) {
    SW_LOG(ERR, "%s: already serves vhost device %d; refusing %d", p->name.c_str(), p->vid.load(),
           vid);
    return -1;
  }
  if (p->guest_map != nullptr) {
    absl::Status s = p->guest_map->AttachGuest(vid, kGuestRxVring);
    if (!s.ok()) {
      SW_LOG(ERR, "%s: mapping not attached, frames are copied: %s", p->name.c_str(),
             s.ToString().c_str());
    }
  }
  p->vid.store(vid);
  p->ready.store(true);
  SW_LOG(INFO, "%s: guest connected (vid %d)", p->name.c_str(), vid);
  return 0;
}

void Switch::OnDestroyDevice(int vid) {
  Port* p = FindVhost(vid);
  if (p == nullptr || p->vid.load() != vid) return;  // not the device this port serves
  p->ready.store(false);
  p->pause.Pause();  // the loop is out of this port's vhost calls
  if (p->guest_map != nullptr && p->guest_map->attached()) {
    absl::Status s = p->guest_map->DetachGuest();
    if (!s.ok()) SW_LOG(ERR, "%s: %s", p->name.c_str(), s.ToString().c_str());
  }
  p->vid.store(-1);
  p->forget_macs.store(true);
  p->pause.Resume();
  SW_LOG(INFO, "%s: guest gone (vid %d)", p->name.c_str(), vid);
}

// Live migration starts dirty-page logging (VHOST_F_LOG_ALL) with
// SET_FEATURES while the device runs. The mapping does not log the NIC's
// writes: detach it here, before vhost answers, so from now on the guest's
// Rx queue takes the stock path (rte_vhost_enqueue_burst logs what it
// writes). The NIC holds no guest buffer once DetachGuest returns.
void Switch::OnFeaturesChanged(int vid, uint64_t features) {
  constexpr uint64_t kLogAll = uint64_t{1} << 26;  // VHOST_F_LOG_ALL
  Port* p = FindVhost(vid);
  if (p == nullptr || p->vid.load() != vid || !(features & kLogAll)) return;
  if (p->guest_map == nullptr || !p->guest_map->attached()) return;
  p->pause.Pause();
  absl::Status s = p->guest_map->DetachGuest();
  p->pause.Resume();
  if (s.ok()) {
    SW_LOG(INFO,
           "%s: dirty-page logging on (live migration): mapping detached, frames are "
           "copied by vhost from now on",
           p->name.c_str());
  } else {
    SW_LOG(ERR, "%s: dirty-page logging on, detaching the mapping: %s", p->name.c_str(),
           s.ToString().c_str());
  }
}

// Drops are freed in bulk after the burst: a mapped pool has no per-lcore
// cache, so each single free would be a ring operation. A mapped frame's
// guest buffer goes back to its pool for the next NIC refill.
void Switch::Free(rte_mbuf* m) {
  free_[nfree_++] = m;
  if (nfree_ == kBurst) {
    rte_pktmbuf_free_bulk(free_, nfree_);
    nfree_ = 0;
  }
}

void Switch::DropIn(Port& in, rte_mbuf* m, Drop why) {
  in.counters.drops[static_cast<int>(why)].Add(1);
  Free(m);
}

void Switch::DropOut(Port& out, rte_mbuf* m, Drop why) {
  out.counters.drops[static_cast<int>(why)].Add(1);
  Free(m);
}

// A frame in a guest buffer leaves it before going anywhere but to that
// guest unchanged in front: the guest could rewrite it while another port
// still reads it, its buffer must go back soon, and it has no headroom.
rte_mbuf* Switch::Unshare(rte_mbuf* m) {
  // A chain from a mapped queue may hold guest buffers in any segment,
  // while RxQueueMapping::Unshare looks at the first one only.
  if (m->nb_segs > 1) {
    rte_mbuf* c = rte_pktmbuf_copy(m, host_pool_, 0, UINT32_MAX);
    if (c != nullptr) rte_pktmbuf_free(m);
    return c;
  }
  return RxQueueMapping::Unshare(m, host_pool_);
}

// Delivery waits for the end of the input burst (FlushAll), which stages
// at most one frame per input frame on each port: `out` never overflows.
void Switch::Stage(Port& out, rte_mbuf* m) {
  if (out.nout == kBurst) Flush(out);  // defensive: see above
  if (!out.dirty) {
    out.dirty = true;
    dirty_[ndirty_++] = out.index;
  }
  out.out[out.nout++] = m;
}

void Switch::Emit(Port& out, rte_mbuf* m, int vlan, bool tagged) {
  const TagAction action = EgressAction(out.vlan, vlan, tagged);
  if (action == TagAction::kNotMember) {  // Lookup and Flood never choose such a port
    DropOut(out, m, Drop::kVlan);
    return;
  }
  if (out.kind == Port::Kind::kVhost && !out.ready.load(std::memory_order_relaxed)) {
    DropOut(out, m, Drop::kGuestNotReady);
    return;
  }
  // Host mbufs (vhost Rx, stock phy queues) need no look at the pool.
  if (m->pool != host_pool_ && (m->pool != out.guest_pool || action == TagAction::kPush)) {
    rte_mbuf* c = Unshare(m);
    if (c == nullptr) {
      DropOut(out, m, Drop::kNoMbuf);
      return;
    }
    if (c != m) out.counters.unshared.Add(1);
    m = c;
  }
  if (action == TagAction::kPush) {
    if (!PushTag(m, static_cast<uint16_t>(vlan))) {
      rte_mbuf* c = rte_pktmbuf_copy(m, host_pool_, 0, UINT32_MAX);
      if (c == nullptr || !PushTag(c, static_cast<uint16_t>(vlan))) {
        if (c != nullptr) rte_pktmbuf_free(c);
        DropOut(out, m, Drop::kNoMbuf);
        return;
      }
      rte_pktmbuf_free(m);
      m = c;
    }
    out.counters.vlan_pushed.Add(1);
  } else if (action == TagAction::kPop) {
    PopTag(m);
    out.counters.vlan_popped.Add(1);
  }
  Stage(out, m);
}

void Switch::Flood(Port& in, rte_mbuf* m, int vlan, bool tagged) {
  uint16_t outs[kMaxPorts];
  int k = 0;
  int owner = -1;  // the port whose guest owns m's buffer: it takes the original
  for (auto& pp : ports_) {
    Port& p = *pp;
    if (&p == &in || EgressAction(p.vlan, vlan, tagged) == TagAction::kNotMember) continue;
    if (p.kind == Port::Kind::kVhost && !p.ready.load(std::memory_order_relaxed)) continue;
    if (p.guest_pool == m->pool) owner = k;
    outs[k++] = p.index;
  }
  if (k == 0) {
    DropIn(in, m, Drop::kNoOutput);
    return;
  }
  flooded_.Add(1);
  if (owner >= 0) std::swap(outs[owner], outs[k - 1]);
  // Copies to all but the last output, which takes the original (never a
  // clone: a mapped mbuf must not be shared).
  for (int j = 0; j < k - 1; ++j) {
    Port& out = *ports_[outs[j]];
    rte_mbuf* c = rte_pktmbuf_copy(m, host_pool_, 0, UINT32_MAX);
    if (c == nullptr) {
      out.counters.drops[static_cast<int>(Drop::kNoMbuf)].Add(1);
      continue;
    }
    Emit(out, c, vlan, tagged);
  }
  Emit(*ports_[outs[k - 1]], m, vlan, tagged);
}

int Switch::Lookup(int vlan, uint64_t mac, uint64_t now) const {
  const int s = macs_.LookupStatic(mac);
  if (s >= 0 && EgressAction(ports_[s]->vlan, vlan, false) != TagAction::kNotMember) return s;
  return macs_.LookupLearned(static_cast<uint16_t>(vlan), mac, now);
}

void Switch::Forward(Port& in, rte_mbuf** pkts, uint16_t n, uint64_t now) {
  PortCounters& c = in.counters;
  c.rx.Add(n);
  uint64_t bytes = 0;
  uint64_t last_src = UINT64_MAX;  // (VLAN, MAC) keys; no real key is all ones
  uint64_t last_dst = UINT64_MAX;
  int last_out = -1;
  const bool acl = !options_.acl.empty();
  // The frames were just written by the NIC (another core, for the soft
  // NIC): start every first-line miss now so that they overlap.
  for (uint16_t i = 0; i < n; ++i) rte_prefetch0(rte_pktmbuf_mtod(pkts[i], void*));
  for (uint16_t i = 0; i < n; ++i) {
    rte_mbuf* m = pkts[i];
    bytes += m->pkt_len;
    const uint8_t* data = rte_pktmbuf_mtod(m, const uint8_t*);
    const L2Info l2 = ParseL2(data, m->data_len);
    if (!l2.valid) {
      DropIn(in, m, Drop::kMalformed);
      continue;
    }
    const int vlan = IngressVlan(in.vlan, l2);
    if (vlan < 0) {
      DropIn(in, m, Drop::kVlan);
      continue;
    }
    if (acl) {
      uint8_t copy[kMaxHeaderBytes];
      const uint32_t len = std::min<uint32_t>(m->pkt_len, kMaxHeaderBytes);
      const auto* h = static_cast<const uint8_t*>(rte_pktmbuf_read(m, 0, len, copy));
      const int r = AclFirstMatch(options_.acl, ParseL3(h, len, l2));
      if (r < 0) {
        acl_no_match_.Add(1);
      } else {
        acl_hits_[r].Add(1);
        if (options_.acl[r].drop) {
          DropIn(in, m, Drop::kAcl);
          continue;
        }
      }
    }
    // Learning, then the lookup. Within a burst the time is one value, so a
    // result holds until the table changes: consecutive frames of a flow
    // cost no second lookup.
    const uint8_t* src = data + RTE_ETHER_ADDR_LEN;
    const uint64_t vkey = uint64_t{static_cast<uint16_t>(vlan)} << 48;
    const uint64_t src_mac = MacKey(src), dst_mac = MacKey(data);
    if (!IsMulticastMac(src) && (vkey | src_mac) != last_src) {
      last_src = vkey | src_mac;
      switch (macs_.Learn(static_cast<uint16_t>(vlan), src_mac, in.index, now)) {
        case MacTable::Learned::kRefreshed:
          break;
        case MacTable::Learned::kChanged:
          last_dst = UINT64_MAX;
          break;
        case MacTable::Learned::kFull:
          mac_table_full_.Add(1);
          break;
      }
    }
    int out = -1;
    if (!IsMulticastMac(data)) {
      if ((vkey | dst_mac) != last_dst) {
        last_dst = vkey | dst_mac;
        last_out = Lookup(vlan, dst_mac, now);
      }
      out = last_out;
    }
    if (out == in.index) {
      DropIn(in, m, Drop::kSamePort);
    } else if (out >= 0) {
      Emit(*ports_[out], m, vlan, l2.tagged);
    } else {
      Flood(in, m, vlan, l2.tagged);
    }
  }
  c.rx_bytes.Add(bytes);
}

void Switch::Flush(Port& out) {
  const uint16_t n = out.nout;
  if (n == 0) return;
  out.nout = 0;
  // Lengths first: sent mbufs are no longer ours to read.
  uint32_t len[kBurst];
  for (uint16_t i = 0; i < n; ++i) len[i] = out.out[i]->pkt_len;
  uint16_t sent = 0;
  uint16_t unsent_to_free = n;  // the tail that is still ours
  Drop why = Drop::kGuestRefused;
  if (out.kind == Port::Kind::kPhy) {
    sent = rte_eth_tx_burst(out.port_id, 0, out.out, n);
    unsent_to_free = n - sent;
    why = Drop::kTxRingFull;
  } else if (!out.pause.Enter()) {
    why = Drop::kGuestNotReady;  // its guest is going away
  } else {
    if (!out.ready.load(std::memory_order_relaxed)) {
      why = Drop::kGuestNotReady;
    } else if (out.guest_map != nullptr && out.guest_map->attached()) {
      // Consumes every mbuf, delivered or dropped (the mapping counts why).
      sent = out.guest_map->Enqueue(out.out, n);
      unsent_to_free = 0;
    } else {
      // Stock vhost path: it copies a prefix of the burst; the mbufs stay ours.
      sent = rte_vhost_enqueue_burst(out.vid.load(std::memory_order_relaxed), kGuestRxVring,
                                     out.out, n);
      rte_pktmbuf_free_bulk(out.out, sent);
      unsent_to_free = n - sent;
    }
    out.pause.Exit();
  }
  // Exact for phy and stock vhost ports, which take a prefix of the burst;
  // for a mapped guest the mapping's own byte counter is exact.
  uint64_t bytes = 0;
  for (uint16_t i = 0; i < sent; ++i) bytes += len[i];
  out.counters.tx.Add(sent);
  out.counters.tx_bytes.Add(bytes);
  if (sent < n) out.counters.drops[static_cast<int>(why)].Add(n - sent);
  if (unsent_to_free > 0) rte_pktmbuf_free_bulk(out.out + (n - unsent_to_free), unsent_to_free);
}

void Switch::FlushAll() {
  for (uint16_t i = 0; i < ndirty_; ++i) {
    Port& p = *ports_[dirty_[i]];
    Flush(p);
    p.dirty = false;
  }
  ndirty_ = 0;
  if (nfree_ > 0) {
    rte_pktmbuf_free_bulk(free_, nfree_);
    nfree_ = 0;
  }
}

uint16_t Switch::Receive(Port& p, rte_mbuf** pkts) {
  if (p.kind == Port::Kind::kPhy) {
    return p.rx_map ? p.rx_map->RxBurst(pkts, kBurst)
                    : rte_eth_rx_burst(p.port_id, 0, pkts, kBurst);
  }
  uint16_t n = 0;
  if (p.pause.Enter()) {
    if (p.ready.load(std::memory_order_relaxed)) {
      n = rte_vhost_dequeue_burst(p.vid.load(std::memory_order_relaxed), kGuestTxVring, host_pool_,
                                  pkts, kBurst);
    }
    p.pause.Exit();
  }
  return n;
}

void Switch::Housekeeping(uint64_t now) {
  if (perf_reset_.exchange(false, std::memory_order_relaxed)) perf_.Reset();
  for (auto& p : ports_) {
    if (p->forget_macs.exchange(false)) macs_.Forget(p->index);
  }
  if (now >= next_mac_expiry_) {
    macs_.Expire(now);
    macs_learned_.Set(macs_.learned());
    next_mac_expiry_ = now + tsc_hz_;
  }
}

void Switch::Run() {
  rte_mbuf* pkts[kBurst];
  uint64_t t = rte_rdtsc();
  const uint64_t end = options_.duration_s > 0
                           ? t + static_cast<uint64_t>(options_.duration_s * tsc_hz_)
                           : UINT64_MAX;
  const uint64_t housekeeping_period = tsc_hz_ / 1000;
  // No burst of 32 frames takes 200 us unless the thread lost its core.
  const uint64_t preempted_cycles = tsc_hz_ / 5000;
  uint32_t busy_polls = 0;
  uint64_t next_housekeeping = t;
  while (!quit_.load(std::memory_order_relaxed)) {
    for (auto& pp : ports_) {
      Port& p = *pp;
      const uint16_t n = Receive(p, pkts);
      if (n == 0) {
        const uint64_t now = rte_rdtsc();
        perf_.idle_polls.Add(1);
        perf_.idle_cycles.Add(now - t);
        t = now;
        continue;
      }
      const bool stages = ++busy_polls % DirectionPerf::kStageSampling == 0;
      const uint64_t t_rx = stages ? rte_rdtsc() : 0;
      Forward(p, pkts, n, t);
      const uint64_t t_switch = stages ? rte_rdtsc() : 0;
      FlushAll();
      const uint64_t now = rte_rdtsc();
      DirectionPerf& dir = p.kind == Port::Kind::kPhy ? perf_.p2v : perf_.v2p;
      if (dir.AddBurst(n, now - t, preempted_cycles) && stages) {
        dir.AddStages(n, t_rx - t, t_switch - t_rx, now - t_switch);
      }
      t = now;
    }
    if (t >= next_housekeeping) {
      if (t >= end) break;
      Housekeeping(t);
      t = rte_rdtsc();  // housekeeping is no poll's cost
      next_housekeeping = t + housekeeping_period;
    }
  }
}

void Switch::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  // Guests are detached in destroy_device (their buffers go back to them),
  // then the ports stop and free what their rings hold.
  for (auto& p : ports_) {
    if (p->kind == Port::Kind::kVhost && !p->path.empty()) {
      rte_vhost_driver_unregister(p->path.c_str());
    }
  }
  for (auto& p : ports_) {
    if (p->kind == Port::Kind::kPhy && !p->devargs.empty()) rte_eth_dev_stop(p->port_id);
  }
}

}  // namespace iovtee::sw
