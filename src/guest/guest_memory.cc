#include "src/guest/guest_memory.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"

namespace iovtee {
namespace {

// Up to this many regions a scan over a few cache lines beats the hard to
// predict branches of a binary search (vhost-user's baseline table holds 8).
constexpr size_t kLinearScanMax = 8;

// Every range here is [start, start + size) with start + size <= UINT64_MAX
// (Validate makes sure), so offsets are computed as differences: the guest
// chooses addr and len, and addr + len may wrap.
uint8_t* HostIn(const GuestRegion& r, uint64_t start, uint64_t addr, uint64_t len) {
  // The first test alone settles len == 0, which is treated as len == 1.
  if (addr < start || addr - start >= r.size) return nullptr;
  const uint64_t off = addr - start;
  if (len > r.size - off) return nullptr;
  return r.host + off;
}

const GuestRegion* FindGpa(absl::Span<const GuestRegion> regions, uint64_t gpa) {
  if (regions.size() <= kLinearScanMax) {
    for (const GuestRegion& r : regions) {
      if (gpa >= r.guest_phys_addr && gpa - r.guest_phys_addr < r.size) return &r;
    }
    return nullptr;
  }
  // Sorted and disjoint: only the last region starting at or below gpa can hold it.
  const GuestRegion* it =
      std::upper_bound(regions.begin(), regions.end(), gpa,
                       [](uint64_t a, const GuestRegion& r) { return a < r.guest_phys_addr; });
  if (it == regions.begin()) return nullptr;
  --it;
  return gpa - it->guest_phys_addr < it->size ? it : nullptr;
}

// A range ending exactly at 2^64 counts as wrapping: start + size would be 0
// for every caller that computes an end.
bool Wraps(uint64_t start, uint64_t size) { return size > UINT64_MAX - start; }

absl::Status CheckNoWrap(size_t index, const char* space, uint64_t start, uint64_t size) {
  if (!Wraps(start, size)) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrFormat(
      "region %d: %s 0x%x + size 0x%x runs past the end of the 64-bit address space", index, space,
      start, size));
}

absl::Status CheckDisjoint(absl::Span<const GuestRegion> regions, uint64_t GuestRegion::*key,
                           const char* space, bool skip_zero) {
  std::vector<size_t> order;
  order.reserve(regions.size());
  for (size_t i = 0; i < regions.size(); ++i) {
    if (!(skip_zero && regions[i].*key == 0)) order.push_back(i);
  }
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return regions[a].*key < regions[b].*key; });
  // Any overlap in a sorted list shows up between neighbours.
  for (size_t k = 1; k < order.size(); ++k) {
    const GuestRegion& lo = regions[order[k - 1]];
    const GuestRegion& hi = regions[order[k]];
    if (hi.*key - lo.*key < lo.size) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "regions %d and %d overlap in %s: [0x%x, 0x%x) and [0x%x, 0x%x)", order[k - 1], order[k],
          space, lo.*key, lo.*key + lo.size, hi.*key, hi.*key + hi.size));
    }
  }
  return absl::OkStatus();
}

// Everything Validate checks; MapFromFds runs it with check_host == false
// before it maps anything, since `host` is not known until then.
absl::Status ValidateTable(absl::Span<const GuestRegion> regions, bool check_host) {
  if (regions.empty()) return absl::InvalidArgumentError("guest memory table has no regions");
  if (regions.size() > GuestMemory::kMaxRegions) {
    return absl::InvalidArgumentError(
        absl::StrFormat("guest memory table has %d regions; at most %d are supported",
                        regions.size(), GuestMemory::kMaxRegions));
  }
  for (size_t i = 0; i < regions.size(); ++i) {
    const GuestRegion& r = regions[i];
    if (r.size == 0) {
      return absl::InvalidArgumentError(
          absl::StrFormat("region %d (gpa 0x%x): size is 0", i, r.guest_phys_addr));
    }
    absl::Status s = CheckNoWrap(i, "guest physical address", r.guest_phys_addr, r.size);
    if (s.ok()) s = CheckNoWrap(i, "user address", r.guest_user_addr, r.size);
    if (s.ok() && r.vhost_hva != 0) s = CheckNoWrap(i, "vhost address", r.vhost_hva, r.size);
    if (!s.ok()) return s;
    if (check_host && r.host == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrFormat("region %d (gpa 0x%x): host pointer is null", i, r.guest_phys_addr));
    }
    if (check_host) {
      s = CheckNoWrap(i, "host address", reinterpret_cast<uintptr_t>(r.host), r.size);
      if (!s.ok()) return s;
    }
  }
  absl::Status s = CheckDisjoint(regions, &GuestRegion::guest_phys_addr, "guest physical addresses",
                                 /*skip_zero=*/false);
  if (s.ok()) {
    s = CheckDisjoint(regions, &GuestRegion::guest_user_addr, "user addresses",
                      /*skip_zero=*/false);
  }
  // 0 means librte_vhost has no mapping of the region, so any number may share it.
  if (s.ok()) {
    s = CheckDisjoint(regions, &GuestRegion::vhost_hva, "vhost addresses", /*skip_zero=*/true);
  }
  return s;
}

