// The C ABI (include/iovtee/iovtee.h), driven from C++ for gtest's sake:
// argument and error paths with their errno values and messages, the error
// buffer, the versioned options and stats structs (older and newer sizes),
// the mirror of every counter, and a mapping on a soft NIC port (frames
// received through the mapping's mempool, enqueued with no guest attached).
// test/capi/c_host_test.c does the same from a C program over libiovtee.so.
#include "iovtee/iovtee.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_vhost.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "iovtee/mapping.h"
#include "src/capi/status_errno.h"
#include "test/common/eal.h"
#include "test/softnic/pmd/pmd_test_util.h"

namespace iovtee::capi {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::StartsWith;

constexpr uint64_t kFInOrder = uint64_t{1} << 35;  // VIRTIO_F_IN_ORDER

// Every field of the stats struct after `size`, by name: the names must be
// those of iovtee_mapping_get_counters (and of StatsFields).
struct Field {
  const char* name;
  size_t offset;
  size_t size;
};
#define IOVTEE_FIELD(f) \
  Field { #f, offsetof(iovtee_mapping_stats, f), sizeof(iovtee_mapping_stats::f) }
const std::vector<Field>& StatsTable() {
  static const std::vector<Field> table = {
      IOVTEE_FIELD(attached),
      IOVTEE_FIELD(zero_copy),
      IOVTEE_FIELD(copied),
      IOVTEE_FIELD(bytes),
      IOVTEE_FIELD(copy_foreign),
      IOVTEE_FIELD(copy_host_buffer),
      IOVTEE_FIELD(copy_multi_segment),
      IOVTEE_FIELD(copy_shared),
      IOVTEE_FIELD(copy_stale_session),
      IOVTEE_FIELD(copy_layout),
      IOVTEE_FIELD(copy_order_unproven),
      IOVTEE_FIELD(drop_no_buffer),
      IOVTEE_FIELD(drop_too_big),
      IOVTEE_FIELD(drop_offload),
      IOVTEE_FIELD(drop_broken_queue),
      IOVTEE_FIELD(drop_no_guest),
      IOVTEE_FIELD(guest_buffers_held),
      IOVTEE_FIELD(guest_buffers_lent),
      IOVTEE_FIELD(host_buffers_posted),
      IOVTEE_FIELD(guest_buffers_recycled),
      IOVTEE_FIELD(guest_buffers_orphaned),
      IOVTEE_FIELD(validation_errors),
      IOVTEE_FIELD(attaches),
      IOVTEE_FIELD(detaches),
      IOVTEE_FIELD(order_probation),
      IOVTEE_FIELD(quarantined_sessions),
      IOVTEE_FIELD(notify_retries),
      IOVTEE_FIELD(pool_mbufs),
      IOVTEE_FIELD(pool_free_mbufs),
      IOVTEE_FIELD(nic_wrote_outside),
      IOVTEE_FIELD(lending_disabled),
      IOVTEE_FIELD(drop_detach),
  };
  return table;
}
#undef IOVTEE_FIELD

uint64_t FieldValue(const iovtee_mapping_stats& s, const Field& f) {
  uint64_t v;
  std::memcpy(&v, reinterpret_cast<const unsigned char*>(&s) + f.offset, sizeof v);
  return v;
}

iovtee_mapping_options DefaultOptions() {
  iovtee_mapping_options o;
  EXPECT_EQ(iovtee_mapping_options_init(&o, sizeof o), 0);
  return o;
}

iovtee_mapping_stats GetStats(const iovtee_mapping* m) {
  iovtee_mapping_stats s;
  EXPECT_EQ(iovtee_mapping_stats_init(&s, sizeof s), 0);
  EXPECT_EQ(iovtee_mapping_get_stats(m, &s), 0);
  return s;
}

// Error paths use port ids no test creates (200, 201): they fail before a
// mempool exists. Real ports come from the soft NIC (CapiPortTest).
class CapiTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ASSERT_TRUE(iovtee::test::StartEal().ok()); }
};

// ---------------------------------------------------------------------------
// Without EAL state: versions, errno mapping, struct initialisation.

