// The control channel: kHello validation, kMap/kUnmap errors, framing of
// messages split across reads, kBye, a driver that disconnects and a new one
// that connects, and a second driver refused while one is up.
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "test/softnic/device/device_rig.h"

namespace iovtee::softnic::testing {
namespace {

std::unique_ptr<Device> NewDevice() {
  DeviceOptions o;
  o.log = false;
  auto d = Device::Create(o);
  EXPECT_TRUE(d.ok());
  return std::move(*d);
}

std::unique_ptr<FakeDriver> NewDriver(const std::string& name = "fake0") {
  FakeDriverOptions o;
  o.name = name;
  auto d = FakeDriver::Create(o);
  EXPECT_TRUE(d.ok());
  return std::move(*d);
}

// Connects `driver` to `device` over a socketpair, pumping the device.
void Pair(Device* device, FakeDriver* driver) {
  auto fd = driver->SocketPair();
  ASSERT_TRUE(fd.ok());
  ASSERT_TRUE(device->Attach(*fd).ok());
  driver->set_pump([device] { device->PollControl(); });
}

// TEST_TMPDIR is usually longer than a unix socket path may be.
std::string SocketPath(const char* name) { return "/tmp/" + std::to_string(getpid()) + "-" + name; }

TEST(ControlTest, HelloIsValidated) {
  auto device = NewDevice();
  auto driver = NewDriver("port-a");
  Pair(device.get(), driver.get());
  EXPECT_EQ(driver->Call(simnic::MsgType::kHello, 0, 1 << 20, 0, -1), -EBADF);
  EXPECT_EQ(driver->Call(simnic::MsgType::kHello, 0, 100, 0, driver->memfd()), -EINVAL);
  // Longer than the memfd.
  EXPECT_EQ(driver->Call(simnic::MsgType::kHello, 0, 64 << 20, 0, driver->memfd()), -EINVAL);
  driver->regs()->magic = 0x12345678;
  EXPECT_EQ(driver->Hello(), -EPROTO);
  driver->regs()->magic = simnic::kMagic;
  driver->regs()->abi_version = 99;
  EXPECT_EQ(driver->Hello(), -EPROTO);
  driver->regs()->abi_version = simnic::kAbiVersion;
  driver->regs()->num_rxq = 17;
  EXPECT_EQ(driver->Hello(), -EINVAL);
  driver->regs()->num_rxq = 1;
  EXPECT_FALSE(device->connected());
  EXPECT_EQ(driver->Hello(), 0);
  EXPECT_TRUE(device->connected());
  EXPECT_EQ(driver->Hello(), -EBUSY);
  EXPECT_EQ(driver->Call(static_cast<simnic::MsgType>(77), 0, 0, 0, -1), -EINVAL);
  DeviceStats st = device->Stats();
  EXPECT_EQ(st.driver_name, "port-a");
  EXPECT_EQ(st.control_errors, 8u);
  EXPECT_NE(device->Describe().find("driver 'port-a'"), std::string::npos) << device->Describe();
}

TEST(ControlTest, MapAndUnmapErrors) {
  auto device = NewDevice();
  auto driver = NewDriver();
  Pair(device.get(), driver.get());
  ASSERT_EQ(driver->Hello(), 0);
  auto area = DmaArea::Create(16384);
  ASSERT_TRUE(area.ok());
  int fd = (*area)->fd();
  EXPECT_EQ(driver->Map(0x1000, 0, fd, 0), -EINVAL);
  EXPECT_EQ(driver->Map(0x1000, 4096, -1, 0), -EBADF);
  EXPECT_EQ(driver->Map(0x1000, 16384, fd, 4096), -EINVAL);         // past the end of the file
  EXPECT_EQ(driver->Map(~uint64_t{0} - 10, 4096, fd, 0), -EINVAL);  // wraps
  ASSERT_EQ(driver->Map(0x10000, 8192, fd, 0), 0);
  EXPECT_EQ(driver->Map(0x10000 + 4096, 4096, fd, 0), -EEXIST);
  EXPECT_EQ(driver->Map(0x10000 - 4096, 4097, fd, 0), -EEXIST);
  EXPECT_EQ(driver->Map(0x10000 - 4096, 4096, fd, 0), 0);  // adjacent is fine
  EXPECT_EQ(device->Stats().mappings, 2u);

  EXPECT_EQ(driver->Unmap(0x20000, 4096), -ENOENT);
  EXPECT_EQ(driver->Unmap(0x10000, 4096), -EINVAL);  // part of a mapping
  EXPECT_EQ(driver->Unmap(0x10000 + 4096, 4096), -ENOENT);
  EXPECT_EQ(driver->Unmap(0x10000, 8192), 0);
  EXPECT_EQ(driver->Unmap(0x10000, 8192), -ENOENT);
  EXPECT_EQ(device->Stats().mappings, 1u);
}

TEST(ControlTest, MapAtAnUnalignedFileOffset) {
  auto r = Rig::Create();
  ASSERT_TRUE(r.ok());
  Rig& rig = **r;
  auto area = DmaArea::Create(3 * 4096);
  ASSERT_TRUE(area.ok());
  memset((*area)->data(), 0, 3 * 4096);
  // IOVA 0x90000000 is file offset 4096 + 100.
  ASSERT_EQ(rig.driver->Map(0x90000000, 5000, (*area)->fd(), 4096 + 100), 0);
  rig.driver->ConfigureRx(0, 2048);
  rig.driver->StartRx(0);
  ASSERT_TRUE(rig.driver->PostRx(0, 0x90000000 + 10));
  FrameSpec s;
  std::vector<uint8_t> f = BuildFrame(s);
  Frame fr{f.data(), static_cast<uint32_t>(f.size())};
  EXPECT_EQ(rig.device->Receive(absl::MakeConstSpan(&fr, 1)), 1u);
  EXPECT_EQ(memcmp((*area)->data() + 4096 + 110, f.data(), f.size()), 0);
  EXPECT_EQ((*area)->data()[4096 + 109], 0);
}

TEST(ControlTest, MessagesSplitAcrossReadsAndExtraFds) {
  auto device = NewDevice();
  auto driver = NewDriver();
  auto fd = driver->SocketPair();
  ASSERT_TRUE(fd.ok());
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  ASSERT_TRUE(device->Attach(sv[1]).ok());
  close(*fd);

  simnic::Msg hello = {};
  hello.type = simnic::MsgType::kHello;
  hello.seq = 9;
  hello.len = sizeof(simnic::RegisterPage);
  // The fd travels with the first 30 bytes; the rest follows later.
  int memfd = driver->memfd();
  iovec iov = {&hello, 30};
  alignas(cmsghdr) char control[CMSG_SPACE(2 * sizeof(int))] = {};
  msghdr mh = {};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = control;
  mh.msg_controllen = CMSG_SPACE(sizeof(int));
  cmsghdr* c = CMSG_FIRSTHDR(&mh);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &memfd, sizeof(int));
  ASSERT_EQ(sendmsg(sv[0], &mh, 0), 30);
  EXPECT_EQ(device->PollControl(), 0);
  ASSERT_EQ(send(sv[0], reinterpret_cast<char*>(&hello) + 30, sizeof(hello) - 30, 0),
            static_cast<ssize_t>(sizeof(hello) - 30));
  EXPECT_EQ(device->PollControl(), 1);
  simnic::Msg ack;
  ASSERT_EQ(recv(sv[0], &ack, sizeof(ack), 0), static_cast<ssize_t>(sizeof(ack)));
  EXPECT_EQ(ack.type, simnic::MsgType::kAck);
  EXPECT_EQ(ack.seq, 9u);
  EXPECT_EQ(ack.status, 0);

