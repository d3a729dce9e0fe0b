// A fixed run of traffic-generator frames and the check of what came back:
// the generator makes `count` frames (flows taking turns), and every frame
// that returns is verified by the traffic checker (headers, lengths, payload
// CRC; MACs swapped by the guest are fine) and for order across all flows.
// The verdict is strict: exactly `count` frames back, each once, intact, in
// the order sent, and nothing else.
#ifndef IOVTEE_TEST_MAPPING_STOCK_PMD_FRAME_STREAM_H_
#define IOVTEE_TEST_MAPPING_STOCK_PMD_FRAME_STREAM_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "test/softnic/traffic/checker.h"
#include "test/softnic/traffic/generator.h"

namespace iovtee::stock_pmd {

struct StreamConfig {
  uint64_t count = 1000;
  softnic::SizeMode size_mode = softnic::SizeMode::kFixed;
  uint32_t frame_size = 64;  // RFC 2544 size (with FCS), softnic/traffic/test_frame.h
  uint32_t flows = 4;
};

// "64".."9022" or "imix".
absl::Status ParseFrameSize(const std::string& s, StreamConfig* config);

class FrameStream {
 public:
  static absl::StatusOr<std::unique_ptr<FrameStream>> Create(const StreamConfig& config);

  // Writes the next frame into buf and returns its length; 0 once `count`
  // frames have been made (or the frame does not fit in `cap`).
  uint32_t NextFrame(uint8_t* buf, uint32_t cap);
  uint64_t generated() const { return generator_->sent(); }
  uint32_t max_frame_len() const { return generator_->max_length(); }

  // Verifies one returned frame (Ethernet header first, no FCS).
  softnic::Verdict Check(const uint8_t* frame, uint32_t len, uint64_t now_tsc);
  // Valid test frames back so far (first copies only).
  uint64_t good() const { return good_; }

  // True when exactly `count` frames came back, each once, intact, in order,
  // and nothing else did. `report` gets a one-line summary (latency only
  // when `with_latency`: it means something only if frames were checked as
  // they arrived).
  bool Passed(std::string* report, bool with_latency) const;

 private:
  FrameStream(const StreamConfig& config, std::unique_ptr<softnic::Generator> generator);

  StreamConfig config_;
  std::unique_ptr<softnic::Generator> generator_;
  softnic::Checker checker_;
  uint64_t good_ = 0;
  uint64_t next_index_ = 0;     // generation index expected next
  uint64_t out_of_order_ = 0;   // frames older than one already seen
  uint64_t first_missing_ = 0;  // first index skipped (valid when gaps_ > 0)
  uint64_t gaps_ = 0;
};

}  // namespace iovtee::stock_pmd

#endif  // IOVTEE_TEST_MAPPING_STOCK_PMD_FRAME_STREAM_H_
