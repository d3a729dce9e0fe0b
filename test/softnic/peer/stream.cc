#include "test/softnic/peer/stream.h"

#include <algorithm>
#include <cstring>

#include "test/softnic/traffic/test_frame.h"

namespace iovtee::softnic {

std::vector<FlowSpec> StreamFlows(uint32_t stream, uint32_t flows, const uint8_t dst_mac[6],
                                  bool warmup) {
  FlowSpec base;
  std::memcpy(base.dst_mac, dst_mac, 6);
  base.src_ip = warmup ? kWarmUpSrcIp : StreamSrcIp(stream);
  std::vector<FlowSpec> out = MakeFlows(flows, base);
  // Distinct source MACs, so a learning switch sees one station per flow and
  // an echo goes back to it.
  for (uint32_t i = 0; i < flows; ++i) {
    const uint8_t mac[6] = {0x02,
                            0,
                            0,
                            static_cast<uint8_t>(stream),
                            static_cast<uint8_t>(i >> 8),
                            static_cast<uint8_t>(i)};
    std::memcpy(out[i].src_mac, mac, 6);
  }
  return out;
}

FrameClass ClassifyFrame(const uint8_t* frame, uint32_t len) {
  FrameClass c;
  constexpr uint32_t kSrcIp = kEthHeaderLen + 12;
  if (len < kSrcIp + 4 || frame[12] != 0x08 || frame[13] != 0x00) return c;
  const uint8_t* ip = frame + kSrcIp;
  if (ip[0] == 10) {
    c.kind = FrameClass::kTest;
    c.stream = ip[1];
  } else if (ip[0] == (kWarmUpSrcIp >> 24) && ip[1] == ((kWarmUpSrcIp >> 16) & 0xff)) {
    c.kind = FrameClass::kWarmUp;
  }
  return c;
}

StreamChecker::StreamChecker(absl::Span<const StreamExpect> streams, const uint8_t own_mac[6],
                             VerifyMode verify) {
  uint32_t max_flows = 1;
  for (const StreamExpect& e : streams) {
    CheckerOptions co;
    co.num_flows = e.flows;
    co.flows = StreamFlows(e.stream, e.flows, own_mac);
    co.verify = verify;
    streams_.push_back({e.stream, std::make_unique<Checker>(std::move(co))});
    by_stream_[e.stream & 0xff] = streams_.back().checker.get();
    max_flows = std::max(max_flows, e.flows);
  }
  CheckerOptions wo;
  wo.num_flows = max_flows;  // no table: integrity only (any stream's warm-up)
  wo.verify = verify;
  warmup_ = std::make_unique<Checker>(std::move(wo));
}

void StreamChecker::Check(const uint8_t* frame, uint32_t len, uint64_t now) {
  const FrameClass c = ClassifyFrame(frame, len);
  if (c.kind == FrameClass::kWarmUp) {
    warmup_->Check(frame, len, now);
  } else if (c.kind == FrameClass::kTest && by_stream_[c.stream] != nullptr) {
    by_stream_[c.stream]->Check(frame, len, now);
  } else {
    ++unexpected_;
  }
}

std::vector<StreamChecker::Result> StreamChecker::Summarize() const {
  std::vector<Result> out;
  for (const Entry& e : streams_) out.push_back({e.stream, e.checker->Summarize()});
  return out;
}

}  // namespace iovtee::softnic
