#include "test/mapping/stock_pmd/pcap_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"

namespace iovtee::stock_pmd {
namespace {

void Put32(std::vector<uint8_t>* out, uint32_t v) {
  const size_t at = out->size();
  out->resize(at + 4);
  std::memcpy(out->data() + at, &v, 4);
}

void Put16(std::vector<uint8_t>* out, uint16_t v) {
  const size_t at = out->size();
  out->resize(at + 2);
  std::memcpy(out->data() + at, &v, 2);
}

uint32_t Get32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

}  // namespace

std::vector<uint8_t> PcapFileHeader(uint32_t snaplen) {
  std::vector<uint8_t> h;
  Put32(&h, kPcapMagicUsec);
  Put16(&h, 2);  // version 2.4
  Put16(&h, 4);
  Put32(&h, 0);  // thiszone
  Put32(&h, 0);  // sigfigs
  Put32(&h, snaplen);
  Put32(&h, kPcapLinkEthernet);
  return h;
}

void AppendPcapRecord(std::vector<uint8_t>* out, absl::Span<const uint8_t> frame, uint64_t usec) {
  Put32(out, static_cast<uint32_t>(usec / 1000000));
  Put32(out, static_cast<uint32_t>(usec % 1000000));
  Put32(out, static_cast<uint32_t>(frame.size()));
  Put32(out, static_cast<uint32_t>(frame.size()));
  out->insert(out->end(), frame.begin(), frame.end());
}

absl::StatusOr<std::vector<PcapReader::Record>> PcapReader::Poll() {
  const int fd = open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return absl::NotFoundError(absl::StrFormat("open %s: %s", path_, std::strerror(errno)));
  }
  // Everything after the last whole record: small files, re-read is cheap.
  buf_.clear();
  uint8_t chunk[65536];
  for (;;) {
    const ssize_t n = pread(fd, chunk, sizeof(chunk), static_cast<off_t>(offset_ + buf_.size()));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      close(fd);
      return absl::InternalError(absl::StrFormat("read %s: %s", path_, std::strerror(err)));
    }
    if (n == 0) break;
    buf_.insert(buf_.end(), chunk, chunk + n);
  }
  close(fd);

  std::vector<Record> out;
  size_t pos = 0;
  if (!have_header_) {
    if (buf_.size() < kPcapFileHeaderLen) return out;
    const uint32_t magic = Get32(buf_.data());
    if (magic != kPcapMagicUsec && magic != kPcapMagicNsec) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: not a pcap file in this byte order (magic 0x%08x)", path_, magic));
    }
    snaplen_ = Get32(buf_.data() + 16);
    const uint32_t link = Get32(buf_.data() + 20);
    if (link != kPcapLinkEthernet) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: link type %u, not Ethernet", path_, link));
    }
    have_header_ = true;
    pos = kPcapFileHeaderLen;
  }
  while (buf_.size() - pos >= kPcapRecordHeaderLen) {
    const uint32_t caplen = Get32(buf_.data() + pos + 8);
    const uint32_t len = Get32(buf_.data() + pos + 12);
    if (caplen > snaplen_ || caplen > len) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: record %u at byte %u: caplen %u, len %u, snaplen %u", path_,
                          records_ + out.size(), offset_ + pos, caplen, len, snaplen_));
    }
    if (buf_.size() - pos - kPcapRecordHeaderLen < caplen) break;  // still being written
    out.push_back(Record{caplen, len, buf_.data() + pos + kPcapRecordHeaderLen});
    pos += kPcapRecordHeaderLen + caplen;
  }
  offset_ += pos;
  records_ += out.size();
  return out;
}

}  // namespace iovtee::stock_pmd
