// Writers of the seqlocked tables in the register page (RSS, steering rules).
// The device reads them while frames arrive; it retries while the sequence
// number is odd or changed, so a reader never acts on a half-written table.
#include <cstring>

#include "test/softnic/pmd/port.h"

namespace iovtee::simnic {
namespace {

void SeqBegin(uint32_t* seq) {
  StoreRelaxed(seq, LoadRelaxed(seq) + 1);  // odd: writing
  // The odd value is visible before any table store.
  __atomic_thread_fence(__ATOMIC_RELEASE);
}

void SeqEnd(uint32_t* seq) {
  __atomic_store_n(seq, LoadRelaxed(seq) + 1, __ATOMIC_RELEASE);  // even again
}

}  // namespace

void WriteRss(Port* port, const uint8_t* key, const uint16_t* reta, bool enabled) {
  RegisterPage* regs = port->regs;
  SeqBegin(&regs->rss_seq);
  StoreRelaxed(&regs->rss_enabled, enabled ? 1u : 0u);
  if (key != nullptr) {
    for (int i = 0; i < kRssKeySize; ++i) StoreRelaxed(&regs->rss_key[i], key[i]);
  }
  if (reta != nullptr) {
    for (int i = 0; i < kRetaSize; ++i) StoreRelaxed(&regs->reta[i], reta[i]);
  }
  SeqEnd(&regs->rss_seq);
}

void WriteFlowTable(Port* port) {
  RegisterPage* regs = port->regs;
  const uint32_t n = static_cast<uint32_t>(port->flows.size());
  const uint32_t old_n = LoadRelaxed(&regs->num_flow_rules);
  SeqBegin(&regs->flow_seq);
  for (uint32_t i = 0; i < n; ++i) {
    const FlowRule& src = port->flows[i]->rule;
    FlowRule* dst = &regs->rules[i];
    for (int b = 0; b < RTE_ETHER_ADDR_LEN; ++b) StoreRelaxed(&dst->dst_mac[b], src.dst_mac[b]);
    StoreRelaxed(&dst->match_vlan, src.match_vlan);
    StoreRelaxed(&dst->vlan_id, src.vlan_id);
    StoreRelaxed(&dst->queue, src.queue);
    StoreRelaxed(&dst->valid, uint8_t{1});
  }
  for (uint32_t i = n; i < old_n && i < static_cast<uint32_t>(kMaxFlowRules); ++i) {
    StoreRelaxed(&regs->rules[i].valid, uint8_t{0});
  }
  StoreRelaxed(&regs->num_flow_rules, n);
  SeqEnd(&regs->flow_seq);
}

}  // namespace iovtee::simnic
