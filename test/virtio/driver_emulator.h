// A virtio DRIVER in plain memory, for tests of the device side (DeviceQueue).
//
// GuestArena is guest RAM: mmap'd regions with PROT_NONE guard pages around
// each, at a GPA base that is not 0, filled with a canary pattern so that a
// test can prove no byte outside the buffers it posted was ever written.
//
// VirtioDriver owns one virtqueue (split or packed) in an arena and posts
// buffers the way real drivers do: Linux virtio_net (mergeable, small, big
// packets, indirect tables when negotiated) and DPDK's virtio PMD (one
// descriptor per mbuf). It publishes with the barriers real drivers use, and
// reaps used buffers checking every id and length the device hands back.
// Anything the device does wrong is recorded in violations(), never crashes
// the driver.
//
// Raw hooks give tests and fuzzers direct access to every ring field, to
// build what no honest driver would.
//
// Single-threaded: one thread drives both the driver and the device side (the
// memory orderings are still the real ones, so a device on another thread
// would see what it would see from a guest).
#ifndef IOVTEE_TEST_VIRTIO_DRIVER_EMULATOR_H_
#define IOVTEE_TEST_VIRTIO_DRIVER_EMULATOR_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "src/guest/guest_memory.h"
#include "src/virtio/desc_chain.h"
#include "src/virtio/device_queue.h"
#include "src/virtio/ring_layout.h"

namespace iovtee::virtio::testing {

// [gpa, gpa + len) in guest physical addresses.
struct GpaRange {
  uint64_t gpa = 0;
  uint64_t len = 0;
};

// ---------------------------------------------------------------------------
// Guest RAM.

struct ArenaOptions {
  // GPA of the first region; never 0, so a zero address is always bad.
  uint64_t gpa_base = uint64_t{1} << 32;
  // One entry per region; each a multiple of 4096.
  std::vector<uint64_t> region_sizes = {uint64_t{32} << 20};
  // true: region i+1 starts in GPA right where region i ends (to test
  // buffers that cross regions). false: a 1 MiB hole between regions. In host
  // memory regions are never adjacent: a guard page separates them.
  bool gpa_adjacent = true;
};

class GuestArena {
 public:
  // Maps the regions (aborts the test binary if mmap fails) and fills them
  // with the canary pattern.
  explicit GuestArena(ArenaOptions options = {});
  ~GuestArena();
  GuestArena(const GuestArena&) = delete;
  GuestArena& operator=(const GuestArena&) = delete;

  // The table the device side translates through (built with
  // GuestMemory::Create over the arena's regions).
  const GuestMemory& memory() const { return *memory_; }
  size_t num_regions() const { return regions_.size(); }
  GpaRange region(size_t i) const { return {regions_[i].gpa, regions_[i].size}; }

  // The arena's own translation (independent of GuestMemory): a pointer to
  // `gpa`, or nullptr when gpa is not inside a region. The caller keeps
  // within the region.
  uint8_t* Host(uint64_t gpa) const;
  template <typename T>
  T* HostAs(uint64_t gpa) const {
    return reinterpret_cast<T*>(Host(gpa));
  }
  // The GPA of a host pointer into the arena, or UINT64_MAX.
  uint64_t Gpa(const uint8_t* host) const;

  // First-fit allocation inside one region (`region` >= 0) or any region
  // (-1). Returns the GPA, or 0 when nothing fits. `align` is a power of two.
  uint64_t Alloc(uint64_t len, uint64_t align = 64, int region = -1);
  // Allocates exactly [gpa, gpa + len) (which may cross GPA-adjacent regions);
  // false when any byte is outside the arena or already allocated.
  bool AllocAt(uint64_t gpa, uint64_t len);
  // Frees an allocation made by Alloc/AllocAt (by its start) and restores
  // the canary over it. Unknown addresses abort.
  void Free(uint64_t gpa);
  uint64_t allocated_bytes() const;

