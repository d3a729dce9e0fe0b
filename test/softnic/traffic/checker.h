// Traffic checker: verifies each received test frame (test_frame.h) and keeps
// per-flow sequence, loss and latency statistics.
//
// Tolerated on the way: MAC addresses swapped (a guest echoing frames), a
// VLAN tag pushed or stripped, IP addresses and UDP ports swapped together,
// a UDP checksum filled in. Everything else in the frame is checked: the
// IPv4 header checksum, lengths (IP, UDP, test header, frame), the test
// header's CRC, the pattern's CRC, and, when the checker has the flow table,
// the flow's addresses and VLAN TCI. One changed byte anywhere is caught.
#ifndef IOVTEE_TEST_SOFTNIC_TRAFFIC_CHECKER_H_
#define IOVTEE_TEST_SOFTNIC_TRAFFIC_CHECKER_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/types/span.h"
#include "test/softnic/traffic/generator.h"
#include "test/softnic/traffic/latency_histogram.h"

namespace iovtee::softnic {

enum class Verdict : uint8_t {
  kOk,         // a valid test frame, first time seen (in order or late)
  kDuplicate,  // valid, but this (flow, seq) was already received
  kCorrupted,  // has the test magic but fails a check
  kForeign,    // not a test frame (not IPv4/UDP, no magic, unknown flow)
};

struct CheckerOptions {
  uint32_t num_flows = 1;
  // When set (same table as the generator's), addresses and VLAN TCI are
  // checked against the flow; when empty, only the frame's own consistency.
  std::vector<FlowSpec> flows;
  // TSC rate for reporting in ns; 0 uses TscHz().
  double tsc_hz = 0;
};

struct FlowSummary {
  uint32_t flow = 0;
  uint64_t sent = 0;      // from the generator, if given
  uint64_t received = 0;  // unique valid frames
  uint64_t duplicates = 0;
  uint64_t reordered = 0;   // arrived after a later sequence number
  uint64_t gap_events = 0;  // times a sequence number was skipped
  uint64_t missing = 0;     // skipped and not (yet) arrived late: lost so far
  uint64_t lost = 0;        // sent - received when sent is known, else missing
};

struct LatencySummary {
  uint64_t count = 0;
  double min_ns = 0, p50_ns = 0, p99_ns = 0, p999_ns = 0, max_ns = 0, mean_ns = 0;
};

struct Summary {
  uint64_t frames = 0;  // everything handed to Check()
  uint64_t sent = 0;
  uint64_t received = 0;
  uint64_t duplicates = 0;
  uint64_t reordered = 0;
  uint64_t gap_events = 0;
  uint64_t lost = 0;
  uint64_t corrupted = 0;
  uint64_t foreign = 0;
  uint64_t too_late = 0;  // arrived more than the reorder window late (not dup-checked)
  LatencySummary latency;
  std::vector<FlowSummary> flows;

  // Every frame sent arrived once, intact, in order, and nothing else came.
  bool Clean() const {
    return lost == 0 && duplicates == 0 && reordered == 0 && corrupted == 0 && foreign == 0 &&
           received == sent;
  }
  // A few lines: totals, loss, errors, latency; then flows with problems.
  std::string ToString(size_t max_flow_lines = 8) const;
};

class Checker {
 public:
  // A late frame up to this many sequence numbers behind is checked for
  // duplication; older ones count as too_late (and as reordered).
  static constexpr uint32_t kReorderWindow = 1024;

  explicit Checker(CheckerOptions options);

  // Verifies one frame (Ethernet header first, no FCS), received at TSC
  // `now`. Cost: the frame's parse, a CRC of its payload (about 8 bytes per
  // cycle) and a few table updates; no allocation.
  Verdict Check(const uint8_t* frame, uint32_t len, uint64_t now);

  // Totals, per flow, and latency. `sent_per_flow` (from the generator) makes
  // "lost" = sent - received; empty: lost = sequence gaps not filled.
  Summary Summarize(absl::Span<const uint64_t> sent_per_flow = {}) const;

  const LatencyHistogram& latency() const { return latency_; }
  void Reset();

 private:
  struct FlowState {
    uint32_t next = 0;  // the sequence number expected next
    uint64_t received = 0;
    uint64_t duplicates = 0;
    uint64_t reordered = 0;
    uint64_t gap_events = 0;
    uint64_t missing = 0;
    uint64_t seen[kReorderWindow / 64] =
        {};  // bit s % window: seq s received, s in [next - window, next)
  };

  Verdict CheckIntegrity(const uint8_t* frame, uint32_t len, uint32_t* flow, uint32_t* seq,
                         uint32_t* timestamp) const;
  void Track(FlowState& f, uint32_t seq, Verdict* verdict);

  CheckerOptions options_;
  double tsc_hz_;
  std::vector<FlowState> flows_;
  LatencyHistogram latency_;
  uint64_t frames_ = 0;
  uint64_t corrupted_ = 0;
  uint64_t foreign_ = 0;
  uint64_t too_late_ = 0;
};

}  // namespace iovtee::softnic

#endif  // IOVTEE_TEST_SOFTNIC_TRAFFIC_CHECKER_H_
