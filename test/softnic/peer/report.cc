#include "test/softnic/peer/report.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace iovtee::softnic {
namespace {

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      out += absl::StrFormat("\\u%04x", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

// Builds an object one "key": value line at a time.
class JsonObject {
 public:
  explicit JsonObject(int indent) : pad_(indent, ' ') {}
  void Add(const std::string& key, uint64_t v) { Raw(key, absl::StrCat(v)); }
  void Add(const std::string& key, double v) { Raw(key, absl::StrFormat("%.6g", v)); }
  void Add(const std::string& key, bool v) { Raw(key, v ? "true" : "false"); }
  void Add(const std::string& key, const std::string& v) { Raw(key, JsonString(v)); }
  void Add(const std::string& key, const JsonObject& o) { Raw(key, o.Close()); }
  void Raw(const std::string& key, const std::string& value) {
    absl::StrAppend(&body_, body_.empty() ? "" : ",\n", pad_, "  ", JsonString(key), ": ", value);
  }
  std::string Close() const { return absl::StrCat("{\n", body_, "\n", pad_, "}"); }

 private:
  std::string pad_;
  std::string body_;
};

struct QueueTotals {
  uint64_t packets = 0, bytes = 0, missed = 0, errors = 0;
};
QueueTotals Sum(const simnic::QueueCounters* q) {
  QueueTotals t;
  for (int i = 0; i < simnic::kMaxQueues; ++i) {
    t.packets += q[i].packets;
    t.bytes += q[i].bytes;
    t.missed += q[i].missed;
    t.errors += q[i].errors;
  }
  return t;
}

void AddGuest(JsonObject& o, const GuestPart& g) {
  o.Add("guest_present", g.present);
  o.Add("guest_devargs", g.devargs);
  o.Add("guest_rx_path", g.rx_path);
  o.Add("guest_tx_path", g.tx_path);
  o.Add("guest_data_room", uint64_t{g.data_room});
  o.Add("guest_link_up", g.link_up);
  o.Add("guest_rx", g.counters.rx);
  o.Add("guest_tx", g.counters.tx);
  o.Add("guest_drops", g.counters.drops);
  o.Add("guest_full_rx_bursts", g.counters.full_rx_bursts);
  o.Add("guest_rx_segments", g.counters.rx_segments);
  o.Add("guest_imissed", g.eth.imissed);
  o.Add("guest_ierrors", g.eth.ierrors);
  o.Add("guest_oerrors", g.eth.oerrors);
  o.Add("guest_rx_nombuf", g.eth.rx_nombuf);
  o.Add("canary_checked", g.canaries.checked);
  o.Add("canary_violations", g.canaries.violations);
  o.Add("canary_pool_checked", g.canaries.pool_checked);
  o.Add("canary_pool_check_done", g.canaries.pool_check_done);
  o.Add("canary_first_offset", g.canaries.first_offset);
}

// Per-flow lines for small flow counts (keys stay unique: PREFIXfN_KEY).
constexpr size_t kMaxFlowLines = 16;

void AddFlows(JsonObject& o, const std::string& prefix, const Summary& t, bool with_sent) {
  if (t.flows.size() > kMaxFlowLines) return;
  for (const FlowSummary& f : t.flows) {
    const std::string k = absl::StrCat(prefix, "f", f.flow, "_");
    if (with_sent) o.Add(k + "sent", f.sent);
    o.Add(k + "received", f.received);
  }
}

}  // namespace

CpuTimes ReadCpuTimes() {
  CpuTimes t;
  FILE* f = std::fopen("/proc/self/stat", "r");
  if (f == nullptr) return t;
  char buf[1024];
  const size_t n = std::fread(buf, 1, sizeof(buf) - 1, f);
  std::fclose(f);
  buf[n] = '\0';
  // Fields after the command name (which may hold spaces and parentheses):
  // state is field 3, utime 14, stime 15.
  const char* p = std::strrchr(buf, ')');
  unsigned long long utime = 0, stime = 0;
  if (p == nullptr || std::sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
                                  &utime, &stime) != 2) {
    return t;
  }
  const double hz = static_cast<double>(sysconf(_SC_CLK_TCK));
  t.user_s = static_cast<double>(utime) / hz;
  t.system_s = static_cast<double>(stime) / hz;
  return t;
}

