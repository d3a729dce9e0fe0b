#include "examples/iovtee-switch/switch.h"

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_vhost.h>

#include <cstring>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "src/common/log.h"

namespace iovtee::sw {
namespace {

constexpr uint16_t kBurst = 32;
constexpr uint16_t kGuestRxVring = 0;  // vhost vring index of the guest's Rx queue 0
constexpr uint16_t kGuestTxVring = 1;

Switch* g_switch = nullptr;

int NewDevice(int vid) { return g_switch->OnNewDevice(vid); }
void DestroyDevice(int vid) { g_switch->OnDestroyDevice(vid); }

const rte_vhost_device_ops kVhostOps = {
    .new_device = NewDevice,
    .destroy_device = DestroyDevice,
};

uint64_t MacKey(const rte_ether_addr& a) {
  uint64_t k = 0;
  std::memcpy(&k, a.addr_bytes, RTE_ETHER_ADDR_LEN);
  return k;
}

}  // namespace

void PausePoint::Pause() {
  paused_.store(true, std::memory_order_seq_cst);
  while (inside_.load(std::memory_order_seq_cst) != 0) std::this_thread::yield();
}

Switch::~Switch() {
  for (auto& p : ports_) {
    if (p->kind == Port::Kind::kVhost) rte_vhost_driver_unregister(p->path.c_str());
  }
  for (auto& p : ports_) {
    if (p->kind != Port::Kind::kPhy) continue;
    rte_eth_dev_stop(p->port_id);
    rte_eth_dev_close(p->port_id);
    p->rx_maps.clear();  // after the port released its mbufs
  }
  if (host_pool_ != nullptr) rte_mempool_free(host_pool_);
  g_switch = nullptr;
}

absl::Status Switch::Init() {
  g_switch = this;
  aging_tsc_ = rte_get_tsc_hz() * options_.mac_aging_s;
  host_pool_ = rte_pktmbuf_pool_create("sw_host", options_.host_mbufs, 256, 0,
                                       RTE_MBUF_DEFAULT_BUF_SIZE, rte_socket_id());
  if (host_pool_ == nullptr) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("cannot create %u host mbufs", options_.host_mbufs));
  }
  for (const std::string& d : options_.phy_devargs) {
    absl::Status s = InitPhy(d);
    if (!s.ok()) return s;
  }
  for (const std::string& p : options_.vhost_paths) {
    absl::Status s = InitVhost(p);
    if (!s.ok()) return s;
  }
  if (ports_.size() < 2) return absl::InvalidArgumentError("a switch needs at least two ports");
  return absl::OkStatus();
}

absl::Status Switch::InitPhy(const std::string& devargs) {
  const size_t phy_index = ports_.size();
  auto port = std::make_unique<Port>();
  port->kind = Port::Kind::kPhy;
  const std::string name = devargs.substr(0, devargs.find(','));
  if (rte_dev_probe(devargs.c_str()) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("cannot probe phy device ", devargs));
  }
  if (rte_eth_dev_get_port_by_name(name.c_str(), &port->port_id) != 0) {
    return absl::NotFoundError(absl::StrCat("no ethdev port named ", name));
  }
  port->name = absl::StrCat("phy", phy_index);
  port->index = static_cast<uint16_t>(ports_.size());
  const uint16_t pid = port->port_id;
  rte_eth_conf conf = {};
  if (rte_eth_dev_configure(pid, 1, 1, &conf) != 0) {
    return absl::InternalError(absl::StrCat("cannot configure port ", name));
  }
  // The mapping's pool must be known before the queue is set up.
  port->rx_maps.resize(1);
  for (const std::string& m : options_.maps) {
    // "phyN:Q=vhostM"
    std::vector<std::string> lr = absl::StrSplit(m, '=');
    std::vector<std::string> pq = absl::StrSplit(lr[0], ':');
    if (pq[0] != port->name) continue;
    uint32_t q = 0;
    if (pq.size() != 2 || !absl::SimpleAtoi(pq[1], &q) || q != 0) {
      return absl::InvalidArgumentError(absl::StrCat("bad --map ", m, ": only queue 0 for now"));
    }
    auto mapping = RxQueueMapping::Create(pid, 0, options_.mapping);
    if (!mapping.ok()) return mapping.status();
    port->rx_maps[0] = std::move(*mapping);
  }
  rte_mempool* rx_pool = port->rx_maps[0] ? port->rx_maps[0]->mempool() : host_pool_;
  if (rte_eth_rx_queue_setup(pid, 0, options_.rx_ring, rte_eth_dev_socket_id(pid), nullptr,
                             rx_pool) != 0 ||
      rte_eth_tx_queue_setup(pid, 0, options_.tx_ring, rte_eth_dev_socket_id(pid), nullptr) != 0) {
    return absl::InternalError(absl::StrCat("cannot set up the queues of ", name));
  }
  if (rte_eth_dev_start(pid) != 0) {
    return absl::InternalError(absl::StrCat("cannot start ", name));
  }
  rte_eth_promiscuous_enable(pid);
  IOVTEE_LOG(INFO, "switch: %s = %s (port %u)%s", port->name.c_str(), devargs.c_str(), pid,
             port->rx_maps[0] ? ", queue 0 mapped" : "");
  ports_.push_back(std::move(port));
  return absl::OkStatus();
}

