/* A C host of libiovtee.so, the way OVS uses it: a C program (compiled as
 * C) that links only the shared library and calls the C ABI with DPDK's own
 * C API around it. EAL as the project's tests start it (no hugepages, no PCI,
 * no shared config, a file prefix of its own); the NIC is DPDK's net_null
 * driver, whose rx_burst allocates from the queue's mempool: the mapping's.
 *
 * Checks: versions; a mapping created with defaults, and one with an
 * options struct from an older header; frames received through the mapping
 * and enqueued with no guest (every mbuf consumed, each counted); stats into
 * the current struct, an older one and by name; error paths with errno and
 * message; everything back in the pools. Prints each failed check and a
 * summary, exits 1 on any failure. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "iovtee/iovtee.h"

static int checks;
static int failures;

#define CHECK(cond)                                                            \
  do {                                                                         \
    ++checks;                                                                  \
    if (!(cond)) {                                                             \
      ++failures;                                                              \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
    }                                                                          \
  } while (0)

#define CHECK_RC(expr, want)                                                                 \
  do {                                                                                       \
    const long got_ = (long)(expr);                                                          \
    ++checks;                                                                                \
    if (got_ != (long)(want)) {                                                              \
      ++failures;                                                                            \
      fprintf(stderr, "%s:%d: %s returned %ld, want %ld (err \"%s\")\n", __FILE__, __LINE__, \
              #expr, got_, (long)(want), err);                                               \
    }                                                                                        \
  } while (0)

/* An options struct as an older header declared it: it ends before
 * mbuf_priv_size. */
struct old_options {
  size_t size;
  uint32_t residency_cap;
  uint16_t nic_buffer_size;
};

/* A stats struct as an older header declared it. */
struct old_stats {
  size_t size;
  uint64_t attached;
  uint64_t zero_copy;
  uint64_t copied;
};

static char runtime_dir[512];

static void remove_runtime_dir(void) {
  DIR* d;
  struct dirent* e;
  char path[1024];
  char* slash;
  if (runtime_dir[0] == '\0') return;
  d = opendir(runtime_dir);
  if (d != NULL) {
    while ((e = readdir(d)) != NULL) {
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
      snprintf(path, sizeof path, "%s/%s", runtime_dir, e->d_name);
      unlink(path);
    }
    closedir(d);
  }
  rmdir(runtime_dir);
  slash = strrchr(runtime_dir, '/');
  if (slash != NULL) {
    *slash = '\0';
    rmdir(runtime_dir); /* /var/run/dpdk, when no other process uses it */
  }
}

static int start_eal(void) {
  char prefix[64];
  char* argv[] = {"c_host_test",
                  "--no-huge",
                  "-m",
                  "256",
                  "--no-pci",
                  "--no-shconf",
                  "--no-telemetry",
                  "--file-prefix",
                  prefix,
                  "-l",
                  "0",
                  "--log-level",
                  "lib.eal:warning",
                  "--vdev",
                  "net_null0,size=128",
                  NULL};
  snprintf(prefix, sizeof prefix, "iovtee-t-c-%d", (int)getpid());
  if (rte_eal_init((int)(sizeof argv / sizeof argv[0]) - 1, argv) < 0) {
    fprintf(stderr, "rte_eal_init: %s\n", rte_strerror(rte_errno));
    return -1;
  }
  snprintf(runtime_dir, sizeof runtime_dir, "%s", rte_eal_get_runtime_dir());
  return 0;
}

static int start_port(uint16_t port, struct rte_mempool* mp) {
  struct rte_eth_conf conf;
  memset(&conf, 0, sizeof conf);
  if (rte_eth_dev_configure(port, 1, 1, &conf) != 0) return -1;
  if (rte_eth_rx_queue_setup(port, 0, 128, SOCKET_ID_ANY, NULL, mp) != 0) return -1;
  if (rte_eth_tx_queue_setup(port, 0, 128, SOCKET_ID_ANY, NULL) != 0) return -1;
  return rte_eth_dev_start(port);
}

