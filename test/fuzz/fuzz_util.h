// What the virtio fuzz harnesses share: a check that fails the same way in
// every build, an input reader, exactly sized guest regions, and the checks of
// what a DeviceQueue hands out (chains) and writes back (used entries).
#ifndef IOVTEE_TEST_FUZZ_FUZZ_UTIL_H_
#define IOVTEE_TEST_FUZZ_FUZZ_UTIL_H_

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/types/span.h"
#include "src/guest/guest_memory.h"
#include "src/virtio/desc_chain.h"
#include "src/virtio/device_queue.h"
#include "src/virtio/ring_layout.h"
#include "test/fuzz/splitmix.h"

namespace iovtee::virtio::fuzz {

// Aborts (a crash for libFuzzer and for the replay test) whatever NDEBUG says.
#define FUZZ_CHECK(cond, ...)                                                            \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK(%s) failed: ", __FILE__, __LINE__, #cond); \
      std::fprintf(stderr, __VA_ARGS__);                                                 \
      std::fprintf(stderr, "\n");                                                        \
      std::abort();                                                                      \
    }                                                                                    \
  } while (0)

// IOVTEE_FUZZ_VERBOSE=1: harnesses describe what each input did (to check
// that seeds reach what they were written for).
inline bool Verbose() {
  static const bool v = [] {
    const char* e = std::getenv("IOVTEE_FUZZ_VERBOSE");
    return e != nullptr && *e != '\0' && *e != '0';
  }();
  return v;
}

inline void PrintSummary(const char* what, const DeviceQueue& q) {
  const QueueStats& st = q.stats();
  std::fprintf(
      stderr,
      "%s: %s size %u: fetched %llu returned %llu bad_returns %llu notifies %llu/%llu%s%s\n", what,
      q.config().layout == RingLayout::kPacked ? "packed" : "split", q.config().size,
      static_cast<unsigned long long>(st.fetched), static_cast<unsigned long long>(st.returned),
      static_cast<unsigned long long>(st.bad_returns), static_cast<unsigned long long>(st.notifies),
      static_cast<unsigned long long>(st.notifies + st.notifies_suppressed),
      q.broken() ? ", broken: " : "", q.broken() ? ChainErrorName(q.last_error()) : "");
}

// IOVTEE_FUZZ_KNOWN_BUGS=name,name: a harness stops an input quietly instead
// of failing when one of these known (reported, unfixed) bugs shows, so that a
// long campaign can get past it. Never set in CI.
inline bool KnownBugTolerated(const char* name) {
  static const std::string known = [] {
    const char* e = std::getenv("IOVTEE_FUZZ_KNOWN_BUGS");
    return "," + std::string(e == nullptr ? "" : e) + ",";
  }();
  return known.find("," + std::string(name) + ",") != std::string::npos;
}

