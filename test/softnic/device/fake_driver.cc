#include "test/softnic/device/fake_driver.h"

#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "absl/strings/str_cat.h"

namespace iovtee::softnic::testing {
namespace {

using simnic::kMaxQueues;

constexpr auto kTimeout = std::chrono::seconds(5);

template <typename T>
T Load(const T* p) {
  return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}
template <typename T>
void Store(T* p, T v) {
  __atomic_store_n(p, v, __ATOMIC_RELEASE);
}

size_t AlignUp(size_t v, size_t a) { return (v + a - 1) / a * a; }

}  // namespace

absl::StatusOr<std::unique_ptr<DmaArea>> DmaArea::Create(size_t len) {
  auto area = std::unique_ptr<DmaArea>(new DmaArea());
  area->len_ = len;
  area->fd_ = memfd_create("simnic-dma", MFD_CLOEXEC);
  if (area->fd_ < 0) return absl::ErrnoToStatus(errno, "memfd_create");
  size_t map_len = AlignUp(len, 4096);
  if (ftruncate(area->fd_, static_cast<off_t>(map_len)) != 0) {
    return absl::ErrnoToStatus(errno, "ftruncate");
  }
  area->reservation_len_ = map_len + 2 * 4096;
  area->reservation_ =
      mmap(nullptr, area->reservation_len_, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (area->reservation_ == MAP_FAILED) return absl::ErrnoToStatus(errno, "mmap");
  void* p = mmap(static_cast<uint8_t*>(area->reservation_) + 4096, map_len, PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_FIXED, area->fd_, 0);
  if (p == MAP_FAILED) return absl::ErrnoToStatus(errno, "mmap memfd");
  area->data_ = static_cast<uint8_t*>(p);
  return area;
}

DmaArea::~DmaArea() {
  if (reservation_ != nullptr && reservation_ != MAP_FAILED) munmap(reservation_, reservation_len_);
  if (fd_ >= 0) close(fd_);
}

absl::StatusOr<std::unique_ptr<FakeDriver>> FakeDriver::Create(FakeDriverOptions options) {
  auto d = std::unique_ptr<FakeDriver>(new FakeDriver(std::move(options)));
  const FakeDriverOptions& o = d->options_;
  size_t ring_bytes = AlignUp(simnic::RingBytes(o.ring_size), 4096);
  d->memfd_len_ = sizeof(simnic::RegisterPage) + 2 * kMaxQueues * ring_bytes;
  d->memfd_ = memfd_create("simnic-regs", MFD_CLOEXEC);
  if (d->memfd_ < 0) return absl::ErrnoToStatus(errno, "memfd_create");
  if (ftruncate(d->memfd_, static_cast<off_t>(d->memfd_len_)) != 0) {
    return absl::ErrnoToStatus(errno, "ftruncate");
  }
  void* p = mmap(nullptr, d->memfd_len_, PROT_READ | PROT_WRITE, MAP_SHARED, d->memfd_, 0);
  if (p == MAP_FAILED) return absl::ErrnoToStatus(errno, "mmap");
  d->regs_ = static_cast<simnic::RegisterPage*>(p);
  simnic::RegisterPage* r = d->regs_;
  r->magic = simnic::kMagic;
  r->abi_version = simnic::kAbiVersion;
  r->num_rxq = o.num_rxq;
  r->num_txq = o.num_txq;
  r->link_up = o.link_up;
  r->mtu = 1500;
  memcpy(r->mac, o.mac, 6);
  r->promiscuous = o.promiscuous;
  for (int q = 0; q < kMaxQueues; ++q) {
    r->rxq[q].ring_offset = d->RingOffset(true, q);
    r->rxq[q].ring_size = o.ring_size;
    r->txq[q].ring_offset = d->RingOffset(false, q);
    r->txq[q].ring_size = o.ring_size;
  }
  return d;
}

FakeDriver::~FakeDriver() {
  CloseSocket();
  if (regs_ != nullptr) munmap(regs_, memfd_len_);
  if (memfd_ >= 0) close(memfd_);
}

uint32_t FakeDriver::RingOffset(bool rx, int q) const {
  size_t ring_bytes = AlignUp(simnic::RingBytes(options_.ring_size), 4096);
  return static_cast<uint32_t>(sizeof(simnic::RegisterPage) + (rx ? 0 : kMaxQueues * ring_bytes) +
                               q * ring_bytes);
}

absl::StatusOr<int> FakeDriver::SocketPair() {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    return absl::ErrnoToStatus(errno, "socketpair");
  }
  CloseSocket();
  sock_ = sv[0];
  return sv[1];
}

absl::Status FakeDriver::Connect(const std::string& path) {
  sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) return absl::InvalidArgumentError("path too long");
  memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::ErrnoToStatus(errno, "socket");
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    int err = errno;
    close(fd);
    return absl::ErrnoToStatus(err, absl::StrCat("connect ", path));
  }
  CloseSocket();
  sock_ = fd;
  return absl::OkStatus();
}