  // Copies to/from guest memory, crossing regions when they are GPA-adjacent.
  void Write(uint64_t gpa, absl::Span<const uint8_t> data);
  void Read(uint64_t gpa, absl::Span<uint8_t> out) const;

  // The canary byte expected at `gpa` (position-dependent, so that data
  // copied from elsewhere in the arena is caught too).
  static uint8_t Canary(uint64_t gpa);
  // Puts the canary back over [gpa, gpa + len).
  void RestoreCanary(uint64_t gpa, uint64_t len);
  // OK when every byte of every region outside `may_change` still holds its
  // canary; otherwise names the first few differing ranges.
  absl::Status CheckCanaries(absl::Span<const GpaRange> may_change) const;

 private:
  struct Region {
    uint64_t gpa;
    uint64_t size;
    uint8_t* host;
    std::map<uint64_t, uint64_t> free;  // gpa -> len, coalesced
  };
  Region* FindRegion(uint64_t gpa);
  const Region* FindRegion(uint64_t gpa) const;
  bool TakeFromFree(uint64_t gpa, uint64_t len);

  void* map_ = nullptr;
  size_t map_len_ = 0;
  std::vector<Region> regions_;
  std::map<uint64_t, uint64_t> allocations_;  // gpa -> len
  std::unique_ptr<GuestMemory> memory_;
};

// ---------------------------------------------------------------------------
// The driver.

// Which real driver a buffer imitates.
enum class PostStyle : uint8_t {
  kGeneric,         // Post(): caller-given segment lengths
  kCallerMemory,    // PostSegments(): caller-given GPAs, memory not owned
  kLinuxMergeable,  // one writable descriptor, hdr + EWMA-sized data, carved from 32 KiB frags
  kLinuxSmall,      // one writable descriptor, hdr_len + 1518, from page frags
  kLinuxBig,        // hdr + rest of first page + 17 pages: 19 descriptors (indirect if negotiated)
  kDpdkPmd,         // one descriptor per mbuf: buf_iova + 128 - hdr, 2048 + hdr
};
const char* PostStyleName(PostStyle style);

// Linux and DPDK constants the styles use.
inline constexpr uint32_t kGoodPacketLen = 1518;  // ETH_HLEN + VLAN_HLEN + ETH_DATA_LEN
inline constexpr uint32_t kPageSize = 4096;
inline constexpr uint32_t kMergeableFragSize = 32768;  // SKB_FRAG_PAGE_ORDER
inline constexpr int kLinuxBigDescs = 19;              // MAX_SKB_FRAGS + 2
inline constexpr uint32_t kDpdkHeadroom = 128;         // RTE_PKTMBUF_HEADROOM
inline constexpr uint32_t kDpdkDataRoom = 2048;        // RTE_MBUF_DEFAULT_DATAROOM
inline constexpr uint32_t kDpdkMbufHeader = 128;       // sizeof(struct rte_mbuf)

struct DriverOptions {
  RingLayout layout = RingLayout::kSplit;
  uint16_t size = 256;  // split: power of two
  // Negotiated features. VIRTIO_F_VERSION_1 is implied; VIRTIO_F_RING_PACKED
  // is added for the packed layout.
  uint64_t features = 0;
  uint32_t hdr_len = 12;  // virtio_net_hdr_mrg_rxbuf
  // Where both sides start, in QueueCursors encoding (packed: wrap counter in
  // bit 15), as after a ring that went round to there and is empty: the two
  // must be equal. Default: a fresh ring, split {0, 0}, packed
  // {0x8000, 0x8000} (wrap counters start at 1). Pass start_cursors() to
  // DeviceQueue::Create.
  std::optional<QueueCursors> start;
  // Put the ring parts at exactly their minimum alignment (split 16/2/4,
  // packed 16/4/4) instead of page-aligned, to catch a device that assumes
  // more.
  bool tight_ring_alignment = false;
  int ring_region = 0;  // arena region holding the rings
  // Copy the first `len` bytes of each reaped buffer into Completion::data.
  bool copy_data_on_reap = true;
  uint32_t seed = 1;  // reserved for randomised styles; no style uses it yet
};

// One piece of a buffer as the driver posts it.
struct Segment {
  uint64_t gpa = 0;
  uint32_t len = 0;
  bool writable = true;
};

// A buffer the driver made available and has not reaped.
struct PostedBuffer {
  uint16_t id = 0;
  PostStyle style = PostStyle::kGeneric;
  std::vector<Segment> segments;  // the data segments (not the indirect table)
  uint32_t writable_len = 0;      // sum of writable segment lengths
  bool indirect = false;
  uint64_t indirect_table = 0;        // GPA of the table, 0 if direct
  uint16_t ring_descs = 0;            // descriptors taken in the ring (split table / packed ring)
  std::vector<uint16_t> split_descs;  // split: the descriptor indexes, head first
  bool published = false;
};

// A used buffer as the driver reaped it.
struct Completion {
  uint16_t id = 0;
  uint32_t len = 0;
  PostStyle style = PostStyle::kGeneric;
  std::vector<uint8_t> data;  // first min(len, writable_len) bytes, if copy_data_on_reap
};

struct PublishResult {
  uint16_t published = 0;
  bool kick = false;  // the device's suppression rules ask for a notification
};

class VirtioDriver {
 public:
  // Allocates the ring in `arena` (which must outlive the driver) and
  // initialises it for options.start. Aborts on bad options.
  VirtioDriver(GuestArena* arena, DriverOptions options);
  ~VirtioDriver();
  VirtioDriver(const VirtioDriver&) = delete;
  VirtioDriver& operator=(const VirtioDriver&) = delete;

