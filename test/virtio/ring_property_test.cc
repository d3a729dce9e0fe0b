// Randomized property test of DeviceQueue against the driver emulator, both
// layouts, with and without indirect tables and event-idx.
//
// The driver does random legal things (posts in every style, publishes at
// random times, reaps); the device fetches random bursts, writes random
// lengths of data into what it holds, and returns in random order and random
// batch sizes, now and then reconnecting. Invariants, checked as it goes and
// after draining:
//   - fetches come in publish order and match what was posted (segments,
//     GPAs, host pointers, lengths);
//   - every posted buffer comes back at most once, with its id, with
//     len <= what was posted, and the driver reads what the device wrote;
//   - no byte of guest memory outside rings and posted buffers changes;
//   - cursors follow the operations; at the end every buffer came back
//     exactly once and the device's counters agree.
//
// A failing run prints its seed; rerun one seed with IOVTEE_PROPERTY_SEED=<n>.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "src/virtio/device_queue.h"
#include "test/virtio/driver_emulator.h"

namespace iovtee::virtio::testing {
namespace {

using ::testing::IsEmpty;

constexpr uint64_t kIndirect = uint64_t{1} << kFIndirectDesc;
constexpr uint64_t kEventIdx = uint64_t{1} << kFEventIdx;
constexpr int kOpsPerSeed = 3000;
constexpr int kCheckEvery = 250;

struct PropertyCase {
  const char* name;
  RingLayout layout;
  uint16_t size;
  uint64_t features;
  uint16_t start;  // both cursors
  bool tight_alignment;
};

// Where a cursor goes after `n` more buffers (split) or ring slots (packed).
uint16_t Advance(RingLayout layout, uint16_t size, uint16_t cursor, uint32_t n) {
  if (layout == RingLayout::kSplit) return static_cast<uint16_t>(cursor + n);
  uint32_t pos = (cursor & 0x7fff) + n;
  bool wrap = cursor >> 15;
  while (pos >= size) {
    pos -= size;
    wrap = !wrap;
  }
  return static_cast<uint16_t>(pos | (wrap ? 0x8000 : 0));
}

// One run: one case, one seed. Failures are gtest failures; after a fatal
// one the run stops.
class PropertyRun {
 public:
  PropertyRun(const PropertyCase& p, uint32_t seed) : p_(p), seed_(seed), rng_(seed) {}
  void Run();

 private:
  static bool Failed() { return ::testing::Test::HasFatalFailure(); }
  void PostRandom();
  void FetchRandom();
  void ReturnRandom();
  void ReapRandom(size_t max);
  void PokeNotifications();
  void Reconnect();
  void CheckNow(const char* where);
  void Drain();

  const PropertyCase p_;
  const uint32_t seed_;
  std::mt19937 rng_;
  std::unique_ptr<GuestArena> arena_;
  std::unique_ptr<VirtioDriver> driver_;
  std::unique_ptr<DeviceModel> device_;

