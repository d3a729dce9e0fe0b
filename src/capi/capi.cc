// The C ABI (include/iovtee/iovtee.h) over iovtee::RxQueueMapping: argument
// checks, the versioned structs, and absl::Status -> errno + message. No
// logic of its own; no C++ exception leaves these functions.
#include "iovtee/iovtee.h"

#include <rte_mbuf.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <string>

#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "iovtee/mapping.h"
#include "src/capi/status_errno.h"

// A tripwire for the mirror: when a field is added to MappingOptions or
// MappingStats, append it to the C struct in iovtee.h (0 must mean "the
// default" for a new option), copy it below and add it to the tables in
// test/capi, then update the size here. (capi_test also checks that every
// counter of StatsFields has a field of the same name.)
static_assert(sizeof(iovtee::MappingOptions) == 28,
              "MappingOptions changed: mirror it in struct iovtee_mapping_options");
static_assert(sizeof(iovtee::MappingStats) == 248,
              "MappingStats changed: mirror it in struct iovtee_mapping_stats");

namespace {

using iovtee::RxQueueMapping;

constexpr const char* kVersion = "0.1.0";

// The handle is the C++ object itself: no extra indirection on the datapath.
RxQueueMapping* Mapping(iovtee_mapping* m) { return reinterpret_cast<RxQueueMapping*>(m); }
const RxQueueMapping* Mapping(const iovtee_mapping* m) {
  return reinterpret_cast<const RxQueueMapping*>(m);
}

void SetError(char* err, size_t err_size, absl::string_view msg) {
  if (err == nullptr || err_size == 0) return;
  const size_t n = std::min(msg.size(), err_size - 1);
  std::memcpy(err, msg.data(), n);
  err[n] = '\0';
}

int Fail(char* err, size_t err_size, int errnum, absl::string_view msg) {
  SetError(err, err_size, msg);
  return -errnum;
}

int Report(const absl::Status& s, char* err, size_t err_size) {
  if (s.ok()) {
    SetError(err, err_size, "");
    return 0;
  }
  return Fail(err, err_size, iovtee::capi::ErrnoFromStatus(s.code()), s.message());
}

// Runs a control function; a C++ exception becomes an errno.
template <typename F>
int Guarded(char* err, size_t err_size, F&& fn) noexcept {
  try {
    return fn();
  } catch (const std::bad_alloc&) {
    return Fail(err, err_size, ENOMEM, "out of memory");
  } catch (const std::exception& e) {
    return Fail(err, err_size, EIO, e.what());
  } catch (...) {
    return Fail(err, err_size, EIO, "unexpected C++ exception");
  }
}

// Whether the versioned struct `*s` (of `size` bytes as its caller compiled
// it) holds the whole field at [offset, offset + len).
constexpr bool Holds(size_t size, size_t offset, size_t len) { return offset + len <= size; }
#define IOVTEE_HOLDS(s, type, field) \
  Holds((s)->size, offsetof(type, field), sizeof(static_cast<type*>(nullptr)->field))

bool TailIsZero(const void* s, size_t known, size_t size) {
  const auto* p = static_cast<const unsigned char*>(s);
  return std::all_of(p + known, p + size, [](unsigned char b) { return b == 0; });
}

// The C options as MappingOptions; fields the caller's struct lacks keep
// their defaults.
int ReadOptions(const iovtee_mapping_options* c, iovtee::MappingOptions* o, char* err,
                size_t err_size) {
  if (c == nullptr) return 0;
  if (c->size < sizeof(c->size)) {
    return Fail(
        err, err_size, EINVAL,
        absl::StrFormat("options.size is %u: set it with iovtee_mapping_options_init()", c->size));
  }
  if (c->size > sizeof(*c) && !TailIsZero(c, sizeof(*c), c->size)) {
    return Fail(err, err_size, E2BIG,
                absl::StrFormat("options set fields this library (iovtee %s) does not know: it "
                                "knows %u of the %u bytes given",
                                kVersion, sizeof(*c), c->size));
  }
  using T = iovtee_mapping_options;
  if (IOVTEE_HOLDS(c, T, residency_cap)) o->residency_cap = c->residency_cap;
  if (IOVTEE_HOLDS(c, T, nic_buffer_size)) o->nic_buffer_size = c->nic_buffer_size;
  if (IOVTEE_HOLDS(c, T, mbuf_priv_size)) o->mbuf_priv_size = c->mbuf_priv_size;
  if (IOVTEE_HOLDS(c, T, pool_size)) o->pool_size = c->pool_size;
  if (IOVTEE_HOLDS(c, T, socket_id)) o->socket_id = c->socket_id;
  if (IOVTEE_HOLDS(c, T, drain_timeout_ms)) o->drain_timeout_ms = c->drain_timeout_ms;
  if (IOVTEE_HOLDS(c, T, guest_rx_order)) {
    switch (c->guest_rx_order) {
      case IOVTEE_GUEST_RX_ORDER_DETECT:
        o->guest_rx_order = iovtee::GuestRxOrder::kDetect;
        break;
      case IOVTEE_GUEST_RX_ORDER_TRUST_IDS:
        o->guest_rx_order = iovtee::GuestRxOrder::kTrustIds;
        break;
      default:
        return Fail(err, err_size, EINVAL,
                    absl::StrFormat("options.guest_rx_order is %u: use IOVTEE_GUEST_RX_ORDER_*",
                                    c->guest_rx_order));
    }
  }
  return 0;
}

// Sets s->field = v if the caller's struct `*s` holds the field.
#define IOVTEE_PUT(s, type, field, v)                   \
  do {                                                  \
    if (IOVTEE_HOLDS(s, type, field)) (s)->field = (v); \
  } while (0)

}  // namespace

