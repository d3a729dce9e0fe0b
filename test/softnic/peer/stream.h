// Generator streams: several generators (the soft NIC's, a guest's) feeding
// one receiver, each frame telling which stream it belongs to, so a checking
// guest verifies each stream on its own (sequence per flow, payload CRC,
// addresses, count).
//
// Stream S (1..255), flow i (i < 65535):
//   source IP   10.S.0.1 + i        (warm-up frames: 192.168.0.1 + i)
//   source MAC  02:00:00:SS:ii:ii   (distinct per flow and stream)
//   UDP ports   1024 + i -> 5001, destination IP 10.0.0.2
//   destination MAC: the receiving guest's.
// The soft NIC's generator is stream 1 unless told otherwise (--stream).
#ifndef IOVTEE_TEST_SOFTNIC_PEER_STREAM_H_
#define IOVTEE_TEST_SOFTNIC_PEER_STREAM_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/types/span.h"
#include "test/softnic/traffic/checker.h"
#include "test/softnic/traffic/generator.h"

namespace iovtee::softnic {

inline constexpr uint32_t kWarmUpSrcIp = 0xc0a80001;  // 192.168.0.1
inline constexpr uint32_t kMaxStreamFlows = 65535;

// Source IP of flow 0 of `stream`'s test frames.
inline constexpr uint32_t StreamSrcIp(uint32_t stream) { return 0x0a000001 | stream << 16; }

// The flow table of `stream` (test frames from StreamSrcIp, or warm-up frames
// when `warmup`), every flow addressed to `dst_mac`.
std::vector<FlowSpec> StreamFlows(uint32_t stream, uint32_t flows, const uint8_t dst_mac[6],
                                  bool warmup = false);

// What a received frame is, from its IPv4 source address (untagged frames).
struct FrameClass {
  enum Kind { kTest, kWarmUp, kOther } kind = kOther;
  uint32_t stream = 0;  // kTest
};
FrameClass ClassifyFrame(const uint8_t* frame, uint32_t len);

struct StreamExpect {
  uint32_t stream = 1;
  uint32_t flows = 4;
};

// Verifies frames of the expected streams, each against its own flow table
// (addressed to `own_mac`); warm-up frames are checked for integrity only;
// anything else is counted as unexpected. No allocation in Check().
class StreamChecker {
 public:
  StreamChecker(absl::Span<const StreamExpect> streams, const uint8_t own_mac[6],
                VerifyMode verify = {});

  void Check(const uint8_t* frame, uint32_t len, uint64_t now);

  struct Result {
    uint32_t stream = 0;
    Summary summary;  // lost = sequence gaps not filled (the sender's count is elsewhere)
  };
  std::vector<Result> Summarize() const;
  Summary WarmUp() const { return warmup_->Summarize(); }
  uint64_t unexpected() const { return unexpected_; }  // not a frame of an expected stream

 private:
  struct Entry {
    uint32_t stream;
    std::unique_ptr<Checker> checker;
  };
  std::vector<Entry> streams_;
  Checker* by_stream_[256] = {};  // into streams_
  std::unique_ptr<Checker> warmup_;
  uint64_t unexpected_ = 0;
};

}  // namespace iovtee::softnic

#endif  // IOVTEE_TEST_SOFTNIC_PEER_STREAM_H_
