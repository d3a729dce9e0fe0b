#include "src/pool/mapped_pool.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include <rte_errno.h>
#include <rte_mbuf_dyn.h>

#include "absl/strings/str_format.h"
#include "src/common/log.h"

namespace iovtee {
namespace {

constexpr char kOpsName[] = "iovtee_mapped";
constexpr unsigned kBatch = 64;

const rte_mbuf_dynfield kIndexField = {"iovtee_pool_index", sizeof(uint32_t), alignof(uint32_t), 0};

MappedPool* Self(const rte_mempool* mp) { return static_cast<MappedPool*>(mp->pool_config); }

}  // namespace

// The ops table is registered at load time; the pool object travels in
// mp->pool_config (rte_mempool_set_ops_byname's argument).
struct MappedPoolOps {
  static rte_mempool_ops Make() {
    rte_mempool_ops ops = {};
    std::strncpy(ops.name, kOpsName, sizeof(ops.name) - 1);
    ops.alloc = MappedPool::OpAlloc;
    ops.free = MappedPool::OpFree;
    ops.enqueue = MappedPool::OpEnqueue;
    ops.dequeue = MappedPool::OpDequeue;
    ops.get_count = MappedPool::OpGetCount;
    return ops;
  }
};

namespace {
rte_mempool_ops g_ops = MappedPoolOps::Make();
const int g_ops_index = rte_mempool_register_ops(&g_ops);
}  // namespace

thread_local MappedPool* MappedPool::refilling_ = nullptr;

MappedPool::MappedPool(const MappedPoolConfig& config) : config_(config) {}

MappedPool* MappedPool::FromMempool(const rte_mempool* mp) {
  if (mp == nullptr || g_ops_index < 0 || mp->ops_index != g_ops_index) return nullptr;
  return Self(mp);
}

absl::StatusOr<std::unique_ptr<MappedPool>> MappedPool::Create(const MappedPoolConfig& config) {
  if (g_ops_index < 0) return absl::InternalError("mapped pool: mempool ops not registered");
  if (config.size < 64) {
    return absl::InvalidArgumentError(
        absl::StrFormat("mapped pool %s: %u mbufs is too few", config.name, config.size));
  }
  if (config.nic_buffer_size > UINT16_MAX - RTE_PKTMBUF_HEADROOM) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "mapped pool %s: NIC buffer size %u is too large (at most %u: an mbuf's data room is "
        "16 bits)",
        config.name, config.nic_buffer_size, UINT16_MAX - RTE_PKTMBUF_HEADROOM));
  }
  if (config.nic_buffer_size < 64) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "mapped pool %s: NIC buffer size %u is too small", config.name, config.nic_buffer_size));
  }
  const int offset = rte_mbuf_dynfield_register(&kIndexField);
  if (offset < 0) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "mapped pool %s: cannot register mbuf field: %s", config.name, rte_strerror(rte_errno)));
  }
  std::unique_ptr<MappedPool> pool(new MappedPool(config));
  pool->index_offset_ = offset;
  pool->table_.resize(config.size);

  const uint32_t data_room = RTE_PKTMBUF_HEADROOM + config.nic_buffer_size;
  const uint32_t elt =
      sizeof(rte_mbuf) + RTE_ALIGN(config.priv_size, RTE_MBUF_PRIV_ALIGN) + data_room;
  rte_mempool* mp = rte_mempool_create_empty(config.name.c_str(), config.size, elt,
                                             /*cache_size=*/0, sizeof(rte_pktmbuf_pool_private),
                                             config.socket_id, 0);
  if (mp == nullptr) {
    const int err = rte_errno;
    if (err == EEXIST) {
      return absl::AlreadyExistsError(absl::StrFormat(
          "mapped pool %s exists already: is this queue mapped twice?", config.name));
    }
    return absl::ResourceExhaustedError(absl::StrFormat(
        "mapped pool %s: rte_mempool_create_empty: %s", config.name, rte_strerror(err)));
  }
  pool->mp_ = mp;  // the destructor frees it from here on
  rte_pktmbuf_pool_private priv = {};
  priv.mbuf_data_room_size = static_cast<uint16_t>(data_room);
  priv.mbuf_priv_size = static_cast<uint16_t>(RTE_ALIGN(config.priv_size, RTE_MBUF_PRIV_ALIGN));
  rte_pktmbuf_pool_init(mp, &priv);
  if (rte_mempool_set_ops_byname(mp, kOpsName, pool.get()) != 0) {
    return absl::InternalError(
        absl::StrFormat("mapped pool %s: cannot set mempool ops", config.name));
  }
  if (rte_mempool_populate_default(mp) < 0) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("mapped pool %s: cannot populate %u mbufs: %s", config.name, config.size,
                        rte_strerror(rte_errno)));
  }
  pool->stride_ = mp->header_size + mp->elt_size + mp->trailer_size;
  rte_mempool_obj_iter(mp, &MappedPool::InitObject, pool.get());
  // By address, for IndexByAddress's binary search.
  std::sort(pool->chunks_.begin(), pool->chunks_.end(),
            [](const Chunk& a, const Chunk& b) { return a.start < b.start; });
  pool->initialised_ = true;
  IOVTEE_LOG(INFO, "mapped pool %s: %u mbufs, NIC buffer %u bytes", config.name.c_str(),
             config.size, config.nic_buffer_size);
  return pool;
}