extern "C" {

const char* iovtee_version(void) IOVTEE_NOEXCEPT { return kVersion; }

uint32_t iovtee_abi_version(void) IOVTEE_NOEXCEPT { return IOVTEE_ABI_VERSION; }

int iovtee_mapping_options_init(iovtee_mapping_options* opts, size_t size) IOVTEE_NOEXCEPT {
  if (opts == nullptr || size < sizeof(opts->size)) return -EINVAL;
  std::memset(opts, 0, size);
  opts->size = size;
  const iovtee::MappingOptions d;
  using T = iovtee_mapping_options;
  IOVTEE_PUT(opts, T, residency_cap, d.residency_cap);
  IOVTEE_PUT(opts, T, nic_buffer_size, d.nic_buffer_size);
  IOVTEE_PUT(opts, T, mbuf_priv_size, d.mbuf_priv_size);
  IOVTEE_PUT(opts, T, pool_size, d.pool_size);
  IOVTEE_PUT(opts, T, socket_id, d.socket_id);
  IOVTEE_PUT(opts, T, drain_timeout_ms, d.drain_timeout_ms);
  IOVTEE_PUT(opts, T, guest_rx_order,
             d.guest_rx_order == iovtee::GuestRxOrder::kTrustIds ? IOVTEE_GUEST_RX_ORDER_TRUST_IDS
                                                                 : IOVTEE_GUEST_RX_ORDER_DETECT);
  return 0;
}

int iovtee_mapping_stats_init(iovtee_mapping_stats* stats, size_t size) IOVTEE_NOEXCEPT {
  if (stats == nullptr || size < sizeof(stats->size)) return -EINVAL;
  std::memset(stats, 0, size);
  stats->size = size;
  return 0;
}

int iovtee_prepare_vhost_socket(const char* path, char* err, size_t err_size) IOVTEE_NOEXCEPT {
  return Guarded(err, err_size, [&] {
    if (path == nullptr) return Fail(err, err_size, EINVAL, "vhost-user socket path is NULL");
    return Report(iovtee::PrepareVhostSocket(path), err, err_size);
  });
}

int iovtee_mapping_create(uint16_t port_id, uint16_t queue_id, const iovtee_mapping_options* opts,
                          iovtee_mapping** out, char* err, size_t err_size) IOVTEE_NOEXCEPT {
  if (out != nullptr) *out = nullptr;
  return Guarded(err, err_size, [&] {
    if (out == nullptr) return Fail(err, err_size, EINVAL, "iovtee_mapping_create: out is NULL");
    iovtee::MappingOptions options;
    if (const int rc = ReadOptions(opts, &options, err, err_size); rc != 0) return rc;
    auto mapping = RxQueueMapping::Create(port_id, queue_id, options);
    if (!mapping.ok()) return Report(mapping.status(), err, err_size);
    *out = reinterpret_cast<iovtee_mapping*>(mapping->release());
    return Report(absl::OkStatus(), err, err_size);
  });
}

void iovtee_mapping_destroy(iovtee_mapping* m) IOVTEE_NOEXCEPT { delete Mapping(m); }

rte_mempool* iovtee_mapping_mempool(const iovtee_mapping* m) IOVTEE_NOEXCEPT {
  return m != nullptr ? Mapping(m)->mempool() : nullptr;
}

uint16_t iovtee_mapping_rx_burst(iovtee_mapping* m, rte_mbuf** pkts, uint16_t n) IOVTEE_NOEXCEPT {
  if (m == nullptr || pkts == nullptr) return 0;
  return Mapping(m)->RxBurst(pkts, n);
}

int iovtee_mapping_attach_guest(iovtee_mapping* m, int vid, uint16_t vring_idx, char* err,
                                size_t err_size) IOVTEE_NOEXCEPT {
  return Guarded(err, err_size, [&] {
    if (m == nullptr) return Fail(err, err_size, EINVAL, "mapping is NULL");
    const absl::Status s = Mapping(m)->AttachGuest(vid, vring_idx);
    // A failed attach changes nothing: a guest attached now was there before.
    if (!s.ok() && Mapping(m)->attached()) return Fail(err, err_size, EBUSY, s.message());
    return Report(s, err, err_size);
  });
}

int iovtee_mapping_detach_guest(iovtee_mapping* m, char* err, size_t err_size) IOVTEE_NOEXCEPT {
  return Guarded(err, err_size, [&] {
    if (m == nullptr) return Fail(err, err_size, EINVAL, "mapping is NULL");
    return Report(Mapping(m)->DetachGuest(), err, err_size);
  });
}

int iovtee_mapping_attached(const iovtee_mapping* m) IOVTEE_NOEXCEPT {
  if (m == nullptr) return -EINVAL;
  return Mapping(m)->attached() ? 1 : 0;
}

uint16_t iovtee_mapping_enqueue(iovtee_mapping* m, rte_mbuf** pkts, uint16_t n) IOVTEE_NOEXCEPT {
  if (pkts == nullptr) return 0;
  if (m == nullptr) {
    rte_pktmbuf_free_bulk(pkts, n);
    return 0;
  }
  return Mapping(m)->Enqueue(pkts, n);
}

int iovtee_mapping_get_stats(const iovtee_mapping* m, iovtee_mapping_stats* stats) IOVTEE_NOEXCEPT {
  if (m == nullptr || stats == nullptr || stats->size < sizeof(stats->size)) return -EINVAL;
  return Guarded(nullptr, 0, [&] {
    const iovtee::MappingStats s = Mapping(m)->stats();
    if (stats->size > sizeof(*stats)) {
      std::memset(reinterpret_cast<unsigned char*>(stats) + sizeof(*stats), 0,
                  stats->size - sizeof(*stats));
    }
    using T = iovtee_mapping_stats;
    IOVTEE_PUT(stats, T, attached, s.attached ? 1u : 0u);
    IOVTEE_PUT(stats, T, zero_copy, s.zero_copy);
    IOVTEE_PUT(stats, T, copied, s.copied);
    IOVTEE_PUT(stats, T, bytes, s.bytes);
    IOVTEE_PUT(stats, T, copy_foreign, s.copy_foreign);
    IOVTEE_PUT(stats, T, copy_host_buffer, s.copy_host_buffer);
    IOVTEE_PUT(stats, T, copy_multi_segment, s.copy_multi_segment);
    IOVTEE_PUT(stats, T, copy_shared, s.copy_shared);
    IOVTEE_PUT(stats, T, copy_stale_session, s.copy_stale_session);
    IOVTEE_PUT(stats, T, copy_layout, s.copy_layout);
    IOVTEE_PUT(stats, T, copy_order_unproven, s.copy_order_unproven);
    IOVTEE_PUT(stats, T, drop_no_buffer, s.drop_no_buffer);
    IOVTEE_PUT(stats, T, drop_too_big, s.drop_too_big);
    IOVTEE_PUT(stats, T, drop_offload, s.drop_offload);
    IOVTEE_PUT(stats, T, drop_broken_queue, s.drop_broken_queue);
    IOVTEE_PUT(stats, T, drop_no_guest, s.drop_no_guest);
    IOVTEE_PUT(stats, T, guest_buffers_held, s.guest_buffers_held);
    IOVTEE_PUT(stats, T, guest_buffers_lent, s.guest_buffers_lent);
    IOVTEE_PUT(stats, T, host_buffers_posted, s.host_buffers_posted);
    IOVTEE_PUT(stats, T, guest_buffers_recycled, s.guest_buffers_recycled);
    IOVTEE_PUT(stats, T, guest_buffers_orphaned, s.guest_buffers_orphaned);
    IOVTEE_PUT(stats, T, validation_errors, s.validation_errors);
    IOVTEE_PUT(stats, T, attaches, s.attaches);
    IOVTEE_PUT(stats, T, detaches, s.detaches);
    IOVTEE_PUT(stats, T, order_probation, s.order_probation ? 1u : 0u);
    IOVTEE_PUT(stats, T, quarantined_sessions, s.quarantined_sessions);
    IOVTEE_PUT(stats, T, notify_retries, s.notify_retries);
    IOVTEE_PUT(stats, T, pool_mbufs, s.pool_mbufs);
    IOVTEE_PUT(stats, T, pool_free_mbufs, s.pool_free_mbufs);
    IOVTEE_PUT(stats, T, nic_wrote_outside, s.nic_wrote_outside);
    IOVTEE_PUT(stats, T, lending_disabled, s.lending_disabled);
    IOVTEE_PUT(stats, T, drop_detach, s.drop_detach);
    return 0;
  });
}

int iovtee_mapping_get_counters(const iovtee_mapping* m, const char** names, uint64_t* values,
                                unsigned int n) IOVTEE_NOEXCEPT {
  if (m == nullptr || (n > 0 && (names == nullptr || values == nullptr))) return -EINVAL;
  return Guarded(nullptr, 0, [&] {
    const auto fields = iovtee::StatsFields(Mapping(m)->stats());
    for (size_t i = 0; i < fields.size() && i < n; ++i) {
      names[i] = fields[i].first;
      values[i] = fields[i].second;
    }
    return static_cast<int>(fields.size());
  });
}

rte_mbuf* iovtee_unshare(rte_mbuf* m, rte_mempool* mp) IOVTEE_NOEXCEPT {
  if (m == nullptr || mp == nullptr) return nullptr;
  return RxQueueMapping::Unshare(m, mp);
}

}  // extern "C"
