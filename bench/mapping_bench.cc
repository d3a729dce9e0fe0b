// Micro-benchmark of the library's share of the P->V path, per frame, with
// the mapping (zero-copy) and without it (a copy into the guest's buffer,
// what a stock vhost enqueue does), on one thread, with no NIC and no switch:
//
//   refill    the NIC driver's refill: rte_mempool_get_bulk of a burst from
//             the queue's mempool (mapped: inside NicRefillScope, where the
//             pool fetches the guest's buffers from its ring);
//   (DMA)     the frame is written where the NIC would write it: not timed;
//   rx        the switch's part of receiving: FixupRx (mapped only) and a read
//             of the Ethernet header, as classification does;
//   enqueue   GuestRxQueue::Enqueue of the burst: header, used entries,
//             notification check, freeing the mbufs.
//
//   bazel run --config=opt //bench:mapping_bench [-- --frames=N --repeats=N]
//
// The guest is a minimal split-ring driver in this file, as DPDK's virtio
// PMD posts (one 2 KiB + header descriptor per buffer, ring of 256, mergeable
// buffers, EVENT_IDX, kicks off): it reaps and posts again between bursts,
// outside the timing. (The full driver emulator of the tests allocates on
// every post and would flush the caches the timed code runs in.) Cycles are TSC ticks; the median
// over the repeats is printed with the CPU share the process got.
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/bench_util.h"
#include "src/datapath/guest_rx_queue.h"
#include "src/guest/guest_memory.h"
#include "src/pool/mapped_pool.h"
#include "src/virtio/device_queue.h"
#include "src/virtio/net_header.h"
#include "src/virtio/ring_layout.h"
#include "test/common/eal.h"

namespace iovtee {
namespace {

constexpr uint16_t kQueueSize = 256;
constexpr uint16_t kBurst = 32;
constexpr uint32_t kPoolSize = 2048;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "mapping_bench: %s\n", what.c_str());
  std::exit(1);
}

// A split ring and its buffers in one block of "guest memory" (GPA 0 at the
// block's start). Posts every free buffer; reaps by used id, so it works
// with out-of-order completions.
class MiniGuest {
 public:
  static constexpr uint32_t kBufLen = 2048 + 12;

  MiniGuest() {
    bytes_ = kRingBytes + size_t{kQueueSize} * kBufStride;
    mem_ = static_cast<uint8_t*>(std::aligned_alloc(4096, bytes_));
    if (mem_ == nullptr) Die("out of memory");
    std::memset(mem_, 0, bytes_);
    auto m = GuestMemory::Create({GuestRegion{0, 0x10000000, bytes_, mem_, 0x20000000}});
    if (!m.ok()) Die(m.status().ToString());
    memory_ = std::move(*m);
    desc_ = reinterpret_cast<virtio::SplitDesc*>(mem_);
    avail_ = reinterpret_cast<uint16_t*>(mem_ + virtio::SplitDescBytes(kQueueSize));
    used_ = mem_ + kUsedOffset;
    for (uint16_t i = 0; i < kQueueSize; ++i) free_.push_back(i);
  }
  ~MiniGuest() { std::free(mem_); }

  virtio::QueueConfig config(uint64_t features) const {
    virtio::QueueConfig c;
    c.size = kQueueSize;
    c.features = features;
    c.desc = mem_;
    c.driver_area = reinterpret_cast<uint8_t*>(avail_);
    c.device_area = used_;
    return c;
  }
  const GuestMemory* memory() const { return memory_.get(); }

  void PostAll() {
    for (uint16_t id : free_) {
      desc_[id].addr = kRingBytes + uint64_t{id} * kBufStride;
      desc_[id].len = kBufLen;
      desc_[id].flags = virtio::kDescFWrite;
      avail_[2 + (avail_idx_ % kQueueSize)] = id;
      ++avail_idx_;
    }
    free_.clear();
    __atomic_store_n(&avail_[1], avail_idx_, __ATOMIC_RELEASE);
  }

  // Takes every used entry back; returns how many frames (num_buffers
  // counts) and checks the used lengths.
  void Reap() {
    const uint16_t idx = __atomic_load_n(reinterpret_cast<uint16_t*>(used_ + 2), __ATOMIC_ACQUIRE);
    while (used_idx_ != idx) {
      const auto* e = reinterpret_cast<const virtio::UsedElem*>(used_ + 4) + used_idx_ % kQueueSize;
      if (e->id >= kQueueSize || e->len > kBufLen) Die("bad used entry");
      free_.push_back(static_cast<uint16_t>(e->id));
      ++used_idx_;
    }
  }

