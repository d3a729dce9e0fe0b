/*
 * iovtee in Open vSwitch's netdev-dpdk (see netdev-dpdk-iovtee.h).
 *
 * State: one 'struct iovtee_phy' per NIC netdev that ever had iovtee
 * options, holding what the options request and the mappings applied; a
 * table of vhost devices (by vid) whose guest Rx queue 0 a mapping serves,
 * read by the vhost send path.  Everything but that table and the datapath
 * calls is guarded by 'iovtee_mutex'.  Lock order: dpdk_mutex, dev->mutex,
 * iovtee_mutex, netdev_mutex (netdev_from_name() is only called with
 * iovtee_mutex released).
 */
#include <config.h>

#include "netdev-dpdk-iovtee.h"

#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_vhost.h>

#include "coverage.h"
#include "dp-packet.h"
#include "netdev-provider.h"
#include "netlink.h"
#include "odp-netlink.h"
#include "openvswitch/dynamic-string.h"
#include "openvswitch/list.h"
#include "openvswitch/vlog.h"
#include "ovs-atomic.h"
#include "ovs-thread.h"
#include "packets.h"
#include "smap.h"
#include "svec.h"
#include "unixctl.h"
#include "util.h"

#include "iovtee/iovtee.h"

VLOG_DEFINE_THIS_MODULE(netdev_dpdk_iovtee);
static struct vlog_rate_limit rl = VLOG_RATE_LIMIT_INIT(5, 20);

COVERAGE_DEFINE(iovtee_unshare);
COVERAGE_DEFINE(iovtee_unshare_drop);

#define IOVTEE_OPTION_PREFIX "iovtee-"
#define IOVTEE_MAP_PREFIX "iovtee-map-rxq"
/* The guest Rx queue a mapping serves: vring 0, the first queue pair. */
#define IOVTEE_VRING 0
#define IOVTEE_DEFAULT_POOL_SIZE 8192
#define IOVTEE_MIN_NIC_BUFFER 1536
/* As netdev-dpdk's MTU_TO_MAX_FRAME_LEN: header, CRC and two VLAN tags. */
#define IOVTEE_FRAME_OVERHEAD (ETH_HEADER_LEN + 4 + 2 * VLAN_HEADER_LEN)
#define IOVTEE_ERR_SIZE 256

/* Options that apply to every mapping of a NIC. */
struct iovtee_params {
    uint32_t residency_cap;     /* 0: libiovtee's default. */
    uint32_t pool_size;
    uint32_t guest_rx_order;    /* enum iovtee_guest_rx_order. */
};

/* One options:iovtee-map-rxqN=VHOST. */
struct iovtee_request {
    int rxq;
    char *vhost;
};

/* One mapping as applied by the NIC's reconfiguration. */
struct iovtee_map {
    struct ovs_list node;        /* In 'struct iovtee_phy''s 'maps'. */
    int rxq;
    char *vhost;                 /* Interface name of the vhost-user port. */
    struct iovtee_mapping *m;    /* NULL if it could not be created. */
    uint16_t port_id;
    uint16_t nic_buffer_size;
    struct iovtee_params params;
    int vid;                     /* The attached guest, or -1. */
    char *error;                 /* Last problem, or NULL. */
};

struct iovtee_phy {
    struct ovs_list node;        /* In 'phys'. */
    const struct netdev *netdev;
    char *name;

    /* What the options request (set_config). */
    struct iovtee_request *requests;
    size_t n_requests;
    struct iovtee_params params;
    char *config_error;          /* Options that could not be used. */
    bool dirty;                  /* Requests differ from what is applied. */

    /* What reconfigure applied. */
    struct ovs_list maps;        /* Contains 'struct iovtee_map'. */
    bool reconfiguring;          /* Between phy_stop and phy_done. */
};

static struct ovs_mutex iovtee_mutex = OVS_MUTEX_INITIALIZER;
static struct ovs_list phys OVS_GUARDED_BY(iovtee_mutex)
    = OVS_LIST_INITIALIZER(&phys);
/* Mappings that could not be destroyed yet (mbufs of their pool still out
 * somewhere): retried later. */
static struct ovs_list graveyard OVS_GUARDED_BY(iovtee_mutex)
    = OVS_LIST_INITIALIZER(&graveyard);
/* Mappings that exist: a fast test for the action hook. */
static atomic_count n_mappings = ATOMIC_COUNT_INIT(0);

/* The vhost send path's view: which mapping serves vring IOVTEE_VRING of a
 * vid.  Set after a successful attach, cleared after a detach; 'users'
 * counts send calls inside the mapping so that it can be destroyed safely
 * (sequentially consistent on both sides). */
struct iovtee_tx_slot {
    PADDED_MEMBERS(CACHE_LINE_SIZE,
        ATOMIC(struct iovtee_mapping *) m;
        atomic_uint users;
    );
};
static struct iovtee_tx_slot tx_slots[RTE_MAX_VHOST_DEVICE];

/* For each mapping's mempool, the NIC port's own OVS mempool: frames copied
 * out of guest buffers (push actions) go there, not back into the mapping's
 * pool, which is sized for the NIC ring.  Written under iovtee_mutex while
 * the NIC port is being reconfigured (nothing receives from it then), read
 * by the datapath for packets of that pool. */
#define IOVTEE_MAX_MAPPINGS 64
struct iovtee_host_pool {
    ATOMIC(struct rte_mempool *) mapped;
    ATOMIC(struct rte_mempool *) host;
};
static struct iovtee_host_pool host_pools[IOVTEE_MAX_MAPPINGS];

