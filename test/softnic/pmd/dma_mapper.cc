#include "test/softnic/pmd/dma_mapper.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <rte_errno.h>

#include "test/softnic/pmd/simnic_log.h"

namespace iovtee::simnic {
namespace {

// Appends `m`, merged into the previous range when the device can map both
// with one mmap (same file, contiguous in the file, in VA and in IOVA).
void AppendMerged(std::vector<DmaMapper::Mapping>* out, const DmaMapper::Mapping& m) {
  if (!out->empty()) {
    DmaMapper::Mapping& last = out->back();
    if (last.fd == m.fd && last.va + last.len == m.va && last.iova + last.len == m.iova &&
        last.offset + last.len == m.offset) {
      last.len += m.len;
      return;
    }
  }
  out->push_back(m);
}

// Describes `ms` for the device, or returns -errno (logged).
int DescribeSeg(const std::string& port, const rte_memseg* ms, DmaMapper::Mapping* out) {
  if (ms->iova == RTE_BAD_IOVA) {
    SIMNIC_LOG(ERR, "%s: DPDK memory at %p has no IOVA (IOVA-as-PA without physical addresses)",
               port.c_str(), ms->addr);
    return -EINVAL;
  }
  const int fd = rte_memseg_get_fd_thread_unsafe(ms);
  size_t offset = 0;
  if (fd < 0 || rte_memseg_get_fd_offset_thread_unsafe(ms, &offset) < 0) {
    const int err = rte_errno;
    SIMNIC_LOG(ERR,
               "%s: DPDK memory at %p is not backed by a file the device can map (%s); "
               "use --no-huge, or hugepages with --single-file-segments/--in-memory",
               port.c_str(), ms->addr, rte_strerror(err));
    return -(err != 0 ? err : ENODEV);
  }
  *out = {reinterpret_cast<uintptr_t>(ms->addr), ms->iova, ms->len, fd, offset,
          DmaMapper::Origin::kDpdkMemory};
  return 0;
}

struct WalkState {
  const std::string* port;
  std::vector<DmaMapper::Mapping> segs;
  int error = 0;
};

int WalkSeg(const rte_memseg_list* msl, const rte_memseg* ms, void* arg) {
  auto* st = static_cast<WalkState*>(arg);
  // External memory reaches the device only through dma_map, as with an IOMMU.
  if (msl->external) return 0;
  DmaMapper::Mapping m;
  st->error = DescribeSeg(*st->port, ms, &m);
  if (st->error != 0) return 1;
  st->segs.push_back(m);
  return 0;
}

// One line of /proc/self/maps.
struct Vma {
  uintptr_t start = 0;
  uintptr_t end = 0;
  bool shared = false;
  uint64_t offset = 0;
  unsigned dev_major = 0;
  unsigned dev_minor = 0;
  uint64_t inode = 0;
  std::string path;
};

std::vector<Vma> ReadMaps() {
  std::vector<Vma> out;
  FILE* f = std::fopen("/proc/self/maps", "re");
  if (f == nullptr) return out;
  char* line = nullptr;
  size_t cap = 0;
  while (getline(&line, &cap, f) > 0) {
    Vma v;
    char perms[8] = {};
    int path_at = 0;
    if (std::sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %7s %" SCNx64 " %x:%x %" SCNu64 " %n",
                    &v.start, &v.end, perms, &v.offset, &v.dev_major, &v.dev_minor, &v.inode,
                    &path_at) < 7) {
      continue;
    }
    v.shared = perms[3] == 's';
    v.path = line + path_at;
    while (!v.path.empty() && v.path.back() == '\n') v.path.pop_back();
    out.push_back(std::move(v));
  }
  std::free(line);
  std::fclose(f);
  return out;
}

// A duplicate of an fd this process already holds on the file (dev, inode),
// or -1. The fallback when /proc/self/map_files is closed to us (it needs
// CAP_SYS_ADMIN in the initial user namespace, which sandboxes lack): whoever
// mapped a memfd usually keeps its fd.
int DupOpenFd(unsigned dev_major, unsigned dev_minor, uint64_t inode) {
  DIR* d = opendir("/proc/self/fd");
  if (d == nullptr) return -1;
  int found = -1;
  while (dirent* e = readdir(d)) {
    char* end = nullptr;
    const long fd = std::strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0' || fd == dirfd(d)) continue;
    struct stat st;
    if (fstat(static_cast<int>(fd), &st) != 0) continue;
    if (st.st_ino == inode && major(st.st_dev) == dev_major && minor(st.st_dev) == dev_minor) {
      found = fcntl(static_cast<int>(fd), F_DUPFD_CLOEXEC, 0);
      if (found >= 0) break;
    }
  }
  closedir(d);
  return found;
}

// Finds the file behind [addr, addr + len): consecutive VMAs of one file,
// contiguous in the file. Opens it (through /proc/self/map_files, which also
// reaches memfds and deleted files) and returns the fd and the offset of addr
// in it, or -errno after logging why the range cannot be mapped.
int OpenBackingFile(const std::string& port, uintptr_t addr, size_t len, uint64_t* offset) {
  const std::vector<Vma> maps = ReadMaps();
  if (maps.empty()) {
    SIMNIC_LOG(ERR, "%s: dma_map: cannot read /proc/self/maps", port.c_str());
    return -EIO;
  }
  size_t i = 0;
  while (i < maps.size() && !(maps[i].start <= addr && addr < maps[i].end)) ++i;
  if (i == maps.size()) {
    SIMNIC_LOG(ERR, "%s: dma_map: %#" PRIxPTR " is not mapped in this process", port.c_str(), addr);
    return -EINVAL;
  }
  const Vma& first = maps[i];
  if (first.inode == 0) {
    SIMNIC_LOG(ERR,
               "%s: dma_map: [%#" PRIxPTR
               ", +%zu) is anonymous memory (%s); the device can "
               "reach only shared file-backed memory (memfd, hugetlbfs, tmpfs)",
               port.c_str(), addr, len, first.path.empty() ? "no file" : first.path.c_str());
    return -EINVAL;
  }
  const uintptr_t end = addr + len;
  for (size_t j = i;; ++j) {
    const Vma& v = maps[j];
    if (!v.shared) {
      SIMNIC_LOG(ERR,
                 "%s: dma_map: [%#" PRIxPTR
                 ", +%zu) includes a private mapping of %s; "
                 "device writes would not be seen through it (map it MAP_SHARED)",
                 port.c_str(), addr, len, v.path.c_str());
      return -EINVAL;
    }
    if (v.end >= end) break;
    const bool continues = j + 1 < maps.size() && maps[j + 1].start == v.end &&
                           maps[j + 1].inode == v.inode && maps[j + 1].dev_major == v.dev_major &&
                           maps[j + 1].dev_minor == v.dev_minor &&
                           maps[j + 1].offset == v.offset + (v.end - v.start);
    if (!continues) {
      SIMNIC_LOG(ERR,
                 "%s: dma_map: [%#" PRIxPTR
                 ", +%zu) is not one mapping of one file "
                 "(%s ends at %#" PRIxPTR ")",
                 port.c_str(), addr, len, v.path.c_str(), v.end);
      return -EINVAL;
    }
  }
  char link[64];
  std::snprintf(link, sizeof(link), "/proc/self/map_files/%" PRIxPTR "-%" PRIxPTR, first.start,
                first.end);
  const char* via = "map_files";
  int fd = open(link, O_RDWR | O_CLOEXEC);
  const int map_files_errno = errno;
  if (fd < 0) {
    via = "an fd the process holds";
    fd = DupOpenFd(first.dev_major, first.dev_minor, first.inode);
  }
  if (fd < 0 && !first.path.empty() && first.path[0] == '/') {
    via = "its path";
    fd = open(first.path.c_str(), O_RDWR | O_CLOEXEC);  // a named, still linked file
  }
  if (fd < 0) {
    SIMNIC_LOG(ERR,
               "%s: dma_map: cannot open the file behind [%#" PRIxPTR
               ", +%zu) (%s): %s: %s, "
               "and no open fd of this process refers to it",
               port.c_str(), addr, len, first.path.c_str(), link, std::strerror(map_files_errno));
    return -map_files_errno;
  }
  *offset = first.offset + (addr - first.start);
  SIMNIC_LOG(DEBUG,
             "%s: dma_map: [%#" PRIxPTR ", +%zu) is %s at offset %#" PRIx64 " (opened via %s)",
             port.c_str(), addr, len, first.path.c_str(), *offset, via);
  return fd;
}

}  // namespace

