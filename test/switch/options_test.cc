#include "examples/iovtee-switch/options.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace iovtee::sw {
namespace {

using ::testing::HasSubstr;

// Two ports unless the test adds more: phy0 and vhost0.
std::vector<std::string> Args(std::vector<std::string> extra) {
  std::vector<std::string> a = {"--phy", "net_null0", "--vhost", "/tmp/v0.sock"};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

// The error message of a parse that must fail.
std::string Error(const std::vector<std::string>& args) {
  auto o = ParseSwitchOptions(args);
  EXPECT_FALSE(o.ok()) << "parsed, but should not have";
  return o.ok() ? "" : std::string(o.status().message());
}

TEST(SwitchOptionsTest, Defaults) {
  auto o = ParseSwitchOptions(Args({}));
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->mtu, 1500);
  EXPECT_EQ(o->mac_aging_s, 300u);
  EXPECT_EQ(o->mac_table_size, 4096u);
  EXPECT_EQ(o->rx_ring, 1024);
  EXPECT_EQ(o->tx_ring, 1024);
  EXPECT_EQ(o->host_mbufs, 16384u);
  EXPECT_EQ(o->mapping.nic_buffer_size, 1518);
  EXPECT_EQ(o->duration_s, 0);
  EXPECT_FALSE(o->vhost_client);
  EXPECT_TRUE(o->acl.empty());
  EXPECT_TRUE(o->maps.empty());
  EXPECT_TRUE(o->static_macs.empty());
  EXPECT_EQ(o->access_vid, (std::vector<uint16_t>{0, 0}));
  EXPECT_EQ(o->PortName(0), "phy0");
  EXPECT_EQ(o->PortName(1), "vhost0");
}

TEST(SwitchOptionsTest, ValuesWithSpaceOrEquals) {
  auto o = ParseSwitchOptions(
      Args({"--mtu", "9000", "--mac-aging=5", "--rx-ring=256", "--duration", "2.5",
            "--stats-file=/tmp/s.json", "--vhost-client", "--host-mbufs", "4096"}));
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->mtu, 9000);
  EXPECT_EQ(o->mac_aging_s, 5u);
  EXPECT_EQ(o->rx_ring, 256);
  EXPECT_EQ(o->duration_s, 2.5);
  EXPECT_EQ(o->stats_file, "/tmp/s.json");
  EXPECT_TRUE(o->vhost_client);
  EXPECT_EQ(o->host_mbufs, 4096u);
}

TEST(SwitchOptionsTest, NumbersOutOfRangeNameTheOption) {
  EXPECT_THAT(Error(Args({"--mtu", "67"})), HasSubstr("--mtu"));
  EXPECT_THAT(Error(Args({"--mtu", "16001"})), HasSubstr("68..16000"));
  EXPECT_THAT(Error(Args({"--mtu", "9k"})), HasSubstr("--mtu"));
  EXPECT_THAT(Error(Args({"--mtu", "-1"})), HasSubstr("--mtu"));
  EXPECT_THAT(Error(Args({"--rx-ring", "40000"})), HasSubstr("--rx-ring"));
  EXPECT_THAT(Error(Args({"--nic-buffer", "100"})), HasSubstr("--nic-buffer"));
  EXPECT_THAT(Error(Args({"--mac-aging", "x"})), HasSubstr("--mac-aging"));
  EXPECT_THAT(Error(Args({"--duration", "-2"})), HasSubstr("--duration"));
  EXPECT_THAT(Error(Args({"--duration", "nan"})), HasSubstr("--duration"));
}

TEST(SwitchOptionsTest, MalformedCommandLines) {
  EXPECT_THAT(Error(Args({"--bogus", "1"})), HasSubstr("unknown option --bogus"));
  EXPECT_THAT(Error(Args({"--mtu"})), HasSubstr("--mtu needs a value"));
  EXPECT_THAT(Error(Args({"--help=1"})), HasSubstr("--help takes no value"));
  EXPECT_THAT(Error(Args({"stray"})), HasSubstr("unexpected argument 'stray'"));
  EXPECT_THAT(Error({"--phy", "net_null0"}), HasSubstr("at least two ports"));
  EXPECT_THAT(Error(Args({"--phy", ""})), HasSubstr("--phy"));
}

TEST(SwitchOptionsTest, TooManyPorts) {
  std::vector<std::string> a;
  for (int i = 0; i <= kMaxPorts; ++i) {
    a.push_back("--vhost");
    a.push_back("/tmp/v" + std::to_string(i));
  }
  EXPECT_THAT(Error(a), HasSubstr("too many ports"));
}