void FakeDriver::CloseSocket() {
  if (sock_ >= 0) close(sock_);
  sock_ = -1;
}

int FakeDriver::Call(simnic::MsgType type, uint64_t iova, uint64_t len, uint64_t offset, int fd) {
  if (sock_ < 0) return -EPIPE;
  simnic::Msg msg = {};
  msg.type = type;
  msg.seq = ++seq_;
  msg.iova = iova;
  msg.len = len;
  msg.offset = offset;
  snprintf(msg.name, sizeof(msg.name), "%s", options_.name.c_str());
  iovec iov = {&msg, sizeof(msg)};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr mh = {};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  if (fd >= 0) {
    mh.msg_control = control;
    mh.msg_controllen = sizeof(control);
    cmsghdr* c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(int));
  }
  if (sendmsg(sock_, &mh, MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof(msg))) return -EPIPE;
  int status;
  if (!WaitAck(msg.seq, &status)) return -ETIMEDOUT;
  return status;
}

bool FakeDriver::WaitAck(uint32_t seq, int* status) {
  simnic::Msg ack;
  size_t have = 0;
  auto deadline = std::chrono::steady_clock::now() + kTimeout;
  while (have < sizeof(ack)) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    if (pump_) pump_();
    pollfd pfd = {sock_, POLLIN, 0};
    if (poll(&pfd, 1, pump_ ? 0 : 10) <= 0) continue;
    ssize_t n = recv(sock_, reinterpret_cast<char*>(&ack) + have, sizeof(ack) - have, 0);
    if (n <= 0) {
      *status = -EPIPE;
      return true;
    }
    have += static_cast<size_t>(n);
  }
  *status = (ack.type == simnic::MsgType::kAck && ack.seq == seq) ? ack.status : -EPROTO;
  return true;
}

bool FakeDriver::WaitFor(const std::function<bool()>& done) {
  auto deadline = std::chrono::steady_clock::now() + kTimeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    if (pump_) {
      pump_();
    } else {
      std::this_thread::yield();
    }
  }
  return true;
}

void FakeDriver::ConfigureRx(int q, uint32_t buf_len, bool per_desc_len, bool scatter,
                             bool vlan_strip) {
  simnic::QueueRegs& r = regs_->rxq[q];
  r.buf_len = buf_len;
  r.per_desc_len = per_desc_len;
  r.scatter = scatter;
  r.vlan_strip = vlan_strip;
}

void FakeDriver::StartRx(int q) {
  simnic::QueueRegs& r = regs_->rxq[q];
  memset(reinterpret_cast<uint8_t*>(regs_) + r.ring_offset, 0, simnic::RingBytes(r.ring_size));
  Store(&r.tail, 0u);
  rx_tail_[q] = rx_reaped_[q] = 0;
  Store(&r.generation, r.generation + 1);
  Store(&r.enabled, 1u);
}

void FakeDriver::StartTx(int q) {
  simnic::QueueRegs& r = regs_->txq[q];
  memset(reinterpret_cast<uint8_t*>(regs_) + r.ring_offset, 0, simnic::RingBytes(r.ring_size));
  Store(&r.tail, 0u);
  tx_tail_[q] = tx_published_[q] = tx_reaped_[q] = 0;
  Store(&r.generation, r.generation + 1);
  Store(&r.enabled, 1u);
}

