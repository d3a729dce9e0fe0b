#include "test/softnic/pmd/pmd_test_util.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>

#include <rte_bus_vdev.h>
#include <rte_log.h>
#include <rte_mbuf.h>

#include "absl/strings/str_cat.h"

namespace iovtee::simnic::test {

namespace {

std::string* g_tmp_socket_dir = nullptr;

void RemoveSocketDir() {
  if (DIR* d = opendir(g_tmp_socket_dir->c_str())) {
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] != '.') unlink(absl::StrCat(*g_tmp_socket_dir, "/", e->d_name).c_str());
    }
    closedir(d);
  }
  rmdir(g_tmp_socket_dir->c_str());
}

}  // namespace

std::string SocketDir() {
  const char* tmp = std::getenv("TEST_TMPDIR");
  // Room for "/<name>.sock" with a short name.
  if (tmp != nullptr && std::strlen(tmp) + 32 < sizeof(sockaddr_un::sun_path)) return tmp;
  static std::once_flag once;
  std::call_once(once, [] {
    // mkdtemp, not the pid: tests in PID namespaces share pids and /tmp.
    char templ[] = "/tmp/iovtee-pmd-XXXXXX";
    g_tmp_socket_dir = new std::string(mkdtemp(templ) != nullptr ? templ : "/tmp");
    if (*g_tmp_socket_dir != "/tmp") std::atexit(RemoveSocketDir);
  });
  return *g_tmp_socket_dir;
}

absl::StatusOr<std::unique_ptr<DeviceThread>> DeviceThread::Start(const std::string& name,
                                                                  const std::string& socket_path) {
  softnic::DeviceOptions options;
  options.name = name;
  auto device = softnic::Device::Create(options);
  if (!device.ok()) return device.status();
  if (absl::Status s = (*device)->Listen(socket_path); !s.ok()) return s;
  std::unique_ptr<DeviceThread> t(new DeviceThread);
  t->socket_path_ = socket_path;
  t->device_ = std::move(*device);
  t->thread_ = std::thread([p = t.get()] { p->Loop(); });
  return t;
}

DeviceThread::~DeviceThread() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void DeviceThread::Loop() {
  while (!stop_.load(std::memory_order_relaxed)) {
    size_t work = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      work += device_->PollControl();
      work += device_->Transmit([this](const softnic::TxFrame& f) {
        if (tx_consumer_) {
          tx_consumer_(f);
        } else {
          tx_frames_.emplace_back(f.data, f.data + f.len);
        }
      });
    }
    // Idle: leave the core to the test thread (two cores for everything).
    if (work == 0) usleep(20);
  }
}

void DeviceThread::With(const std::function<void(softnic::Device&)>& fn) {
  std::lock_guard<std::mutex> lock(mu_);
  fn(*device_);
}

size_t DeviceThread::Receive(const std::vector<std::vector<uint8_t>>& frames) {
  std::vector<softnic::Frame> views;
  views.reserve(frames.size());
  for (const auto& f : frames) views.push_back({f.data(), static_cast<uint32_t>(f.size())});
  std::lock_guard<std::mutex> lock(mu_);
  return device_->Receive(views);
}

std::vector<std::vector<uint8_t>> DeviceThread::TakeTx() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::vector<uint8_t>> out;
  out.swap(tx_frames_);
  return out;
}

void DeviceThread::SetTxConsumer(std::function<void(const softnic::TxFrame&)> fn) {
  std::lock_guard<std::mutex> lock(mu_);
  tx_consumer_ = std::move(fn);
}

softnic::DeviceStats DeviceThread::Stats() {
  std::lock_guard<std::mutex> lock(mu_);
  return device_->Stats();
}

LogCapture::LogCapture() {
  f_ = open_memstream(&buf_, &len_);
  rte_openlog_stream(f_);
}

LogCapture::~LogCapture() {
  rte_openlog_stream(nullptr);
  std::fclose(f_);
  std::free(buf_);
}

std::string LogCapture::Text() {
  std::fflush(f_);
  return std::string(buf_, len_);
}

absl::StatusOr<uint16_t> ProbePort(const std::string& name, const std::string& args) {
  const int r = rte_vdev_init(name.c_str(), args.c_str());
  if (r != 0) {
    return absl::InternalError(absl::StrCat("rte_vdev_init(", name, ", ", args, ") = ", r));
  }
  uint16_t port = 0;
  if (rte_eth_dev_get_port_by_name(name.c_str(), &port) != 0) {
    return absl::NotFoundError(absl::StrCat("no ethdev named ", name));
  }
  return port;
}

absl::Status RemovePort(const std::string& name) {
  const int r = rte_vdev_uninit(name.c_str());
  if (r != 0) return absl::InternalError(absl::StrCat("rte_vdev_uninit(", name, ") = ", r));
  return absl::OkStatus();
}

