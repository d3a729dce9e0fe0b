#include "test/vm/guest/frame_check.h"

#include <string.h>

/* test/softnic/traffic/test_frame.h */
#define ETH_HLEN_ 14
#define VLAN_HLEN_ 4
#define IP_HLEN_ 20
#define UDP_HLEN_ 8
#define TEST_HLEN_ 18
#define TEST_MAGIC_ 0x7e57
/* test/softnic/peer/stream.h */
#define DST_IP_ 0x0a000002u
#define DST_PORT_ 5001
#define SRC_PORT_ 1024
#define WARMUP_NET_ 0xc0a8u /* 192.168.x.x */

static uint16_t be16(const uint8_t* p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t be32(const uint8_t* p) { return (uint32_t)be16(p) << 16 | be16(p + 2); }
static uint16_t le16(const uint8_t* p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t le32(const uint8_t* p) { return (uint32_t)le16(p) | (uint32_t)le16(p + 2) << 16; }

/* Slice-by-8 tables: no SSE4.2 assumed (the guest's CPU is emulated). */
static uint32_t crc_table[8][256];
static int crc_ready;

static void crc_init(void) {
  for (uint32_t b = 0; b < 256; ++b) {
    uint32_t c = b;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1)));
    crc_table[0][b] = c;
  }
  for (uint32_t b = 0; b < 256; ++b) {
    for (int t = 1; t < 8; ++t) {
      uint32_t prev = crc_table[t - 1][b];
      crc_table[t][b] = (prev >> 8) ^ crc_table[0][prev & 0xff];
    }
  }
  crc_ready = 1;
}

uint32_t vc_crc32c(uint32_t crc, const void* data, uint32_t len) {
  if (!crc_ready) crc_init();
  const uint8_t* p = (const uint8_t*)data;
  uint32_t c = ~crc;
  while (len >= 8) {
    uint32_t lo = c ^ le32(p), hi = le32(p + 4);
    c = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^ crc_table[5][(lo >> 16) & 0xff] ^
        crc_table[4][lo >> 24] ^ crc_table[3][hi & 0xff] ^ crc_table[2][(hi >> 8) & 0xff] ^
        crc_table[1][(hi >> 16) & 0xff] ^ crc_table[0][hi >> 24];
    p += 8;
    len -= 8;
  }
  while (len-- > 0) c = (c >> 8) ^ crc_table[0][(c ^ *p++) & 0xff];
  return ~c;
}

const char* vc_reason_name(uint32_t reason) {
  static const char* const names[] = {"none", "ip_checksum",  "ip_length", "fragment", "udp_length",
                                      "crc",  "udp_checksum", "address",   "flow"};
  return reason < sizeof(names) / sizeof(names[0]) ? names[reason] : "?";
}

static uint16_t fold(uint64_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)sum;
}

static int ip_checksum_ok(const uint8_t* ip) {
  uint64_t sum = 0;
  for (int i = 0; i < IP_HLEN_; i += 2) sum += be16(ip + i);
  return fold(sum) == 0xffff;
}

/* A UDP checksum someone filled in on the way (a guest's stack) must be
 * right. */
static int udp_checksum_ok(const uint8_t* ip, const uint8_t* udp, uint32_t udp_len) {
  uint64_t sum = 17 + udp_len;
  for (int i = 12; i < 20; i += 2) sum += be16(ip + i);
  uint32_t i = 0;
  for (; i + 1 < udp_len; i += 2) sum += be16(udp + i);
  if (i < udp_len) sum += (uint32_t)udp[i] << 8;
  return fold(sum) == 0xffff;
}

int vc_check_payload(const uint8_t* th, uint32_t len, uint32_t* flow, uint32_t* seq) {
  if (len < TEST_HLEN_ || le16(th) != TEST_MAGIC_ || le16(th + 12) != len) return -1;
  uint32_t check = vc_crc32c(0, th, 14) ^ vc_crc32c(0, th + TEST_HLEN_, len - TEST_HLEN_);
  if (check != le32(th + 14)) return -1;
  *flow = le16(th + 2);
  *seq = le32(th + 4);
  return 0;
}