TEST(CapiVersionTest, VersionsAreReported) {
  EXPECT_EQ(iovtee_abi_version(), static_cast<uint32_t>(IOVTEE_ABI_VERSION));
  ASSERT_NE(iovtee_version(), nullptr);
  EXPECT_THAT(iovtee_version(), MatchesRegex("[0-9]+\\.[0-9]+\\.[0-9]+"));
}

TEST(CapiErrnoTest, EveryStatusCodeHasItsErrno) {
  const std::map<absl::StatusCode, int> want = {
      {absl::StatusCode::kOk, 0},
      {absl::StatusCode::kCancelled, ECANCELED},
      {absl::StatusCode::kUnknown, EIO},
      {absl::StatusCode::kInvalidArgument, EINVAL},
      {absl::StatusCode::kDeadlineExceeded, ETIMEDOUT},
      {absl::StatusCode::kNotFound, ENODEV},
      {absl::StatusCode::kAlreadyExists, EEXIST},
      {absl::StatusCode::kPermissionDenied, EPERM},
      {absl::StatusCode::kResourceExhausted, ENOMEM},
      {absl::StatusCode::kFailedPrecondition, ENOTSUP},
      {absl::StatusCode::kAborted, EAGAIN},
      {absl::StatusCode::kOutOfRange, ERANGE},
      {absl::StatusCode::kUnimplemented, ENOTSUP},
      {absl::StatusCode::kInternal, EIO},
      {absl::StatusCode::kUnavailable, EAGAIN},
      {absl::StatusCode::kDataLoss, EIO},
      {absl::StatusCode::kUnauthenticated, EACCES},
  };
  for (const auto& [code, err] : want) {
    EXPECT_EQ(ErrnoFromStatus(code), err) << absl::StatusCodeToString(code);
  }
  EXPECT_EQ(ErrnoFromStatus(static_cast<absl::StatusCode>(999)), EIO);
}

TEST(CapiOptionsTest, InitGivesTheLibraryDefaults) {
  const MappingOptions d;
  iovtee_mapping_options o;
  std::memset(&o, 0xee, sizeof o);
  ASSERT_EQ(iovtee_mapping_options_init(&o, sizeof o), 0);
  EXPECT_EQ(o.size, sizeof o);
  EXPECT_EQ(o.residency_cap, d.residency_cap);
  EXPECT_EQ(o.nic_buffer_size, d.nic_buffer_size);
  EXPECT_EQ(o.mbuf_priv_size, d.mbuf_priv_size);
  EXPECT_EQ(o.pool_size, d.pool_size);
  EXPECT_EQ(o.socket_id, d.socket_id);
  EXPECT_EQ(o.drain_timeout_ms, d.drain_timeout_ms);
  EXPECT_EQ(o.guest_rx_order, static_cast<uint32_t>(IOVTEE_GUEST_RX_ORDER_DETECT));
  EXPECT_EQ(d.guest_rx_order, GuestRxOrder::kDetect);
}

TEST(CapiOptionsTest, InitRejectsNullAndTinySizes) {
  iovtee_mapping_options o;
  EXPECT_EQ(iovtee_mapping_options_init(nullptr, sizeof o), -EINVAL);
  EXPECT_EQ(iovtee_mapping_options_init(&o, sizeof(size_t) - 1), -EINVAL);
  iovtee_mapping_stats s;
  EXPECT_EQ(iovtee_mapping_stats_init(nullptr, sizeof s), -EINVAL);
  EXPECT_EQ(iovtee_mapping_stats_init(&s, 0), -EINVAL);
}

// A struct from an older header: only the fields it has are written.
TEST(CapiOptionsTest, InitOfAnOlderStructStaysInsideIt) {
  unsigned char buf[sizeof(iovtee_mapping_options) + 16];
  std::memset(buf, 0xee, sizeof buf);
  auto* o = reinterpret_cast<iovtee_mapping_options*>(buf);
  const size_t old_size = offsetof(iovtee_mapping_options, pool_size);  // up to mbuf_priv_size
  ASSERT_EQ(iovtee_mapping_options_init(o, old_size), 0);
  EXPECT_EQ(o->size, old_size);
  EXPECT_EQ(o->nic_buffer_size, 1518);
  for (size_t i = old_size; i < sizeof buf; ++i) ASSERT_EQ(buf[i], 0xee) << "byte " << i;
}

