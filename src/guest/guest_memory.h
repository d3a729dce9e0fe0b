// Guest memory as the device sees it: the vhost-user region table, and
// translation of guest addresses to pointers this process may use.
//
// Three address spaces meet here. The driver writes guest physical addresses
// (GPA) in descriptors; vhost-user gives ring addresses as QEMU user virtual
// addresses (UVA); librte_vhost hands out pointers in its own mapping of the
// regions (vhost HVA). Every translation here ends in `host`: this object's
// own view of the region, which stays valid for as long as the GuestMemory
// lives, even after librte_vhost unmaps the regions on SET_MEM_TABLE.
#ifndef IOVTEE_SRC_GUEST_GUEST_MEMORY_H_
#define IOVTEE_SRC_GUEST_GUEST_MEMORY_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace iovtee {

// One region of guest memory. `host` is where this process reads and writes
// it; `vhost_hva` is librte_vhost's mapping of it (0 when there is none).
struct GuestRegion {
  uint64_t guest_phys_addr = 0;
  uint64_t guest_user_addr = 0;
  uint64_t size = 0;
  uint8_t* host = nullptr;
  uint64_t vhost_hva = 0;
};

// A region as vhost-user describes it, with the fd to map it from.
struct GuestRegionFd {
  uint64_t guest_phys_addr = 0;
  uint64_t guest_user_addr = 0;
  uint64_t size = 0;
  uint64_t mmap_offset = 0;  // where the region starts in the fd
  int fd = -1;               // duplicated by MapFromFds; the caller keeps its own
  uint64_t vhost_hva = 0;
};

// A piece of a buffer that is contiguous in this process's view.
struct GuestSegment {
  uint8_t* host = nullptr;
  uint64_t gpa = 0;
  uint32_t len = 0;
};

class GuestMemory {
 public:
  // At most this many regions (vhost-user's VHOST_MEMORY_BASELINE_NREGIONS is
  // 8; with VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS QEMU may use up to 509).
  static constexpr size_t kMaxRegions = 512;

  // Builds a table over memory this process already has mapped (tests, or a
  // host that maps the regions itself). Fails on an empty or too long table,
  // a zero-size region, a null host pointer, a region whose GPA, UVA, vhost
  // or host range wraps, or regions that overlap in GPA, UVA or vhost HVA.
  // Does not take ownership of the memory. Host ranges are trusted not to
  // alias (HostToGpa answers for the first region that holds the pointer).
  static absl::StatusOr<std::unique_ptr<GuestMemory>> Create(absl::Span<const GuestRegion> regions);

  // dup()s each fd and mmap()s [0, mmap_offset + size) of it shared,
  // read-write (as librte_vhost does: mmap offsets need page alignment), with
  // `host` at mmap_offset; the mappings and fds are released when the object
  // is destroyed. The same validation as Create, done before anything is
  // mapped, plus: fd >= 0, a regular file long enough (else SIGBUS later).
  static absl::StatusOr<std::unique_ptr<GuestMemory>> MapFromFds(
      absl::Span<const GuestRegionFd> regions);

  ~GuestMemory();
  GuestMemory(const GuestMemory&) = delete;
  GuestMemory& operator=(const GuestMemory&) = delete;

  // [gpa, gpa + len) as one pointer, or nullptr when any byte of it lies
  // outside guest memory or the range crosses from one region into another
  // (even GPA-adjacent regions are not contiguous in this process). len == 0
  // is treated as len == 1. Cost: a linear scan for a few regions, a binary
  // search beyond; no allocation, no lock, safe from many threads.
  // The region that answered last is tried first, inline: buffers mostly
  // come from one region.
  uint8_t* GpaToHost(uint64_t gpa, uint64_t len) const {
    const GuestRegion& r = regions_[hint_.load(std::memory_order_relaxed)];
    const uint64_t off = gpa - r.guest_phys_addr;
    if (gpa >= r.guest_phys_addr && off < r.size && len <= r.size - off) return r.host + off;
    return GpaToHostSlow(gpa, len);
  }

  // [gpa, gpa + len) as up to out.size() segments, one per region crossed.
  // Returns the number of segments, or -1 when a byte lies outside guest
  // memory, more than out.size() segments would be needed, or len exceeds
  // UINT32_MAX (out may then be partly written). len == 0: 0 when gpa is in
  // guest memory, else -1.
  int GpaToSegments(uint64_t gpa, uint64_t len, absl::Span<GuestSegment> out) const;

  // The same for QEMU user addresses (vring addresses) and for librte_vhost's
  // pointers (rte_vhost_vring's desc/avail/used). Single region only.
  uint8_t* UvaToHost(uint64_t uva, uint64_t len) const;
  uint8_t* VhostHvaToHost(uint64_t hva, uint64_t len) const;

  // The GPA of a host pointer from GpaToHost, or UINT64_MAX when `host` is not
  // inside a region (dirty logging works on GPAs).
  uint64_t HostToGpa(const uint8_t* host) const;

  absl::Span<const GuestRegion> regions() const { return regions_; }

  // This process's own mappings of the regions' fds (MapFromFds only; empty
  // for Create): each starts at offset 0 of its fd, so it is aligned to and
  // a multiple of the fd's page size (the huge page size on hugetlbfs),
  // which is what DMA registration (rte_extmem_register) needs.
  struct MappedRange {
    uint8_t* addr;
    size_t len;
    size_t page_size;
  };
  std::vector<MappedRange> mapped_ranges() const;

 private:
  GuestMemory() = default;
  static absl::Status Validate(absl::Span<const GuestRegion> regions);

  uint8_t* GpaToHostSlow(uint64_t gpa, uint64_t len) const;

  std::vector<GuestRegion> regions_;       // sorted by guest_phys_addr; never empty
  mutable std::atomic<uint32_t> hint_{0};  // index into regions_: the last region found
  struct Mapping {
    void* addr;
    size_t len;
    int fd;
    size_t page_size;
  };
  std::vector<Mapping> mappings_;  // owned mappings (MapFromFds only)
};

}  // namespace iovtee

#endif  // IOVTEE_SRC_GUEST_GUEST_MEMORY_H_
