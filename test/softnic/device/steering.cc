#include "test/softnic/device/steering.h"

#include <cstring>

namespace iovtee::softnic {
namespace {

// A writer holds a seqlock for a few hundred nanoseconds at most; past this
// many tries the reader gives up for this burst rather than stall the port.
constexpr int kSeqlockTries = 64;

constexpr uint16_t kEtherTypeIpv4 = 0x0800;
constexpr uint16_t kEtherTypeIpv6 = 0x86dd;
constexpr uint16_t kEtherTypeVlan = 0x8100;
constexpr uint16_t kEtherTypeQinQ = 0x88a8;
constexpr uint8_t kIpProtoTcp = 6;
constexpr uint8_t kIpProtoUdp = 17;

inline uint16_t LoadBe16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }

template <typename T>
inline T LoadRelaxed(const T* p) {
  return __atomic_load_n(p, __ATOMIC_RELAXED);
}

inline void CpuRelax() { __builtin_ia32_pause(); }

}  // namespace

void Steering::Reset() {
  have_rss_ = false;
  have_rules_ = false;
  rss_enabled_ = false;
  num_rules_ = 0;
  port_mac_ = 0;
  promiscuous_ = false;
}

void Steering::Refresh(const simnic::RegisterPage* regs) {
  uint8_t mac[6];
  for (int i = 0; i < 6; ++i) mac[i] = LoadRelaxed(&regs->mac[i]);
  port_mac_ = LoadMac(mac);
  promiscuous_ = LoadRelaxed(&regs->promiscuous) != 0;

  uint32_t seq = __atomic_load_n(&regs->rss_seq, __ATOMIC_ACQUIRE);
  if (!have_rss_ || seq != rss_seq_) ReadRss(regs, seq);
  seq = __atomic_load_n(&regs->flow_seq, __ATOMIC_ACQUIRE);
  if (!have_rules_ || seq != flow_seq_) ReadRules(regs, seq);
}

// Seqlock read: copy with relaxed loads (the writer may be mid-update), then
// accept the copy only if the sequence was even and unchanged around it.
bool Steering::ReadRss(const simnic::RegisterPage* regs, uint32_t seq) {
  uint8_t key[simnic::kRssKeySize];
  uint16_t reta[simnic::kRetaSize];
  for (int tries = 0; tries < kSeqlockTries; ++tries) {
    if (seq & 1) {
      CpuRelax();
      seq = __atomic_load_n(&regs->rss_seq, __ATOMIC_ACQUIRE);
      continue;
    }
    bool enabled = LoadRelaxed(&regs->rss_enabled) != 0;
    for (int i = 0; i < simnic::kRssKeySize; ++i) key[i] = LoadRelaxed(&regs->rss_key[i]);
    for (int i = 0; i < simnic::kRetaSize; ++i) reta[i] = LoadRelaxed(&regs->reta[i]);
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    uint32_t again = LoadRelaxed(&regs->rss_seq);
    if (again != seq) {
      seq = again;
      continue;
    }
    if (!have_rss_ || memcmp(key, rss_key_, sizeof(key)) != 0) {
      memcpy(rss_key_, key, sizeof(key));
      hasher_.SetKey(rss_key_);
    }
    memcpy(reta_, reta, sizeof(reta));
    rss_enabled_ = enabled;
    rss_seq_ = seq;
    have_rss_ = true;
    return true;
  }
  ++stale_reads_;
  return false;
}

