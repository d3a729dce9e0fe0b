#include "test/softnic/traffic/generator.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "test/softnic/traffic/crc32c.h"
#include "test/softnic/traffic/test_frame.h"
#include "test/softnic/traffic/tsc.h"

namespace iovtee::softnic {
namespace {

// The IMIX slots of 12 frames, sizes interleaved so a short window is mixed
// too: 7 x 64 (index 0), 4 x 570 (1), 1 x 1518 (2).
constexpr uint8_t kImixSlots[12] = {0, 1, 0, 2, 0, 1, 0, 0, 1, 0, 1, 0};
constexpr uint32_t kMaxFrameSize = kMaxFrameBytes + kFcsLen;

void StoreBe16(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
void StoreBe32(uint8_t* p, uint32_t v) {
  StoreBe16(p, v >> 16);
  StoreBe16(p + 2, v);
}

}  // namespace

std::vector<FlowSpec> MakeFlows(uint32_t n, const FlowSpec& base) {
  std::vector<FlowSpec> flows(n, base);
  for (uint32_t i = 0; i < n; ++i) {
    flows[i].src_ip = base.src_ip + i;
    flows[i].src_port = static_cast<uint16_t>(base.src_port + i);
  }
  return flows;
}

absl::StatusOr<std::unique_ptr<Generator>> Generator::Create(GeneratorConfig config) {
  const size_t nflows = config.flows.size();
  if (nflows == 0 || nflows > 65536) {
    return absl::InvalidArgumentError(absl::StrCat("need 1..65536 flows, got ", nflows));
  }
  if (!(config.rate_pps >= 0)) return absl::InvalidArgumentError("rate_pps must be >= 0");
  std::vector<uint32_t> sizes;
  if (config.size_mode == SizeMode::kImix) {
    sizes.assign(std::begin(kImixSizes), std::end(kImixSizes));
  } else {
    sizes.push_back(config.frame_size);
  }
  bool tagged = false;
  for (const FlowSpec& f : config.flows) tagged |= f.vlan_tci >= 0;
  for (uint32_t size : sizes) {
    uint32_t limit = tagged ? kMaxFrameSize - kVlanTagLen : kMaxFrameSize;
    if (size < kMinFrameSize || size > limit) {
      return absl::InvalidArgumentError(absl::StrCat("frame size ", size, " is outside ",
                                                     kMinFrameSize, "..", limit,
                                                     tagged ? " (VLAN-tagged flows)" : ""));
    }
  }
  auto g = std::unique_ptr<Generator>(new Generator(std::move(config)));
  static std::atomic<uint32_t> next_id{1};
  g->image_base_ = uint64_t{next_id.fetch_add(1)} << 32;
  g->num_flows_ = static_cast<uint32_t>(nflows);
  g->num_sizes_ = static_cast<uint32_t>(sizes.size());
  for (int i = 0; i < kSlots; ++i) g->slot_size_[i] = g->num_sizes_ == 1 ? 0 : kImixSlots[i];
  g->templates_.resize(nflows * sizes.size());
  g->sent_per_flow_.assign(nflows, 0);
  std::vector<uint8_t> pattern(kMaxPatternLen);
  for (size_t fi = 0; fi < nflows; ++fi) {
    const FlowSpec& f = g->config_.flows[fi];
    for (size_t si = 0; si < sizes.size(); ++si) {
      Template& t = g->templates_[fi * sizes.size() + si];
      memset(&t, 0, sizeof(t));
      uint8_t* h = t.headers;
      memcpy(h, f.dst_mac, 6);
      memcpy(h + 6, f.src_mac, 6);
      uint32_t l3 = kEthHeaderLen;
      if (f.vlan_tci >= 0) {
        StoreBe16(h + 12, 0x8100);
        StoreBe16(h + 14, static_cast<uint32_t>(f.vlan_tci));
        l3 += kVlanTagLen;
      }
      StoreBe16(h + l3 - 2, 0x0800);
      t.frame_len = FrameBytes(sizes[si]) + (f.vlan_tci >= 0 ? kVlanTagLen : 0);
      t.header_len = l3 + kIpv4HeaderLen + kUdpHeaderLen;
      uint32_t ip_len = t.frame_len - l3;
      uint8_t* ip = h + l3;
      ip[0] = 0x45;
      StoreBe16(ip + 2, ip_len);
      StoreBe16(ip + 6, 0x4000);  // DF
      ip[8] = 64;
      ip[9] = 17;
      StoreBe32(ip + 12, f.src_ip);
      StoreBe32(ip + 16, f.dst_ip);
      StoreBe16(ip + 10, Ipv4HeaderChecksum(ip));
      uint8_t* udp = ip + kIpv4HeaderLen;
      StoreBe16(udp, f.src_port);
      StoreBe16(udp + 2, f.dst_port);
      StoreBe16(udp + 4, ip_len - kIpv4HeaderLen);
      t.pattern_len = t.frame_len - t.header_len - kTestHeaderLen;
      FillPattern(pattern.data(), static_cast<uint32_t>(fi), t.pattern_len);
      t.pattern_crc = Crc32c(pattern.data(), t.pattern_len);
      t.magic_flow = kTestMagic | static_cast<uint32_t>(fi) << 16;
      t.payload_len = static_cast<uint16_t>(kTestHeaderLen + t.pattern_len);
      g->max_length_ = std::max(g->max_length_, t.frame_len);
    }
  }
  if (g->config_.rate_pps > 0) {
    g->cycles_per_frame_ = TscHz() / g->config_.rate_pps;
    g->max_credit_ = TscHz() / 1000;
  }
  return g;
}

uint32_t Generator::next_length() const { return templates_[NextTemplate()].frame_len; }

void Generator::WriteImage(uint8_t* buf, const Template& t, uint32_t flow) {
  memcpy(buf, t.headers, t.header_len);
  uint8_t* th = buf + t.header_len;
  memcpy(th, &t.magic_flow, 4);
  memcpy(th + 12, &t.payload_len, 2);
  FillPattern(th + kTestHeaderLen, flow, t.pattern_len);
}

uint32_t Generator::Next(uint8_t* buf, uint32_t cap, uint64_t tsc, uint64_t* image) {
  const uint32_t flow = flow_;
  const uint32_t ti = NextTemplate();
  const Template& t = templates_[ti];
  if (cap < t.frame_len) return 0;
  const uint64_t tag = image_base_ | (ti + 1);
  if (image == nullptr || *image != tag) {
    WriteImage(buf, t, flow);
    if (image != nullptr) *image = tag;
  }
  // The per-frame fields: test header bytes 4..11 and 14..17.
  uint8_t* th = buf + t.header_len;
  const uint64_t seq = static_cast<uint32_t>(sent_per_flow_[flow]++);
  const uint32_t ts = static_cast<uint32_t>(tsc >> kTimestampShift);
  const uint32_t check = TestHeaderCrc(t.magic_flow | seq << 32, ts, t.payload_len) ^ t.pattern_crc;
  const uint64_t seq_ts = seq | uint64_t{ts} << 32;
  memcpy(th + 4, &seq_ts, 8);
  memcpy(th + 14, &check, 4);
  ++sent_;
  if (++flow_ == num_flows_) {
    flow_ = 0;
    if (++round_ == kSlots) round_ = 0;
  }
  return t.frame_len;
}

size_t Generator::NextBurst(absl::Span<uint8_t* const> bufs, uint32_t cap,
                            absl::Span<uint32_t> lens, uint64_t tsc, absl::Span<uint64_t> images) {
  const size_t n = std::min(bufs.size(), lens.size());
  uint64_t* tags = images.size() >= n ? images.data() : nullptr;
  for (size_t i = 0; i < n; ++i) {
    lens[i] = Next(bufs[i], cap, tsc, tags != nullptr ? tags + i : nullptr);
    if (lens[i] == 0) return i;
  }
  return n;
}

size_t Generator::Allowance(uint64_t tsc, size_t max) {
  if (cycles_per_frame_ == 0 || max == 0) return max;
  double now = static_cast<double>(tsc);
  if (next_tsc_ < 0) next_tsc_ = now;
  if (now - next_tsc_ > max_credit_) next_tsc_ = now - max_credit_;
  if (now < next_tsc_) return 0;
  size_t due = static_cast<size_t>((now - next_tsc_) / cycles_per_frame_) + 1;
  size_t n = std::min(due, max);
  next_tsc_ += static_cast<double>(n) * cycles_per_frame_;
  return n;
}

}  // namespace iovtee::softnic
