/* Compiled as strict C11 (-std=c11 -Wpedantic -Werror): iovtee.h is plain C,
 * pulls in no DPDK header, and its struct layouts are frozen (appending a
 * field is the only change allowed: add its offset below). */
#include "iovtee/iovtee.h"

#include <stddef.h>

#if defined(_RTE_MBUF_H_) || defined(_RTE_MEMPOOL_H_)
#error "iovtee.h must not include DPDK headers"
#endif
#ifdef __cplusplus
#error "compile this file as C"
#endif

#define IOVTEE_AT(type, field, offset) \
  _Static_assert(offsetof(struct type, field) == (offset), #type "." #field " moved")

IOVTEE_AT(iovtee_mapping_options, size, 0);
IOVTEE_AT(iovtee_mapping_options, residency_cap, 8);
IOVTEE_AT(iovtee_mapping_options, nic_buffer_size, 12);
IOVTEE_AT(iovtee_mapping_options, mbuf_priv_size, 14);
IOVTEE_AT(iovtee_mapping_options, pool_size, 16);
IOVTEE_AT(iovtee_mapping_options, socket_id, 20);
IOVTEE_AT(iovtee_mapping_options, drain_timeout_ms, 24);
IOVTEE_AT(iovtee_mapping_options, guest_rx_order, 28);
_Static_assert(sizeof(struct iovtee_mapping_options) == 32,
               "options grew: add the new field above");

IOVTEE_AT(iovtee_mapping_stats, size, 0);
IOVTEE_AT(iovtee_mapping_stats, attached, 8);
IOVTEE_AT(iovtee_mapping_stats, zero_copy, 16);
IOVTEE_AT(iovtee_mapping_stats, copied, 24);
IOVTEE_AT(iovtee_mapping_stats, bytes, 32);
IOVTEE_AT(iovtee_mapping_stats, copy_foreign, 40);
IOVTEE_AT(iovtee_mapping_stats, copy_host_buffer, 48);
IOVTEE_AT(iovtee_mapping_stats, copy_multi_segment, 56);
IOVTEE_AT(iovtee_mapping_stats, copy_shared, 64);
IOVTEE_AT(iovtee_mapping_stats, copy_stale_session, 72);
IOVTEE_AT(iovtee_mapping_stats, copy_layout, 80);
IOVTEE_AT(iovtee_mapping_stats, copy_order_unproven, 88);
IOVTEE_AT(iovtee_mapping_stats, drop_no_buffer, 96);
IOVTEE_AT(iovtee_mapping_stats, drop_too_big, 104);
IOVTEE_AT(iovtee_mapping_stats, drop_offload, 112);
IOVTEE_AT(iovtee_mapping_stats, drop_broken_queue, 120);
IOVTEE_AT(iovtee_mapping_stats, drop_no_guest, 128);
IOVTEE_AT(iovtee_mapping_stats, guest_buffers_held, 136);
IOVTEE_AT(iovtee_mapping_stats, guest_buffers_lent, 144);
IOVTEE_AT(iovtee_mapping_stats, host_buffers_posted, 152);
IOVTEE_AT(iovtee_mapping_stats, guest_buffers_recycled, 160);
IOVTEE_AT(iovtee_mapping_stats, guest_buffers_orphaned, 168);
IOVTEE_AT(iovtee_mapping_stats, validation_errors, 176);
IOVTEE_AT(iovtee_mapping_stats, attaches, 184);
IOVTEE_AT(iovtee_mapping_stats, detaches, 192);
IOVTEE_AT(iovtee_mapping_stats, order_probation, 200);
IOVTEE_AT(iovtee_mapping_stats, quarantined_sessions, 208);
IOVTEE_AT(iovtee_mapping_stats, notify_retries, 216);
IOVTEE_AT(iovtee_mapping_stats, pool_mbufs, 224);
IOVTEE_AT(iovtee_mapping_stats, pool_free_mbufs, 232);
IOVTEE_AT(iovtee_mapping_stats, nic_wrote_outside, 240);
IOVTEE_AT(iovtee_mapping_stats, lending_disabled, 248);
IOVTEE_AT(iovtee_mapping_stats, drop_detach, 256);
_Static_assert(sizeof(struct iovtee_mapping_stats) == 264, "stats grew: add the new field above");

/* Every function, called the way a C host calls it (types checked by the
 * compiler; this function is never run). */
int iovtee_abi_check_calls(struct rte_mbuf** pkts, struct rte_mempool* mp);
int iovtee_abi_check_calls(struct rte_mbuf** pkts, struct rte_mempool* mp) {
  char err[128];
  struct iovtee_mapping_options o;
  struct iovtee_mapping_stats s;
  struct iovtee_mapping* m = NULL;
  const char* names[4];
  uint64_t values[4];
  int rc = 0;
  rc |= (int)iovtee_abi_version() - IOVTEE_ABI_VERSION;
  rc |= iovtee_version()[0] == '\0';
  rc |= iovtee_mapping_options_init(&o, sizeof o);
  o.guest_rx_order = IOVTEE_GUEST_RX_ORDER_TRUST_IDS;
  rc |= iovtee_mapping_stats_init(&s, sizeof s);
  rc |= iovtee_prepare_vhost_socket("/tmp/x.sock", err, sizeof err);
  rc |= iovtee_mapping_create(0, 0, &o, &m, err, sizeof err);
  rc |= iovtee_mapping_mempool(m) == NULL;
  rc |= iovtee_mapping_rx_burst(m, pkts, 32);
  rc |= iovtee_mapping_attach_guest(m, 0, 0, err, sizeof err);
  rc |= iovtee_mapping_attached(m);
  rc |= iovtee_mapping_enqueue(m, pkts, 32);
  rc |= iovtee_mapping_get_stats(m, &s);
  rc |= iovtee_mapping_get_counters(m, names, values, 4);
  rc |= iovtee_unshare(pkts[0], mp) == NULL;
  rc |= iovtee_mapping_detach_guest(m, err, sizeof err);
  iovtee_mapping_destroy(m);
  return rc;
}
