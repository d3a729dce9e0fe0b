#include "test/softnic/traffic/checker.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "test/softnic/traffic/crc32c.h"
#include "test/softnic/traffic/test_frame.h"
#include "test/softnic/traffic/tsc.h"

namespace iovtee::softnic {
namespace {

inline uint16_t LoadBe16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
template <typename T>
inline T Load(const uint8_t* p) {
  T v;
  memcpy(&v, p, sizeof(v));
  return v;
}

// A UDP checksum someone filled in on the way (checksum offload, a guest's
// stack) must be right.
bool UdpChecksumOk(const uint8_t* ip, const uint8_t* udp, uint32_t udp_len) {
  uint64_t sum = 0;
  for (int i = 12; i < 20; i += 2) sum += LoadBe16(ip + i);
  sum += 17 + udp_len;
  uint32_t i = 0;
  for (; i + 1 < udp_len; i += 2) sum += LoadBe16(udp + i);
  if (i < udp_len) sum += uint32_t{udp[i]} << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return sum == 0xffff;
}

void StoreBe(uint8_t* p, uint32_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i, v >>= 8) p[i] = static_cast<uint8_t>(v);
}

std::string Ns(double ns) {
  if (ns >= 1e6) return absl::StrFormat("%.2f ms", ns / 1e6);
  if (ns >= 1e3) return absl::StrFormat("%.2f us", ns / 1e3);
  return absl::StrFormat("%.0f ns", ns);
}

}  // namespace

absl::StatusOr<VerifyMode> VerifyMode::Parse(absl::string_view text) {
  VerifyMode m;
  if (text == "all") return m;
  if (text == "headers") {
    m.payload_every = 0;
    return m;
  }
  uint32_t n = 0;
  if (absl::ConsumePrefix(&text, "sample:") && absl::SimpleAtoi(text, &n) && n >= 1) {
    m.payload_every = n;
    return m;
  }
  return absl::InvalidArgumentError("expected all, headers or sample:N (N >= 1)");
}

std::string VerifyMode::ToString() const {
  if (payload_every == 1) return "all";
  if (payload_every == 0) return "headers";
  return absl::StrCat("sample:", payload_every);
}

Checker::Checker(CheckerOptions options)
    : options_(std::move(options)),
      tsc_hz_(options_.tsc_hz > 0 ? options_.tsc_hz : TscHz()),
      flows_(std::max<uint32_t>(options_.num_flows, 1)),
      num_flows_(static_cast<uint32_t>(flows_.size())),
      payload_countdown_(options_.verify.payload_every == 0 ? UINT64_MAX : 1),
      pattern_(kMaxPatternLen) {
  for (const FlowSpec& f : options_.flows) {
    uint8_t macs[2][12], addrs[2][12];
    memcpy(macs[0], f.dst_mac, 6);
    memcpy(macs[0] + 6, f.src_mac, 6);
    memcpy(macs[1], f.src_mac, 6);
    memcpy(macs[1] + 6, f.dst_mac, 6);
    for (int d = 0; d < 2; ++d) {
      StoreBe(addrs[d] + 0, d == 0 ? f.src_ip : f.dst_ip, 4);
      StoreBe(addrs[d] + 4, d == 0 ? f.dst_ip : f.src_ip, 4);
      StoreBe(addrs[d] + 8, d == 0 ? f.src_port : f.dst_port, 2);
      StoreBe(addrs[d] + 10, d == 0 ? f.dst_port : f.src_port, 2);
    }
    FlowImage im;
    for (int d = 0; d < 2; ++d) {
      im.macs8[d] = Load<uint64_t>(macs[d]);
      im.macs4[d] = Load<uint32_t>(macs[d] + 8);
      im.addrs8[d] = Load<uint64_t>(addrs[d]);
      im.addrs4[d] = Load<uint32_t>(addrs[d] + 8);
    }
    im.vlan_tci = f.vlan_tci;
    images_.push_back(im);
  }
}

void Checker::Reset() {
  std::fill(flows_.begin(), flows_.end(), FlowState{});  // shapes too
  latency_ = LatencyHistogram{};
  frames_ = corrupted_ = foreign_ = too_late_ = payload_checked_ = 0;
  payload_countdown_ = options_.verify.payload_every == 0 ? UINT64_MAX : 1;
}

uint32_t Checker::PatternCrc(Shape* shape, uint32_t flow, uint32_t pattern_len) {
  if (shape != nullptr && shape->pattern_known) return shape->pattern_crc;
  FillPattern(pattern_.data(), flow, pattern_len);
  const uint32_t crc = Crc32c(pattern_.data(), pattern_len);
  if (shape != nullptr) {
    shape->pattern_crc = crc;
    shape->pattern_known = true;
  }
  return crc;
}

