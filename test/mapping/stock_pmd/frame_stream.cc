#include "test/mapping/stock_pmd/frame_stream.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "test/softnic/traffic/test_frame.h"
#include "test/softnic/traffic/tsc.h"

namespace iovtee::stock_pmd {

using softnic::Verdict;

absl::Status ParseFrameSize(const std::string& s, StreamConfig* config) {
  if (s == "imix") {
    config->size_mode = softnic::SizeMode::kImix;
    return absl::OkStatus();
  }
  uint32_t v = 0;
  if (!absl::SimpleAtoi(s, &v)) {
    return absl::InvalidArgumentError(absl::StrCat("bad frame size '", s, "': 64..9022 or imix"));
  }
  config->size_mode = softnic::SizeMode::kFixed;
  config->frame_size = v;  // range checked by the generator
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<FrameStream>> FrameStream::Create(const StreamConfig& config) {
  if (config.count == 0) return absl::InvalidArgumentError("count must be > 0");
  softnic::GeneratorConfig g;
  g.flows = softnic::MakeFlows(config.flows);
  g.size_mode = config.size_mode;
  g.frame_size = config.frame_size;
  auto generator = softnic::Generator::Create(g);
  if (!generator.ok()) return generator.status();
  return std::unique_ptr<FrameStream>(new FrameStream(config, std::move(*generator)));
}

FrameStream::FrameStream(const StreamConfig& config, std::unique_ptr<softnic::Generator> generator)
    : config_(config),
      generator_(std::move(generator)),
      checker_(softnic::CheckerOptions{config.flows, generator_->config().flows, 0}) {}

uint32_t FrameStream::NextFrame(uint8_t* buf, uint32_t cap) {
  if (generator_->sent() >= config_.count) return 0;
  return generator_->Next(buf, cap, softnic::ReadTsc());
}

Verdict FrameStream::Check(const uint8_t* frame, uint32_t len, uint64_t now_tsc) {
  Verdict v = checker_.Check(frame, len, now_tsc);
  if (v != Verdict::kOk) return v;
  // The checker allows padding after the IP datagram; these frames have none
  // on the way out, so any byte more or less is damage.
  const uint32_t ip_len =
      (uint32_t{frame[softnic::kEthHeaderLen + 2]} << 8) | frame[softnic::kEthHeaderLen + 3];
  if (len != softnic::kEthHeaderLen + ip_len) return Verdict::kCorrupted;
  const softnic::TestHeader h = softnic::LoadTestHeader(
      frame + softnic::kEthHeaderLen + softnic::kIpv4HeaderLen + softnic::kUdpHeaderLen);
  // Flows take turns in the generator: frame i is flow i % F, seq i / F.
  const uint64_t index = uint64_t{h.seq} * config_.flows + h.flow;
  if (index < next_index_) {
    ++out_of_order_;
  } else {
    if (index > next_index_ && gaps_++ == 0) first_missing_ = next_index_;
    next_index_ = index + 1;
  }
  ++good_;
  return v;
}

bool FrameStream::Passed(std::string* report, bool with_latency) const {
  std::vector<uint64_t> sent(config_.flows);
  for (uint32_t f = 0; f < config_.flows; ++f) {
    sent[f] = config_.count / config_.flows + (f < config_.count % config_.flows ? 1 : 0);
  }
  const softnic::Summary s = checker_.Summarize(sent);
  const bool ok = s.Clean() && good_ == config_.count && out_of_order_ == 0;
  *report = absl::StrFormat(
      "frames back %u: valid %u of %u sent, lost %u, duplicates %u, reordered %u (across flows "
      "%u), corrupted %u, foreign %u",
      s.frames, good_, config_.count, s.lost, s.duplicates, s.reordered, out_of_order_, s.corrupted,
      s.foreign);
  if (gaps_ > 0) absl::StrAppend(report, absl::StrFormat(", first missing #%u", first_missing_));
  if (with_latency && s.latency.count > 0) {
    absl::StrAppend(report, absl::StrFormat("; round trip p50 %.1f us, p99 %.1f us, max %.1f us",
                                            s.latency.p50_ns / 1e3, s.latency.p99_ns / 1e3,
                                            s.latency.max_ns / 1e3));
  }
  return ok;
}

}  // namespace iovtee::stock_pmd
