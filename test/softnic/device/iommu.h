// The soft NIC's IOMMU: the table of IOVA ranges the driver mapped (kMap),
// each backed by this process's own mapping of the driver's fd.
//
// Like a real IOMMU it answers "may the device touch [iova, iova + len)?"
// with a pointer or a fault; a range that straddles two mappings faults even
// when they are IOVA-adjacent, because they are not adjacent here. Every
// mapping sits between PROT_NONE guard pages in this process, so a bounds bug
// in the device crashes instead of writing into a neighbouring mapping.
#ifndef IOVTEE_TEST_SOFTNIC_DEVICE_IOMMU_H_
#define IOVTEE_TEST_SOFTNIC_DEVICE_IOMMU_H_

#include <cstddef>
#include <cstdint>
#include <vector>

namespace iovtee::softnic {

class Iommu {
 public:
  static constexpr size_t kDefaultMaxMappings = 1024;

  explicit Iommu(size_t max_mappings = kDefaultMaxMappings) : max_mappings_(max_mappings) {}
  ~Iommu();
  Iommu(const Iommu&) = delete;
  Iommu& operator=(const Iommu&) = delete;

  // Maps [offset, offset + len) of `fd` (MAP_SHARED, read-write) as
  // [iova, iova + len). The fd is not kept (the caller closes it). The file
  // offset is aligned down to the fd's page size (st_blksize: 4 KiB for a
  // memfd, the huge page size for hugetlbfs) and the difference remembered.
  // Returns 0 or -errno: -EINVAL for len 0, a wrapping range, or a file
  // shorter than offset + len (an access past EOF would be SIGBUS); -EEXIST
  // when the range overlaps a mapping; -ENOSPC past max_mappings; -EBADF for
  // a bad fd; mmap's errno otherwise.
  int Map(uint64_t iova, uint64_t len, int fd, uint64_t offset);

  // Removes the mapping made for exactly [iova, iova + len) and munmap()s it:
  // once this returns, no pointer from Translate() into it is valid. Returns
  // 0, -ENOENT when no mapping starts at iova, -EINVAL when one does but its
  // length differs.
  int Unmap(uint64_t iova, uint64_t len);

  // Unmaps everything (driver gone).
  void Clear();

  // [iova, iova + len) as one pointer, or nullptr unless the whole range lies
  // inside one mapping (len 0 counts as 1). Costs two compares when the same
  // mapping as last time answers, a binary search otherwise; no allocation.
  uint8_t* Translate(uint64_t iova, uint64_t len) {
    uint64_t rel = iova - hit_.iova;
    if (rel < hit_.len && (len == 0 ? 1 : len) <= hit_.len - rel) return hit_.host + rel;
    return TranslateSlow(iova, len);
  }

  size_t size() const { return entries_.size(); }
  uint64_t mapped_bytes() const { return mapped_bytes_; }

 private:
  struct Entry {
    uint64_t iova = 0;
    uint64_t len = 0;
    uint8_t* host = nullptr;      // the byte backing `iova`
    void* reservation = nullptr;  // guard + mapping + guard, munmap()ed as one
    size_t reservation_len = 0;
  };
  // A copy of the last entry that answered (not a pointer: Map/Unmap move
  // entries around). len 0 never matches.
  struct Hit {
    uint64_t iova = 0;
    uint64_t len = 0;
    uint8_t* host = nullptr;
  };

  uint8_t* TranslateSlow(uint64_t iova, uint64_t len);
  static void Release(const Entry& e);

  size_t max_mappings_;
  std::vector<Entry> entries_;  // sorted by iova, disjoint
  uint64_t mapped_bytes_ = 0;
  Hit hit_;
};

}  // namespace iovtee::softnic

#endif  // IOVTEE_TEST_SOFTNIC_DEVICE_IOMMU_H_
