// The soft NIC's IOMMU table, driver side: which ranges of this process's
// memory the device may reach, and the kMap/kUnmap messages that fill it.
//
// Two kinds of memory are mapped:
// - DPDK's own memory (where mbufs of ordinary mempools live): every memseg at
//   probe, and later allocations and frees through a memory event callback
//   (dynamic memory mode only; legacy/--no-huge memory never changes).
// - External memory (rte_extmem_register'ed, e.g. guest memory): only on
//   request, through the vdev dma_map/dma_unmap ops, as a real IOMMU would.
// The device reads file-backed memory only: each range is sent with the fd of
// the file behind it and the offset of its first byte in that file.
#ifndef IOVTEE_TEST_SOFTNIC_PMD_DMA_MAPPER_H_
#define IOVTEE_TEST_SOFTNIC_PMD_DMA_MAPPER_H_

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include <rte_memory.h>

#include "test/softnic/pmd/control_channel.h"

namespace iovtee::simnic {

class DmaMapper {
 public:
  enum class Origin { kDpdkMemory, kExternal };

  struct Mapping {
    uintptr_t va;
    uint64_t iova;
    uint64_t len;
    int fd;  // DPDK memory: DPDK's own segment fd (still open); external: -1
    uint64_t offset;
    Origin origin;
  };

  DmaMapper(std::string port_name, ControlChannel* channel, int ack_timeout_ms)
      : port_name_(std::move(port_name)), channel_(channel), ack_timeout_ms_(ack_timeout_ms) {}

  // Maps every memseg of DPDK's internal memory, adjacent segments with the
  // same fd and contiguous offsets and IOVAs merged into one kMap. Returns 0
  // or -errno after logging (memory that is not file-backed cannot be shared
  // with the device). Must not be called with the memory hotplug lock held.
  int MapDpdkMemory();

  // Memory event callback body (runs with the hotplug lock held): maps new
  // DPDK memory, and unmaps freed memory before it goes away.
  void OnMemEvent(rte_mem_event type, const void* addr, size_t len);

  // vdev dma_map: [addr, addr + len) must be one shared mapping of one file
  // (checked in /proc/self/maps). Returns 0 or -errno (logged).
  int MapExternal(void* addr, uint64_t iova, size_t len);

  // vdev dma_unmap: the range must be exactly one earlier MapExternal. Returns
  // after the device acknowledged: no DMA to the range happens after that.
  int UnmapExternal(void* addr, uint64_t iova, size_t len);

  // Forgets every mapping without messages (the device dropped them all at
  // kBye, or is gone).
  void Clear();

  size_t size() const;
  std::vector<Mapping> Snapshot() const;

 private:
  // Sends kMap and records it. Caller holds mu_.
  int MapLocked(const Mapping& m);
  // Maps the DPDK segments not yet covered by a mapping, merged. Caller holds
  // mu_. The memory event callback is registered before the memseg walk, so
  // both may see the same new segment; this keeps it mapped once.
  int MapSegmentsLocked(const std::vector<Mapping>& segs);
  bool CoveredLocked(const Mapping& seg) const;
  // Sends kUnmap for maps_[index] and forgets it. Caller holds mu_.
  int UnmapLocked(size_t index);

  const std::string port_name_;
  ControlChannel* const channel_;
  const int ack_timeout_ms_;
  mutable std::mutex mu_;
  std::vector<Mapping> maps_;
};

}  // namespace iovtee::simnic

#endif  // IOVTEE_TEST_SOFTNIC_PMD_DMA_MAPPER_H_
