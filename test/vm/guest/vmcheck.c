/*
 * vmcheck: the frame checker and small network tools of the test guest
 * (statically linked into the initramfs; the guest has busybox and nothing
 * else). Every command prints its result as key=value lines on stdout and,
 * with --report FILE, writes them there too (written whole, then renamed).
 *
 *   vmcheck rx [--if eth0] [--streams S:FLOWS,...] [--echo] [--resync]
 *              [--count N] [--idle-exit MS] [--duration S] [--status FILE]
 *     Verifies every frame the interface receives (frame_check.h): a packet
 *     socket on all interfaces, filtered by name, so it survives the link
 *     going down, the driver being reloaded (a new ifindex) and keeps
 *     counting. --echo sends every test frame back with the MACs swapped.
 *     Ends on SIGINT/SIGTERM, after --count valid test frames, after
 *     --idle-exit ms without a frame (once one came), or after --duration.
 *   vmcheck udpecho [--port 5001]
 *     A UDP socket (the guest's IP stack) echoing every datagram of a test
 *     stream (from 10.x) to its sender after checking the test payload;
 *     warm-up datagrams are checked and counted only. Ends on
 *     SIGINT/SIGTERM.
 *   vmcheck tcprecv --port P / vmcheck tcpsend --to IP --port P --bytes N
 *     A TCP stream of a known pseudo-random pattern, every byte checked by
 *     the receiver (virtio checksum offload means nobody else checks them).
 *   vmcheck channels --if eth0 N      ethtool -L eth0 combined N
 *   vmcheck ethstats --if eth0        ethtool -S eth0
 * Exit status: 0 done, 1 failed (set-up, or a check failed), 2 bad usage.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/ethtool.h>
#include <linux/if_packet.h>
#include <linux/sockios.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "test/vm/guest/frame_check.h"

#define MAX_FRAME 9216
#define BATCH 32

static volatile sig_atomic_t g_stop;
static void on_signal(int sig) {
  (void)sig;
  g_stop = 1;
}

static void usage_exit(const char* msg) {
  fprintf(stderr, "vmcheck: %s (see the comment at the top of vmcheck.c)\n", msg);
  exit(2);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The result of a command: key=value lines, printed and optionally written
 * to a file (temporary name, then rename, so a reader never sees half). */
struct report {
  char buf[8192];
  size_t len;
};

static void put(struct report* r, const char* key, const char* fmt, ...) {
  if (r->len >= sizeof(r->buf)) return;
  int n = snprintf(r->buf + r->len, sizeof(r->buf) - r->len, "%s=", key);
  if (n > 0) r->len += (size_t)n;
  if (r->len >= sizeof(r->buf)) return;
  va_list ap;
  va_start(ap, fmt);
  n = vsnprintf(r->buf + r->len, sizeof(r->buf) - r->len, fmt, ap);
  va_end(ap);
  if (n > 0) r->len += (size_t)n;
  if (r->len + 1 < sizeof(r->buf)) r->buf[r->len++] = '\n';
}

static void write_file(const char* path, const struct report* r) {
  if (path == NULL) return;
  char tmp[512];
  snprintf(tmp, sizeof(tmp), "%s.tmp", path);
  FILE* f = fopen(tmp, "w");
  if (f == NULL) return;
  fwrite(r->buf, 1, r->len, f);
  fclose(f);
  rename(tmp, path);
}

static void finish(const char* path, const struct report* r) {
  fwrite(r->buf, 1, r->len, stdout);
  fflush(stdout);
  write_file(path, r);
}

static void install_signals(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_signal; /* no SA_RESTART: blocking calls return EINTR */
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
}

static int get_mac(int fd, const char* ifname, uint8_t mac[6]) {
  struct ifreq ifr;
  memset(&ifr, 0, sizeof(ifr));
  snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
  if (ioctl(fd, SIOCGIFHWADDR, &ifr) != 0) return -1;
  memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
  return 0;
}