Verdict Checker::CheckIntegrity(const uint8_t* frame, uint32_t len, uint32_t* flow, uint32_t* seq,
                                uint32_t* timestamp) {
  constexpr uint32_t kHeaders = kIpv4HeaderLen + kUdpHeaderLen + kTestHeaderLen;
  if (__builtin_expect(len < kEthHeaderLen + kHeaders, 0)) return Verdict::kForeign;
  uint32_t l3 = kEthHeaderLen;
  int tci = -1;
  if (__builtin_expect(LoadBe16(frame + 12) != 0x0800, 0)) {
    const uint16_t ethertype = LoadBe16(frame + 12);
    if (ethertype != 0x8100 && ethertype != 0x88a8) return Verdict::kForeign;
    tci = LoadBe16(frame + 14);
    l3 += kVlanTagLen;
    if (LoadBe16(frame + 16) != 0x0800 || len < l3 + kHeaders) return Verdict::kForeign;
  }
  const uint8_t* th = frame + l3 + kIpv4HeaderLen + kUdpHeaderLen;
  const uint64_t th0 = Load<uint64_t>(th);  // magic, flow, seq
  const uint32_t f = static_cast<uint32_t>(th0 >> 16) & 0xffff;
  if (static_cast<uint16_t>(th0) == kTestMagic && f < num_flows_) {
    // A shape of this flow seen before: the same bytes pass the same checks.
    FlowState& fs = flows_[f];
    for (Shape& sh : fs.shapes) {
      if (sh.len != len) continue;
      const uint64_t* h = sh.head;
      uint64_t diff = (Load<uint64_t>(frame + 40) & sh.last_mask) ^ h[5];
      for (int i = 0; i < 5; ++i) diff |= Load<uint64_t>(frame + 8 * i) ^ h[i];
      const uint16_t payload_len = Load<uint16_t>(th + 12);
      if (diff != 0 || payload_len != sh.payload_len) continue;
      const uint32_t pattern_len = payload_len - kTestHeaderLen;
      const uint32_t ts = Load<uint32_t>(th + 8);
      const bool read_payload = ReadPayload();
      uint32_t pattern_crc;
      if (read_payload) {
        pattern_crc = pattern_len != 0 ? Crc32c(th + kTestHeaderLen, pattern_len) : 0;
        ++payload_checked_;
      } else {
        pattern_crc = PatternCrc(&sh, f, pattern_len);
      }
      if ((TestHeaderCrc(th0, ts, payload_len) ^ pattern_crc) != Load<uint32_t>(th + 14)) {
        return Verdict::kCorrupted;
      }
      const uint8_t* udp = th - kUdpHeaderLen;
      if (read_payload && LoadBe16(udp + 6) != 0 &&
          !UdpChecksumOk(udp - kIpv4HeaderLen, udp, payload_len + kUdpHeaderLen)) {
        return Verdict::kCorrupted;
      }
      *flow = f;
      *seq = static_cast<uint32_t>(th0 >> 32);
      *timestamp = ts;
      return Verdict::kOk;
    }
  }
  return CheckFull(frame, len, l3, tci, flow, seq, timestamp);
}

