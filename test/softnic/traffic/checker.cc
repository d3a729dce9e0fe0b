#include "test/softnic/traffic/checker.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "test/softnic/traffic/crc32c.h"
#include "test/softnic/traffic/test_frame.h"
#include "test/softnic/traffic/tsc.h"

namespace iovtee::softnic {
namespace {

inline uint16_t LoadBe16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
inline uint32_t LoadBe32(const uint8_t* p) { return uint32_t{LoadBe16(p)} << 16 | LoadBe16(p + 2); }

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

std::string Ns(double ns) {
  if (ns >= 1e6) return absl::StrFormat("%.2f ms", ns / 1e6);
  if (ns >= 1e3) return absl::StrFormat("%.2f us", ns / 1e3);
  return absl::StrFormat("%.0f ns", ns);
}

}  // namespace

Checker::Checker(CheckerOptions options)
    : options_(std::move(options)),
      tsc_hz_(options_.tsc_hz > 0 ? options_.tsc_hz : TscHz()),
      flows_(std::max<uint32_t>(options_.num_flows, 1)) {}

void Checker::Reset() {
  std::fill(flows_.begin(), flows_.end(), FlowState{});
  latency_ = LatencyHistogram{};
  frames_ = corrupted_ = foreign_ = too_late_ = 0;
}

Verdict Checker::CheckIntegrity(const uint8_t* frame, uint32_t len, uint32_t* flow, uint32_t* seq,
                                uint32_t* timestamp) const {
  if (len < kEthHeaderLen) return Verdict::kForeign;
  uint32_t l3 = kEthHeaderLen;
  uint16_t ethertype = LoadBe16(frame + 12);
  int tci = -1;
  if (ethertype == 0x8100 || ethertype == 0x88a8) {
    if (len < kEthHeaderLen + kVlanTagLen) return Verdict::kForeign;
    tci = LoadBe16(frame + 14);
    ethertype = LoadBe16(frame + 16);
    l3 += kVlanTagLen;
  }
  if (ethertype != 0x0800) return Verdict::kForeign;
  if (len < l3 + kIpv4HeaderLen + kUdpHeaderLen + kTestHeaderLen) return Verdict::kForeign;
  const uint8_t* ip = frame + l3;
  if (ip[0] != 0x45 || ip[9] != 17) return Verdict::kForeign;
  const uint8_t* udp = ip + kIpv4HeaderLen;
  const uint8_t* th = udp + kUdpHeaderLen;
  TestHeader h = LoadTestHeader(th);
  if (h.magic != kTestMagic) return Verdict::kForeign;

  // It claims to be a test frame: from here on, a failed check is damage.
  if (Ipv4HeaderChecksum(ip) != 0) return Verdict::kCorrupted;
  uint32_t ip_len = LoadBe16(ip + 2);
  if (ip_len < kIpv4HeaderLen + kUdpHeaderLen + kTestHeaderLen || l3 + ip_len > len) {
    return Verdict::kCorrupted;  // truncated (bytes beyond ip_len are padding)
  }
  if ((LoadBe16(ip + 6) & 0x3fff) != 0) return Verdict::kCorrupted;  // never fragmented
  uint32_t udp_len = LoadBe16(udp + 4);
  if (udp_len != ip_len - kIpv4HeaderLen || h.payload_len != udp_len - kUdpHeaderLen) {
    return Verdict::kCorrupted;
  }
  uint32_t pattern_len = h.payload_len - kTestHeaderLen;
  uint32_t check = Crc32c(th, 14) ^ Crc32c(th + kTestHeaderLen, pattern_len);
  if (check != h.check) return Verdict::kCorrupted;
  if (LoadBe16(udp + 6) != 0 && !UdpChecksumOk(ip, udp, udp_len)) return Verdict::kCorrupted;
  if (h.flow >= flows_.size()) return Verdict::kForeign;  // someone else's generator
  if (h.flow < options_.flows.size()) {
    const FlowSpec& f = options_.flows[h.flow];
    bool macs = (memcmp(frame, f.dst_mac, 6) == 0 && memcmp(frame + 6, f.src_mac, 6) == 0) ||
                (memcmp(frame, f.src_mac, 6) == 0 && memcmp(frame + 6, f.dst_mac, 6) == 0);
    uint32_t sip = LoadBe32(ip + 12), dip = LoadBe32(ip + 16);
    uint16_t sport = LoadBe16(udp), dport = LoadBe16(udp + 2);
    bool forward = sip == f.src_ip && dip == f.dst_ip && sport == f.src_port && dport == f.dst_port;
    bool reverse = sip == f.dst_ip && dip == f.src_ip && sport == f.dst_port && dport == f.src_port;
    // A tag may be pushed or stripped on the way; one that is there must be
    // the flow's own when the flow has one.
    bool vlan = tci < 0 || f.vlan_tci < 0 || tci == f.vlan_tci;
    if (!macs || !(forward || reverse) || !vlan) return Verdict::kCorrupted;
  }
  *flow = h.flow;
  *seq = h.seq;
  *timestamp = h.timestamp;
  return Verdict::kOk;
}

void Checker::Track(FlowState& f, uint32_t seq, Verdict* verdict) {
  auto bit = [&](uint32_t s) -> uint64_t& { return f.seen[(s % kReorderWindow) / 64]; };
  auto mask = [](uint32_t s) { return uint64_t{1} << (s % 64); };
  int32_t d = static_cast<int32_t>(seq - f.next);
  if (d >= 0) {
    if (d > 0) {
      ++f.gap_events;
      f.missing += static_cast<uint32_t>(d);
    }
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
      "(gap events %u, too late %u), corrupted %u, foreign %u\n",
      frames, received, sent, lost, sent == 0 ? 0.0 : 100.0 * lost / sent, duplicates, reordered,
      gap_events, too_late, corrupted, foreign);
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