static int parse_mac(const char* s, uint8_t mac[6]) {
  unsigned v[6];
  if (sscanf(s, "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6) return -1;
  for (int i = 0; i < 6; ++i) mac[i] = (uint8_t)v[i];
  return 0;
}

/* ---- rx ---------------------------------------------------------------- */

struct rx_run {
  struct vc_checker checker;
  const char* ifname;
  int echo;
  uint64_t echoed, echo_errors, other_if, outgoing;
  int last_echo_errno;
  uint64_t socket_drops; /* PACKET_STATISTICS: frames the socket could not queue */
};

static void rx_report(struct rx_run* run, int fd, struct report* r, double seconds) {
  struct tpacket_stats st;
  socklen_t sl = sizeof(st);
  if (getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, &st, &sl) == 0) {
    run->socket_drops += st.tp_drops; /* reading resets the kernel's counters */
  }
  struct vc_totals t;
  vc_get_totals(&run->checker, &t);
  memset(r, 0, sizeof(*r));
  put(r, "frames", "%llu", (unsigned long long)t.frames);
  put(r, "ok", "%llu", (unsigned long long)t.ok);
  put(r, "warmup", "%llu", (unsigned long long)t.warmup);
  put(r, "duplicates", "%llu", (unsigned long long)t.duplicates);
  put(r, "corrupted", "%llu", (unsigned long long)t.corrupted);
  put(r, "last_corruption", "%s", vc_reason_name(run->checker.last_corruption));
  put(r, "foreign", "%llu", (unsigned long long)t.foreign);
  put(r, "reordered", "%llu", (unsigned long long)t.reordered);
  put(r, "gap_events", "%llu", (unsigned long long)t.gap_events);
  put(r, "missing", "%llu", (unsigned long long)t.missing);
  put(r, "too_late", "%llu", (unsigned long long)t.too_late);
  put(r, "bytes", "%llu", (unsigned long long)t.bytes);
  put(r, "echoed", "%llu", (unsigned long long)run->echoed);
  put(r, "echo_errors", "%llu", (unsigned long long)run->echo_errors);
  put(r, "echo_errno", "%d", run->last_echo_errno);
  put(r, "socket_drops", "%llu", (unsigned long long)run->socket_drops);
  put(r, "other_if", "%llu", (unsigned long long)run->other_if);
  put(r, "seconds", "%.3f", seconds);
}

static int parse_streams(const char* s, uint32_t* ids, uint32_t* flows, uint32_t* n) {
  *n = 0;
  while (*s != '\0') {
    if (*n == VC_MAX_STREAMS) return -1;
    char* end;
    unsigned long id = strtoul(s, &end, 10), nf = 4;
    if (end == s) return -1;
    if (*end == ':') {
      const char* f = end + 1;
      nf = strtoul(f, &end, 10);
      if (end == f) return -1;
    }
    ids[*n] = (uint32_t)id;
    flows[*n] = (uint32_t)nf;
    ++*n;
    if (*end == ',')
      ++end;
    else if (*end != '\0')
      return -1;
    s = end;
  }
  return *n > 0 ? 0 : -1;
}

static int cmd_rx(int argc, char** argv) {
  const char* ifname = "eth0";
  const char* report_path = NULL;
  const char* status_path = NULL;
  const char* mac_arg = NULL;
  uint32_t ids[VC_MAX_STREAMS] = {1}, flows[VC_MAX_STREAMS] = {4}, nstreams = 1;
  int echo = 0, resync = 0;
  uint64_t count = 0;
  double idle_exit = 0, duration = 0;
  for (int i = 0; i < argc; ++i) {
    const char* a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--echo") == 0) {
      echo = 1;
    } else if (strcmp(a, "--resync") == 0) {
      resync = 1;
    } else if (v == NULL) {
      usage_exit("rx: option without a value");
    } else if (strcmp(a, "--if") == 0) {
      ifname = argv[++i];
    } else if (strcmp(a, "--streams") == 0) {
      if (parse_streams(argv[++i], ids, flows, &nstreams) != 0) usage_exit("rx: bad --streams");
    } else if (strcmp(a, "--mac") == 0) {
      mac_arg = argv[++i];
    } else if (strcmp(a, "--count") == 0) {
      count = strtoull(argv[++i], NULL, 10);
    } else if (strcmp(a, "--idle-exit") == 0) {
      idle_exit = strtod(argv[++i], NULL) / 1000.0;
    } else if (strcmp(a, "--duration") == 0) {
      duration = strtod(argv[++i], NULL);
    } else if (strcmp(a, "--report") == 0) {
      report_path = argv[++i];
    } else if (strcmp(a, "--status") == 0) {
      status_path = argv[++i];
    } else {
      usage_exit("rx: unknown option");
    }
  }
  int fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
  if (fd < 0) {
    perror("vmcheck rx: socket");
    return 1;
  }
  uint8_t mac[6];
  if (mac_arg != NULL ? parse_mac(mac_arg, mac) != 0 : get_mac(fd, ifname, mac) != 0) {
    fprintf(stderr, "vmcheck rx: no MAC for %s\n", ifname);
    return 1;
  }
  /* Frames arrive in bursts faster than an emulated CPU reads them. */
  int rcvbuf = 32 << 20;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) != 0) {
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  }
  struct sockaddr_ll any;
  memset(&any, 0, sizeof(any));
  any.sll_family = AF_PACKET;
  any.sll_protocol = htons(ETH_P_ALL);
  any.sll_ifindex = 0; /* every interface: survives a driver reload */
  if (bind(fd, (struct sockaddr*)&any, sizeof(any)) != 0) {
    perror("vmcheck rx: bind");
    return 1;
  }
  static struct rx_run run;
  memset(&run, 0, sizeof(run));
  if (vc_init(&run.checker, mac, ids, flows, nstreams, resync) != 0) usage_exit("rx: bad streams");
  run.ifname = ifname;
  run.echo = echo;
  install_signals();

  static uint8_t bufs[BATCH][MAX_FRAME];
  struct iovec iov[BATCH];
  struct sockaddr_ll from[BATCH];
  struct mmsghdr msgs[BATCH];
  int ifindex = (int)if_nametoindex(ifname);
  const double start = now_s();
  double last_frame = 0, next_status = start;
  struct report r;
  while (!g_stop) {
    double now = now_s();
    if (duration > 0 && now - start >= duration) break;
    if (idle_exit > 0 && last_frame > 0 && now - last_frame >= idle_exit) break;
    if (status_path != NULL && now >= next_status) {
      rx_report(&run, fd, &r, now - start);
      write_file(status_path, &r);
      next_status = now + 0.2;
    }
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    for (int i = 0; i < BATCH; ++i) {
      iov[i].iov_base = bufs[i];
      iov[i].iov_len = MAX_FRAME;
      memset(&msgs[i], 0, sizeof(msgs[i]));
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
      msgs[i].msg_hdr.msg_name = &from[i];
      msgs[i].msg_hdr.msg_namelen = sizeof(from[i]);
    }
    int n = recvmmsg(fd, msgs, BATCH, MSG_DONTWAIT, NULL);
    if (n <= 0) continue;
    for (int i = 0; i < n; ++i) {
      const struct sockaddr_ll* sll = &from[i];
      if (sll->sll_pkttype == PACKET_OUTGOING) {
        ++run.outgoing;
        continue;
      }
      if (sll->sll_ifindex != ifindex) {
        /* The driver may have been reloaded: the name has a new index. */
        ifindex = (int)if_nametoindex(ifname);
        if (sll->sll_ifindex != ifindex) {
          ++run.other_if;
          continue;
        }
      }
      uint32_t len = msgs[i].msg_len;
      enum vc_verdict v = vc_check(&run.checker, bufs[i], len);
      if (v != VC_CORRUPTED && v != VC_FOREIGN) last_frame = now_s();
      if (echo && (v == VC_OK || v == VC_WARMUP || v == VC_DUPLICATE)) {
        uint8_t tmp[6];
        memcpy(tmp, bufs[i], 6);
        memcpy(bufs[i], bufs[i] + 6, 6);
        memcpy(bufs[i] + 6, tmp, 6);
        struct sockaddr_ll to = *sll;
        to.sll_pkttype = 0;
        if (sendto(fd, bufs[i], len, 0, (struct sockaddr*)&to, sizeof(to)) == (ssize_t)len) {
          ++run.echoed;
        } else {
          ++run.echo_errors;
          run.last_echo_errno = errno;
        }
      }
    }
    if (count > 0) {
      struct vc_totals t;
      vc_get_totals(&run.checker, &t);
      if (t.ok >= count) break;
    }
  }
  rx_report(&run, fd, &r, now_s() - start);
  finish(report_path, &r);
  close(fd);
  struct vc_totals t;
  vc_get_totals(&run.checker, &t);
  return t.corrupted == 0 && t.duplicates == 0 ? 0 : 1;
}