absl::Status Switch::InitVhost(const std::string& path) {
  auto port = std::make_unique<Port>();
  port->kind = Port::Kind::kVhost;
  port->name = absl::StrCat("vhost", ports_.size() - options_.phy_devargs.size());
  port->path = path;
  port->index = static_cast<uint16_t>(ports_.size());
  // Find the mapping (if any) whose guest is this port.
  for (const std::string& m : options_.maps) {
    std::vector<std::string> lr = absl::StrSplit(m, '=');
    if (lr.size() != 2 || lr[1] != port->name) continue;
    const std::string phy = lr[0].substr(0, lr[0].find(':'));
    for (auto& p : ports_) {
      if (p->name == phy && p->rx_maps[0]) port->guest_map = p->rx_maps[0].get();
    }
    if (port->guest_map == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("--map ", m, ": no such phy port/queue"));
    }
  }
  const uint64_t flags = options_.vhost_client ? RTE_VHOST_USER_CLIENT : 0;
  if (rte_vhost_driver_register(path.c_str(), flags) != 0) {
    return absl::InternalError(absl::StrCat("cannot register vhost-user socket ", path));
  }
  if (port->guest_map != nullptr) {
    absl::Status s = PrepareVhostSocket(path);
    if (!s.ok()) return s;
  }
  if (rte_vhost_driver_callback_register(path.c_str(), &kVhostOps) != 0 ||
      rte_vhost_driver_start(path.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("cannot start vhost-user socket ", path));
  }
  IOVTEE_LOG(INFO, "switch: %s = %s%s", port->name.c_str(), path.c_str(),
             port->guest_map ? " (mapped guest)" : "");
  ports_.push_back(std::move(port));
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
    IOVTEE_LOG(ERR, "switch: %s: already serves vhost device %d; refusing %d", p->name.c_str(),
               p->vid.load(), vid);
    return -1;
  }
  if (p->guest_map != nullptr) {
    absl::Status s = p->guest_map->AttachGuest(vid, kGuestRxVring);
    if (!s.ok()) {
      IOVTEE_LOG(ERR, "switch: %s: mapping not attached, frames are copied: %s", p->name.c_str(),
                 s.ToString().c_str());
    }
  }
  p->vid.store(vid);
  p->ready.store(true);
  IOVTEE_LOG(INFO, "switch: %s: guest connected (vid %d)", p->name.c_str(), vid);
  return 0;
}

