// The switch's classifier as pure functions: frame parsing, the ACL, the
// VLAN rules and the MAC table.
#include <cstdint>
#include <vector>

#include "examples/iovtee-switch/acl.h"
#include "examples/iovtee-switch/frame.h"
#include "examples/iovtee-switch/mac_table.h"
#include "examples/iovtee-switch/vlan.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace iovtee::sw {
namespace {

using ::testing::HasSubstr;

struct FrameSpec {
  int tci = -1;  // -1: untagged
  uint16_t ether_type = kEtherTypeIpv4;
  uint8_t version = 4;
  uint8_t ihl = 5;
  uint8_t proto = kProtoUdp;
  uint16_t frag = 0;  // flags + fragment offset field
  uint32_t src = 0x0a000001, dst = 0x0a000002;
  uint16_t sport = 1024, dport = 5001;
  uint32_t payload = 18;
};

void Put16(std::vector<uint8_t>* f, uint16_t v) {
  f->push_back(static_cast<uint8_t>(v >> 8));
  f->push_back(static_cast<uint8_t>(v));
}
void Put32(std::vector<uint8_t>* f, uint32_t v) {
  Put16(f, static_cast<uint16_t>(v >> 16));
  Put16(f, static_cast<uint16_t>(v));
}

std::vector<uint8_t> Frame(const FrameSpec& s) {
  std::vector<uint8_t> f = {2, 0, 0, 0, 0, 1, 2, 0, 0, 1, 0, 0};
  if (s.tci >= 0) {
    Put16(&f, kEtherTypeVlan);
    Put16(&f, static_cast<uint16_t>(s.tci));
  }
  Put16(&f, s.ether_type);
  f.push_back(static_cast<uint8_t>(s.version << 4 | s.ihl));
  f.push_back(0);
  Put16(&f, static_cast<uint16_t>(s.ihl * 4 + 8 + s.payload));
  Put16(&f, 0);       // id
  Put16(&f, s.frag);  // flags, fragment offset
  f.push_back(64);
  f.push_back(s.proto);
  Put16(&f, 0);  // checksum: not looked at
  Put32(&f, s.src);
  Put32(&f, s.dst);
  for (int i = 5; i < s.ihl; ++i) Put32(&f, 0x01010101);  // NOP options
  Put16(&f, s.sport);
  Put16(&f, s.dport);
  Put16(&f, static_cast<uint16_t>(8 + s.payload));
  Put16(&f, 0);
  f.resize(f.size() + s.payload, 0xab);
  return f;
}

L3Info Parse(const std::vector<uint8_t>& f) {
  const L2Info l2 = ParseL2(f.data(), static_cast<uint32_t>(f.size()));
  return ParseL3(f.data(), static_cast<uint32_t>(f.size()), l2);
}

TEST(FrameTest, UntaggedAndTaggedL2) {
  FrameSpec s;
  auto f = Frame(s);
  L2Info l2 = ParseL2(f.data(), static_cast<uint32_t>(f.size()));
  EXPECT_TRUE(l2.valid);
  EXPECT_FALSE(l2.tagged);
  EXPECT_EQ(l2.ether_type, kEtherTypeIpv4);
  EXPECT_EQ(l2.l3_offset(), 14u);
  s.tci = 0xa064;  // PCP 5, VID 100
  f = Frame(s);
  l2 = ParseL2(f.data(), static_cast<uint32_t>(f.size()));
  EXPECT_TRUE(l2.valid);
  EXPECT_TRUE(l2.tagged);
  EXPECT_EQ(l2.vid(), 100);
  EXPECT_EQ(l2.tci, 0xa064);
  EXPECT_EQ(l2.ether_type, kEtherTypeIpv4);
  EXPECT_EQ(l2.l3_offset(), 18u);
}

TEST(FrameTest, ShortFramesAreInvalid) {
  FrameSpec s;
  auto f = Frame(s);
  EXPECT_FALSE(ParseL2(f.data(), 13).valid);
  EXPECT_TRUE(ParseL2(f.data(), 14).valid);
  s.tci = 5;
  f = Frame(s);
  EXPECT_FALSE(ParseL2(f.data(), 17).valid);  // the tag is cut
  EXPECT_TRUE(ParseL2(f.data(), 18).valid);
}

TEST(FrameTest, Ipv4FiveTupleUntaggedAndTagged) {
  for (int tci : {-1, 100}) {
    FrameSpec s;
    s.tci = tci;
    s.src = 0xc0a80001;
    s.dst = 0x0a0000fe;
    s.sport = 53;
    s.dport = 40000;
    const L3Info l3 = Parse(Frame(s));
    EXPECT_TRUE(l3.ipv4) << tci;
    EXPECT_TRUE(l3.has_ports) << tci;
    EXPECT_EQ(l3.proto, kProtoUdp);
    EXPECT_EQ(l3.src_ip, 0xc0a80001u);
    EXPECT_EQ(l3.dst_ip, 0x0a0000feu);
    EXPECT_EQ(l3.sport, 53);
    EXPECT_EQ(l3.dport, 40000);
  }
}

TEST(FrameTest, Ipv4OptionsMoveThePorts) {
  FrameSpec s;
  s.ihl = 15;  // 40 bytes of options
  s.proto = kProtoTcp;
  s.sport = 7;
  s.dport = 9;
  const L3Info l3 = Parse(Frame(s));
  EXPECT_TRUE(l3.has_ports);
  EXPECT_EQ(l3.sport, 7);
  EXPECT_EQ(l3.dport, 9);
}

TEST(FrameTest, WhatHasNoPortsOrIsNotIpv4) {
  FrameSpec s;
  s.proto = kProtoIcmp;
  L3Info l3 = Parse(Frame(s));
  EXPECT_TRUE(l3.ipv4);
  EXPECT_FALSE(l3.has_ports);

  s = FrameSpec();
  s.frag = 0x2000 | 185;  // a later fragment: no L4 header
  l3 = Parse(Frame(s));
  EXPECT_TRUE(l3.ipv4);
  EXPECT_FALSE(l3.has_ports);
  s.frag = 0x2000;  // the first fragment (more-fragments set, offset 0) has one
  EXPECT_TRUE(Parse(Frame(s)).has_ports);

  s = FrameSpec();
  s.ether_type = 0x0806;  // ARP
  EXPECT_FALSE(Parse(Frame(s)).ipv4);
  s = FrameSpec();
  s.version = 6;
  EXPECT_FALSE(Parse(Frame(s)).ipv4);
  s = FrameSpec();
  s.ihl = 4;
  EXPECT_FALSE(Parse(Frame(s)).ipv4);

  // Cut inside the IP header, then inside the ports.
  auto f = Frame(FrameSpec());
  const L2Info l2 = ParseL2(f.data(), static_cast<uint32_t>(f.size()));
  EXPECT_FALSE(ParseL3(f.data(), 14 + 19, l2).ipv4);
  l3 = ParseL3(f.data(), 14 + 20 + 3, l2);
  EXPECT_TRUE(l3.ipv4);
  EXPECT_FALSE(l3.has_ports);
}

AclRule Rule(const std::string& spec) {
  auto r = ParseAclRule(spec);
  EXPECT_TRUE(r.ok()) << spec << ": " << r.status();
  return r.ok() ? *r : AclRule();
}

std::string AclError(const std::string& spec) {
  auto r = ParseAclRule(spec);
  EXPECT_FALSE(r.ok()) << spec;
  return r.ok() ? "" : std::string(r.status().message());
}

TEST(AclTest, ParsesEveryField) {
  const AclRule r = Rule("drop,proto=tcp,src=10.1.0.0/16,dst=192.168.1.7,sport=1000,dport=any");
  EXPECT_TRUE(r.drop);
  EXPECT_EQ(r.proto, kProtoTcp);
  EXPECT_EQ(r.src, 0x0a010000u);
  EXPECT_EQ(r.src_mask, 0xffff0000u);
  EXPECT_EQ(r.dst, 0xc0a80107u);
  EXPECT_EQ(r.dst_mask, 0xffffffffu);
  EXPECT_EQ(r.sport, 1000);
  EXPECT_EQ(r.dport, -1);
  const AclRule a = Rule("allow");
  EXPECT_FALSE(a.drop);
  EXPECT_EQ(a.proto, -1);
  EXPECT_EQ(a.src_mask, 0u);
  EXPECT_EQ(a.sport, -1);
  EXPECT_EQ(Rule("allow,src=0.0.0.0/0").src_mask, 0u);
  EXPECT_EQ(Rule("allow,proto=icmp").proto, kProtoIcmp);
  EXPECT_EQ(Rule("allow,proto=udp,src=any,dst=any,sport=any,dport=65535").dport, 65535);
}

TEST(AclTest, ErrorsSayWhatIsWrong) {
  EXPECT_THAT(AclError(""), HasSubstr("drop or allow"));
  EXPECT_THAT(AclError("deny,proto=udp"), HasSubstr("drop or allow"));
  EXPECT_THAT(AclError("drop,proto=sctp"), HasSubstr("udp, tcp, icmp or any"));
  EXPECT_THAT(AclError("drop,port=5"), HasSubstr("unknown field 'port'"));
  EXPECT_THAT(AclError("drop,proto"), HasSubstr("FIELD=VALUE"));
  EXPECT_THAT(AclError("drop,src=10.0.0"), HasSubstr("A.B.C.D"));
  EXPECT_THAT(AclError("drop,src=256.0.0.1"), HasSubstr("A.B.C.D"));
  EXPECT_THAT(AclError("drop,dst=10.0.0.0/33"), HasSubstr("0..32"));
  EXPECT_THAT(AclError("drop,dst=10.0.0.1/8"), HasSubstr("host bits"));
  EXPECT_THAT(AclError("drop,dport=65536"), HasSubstr("0..65535"));
  EXPECT_THAT(AclError("drop,sport=-1"), HasSubstr("0..65535"));
  EXPECT_THAT(AclError("drop,proto=udp,proto=tcp"), HasSubstr("twice"));
  EXPECT_THAT(AclError("drop,proto=icmp,dport=1"), HasSubstr("no ports"));
}

TEST(AclTest, Matching) {
  FrameSpec s;  // UDP 10.0.0.1:1024 -> 10.0.0.2:5001
  const L3Info udp = Parse(Frame(s));
  EXPECT_TRUE(AclMatches(Rule("drop"), udp));
  EXPECT_TRUE(AclMatches(Rule("drop,proto=udp"), udp));
  EXPECT_FALSE(AclMatches(Rule("drop,proto=tcp"), udp));
  EXPECT_TRUE(AclMatches(Rule("drop,src=10.0.0.0/24"), udp));
  EXPECT_TRUE(AclMatches(Rule("drop,src=10.0.0.1"), udp));
  EXPECT_FALSE(AclMatches(Rule("drop,src=10.0.0.2"), udp));
  EXPECT_TRUE(AclMatches(Rule("drop,dst=10.0.0.2/32"), udp));
  EXPECT_FALSE(AclMatches(Rule("drop,dst=10.0.1.0/24"), udp));
  EXPECT_TRUE(AclMatches(Rule("drop,sport=1024,dport=5001"), udp));
  EXPECT_FALSE(AclMatches(Rule("drop,sport=1025"), udp));
  EXPECT_FALSE(AclMatches(Rule("drop,dport=5000"), udp));

  s.proto = kProtoIcmp;
  const L3Info icmp = Parse(Frame(s));
  EXPECT_TRUE(AclMatches(Rule("drop,proto=icmp"), icmp));
  EXPECT_TRUE(AclMatches(Rule("drop,proto=any"), icmp));
  // A rule with ports matches only frames that have ports.
  EXPECT_FALSE(AclMatches(Rule("drop,dport=5001"), icmp));

  s = FrameSpec();
  s.ether_type = 0x0806;
  EXPECT_FALSE(AclMatches(Rule("drop"), Parse(Frame(s))));  // IPv4 rules only
}

TEST(AclTest, FirstMatchWins) {
  std::vector<AclRule> rules = {Rule("allow,src=10.0.0.1"), Rule("drop,src=10.0.0.0/24"),
                                Rule("drop")};
  FrameSpec s;
  EXPECT_EQ(AclFirstMatch(rules, Parse(Frame(s))), 0);
  s.src = 0x0a000009;
  EXPECT_EQ(AclFirstMatch(rules, Parse(Frame(s))), 1);
  s.src = 0x0b000009;
  EXPECT_EQ(AclFirstMatch(rules, Parse(Frame(s))), 2);
  rules.pop_back();
  EXPECT_EQ(AclFirstMatch(rules, Parse(Frame(s))), -1);  // default: allow
  s.tci = 77;                                            // also behind a tag
  s.src = 0x0a000009;
  EXPECT_EQ(AclFirstMatch(rules, Parse(Frame(s))), 1);
}

TEST(VlanTest, Ingress) {
  L2Info untagged;
  untagged.valid = true;
  L2Info tagged = untagged;
  tagged.tagged = true;
  tagged.tci = 0x2000 | 100;
  const PortVlan trunk, access{100};
  EXPECT_EQ(IngressVlan(trunk, untagged), 0);
  EXPECT_EQ(IngressVlan(trunk, tagged), 100);
  EXPECT_EQ(IngressVlan(access, untagged), 100);
  EXPECT_EQ(IngressVlan(access, tagged), -1);  // tagged on an access port: dropped
}

TEST(VlanTest, Egress) {
  const PortVlan trunk, access{100};
  // Access port: its VLAN only, untagged.
  EXPECT_EQ(EgressAction(access, 100, false), TagAction::kNone);
  EXPECT_EQ(EgressAction(access, 100, true), TagAction::kPop);
  EXPECT_EQ(EgressAction(access, 200, false), TagAction::kNotMember);
  EXPECT_EQ(EgressAction(access, 0, false), TagAction::kNotMember);
  // Trunk: every VLAN tagged, VLAN 0 untagged.
  EXPECT_EQ(EgressAction(trunk, 100, false), TagAction::kPush);
  EXPECT_EQ(EgressAction(trunk, 100, true), TagAction::kNone);
  EXPECT_EQ(EgressAction(trunk, 0, false), TagAction::kNone);
  EXPECT_EQ(EgressAction(trunk, 0, true), TagAction::kPop);  // a priority tag
}

constexpr uint8_t kA[6] = {2, 0, 0, 0, 0, 0xa};
constexpr uint8_t kB[6] = {2, 0, 0, 0, 0, 0xb};

TEST(MacTableTest, LearnsPerVlan) {
  MacTable t(16, 1000);
  EXPECT_EQ(t.LookupLearned(0, MacKey(kA), 0), -1);
  EXPECT_EQ(t.Learn(0, MacKey(kA), 3, 10), MacTable::Learned::kChanged);
  EXPECT_EQ(t.LookupLearned(0, MacKey(kA), 20), 3);
  EXPECT_EQ(t.LookupLearned(7, MacKey(kA), 20), -1);  // another VLAN
  EXPECT_EQ(t.Learn(7, MacKey(kA), 4, 20), MacTable::Learned::kChanged);
  EXPECT_EQ(t.LookupLearned(7, MacKey(kA), 20), 4);
  EXPECT_EQ(t.LookupLearned(0, MacKey(kA), 20), 3);
  EXPECT_EQ(t.Learn(7, MacKey(kA), 4, 25), MacTable::Learned::kRefreshed);
  // A station that moves.
  EXPECT_EQ(t.Learn(0, MacKey(kA), 5, 30), MacTable::Learned::kChanged);
  EXPECT_EQ(t.LookupLearned(0, MacKey(kA), 30), 5);
  EXPECT_EQ(t.learned(), 2u);
}

TEST(MacTableTest, Aging) {
  MacTable t(16, 1000);
  t.Learn(0, MacKey(kA), 1, 100);
  t.Learn(0, MacKey(kB), 2, 600);
  EXPECT_EQ(t.LookupLearned(0, MacKey(kA), 1099), 1);
  EXPECT_EQ(t.LookupLearned(0, MacKey(kA), 1100), -1);  // aged, still in the table
  EXPECT_EQ(t.learned(), 2u);
  EXPECT_EQ(t.Expire(1100), 1u);
  EXPECT_EQ(t.learned(), 1u);
  t.Learn(0, MacKey(kB), 2, 1500);  // seen again: refreshed
  EXPECT_EQ(t.LookupLearned(0, MacKey(kB), 2400), 2);
  EXPECT_EQ(t.Expire(2400), 0u);

  MacTable forever(16, 0);
  forever.Learn(0, MacKey(kA), 1, 0);
  EXPECT_EQ(forever.LookupLearned(0, MacKey(kA), UINT64_MAX), 1);
  EXPECT_EQ(forever.Expire(UINT64_MAX), 0u);
}

TEST(MacTableTest, CapacityIsAHardCap) {
  MacTable t(16, 100);
  uint8_t mac[6] = {2, 0, 0, 0, 0, 0};
  for (int i = 0; i < 16; ++i) {
    mac[5] = static_cast<uint8_t>(i);
    ASSERT_EQ(t.Learn(0, MacKey(mac), 1, 0), MacTable::Learned::kChanged);
  }
  mac[5] = 16;
  EXPECT_EQ(t.Learn(0, MacKey(mac), 1, 0), MacTable::Learned::kFull);
  EXPECT_EQ(t.LookupLearned(0, MacKey(mac), 0), -1);
  mac[5] = 3;
  EXPECT_EQ(t.Learn(0, MacKey(mac), 2, 50),
            MacTable::Learned::kChanged);  // a known one still updates
  // Aging frees room; many cycles of fill and expire keep working.
  for (uint64_t round = 1; round < 50; ++round) {
    const uint64_t now = round * 1000;
    t.Expire(now);
    for (int i = 0; i < 16; ++i) {
      mac[4] = static_cast<uint8_t>(round);
      mac[5] = static_cast<uint8_t>(i);
      ASSERT_EQ(t.Learn(0, MacKey(mac), 1, now), MacTable::Learned::kChanged) << round << " " << i;
    }
    ASSERT_EQ(t.learned(), 16u);
  }
}

TEST(MacTableTest, StaticEntriesNeverMoveNorAge) {
  MacTable t(16, 100);
  t.AddStatic(MacKey(kB), 6);
  EXPECT_EQ(t.LookupStatic(MacKey(kB)), 6);
  EXPECT_EQ(t.LookupStatic(MacKey(kA)), -1);
  EXPECT_EQ(t.Learn(0, MacKey(kB), 1, 0), MacTable::Learned::kRefreshed);  // ignored
  EXPECT_EQ(t.learned(), 0u);
  EXPECT_EQ(t.LookupLearned(0, MacKey(kB), 0), -1);
  EXPECT_EQ(t.LookupStatic(MacKey(kB)), 6);
  EXPECT_EQ(t.statics(), 1u);
}

TEST(MacTableTest, ForgetAPort) {
  MacTable t(16, 0);
  t.Learn(0, MacKey(kA), 1, 0);
  t.Learn(5, MacKey(kA), 1, 0);
  t.Learn(0, MacKey(kB), 2, 0);
  EXPECT_EQ(t.Forget(1), 2u);
  EXPECT_EQ(t.LookupLearned(0, MacKey(kA), 0), -1);
  EXPECT_EQ(t.LookupLearned(0, MacKey(kB), 0), 2);
}

TEST(MacTableTest, ParseMac) {
  uint8_t m[6];
  ASSERT_TRUE(ParseMac("02:00:00:00:00:0b", m));
  EXPECT_EQ(MacKey(m), MacKey(kB));
  EXPECT_TRUE(ParseMac("FF:ff:00:00:00:01", m));
  EXPECT_TRUE(IsMulticastMac(m));
  EXPECT_FALSE(IsMulticastMac(kA));
  EXPECT_FALSE(ParseMac("02:00:00:00:00", m));
  EXPECT_FALSE(ParseMac("02:00:00:00:00:0b:", m));
  EXPECT_FALSE(ParseMac("02-00-00-00-00-0b", m));
  EXPECT_FALSE(ParseMac("2:0:0:0:0:b", m));
}

}  // namespace
}  // namespace iovtee::sw
