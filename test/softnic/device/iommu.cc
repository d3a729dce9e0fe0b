#include "test/softnic/device/iommu.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace iovtee::softnic {
namespace {

uint64_t AlignUp(uint64_t v, uint64_t a) { return (v + a - 1) & ~(a - 1); }

}  // namespace

Iommu::~Iommu() { Clear(); }

int Iommu::Map(uint64_t iova, uint64_t len, int fd, uint64_t offset) {
  if (len == 0 || iova + len < iova || offset + len < offset) return -EINVAL;
  if (fd < 0) return -EBADF;
  struct stat st;
  if (fstat(fd, &st) != 0) return -errno;
  if (!S_ISREG(st.st_mode)) return -EINVAL;
  if (offset + len > static_cast<uint64_t>(st.st_size)) return -EINVAL;

  auto next = std::lower_bound(entries_.begin(), entries_.end(), iova,
                               [](const Entry& e, uint64_t v) { return e.iova < v; });
  if (next != entries_.end() && next->iova < iova + len) return -EEXIST;
  if (next != entries_.begin() && std::prev(next)->iova + std::prev(next)->len > iova) {
    return -EEXIST;
  }
  if (entries_.size() >= max_mappings_) return -ENOSPC;

  // hugetlbfs needs offsets, lengths and (with MAP_FIXED) addresses aligned
  // to its page size, which it reports as st_blksize.
  uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  uint64_t align = page;
  uint64_t blk = static_cast<uint64_t>(st.st_blksize);
  if (blk > align && (blk & (blk - 1)) == 0) align = blk;
  uint64_t delta = offset & (align - 1);
  uint64_t map_len = AlignUp(delta + len, align);

  // Reserve guard + (alignment slack) + mapping + guard, then put the file
  // mapping inside. The guards stay PROT_NONE for the mapping's lifetime.
  size_t reservation_len = map_len + 2 * align + align;
  void* reservation =
      mmap(nullptr, reservation_len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (reservation == MAP_FAILED) return -errno;
  uint64_t inner = AlignUp(reinterpret_cast<uint64_t>(reservation) + align, align);
  void* mapped = mmap(reinterpret_cast<void*>(inner), map_len, PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_FIXED, fd, static_cast<off_t>(offset - delta));
  if (mapped == MAP_FAILED) {
    int err = errno;
    munmap(reservation, reservation_len);
    return -err;
  }
  Entry e;
  e.iova = iova;
  e.len = len;
  e.host = static_cast<uint8_t*>(mapped) + delta;
  e.reservation = reservation;
  e.reservation_len = reservation_len;
  entries_.insert(next, e);
  mapped_bytes_ += len;
  return 0;
}

int Iommu::Unmap(uint64_t iova, uint64_t len) {
  auto it = std::lower_bound(entries_.begin(), entries_.end(), iova,
                             [](const Entry& e, uint64_t v) { return e.iova < v; });
  if (it == entries_.end() || it->iova != iova) return -ENOENT;
  if (it->len != len) return -EINVAL;
  hit_ = Hit{};
  Release(*it);
  mapped_bytes_ -= it->len;
  entries_.erase(it);
  return 0;
}

void Iommu::Clear() {
  hit_ = Hit{};
  for (const Entry& e : entries_) Release(e);
  entries_.clear();
  mapped_bytes_ = 0;
}

void Iommu::Release(const Entry& e) { munmap(e.reservation, e.reservation_len); }

uint8_t* Iommu::TranslateSlow(uint64_t iova, uint64_t len) {
  if (len == 0) len = 1;
  auto it = std::upper_bound(entries_.begin(), entries_.end(), iova,
                             [](uint64_t v, const Entry& e) { return v < e.iova; });
  if (it == entries_.begin()) return nullptr;
  const Entry& e = *std::prev(it);
  uint64_t rel = iova - e.iova;
  if (rel >= e.len || len > e.len - rel) return nullptr;
  hit_ = Hit{e.iova, e.len, e.host};
  return e.host + rel;
}

}  // namespace iovtee::softnic