// A struct from a newer header: the fields this library does not know are
// zeroed, which is their default.
TEST(CapiOptionsTest, InitOfANewerStructZeroesTheUnknownTail) {
  unsigned char buf[sizeof(iovtee_mapping_options) + 16];
  std::memset(buf, 0xee, sizeof buf);
  auto* o = reinterpret_cast<iovtee_mapping_options*>(buf);
  ASSERT_EQ(iovtee_mapping_options_init(o, sizeof buf), 0);
  EXPECT_EQ(o->size, sizeof buf);
  EXPECT_EQ(o->pool_size, 4096u);
  for (size_t i = sizeof(iovtee_mapping_options); i < sizeof buf; ++i) ASSERT_EQ(buf[i], 0);
}

TEST(CapiStatsTest, TheStructAndTheCountersMirrorEachOther) {
  // Every byte after `size` belongs to a uint64_t field of the table, in
  // order: no field of the struct is missing from it.
  size_t offset = sizeof(size_t);
  for (const Field& f : StatsTable()) {
    EXPECT_EQ(f.offset, offset) << f.name;
    EXPECT_EQ(f.size, sizeof(uint64_t)) << f.name;
    offset = f.offset + f.size;
  }
  EXPECT_EQ(offset, sizeof(iovtee_mapping_stats));
  // And every counter the library names (StatsFields, as get_counters gives
  // them) is a field of the struct, in the same order.
  std::vector<std::string> table_names, library_names;
  for (const Field& f : StatsTable()) table_names.push_back(f.name);
  for (const auto& [name, value] : StatsFields(MappingStats{})) library_names.push_back(name);
  EXPECT_EQ(table_names, library_names);
}

// ---------------------------------------------------------------------------
// With EAL.

TEST_F(CapiTest, CreateRejectsBadArgumentsWithAMessage) {
  char err[256];
  iovtee_mapping* m = reinterpret_cast<iovtee_mapping*>(0x1);
  EXPECT_EQ(iovtee_mapping_create(200, 0, nullptr, &m, err, sizeof err), -ENODEV);
  EXPECT_EQ(m, nullptr);
  EXPECT_STREQ(err, "port 200 does not exist");

  EXPECT_EQ(iovtee_mapping_create(200, 0, nullptr, nullptr, err, sizeof err), -EINVAL);
  EXPECT_THAT(err, HasSubstr("out is NULL"));

  iovtee_mapping_options o = DefaultOptions();
  o.size = sizeof(size_t) - 1;
  EXPECT_EQ(iovtee_mapping_create(200, 0, &o, &m, err, sizeof err), -EINVAL);
  EXPECT_THAT(err, HasSubstr("iovtee_mapping_options_init"));

  o = DefaultOptions();
  o.guest_rx_order = 7;
  EXPECT_EQ(iovtee_mapping_create(200, 0, &o, &m, err, sizeof err), -EINVAL);
  EXPECT_THAT(err, HasSubstr("guest_rx_order is 7"));
  EXPECT_EQ(m, nullptr);
}

TEST_F(CapiTest, ANewerOptionsStructMustLeaveUnknownFieldsZero) {
  unsigned char buf[sizeof(iovtee_mapping_options) + 8];
  auto* o = reinterpret_cast<iovtee_mapping_options*>(buf);
  ASSERT_EQ(iovtee_mapping_options_init(o, sizeof buf), 0);
  buf[sizeof(iovtee_mapping_options) + 3] = 1;  // a field this library does not know
  char err[256];
  iovtee_mapping* m = nullptr;
  EXPECT_EQ(iovtee_mapping_create(200, 0, o, &m, err, sizeof err), -E2BIG);
  EXPECT_THAT(err, HasSubstr("does not know"));
  EXPECT_EQ(m, nullptr);
  // All zero: accepted (and then the port is checked).
  buf[sizeof(iovtee_mapping_options) + 3] = 0;
  EXPECT_EQ(iovtee_mapping_create(200, 0, o, &m, err, sizeof err), -ENODEV);
}

