// Fuzzes a queue over a long life: the input is a script that interleaves an
// honest driver (the test driver emulator posting, publishing and reaping the
// way Linux and DPDK do), hostile driver writes (arbitrary bytes into
// descriptors, avail idx, flags and event fields), and the device's Fetch,
// Return, NotifyDue, EnableKicks and reconnects from its cursors.
//
// Invariants, checked after every operation:
//   - the device never holds more than the queue size, and in_flight() is
//     exactly what the harness fetched and has not returned;
//   - Return writes exactly the used entries for ids the device held, in
//     order: no id reaches the driver twice without being fetched again;
//     ids the device does not hold are refused and counted;
//   - a broken() queue fetches nothing; split cursors stay in_flight apart;
//   - while the script has made no hostile write and posted only legal
//     buffers, the queue never breaks, the driver sees no violation, and no
//     guest byte outside the posted buffers and the rings changes.
//
// Input: [0] flags (kOpsPacked, kOpsIndirect, kOpsEventIdx, kOpsTightRings),
// [1] size (split 1 << (b % 8), packed 1 + b % 128), [2..3] start cursor,
// [4] seed, then operations: an opcode byte and its operands (see Op).
#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "src/guest/guest_memory.h"
#include "src/virtio/desc_chain.h"
#include "src/virtio/device_queue.h"
#include "src/virtio/ring_layout.h"
#include "test/fuzz/fuzz_util.h"
#include "test/fuzz/ring_ops_format.h"
#include "test/virtio/driver_emulator.h"

namespace iovtee::virtio::fuzz {
namespace {

using testing::ArenaOptions;
using testing::Completion;
using testing::DriverOptions;
using testing::GuestArena;
using testing::PostStyle;
using testing::VirtioDriver;

DescChain g_chains[32];

struct Held {
  uint16_t id;
  uint16_t ring_slots;
  uint32_t len;  // chain length: the most the device may report written
};

class Harness {
 public:
  Harness(InputReader& in, uint8_t flags, uint16_t size, QueueCursors start, uint64_t seed)
      : in_(in), rng_(seed), size_(size) {
    ArenaOptions ao;
    ao.gpa_base = kOpsGpaBase;
    ao.region_sizes = {kOpsRegionBytes, kOpsRegionBytes};
    ao.gpa_adjacent = true;
    arena_ = std::make_unique<GuestArena>(ao);
    DriverOptions o;
    o.layout = (flags & kOpsPacked) ? RingLayout::kPacked : RingLayout::kSplit;
    o.size = size;
    o.features = FeatureBits(o.layout, flags & kOpsIndirect, flags & kOpsEventIdx);
    o.start = start;
    o.tight_ring_alignment = flags & kOpsTightRings;
    o.copy_data_on_reap = false;
    o.seed = static_cast<uint32_t>(seed);
    driver_ = std::make_unique<VirtioDriver>(arena_.get(), o);
    config_ = driver_->device_config();
    indirect_ = flags & kOpsIndirect;
    auto q = DeviceQueue::Create(config_, &arena_->memory(), driver_->start_cursors());
    FUZZ_CHECK(q.ok(), "Create: %s", q.status().ToString().c_str());
    queue_ = std::move(*q);
  }

  void Run() {
    for (int op = 0; op < kOpsMaxOps && !in_.empty(); ++op) {
      Step(static_cast<Op>(in_.U8() % kOpCount));
      if (!CheckInvariants()) return;  // a known bug, tolerated: nothing more to learn
    }
    // Drain: everything still held goes back; an honest script ends clean.
    ReturnSome(static_cast<uint32_t>(held_.size()));
    CheckInvariants();
    if (Verbose()) {
      PrintSummary(hostile_ ? "ring_ops (hostile)" : "ring_ops (honest)", *queue_);
      std::fprintf(stderr, "  driver: posted %llu reaped %llu violations %zu\n",
                   static_cast<unsigned long long>(driver_->posted_total()),
                   static_cast<unsigned long long>(driver_->reaped_total()),
                   driver_->violations().size());
    }
    if (honest()) {
      std::vector<Completion> done;
      driver_->Reap(&done);
      CheckDriverClean();
      const absl::Status s = driver_->CheckIntegrity();
      FUZZ_CHECK(s.ok(), "honest script, guest memory damaged: %s", s.ToString().c_str());
    }
  }

 private:
  bool honest() const { return !hostile_; }
  bool packed() const { return config_.layout == RingLayout::kPacked; }