/* Helpers. */

static void
iovtee_set_error(char **slot, const char *msg)
{
    free(*slot);
    *slot = msg ? xstrdup(msg) : NULL;
}

static bool
params_equal(const struct iovtee_params *a, const struct iovtee_params *b)
{
    return a->residency_cap == b->residency_cap
           && a->pool_size == b->pool_size
           && a->guest_rx_order == b->guest_rx_order;
}

static void
requests_free(struct iovtee_request *r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(r[i].vhost);
    }
    free(r);
}

static const struct iovtee_request *
request_find(const struct iovtee_phy *phy, int rxq)
{
    for (size_t i = 0; i < phy->n_requests; i++) {
        if (phy->requests[i].rxq == rxq) {
            return &phy->requests[i];
        }
    }
    return NULL;
}

static struct iovtee_phy *
phy_find(const struct netdev *netdev) OVS_REQUIRES(iovtee_mutex)
{
    struct iovtee_phy *phy;

    LIST_FOR_EACH (phy, node, &phys) {
        if (phy->netdev == netdev) {
            return phy;
        }
    }
    return NULL;
}

static struct iovtee_map *
map_find_rxq(const struct iovtee_phy *phy, int rxq)
    OVS_REQUIRES(iovtee_mutex)
{
    struct iovtee_map *map;

    LIST_FOR_EACH (map, node, &phy->maps) {
        if (map->rxq == rxq) {
            return map;
        }
    }
    return NULL;
}

/* The map (of any NIC) that serves vhost port 'vhost', with a mapping. */
static struct iovtee_map *
map_find_vhost(const char *vhost, struct iovtee_phy **phyp)
    OVS_REQUIRES(iovtee_mutex)
{
    struct iovtee_phy *phy;
    struct iovtee_map *map;

    LIST_FOR_EACH (phy, node, &phys) {
        LIST_FOR_EACH (map, node, &phy->maps) {
            if (map->m && !strcmp(map->vhost, vhost)) {
                if (phyp) {
                    *phyp = phy;
                }
                return map;
            }
        }
    }
    return NULL;
}

static uint16_t
nic_buffer_size_for_mtu(int mtu)
{
    int frame = mtu + IOVTEE_FRAME_OVERHEAD;

    return MAX(frame, IOVTEE_MIN_NIC_BUFFER);
}

/* The vhost send path's table. */

static void
tx_slot_publish(int vid, struct iovtee_mapping *m)
{
    atomic_store(&tx_slots[vid].m, m);
}

/* Clears the slot and waits until no send call is inside the mapping. */
static void
tx_slot_clear(int vid)
{
    struct iovtee_tx_slot *s = &tx_slots[vid];
    unsigned int users;

    atomic_store(&s->m, NULL);
    for (;;) {
        atomic_read(&s->users, &users);
        if (!users) {
            break;
        }
        sched_yield();
    }
}

bool
netdev_dpdk_iovtee_vhost_send(int vid, int vhost_qid, struct rte_mbuf **pkts,
                              int *cnt)
{
    struct iovtee_tx_slot *s;
    struct iovtee_mapping *m;
    unsigned int orig;

    if (OVS_UNLIKELY(vid < 0 || vid >= RTE_MAX_VHOST_DEVICE)
        || vhost_qid != IOVTEE_VRING) {
        return false;
    }
    s = &tx_slots[vid];
    atomic_read_relaxed(&s->m, &m);
    if (OVS_LIKELY(!m)) {
        return false;
    }
    atomic_add(&s->users, 1, &orig);
    atomic_read(&s->m, &m);
    if (m) {
        *cnt -= iovtee_mapping_enqueue(m, pkts, *cnt);
    }
    atomic_sub(&s->users, 1, &orig);
    return m != NULL;
}

/* Host pools for copies out of guest buffers. */

static void
host_pool_set(struct rte_mempool *mapped, struct rte_mempool *host)
    OVS_REQUIRES(iovtee_mutex)
{
    struct rte_mempool *mp;
    int free_slot = -1;

    for (int i = 0; i < IOVTEE_MAX_MAPPINGS; i++) {
        atomic_read_relaxed(&host_pools[i].mapped, &mp);
        if (mp == mapped) {
            atomic_store_relaxed(&host_pools[i].host, host);
            return;
        }
        if (!mp && free_slot < 0) {
            free_slot = i;
        }
    }
    if (free_slot >= 0) {
        atomic_store_relaxed(&host_pools[free_slot].host, host);
        atomic_store(&host_pools[free_slot].mapped, mapped);
    }
}

static void
host_pool_clear(struct rte_mempool *mapped) OVS_REQUIRES(iovtee_mutex)
{
    struct rte_mempool *mp;

    for (int i = 0; i < IOVTEE_MAX_MAPPINGS; i++) {
        atomic_read_relaxed(&host_pools[i].mapped, &mp);
        if (mp == mapped) {
            atomic_store(&host_pools[i].mapped, NULL);
            atomic_store_relaxed(&host_pools[i].host, NULL);
        }
    }
}

/* The pool a frame of mapped pool 'mapped' is copied into. */
static struct rte_mempool *
host_pool_get(const struct rte_mempool *mapped)
{
    struct rte_mempool *mp, *host;

    for (int i = 0; i < IOVTEE_MAX_MAPPINGS; i++) {
        atomic_read_relaxed(&host_pools[i].mapped, &mp);
        if (mp == mapped) {
            atomic_read_relaxed(&host_pools[i].host, &host);
            return host;
        }
    }
    return NULL;
}

