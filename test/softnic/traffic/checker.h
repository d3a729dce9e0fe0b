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

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
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

// How much of each frame the checker reads. Every mode checks every frame's
// headers (Ethernet, IPv4 with its checksum, UDP, lengths, the flow's
// addresses and VLAN) and its test header (flow, sequence number, timestamp
// and length, against the check field), and counts every frame: sequence,
// loss, duplicates, reordering, latency. The modes differ only in the
// payload (the pattern after the test header, and a UDP checksum someone
// filled in):
//   all        every frame's payload is read and checked (the default; what
//              tests use)
//   sample:N   the payload of one frame in N (the first, then every Nth)
//   headers    no payload is read
// Without the payload, the test header is checked against the CRC of the
// pattern the frame's flow and length call for (computed once per flow and
// length). For throughput runs at large frames, where reading the payload
// costs the tester more than the switch's copy of it.
struct VerifyMode {
  uint32_t payload_every = 1;  // 1: all; N: sample:N; 0: headers

  // "all", "headers", "sample:N" (N >= 1; sample:1 is all).
  static absl::StatusOr<VerifyMode> Parse(absl::string_view text);
  std::string ToString() const;
};

struct CheckerOptions {
  uint32_t num_flows = 1;
  // When set (same table as the generator's), addresses and VLAN TCI are
  // checked against the flow; when empty, only the frame's own consistency.
  std::vector<FlowSpec> flows;
  // TSC rate for reporting in ns; 0 uses TscHz().
  double tsc_hz = 0;
  VerifyMode verify;
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
  uint64_t too_late = 0;         // arrived more than the reorder window late (not dup-checked)
  uint64_t payload_checked = 0;  // test frames whose payload was read and checked (VerifyMode)
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
  // `now`. Cost: the frame's parse (about a hundred instructions), a CRC of
  // its payload (about 8 bytes per cycle; as options.verify says) and a few
  // table updates; no allocation.
  Verdict Check(const uint8_t* frame, uint32_t len, uint64_t now);

  // Totals, per flow, and latency. `sent_per_flow` (from the generator) makes
  // "lost" = sent - received; empty: lost = sequence gaps not filled.
  Summary Summarize(absl::Span<const uint64_t> sent_per_flow = {}) const;

  const LatencyHistogram& latency() const { return latency_; }
  void Reset();

 private:
  // A frame layout of one flow that passed every header check: its length
  // and its bytes before the test header (Ethernet [+ tag], IPv4, UDP: 42 or
  // 46 bytes, kept as 48 with the rest masked off). A frame of that flow with
  // the same length and the same bytes passes the same checks, so its bytes
  // are compared instead (a few instructions). IMIX flows have three.
  struct Shape {
    uint32_t len = 0;  // frame length; 0: empty
    uint16_t payload_len = 0;
    bool pattern_known = false;
    uint32_t pattern_crc = 0;  // of the pattern this flow and payload_len call for
    uint64_t head[6] = {};
    uint64_t last_mask = 0;  // the bytes of head[5] that belong to the headers
  };
  static constexpr int kShapes = 3;
  struct FlowState {
    uint32_t next = 0;  // the sequence number expected next
    uint64_t received = 0;
    uint64_t duplicates = 0;
    uint64_t reordered = 0;
    uint64_t gap_events = 0;
    uint64_t missing = 0;
    uint64_t seen[kReorderWindow / 64] =
        {};  // bit s % window: seq s received, s in [next - window, next)
    Shape shapes[kShapes];
    uint32_t next_shape = 0;  // the entry to replace next
  };
  // A flow's addresses as the frame holds them, forward [0] and swapped [1]:
  // destination and source MAC (bytes 0..11), IPv4 addresses and UDP ports
  // (IPv4 header bytes 12..23), as 8 + 4 bytes each.
  struct FlowImage {
    uint64_t macs8[2];
    uint32_t macs4[2];
    uint64_t addrs8[2];
    uint32_t addrs4[2];
    int32_t vlan_tci;
  };

  Verdict CheckIntegrity(const uint8_t* frame, uint32_t len, uint32_t* flow, uint32_t* seq,
                         uint32_t* timestamp);
  // Every check, for a frame whose shape is not known yet; records it.
  Verdict CheckFull(const uint8_t* frame, uint32_t len, uint32_t l3, int tci, uint32_t* flow,
                    uint32_t* seq, uint32_t* timestamp);
  // Whether this frame's payload is read (VerifyMode).
  bool ReadPayload() {
    if (--payload_countdown_ != 0) return false;
    payload_countdown_ = options_.verify.payload_every;
    return true;
  }
  // The CRC of the pattern `flow` and `pattern_len` call for (the
  // generator's), computed once per shape.
  uint32_t PatternCrc(Shape* shape, uint32_t flow, uint32_t pattern_len);
  void Track(FlowState& f, uint32_t seq, Verdict* verdict);

  CheckerOptions options_;
  double tsc_hz_;
  std::vector<FlowState> flows_;
  std::vector<FlowImage> images_;  // per flow of options_.flows
  uint32_t num_flows_ = 0;
  uint64_t payload_countdown_ = 1;
  std::vector<uint8_t> pattern_;  // scratch for PatternCrc
  LatencyHistogram latency_;
  uint64_t frames_ = 0;
  uint64_t corrupted_ = 0;
  uint64_t foreign_ = 0;
  uint64_t too_late_ = 0;
  uint64_t payload_checked_ = 0;
};

}  // namespace iovtee::softnic

#endif  // IOVTEE_TEST_SOFTNIC_TRAFFIC_CHECKER_H_