enum vc_verdict vc_inspect(const uint8_t own_mac[6], const uint8_t* frame, uint32_t len,
                           uint32_t* stream, uint32_t* flow, uint32_t* seq, uint32_t* reason) {
  *reason = VC_R_NONE;
  if (len < ETH_HLEN_) return VC_FOREIGN;
  uint32_t l3 = ETH_HLEN_;
  uint16_t type = be16(frame + 12);
  if (type == 0x8100 || type == 0x88a8) {
    if (len < ETH_HLEN_ + VLAN_HLEN_) return VC_FOREIGN;
    type = be16(frame + 16);
    l3 += VLAN_HLEN_;
  }
  if (type != 0x0800 || len < l3 + IP_HLEN_ + UDP_HLEN_ + TEST_HLEN_) return VC_FOREIGN;
  const uint8_t* ip = frame + l3;
  if (ip[0] != 0x45 || ip[9] != 17) return VC_FOREIGN;
  const uint8_t* udp = ip + IP_HLEN_;
  const uint8_t* th = udp + UDP_HLEN_;
  if (le16(th) != TEST_MAGIC_) return VC_FOREIGN;

  /* It claims to be a test frame: from here on, a failed check is damage. */
  uint32_t ip_len = be16(ip + 2);
  if (!ip_checksum_ok(ip)) {
    *reason = VC_R_IP_CSUM;
    return VC_CORRUPTED;
  }
  if (ip_len < IP_HLEN_ + UDP_HLEN_ + TEST_HLEN_ || l3 + ip_len > len) {
    *reason = VC_R_IP_LEN; /* truncated; bytes beyond ip_len are padding */
    return VC_CORRUPTED;
  }
  if ((be16(ip + 6) & 0x3fff) != 0) {
    *reason = VC_R_FRAGMENT;
    return VC_CORRUPTED;
  }
  uint32_t udp_len = be16(udp + 4);
  if (udp_len != ip_len - IP_HLEN_ || le16(th + 12) != udp_len - UDP_HLEN_) {
    *reason = VC_R_UDP_LEN;
    return VC_CORRUPTED;
  }
  if (vc_check_payload(th, udp_len - UDP_HLEN_, flow, seq) != 0) {
    *reason = VC_R_CRC;
    return VC_CORRUPTED;
  }
  if (be16(udp + 6) != 0 && !udp_checksum_ok(ip, udp, udp_len)) {
    *reason = VC_R_UDP_CSUM;
    return VC_CORRUPTED;
  }

  /* Addresses: forward as generated, or echoed (MACs swapped; IPs and ports
   * swapped together). */
  uint32_t sip = be32(ip + 12), dip = be32(ip + 16);
  uint16_t sport = be16(udp), dport = be16(udp + 2);
  int reverse = dip >> 24 == 10 && dip != DST_IP_;
  uint32_t src_ip = reverse ? dip : sip, dst_ip = reverse ? sip : dip;
  uint16_t src_port = reverse ? dport : sport, dst_port = reverse ? sport : dport;
  const uint8_t* src_mac = frame + (reverse ? 0 : 6);
  const uint8_t* dst_mac = frame + (reverse ? 6 : 0);
  if (memcmp(dst_mac, own_mac, 6) != 0 && memcmp(src_mac, own_mac, 6) == 0) {
    const uint8_t* t = src_mac; /* MACs swapped by an echo, addresses not */
    src_mac = dst_mac;
    dst_mac = t;
  }
  if ((src_ip >> 16) == WARMUP_NET_) {
    *stream = 0;
    return VC_WARMUP; /* integrity only */
  }
  *stream = (src_ip >> 16) & 0xff;
  uint32_t i = *flow;
  const uint8_t want_mac[6] = {2, 0, 0, (uint8_t)*stream, (uint8_t)(i >> 8), (uint8_t)i};
  if ((src_ip >> 24) != 10 || src_ip != (0x0a000001u | *stream << 16) + i || dst_ip != DST_IP_ ||
      src_port != (uint16_t)(SRC_PORT_ + i) || dst_port != DST_PORT_ ||
      memcmp(src_mac, want_mac, 6) != 0 || memcmp(dst_mac, own_mac, 6) != 0) {
    *reason = VC_R_ADDRESS;
    return VC_CORRUPTED;
  }
  return VC_OK;
}