int DmaMapper::MapLocked(const Mapping& m) {
  Msg msg{};
  msg.type = MsgType::kMap;
  msg.iova = m.iova;
  msg.len = m.len;
  msg.offset = m.offset;
  const int r = channel_->Request(msg, m.fd, ack_timeout_ms_);
  if (r != 0) {
    SIMNIC_LOG(ERR, "%s: device refused kMap iova %#" PRIx64 " len %#" PRIx64 ": %s",
               port_name_.c_str(), m.iova, m.len, std::strerror(-r));
    return r;
  }
  maps_.push_back(m);
  return 0;
}

int DmaMapper::UnmapLocked(size_t index) {
  const Mapping m = maps_[index];
  Msg msg{};
  msg.type = MsgType::kUnmap;
  msg.iova = m.iova;
  msg.len = m.len;
  const int r = channel_->Request(msg, -1, ack_timeout_ms_);
  if (r != 0) {
    SIMNIC_LOG(ERR, "%s: device refused kUnmap iova %#" PRIx64 " len %#" PRIx64 ": %s",
               port_name_.c_str(), m.iova, m.len, std::strerror(-r));
    return r;
  }
  maps_.erase(maps_.begin() + static_cast<ptrdiff_t>(index));
  return 0;
}

bool DmaMapper::CoveredLocked(const Mapping& seg) const {
  for (const Mapping& m : maps_) {
    if (m.origin == Origin::kDpdkMemory && m.va <= seg.va && seg.va + seg.len <= m.va + m.len) {
      return true;
    }
  }
  return false;
}

