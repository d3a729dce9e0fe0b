/*
 * Verifies the soft NIC generator's test frames inside a Linux guest: plain
 * C, no allocation after init, no DPDK, so it links statically into the
 * guest's initramfs (vmcheck.c) and into a host unit test against the C++
 * generator (frame_check_test.cc).
 *
 * The frame format is test/softnic/traffic/test_frame.h; the addresses of
 * stream S, flow i are test/softnic/peer/stream.h's: source MAC
 * 02:00:00:SS:ii:ii, source IP 10.S.0.1+i, UDP 1024+i -> 5001, destination
 * IP 10.0.0.2, destination MAC the receiving guest's. Warm-up frames (source
 * IP 192.168.0.1+i) are checked for integrity only.
 *
 * Checked on every test frame, as the host's Checker does: IPv4 header
 * checksum, lengths (IP, UDP, test header, frame), never fragmented, the
 * test header's CRC32C over itself and the pattern, a UDP checksum when one
 * is set, and the flow's addresses (MACs may come swapped, IP addresses and
 * ports swapped together). Then the per-flow sequence: in order, gaps,
 * late arrivals, duplicates within a window of 1024.
 */
#ifndef IOVTEE_TEST_VM_GUEST_FRAME_CHECK_H_
#define IOVTEE_TEST_VM_GUEST_FRAME_CHECK_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VC_MAX_STREAMS 8
#define VC_MAX_FLOWS 256 /* per stream */
#define VC_WINDOW 1024   /* sequence numbers remembered for duplicates */

enum vc_verdict {
  VC_OK,        /* a valid test frame, first time seen */
  VC_WARMUP,    /* a valid warm-up frame */
  VC_DUPLICATE, /* valid, but this (stream, flow, seq) was seen already */
  VC_CORRUPTED, /* has the test magic but fails a check */
  VC_FOREIGN,   /* not a frame of an expected stream */
};

struct vc_flow {
  uint32_t next; /* sequence number expected next */
  uint8_t started;
  uint64_t received; /* unique valid frames */
  uint64_t duplicates;
  uint64_t reordered;  /* arrived after a later sequence number */
  uint64_t gap_events; /* times a sequence number was skipped */
  uint64_t missing;    /* skipped and not (yet) arrived late */
  uint64_t too_late;   /* late by more than the window: not dup-checked */
  uint64_t seen[VC_WINDOW / 64];
};

struct vc_stream {
  uint32_t id; /* 1..255 */
  uint32_t flows;
  struct vc_flow flow[VC_MAX_FLOWS];
};

struct vc_totals {
  uint64_t frames; /* everything handed to vc_check */
  uint64_t ok;
  uint64_t warmup;
  uint64_t duplicates;
  uint64_t corrupted;
  uint64_t foreign;
  uint64_t reordered;
  uint64_t gap_events;
  uint64_t missing;
  uint64_t too_late;
  uint64_t bytes; /* of the OK frames */
};

struct vc_checker {
  uint8_t own_mac[6];
  /* resync: the first frame of each flow sets where its sequence starts,
   * for a checker started while a stream is already running. */
  int resync;
  uint32_t nstreams;
  struct vc_stream stream[VC_MAX_STREAMS];
  uint64_t frames, warmup, corrupted, foreign, bytes;
  uint32_t last_corruption; /* reason code of the last corrupted frame */
};

/* Reasons for VC_CORRUPTED, for diagnostics (vc_reason_name). */
enum vc_reason {
  VC_R_NONE,
  VC_R_IP_CSUM,
  VC_R_IP_LEN,
  VC_R_FRAGMENT,
  VC_R_UDP_LEN,
  VC_R_CRC,
  VC_R_UDP_CSUM,
  VC_R_ADDRESS,
  VC_R_FLOW,
};
const char* vc_reason_name(uint32_t reason);

/* Sets up a checker for `nstreams` streams (ids[i], flows[i] flows each,
 * at most VC_MAX_STREAMS and VC_MAX_FLOWS). Returns 0, or -1 on bad input. */
int vc_init(struct vc_checker* c, const uint8_t own_mac[6], const uint32_t* ids,
            const uint32_t* flows, uint32_t nstreams, int resync);

/* Verifies one frame (Ethernet header first, no FCS). */
enum vc_verdict vc_check(struct vc_checker* c, const uint8_t* frame, uint32_t len);

void vc_get_totals(const struct vc_checker* c, struct vc_totals* t);

/* The test frame's checks without the sequence: VC_OK, VC_WARMUP,
 * VC_CORRUPTED (reason in *reason) or VC_FOREIGN; *stream, *flow and *seq
 * for a test frame. No state: usable on frames echoed by a socket. */
enum vc_verdict vc_inspect(const uint8_t own_mac[6], const uint8_t* frame, uint32_t len,
                           uint32_t* stream, uint32_t* flow, uint32_t* seq, uint32_t* reason);

/* The checks of a test UDP payload alone (test header + pattern), as a UDP
 * socket receives it: 0 when intact; *flow and *seq from its header. */
int vc_check_payload(const uint8_t* payload, uint32_t len, uint32_t* flow, uint32_t* seq);

/* CRC32C (Castagnoli) of data, continued from crc (0 to start). */
uint32_t vc_crc32c(uint32_t crc, const void* data, uint32_t len);

#ifdef __cplusplus
}
#endif

#endif /* IOVTEE_TEST_VM_GUEST_FRAME_CHECK_H_ */