  void Step(Op op) {
    switch (op) {
      case kOpPost: {
        const int nseg = 1 + in_.U8() % 4;
        std::vector<uint32_t> lens;
        for (int i = 0; i < nseg; ++i) lens.push_back(1 + in_.U16() % 4096);
        const uint8_t mode = in_.U8();
        const bool indirect = mode & 1;
        const bool writable = (mode & 14) != 14;  // mostly writable
        // What the device must refuse, or the spec forbids the driver (an
        // indirect table longer than the queue size).
        if (!writable || (indirect && (!indirect_ || nseg > size_))) hostile_ = true;
        driver_->Post(lens, writable, indirect);
        break;
      }
      case kOpPostStyled: {
        static constexpr PostStyle kStyles[] = {PostStyle::kLinuxMergeable, PostStyle::kLinuxSmall,
                                                PostStyle::kLinuxBig, PostStyle::kDpdkPmd,
                                                PostStyle::kGeneric};
        const PostStyle style = kStyles[in_.U8() % 5];
        // Linux sizes big-packet chains to the ring; the emulator does not.
        if (style == PostStyle::kLinuxBig && indirect_ && size_ < testing::kLinuxBigDescs) {
          hostile_ = true;
        }
        driver_->PostStyled(style);
        break;
      }
      case kOpPublish:
        driver_->Publish();
        break;
      case kOpFetch:
        Fetch(1 + in_.U8() % 32);
        break;
      case kOpReturn:
        ReturnSome(in_.U8() % 33);
        break;
      case kOpNotify:
        queue_->NotifyDue();
        break;
      case kOpKicks:
        queue_->EnableKicks(in_.U8() & 1);
        break;
      case kOpReap: {
        std::vector<Completion> done;
        driver_->Reap(&done, 1 + in_.U8() % 64);
        if (honest()) CheckDriverClean();
        break;
      }
      case kOpHostileDesc: {
        const uint16_t i = in_.U16() % size_;
        uint8_t raw[16];
        in_.Bytes(absl::MakeSpan(raw));
        void* d = packed() ? static_cast<void*>(driver_->packed_desc(i))
                           : static_cast<void*>(driver_->split_desc(i));
        std::memcpy(d, raw, sizeof(raw));
        hostile_ = true;
        break;
      }
      case kOpHostileField:
        HostileField();
        break;
      case kOpRawPublish:
        RawPublish();
        break;
      case kOpReconnect:
        Reconnect();
        break;
      case kOpCount:
        break;
    }
  }

  void Fetch(uint32_t burst) {
    const bool was_broken = queue_->broken();
    const uint16_t n = queue_->Fetch(absl::MakeSpan(g_chains, burst));
    FUZZ_CHECK(n <= burst, "Fetch returned %u for a burst of %u", n, burst);
    if (was_broken) FUZZ_CHECK(n == 0, "a broken queue fetched %u chains", n);
    if (honest()) {
      FUZZ_CHECK(!queue_->broken(), "an honest driver broke the queue: %s",
                 ChainErrorName(queue_->last_error()));
    }
    for (uint16_t i = 0; i < n; ++i) {
      const DescChain& c = g_chains[i];
      CheckChain(c, config_, arena_->memory(), arena_->memory().regions());
      for (const Held& h : held_) {
        FUZZ_CHECK(h.id != c.id, "id %u fetched again while the device holds it", c.id);
      }
      held_.push_back({c.id, c.ring_slots, c.len});
    }
  }

  // Returns up to `k` held buffers, picked at random, with random lengths;
  // sometimes with an id the device does not hold mixed in.
  void ReturnSome(uint32_t k) {
    std::vector<UsedBuffer> used;
    std::vector<ReturnedBuffer> expect;
    int bogus_at = -1;
    while (used.size() < k && !held_.empty()) {
      const size_t pick = rng_.Below(static_cast<uint32_t>(held_.size()));
      const Held h = held_[pick];
      held_.erase(held_.begin() + static_cast<std::ptrdiff_t>(pick));
      uint32_t len = rng_.Below(4) == 0 ? h.len : rng_.Below(h.len + 1);
      used.push_back({h.id, len});
      expect.push_back({h.id, h.ring_slots, len});
    }
    if (rng_.Below(8) == 0) {
      uint16_t id = static_cast<uint16_t>(rng_.Below(packed() ? 65536 : size_ * 2u));
      bool held = false;
      for (const Held& h : held_) held = held || h.id == id;
      for (const UsedBuffer& u : used) held = held || u.id == id;
      if (!held) {
        bogus_at = static_cast<int>(rng_.Below(static_cast<uint32_t>(used.size()) + 1));
        used.insert(used.begin() + bogus_at, UsedBuffer{id, 0});
      }
    }
    // A buffer returned twice in one call: the second must be refused.
    if (!used.empty() && rng_.Below(8) == 0) {
      used.push_back(used[rng_.Below(static_cast<uint32_t>(used.size()))]);
    }
    const uint64_t bad_before = queue_->stats().bad_returns;
    const QueueCursors before = queue_->cursors();
    const uint16_t n = queue_->Return(used);
    FUZZ_CHECK(n == expect.size(), "Return took %u, expected %zu", n, expect.size());
    const uint64_t bad = queue_->stats().bad_returns - bad_before;
    FUZZ_CHECK(bad == used.size() - expect.size(), "bad_returns +%llu, expected +%zu",
               static_cast<unsigned long long>(bad), used.size() - expect.size());
    CheckUsedWrites(config_, before, queue_->cursors(), expect);
  }