// Reads the fuzz input front to back; past the end it yields zeros, so every
// input, however short, is a complete one.
class InputReader {
 public:
  InputReader(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  uint8_t U8() { return pos_ < size_ ? data_[pos_++] : 0; }
  uint16_t U16() {
    const uint16_t lo = U8();
    return static_cast<uint16_t>(lo | (U8() << 8));
  }
  uint32_t U32() {
    const uint32_t lo = U16();
    return lo | (static_cast<uint32_t>(U16()) << 16);
  }
  uint64_t U64() {
    const uint64_t lo = U32();
    return lo | (static_cast<uint64_t>(U32()) << 32);
  }
  // Copies the next out.size() bytes, zero-filling past the end.
  void Bytes(absl::Span<uint8_t> out) {
    const size_t n = pos_ < size_ ? std::min(out.size(), size_ - pos_) : 0;
    if (n > 0) std::memcpy(out.data(), data_ + pos_, n);
    std::memset(out.data() + n, 0, out.size() - n);
    pos_ += n;
  }
  bool empty() const { return pos_ >= size_; }
  size_t remaining() const { return pos_ < size_ ? size_ - pos_ : 0; }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

// For choices the input does not spell out byte by byte.
using Rng = ::iovtee::fuzz::SplitMix;

// A heap block of exactly `size` bytes (64-byte aligned), so that ASan
// reports the first byte read or written past either end.
class ExactBuffer {
 public:
  explicit ExactBuffer(size_t size) : size_(size) {
    void* p = nullptr;
    FUZZ_CHECK(posix_memalign(&p, 64, size == 0 ? 1 : size) == 0, "out of memory (%zu)", size);
    p_.reset(static_cast<uint8_t*>(p));
  }
  uint8_t* data() const { return p_.get(); }
  size_t size() const { return size_; }

 private:
  struct Free {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  std::unique_ptr<uint8_t, Free> p_;
  size_t size_;
};

inline uint64_t FeatureBits(RingLayout layout, bool indirect, bool event_idx) {
  uint64_t f = uint64_t{1} << kFVersion1;
  if (layout == RingLayout::kPacked) f |= uint64_t{1} << kFRingPacked;
  if (indirect) f |= uint64_t{1} << kFIndirectDesc;
  if (event_idx) f |= uint64_t{1} << kFEventIdx;
  return f;
}

inline size_t DriverAreaBytes(RingLayout layout, uint16_t size) {
  return layout == RingLayout::kPacked ? PackedEventBytes() : SplitAvailBytes(size);
}
inline size_t DeviceAreaBytes(RingLayout layout, uint16_t size) {
  return layout == RingLayout::kPacked ? PackedEventBytes() : SplitUsedBytes(size);
}
inline size_t DescBytes(RingLayout layout, uint16_t size) {
  return layout == RingLayout::kPacked ? PackedDescBytes(size) : SplitDescBytes(size);
}

// Checks a chain Fetch handed out against the guest regions as the harness
// built them (independently of GuestMemory's own translation, which is
// checked too), then touches every byte as the device would (writes for Rx,
// reads for Tx) so that ASan sees any segment outside the regions.
inline void CheckChain(const DescChain& c, const QueueConfig& config, const GuestMemory& memory,
                       absl::Span<const GuestRegion> regions) {
  FUZZ_CHECK(c.nsegs <= kMaxChainSegments, "nsegs %u", c.nsegs);
  if (config.layout == RingLayout::kSplit) {
    FUZZ_CHECK(c.id < config.size, "split id %u >= size %u", c.id, config.size);
    FUZZ_CHECK(c.ring_slots == 1, "split ring_slots %u", c.ring_slots);
  } else {
    FUZZ_CHECK(c.ring_slots >= 1 && c.ring_slots <= config.size, "packed ring_slots %u size %u",
               c.ring_slots, config.size);
  }
  uint64_t sum = 0;
  for (int i = 0; i < c.nsegs; ++i) {
    const GuestSegment& s = c.segs[i];
    sum += s.len;
    FUZZ_CHECK(s.len > 0, "segment %d of chain %u is empty", i, c.id);
    FUZZ_CHECK(memory.GpaToHost(s.gpa, s.len) == s.host,
               "segment %d gpa %#llx len %u: host %p, GpaToHost says %p", i,
               static_cast<unsigned long long>(s.gpa), s.len, static_cast<void*>(s.host),
               static_cast<void*>(memory.GpaToHost(s.gpa, s.len)));
    bool inside = false;
    for (const GuestRegion& r : regions) {
      if (s.gpa >= r.guest_phys_addr && s.gpa - r.guest_phys_addr < r.size) {
        const uint64_t off = s.gpa - r.guest_phys_addr;
        inside = s.len <= r.size - off && s.host == r.host + off;
        break;
      }
    }
    FUZZ_CHECK(inside, "segment %d gpa %#llx len %u is not inside one guest region", i,
               static_cast<unsigned long long>(s.gpa), s.len);
    if (config.direction == Direction::kDeviceWrites) {
      std::memset(s.host, 0xa5, s.len);
    } else {
      volatile uint8_t acc = 0;
      for (uint32_t k = 0; k < s.len; ++k) acc = static_cast<uint8_t>(acc + s.host[k]);
      (void)acc;
    }
  }
  FUZZ_CHECK(sum == c.len, "chain %u: len %u but segments sum to %llu", c.id, c.len,
             static_cast<unsigned long long>(sum));
}

// What the harness handed to Return that the device accepted, in order, with
// the ring slots the chain took (from Fetch).
struct ReturnedBuffer {
  uint16_t id;
  uint16_t ring_slots;
  uint32_t len;
};

// Checks the used entries Return wrote between cursors `before` and
// `after`: exactly `returned`, in order, in the layout's format. Call it
// right after Return, before anything else writes the ring.
inline void CheckUsedWrites(const QueueConfig& config, QueueCursors before, QueueCursors after,
                            absl::Span<const ReturnedBuffer> returned) {
  if (config.layout == RingLayout::kSplit) {
    const uint16_t mask = config.size - 1;
    FUZZ_CHECK(static_cast<uint16_t>(after.last_used_idx - before.last_used_idx) == returned.size(),
               "split used idx moved %u -> %u for %zu buffers", before.last_used_idx,
               after.last_used_idx, returned.size());
    uint16_t used_idx;
    std::memcpy(&used_idx, config.device_area + 2, 2);
    if (!returned.empty()) {
      FUZZ_CHECK(used_idx == after.last_used_idx, "used->idx %u, cursor %u", used_idx,
                 after.last_used_idx);
    }
    for (size_t k = 0; k < returned.size(); ++k) {
      UsedElem e;
      std::memcpy(&e, config.device_area + 4 + 8 * ((before.last_used_idx + k) & mask), 8);
      FUZZ_CHECK(e.id == returned[k].id && e.len == returned[k].len,
                 "used elem %zu: {%u, %u}, expected {%u, %u}", k, e.id, e.len, returned[k].id,
                 returned[k].len);
    }
    return;
  }
  uint16_t pos = before.last_used_idx & 0x7fff;
  bool wrap = before.last_used_idx >> 15;
  for (size_t k = 0; k < returned.size(); ++k) {
    PackedDesc d;
    std::memcpy(&d, config.desc + 16 * pos, 16);
    const bool avail = d.flags & kDescFAvail;
    const bool used = d.flags & kDescFUsed;
    FUZZ_CHECK(d.id == returned[k].id && d.len == returned[k].len && avail == wrap && used == wrap,
               "packed used desc at %u: id %u len %u flags %#x, expected id %u len %u wrap %d", pos,
               d.id, d.len, d.flags, returned[k].id, returned[k].len, wrap);
    pos = static_cast<uint16_t>(pos + returned[k].ring_slots);
    if (pos >= config.size) {
      pos = static_cast<uint16_t>(pos - config.size);
      wrap = !wrap;
    }
  }
  const uint16_t expect = static_cast<uint16_t>(pos | (wrap << 15));
  FUZZ_CHECK(after.last_used_idx == expect, "packed used cursor %#x, expected %#x",
             after.last_used_idx, expect);
}

}  // namespace iovtee::virtio::fuzz

#endif  // IOVTEE_TEST_FUZZ_FUZZ_UTIL_H_