void FakeDriver::DisableRx(int q) {
  __atomic_store_n(&regs_->rxq[q].enabled, 0u, __ATOMIC_SEQ_CST);
}

bool FakeDriver::RxStopAcked(int q) const {
  return Load(&regs_->rxq[q].stopped_generation) == Load(&regs_->rxq[q].generation);
}

bool FakeDriver::TxStopAcked(int q) const {
  return Load(&regs_->txq[q].stopped_generation) == Load(&regs_->txq[q].generation);
}

bool FakeDriver::StopRx(int q) {
  DisableRx(q);
  return WaitFor([&] { return RxStopAcked(q); });
}

bool FakeDriver::StopTx(int q) {
  __atomic_store_n(&regs_->txq[q].enabled, 0u, __ATOMIC_SEQ_CST);
  return WaitFor([&] { return TxStopAcked(q); });
}

bool FakeDriver::PostRx(int q, uint64_t iova, uint32_t buf_len) {
  if (rx_tail_[q] - rx_reaped_[q] == options_.ring_size) return false;
  simnic::QueueRegs& r = regs_->rxq[q];
  auto* ring = reinterpret_cast<simnic::RxDesc*>(reinterpret_cast<uint8_t*>(regs_) + r.ring_offset);
  simnic::RxDesc& d = ring[rx_tail_[q] & (options_.ring_size - 1)];
  d = simnic::RxDesc{};
  d.addr = iova;
  d.buf_len = buf_len;
  Store(&r.tail, ++rx_tail_[q]);
  return true;
}

size_t FakeDriver::ReapRx(int q, RxCompletion* out, size_t max) {
  simnic::QueueRegs& r = regs_->rxq[q];
  auto* ring = reinterpret_cast<simnic::RxDesc*>(reinterpret_cast<uint8_t*>(regs_) + r.ring_offset);
  size_t n = 0;
  while (n < max && rx_reaped_[q] != rx_tail_[q]) {
    simnic::RxDesc& d = ring[rx_reaped_[q] & (options_.ring_size - 1)];
    uint16_t status = Load(&d.status);
    if (!(status & simnic::kRxDone)) break;
    out[n++] =
        RxCompletion{rx_reaped_[q], d.addr, d.rss_hash, d.pkt_len, status, d.vlan_tci, d.error};
    d.status = 0;
    ++rx_reaped_[q];
  }
  return n;
}

std::vector<RxCompletion> FakeDriver::ReapRx(int q) {
  std::vector<RxCompletion> out(options_.ring_size);
  out.resize(ReapRx(q, out.data(), out.size()));
  return out;
}

bool FakeDriver::PostTx(int q, uint64_t iova, uint32_t len, bool eop, bool publish) {
  if (tx_tail_[q] - tx_reaped_[q] == options_.ring_size) return false;
  simnic::QueueRegs& r = regs_->txq[q];
  auto* ring = reinterpret_cast<simnic::TxDesc*>(reinterpret_cast<uint8_t*>(regs_) + r.ring_offset);
  simnic::TxDesc& d = ring[tx_tail_[q] & (options_.ring_size - 1)];
  d = simnic::TxDesc{};
  d.addr = iova;
  d.len = len;
  d.flags = eop ? simnic::kTxEop : 0;
  ++tx_tail_[q];
  if (publish) PublishTx(q);
  return true;
}

void FakeDriver::PublishTx(int q) {
  tx_published_[q] = tx_tail_[q];
  Store(&regs_->txq[q].tail, tx_published_[q]);
}

size_t FakeDriver::ReapTx(int q, TxCompletion* out, size_t max) {
  simnic::QueueRegs& r = regs_->txq[q];
  auto* ring = reinterpret_cast<simnic::TxDesc*>(reinterpret_cast<uint8_t*>(regs_) + r.ring_offset);
  size_t n = 0;
  while (n < max && tx_reaped_[q] != tx_published_[q]) {
    simnic::TxDesc& d = ring[tx_reaped_[q] & (options_.ring_size - 1)];
    uint16_t status = Load(&d.status);
    if (!(status & simnic::kTxDone)) break;
    out[n++] = TxCompletion{tx_reaped_[q], status, d.error};
    d.status = 0;
    ++tx_reaped_[q];
  }
  return n;
}

