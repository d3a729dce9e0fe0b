#include "test/softnic/peer/peer.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "test/softnic/peer/loop_util.h"
#include "test/softnic/peer/stream.h"
#include "test/softnic/traffic/test_frame.h"
#include "test/softnic/traffic/tsc.h"

namespace iovtee::softnic {
namespace {

// Warm-up frames come from 192.168/16, test frames from 10/8 (stream.h): the
// first byte of the IPv4 source address (untagged frames) tells them apart.
constexpr uint32_t kSrcIpOffset = kEthHeaderLen + 12;
constexpr uint8_t kWarmUpNet = kWarmUpSrcIp >> 24;

// The tick: control channel, phase changes, progress. PollControl() costs a
// few microseconds (two system calls): fast while the switch sets up (its PMD
// waits for each ack), rarer while traffic runs.
constexpr double kSetupTickS = 100e-6;
constexpr double kRunTickS = 1e-3;
constexpr double kGuestRetryS = 10e-3;    // looking for the switch's vhost socket
constexpr double kProbeIntervalS = 1e-3;  // one warm-up frame while proving the loop
constexpr double kDrainQuietS = 0.1;
constexpr double kDrainMaxS = 2;
// Unpaced: test frames offered in the first burst after the NIC's ring had
// room again (then doubling up to a full burst).
constexpr size_t kResumeOffer = 4;
// An iteration longer than this was preempted: its cycles are not the loop's.
constexpr double kPreemptedS = 200e-6;
constexpr double kStatusIntervalS = 0.1;

double WallSeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

absl::StatusOr<std::unique_ptr<Generator>> MakeGenerator(const PeerOptions& o, bool warmup) {
  GeneratorConfig gc;
  gc.flows = StreamFlows(o.stream, o.flows, o.have_dst_mac ? o.dst_mac : o.guest_mac, warmup);
  gc.size_mode = o.imix ? SizeMode::kImix : SizeMode::kFixed;
  gc.frame_size = o.frame_size;
  gc.rate_pps = o.rate_pps;
  return Generator::Create(std::move(gc));
}

}  // namespace

Peer::Peer(const PeerOptions& options, const volatile std::sig_atomic_t* stop,
           const volatile std::sig_atomic_t* finish)
    : options_(options), stop_(stop), finish_(finish) {}

Peer::~Peer() = default;

absl::StatusOr<std::unique_ptr<Peer>> Peer::Create(const PeerOptions& options,
                                                   const volatile std::sig_atomic_t* stop,
                                                   const volatile std::sig_atomic_t* finish) {
  auto p = std::unique_ptr<Peer>(new Peer(options, stop, finish));
  auto warm = MakeGenerator(options, /*warmup=*/true);
  if (!warm.ok()) return warm.status();
  auto test = MakeGenerator(options, /*warmup=*/false);
  if (!test.ok()) return test.status();
  p->warm_.gen = std::move(*warm);
  p->test_.gen = std::move(*test);

  CheckerOptions co;
  co.num_flows = options.flows;
  co.flows = p->test_.gen->config().flows;
  co.verify = options.verify;
  p->checker_ = std::make_unique<Checker>(std::move(co));

  p->frame_cap_ = (p->test_.gen->max_length() + 63) & ~63u;
  p->staging_.resize(size_t{kBurst} * p->frame_cap_ + 63);
  auto* base = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(p->staging_.data()) + 63) &
                                          ~uintptr_t{63});
  for (uint32_t i = 0; i < kBurst; ++i) {
    p->bufs_[i] = base + size_t{i} * p->frame_cap_;
    p->frames_[i].data = p->bufs_[i];
  }

  DeviceOptions dopt;
  dopt.name = "peer";
  dopt.tx_burst = kBurst;
  auto nic = Device::Create(dopt);
  if (!nic.ok()) return nic.status();
  p->nic_ = std::move(*nic);
  if (absl::Status s = p->nic_->Listen(options.nic_socket); !s.ok()) return s;

  GuestPortConfig& g = p->guest_config_;
  g.vhost_path = options.guest_vhost;
  g.packed = options.guest_packed;
  g.mrg_rxbuf = options.guest_mrg_rxbuf;
  g.in_order = options.guest_in_order;
  g.queue_size = options.guest_queue_size;
  g.vectorized = options.guest_vectorized;
  g.mac = FormatMac(options.guest_mac);
  g.extra_devargs = options.guest_devargs;
  g.max_frame = p->test_.gen->max_length();
  g.data_room = options.guest_data_room;
  g.role = GuestRole::kEcho;
  g.corrupt_canary = options.guest_corrupt_canary;
  g.canary_every = options.verify.payload_every;
  return p;
}