int DmaMapper::MapSegmentsLocked(const std::vector<Mapping>& segs) {
  std::vector<Mapping> ranges;
  for (const Mapping& seg : segs) {
    if (!CoveredLocked(seg)) AppendMerged(&ranges, seg);
  }
  // The fds are DPDK's own: SCM_RIGHTS gives the device its own reference.
  for (const Mapping& m : ranges) {
    if (int r = MapLocked(m); r != 0) return r;
  }
  return 0;
}

int DmaMapper::MapDpdkMemory() {
  WalkState st;
  st.port = &port_name_;
  rte_memseg_walk(WalkSeg, &st);
  if (st.error != 0) return st.error;
  std::lock_guard<std::mutex> lock(mu_);
  // Segments an ALLOC event mapped meanwhile are skipped.
  return MapSegmentsLocked(st.segs);
}

void DmaMapper::OnMemEvent(rte_mem_event type, const void* addr, size_t len) {
  const uintptr_t start = reinterpret_cast<uintptr_t>(addr);
  const uintptr_t end = start + len;
  std::lock_guard<std::mutex> lock(mu_);
  if (type == RTE_MEM_EVENT_ALLOC) {
    const rte_memseg_list* msl = rte_mem_virt2memseg_list(addr);
    if (msl == nullptr || msl->external) return;
    std::vector<Mapping> segs;
    for (uintptr_t va = start; va < end; va += msl->page_sz) {
      const rte_memseg* ms = rte_mem_virt2memseg(reinterpret_cast<void*>(va), msl);
      Mapping m;
      if (ms == nullptr || DescribeSeg(port_name_, ms, &m) != 0) return;
      segs.push_back(m);
    }
    // A failure cannot undo the allocation: mbufs there will fault in the
    // device, which counts it (and MapLocked logged it).
    MapSegmentsLocked(segs);
    return;
  }
  // RTE_MEM_EVENT_FREE comes before the pages go: unmap every DPDK mapping
  // that overlaps, and map back what stays allocated on either side.
  for (size_t i = 0; i < maps_.size();) {
    const Mapping m = maps_[i];
    if (m.origin != Origin::kDpdkMemory || m.va >= end || m.va + m.len <= start) {
      ++i;
      continue;
    }
    if (UnmapLocked(i) != 0) {
      ++i;
      continue;
    }
    if (m.va < start) {
      const uint64_t keep = start - m.va;
      MapLocked({m.va, m.iova, keep, m.fd, m.offset, m.origin});
    }
    if (m.va + m.len > end) {
      const uint64_t skip = end - m.va;
      MapLocked({end, m.iova + skip, m.len - skip, m.fd, m.offset + skip, m.origin});
    }
    i = 0;  // the table changed; the remnants do not overlap, so this ends
  }
}

int DmaMapper::MapExternal(void* addr, uint64_t iova, size_t len) {
  const uintptr_t va = reinterpret_cast<uintptr_t>(addr);
  if (len == 0 || va + len < va || iova + len < iova) {
    SIMNIC_LOG(ERR, "%s: dma_map: empty or wrapping range %p +%zu", port_name_.c_str(), addr, len);
    return -EINVAL;
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (const Mapping& m : maps_) {
    if (iova < m.iova + m.len && m.iova < iova + len) {
      SIMNIC_LOG(ERR,
                 "%s: dma_map: iova [%#" PRIx64
                 ", +%zu) overlaps an existing mapping "
                 "[%#" PRIx64 ", +%#" PRIx64 ")",
                 port_name_.c_str(), iova, len, m.iova, m.len);
      return -EEXIST;
    }
  }
  uint64_t offset = 0;
  const int fd = OpenBackingFile(port_name_, va, len, &offset);
  if (fd < 0) return fd;
  const int r = MapLocked({va, iova, len, fd, offset, Origin::kExternal});
  close(fd);  // the device holds its own reference (SCM_RIGHTS)
  if (r == 0) maps_.back().fd = -1;
  return r;
}

int DmaMapper::UnmapExternal(void* addr, uint64_t iova, size_t len) {
  const uintptr_t va = reinterpret_cast<uintptr_t>(addr);
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i < maps_.size(); ++i) {
    const Mapping& m = maps_[i];
    if (m.origin == Origin::kExternal && m.va == va && m.iova == iova && m.len == len) {
      return UnmapLocked(i);
    }
  }
  SIMNIC_LOG(ERR,
             "%s: dma_unmap: %p iova %#" PRIx64
             " len %zu is not a range mapped by dma_map "
             "(unmap exactly what was mapped)",
             port_name_.c_str(), addr, iova, len);
  return -EINVAL;
}

void DmaMapper::Clear() {
  std::lock_guard<std::mutex> lock(mu_);
  maps_.clear();
}

size_t DmaMapper::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return maps_.size();
}

std::vector<DmaMapper::Mapping> DmaMapper::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return maps_;
}

}  // namespace iovtee::simnic