  void HostileField() {
    const uint8_t which = in_.U8();
    const uint16_t v = in_.U16();
    const uint16_t index = in_.U16() % size_;
    hostile_ = true;
    if (packed()) {
      PackedEvent* ev = driver_->packed_driver_event();
      switch (which % 3) {
        case 0:
          ev->off_wrap = v;
          break;
        case 1:
          ev->flags = v;
          break;
        default:  // the flags of one descriptor: makes it (un)available
          driver_->packed_desc(index)->flags = v;
          break;
      }
      return;
    }
    switch (which % 4) {
      case 0:
        *driver_->split_avail_idx() = v;
        break;
      case 1:
        *driver_->split_avail_flags() = v;
        break;
      case 2:
        *driver_->split_used_event() = v;
        break;
      default:
        *driver_->split_avail_ring(index) = v;
        break;
    }
  }

  void RawPublish() {
    hostile_ = true;
    if (!packed()) {
      driver_->RawPublishSplit(in_.U16());
      return;
    }
    PackedDesc d[3];
    const int n = 1 + in_.U8() % 3;
    for (int i = 0; i < n; ++i) {
      d[i].addr = in_.U8() & 1 ? kOpsGpaBase + in_.U16() * 4u : in_.U64();
      d[i].len = in_.U16();
      d[i].id = in_.U16();
      d[i].flags = static_cast<uint16_t>(in_.U8() & (kDescFNext | kDescFWrite | kDescFIndirect));
    }
    driver_->RawPublishPacked(absl::MakeConstSpan(d, n));
  }

  // A vhost reconnect: the device's state survives only as its cursors, so
  // it is legal only with nothing held.
  void Reconnect() {
    const QueueCursors c = queue_->cursors();
    // Bounded: a packed queue costs 136 KiB of tables to create, which
    // dominates the run time under ASan.
    if (!held_.empty() || reconnects_ == kOpsMaxReconnects) return;
    ++reconnects_;
    auto q = DeviceQueue::Create(config_, &arena_->memory(), c);
    FUZZ_CHECK(q.ok(), "Create from the queue's own cursors: %s", q.status().ToString().c_str());
    queue_ = std::move(*q);
  }

  // False when a known bug named in IOVTEE_FUZZ_KNOWN_BUGS showed (for long
  // campaigns that must go past it); any other failure aborts.
  bool CheckInvariants() const {
    FUZZ_CHECK(queue_->in_flight() == held_.size(), "in_flight %u, harness holds %zu",
               queue_->in_flight(), held_.size());
    const QueueCursors c = queue_->cursors();
    if (packed()) {
      // Every held buffer still occupies its ring slots: more than the ring
      // has means the driver re-posted slots the device holds, and the
      // device's used writes land on each other (and in_flight can pass the
      // queue size).
      uint32_t slots = 0;
      for (const Held& h : held_) slots += h.ring_slots;
      if (slots > size_ && KnownBugTolerated("packed-slot-overrun")) return false;
      FUZZ_CHECK(slots <= size_, "the device holds %zu buffers taking %u ring slots of %u",
                 held_.size(), slots, size_);
      FUZZ_CHECK((c.last_avail_idx & 0x7fff) < size_ && (c.last_used_idx & 0x7fff) < size_,
                 "packed cursors %#x %#x outside a ring of %u", c.last_avail_idx, c.last_used_idx,
                 size_);
    } else {
      FUZZ_CHECK(static_cast<uint16_t>(c.last_avail_idx - c.last_used_idx) == held_.size(),
                 "split cursors avail %u used %u with %zu held", c.last_avail_idx, c.last_used_idx,
                 held_.size());
    }
    FUZZ_CHECK(queue_->in_flight() <= size_, "in_flight %u > queue size %u", queue_->in_flight(),
               size_);
    return true;
  }

  void CheckDriverClean() const {
    const auto& v = driver_->violations();
    FUZZ_CHECK(v.empty(), "honest script, driver saw %zu violations; first: %s", v.size(),
               v.empty() ? "" : v.front().c_str());
  }

  InputReader& in_;
  Rng rng_;
  const uint16_t size_;
  std::unique_ptr<GuestArena> arena_;
  std::unique_ptr<VirtioDriver> driver_;
  QueueConfig config_;
  bool indirect_ = false;
  std::unique_ptr<DeviceQueue> queue_;
  std::vector<Held> held_;
  bool hostile_ = false;
  int reconnects_ = 0;
};

int Run(const uint8_t* data, size_t size) {
  InputReader in(data, size);
  const uint8_t flags = in.U8();
  const uint8_t size_sel = in.U8();
  const bool packed = flags & kOpsPacked;
  const uint16_t qsize = packed ? static_cast<uint16_t>(1 + size_sel % 128)
                                : static_cast<uint16_t>(1u << (size_sel % 8));
  const uint16_t raw = in.U16();
  QueueCursors start;
  if (packed) {
    start.last_avail_idx = static_cast<uint16_t>((raw & 0x8000) | ((raw & 0x7fff) % qsize));
  } else {
    start.last_avail_idx = raw;
  }
  start.last_used_idx = start.last_avail_idx;
  Harness h(in, flags, qsize, start, in.U8());
  h.Run();
  return 0;
}

}  // namespace
}  // namespace iovtee::virtio::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return iovtee::virtio::fuzz::Run(data, size);
}