int vc_init(struct vc_checker* c, const uint8_t own_mac[6], const uint32_t* ids,
            const uint32_t* flows, uint32_t nstreams, int resync) {
  memset(c, 0, sizeof(*c));
  if (nstreams > VC_MAX_STREAMS) return -1;
  memcpy(c->own_mac, own_mac, 6);
  c->resync = resync;
  c->nstreams = nstreams;
  for (uint32_t s = 0; s < nstreams; ++s) {
    if (ids[s] < 1 || ids[s] > 255 || flows[s] < 1 || flows[s] > VC_MAX_FLOWS) return -1;
    c->stream[s].id = ids[s];
    c->stream[s].flows = flows[s];
  }
  return 0;
}

static uint64_t* seen_word(struct vc_flow* f, uint32_t s) { return &f->seen[(s % VC_WINDOW) / 64]; }
static uint64_t seen_bit(uint32_t s) { return (uint64_t)1 << (s % 64); }

/* Sequence tracking, the same rules as the host's Checker::Track. */
static enum vc_verdict track(struct vc_flow* f, uint32_t seq, int resync) {
  if (!f->started) {
    f->started = 1;
    if (resync) f->next = seq;
  }
  int32_t d = (int32_t)(seq - f->next);
  if (d >= 0) {
    if (d > 0) {
      ++f->gap_events;
      f->missing += (uint32_t)d;
    }
    if ((uint32_t)d >= VC_WINDOW) {
      memset(f->seen, 0, sizeof(f->seen));
    } else {
      for (uint32_t s = f->next; s != seq; ++s) *seen_word(f, s) &= ~seen_bit(s);
    }
    *seen_word(f, seq) |= seen_bit(seq);
    f->next = seq + 1;
    ++f->received;
    return VC_OK;
  }
  uint32_t age = (uint32_t)(-(int64_t)d);
  if (age <= VC_WINDOW && (*seen_word(f, seq) & seen_bit(seq)) != 0) {
    ++f->duplicates;
    return VC_DUPLICATE;
  }
  if (age <= VC_WINDOW) {
    *seen_word(f, seq) |= seen_bit(seq);
  } else {
    ++f->too_late;
  }
  ++f->reordered;
  ++f->received;
  if (f->missing > 0) --f->missing;
  return VC_OK;
}

enum vc_verdict vc_check(struct vc_checker* c, const uint8_t* frame, uint32_t len) {
  ++c->frames;
  uint32_t stream = 0, flow = 0, seq = 0, reason = 0;
  enum vc_verdict v = vc_inspect(c->own_mac, frame, len, &stream, &flow, &seq, &reason);
  if (v == VC_WARMUP) {
    ++c->warmup;
    return v;
  }
  if (v == VC_CORRUPTED) {
    ++c->corrupted;
    c->last_corruption = reason;
    return v;
  }
  if (v == VC_FOREIGN) {
    ++c->foreign;
    return v;
  }
  for (uint32_t s = 0; s < c->nstreams; ++s) {
    struct vc_stream* st = &c->stream[s];
    if (st->id != stream) continue;
    if (flow >= st->flows) break;
    v = track(&st->flow[flow], seq, c->resync);
    if (v == VC_OK) c->bytes += len;
    return v;
  }
  ++c->foreign; /* a valid frame of a stream or flow not expected here */
  return VC_FOREIGN;
}

void vc_get_totals(const struct vc_checker* c, struct vc_totals* t) {
  memset(t, 0, sizeof(*t));
  t->frames = c->frames;
  t->warmup = c->warmup;
  t->corrupted = c->corrupted;
  t->foreign = c->foreign;
  t->bytes = c->bytes;
  for (uint32_t s = 0; s < c->nstreams; ++s) {
    for (uint32_t i = 0; i < c->stream[s].flows; ++i) {
      const struct vc_flow* f = &c->stream[s].flow[i];
      t->ok += f->received;
      t->duplicates += f->duplicates;
      t->reordered += f->reordered;
      t->gap_events += f->gap_events;
      t->missing += f->missing;
      t->too_late += f->too_late;
    }
  }
}