TEST_F(CapiTest, TheErrorBufferIsTruncatedAndAlwaysTerminated) {
  const std::string full = "port 201 does not exist";
  iovtee_mapping* m = nullptr;
  char err[64];
  for (size_t size : {size_t{1}, size_t{2}, size_t{8}, full.size(), full.size() + 1}) {
    std::memset(err, 'x', sizeof err);
    EXPECT_EQ(iovtee_mapping_create(201, 0, nullptr, &m, err, size), -ENODEV);
    EXPECT_EQ(std::string(err), full.substr(0, size - 1)) << "size " << size;
    EXPECT_EQ(err[size], 'x') << "wrote past the buffer, size " << size;
  }
  // No buffer at all: the same result, nothing written.
  std::memset(err, 'x', sizeof err);
  EXPECT_EQ(iovtee_mapping_create(201, 0, nullptr, &m, err, 0), -ENODEV);
  EXPECT_EQ(err[0], 'x');
  EXPECT_EQ(iovtee_mapping_create(201, 0, nullptr, &m, nullptr, 100), -ENODEV);
}

TEST_F(CapiTest, NullHandlesAreRefusedOrHarmless) {
  char err[128];
  iovtee_mapping_destroy(nullptr);
  EXPECT_EQ(iovtee_mapping_mempool(nullptr), nullptr);
  rte_mbuf* pkts[4] = {};
  EXPECT_EQ(iovtee_mapping_rx_burst(nullptr, pkts, 4), 0);
  EXPECT_EQ(iovtee_mapping_attach_guest(nullptr, 0, 0, err, sizeof err), -EINVAL);
  EXPECT_STREQ(err, "mapping is NULL");
  EXPECT_EQ(iovtee_mapping_detach_guest(nullptr, err, sizeof err), -EINVAL);
  EXPECT_EQ(iovtee_mapping_attached(nullptr), -EINVAL);
  iovtee_mapping_stats s;
  iovtee_mapping_stats_init(&s, sizeof s);
  EXPECT_EQ(iovtee_mapping_get_stats(nullptr, &s), -EINVAL);
  EXPECT_EQ(iovtee_mapping_get_counters(nullptr, nullptr, nullptr, 0), -EINVAL);
  EXPECT_EQ(iovtee_unshare(nullptr, nullptr), nullptr);
  EXPECT_EQ(iovtee_prepare_vhost_socket(nullptr, err, sizeof err), -EINVAL);

  // enqueue on a NULL mapping still consumes the mbufs.
  rte_mempool* mp = rte_pktmbuf_pool_create("capi_null", 64, 0, 0, 2048, SOCKET_ID_ANY);
  ASSERT_NE(mp, nullptr);
  ASSERT_EQ(rte_pktmbuf_alloc_bulk(mp, pkts, 4), 0);
  EXPECT_EQ(rte_mempool_avail_count(mp), 60u);
  EXPECT_EQ(iovtee_mapping_enqueue(nullptr, pkts, 4), 0);
  EXPECT_EQ(rte_mempool_avail_count(mp), 64u);
  EXPECT_EQ(iovtee_mapping_enqueue(nullptr, nullptr, 4), 0);
  // unshare: a host mbuf is returned as it is; no pool, no answer.
  rte_mbuf* host = rte_pktmbuf_alloc(mp);
  ASSERT_NE(host, nullptr);
  EXPECT_EQ(iovtee_unshare(host, mp), host);
  EXPECT_EQ(iovtee_unshare(host, nullptr), nullptr);
  rte_pktmbuf_free(host);
  rte_mempool_free(mp);
}

