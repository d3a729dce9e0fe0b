// The tester side of a PVP benchmark in one polling loop on one core:
//
//   generator --Receive()--> soft NIC --(switch's net_simnic PMD)--> switch
//   switch --vhost-user--> guest (virtio-user, macswap) --vhost-user--> switch
//   switch --(net_simnic Tx)--> soft NIC --Transmit()--> checker
//
// In nic-loop mode there is no guest: the switch sends the NIC's frames back
// out of the NIC (testpmd --port-topology=loop), which measures the peer and
// the NIC path alone. In nic mode there is no guest either: frames come back
// (or not) from guests in other processes (simnic_peer --mode=guest); the loop
// is proven once the switch takes a frame, and a guest that comes and goes
// only costs frames, counted as lost.
//
// A run goes through phases, all inside the same loop (the NIC's control
// channel is served throughout, so the switch's PMD never waits on us):
//   setup   pvp: wait for the switch's vhost-user socket, hot-plug the guest;
//           nic: wait for --start-file
//   prove   one warm-up frame per millisecond until one comes back (nic
//           mode: until the switch's NIC port takes one)
//   warmup  warm-up traffic at the configured rate for --warmup seconds
//   measure test traffic for --duration seconds
//   drain   no new frames; wait for those in flight (until all are back,
//           100 ms pass without one, or 2 s)
// Warm-up and test frames differ in their source network (192.168/16 and
// 10/8), so a warm-up frame that comes back late is never counted.
//
// Unpaced (--rate=0), the loop sends as fast as the switch takes frames: a
// burst the NIC's Rx ring could not take whole marks it full, and until a
// single warm-up frame is taken again no test frame is generated (frames the
// switch has no buffers for would cost the loop's time, not the switch's).
// The rest of the burst that found the ring full counts as lost.
//
// Per iteration, each part works on one burst of at most 32 frames; the
// control channel, phase changes and the progress line run on a tick (every
// 100 us until the loop is proven, then every millisecond).
// No allocation after Create().
#ifndef IOVTEE_TEST_SOFTNIC_PEER_PEER_H_
#define IOVTEE_TEST_SOFTNIC_PEER_PEER_H_

#include <atomic>
#include <csignal>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "test/softnic/device/device.h"
#include "test/softnic/peer/guest_port.h"
#include "test/softnic/peer/options.h"
#include "test/softnic/peer/report.h"
#include "test/softnic/traffic/checker.h"
#include "test/softnic/traffic/generator.h"

namespace iovtee::softnic {

class Peer {
 public:
  static constexpr uint32_t kBurst = 32;

  // Builds the generators and the checker, creates the soft NIC and listens
  // on options.nic_socket. pvp mode needs a running EAL (for the guest,
  // attached later). `stop` and `finish` are polled: when `stop` becomes
  // nonzero the run is interrupted; when `finish` does, the measurement ends
  // early (drain, report) as if --duration had passed.
  static absl::StatusOr<std::unique_ptr<Peer>> Create(const PeerOptions& options,
                                                      const volatile std::sig_atomic_t* stop,
                                                      const volatile std::sig_atomic_t* finish);
  ~Peer();

  // Runs every phase and fills `report`. Returns the exit status: 0 the
  // measurement completed, 1 set-up failed (report->error says why),
  // 3 interrupted.
  int Run(PeerReport* report);

  // Fills `report` with the run's results so far (Run does at its end; call
  // again after DetachGuest for the guest's exit-time canary check).
  void Fill(PeerReport* report) const;

  // Unplugs the guest (the switch sees it leave) and checks its pool's
  // canaries. The NIC is not served meanwhile: run it on another thread
  // while this one calls ServeUntil().
  void DetachGuest();
  // Serves the NIC's control channel (and drains its Tx) until `done`.
  void ServeUntil(const std::atomic<bool>& done);
  // Serves the NIC's control channel (and drains its Tx) until the switch's
  // driver closes the port, `stop` is set, or options.linger_s pass, so the
  // switch's queue stops and close are acknowledged.
  void Linger();