static void check_versions(void) {
  char err[1] = "";
  CHECK_RC(iovtee_abi_version(), IOVTEE_ABI_VERSION);
  CHECK(iovtee_version() != NULL && strchr(iovtee_version(), '.') != NULL);
}

static void check_errors_before_a_port(void) {
  char err[128];
  struct iovtee_mapping* m = (struct iovtee_mapping*)&err; /* must be reset to NULL */
  struct iovtee_mapping_options o;
  CHECK_RC(iovtee_mapping_create(99, 0, NULL, &m, err, sizeof err), -ENODEV);
  CHECK(m == NULL);
  CHECK(strcmp(err, "port 99 does not exist") == 0);
  CHECK_RC(iovtee_mapping_create(99, 0, NULL, &m, err, 5), -ENODEV);
  CHECK(strcmp(err, "port") == 0);
  CHECK_RC(iovtee_mapping_options_init(&o, sizeof o), 0);
  o.pool_size = 10;
  CHECK_RC(iovtee_mapping_create(0, 3, &o, &m, err, sizeof err), -EINVAL);
  CHECK(strstr(err, "too few") != NULL);
  CHECK_RC(iovtee_mapping_options_init(&o, sizeof o), 0);
  o.nic_buffer_size = 16;
  CHECK_RC(iovtee_mapping_create(0, 3, &o, &m, err, sizeof err), -EINVAL);
  CHECK(strstr(err, "too small") != NULL);
  CHECK_RC(iovtee_mapping_options_init(NULL, sizeof o), -EINVAL);
  CHECK_RC(iovtee_prepare_vhost_socket("/nonexistent/vhost.sock", err, sizeof err), -ENODEV);
  CHECK(strstr(err, "/nonexistent/vhost.sock") != NULL);
}