absl::Status SetUpPort(uint16_t port, const PortSetup& setup) {
  rte_eth_dev_info info;
  if (int r = rte_eth_dev_info_get(port, &info); r != 0) {
    return absl::InternalError(absl::StrCat("dev_info_get: ", r));
  }
  rte_eth_conf conf{};
  conf.rxmode.mtu = setup.mtu;
  conf.rxmode.offloads = setup.rx_offloads;
  conf.txmode.offloads = setup.tx_offloads;
  if (setup.rss) {
    conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
    conf.rx_adv_conf.rss_conf.rss_hf = info.flow_type_rss_offloads;
  }
  if (int r = rte_eth_dev_configure(port, setup.nb_rxq, setup.nb_txq, &conf); r != 0) {
    return absl::InternalError(absl::StrCat("configure: ", r));
  }
  for (uint16_t q = 0; q < setup.nb_rxq; ++q) {
    rte_eth_rxconf rxconf = info.default_rxconf;
    rxconf.rx_deferred_start = q < setup.rx_deferred.size() && setup.rx_deferred[q];
    rte_mempool* mp = setup.pools[std::min<size_t>(q, setup.pools.size() - 1)];
    if (int r = rte_eth_rx_queue_setup(port, q, setup.nb_rxd, SOCKET_ID_ANY, &rxconf, mp); r != 0) {
      return absl::InternalError(absl::StrCat("rx_queue_setup ", q, ": ", r));
    }
  }
  for (uint16_t q = 0; q < setup.nb_txq; ++q) {
    if (int r = rte_eth_tx_queue_setup(port, q, setup.nb_txd, SOCKET_ID_ANY, nullptr); r != 0) {
      return absl::InternalError(absl::StrCat("tx_queue_setup ", q, ": ", r));
    }
  }
  if (setup.promiscuous) rte_eth_promiscuous_enable(port);
  if (setup.start) {
    if (int r = rte_eth_dev_start(port); r != 0) {
      return absl::InternalError(absl::StrCat("dev_start: ", r));
    }
  }
  return absl::OkStatus();
}

rte_mempool* MakePool(unsigned n, uint16_t data_room) {
  static std::atomic<int> counter{0};
  const std::string name = absl::StrCat("pmdt_", counter++);
  return rte_pktmbuf_pool_create(name.c_str(), n, 0, 0, data_room, SOCKET_ID_ANY);
}

void RxUntil(uint16_t port, uint16_t queue, size_t want, int timeout_ms,
             std::vector<rte_mbuf*>* out) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  size_t got = 0;
  while (got < want) {
    rte_mbuf* burst[32];
    const uint16_t n = rte_eth_rx_burst(port, queue, burst, 32);
    out->insert(out->end(), burst, burst + n);
    got += n;
    if (n == 0) {
      if (std::chrono::steady_clock::now() > deadline) break;
      usleep(10);
    }
  }
}

std::vector<uint8_t> MbufBytes(const rte_mbuf* m) {
  std::vector<uint8_t> out;
  out.reserve(m->pkt_len);
  for (const rte_mbuf* s = m; s != nullptr; s = s->next) {
    const uint8_t* p = rte_pktmbuf_mtod(s, const uint8_t*);
    out.insert(out.end(), p, p + s->data_len);
  }
  return out;
}

void FreeAll(std::vector<rte_mbuf*>* mbufs) {
  for (rte_mbuf* m : *mbufs) rte_pktmbuf_free(m);
  mbufs->clear();
}

int64_t Xstat(uint16_t port, const std::string& name) {
  uint64_t id = 0;
  if (rte_eth_xstats_get_id_by_name(port, name.c_str(), &id) != 0) return -1;
  uint64_t value = 0;
  if (rte_eth_xstats_get_by_id(port, &id, &value, 1) != 1) return -1;
  return static_cast<int64_t>(value);
}

int CountFds() {
  int n = 0;
  if (DIR* d = opendir("/proc/self/fd")) {
    while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
    closedir(d);
    --n;  // the directory's own fd
  }
  return n;
}

std::vector<uint8_t> MakeUdpFrame(const uint8_t dst[6], uint32_t len, uint32_t src_ip,
                                  uint32_t dst_ip, uint16_t src_port, uint16_t dst_port,
                                  int vlan_id, uint8_t payload_byte) {
  std::vector<uint8_t> f(len, payload_byte);
  size_t o = 0;
  std::memcpy(&f[o], dst, 6);
  const uint8_t src[6] = {0x02, 0, 0, 0, 0, 0x01};
  std::memcpy(&f[o + 6], src, 6);
  o = 12;
  auto put16 = [&](uint16_t v) {
    f[o++] = static_cast<uint8_t>(v >> 8);
    f[o++] = static_cast<uint8_t>(v);
  };
  auto put32 = [&](uint32_t v) {
    put16(static_cast<uint16_t>(v >> 16));
    put16(static_cast<uint16_t>(v));
  };
  if (vlan_id >= 0) {
    put16(0x8100);
    put16(static_cast<uint16_t>(vlan_id));
  }
  put16(0x0800);
  const size_t ip = o;
  const uint16_t ip_len = static_cast<uint16_t>(len - ip);
  put16(0x4500);
  put16(ip_len);
  put32(0);       // id, flags, fragment offset
  put16(0x4011);  // ttl 64, UDP
  put16(0);       // checksum below
  put32(src_ip);
  put32(dst_ip);
  uint32_t sum = 0;
  for (size_t i = ip; i < ip + 20; i += 2) sum += (f[i] << 8) | f[i + 1];
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  f[ip + 10] = static_cast<uint8_t>(~sum >> 8);
  f[ip + 11] = static_cast<uint8_t>(~sum);
  put16(src_port);
  put16(dst_port);
  put16(static_cast<uint16_t>(ip_len - 20));
  put16(0);  // no UDP checksum
  return f;
}

}  // namespace iovtee::simnic::test
