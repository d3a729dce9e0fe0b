#include "test/softnic/device/control_link.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace iovtee::softnic {
namespace {

constexpr int kMaxFdsPerRead = 4;

}  // namespace

ControlLink::~ControlLink() {
  Disconnect();
  if (listen_fd_ >= 0) {
    close(listen_fd_);
    unlink(path_.c_str());
  }
}

absl::Status ControlLink::Listen(const std::string& path) {
  if (listen_fd_ >= 0) return absl::FailedPreconditionError("already listening on " + path_);
  sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "socket path '", path, "' is empty or longer than ", sizeof(addr.sun_path) - 1, " bytes"));
  }
  memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::ErrnoToStatus(errno, "socket(AF_UNIX)");
  // A stale socket file from a previous run would make bind fail.
  unlink(path.c_str());
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || listen(fd, 4) != 0) {
    int err = errno;
    close(fd);
    return absl::ErrnoToStatus(err, absl::StrCat("bind/listen on ", path));
  }
  listen_fd_ = fd;
  path_ = path;
  return absl::OkStatus();
}

absl::Status ControlLink::Attach(int fd) {
  if (conn_fd_ >= 0) return absl::FailedPreconditionError("a driver is already connected");
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
    return absl::ErrnoToStatus(errno, "fcntl(O_NONBLOCK) on the attached socket");
  }
  conn_fd_ = fd;
  return absl::OkStatus();
}

bool ControlLink::AcceptPending(int* refused) {
  *refused = 0;
  if (listen_fd_ < 0) return false;
  bool accepted = false;
  for (;;) {
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return accepted;  // EAGAIN, or a connection that died in the backlog
    if (conn_fd_ >= 0) {
      close(fd);  // port busy
      ++*refused;
      continue;
    }
    conn_fd_ = fd;
    accepted = true;
  }
}

ControlLink::RecvResult ControlLink::Receive(ControlMessage* out) {
  if (conn_fd_ < 0) return RecvResult::kClosed;
  while (have_ < sizeof(buf_)) {
    iovec iov = {buf_ + have_, sizeof(buf_) - have_};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFdsPerRead)];
    msghdr mh = {};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = control;
    mh.msg_controllen = sizeof(control);
    ssize_t n = recvmsg(conn_fd_, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return RecvResult::kNone;
    if (n <= 0) return RecvResult::kClosed;
    if (mh.msg_flags & MSG_CTRUNC) pending_extra_fds_ = true;
    for (cmsghdr* c = CMSG_FIRSTHDR(&mh); c != nullptr; c = CMSG_NXTHDR(&mh, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < count; ++i) {
        int fd;
        memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        if (pending_fd_ < 0) {
          pending_fd_ = fd;
        } else {
          close(fd);
          pending_extra_fds_ = true;
        }
      }
    }
    have_ += static_cast<size_t>(n);
  }
  memcpy(&out->msg, buf_, sizeof(buf_));
  out->fd = pending_fd_;
  out->extra_fds = pending_extra_fds_;
  have_ = 0;
  pending_fd_ = -1;
  pending_extra_fds_ = false;
  return RecvResult::kMessage;
}

bool ControlLink::SendAck(uint32_t seq, int32_t status) {
  if (conn_fd_ < 0) return false;
  simnic::Msg ack = {};
  ack.type = simnic::MsgType::kAck;
  ack.seq = seq;
  ack.status = status;
  for (;;) {
    ssize_t n = send(conn_fd_, &ack, sizeof(ack), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    // A partial ack cannot be completed without blocking; the driver waits
    // for each ack before its next message, so this only happens when it
    // misbehaves.
    return n == static_cast<ssize_t>(sizeof(ack));
  }
}

void ControlLink::ClosePendingFd() {
  if (pending_fd_ >= 0) close(pending_fd_);
  pending_fd_ = -1;
  pending_extra_fds_ = false;
}

void ControlLink::Disconnect() {
  ClosePendingFd();
  have_ = 0;
  if (conn_fd_ >= 0) close(conn_fd_);
  conn_fd_ = -1;
}

}  // namespace iovtee::softnic
