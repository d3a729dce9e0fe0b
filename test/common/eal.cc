#include "test/common/eal.h"

#include <dirent.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <mutex>

#include <rte_eal.h>
#include <rte_errno.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace iovtee::test {
namespace {

std::mutex g_mu;
bool g_started = false;
bool g_stopped = false;
std::string g_runtime_dir;

void RemoveDir(const std::string& dir) {
  if (dir.empty()) return;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
      unlink(absl::StrCat(dir, "/", e->d_name).c_str());
    }
    closedir(d);
  }
  rmdir(dir.c_str());
  // The parent (/var/run/dpdk) goes too when no other DPDK process uses it.
  const auto slash = dir.rfind('/');
  if (slash != std::string::npos) rmdir(dir.substr(0, slash).c_str());
}

}  // namespace

std::string FilePrefix() { return absl::StrCat("iovtee-t-", getpid()); }

absl::Status StartEal(const EalOptions& options) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_stopped) return absl::FailedPreconditionError("EAL cannot be started after StopEal()");
  if (g_started) return absl::OkStatus();
  std::vector<std::string> args = {"iovtee-test",
                                   "--no-huge",
                                   "-m",
                                   std::to_string(options.memory_mb),
                                   "--no-pci",
                                   "--no-shconf",
                                   "--file-prefix",
                                   FilePrefix(),
                                   "-l",
                                   options.lcores,
                                   "--log-level",
                                   "lib.eal:warning"};
  if (!options.telemetry) args.push_back("--no-telemetry");
  args.insert(args.end(), options.extra.begin(), options.extra.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  if (rte_eal_init(static_cast<int>(args.size()), argv.data()) < 0) {
    return absl::InternalError(absl::StrCat("rte_eal_init(", absl::StrJoin(args, " "),
                                            ") failed: ", rte_strerror(rte_errno)));
  }
  g_runtime_dir = rte_eal_get_runtime_dir();
  g_started = true;
  std::atexit(StopEal);
  return absl::OkStatus();
}

void StopEal() {
  std::lock_guard<std::mutex> lock(g_mu);
  if (!g_started || g_stopped) return;
  g_stopped = true;
  rte_eal_cleanup();
  RemoveDir(g_runtime_dir);
}

}  // namespace iovtee::test