TEST_F(CapiTest, PrepareVhostSocketTurnsOffInOrder) {
  char err[256];
  const std::string path = simnic::test::SocketDir() + "/capi-vhost.sock";
  EXPECT_EQ(iovtee_prepare_vhost_socket(path.c_str(), err, sizeof err), -ENODEV);
  EXPECT_THAT(err, HasSubstr(path));
  EXPECT_THAT(err, HasSubstr("rte_vhost_driver_register"));

  ASSERT_EQ(rte_vhost_driver_register(path.c_str(), 0), 0);
  uint64_t features = 0;
  ASSERT_EQ(rte_vhost_driver_get_features(path.c_str(), &features), 0);
  ASSERT_NE(features & kFInOrder, 0u) << "vhost offers IN_ORDER by default";
  std::memset(err, 'x', sizeof err);
  EXPECT_EQ(iovtee_prepare_vhost_socket(path.c_str(), err, sizeof err), 0);
  EXPECT_STREQ(err, "");
  ASSERT_EQ(rte_vhost_driver_get_features(path.c_str(), &features), 0);
  EXPECT_EQ(features & kFInOrder, 0u);
  EXPECT_EQ(rte_vhost_driver_unregister(path.c_str()), 0);
}

// ---------------------------------------------------------------------------
// A mapping on a soft NIC port (its device on a thread of this process).

class CapiPortTest : public CapiTest {
 protected:
  void SetUp() override {
    static int counter = 0;
    name_ = "net_simnic_capi" + std::to_string(counter++);
    socket_ = simnic::test::SocketDir() + "/" + name_ + ".sock";
    auto device = simnic::test::DeviceThread::Start(name_, socket_);
    ASSERT_TRUE(device.ok()) << device.status();
    device_ = std::move(*device);
    auto port = simnic::test::ProbePort(name_, "socket=" + socket_);
    ASSERT_TRUE(port.ok()) << port.status();
    port_ = *port;
  }

  void TearDown() override {
    // The port first: the NIC must hold no mbuf of the mapping's mempool.
    if (port_ != RTE_MAX_ETHPORTS) {
      EXPECT_TRUE(simnic::test::RemovePort(name_).ok());
    }
    iovtee_mapping_destroy(m_);
    device_.reset();
  }

  // Creates the mapping with `o` and starts the port on its mempool.
  void CreateAndStart(const iovtee_mapping_options* o, uint16_t nb_rxd = 256) {
    char err[256] = "";
    ASSERT_EQ(iovtee_mapping_create(port_, 0, o, &m_, err, sizeof err), 0) << err;
    EXPECT_STREQ(err, "");
    ASSERT_NE(m_, nullptr);
    rte_mempool* mp = iovtee_mapping_mempool(m_);
    ASSERT_NE(mp, nullptr);
    simnic::test::PortSetup setup;
    setup.pools = {mp};
    setup.nb_rxd = nb_rxd;
    const absl::Status s = simnic::test::SetUpPort(port_, setup);
    ASSERT_TRUE(s.ok()) << s;
  }

  // rx_burst through the mapping until `want` frames or a deadline.
  std::vector<rte_mbuf*> Receive(size_t want) {
    std::vector<rte_mbuf*> got;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (got.size() < want && std::chrono::steady_clock::now() < deadline) {
      rte_mbuf* burst[32];
      const uint16_t n = iovtee_mapping_rx_burst(m_, burst, 32);
      got.insert(got.end(), burst, burst + n);
      if (n == 0) std::this_thread::yield();
    }
    return got;
  }

  std::string name_;
  std::string socket_;
  std::unique_ptr<simnic::test::DeviceThread> device_;
  uint16_t port_ = RTE_MAX_ETHPORTS;
  iovtee_mapping* m_ = nullptr;
};

