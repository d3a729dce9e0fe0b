// A log-linear histogram of latencies in TSC cycles: exact below 32, then 16
// buckets per power of two (a reported percentile is at most 1/16 = 6.25%
// above the true value, and never above the maximum seen). Recording is a
// count-leading-zeros and an increment; no allocation.
#ifndef IOVTEE_TEST_SOFTNIC_TRAFFIC_LATENCY_HISTOGRAM_H_
#define IOVTEE_TEST_SOFTNIC_TRAFFIC_LATENCY_HISTOGRAM_H_

#include <cstdint>

namespace iovtee::softnic {

class LatencyHistogram {
 public:
  static constexpr int kBuckets = 32 + 59 * 16;

  void Record(uint64_t cycles) {
    ++buckets_[Bucket(cycles)];
    ++count_;
    sum_ += cycles;
    if (cycles < min_) min_ = cycles;
    if (cycles > max_) max_ = cycles;
  }
  void Merge(const LatencyHistogram& other);

  uint64_t count() const { return count_; }
  uint64_t min() const { return count_ == 0 ? 0 : min_; }
  uint64_t max() const { return max_; }
  double mean() const { return count_ == 0 ? 0 : static_cast<double>(sum_) / count_; }
  // The smallest bucket bound with at least p% of the samples at or below it
  // (p in (0, 100]), capped at max(); 0 when empty.
  uint64_t Percentile(double p) const;

  static int Bucket(uint64_t v) {
    if (v < 32) return static_cast<int>(v);
    int e = 63 - __builtin_clzll(v);  // 5..63
    return 32 + (e - 5) * 16 + static_cast<int>((v >> (e - 4)) & 15);
  }
  static uint64_t BucketUpper(int b);

 private:
  uint64_t buckets_[kBuckets] = {};
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
  uint64_t min_ = UINT64_MAX;
  uint64_t max_ = 0;
};

}  // namespace iovtee::softnic

#endif  // IOVTEE_TEST_SOFTNIC_TRAFFIC_LATENCY_HISTOGRAM_H_