  std::map<uint16_t, uint64_t> seq_of_;        // outstanding id -> posting sequence
  std::map<uint16_t, uint64_t> caller_alloc_;  // id -> arena allocation it owns
  std::vector<uint16_t> unpublished_;          // posted, in order
  std::deque<uint16_t> published_unfetched_;   // in ring order
  std::map<uint16_t, uint16_t> slots_of_;      // held id -> ring slots
  std::vector<int> reaped_count_;              // by sequence
  uint64_t next_seq_ = 0;
  size_t max_in_flight_ = 0;
  uint16_t want_avail_ = 0;
  uint16_t want_used_ = 0;
  QueueStats earlier_;  // stats of queues dropped by Reconnect
};

uint32_t Random(std::mt19937& rng, uint32_t lo, uint32_t hi) {  // [lo, hi]
  return std::uniform_int_distribution<uint32_t>(lo, hi)(rng);
}

void PropertyRun::PostRandom() {
  const bool indirect_ok = (p_.features & kIndirect) != 0;
  const int n = Random(rng_, 1, 8);
  for (int i = 0; i < n; ++i) {
    std::optional<uint16_t> id;
    uint64_t caller = 0;
    const uint32_t pick = Random(rng_, 0, 99);
    if (pick < 25) {
      std::vector<uint32_t> lens(Random(rng_, 1, 6));
      for (uint32_t& l : lens) l = Random(rng_, 0, 9) == 0 ? 0 : Random(rng_, 1, 5000);
      id = driver_->Post(lens, true, indirect_ok && Random(rng_, 0, 1));
    } else if (pick < 45) {
      id = Random(rng_, 0, 3) == 0 ? driver_->PostLinuxMergeable(Random(rng_, 0, 5000))
                                   : driver_->PostLinuxMergeable();
    } else if (pick < 60) {
      id = driver_->PostLinuxSmall();
    } else if (pick < 68) {
      // The spec bounds chains (indirect tables included) by the queue size.
      if (p_.size >= kLinuxBigDescs) id = driver_->PostLinuxBig();
    } else if (pick < 97) {
      id = driver_->PostDpdk();
    } else {
      // A buffer across the boundary of the two GPA-adjacent regions.
      const uint64_t boundary = arena_->region(1).gpa;
      const uint32_t before = Random(rng_, 1, 3000), after = Random(rng_, 1, 3000);
      if (arena_->AllocAt(boundary - before, before + after)) {
        caller = boundary - before;
        const Segment seg{caller, before + after, true};
        id = driver_->PostSegments(absl::MakeConstSpan(&seg, 1), indirect_ok && Random(rng_, 0, 1));
        if (!id.has_value()) arena_->Free(caller);
      }
    }
    if (!id.has_value()) continue;
    ASSERT_EQ(seq_of_.count(*id), 0u) << "driver reused an outstanding id " << *id;
    seq_of_[*id] = next_seq_++;
    reaped_count_.push_back(0);
    if (caller != 0) caller_alloc_[*id] = caller;
    unpublished_.push_back(*id);
  }
}

void PropertyRun::FetchRandom() {
  const std::vector<uint16_t> ids =
      device_->Fetch(Random(rng_, 1, 96), static_cast<uint16_t>(Random(rng_, 1, 64)));
  for (uint16_t id : ids) {
    ASSERT_FALSE(published_unfetched_.empty()) << "fetched id " << id << " never published";
    ASSERT_EQ(id, published_unfetched_.front()) << "fetch out of publish order";
    published_unfetched_.pop_front();
    const DescChain* c = device_->held(id);
    ASSERT_NE(c, nullptr);
    slots_of_[id] = c->ring_slots;
    want_avail_ = Advance(p_.layout, p_.size, want_avail_,
                          p_.layout == RingLayout::kSplit ? 1 : c->ring_slots);
    const uint32_t r = Random(rng_, 0, 9);
    device_->Write(id, r == 0 ? 0 : r == 1 ? c->len : Random(rng_, 0, c->len));
  }
}

void PropertyRun::ReturnRandom() {
  std::vector<uint16_t> held = device_->held_ids();
  if (held.empty()) return;
  std::shuffle(held.begin(), held.end(), rng_);
  held.resize(Random(rng_, 1, static_cast<uint32_t>(held.size())));
  // Now and then write again (a later, different length) before returning.
  if (Random(rng_, 0, 4) == 0) {
    device_->Write(held[0], Random(rng_, 0, device_->held(held[0])->len));
  }
  ASSERT_EQ(device_->Return(held), held.size());
  for (uint16_t id : held) {
    want_used_ = Advance(p_.layout, p_.size, want_used_,
                         p_.layout == RingLayout::kSplit ? 1 : slots_of_[id]);
    slots_of_.erase(id);
  }
  if (Random(rng_, 0, 1)) device_->queue().NotifyDue();
}

void PropertyRun::ReapRandom(size_t max) {
  std::vector<Completion> done;
  driver_->Reap(&done, max);
  device_->VerifyAll(done);
  for (const Completion& c : done) {
    auto it = seq_of_.find(c.id);
    ASSERT_NE(it, seq_of_.end()) << "reaped id " << c.id << " not outstanding";
    ++reaped_count_[it->second];
    seq_of_.erase(it);
    auto caller = caller_alloc_.find(c.id);
    if (caller != caller_alloc_.end()) {
      arena_->Free(caller->second);
      caller_alloc_.erase(caller);
    }
  }
}

void PropertyRun::PokeNotifications() {
  // Exercise the suppression paths; their rules are notification_test's.
  if (p_.layout == RingLayout::kSplit) {
    *driver_->split_avail_flags() = Random(rng_, 0, 1) ? kAvailFNoInterrupt : 0;
    *driver_->split_used_event() = static_cast<uint16_t>(driver_->next_used() + Random(rng_, 0, 4));
    driver_->ResyncShadow();
  } else {
    PackedEvent* ev = driver_->packed_driver_event();
    ev->off_wrap = driver_->next_used();
    ev->flags = static_cast<uint16_t>(Random(rng_, 0, 2));
  }
  device_->queue().EnableKicks(Random(rng_, 0, 1));
  device_->queue().NotifyDue();
}

void PropertyRun::Reconnect() {
  // Only with nothing held: a backend that goes away with buffers in flight
  // loses them unless it returns them first (librte_vhost's inflight
  // tracking is not the queue's business).
  if (!device_->held_ids().empty()) return;
  const QueueStats& s = device_->queue().stats();
  earlier_.fetched += s.fetched;
  earlier_.returned += s.returned;
  earlier_.bad_returns += s.bad_returns;
  for (int e = 0; e < static_cast<int>(ChainError::kCount); ++e) {
    earlier_.errors[e] += s.errors[e];
  }
  ASSERT_TRUE(device_->Reconnect().ok());
}

void PropertyRun::CheckNow(const char* where) {
  SCOPED_TRACE(where);
  ASSERT_THAT(driver_->violations(), IsEmpty());
  ASSERT_THAT(device_->errors(), IsEmpty());
  ASSERT_FALSE(device_->queue().broken()) << ChainErrorName(device_->queue().last_error());
  const absl::Status integrity = driver_->CheckIntegrity();
  ASSERT_TRUE(integrity.ok()) << integrity;
  ASSERT_EQ(device_->queue().in_flight(), device_->held_ids().size());
  ASSERT_EQ(device_->queue().cursors().last_avail_idx, want_avail_);
  ASSERT_EQ(device_->queue().cursors().last_used_idx, want_used_);
}

void PropertyRun::Drain() {
  for (int round = 0; driver_->outstanding() > 0; ++round) {
    ASSERT_LT(round, 1000) << driver_->outstanding() << " buffers never came back";
    published_unfetched_.insert(published_unfetched_.end(), unpublished_.begin(),
                                unpublished_.end());
    unpublished_.clear();
    driver_->Publish();
    FetchRandom();
    std::vector<uint16_t> held = device_->held_ids();
    std::shuffle(held.begin(), held.end(), rng_);
    ASSERT_EQ(device_->Return(held), held.size());
    for (uint16_t id : held) {
      want_used_ = Advance(p_.layout, p_.size, want_used_,
                           p_.layout == RingLayout::kSplit ? 1 : slots_of_[id]);
      slots_of_.erase(id);
    }
    ReapRandom(SIZE_MAX);
    if (Failed()) return;
  }
}

void PropertyRun::Run() {
  ArenaOptions arena;
  arena.region_sizes = {uint64_t{40} << 20, uint64_t{2} << 20};
  arena.gpa_adjacent = true;
  arena_ = std::make_unique<GuestArena>(arena);
  DriverOptions o;
  o.layout = p_.layout;
  o.size = p_.size;
  o.features = p_.features;
  o.start = QueueCursors{p_.start, p_.start};
  o.tight_ring_alignment = p_.tight_alignment;
  o.seed = seed_;
  driver_ = std::make_unique<VirtioDriver>(arena_.get(), o);
  auto device = DeviceModel::Create(driver_.get());
  ASSERT_TRUE(device.ok()) << device.status();
  device_ = std::move(*device);
  want_avail_ = want_used_ = p_.start;

  for (int op = 0; op < kOpsPerSeed; ++op) {
    const uint32_t r = Random(rng_, 0, 99);
    if (r < 28) {
      PostRandom();
    } else if (r < 42) {
      published_unfetched_.insert(published_unfetched_.end(), unpublished_.begin(),
                                  unpublished_.end());
      unpublished_.clear();
      driver_->Publish();
    } else if (r < 62) {
      FetchRandom();
    } else if (r < 82) {
      ReturnRandom();
    } else if (r < 96) {
      ReapRandom(Random(rng_, 1, 64));
    } else if (r < 99) {
      PokeNotifications();
    } else {
      Reconnect();
    }
    if (Failed()) return;
    max_in_flight_ = std::max(max_in_flight_, device_->held_ids().size());
    if (op % kCheckEvery == 0) {
      CheckNow("during the run");
      if (Failed()) return;
    }
  }
  Drain();
  if (Failed()) return;
  CheckNow("after draining");
  if (Failed()) return;

  // Every buffer came back exactly once.
  EXPECT_TRUE(seq_of_.empty());
  for (uint64_t s = 0; s < reaped_count_.size(); ++s) {
    ASSERT_EQ(reaped_count_[s], 1)
        << "buffer #" << s << " came back " << reaped_count_[s] << " times";
  }
  EXPECT_EQ(driver_->posted_total(), next_seq_);
  EXPECT_EQ(driver_->reaped_total(), next_seq_);
  EXPECT_EQ(device_->returned_unverified(), 0u);
  const QueueStats& s = device_->queue().stats();
  EXPECT_EQ(earlier_.fetched + s.fetched, next_seq_);
  EXPECT_EQ(earlier_.returned + s.returned, next_seq_);
  EXPECT_EQ(earlier_.bad_returns + s.bad_returns, 0u);
  for (int e = 0; e < static_cast<int>(ChainError::kCount); ++e) {
    EXPECT_EQ(earlier_.errors[e] + s.errors[e], 0u) << ChainErrorName(static_cast<ChainError>(e));
  }
  EXPECT_EQ(device_->queue().in_flight(), 0);
  std::printf("  %llu buffers, up to %zu in flight at once, used cursor ended at %#x\n",
              static_cast<unsigned long long>(next_seq_), max_in_flight_, want_used_);
  // The arena holds only the rings and what the driver keeps for later
  // (current frags), nothing leaked per buffer.
  device_.reset();
  driver_.reset();
  EXPECT_EQ(arena_->allocated_bytes(), 0u);
}

class RingPropertyTest : public ::testing::TestWithParam<PropertyCase> {};

TEST_P(RingPropertyTest, RandomOperationsKeepEveryInvariant) {
  std::vector<uint32_t> seeds = {1, 2, 3};
  if (const char* env = std::getenv("IOVTEE_PROPERTY_SEED")) {
    seeds = {static_cast<uint32_t>(std::strtoul(env, nullptr, 0))};
  } else {
    seeds.push_back(std::random_device{}());
  }
  for (uint32_t seed : seeds) {
    std::printf("%s: seed %u\n", GetParam().name, seed);
    SCOPED_TRACE(::testing::Message()
                 << "seed " << seed << " (IOVTEE_PROPERTY_SEED=" << seed << " to rerun)");
    PropertyRun(GetParam(), seed).Run();
    if (HasFatalFailure()) return;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Rings, RingPropertyTest,
    ::testing::Values(
        PropertyCase{"split_plain", RingLayout::kSplit, 64, 0, 0, false},
        PropertyCase{"split_indirect_event_idx", RingLayout::kSplit, 256, kIndirect | kEventIdx,
                     65000, false},
        PropertyCase{"split_small_wrapping", RingLayout::kSplit, 32, kIndirect, 65500, true},
        PropertyCase{"packed_plain", RingLayout::kPacked, 64, 0, 0x8000, false},
        PropertyCase{"packed_indirect_event_idx", RingLayout::kPacked, 256, kIndirect | kEventIdx,
                     0x0000 | 100, false},
        PropertyCase{"packed_odd_size", RingLayout::kPacked, 37, kIndirect, 0x8000 | 36, true}),
    [](const ::testing::TestParamInfo<PropertyCase>& info) { return info.param.name; });

}  // namespace
}  // namespace iovtee::virtio::testing