bool Steering::ReadRules(const simnic::RegisterPage* regs, uint32_t seq) {
  Rule rules[simnic::kMaxFlowRules];
  for (int tries = 0; tries < kSeqlockTries; ++tries) {
    if (seq & 1) {
      CpuRelax();
      seq = __atomic_load_n(&regs->flow_seq, __ATOMIC_ACQUIRE);
      continue;
    }
    uint32_t count = LoadRelaxed(&regs->num_flow_rules);
    if (count > simnic::kMaxFlowRules) count = simnic::kMaxFlowRules;
    int n = 0;
    for (uint32_t i = 0; i < count; ++i) {
      const simnic::FlowRule& src = regs->rules[i];
      if (LoadRelaxed(&src.valid) == 0) continue;
      uint8_t mac[6];
      for (int b = 0; b < 6; ++b) mac[b] = LoadRelaxed(&src.dst_mac[b]);
      rules[n].mac = LoadMac(mac);
      rules[n].match_vlan = LoadRelaxed(&src.match_vlan) != 0;
      rules[n].vlan_id = LoadRelaxed(&src.vlan_id) & 0xfff;
      rules[n].queue = LoadRelaxed(&src.queue);
      ++n;
    }
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    uint32_t again = LoadRelaxed(&regs->flow_seq);
    if (again != seq) {
      seq = again;
      continue;
    }
    memcpy(rules_, rules, sizeof(Rule) * n);
    num_rules_ = n;
    flow_seq_ = seq;
    have_rules_ = true;
    return true;
  }
  ++stale_reads_;
  return false;
}

SteerResult Steering::Classify(const uint8_t* frame, uint32_t len) const {
  SteerResult r = {SteerVerdict::kAccept, false, 0, 0};
  if (len < 14) {
    r.verdict = SteerVerdict::kRunt;
    return r;
  }
  uint64_t dst = LoadMac(frame);
  uint16_t ethertype = LoadBe16(frame + 12);
  uint32_t l3 = 14;
  bool tagged = false;
  uint16_t vlan_id = 0;
  if (ethertype == kEtherTypeVlan || ethertype == kEtherTypeQinQ) {
    if (len < 18) {
      r.verdict = SteerVerdict::kRunt;
      return r;
    }
    tagged = true;
    vlan_id = LoadBe16(frame + 14) & 0xfff;
    ethertype = LoadBe16(frame + 16);
    l3 = 18;
    if (ethertype == kEtherTypeVlan && len >= 22) {  // QinQ: skip the inner tag
      ethertype = LoadBe16(frame + 20);
      l3 = 22;
    }
  }

  int matched = -1;
  for (int i = 0; i < num_rules_; ++i) {
    const Rule& rule = rules_[i];
    if (rule.mac == dst && (!rule.match_vlan || (tagged && rule.vlan_id == vlan_id))) {
      matched = i;
      break;
    }
  }
  if (matched < 0 && !promiscuous_ && dst != port_mac_ && (frame[0] & 1) == 0) {
    r.verdict = SteerVerdict::kFiltered;
    return r;
  }
  if (rss_enabled_) r.hash = RssHash(frame, len, l3, ethertype, &r.hash_valid);
  if (matched >= 0) {
    r.queue = rules_[matched].queue;
  } else if (r.hash_valid) {
    r.queue = reta_[r.hash % simnic::kRetaSize];
  }
  return r;
}

uint32_t Steering::RssHash(const uint8_t* frame, uint32_t len, uint32_t l3, uint16_t ethertype,
                           bool* valid) const {
  const uint8_t* ip = frame + l3;
  if (ethertype == kEtherTypeIpv4) {
    if (len < l3 + 20 || (ip[0] >> 4) != 4) return 0;
    uint32_t ihl = (ip[0] & 0xfu) * 4;
    if (ihl < 20 || len < l3 + ihl) return 0;
    uint32_t h = hasher_.HashAt(ip + 12, 8, 0);
    bool fragment = (LoadBe16(ip + 6) & 0x3fff) != 0;  // MF or an offset
    uint8_t proto = ip[9];
    if (!fragment && (proto == kIpProtoTcp || proto == kIpProtoUdp) && len >= l3 + ihl + 4) {
      h ^= hasher_.HashAt(ip + ihl, 4, 8);
    }
    *valid = true;
    return h;
  }
  if (ethertype == kEtherTypeIpv6) {
    if (len < l3 + 40 || (ip[0] >> 4) != 6) return 0;
    uint32_t h = hasher_.HashAt(ip + 8, 32, 0);
    uint8_t next = ip[6];
    if ((next == kIpProtoTcp || next == kIpProtoUdp) && len >= l3 + 44) {
      h ^= hasher_.HashAt(ip + 40, 4, 32);
    }
    *valid = true;
    return h;
  }
  return 0;
}

}  // namespace iovtee::softnic
