#include "test/softnic/peer/guest_runner.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "test/softnic/peer/loop_util.h"
#include "test/softnic/traffic/test_frame.h"
#include "test/softnic/traffic/tsc.h"

namespace iovtee::softnic {
namespace {

constexpr double kTickS = 1e-3;
constexpr double kStatusIntervalS = 0.1;
constexpr useconds_t kAttachRetryUs = 10000;

}  // namespace

absl::StatusOr<std::unique_ptr<GuestRunner>> GuestRunner::Create(
    const PeerOptions& o, const volatile std::sig_atomic_t* stop,
    const volatile std::sig_atomic_t* finish) {
  auto r = std::unique_ptr<GuestRunner>(new GuestRunner(o, stop, finish));
  GuestPortConfig& g = r->config_;
  g.vhost_path = o.guest_vhost;
  g.packed = o.guest_packed;
  g.mrg_rxbuf = o.guest_mrg_rxbuf;
  g.in_order = o.guest_in_order;
  g.queue_size = o.guest_queue_size;
  g.vectorized = o.guest_vectorized;
  g.mac = FormatMac(o.guest_mac);
  g.extra_devargs = o.guest_devargs;
  g.max_frame = FrameBytes(o.imix ? Generator::kImixSizes[2] : o.frame_size);
  g.data_room = o.guest_data_room;
  g.role = o.guest_role == GuestRoleOption::kCheck ? GuestRole::kCheck : GuestRole::kEcho;
  g.corrupt_canary = o.guest_corrupt_canary;
  g.canary_every = o.verify.payload_every;
  if (g.role == GuestRole::kCheck) {
    std::vector<StreamExpect> expect;
    for (const StreamOption& s : o.guest_check_streams) expect.push_back({s.stream, s.flows});
    r->checker_ = std::make_unique<StreamChecker>(expect, o.guest_mac, o.verify);
  }
  if (o.guest_gen_stream != 0) {
    GeneratorConfig gc;
    gc.flows = StreamFlows(o.guest_gen_stream, o.flows, o.dst_mac);
    gc.size_mode = o.imix ? SizeMode::kImix : SizeMode::kFixed;
    gc.frame_size = o.frame_size;
    gc.rate_pps = o.rate_pps;
    auto gen = Generator::Create(std::move(gc));
    if (!gen.ok()) return gen.status();
    r->gen_ = std::move(*gen);
  }
  return r;
}

bool GuestRunner::Attach() {
  const uint64_t deadline = ReadTsc() + static_cast<uint64_t>(options_.setup_timeout_s * hz_);
  std::string last_error;
  while (*stop_ == 0) {
    if (ReadTsc() >= deadline) {
      error_ = absl::StrCat(
          "the guest could not attach within --setup-timeout=", options_.setup_timeout_s, " s: ",
          IsSocket(options_.guest_vhost)
              ? last_error
              : absl::StrCat("no vhost-user socket at ", options_.guest_vhost));
      exit_code_ = 1;
      return false;
    }
    if (IsSocket(options_.guest_vhost)) {
      auto g = GuestPort::Attach(config_);
      if (g.ok()) {
        guest_ = std::move(*g);
        std::fprintf(stderr, "simnic_peer: guest attached: net_virtio_user %s\n",
                     guest_->devargs().c_str());
        return true;
      }
      last_error = g.status().ToString();
      std::fprintf(stderr, "simnic_peer: guest attach failed (retrying): %s\n", last_error.c_str());
      if (g.status().code() == absl::StatusCode::kInvalidArgument) {
        error_ = last_error;  // a configuration that cannot work: do not retry
        exit_code_ = 1;
        return false;
      }
    }
    usleep(kAttachRetryUs);  // a retry interval while the switch starts; no traffic yet
  }
  error_ = "stopped before the guest attached";
  exit_code_ = 3;
  return false;
}

int GuestRunner::Run(GuestReport* report) {
  hz_ = TscHz();
  if (Attach()) {
    phase_ = "run";
    attach_tsc_ = ReadTsc();
    next_status_ = attach_tsc_;
    next_progress_ = attach_tsc_ + static_cast<uint64_t>(hz_);
    const uint64_t tick = static_cast<uint64_t>(kTickS * hz_);
    uint64_t next_tick = 0;
    while (*stop_ == 0) {
      const uint64_t now = ReadTsc();
      if (now >= next_tick) {
        Tick(now);
        next_tick = now + tick;
      }
      uint32_t work = guest_->Poll(checker_.get(), now);
      if (gen_on_) {
        const size_t n = gen_->Allowance(now, GuestPort::kBurst);
        if (n != 0) {
          const uint32_t made = guest_->Generate(*gen_, static_cast<uint32_t>(n), now);
          gen_generated_ += made;
          work += made;
        }
      }
      if (work == 0) IdleSleep(options_.idle_sleep_us);
    }
    end_tsc_ = ReadTsc();
    gen_on_ = false;
    phase_ = "detach";
    WriteStatus();
    guest_->Detach();  // the switch sees the guest leave; then the pool's canaries
    phase_ = "end";
  }
  Fill(report);
  WriteStatus();
  report->status_writes = status_writes_;
  return exit_code_;
}

void GuestRunner::Tick(uint64_t now) {
  if (gen_ != nullptr && !gen_started_ &&
      (options_.start_file.empty() || FileExists(options_.start_file))) {
    gen_started_ = gen_on_ = true;
    gen_end_tsc_ = now + static_cast<uint64_t>(options_.duration_s * hz_);
  }
  if (gen_on_ && (now >= gen_end_tsc_ || *finish_ != 0)) {
    gen_on_ = false;
    gen_done_ = true;
  }
  const uint64_t violations = guest_->canaries().violations;
  if (now >= next_status_ || violations != violations_seen_) {
    violations_seen_ = violations;
    next_status_ = now + static_cast<uint64_t>(kStatusIntervalS * hz_);
    WriteStatus();
  }
  if (now >= next_progress_) Progress(now);
}

void GuestRunner::Progress(uint64_t now) {
  const GuestCounters& c = guest_->counters();
  std::fprintf(stderr,
               "simnic_peer: %6.1f s guest rx %llu tx %llu drops %llu | gen %llu sent %llu | "
               "canary violations %llu\n",
               static_cast<double>(now - attach_tsc_) / hz_, static_cast<unsigned long long>(c.rx),
               static_cast<unsigned long long>(c.tx), static_cast<unsigned long long>(c.drops),
               static_cast<unsigned long long>(gen_generated_),
               static_cast<unsigned long long>(c.gen_sent),
               static_cast<unsigned long long>(guest_->canaries().violations));
  next_progress_ += static_cast<uint64_t>(hz_);
  if (next_progress_ <= now) next_progress_ = now + static_cast<uint64_t>(hz_);
}

void GuestRunner::WriteStatus() {
  if (options_.status_file.empty()) return;
  GuestReport r;
  Fill(&r);
  r.final = false;
  r.status_writes = status_writes_++;
  WriteFileAtomically(options_.status_file, GuestReportJson(r)).IgnoreError();
}

void GuestRunner::Fill(GuestReport* r) const {
  r->role = options_.guest_role == GuestRoleOption::kCheck ? "check" : "echo";
  r->phase = phase_;
  r->completed = exit_code_ == 0 && end_tsc_ != 0;
  r->error = error_;
  if (attach_tsc_ != 0) {
    r->run_s = static_cast<double>((end_tsc_ != 0 ? end_tsc_ : ReadTsc()) - attach_tsc_) / hz_;
  }
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
  if (checker_ != nullptr) {
    r->streams = checker_->Summarize();
    r->warmup = checker_->WarmUp();
    r->unexpected = checker_->unexpected();
  }
  r->gen_stream = options_.guest_gen_stream;
  r->size = options_.imix ? "imix" : absl::StrCat(options_.frame_size);
  r->rate_pps = options_.rate_pps;
  r->gen_started = gen_started_;
  r->gen_done = gen_done_;
  r->gen_generated = gen_generated_;
  if (gen_ != nullptr) {
    r->gen_per_flow.assign(gen_->sent_per_flow().begin(), gen_->sent_per_flow().end());
  }
}

}  // namespace iovtee::softnic