/* Attach and detach. */

static void
map_attach(struct iovtee_phy *phy, struct iovtee_map *map, int vid)
    OVS_REQUIRES(iovtee_mutex)
{
    char err[IOVTEE_ERR_SIZE];
    int rc;

    if (!map->m || map->vid >= 0 || phy->reconfiguring) {
        return;
    }
    if (vid < 0 || vid >= RTE_MAX_VHOST_DEVICE) {
        return;
    }
    rc = iovtee_mapping_attach_guest(map->m, vid, IOVTEE_VRING,
                                     err, sizeof err);
    if (rc) {
        char *msg = xasprintf("iovtee: %s rxq %d: cannot map onto the guest "
                              "of vhost-user port %s: %s", phy->name,
                              map->rxq, map->vhost, err);
        VLOG_WARN("%s", msg);
        iovtee_set_error(&map->error, msg);
        free(msg);
        netdev_change_seq_changed(phy->netdev);
        return;
    }
    map->vid = vid;
    iovtee_set_error(&map->error, NULL);
    tx_slot_publish(vid, map->m);
    netdev_change_seq_changed(phy->netdev);
    VLOG_INFO("iovtee: %s rxq %d mapped onto the guest of vhost-user port "
              "%s (vid %d)", phy->name, map->rxq, map->vhost, vid);
}

static void
map_detach(struct iovtee_phy *phy, struct iovtee_map *map)
    OVS_REQUIRES(iovtee_mutex)
{
    char err[IOVTEE_ERR_SIZE];
    int vid = map->vid;

    if (vid < 0) {
        return;
    }
    /* Sends that still find the mapping drop (counted as drop_no_guest)
     * until the slot is cleared; then they go through vhost again, whose
     * ring cursors the detach has set. */
    if (iovtee_mapping_detach_guest(map->m, err, sizeof err)) {
        VLOG_ERR("iovtee: %s rxq %d: detach from vhost-user port %s: %s",
                 phy->name, map->rxq, map->vhost, err);
    } else {
        VLOG_INFO("iovtee: %s rxq %d: guest of vhost-user port %s (vid %d) "
                  "detached", phy->name, map->rxq, map->vhost, vid);
    }
    tx_slot_clear(vid);
    map->vid = -1;
}

/* Destroying mappings. */

static bool
mapping_pool_whole(const struct iovtee_mapping *m)
{
    struct iovtee_mapping_stats st;

    iovtee_mapping_stats_init(&st, sizeof st);
    if (iovtee_mapping_get_stats(m, &st)) {
        return false;
    }
    return st.pool_free_mbufs == st.pool_mbufs;
}

struct iovtee_grave {
    struct ovs_list node;
    struct iovtee_mapping *m;
    char *what;
};

static void
graveyard_sweep(void) OVS_REQUIRES(iovtee_mutex)
{
    struct iovtee_grave *g;

    LIST_FOR_EACH_SAFE (g, node, &graveyard) {
        if (mapping_pool_whole(g->m)) {
            VLOG_INFO("iovtee: %s: every mbuf is back, mapping destroyed",
                      g->what);
            iovtee_mapping_destroy(g->m);
            atomic_count_dec(&n_mappings);
            ovs_list_remove(&g->node);
            free(g->what);
            free(g);
        }
    }
}

/* Destroys 'map''s mapping; the NIC port must be stopped and the guest
 * detached.  With mbufs of its pool still elsewhere (a Tx ring of another
 * port), freeing the pool would let them come back into freed memory: the
 * mapping is kept aside until they are back. */
static void
map_destroy_mapping(struct iovtee_phy *phy, struct iovtee_map *map)
    OVS_REQUIRES(iovtee_mutex)
{
    if (!map->m) {
        return;
    }
    ovs_assert(map->vid < 0);
    host_pool_clear(iovtee_mapping_mempool(map->m));
    if (mapping_pool_whole(map->m)) {
        iovtee_mapping_destroy(map->m);
        atomic_count_dec(&n_mappings);
    } else {
        struct iovtee_grave *g = xzalloc(sizeof *g);

        g->m = map->m;
        g->what = xasprintf("%s rxq %d (port %"PRIu16")", phy->name,
                            map->rxq, map->port_id);
        VLOG_WARN("iovtee: %s: mbufs of the mapping's pool are still out; "
                  "it is destroyed once they are back", g->what);
        ovs_list_push_back(&graveyard, &g->node);
    }
    map->m = NULL;
}

static void
map_free(struct iovtee_map *map)
{
    free(map->vhost);
    free(map->error);
    free(map);
}

/* NIC options. */

static void
append_error(struct ds *errors, const char *fmt, ...)
    OVS_PRINTF_FORMAT(2, 3);

static void
append_error(struct ds *errors, const char *fmt, ...)
{
    va_list args;

    if (errors->length) {
        ds_put_cstr(errors, "; ");
    }
    va_start(args, fmt);
    ds_put_format_valist(errors, fmt, args);
    va_end(args);
}

static bool
parse_uint(const char *s, uint32_t min, uint32_t *out)
{
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno || end == s || *end || v > UINT32_MAX || v < min
        || s[0] == '-') {
        return false;
    }
    *out = v;
    return true;
}