std::string ReportJson(const PeerReport& r) {
  const Summary& t = r.traffic;
  JsonObject root(0);
  root.Add("mode", r.mode);
  root.Add("size", r.size);
  root.Add("flows", uint64_t{r.flows});
  root.Add("stream", uint64_t{r.stream});
  root.Add("rate_pps", r.rate_pps);
  root.Add("verify", r.verify);
  root.Add("final", r.final);
  root.Add("status_writes", r.status_writes);
  root.Add("phase", r.phase);
  root.Add("completed", r.completed);
  root.Add("error", r.error);
  root.Add("duration_s", r.duration_s);
  root.Add("drain_s", r.drain_s);
  root.Add("sent", t.sent);
  root.Add("received", t.received);
  root.Add("lost", t.lost);
  root.Add("corrupted", t.corrupted);
  root.Add("reordered", t.reordered);
  root.Add("duplicates", t.duplicates);
  root.Add("foreign", t.foreign);
  root.Add("too_late", t.too_late);
  root.Add("payload_checked", t.payload_checked);
  root.Add("gap_events", t.gap_events);
  root.Add("in_order", t.reordered == 0);
  root.Add("tx_mpps", r.tx_mpps());
  root.Add("rx_mpps", r.rx_mpps());
  root.Add("tx_gbps", r.tx_gbps());
  root.Add("rx_gbps", r.rx_gbps());
  root.Add("sent_bytes", r.sent_bytes);
  root.Add("received_bytes", r.received_bytes);
  root.Add("nic_rx_offered", r.nic_rx_offered);
  root.Add("nic_rx_taken", r.nic_rx_taken);
  JsonObject flows(2);
  AddFlows(flows, "", t, true);
  root.Add("per_flow", flows);

  JsonObject lat(2);
  lat.Add("latency_samples", t.latency.count);
  lat.Add("min_ns", t.latency.min_ns);
  lat.Add("p50_ns", t.latency.p50_ns);
  lat.Add("p99_ns", t.latency.p99_ns);
  lat.Add("p999_ns", t.latency.p999_ns);
  lat.Add("max_ns", t.latency.max_ns);
  lat.Add("mean_ns", t.latency.mean_ns);
  root.Add("latency", lat);

  JsonObject warm(2);
  warm.Add("warmup_sent", r.warmup_sent);
  warm.Add("warmup_received", r.warmup_received);
  warm.Add("prove_s", r.prove_s);
  root.Add("warmup", warm);

  const DeviceStats& d = r.device;
  const QueueTotals rx = Sum(d.rx), tx = Sum(d.tx);
  JsonObject dev(2);
  dev.Add("nic_connected", d.connected);
  dev.Add("nic_driver", d.driver_name);
  dev.Add("nic_rx_packets", rx.packets);
  dev.Add("nic_rx_bytes", rx.bytes);
  dev.Add("nic_rx_missed", rx.missed);
  dev.Add("nic_rx_errors", rx.errors);
  dev.Add("nic_tx_packets", tx.packets);
  dev.Add("nic_tx_bytes", tx.bytes);
  dev.Add("nic_tx_errors", tx.errors);
  dev.Add("iommu_faults", d.device.iommu_faults);
  dev.Add("rx_oversize", d.device.rx_oversize);
  dev.Add("rx_no_queue", d.device.rx_no_queue);
  dev.Add("rx_link_down", d.device.rx_link_down);
  dev.Add("rx_runt", d.rx_runt);
  dev.Add("rx_filtered", d.rx_filtered);
  dev.Add("rx_no_port", d.rx_no_port);
  dev.Add("tx_link_down", d.tx_link_down);
  dev.Add("tx_gathered", d.tx_gathered);
  dev.Add("ring_errors", d.ring_errors);
  dev.Add("stale_tables", d.stale_tables);
  dev.Add("nic_connections", d.connections);
  dev.Add("nic_disconnects", d.disconnects);
  dev.Add("control_errors", d.control_errors);
  dev.Add("dma_mappings", uint64_t{d.mappings});
  root.Add("device", dev);

  JsonObject guest(2);
  AddGuest(guest, r.guest);
  root.Add("guest", guest);

  JsonObject loop(2);
  loop.Add("loop_iterations", r.loop_iterations);
  loop.Add("busy_cycles", r.busy_cycles);
  loop.Add("busy_cycles_per_frame", r.busy_cycles_per_frame());
  loop.Add("nic_tx_polls", r.nic_tx_polls);
  loop.Add("nic_tx_full_polls", r.nic_tx_full_polls);
  root.Add("loop", loop);

  JsonObject cpu(2);
  cpu.Add("cpu_share", r.cpu_share);
  cpu.Add("cpu_user_s", r.cpu_user_s);
  cpu.Add("cpu_system_s", r.cpu_system_s);
  cpu.Add("cycles_per_frame", r.cycles_per_frame());
  cpu.Add("tsc_hz", r.tsc_hz);
  root.Add("cpu", cpu);
  return root.Close() + "\n";
}

