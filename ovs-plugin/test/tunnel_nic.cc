// tunnel_nic: the soft NIC's device side for a tunnel test. It sends test
// frames (stream 1, traffic/generator.h) into the NIC, which the switch's
// PMD receives, and checks every frame the switch transmits on the NIC: it
// must be one of them inside a VXLAN encapsulation:
//   outer Ethernet  to --outer-dst-mac, from --outer-src-mac if given (else
//                   from the first frame's source, reported), IPv4
//   outer IPv4      version 4, no options, --outer-src-ip -> --outer-dst-ip,
//                   UDP, total length and header checksum right, TTL > 0
//   outer UDP       to port 4789, length right (the checksum is not read:
//                   OVS sends 0 unless options:csum=true)
//   VXLAN           flags 0x08 (VNI valid), reserved bytes 0, VNI --vni
//   inner frame     the traffic checker: flow, sequence, addresses, IPv4
//                   checksum, lengths, test header CRC, payload CRC
// simnic_peer's checker reads plain frames only; this is its encapsulated
// counterpart, for ovs_simnic_test's vxlan case.
//
// Phases: listen; once the switch's driver is connected and --start-file
// exists, --duration seconds of frames at --rate; drain until every frame the
// NIC took is back, 200 ms pass without one, or 3 s; write the JSON report
// (one key per line, as simnic_peer's); serve the NIC until the switch closes
// its port (at most --linger seconds). Exit status: 0 the run completed (the
// harness judges the report), 1 set-up failed, 2 bad options, 3 interrupted.
#include <arpa/inet.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "test/softnic/device/device.h"
#include "test/softnic/peer/stream.h"
#include "test/softnic/traffic/checker.h"
#include "test/softnic/traffic/generator.h"
#include "test/softnic/traffic/test_frame.h"
#include "test/softnic/traffic/tsc.h"

namespace iovtee::softnic {
namespace {

constexpr uint32_t kBurst = 32;
constexpr uint16_t kVxlanPort = 4789;
constexpr uint32_t kVxlanLen = 8;
constexpr uint32_t kOuterLen = kEthHeaderLen + kIpv4HeaderLen + kUdpHeaderLen + kVxlanLen;
constexpr double kTickS = 1e-3;
constexpr double kDrainQuietS = 0.2;
constexpr double kDrainMaxS = 3;

volatile std::sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

bool FileExists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

struct Options {
  std::string nic_socket;
  std::string report;
  std::string start_file;
  double rate_pps = 20000;
  double duration_s = 3;
  double setup_timeout_s = 30;
  double linger_s = 10;
  uint32_t frame_size = 64;
  uint32_t flows = 4;
  uint32_t vni = 0;
  uint32_t outer_src_ip = 0;  // host byte order
  uint32_t outer_dst_ip = 0;
  uint8_t outer_dst_mac[6] = {};
  uint8_t outer_src_mac[6] = {};
  bool have_outer_src_mac = false;
};

bool ParseIp(const std::string& s, uint32_t* out) {
  in_addr a;
  if (inet_pton(AF_INET, s.c_str(), &a) != 1) return false;
  *out = ntohl(a.s_addr);
  return true;
}

const char kUsage[] =
    "usage: tunnel_nic --nic-socket=PATH --report=FILE --start-file=FILE --vni=N\n"
    "         --outer-src-ip=IP --outer-dst-ip=IP --outer-dst-mac=MAC [--outer-src-mac=MAC]\n"
    "         [--rate=PPS (20000)] [--duration=S (3)] [--size=N (64)] [--flows=N (4)]\n"
    "         [--setup-timeout=S (30)] [--linger=S (10)]\n";

// --key=value options; false (with a message) on anything else.
bool ParseOptions(int argc, char** argv, Options* o) {
  bool have_mac = false, have_src = false, have_dst = false, have_vni = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const size_t eq = arg.find('=');
    if (arg.rfind("--", 0) != 0 || eq == std::string::npos) {
      std::fprintf(stderr, "tunnel_nic: bad argument '%s'\n%s", arg.c_str(), kUsage);
      return false;
    }
    const std::string key = arg.substr(2, eq - 2), value = arg.substr(eq + 1);
    bool ok = true;
    if (key == "nic-socket") {
      o->nic_socket = value;
    } else if (key == "report") {
      o->report = value;
    } else if (key == "start-file") {
      o->start_file = value;
    } else if (key == "rate") {
      ok = absl::SimpleAtod(value, &o->rate_pps) && o->rate_pps > 0;
    } else if (key == "duration") {
      ok = absl::SimpleAtod(value, &o->duration_s) && o->duration_s > 0;
    } else if (key == "setup-timeout") {
      ok = absl::SimpleAtod(value, &o->setup_timeout_s) && o->setup_timeout_s > 0;
    } else if (key == "linger") {
      ok = absl::SimpleAtod(value, &o->linger_s) && o->linger_s >= 0;
    } else if (key == "size") {
      ok = absl::SimpleAtoi(value, &o->frame_size) && o->frame_size >= kMinFrameSize &&
           FrameBytes(o->frame_size) + kOuterLen <= kMaxFrameBytes;
    } else if (key == "flows") {
      ok = absl::SimpleAtoi(value, &o->flows) && o->flows >= 1 && o->flows <= 1024;
    } else if (key == "vni") {
      ok = have_vni = absl::SimpleAtoi(value, &o->vni) && o->vni < (1u << 24);
    } else if (key == "outer-src-ip") {
      ok = have_src = ParseIp(value, &o->outer_src_ip);
    } else if (key == "outer-dst-ip") {
      ok = have_dst = ParseIp(value, &o->outer_dst_ip);
    } else if (key == "outer-dst-mac") {
      ok = have_mac = ParseMac(value, o->outer_dst_mac);
    } else if (key == "outer-src-mac") {
      ok = o->have_outer_src_mac = ParseMac(value, o->outer_src_mac);
    } else {
      ok = false;
    }
    if (!ok) {
      std::fprintf(stderr, "tunnel_nic: bad option --%s=%s\n%s", key.c_str(), value.c_str(),
                   kUsage);
      return false;
    }
  }
  if (o->nic_socket.empty() || o->report.empty() || o->start_file.empty() || !have_vni ||
      !have_src || !have_dst || !have_mac) {
    std::fprintf(stderr, "tunnel_nic: missing options\n%s", kUsage);
    return false;
  }
  return true;
}

uint16_t Load16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
uint32_t Load32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) << 24 | p[1] << 16 | p[2] << 8 | p[3];
}