  // What DeviceQueue::Create needs (direction kDeviceWrites), and the
  // matching starting cursors.
  QueueConfig device_config() const;
  QueueCursors start_cursors() const { return start_; }
  const GuestMemory& memory() const { return arena_->memory(); }
  GuestArena& arena() const { return *arena_; }
  const DriverOptions& options() const { return options_; }
  RingLayout layout() const { return options_.layout; }
  uint16_t size() const { return options_.size; }
  bool has_feature(int bit) const { return (features_ >> bit) & 1; }

  // --- Posting. Each returns the buffer id, or nullopt when the ring has no
  // room (descriptors, ring slots or ids) or the arena no memory. Buffers
  // become visible to the device only at Publish().

  // One buffer of `lengths.size()` segments, each allocated separately. Uses
  // an indirect table when `indirect` (the feature is not checked: a test may
  // want the device to refuse it).
  std::optional<uint16_t> Post(absl::Span<const uint32_t> lengths, bool writable = true,
                               bool indirect = false);
  // A buffer over caller-chosen guest addresses (may cross regions, may be
  // outside guest memory: nothing is checked). The memory stays the caller's.
  std::optional<uint16_t> PostSegments(absl::Span<const Segment> segments, bool indirect = false);
  // Linux virtio_net add_recvbuf_mergeable: one writable descriptor of
  // ALIGN(hdr_len + clamp(avg, 1518, 4096 - hdr_len), 64) bytes carved from a
  // 32 KiB frag; the last buffer of a frag absorbs the hole. `avg` defaults
  // to the driver's EWMA of reaped mergeable lengths.
  std::optional<uint16_t> PostLinuxMergeable(std::optional<uint32_t> avg = std::nullopt);
  // Linux add_recvbuf_small: one descriptor of hdr_len + 1518 at
  // VIRTNET_RX_PAD (64) into a 1920-byte page-frag slot.
  std::optional<uint16_t> PostLinuxSmall();
  // Linux add_recvbuf_big: hdr_len at the start of a page, the same page from
  // offset 32 (sizeof(struct padded_vnet_hdr)), then 17 full pages. Indirect when
  // VIRTIO_RING_F_INDIRECT_DESC is negotiated (Linux: total_sg > 1). This is
  // the guest-GSO layout (MAX_SKB_FRAGS frags). The spec forbids chains longer
  // than the queue size, indirect tables included: use a queue of 19 or more.
  // (Linux >= 6.0 without guest GSO sizes big buffers by MTU instead.)
  std::optional<uint16_t> PostLinuxBig();
  // DPDK virtio PMD Rx refill: one writable descriptor per mbuf. Packed uses
  // the id the device last wrote in the slot when it is free (as the PMD
  // does), else the free-id list.
  std::optional<uint16_t> PostDpdk();
  // One of the above chosen by `style` (kGeneric: one 2 KiB segment).
  std::optional<uint16_t> PostStyled(PostStyle style);

