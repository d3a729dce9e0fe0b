// Switch::StatsJson: the --stats-file document, one line of JSON.
#include <rte_cycles.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "examples/iovtee-switch/stats.h"

namespace iovtee::sw {
namespace {

// Appends "name":value pairs, comma-separated, to `s`.
class JsonFields {
 public:
  explicit JsonFields(std::string* s) : s_(s) {}
  void operator()(const char* name, uint64_t v) {
    absl::StrAppendFormat(s_, "%s\"%s\":%u", first_ ? "" : ",", name, v);
    first_ = false;
  }
  void String(const char* name, const std::string& v) {
    absl::StrAppendFormat(s_, "%s\"%s\":\"%s\"", first_ ? "" : ",", name, v);
    first_ = false;
  }
  // Opens a nested object under `name`; Close() ends it.
  void Open(const char* name) {
    absl::StrAppendFormat(s_, "%s\"%s\":{", first_ ? "" : ",", name);
    first_ = true;
  }
  void Close() {
    *s_ += "}";
    first_ = false;
  }

 private:
  std::string* s_;
  bool first_ = true;
};

}  // namespace

std::string Switch::StatsJson() const {
  std::string s = "{\"ports\":[";
  for (size_t i = 0; i < ports_.size(); ++i) {
    const Port& p = *ports_[i];
    s += i ? ",{" : "{";
    JsonFields f(&s);
    // "name" first, then "rx" and "tx": scripts grep for that sequence.
    f.String("name", p.name);
    ForEachPortCounter(p, f);
    f.String("kind", p.kind == Port::Kind::kPhy ? "phy" : "vhost");
    f("access_vlan", p.vlan.access_vid);
    f.Open("drops");
    ForEachDrop(p, f);
    f.Close();
    if (p.rx_map) {
      f.Open("mapping");
      f.String("port", p.name);
      f("queue", p.rx_map->queue_id());
      f.String("guest", p.rx_map_guest);
      ForEachMappingField(*p.rx_map, f);
      f.Close();
    }
    s += "}";
  }
  s += "],\"acl\":[";
  for (size_t r = 0; r < options_.acl.size(); ++r) {
    s += r ? ",{" : "{";
    JsonFields f(&s);
    f.String("rule", options_.acl[r].text);
    f("hits", acl_hits_[r].Get());
    s += "}";
  }
  s += "]";
  absl::StrAppendFormat(&s, ",\"acl_no_match\":%u,\"flooded\":%u,\"macs\":%u,\"static_macs\":%u",
                        acl_no_match_.Get(), flooded_.Get(), macs_.learned(), macs_.statics());
  absl::StrAppendFormat(&s, ",\"mac_table_full\":%u", mac_table_full_.Get());
  if (host_pool_ != nullptr) {
    absl::StrAppendFormat(&s, ",\"host_pool_mbufs\":%u,\"host_pool_free_mbufs\":%u",
                          host_pool_->size, rte_mempool_avail_count(host_pool_));
  }
  absl::StrAppendFormat(&s, ",\"perf\":{\"tsc_hz\":%u,\"idle_polls\":%u,\"idle_cycles\":%u",
                        rte_get_tsc_hz(), perf_.idle_polls.Get(), perf_.idle_cycles.Get());
  for (const auto& [name, dir] :
       {std::pair<const char*, const DirectionPerf*>{"p2v", &perf_.p2v}, {"v2p", &perf_.v2p}}) {
    absl::StrAppendFormat(&s, ",\"%s\":{", name);
    JsonFields d(&s);
    ForEachPerfField(*dir, d);
    s += "}";
  }
  s += "}}";
  return s;
}

}  // namespace iovtee::sw
