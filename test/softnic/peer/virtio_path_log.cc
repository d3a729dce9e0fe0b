#include "test/softnic/peer/virtio_path_log.h"

#include <rte_log.h>

#include <cstdio>

namespace iovtee::softnic {
namespace {

// "... using X Rx path on port N": X, or "" when `line` is not such a line.
std::string PathIn(const std::string& line, const char* suffix) {
  const size_t end = line.find(suffix);
  if (end == std::string::npos) return "";
  const size_t start = line.rfind("using ", end);
  if (start == std::string::npos) return "";
  return line.substr(start + 6, end - start - 6);
}

// The scanner stream: every byte to `previous`, every whole line to the
// VirtioPathLog in scope, if any. Never freed (see the header).
struct Tap {
  FILE* self = nullptr;
  FILE* previous = nullptr;
  absl::Mutex mu;
  std::string partial ABSL_GUARDED_BY(mu);  // a line not ended yet
  VirtioPathLog* listener ABSL_GUARDED_BY(mu) = nullptr;
};

ABSL_CONST_INIT absl::Mutex g_tap_mu(absl::kConstInit);
Tap* g_tap ABSL_GUARDED_BY(g_tap_mu) = nullptr;
// Every tap made, the ones replaced too: still reachable (and never freed).
std::vector<Tap*>* g_taps ABSL_GUARDED_BY(g_tap_mu) = nullptr;

ssize_t TapWrite(void* cookie, const char* buf, size_t size) {
  auto* tap = static_cast<Tap*>(cookie);
  // EAL flushes after each message: pass it on at once.
  std::fwrite(buf, 1, size, tap->previous);
  std::fflush(tap->previous);
  absl::MutexLock lock(&tap->mu);
  tap->partial.append(buf, size);
  size_t nl;
  while ((nl = tap->partial.find('\n')) != std::string::npos) {
    if (tap->listener != nullptr) tap->listener->ScanLine(tap->partial.substr(0, nl));
    tap->partial.erase(0, nl + 1);
  }
  return static_cast<ssize_t>(size);
}

// The tap in place as EAL's log stream (installed now if it is not), or
// nullptr.
Tap* InstalledTap() ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_tap_mu) {
  if (g_tap != nullptr && rte_log_get_stream() == g_tap->self) return g_tap;
  auto* tap = new Tap;
  cookie_io_functions_t io = {};
  io.write = &TapWrite;
  tap->self = fopencookie(tap, "w", io);
  if (tap->self == nullptr) {
    delete tap;
    return nullptr;
  }
  tap->previous = rte_log_get_stream();
  rte_openlog_stream(tap->self);
  g_tap = tap;  // an older one, replaced by someone, is left to its writers
  if (g_taps == nullptr) g_taps = new std::vector<Tap*>;
  g_taps->push_back(tap);
  return tap;
}

}  // namespace

VirtioPathLog::VirtioPathLog() {
  Raise(kInitLogType, &init_level_);
  Raise(kDriverLogType, &driver_level_);
  absl::MutexLock lock(&g_tap_mu);
  if (Tap* tap = InstalledTap(); tap != nullptr) {
    absl::MutexLock tap_lock(&tap->mu);
    tap->listener = this;
  }
}

VirtioPathLog::~VirtioPathLog() {
  {
    absl::MutexLock lock(&g_tap_mu);
    if (g_tap != nullptr) {
      absl::MutexLock tap_lock(&g_tap->mu);
      if (g_tap->listener == this) g_tap->listener = nullptr;
    }
  }
  for (const Level* l : {&init_level_, &driver_level_}) {
    if (l->type >= 0 && l->before >= 0) {
      rte_log_set_level(static_cast<uint32_t>(l->type), static_cast<uint32_t>(l->before));
    }
  }
}

void VirtioPathLog::Raise(const char* name, Level* level) {
  // Returns the existing type when the driver registered it (it has: drivers
  // are loaded by the time EAL is up).
  level->type = rte_log_register(name);
  if (level->type < 0) return;
  level->before = rte_log_get_level(static_cast<uint32_t>(level->type));
  if (level->before >= 0 && level->before < static_cast<int>(RTE_LOG_INFO)) {
    rte_log_set_level(static_cast<uint32_t>(level->type), RTE_LOG_INFO);
  } else {
    level->before = -1;
  }
}

void VirtioPathLog::ScanLine(const std::string& line) {
  std::string rx = PathIn(line, " Rx path");
  std::string tx = PathIn(line, " Tx path");
  const bool note = rx.empty() && tx.empty() && line.find("vectorized") != std::string::npos;
  absl::MutexLock lock(&mu_);
  if (!rx.empty()) rx_path_ = std::move(rx);
  if (!tx.empty()) tx_path_ = std::move(tx);
  if (note) notes_.push_back(line);
}

std::string VirtioPathLog::rx_path() const {
  absl::MutexLock lock(&mu_);
  return rx_path_;
}

std::string VirtioPathLog::tx_path() const {
  absl::MutexLock lock(&mu_);
  return tx_path_;
}

std::vector<std::string> VirtioPathLog::vectorized_notes() const {
  absl::MutexLock lock(&mu_);
  return notes_;
}

}  // namespace iovtee::softnic