class TunnelNic {
 public:
  TunnelNic(const Options& o, std::unique_ptr<Device> nic, std::unique_ptr<Generator> gen)
      : o_(o), nic_(std::move(nic)), gen_(std::move(gen)) {
    CheckerOptions co;
    co.num_flows = o.flows;
    co.flows = gen_->config().flows;
    checker_ = std::make_unique<Checker>(std::move(co));
    cap_ = (gen_->max_length() + 63) & ~63u;
    staging_.resize(size_t{kBurst} * cap_);
    for (uint32_t i = 0; i < kBurst; ++i) {
      bufs_[i] = staging_.data() + size_t{i} * cap_;
      frames_[i].data = bufs_[i];
    }
  }

  // Returns the exit status.
  int Run() {
    const double hz = TscHz();
    const uint64_t tick = static_cast<uint64_t>(kTickS * hz);
    uint64_t now = ReadTsc();
    const uint64_t setup_deadline = now + static_cast<uint64_t>(o_.setup_timeout_s * hz);
    auto on_tx = [this](const TxFrame& f) { OnTx(f); };
    // Set-up: the switch's driver connected and the harness ready.
    while (!nic_->connected() || !FileExists(o_.start_file)) {
      nic_->PollControl();
      nic_->Transmit(on_tx);  // anything before the start counts too
      if (g_stop) return Fail(3, "interrupted in set-up");
      if (ReadTsc() >= setup_deadline) {
        return Fail(1, nic_->connected() ? "no start file " + o_.start_file
                                         : "no driver connected to the NIC");
      }
      usleep(200);
    }
    // Traffic, then the drain.
    now = ReadTsc();
    const uint64_t end = now + static_cast<uint64_t>(o_.duration_s * hz);
    uint64_t next_tick = now;
    uint64_t drain_start = 0;
    for (;;) {
      now = ReadTsc();
      now_ = now;
      if (now >= next_tick) {
        nic_->PollControl();
        next_tick = now + tick;
        if (g_stop) return Fail(3, "interrupted");
        if (drain_start == 0 && now >= end) drain_start = now;
        if (drain_start != 0) {
          const uint64_t quiet_since = last_rx_ > drain_start ? last_rx_ : drain_start;
          if (received_ >= taken_ || now - quiet_since >= kDrainQuietS * hz ||
              now - drain_start >= kDrainMaxS * hz) {
            break;
          }
        }
      }
      size_t work = nic_->Transmit(on_tx);
      if (drain_start == 0) {
        if (const size_t n = gen_->Allowance(now, kBurst); n != 0) {
          const size_t made = gen_->NextBurst(absl::Span<uint8_t* const>(bufs_, n), cap_,
                                              absl::Span<uint32_t>(lens_, n), now);
          for (size_t i = 0; i < made; ++i) frames_[i].len = lens_[i];
          taken_ += nic_->Receive(absl::Span<const Frame>(frames_, made));
          work += made;
        }
      }
      if (work == 0) usleep(20);  // leave the core to the switch and the guest
    }
    completed_ = true;
    return 0;
  }

