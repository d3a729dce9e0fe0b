#include "test/softnic/pmd/control_channel.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace iovtee::simnic {
namespace {

int64_t NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1000000;
}

}  // namespace

int ControlChannel::Connect(const std::string& path, int timeout_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  if (sock_ >= 0) return -EISCONN;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) return -ENAMETOOLONG;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);

  const int64_t deadline = NowMs() + timeout_ms;
  int err = 0;
  for (;;) {
    const int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) return -errno;
    if (connect(s, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
      sock_ = s;
      broken_ = false;
      rx_have_ = 0;
      return 0;
    }
    err = errno;
    close(s);
    // Only "not there yet" is worth waiting for.
    if (err != ENOENT && err != ECONNREFUSED && err != EAGAIN) return -err;
    if (NowMs() >= deadline) return -err;
    usleep(10 * 1000);
  }
}

void ControlChannel::Close() {
  std::lock_guard<std::mutex> lock(mu_);
  if (sock_ >= 0) close(sock_);
  sock_ = -1;
  rx_have_ = 0;
}

int ControlChannel::SendLocked(const Msg& msg, int fd) {
  iovec iov{const_cast<Msg*>(&msg), sizeof(msg)};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  if (fd >= 0) {
    mh.msg_control = control;
    mh.msg_controllen = sizeof(control);
    cmsghdr* cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(cm), &fd, sizeof(int));
  }
  for (;;) {
    const ssize_t n = sendmsg(sock_, &mh, MSG_NOSIGNAL);
    if (n == static_cast<ssize_t>(sizeof(msg))) return 0;
    if (n < 0 && errno == EINTR) continue;
    if (n >= 0) {
      // A stream socket may take part of a message; the fd went with the
      // first byte, so the rest goes without it.
      const char* rest = reinterpret_cast<const char*>(&msg) + n;
      size_t left = sizeof(msg) - static_cast<size_t>(n);
      while (left > 0) {
        const ssize_t m = send(sock_, rest, left, MSG_NOSIGNAL);
        if (m < 0 && errno == EINTR) continue;
        if (m <= 0) return m < 0 ? -errno : -EPIPE;
        rest += m;
        left -= static_cast<size_t>(m);
      }
      return 0;
    }
    return -errno;
  }
}

int ControlChannel::WaitAckLocked(uint32_t seq, int timeout_ms, int* status) {
  const int64_t deadline = NowMs() + timeout_ms;
  for (;;) {
    while (rx_have_ < sizeof(Msg)) {
      const int64_t left = deadline - NowMs();
      if (left <= 0) return -ETIMEDOUT;
      pollfd p{sock_, POLLIN, 0};
      const int r = poll(&p, 1, static_cast<int>(left));
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return -errno;
      if (r == 0) return -ETIMEDOUT;
      const ssize_t n = recv(sock_, rx_buf_ + rx_have_, sizeof(Msg) - rx_have_, 0);
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (n < 0) return -errno;
      if (n == 0) return -ECONNRESET;  // the device went away
      rx_have_ += static_cast<size_t>(n);
    }
    Msg ack;
    std::memcpy(&ack, rx_buf_, sizeof(ack));
    rx_have_ = 0;
    if (ack.type != MsgType::kAck) return -EPROTO;
    if (ack.seq == seq) {
      *status = ack.status;
      return 0;
    }
    // An ack for an earlier request that timed out: skip it.
  }
}

int ControlChannel::Request(Msg msg, int fd, int timeout_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  if (sock_ < 0) return -ENOTCONN;
  if (broken_) return -EPIPE;
  msg.seq = next_seq_++;
  int status = 0;
  int r = SendLocked(msg, fd);
  if (r == 0) r = WaitAckLocked(msg.seq, timeout_ms, &status);
  if (r == 0) return status;
  // A timeout leaves the stream usable (a late ack is skipped by seq); any
  // other socket error does not.
  if (r != -ETIMEDOUT) broken_ = true;
  return r;
}

}  // namespace iovtee::simnic
