// Writes the seed corpora of the virtio fuzzers, deterministically:
//   bazel run //test/fuzz:corpus_gen -- "$PWD/test/fuzz/corpus"
// chain_walk_fuzz: legal rings the driver emulator posted (split and packed,
// direct, chained, indirect, crossing regions), serialised in that fuzzer's
// input format. ring_ops_fuzz: operation scripts, honest and hostile.
// Existing seeds of the same names are overwritten; crash reproducers
// (crash-*) are left alone.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "src/virtio/device_queue.h"
#include "src/virtio/ring_layout.h"
#include "test/fuzz/chain_walk_format.h"
#include "test/fuzz/fuzz_util.h"
#include "test/fuzz/ring_ops_format.h"
#include "test/virtio/driver_emulator.h"

namespace iovtee::virtio::fuzz {
namespace {

using testing::ArenaOptions;
using testing::DriverOptions;
using testing::GuestArena;
using testing::Segment;
using testing::VirtioDriver;

using Bytes = std::vector<uint8_t>;

void Put16(Bytes& b, uint16_t v) {
  b.push_back(static_cast<uint8_t>(v));
  b.push_back(static_cast<uint8_t>(v >> 8));
}

void Append(Bytes& b, const uint8_t* p, size_t n) { b.insert(b.end(), p, p + n); }

bool WriteFile(const std::string& path, const Bytes& b) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  return static_cast<bool>(out);
}

// ---------------------------------------------------------------------------
// chain_walk_fuzz seeds.

struct ChainWalkSeed {
  const char* name;
  RingLayout layout;
  uint16_t size;
  bool indirect_feature;
  bool event_idx;
  bool hole;  // region 1 after a 1 MiB hole (else GPA-adjacent)
  uint16_t start;
  // What the driver posts: each entry a list of segment lengths; 0 in
  // `indirect` for direct chains.
  std::vector<std::vector<uint32_t>> buffers;
  std::vector<bool> indirect;
  bool cross_regions;  // one more buffer straddling the region boundary
};

constexpr uint64_t kSeedRegion0 = 8192;  // rings and buffers
constexpr uint64_t kSeedRegion1 = 4096;

Bytes MakeChainWalkSeed(const ChainWalkSeed& s) {
  ArenaOptions ao;
  ao.gpa_base = kRegion0Gpa;
  ao.region_sizes = {kSeedRegion0, kSeedRegion1};
  ao.gpa_adjacent = !s.hole;
  GuestArena arena(ao);
  DriverOptions o;
  o.layout = s.layout;
  o.size = s.size;
  o.features = FeatureBits(s.layout, s.indirect_feature, s.event_idx);
  o.tight_ring_alignment = true;  // the 8 KiB region has no room for page alignment
  o.start = {s.start, s.start};
  o.copy_data_on_reap = false;
  VirtioDriver driver(&arena, o);
  for (size_t i = 0; i < s.buffers.size(); ++i) {
    const bool ind = i < s.indirect.size() && s.indirect[i];
    if (!driver.Post(s.buffers[i], /*writable=*/true, ind)) {
      std::fprintf(stderr, "corpus_gen: %s: post %zu failed\n", s.name, i);
      std::exit(1);
    }
  }
  if (s.cross_regions) {
    const uint64_t at = kRegion0Gpa + kSeedRegion0 - 48;  // 48 bytes in region 0, 80 in 1
    const Segment seg{at, 128, true};
    if (!driver.PostSegments(absl::MakeConstSpan(&seg, 1))) std::exit(1);
  }
  driver.Publish();

  Bytes b;
  uint8_t flags = 0;
  if (s.layout == RingLayout::kPacked) flags |= kCwPacked;
  if (s.indirect_feature) flags |= kCwIndirect;
  if (s.event_idx) flags |= kCwEventIdx;
  flags |= kCwTwoRegions;
  b.push_back(flags);
  if (s.layout == RingLayout::kSplit) {
    uint8_t log2 = 0;
    while ((1u << log2) < s.size) ++log2;
    b.push_back(log2);
  } else {
    b.push_back(static_cast<uint8_t>(s.size - 1));
  }
  Put16(b, s.start);
  Put16(b, s.start);
  b.push_back(7);  // burst 8
  b.push_back(2);  // 3 rounds
  Put16(b, kSeedRegion0 - 1);
  Put16(b, kSeedRegion1 - 1);
  b.push_back(s.hole ? 1 : 0);
  b.push_back(0x5e);
  b.push_back(0xed);
  b.push_back(0x01);
  if (b.size() != kCwHeaderBytes) std::exit(1);
  // Ring parts, each in its own block in the fuzzer.
  const QueueConfig c = driver.device_config();
  Append(b, c.desc, DescBytes(s.layout, s.size));
  Append(b, c.driver_area, DriverAreaBytes(s.layout, s.size));
  Append(b, c.device_area, DeviceAreaBytes(s.layout, s.size));
  // Guest memory: zero but for the indirect tables (the data buffers'
  // contents mean nothing to the device), so the seed stays small.
  Bytes ram(kSeedRegion0 + kSeedRegion1, 0);
  for (uint16_t id : driver.outstanding_ids()) {
    const testing::PostedBuffer* pb = driver.buffer(id);
    if (pb == nullptr || pb->indirect_table == 0) continue;
    const uint64_t len = 16 * pb->segments.size();
    arena.Read(pb->indirect_table,
               absl::MakeSpan(ram.data() + (pb->indirect_table - kRegion0Gpa), len));
  }
  Append(b, ram.data(), ram.size());
  while (!b.empty() && b.back() == 0) b.pop_back();  // the fuzzer reads zeros past the end
  return b;
}

std::vector<ChainWalkSeed> ChainWalkSeeds() {
  return {
      {"split-direct",
       RingLayout::kSplit,
       16,
       false,
       false,
       false,
       0,
       {{256}, {64, 128}, {1500}, {32, 32, 32, 32}},
       {},
       true},
      {"split-indirect-eventidx",
       RingLayout::kSplit,
       16,
       true,
       true,
       true,
       0xfffe,
       {{128, 256, 512}, {1024}, {64, 64}},
       {true, false, true},
       false},
      {"split-wrap",
       RingLayout::kSplit,
       8,
       false,
       true,
       false,
       0xfffd,
       {{100}, {200}, {300}, {400}, {500}, {600}},
       {},
       false},
      {"packed-direct",
       RingLayout::kPacked,
       16,
       false,
       false,
       false,
       0,
       {{256}, {64, 128}, {1500}, {32, 32, 32}},
       {},
       true},
      {"packed-indirect-eventidx",
       RingLayout::kPacked,
       12,
       true,
       true,
       true,
       0x8000 | 9,
       {{128, 256, 512}, {1024}, {64, 64}},
       {true, false, true},
       false},
      {"packed-wrap",
       RingLayout::kPacked,
       7,
       false,
       true,
       false,
       5,
       {{100}, {200, 300}, {400}, {500}},
       {},
       false},
  };
}

// ---------------------------------------------------------------------------
// ring_ops_fuzz seeds.

class Script {
 public:
  Script(uint8_t flags, uint8_t size_sel, uint16_t start) {
    b_.push_back(flags);
    b_.push_back(size_sel);
    Put16(b_, start);
    b_.push_back(0x42);
  }
  Script& Post(std::vector<uint16_t> lens, uint8_t mode = 0) {
    b_.push_back(kOpPost);
    b_.push_back(static_cast<uint8_t>(lens.size() - 1));
    for (uint16_t l : lens) Put16(b_, static_cast<uint16_t>(l - 1));
    b_.push_back(mode);
    return *this;
  }
  Script& Styled(uint8_t style) { return Op2(kOpPostStyled, style); }
  Script& Publish() { return Op1(kOpPublish); }
  Script& Fetch(uint8_t burst) { return Op2(kOpFetch, static_cast<uint8_t>(burst - 1)); }
  Script& Return(uint8_t n) { return Op2(kOpReturn, n); }
  Script& Notify() { return Op1(kOpNotify); }
  Script& Kicks(bool on) { return Op2(kOpKicks, on); }
  Script& Reap() { return Op2(kOpReap, 63); }
  Script& Reconnect() { return Op1(kOpReconnect); }
  Script& HostileDesc(uint16_t index, const uint8_t (&raw)[16]) {
    b_.push_back(kOpHostileDesc);
    Put16(b_, index);
    Append(b_, raw, 16);
    return *this;
  }
  Script& HostileField(uint8_t which, uint16_t value, uint16_t index = 0) {
    b_.push_back(kOpHostileField);
    b_.push_back(which);
    Put16(b_, value);
    Put16(b_, index);
    return *this;
  }
  // One honest round: post n, publish, fetch, return, notify, reap.
  Script& Round(int n, uint8_t style) {
    for (int i = 0; i < n; ++i) Styled(style);
    return Publish().Fetch(32).Return(32).Notify().Reap();
  }
  const Bytes& bytes() const { return b_; }