/* ---- udpecho ----------------------------------------------------------- */

static int cmd_udpecho(int argc, char** argv) {
  int port = 5001;
  const char* report_path = NULL;
  for (int i = 0; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--port") == 0)
      port = atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--report") == 0)
      report_path = argv[i + 1];
    else
      usage_exit("udpecho: unknown option");
  }
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  int rcvbuf = 16 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf));
  struct sockaddr_in a;
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  if (fd < 0 || bind(fd, (struct sockaddr*)&a, sizeof(a)) != 0) {
    perror("vmcheck udpecho: bind");
    return 1;
  }
  install_signals();
  uint64_t ok = 0, bad = 0, echoed = 0, errors = 0, not_echoed = 0;
  int last_errno = 0;
  static uint8_t buf[MAX_FRAME];
  const double start = now_s();
  while (!g_stop) {
    struct sockaddr_in from;
    socklen_t fl = sizeof(from);
    ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr*)&from, &fl);
    if (n < 0) continue; /* EINTR: the loop condition decides */
    uint32_t flow, seq;
    if (vc_check_payload(buf, (uint32_t)n, &flow, &seq) == 0)
      ++ok;
    else
      ++bad;
    /* Only test streams (10.S.0.x) go back: the generator's checker takes
     * a warm-up frame by its source address, which an echo changes. */
    if ((ntohl(from.sin_addr.s_addr) >> 24) != 10) {
      ++not_echoed;
      continue;
    }
    if (sendto(fd, buf, (size_t)n, 0, (struct sockaddr*)&from, fl) == n) {
      ++echoed;
    } else {
      ++errors;
      last_errno = errno;
    }
  }
  struct report r;
  memset(&r, 0, sizeof(r));
  put(&r, "datagrams_ok", "%llu", (unsigned long long)ok);
  put(&r, "datagrams_bad", "%llu", (unsigned long long)bad);
  put(&r, "echoed", "%llu", (unsigned long long)echoed);
  put(&r, "echo_errors", "%llu", (unsigned long long)errors);
  put(&r, "echo_errno", "%d", last_errno);
  put(&r, "not_echoed", "%llu", (unsigned long long)not_echoed);
  put(&r, "seconds", "%.3f", now_s() - start);
  finish(report_path, &r);
  close(fd);
  return bad == 0 ? 0 : 1;
}