MappedPool::~MappedPool() {
  // rte_mempool_free dequeues through the ops: no guest buffer may be taken.
  Detach();
  if (mp_ != nullptr) {
    const unsigned back = rte_mempool_avail_count(mp_);
    if (initialised_ && back != config_.size) {
      IOVTEE_LOG(ERR, "mapped pool %s: freed with %u of %u mbufs still out", config_.name.c_str(),
                 config_.size - back, config_.size);
    }
    const MappedPoolStats st = stats();
    if (st.guest_resident != 0) {
      // Their guest session was never ended with a teardown: those buffers
      // never went back to the guest's used ring.
      IOVTEE_LOG(WARNING,
                 "mapped pool %s: freed holding %u guest buffers (%u parked); their guest "
                 "only gets them back through a device reset",
                 config_.name.c_str(), st.guest_resident, st.guest_parked);
    }
    rte_mempool_free(mp_);
  }
}

void MappedPool::InitObject(rte_mempool* mp, void* arg, void* obj, unsigned idx) {
  MappedPool* self = static_cast<MappedPool*>(arg);
  rte_pktmbuf_init(mp, nullptr, obj, idx);
  rte_mbuf* m = static_cast<rte_mbuf*>(obj);
  *RTE_MBUF_DYNFIELD(m, self->index_offset_, uint32_t*) = idx;
  const uintptr_t addr = reinterpret_cast<uintptr_t>(obj);
  if (self->chunks_.empty() ||
      self->chunks_.back().start + self->chunks_.back().count * self->stride_ != addr ||
      self->chunks_.back().first + self->chunks_.back().count != idx) {
    self->chunks_.push_back(Chunk{addr, idx, 0});
  }
  ++self->chunks_.back().count;
  Entry& e = self->table_[idx];
  e.obj = m;
  e.host_addr = m->buf_addr;
  e.host_iova = m->buf_iova;
  e.host_len = m->buf_len;
  if (self->config_.obj_init != nullptr)
    self->config_.obj_init(mp, self->config_.obj_init_arg, obj, idx);
}

