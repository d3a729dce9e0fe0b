// stock_pmd_traffic: traffic-generator frames in and out of stock DPDK PMDs,
// for end-to-end tests of the Rx queue mapping with net_pcap and
// net_af_packet as the NIC. Every frame that comes back is checked (count,
// order, lengths, payload checksum; MACs swapped by the guest are fine).
//
//   pcap-feed  --out=PATH [--go=FILE]  writes a pcap file (or a FIFO that
//              net_pcap reads as rx_pcap) of --count frames; with --go, only
//              the file header until FILE exists, so nothing reaches the
//              switch before its guest is ready
//   pcap-wait  --pcap=PATH             until PATH holds --count records
//   pcap-check --pcap=PATH             checks every record of PATH
//   veth-loop  --iface=IF              sends --count frames on IF with a raw
//              socket, at most --window unanswered, and checks those that
//              come back on IF
// Common: --count=N (1000) --size=64..9022|imix (64) --flows=N (4)
//         --timeout=SECONDS (20). Exit status 0 when the run passed.
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "test/mapping/stock_pmd/frame_stream.h"
#include "test/mapping/stock_pmd/pcap_file.h"
#include "test/softnic/traffic/tsc.h"

namespace iovtee::stock_pmd {
namespace {

using Clock = std::chrono::steady_clock;

struct Args {
  std::string command;
  std::map<std::string, std::string> values;