 private:
  enum class Phase { kSetup, kProve, kWarmup, kMeasure, kDrain };
  // Frames handed to the NIC from one generator.
  struct Stream {
    std::unique_ptr<Generator> gen;
    uint64_t offered = 0;
    uint64_t taken = 0;
    uint64_t bytes = 0;
  };

  Peer(const PeerOptions& options, const volatile std::sig_atomic_t* stop,
       const volatile std::sig_atomic_t* finish);

  // The tick: control channel, phase changes, progress. Returns false when
  // the run is over (complete, failed or interrupted).
  bool Tick(uint64_t now);
  bool TickSetup(uint64_t now);
  void StartWarmup(uint64_t now);
  void StartMeasure(uint64_t now);
  void EndMeasure(uint64_t now);
  void Progress(uint64_t now);
  void WriteStatus();
  bool Fail(const std::string& error);
  // One burst from `s` (at most `max` frames) into the NIC; returns how many
  // the NIC took.
  size_t Send(Stream& s, uint64_t now, size_t max);
  void OnNicTx(const TxFrame& f);
  const char* PhaseName() const;

  PeerOptions options_;
  const volatile std::sig_atomic_t* stop_;
  const volatile std::sig_atomic_t* finish_;
  std::unique_ptr<Device> nic_;
  std::unique_ptr<GuestPort> guest_;
  GuestPortConfig guest_config_;
  Stream warm_;
  Stream test_;
  Stream* active_ = nullptr;  // the stream the datapath sends, if any
  // Unpaced sending: the NIC's ring was full at the last burst (probe before
  // sending more), and how many test frames to offer next.
  bool congested_ = false;
  size_t offer_ = kBurst;
  std::unique_ptr<Checker> checker_;

  // Staging buffers for one burst of generated frames.
  std::vector<uint8_t> staging_;  // kBurst frames of frame_cap_ bytes, 64-byte aligned
  uint32_t frame_cap_ = 0;
  uint8_t* bufs_[kBurst] = {};
  uint64_t images_[kBurst] = {};  // which frame each buffer holds (Generator::Next)
  uint32_t lens_[kBurst] = {};
  Frame frames_[kBurst] = {};

  Phase phase_ = Phase::kSetup;
  int exit_code_ = 0;
  std::string error_;
  double hz_ = 0;
  uint64_t now_ = 0;  // TSC of the current iteration (checker's receive time)
  uint64_t start_tsc_ = 0;
  uint64_t setup_deadline_ = 0;
  uint64_t next_guest_try_ = 0;
  std::string guest_attach_error_;
  uint64_t next_probe_ = 0;
  uint64_t prove_start_ = 0;
  uint64_t phase_end_ = 0;
  uint64_t next_progress_ = 0;
  uint64_t status_writes_ = 0;
  uint64_t next_status_ = 0;

  // Counters the datapath keeps.
  uint64_t warmup_received_ = 0;
  uint64_t test_received_ = 0;  // valid first copies (Verdict::kOk)
  uint64_t test_bytes_ = 0;
  uint64_t last_test_rx_ = 0;
  uint64_t iterations_ = 0;
  uint64_t busy_cycles_ = 0;
  uint64_t nic_tx_polls_ = 0;
  uint64_t nic_tx_full_polls_ = 0;

  // Measured interval.
  uint64_t measure_start_ = 0, measure_end_ = 0, drain_start_ = 0, drain_end_ = 0;
  CpuTimes cpu_start_, cpu_end_;
  double wall_start_ = 0, wall_end_ = 0;
  uint64_t iterations_start_ = 0, iterations_end_ = 0;
  uint64_t busy_start_ = 0, busy_end_ = 0;
  uint64_t polls_start_ = 0, polls_end_ = 0, full_polls_start_ = 0, full_polls_end_ = 0;
  double prove_s_ = 0;

  // Progress: values at the previous line.
  uint64_t last_offered_ = 0, last_returned_ = 0, last_progress_tsc_ = 0;
};

}  // namespace iovtee::softnic

#endif  // IOVTEE_TEST_SOFTNIC_PEER_PEER_H_
