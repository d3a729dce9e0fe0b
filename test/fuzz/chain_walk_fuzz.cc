// Fuzzes descriptor-chain walking: the input is a whole guest (one or two
// small regions, each an exactly sized heap block) plus the ring contents and
// the queue's configuration. The device fetches in bursts; every chain it
// hands out must lie inside guest memory, add up, and fit kMaxChainSegments;
// everything fetched is returned (random order and lengths, plus a bogus id
// now and then) and the used entries are checked.
//
// Input format (little-endian; bytes past the end read as zero):
//   [0]     flags: kPacked, kIndirect, kEventIdx, kDeviceReads, kRingsInRegion,
//           kTwoRegions, kRawCursors (see below)
//   [1]     queue size: split 1 << (b % 9), packed 1 + b (raw: split b, packed b)
//   [2..5]  last_avail_idx, last_used_idx (sanitised to a legal start unless
//           kRawCursors)
//   [6]     burst size 1 + b % 32;  [7] rounds 1 + b % 8
//   [8..11] region sizes, 1 + v % 16384 each (region 0 grows to hold the rings
//           when kRingsInRegion)
//   [12]    region 1 GPA: b % 3 == 0 adjacent to region 0, 1 after a 1 MiB
//           hole, 2 at the top of the 64-bit space
//   [13..15] seed for return order and lengths, kicks, bogus returns
//   then:   descriptor area, driver area, device area (unless kRingsInRegion),
//           region 0 bytes, region 1 bytes.
// Region 0 is at GPA kRegion0Gpa (4 GiB, as the driver emulator puts it).
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <optional>
#include <vector>

#include "src/guest/guest_memory.h"
#include "src/virtio/desc_chain.h"
#include "src/virtio/device_queue.h"
#include "src/virtio/ring_layout.h"
#include "test/fuzz/chain_walk_format.h"
#include "test/fuzz/fuzz_util.h"

