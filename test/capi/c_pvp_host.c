/* The smallest PVP switch a C host can write over libiovtee.so, shaped like
 * the OVS glue: NIC port 0 Rx queue 0 is mapped onto the Rx queue of the
 * guest behind one vhost-user socket; the guest's Tx queue goes back out of
 * the NIC. A C program (compiled as C) linking only the shared library.
 *
 *   c_pvp_host EAL_ARGS... -- VHOST_SOCKET STATS_FILE
 *
 * EAL_ARGS must create the NIC as port 0 (e.g. -d librte_net_simnic.so
 * --vdev net_simnic0,socket=...). Runs until SIGINT/SIGTERM, then writes
 * "name value" lines to STATS_FILE: the host's own counters (to_guest,
 * to_guest_dropped, to_nic, to_nic_dropped, busy_refused) and every mapping
 * counter by name (iovtee_mapping_get_counters). Exit status 0 when every
 * call that must succeed did. */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_pause.h>
#include <rte_vhost.h>

#include "iovtee/iovtee.h"

#define BURST 32
#define NIC_PORT 0
#define GUEST_RX_VRING 0 /* the guest's Rx queue 0: mapped */
#define GUEST_TX_VRING 1

static volatile sig_atomic_t stop_requested;
static struct iovtee_mapping* mapping;

/* The vhost device the loop dequeues from, and a pause point so that
 * destroy_device (vhost's thread) waits until the loop is out of
 * rte_vhost_dequeue_burst: sequentially consistent on both sides. */
static atomic_int guest_vid = -1;
static atomic_int loop_inside;
static atomic_int loop_paused;

static atomic_ullong busy_refused; /* a second attach answered -EBUSY */
static atomic_int errors;

static void on_signal(int sig) {
  (void)sig;
  stop_requested = 1;
}

static int new_device(int vid) {
  char err[256];
  int rc = iovtee_mapping_attach_guest(mapping, vid, GUEST_RX_VRING, err, sizeof err);
  if (rc != 0) {
    fprintf(stderr, "c_pvp_host: attach vid %d: %s (%d)\n", vid, err, rc);
    atomic_fetch_add(&errors, 1);
  } else {
    printf("c_pvp_host: guest vid %d attached\n", vid);
    /* The mapping serves one guest at a time. */
    rc = iovtee_mapping_attach_guest(mapping, vid, GUEST_RX_VRING, err, sizeof err);
    if (rc == -EBUSY) {
      atomic_fetch_add(&busy_refused, 1);
    } else {
      fprintf(stderr, "c_pvp_host: second attach returned %d, want -EBUSY (%s)\n", rc, err);
      atomic_fetch_add(&errors, 1);
    }
  }
  atomic_store(&guest_vid, vid);
  return 0;
}

static void destroy_device(int vid) {
  char err[256];
  int rc;
  if (atomic_load(&guest_vid) != vid) return;
  atomic_store(&loop_paused, 1);
  while (atomic_load(&loop_inside) != 0) rte_pause();
  atomic_store(&guest_vid, -1);
  atomic_store(&loop_paused, 0);
  rc = iovtee_mapping_detach_guest(mapping, err, sizeof err);
  if (rc != 0) {
    fprintf(stderr, "c_pvp_host: detach vid %d: %s (%d)\n", vid, err, rc);
    atomic_fetch_add(&errors, 1);
  } else {
    printf("c_pvp_host: guest vid %d detached\n", vid);
  }
}

static const struct rte_vhost_device_ops vhost_ops = {
    .new_device = new_device,
    .destroy_device = destroy_device,
};

static int start_nic(struct rte_mempool* rx_pool) {
  struct rte_eth_conf conf;
  memset(&conf, 0, sizeof conf);
  if (rte_eth_dev_configure(NIC_PORT, 1, 1, &conf) != 0) return -1;
  if (rte_eth_rx_queue_setup(NIC_PORT, 0, 256, rte_eth_dev_socket_id(NIC_PORT), NULL, rx_pool) !=
      0) {
    return -1;
  }
  if (rte_eth_tx_queue_setup(NIC_PORT, 0, 1024, rte_eth_dev_socket_id(NIC_PORT), NULL) != 0) {
    return -1;
  }
  rte_eth_promiscuous_enable(NIC_PORT);
  return rte_eth_dev_start(NIC_PORT);
}

