// simnic_peer --mode=guest: a guest on its own, in its own process. It
// attaches a virtio-user port to the switch's vhost-user socket, then echoes
// or checks what it receives (GuestPort), optionally sends a generator stream
// of its own, and reports when a signal ends it:
//
//   setup   wait for the socket, attach (retried until --setup-timeout)
//   run     poll; the generator (if any) starts once --start-file exists and
//           runs for --duration seconds (or until SIGUSR1)
//   end     SIGINT/SIGTERM: generator off, port detached (the switch sees the
//           guest leave), pool canaries checked, report written
//
// A guest killed with SIGKILL reports nothing at the end: --status-file (every
// 100 ms, and at once when a canary is found damaged) keeps what it saw.
#ifndef IOVTEE_TEST_SOFTNIC_PEER_GUEST_RUNNER_H_
#define IOVTEE_TEST_SOFTNIC_PEER_GUEST_RUNNER_H_

#include <csignal>
#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "test/softnic/peer/guest_port.h"
#include "test/softnic/peer/options.h"
#include "test/softnic/peer/report.h"
#include "test/softnic/peer/stream.h"
#include "test/softnic/traffic/generator.h"

namespace iovtee::softnic {

class GuestRunner {
 public:
  // Builds the checker and the generator. Needs a running EAL.
  static absl::StatusOr<std::unique_ptr<GuestRunner>> Create(
      const PeerOptions& options, const volatile std::sig_atomic_t* stop,
      const volatile std::sig_atomic_t* finish);

  // Runs until `stop` and fills `report`. Returns the exit status: 0 the
  // guest attached and was stopped, 1 set-up failed, 3 stopped before it
  // attached.
  int Run(GuestReport* report);

 private:
  GuestRunner(const PeerOptions& options, const volatile std::sig_atomic_t* stop,
              const volatile std::sig_atomic_t* finish)
      : options_(options), stop_(stop), finish_(finish) {}

  // Waits for the socket and attaches; false if stopped or timed out.
  bool Attach();
  // Generator start and end, status file, progress line.
  void Tick(uint64_t now);
  void Progress(uint64_t now);
  void WriteStatus();
  void Fill(GuestReport* r) const;

  PeerOptions options_;
  const volatile std::sig_atomic_t* stop_;
  const volatile std::sig_atomic_t* finish_;
  GuestPortConfig config_;
  std::unique_ptr<GuestPort> guest_;
  std::unique_ptr<StreamChecker> checker_;  // role check
  std::unique_ptr<Generator> gen_;          // --guest-gen-stream
  int exit_code_ = 0;
  std::string error_;
  const char* phase_ = "setup";
  double hz_ = 0;
  uint64_t attach_tsc_ = 0, end_tsc_ = 0;
  bool gen_on_ = false, gen_started_ = false, gen_done_ = false;
  uint64_t gen_end_tsc_ = 0;
  uint64_t gen_generated_ = 0;
  uint64_t status_writes_ = 0;
  uint64_t next_status_ = 0, next_progress_ = 0;
  uint64_t violations_seen_ = 0;
};

}  // namespace iovtee::softnic

#endif  // IOVTEE_TEST_SOFTNIC_PEER_GUEST_RUNNER_H_