Verdict Checker::CheckFull(const uint8_t* frame, uint32_t len, uint32_t l3, int tci, uint32_t* flow,
                           uint32_t* seq, uint32_t* timestamp) {
  constexpr uint32_t kHeaders = kIpv4HeaderLen + kUdpHeaderLen + kTestHeaderLen;
  const uint8_t* ip = frame + l3;
  if (ip[0] != 0x45 || ip[9] != 17) return Verdict::kForeign;
  const uint8_t* udp = ip + kIpv4HeaderLen;
  const uint8_t* th = udp + kUdpHeaderLen;
  const uint64_t th0 = Load<uint64_t>(th);  // magic, flow, seq
  if (static_cast<uint16_t>(th0) != kTestMagic) return Verdict::kForeign;

  // It claims to be a test frame: from here on, a failed check is damage.
  if (Ipv4HeaderChecksum(ip) != 0) return Verdict::kCorrupted;
  const uint32_t ip_len = LoadBe16(ip + 2);
  if (ip_len < kHeaders || l3 + ip_len > len) {
    return Verdict::kCorrupted;  // truncated (bytes beyond ip_len are padding)
  }
  if ((LoadBe16(ip + 6) & 0x3fff) != 0) return Verdict::kCorrupted;  // never fragmented
  const uint32_t udp_len = LoadBe16(udp + 4);
  const uint16_t payload_len = Load<uint16_t>(th + 12);
  if (udp_len != ip_len - kIpv4HeaderLen || payload_len != udp_len - kUdpHeaderLen) {
    return Verdict::kCorrupted;
  }
  const uint32_t f = static_cast<uint32_t>(th0 >> 16) & 0xffff;
  const uint32_t ts = Load<uint32_t>(th + 8);
  const uint32_t pattern_len = payload_len - kTestHeaderLen;
  if (pattern_len > kMaxPatternLen) return Verdict::kCorrupted;
  // A frame of a flow we do not track has its payload read: there is no
  // table entry to keep its pattern's CRC in.
  const bool read_payload = f >= num_flows_ || ReadPayload();
  // A shape of this flow with this length and pattern, known already (its
  // headers differ): the frame's shape replaces it, keeping its pattern CRC.
  Shape* same = nullptr;
  if (f < num_flows_) {
    for (Shape& sh : flows_[f].shapes) {
      if (sh.len == len && sh.payload_len == payload_len) same = &sh;
    }
  }
  uint32_t pattern_crc;
  if (read_payload) {
    pattern_crc = pattern_len != 0 ? Crc32c(th + kTestHeaderLen, pattern_len) : 0;
    ++payload_checked_;
  } else {
    pattern_crc = PatternCrc(same, f, pattern_len);
  }
  if ((TestHeaderCrc(th0, ts, payload_len) ^ pattern_crc) != Load<uint32_t>(th + 14)) {
    return Verdict::kCorrupted;
  }
  if (read_payload && LoadBe16(udp + 6) != 0 && !UdpChecksumOk(ip, udp, udp_len)) {
    return Verdict::kCorrupted;
  }
  if (f >= num_flows_) return Verdict::kForeign;  // someone else's generator
  if (f < images_.size()) {
    const FlowImage& e = images_[f];
    const uint64_t m8 = Load<uint64_t>(frame);
    const uint32_t m4 = Load<uint32_t>(frame + 8);
    const uint64_t a8 = Load<uint64_t>(ip + 12);
    const uint32_t a4 = Load<uint32_t>(ip + 20);
    const bool macs =
        (m8 == e.macs8[0] && m4 == e.macs4[0]) || (m8 == e.macs8[1] && m4 == e.macs4[1]);
    const bool addrs =
        (a8 == e.addrs8[0] && a4 == e.addrs4[0]) || (a8 == e.addrs8[1] && a4 == e.addrs4[1]);
    // A tag may be pushed or stripped on the way; one that is there must be
    // the flow's own when the flow has one.
    const bool vlan = tci < 0 || e.vlan_tci < 0 || tci == e.vlan_tci;
    if (!macs || !addrs || !vlan) return Verdict::kCorrupted;
  }
  // Every check passed: remember the shape (the headers, 42 or 46 bytes,
  // as 48 with the test header's first bytes masked off).
  FlowState& fs = flows_[f];
  Shape* shape = same;
  if (shape == nullptr) {
    shape = &fs.shapes[fs.next_shape];
    fs.next_shape = (fs.next_shape + 1) % kShapes;
    shape->pattern_known = false;
  }
  shape->len = len;
  shape->payload_len = payload_len;
  if (!read_payload) {  // the expected one
    shape->pattern_crc = pattern_crc;
    shape->pattern_known = true;
  }
  for (int i = 0; i < 6; ++i) shape->head[i] = Load<uint64_t>(frame + 8 * i);
  const uint32_t head_bytes = l3 + kIpv4HeaderLen + kUdpHeaderLen;  // 42 or 46
  shape->last_mask = ~uint64_t{0} >> (8 * (48 - head_bytes));
  shape->head[5] &= shape->last_mask;
  *flow = f;
  *seq = static_cast<uint32_t>(th0 >> 32);
  *timestamp = ts;
  return Verdict::kOk;
}

void Checker::Track(FlowState& f, uint32_t seq, Verdict* verdict) {
  auto bit = [&](uint32_t s) -> uint64_t& { return f.seen[(s % kReorderWindow) / 64]; };
  auto mask = [](uint32_t s) { return uint64_t{1} << (s % 64); };
  int32_t d = static_cast<int32_t>(seq - f.next);
  if (__builtin_expect(d == 0, 1)) {  // in order
    bit(seq) |= mask(seq);
    f.next = seq + 1;
    ++f.received;
    return;
  }
  if (d > 0) {
    ++f.gap_events;
    f.missing += static_cast<uint32_t>(d);
    // Slots of the skipped numbers now stand for them, not for numbers a
    // window older.
    if (static_cast<uint32_t>(d) >= kReorderWindow) {
      memset(f.seen, 0, sizeof(f.seen));
    } else {
      for (uint32_t s = f.next; s != seq; ++s) bit(s) &= ~mask(s);
    }
    bit(seq) |= mask(seq);
    f.next = seq + 1;
    ++f.received;
    return;
  }
  uint32_t age = static_cast<uint32_t>(-static_cast<int64_t>(d));
  if (age <= kReorderWindow && (bit(seq) & mask(seq)) != 0) {
    ++f.duplicates;
    *verdict = Verdict::kDuplicate;
    return;
  }
  if (age <= kReorderWindow) {
    bit(seq) |= mask(seq);
  } else {
    ++too_late_;
  }
  ++f.reordered;
  ++f.received;
  if (f.missing > 0) --f.missing;
}