static int
compare_requests(const void *a_, const void *b_)
{
    const struct iovtee_request *a = a_, *b = b_;

    return a->rxq < b->rxq ? -1 : a->rxq > b->rxq;
}

static bool
requests_equal(const struct iovtee_request *a, size_t n_a,
               const struct iovtee_request *b, size_t n_b)
{
    if (n_a != n_b) {
        return false;
    }
    for (size_t i = 0; i < n_a; i++) {
        if (a[i].rxq != b[i].rxq || strcmp(a[i].vhost, b[i].vhost)) {
            return false;
        }
    }
    return true;
}

void
netdev_dpdk_iovtee_set_config(struct netdev *netdev, const struct smap *args)
{
    struct ds errors = DS_EMPTY_INITIALIZER;
    struct iovtee_request *reqs = NULL;
    size_t n_reqs = 0, allocated = 0;
    struct iovtee_params params;
    const struct smap_node *node;
    struct iovtee_phy *phy;
    bool changed = false;

    params.residency_cap = 0;
    params.pool_size = IOVTEE_DEFAULT_POOL_SIZE;
    params.guest_rx_order = IOVTEE_GUEST_RX_ORDER_DETECT;

    SMAP_FOR_EACH (node, args) {
        const char *key = node->key, *value = node->value;

        if (strncmp(key, IOVTEE_OPTION_PREFIX, strlen(IOVTEE_OPTION_PREFIX))) {
            continue;
        }
        if (!strncmp(key, IOVTEE_MAP_PREFIX, strlen(IOVTEE_MAP_PREFIX))) {
            uint32_t rxq;

            if (!parse_uint(key + strlen(IOVTEE_MAP_PREFIX), 0, &rxq)
                || rxq >= RTE_MAX_QUEUES_PER_PORT) {
                append_error(&errors, "%s: not a queue number (use "
                             IOVTEE_MAP_PREFIX "N, N below %d)", key,
                             RTE_MAX_QUEUES_PER_PORT);
                continue;
            }
            if (!value[0]) {
                append_error(&errors, "%s: needs the name of a vhost-user "
                             "Interface", key);
                continue;
            }
            if (n_reqs == allocated) {
                reqs = x2nrealloc(reqs, &allocated, sizeof *reqs);
            }
            reqs[n_reqs].rxq = rxq;
            reqs[n_reqs].vhost = xstrdup(value);
            n_reqs++;
        } else if (!strcmp(key, "iovtee-guest-rx-order")) {
            if (!strcmp(value, "detect")) {
                params.guest_rx_order = IOVTEE_GUEST_RX_ORDER_DETECT;
            } else if (!strcmp(value, "trust-ids")) {
                params.guest_rx_order = IOVTEE_GUEST_RX_ORDER_TRUST_IDS;
            } else {
                append_error(&errors, "%s=%s: use detect or trust-ids", key,
                             value);
            }
        } else if (!strcmp(key, "iovtee-residency-cap")) {
            if (!parse_uint(value, 0, &params.residency_cap)) {
                append_error(&errors, "%s=%s: not a number", key, value);
            }
        } else if (!strcmp(key, "iovtee-pool-size")) {
            if (!parse_uint(value, 64, &params.pool_size)) {
                append_error(&errors, "%s=%s: use a number of mbufs, at "
                             "least 64", key, value);
            }
        } else {
            append_error(&errors, "%s: unknown option (known: "
                         IOVTEE_MAP_PREFIX "N, iovtee-guest-rx-order, "
                         "iovtee-residency-cap, iovtee-pool-size)", key);
        }
    }
    if (n_reqs) {
        qsort(reqs, n_reqs, sizeof *reqs, compare_requests);
    }
    /* Two requests for one vhost port cannot both be served. */
    for (size_t i = 0; i < n_reqs; i++) {
        for (size_t j = 0; j < i; j++) {
            if (!strcmp(reqs[i].vhost, reqs[j].vhost)) {
                append_error(&errors, "rxq %d and rxq %d both map onto %s: "
                             "a guest Rx queue takes one mapping",
                             reqs[j].rxq, reqs[i].rxq, reqs[i].vhost);
            }
        }
    }

    ovs_mutex_lock(&iovtee_mutex);
    phy = phy_find(netdev);
    if (!phy && (n_reqs || errors.length)) {
        phy = xzalloc(sizeof *phy);
        phy->netdev = netdev;
        phy->name = xstrdup(netdev_get_name(netdev));
        phy->params = params;
        ovs_list_init(&phy->maps);
        ovs_list_push_back(&phys, &phy->node);
    }
    if (phy) {
        const char *error = errors.length ? ds_cstr(&errors) : NULL;

        if (!requests_equal(reqs, n_reqs, phy->requests, phy->n_requests)
            || !params_equal(&params, &phy->params)) {
            requests_free(phy->requests, phy->n_requests);
            phy->requests = reqs;
            phy->n_requests = n_reqs;
            phy->params = params;
            phy->dirty = true;
            reqs = NULL;
            n_reqs = 0;
            changed = true;
        }
        if (!nullable_string_is_equal(error, phy->config_error)) {
            iovtee_set_error(&phy->config_error, error);
            if (error) {
                VLOG_WARN("iovtee: %s: %s", phy->name, error);
            }
            netdev_change_seq_changed(netdev);
        }
    }
    ovs_mutex_unlock(&iovtee_mutex);

    requests_free(reqs, n_reqs);
    ds_destroy(&errors);
    if (changed) {
        netdev_request_reconfigure(netdev);
    }
}

