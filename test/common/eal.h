// Starting DPDK's EAL inside a test process, the same way in every test.
//
// EAL runs with --no-huge (memfd-backed memory, no hugepages needed), --no-pci,
// --no-shconf and a file prefix unique to the process, so tests can run in
// parallel and leave nothing under /var/run/dpdk: StopEal() (also run at exit)
// calls rte_eal_cleanup() and removes the process's runtime directory.
#ifndef IOVTEE_TEST_COMMON_EAL_H_
#define IOVTEE_TEST_COMMON_EAL_H_

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace iovtee::test {

struct EalOptions {
  int memory_mb = 256;       // -m
  std::string lcores = "0";  // -l
  // Telemetry is off unless asked for: inside Bazel's sandbox EAL has no
  // runtime directory and falls back to one fixed socket path in /tmp, which
  // parallel tests would fight over (and a crashed test would leave behind).
  bool telemetry = false;
  std::vector<std::string> extra;  // e.g. {"--vdev", "net_null0"}
};

// Initialises EAL once per process. A second call returns OK without effect
// if EAL is already up; EAL cannot be re-initialised after StopEal().
absl::Status StartEal(const EalOptions& options = {});

// The --file-prefix in use ("iovtee-t-<pid>").
std::string FilePrefix();

// Cleans EAL up and removes its runtime directory. Idempotent.
void StopEal();

}  // namespace iovtee::test

#endif  // IOVTEE_TEST_COMMON_EAL_H_