  // Serves the NIC until the switch closes its port or the deadline.
  void Linger() {
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::duration<double>(o_.linger_s);
    auto on_tx = [this](const TxFrame& f) { OnTx(f); };
    while (nic_->connected() && !g_stop && std::chrono::steady_clock::now() < deadline) {
      nic_->PollControl();
      nic_->Transmit(on_tx);
      usleep(200);
    }
  }

  std::string ReportJson() const {
    const Summary t = checker_->Summarize(gen_->sent_per_flow());
    const DeviceStats d = nic_->Stats();
    uint64_t missed = 0;
    for (const simnic::QueueCounters& q : d.rx) missed += q.missed;
    std::string s = "{\n";
    auto add = [&s](const char* key, const std::string& value, bool last = false) {
      absl::StrAppend(&s, "  \"", key, "\": ", value, last ? "\n" : ",\n");
    };
    add("completed", completed_ ? "true" : "false");
    add("error", absl::StrCat("\"", error_, "\""));
    add("sent", absl::StrCat(t.sent));
    add("nic_taken", absl::StrCat(taken_));
    add("received", absl::StrCat(t.received));
    add("lost", absl::StrCat(t.lost));
    add("corrupted", absl::StrCat(t.corrupted));
    add("duplicates", absl::StrCat(t.duplicates));
    add("reordered", absl::StrCat(t.reordered));
    add("foreign", absl::StrCat(t.foreign));
    add("payload_checked", absl::StrCat(t.payload_checked));
    add("tx_frames", absl::StrCat(tx_frames_));
    add("encapsulated", absl::StrCat(encapsulated_));
    add("outer_bad", absl::StrCat(outer_bad_));
    add("first_outer_error", absl::StrCat("\"", first_outer_error_, "\""));
    add("outer_src_mac", have_src_mac_ ? absl::StrFormat("\"%02x:%02x:%02x:%02x:%02x:%02x\"",
                                                         src_mac_[0], src_mac_[1], src_mac_[2],
                                                         src_mac_[3], src_mac_[4], src_mac_[5])
                                       : "\"\"");
    add("iommu_faults", absl::StrCat(d.device.iommu_faults));
    add("nic_rx_missed", absl::StrCat(missed), /*last=*/true);
    return s + "}\n";
  }

 private:
  int Fail(int code, const std::string& error) {
    error_ = error;
    return code;
  }

  // One frame the switch transmitted: a VXLAN frame around a test frame.
  void OnTx(const TxFrame& f) {
    ++tx_frames_;
    const char* bad = OuterError(f.data, f.len);
    if (bad != nullptr) {
      if (outer_bad_++ == 0) first_outer_error_ = bad;
      return;
    }
    ++encapsulated_;
    if (checker_->Check(f.data + kOuterLen, f.len - kOuterLen, now_) == Verdict::kOk) {
      ++received_;
      last_rx_ = now_;
    }
  }

