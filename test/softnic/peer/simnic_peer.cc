// simnic_peer: the tester side of a PVP benchmark (see peer.h), on one core.
// Usage: simnic_peer --help.
#include <dirent.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <sched.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "test/softnic/peer/guest_runner.h"
#include "test/softnic/peer/options.h"
#include "test/softnic/peer/peer.h"
#include "test/softnic/peer/report.h"

namespace iovtee::softnic {
namespace {

volatile std::sig_atomic_t g_stop = 0;
volatile std::sig_atomic_t g_finish = 0;

void OnSignal(int) { g_stop = 1; }
void OnFinish(int) { g_finish = 1; }

// EAL for the guest, started with the caller's arguments or the defaults, and
// cleaned up again; with the defaults (our own file prefix) its runtime
// directory under /var/run/dpdk is removed too.
class Eal {
 public:
  absl::Status Start(const PeerOptions& o) {
    std::vector<std::string> args = {"simnic_peer"};
    own_prefix_ = o.eal_args.empty();
    if (own_prefix_) {
      args.insert(args.end(),
                  {"-l", absl::StrCat(o.core), "--no-huge", "-m", "512", "--no-pci", "--no-shconf",
                   "--no-telemetry", "--file-prefix", absl::StrCat("iovtee-peer-", getpid())});
    } else {
      args.insert(args.end(), o.eal_args.begin(), o.eal_args.end());
    }
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::fprintf(stderr, "simnic_peer: EAL %s\n", absl::StrJoin(args, " ").c_str());
    const int r = rte_eal_init(static_cast<int>(args.size()), argv.data());
    const int error = rte_errno;
    // Known (and created) early in rte_eal_init, also when it fails later.
    runtime_dir_ = rte_eal_get_runtime_dir();
    if (r < 0) {
      return absl::InternalError(absl::StrCat("EAL init failed: ", rte_strerror(error)));
    }
    up_ = true;
    return absl::OkStatus();
  }

  ~Eal() {
    if (up_) rte_eal_cleanup();
    if (!own_prefix_ || runtime_dir_.empty()) return;
    if (DIR* d = opendir(runtime_dir_.c_str())) {
      while (dirent* e = readdir(d)) {
        if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) {
          unlink(absl::StrCat(runtime_dir_, "/", e->d_name).c_str());
        }
      }
      closedir(d);
    }
    rmdir(runtime_dir_.c_str());
  }

 private:
  bool up_ = false;
  bool own_prefix_ = false;
  std::string runtime_dir_;
};

int GuestMain(const PeerOptions& o);

bool PinToCore(int core) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(core, &set);
  return sched_setaffinity(0, sizeof(set), &set) == 0;
}

int Main(int argc, char** argv) {
  auto parsed = ParsePeerOptions(argc, argv);
  if (!parsed.ok()) {
    std::fprintf(stderr, "simnic_peer: %s\n(simnic_peer --help lists the options)\n",
                 std::string(parsed.status().message()).c_str());
    return 2;
  }
  const PeerOptions& o = *parsed;
  if (o.help) {
    std::fputs(PeerUsage(argv[0]).c_str(), stdout);
    return 0;
  }
  struct sigaction sa = {};
  sa.sa_handler = OnSignal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  struct sigaction fa = {};
  fa.sa_handler = OnFinish;
  sigaction(SIGUSR1, &fa, nullptr);
  // Idle sleeps (--idle-sleep-us) of tens of microseconds mean little with
  // the default 50 us of timer slack.
  prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
  // virtio-user writes to its vhost-user socket without MSG_NOSIGNAL: a
  // switch that went away first must cost an error, not the process (which
  // would leave its runtime directory behind).
  signal(SIGPIPE, SIG_IGN);

  PeerReport report;
  report.mode = ModeName(o.mode);
  auto fail = [&](const std::string& error) {
    std::fprintf(stderr, "simnic_peer: %s\n", error.c_str());
    if (!o.report.empty()) {
      report.error = error;
      WriteFileAtomically(o.report, ReportJson(report)).IgnoreError();
    }
    return 1;
  };

  Eal eal;
  if (o.mode == PeerMode::kPvp || o.mode == PeerMode::kGuest) {
    if (absl::Status s = eal.Start(o); !s.ok()) return fail(std::string(s.message()));
  } else if (!PinToCore(o.core)) {
    return fail(absl::StrCat("cannot pin to core ", o.core, ": ", strerror(errno)));
  }
  if (o.mode == PeerMode::kGuest) return GuestMain(o);

  auto peer = Peer::Create(o, &g_stop, &g_finish);
  if (!peer.ok()) return fail(std::string(peer.status().message()));
  std::fprintf(stderr, "simnic_peer: NIC listening on %s\n", o.nic_socket.c_str());

  const int rc = (*peer)->Run(&report);
  if (rc != 0) std::fprintf(stderr, "simnic_peer: %s\n", report.error.c_str());
  // The guest leaves on its own thread while this one keeps serving the NIC:
  // stopping virtio-user waits for the switch's answer to GET_VRING_BASE, and
  // a switch may stop its NIC queue (whose device is this process) before it
  // answers, as iovtee's drain does. Then the guest's pool is checked, and
  // the report tells that too.
  std::atomic<bool> left{false};
  std::thread leave([&] {
    (*peer)->DetachGuest();
    left.store(true);
  });
  (*peer)->ServeUntil(left);
  leave.join();
  (*peer)->Fill(&report);
  std::fputs(ReportText(report).c_str(), stdout);
  std::fflush(stdout);
  if (!o.report.empty()) {
    if (absl::Status s = WriteFileAtomically(o.report, ReportJson(report)); !s.ok()) {
      std::fprintf(stderr, "simnic_peer: %s\n", std::string(s.message()).c_str());
    }
  }
  (*peer)->Linger();
  return rc;
}

// --mode=guest: a guest on its own until a signal ends it.
int GuestMain(const PeerOptions& o) {
  GuestReport report;
  auto runner = GuestRunner::Create(o, &g_stop, &g_finish);
  int rc = 1;
  if (!runner.ok()) {
    report.error = std::string(runner.status().message());
  } else {
    rc = (*runner)->Run(&report);
  }
  if (rc != 0) std::fprintf(stderr, "simnic_peer: %s\n", report.error.c_str());
  std::fputs(GuestReportText(report).c_str(), stdout);
  std::fflush(stdout);
  if (!o.report.empty()) {
    if (absl::Status s = WriteFileAtomically(o.report, GuestReportJson(report)); !s.ok()) {
      std::fprintf(stderr, "simnic_peer: %s\n", std::string(s.message()).c_str());
    }
  }
  return rc;
}

}  // namespace
}  // namespace iovtee::softnic

int main(int argc, char** argv) { return iovtee::softnic::Main(argc, argv); }