void SortByGpa(std::vector<GuestRegion>& regions) {
  std::sort(regions.begin(), regions.end(), [](const GuestRegion& a, const GuestRegion& b) {
    return a.guest_phys_addr < b.guest_phys_addr;
  });
}

}  // namespace

absl::Status GuestMemory::Validate(absl::Span<const GuestRegion> regions) {
  return ValidateTable(regions, /*check_host=*/true);
}

absl::StatusOr<std::unique_ptr<GuestMemory>> GuestMemory::Create(
    absl::Span<const GuestRegion> regions) {
  absl::Status s = Validate(regions);
  if (!s.ok()) return s;
  std::unique_ptr<GuestMemory> mem(new GuestMemory());
  mem->regions_.assign(regions.begin(), regions.end());
  SortByGpa(mem->regions_);
  return mem;
}

absl::StatusOr<std::unique_ptr<GuestMemory>> GuestMemory::MapFromFds(
    absl::Span<const GuestRegionFd> regions) {
  std::vector<GuestRegion> table;
  table.reserve(regions.size());
  for (const GuestRegionFd& f : regions) {
    table.push_back(
        GuestRegion{f.guest_phys_addr, f.guest_user_addr, f.size, nullptr, f.vhost_hva});
  }
  absl::Status s = ValidateTable(table, /*check_host=*/false);
  if (!s.ok()) return s;
  for (size_t i = 0; i < regions.size(); ++i) {
    const GuestRegionFd& f = regions[i];
    if (f.fd < 0) {
      return absl::InvalidArgumentError(absl::StrFormat("region %d: fd %d is invalid", i, f.fd));
    }
    if (Wraps(f.mmap_offset, f.size)) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "region %d: mmap_offset 0x%x + size 0x%x overflows", i, f.mmap_offset, f.size));
    }
  }

  // Each resource goes into mem as soon as it exists, so that an early return
  // undoes everything done so far through the destructor.
  std::unique_ptr<GuestMemory> mem(new GuestMemory());
  mem->mappings_.reserve(regions.size());
  const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  for (size_t i = 0; i < regions.size(); ++i) {
    const GuestRegionFd& f = regions[i];
    const int fd = fcntl(f.fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) {
      return absl::ErrnoToStatus(errno, absl::StrFormat("region %d: cannot dup fd %d", i, f.fd));
    }
    mem->mappings_.push_back(Mapping{nullptr, 0, fd, 0});

    struct stat st;
    if (fstat(fd, &st) != 0) {
      return absl::ErrnoToStatus(errno, absl::StrFormat("region %d: cannot fstat fd %d", i, f.fd));
    }
    // Mapping from offset 0 frees mmap_offset from page alignment (as DPDK
    // vhost does). A short file would map fine and raise SIGBUS on first touch.
    const uint64_t need = f.mmap_offset + f.size;
    if (S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) < need) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "region %d: fd %d holds 0x%x bytes, but mmap_offset 0x%x + size 0x%x needs 0x%x", i, f.fd,
          st.st_size, f.mmap_offset, f.size, need));
    }
    // hugetlbfs reports its page size here and munmap() wants lengths in it.
    uint64_t align = page;
    const uint64_t blk = static_cast<uint64_t>(st.st_blksize);
    if (blk > page && (blk & (blk - 1)) == 0) align = blk;
    if (need > UINT64_MAX - (align - 1)) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "region %d: mmap_offset 0x%x + size 0x%x is too large to map", i, f.mmap_offset, f.size));
    }
    const size_t len = (need + align - 1) & ~(align - 1);
    void* addr = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (addr == MAP_FAILED) {
      const int err = errno;
      return absl::ErrnoToStatus(
          err, absl::StrFormat("region %d (gpa 0x%x): cannot mmap 0x%x bytes of fd %d", i,
                               f.guest_phys_addr, len, f.fd));
    }
    mem->mappings_.back().addr = addr;
    mem->mappings_.back().len = len;
    mem->mappings_.back().page_size = align;
    table[i].host = static_cast<uint8_t*>(addr) + f.mmap_offset;
  }
  SortByGpa(table);
  mem->regions_ = std::move(table);
  return mem;
}