 private:
  static constexpr size_t kUsedOffset = 8192;  // desc 4 KiB, avail 518 B, used 4 KiB aligned
  static constexpr size_t kRingBytes = 16384;
  static constexpr size_t kBufStride = 2176;
  uint8_t* mem_ = nullptr;
  size_t bytes_ = 0;
  std::unique_ptr<GuestMemory> memory_;
  virtio::SplitDesc* desc_ = nullptr;
  uint16_t* avail_ = nullptr;  // flags, idx, ring[]
  uint8_t* used_ = nullptr;
  uint16_t avail_idx_ = 0, used_idx_ = 0;
  std::vector<uint16_t> free_;
};

struct Cycles {
  uint64_t refill = 0, rx = 0, enqueue = 0, frames = 0;
};

class Bench {
 public:
  Bench(bool mapped, uint32_t frame_len, int id) : mapped_(mapped), frame_len_(frame_len) {
    const uint64_t features = (uint64_t{1} << virtio::kFEventIdx) |
                              (uint64_t{1} << virtio::kNetFMrgRxbuf) |
                              (uint64_t{1} << virtio::kFVersion1);
    auto q = virtio::DeviceQueue::Create(guest_.config(features), guest_.memory(),
                                         virtio::QueueCursors{});
    if (!q.ok()) Die(q.status().ToString());
    (*q)->EnableKicks(false);
    GuestRxConfig gc;
    gc.features = features;
    gc.generation = 1;
    if (mapped) {
      MappedPoolConfig pc;
      pc.name = absl::StrCat("mb_m", id);
      pc.size = kPoolSize;
      pc.nic_buffer_size = 1536;
      pc.hdr_len = virtio::kNetHdrMrgSize;
      auto p = MappedPool::Create(pc);
      if (!p.ok()) Die(p.status().ToString());
      pool_ = std::move(*p);
      mp_ = pool_->mempool();
      gc.pool = pool_.get();
    } else {
      // A NIC's ordinary pool, with the per-lcore cache NIC pools have.
      mp_ = rte_pktmbuf_pool_create(absl::StrCat("mb_h", id).c_str(), kPoolSize, 256, 0,
                                    RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
      if (mp_ == nullptr) Die("cannot create the host pool");
    }
    rxq_ = std::make_unique<GuestRxQueue>(std::move(*q), guest_.memory(), gc);
    if (mapped) pool_->Attach(rxq_.get(), 1, kQueueSize / 2);
    frame_.assign(frame_len, 0);
    for (uint32_t i = 0; i < frame_len; ++i) frame_[i] = static_cast<uint8_t>(i * 7 + 1);
  }

  ~Bench() {
    if (pool_ != nullptr) {
      pool_->Detach();
      std::vector<GuestBuffer> back(kPoolSize);
      const uint16_t n = pool_->TakeParked(back.data(), static_cast<uint16_t>(back.size()));
      rxq_->ReturnUnused(back.data(), n);
    } else if (mp_ != nullptr) {
      rte_mempool_free(mp_);
    }
  }

  // Moves about `frames` frames; adds the cycles to `c`.
  void Run(uint64_t frames, Cycles* c) {
    rte_mbuf* pkts[kBurst];
    uint64_t moved = 0;
    while (moved < frames) {
      guest_.PostAll();
      for (int b = 0; b < kQueueSize / 2 / kBurst; ++b) {
        uint64_t t0;
        {
          MappedPool::NicRefillScope refill(pool_.get());
          t0 = bench::TscBegin();
          if (rte_mempool_get_bulk(mp_, reinterpret_cast<void**>(pkts), kBurst) != 0) {
            Die("the pool ran dry");
          }
        }
        const uint64_t t1 = bench::TscEnd();
        for (rte_mbuf* m : pkts) {  // the NIC's DMA and descriptor write-back
          rte_pktmbuf_reset(m);
          std::memcpy(rte_pktmbuf_mtod(m, void*), frame_.data(), frame_len_);
          m->data_len = static_cast<uint16_t>(frame_len_);
          m->pkt_len = frame_len_;
        }
        const uint64_t t2 = bench::TscBegin();
        uint32_t sum = 0;
        for (rte_mbuf* m : pkts) {
          if (mapped_) pool_->FixupRx(m);
          sum += rte_pktmbuf_mtod(m, const uint8_t*)[5] + rte_pktmbuf_mtod(m, const uint8_t*)[12];
        }
        const uint64_t t3 = bench::TscEnd();
        const uint16_t done = rxq_->Enqueue(pkts, kBurst);
        const uint64_t t4 = bench::TscEnd();
        if (done != kBurst) Die(absl::StrCat("delivered ", done, " of ", kBurst));
        sink_ += sum;
        c->refill += t1 - t0;
        c->rx += t3 - t2;
        c->enqueue += t4 - t3;
        c->frames += kBurst;
        moved += kBurst;
      }
      guest_.Reap();
    }
  }

  const GuestRxQueue& queue() const { return *rxq_; }
  uint64_t sink() const { return sink_; }

 private:
  const bool mapped_;
  const uint32_t frame_len_;
  MiniGuest guest_;
  std::unique_ptr<MappedPool> pool_;
  rte_mempool* mp_ = nullptr;
  std::unique_ptr<GuestRxQueue> rxq_;
  std::vector<uint8_t> frame_;
  uint64_t sink_ = 0;
};

int Main(int argc, char** argv) {
  const uint64_t frames = bench::FlagValue(argc, argv, "--frames", 1 << 20);
  const int repeats = static_cast<int>(bench::FlagValue(argc, argv, "--repeats", 7));
  // --len=N: only frames of N bytes; --path=0 copy only, 1 mapped only.
  const uint64_t only_len = bench::FlagValue(argc, argv, "--len", 0);
  const uint64_t only_path = bench::FlagValue(argc, argv, "--path", 2);
  test::EalOptions eo;
  eo.memory_mb = 512;
  if (absl::Status s = test::StartEal(eo); !s.ok()) Die(s.ToString());
  const double tsc = bench::TscPerNs();
  std::printf("# mapping_bench: %s, %u online CPUs, TSC %.3f GHz\n", bench::CpuModel().c_str(),
              std::thread::hardware_concurrency(), tsc);
  std::printf(
      "# split ring of %u, DPDK PMD buffers, mergeable, EVENT_IDX; bursts of %u; "
      "%llu frames x %d; TSC cycles per frame, medians\n",
      kQueueSize, kBurst, static_cast<unsigned long long>(frames), repeats);
  std::printf("%-6s %5s  %7s %7s %7s %7s  %9s %9s  %9s\n", "path", "bytes", "refill", "rx",
              "enqueue", "total", "min total", "max total", "CPU share");
  int id = 0;
  for (uint32_t len : {60u, 1514u}) {
    for (bool mapped : {false, true}) {
      if ((only_len != 0 && only_len != len) || (only_path != 2 && only_path != mapped)) continue;
      Bench b(mapped, len, id++);
      Cycles warm;
      b.Run(frames / 8, &warm);
      std::vector<double> refill, rx, enq, total;
      const double cpu0 = bench::CpuSeconds();
      const auto wall0 = bench::Clock::now();
      for (int r = 0; r < repeats; ++r) {
        Cycles c;
        b.Run(frames, &c);
        const double f = static_cast<double>(c.frames);
        refill.push_back(c.refill / f);
        rx.push_back(c.rx / f);
        enq.push_back(c.enqueue / f);
        total.push_back((c.refill + c.rx + c.enqueue) / f);
      }
      const double wall = std::chrono::duration<double>(bench::Clock::now() - wall0).count();
      const double share = (bench::CpuSeconds() - cpu0) / wall;
      const GuestRxStats s = b.queue().stats();
      if (mapped && s.copied != 0) Die("the mapped path copied frames");
      if (!mapped && s.zero_copy != 0) Die("the copy path completed in place");
      const bench::Spread t = bench::SpreadOf(total);
      std::printf("%-6s %5u  %7.1f %7.1f %7.1f %7.1f  %9.1f %9.1f  %8.0f%%\n",
                  mapped ? "mapped" : "copy", len, bench::SpreadOf(refill).median,
                  bench::SpreadOf(rx).median, bench::SpreadOf(enq).median, t.median, t.min, t.max,
                  100 * share);
      std::fflush(stdout);
    }
  }
  test::StopEal();
  return 0;
}

}  // namespace
}  // namespace iovtee

int main(int argc, char** argv) { return iovtee::Main(argc, argv); }