  // Makes every posted, unpublished buffer available, in posting order.
  // Split: ring entries, then a release store of avail->idx. Packed: each
  // chain's non-head descriptors were written at Post; here each head's
  // flags, with release semantics, in order.
  PublishResult Publish();

  // Consumes up to `max` used entries, appending to `out`. Split: acquire on
  // used->idx; packed: acquire on each used descriptor's flags. Checks every
  // entry (id known, outstanding and published; len <= writable_len; an
  // indirect table left unmodified) and records violations; after an unknown id the driver
  // stops reaping (it cannot know how far to advance). Owned buffer memory
  // gets its canary back. Returns how many were reaped.
  size_t Reap(std::vector<Completion>* out, size_t max = SIZE_MAX);
  std::vector<Completion> ReapAll();
  // True when a used entry is waiting (no consumption).
  bool HasUsed() const;

  // --- State.
  size_t outstanding() const { return buffers_.size(); }  // posted and not reaped
  size_t unpublished() const { return pending_.size(); }
  const PostedBuffer* buffer(uint16_t id) const;
  std::vector<uint16_t> outstanding_ids() const;
  // Split: free descriptors; packed: free ring slots.
  uint16_t free_descs() const;
  uint64_t posted_total() const { return posted_total_; }
  uint64_t reaped_total() const { return reaped_total_; }
  // Everything the device did wrong, in order. Empty for a correct device.
  const std::vector<std::string>& violations() const { return violations_; }
  // Guest ranges the device may legitimately have written: ring parts,
  // indirect tables, writable segments of outstanding buffers, and caller-
  // memory buffers ever posted.
  std::vector<GpaRange> MayChangeRanges() const;
  // Canaries over the whole arena, excluding MayChangeRanges(); plus a
  // check that the device did not modify driver-only ring memory (split
  // descriptor table and avail ring, indirect tables) behind the driver's
  // back. Raw hooks that write those areas call ResyncShadow() afterwards.
  absl::Status CheckIntegrity() const;
  void ResyncShadow();

  // The oracle for Fetch: OK when `chain` is exactly a buffer this driver
  // posted and published and has not reaped: same id; its writable segments
  // in order, empty ones dropped, split where they cross a region, with host
  // pointers from the arena's own translation; len the sum; ring_slots the
  // descriptors the buffer took in a packed ring (split: 1).
  absl::Status CheckFetched(const DescChain& chain) const;

  // Split: the next avail->idx / the driver's last seen used idx (free
  // running). Packed: next avail / used ring position with the wrap counter
  // in bit 15 (QueueCursors encoding).
  uint16_t next_avail() const;
  uint16_t next_used() const;
  uint32_t mergeable_avg() const { return ewma_avg_; }

  // --- Raw hooks. Nothing is checked and no bookkeeping changes, unless
  // said. Pointers are into guest memory (little-endian).
  // Split.
  SplitDesc* split_desc(uint16_t i) const;
  uint16_t* split_avail_flags() const;
  uint16_t* split_avail_idx() const;
  uint16_t* split_avail_ring(uint16_t slot) const;
  uint16_t* split_used_event() const;  // avail->ring[size]
  const uint16_t* split_used_flags() const;
  const uint16_t* split_used_idx() const;
  const UsedElem* split_used_elem(uint16_t slot) const;
  const uint16_t* split_avail_event() const;  // used->ring[size]
  // Packed.
  PackedDesc* packed_desc(uint16_t i) const;
  PackedEvent* packed_driver_event() const;
  const PackedEvent* packed_device_event() const;
  // Ring part GPAs.
  uint64_t desc_gpa() const { return desc_gpa_; }
  uint64_t driver_area_gpa() const { return driver_gpa_; }
  uint64_t device_area_gpa() const { return device_gpa_; }