uint32_t MappedPool::IndexByAddress(const rte_mbuf* m) const {
  // A stale hint (an rte_pktmbuf_copy copies dynamic fields, so a copy into
  // this pool carries its source's index) lands here on every lookup of that
  // mbuf: binary search, as --no-huge pools come in many chunks.
  const uintptr_t addr = reinterpret_cast<uintptr_t>(m);
  auto it = std::upper_bound(chunks_.begin(), chunks_.end(), addr,
                             [](uintptr_t a, const Chunk& c) { return a < c.start; });
  if (it != chunks_.begin()) {
    const Chunk& c = *(it - 1);
    if (addr < c.start + c.count * stride_) {
      return c.first + static_cast<uint32_t>((addr - c.start) / stride_);
    }
  }
  // Not an object of this pool: only reachable through a caller bug (the
  // mempool ops see only this pool's objects). Entry 0 keeps memory safe.
  IOVTEE_LOG(ERR, "mapped pool %s: mbuf %p is not one of its objects", config_.name.c_str(), m);
  return 0;
}

int MappedPool::OpAlloc(rte_mempool* mp) {
  MappedPool* self = Self(mp);
  // Each stack can hold every mbuf of the pool, so no push ever fails.
  self->host_ = std::make_unique<ObjStack>(mp->size);
  self->parked_ = std::make_unique<ObjStack>(mp->size);
  mp->pool_data = self;
  return 0;
}

void MappedPool::OpFree(rte_mempool* mp) {
  MappedPool* self = Self(mp);
  self->host_.reset();
  self->parked_.reset();
}

int MappedPool::OpEnqueue(rte_mempool* mp, void* const* objs, unsigned n) {
  return Self(mp)->Enqueue(objs, n);
}

int MappedPool::OpDequeue(rte_mempool* mp, void** objs, unsigned n) {
  return Self(mp)->Dequeue(objs, n);
}

unsigned MappedPool::OpGetCount(const rte_mempool* mp) {
  const MappedPool* self = Self(mp);
  return self->host_->Count() + self->parked_->Count();
}

void MappedPool::PointAtGuest(rte_mbuf* m, Entry& e) {
  // The NIC writes at buf_iova + RTE_PKTMBUF_HEADROOM: make that the byte
  // right after the virtio-net header. The headroom bytes before it are not
  // the guest buffer's, which is why FixupRx removes the headroom after Rx.
  const uint32_t shift = RTE_PKTMBUF_HEADROOM - config_.hdr_len;
  m->buf_addr = e.buffer.addr - shift;
  m->buf_iova = e.buffer.iova - shift;
  m->buf_len = static_cast<uint16_t>(shift + e.buffer.len);
  m->data_off = RTE_PKTMBUF_HEADROOM;
}

void MappedPool::PointAtHost(rte_mbuf* m, Entry& e) {
  m->buf_addr = e.host_addr;
  m->buf_iova = e.host_iova;
  m->buf_len = e.host_len;
  m->data_off = RTE_PKTMBUF_HEADROOM;
  e.state = State::kHost;
}

int MappedPool::Enqueue(void* const* objs, unsigned n) {
  if (!initialised_) {  // populate: raw objects, all host
    return host_->Push(objs, n) ? 0 : -ENOBUFS;
  }
  void* host[kBatch];
  void* parked[kBatch];
  const uint16_t gen = generation_.load(std::memory_order_relaxed);
  uint32_t orphaned = 0, recycled = 0, left = 0;
  while (n > 0) {
    const unsigned chunk = n < kBatch ? n : kBatch;
    unsigned nh = 0, np = 0;
    for (unsigned i = 0; i < chunk; ++i) {
      rte_mbuf* m = static_cast<rte_mbuf*>(objs[i]);
      Entry& e = table_[Index(m)];
      if (e.state == State::kGuestLent && e.buffer.generation == gen) {
        // Undelivered: keep the guest buffer for the NIC's next refill.
        PointAtGuest(m, e);
        e.state = State::kGuestParked;
        parked[np++] = m;
        ++recycled;
        continue;
      }
      if (e.state == State::kGuestLent) ++orphaned;  // its session is over
      left += e.state == State::kGuestLent;
      PointAtHost(m, e);
      host[nh++] = m;
    }
    // Both stacks hold every mbuf of the pool, so neither can be full.
    if (nh) host_->Push(host, nh);
    if (np) parked_->Push(parked, np);
    objs += chunk;
    n -= chunk;
  }
  if (left) resident_.fetch_sub(left, std::memory_order_relaxed);
  if (recycled) counters_.guest_recycled.fetch_add(recycled, std::memory_order_relaxed);
  if (orphaned) counters_.guest_orphaned.fetch_add(orphaned, std::memory_order_relaxed);
  return 0;
}

