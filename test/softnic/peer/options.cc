#include "test/softnic/peer/options.h"

#include <cmath>
#include <cstdio>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace iovtee::softnic {
namespace {

bool ParseMac(const std::string& s, uint8_t out[6]) {
  unsigned v[6];
  char extra;
  if (std::sscanf(s.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                  &extra) != 6) {
    return false;
  }
  for (int i = 0; i < 6; ++i) out[i] = static_cast<uint8_t>(v[i]);
  return true;
}

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
  return key == "help" || key == "imix" || key == "guest-packed" || key == "guest-vectorized";
}

absl::Status Apply(const std::string& key, const std::string& value, PeerOptions* o) {
  if (key == "help") return ParseBool(key, value, &o->help);
  if (key == "mode") {
    if (value == "pvp") {
      o->mode = PeerMode::kPvp;
    } else if (value == "nic-loop") {
      o->mode = PeerMode::kNicLoop;
    } else {
      return Bad(key, value, "pvp or nic-loop");
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
  if (key == "dst-mac") {
    o->have_dst_mac = ParseMac(value, o->dst_mac);
    return o->have_dst_mac ? absl::OkStatus() : Bad(key, value, "xx:xx:xx:xx:xx:xx");
  }
  if (key == "size") return ParseUint<uint32_t>(key, value, 64, 9022, &o->frame_size);
  if (key == "imix") return ParseBool(key, value, &o->imix);
  if (key == "flows") return ParseUint<uint32_t>(key, value, 1, 65536, &o->flows);
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

  if (o.nic_socket.empty()) return absl::InvalidArgumentError("--nic-socket is required");
  if (o.mode == PeerMode::kPvp && o.guest_vhost.empty()) {
    return absl::InvalidArgumentError("--mode=pvp needs --guest-vhost (or use --mode=nic-loop)");
  }
  if (o.mode == PeerMode::kNicLoop && !o.guest_vhost.empty()) {
    return absl::InvalidArgumentError("--guest-vhost makes no sense with --mode=nic-loop");
  }
  if (o.mode == PeerMode::kNicLoop && !o.eal_args.empty()) {
    return absl::InvalidArgumentError("--mode=nic-loop starts no EAL: drop the arguments after --");
  }
  if (o.guest_vectorized && o.guest_mrg_rxbuf == 1) {
    return absl::InvalidArgumentError(
        "--guest-vectorized needs --guest-mrg-rxbuf=0 (virtio's vectorized Rx path has no "
        "mergeable buffers)");
  }
  if (o.imix && size_given) {
    return absl::InvalidArgumentError("--imix and --size are exclusive");
  }
  return o;
}

std::string PeerUsage(const char* argv0) {
  return absl::StrCat("usage: ", argv0,
                      " --nic-socket=PATH [--guest-vhost=PATH] [options] [-- EAL args]\n",
                      R"(
The "tester" of a PVP benchmark, on one core: the soft NIC's device side (the
switch drives it through the net_simnic PMD), a traffic generator feeding the
NIC's wire, a checker on what the switch transmits, and (pvp mode) a DPDK
virtio-user guest that echoes every frame back with MACs swapped.

  --mode=pvp|nic-loop       pvp (default): NIC -> switch -> guest -> switch -> NIC.
                            nic-loop: no guest; what the switch transmits on the
                            NIC is checked directly (the switch loops the port).
  --nic-socket=PATH         where the soft NIC listens for the switch's PMD
                            (--vdev net_simnic0,socket=PATH). Required.
  --guest-vhost=PATH        pvp: the switch's vhost-user socket. The guest
                            connects as client once it exists (hot-plug).
Guest (virtio-user devargs):
  --guest-packed[=0|1]      packed virtqueues (default 0)
  --guest-mrg-rxbuf=0|1     mergeable Rx buffers (default: virtio-user's, 1)
  --guest-in-order=0|1      VIRTIO_F_IN_ORDER (default: virtio-user's, 1)
  --guest-queue-size=N      ring size, a power of two (default 1024)
  --guest-vectorized[=0|1]  vectorized Rx/Tx paths (default 0)
  --guest-mac=MAC           the guest's MAC (default 02:00:00:00:00:01)
  --guest-devargs=K=V,...   more virtio-user devargs, appended verbatim
Traffic (UDP test frames: flow, sequence number, timestamp, checksums):
  --size=N                  RFC 2544 frame size with FCS, 64..9022 (default 64);
                            the bytes on the wire are N - 4 (1518 -> 1514 bytes)
  --imix                    64/570/1518 in the ratio 7:4:1 instead of --size
  --flows=N                 flows, 1..65536 (default 4): source IP 10.0.0.1+i and
                            UDP port 1024+i, source MAC 02:00:00:01:ii:ii
  --dst-mac=MAC             destination MAC of every flow (default: the guest's
                            MAC, in both modes; a switch's NIC port must then be
                            promiscuous, as testpmd's and L2 switches' ports are)
  --rate=PPS                offered load (default 0: unpaced, as fast as the
                            switch takes frames: after a burst its NIC ring could
                            not take whole, warm-up probes until it takes one,
                            then test bursts again; the frames the full ring
                            refused count as lost)
  --duration=S              measured seconds (default 10)
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
  --help                    this text

EAL: arguments after -- replace the defaults, which are
  -l CORE --no-huge -m 512 --no-pci --no-shconf --no-telemetry
  --file-prefix iovtee-peer-PID
(virtio-user needs memfd-backed memory: --no-huge -m N, or --in-memory
--single-file-segments). nic-loop mode starts no EAL.

Output: a progress line per second on stderr, a summary on stdout.
Exit status: 0 the run completed (with or without loss), 1 set-up failed,
2 bad options, 3 interrupted.
)");
}

}  // namespace iovtee::softnic
