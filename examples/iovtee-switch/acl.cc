#include "examples/iovtee-switch/acl.h"

#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

namespace iovtee::sw {
namespace {

absl::Status Bad(absl::string_view spec, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("bad --acl '", spec, "': ", why));
}

bool ParseIpv4(absl::string_view s, uint32_t* out) {
  std::vector<absl::string_view> parts = absl::StrSplit(s, '.');
  if (parts.size() != 4) return false;
  uint32_t ip = 0;
  for (absl::string_view p : parts) {
    uint32_t b;
    if (p.empty() || p.size() > 3 || !absl::SimpleAtoi(p, &b) || b > 255) return false;
    ip = ip << 8 | b;
  }
  *out = ip;
  return true;
}

// "any", "A.B.C.D" or "A.B.C.D/LEN".
absl::Status ParseCidr(absl::string_view spec, absl::string_view key, absl::string_view v,
                       uint32_t* addr, uint32_t* mask) {
  if (v == "any") {
    *addr = *mask = 0;
    return absl::OkStatus();
  }
  uint32_t len = 32;
  absl::string_view ip = v;
  if (const size_t slash = v.find('/'); slash != absl::string_view::npos) {
    ip = v.substr(0, slash);
    if (!absl::SimpleAtoi(v.substr(slash + 1), &len) || len > 32) {
      return Bad(spec, absl::StrCat(key, "=", v, ": the prefix length must be 0..32"));
    }
  }
  if (!ParseIpv4(ip, addr)) {
    return Bad(spec, absl::StrCat(key, "=", v, ": expected A.B.C.D[/LEN] or any"));
  }
  *mask = len == 0 ? 0 : ~uint32_t{0} << (32 - len);
  if ((*addr & ~*mask) != 0) {
    const uint32_t net = *addr & *mask;
    return Bad(spec,
               absl::StrFormat("%s=%s has host bits set (did you mean %u.%u.%u.%u/%u?)", key, v,
                               net >> 24, (net >> 16) & 255, (net >> 8) & 255, net & 255, len));
  }
  return absl::OkStatus();
}

absl::Status ParsePort(absl::string_view spec, absl::string_view key, absl::string_view v,
                       int* out) {
  if (v == "any") {
    *out = -1;
    return absl::OkStatus();
  }
  uint32_t p;
  if (!absl::SimpleAtoi(v, &p) || p > 65535) {
    return Bad(spec, absl::StrCat(key, "=", v, ": expected a port 0..65535 or any"));
  }
  *out = static_cast<int>(p);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<AclRule> ParseAclRule(absl::string_view spec) {
  AclRule r;
  r.text = std::string(spec);
  std::vector<absl::string_view> parts = absl::StrSplit(spec, ',');
  if (parts[0] == "drop") {
    r.drop = true;
  } else if (parts[0] != "allow") {
    return Bad(spec, "it must start with drop or allow");
  }
  bool seen[5] = {};
  static constexpr absl::string_view kKeys[5] = {"proto", "src", "dst", "sport", "dport"};
  for (size_t i = 1; i < parts.size(); ++i) {
    const size_t eq = parts[i].find('=');
    if (eq == absl::string_view::npos) {
      return Bad(spec, absl::StrCat("'", parts[i], "' is not FIELD=VALUE"));
    }
    const absl::string_view key = parts[i].substr(0, eq);
    const absl::string_view v = parts[i].substr(eq + 1);
    int k = 0;
    while (k < 5 && kKeys[k] != key) ++k;
    if (k == 5) {
      return Bad(spec,
                 absl::StrCat("unknown field '", key, "' (fields: proto, src, dst, sport, dport)"));
    }
    if (seen[k]) return Bad(spec, absl::StrCat(key, " is given twice"));
    seen[k] = true;
    absl::Status s;
    switch (k) {
      case 0:
        if (v == "udp") {
          r.proto = kProtoUdp;
        } else if (v == "tcp") {
          r.proto = kProtoTcp;
        } else if (v == "icmp") {
          r.proto = kProtoIcmp;
        } else if (v == "any") {
          r.proto = -1;
        } else {
          return Bad(spec, absl::StrCat("proto=", v, ": expected udp, tcp, icmp or any"));
        }
        break;
      case 1:
        s = ParseCidr(spec, key, v, &r.src, &r.src_mask);
        break;
      case 2:
        s = ParseCidr(spec, key, v, &r.dst, &r.dst_mask);
        break;
      case 3:
        s = ParsePort(spec, key, v, &r.sport);
        break;
      case 4:
        s = ParsePort(spec, key, v, &r.dport);
        break;
    }
    if (!s.ok()) return s;
  }
  if (r.proto == kProtoIcmp && (r.sport >= 0 || r.dport >= 0)) {
    return Bad(spec, "sport/dport need proto=udp, tcp or any (ICMP has no ports)");
  }
  return r;
}

}  // namespace iovtee::sw