const char* Peer::PhaseName() const {
  switch (phase_) {
    case Phase::kSetup:
      return "setup";
    case Phase::kProve:
      return "prove";
    case Phase::kWarmup:
      return "warmup";
    case Phase::kMeasure:
      return "measure";
    case Phase::kDrain:
      return "drain";
  }
  return "?";
}

int Peer::Run(PeerReport* report) {
  hz_ = TscHz();
  const uint64_t setup_tick = static_cast<uint64_t>(kSetupTickS * hz_);
  const uint64_t run_tick = static_cast<uint64_t>(kRunTickS * hz_);
  start_tsc_ = ReadTsc();
  setup_deadline_ = start_tsc_ + static_cast<uint64_t>(options_.setup_timeout_s * hz_);
  next_progress_ = start_tsc_ + static_cast<uint64_t>(hz_);
  next_status_ = start_tsc_;
  last_progress_tsc_ = start_tsc_;
  phase_ = Phase::kSetup;
  auto on_tx = [this](const TxFrame& f) { OnNicTx(f); };
  const bool unpaced = options_.rate_pps == 0;
  const uint64_t preempted = static_cast<uint64_t>(kPreemptedS * hz_);
  uint64_t next_tick = 0;
  uint64_t prev_tsc = ReadTsc();
  size_t prev_work = 0;
  for (;;) {
    const uint64_t now = ReadTsc();
    now_ = now;
    // Busy cycles: iterations that moved frames, unless preempted meanwhile.
    if (prev_work != 0 && now - prev_tsc < preempted) busy_cycles_ += now - prev_tsc;
    prev_tsc = now;
    if (now >= next_tick) {
      if (!Tick(now)) break;
      next_tick = now + (phase_ <= Phase::kProve ? setup_tick : run_tick);
    }
    const size_t out = nic_->Transmit(on_tx);
    size_t work = out;
    ++nic_tx_polls_;
    nic_tx_full_polls_ += out >= kBurst;
    if (guest_ != nullptr) work += guest_->Poll(nullptr, now);
    if (active_ == nullptr) {
      // Nothing to send in this phase.
    } else if (unpaced && congested_) {
      // The NIC's ring was full: probe it with one warm-up frame (never
      // counted) rather than generate test frames it would drop.
      if (Send(warm_, now, 1) == 1) {
        congested_ = false;
        offer_ = kResumeOffer;
      }
    } else if (const size_t n = active_->gen->Allowance(now, unpaced ? offer_ : kBurst); n != 0) {
      const size_t taken = Send(*active_, now, n);
      work += n;
      if (unpaced) {
        if (taken < n) {
          congested_ = true;
        } else {
          offer_ = std::min<size_t>(kBurst, 2 * n);
        }
      }
    }
    prev_work = work;
    ++iterations_;
    if (work == 0) IdleSleep(options_.idle_sleep_us);
  }
  Fill(report);
  WriteStatus();
  report->status_writes = status_writes_;
  return exit_code_;
}

size_t Peer::Send(Stream& s, uint64_t now, size_t max) {
  const size_t n =
      s.gen->NextBurst(absl::Span<uint8_t* const>(bufs_, max), frame_cap_,
                       absl::Span<uint32_t>(lens_, max), now, absl::Span<uint64_t>(images_, max));
  uint64_t bytes = 0;
  for (size_t i = 0; i < n; ++i) {
    frames_[i].len = lens_[i];
    bytes += lens_[i];
  }
  const size_t taken = nic_->Receive(absl::Span<const Frame>(frames_, n));
  s.taken += taken;
  s.offered += n;
  s.bytes += bytes;
  return taken;
}