Verdict Checker::Check(const uint8_t* frame, uint32_t len, uint64_t now) {
  ++frames_;
  uint32_t flow = 0, seq = 0, timestamp = 0;
  Verdict v = CheckIntegrity(frame, len, &flow, &seq, &timestamp);
  if (v == Verdict::kForeign) {
    ++foreign_;
    return v;
  }
  if (v == Verdict::kCorrupted) {
    ++corrupted_;
    return v;
  }
  Track(flows_[flow], seq, &v);
  if (v == Verdict::kOk) {
    uint32_t delta = static_cast<uint32_t>(now >> kTimestampShift) - timestamp;
    latency_.Record(uint64_t{delta} << kTimestampShift);
  }
  return v;
}

Summary Checker::Summarize(absl::Span<const uint64_t> sent_per_flow) const {
  Summary s;
  s.frames = frames_;
  s.corrupted = corrupted_;
  s.foreign = foreign_;
  s.too_late = too_late_;
  s.payload_checked = payload_checked_;
  s.flows.resize(flows_.size());
  for (size_t i = 0; i < flows_.size(); ++i) {
    const FlowState& f = flows_[i];
    FlowSummary& o = s.flows[i];
    o.flow = static_cast<uint32_t>(i);
    o.received = f.received;
    o.duplicates = f.duplicates;
    o.reordered = f.reordered;
    o.gap_events = f.gap_events;
    o.missing = f.missing;
    if (i < sent_per_flow.size()) {
      o.sent = sent_per_flow[i];
      o.lost = o.sent > o.received ? o.sent - o.received : 0;
    } else {
      o.lost = f.missing;
    }
    s.sent += o.sent;
    s.received += o.received;
    s.duplicates += o.duplicates;
    s.reordered += o.reordered;
    s.gap_events += o.gap_events;
    s.lost += o.lost;
  }
  auto ns = [&](double cycles) { return cycles * 1e9 / tsc_hz_; };
  s.latency.count = latency_.count();
  s.latency.min_ns = ns(static_cast<double>(latency_.min()));
  s.latency.p50_ns = ns(static_cast<double>(latency_.Percentile(50)));
  s.latency.p99_ns = ns(static_cast<double>(latency_.Percentile(99)));
  s.latency.p999_ns = ns(static_cast<double>(latency_.Percentile(99.9)));
  s.latency.max_ns = ns(static_cast<double>(latency_.max()));
  s.latency.mean_ns = ns(latency_.mean());
  return s;
}

std::string Summary::ToString(size_t max_flow_lines) const {
  std::string out = absl::StrFormat(
      "frames %u: received %u of %u sent, lost %u (%.3f%%), duplicates %u, reordered %u "
      "(gap events %u, too late %u), corrupted %u, foreign %u; payload read of %u\n",
      frames, received, sent, lost, sent == 0 ? 0.0 : 100.0 * lost / sent, duplicates, reordered,
      gap_events, too_late, corrupted, foreign, payload_checked);
  absl::StrAppend(&out, "latency (", latency.count, "): min ", Ns(latency.min_ns), ", p50 ",
                  Ns(latency.p50_ns), ", p99 ", Ns(latency.p99_ns), ", p99.9 ", Ns(latency.p999_ns),
                  ", max ", Ns(latency.max_ns), ", mean ", Ns(latency.mean_ns), "\n");
  size_t shown = 0, bad = 0;
  for (const FlowSummary& f : flows) {
    if (f.lost == 0 && f.duplicates == 0 && f.reordered == 0) continue;
    if (++bad > max_flow_lines) continue;
    ++shown;
    absl::StrAppend(&out, "  flow ", f.flow, ": sent ", f.sent, " received ", f.received, " lost ",
                    f.lost, " duplicates ", f.duplicates, " reordered ", f.reordered, "\n");
  }
  if (bad > shown) absl::StrAppend(&out, "  ... and ", bad - shown, " more flows with problems\n");
  return out;
}

}  // namespace iovtee::softnic
