#include "test/softnic/peer/options.h"

#include <cmath>
#include <cstdio>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "test/softnic/peer/guest_canary.h"
#include "test/softnic/peer/stream.h"
#include "test/softnic/traffic/test_frame.h"

namespace iovtee::softnic {
namespace {

absl::Status Bad(const std::string& opt, const std::string& value, const std::string& want) {
  return absl::InvalidArgumentError(
      absl::StrCat("bad value '", value, "' for --", opt, ": expected ", want));
}

template <typename T>
absl::Status ParseUint(const std::string& opt, const std::string& value, T lo, T hi, T* out) {
  int64_t v;
  if (!absl::SimpleAtoi(value, &v) || v < static_cast<int64_t>(lo) ||
      v > static_cast<int64_t>(hi)) {
    return Bad(opt, value, absl::StrCat("an integer in ", lo, "..", hi));
  }
  *out = static_cast<T>(v);
  return absl::OkStatus();
}

absl::Status ParseSeconds(const std::string& opt, const std::string& value, double lo,
                          double* out) {
  double v;
  if (!absl::SimpleAtod(value, &v) || !std::isfinite(v) || v < lo || v > 86400) {
    return Bad(opt, value, absl::StrCat("seconds in ", lo, "..86400"));
  }
  *out = v;
  return absl::OkStatus();
}

absl::Status ParseBool(const std::string& opt, const std::string& value, bool* out) {
  if (value == "1" || value == "on" || value == "yes") {
    *out = true;
  } else if (value == "0" || value == "off" || value == "no") {
    *out = false;
  } else {
    return Bad(opt, value, "0 or 1");
  }
  return absl::OkStatus();
}

absl::Status ParseTristate(const std::string& opt, const std::string& value, int* out) {
  bool b;
  absl::Status s = ParseBool(opt, value, &b);
  if (s.ok()) *out = b ? 1 : 0;
  return s;
}

// Options that may stand alone (value "1" when no "=value" is given).
bool IsFlag(const std::string& key) {
  return key == "help" || key == "imix" || key == "guest-packed" || key == "guest-vectorized" ||
         key == "guest-corrupt-canary";
}

// "1", "1:4,2:8": streams a checking guest expects, each with its flow count.
absl::Status ParseStreams(const std::string& opt, const std::string& value,
                          std::vector<StreamOption>* out) {
  out->clear();
  for (absl::string_view item : absl::StrSplit(value, ',')) {
    std::vector<std::string> parts = absl::StrSplit(item, ':');
    StreamOption s;
    if (parts.size() > 2 || !absl::SimpleAtoi(parts[0], &s.stream) || s.stream < 1 ||
        s.stream > 255 ||
        (parts.size() == 2 &&
         (!absl::SimpleAtoi(parts[1], &s.flows) || s.flows < 1 || s.flows > kMaxStreamFlows))) {
      return Bad(opt, value, "STREAM[:FLOWS],... with streams in 1..255");
    }
    out->push_back(s);
  }
  return absl::OkStatus();
}

absl::Status Apply(const std::string& key, const std::string& value, PeerOptions* o) {
  if (key == "help") return ParseBool(key, value, &o->help);
  if (key == "mode") {
    if (value == "pvp") {
      o->mode = PeerMode::kPvp;
    } else if (value == "nic-loop") {
      o->mode = PeerMode::kNicLoop;
    } else if (value == "nic") {
      o->mode = PeerMode::kNic;
    } else if (value == "guest") {
      o->mode = PeerMode::kGuest;
    } else {
      return Bad(key, value, "pvp, nic-loop, nic or guest");
    }
    return absl::OkStatus();
  }
  if (key == "nic-socket") {
    o->nic_socket = value;
    return value.empty() ? Bad(key, value, "a unix socket path") : absl::OkStatus();
  }
  if (key == "guest-vhost") {
    o->guest_vhost = value;
    return value.empty() ? Bad(key, value, "a unix socket path") : absl::OkStatus();
  }
  if (key == "guest-packed") return ParseBool(key, value, &o->guest_packed);
  if (key == "guest-mrg-rxbuf") return ParseTristate(key, value, &o->guest_mrg_rxbuf);
  if (key == "guest-in-order") return ParseTristate(key, value, &o->guest_in_order);
  if (key == "guest-vectorized") return ParseBool(key, value, &o->guest_vectorized);
  if (key == "guest-queue-size") {
    absl::Status s = ParseUint<uint32_t>(key, value, 64, 32768, &o->guest_queue_size);
    if (s.ok() && (o->guest_queue_size & (o->guest_queue_size - 1)) != 0) {
      return Bad(key, value, "a power of two in 64..32768");
    }
    return s;
  }
  if (key == "guest-mac") {
    return ParseMac(value, o->guest_mac) ? absl::OkStatus() : Bad(key, value, "xx:xx:xx:xx:xx:xx");
  }
  if (key == "guest-devargs") {
    o->guest_devargs = value;
    return absl::OkStatus();
  }
  if (key == "guest-data-room") {
    return ParseUint<uint32_t>(key, value, RTE_PKTMBUF_HEADROOM + 64,
                               UINT16_MAX - CanaryPool::kTailBytes, &o->guest_data_room);
  }
  if (key == "guest-role") {
    if (value == "echo") {
      o->guest_role = GuestRoleOption::kEcho;
    } else if (value == "check") {
      o->guest_role = GuestRoleOption::kCheck;
    } else {
      return Bad(key, value, "echo or check");
    }
    return absl::OkStatus();
  }
  if (key == "guest-check-streams") return ParseStreams(key, value, &o->guest_check_streams);
  if (key == "guest-gen-stream")
    return ParseUint<uint32_t>(key, value, 1, 255, &o->guest_gen_stream);
  if (key == "guest-corrupt-canary") return ParseBool(key, value, &o->guest_corrupt_canary);
  if (key == "stream") return ParseUint<uint32_t>(key, value, 1, 255, &o->stream);
  if (key == "status-file") {
    o->status_file = value;
    return value.empty() ? Bad(key, value, "a file path") : absl::OkStatus();
  }
  if (key == "start-file") {
    o->start_file = value;
    return value.empty() ? Bad(key, value, "a file path") : absl::OkStatus();
  }
  if (key == "idle-sleep-us") return ParseUint<int>(key, value, 0, 100000, &o->idle_sleep_us);
  if (key == "dst-mac") {
    o->have_dst_mac = ParseMac(value, o->dst_mac);
    return o->have_dst_mac ? absl::OkStatus() : Bad(key, value, "xx:xx:xx:xx:xx:xx");
  }
  if (key == "verify") {
    absl::StatusOr<VerifyMode> v = VerifyMode::Parse(value);
    if (!v.ok()) return Bad(key, value, "all, headers or sample:N (N >= 1)");
    o->verify = *v;
    return absl::OkStatus();
  }
  if (key == "size") return ParseUint<uint32_t>(key, value, 64, 9022, &o->frame_size);
  if (key == "imix") return ParseBool(key, value, &o->imix);
  if (key == "flows") return ParseUint<uint32_t>(key, value, 1, kMaxStreamFlows, &o->flows);
  if (key == "rate") {
    double v;
    if (!absl::SimpleAtod(value, &v) || !std::isfinite(v) || v < 0 || v > 1e9) {
      return Bad(key, value, "frames per second in 0..1e9 (0: as fast as possible)");
    }
    o->rate_pps = v;
    return absl::OkStatus();
  }
  if (key == "duration") return ParseSeconds(key, value, 0.001, &o->duration_s);
  if (key == "warmup") return ParseSeconds(key, value, 0, &o->warmup_s);
  if (key == "setup-timeout") return ParseSeconds(key, value, 0.1, &o->setup_timeout_s);
  if (key == "linger") return ParseSeconds(key, value, 0, &o->linger_s);
  if (key == "core") return ParseUint<int>(key, value, 0, 1023, &o->core);
  if (key == "report") {
    o->report = value;
    return value.empty() ? Bad(key, value, "a file path") : absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown option --", key, " (see --help)"));
}

}  // namespace

const char* ModeName(PeerMode mode) {
  switch (mode) {
    case PeerMode::kPvp:
      return "pvp";
    case PeerMode::kNicLoop:
      return "nic-loop";
    case PeerMode::kNic:
      return "nic";
    case PeerMode::kGuest:
      return "guest";
  }
  return "?";
}

std::string FormatMac(const uint8_t mac[6]) {
  return absl::StrFormat("%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4],
                         mac[5]);
}

absl::StatusOr<PeerOptions> ParsePeerOptions(int argc, char** argv) {
  PeerOptions o;
  bool size_given = false;
  int i = 1;
  for (; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--") {
      ++i;
      break;
    }
    if (arg.rfind("--", 0) != 0 || arg.size() == 2) {
      return absl::InvalidArgumentError(absl::StrCat("unexpected argument '", arg,
                                                     "' (options start with --; EAL arguments go ",
                                                     "after a lone --)"));
    }
    std::string key = arg.substr(2);
    std::string value;
    if (const size_t eq = key.find('='); eq != std::string::npos) {
      value = key.substr(eq + 1);
      key.resize(eq);
    } else if (IsFlag(key)) {
      value = "1";
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      return absl::InvalidArgumentError(absl::StrCat("--", key, " needs a value"));
    }
    if (absl::Status s = Apply(key, value, &o); !s.ok()) return s;
    size_given |= key == "size";
  }
  for (; i < argc; ++i) o.eal_args.emplace_back(argv[i]);
  if (o.help) return o;