void Peer::OnNicTx(const TxFrame& f) {
  if (f.len > kSrcIpOffset && f.data[kSrcIpOffset] == kWarmUpNet) {
    ++warmup_received_;
    return;
  }
  if (checker_->Check(f.data, f.len, now_) == Verdict::kOk) {
    ++test_received_;
    test_bytes_ += f.len;
    last_test_rx_ = now_;
  }
}

bool Peer::Fail(const std::string& error) {
  error_ = error;
  exit_code_ = 1;
  return false;
}

bool Peer::Tick(uint64_t now) {
  nic_->PollControl();
  if (*stop_ != 0) {
    error_ = absl::StrCat("interrupted in phase ", PhaseName());
    exit_code_ = 3;
    return false;
  }
  if (now >= next_progress_) Progress(now);
  if (!options_.status_file.empty() && now >= next_status_) {
    next_status_ = now + static_cast<uint64_t>(kStatusIntervalS * hz_);
    WriteStatus();
  }
  if (*finish_ != 0) {
    // Asked to end the measurement now (SIGUSR1).
    if (phase_ == Phase::kWarmup) StartMeasure(now);
    if (phase_ == Phase::kMeasure) EndMeasure(now);
    if (phase_ != Phase::kDrain)
      return Fail(absl::StrCat("asked to finish in phase ", PhaseName()));
  }
  switch (phase_) {
    case Phase::kSetup:
      return TickSetup(now);
    case Phase::kProve:
      // nic mode: frames may never come back (guests that only check), so
      // the switch's NIC port taking one proves enough.
      if (warmup_received_ != 0 || (options_.mode == PeerMode::kNic && warm_.taken != 0)) {
        prove_s_ = static_cast<double>(now - prove_start_) / hz_;
        StartWarmup(now);
        return true;
      }
      if (now >= setup_deadline_) {
        const DeviceStats d = nic_->Stats();
        return Fail(absl::StrCat(
            "no frame came back within --setup-timeout=", options_.setup_timeout_s,
            " s: the switch forwards nothing (", warm_.offered, " warm-up frames offered, ",
            warm_.taken, " taken by its NIC port",
            guest_ != nullptr
                ? absl::StrCat("; guest link ", guest_->link_up() ? "up" : "down", ", guest rx ",
                               guest_->counters().rx, " tx ", guest_->counters().tx)
                : "",
            ")",
            !d.connected ? "; no driver is connected to the NIC: is the switch probing "
                           "net_simnic with socket=" +
                               options_.nic_socket + "?"
                         : "",
            d.rx_filtered != 0 ? "; the NIC filtered frames: its port is not promiscuous and "
                                 "the flows' destination MAC is not the port's (enable "
                                 "promiscuous mode, or --dst-mac)"
                               : "",
            "\n  ", nic_->Describe()));
      }
      if (now >= next_probe_) {
        next_probe_ = now + static_cast<uint64_t>(kProbeIntervalS * hz_);
        Send(warm_, now, 1);
      }
      return true;
    case Phase::kWarmup:
      if (now >= phase_end_) StartMeasure(now);
      return true;
    case Phase::kMeasure:
      if (now >= phase_end_) EndMeasure(now);
      return true;
    case Phase::kDrain: {
      const bool all_back = test_received_ >= test_.taken;
      const uint64_t quiet_since = last_test_rx_ > drain_start_ ? last_test_rx_ : drain_start_;
      if (all_back || now - quiet_since >= static_cast<uint64_t>(kDrainQuietS * hz_) ||
          now - drain_start_ >= static_cast<uint64_t>(kDrainMaxS * hz_)) {
        drain_end_ = now;
        return false;
      }
      return true;
    }
  }
  return false;
}