TEST_F(CapiPortTest, FramesArriveThroughTheMappingAndAreCountedWithoutAGuest) {
  iovtee_mapping_options o = DefaultOptions();
  o.pool_size = 1024;
  o.nic_buffer_size = 2048;
  ASSERT_NO_FATAL_FAILURE(CreateAndStart(&o));
  rte_mempool* mp = iovtee_mapping_mempool(m_);
  EXPECT_EQ(mp->size, 1024u);
  EXPECT_EQ(rte_pktmbuf_data_room_size(mp), 2048 + RTE_PKTMBUF_HEADROOM);
  EXPECT_EQ(iovtee_mapping_attached(m_), 0);

  rte_ether_addr mac;
  rte_eth_macaddr_get(port_, &mac);
  std::vector<std::vector<uint8_t>> frames;
  for (uint32_t i = 0; i < 100; ++i) {
    frames.push_back(simnic::test::MakeUdpFrame(mac.addr_bytes, 60 + 14 * i, 0x0a000001, 0x0a000002,
                                                1000, static_cast<uint16_t>(i),
                                                /*vlan_id=*/-1, static_cast<uint8_t>(i)));
  }
  ASSERT_EQ(device_->Receive(frames), frames.size());
  std::vector<rte_mbuf*> got = Receive(frames.size());
  ASSERT_EQ(got.size(), frames.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i]->pool, mp) << "frame " << i;
    EXPECT_EQ(simnic::test::MbufBytes(got[i]), frames[i]) << "frame " << i;
  }

  // No guest: enqueue consumes every mbuf and counts each as drop_no_guest.
  EXPECT_EQ(iovtee_mapping_enqueue(m_, got.data(), 64), 0);
  EXPECT_EQ(iovtee_mapping_enqueue(m_, got.data() + 64, static_cast<uint16_t>(got.size() - 64)), 0);
  const iovtee_mapping_stats s = GetStats(m_);
  EXPECT_EQ(s.size, sizeof s);
  EXPECT_EQ(s.attached, 0u);
  EXPECT_EQ(s.drop_no_guest, frames.size());
  EXPECT_EQ(s.zero_copy, 0u);
  EXPECT_EQ(s.copied, 0u);
  EXPECT_GE(s.host_buffers_posted, 256u) << "the NIC ring was filled with host buffers";
  EXPECT_EQ(s.guest_buffers_lent, 0u);
  EXPECT_EQ(s.pool_mbufs, 1024u);

  // The same values by name, for every counter.
  const int count = iovtee_mapping_get_counters(m_, nullptr, nullptr, 0);
  ASSERT_EQ(count, static_cast<int>(StatsTable().size()));
  std::vector<const char*> names(count);
  std::vector<uint64_t> values(count);
  ASSERT_EQ(iovtee_mapping_get_counters(m_, names.data(), values.data(), count), count);
  const iovtee_mapping_stats again = GetStats(m_);
  for (int i = 0; i < count; ++i) {
    const Field& f = StatsTable()[i];
    EXPECT_STREQ(names[i], f.name);
    if (std::strcmp(f.name, "pool_free_mbufs") != 0) {  // moves with the NIC's refill
      EXPECT_EQ(values[i], FieldValue(again, f)) << f.name;
    }
  }
  EXPECT_EQ(values[std::find_if(
                       StatsTable().begin(), StatsTable().end(),
                       [](const Field& f) { return std::strcmp(f.name, "drop_no_guest") == 0; }) -
                   StatsTable().begin()],
            frames.size());
  // A short array gets the first counters and the full count.
  const char* first[3];
  uint64_t first_values[3];
  EXPECT_EQ(iovtee_mapping_get_counters(m_, first, first_values, 3), count);
  EXPECT_STREQ(first[2], "copied");
  EXPECT_EQ(iovtee_mapping_get_counters(m_, nullptr, first_values, 3), -EINVAL);

  // With the port stopped every mbuf is back in the pool.
  ASSERT_EQ(rte_eth_dev_stop(port_), 0);
  const iovtee_mapping_stats stopped = GetStats(m_);
  EXPECT_EQ(stopped.pool_free_mbufs, stopped.pool_mbufs);
  EXPECT_EQ(rte_mempool_avail_count(mp), 1024u);
}

