// The device's control plane: the driver connection, the register page, the
// IOMMU messages, queue start/stop handshakes, counters and logs.
#include "test/softnic/device/device.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace iovtee::softnic {
namespace {

using simnic::kMaxQueues;

// Bounds the time one PollControl() takes away from the datapath.
constexpr int kMaxMessagesPerPoll = 32;
// Fault messages: at most one line per interval, then a count of the rest.
constexpr uint64_t kLogIntervalNs = 1000 * 1000 * 1000;

template <typename T>
T LoadRelaxed(const T* p) {
  return __atomic_load_n(p, __ATOMIC_RELAXED);
}
template <typename T>
void StoreRelaxed(T* p, T v) {
  __atomic_store_n(p, v, __ATOMIC_RELAXED);
}

uint64_t NowNs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

void PublishQueue(simnic::QueueCounters* dst, const simnic::QueueCounters& src) {
  StoreRelaxed(&dst->packets, src.packets);
  StoreRelaxed(&dst->bytes, src.bytes);
  StoreRelaxed(&dst->missed, src.missed);
  StoreRelaxed(&dst->errors, src.errors);
}

void LoadQueue(simnic::QueueCounters* dst, const simnic::QueueCounters& src) {
  dst->packets = LoadRelaxed(&src.packets);
  dst->bytes = LoadRelaxed(&src.bytes);
  dst->missed = LoadRelaxed(&src.missed);
  dst->errors = LoadRelaxed(&src.errors);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Device>> Device::Create(DeviceOptions options) {
  if (options.tx_burst == 0) return absl::InvalidArgumentError("tx_burst must be at least 1");
  if (options.max_mappings == 0) {
    return absl::InvalidArgumentError("max_mappings must be at least 1");
  }
  return std::unique_ptr<Device>(new Device(std::move(options)));
}

Device::Device(DeviceOptions options)
    : options_(std::move(options)),
      iommu_(options_.max_mappings),
      tx_scratch_(new uint8_t[simnic::kMaxFrame]) {}

Device::~Device() { DropPort(); }

absl::Status Device::Listen(const std::string& path) { return link_.Listen(path); }

absl::Status Device::Attach(int fd) {
  absl::Status s = link_.Attach(fd);
  if (s.ok()) ++stats_.connections;
  return s;
}

int Device::PollControl() {
  if (in_rx_burst_ || in_tx_burst_) return 0;
  int handled = 0;
  // The current connection first: a driver that died and restarted shows up
  // as EOF here and a new connection in the backlog, which must then be
  // accepted, not refused as a second driver.
  for (int round = 0; round < 2; ++round) {
    while (link_.connected() && handled < kMaxMessagesPerPoll) {
      ControlMessage m;
      ControlLink::RecvResult r = link_.Receive(&m);
      if (r == ControlLink::RecvResult::kNone) break;
      if (r == ControlLink::RecvResult::kClosed) {
        OnDisconnect();
        break;
      }
      ++handled;
      ++stats_.control_messages;
      int status = HandleMessage(m);
      if (status != 0) ++stats_.control_errors;
      if (!link_.SendAck(m.msg.seq, status)) {
        Log("cannot send an ack to the driver: dropping the connection");
        OnDisconnect();
      }
    }
    bool was_connected = link_.connected();
    int refused = 0;
    bool accepted = link_.AcceptPending(&refused);
    stats_.disconnects += static_cast<uint64_t>(refused);
    stats_.connections += static_cast<uint64_t>(refused);
    if (refused != 0) Log("refused %d connection(s): a driver is already connected", refused);
    if (!accepted) break;
    ++stats_.connections;
    if (!was_connected) Log("driver connected on %s", link_.path().c_str());
  }
  if (regs_ != nullptr) {
    SyncRxQueues(kMaxQueues);
    SyncTxQueues(kMaxQueues);
    PublishCounters();
  }
  return handled;
}

int Device::HandleMessage(const ControlMessage& m) {
  const simnic::Msg& msg = m.msg;
  int fd = m.fd;
  int status;
  if (m.extra_fds) {
    status = -EINVAL;  // which fd would be meant is ambiguous
  } else {
    switch (msg.type) {
      case simnic::MsgType::kHello:
        status = OnHello(msg, fd);
        break;
      case simnic::MsgType::kMap:
        status = fd < 0 ? -EBADF : iommu_.Map(msg.iova, msg.len, fd, msg.offset);
        if (status != 0) {
          Log("kMap iova 0x%llx len 0x%llx offset 0x%llx refused: %s",
              static_cast<unsigned long long>(msg.iova), static_cast<unsigned long long>(msg.len),
              static_cast<unsigned long long>(msg.offset), strerror(-status));
        }
        break;
      case simnic::MsgType::kUnmap:
        status = iommu_.Unmap(msg.iova, msg.len);
        break;
      case simnic::MsgType::kBye:
        Log("driver '%s' said bye", driver_name_.c_str());
        DropPort();
        status = 0;
        break;
      default:
        status = -EINVAL;
        break;
    }
  }
  if (fd >= 0) close(fd);  // a mapping keeps its file; nothing else needs one
  return status;
}

int Device::OnHello(const simnic::Msg& msg, int fd) {
  if (regs_ != nullptr) return -EBUSY;
  if (fd < 0) return -EBADF;
  if (msg.len < sizeof(simnic::RegisterPage) || msg.len > (uint64_t{1} << 32)) return -EINVAL;
  struct stat st;
  if (fstat(fd, &st) != 0) return -errno;
  if (!S_ISREG(st.st_mode) || static_cast<uint64_t>(st.st_size) < msg.len) return -EINVAL;
  void* p = mmap(nullptr, msg.len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return -errno;
  auto* regs = static_cast<simnic::RegisterPage*>(p);
  if (LoadRelaxed(&regs->magic) != simnic::kMagic ||
      LoadRelaxed(&regs->abi_version) != simnic::kAbiVersion) {
    Log("kHello: bad magic 0x%x or ABI version %u (want 0x%x, %u)", LoadRelaxed(&regs->magic),
        LoadRelaxed(&regs->abi_version), simnic::kMagic, simnic::kAbiVersion);
    munmap(p, msg.len);
    return -EPROTO;
  }
  if (LoadRelaxed(&regs->num_rxq) > kMaxQueues || LoadRelaxed(&regs->num_txq) > kMaxQueues) {
    munmap(p, msg.len);
    return -EINVAL;
  }
  regs_ = regs;
  regs_len_ = msg.len;
  driver_name_.assign(msg.name, strnlen(msg.name, sizeof(msg.name)));
  for (int q = 0; q < kMaxQueues; ++q) {
    rxq_[q] = RxQueueState{};
    rxq_[q].regs = &regs_->rxq[q];
    txq_[q] = TxQueueState{};
    txq_[q].regs = &regs_->txq[q];
  }
  steering_.Reset();
  // Counters continue from what the page holds (zero for a new memfd; a
  // driver that says hello again after kBye keeps its totals).
  for (int q = 0; q < kMaxQueues; ++q) {
    LoadQueue(&stats_.rx[q], regs_->rx_counters[q]);
    LoadQueue(&stats_.tx[q], regs_->tx_counters[q]);
  }
  stats_.device.iommu_faults = LoadRelaxed(&regs_->device.iommu_faults);
  stats_.device.rx_oversize = LoadRelaxed(&regs_->device.rx_oversize);
  stats_.device.rx_no_queue = LoadRelaxed(&regs_->device.rx_no_queue);
  stats_.device.rx_link_down = LoadRelaxed(&regs_->device.rx_link_down);
  stats_.device.last_fault_iova = LoadRelaxed(&regs_->device.last_fault_iova);
  Log("driver '%s' attached: register memfd %llu bytes, %u rxq, %u txq", driver_name_.c_str(),
      static_cast<unsigned long long>(msg.len), LoadRelaxed(&regs_->num_rxq),
      LoadRelaxed(&regs_->num_txq));
  return 0;
}

void Device::DropPort() {
  iommu_.Clear();
  if (regs_ != nullptr) munmap(regs_, regs_len_);
  regs_ = nullptr;
  regs_len_ = 0;
  for (int q = 0; q < kMaxQueues; ++q) {
    rxq_[q] = RxQueueState{};
    txq_[q] = TxQueueState{};
  }
  rx_touched_ = tx_touched_ = 0;
  steering_.Reset();
}

void Device::OnDisconnect() {
  if (regs_ != nullptr) Log("driver '%s' disconnected: port dropped", driver_name_.c_str());
  ++stats_.disconnects;
  DropPort();
  link_.Disconnect();
}

bool Device::ValidRing(uint32_t offset, uint32_t size, const char* what, int q) {
  bool ok = size != 0 && (size & (size - 1)) == 0 && size <= simnic::kMaxRingSize &&
            offset % 4096 == 0 && offset >= sizeof(simnic::RegisterPage) &&
            uint64_t{offset} + simnic::RingBytes(size) <= regs_len_;
  if (!ok) {
    ++stats_.ring_errors;
    Log("%s queue %d refused: ring offset %u size %u (need a power of two <= %u, 4096-aligned, "
        "after the register page and inside the %zu-byte memfd)",
        what, q, offset, size, simnic::kMaxRingSize, regs_len_);
  }
  return ok;
}

// The ABI's start/stop handshake for one queue, shared by Rx and Tx. Returns
// true when the queue must (re)start now at generation *seen. Runs only
// between bursts, so acknowledging a stop here means no DMA of that queue is
// in progress or will happen.
//
// One hazard the ABI leaves open: the driver bumps `generation` before it
// stores enabled = 1, so a device that looks in between sees a disabled queue
// with a new generation and acknowledges it as stopped. If the driver then
// stops the queue right after starting it, it would find that stale
// acknowledgement while the device may be working on the queue. So before
// using a generation it has already acknowledged, the device withdraws the
// acknowledgement and reads `enabled` again (a store-load pair with the
// driver's store of enabled = 0 and load of stopped_generation: with
// sequentially consistent accesses on both sides one of them sees the other).
bool Device::QueueHandshake(simnic::QueueRegs* r, QueueState* s) {
  if (__atomic_load_n(&r->enabled, __ATOMIC_ACQUIRE) != 0) {
    uint32_t gen = LoadRelaxed(&r->generation);
    if ((s->active || s->refused) && gen == s->generation) return false;
    s->active = false;
    s->refused = false;
    if (LoadRelaxed(&r->stopped_generation) == gen) {
      __atomic_store_n(&r->stopped_generation, gen - 1, __ATOMIC_SEQ_CST);
      if (__atomic_load_n(&r->enabled, __ATOMIC_SEQ_CST) == 0) return false;  // acked next time
    }
    s->generation = gen;
    return true;
  }
  s->active = false;
  s->refused = false;
  uint32_t gen = LoadRelaxed(&r->generation);
  if (LoadRelaxed(&r->stopped_generation) != gen) {
    __atomic_store_n(&r->stopped_generation, gen, __ATOMIC_RELEASE);
  }
  return false;
}

void Device::SyncRxQueues(uint32_t n) {
  for (uint32_t q = 0; q < n; ++q) {
    RxQueueState& s = rxq_[q];
    simnic::QueueRegs* r = s.regs;
    if (!QueueHandshake(r, &s.state)) continue;
    uint32_t offset = LoadRelaxed(&r->ring_offset);
    uint32_t size = LoadRelaxed(&r->ring_size);
    uint32_t buf_len = LoadRelaxed(&r->buf_len);
    bool per_desc = LoadRelaxed(&r->per_desc_len) != 0;
    if (!ValidRing(offset, size, "rx", static_cast<int>(q))) {
      s.state.refused = true;
      continue;
    }
    if (!per_desc && buf_len == 0) {
      ++stats_.ring_errors;
      Log("rx queue %u refused: buf_len 0 without per_desc_len", q);
      s.state.refused = true;
      continue;
    }
    s.ring = reinterpret_cast<simnic::RxDesc*>(reinterpret_cast<uint8_t*>(regs_) + offset);
    s.mask = size - 1;
    s.head = 0;
    s.tail = 0;
    s.buf_len = std::min<uint32_t>(buf_len, UINT16_MAX);  // pkt_len is 16 bits
    s.per_desc_len = per_desc;
    s.scatter = LoadRelaxed(&r->scatter) != 0;
    s.vlan_strip = LoadRelaxed(&r->vlan_strip) != 0;
    s.state.active = true;
    __atomic_store_n(&r->head, 0u, __ATOMIC_RELEASE);
  }
}

void Device::SyncTxQueues(uint32_t n) {
  for (uint32_t q = 0; q < n; ++q) {
    TxQueueState& s = txq_[q];
    simnic::QueueRegs* r = s.regs;
    if (!QueueHandshake(r, &s.state)) continue;
    uint32_t offset = LoadRelaxed(&r->ring_offset);
    uint32_t size = LoadRelaxed(&r->ring_size);
    if (!ValidRing(offset, size, "tx", static_cast<int>(q))) {
      s.state.refused = true;
      continue;
    }
    s.ring = reinterpret_cast<simnic::TxDesc*>(reinterpret_cast<uint8_t*>(regs_) + offset);
    s.mask = size - 1;
    s.head = 0;
    s.state.active = true;
    __atomic_store_n(&r->head, 0u, __ATOMIC_RELEASE);
  }
}

void Device::PublishCounters() {
  if (regs_ == nullptr) return;
  for (uint32_t m = rx_touched_; m != 0; m &= m - 1) {
    const int q = __builtin_ctz(m);
    __atomic_store_n(&rxq_[q].regs->head, rxq_[q].head, __ATOMIC_RELEASE);
    PublishQueue(&regs_->rx_counters[q], stats_.rx[q]);
  }
  for (uint32_t m = tx_touched_; m != 0; m &= m - 1) {
    const int q = __builtin_ctz(m);
    __atomic_store_n(&txq_[q].regs->head, txq_[q].head, __ATOMIC_RELEASE);
    PublishQueue(&regs_->tx_counters[q], stats_.tx[q]);
  }
  rx_touched_ = tx_touched_ = 0;
  if (device_counters_dirty_) {
    StoreRelaxed(&regs_->device.iommu_faults, stats_.device.iommu_faults);
    StoreRelaxed(&regs_->device.rx_oversize, stats_.device.rx_oversize);
    StoreRelaxed(&regs_->device.rx_no_queue, stats_.device.rx_no_queue);
    StoreRelaxed(&regs_->device.rx_link_down, stats_.device.rx_link_down);
    StoreRelaxed(&regs_->device.last_fault_iova, stats_.device.last_fault_iova);
    device_counters_dirty_ = false;
  }
}

void Device::LogFault(const char* dir, int q, uint64_t iova, uint64_t len) {
  ++stats_.device.iommu_faults;
  stats_.device.last_fault_iova = iova;
  device_counters_dirty_ = true;
  if (!options_.log) return;
  // A driver bug can fault on every frame: one line per interval, then a count.
  uint64_t now = NowNs();
  if (last_log_ns_ != 0 && now - last_log_ns_ < kLogIntervalNs) {
    ++logs_suppressed_;
    return;
  }
  last_log_ns_ = now;
  Log("IOMMU fault: %s queue %d iova 0x%llx len %llu is not inside one mapping (not accessed)%s",
      dir, q, static_cast<unsigned long long>(iova), static_cast<unsigned long long>(len),
      logs_suppressed_ != 0
          ? absl::StrCat("; ", logs_suppressed_, " more since the last message").c_str()
          : "");
  logs_suppressed_ = 0;
}

void Device::Log(const char* fmt, ...) {
  if (!options_.log) return;
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof(line), fmt, ap);
  va_end(ap);
  fprintf(stderr, "simnic[%s]: %s\n", options_.name.c_str(), line);
}

DeviceStats Device::Stats() const {
  DeviceStats s = stats_;
  s.connected = regs_ != nullptr;
  s.driver_name = driver_name_;
  s.mappings = iommu_.size();
  s.mapped_bytes = iommu_.mapped_bytes();
  s.stale_tables = steering_.stale_reads();
  return s;
}

std::string Device::Describe() const {
  DeviceStats s = Stats();
  std::string out = absl::StrCat("simnic[", options_.name, "]: ");
  if (!s.connected) {
    absl::StrAppend(&out, link_.connected() ? "connected, no hello yet" : "no driver",
                    link_.listening() ? absl::StrCat(" (listening on ", link_.path(), ")") : "");
  } else {
    int rx_active = 0, tx_active = 0;
    for (int q = 0; q < kMaxQueues; ++q) {
      rx_active += rxq_[q].state.active;
      tx_active += txq_[q].state.active;
    }
    const uint8_t* mac = regs_->mac;
    absl::StrAppend(
        &out, "driver '", driver_name_, "', link ", LoadRelaxed(&regs_->link_up) ? "up" : "down",
        absl::StrFormat(", mac %02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3],
                        mac[4], mac[5]),
        LoadRelaxed(&regs_->promiscuous) ? " promisc" : "", ", rxq ", rx_active, "/",
        LoadRelaxed(&regs_->num_rxq), " active, txq ", tx_active, "/", LoadRelaxed(&regs_->num_txq),
        " active, rss ", steering_.rss_enabled() ? "on" : "off", ", ", steering_.num_rules(),
        " flow rules, ", s.mappings, " mappings (", s.mapped_bytes >> 10, " KiB)");
  }
  uint64_t rx = 0, rx_missed = 0, rx_err = 0, tx = 0, tx_err = 0;
  for (int q = 0; q < kMaxQueues; ++q) {
    rx += s.rx[q].packets;
    rx_missed += s.rx[q].missed;
    rx_err += s.rx[q].errors;
    tx += s.tx[q].packets;
    tx_err += s.tx[q].errors;
  }
  absl::StrAppend(&out, "; rx ", rx, " missed ", rx_missed, " errors ", rx_err, " tx ", tx,
                  " errors ", tx_err, "; faults ", s.device.iommu_faults, " oversize ",
                  s.device.rx_oversize, " no_queue ", s.device.rx_no_queue, " link_down ",
                  s.device.rx_link_down, " filtered ", s.rx_filtered, " no_port ", s.rx_no_port);
  return out;
}

}  // namespace iovtee::softnic
