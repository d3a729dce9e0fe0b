/*
 * iovtee in Open vSwitch's netdev-dpdk: NIC Rx queues mapped onto the Rx
 * queue of a vhost-user guest (zero copy from the NIC to the guest).
 *
 * This file and netdev-dpdk-iovtee.c come from iovtee's ovs-plugin/glue/;
 * ovs-plugin/build.sh copies them into lib/ and the patch series adds the
 * calls below to netdev-dpdk.c, odp-execute.c and ofproto-dpif.c.  All the
 * logic is here and in libiovtee (include/iovtee/iovtee.h); the patch only
 * calls it.
 *
 * Configuration, on the Interface of the NIC (type dpdk):
 *   options:iovtee-map-rxqN=VHOST      map Rx queue N onto vhost-user port
 *                                      VHOST (its Interface name), guest
 *                                      Rx queue 0
 *   options:iovtee-guest-rx-order=detect|trust-ids
 *   options:iovtee-residency-cap=N     guest buffers the NIC may hold
 *   options:iovtee-pool-size=N         mbufs in each mapping's mempool
 * Changes take effect through OVS's reconfiguration of the NIC port and of
 * the vhost-user port (dpif-netdev stops polling and sending on both while
 * their netdev_reconfigure() runs), without restarting ovs-vswitchd.
 * Problems go to the log and to the NIC Interface's 'error' column.
 *
 * Threads and the invariants the hooks keep:
 *   - A guest is attached only where nothing sends to its vhost port
 *     through rte_vhost_enqueue_burst(): in new_device() before OVS
 *     publishes the vid, or in the vhost port's reconfiguration.
 *   - A guest is detached (libiovtee stops and restarts the NIC queue while
 *     its own rx_burst is paused) only while the NIC queue is polled through
 *     iovtee_mapping_rx_burst() or not at all: in destroy_device(), or in the
 *     NIC's reconfiguration before the port is stopped.
 *   - A mapping is destroyed only with the NIC port stopped, its guest
 *     detached, and no thread inside its enqueue (a per-vid user count).
 */
#ifndef NETDEV_DPDK_IOVTEE_H
#define NETDEV_DPDK_IOVTEE_H 1

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "openvswitch/compiler.h"

struct dp_packet_batch;
struct iovtee_mapping;
struct netdev;
struct netdev_custom_stats;
struct netdev_stats;
struct nlattr;
struct rte_mbuf;
struct rte_mempool;
struct smap;

#ifdef DPDK_NETDEV

/* Registers 'ovs-appctl iovtee/show'.  Once, from the dpdk class init. */
void netdev_dpdk_iovtee_init(void);

/* Turns off what a mapping cannot honour (VIRTIO_F_IN_ORDER) on a vhost-user
 * socket, between rte_vhost_driver_register() and rte_vhost_driver_start().
 * Done on every socket, so that a mapping can be added at run time. */
void netdev_dpdk_iovtee_prepare_socket(const char *path);

/* NIC (dpdk) port.  'netdev' is the NIC's netdev throughout. */

/* From set_config: reads the iovtee-* options, requests a reconfiguration
 * when they changed. */
void netdev_dpdk_iovtee_set_config(struct netdev *netdev,
                                   const struct smap *args);
/* Whether the options changed since the last reconfiguration. */
bool netdev_dpdk_iovtee_reconf_needed(const struct netdev *netdev);
/* From reconfigure, before the port is stopped: detaches the guests of this
 * NIC's mappings (re-attached afterwards through the vhost ports'
 * reconfiguration). */
void netdev_dpdk_iovtee_phy_stop(struct netdev *netdev);
/* From reconfigure, with the port stopped: destroys the mappings no longer
 * wanted, creates the new ones. */
void netdev_dpdk_iovtee_phy_apply(struct netdev *netdev, uint16_t port_id,
                                  int n_rxq, int mtu);
/* The mempool for Rx queue 'qid': the mapping's, or 'dflt'. */
struct rte_mempool *netdev_dpdk_iovtee_rxq_mempool(const struct netdev *,
                                                   int qid,
                                                   struct rte_mempool *dflt);
/* At the end of reconfigure. */
void netdev_dpdk_iovtee_phy_done(struct netdev *netdev);
/* The mapping Rx queue 'qid' is polled through, or NULL (rxq_construct). */
struct iovtee_mapping *netdev_dpdk_iovtee_rxq_mapping(const struct netdev *,
                                                      int qid);
/* From destruct, before OVS stops the port: detaches and destroys every
 * mapping of this NIC. */
void netdev_dpdk_iovtee_phy_destruct(struct netdev *netdev, uint16_t port_id);
/* Adds "iovtee_rxqN" entries to the NIC's status column. */
void netdev_dpdk_iovtee_get_status(const struct netdev *netdev,
                                   struct smap *args);

/* vhost-user port. */

/* From new_device, before OVS publishes 'vid'. */
void netdev_dpdk_iovtee_new_device(struct netdev *vhost, int vid);
/* From destroy_device, after OVS stopped using 'vid' (ovsrcu_synchronize). */
void netdev_dpdk_iovtee_destroy_device(int vid);
/* From the vhost port's reconfiguration, with a guest connected. */
void netdev_dpdk_iovtee_vhost_reconfigure(struct netdev *vhost, int vid);
/* From netdev_dpdk_vhost_send: if a mapping serves vring 'vhost_qid' of
 * 'vid', hands it the 'cnt' mbufs (it consumes all of them), stores how many
 * were not delivered in '*cnt' and returns true.  Otherwise returns false
 * and the caller sends as usual. */
bool netdev_dpdk_iovtee_vhost_send(int vid, int vhost_qid,
                                   struct rte_mbuf **pkts, int *cnt);
/* Adds the frames the mapping delivered to the vhost port's Tx counters. */
void netdev_dpdk_iovtee_vhost_stats(const struct netdev *vhost,
                                    struct netdev_stats *stats);
/* Appends the mapping's counters ("iovtee_<name>") to the vhost port's
 * custom statistics. */
void netdev_dpdk_iovtee_vhost_custom_stats(const struct netdev *vhost,
                                           struct netdev_custom_stats *);

/* Any netdev: the iovtee errors of 'netdev' as a string the caller frees,
 * or NULL. */
char *netdev_dpdk_iovtee_get_error(const struct netdev *netdev);

/* Before datapath action 'a' runs on 'batch': if 'a' grows packets in front
 * (push_vlan, push_mpls, add_mpls, push_eth, push_nsh, tunnel_push), copies
 * every frame that lies in a guest buffer (no headroom) into a host mbuf.
 * A frame that cannot be copied (no free mbuf) is dropped and counted. */
void netdev_dpdk_iovtee_prepare_action(struct dp_packet_batch *batch,
                                       const struct nlattr *a);

#else /* !DPDK_NETDEV */

static inline char *
netdev_dpdk_iovtee_get_error(const struct netdev *netdev OVS_UNUSED)
{
    return NULL;
}

static inline void
netdev_dpdk_iovtee_prepare_action(struct dp_packet_batch *b OVS_UNUSED,
                                  const struct nlattr *a OVS_UNUSED)
{
}

#endif /* DPDK_NETDEV */

#endif /* netdev-dpdk-iovtee.h */
