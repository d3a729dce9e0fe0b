// rte_flow steering: ETH(dst MAC) [/ VLAN(vid)] / END -> QUEUE / END, written
// into the device's seqlocked rule table (checked before RSS, first match
// wins, in creation order). Anything else is refused with an rte_flow_error
// that names the offending item or action.
#include <rte_byteorder.h>
#include <rte_flow.h>
#include <rte_flow_driver.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>

#include "test/softnic/pmd/port.h"

namespace iovtee::simnic {
namespace {

const rte_flow_item* SkipVoid(const rte_flow_item* item) {
  while (item->type == RTE_FLOW_ITEM_TYPE_VOID) ++item;
  return item;
}

const rte_flow_action* SkipVoid(const rte_flow_action* action) {
  while (action->type == RTE_FLOW_ACTION_TYPE_VOID) ++action;
  return action;
}

bool AllBytes(const uint8_t* p, size_t n, uint8_t v) {
  for (size_t i = 0; i < n; ++i) {
    if (p[i] != v) return false;
  }
  return true;
}

int ItemError(rte_flow_error* error, const rte_flow_item* item, const char* why) {
  return rte_flow_error_set(error, ENOTSUP, RTE_FLOW_ERROR_TYPE_ITEM, item, why);
}

int ParseEth(const rte_flow_item* item, FlowRule* rule, rte_flow_error* error) {
  const auto* spec = static_cast<const rte_flow_item_eth*>(item->spec);
  const auto* mask = static_cast<const rte_flow_item_eth*>(item->mask);
  if (item->last != nullptr) return ItemError(error, item, "ETH: ranges (last) are not supported");
  if (spec == nullptr || mask == nullptr) {
    return ItemError(error, item, "ETH: needs spec and mask with a destination MAC");
  }
  if (!AllBytes(mask->hdr.dst_addr.addr_bytes, RTE_ETHER_ADDR_LEN, 0xff)) {
    return ItemError(error, item, "ETH: the destination MAC mask must be full (ff:ff:ff:ff:ff:ff)");
  }
  if (!AllBytes(mask->hdr.src_addr.addr_bytes, RTE_ETHER_ADDR_LEN, 0) ||
      mask->hdr.ether_type != 0 || mask->has_vlan != 0) {
    return ItemError(error, item, "ETH: only the destination MAC can be matched");
  }
  std::memcpy(rule->dst_mac, spec->hdr.dst_addr.addr_bytes, RTE_ETHER_ADDR_LEN);
  return 0;
}

int ParseVlan(const rte_flow_item* item, FlowRule* rule, rte_flow_error* error) {
  const auto* spec = static_cast<const rte_flow_item_vlan*>(item->spec);
  const auto* mask = static_cast<const rte_flow_item_vlan*>(item->mask);
  if (item->last != nullptr) return ItemError(error, item, "VLAN: ranges (last) are not supported");
  if (spec == nullptr || mask == nullptr) {
    return ItemError(error, item, "VLAN: needs spec and mask with the VLAN id");
  }
  if (rte_be_to_cpu_16(mask->hdr.vlan_tci) != 0x0fff || mask->hdr.eth_proto != 0 ||
      mask->has_more_vlan != 0) {
    return ItemError(error, item, "VLAN: only the VLAN id (tci mask 0x0fff) can be matched");
  }
  rule->match_vlan = 1;
  rule->vlan_id = rte_be_to_cpu_16(spec->hdr.vlan_tci) & 0x0fff;
  return 0;
}

int ParseFlow(rte_eth_dev* dev, const rte_flow_attr* attr, const rte_flow_item pattern[],
              const rte_flow_action actions[], FlowRule* rule, rte_flow_error* error) {
  *rule = FlowRule{};
  if (attr == nullptr || pattern == nullptr || actions == nullptr) {
    return rte_flow_error_set(error, EINVAL, RTE_FLOW_ERROR_TYPE_UNSPECIFIED, nullptr,
                              "attributes, pattern and actions are required");
  }
  if (!attr->ingress || attr->egress || attr->transfer) {
    return rte_flow_error_set(error, ENOTSUP, RTE_FLOW_ERROR_TYPE_ATTR, attr,
                              "only ingress rules are supported");
  }
  if (attr->group != 0) {
    return rte_flow_error_set(error, ENOTSUP, RTE_FLOW_ERROR_TYPE_ATTR_GROUP, attr,
                              "only group 0 is supported");
  }
  if (attr->priority != 0) {
    return rte_flow_error_set(error, ENOTSUP, RTE_FLOW_ERROR_TYPE_ATTR_PRIORITY, attr,
                              "only priority 0 is supported (rules match in creation order)");
  }

  const rte_flow_item* item = SkipVoid(pattern);
  if (item->type != RTE_FLOW_ITEM_TYPE_ETH) {
    return ItemError(error, item, "the pattern must be ETH [/ VLAN] / END");
  }
  if (int r = ParseEth(item, rule, error); r != 0) return r;
  item = SkipVoid(item + 1);
  if (item->type == RTE_FLOW_ITEM_TYPE_VLAN) {
    if (int r = ParseVlan(item, rule, error); r != 0) return r;
    item = SkipVoid(item + 1);
  }
  if (item->type != RTE_FLOW_ITEM_TYPE_END) {
    return ItemError(error, item, "the pattern must be ETH [/ VLAN] / END");
  }

  const rte_flow_action* action = SkipVoid(actions);
  if (action->type != RTE_FLOW_ACTION_TYPE_QUEUE) {
    return rte_flow_error_set(error, ENOTSUP, RTE_FLOW_ERROR_TYPE_ACTION, action,
                              "the only action is QUEUE");
  }
  const auto* queue = static_cast<const rte_flow_action_queue*>(action->conf);
  if (queue == nullptr || queue->index >= dev->data->nb_rx_queues) {
    return rte_flow_error_set(error, EINVAL, RTE_FLOW_ERROR_TYPE_ACTION_CONF, action,
                              "QUEUE: the index must name a configured Rx queue");
  }
  rule->queue = queue->index;
  action = SkipVoid(action + 1);
  if (action->type != RTE_FLOW_ACTION_TYPE_END) {
    return rte_flow_error_set(error, ENOTSUP, RTE_FLOW_ERROR_TYPE_ACTION, action,
                              "only one action (QUEUE) is supported");
  }
  rule->valid = 1;
  return 0;
}

int FlowValidate(rte_eth_dev* dev, const rte_flow_attr* attr, const rte_flow_item pattern[],
                 const rte_flow_action actions[], rte_flow_error* error) {
  FlowRule rule;
  return ParseFlow(dev, attr, pattern, actions, &rule, error);
}

rte_flow* FlowCreate(rte_eth_dev* dev, const rte_flow_attr* attr, const rte_flow_item pattern[],
                     const rte_flow_action actions[], rte_flow_error* error) {
  FlowRule rule;
  if (ParseFlow(dev, attr, pattern, actions, &rule, error) != 0) return nullptr;
  Port* port = GetPort(dev);
  std::lock_guard<std::mutex> lock(port->table_mu);
  if (port->flows.size() >= static_cast<size_t>(kMaxFlowRules)) {
    rte_flow_error_set(error, ENOSPC, RTE_FLOW_ERROR_TYPE_HANDLE, nullptr,
                       "the steering table is full (64 rules)");
    return nullptr;
  }
  auto* flow = new (std::nothrow) rte_flow{rule};
  if (flow == nullptr) {
    rte_flow_error_set(error, ENOMEM, RTE_FLOW_ERROR_TYPE_HANDLE, nullptr, "out of memory");
    return nullptr;
  }
  port->flows.push_back(flow);
  WriteFlowTable(port);
  return flow;
}

int FlowDestroy(rte_eth_dev* dev, rte_flow* flow, rte_flow_error* error) {
  Port* port = GetPort(dev);
  std::lock_guard<std::mutex> lock(port->table_mu);
  auto it = std::find(port->flows.begin(), port->flows.end(), flow);
  if (it == port->flows.end()) {
    return rte_flow_error_set(error, EINVAL, RTE_FLOW_ERROR_TYPE_HANDLE, flow,
                              "not a flow of this port");
  }
  port->flows.erase(it);
  WriteFlowTable(port);
  delete flow;
  return 0;
}

int FlowFlush(rte_eth_dev* dev, rte_flow_error* error) {
  FlowFlushAll(GetPort(dev));
  return 0;
}

constexpr rte_flow_ops MakeFlowOps() {
  rte_flow_ops ops{};
  ops.validate = FlowValidate;
  ops.create = FlowCreate;
  ops.destroy = FlowDestroy;
  ops.flush = FlowFlush;
  return ops;
}

constexpr rte_flow_ops kFlowOps = MakeFlowOps();

}  // namespace

void FlowFlushAll(Port* port) {
  std::lock_guard<std::mutex> lock(port->table_mu);
  for (rte_flow* f : port->flows) delete f;
  port->flows.clear();
  WriteFlowTable(port);
}

int FlowOpsGet(rte_eth_dev* dev, const rte_flow_ops** ops) {
  *ops = &kFlowOps;
  return 0;
}

}  // namespace iovtee::simnic
