#include "test/virtio/driver_emulator.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace iovtee::virtio::testing {
namespace {

constexpr uint64_t kGuardBytes = 4096;
constexpr uint64_t kRegionGap = uint64_t{1} << 20;
constexpr uint64_t kUvaBase = uint64_t{0x7000} << 32;
constexpr uint32_t kL1CacheBytes = 64;
constexpr uint32_t kVirtnetRxPad = 64;  // NET_IP_ALIGN (0 on x86) + NET_SKB_PAD
// SKB_DATA_ALIGN(GOOD_PACKET_LEN + VIRTNET_RX_PAD) + SKB_DATA_ALIGN(skb_shared_info).
constexpr uint32_t kSmallSlotBytes = 1600 + 320;
// sizeof(struct padded_vnet_hdr): virtio_net_hdr_v1_hash (20) + 12 bytes of
// padding, so that the data sg sharing the header's page is 16-byte aligned.
constexpr uint32_t kPaddedVnetHdr = 32;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "driver_emulator: %s\n", what.c_str());
  std::abort();
}

uint64_t AlignUp(uint64_t v, uint64_t a) { return (v + a - 1) & ~(a - 1); }

template <typename T>
T LoadAcquire(const T* p) {
  return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}
template <typename T>
void StoreRelease(T* p, T v) {
  __atomic_store_n(p, v, __ATOMIC_RELEASE);
}

}  // namespace

// ---------------------------------------------------------------------------
// GuestArena