  // Split: writes avail->ring[next & mask] = head and release-stores
  // avail->idx = next + 1; the driver's next avail advances. Not tracked as
  // outstanding: a used entry for it is a violation unless expected.
  void RawPublishSplit(uint16_t head);
  // Packed: writes `descs` at the next ring positions, ORing the AVAIL/USED
  // bits of the current wrap (flipping at the ring end) into each flags, the
  // first descriptor's flags last with release; the next avail advances. Not
  // tracked.
  void RawPublishPacked(absl::Span<const PackedDesc> descs);
  // Packed flags that mark a descriptor available for wrap counter `wrap`.
  static uint16_t PackedAvailFlags(bool wrap) { return wrap ? kDescFAvail : kDescFUsed; }

 private:
  struct Frag {
    uint64_t gpa = 0;
    uint32_t size = 0;
    uint32_t offset = 0;
    int refs = 0;
  };
  struct Owned {  // arena allocations a buffer owns
    std::vector<uint64_t> allocs;
    int frag = -1;  // index into frags_, or -1
  };

  std::optional<uint16_t> PostInternal(PostStyle style, std::vector<Segment> segs, bool indirect,
                                       Owned owned, std::optional<uint16_t> wanted_id);
  // Carves `len` bytes from the style's current 32 KiB frag (a new one when
  // it is too full); with `absorb_hole` the last buffer takes the rest.
  bool CarveFrag(int* current, uint32_t len, bool absorb_hole, uint64_t* gpa, uint32_t* out_len);
  void UnrefFrag(int frag);
  void ReleaseOwned(const PostedBuffer& b, const Owned& owned);
  std::optional<uint16_t> TakePackedId(std::optional<uint16_t> wanted);
  bool Retire(uint16_t id, uint32_t len, std::vector<Completion>* out);
  void Violation(std::string what);
  bool KickNeeded(uint16_t old_avail, uint16_t new_avail) const;
  uint16_t* avail_u16(size_t index) const;
  void SnapshotShadow();

  GuestArena* arena_;
  DriverOptions options_;
  QueueCursors start_;
  uint64_t features_;
  uint64_t desc_gpa_ = 0, driver_gpa_ = 0, device_gpa_ = 0;
  uint8_t* desc_ = nullptr;
  uint8_t* driver_ = nullptr;
  uint8_t* device_ = nullptr;

  // Split: free descriptor stack (Linux free_head LIFO), avail and used
  // free-running indexes. Packed: positions and wrap counters, free ids.
  std::vector<uint16_t> free_descs_;
  uint16_t avail_idx_ = 0;
  uint16_t used_idx_ = 0;
  uint16_t avail_pos_ = 0;
  bool avail_wrap_ = true;
  uint16_t used_pos_ = 0;
  bool used_wrap_ = true;
  uint16_t free_slots_ = 0;
  std::vector<uint16_t> free_ids_;
  std::vector<bool> id_free_;