bool Peer::TickSetup(uint64_t now) {
  if (options_.mode == PeerMode::kNic && !options_.start_file.empty() &&
      !FileExists(options_.start_file)) {
    if (now >= setup_deadline_) {
      return Fail(absl::StrCat("no start file ", options_.start_file,
                               " within --setup-timeout=", options_.setup_timeout_s, " s"));
    }
    return true;
  }
  if (options_.mode == PeerMode::kNicLoop || options_.mode == PeerMode::kNic) {
    // The switch gets a whole --setup-timeout from here on to take frames.
    setup_deadline_ = now + static_cast<uint64_t>(options_.setup_timeout_s * hz_);
    phase_ = Phase::kProve;
    prove_start_ = now;
    return true;
  }
  if (now >= setup_deadline_) {
    return Fail(absl::StrCat(
        "the guest could not attach within --setup-timeout=", options_.setup_timeout_s, " s: ",
        IsSocket(options_.guest_vhost)
            ? guest_attach_error_
            : absl::StrCat("no vhost-user socket at ", options_.guest_vhost,
                           " (is the switch running with a vhost-user server port there?)")));
  }
  if (now < next_guest_try_) return true;
  next_guest_try_ = now + static_cast<uint64_t>(kGuestRetryS * hz_);
  if (!IsSocket(options_.guest_vhost)) return true;
  // The socket file appears at bind(), a moment before listen(): a refused
  // probe is retried until the deadline.
  auto g = GuestPort::Attach(guest_config_);
  if (!g.ok()) {
    guest_attach_error_ = g.status().ToString();
    if (g.status().code() == absl::StatusCode::kInvalidArgument) {
      return Fail(guest_attach_error_);  // a configuration that cannot work: do not retry
    }
    std::fprintf(stderr, "simnic_peer: guest attach failed (retrying): %s\n",
                 guest_attach_error_.c_str());
    next_guest_try_ = now + static_cast<uint64_t>(10 * kGuestRetryS * hz_);
    return true;
  }
  guest_ = std::move(*g);
  std::fprintf(stderr, "simnic_peer: guest attached: net_virtio_user %s\n",
               guest_->devargs().c_str());
  phase_ = Phase::kProve;
  prove_start_ = ReadTsc();
  return true;
}

void Peer::StartWarmup(uint64_t now) {
  if (options_.warmup_s <= 0) {
    StartMeasure(now);
    return;
  }
  phase_ = Phase::kWarmup;
  active_ = &warm_;
  phase_end_ = now + static_cast<uint64_t>(options_.warmup_s * hz_);
}

void Peer::StartMeasure(uint64_t now) {
  phase_ = Phase::kMeasure;
  active_ = &test_;
  measure_start_ = now;
  phase_end_ = now + static_cast<uint64_t>(options_.duration_s * hz_);
  cpu_start_ = ReadCpuTimes();
  wall_start_ = WallSeconds();
  iterations_start_ = iterations_;
  busy_start_ = busy_cycles_;
  polls_start_ = nic_tx_polls_;
  full_polls_start_ = nic_tx_full_polls_;
}

void Peer::EndMeasure(uint64_t now) {
  phase_ = Phase::kDrain;
  active_ = nullptr;
  measure_end_ = now;
  drain_start_ = now;
  cpu_end_ = ReadCpuTimes();
  wall_end_ = WallSeconds();
  iterations_end_ = iterations_;
  busy_end_ = busy_cycles_;
  polls_end_ = nic_tx_polls_;
  full_polls_end_ = nic_tx_full_polls_;
}

void Peer::Progress(uint64_t now) {
  const uint64_t offered = warm_.offered + test_.offered;
  const uint64_t returned = warmup_received_ + test_received_;
  const double dt = static_cast<double>(now - last_progress_tsc_) / hz_;
  // Stats() copies the counters (the driver's short name stays inline): the
  // line is built on the stack, so the loop allocates nothing here either.
  const DeviceStats d = nic_->Stats();
  uint64_t missed = 0;
  for (const simnic::QueueCounters& q : d.rx) missed += q.missed;
  char line[320];
  int len = std::snprintf(
      line, sizeof(line),
      "simnic_peer: %6.1f s %-7s offered %.3f Mpps, back %.3f Mpps | test sent %llu back %llu "
      "| nic %s missed %llu faults %llu",
      static_cast<double>(now - start_tsc_) / hz_, PhaseName(),
      static_cast<double>(offered - last_offered_) / dt / 1e6,
      static_cast<double>(returned - last_returned_) / dt / 1e6,
      static_cast<unsigned long long>(test_.offered),
      static_cast<unsigned long long>(test_received_), d.connected ? "up" : "down",
      static_cast<unsigned long long>(missed),
      static_cast<unsigned long long>(d.device.iommu_faults));
  if (guest_ != nullptr && len > 0 && static_cast<size_t>(len) < sizeof(line)) {
    const GuestCounters& g = guest_->counters();
    std::snprintf(line + len, sizeof(line) - len, " | guest rx %llu tx %llu drops %llu",
                  static_cast<unsigned long long>(g.rx), static_cast<unsigned long long>(g.tx),
                  static_cast<unsigned long long>(g.drops));
  }
  std::fprintf(stderr, "%s\n", line);
  last_offered_ = offered;
  last_returned_ = returned;
  last_progress_tsc_ = now;
  next_progress_ += static_cast<uint64_t>(hz_);
  if (next_progress_ <= now) next_progress_ = now + static_cast<uint64_t>(hz_);
}

