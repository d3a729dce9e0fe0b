#include "test/softnic/traffic/latency_histogram.h"

#include <algorithm>
#include <cmath>

namespace iovtee::softnic {

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  for (int i = 0; i < kBuckets; ++i) buckets_[i] += other.buckets_[i];
  count_ += other.count_;
  sum_ += other.sum_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
}

uint64_t LatencyHistogram::BucketUpper(int b) {
  if (b < 32) return static_cast<uint64_t>(b);
  int e = (b - 32) / 16 + 5;
  uint64_t sub = static_cast<uint64_t>((b - 32) % 16);
  uint64_t step = uint64_t{1} << (e - 4);
  return (16 + sub) * step + (step - 1);
}

uint64_t LatencyHistogram::Percentile(double p) const {
  if (count_ == 0) return 0;
  double want = std::ceil(p / 100.0 * static_cast<double>(count_));
  uint64_t target = std::max<uint64_t>(1, static_cast<uint64_t>(want));
  uint64_t seen = 0;
  for (int b = 0; b < kBuckets; ++b) {
    seen += buckets_[b];
    if (seen >= target) return std::min(BucketUpper(b), max_);
  }
  return max_;
}

}  // namespace iovtee::softnic