/* ---- tcp --------------------------------------------------------------- */

/* Byte `off` of the stream: SplitMix64 of the 8-byte word's index. */
static uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

static void fill_stream(uint8_t* p, uint64_t off, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    uint64_t o = off + i;
    p[i] = (uint8_t)(mix64(o >> 3) >> (8 * (o & 7)));
  }
}

static int cmd_tcprecv(int argc, char** argv) {
  int port = 0;
  const char* report_path = NULL;
  for (int i = 0; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--port") == 0)
      port = atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--report") == 0)
      report_path = argv[i + 1];
    else
      usage_exit("tcprecv: unknown option");
  }
  if (port <= 0) usage_exit("tcprecv: --port is required");
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  struct sockaddr_in a;
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  if (ls < 0 || bind(ls, (struct sockaddr*)&a, sizeof(a)) != 0 || listen(ls, 1) != 0) {
    perror("vmcheck tcprecv: listen");
    return 1;
  }
  install_signals();
  int fd = accept(ls, NULL, NULL);
  if (fd < 0) {
    perror("vmcheck tcprecv: accept");
    return 1;
  }
  const double start = now_s();
  static uint8_t buf[65536], want[65536];
  uint64_t off = 0, bad = 0, first_bad = UINT64_MAX;
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR && !g_stop) continue;
    if (n <= 0) break;
    fill_stream(want, off, (size_t)n);
    for (ssize_t i = 0; i < n; ++i) {
      if (buf[i] != want[i]) {
        if (first_bad == UINT64_MAX) first_bad = off + (uint64_t)i;
        ++bad;
      }
    }
    off += (uint64_t)n;
  }
  double secs = now_s() - start;
  struct report r;
  memset(&r, 0, sizeof(r));
  put(&r, "bytes", "%llu", (unsigned long long)off);
  put(&r, "bad_bytes", "%llu", (unsigned long long)bad);
  put(&r, "first_bad", "%lld", first_bad == UINT64_MAX ? -1LL : (long long)first_bad);
  put(&r, "seconds", "%.3f", secs);
  put(&r, "mbps", "%.2f", secs > 0 ? (double)off * 8 / secs / 1e6 : 0.0);
  finish(report_path, &r);
  close(fd);
  close(ls);
  return bad == 0 ? 0 : 1;
}