TEST(SwitchOptionsTest, HelpNeedsNoPorts) {
  auto o = ParseSwitchOptions({"--help"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_TRUE(o->help);
}

TEST(SwitchOptionsTest, UsageListsEveryOption) {
  const std::string usage = SwitchUsage("iovtee-switch");
  for (const char* opt :
       {"--phy", "--vhost", "--vhost-client", "--mtu", "--map", "--residency-cap", "--nic-buffer",
        "--pool-size", "--mac", "--mac-aging", "--mac-table-size", "--vlan", "--acl", "--rx-ring",
        "--tx-ring", "--host-mbufs", "--duration", "--stats-file", "--help"}) {
    EXPECT_THAT(usage, HasSubstr(opt));
    // And the parser knows it (an unknown option says so).
    std::vector<std::string> a = Args({opt});
    if (std::string(opt) != "--help" && std::string(opt) != "--vhost-client") a.push_back("1");
    auto o = ParseSwitchOptions(a);
    if (!o.ok()) {
      EXPECT_THAT(o.status().message(), ::testing::Not(HasSubstr("unknown option"))) << opt;
    }
  }
  for (const char* endpoint : {"/iovtee_switch/ports", "/iovtee_switch/mappings",
                               "/iovtee_switch/perf", "iovtee.switch"}) {
    EXPECT_THAT(usage, HasSubstr(endpoint));
  }
}

TEST(SwitchOptionsTest, MapResolvesPortsInAnyOrder) {
  // --map before the ports it names.
  auto o = ParseSwitchOptions(
      {"--map", "phy1:0=vhost1", "--phy", "a", "--phy", "b", "--vhost", "/v0", "--vhost", "/v1"});
  ASSERT_TRUE(o.ok()) << o.status();
  ASSERT_EQ(o->maps.size(), 1u);
  EXPECT_EQ(o->maps[0].phy, 1);
  EXPECT_EQ(o->maps[0].queue, 0);
  EXPECT_EQ(o->maps[0].vhost, 1);
}

TEST(SwitchOptionsTest, MapErrors) {
  EXPECT_THAT(Error(Args({"--map", "phy0=vhost0"})), HasSubstr("PHY:QUEUE=VHOST"));
  EXPECT_THAT(Error(Args({"--map", "phy1:0=vhost0"})), HasSubstr("no port 'phy1'"));
  EXPECT_THAT(Error(Args({"--map", "phy0:0=vhost3"})), HasSubstr("no port 'vhost3'"));
  EXPECT_THAT(Error(Args({"--map", "vhost0:0=vhost0"})), HasSubstr("no port 'vhost0'"));
  EXPECT_THAT(Error(Args({"--map", "phy0:0=phy0"})), HasSubstr("no port 'phy0'"));
  EXPECT_THAT(Error(Args({"--map", "phy0:1=vhost0"})), HasSubstr("queue 0"));
  EXPECT_THAT(Error(Args({"--map", "phy0:0=vhost0", "--map", "phy0:0=vhost0"})),
              HasSubstr("mapped once"));
}

TEST(SwitchOptionsTest, StaticMacs) {
  auto o = ParseSwitchOptions(Args(
      {"--vhost", "/v1", "--mac", "vhost1=02:00:00:00:00:0b", "--mac=phy0=02:AA:00:00:00:01"}));
  ASSERT_TRUE(o.ok()) << o.status();
  ASSERT_EQ(o->static_macs.size(), 2u);
  EXPECT_EQ(o->static_macs[0].port, 2);  // phy0, vhost0, vhost1
  const uint8_t want0[6] = {2, 0, 0, 0, 0, 0x0b};
  EXPECT_EQ(0, memcmp(o->static_macs[0].mac, want0, 6));
  EXPECT_EQ(o->static_macs[1].port, 0);
  EXPECT_EQ(o->static_macs[1].mac[1], 0xaa);
}

TEST(SwitchOptionsTest, StaticMacErrors) {
  EXPECT_THAT(Error(Args({"--mac", "02:00:00:00:00:0b"})), HasSubstr("--mac"));
  EXPECT_THAT(Error(Args({"--mac", "vhost9=02:00:00:00:00:0b"})), HasSubstr("no port 'vhost9'"));
  EXPECT_THAT(Error(Args({"--mac", "vhost0=02:00:00:00:0b"})), HasSubstr("xx:xx:xx:xx:xx:xx"));
  EXPECT_THAT(Error(Args({"--mac", "vhost0=02:00:00:00:00:0bb"})), HasSubstr("--mac"));
  EXPECT_THAT(Error(Args({"--mac", "vhost0=01:00:5e:00:00:01"})), HasSubstr("unicast"));
  EXPECT_THAT(Error(Args({"--mac", "vhost0=02:00:00:00:00:0b", "--mac", "phy0=02:00:00:00:00:0B"})),
              HasSubstr("once"));
}

TEST(SwitchOptionsTest, Vlans) {
  auto o = ParseSwitchOptions(Args({"--vlan", "vhost0=100", "--vlan=phy0=4094"}));
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->access_vid, (std::vector<uint16_t>{4094, 100}));
  EXPECT_THAT(Error(Args({"--vlan", "vhost0=0"})), HasSubstr("1..4094"));
  EXPECT_THAT(Error(Args({"--vlan", "vhost0=4095"})), HasSubstr("1..4094"));
  EXPECT_THAT(Error(Args({"--vlan", "vhost0"})), HasSubstr("PORT=VID"));
  EXPECT_THAT(Error(Args({"--vlan", "vhost1=5"})), HasSubstr("no port 'vhost1'"));
  EXPECT_THAT(Error(Args({"--vlan", "vhost0=5", "--vlan", "vhost0=6"})),
              HasSubstr("one VLAN per port"));
}

TEST(SwitchOptionsTest, AclRulesKeepTheirOrder) {
  auto o = ParseSwitchOptions(Args({"--acl", "drop,proto=udp,dport=53", "--acl", "allow"}));
  ASSERT_TRUE(o.ok()) << o.status();
  ASSERT_EQ(o->acl.size(), 2u);
  EXPECT_TRUE(o->acl[0].drop);
  EXPECT_EQ(o->acl[0].dport, 53);
  EXPECT_EQ(o->acl[0].text, "drop,proto=udp,dport=53");
  EXPECT_FALSE(o->acl[1].drop);
  EXPECT_THAT(Error(Args({"--acl", "deny"})), HasSubstr("--acl"));
}

}  // namespace
}  // namespace iovtee::sw