std::vector<GuestMemory::MappedRange> GuestMemory::mapped_ranges() const {
  std::vector<MappedRange> out;
  out.reserve(mappings_.size());
  for (const Mapping& m : mappings_) {
    out.push_back(MappedRange{static_cast<uint8_t*>(m.addr), m.len, m.page_size});
  }
  return out;
}

GuestMemory::~GuestMemory() {
  for (const Mapping& m : mappings_) {
    if (m.addr != nullptr) munmap(m.addr, m.len);
    close(m.fd);
  }
}

uint8_t* GuestMemory::GpaToHostSlow(uint64_t gpa, uint64_t len) const {
  const GuestRegion* r = FindGpa(regions_, gpa);
  if (r == nullptr) return nullptr;
  uint8_t* host = HostIn(*r, r->guest_phys_addr, gpa, len);
  if (host != nullptr) {
    hint_.store(static_cast<uint32_t>(r - regions_.data()), std::memory_order_relaxed);
  }
  return host;
}

int GuestMemory::GpaToSegments(uint64_t gpa, uint64_t len, absl::Span<GuestSegment> out) const {
  if (len > UINT32_MAX) return -1;
  // Nothing to cover, but an address outside guest memory is still the
  // driver's error, as it is for GpaToHost.
  if (len == 0) return FindGpa(regions_, gpa) != nullptr ? 0 : -1;
  size_t n = 0;
  while (len > 0) {
    const GuestRegion* r = FindGpa(regions_, gpa);
    if (r == nullptr || n == out.size()) return -1;
    const uint64_t off = gpa - r->guest_phys_addr;
    const uint64_t take = std::min(len, r->size - off);
    out[n++] = GuestSegment{r->host + off, gpa, static_cast<uint32_t>(take)};
    // At most the region's end, which Validate keeps representable.
    gpa += take;
    len -= take;
  }
  return static_cast<int>(n);
}

uint8_t* GuestMemory::UvaToHost(uint64_t uva, uint64_t len) const {
  // Regions are sorted by GPA, not UVA; ring addresses are translated once per
  // SET_VRING_ADDR, so a scan is enough.
  for (const GuestRegion& r : regions_) {
    if (uint8_t* p = HostIn(r, r.guest_user_addr, uva, len)) return p;
  }
  return nullptr;
}

uint8_t* GuestMemory::VhostHvaToHost(uint64_t hva, uint64_t len) const {
  for (const GuestRegion& r : regions_) {
    if (r.vhost_hva == 0) continue;
    if (uint8_t* p = HostIn(r, r.vhost_hva, hva, len)) return p;
  }
  return nullptr;
}

uint64_t GuestMemory::HostToGpa(const uint8_t* host) const {
  // Compared as integers: relational operators on pointers into different
  // objects are unspecified.
  const uintptr_t p = reinterpret_cast<uintptr_t>(host);
  for (const GuestRegion& r : regions_) {
    const uintptr_t base = reinterpret_cast<uintptr_t>(r.host);
    if (p >= base && p - base < r.size) return r.guest_phys_addr + (p - base);
  }
  return UINT64_MAX;
}

}  // namespace iovtee
