// Which Rx and Tx burst functions DPDK's virtio PMD chose for a port, read
// from the PMD's own log line. In DPDK 22.11 nothing else tells: the burst
// functions are internal to the driver (librte_net_virtio.so exports no
// symbols), virtio has no rx_burst_mode_get, and the choice depends on
// negotiated features, offloads and the CPU, not only on the devargs. The
// PMD logs it when the port starts (set_rxtx_funcs, logtype
// pmd.net.virtio.init, level INFO):
//   "virtio: using vectorized Rx path on port 0"
//   "virtio: using standard Tx path on port 0"
// and why it turned a requested vectorized path off (pmd.net.virtio.driver,
// INFO), e.g. "disabled split ring vectorized rx for mrg_rxbuf enabled".
//
// While a VirtioPathLog lives, both log types log at INFO at least and the
// lines EAL logs are scanned. For that, EAL's log stream is routed through a
// scanner the first time (and again if someone replaced the stream since):
// it passes every byte on, unchanged, to the stream that was in place, and
// stays installed for the life of the process, since another thread may be
// writing to it at any time. Scope a VirtioPathLog around the port's probe
// and start; the destructor puts the levels back. One at a time.
#ifndef IOVTEE_TEST_SOFTNIC_PEER_VIRTIO_PATH_LOG_H_
#define IOVTEE_TEST_SOFTNIC_PEER_VIRTIO_PATH_LOG_H_

#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"

namespace iovtee::softnic {

class VirtioPathLog {
 public:
  static constexpr char kInitLogType[] = "pmd.net.virtio.init";
  static constexpr char kDriverLogType[] = "pmd.net.virtio.driver";

  // Needs a running EAL. If the scanner cannot be made (no memory), logging
  // is left as it was and nothing is recorded.
  VirtioPathLog();
  ~VirtioPathLog();
  VirtioPathLog(const VirtioPathLog&) = delete;
  VirtioPathLog& operator=(const VirtioPathLog&) = delete;

  // The last "using X Rx path" / "using X Tx path" seen: X, e.g.
  // "vectorized", "standard", "inorder", "mergeable buffer", "packed ring
  // vectorized"; "" when none was logged.
  std::string rx_path() const;
  std::string tx_path() const;
  // Every other line that mentions "vectorized": why the PMD turned a
  // requested vectorized path off.
  std::vector<std::string> vectorized_notes() const;

  // Feeds one line as the scanner sees it (tests).
  void ScanLine(const std::string& line);

 private:
  struct Level {
    int type = -1;
    int before = -1;  // -1: nothing to restore
  };
  static void Raise(const char* name, Level* level);

  Level init_level_, driver_level_;
  mutable absl::Mutex mu_;
  std::string rx_path_ ABSL_GUARDED_BY(mu_);
  std::string tx_path_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> notes_ ABSL_GUARDED_BY(mu_);
};

}  // namespace iovtee::softnic

#endif  // IOVTEE_TEST_SOFTNIC_PEER_VIRTIO_PATH_LOG_H_