GuestArena::GuestArena(ArenaOptions options) {
  if (options.gpa_base == 0 || options.gpa_base % 4096 != 0)
    Die("gpa_base must be 4 KiB aligned, not 0");
  if (options.region_sizes.empty()) Die("no regions");
  map_len_ = kGuardBytes;
  for (uint64_t size : options.region_sizes) {
    if (size == 0 || size % 4096 != 0) Die("region sizes must be non-zero multiples of 4 KiB");
    map_len_ += size + kGuardBytes;
  }
  map_ = mmap(nullptr, map_len_, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (map_ == MAP_FAILED) Die("mmap failed");
  uint8_t* host = static_cast<uint8_t*>(map_) + kGuardBytes;
  uint64_t gpa = options.gpa_base;
  std::vector<GuestRegion> table;
  for (uint64_t size : options.region_sizes) {
    if (mprotect(host, size, PROT_READ | PROT_WRITE) != 0) Die("mprotect failed");
    Region r{gpa, size, host, {}};
    r.free[gpa] = size;
    regions_.push_back(std::move(r));
    GuestRegion g;
    g.guest_phys_addr = gpa;
    g.guest_user_addr = kUvaBase + gpa;
    g.size = size;
    g.host = host;
    table.push_back(g);
    host += size + kGuardBytes;
    gpa += size + (options.gpa_adjacent ? 0 : kRegionGap);
  }
  for (const Region& r : regions_) RestoreCanary(r.gpa, r.size);
  auto memory = GuestMemory::Create(table);
  if (!memory.ok()) Die(absl::StrCat("GuestMemory::Create: ", memory.status().ToString()));
  memory_ = std::move(*memory);
}

GuestArena::~GuestArena() {
  memory_.reset();
  if (map_ != nullptr) munmap(map_, map_len_);
}

GuestArena::Region* GuestArena::FindRegion(uint64_t gpa) {
  for (Region& r : regions_) {
    if (gpa >= r.gpa && gpa - r.gpa < r.size) return &r;
  }
  return nullptr;
}

const GuestArena::Region* GuestArena::FindRegion(uint64_t gpa) const {
  return const_cast<GuestArena*>(this)->FindRegion(gpa);
}

uint8_t* GuestArena::Host(uint64_t gpa) const {
  const Region* r = FindRegion(gpa);
  return r == nullptr ? nullptr : r->host + (gpa - r->gpa);
}

uint64_t GuestArena::Gpa(const uint8_t* host) const {
  for (const Region& r : regions_) {
    if (host >= r.host && host < r.host + r.size) return r.gpa + (host - r.host);
  }
  return UINT64_MAX;
}

bool GuestArena::TakeFromFree(uint64_t gpa, uint64_t len) {
  Region* r = FindRegion(gpa);
  if (r == nullptr || len > r->gpa + r->size - gpa) return false;
  auto it = r->free.upper_bound(gpa);
  if (it == r->free.begin()) return false;
  --it;
  uint64_t start = it->first, flen = it->second;
  if (gpa + len > start + flen) return false;
  r->free.erase(it);
  if (gpa > start) r->free[start] = gpa - start;
  if (start + flen > gpa + len) r->free[gpa + len] = start + flen - (gpa + len);
  return true;
}

uint64_t GuestArena::Alloc(uint64_t len, uint64_t align, int region) {
  if (len == 0) len = 1;
  for (size_t i = 0; i < regions_.size(); ++i) {
    if (region >= 0 && static_cast<size_t>(region) != i) continue;
    for (const auto& [start, flen] : regions_[i].free) {
      uint64_t a = AlignUp(start, align);
      if (a + len <= start + flen) {
        TakeFromFree(a, len);
        allocations_[a] = len;
        return a;
      }
    }
  }
  return 0;
}

bool GuestArena::AllocAt(uint64_t gpa, uint64_t len) {
  if (len == 0) len = 1;
  // Check every piece first so that a failure takes nothing.
  std::vector<std::pair<uint64_t, uint64_t>> pieces;
  uint64_t at = gpa, left = len;
  while (left > 0) {
    Region* r = FindRegion(at);
    if (r == nullptr) return false;
    uint64_t n = std::min(left, r->gpa + r->size - at);
    auto it = r->free.upper_bound(at);
    if (it == r->free.begin()) return false;
    --it;
    if (at + n > it->first + it->second) return false;
    pieces.emplace_back(at, n);
    at += n;
    left -= n;
  }
  for (auto [a, n] : pieces) TakeFromFree(a, n);
  allocations_[gpa] = len;
  return true;
}

void GuestArena::Free(uint64_t gpa) {
  auto it = allocations_.find(gpa);
  if (it == allocations_.end()) Die(absl::StrFormat("Free of unknown GPA 0x%x", gpa));
  uint64_t at = gpa, left = it->second;
  allocations_.erase(it);
  while (left > 0) {
    Region* r = FindRegion(at);
    uint64_t n = std::min(left, r->gpa + r->size - at);
    RestoreCanary(at, n);
    uint64_t start = at, flen = n;
    auto next = r->free.lower_bound(start);
    if (next != r->free.end() && next->first == start + flen) {
      flen += next->second;
      next = r->free.erase(next);
    }
    if (next != r->free.begin()) {
      auto prev = std::prev(next);
      if (prev->first + prev->second == start) {
        start = prev->first;
        flen += prev->second;
        r->free.erase(prev);
      }
    }
    r->free[start] = flen;
    at += n;
    left -= n;
  }
}

uint64_t GuestArena::allocated_bytes() const {
  uint64_t total = 0;
  for (const auto& [gpa, len] : allocations_) total += len;
  return total;
}

void GuestArena::Write(uint64_t gpa, absl::Span<const uint8_t> data) {
  size_t done = 0;
  while (done < data.size()) {
    Region* r = FindRegion(gpa + done);
    if (r == nullptr) Die(absl::StrFormat("Write outside the arena at 0x%x", gpa + done));
    uint64_t off = gpa + done - r->gpa;
    size_t n = std::min<uint64_t>(data.size() - done, r->size - off);
    std::memcpy(r->host + off, data.data() + done, n);
    done += n;
  }
}

void GuestArena::Read(uint64_t gpa, absl::Span<uint8_t> out) const {
  size_t done = 0;
  while (done < out.size()) {
    const Region* r = FindRegion(gpa + done);
    if (r == nullptr) Die(absl::StrFormat("Read outside the arena at 0x%x", gpa + done));
    uint64_t off = gpa + done - r->gpa;
    size_t n = std::min<uint64_t>(out.size() - done, r->size - off);
    std::memcpy(out.data() + done, r->host + off, n);
    done += n;
  }
}

namespace {

// The canary repeats every 64 KiB of GPA, so fills and checks run as memcpy
// and memcmp against one table (tests build without optimisation).
constexpr uint64_t kCanaryPeriod = 65536;

const uint8_t* CanaryTable() {
  static const uint8_t* table = [] {
    static uint8_t t[2 * kCanaryPeriod];  // twice, so any window is contiguous
    uint32_t x = 0x2545f491;
    for (uint64_t i = 0; i < kCanaryPeriod; ++i) {
      x ^= x << 13;
      x ^= x >> 17;
      x ^= x << 5;
      t[i] = t[i + kCanaryPeriod] = static_cast<uint8_t>(x);
    }
    return t;
  }();
  return table;
}

}  // namespace

uint8_t GuestArena::Canary(uint64_t gpa) { return CanaryTable()[gpa % kCanaryPeriod]; }

void GuestArena::RestoreCanary(uint64_t gpa, uint64_t len) {
  while (len > 0) {
    Region* r = FindRegion(gpa);
    if (r == nullptr) Die(absl::StrFormat("RestoreCanary outside the arena at 0x%x", gpa));
    const uint64_t n = std::min({len, r->gpa + r->size - gpa, kCanaryPeriod});
    std::memcpy(r->host + (gpa - r->gpa), CanaryTable() + gpa % kCanaryPeriod, n);
    gpa += n;
    len -= n;
  }
}

absl::Status GuestArena::CheckCanaries(absl::Span<const GpaRange> may_change) const {
  std::vector<GpaRange> allowed(may_change.begin(), may_change.end());
  std::sort(allowed.begin(), allowed.end(),
            [](const GpaRange& a, const GpaRange& b) { return a.gpa < b.gpa; });
  std::string report;
  int bad_runs = 0;
  uint64_t bad_bytes = 0;
  for (const Region& r : regions_) {
    size_t next_allowed = 0;
    uint64_t end = r.gpa + r.size;
    uint64_t gpa = r.gpa;
    while (gpa < end) {
      // Skip allowed ranges covering gpa; find where the next one starts.
      uint64_t stop = end;
      bool skipped = false;
      for (; next_allowed < allowed.size(); ++next_allowed) {
        const GpaRange& a = allowed[next_allowed];
        if (a.gpa + a.len <= gpa) continue;
        if (a.gpa <= gpa) {
          gpa = a.gpa + a.len;
          skipped = true;
          break;
        }
        stop = std::min(stop, a.gpa);
        break;
      }
      if (skipped) continue;
      // Fast path: whole windows that match.
      while (gpa < stop) {
        const uint64_t n = std::min(stop - gpa, kCanaryPeriod);
        if (std::memcmp(r.host + (gpa - r.gpa), CanaryTable() + gpa % kCanaryPeriod, n) != 0) {
          break;
        }
        gpa += n;
      }
      const uint8_t* p = r.host + (gpa - r.gpa);
      uint64_t run_start = 0, run_len = 0;
      for (uint64_t g = gpa; g < stop; ++g, ++p) {
        if (*p != Canary(g)) {
          if (run_len > 0 && run_start + run_len == g) {
            ++run_len;
          } else {
            if (run_len > 0 && bad_runs++ < 8) {
              report += absl::StrFormat(" [0x%x, +%u)", run_start, run_len);
            }
            run_start = g;
            run_len = 1;
          }
          ++bad_bytes;
        }
      }
      if (run_len > 0 && bad_runs++ < 8) {
        report += absl::StrFormat(" [0x%x, +%u)", run_start, run_len);
      }
      gpa = stop;
    }
  }
  if (bad_bytes == 0) return absl::OkStatus();
  return absl::DataLossError(
      absl::StrFormat("%u bytes outside posted buffers and rings were written, in %d runs:%s",
                      bad_bytes, bad_runs, report));
}

// ---------------------------------------------------------------------------
// VirtioDriver

const char* PostStyleName(PostStyle style) {
  switch (style) {
    case PostStyle::kGeneric:
      return "generic";
    case PostStyle::kCallerMemory:
      return "caller_memory";
    case PostStyle::kLinuxMergeable:
      return "linux_mergeable";
    case PostStyle::kLinuxSmall:
      return "linux_small";
    case PostStyle::kLinuxBig:
      return "linux_big";
    case PostStyle::kDpdkPmd:
      return "dpdk_pmd";
  }
  return "?";
}

VirtioDriver::VirtioDriver(GuestArena* arena, DriverOptions options)
    : arena_(arena), options_(options) {
  const bool packed = options_.layout == RingLayout::kPacked;
  const uint16_t n = options_.size;
  features_ = options_.features | (uint64_t{1} << kFVersion1);
  if (packed) features_ |= uint64_t{1} << kFRingPacked;
  if (n == 0 || n > kMaxQueueSize) Die("queue size must be 1..32768");
  if (!packed && (n & (n - 1)) != 0) Die("split queue size must be a power of two");

  // Ring parts: page-aligned, or exactly at their minimum alignment.
  auto alloc_part = [&](size_t len, uint64_t min_align) -> uint64_t {
    uint64_t align = options_.tight_ring_alignment ? min_align : 4096;
    uint64_t extra = options_.tight_ring_alignment ? min_align : 0;
    uint64_t a = arena_->Alloc(len + extra, align * 2, options_.ring_region);
    if (a == 0) Die("arena too small for the ring");
    ring_allocs_.push_back(a);
    return a + extra;
  };
  if (packed) {
    desc_gpa_ = alloc_part(PackedDescBytes(n), 16);
    driver_gpa_ = alloc_part(PackedEventBytes(), 4);
    device_gpa_ = alloc_part(PackedEventBytes(), 4);
  } else {
    desc_gpa_ = alloc_part(SplitDescBytes(n), 16);
    driver_gpa_ = alloc_part(SplitAvailBytes(n), 2);
    device_gpa_ = alloc_part(SplitUsedBytes(n), 4);
  }
  desc_ = arena_->Host(desc_gpa_);
  driver_ = arena_->Host(driver_gpa_);
  device_ = arena_->Host(device_gpa_);

  start_ = options_.start.value_or(packed ? QueueCursors{0x8000, 0x8000} : QueueCursors{0, 0});
  const QueueCursors& s = start_;
  if (packed) {
    std::memset(desc_, 0, PackedDescBytes(n));
    std::memset(driver_, 0, PackedEventBytes());
    std::memset(device_, 0, PackedEventBytes());
    avail_pos_ = s.last_avail_idx & 0x7fff;
    avail_wrap_ = (s.last_avail_idx >> 15) != 0;
    used_pos_ = s.last_used_idx & 0x7fff;
    used_wrap_ = (s.last_used_idx >> 15) != 0;
    if (s.last_avail_idx != s.last_used_idx || avail_pos_ >= n) {
      Die("packed start cursors must be equal, with a position below the size");
    }
    // As if the ring had gone round to here: slots before the position were
    // used in this lap (flags AVAIL == USED == wrap), the rest in the previous
    // one (== !wrap). Neither side sees anything available or used.
    const uint16_t this_lap = avail_wrap_ ? (kDescFAvail | kDescFUsed) : 0;
    const uint16_t last_lap = avail_wrap_ ? 0 : (kDescFAvail | kDescFUsed);
    for (uint16_t i = 0; i < n; ++i) {
      PackedDesc* d = packed_desc(i);
      d->id = i;  // the DPDK PMD seeds each slot's id with its index
      d->flags = i < avail_pos_ ? this_lap : last_lap;
    }
    free_slots_ = n;
    id_free_.assign(n, true);
    for (int i = n - 1; i >= 0; --i) free_ids_.push_back(static_cast<uint16_t>(i));
  } else {
    if (s.last_avail_idx != s.last_used_idx) Die("split start cursors must be equal");
    std::memset(desc_, 0, SplitDescBytes(n));
    std::memset(driver_, 0, SplitAvailBytes(n));
    std::memset(device_, 0, SplitUsedBytes(n));
    avail_idx_ = s.last_avail_idx;
    used_idx_ = s.last_used_idx;
    *split_avail_idx() = avail_idx_;
    *const_cast<uint16_t*>(split_used_idx()) = used_idx_;
    for (int i = n - 1; i >= 0; --i) free_descs_.push_back(static_cast<uint16_t>(i));
  }
  ResyncShadow();
}

VirtioDriver::~VirtioDriver() {
  for (auto& [id, b] : buffers_) {
    auto it = owned_.find(id);
    if (it != owned_.end()) ReleaseOwned(b, it->second);
    if (b.indirect_table != 0) arena_->Free(b.indirect_table);
  }
  for (const Frag& f : frags_) {
    if (f.gpa != 0) arena_->Free(f.gpa);
  }
  for (uint64_t a : ring_allocs_) arena_->Free(a);
}

QueueConfig VirtioDriver::device_config() const {
  QueueConfig c;
  c.layout = options_.layout;
  c.size = options_.size;
  c.features = features_;
  c.direction = Direction::kDeviceWrites;
  c.desc = desc_;
  c.driver_area = driver_;
  c.device_area = device_;
  return c;
}

// --- Raw hooks.

SplitDesc* VirtioDriver::split_desc(uint16_t i) const {
  return reinterpret_cast<SplitDesc*>(desc_) + i;
}
uint16_t* VirtioDriver::avail_u16(size_t index) const {
  return reinterpret_cast<uint16_t*>(driver_) + index;
}
uint16_t* VirtioDriver::split_avail_flags() const { return avail_u16(0); }
uint16_t* VirtioDriver::split_avail_idx() const { return avail_u16(1); }
uint16_t* VirtioDriver::split_avail_ring(uint16_t slot) const { return avail_u16(2 + slot); }
uint16_t* VirtioDriver::split_used_event() const { return avail_u16(2 + size_t{options_.size}); }
const uint16_t* VirtioDriver::split_used_flags() const {
  return reinterpret_cast<const uint16_t*>(device_);
}
const uint16_t* VirtioDriver::split_used_idx() const {
  return reinterpret_cast<const uint16_t*>(device_) + 1;
}
const UsedElem* VirtioDriver::split_used_elem(uint16_t slot) const {
  return reinterpret_cast<const UsedElem*>(device_ + kSplitRingHeaderBytes) + slot;
}
const uint16_t* VirtioDriver::split_avail_event() const {
  return reinterpret_cast<const uint16_t*>(device_ + kSplitRingHeaderBytes +
                                           sizeof(UsedElem) * options_.size);
}
PackedDesc* VirtioDriver::packed_desc(uint16_t i) const {
  return reinterpret_cast<PackedDesc*>(desc_) + i;
}
PackedEvent* VirtioDriver::packed_driver_event() const {
  return reinterpret_cast<PackedEvent*>(driver_);
}
const PackedEvent* VirtioDriver::packed_device_event() const {
  return reinterpret_cast<const PackedEvent*>(device_);
}

void VirtioDriver::RawPublishSplit(uint16_t head) {
  *split_avail_ring(avail_idx_ & (options_.size - 1)) = head;
  ++avail_idx_;
  StoreRelease(split_avail_idx(), avail_idx_);
  ResyncShadow();
}

void VirtioDriver::RawPublishPacked(absl::Span<const PackedDesc> descs) {
  if (descs.empty()) return;
  const uint16_t head_pos = avail_pos_;
  uint16_t head_flags = 0;
  for (size_t i = 0; i < descs.size(); ++i) {
    PackedDesc d = descs[i];
    d.flags = static_cast<uint16_t>((d.flags & ~(kDescFAvail | kDescFUsed)) |
                                    PackedAvailFlags(avail_wrap_));
    PackedDesc* slot = packed_desc(avail_pos_);
    slot->addr = d.addr;
    slot->len = d.len;
    slot->id = d.id;
    if (i == 0) {
      head_flags = d.flags;
    } else {
      slot->flags = d.flags;
    }
    if (++avail_pos_ == options_.size) {
      avail_pos_ = 0;
      avail_wrap_ = !avail_wrap_;
    }
  }
  StoreRelease(&packed_desc(head_pos)->flags, head_flags);
}

uint16_t VirtioDriver::next_avail() const {
  if (options_.layout == RingLayout::kSplit) return avail_idx_;
  return static_cast<uint16_t>(avail_pos_ | (avail_wrap_ ? 0x8000 : 0));
}

uint16_t VirtioDriver::next_used() const {
  if (options_.layout == RingLayout::kSplit) return used_idx_;
  return static_cast<uint16_t>(used_pos_ | (used_wrap_ ? 0x8000 : 0));
}

uint16_t VirtioDriver::free_descs() const {
  if (options_.layout == RingLayout::kSplit) return static_cast<uint16_t>(free_descs_.size());
  return free_slots_;
}

const PostedBuffer* VirtioDriver::buffer(uint16_t id) const {
  auto it = buffers_.find(id);
  return it == buffers_.end() ? nullptr : &it->second;
}

std::vector<uint16_t> VirtioDriver::outstanding_ids() const {
  std::vector<uint16_t> ids;
  for (const auto& [id, b] : buffers_) ids.push_back(id);
  return ids;
}

// --- Posting.

std::optional<uint16_t> VirtioDriver::TakePackedId(std::optional<uint16_t> wanted) {
  if (wanted.has_value() && *wanted < options_.size && id_free_[*wanted]) {
    free_ids_.erase(std::find(free_ids_.begin(), free_ids_.end(), *wanted));
    id_free_[*wanted] = false;
    return wanted;
  }
  if (free_ids_.empty()) return std::nullopt;
  uint16_t id = free_ids_.back();
  free_ids_.pop_back();
  id_free_[id] = false;
  return id;
}

std::optional<uint16_t> VirtioDriver::PostInternal(PostStyle style, std::vector<Segment> segs,
                                                   bool indirect, Owned owned,
                                                   std::optional<uint16_t> wanted_id) {
  const bool packed = options_.layout == RingLayout::kPacked;
  const size_t n = segs.size();
  const size_t need = indirect ? 1 : n;
  PostedBuffer b;
  auto fail = [&]() -> std::optional<uint16_t> {
    ReleaseOwned(b, owned);
    return std::nullopt;
  };
  b.style = style;
  b.segments = segs;
  b.indirect = indirect;
  if (n == 0 || n > 0xffff) return fail();
  for (const Segment& s : segs) {
    if (s.writable) b.writable_len += s.len;
  }
  if (packed ? free_slots_ < need : free_descs_.size() < need) return fail();

  if (indirect) {
    b.indirect_table = arena_->Alloc(16 * n, 16);
    if (b.indirect_table == 0) return fail();
    std::vector<uint8_t> table(16 * n);
    for (size_t i = 0; i < n; ++i) {
      const Segment& s = segs[i];
      const uint16_t w = s.writable ? kDescFWrite : 0;
      if (packed) {
        PackedDesc d{s.gpa, s.len, 0, w};
        std::memcpy(&table[16 * i], &d, 16);
      } else {
        const bool more = i + 1 < n;
        SplitDesc d{s.gpa, s.len, static_cast<uint16_t>(w | (more ? kDescFNext : 0)),
                    static_cast<uint16_t>(more ? i + 1 : 0)};
        std::memcpy(&table[16 * i], &d, 16);
      }
    }
    arena_->Write(b.indirect_table, table);
    indirect_shadow_[b.indirect_table] = std::move(table);
  }
  // The descriptors the ring itself holds.
  std::vector<Segment> ring_segs;
  if (indirect) {
    ring_segs.push_back(Segment{b.indirect_table, static_cast<uint32_t>(16 * n), false});
  } else {
    ring_segs = segs;
  }
  b.ring_descs = static_cast<uint16_t>(ring_segs.size());

  if (!packed) {
    for (size_t i = 0; i < ring_segs.size(); ++i) {
      b.split_descs.push_back(free_descs_.back());
      free_descs_.pop_back();
    }
    for (size_t i = 0; i < ring_segs.size(); ++i) {
      const Segment& s = ring_segs[i];
      const bool more = i + 1 < ring_segs.size();
      uint16_t flags = indirect ? kDescFIndirect : (s.writable ? kDescFWrite : 0);
      if (more) flags |= kDescFNext;
      SplitDesc* d = split_desc(b.split_descs[i]);
      *d = SplitDesc{s.gpa, s.len, flags, more ? b.split_descs[i + 1] : uint16_t{0}};
      std::memcpy(&shadow_desc_[16 * size_t{b.split_descs[i]}], d, 16);
    }
    b.id = b.split_descs[0];
    pending_.push_back(PendingHead{b.id, 0, 0, b.ring_descs});
  } else {
    std::optional<uint16_t> id = TakePackedId(wanted_id);
    if (!id.has_value()) {
      if (b.indirect_table != 0) {
        indirect_shadow_.erase(b.indirect_table);
        arena_->Free(b.indirect_table);
        b.indirect_table = 0;
      }
      return fail();
    }
    b.id = *id;
    // Linux virtqueue_add_packed: every descriptor carries the id; all but
    // the head get their flags now, the head's flags go last (Publish).
    const uint16_t head_pos = avail_pos_;
    uint16_t head_flags = 0;
    for (size_t i = 0; i < ring_segs.size(); ++i) {
      const Segment& s = ring_segs[i];
      uint16_t flags = indirect ? kDescFIndirect : (s.writable ? kDescFWrite : 0);
      if (i + 1 < ring_segs.size()) flags |= kDescFNext;
      flags |= PackedAvailFlags(avail_wrap_);
      PackedDesc* d = packed_desc(avail_pos_);
      d->addr = s.gpa;
      d->len = s.len;
      d->id = b.id;
      if (i == 0) {
        head_flags = flags;
      } else {
        d->flags = flags;
      }
      if (++avail_pos_ == options_.size) {
        avail_pos_ = 0;
        avail_wrap_ = !avail_wrap_;
      }
    }
    free_slots_ = static_cast<uint16_t>(free_slots_ - b.ring_descs);
    pending_.push_back(PendingHead{b.id, head_pos, head_flags, b.ring_descs});
  }
  const uint16_t id = b.id;
  owned_[id] = std::move(owned);
  buffers_[id] = std::move(b);
  ++posted_total_;
  return id;
}

std::optional<uint16_t> VirtioDriver::Post(absl::Span<const uint32_t> lengths, bool writable,
                                           bool indirect) {
  Owned owned;
  std::vector<Segment> segs;
  for (uint32_t len : lengths) {
    uint64_t gpa = arena_->Alloc(len, 64);
    if (gpa == 0) {
      for (uint64_t a : owned.allocs) arena_->Free(a);
      return std::nullopt;
    }
    owned.allocs.push_back(gpa);
    segs.push_back(Segment{gpa, len, writable});
  }
  return PostInternal(PostStyle::kGeneric, std::move(segs), indirect, std::move(owned),
                      std::nullopt);
}

std::optional<uint16_t> VirtioDriver::PostSegments(absl::Span<const Segment> segments,
                                                   bool indirect) {
  std::optional<uint16_t> id =
      PostInternal(PostStyle::kCallerMemory, std::vector<Segment>(segments.begin(), segments.end()),
                   indirect, Owned{}, std::nullopt);
  if (id.has_value()) {
    for (const Segment& s : segments) caller_memory_.push_back(GpaRange{s.gpa, s.len});
  }
  return id;
}

bool VirtioDriver::CarveFrag(int* current, uint32_t len, bool absorb_hole, uint64_t* gpa,
                             uint32_t* out_len) {
  if (*current < 0 || frags_[*current].size - frags_[*current].offset < len) {
    // skb_page_frag_refill: a fresh 32 KiB frag, or a page when that fails.
    uint32_t size = kMergeableFragSize;
    uint64_t a = arena_->Alloc(size, size);
    if (a == 0 && len <= kPageSize) {
      size = kPageSize;
      a = arena_->Alloc(size, size);
    }
    if (a == 0) return false;
    if (*current >= 0) {
      int old = *current;
      *current = -1;
      if (frags_[old].refs == 0) UnrefFrag(old);  // frees it
    }
    size_t slot = 0;
    while (slot < frags_.size() && frags_[slot].gpa != 0) ++slot;
    if (slot == frags_.size()) frags_.emplace_back();
    frags_[slot] = Frag{a, size, 0, 0};
    *current = static_cast<int>(slot);
  }
  Frag& f = frags_[*current];
  *gpa = f.gpa + f.offset;
  f.offset += len;
  const uint32_t hole = f.size - f.offset;
  if (absorb_hole && hole < len) {
    len += hole;
    f.offset += hole;
  }
  *out_len = len;
  ++f.refs;
  return true;
}

void VirtioDriver::UnrefFrag(int frag) {
  Frag& f = frags_[frag];
  if (f.refs > 0) --f.refs;
  if (f.refs == 0 && frag != mergeable_frag_ && frag != small_frag_) {
    arena_->Free(f.gpa);
    f = Frag{};
  }
}

std::optional<uint16_t> VirtioDriver::PostLinuxMergeable(std::optional<uint32_t> avg) {
  const uint32_t hdr = options_.hdr_len;
  const uint32_t a = std::clamp<uint32_t>(avg.value_or(ewma_avg_), kGoodPacketLen, kPageSize - hdr);
  const uint32_t len = static_cast<uint32_t>(AlignUp(hdr + a, kL1CacheBytes));
  Owned owned;
  uint64_t gpa;
  uint32_t buf_len;
  if (!CarveFrag(&mergeable_frag_, len, /*absorb_hole=*/true, &gpa, &buf_len)) return std::nullopt;
  owned.frag = mergeable_frag_;
  return PostInternal(PostStyle::kLinuxMergeable, {Segment{gpa, buf_len, true}}, false,
                      std::move(owned), std::nullopt);
}

std::optional<uint16_t> VirtioDriver::PostLinuxSmall() {
  Owned owned;
  uint64_t slot;
  uint32_t slot_len;
  if (!CarveFrag(&small_frag_, kSmallSlotBytes, /*absorb_hole=*/false, &slot, &slot_len)) {
    return std::nullopt;
  }
  owned.frag = small_frag_;
  return PostInternal(PostStyle::kLinuxSmall,
                      {Segment{slot + kVirtnetRxPad, options_.hdr_len + kGoodPacketLen, true}},
                      false, std::move(owned), std::nullopt);
}

std::optional<uint16_t> VirtioDriver::PostLinuxBig() {
  Owned owned;
  std::vector<uint64_t> pages;
  for (int i = 0; i < kLinuxBigDescs - 1; ++i) {
    uint64_t p = arena_->Alloc(kPageSize, kPageSize);
    if (p == 0) {
      for (uint64_t q : pages) arena_->Free(q);
      return std::nullopt;
    }
    pages.push_back(p);
  }
  std::vector<Segment> segs;
  segs.push_back(Segment{pages[0], options_.hdr_len, true});
  segs.push_back(Segment{pages[0] + kPaddedVnetHdr, kPageSize - kPaddedVnetHdr, true});
  for (size_t i = 1; i < pages.size(); ++i) segs.push_back(Segment{pages[i], kPageSize, true});
  owned.allocs = std::move(pages);
  // virtqueue_add_split/packed: indirect when negotiated and total_sg > 1.
  return PostInternal(PostStyle::kLinuxBig, std::move(segs), has_feature(kFIndirectDesc),
                      std::move(owned), std::nullopt);
}

std::optional<uint16_t> VirtioDriver::PostDpdk() {
  const uint32_t obj_len = kDpdkMbufHeader + kDpdkHeadroom + kDpdkDataRoom;
  uint64_t obj = arena_->Alloc(obj_len, 64);
  if (obj == 0) return std::nullopt;
  Owned owned;
  owned.allocs.push_back(obj);
  const uint64_t buf_iova = obj + kDpdkMbufHeader;
  std::optional<uint16_t> wanted;
  // virtqueue_enqueue_recv_refill_packed: did = start_dp[vq_avail_idx].id.
  if (options_.layout == RingLayout::kPacked) wanted = packed_desc(avail_pos_)->id;
  return PostInternal(PostStyle::kDpdkPmd,
                      {Segment{buf_iova + kDpdkHeadroom - options_.hdr_len,
                               kDpdkDataRoom + options_.hdr_len, true}},
                      false, std::move(owned), wanted);
}

std::optional<uint16_t> VirtioDriver::PostStyled(PostStyle style) {
  switch (style) {
    case PostStyle::kLinuxMergeable:
      return PostLinuxMergeable();
    case PostStyle::kLinuxSmall:
      return PostLinuxSmall();
    case PostStyle::kLinuxBig:
      return PostLinuxBig();
    case PostStyle::kDpdkPmd:
      return PostDpdk();
    case PostStyle::kGeneric:
    case PostStyle::kCallerMemory: {
      const uint32_t len = 2048;
      return Post(absl::MakeConstSpan(&len, 1));
    }
  }
  return std::nullopt;
}

void VirtioDriver::ReleaseOwned(const PostedBuffer& b, const Owned& owned) {
  // The buffer's bytes get their canary back, so that a device writing after
  // it returned the buffer is caught.
  if (owned.frag >= 0 || !owned.allocs.empty()) {
    for (const Segment& s : b.segments) arena_->RestoreCanary(s.gpa, s.len);
  }
  for (uint64_t a : owned.allocs) arena_->Free(a);
  if (owned.frag >= 0) UnrefFrag(owned.frag);
}

// --- Publishing.

bool VirtioDriver::KickNeeded(uint16_t old_avail, uint16_t new_avail) const {
  __atomic_thread_fence(__ATOMIC_SEQ_CST);  // virtio_mb before reading suppression
  if (options_.layout == RingLayout::kSplit) {
    if (has_feature(kFEventIdx)) {
      return NeedEvent(LoadAcquire(split_avail_event()), new_avail, old_avail);
    }
    return (LoadAcquire(split_used_flags()) & kUsedFNoNotify) == 0;
  }
  // virtqueue_kick_prepare_packed.
  const PackedEvent* ev = packed_device_event();
  const uint16_t flags = LoadAcquire(&ev->flags);
  if (flags != kEventFDesc) return flags != kEventFDisable;
  const uint16_t off_wrap = LoadAcquire(&ev->off_wrap);
  uint16_t event = off_wrap & 0x7fff;
  if (((off_wrap >> 15) != 0) != avail_wrap_) event = static_cast<uint16_t>(event - options_.size);
  return NeedEvent(event, new_avail, old_avail);
}

PublishResult VirtioDriver::Publish() {
  PublishResult r;
  if (pending_.empty()) return r;
  r.published = static_cast<uint16_t>(pending_.size());
  if (options_.layout == RingLayout::kSplit) {
    const uint16_t mask = options_.size - 1;
    const uint16_t old = avail_idx_;
    for (const PendingHead& p : pending_) {
      const uint16_t slot = avail_idx_ & mask;
      *split_avail_ring(slot) = p.id;
      std::memcpy(&shadow_avail_[4 + 2 * size_t{slot}], split_avail_ring(slot), 2);
      buffers_[p.id].published = true;
      ++avail_idx_;
    }
    StoreRelease(split_avail_idx(), avail_idx_);
    std::memcpy(&shadow_avail_[2], split_avail_idx(), 2);
    pending_.clear();
    r.kick = KickNeeded(old, avail_idx_);
    return r;
  }
  uint32_t added = 0;
  for (const PendingHead& p : pending_) {
    StoreRelease(&packed_desc(p.head_pos)->flags, p.head_flags);
    buffers_[p.id].published = true;
    added += p.descs;
  }
  pending_.clear();
  r.kick = KickNeeded(static_cast<uint16_t>(avail_pos_ - added), avail_pos_);
  return r;
}

// --- Reaping.

void VirtioDriver::Violation(std::string what) { violations_.push_back(std::move(what)); }

bool VirtioDriver::Retire(uint16_t id, uint32_t len, std::vector<Completion>* out) {
  auto it = buffers_.find(id);
  if (it == buffers_.end() || !it->second.published) {
    Violation(
        absl::StrFormat("used id %u is not outstanding (never posted, not published, or "
                        "already returned)",
                        id));
    return false;
  }
  PostedBuffer& b = it->second;
  if (len > b.writable_len) {
    Violation(absl::StrFormat("used id %u: len %u exceeds the %u writable bytes posted", id, len,
                              b.writable_len));
  }
  Completion c;
  c.id = id;
  c.len = len;
  c.style = b.style;
  if (options_.copy_data_on_reap) {
    uint32_t want = std::min(len, b.writable_len);
    c.data.resize(want);
    uint32_t done = 0;
    for (const Segment& s : b.segments) {
      if (done == want) break;
      if (!s.writable) continue;
      uint32_t n = std::min(s.len, want - done);
      if (arena_->Host(s.gpa) != nullptr) {
        arena_->Read(s.gpa, absl::MakeSpan(c.data.data() + done, n));
      }
      done += n;
    }
  }
  if (b.indirect_table != 0) {
    auto sh = indirect_shadow_.find(b.indirect_table);
    std::vector<uint8_t> now(sh->second.size());
    arena_->Read(b.indirect_table, absl::MakeSpan(now));
    if (now != sh->second) {
      Violation(absl::StrFormat("used id %u: the device modified its indirect table", id));
    }
    indirect_shadow_.erase(sh);
    arena_->Free(b.indirect_table);
  }
  if (b.style == PostStyle::kLinuxMergeable) {
    // ewma_pkt_len (weight 64): the first sample is taken as is.
    ewma_avg_ = ewma_samples_++ == 0 ? len : (ewma_avg_ * 63 + len) / 64;
  }
  if (options_.layout == RingLayout::kSplit) {
    for (auto d = b.split_descs.rbegin(); d != b.split_descs.rend(); ++d) free_descs_.push_back(*d);
  } else {
    free_slots_ = static_cast<uint16_t>(free_slots_ + b.ring_descs);
    free_ids_.push_back(id);
    id_free_[id] = true;
  }
  ReleaseOwned(b, owned_[id]);
  owned_.erase(id);
  buffers_.erase(it);
  ++reaped_total_;
  if (out != nullptr) out->push_back(std::move(c));
  return true;
}

size_t VirtioDriver::Reap(std::vector<Completion>* out, size_t max) {
  size_t n = 0;
  if (reap_stopped_) return 0;
  if (options_.layout == RingLayout::kSplit) {
    const uint16_t used = LoadAcquire(split_used_idx());
    if (static_cast<uint16_t>(used - used_idx_) > options_.size) {
      Violation(absl::StrFormat("used->idx jumped from %u to %u (queue size %u)", used_idx_, used,
                                options_.size));
      reap_stopped_ = true;
      return 0;
    }
    while (used_idx_ != used && n < max) {
      const UsedElem* e = split_used_elem(used_idx_ & (options_.size - 1));
      const uint32_t id = e->id;
      const uint32_t len = e->len;
      if (id >= options_.size) {
        Violation(absl::StrFormat("used id %u >= queue size %u", id, options_.size));
        reap_stopped_ = true;
        return n;
      }
      if (!Retire(static_cast<uint16_t>(id), len, out)) {
        reap_stopped_ = true;
        return n;
      }
      ++used_idx_;
      ++n;
    }
    return n;
  }
  while (n < max) {
    PackedDesc* d = packed_desc(used_pos_);
    const uint16_t flags = LoadAcquire(&d->flags);
    const bool avail = (flags & kDescFAvail) != 0;
    const bool used = (flags & kDescFUsed) != 0;
    if (avail != used || used != used_wrap_) break;
    const uint16_t id = d->id;
    const uint32_t len = d->len;
    auto it = buffers_.find(id);
    const uint16_t slots = it == buffers_.end() ? 0 : it->second.ring_descs;
    if (!Retire(id, len, out)) {
      reap_stopped_ = true;
      return n;
    }
    used_pos_ = static_cast<uint16_t>(used_pos_ + slots);
    if (used_pos_ >= options_.size) {
      used_pos_ = static_cast<uint16_t>(used_pos_ - options_.size);
      used_wrap_ = !used_wrap_;
    }
    ++n;
  }
  return n;
}

std::vector<Completion> VirtioDriver::ReapAll() {
  std::vector<Completion> out;
  Reap(&out);
  return out;
}

bool VirtioDriver::HasUsed() const {
  if (reap_stopped_) return false;
  if (options_.layout == RingLayout::kSplit) return LoadAcquire(split_used_idx()) != used_idx_;
  const uint16_t flags = LoadAcquire(&packed_desc(used_pos_)->flags);
  const bool avail = (flags & kDescFAvail) != 0;
  const bool used = (flags & kDescFUsed) != 0;
  return avail == used && used == used_wrap_;
}

// --- Integrity.

std::vector<GpaRange> VirtioDriver::MayChangeRanges() const {
  std::vector<GpaRange> r;
  const bool packed = options_.layout == RingLayout::kPacked;
  const uint16_t n = options_.size;
  r.push_back({desc_gpa_, packed ? PackedDescBytes(n) : SplitDescBytes(n)});
  r.push_back({driver_gpa_, packed ? PackedEventBytes() : SplitAvailBytes(n)});
  r.push_back({device_gpa_, packed ? PackedEventBytes() : SplitUsedBytes(n)});
  for (const auto& [id, b] : buffers_) {
    if (b.indirect_table != 0) r.push_back({b.indirect_table, 16 * b.segments.size()});
    for (const Segment& s : b.segments) {
      if (s.writable) r.push_back({s.gpa, s.len});
    }
  }
  r.insert(r.end(), caller_memory_.begin(), caller_memory_.end());
  return r;
}

void VirtioDriver::ResyncShadow() {
  if (options_.layout != RingLayout::kSplit) return;
  shadow_desc_.assign(desc_, desc_ + SplitDescBytes(options_.size));
  shadow_avail_.assign(driver_, driver_ + SplitAvailBytes(options_.size));
}

absl::Status VirtioDriver::CheckIntegrity() const {
  absl::Status canaries = arena_->CheckCanaries(MayChangeRanges());
  if (!canaries.ok()) return canaries;
  if (options_.layout == RingLayout::kSplit) {
    if (std::memcmp(shadow_desc_.data(), desc_, shadow_desc_.size()) != 0) {
      return absl::DataLossError("the device wrote into the split descriptor table");
    }
    if (std::memcmp(shadow_avail_.data(), driver_, shadow_avail_.size()) != 0) {
      return absl::DataLossError("the device wrote into the split avail ring");
    }
  }
  for (const auto& [gpa, table] : indirect_shadow_) {
    std::vector<uint8_t> now(table.size());
    arena_->Read(gpa, absl::MakeSpan(now));
    if (now != table) {
      return absl::DataLossError(absl::StrFormat("the device wrote into indirect table 0x%x", gpa));
    }
  }
  return absl::OkStatus();
}

absl::Status VirtioDriver::CheckFetched(const DescChain& chain) const {
  const PostedBuffer* b = buffer(chain.id);
  if (b == nullptr)
    return absl::NotFoundError(absl::StrFormat("id %u is not outstanding", chain.id));
  if (!b->published) {
    return absl::FailedPreconditionError(absl::StrFormat("id %u is not published", chain.id));
  }
  std::vector<GuestSegment> want;
  for (const Segment& s : b->segments) {
    uint64_t gpa = s.gpa;
    uint64_t left = s.writable ? s.len : 0;
    while (left > 0) {
      uint8_t* host = arena_->Host(gpa);
      if (host == nullptr) return absl::OutOfRangeError("posted segment outside the arena");
      uint64_t n = left;
      for (size_t r = 0; r < arena_->num_regions(); ++r) {
        const GpaRange region = arena_->region(r);
        if (gpa >= region.gpa && gpa - region.gpa < region.len) {
          n = std::min(n, region.gpa + region.len - gpa);
        }
      }
      want.push_back(GuestSegment{host, gpa, static_cast<uint32_t>(n)});
      gpa += n;
      left -= n;
    }
  }
  const uint16_t slots = options_.layout == RingLayout::kPacked ? b->ring_descs : 1;
  std::string diff;
  if (chain.ring_slots != slots) {
    diff += absl::StrFormat(" ring_slots %u, expected %u;", chain.ring_slots, slots);
  }
  if (chain.len != b->writable_len) {
    diff += absl::StrFormat(" len %u, expected %u;", chain.len, b->writable_len);
  }
  if (chain.nsegs != want.size()) {
    diff += absl::StrFormat(" %u segments, expected %u;", chain.nsegs, want.size());
  }
  for (size_t i = 0; i < std::min<size_t>(chain.nsegs, want.size()); ++i) {
    const GuestSegment& g = chain.segs[i];
    if (g.host != want[i].host || g.gpa != want[i].gpa || g.len != want[i].len) {
      diff +=
          absl::StrFormat(" segment %u is {gpa 0x%x, len %u, host %p}, expected {0x%x, %u, %p};", i,
                          g.gpa, g.len, static_cast<const void*>(g.host), want[i].gpa, want[i].len,
                          static_cast<const void*>(want[i].host));
    }
  }
  if (diff.empty()) return absl::OkStatus();
  return absl::InternalError(
      absl::StrFormat("chain id %u (%s):%s", chain.id, PostStyleName(b->style), diff));
}

// ---------------------------------------------------------------------------
// Device-side helpers.

std::vector<uint8_t> PatternBytes(uint32_t len, uint32_t seed) {
  std::vector<uint8_t> v(len);
  uint32_t x = seed * 2654435761u + 0x9e3779b9u;
  for (uint32_t i = 0; i < len; ++i) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    v[i] = static_cast<uint8_t>(x);
  }
  return v;
}