void Switch::OnDestroyDevice(int vid) {
  Port* p = FindVhost(vid);
  if (p == nullptr || p->vid.load() != vid) return;  // not the device this port serves
  p->ready.store(false);
  p->pause.Pause();  // the loop is out of this port's vhost calls
  if (p->guest_map != nullptr && p->guest_map->attached()) {
    absl::Status s = p->guest_map->DetachGuest();
    if (!s.ok()) IOVTEE_LOG(ERR, "switch: %s: %s", p->name.c_str(), s.ToString().c_str());
  }
  p->vid.store(-1);
  p->pause.Resume();
  IOVTEE_LOG(INFO, "switch: %s: guest gone (vid %d)", p->name.c_str(), vid);
}

void Switch::Output(Port& out, rte_mbuf* m) {
  // A frame in a guest's Rx buffer goes in place only to that guest. Anywhere
  // else it is copied first: the guest could rewrite it while another port
  // still reads it, and its buffer must go back to the guest soon.
  if (out.guest_map == nullptr || m->pool != out.guest_map->mempool()) {
    rte_mbuf* c = RxQueueMapping::Unshare(m, host_pool_);
    if (c == nullptr) {
      ++unshare_failed_;
      rte_pktmbuf_free(m);
      return;
    }
    m = c;
  }
  out.out[out.nout++] = m;
  if (out.nout == kBurst) Flush(out);
}

void Switch::Flush(Port& out) {
  if (out.nout == 0) return;
  const uint16_t n = out.nout;
  out.nout = 0;
  uint64_t bytes = 0;
  for (uint16_t i = 0; i < n; ++i) bytes += out.out[i]->pkt_len;
  uint16_t sent = 0;
  if (out.kind == Port::Kind::kPhy) {
    sent = rte_eth_tx_burst(out.port_id, 0, out.out, n);
    for (uint16_t i = sent; i < n; ++i) rte_pktmbuf_free(out.out[i]);
  } else if (!out.pause.Enter()) {
    for (uint16_t i = 0; i < n; ++i) rte_pktmbuf_free(out.out[i]);
  } else {
    if (!out.ready.load(std::memory_order_relaxed)) {
      for (uint16_t i = 0; i < n; ++i) rte_pktmbuf_free(out.out[i]);
    } else if (out.guest_map != nullptr && out.guest_map->attached()) {
      sent = out.guest_map->Enqueue(out.out, n);  // consumes every mbuf
    } else {
      // Stock vhost path: it copies, the mbufs stay ours.
      sent = rte_vhost_enqueue_burst(out.vid.load(std::memory_order_relaxed), kGuestRxVring,
                                     out.out, n);
      for (uint16_t i = 0; i < n; ++i) rte_pktmbuf_free(out.out[i]);
    }
    out.pause.Exit();
  }
  out.counters.tx += sent;
  out.counters.tx_dropped += n - sent;
  out.counters.tx_bytes += bytes;
}

void Switch::Forward(Port& in, rte_mbuf** pkts, uint16_t n) {
  const uint64_t now = rte_rdtsc();
  const int self = in.index;
  in.counters.rx += n;
  for (uint16_t i = 0; i < n; ++i) {
    rte_mbuf* m = pkts[i];
    in.counters.rx_bytes += m->pkt_len;
    const rte_ether_hdr* eth = rte_pktmbuf_mtod(m, const rte_ether_hdr*);
    if (!rte_is_multicast_ether_addr(&eth->src_addr)) {
      MacEntry& e = macs_[MacKey(eth->src_addr)];
      e.port = in.index;
      e.seen_tsc = now;
    }
    int out = -1;
    if (!rte_is_multicast_ether_addr(&eth->dst_addr)) {
      auto it = macs_.find(MacKey(eth->dst_addr));
      if (it != macs_.end() && now - it->second.seen_tsc < aging_tsc_) out = it->second.port;
    }
    if (out == self) {
      rte_pktmbuf_free(m);
      continue;
    }
    if (out >= 0) {
      Output(*ports_[out], m);
      continue;
    }
    // Flood: copies to all but the last output, which takes the original
    // (never clone: a mapped mbuf must not be shared).
    ++flooded_;
    int last = -1;
    for (int p = 0; p < static_cast<int>(ports_.size()); ++p) {
      if (p == self) continue;
      if (last >= 0) {
        rte_mbuf* c = rte_pktmbuf_copy(m, host_pool_, 0, UINT32_MAX);
        if (c != nullptr) Output(*ports_[last], c);
      }
      last = p;
    }
    if (last >= 0) {
      Output(*ports_[last], m);
    } else {
      rte_pktmbuf_free(m);
    }
  }
}