std::string ReportText(const PeerReport& r) {
  const Summary& t = r.traffic;
  std::string out = absl::StrFormat(
      "simnic_peer: %s, %s B, %u flows, rate %s, verify %s: %s\n", r.mode, r.size, r.flows,
      r.rate_pps > 0 ? absl::StrFormat("%.0f pps", r.rate_pps) : "unpaced", r.verify,
      r.completed ? "completed" : absl::StrCat("NOT completed: ", r.error));
  absl::StrAppendFormat(&out,
                        "  measured %.3f s: sent %u (%.3f Mpps, %.3f Gbps), received %u (%.3f "
                        "Mpps, %.3f Gbps)\n",
                        r.duration_s, t.sent, r.tx_mpps(), r.tx_gbps(), t.received, r.rx_mpps(),
                        r.rx_gbps());
  absl::StrAppend(&out, "  ", t.ToString());
  const QueueTotals rx = Sum(r.device.rx), tx = Sum(r.device.tx);
  absl::StrAppendFormat(&out,
                        "  nic: rx %u missed %u errors %u, tx %u errors %u, iommu faults %u, "
                        "filtered %u, no port %u\n",
                        rx.packets, rx.missed, rx.errors, tx.packets, tx.errors,
                        r.device.device.iommu_faults, r.device.rx_filtered, r.device.rx_no_port);
  if (r.guest.present) {
    const GuestPart& g = r.guest;
    absl::StrAppendFormat(&out,
                          "  guest (%s Rx path): rx %u tx %u drops %u (imissed %u, rx_nombuf %u); "
                          "canaries: %u buffers checked, %u pool objects at exit, %u violations\n",
                          g.rx_path.empty() ? "unknown" : g.rx_path, g.counters.rx, g.counters.tx,
                          g.counters.drops, g.eth.imissed, g.eth.rx_nombuf, g.canaries.checked,
                          g.canaries.pool_checked, g.canaries.violations);
  }
  absl::StrAppendFormat(&out,
                        "  warm-up: %u sent, %u back (first after %.3f s); cpu share %.1f%% of "
                        "a core (user %.2f s, system %.2f s), %.0f cycles per frame back "
                        "(%.0f busy)\n",
                        r.warmup_sent, r.warmup_received, r.prove_s, 100 * r.cpu_share,
                        r.cpu_user_s, r.cpu_system_s, r.cycles_per_frame(),
                        r.busy_cycles_per_frame());
  return out;
}

