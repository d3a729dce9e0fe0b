// The switch's access list: IPv4 rules on the 5-tuple, first match wins,
// frames no rule matches are allowed (so are frames that are not IPv4).
//
// Rule syntax (--acl): ACTION[,FIELD=VALUE...], ACTION drop or allow,
// fields (each at most once, omitted = any):
//   proto=udp|tcp|icmp|any   src=CIDR|any   dst=CIDR|any
//   sport=N|any              dport=N|any    (N in 0..65535; with proto=udp or
//                                            tcp, or any: then only TCP and
//                                            UDP frames can match)
// CIDR is A.B.C.D or A.B.C.D/LEN with no host bits set.
#ifndef IOVTEE_EXAMPLES_IOVTEE_SWITCH_ACL_H_
#define IOVTEE_EXAMPLES_IOVTEE_SWITCH_ACL_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "examples/iovtee-switch/frame.h"

namespace iovtee::sw {

struct AclRule {
  bool drop = false;
  int proto = -1;                  // -1: any
  uint32_t src = 0, src_mask = 0;  // mask 0: any
  uint32_t dst = 0, dst_mask = 0;
  int sport = -1, dport = -1;  // -1: any
  std::string text;            // the rule as given, for counters and logs
};

// Parses one --acl value. The error says which part is wrong and what is
// accepted.
absl::StatusOr<AclRule> ParseAclRule(absl::string_view spec);

inline bool AclMatches(const AclRule& r, const L3Info& f) {
  if (!f.ipv4) return false;
  if (r.proto >= 0 && r.proto != f.proto) return false;
  if ((f.src_ip & r.src_mask) != r.src || (f.dst_ip & r.dst_mask) != r.dst) return false;
  if (r.sport >= 0 || r.dport >= 0) {
    if (!f.has_ports) return false;
    if (r.sport >= 0 && r.sport != f.sport) return false;
    if (r.dport >= 0 && r.dport != f.dport) return false;
  }
  return true;
}

// The index of the first rule that matches, or -1.
inline int AclFirstMatch(absl::Span<const AclRule> rules, const L3Info& f) {
  for (size_t i = 0; i < rules.size(); ++i) {
    if (AclMatches(rules[i], f)) return static_cast<int>(i);
  }
  return -1;
}

}  // namespace iovtee::sw

#endif  // IOVTEE_EXAMPLES_IOVTEE_SWITCH_ACL_H_