static void check_mapping_on_port(uint16_t port) {
  char err[256] = "";
  struct iovtee_mapping* m = NULL;
  struct iovtee_mapping* old = NULL;
  struct iovtee_mapping_options o;
  struct old_options oo;
  struct iovtee_mapping_stats s;
  struct old_stats os;
  struct rte_mempool* mp;
  struct rte_mbuf* pkts[32];
  const char* names[64];
  uint64_t values[64];
  uint64_t received = 0;
  int i, n, rounds;

  CHECK_RC(iovtee_mapping_options_init(&o, sizeof o), 0);
  o.pool_size = 512;
  o.nic_buffer_size = 2048;
  o.guest_rx_order = IOVTEE_GUEST_RX_ORDER_TRUST_IDS;
  CHECK_RC(iovtee_mapping_create(port, 0, &o, &m, err, sizeof err), 0);
  if (m == NULL) return;
  CHECK(err[0] == '\0');
  mp = iovtee_mapping_mempool(m);
  CHECK(mp != NULL && mp->size == 512);
  CHECK(rte_pktmbuf_data_room_size(mp) == 2048 + RTE_PKTMBUF_HEADROOM);
  CHECK_RC(iovtee_mapping_attached(m), 0);

  /* Queue 1 with an options struct from an older header: its fields are
   * used, the others default. The bytes after it are never read. */
  memset(&oo, 0, sizeof oo);
  oo.size = sizeof oo;
  oo.nic_buffer_size = 1024;
  CHECK_RC(iovtee_mapping_create(port, 1, (const struct iovtee_mapping_options*)&oo, &old, err,
                                 sizeof err),
           0);
  if (old != NULL) {
    CHECK(iovtee_mapping_mempool(old)->size == 4096);
    CHECK(rte_pktmbuf_data_room_size(iovtee_mapping_mempool(old)) == 1024 + RTE_PKTMBUF_HEADROOM);
  }
  /* Queue 0 is mapped already. */
  CHECK(iovtee_mapping_create(port, 0, NULL, &old, err, sizeof err) < 0);
  CHECK(strstr(err, "iovtee_p0q0") != NULL);

  if (start_port(port, mp) != 0) {
    CHECK(!"port start");
    iovtee_mapping_destroy(m);
    return;
  }
  /* net_null fills every burst from the mapping's mempool (host buffers:
   * no guest). The mapping consumes every mbuf it is given. */
  for (rounds = 0; rounds < 10; ++rounds) {
    n = iovtee_mapping_rx_burst(m, pkts, 32);
    CHECK_RC(n, 32);
    for (i = 0; i < n; ++i) CHECK(pkts[i]->pool == mp && pkts[i]->pkt_len == 128);
    received += (uint64_t)n;
    CHECK_RC(iovtee_mapping_enqueue(m, pkts, (uint16_t)n), 0);
  }
  CHECK(rte_mempool_avail_count(mp) == 512);

  CHECK_RC(iovtee_mapping_stats_init(&s, sizeof s), 0);
  CHECK_RC(iovtee_mapping_get_stats(m, &s), 0);
  CHECK(s.size == sizeof s);
  CHECK(s.drop_no_guest == received);
  CHECK(s.host_buffers_posted >= received);
  CHECK(s.zero_copy == 0 && s.copied == 0 && s.attached == 0 && s.attaches == 0);
  CHECK(s.pool_mbufs == 512 && s.pool_free_mbufs == 512);

  /* An older, smaller stats struct: only its own fields are written. */
  memset(&os, 0xab, sizeof os);
  os.size = offsetof(struct old_stats, copied); /* up to zero_copy */
  CHECK_RC(iovtee_mapping_get_stats(m, (struct iovtee_mapping_stats*)&os), 0);
  CHECK(os.attached == 0 && os.zero_copy == 0);
  CHECK(os.copied == 0xababababababababULL);

  n = iovtee_mapping_get_counters(m, NULL, NULL, 0);
  CHECK(n > 0 && n <= 64);
  if (n > 0 && n <= 64) {
    CHECK_RC(iovtee_mapping_get_counters(m, names, values, 64), n);
    for (i = 0; i < n; ++i) {
      if (strcmp(names[i], "drop_no_guest") == 0) CHECK(values[i] == received);
    }
  }

  CHECK_RC(iovtee_mapping_attach_guest(m, 77, 0, err, sizeof err), -ENODEV);
  CHECK(strcmp(err, "vhost device 77 not found") == 0);
  CHECK_RC(iovtee_mapping_attach_guest(m, 77, 3, err, sizeof err), -EINVAL);
  CHECK_RC(iovtee_mapping_detach_guest(m, err, sizeof err), 0);
  CHECK(err[0] == '\0');

  /* A host mbuf needs no unsharing. */
  pkts[0] = rte_pktmbuf_alloc(mp);
  CHECK(pkts[0] != NULL && iovtee_unshare(pkts[0], mp) == pkts[0]);
  rte_pktmbuf_free(pkts[0]);

  /* Stop the port before destroying the mapping: the NIC must not hold its
   * mbufs. */
  CHECK_RC(rte_eth_dev_stop(port), 0);
  CHECK(rte_mempool_avail_count(mp) == 512);
  CHECK_RC(rte_eth_dev_close(port), 0);
  iovtee_mapping_destroy(m);
  iovtee_mapping_destroy(old);
}

int main(void) {
  uint16_t port;
  check_versions();
  if (start_eal() != 0) return 1;
  check_errors_before_a_port();
  if (rte_eth_dev_get_port_by_name("net_null0", &port) != 0) {
    fprintf(stderr, "no net_null0 port\n");
    ++failures;
  } else {
    check_mapping_on_port(port);
  }
  rte_eal_cleanup();
  remove_runtime_dir();
  printf("c_host_test: %d checks, %d failed\n", checks, failures);
  return failures == 0 ? 0 : 1;
}