TEST_F(CapiPortTest, AttachAndDetachReportErrorsWithoutChangingAnything) {
  ASSERT_NO_FATAL_FAILURE(CreateAndStart(nullptr));
  char err[256];
  EXPECT_EQ(iovtee_mapping_attach_guest(m_, 1234, 0, err, sizeof err), -ENODEV);
  EXPECT_STREQ(err, "vhost device 1234 not found");
  EXPECT_EQ(iovtee_mapping_attach_guest(m_, 0, 1, err, sizeof err), -EINVAL);
  EXPECT_THAT(err, HasSubstr("guest Tx queue"));
  EXPECT_EQ(iovtee_mapping_attached(m_), 0);
  std::memset(err, 'x', sizeof err);
  EXPECT_EQ(iovtee_mapping_detach_guest(m_, err, sizeof err), 0) << "no guest: nothing to do";
  EXPECT_STREQ(err, "");
  const iovtee_mapping_stats s = GetStats(m_);
  EXPECT_EQ(s.attaches, 0u);
  EXPECT_EQ(s.detaches, 0u);
  EXPECT_EQ(s.pool_mbufs, 4096u) << "the default pool size";
}

TEST_F(CapiPortTest, OneMappingPerQueue) {
  ASSERT_NO_FATAL_FAILURE(CreateAndStart(nullptr));
  char err[256];
  iovtee_mapping* second = nullptr;
  const int rc = iovtee_mapping_create(port_, 0, nullptr, &second, err, sizeof err);
  EXPECT_LT(rc, 0);
  EXPECT_EQ(second, nullptr);
  EXPECT_THAT(err, HasSubstr("iovtee_p"));
}

// An options struct from an older header (it ends before pool_size): the
// fields it has are used, the rest are defaults, and nothing after it is
// read (the bytes there would be an impossible pool size).
TEST_F(CapiPortTest, AnOlderOptionsStructIsAccepted) {
  struct OptionsV0 {
    size_t size;
    uint32_t residency_cap;
    uint16_t nic_buffer_size;
  };
  static_assert(offsetof(OptionsV0, nic_buffer_size) ==
                offsetof(iovtee_mapping_options, nic_buffer_size));
  unsigned char buf[sizeof(iovtee_mapping_options)];
  std::memset(buf, 0xff, sizeof buf);
  OptionsV0 old = {sizeof(OptionsV0), 0, 1024};
  std::memcpy(buf, &old, sizeof old);
  ASSERT_NO_FATAL_FAILURE(CreateAndStart(reinterpret_cast<iovtee_mapping_options*>(buf)));
  rte_mempool* mp = iovtee_mapping_mempool(m_);
  EXPECT_EQ(rte_pktmbuf_data_room_size(mp), 1024 + RTE_PKTMBUF_HEADROOM);
  EXPECT_EQ(mp->size, 4096u);
}

// A stats struct from an older header: only the fields it has are written.
TEST_F(CapiPortTest, AnOlderStatsStructGetsOnlyItsFields) {
  ASSERT_NO_FATAL_FAILURE(CreateAndStart(nullptr));
  rte_mbuf* pkts[8];
  ASSERT_EQ(rte_pktmbuf_alloc_bulk(iovtee_mapping_mempool(m_), pkts, 8), 0);
  EXPECT_EQ(iovtee_mapping_enqueue(m_, pkts, 8), 0);  // 8 x drop_no_guest

  unsigned char buf[sizeof(iovtee_mapping_stats) + 16];
  std::memset(buf, 0xab, sizeof buf);
  auto* s = reinterpret_cast<iovtee_mapping_stats*>(buf);
  const size_t old_size = offsetof(iovtee_mapping_stats, guest_buffers_held);  // ends at drops
  s->size = old_size;
  ASSERT_EQ(iovtee_mapping_get_stats(m_, s), 0);
  EXPECT_EQ(s->drop_no_guest, 8u);
  EXPECT_EQ(s->zero_copy, 0u);
  for (size_t i = old_size; i < sizeof buf; ++i) ASSERT_EQ(buf[i], 0xab) << "byte " << i;

  // A newer, larger struct: the tail this library does not know is zeroed.
  s->size = sizeof buf;
  ASSERT_EQ(iovtee_mapping_get_stats(m_, s), 0);
  EXPECT_EQ(s->pool_mbufs, 4096u);
  for (size_t i = sizeof(iovtee_mapping_stats); i < sizeof buf; ++i) ASSERT_EQ(buf[i], 0);

  s->size = 4;
  EXPECT_EQ(iovtee_mapping_get_stats(m_, s), -EINVAL);
}

}  // namespace
}  // namespace iovtee::capi