static int cmd_tcpsend(int argc, char** argv) {
  const char* to = NULL;
  const char* report_path = NULL;
  int port = 0;
  uint64_t bytes = 0;
  for (int i = 0; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--to") == 0)
      to = argv[i + 1];
    else if (strcmp(argv[i], "--port") == 0)
      port = atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--bytes") == 0)
      bytes = strtoull(argv[i + 1], NULL, 10);
    else if (strcmp(argv[i], "--report") == 0)
      report_path = argv[i + 1];
    else
      usage_exit("tcpsend: unknown option");
  }
  struct sockaddr_in a;
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  if (to == NULL || port <= 0 || inet_pton(AF_INET, to, &a.sin_addr) != 1) {
    usage_exit("tcpsend: --to IP --port P --bytes N");
  }
  install_signals();
  /* The receiver may not listen yet: retry for 10 s. */
  int fd = -1;
  const double deadline = now_s() + 10;
  while (!g_stop) {
    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(fd, (struct sockaddr*)&a, sizeof(a)) == 0) break;
    close(fd);
    fd = -1;
    if (now_s() > deadline) break;
    usleep(100000);
  }
  if (fd < 0) {
    perror("vmcheck tcpsend: connect");
    return 1;
  }
  const double start = now_s();
  static uint8_t buf[65536];
  uint64_t off = 0;
  int err = 0;
  while (off < bytes && !g_stop) {
    size_t n = bytes - off < sizeof(buf) ? (size_t)(bytes - off) : sizeof(buf);
    fill_stream(buf, off, n);
    size_t done = 0;
    while (done < n) {
      ssize_t w = write(fd, buf + done, n - done);
      if (w < 0 && errno == EINTR && !g_stop) continue;
      if (w <= 0) {
        err = errno;
        break;
      }
      done += (size_t)w;
    }
    off += done;
    if (done < n) break;
  }
  shutdown(fd, SHUT_WR);
  /* Wait for the receiver's close: everything was read. */
  while (read(fd, buf, sizeof(buf)) > 0) {
  }
  close(fd);
  double secs = now_s() - start;
  struct report r;
  memset(&r, 0, sizeof(r));
  put(&r, "bytes", "%llu", (unsigned long long)off);
  put(&r, "errno", "%d", err);
  put(&r, "seconds", "%.3f", secs);
  put(&r, "mbps", "%.2f", secs > 0 ? (double)off * 8 / secs / 1e6 : 0.0);
  finish(report_path, &r);
  return off == bytes ? 0 : 1;
}