  const bool has_nic = o.mode != PeerMode::kGuest;
  const bool has_guest = o.mode == PeerMode::kPvp || o.mode == PeerMode::kGuest;
  const std::string mode = absl::StrCat("--mode=", ModeName(o.mode));
  if (has_nic && o.nic_socket.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(mode, " needs --nic-socket"));
  }
  if (!has_nic && !o.nic_socket.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("--nic-socket makes no sense with ", mode));
  }
  if (has_guest && o.guest_vhost.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(mode, " needs --guest-vhost"));
  }
  if (!has_guest && !o.guest_vhost.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("--guest-vhost makes no sense with ", mode));
  }
  if (!has_guest && !o.eal_args.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(mode, " starts no EAL: drop the arguments after --"));
  }
  if (o.mode != PeerMode::kGuest && o.guest_role != GuestRoleOption::kEcho) {
    return absl::InvalidArgumentError("--guest-role=check needs --mode=guest");
  }
  if (o.guest_gen_stream != 0) {
    if (o.mode != PeerMode::kGuest) {
      return absl::InvalidArgumentError("--guest-gen-stream needs --mode=guest");
    }
    if (!o.have_dst_mac) {
      return absl::InvalidArgumentError(
          "--guest-gen-stream needs --dst-mac (where the guest's frames go)");
    }
  }
  if (!o.start_file.empty() && o.mode != PeerMode::kNic &&
      !(o.mode == PeerMode::kGuest && o.guest_gen_stream != 0)) {
    return absl::InvalidArgumentError(
        "--start-file gates a generator: --mode=nic, or --mode=guest with --guest-gen-stream");
  }
  if (o.guest_corrupt_canary && !has_guest) {
    return absl::InvalidArgumentError(absl::StrCat("--guest-corrupt-canary: no guest in ", mode));
  }
  if (o.guest_vectorized) {
    // DPDK 22.11's virtio (virtio_dev_configure) keeps a vectorized Rx path
    // only without mergeable buffers and, on a split ring, without
    // VIRTIO_F_IN_ORDER; virtio-user offers both by default.
    if (o.guest_mrg_rxbuf == 1) {
      return absl::InvalidArgumentError(
          "--guest-vectorized needs --guest-mrg-rxbuf=0 (virtio's vectorized Rx path has no "
          "mergeable buffers)");
    }
    o.guest_mrg_rxbuf = 0;
    if (!o.guest_packed) {
      if (o.guest_in_order == 1) {
        return absl::InvalidArgumentError(
            "--guest-vectorized on a split ring needs --guest-in-order=0 (virtio uses its in-order "
            "Rx path instead of the vectorized one when VIRTIO_F_IN_ORDER is negotiated)");
      }
      o.guest_in_order = 0;
    }
  }
  if (o.imix && size_given) {
    return absl::InvalidArgumentError("--imix and --size are exclusive");
  }
  if (o.idle_sleep_us < 0) {
    o.idle_sleep_us = o.mode == PeerMode::kPvp || o.mode == PeerMode::kNicLoop ? 0 : 50;
  }
  for (StreamOption& s : o.guest_check_streams) {
    if (s.flows == 0) s.flows = o.flows;
  }
  return o;
}