bool
netdev_dpdk_iovtee_reconf_needed(const struct netdev *netdev)
{
    struct iovtee_phy *phy;
    bool dirty;

    ovs_mutex_lock(&iovtee_mutex);
    phy = phy_find(netdev);
    dirty = phy && phy->dirty;
    ovs_mutex_unlock(&iovtee_mutex);
    return dirty;
}

/* NIC reconfiguration. */

void
netdev_dpdk_iovtee_phy_stop(struct netdev *netdev)
{
    struct iovtee_phy *phy;
    struct iovtee_map *map;

    ovs_mutex_lock(&iovtee_mutex);
    phy = phy_find(netdev);
    if (phy) {
        /* From here until phy_done no guest is attached to this NIC's
         * mappings, and new_device() leaves them alone: the port is being
         * stopped and set up again. */
        phy->reconfiguring = true;
        LIST_FOR_EACH (map, node, &phy->maps) {
            map_detach(phy, map);
        }
    }
    ovs_mutex_unlock(&iovtee_mutex);
}

/* Creates the mapping of 'map' (its fields other than 'm' set). */
static void
map_create_mapping(struct iovtee_phy *phy, struct iovtee_map *map)
    OVS_REQUIRES(iovtee_mutex)
{
    struct iovtee_mapping_options o;
    char err[IOVTEE_ERR_SIZE];
    int rc;

    iovtee_mapping_options_init(&o, sizeof o);
    o.residency_cap = map->params.residency_cap;
    o.pool_size = map->params.pool_size;
    o.guest_rx_order = map->params.guest_rx_order;
    o.nic_buffer_size = map->nic_buffer_size;
    o.mbuf_priv_size = sizeof(struct dp_packet) - sizeof(struct rte_mbuf);
    rc = iovtee_mapping_create(map->port_id, map->rxq, &o, &map->m,
                               err, sizeof err);
    if (rc) {
        char *msg = xasprintf("iovtee: %s rxq %d: cannot create the mapping "
                              "onto %s: %s%s", phy->name, map->rxq,
                              map->vhost, err,
                              rc == -EEXIST ? " (the previous mapping of "
                              "this queue is still being released)" : "");
        VLOG_ERR("%s", msg);
        iovtee_set_error(&map->error, msg);
        free(msg);
        map->m = NULL;
        return;
    }
    atomic_count_inc(&n_mappings);
}

/* Every mbuf of the mapping's pool is a dp_packet: OVS reads its 'source'
 * (and frees it as a DPDK mbuf) like those of its own pools. */
static void
init_dp_packet(struct rte_mempool *mp OVS_UNUSED, void *opaque OVS_UNUSED,
               void *obj, unsigned int idx OVS_UNUSED)
{
    dp_packet_init_dpdk(obj);
}

void
netdev_dpdk_iovtee_phy_apply(struct netdev *netdev, uint16_t port_id,
                             int n_rxq, int mtu)
{
    uint16_t nic_buffer_size = nic_buffer_size_for_mtu(mtu);
    struct iovtee_phy *phy;
    struct iovtee_map *map;

    ovs_mutex_lock(&iovtee_mutex);
    graveyard_sweep();
    phy = phy_find(netdev);
    if (!phy) {
        goto out;
    }

    /* Keep a mapping only if it is requested as it is. */
    LIST_FOR_EACH_SAFE (map, node, &phy->maps) {
        const struct iovtee_request *r = request_find(phy, map->rxq);

        if (r && map->m && !strcmp(r->vhost, map->vhost)
            && map->port_id == port_id
            && map->nic_buffer_size == nic_buffer_size
            && params_equal(&map->params, &phy->params)
            && map->rxq < n_rxq) {
            continue;
        }
        if (map->m && !r) {
            VLOG_INFO("iovtee: %s rxq %d: mapping onto %s removed",
                      phy->name, map->rxq, map->vhost);
        }
        map_destroy_mapping(phy, map);
        ovs_list_remove(&map->node);
        map_free(map);
    }

    for (size_t i = 0; i < phy->n_requests; i++) {
        const struct iovtee_request *r = &phy->requests[i];
        struct iovtee_phy *other_phy;
        struct iovtee_map *other;

        if (map_find_rxq(phy, r->rxq)) {
            continue;
        }
        map = xzalloc(sizeof *map);
        map->rxq = r->rxq;
        map->vhost = xstrdup(r->vhost);
        map->port_id = port_id;
        map->nic_buffer_size = nic_buffer_size;
        map->params = phy->params;
        map->vid = -1;
        ovs_list_push_back(&phy->maps, &map->node);

        other = map_find_vhost(r->vhost, &other_phy);
        if (r->rxq >= n_rxq) {
            char *msg = xasprintf("iovtee: %s has %d Rx queues: rxq %d "
                                  "cannot be mapped (options:n_rxq)",
                                  phy->name, n_rxq, r->rxq);
            VLOG_WARN("%s", msg);
            iovtee_set_error(&map->error, msg);
            free(msg);
        } else if (other) {
            char *msg = xasprintf("iovtee: %s rxq %d: vhost-user port %s is "
                                  "already served by %s rxq %d",
                                  phy->name, r->rxq, r->vhost,
                                  other_phy->name, other->rxq);
            VLOG_WARN("%s", msg);
            iovtee_set_error(&map->error, msg);
            free(msg);
        } else {
            map_create_mapping(phy, map);
            if (map->m) {
                rte_mempool_obj_iter(iovtee_mapping_mempool(map->m),
                                     init_dp_packet, NULL);
                VLOG_INFO("iovtee: %s rxq %d (port %"PRIu16") maps onto "
                          "vhost-user port %s: NIC buffers of %"PRIu16
                          " bytes, pool of %"PRIu32" mbufs", phy->name,
                          map->rxq, port_id, map->vhost, nic_buffer_size,
                          map->params.pool_size);
            }
        }
    }
    phy->dirty = false;
    netdev_change_seq_changed(netdev);
out:
    ovs_mutex_unlock(&iovtee_mutex);
}