  std::string Get(const std::string& key, const std::string& def = "") const {
    auto it = values.find(key);
    return it == values.end() ? def : it->second;
  }
};

absl::StatusOr<Args> ParseArgs(int argc, char** argv) {
  if (argc < 2) return absl::InvalidArgumentError("no command");
  Args a;
  a.command = argv[1];
  for (int i = 2; i < argc; ++i) {
    const std::string s = argv[i];
    const size_t eq = s.find('=');
    if (s.rfind("--", 0) != 0 || eq == std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat("expected --key=value, got '", s, "'"));
    }
    a.values[s.substr(2, eq - 2)] = s.substr(eq + 1);
  }
  return a;
}

absl::Status ParseCommon(const Args& a, StreamConfig* c, double* timeout_s) {
  if (!absl::SimpleAtoi(a.Get("count", "1000"), &c->count) || c->count == 0) {
    return absl::InvalidArgumentError("--count: a positive integer");
  }
  if (!absl::SimpleAtoi(a.Get("flows", "4"), &c->flows) || c->flows == 0 || c->flows > 65536) {
    return absl::InvalidArgumentError("--flows: 1..65536");
  }
  absl::Status s = ParseFrameSize(a.Get("size", "64"), c);
  if (!s.ok()) return s;
  if (!absl::SimpleAtod(a.Get("timeout", "20"), timeout_s) || !(*timeout_s > 0)) {
    return absl::InvalidArgumentError("--timeout: seconds > 0");
  }
  return absl::OkStatus();
}

// Polls `done` every millisecond until it holds (true) or `deadline` passes
// (false).
bool WaitUntil(Clock::time_point deadline, const std::function<bool()>& done) {
  while (!done()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

Clock::time_point After(double seconds) {
  return Clock::now() +
         std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

uint64_t NowUsec() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

absl::Status WriteAll(int fd, const uint8_t* p, size_t n) {
  while (n > 0) {
    const ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return absl::InternalError(absl::StrCat("write: ", std::strerror(errno)));
    p += w;
    n -= static_cast<size_t>(w);
  }
  return absl::OkStatus();
}

// Opens `path` for writing. A FIFO is opened once its reader (net_pcap's
// probe) has it open, within the deadline.
absl::StatusOr<int> OpenOutput(const std::string& path, Clock::time_point deadline) {
  struct stat st;
  if (stat(path.c_str(), &st) == 0 && S_ISFIFO(st.st_mode)) {
    int fd = -1;
    const bool opened = WaitUntil(deadline, [&] {
      fd = open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
      return fd >= 0 || errno != ENXIO;  // ENXIO: no reader yet
    });
    if (!opened) return absl::DeadlineExceededError(absl::StrCat("nobody opened ", path));
    if (fd < 0) return absl::InternalError(absl::StrCat("open ", path, ": ", std::strerror(errno)));
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    fcntl(fd, F_SETPIPE_SZ, 1 << 20);  // fewer wake-ups; the default works too
    return fd;
  }
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return absl::InternalError(absl::StrCat("open ", path, ": ", std::strerror(errno)));
  return fd;
}

int PcapFeed(const Args& a, const StreamConfig& c, double timeout_s) {
  const std::string out = a.Get("out"), go = a.Get("go");
  if (out.empty()) {
    std::fprintf(stderr, "pcap-feed: --out=PATH is required\n");
    return 2;
  }
  auto stream = FrameStream::Create(c);
  if (!stream.ok()) {
    std::fprintf(stderr, "pcap-feed: %s\n", stream.status().ToString().c_str());
    return 2;
  }
  const auto deadline = After(timeout_s);
  auto fd = OpenOutput(out, deadline);
  if (!fd.ok()) {
    std::fprintf(stderr, "pcap-feed: %s\n", fd.status().ToString().c_str());
    return 1;
  }
  std::vector<uint8_t> buf = PcapFileHeader();
  absl::Status s = WriteAll(*fd, buf.data(), buf.size());
  if (s.ok() && !go.empty()) {
    struct stat st;
    if (!WaitUntil(deadline, [&] { return stat(go.c_str(), &st) == 0; })) {
      s = absl::DeadlineExceededError(absl::StrCat("no ", go, " after ", timeout_s, " s"));
    }
  }
  std::vector<uint8_t> frame((*stream)->max_frame_len());
  while (s.ok()) {
    buf.clear();
    uint32_t len = 0;
    while (buf.size() < (1u << 16) &&
           (len = (*stream)->NextFrame(frame.data(), frame.size())) > 0) {
      AppendPcapRecord(&buf, absl::MakeConstSpan(frame.data(), len), NowUsec());
    }
    if (buf.empty()) break;
    s = WriteAll(*fd, buf.data(), buf.size());
  }
  close(*fd);  // a FIFO's reader sees the end of the file now
  if (!s.ok()) {
    std::fprintf(stderr, "pcap-feed: %s after %lu frames\n", s.ToString().c_str(),
                 static_cast<unsigned long>((*stream)->generated()));
    return 1;
  }
  std::printf("pcap-feed: %lu frames written to %s\n",
              static_cast<unsigned long>((*stream)->generated()), out.c_str());
  return 0;
}

int PcapWait(const Args& a, const StreamConfig& c, double timeout_s) {
  PcapReader reader(a.Get("pcap"));
  const auto start = Clock::now();
  absl::Status error;
  const bool all = WaitUntil(After(timeout_s), [&] {
    auto r = reader.Poll();
    if (!r.ok() && !absl::IsNotFound(r.status())) error = r.status();
    return !error.ok() || reader.records() >= c.count;
  });
  const double waited = std::chrono::duration<double>(Clock::now() - start).count();
  if (!error.ok()) {
    std::fprintf(stderr, "pcap-wait: %s\n", error.ToString().c_str());
    return 1;
  }
  if (!all) {
    std::fprintf(stderr, "pcap-wait: %lu of %lu frames in %s after %.1f s\n",
                 static_cast<unsigned long>(reader.records()), static_cast<unsigned long>(c.count),
                 a.Get("pcap").c_str(), waited);
    return 1;
  }
  std::printf("pcap-wait: %lu frames back after %.3f s\n",
              static_cast<unsigned long>(reader.records()), waited);
  return 0;
}

int PcapCheck(const Args& a, const StreamConfig& c) {
  auto stream = FrameStream::Create(c);
  if (!stream.ok()) {
    std::fprintf(stderr, "pcap-check: %s\n", stream.status().ToString().c_str());
    return 2;
  }
  PcapReader reader(a.Get("pcap"));
  auto records = reader.Poll();
  if (!records.ok()) {
    std::fprintf(stderr, "pcap-check: %s\n", records.status().ToString().c_str());
    return 1;
  }
  uint64_t truncated = 0;
  for (const PcapReader::Record& r : *records) {
    if (r.caplen != r.len) ++truncated;
    (*stream)->Check(r.data, r.caplen, softnic::ReadTsc());
  }
  std::string report;
  const bool ok = (*stream)->Passed(&report, /*with_latency=*/false) && truncated == 0;
  std::printf("pcap-check: %s%s\n", report.c_str(),
              truncated ? absl::StrCat(", truncated records ", truncated).c_str() : "");
  return ok ? 0 : 1;
}

int VethLoop(const Args& a, const StreamConfig& c, double timeout_s) {
  const std::string iface = a.Get("iface"), go = a.Get("go");
  uint32_t window = 0;
  if (!absl::SimpleAtoi(a.Get("window", "64"), &window) || window == 0) {
    std::fprintf(stderr, "veth-loop: --window: a positive integer\n");
    return 2;
  }
  auto stream = FrameStream::Create(c);
  if (!stream.ok()) {
    std::fprintf(stderr, "veth-loop: %s\n", stream.status().ToString().c_str());
    return 2;
  }
  const unsigned ifindex = if_nametoindex(iface.c_str());
  if (ifindex == 0) {
    std::fprintf(stderr, "veth-loop: no interface '%s'\n", iface.c_str());
    return 2;
  }
  const int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
  if (fd < 0) {
    std::fprintf(stderr, "veth-loop: AF_PACKET socket: %s\n", std::strerror(errno));
    return 1;
  }
  sockaddr_ll sll = {};
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ETH_P_ALL);
  sll.sll_ifindex = static_cast<int>(ifindex);
  const int one = 1, rcvbuf = 16 << 20;
  if (bind(fd, reinterpret_cast<sockaddr*>(&sll), sizeof(sll)) != 0 ||
      setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one)) != 0 ||
      setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) != 0) {
    std::fprintf(stderr, "veth-loop: socket setup on %s: %s\n", iface.c_str(),
                 std::strerror(errno));
    close(fd);
    return 1;
  }
  const auto deadline = After(timeout_s);
  struct stat st;
  if (!go.empty() && !WaitUntil(deadline, [&] { return stat(go.c_str(), &st) == 0; })) {
    std::fprintf(stderr, "veth-loop: no %s after %.1f s\n", go.c_str(), timeout_s);
    close(fd);
    return 1;
  }
  const auto traffic_start = Clock::now();
  std::vector<uint8_t> out((*stream)->max_frame_len());
  std::vector<uint8_t> in(65536);
  absl::Status error;
  uint64_t others = 0;
  while ((*stream)->good() < c.count && Clock::now() < deadline && error.ok()) {
    // Keep at most `window` frames unanswered: the guest's Rx ring and the
    // PMD's rings never overflow, so a frame lost is a bug, not congestion.
    while ((*stream)->generated() < c.count &&
           (*stream)->generated() - (*stream)->good() < window) {
      const uint32_t len = (*stream)->NextFrame(out.data(), out.size());
      if (send(fd, out.data(), len, 0) != static_cast<ssize_t>(len)) {
        error = absl::InternalError(absl::StrCat("send: ", std::strerror(errno)));
        break;
      }
    }
    pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 10) < 0 && errno != EINTR) {
      error = absl::InternalError(absl::StrCat("poll: ", std::strerror(errno)));
    }
    for (;;) {
      sockaddr_ll from = {};
      socklen_t fromlen = sizeof(from);
      const ssize_t n = recvfrom(fd, in.data(), in.size(), MSG_DONTWAIT | MSG_TRUNC,
                                 reinterpret_cast<sockaddr*>(&from), &fromlen);
      if (n < 0) break;
      if (from.sll_pkttype == PACKET_OUTGOING) continue;  // our own, if the kernel shows them
      const uint32_t len = static_cast<uint32_t>(std::min<ssize_t>(n, in.size()));
      if ((*stream)->Check(in.data(), len, softnic::ReadTsc()) != softnic::Verdict::kOk) ++others;
    }
  }
  const double secs = std::chrono::duration<double>(Clock::now() - traffic_start).count();
  close(fd);
  std::string report;
  const bool ok = (*stream)->Passed(&report, /*with_latency=*/true) && error.ok();
  std::printf("veth-loop: %lu sent on %s in %.3f s; %s\n",
              static_cast<unsigned long>((*stream)->generated()), iface.c_str(), secs,
              report.c_str());
  if (!error.ok()) std::fprintf(stderr, "veth-loop: %s\n", error.ToString().c_str());
  if (others > 0)
    std::fprintf(stderr, "veth-loop: %lu frames failed the check\n",
                 static_cast<unsigned long>(others));
  if ((*stream)->good() < c.count && Clock::now() >= deadline) {
    std::fprintf(stderr, "veth-loop: deadline of %.1f s passed\n", timeout_s);
  }
  return ok ? 0 : 1;
}

int Main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);  // a reader gone is an error from write()
  auto args = ParseArgs(argc, argv);
  if (!args.ok()) {
    std::fprintf(stderr,
                 "%s\nusage: stock_pmd_traffic pcap-feed|pcap-wait|pcap-check|veth-loop "
                 "--key=value... (see the source's header comment)\n",
                 args.status().ToString().c_str());
    return 2;
  }
  StreamConfig c;
  double timeout_s = 0;
  absl::Status s = ParseCommon(*args, &c, &timeout_s);
  if (!s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 2;
  }
  if (args->command == "pcap-feed") return PcapFeed(*args, c, timeout_s);
  if (args->command == "pcap-wait") return PcapWait(*args, c, timeout_s);
  if (args->command == "pcap-check") return PcapCheck(*args, c);
  if (args->command == "veth-loop") return VethLoop(*args, c, timeout_s);
  std::fprintf(stderr, "unknown command '%s'\n", args->command.c_str());
  return 2;
}

}  // namespace
}  // namespace iovtee::stock_pmd

int main(int argc, char** argv) { return iovtee::stock_pmd::Main(argc, argv); }
