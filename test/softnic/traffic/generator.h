// Traffic generator: UDP test frames (test_frame.h) for N flows, of one
// frame size or the simple IMIX, paced to a rate or as fast as asked.
//
// Fast by construction: every (flow, size) has a prebuilt header template
// and a precomputed pattern CRC, so a frame costs a copy of the headers,
// 18 bytes of test header with a 14-byte CRC (three instructions), and the
// pattern fill (a copy with an xor). Into a buffer that already holds the
// same (flow, size) from an earlier call (the caller keeps an image tag per
// buffer), only the per-frame fields are written: sequence number,
// timestamp and check, 12 bytes. Frames go straight into caller-provided
// buffers, which may be the device's DMA source or destination. No
// allocation after Create.
#ifndef IOVTEE_TEST_SOFTNIC_TRAFFIC_GENERATOR_H_
#define IOVTEE_TEST_SOFTNIC_TRAFFIC_GENERATOR_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace iovtee::softnic {

// One flow: addresses as they appear in the frame.
struct FlowSpec {
  uint8_t dst_mac[6] = {0x02, 0, 0, 0, 0, 0x01};
  uint8_t src_mac[6] = {0x02, 0, 0, 0, 0, 0x02};
  int32_t vlan_tci = -1;         // -1: untagged; else the 802.1Q TCI (PCP, DEI, VID)
  uint32_t src_ip = 0x0a000001;  // host byte order: 10.0.0.1
  uint32_t dst_ip = 0x0a000002;
  uint16_t src_port = 1024;
  uint16_t dst_port = 5001;
};

// `n` flows from `base`: flow i has src_ip + i and src_port + i (mod 2^16),
// so RSS spreads them; MACs, VLAN, dst_ip and dst_port are base's.
std::vector<FlowSpec> MakeFlows(uint32_t n, const FlowSpec& base = {});

enum class SizeMode {
  kFixed,  // every frame frame_size
  kImix,   // 64/570/1518 in the ratio 7:4:1 (the simple IMIX)
};

struct GeneratorConfig {
  std::vector<FlowSpec> flows = MakeFlows(1);  // 1..65536 flows
  SizeMode size_mode = SizeMode::kFixed;
  uint32_t frame_size = 64;  // RFC 2544 size with FCS (test_frame.h): 64..9022
  double rate_pps = 0;       // 0: no pacing (Allowance returns what is asked)
};

class Generator {
 public:
  // The IMIX sizes (RFC 2544 convention) and how many of each per 12 frames.
  static constexpr uint32_t kImixSizes[3] = {64, 570, 1518};
  static constexpr uint32_t kImixWeights[3] = {7, 4, 1};

  // Fails on no flows or more than 65536, a frame size outside 64..9022 (or
  // above 9018 bytes with a VLAN tag), or a negative rate. Builds the
  // templates: about 1 us per (flow, size) at 1518 B.
  static absl::StatusOr<std::unique_ptr<Generator>> Create(GeneratorConfig config);

  // Bytes of the next frame, and of the largest frame this generator makes.
  uint32_t next_length() const;
  uint32_t max_length() const { return max_length_; }

  // Writes the next frame to buf, stamped with `tsc`, and returns its length;
  // 0 when it does not fit in `cap` bytes (nothing is consumed then). Flows
  // take turns; in IMIX mode each flow cycles through the 12-frame size
  // pattern, so any 12 * num_flows consecutive frames have the exact mix.
  uint32_t Next(uint8_t* buf, uint32_t cap, uint64_t tsc) { return Next(buf, cap, tsc, nullptr); }

  // Next() into a buffer the caller keeps from call to call (a staging
  // buffer), with its image tag `*image`: which frame image the buffer holds
  // (0: unknown; tags are unique across generators). When the buffer holds
  // this frame's (flow, size) already, only the sequence number, timestamp
  // and check are written; otherwise the whole frame, and `*image` is
  // updated. Whoever else writes to the buffer must reset its tag to 0.
  // `image` may be null (the whole frame, always).
  uint32_t Next(uint8_t* buf, uint32_t cap, uint64_t tsc, uint64_t* image);

  // Next() into bufs[i] (each `cap` bytes) until one does not fit; lens[i]
  // gets each length. Returns the number written. `images`, when not empty,
  // holds the image tag of each buffer (as above).
  size_t NextBurst(absl::Span<uint8_t* const> bufs, uint32_t cap, absl::Span<uint32_t> lens,
                   uint64_t tsc, absl::Span<uint64_t> images = {});

  // Pacing: how many frames may go out at `tsc` (at most `max`) to hold
  // rate_pps, counting them as taken. A caller that falls behind catches up
  // by at most `max` frames per call and never by more than 1 ms of credit,
  // so a stall does not become a burst of everything owed.
  size_t Allowance(uint64_t tsc, size_t max);

  uint64_t sent() const { return sent_; }
  // Frames generated per flow (index = flow id), for the checker's loss.
  absl::Span<const uint64_t> sent_per_flow() const { return sent_per_flow_; }
  const GeneratorConfig& config() const { return config_; }

 private:
  struct Template {
    uint8_t headers[46];  // Ethernet [+ tag] + IPv4 + UDP
    uint32_t header_len;
    uint32_t frame_len;
    uint32_t pattern_len;
    uint32_t pattern_crc;
    uint32_t magic_flow;   // test header bytes 0..3 (little-endian)
    uint16_t payload_len;  // test header bytes 12..13
  };
  static constexpr int kSlots = 12;

  explicit Generator(GeneratorConfig config) : config_(std::move(config)) {}
  // Index of the next frame's template (flow_ * num_sizes_ + size).
  uint32_t NextTemplate() const {
    if (num_sizes_ == 1) return flow_;
    return flow_ * num_sizes_ + slot_size_[(flow_ + round_) % kSlots];
  }
  // Everything of template `t`'s frame but sequence number, timestamp, check.
  static void WriteImage(uint8_t* buf, const Template& t, uint32_t flow);

  GeneratorConfig config_;
  uint64_t image_base_ = 0;  // this generator's image tags: base | (template + 1)
  uint32_t num_flows_ = 1;
  uint32_t num_sizes_ = 1;
  uint8_t slot_size_[kSlots] = {};   // IMIX: which size each slot of 12 uses
  std::vector<Template> templates_;  // [flow * num_sizes_ + size]
  uint32_t max_length_ = 0;
  // Position in the frame sequence: frames generated so far, as flow =
  // count % num_flows and round = count / num_flows (mod kSlots).
  uint32_t flow_ = 0;
  uint32_t round_ = 0;
  std::vector<uint64_t> sent_per_flow_;
  uint64_t sent_ = 0;

  // Pacing state, in TSC cycles.
  double cycles_per_frame_ = 0;
  double next_tsc_ = -1;
  double max_credit_ = 0;
};

}  // namespace iovtee::softnic

#endif  // IOVTEE_TEST_SOFTNIC_TRAFFIC_GENERATOR_H_