uint32_t WriteToChain(const DescChain& chain, absl::Span<const uint8_t> data) {
  uint32_t done = 0;
  for (uint16_t i = 0; i < chain.nsegs && done < data.size(); ++i) {
    const GuestSegment& s = chain.segs[i];
    uint32_t n = static_cast<uint32_t>(std::min<size_t>(s.len, data.size() - done));
    std::memcpy(s.host, data.data() + done, n);
    done += n;
  }
  return done;
}

std::vector<uint8_t> FillChain(const DescChain& chain, uint32_t len, uint32_t seed) {
  std::vector<uint8_t> data = PatternBytes(std::min(len, chain.len), seed);
  WriteToChain(chain, data);
  return data;
}

// --- DeviceModel.

absl::StatusOr<std::unique_ptr<DeviceModel>> DeviceModel::Create(
    VirtioDriver* driver, std::optional<QueueCursors> cursors) {
  auto q = DeviceQueue::Create(driver->device_config(), &driver->memory(),
                               cursors.value_or(driver->start_cursors()));
  if (!q.ok()) return q.status();
  return std::unique_ptr<DeviceModel>(new DeviceModel(driver, std::move(*q)));
}

std::vector<uint16_t> DeviceModel::Fetch(size_t max, uint16_t burst) {
  std::vector<uint16_t> ids;
  if (burst == 0) burst = 1;
  while (ids.size() < max) {
    burst_.resize(std::min<size_t>(burst, max - ids.size()));
    const uint16_t n = queue_->Fetch(absl::MakeSpan(burst_));
    for (uint16_t i = 0; i < n; ++i) {
      const DescChain& c = burst_[i];
      absl::Status s = driver_->CheckFetched(c);
      if (!s.ok()) errors_.push_back(absl::StrCat("fetch: ", s.message()));
      if (held_.count(c.id) != 0) {
        errors_.push_back(absl::StrFormat("fetch: id %u fetched while held", c.id));
        continue;
      }
      auto h = std::make_unique<Held>();
      h->chain = c;
      held_[c.id] = std::move(h);
      order_.push_back(c.id);
      ids.push_back(c.id);
    }
    if (n < burst_.size()) break;
  }
  return ids;
}