struct rte_mempool *
netdev_dpdk_iovtee_rxq_mempool(const struct netdev *netdev, int qid,
                               struct rte_mempool *dflt)
{
    struct rte_mempool *mp = dflt;
    struct iovtee_phy *phy;
    struct iovtee_map *map;

    ovs_mutex_lock(&iovtee_mutex);
    phy = phy_find(netdev);
    map = phy ? map_find_rxq(phy, qid) : NULL;
    if (map && map->m) {
        mp = iovtee_mapping_mempool(map->m);
        host_pool_set(mp, dflt);
    }
    ovs_mutex_unlock(&iovtee_mutex);
    return mp;
}

struct iovtee_mapping *
netdev_dpdk_iovtee_rxq_mapping(const struct netdev *netdev, int qid)
{
    struct iovtee_mapping *m = NULL;
    struct iovtee_phy *phy;
    struct iovtee_map *map;

    ovs_mutex_lock(&iovtee_mutex);
    phy = phy_find(netdev);
    map = phy ? map_find_rxq(phy, qid) : NULL;
    if (map) {
        m = map->m;
    }
    ovs_mutex_unlock(&iovtee_mutex);
    return m;
}

/* Asks each vhost port named in 'names' to reconfigure, so that it attaches
 * a connected guest (only there does nothing send to it meanwhile).  Frees
 * 'names'.  Called without iovtee_mutex. */
static void
request_vhost_reconfigure(struct svec *names, const char *phy_name)
{
    const char *name;
    size_t i;

    SVEC_FOR_EACH (i, name, names) {
        struct netdev *vhost = netdev_from_name(name);

        if (!vhost) {
            continue;   /* Attached when it appears and a guest connects. */
        }
        if (strncmp(netdev_get_type(vhost), "dpdkvhostuser",
                    strlen("dpdkvhostuser"))) {
            VLOG_WARN_RL(&rl, "iovtee: %s maps onto %s, which is not a "
                         "vhost-user port (type %s)", phy_name, name,
                         netdev_get_type(vhost));
        } else {
            netdev_request_reconfigure(vhost);
        }
        netdev_close(vhost);
    }
    svec_destroy(names);
}

void
netdev_dpdk_iovtee_phy_done(struct netdev *netdev)
{
    struct svec names = SVEC_EMPTY_INITIALIZER;
    struct iovtee_phy *phy;
    struct iovtee_map *map;
    char *phy_name = NULL;

    ovs_mutex_lock(&iovtee_mutex);
    phy = phy_find(netdev);
    if (phy && phy->reconfiguring) {
        phy->reconfiguring = false;
        LIST_FOR_EACH (map, node, &phy->maps) {
            if (map->m) {
                svec_add(&names, map->vhost);
            }
        }
        phy_name = xstrdup(phy->name);
    }
    ovs_mutex_unlock(&iovtee_mutex);

    request_vhost_reconfigure(&names, phy_name);
    free(phy_name);
}

void
netdev_dpdk_iovtee_phy_destruct(struct netdev *netdev, uint16_t port_id)
{
    struct iovtee_phy *phy;
    struct iovtee_map *map;

    ovs_mutex_lock(&iovtee_mutex);
    phy = phy_find(netdev);
    if (!phy) {
        goto out;
    }
    phy->reconfiguring = true;
    LIST_FOR_EACH (map, node, &phy->maps) {
        map_detach(phy, map);
    }
    if (!ovs_list_is_empty(&phy->maps)) {
        /* destruct stops the port right after us: stopping it first is what
         * lets the mappings go now. */
        rte_eth_dev_stop(port_id);
    }
    LIST_FOR_EACH_POP (map, node, &phy->maps) {
        map_destroy_mapping(phy, map);
        map_free(map);
    }
    ovs_list_remove(&phy->node);
    requests_free(phy->requests, phy->n_requests);
    free(phy->config_error);
    free(phy->name);
    free(phy);
out:
    ovs_mutex_unlock(&iovtee_mutex);
}

void
netdev_dpdk_iovtee_get_status(const struct netdev *netdev, struct smap *args)
{
    struct iovtee_phy *phy;
    struct iovtee_map *map;

    ovs_mutex_lock(&iovtee_mutex);
    phy = phy_find(netdev);
    if (phy) {
        LIST_FOR_EACH (map, node, &phy->maps) {
            const char *state = !map->m ? "error"
                                : map->vid >= 0 ? "attached"
                                : "waiting for a guest";
            char key[32];

            snprintf(key, sizeof key, "iovtee_rxq%d", map->rxq);
            smap_add_format(args, key, "%s (%s)", map->vhost, state);
        }
    }
    ovs_mutex_unlock(&iovtee_mutex);
}

/* vhost-user ports. */

void
netdev_dpdk_iovtee_prepare_socket(const char *path)
{
    char err[IOVTEE_ERR_SIZE];

    if (iovtee_prepare_vhost_socket(path, err, sizeof err)) {
        VLOG_WARN("iovtee: vhost-user socket %s: %s", path, err);
    }
}