void Peer::WriteStatus() {
  if (options_.status_file.empty()) return;
  PeerReport r;
  Fill(&r);
  r.final = false;
  r.status_writes = status_writes_++;
  WriteFileAtomically(options_.status_file, ReportJson(r)).IgnoreError();
}

void Peer::Fill(PeerReport* r) const {
  r->mode = ModeName(options_.mode);
  r->size = options_.imix ? "imix" : absl::StrCat(options_.frame_size);
  r->flows = options_.flows;
  r->stream = options_.stream;
  r->rate_pps = options_.rate_pps;
  r->verify = options_.verify.ToString();
  r->phase = PhaseName();
  r->completed = exit_code_ == 0 && drain_end_ != 0;
  r->error = error_;
  r->tsc_hz = hz_;
  if (measure_end_ != 0) {
    r->duration_s = static_cast<double>(measure_end_ - measure_start_) / hz_;
    r->drain_s = static_cast<double>(drain_end_ - drain_start_) / hz_;
    r->cpu_user_s = cpu_end_.user_s - cpu_start_.user_s;
    r->cpu_system_s = cpu_end_.system_s - cpu_start_.system_s;
    const double wall = wall_end_ - wall_start_;
    r->cpu_share = wall > 0 ? (r->cpu_user_s + r->cpu_system_s) / wall : 0;
    r->loop_iterations = iterations_end_ - iterations_start_;
    r->busy_cycles = busy_end_ - busy_start_;
    r->nic_tx_polls = polls_end_ - polls_start_;
    r->nic_tx_full_polls = full_polls_end_ - full_polls_start_;
  }
  r->traffic = checker_->Summarize(test_.gen->sent_per_flow());
  r->sent_bytes = test_.bytes;
  r->received_bytes = test_bytes_;
  r->nic_rx_offered = test_.offered;
  r->nic_rx_taken = test_.taken;
  r->warmup_sent = warm_.offered;
  r->warmup_received = warmup_received_;
  r->prove_s = prove_s_;
  r->device = nic_->Stats();
  r->guest.present = guest_ != nullptr;
  if (guest_ != nullptr) {
    GuestPart& g = r->guest;
    g.devargs = guest_->devargs();
    g.rx_path = guest_->rx_path();
    g.tx_path = guest_->tx_path();
    g.data_room = guest_->data_room();
    g.link_up = guest_->link_up();
    g.counters = guest_->counters();
    g.eth = guest_->eth_stats();
    g.canaries = guest_->canaries();
  }
}

void Peer::DetachGuest() {
  if (guest_ != nullptr) guest_->Detach();
}

void Peer::ServeUntil(const std::atomic<bool>& done) {
  auto discard = [](const TxFrame&) {};
  while (!done.load()) {
    nic_->PollControl();
    nic_->Transmit(discard);
    usleep(200);
  }
}

void Peer::Linger() {
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::duration<double>(options_.linger_s);
  auto discard = [](const TxFrame&) {};
  while (nic_->connected() && *stop_ == 0 && std::chrono::steady_clock::now() < deadline) {
    nic_->PollControl();
    nic_->Transmit(discard);
    usleep(200);
  }
}

}  // namespace iovtee::softnic