namespace iovtee::virtio::fuzz {
namespace {

DescChain g_chains[32];
uint16_t g_ring_slots_of[65536];  // by id: what Fetch said the chain took

int Run(const uint8_t* data, size_t size) {
  InputReader in(data, size);
  const uint8_t flags = in.U8();
  const RingLayout layout = (flags & kCwPacked) ? RingLayout::kPacked : RingLayout::kSplit;
  const bool raw = flags & kCwRawCursors;
  const uint8_t size_sel = in.U8();
  uint16_t qsize;
  if (raw) {
    qsize = size_sel;
  } else if (layout == RingLayout::kSplit) {
    qsize = static_cast<uint16_t>(1u << (size_sel % 9));
  } else {
    qsize = static_cast<uint16_t>(1 + size_sel);
  }
  QueueCursors cursors{in.U16(), in.U16()};
  if (!raw && qsize > 0) {
    if (layout == RingLayout::kSplit) {
      cursors.last_used_idx = cursors.last_avail_idx;
    } else {
      cursors.last_avail_idx = static_cast<uint16_t>((cursors.last_avail_idx & 0x8000) |
                                                     ((cursors.last_avail_idx & 0x7fff) % qsize));
      cursors.last_used_idx = cursors.last_avail_idx;
    }
  }
  const uint32_t burst = 1 + in.U8() % 32;
  const uint32_t rounds = 1 + in.U8() % 8;
  size_t region_size[2] = {1 + in.U16() % 16384u, 1 + in.U16() % 16384u};
  const uint8_t placement = in.U8() % 3;
  const uint32_t seed = in.U16();
  Rng rng(seed | (uint32_t{in.U8()} << 16));

  // The rings: their own exact blocks, or the start of region 0.
  const size_t desc_bytes = DescBytes(layout, qsize);
  const size_t driver_bytes = DriverAreaBytes(layout, qsize);
  const size_t device_bytes = DeviceAreaBytes(layout, qsize);
  std::vector<std::unique_ptr<ExactBuffer>> blocks;
  QueueConfig config;
  config.layout = layout;
  config.size = qsize;
  config.features = FeatureBits(layout, flags & kCwIndirect, flags & kCwEventIdx);
  config.direction = (flags & kCwDeviceReads) ? Direction::kDeviceReads : Direction::kDeviceWrites;
  const bool rings_in_region = flags & kCwRingsInRegion;
  if (!rings_in_region) {
    for (size_t n : {desc_bytes, driver_bytes, device_bytes}) {
      blocks.push_back(std::make_unique<ExactBuffer>(n));
      in.Bytes(absl::MakeSpan(blocks.back()->data(), n));
    }
    config.desc = blocks[0]->data();
    config.driver_area = blocks[1]->data();
    config.device_area = blocks[2]->data();
  }
  const size_t device_off = (desc_bytes + driver_bytes + 3) & ~size_t{3};
  if (rings_in_region) region_size[0] = std::max(region_size[0], device_off + device_bytes);

  const int nregions = (flags & kCwTwoRegions) ? 2 : 1;
  std::vector<GuestRegion> regions;
  std::vector<std::unique_ptr<ExactBuffer>> ram;
  for (int i = 0; i < nregions; ++i) {
    ram.push_back(std::make_unique<ExactBuffer>(region_size[i]));
    in.Bytes(absl::MakeSpan(ram.back()->data(), region_size[i]));
    GuestRegion r;
    r.size = region_size[i];
    r.host = ram.back()->data();
    if (i == 0) {
      r.guest_phys_addr = kRegion0Gpa;
    } else {
      r.guest_phys_addr = RegionOneGpa(placement, region_size[0], region_size[1]);
    }
    r.guest_user_addr = r.guest_phys_addr;
    regions.push_back(r);
  }
  if (rings_in_region) {
    config.desc = ram[0]->data();
    config.driver_area = ram[0]->data() + desc_bytes;
    config.device_area = ram[0]->data() + device_off;
  }
  auto memory = GuestMemory::Create(regions);
  FUZZ_CHECK(memory.ok(), "GuestMemory::Create: %s", memory.status().ToString().c_str());

  auto created = DeviceQueue::Create(config, memory->get(), cursors);
  if (!created.ok()) {
    FUZZ_CHECK(raw, "Create refused a legal queue: %s", created.status().ToString().c_str());
    return 0;
  }
  DeviceQueue& q = **created;

  std::vector<UsedBuffer> used;
  std::vector<ReturnedBuffer> expect;
  for (uint32_t round = 0; round < rounds; ++round) {
    if (rng.Below(4) == 0) q.EnableKicks(rng.Below(2));
    const bool hinted = q.HasAvailable();
    const bool was_broken = q.broken();
    const uint16_t n = q.Fetch(absl::MakeSpan(g_chains, burst));
    FUZZ_CHECK(n <= burst, "Fetch returned %u for a burst of %u", n, burst);
    if (was_broken) FUZZ_CHECK(n == 0, "a broken queue fetched %u chains", n);
    if (!hinted && !was_broken)
      FUZZ_CHECK(n == 0 && !q.broken(), "fetched %u with nothing available", n);
    if (hinted && !was_broken) FUZZ_CHECK(n > 0 || q.broken(), "available, but Fetch got 0");
    FUZZ_CHECK(q.in_flight() == n, "in_flight %u after fetching %u", q.in_flight(), n);
    FUZZ_CHECK(q.in_flight() <= qsize, "in_flight %u > size %u", q.in_flight(), qsize);

    used.clear();
    for (uint16_t i = 0; i < n; ++i) {
      const DescChain& c = g_chains[i];
      CheckChain(c, config, **memory, regions);
      for (uint16_t j = 0; j < i; ++j) {
        FUZZ_CHECK(g_chains[j].id != c.id, "id %u fetched twice in one burst", c.id);
      }
      g_ring_slots_of[c.id] = c.ring_slots;
      uint32_t len = 0;
      if (config.direction == Direction::kDeviceWrites && c.len > 0) {
        len = rng.Below(4) == 0 ? c.len : rng.Below(c.len + 1);
      }
      used.push_back(UsedBuffer{c.id, len});
    }
    // Out of order, as the datapath completes them.
    for (size_t i = used.size(); i > 1; --i) std::swap(used[i - 1], used[rng.Below(i)]);
    // A caller bug now and then: an id the device does not hold.
    int bogus_at = -1;
    if (rng.Below(4) == 0) {
      const uint16_t id = static_cast<uint16_t>(rng.Next());
      bool held = false;
      for (const UsedBuffer& u : used) held = held || u.id == id;
      if (!held) {
        bogus_at = static_cast<int>(rng.Below(static_cast<uint32_t>(used.size()) + 1));
        used.insert(used.begin() + bogus_at, UsedBuffer{id, 0});
      }
    }
    expect.clear();
    for (int i = 0; i < static_cast<int>(used.size()); ++i) {
      if (i != bogus_at) expect.push_back({used[i].id, g_ring_slots_of[used[i].id], used[i].len});
    }
    const uint64_t bad_before = q.stats().bad_returns;
    const QueueCursors before = q.cursors();
    const uint16_t returned = q.Return(used);
    FUZZ_CHECK(returned == n, "Return took %u of %u held buffers", returned, n);
    FUZZ_CHECK(q.stats().bad_returns == bad_before + (bogus_at >= 0 ? 1 : 0),
               "bad_returns %llu, expected %llu",
               static_cast<unsigned long long>(q.stats().bad_returns),
               static_cast<unsigned long long>(bad_before + (bogus_at >= 0 ? 1 : 0)));
    CheckUsedWrites(config, before, q.cursors(), expect);
    FUZZ_CHECK(q.in_flight() == 0, "in_flight %u after returning everything", q.in_flight());
    q.NotifyDue();
    FUZZ_CHECK(!q.NotifyDue(), "a second NotifyDue with nothing returned said yes");
    if (q.broken() && n == 0) break;
  }
  if (Verbose()) PrintSummary("chain_walk", q);
  const QueueStats& st = q.stats();
  FUZZ_CHECK(st.fetched == st.returned, "fetched %llu, returned %llu",
             static_cast<unsigned long long>(st.fetched),
             static_cast<unsigned long long>(st.returned));
  return 0;
}

}  // namespace
}  // namespace iovtee::virtio::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return iovtee::virtio::fuzz::Run(data, size);
}