void
netdev_dpdk_iovtee_new_device(struct netdev *vhost, int vid)
{
    struct iovtee_phy *phy;
    struct iovtee_map *map;

    ovs_mutex_lock(&iovtee_mutex);
    map = map_find_vhost(netdev_get_name(vhost), &phy);
    if (map) {
        map_attach(phy, map, vid);
    }
    ovs_mutex_unlock(&iovtee_mutex);
}

void
netdev_dpdk_iovtee_vhost_reconfigure(struct netdev *vhost, int vid)
{
    netdev_dpdk_iovtee_new_device(vhost, vid);
}

void
netdev_dpdk_iovtee_destroy_device(int vid)
{
    struct iovtee_phy *phy;
    struct iovtee_map *map;

    ovs_mutex_lock(&iovtee_mutex);
    LIST_FOR_EACH (phy, node, &phys) {
        LIST_FOR_EACH (map, node, &phy->maps) {
            if (map->vid == vid) {
                map_detach(phy, map);
                netdev_change_seq_changed(phy->netdev);
            }
        }
    }
    ovs_mutex_unlock(&iovtee_mutex);
}

/* Counters. */

/* Calls 'cb' with the counters of the mapping serving vhost port 'vhost'.
 * Returns false if there is none. */
static bool
vhost_counters(const struct netdev *vhost,
               void (*cb)(const char **names, const uint64_t *values,
                          int n, void *aux),
               void *aux)
{
    struct iovtee_map *map;
    bool found = false;

    ovs_mutex_lock(&iovtee_mutex);
    map = map_find_vhost(netdev_get_name(vhost), NULL);
    if (map) {
        int n = iovtee_mapping_get_counters(map->m, NULL, NULL, 0);

        if (n > 0) {
            const char **names = xcalloc(n, sizeof *names);
            uint64_t *values = xcalloc(n, sizeof *values);

            n = iovtee_mapping_get_counters(map->m, names, values, n);
            if (n > 0) {
                cb(names, values, n, aux);
                found = true;
            }
            free(names);
            free(values);
        }
    }
    ovs_mutex_unlock(&iovtee_mutex);
    return found;
}

static uint64_t
counter(const char **names, const uint64_t *values, int n, const char *name)
{
    for (int i = 0; i < n; i++) {
        if (!strcmp(names[i], name)) {
            return values[i];
        }
    }
    return 0;
}

static void
add_tx_stats(const char **names, const uint64_t *values, int n, void *aux)
{
    struct netdev_stats *stats = aux;

    stats->tx_packets += counter(names, values, n, "zero_copy")
                         + counter(names, values, n, "copied");
    stats->tx_bytes += counter(names, values, n, "bytes");
}

void
netdev_dpdk_iovtee_vhost_stats(const struct netdev *vhost,
                               struct netdev_stats *stats)
{
    vhost_counters(vhost, add_tx_stats, stats);
}

static void
add_custom_stats(const char **names, const uint64_t *values, int n, void *aux)
{
    struct netdev_custom_stats *cs = aux;

    cs->counters = xrealloc(cs->counters,
                            (cs->size + n) * sizeof *cs->counters);
    for (int i = 0; i < n; i++) {
        struct netdev_custom_counter *c = &cs->counters[cs->size + i];

        snprintf(c->name, sizeof c->name, "iovtee_%s", names[i]);
        c->value = values[i];
    }
    cs->size += n;
}

void
netdev_dpdk_iovtee_vhost_custom_stats(const struct netdev *vhost,
                                      struct netdev_custom_stats *cs)
{
    vhost_counters(vhost, add_custom_stats, cs);
}

/* Errors. */

char *
netdev_dpdk_iovtee_get_error(const struct netdev *netdev)
{
    struct ds s = DS_EMPTY_INITIALIZER;
    struct iovtee_phy *phy;
    struct iovtee_map *map;

    ovs_mutex_lock(&iovtee_mutex);
    phy = phy_find(netdev);
    if (phy) {
        if (phy->config_error) {
            ds_put_format(&s, "iovtee: %s", phy->config_error);
        }
        LIST_FOR_EACH (map, node, &phy->maps) {
            if (map->error) {
                if (s.length) {
                    ds_put_cstr(&s, "; ");
                }
                ds_put_cstr(&s, map->error);
            }
        }
    }
    ovs_mutex_unlock(&iovtee_mutex);
    return s.length ? ds_steal_cstr(&s) : (ds_destroy(&s), NULL);
}

/* Headroom. */

/* Copies a frame that lies in a guest buffer into an mbuf of the NIC port's
 * OVS mempool, keeping OVS's packet metadata.  Returns the packet to use, or
 * NULL if no mbuf was free ('p' untouched then). */
static struct dp_packet *
unshare_packet(struct dp_packet *p)
{
    enum { OVS_AREA = sizeof(struct dp_packet) - sizeof(struct rte_mbuf) };
    uint8_t area[OVS_AREA];
    struct rte_mbuf *m = &p->mbuf, *copy;
    struct rte_mempool *host = host_pool_get(m->pool);

    memcpy(area, (uint8_t *) p + sizeof(struct rte_mbuf), OVS_AREA);
    copy = iovtee_unshare(m, host ? host : m->pool);
    if (copy && copy != m) {
        memcpy((uint8_t *) copy + sizeof(struct rte_mbuf), area, OVS_AREA);
        COVERAGE_INC(iovtee_unshare);
    }
    return (struct dp_packet *) copy;
}