std::string GuestReportJson(const GuestReport& r) {
  JsonObject root(0);
  root.Add("mode", std::string("guest"));
  root.Add("role", r.role);
  root.Add("final", r.final);
  root.Add("status_writes", r.status_writes);
  root.Add("phase", r.phase);
  root.Add("completed", r.completed);
  root.Add("error", r.error);
  root.Add("run_s", r.run_s);
  JsonObject guest(2);
  AddGuest(guest, r.guest);
  root.Add("guest", guest);

  // Check role: per stream, then totals over the streams.
  Summary total;
  JsonObject streams(2);
  for (const StreamChecker::Result& s : r.streams) {
    const std::string k = absl::StrCat("s", s.stream, "_");
    const Summary& t = s.summary;
    streams.Add(k + "received", t.received);
    streams.Add(k + "lost", t.lost);
    streams.Add(k + "gap_events", t.gap_events);
    streams.Add(k + "duplicates", t.duplicates);
    streams.Add(k + "reordered", t.reordered);
    streams.Add(k + "corrupted", t.corrupted);
    streams.Add(k + "foreign", t.foreign);
    streams.Add(k + "p50_ns", t.latency.p50_ns);
    streams.Add(k + "max_ns", t.latency.max_ns);
    AddFlows(streams, k, t, false);
    total.received += t.received;
    total.lost += t.lost;
    total.duplicates += t.duplicates;
    total.reordered += t.reordered;
    total.corrupted += t.corrupted;
    total.foreign += t.foreign;
  }
  root.Add("streams", streams);
  root.Add("received", total.received);
  root.Add("lost", total.lost);
  root.Add("duplicates", total.duplicates);
  root.Add("reordered", total.reordered);
  root.Add("corrupted", total.corrupted + r.warmup.corrupted);
  root.Add("foreign", total.foreign + r.warmup.foreign);
  root.Add("unexpected", r.unexpected);
  root.Add("warmup_received", r.warmup.received + r.warmup.duplicates);

  JsonObject gen(2);
  gen.Add("gen_stream", uint64_t{r.gen_stream});
  gen.Add("gen_size", r.size);
  gen.Add("gen_rate_pps", r.rate_pps);
  gen.Add("gen_started", r.gen_started);
  gen.Add("gen_done", r.gen_done);
  gen.Add("gen_generated", r.gen_generated);
  gen.Add("gen_sent", r.guest.counters.gen_sent);
  gen.Add("gen_refused", r.guest.counters.gen_refused);
  gen.Add("gen_nombuf", r.guest.counters.gen_nombuf);
  if (r.gen_per_flow.size() <= kMaxFlowLines) {
    for (size_t i = 0; i < r.gen_per_flow.size(); ++i) {
      gen.Add(absl::StrCat("gen_f", i, "_generated"), r.gen_per_flow[i]);
    }
  }
  root.Add("generator", gen);
  return root.Close() + "\n";
}

std::string GuestReportText(const GuestReport& r) {
  const GuestPart& g = r.guest;
  std::string out = absl::StrFormat(
      "simnic_peer: guest (%s) %s: rx %u tx %u drops %u, %u bytes data room; canaries: %u "
      "buffers checked, %u pool objects at exit, %u violations\n",
      r.role, r.completed ? "completed" : absl::StrCat("NOT completed: ", r.error), g.counters.rx,
      g.counters.tx, g.counters.drops, g.data_room, g.canaries.checked, g.canaries.pool_checked,
      g.canaries.violations);
  for (const StreamChecker::Result& s : r.streams) {
    absl::StrAppend(&out, "  stream ", s.stream, ": ", s.summary.ToString(4));
  }
  if (r.unexpected != 0) absl::StrAppend(&out, "  unexpected frames: ", r.unexpected, "\n");
  if (r.gen_stream != 0) {
    absl::StrAppendFormat(&out, "  generator stream %u: %u generated, %u sent, %u refused%s\n",
                          r.gen_stream, r.gen_generated, g.counters.gen_sent,
                          g.counters.gen_refused, r.gen_done ? " (done)" : "");
  }
  return out;
}

absl::Status WriteFileAtomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "w");
  if (f == nullptr) {
    return absl::UnavailableError(absl::StrCat("cannot write ", tmp, ": ", strerror(errno)));
  }
  const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  if (std::fclose(f) != 0 || !ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return absl::UnavailableError(absl::StrCat("cannot write ", path, ": ", strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace iovtee::softnic