std::string PeerUsage(const char* argv0) {
  return absl::StrCat("usage: ", argv0,
                      " --mode=MODE [--nic-socket=PATH] [--guest-vhost=PATH] [options] "
                      "[-- EAL args]\n",
                      R"(
The "tester" of a PVP benchmark: the soft NIC's device side (the switch drives
it through the net_simnic PMD), a traffic generator feeding the NIC's wire, a
checker on what the switch transmits, and DPDK virtio-user guests, in one
process on one core or split over several processes.

  --mode=MODE               pvp (default): NIC -> switch -> guest -> switch -> NIC,
                            NIC and guest (echo) in this process.
                            nic-loop: no guest; what the switch transmits on the
                            NIC is checked directly (the switch loops the port).
                            nic: the NIC, generator and checker only; frames come
                            back through the switch from wherever (a guest in
                            another process), or not at all; a guest that
                            vanishes only costs frames (counted as lost).
                            guest: a guest only (EAL, no NIC): --guest-role echo
                            or check, and optionally its own generator stream.
  --nic-socket=PATH         pvp, nic-loop, nic: where the soft NIC listens for the
                            switch's PMD (--vdev net_simnic0,socket=PATH).
  --guest-vhost=PATH        pvp, guest: the switch's vhost-user socket. The guest
                            connects as client once it exists (hot-plug).
Guest (virtio-user devargs):
  --guest-packed[=0|1]      packed virtqueues (default 0)
  --guest-mrg-rxbuf=0|1     mergeable Rx buffers (default: virtio-user's, 1)
  --guest-in-order=0|1      VIRTIO_F_IN_ORDER (default: virtio-user's, 1)
  --guest-queue-size=N      ring size, a power of two (default 1024)
  --guest-vectorized[=0|1]  virtio's vectorized Rx path (default 0): vectorized=1,
                            and mergeable buffers off (and on a split ring
                            VIRTIO_F_IN_ORDER off) unless given otherwise; the
                            guest fails to attach unless the PMD really runs it
                            (its log says which Rx path it chose: guest_rx_path
                            in the report)
  --guest-mac=MAC           the guest's MAC (default 02:00:00:00:00:01)
  --guest-devargs=K=V,...   more virtio-user devargs, appended verbatim
  --guest-data-room=N       Rx mbuf data room, headroom included (default: one
                            mbuf holds the largest frame); smaller than a frame
                            needs mergeable buffers (Rx scatter is enabled)
  --guest-role=echo|check   guest mode: echo every frame back with MACs swapped
                            (default), or check every frame and send nothing
  --guest-check-streams=S[:FLOWS],...  role check: the generator streams
                            expected (default 1, with --flows flows each); each
                            is verified on its own (sequence per flow, payload
                            CRC, addresses); anything else counts as unexpected
  --guest-gen-stream=N      guest mode: also send generator stream N (1..255)
                            out of the guest, to --dst-mac, at --rate, --size,
                            --flows, for --duration seconds
  --guest-corrupt-canary    debug: damage one canary byte of the first frame
                            received (the report must show one violation)
Every guest Rx buffer has canaries before and after the area virtio posts
(guest_canary.h); each is checked when a frame arrives and at exit
(canary_violations in the report).
Traffic (UDP test frames: flow, sequence number, timestamp, checksums):
  --stream=N                the NIC generator's stream, 1..255 (default 1):
                            source IP 10.N.0.1+i, source MAC 02:00:00:NN:ii:ii
  --size=N                  RFC 2544 frame size with FCS, 64..9022 (default 64);
                            the bytes on the wire are N - 4 (1518 -> 1514 bytes)
  --imix                    64/570/1518 in the ratio 7:4:1 instead of --size
  --flows=N                 flows, 1..65535 (default 4): source IP 10.N.0.1+i and
                            UDP port 1024+i, source MAC 02:00:00:NN:ii:ii
  --dst-mac=MAC             destination MAC of every flow (default: the guest's
                            MAC, in every mode; a switch's NIC port must then be
                            promiscuous, as testpmd's and L2 switches' ports are);
                            required with --guest-gen-stream
  --rate=PPS                offered load (default 0: unpaced, as fast as the
                            switch takes frames: after a burst its NIC ring could
                            not take whole, warm-up probes until it takes one,
                            then test bursts again; the frames the full ring
                            refused count as lost)
  --duration=S              measured seconds (default 10; a guest's generator
                            runs this long, the guest itself until a signal)
  --verify=MODE             how much of each frame the checkers read: all (the
                            default), sample:N or headers. Every mode checks
                            every frame's headers, addresses, test header,
                            sequence, loss, duplicates and order; sample:N
                            reads the payload of one frame in N, headers none
                            (throughput runs at large frames: the tester then
                            costs less than the switch's copy). A guest checks
                            the canaries of as many of its Rx buffers (and of
                            every buffer at exit, in every mode)
  --warmup=S                traffic before the measurement, not counted
                            (default 1). Frames sent until the loop is proven
                            (the first frame back) never count.
Run:
  --core=N                  the core to poll on (default 0); -l N for EAL
  --setup-timeout=S         for the switch's PMD to connect, its vhost socket to
                            appear and the first frame to come back (default 30)
  --linger=S                after the run, serve the NIC until the switch closes
                            its port, at most S seconds (default 10)
  --report=FILE             write a JSON report (written whole, then renamed)
  --status-file=FILE        the same JSON, rewritten every 100 ms while running
                            ("final": false)
  --start-file=FILE         nic mode, guest generator: no traffic until FILE
                            exists (the NIC serves its driver meanwhile)
  --idle-sleep-us=N         sleep N us when a loop iteration found nothing to do
                            (default 0 in pvp and nic-loop, 50 in nic and guest)
  --help                    this text
Signals: SIGUSR1 ends the measurement now (drain and report as at the end of
--duration); SIGINT/SIGTERM interrupt a pvp/nic-loop/nic run (exit 3) and end
a guest (report written, exit 0).

EAL: arguments after -- replace the defaults, which are
  -l CORE --no-huge -m 512 --no-pci --no-shconf --no-telemetry
  --file-prefix iovtee-peer-PID
(virtio-user needs memfd-backed memory: --no-huge -m N, or --in-memory
--single-file-segments). nic-loop and nic modes start no EAL.

Output: a progress line per second on stderr, a summary on stdout.
Exit status: 0 the run completed (with or without loss), 1 set-up failed,
2 bad options, 3 interrupted.
)");
}

}  // namespace iovtee::softnic