const DescChain* DeviceModel::held(uint16_t id) const {
  auto it = held_.find(id);
  return it == held_.end() ? nullptr : &it->second->chain;
}

std::vector<uint16_t> DeviceModel::held_ids() const { return order_; }

uint32_t DeviceModel::Write(uint16_t id, uint32_t len) {
  auto it = held_.find(id);
  if (it == held_.end()) {
    errors_.push_back(absl::StrFormat("write: id %u not held", id));
    return 0;
  }
  it->second->written = FillChain(it->second->chain, len, seed_++);
  return static_cast<uint32_t>(it->second->written.size());
}

uint16_t DeviceModel::Return(absl::Span<const uint16_t> ids) {
  std::vector<UsedBuffer> used;
  for (uint16_t id : ids) {
    auto it = held_.find(id);
    used.push_back(
        UsedBuffer{id, it == held_.end() ? 0 : static_cast<uint32_t>(it->second->written.size())});
  }
  const uint16_t n = queue_->Return(used);
  for (uint16_t id : ids) {
    auto it = held_.find(id);
    if (it == held_.end()) continue;
    returned_[id] = std::move(it->second->written);
    held_.erase(it);
    order_.erase(std::find(order_.begin(), order_.end(), id));
  }
  return n;
}

absl::Status DeviceModel::Verify(const Completion& c) {
  auto it = returned_.find(c.id);
  if (it == returned_.end()) {
    return absl::NotFoundError(
        absl::StrFormat("reaped id %u, which the device did not return", c.id));
  }
  std::vector<uint8_t> want = std::move(it->second);
  returned_.erase(it);
  if (c.len != want.size()) {
    return absl::InternalError(
        absl::StrFormat("id %u: used len %u, the device wrote %u", c.id, c.len, want.size()));
  }
  if (driver_->options().copy_data_on_reap && c.data != want) {
    size_t i = 0;
    while (i < want.size() && i < c.data.size() && c.data[i] == want[i]) ++i;
    return absl::InternalError(
        absl::StrFormat("id %u: data differs from what the device wrote, first at byte %u of %u",
                        c.id, i, want.size()));
  }
  return absl::OkStatus();
}

void DeviceModel::VerifyAll(absl::Span<const Completion> cs) {
  for (const Completion& c : cs) {
    absl::Status s = Verify(c);
    if (!s.ok()) errors_.push_back(std::string(s.message()));
  }
}

absl::Status DeviceModel::Reconnect() {
  const QueueCursors cursors = queue_->cursors();
  queue_.reset();
  auto q = DeviceQueue::Create(driver_->device_config(), &driver_->memory(), cursors);
  if (!q.ok()) return q.status();
  queue_ = std::move(*q);
  return absl::OkStatus();
}

}  // namespace iovtee::virtio::testing