/* ---- ethtool ----------------------------------------------------------- */

static int ethtool(const char* ifname, void* data) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof(ifr));
  snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
  ifr.ifr_data = data;
  int rc = ioctl(fd, SIOCETHTOOL, &ifr);
  int e = errno;
  close(fd);
  errno = e;
  return rc;
}

static int cmd_channels(int argc, char** argv) {
  const char* ifname = "eth0";
  int n = -1;
  for (int i = 0; i < argc; ++i) {
    if (strcmp(argv[i], "--if") == 0 && i + 1 < argc)
      ifname = argv[++i];
    else
      n = atoi(argv[i]);
  }
  if (n <= 0) usage_exit("channels: [--if NAME] N");
  struct ethtool_channels ch;
  memset(&ch, 0, sizeof(ch));
  ch.cmd = ETHTOOL_GCHANNELS;
  if (ethtool(ifname, &ch) != 0) {
    perror("vmcheck channels: ETHTOOL_GCHANNELS");
    return 1;
  }
  ch.cmd = ETHTOOL_SCHANNELS;
  ch.combined_count = (uint32_t)n;
  if (ethtool(ifname, &ch) != 0) {
    perror("vmcheck channels: ETHTOOL_SCHANNELS");
    return 1;
  }
  printf("combined=%u max_combined=%u\n", ch.combined_count, ch.max_combined);
  return 0;
}

static int cmd_ethstats(int argc, char** argv) {
  const char* ifname = argc >= 2 && strcmp(argv[0], "--if") == 0 ? argv[1] : "eth0";
  struct {
    struct ethtool_sset_info hdr;
    uint32_t len;
  } info;
  memset(&info, 0, sizeof(info));
  info.hdr.cmd = ETHTOOL_GSSET_INFO;
  info.hdr.sset_mask = 1ull << ETH_SS_STATS;
  if (ethtool(ifname, &info) != 0 || info.hdr.sset_mask == 0) {
    perror("vmcheck ethstats: ETHTOOL_GSSET_INFO");
    return 1;
  }
  uint32_t n = info.len;
  struct ethtool_gstrings* names = calloc(1, sizeof(*names) + (size_t)n * ETH_GSTRING_LEN);
  struct ethtool_stats* stats = calloc(1, sizeof(*stats) + (size_t)n * 8);
  names->cmd = ETHTOOL_GSTRINGS;
  names->string_set = ETH_SS_STATS;
  names->len = n;
  stats->cmd = ETHTOOL_GSTATS;
  stats->n_stats = n;
  if (ethtool(ifname, names) != 0 || ethtool(ifname, stats) != 0) {
    perror("vmcheck ethstats: ETHTOOL_GSTATS");
    return 1;
  }
  for (uint32_t i = 0; i < n; ++i) {
    printf("%.*s=%llu\n", ETH_GSTRING_LEN, (const char*)names->data + i * ETH_GSTRING_LEN,
           (unsigned long long)stats->data[i]);
  }
  free(names);
  free(stats);
  return 0;
}

int main(int argc, char** argv) {
  if (argc < 2) usage_exit("which command?");
  const char* cmd = argv[1];
  argc -= 2;
  argv += 2;
  if (strcmp(cmd, "rx") == 0) return cmd_rx(argc, argv);
  if (strcmp(cmd, "udpecho") == 0) return cmd_udpecho(argc, argv);
  if (strcmp(cmd, "tcprecv") == 0) return cmd_tcprecv(argc, argv);
  if (strcmp(cmd, "tcpsend") == 0) return cmd_tcpsend(argc, argv);
  if (strcmp(cmd, "channels") == 0) return cmd_channels(argc, argv);
  if (strcmp(cmd, "ethstats") == 0) return cmd_ethstats(argc, argv);
  usage_exit("unknown command");
  return 2;
}