  std::map<uint16_t, PostedBuffer> buffers_;  // by id
  std::map<uint16_t, Owned> owned_;
  struct PendingHead {
    uint16_t id;
    uint16_t head_pos;    // packed: ring position of the head
    uint16_t head_flags;  // packed: flags to store at Publish
    uint16_t descs;       // packed: ring slots the chain took
  };
  std::vector<PendingHead> pending_;  // posted, not published, in order
  std::vector<uint64_t> ring_allocs_;
  std::vector<Frag> frags_;
  int mergeable_frag_ = -1;
  int small_frag_ = -1;
  std::vector<GpaRange> caller_memory_;                       // PostSegments ranges, ever
  std::map<uint64_t, std::vector<uint8_t>> indirect_shadow_;  // table gpa -> contents
  std::vector<uint8_t> shadow_desc_;   // split desc table as the driver wrote it
  std::vector<uint8_t> shadow_avail_;  // split avail ring as the driver wrote it
  uint32_t ewma_avg_ = 0;              // ewma_pkt_len: reads 0 until the first sample
  uint64_t ewma_samples_ = 0;
  bool reap_stopped_ = false;
  uint64_t posted_total_ = 0;
  uint64_t reaped_total_ = 0;
  std::vector<std::string> violations_;
};

// ---------------------------------------------------------------------------
// Device-side helpers for tests.

// A DeviceQueue over a driver's ring, acting as an Rx device: it fetches
// (checking each chain against the driver with CheckFetched), writes pattern
// data into what it holds, returns in any order, and verifies what the driver
// reaps against what it wrote. Mismatches go to errors(); nothing aborts.
class DeviceModel {
 public:
  // A DeviceQueue from the driver's config, starting at `cursors` (default:
  // the driver's start cursors).
  static absl::StatusOr<std::unique_ptr<DeviceModel>> Create(
      VirtioDriver* driver, std::optional<QueueCursors> cursors = std::nullopt);

  DeviceQueue& queue() { return *queue_; }
  // Fetches up to `max` chains, `burst` per DeviceQueue::Fetch call. Returns
  // the ids in fetch order.
  std::vector<uint16_t> Fetch(size_t max = SIZE_MAX, uint16_t burst = 32);
  const DescChain* held(uint16_t id) const;
  std::vector<uint16_t> held_ids() const;  // in fetch order
  // Writes min(len, chain.len) pattern bytes into held chain `id`; returns
  // how many. The used len is what was written last (0 if never).
  uint32_t Write(uint16_t id, uint32_t len);
  // Returns `ids` in this order with one DeviceQueue::Return call; ids the
  // model does not hold are passed through too (to test bad returns).
  // Returns what DeviceQueue::Return returned.
  uint16_t Return(absl::Span<const uint16_t> ids);
  // Checks a completion: its id was returned and not verified since, len
  // and data are what was written.
  absl::Status Verify(const Completion& c);
  // Verify for each; appends failures to errors().
  void VerifyAll(absl::Span<const Completion> cs);
  // Drops the queue and creates a new one from its cursors (a backend
  // reconnect). Chains held by the old queue stay held by the model.
  absl::Status Reconnect();
  size_t returned_unverified() const { return returned_.size(); }
  const std::vector<std::string>& errors() const { return errors_; }

 private:
  struct Held {
    DescChain chain;
    std::vector<uint8_t> written;
  };
  DeviceModel(VirtioDriver* driver, std::unique_ptr<DeviceQueue> queue)
      : driver_(driver), queue_(std::move(queue)) {}

  VirtioDriver* driver_;
  std::unique_ptr<DeviceQueue> queue_;
  std::vector<uint16_t> order_;                        // held ids, fetch order
  std::map<uint16_t, std::unique_ptr<Held>> held_;     // by id
  std::map<uint16_t, std::vector<uint8_t>> returned_;  // by id: written data
  std::vector<DescChain> burst_;
  uint32_t seed_ = 1;
  std::vector<std::string> errors_;
};

// Deterministic bytes for (seed, index).
std::vector<uint8_t> PatternBytes(uint32_t len, uint32_t seed);
// Scatters `data` over the chain's segments in order; returns bytes written
// (min of data.size() and chain.len).
uint32_t WriteToChain(const DescChain& chain, absl::Span<const uint8_t> data);
// Writes PatternBytes(min(len, chain.len), seed) into the chain and returns
// the bytes written (what a test then expects the driver to read).
std::vector<uint8_t> FillChain(const DescChain& chain, uint32_t len, uint32_t seed);
// The UsedBuffer that returns `chain` with `len` bytes written.
inline UsedBuffer UsedFor(const DescChain& chain, uint32_t len) {
  return UsedBuffer{chain.id, len};
}

}  // namespace iovtee::virtio::testing

#endif  // IOVTEE_TEST_VIRTIO_DRIVER_EMULATOR_H_