int MappedPool::Dequeue(void** objs, unsigned n) {
  if (refilling_ != this) {
    // Not the NIC: host buffers only.
    if (!host_->PopBulk(objs, n)) return -ENOBUFS;
    counters_.host_posted.fetch_add(n, std::memory_order_relaxed);
    return 0;
  }
  // Parked guest buffers first: they are already attached.
  // (None once lending is off: they wait for the copy path or the teardown.)
  const unsigned parked =
      lending_disabled_.load(std::memory_order_relaxed) ? 0 : parked_->PopBurst(objs, n);
  unsigned guest_from_parked = parked;
  const unsigned need = n - parked;
  if (need > 0 && !host_->PopBulk(objs + parked, need)) {
    // All-or-nothing: give the parked ones back untouched.
    parked_->Push(objs, parked);
    return -ENOBUFS;
  }
  const uint16_t gen = generation_.load(std::memory_order_relaxed);
  for (unsigned i = 0; i < parked; ++i) {
    rte_mbuf* m = static_cast<rte_mbuf*>(objs[i]);
    Entry& e = table_[Index(m)];
    e.state = State::kGuestLent;
    if (e.buffer.generation != gen) {
      // Parked before its session ended and not taken back: never lend it.
      PointAtHost(m, e);
      resident_.fetch_sub(1, std::memory_order_relaxed);
      counters_.guest_orphaned.fetch_add(1, std::memory_order_relaxed);
      --guest_from_parked;
    }
  }
  // Top up with fresh guest buffers, within the residency cap.
  unsigned guest = 0;
  GuestBufferSource* source = source_.load(std::memory_order_acquire);
  if (source != nullptr && need > 0 && !lending_disabled_.load(std::memory_order_relaxed)) {
    const uint32_t cap = residency_cap_.load(std::memory_order_relaxed);
    const uint32_t resident = resident_.load(std::memory_order_relaxed);
    unsigned want = cap > resident ? cap - resident : 0;
    if (want > need) want = need;
    while (guest < want) {
      GuestBuffer buffers[kBatch];
      const unsigned ask = want - guest < kBatch ? want - guest : kBatch;
      const unsigned got = source->TakeBuffers(buffers, static_cast<uint16_t>(ask));
      for (unsigned i = 0; i < got; ++i) {
        rte_mbuf* m = static_cast<rte_mbuf*>(objs[parked + guest + i]);
        Entry& e = table_[Index(m)];
        e.buffer = buffers[i];
        e.state = State::kGuestLent;
        PointAtGuest(m, e);
      }
      guest += got;
      if (got < ask) break;  // the guest has no more right now
    }
    resident_.fetch_add(guest, std::memory_order_relaxed);
  }
  counters_.guest_posted.fetch_add(guest_from_parked + guest, std::memory_order_relaxed);
  counters_.host_posted.fetch_add(n - guest_from_parked - guest, std::memory_order_relaxed);
  return 0;
}