std::vector<TxCompletion> FakeDriver::ReapTx(int q) {
  std::vector<TxCompletion> out(options_.ring_size);
  out.resize(ReapTx(q, out.data(), out.size()));
  return out;
}

void FakeDriver::BeginRssUpdate() {
  __atomic_store_n(&regs_->rss_seq, regs_->rss_seq + 1, __ATOMIC_RELAXED);
  __atomic_thread_fence(__ATOMIC_RELEASE);
}

void FakeDriver::EndRssUpdate() { Store(&regs_->rss_seq, regs_->rss_seq + 1); }

void FakeDriver::SetRss(bool enabled, const uint8_t* key, const uint16_t* reta) {
  BeginRssUpdate();
  regs_->rss_enabled = enabled;
  if (key != nullptr) memcpy(regs_->rss_key, key, simnic::kRssKeySize);
  if (reta != nullptr) memcpy(regs_->reta, reta, sizeof(regs_->reta));
  EndRssUpdate();
}

void FakeDriver::SetFlowRules(const std::vector<simnic::FlowRule>& rules) {
  __atomic_store_n(&regs_->flow_seq, regs_->flow_seq + 1, __ATOMIC_RELAXED);
  __atomic_thread_fence(__ATOMIC_RELEASE);
  memset(regs_->rules, 0, sizeof(regs_->rules));
  for (size_t i = 0; i < rules.size() && i < simnic::kMaxFlowRules; ++i) regs_->rules[i] = rules[i];
  regs_->num_flow_rules = static_cast<uint32_t>(rules.size());
  Store(&regs_->flow_seq, regs_->flow_seq + 1);
}

void FakeDriver::SetLink(bool up) { Store(&regs_->link_up, up ? 1u : 0u); }

void FakeDriver::SetPromiscuous(bool on) {
  Store(&regs_->promiscuous, static_cast<uint8_t>(on ? 1 : 0));
}

std::vector<uint8_t> BuildFrame(const FrameSpec& spec) {
  uint32_t l3 = spec.vlan_tci >= 0 ? 18 : 14;
  uint32_t ip_len = spec.ipv6 ? 40 : 20;
  uint32_t l4_len = spec.proto == 6 ? 20 : spec.proto == 17 ? 8 : 0;
  uint32_t min_len = l3 + ip_len + l4_len;
  uint32_t len = spec.len < min_len ? min_len : spec.len;
  std::vector<uint8_t> f(len, 0);
  memcpy(&f[0], spec.dst, 6);
  memcpy(&f[6], spec.src, 6);
  auto be16 = [&](uint32_t off, uint32_t v) {
    f[off] = static_cast<uint8_t>(v >> 8);
    f[off + 1] = static_cast<uint8_t>(v);
  };
  if (spec.vlan_tci >= 0) {
    be16(12, 0x8100);
    be16(14, static_cast<uint32_t>(spec.vlan_tci));
  }
  be16(l3 - 2, spec.ipv6 ? 0x86dd : 0x0800);
  uint8_t* ip = &f[l3];
  if (spec.ipv6) {
    ip[0] = 0x60;
    be16(l3 + 4, len - l3 - 40);
    ip[6] = spec.proto;
    ip[7] = 64;
    memcpy(ip + 8, spec.src_ip, 16);
    memcpy(ip + 24, spec.dst_ip, 16);
  } else {
    ip[0] = 0x45;
    be16(l3 + 2, len - l3);
    ip[8] = 64;
    ip[9] = spec.proto;
    memcpy(ip + 12, spec.src_ip, 4);
    memcpy(ip + 16, spec.dst_ip, 4);
  }
  uint32_t l4 = l3 + ip_len;
  if (l4_len != 0) {
    be16(l4, spec.src_port);
    be16(l4 + 2, spec.dst_port);
    if (spec.proto == 17) be16(l4 + 4, len - l4);
  }
  uint32_t x = spec.payload_seed * 2654435761u + 12345;
  for (uint32_t i = l4 + l4_len; i < len; ++i) {
    x = x * 1103515245u + 12345;
    f[i] = static_cast<uint8_t>(x >> 16);
  }
  return f;
}

}  // namespace iovtee::softnic::testing
