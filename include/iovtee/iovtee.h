/* iovtee C ABI: the Rx queue mapping for C hosts (Open vSwitch, C switches).
 *
 * The same mapping as include/iovtee/mapping.h (read its comment for what a
 * mapping is), behind plain C11 functions on an opaque handle. Link
 * libiovtee.so (it exports only the iovtee_* functions below) or the static
 * library //src/capi:capi. This header needs no DPDK or C++ header: it
 * declares struct rte_mbuf and struct rte_mempool only as incomplete types.
 *
 * Use, in the order a vhost-user backend sets things up:
 *   1. rte_vhost_driver_register(path, flags);
 *      iovtee_prepare_vhost_socket(path, err, sizeof err);
 *      rte_vhost_driver_start(path);
 *   2. struct iovtee_mapping_options o;
 *      iovtee_mapping_options_init(&o, sizeof o);  (then change what you need)
 *      iovtee_mapping_create(port, queue, &o, &m, err, sizeof err);
 *      rte_eth_rx_queue_setup(port, queue, nb_desc, socket, &rxconf,
 *                             iovtee_mapping_mempool(m));
 *   3. Poll with iovtee_mapping_rx_burst() instead of rte_eth_rx_burst().
 *   4. new_device / vring enabled: iovtee_mapping_attach_guest(m, vid, 0, ...).
 *      destroy_device, and before the guest's memory table changes:
 *      iovtee_mapping_detach_guest(m, ...).
 *   5. Send frames for that guest Rx queue with iovtee_mapping_enqueue(),
 *      never with rte_vhost_enqueue_burst(): the mapping is the ring's only
 *      consumer. Enqueue consumes every mbuf: do not free them afterwards.
 *   6. Stop (or close) the port, then iovtee_mapping_destroy(m).
 * Never rte_pktmbuf_clone() or rte_pktmbuf_attach() an mbuf received on a
 * mapped queue; copy it, or iovtee_unshare() it before growing it in front
 * (VLAN push, tunnel encapsulation: there is no headroom in guest buffers).
 *
 * Errors: control functions return 0 or a negative errno and, when `err` is
 * not NULL and `err_size` > 0, write a message a user can act on into `err`
 * (always NUL-terminated, truncated to err_size - 1 bytes; "" on success).
 * The errno values:
 *   -EINVAL   bad argument (NULL pointer, bad option value, odd vring index)
 *   -ENODEV   no such port, vhost device or registered vhost-user socket
 *   -EBUSY    the mapping already serves a guest
 *   -ENOTSUP  the guest or the NIC lacks something the mapping needs
 *             (VIRTIO_F_IN_ORDER negotiated, a vIOMMU, IOVA-as-PA, a driver
 *             without DMA mapping, a legacy header size, ring not set up)
 *   -EAGAIN   not now (live-migration logging on, no memory table yet)
 *   -ENOMEM   out of memory, or the mempool could not be created
 *   -E2BIG    an options struct from a newer header sets fields this
 *             library does not know
 *   -EEXIST, -ETIMEDOUT, -ERANGE, -EPERM, -EACCES, -ECANCELED, -EIO: the
 *             remaining absl status codes, EIO for internal errors.
 * No C++ exception crosses this interface: control functions turn one into
 * -ENOMEM (std::bad_alloc) or -EIO; the datapath functions do not throw (if
 * one did, the process would terminate rather than unwind through C).
 *
 * Threads (as in mapping.h): rx_burst, enqueue and get_stats may run on any
 * threads, but one thread at a time for each of rx_burst and enqueue on a
 * given mapping (the host serialises them, e.g. one PMD thread per Rx queue
 * and OVS's per-txq lock for a shared vhost Tx queue). attach_guest and
 * detach_guest run on a control thread (vhost's callbacks) and wait, bounded,
 * for rx_burst/enqueue calls in progress; rx_burst returns 0 and enqueue
 * drops (counted) while a detach is in progress. create and destroy must not
 * race with any other call on the same mapping.
 *
 * ABI versioning: iovtee_mapping_options and iovtee_mapping_stats start with
 * a `size` field that the caller sets to sizeof the struct it was compiled
 * with (the *_init functions do it). New fields are only ever appended, and
 * a field added later is 0 when its default applies. The library reads and
 * writes only the fields that lie entirely within `size`: an older, smaller
 * struct gets defaults for the fields it lacks; a newer, larger one has the
 * tail it does not know zeroed (stats) or checked to be zero (options).
 * IOVTEE_ABI_VERSION changes only when a function or an existing field
 * changes incompatibly.
 */