void Switch::Run() {
  rte_mbuf* pkts[kBurst];
  const uint64_t end =
      options_.duration_s > 0 ? rte_rdtsc() + options_.duration_s * rte_get_tsc_hz() : UINT64_MAX;
  while (!quit_.load(std::memory_order_relaxed) && rte_rdtsc() < end) {
    for (auto& p : ports_) {
      uint16_t n = 0;
      if (p->kind == Port::Kind::kPhy) {
        n = p->rx_maps[0] ? p->rx_maps[0]->RxBurst(pkts, kBurst)
                          : rte_eth_rx_burst(p->port_id, 0, pkts, kBurst);
      } else if (p->pause.Enter()) {
        if (p->ready.load(std::memory_order_relaxed)) {
          n = rte_vhost_dequeue_burst(p->vid.load(std::memory_order_relaxed), kGuestTxVring,
                                      host_pool_, pkts, kBurst);
        }
        p->pause.Exit();
      }
      if (n > 0) Forward(*p, pkts, n);
    }
    for (auto& p : ports_) Flush(*p);
  }
}

std::string Switch::StatsJson() const {
  std::string s = "{\"ports\":[";
  for (size_t i = 0; i < ports_.size(); ++i) {
    const Port& p = *ports_[i];
    absl::StrAppendFormat(&s,
                          "%s{\"name\":\"%s\",\"rx\":%u,\"tx\":%u,\"tx_dropped\":%u,"
                          "\"rx_bytes\":%u,\"tx_bytes\":%u",
                          i ? "," : "", p.name, p.counters.rx, p.counters.tx, p.counters.tx_dropped,
                          p.counters.rx_bytes, p.counters.tx_bytes);
    if (p.kind == Port::Kind::kPhy && p.rx_maps[0]) {
      const MappingStats m = p.rx_maps[0]->stats();
      absl::StrAppendFormat(
          &s,
          ",\"mapping\":{\"attached\":%d,\"zero_copy\":%u,\"copied\":%u,\"copy_foreign\":%u,\"copy_"
          "host_buffer\":%u,"
          "\"copy_multi_segment\":%u,\"copy_shared\":%u,\"copy_stale_session\":%u,"
          "\"copy_layout\":%u,\"drop_no_buffer\":%u,\"drop_too_big\":%u,\"drop_offload\":%u,"
          "\"drop_broken_queue\":%u,\"drop_no_guest\":%u,\"guest_buffers_held\":%u,"
          "\"guest_buffers_lent\":%u,\"host_buffers_posted\":%u,\"guest_buffers_recycled\":%u,"
          "\"guest_buffers_orphaned\":%u,\"validation_errors\":%u,\"attaches\":%u,"
          "\"detaches\":%u}",
          m.attached, m.zero_copy, m.copied, m.copy_foreign, m.copy_host_buffer,
          m.copy_multi_segment, m.copy_shared, m.copy_stale_session, m.copy_layout,
          m.drop_no_buffer, m.drop_too_big, m.drop_offload, m.drop_broken_queue, m.drop_no_guest,
          m.guest_buffers_held, m.guest_buffers_lent, m.host_buffers_posted,
          m.guest_buffers_recycled, m.guest_buffers_orphaned, m.validation_errors, m.attaches,
          m.detaches);
    }
    s += "}";
  }
  absl::StrAppendFormat(&s, "],\"flooded\":%u,\"unshare_failed\":%u,\"macs\":%u}", flooded_,
                        unshare_failed_, macs_.size());
  return s;
}

}  // namespace iovtee::sw