static size_t
action_push_len(const struct nlattr *a)
{
    /* Not a switch: -Wswitch-enum would want every action listed. */
    enum ovs_action_attr type = nl_attr_type(a);

    if (type == OVS_ACTION_ATTR_PUSH_VLAN) {
        return VLAN_HEADER_LEN;
    } else if (type == OVS_ACTION_ATTR_PUSH_MPLS
               || type == OVS_ACTION_ATTR_ADD_MPLS) {
        return MPLS_HLEN;
    } else if (type == OVS_ACTION_ATTR_PUSH_ETH) {
        return ETH_HEADER_LEN;
    } else if (type == OVS_ACTION_ATTR_PUSH_NSH) {
        return NSH_BASE_HDR_LEN;
    } else if (type == OVS_ACTION_ATTR_TUNNEL_PUSH) {
        const struct ovs_action_push_tnl *tnl = nl_attr_get(a);

        return tnl->header_len;
    }
    return 0;
}

void
netdev_dpdk_iovtee_prepare_action(struct dp_packet_batch *batch,
                                  const struct nlattr *a)
{
    struct dp_packet *packet;
    size_t need, i;

    if (OVS_LIKELY(!atomic_count_get(&n_mappings))) {
        return;
    }
    need = action_push_len(a);
    if (!need) {
        return;
    }

    const size_t size = dp_packet_batch_size(batch);
    DP_PACKET_BATCH_REFILL_FOR_EACH (i, size, packet, batch) {
        if (OVS_UNLIKELY(packet->source == DPBUF_DPDK
                         && dp_packet_headroom(packet) < need)) {
            struct dp_packet *copy = unshare_packet(packet);

            if (!copy) {
                COVERAGE_INC(iovtee_unshare_drop);
                VLOG_WARN_RL(&rl, "iovtee: no free mbuf to copy a frame out "
                             "of a guest buffer before a push action: "
                             "dropped");
                dp_packet_delete(packet);
                continue;
            }
            packet = copy;
        }
        dp_packet_batch_refill(batch, packet, i);
    }
}

/* ovs-appctl iovtee/show [INTERFACE] */

static void
show_counters(const char **names, const uint64_t *values, int n, void *aux)
{
    struct ds *s = aux;

    for (int i = 0; i < n; i++) {
        ds_put_format(s, "    %s: %"PRIu64"\n", names[i], values[i]);
    }
}

static void
iovtee_show(struct unixctl_conn *conn, int argc, const char *argv[],
            void *aux OVS_UNUSED)
{
    struct ds s = DS_EMPTY_INITIALIZER;
    struct iovtee_phy *phy;
    struct iovtee_map *map;
    bool found = false;

    ovs_mutex_lock(&iovtee_mutex);
    graveyard_sweep();
    LIST_FOR_EACH (phy, node, &phys) {
        if (argc > 1 && strcmp(argv[1], phy->name)) {
            continue;
        }
        found = true;
        ds_put_format(&s, "%s:\n", phy->name);
        if (phy->config_error) {
            ds_put_format(&s, "  error: %s\n", phy->config_error);
        }
        LIST_FOR_EACH (map, node, &phy->maps) {
            ds_put_format(&s, "  rxq %d -> %s: ", map->rxq, map->vhost);
            if (!map->m) {
                ds_put_cstr(&s, "not mapped\n");
            } else if (map->vid >= 0) {
                ds_put_format(&s, "attached (port %"PRIu16", vid %d)\n",
                              map->port_id, map->vid);
            } else {
                ds_put_format(&s, "waiting for a guest (port %"PRIu16")\n",
                              map->port_id);
            }
            if (map->error) {
                ds_put_format(&s, "    error: %s\n", map->error);
            }
            if (map->m) {
                int n = iovtee_mapping_get_counters(map->m, NULL, NULL, 0);

                if (n > 0) {
                    const char **names = xcalloc(n, sizeof *names);
                    uint64_t *values = xcalloc(n, sizeof *values);

                    n = iovtee_mapping_get_counters(map->m, names, values, n);
                    show_counters(names, values, n, &s);
                    free(names);
                    free(values);
                }
            }
        }
        if (phy->dirty) {
            ds_put_cstr(&s, "  (options changed: applied at the next "
                        "reconfiguration)\n");
        }
    }
    if (!ovs_list_is_empty(&graveyard)) {
        ds_put_format(&s, "mappings waiting for their mbufs: %"PRIuSIZE"\n",
                      ovs_list_size(&graveyard));
    }
    ovs_mutex_unlock(&iovtee_mutex);

    if (argc > 1 && !found) {
        unixctl_command_reply_error(conn, "no iovtee options on that "
                                    "interface");
    } else {
        unixctl_command_reply(conn, ds_cstr(&s));
    }
    ds_destroy(&s);
}

void
netdev_dpdk_iovtee_init(void)
{
    VLOG_INFO("iovtee %s (C ABI %"PRIu32") loaded", iovtee_version(),
              iovtee_abi_version());
    if (iovtee_abi_version() != IOVTEE_ABI_VERSION) {
        VLOG_ERR("iovtee: libiovtee has ABI %"PRIu32", OVS was built for %d",
                 iovtee_abi_version(), IOVTEE_ABI_VERSION);
    }
    unixctl_command_register("iovtee/show", "[interface]", 0, 1,
                             iovtee_show, NULL);
}