#ifndef IOVTEE_INCLUDE_IOVTEE_IOVTEE_H_
#define IOVTEE_INCLUDE_IOVTEE_IOVTEE_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
/* For C++ callers: no function here throws. */
#define IOVTEE_NOEXCEPT noexcept
extern "C" {
#else
#define IOVTEE_NOEXCEPT
#endif

#define IOVTEE_ABI_VERSION 1

struct rte_mbuf;
struct rte_mempool;

/* One NIC Rx queue mapped (or ready to be mapped) onto a guest Rx queue. */
struct iovtee_mapping;

/* Values of iovtee_mapping_options.guest_rx_order. */
enum iovtee_guest_rx_order {
  /* Split ring, mergeable buffers off: copy every frame, in ring order, until
   * the guest posts a buffer out of identity order (only drivers that read
   * used ids do), then lend buffers. DPDK's vectorized split Rx path
   * (virtio-user vectorized=1) reads used entries by position and could not
   * take out-of-order completions; nothing in the negotiation reveals it. */
  IOVTEE_GUEST_RX_ORDER_DETECT = 0,
  /* Lend buffers at once: for guests known to read ids (Linux virtio-net,
   * DPDK with vectorized=0). */
  IOVTEE_GUEST_RX_ORDER_TRUST_IDS = 1
};

struct iovtee_mapping_options {
  size_t size; /* sizeof(struct iovtee_mapping_options) as the caller sees it */
  /* Guest buffers the NIC may hold at once (posted in its ring, or received
   * and not yet sent on). 0: half the guest's Rx ring. */
  uint32_t residency_cap;
  /* Bytes the NIC may write into one buffer: the queue's buffer size, the
   * mempool's data room minus RTE_PKTMBUF_HEADROOM. Only guest buffers with
   * room for the virtio-net header plus this many bytes go to the NIC.
   * Default 1518; at least 64. */
  uint16_t nic_buffer_size;
  /* As rte_pktmbuf_pool_create's priv_size (OVS: its dp_packet area).
   * Default 0. */
  uint16_t mbuf_priv_size;
  /* mbufs in the mapping's mempool: at least the NIC ring size plus what the
   * switch holds in flight. Default 4096; at least 64. */
  uint32_t pool_size;
  /* NUMA socket of the mempool. Default -1 (SOCKET_ID_ANY): the port's. */
  int32_t socket_id;
  /* How long detach_guest waits for mbufs the switch still holds.
   * Default 1000. */
  uint32_t drain_timeout_ms;
  /* enum iovtee_guest_rx_order. Default IOVTEE_GUEST_RX_ORDER_DETECT. */
  uint32_t guest_rx_order;
};

/* Every counter, as uint64_t, in the order (and with the names) of
 * iovtee_mapping_get_counters. */
struct iovtee_mapping_stats {
  size_t size;        /* sizeof(struct iovtee_mapping_stats) as the caller sees it */
  uint64_t attached;  /* 1 while a guest is attached */
  uint64_t zero_copy; /* frames completed in place */
  uint64_t copied;    /* frames delivered by copy */
  uint64_t bytes;     /* frame bytes delivered, either way */
  /* Why frames were copied. */
  uint64_t copy_foreign;        /* from another port */
  uint64_t copy_host_buffer;    /* from the mapped queue, but in a host buffer */
  uint64_t copy_multi_segment;  /* a chain of several mbufs */
  uint64_t copy_shared;         /* refcount > 1 or attached */
  uint64_t copy_stale_session;  /* a buffer of an earlier guest session */
  uint64_t copy_layout;         /* data no longer starts in its guest buffer */
  uint64_t copy_order_unproven; /* the guest's Rx order is on probation */
  /* Why frames were dropped (each was freed). */
  uint64_t drop_no_buffer;    /* the guest posted no (or too few) buffers */
  uint64_t drop_too_big;      /* larger than a buffer, mergeable off */
  uint64_t drop_offload;      /* an offload request the guest cannot take */
  uint64_t drop_broken_queue; /* the guest broke the virtio rules earlier */
  uint64_t drop_no_guest;     /* enqueue with no guest attached */
  /* Buffers. */
  uint64_t guest_buffers_held;     /* guest buffers lent to the NIC side now */
  uint64_t guest_buffers_lent;     /* ever */
  uint64_t host_buffers_posted;    /* NIC refills served with host buffers */
  uint64_t guest_buffers_recycled; /* mapped mbufs freed elsewhere, reposted */
  uint64_t guest_buffers_orphaned; /* freed after their guest session ended */
  uint64_t validation_errors;      /* descriptors that broke the virtio rules */
  uint64_t attaches;
  uint64_t detaches;
  uint64_t order_probation;      /* 1 while frames are copied until the guest
                                    shows it reads used ids (guest_rx_order) */
  uint64_t quarantined_sessions; /* detaches that kept guest memory mapped
                                    (the drain failed) until destroy */
  uint64_t notify_retries;       /* guest notifications deferred (vhost busy) */
  uint64_t pool_mbufs;           /* the mapping's mempool: size */
  uint64_t pool_free_mbufs;      /* and mbufs in it now (with the port
                                    stopped: equal to pool_mbufs) */
  uint64_t nic_wrote_outside;    /* received mbufs the NIC's driver put before
                                    their guest buffer (then lending stops) */
  uint64_t lending_disabled;     /* 1: guest buffers are no longer lent */
  uint64_t drop_detach;          /* frames in the NIC's ring at a detach */
};

/* The library's version, "MAJOR.MINOR.PATCH". Never NULL. */
const char* iovtee_version(void) IOVTEE_NOEXCEPT;

/* The IOVTEE_ABI_VERSION the library was built with. A host compares it
 * with the IOVTEE_ABI_VERSION of the header it was compiled with. */
uint32_t iovtee_abi_version(void) IOVTEE_NOEXCEPT;

/* Fills `*opts` with the defaults and sets opts->size = size; pass
 * sizeof(*opts). Returns 0, or -EINVAL for NULL or a size smaller than the
 * `size` field. Bytes of `size` this library does not know are zeroed. */
int iovtee_mapping_options_init(struct iovtee_mapping_options* opts, size_t size) IOVTEE_NOEXCEPT;

/* Zeroes `*stats` and sets stats->size = size; pass sizeof(*stats).
 * Returns 0, or -EINVAL as iovtee_mapping_options_init. */
int iovtee_mapping_stats_init(struct iovtee_mapping_stats* stats, size_t size) IOVTEE_NOEXCEPT;

/* Turns off what the mapping cannot honour on a vhost-user socket
 * (VIRTIO_F_IN_ORDER). Call between rte_vhost_driver_register and
 * rte_vhost_driver_start. -EINVAL for a NULL path, -ENODEV if the socket is
 * not registered. */
int iovtee_prepare_vhost_socket(const char* path, char* err, size_t err_size) IOVTEE_NOEXCEPT;

/* Creates the mapping of NIC (port_id, queue_id) and its mempool (named
 * "iovtee_p<port>q<queue>"; one mapping per queue). `opts` NULL means the
 * defaults. On success stores the handle in `*out` and returns 0; on failure
 * `*out` is set to NULL (when `out` is not NULL). Needs a running EAL.
 * -ENODEV: no such port; -EINVAL: NULL `out` or bad options; -E2BIG: see
 * the versioning rules above; -ENOMEM: no memory for the mempool. */
int iovtee_mapping_create(uint16_t port_id, uint16_t queue_id,
                          const struct iovtee_mapping_options* opts, struct iovtee_mapping** out,
                          char* err, size_t err_size) IOVTEE_NOEXCEPT;

/* Detaches any guest, frees the mempool and the handle. The port must be
 * stopped or closed first: the NIC must not hold any mbuf of the mempool.
 * NULL is allowed (does nothing). */
void iovtee_mapping_destroy(struct iovtee_mapping* m) IOVTEE_NOEXCEPT;

/* The mempool to give rte_eth_rx_queue_setup for this queue; owned by the
 * mapping. NULL for a NULL mapping. */
struct rte_mempool* iovtee_mapping_mempool(const struct iovtee_mapping* m) IOVTEE_NOEXCEPT;

/* rte_eth_rx_burst on the mapped queue, plus what the mapping needs: frames
 * in guest buffers have no headroom (rte_pktmbuf_prepend fails instead of
 * writing outside the buffer), and a pause point for detach. Returns the
 * number of mbufs stored in pkts; 0 while a detach is in progress and for a
 * NULL mapping or NULL pkts. No allocation, no lock. */
uint16_t iovtee_mapping_rx_burst(struct iovtee_mapping* m, struct rte_mbuf** pkts,
                                 uint16_t n) IOVTEE_NOEXCEPT;

/* Starts lending the guest's Rx buffers (vring `vring_idx`: an even index,
 * normally 0) of vhost device `vid` to the NIC. Maps the guest's memory
 * itself and DMA-maps it for the NIC's device. On failure nothing changed.
 * -EINVAL: NULL mapping or odd vring; -ENODEV: no such vhost device;
 * -EBUSY: a guest is attached already; -ENOTSUP / -EAGAIN: a guest or NIC the
 * mapping cannot serve (the message says why). */
int iovtee_mapping_attach_guest(struct iovtee_mapping* m, int vid, uint16_t vring_idx, char* err,
                                size_t err_size) IOVTEE_NOEXCEPT;

/* Stops lending and gives the guest back every buffer the mapping holds (the
 * NIC queue is stopped and started again while rx_burst is paused). No DMA
 * reaches the guest's memory after it returns, even on failure (the memory
 * stays mapped until destroy then). 0 when no guest was attached; -EIO if
 * the queue could not be stopped or restarted. */
int iovtee_mapping_detach_guest(struct iovtee_mapping* m, char* err,
                                size_t err_size) IOVTEE_NOEXCEPT;

/* 1 while a guest is attached, 0 if not, -EINVAL for NULL. */
int iovtee_mapping_attached(const struct iovtee_mapping* m) IOVTEE_NOEXCEPT;

/* Delivers frames to the attached guest's Rx queue: in place for frames in
 * its own buffers, by copy otherwise. Consumes every mbuf: each is freed,
 * delivered or dropped (drops counted by reason; with no guest attached as
 * drop_no_guest). Returns how many were delivered. A NULL mapping frees the
 * mbufs and returns 0 (not counted). No allocation. */
uint16_t iovtee_mapping_enqueue(struct iovtee_mapping* m, struct rte_mbuf** pkts,
                                uint16_t n) IOVTEE_NOEXCEPT;

/* Copies the mapping's counters into `*stats`, as far as stats->size covers
 * (set it with iovtee_mapping_stats_init); bytes beyond the fields this
 * library knows are zeroed. Totals over all guest sessions. Takes a lock
 * shared with attach/detach; not for every burst. -EINVAL for NULL or a
 * stats->size smaller than the `size` field. */
int iovtee_mapping_get_stats(const struct iovtee_mapping* m,
                             struct iovtee_mapping_stats* stats) IOVTEE_NOEXCEPT;

/* The same counters as name/value pairs, in a fixed order (new counters are
 * appended): for hosts that export every counter without naming each, such
 * as OVS's custom statistics and appctl commands. The names are static
 * strings, the field names of struct iovtee_mapping_stats. Stores up to `n`
 * pairs and returns how many counters there are (call with n = 0 to size
 * the arrays), or -EINVAL for a NULL mapping, or NULL arrays with n > 0.
 * Takes the same lock as iovtee_mapping_get_stats. */
int iovtee_mapping_get_counters(const struct iovtee_mapping* m, const char** names,
                                uint64_t* values, unsigned int n) IOVTEE_NOEXCEPT;

/* For a switch that must grow a frame in front: copies a frame that lies in
 * a guest buffer into a host mbuf from `mp` and frees `m` (the guest buffer
 * goes back to the NIC). Any other mbuf is returned as it is. Returns NULL,
 * leaving `m` untouched, when the copy fails (`mp` has no free mbuf) and
 * when `m` or `mp` is NULL. Costs a table lookup for a host mbuf. */
struct rte_mbuf* iovtee_unshare(struct rte_mbuf* m, struct rte_mempool* mp) IOVTEE_NOEXCEPT;

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* IOVTEE_INCLUDE_IOVTEE_IOVTEE_H_ */