 private:
  Script& Op1(uint8_t op) {
    b_.push_back(op);
    return *this;
  }
  Script& Op2(uint8_t op, uint8_t arg) {
    b_.push_back(op);
    b_.push_back(arg);
    return *this;
  }
  Bytes b_;
};

std::vector<std::pair<std::string, Bytes>> RingOpsSeeds() {
  std::vector<std::pair<std::string, Bytes>> out;
  const uint8_t kEv = kOpsEventIdx, kInd = kOpsIndirect, kPk = kOpsPacked;
  // Styles: 0 mergeable, 1 small, 2 big, 3 dpdk, 4 generic.
  {
    Script s(kEv, 5, 0xfff0);  // split 32, crosses the 16-bit index wrap
    for (int r = 0; r < 6; ++r) s.Round(5, static_cast<uint8_t>(r % 2 == 0 ? 0 : 3));
    out.emplace_back("split-mergeable-dpdk", s.bytes());
  }
  {
    Script s(kEv | kInd | kOpsTightRings, 6, 0);  // split 64, indirect big packets
    s.Kicks(false);
    for (int r = 0; r < 3; ++r) s.Round(3, 2);
    s.Post({64, 1500, 64}, 1).Publish().Fetch(4).Reconnect().Return(4).Reconnect().Reap();
    out.emplace_back("split-indirect-big", s.bytes());
  }
  {
    Script s(kPk | kEv, 31, 0x8000 | 28);  // packed 32, starts 4 slots before the wrap
    for (int r = 0; r < 6; ++r) s.Round(6, static_cast<uint8_t>(r % 2 == 0 ? 1 : 3));
    out.emplace_back("packed-small-dpdk-wrap", s.bytes());
  }
  {
    Script s(kPk | kInd, 23, 3);  // packed 24, chained and indirect
    for (int r = 0; r < 4; ++r) {
      s.Post({128, 256, 512}).Post({64, 64}, 1).Styled(4).Publish();
      s.Fetch(2).Return(1).Notify().Fetch(8).Return(8).Notify().Reap();
    }
    s.Reconnect().Round(2, 0);
    out.emplace_back("packed-chained-indirect", s.bytes());
  }
  {
    // Hostile: a descriptor whose NEXT points at itself, then an avail idx jump.
    const uint8_t loop[16] = {0, 0x10, 0, 0, 1, 0, 0, 0, 0x40, 0, 0, 0, 3, 0, 0, 0};
    Script s(kEv, 3, 7);  // split 8
    s.Round(2, 4).Styled(4).HostileDesc(0, loop).Publish().Fetch(4).Return(4);
    s.HostileField(0, 0x1234).Fetch(4).Reconnect().Reap();
    out.emplace_back("split-hostile-loop", s.bytes());
  }
  {
    // Hostile: the driver event asks for a notification at a descriptor
    // offset, then a descriptor's flags are flipped to available.
    Script s(kPk | kEv, 15, 0);  // packed 16
    s.HostileField(0, 0x8004).HostileField(1, 2).Round(4, 1);
    s.HostileField(2, 0x0080, 9).Fetch(8).Return(8).Notify().Reap();
    out.emplace_back("packed-hostile-flags", s.bytes());
  }
  return out;
}

}  // namespace
}  // namespace iovtee::virtio::fuzz

int main(int argc, char** argv) {
  using namespace iovtee::virtio::fuzz;  // NOLINT(google-build-using-namespace)
  if (argc != 2) {
    std::fprintf(stderr, "usage: corpus_gen CORPUS_DIR (test/fuzz/corpus, absolute)\n");
    return 2;
  }
  const std::string dir = argv[1];
  size_t total = 0;
  int files = 0;
  for (const ChainWalkSeed& s : ChainWalkSeeds()) {
    const Bytes b = MakeChainWalkSeed(s);
    if (!WriteFile(dir + "/chain_walk_fuzz/seed-" + s.name, b)) return 1;
    total += b.size();
    ++files;
  }
  for (const auto& [name, b] : RingOpsSeeds()) {
    if (!WriteFile(dir + "/ring_ops_fuzz/seed-" + name, b)) return 1;
    total += b.size();
    ++files;
  }
  std::printf("corpus_gen: wrote %d seeds, %zu bytes, under %s\n", files, total, dir.c_str());
  return 0;
}