int main(int argc, char** argv) {
  char err[256];
  struct iovtee_mapping_options options;
  struct rte_mempool* host_pool;
  struct rte_mbuf* pkts[BURST];
  const char* names[128];
  uint64_t values[128];
  uint64_t to_guest = 0, to_guest_dropped = 0, to_nic = 0, to_nic_dropped = 0;
  const char* vhost_path;
  const char* stats_path;
  FILE* f;
  int used, n, i, count;

  used = rte_eal_init(argc, argv);
  if (used < 0) {
    fprintf(stderr, "c_pvp_host: rte_eal_init: %s\n", rte_strerror(rte_errno));
    return 1;
  }
  argc -= used;
  argv += used;
  if (argc != 3) {
    fprintf(stderr, "usage: c_pvp_host EAL_ARGS... -- VHOST_SOCKET STATS_FILE\n");
    return 2;
  }
  vhost_path = argv[1];
  stats_path = argv[2];
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  if (iovtee_abi_version() != IOVTEE_ABI_VERSION) {
    fprintf(stderr, "c_pvp_host: libiovtee ABI %u, header %d\n", iovtee_abi_version(),
            IOVTEE_ABI_VERSION);
    return 1;
  }
  if (!rte_eth_dev_is_valid_port(NIC_PORT)) {
    fprintf(stderr, "c_pvp_host: no NIC port %d\n", NIC_PORT);
    return 1;
  }

  host_pool =
      rte_pktmbuf_pool_create("host", 8192, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, rte_socket_id());
  iovtee_mapping_options_init(&options, sizeof options);
  if (host_pool == NULL ||
      iovtee_mapping_create(NIC_PORT, 0, &options, &mapping, err, sizeof err) != 0) {
    fprintf(stderr, "c_pvp_host: set-up: %s\n", host_pool == NULL ? "host pool" : err);
    return 1;
  }
  if (start_nic(iovtee_mapping_mempool(mapping)) != 0) {
    fprintf(stderr, "c_pvp_host: cannot start port %d\n", NIC_PORT);
    return 1;
  }
  if (rte_vhost_driver_register(vhost_path, 0) != 0 ||
      iovtee_prepare_vhost_socket(vhost_path, err, sizeof err) != 0 ||
      rte_vhost_driver_callback_register(vhost_path, &vhost_ops) != 0 ||
      rte_vhost_driver_start(vhost_path) != 0) {
    fprintf(stderr, "c_pvp_host: vhost-user socket %s: %s\n", vhost_path, err);
    return 1;
  }
  printf("c_pvp_host: forwarding (libiovtee %s)\n", iovtee_version());
  fflush(stdout);

  while (!stop_requested) {
    int vid;
    /* NIC -> guest: frames in the guest's own buffers complete in place. */
    n = iovtee_mapping_rx_burst(mapping, pkts, BURST);
    if (n > 0) {
      const uint16_t sent = iovtee_mapping_enqueue(mapping, pkts, (uint16_t)n);
      to_guest += sent;
      to_guest_dropped += (uint64_t)(n - sent); /* already freed and counted */
    }
    /* guest -> NIC. */
    atomic_fetch_add(&loop_inside, 1);
    vid = atomic_load(&guest_vid);
    if (atomic_load(&loop_paused) || vid < 0) {
      atomic_fetch_sub(&loop_inside, 1);
      continue;
    }
    n = rte_vhost_dequeue_burst(vid, GUEST_TX_VRING, host_pool, pkts, BURST);
    atomic_fetch_sub(&loop_inside, 1);
    if (n > 0) {
      const uint16_t sent = rte_eth_tx_burst(NIC_PORT, 0, pkts, (uint16_t)n);
      to_nic += sent;
      to_nic_dropped += (uint64_t)(n - sent);
      for (i = sent; i < n; ++i) rte_pktmbuf_free(pkts[i]);
    }
  }

  /* The guest first (destroy_device detaches it while the NIC runs), then
   * the NIC, then the mapping: the port must hold none of its mbufs. */
  rte_vhost_driver_unregister(vhost_path);
  if (rte_eth_dev_stop(NIC_PORT) != 0) atomic_fetch_add(&errors, 1);

  f = fopen(stats_path, "w");
  if (f == NULL) {
    fprintf(stderr, "c_pvp_host: cannot write %s\n", stats_path);
    return 1;
  }
  fprintf(f, "to_guest %llu\nto_guest_dropped %llu\nto_nic %llu\nto_nic_dropped %llu\n",
          (unsigned long long)to_guest, (unsigned long long)to_guest_dropped,
          (unsigned long long)to_nic, (unsigned long long)to_nic_dropped);
  fprintf(f, "busy_refused %llu\n", (unsigned long long)atomic_load(&busy_refused));
  count = iovtee_mapping_get_counters(mapping, names, values, 128);
  for (i = 0; i < count && i < 128; ++i) {
    fprintf(f, "%s %llu\n", names[i], (unsigned long long)values[i]);
  }
  fclose(f);

  rte_eth_dev_close(NIC_PORT);
  iovtee_mapping_destroy(mapping);
  rte_mempool_free(host_pool);
  rte_eal_cleanup();
  printf("c_pvp_host: done, %d error(s)\n", atomic_load(&errors));
  return atomic_load(&errors) == 0 && count > 0 ? 0 : 1;
}