  const char* OuterError(const uint8_t* p, uint32_t len) {
    if (len < kOuterLen + kEthHeaderLen) return "shorter than the VXLAN headers";
    if (std::memcmp(p, o_.outer_dst_mac, 6) != 0) return "outer destination MAC";
    // The source MAC is the tunnel bridge's: given, or the first frame's
    // (reported, for the harness to compare), and the same in every frame.
    if (!have_src_mac_) {
      std::memcpy(src_mac_, o_.have_outer_src_mac ? o_.outer_src_mac : p + 6, 6);
      have_src_mac_ = true;
    }
    if (std::memcmp(p + 6, src_mac_, 6) != 0) return "outer source MAC";
    if (Load16(p + 12) != 0x0800) return "outer EtherType is not IPv4";
    const uint8_t* ip = p + kEthHeaderLen;
    if (ip[0] != 0x45) return "outer IPv4 version/header length";
    if (Load16(ip + 2) != len - kEthHeaderLen) return "outer IPv4 total length";
    if (ip[8] == 0) return "outer IPv4 TTL 0";
    if (ip[9] != 17) return "outer IPv4 protocol is not UDP";
    if (Ipv4HeaderChecksum(ip) != 0) return "outer IPv4 header checksum";
    if (Load32(ip + 12) != o_.outer_src_ip) return "outer IPv4 source";
    if (Load32(ip + 16) != o_.outer_dst_ip) return "outer IPv4 destination";
    const uint8_t* udp = ip + kIpv4HeaderLen;
    if (Load16(udp + 2) != kVxlanPort) return "outer UDP destination port";
    if (Load16(udp + 4) != len - kEthHeaderLen - kIpv4HeaderLen) return "outer UDP length";
    const uint8_t* vx = udp + kUdpHeaderLen;
    if (vx[0] != 0x08 || vx[1] != 0 || vx[2] != 0 || vx[3] != 0 || vx[7] != 0) {
      return "VXLAN flags/reserved";
    }
    if ((Load32(vx + 4) >> 8) != o_.vni) return "VXLAN VNI";
    return nullptr;
  }

  Options o_;
  std::unique_ptr<Device> nic_;
  std::unique_ptr<Generator> gen_;
  std::unique_ptr<Checker> checker_;
  uint32_t cap_ = 0;
  std::vector<uint8_t> staging_;
  uint8_t* bufs_[kBurst] = {};
  uint32_t lens_[kBurst] = {};
  Frame frames_[kBurst] = {};
  uint64_t now_ = 0;
  uint64_t taken_ = 0;
  uint64_t received_ = 0;
  uint64_t last_rx_ = 0;
  uint64_t tx_frames_ = 0;
  uint64_t encapsulated_ = 0;
  uint64_t outer_bad_ = 0;
  std::string first_outer_error_;
  uint8_t src_mac_[6] = {};
  bool have_src_mac_ = false;
  std::string error_;
  bool completed_ = false;
};

bool WriteReport(const std::string& path, const std::string& json) {
  const std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "w");
  if (f == nullptr) return false;
  const bool ok = std::fwrite(json.data(), 1, json.size(), f) == json.size();
  return std::fclose(f) == 0 && ok && std::rename(tmp.c_str(), path.c_str()) == 0;
}

int Main(int argc, char** argv) {
  Options o;
  if (!ParseOptions(argc, argv, &o)) return 2;
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);

  GeneratorConfig gc;
  const uint8_t dst_mac[6] = {0x02, 0, 0, 0, 0, 0x01};
  gc.flows = StreamFlows(1, o.flows, dst_mac);
  gc.frame_size = o.frame_size;
  gc.rate_pps = o.rate_pps;
  auto gen = Generator::Create(std::move(gc));
  if (!gen.ok()) {
    std::fprintf(stderr, "tunnel_nic: %s\n", gen.status().ToString().c_str());
    return 1;
  }
  DeviceOptions dopt;
  dopt.name = "tunnel_nic";
  dopt.tx_burst = kBurst;
  auto nic = Device::Create(dopt);
  if (!nic.ok()) {
    std::fprintf(stderr, "tunnel_nic: %s\n", nic.status().ToString().c_str());
    return 1;
  }
  if (absl::Status s = (*nic)->Listen(o.nic_socket); !s.ok()) {
    std::fprintf(stderr, "tunnel_nic: %s\n", s.ToString().c_str());
    return 1;
  }
  TunnelNic t(o, std::move(*nic), std::move(*gen));
  const int rc = t.Run();
  const std::string json = t.ReportJson();
  std::fputs(json.c_str(), stdout);
  if (!WriteReport(o.report, json)) {
    std::fprintf(stderr, "tunnel_nic: cannot write %s\n", o.report.c_str());
    return 1;
  }
  t.Linger();
  unlink(o.nic_socket.c_str());
  return rc;
}

}  // namespace
}  // namespace iovtee::softnic

int main(int argc, char** argv) { return iovtee::softnic::Main(argc, argv); }