void MappedPool::WroteOutside(rte_mbuf* m, uint8_t* data) {
  Entry& e = table_[Index(m)];
  // Cut the mbuf at its data: a later prepend fails instead of writing
  // further out. The frame itself goes to any guest by copy (its data does
  // not start inside its guest buffer).
  const uintptr_t end = reinterpret_cast<uintptr_t>(e.buffer.addr) + e.buffer.len;
  m->buf_iova = m->buf_iova + (data - static_cast<uint8_t*>(m->buf_addr));
  m->buf_addr = data;
  m->buf_len = static_cast<uint16_t>(end - reinterpret_cast<uintptr_t>(data));
  m->data_off = 0;
  counters_.nic_wrote_outside.fetch_add(1, std::memory_order_relaxed);
  if (!lending_disabled_.exchange(true)) {
    IOVTEE_LOG(ERR,
               "mapped pool %s: the NIC's driver put received data %td bytes before a guest "
               "buffer (it used the mbuf headroom, which lies outside the buffer): guest buffers "
               "are no longer lent to this queue; frames reach the guest by copy",
               config_.name.c_str(), e.buffer.addr + config_.hdr_len - data);
  }
}

void MappedPool::DisableLending(const char* why) {
  if (!lending_disabled_.exchange(true)) {
    IOVTEE_LOG(WARNING, "mapped pool %s: guest buffers are not lent to the NIC: %s",
               config_.name.c_str(), why);
  }
}

void MappedPool::Attach(GuestBufferSource* source, uint16_t generation, uint32_t residency_cap) {
  residency_cap_.store(residency_cap, std::memory_order_relaxed);
  generation_.store(generation, std::memory_order_relaxed);
  source_.store(source, std::memory_order_release);
}

void MappedPool::Detach() { source_.store(nullptr, std::memory_order_release); }

void MappedPool::FreeDelivered(rte_mbuf* const* ms, const GuestBuffer* const* gs, unsigned n) {
  if (n == 0) return;
  for (unsigned i = 0; i < n; ++i) PointAtHost(ms[i], *EntryOf(gs[i]));
  resident_.fetch_sub(n, std::memory_order_relaxed);
  counters_.guest_delivered.fetch_add(n, std::memory_order_relaxed);
  // The stack holds every mbuf of the pool: it cannot be full.
  host_->Push(reinterpret_cast<void* const*>(ms), n);
}

uint16_t MappedPool::TakeParked(GuestBuffer* out, uint16_t n) {
  void* objs[kBatch];
  uint16_t total = 0;
  while (total < n) {
    const unsigned left = static_cast<unsigned>(n - total);
    const unsigned want = left < kBatch ? left : kBatch;
    const unsigned got = parked_->PopBurst(objs, want);
    for (unsigned i = 0; i < got; ++i) {
      rte_mbuf* m = static_cast<rte_mbuf*>(objs[i]);
      Entry& e = table_[Index(m)];
      out[total + i] = e.buffer;
      PointAtHost(m, e);
    }
    if (got) host_->Push(objs, got);
    resident_.fetch_sub(got, std::memory_order_relaxed);
    total += got;
    if (got < want) break;
  }
  counters_.guest_taken.fetch_add(total, std::memory_order_relaxed);
  return total;
}

MappedPoolStats MappedPool::stats() const {
  MappedPoolStats s;
  s.guest_posted = counters_.guest_posted.load(std::memory_order_relaxed);
  s.guest_recycled = counters_.guest_recycled.load(std::memory_order_relaxed);
  s.guest_delivered = counters_.guest_delivered.load(std::memory_order_relaxed);
  s.guest_taken = counters_.guest_taken.load(std::memory_order_relaxed);
  s.guest_orphaned = counters_.guest_orphaned.load(std::memory_order_relaxed);
  s.host_posted = counters_.host_posted.load(std::memory_order_relaxed);
  s.nic_wrote_outside = counters_.nic_wrote_outside.load(std::memory_order_relaxed);
  s.lending_disabled = lending_disabled_.load(std::memory_order_relaxed);
  s.guest_resident = resident_.load(std::memory_order_relaxed);
  s.guest_parked = parked_->Count();
  s.host_free = host_->Count();
  return s;
}

}  // namespace iovtee
