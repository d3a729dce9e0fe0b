// The transport of the soft NIC's control channel: a unix stream socket that
// carries simnic::Msg records, each with at most one fd (SCM_RIGHTS).
//
// Knows framing and fds, not what messages mean. Everything is non-blocking:
// the device polls it from its datapath loop.
#ifndef IOVTEE_TEST_SOFTNIC_DEVICE_CONTROL_LINK_H_
#define IOVTEE_TEST_SOFTNIC_DEVICE_CONTROL_LINK_H_

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "test/softnic/simnic_abi.h"

namespace iovtee::softnic {

// A received message and the fd that came with it (-1 if none). The receiver
// owns `fd` and must close it.
struct ControlMessage {
  simnic::Msg msg;
  int fd = -1;
  bool extra_fds = false;  // more than one fd arrived (closed already): malformed
};

class ControlLink {
 public:
  ControlLink() = default;
  ~ControlLink();
  ControlLink(const ControlLink&) = delete;
  ControlLink& operator=(const ControlLink&) = delete;

  // Binds and listens on `path` (an existing socket file there is replaced),
  // non-blocking. The file is removed again on destruction.
  absl::Status Listen(const std::string& path);

  // Takes ownership of an already-connected stream socket. Fails when a
  // connection is up.
  absl::Status Attach(int fd);

  // Accepts a pending connection when there is none. A second driver that
  // connects while one is up is accepted and closed at once, so it fails fast
  // instead of waiting for acks that never come; *refused counts those.
  // Returns true when a new connection was accepted.
  bool AcceptPending(int* refused);

  enum class RecvResult { kMessage, kNone, kClosed };
  // Reads one message if a whole one has arrived (bytes are buffered across
  // calls; an fd is attached to the message whose bytes it arrived with).
  // kClosed on EOF or a socket error: the connection is gone.
  RecvResult Receive(ControlMessage* out);

  // Sends kAck for `seq` with `status`. Returns false when the socket cannot
  // take it (the driver is not reading acks or is gone): the caller drops the
  // connection.
  bool SendAck(uint32_t seq, int32_t status);

  // Closes the connection (not the listening socket); pending partial data
  // and fds are discarded.
  void Disconnect();

  bool connected() const { return conn_fd_ >= 0; }
  bool listening() const { return listen_fd_ >= 0; }
  const std::string& path() const { return path_; }

 private:
  void ClosePendingFd();

  int listen_fd_ = -1;
  int conn_fd_ = -1;
  std::string path_;
  // A message in assembly.
  alignas(8) unsigned char buf_[sizeof(simnic::Msg)] = {};
  size_t have_ = 0;
  int pending_fd_ = -1;
  bool pending_extra_fds_ = false;
};

}  // namespace iovtee::softnic

#endif  // IOVTEE_TEST_SOFTNIC_DEVICE_CONTROL_LINK_H_