  // Two fds with one kMap: ambiguous, refused.
  auto area = DmaArea::Create(4096);
  ASSERT_TRUE(area.ok());
  simnic::Msg map = {};
  map.type = simnic::MsgType::kMap;
  map.seq = 10;
  map.iova = 0x1000;
  map.len = 4096;
  iov = {&map, sizeof(map)};
  mh.msg_controllen = CMSG_SPACE(2 * sizeof(int));
  c = CMSG_FIRSTHDR(&mh);
  c->cmsg_len = CMSG_LEN(2 * sizeof(int));
  int fds[2] = {(*area)->fd(), (*area)->fd()};
  memcpy(CMSG_DATA(c), fds, sizeof(fds));
  ASSERT_EQ(sendmsg(sv[0], &mh, 0), static_cast<ssize_t>(sizeof(map)));
  EXPECT_EQ(device->PollControl(), 1);
  ASSERT_EQ(recv(sv[0], &ack, sizeof(ack), 0), static_cast<ssize_t>(sizeof(ack)));
  EXPECT_EQ(ack.seq, 10u);
  EXPECT_EQ(ack.status, -EINVAL);
  EXPECT_EQ(device->Stats().mappings, 0u);
  close(sv[0]);
}

TEST(ControlTest, ByeReleasesThePortAndTheConnectionStaysUsable) {
  auto r = Rig::Create();
  ASSERT_TRUE(r.ok());
  Rig& rig = **r;
  EXPECT_EQ(rig.device->Stats().mappings, 1u);
  EXPECT_EQ(rig.driver->Bye(), 0);
  EXPECT_FALSE(rig.device->connected());
  EXPECT_EQ(rig.device->Stats().mappings, 0u);
  std::vector<uint8_t> f = BuildFrame(FrameSpec{});
  Frame fr{f.data(), static_cast<uint32_t>(f.size())};
  EXPECT_EQ(rig.device->Receive(absl::MakeConstSpan(&fr, 1)), 0u);
  EXPECT_EQ(rig.device->Stats().rx_no_port, 1u);
  EXPECT_EQ(rig.driver->Hello(), 0);
  EXPECT_TRUE(rig.device->connected());
}

// A driver process that dies: EOF drops the port (nothing is touched again)
// and a new driver connects to the same socket path.
TEST(ControlTest, DisconnectAndReconnectOnASocketPath) {
  auto device = NewDevice();
  std::string path = SocketPath("simnic-reconnect.sock");
  absl::Status listening = device->Listen(path);
  ASSERT_TRUE(listening.ok()) << listening;
  Device* dev = device.get();
  auto pump = [dev] { dev->PollControl(); };
  std::vector<uint8_t> f = BuildFrame(FrameSpec{});
  Frame fr{f.data(), static_cast<uint32_t>(f.size())};

  auto first = NewDriver("first");
  auto area1 = DmaArea::Create(65536);
  ASSERT_TRUE(area1.ok());
  ASSERT_TRUE(first->Connect(path).ok());
  first->set_pump(pump);
  ASSERT_EQ(first->Hello(), 0);
  ASSERT_EQ(first->Map(0x1000000, 65536, (*area1)->fd(), 0), 0);
  first->ConfigureRx(0, 2048);
  first->StartRx(0);
  ASSERT_TRUE(first->PostRx(0, 0x1000000));
  ASSERT_TRUE(first->PostRx(0, 0x1000000 + 4096));
  EXPECT_EQ(device->Receive(absl::MakeConstSpan(&fr, 1)), 1u);

  // A second driver while the first is up: closed at once.
  auto intruder = NewDriver("intruder");
  ASSERT_TRUE(intruder->Connect(path).ok());
  intruder->set_pump(pump);
  EXPECT_EQ(intruder->Hello(), -EPIPE);
  EXPECT_TRUE(device->connected());

  first->CloseSocket();
  device->PollControl();
  EXPECT_FALSE(device->connected());
  DeviceStats st = device->Stats();
  EXPECT_EQ(st.mappings, 0u);
  EXPECT_EQ(st.disconnects, 2u);  // the intruder and the first driver
  memset((*area1)->data(), 0x5a, 65536);
  EXPECT_EQ(device->Receive(absl::MakeConstSpan(&fr, 1)), 0u);
  for (int i = 0; i < 65536; ++i) ASSERT_EQ((*area1)->data()[i], 0x5a);
  EXPECT_EQ(device->Stats().rx_no_port, 1u);

  auto second = NewDriver("second");
  auto area2 = DmaArea::Create(65536);
  ASSERT_TRUE(area2.ok());
  ASSERT_TRUE(second->Connect(path).ok());
  second->set_pump(pump);
  ASSERT_EQ(second->Hello(), 0);
  ASSERT_EQ(second->Map(0x1000000, 65536, (*area2)->fd(), 0), 0);
  second->ConfigureRx(0, 2048);
  second->StartRx(0);
  ASSERT_TRUE(second->PostRx(0, 0x1000000));
  EXPECT_EQ(device->Receive(absl::MakeConstSpan(&fr, 1)), 1u);
  EXPECT_EQ(memcmp((*area2)->data(), f.data(), f.size()), 0);
  st = device->Stats();
  EXPECT_EQ(st.driver_name, "second");
  EXPECT_EQ(st.connections, 3u);
  EXPECT_EQ(st.rx[0].packets, 1u);  // counters restart with the new driver
}

TEST(ControlTest, ListenRejectsABadPath) {
  auto device = NewDevice();
  EXPECT_FALSE(device->Listen(std::string(200, 'x')).ok());
  EXPECT_FALSE(device->Listen("/nonexistent-dir/x.sock").ok());
}

TEST(ControlTest, DescribeWithoutADriver) {
  auto device = NewDevice();
  EXPECT_NE(device->Describe().find("no driver"), std::string::npos) << device->Describe();
}

}  // namespace
}  // namespace iovtee::softnic::testing
