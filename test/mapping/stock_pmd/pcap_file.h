// The classic pcap file format, enough to feed net_pcap (rx_pcap) and read
// what it dumps (tx_pcap): Ethernet link type, microsecond or nanosecond
// timestamps, the writer's byte order (little-endian here).
#ifndef IOVTEE_TEST_MAPPING_STOCK_PMD_PCAP_FILE_H_
#define IOVTEE_TEST_MAPPING_STOCK_PMD_PCAP_FILE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace iovtee::stock_pmd {

inline constexpr uint32_t kPcapMagicUsec = 0xa1b2c3d4;
inline constexpr uint32_t kPcapMagicNsec = 0xa1b23c4d;
inline constexpr uint32_t kPcapLinkEthernet = 1;
inline constexpr size_t kPcapFileHeaderLen = 24;
inline constexpr size_t kPcapRecordHeaderLen = 16;

// The 24-byte file header: microsecond timestamps, Ethernet, `snaplen`.
std::vector<uint8_t> PcapFileHeader(uint32_t snaplen = 65535);

// Appends one record (header + frame) to `out`, stamped `usec` since the epoch.
void AppendPcapRecord(std::vector<uint8_t>* out, absl::Span<const uint8_t> frame, uint64_t usec);

// Reads the records of a pcap file that may still be growing (another
// process appending whole records, as net_pcap's dumper does after each
// burst): Poll() parses what has been written since the last call and stops
// before an incomplete record.
class PcapReader {
 public:
  struct Record {
    uint32_t caplen;
    uint32_t len;  // length on the wire
    const uint8_t* data;
  };

  explicit PcapReader(std::string path) : path_(std::move(path)) {}

  // Reads new bytes and returns the records completed since the last call
  // (pointers valid until the next Poll). Fails on a file that is not an
  // Ethernet pcap in this machine's byte order, or a record larger than
  // the header's snaplen.
  absl::StatusOr<std::vector<Record>> Poll();

  uint64_t records() const { return records_; }

 private:
  std::string path_;
  uint64_t offset_ = 0;  // bytes of the file consumed (whole records)
  bool have_header_ = false;
  uint32_t snaplen_ = 0;
  uint64_t records_ = 0;
  std::vector<uint8_t> buf_;
};

}  // namespace iovtee::stock_pmd

#endif  // IOVTEE_TEST_MAPPING_STOCK_PMD_PCAP_FILE_H_
