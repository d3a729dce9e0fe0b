// The driver's end of the soft NIC's control socket: connect (with retries),
// then request/acknowledge exchanges of simnic::Msg, each optionally carrying
// one fd (SCM_RIGHTS).
#ifndef IOVTEE_TEST_SOFTNIC_PMD_CONTROL_CHANNEL_H_
#define IOVTEE_TEST_SOFTNIC_PMD_CONTROL_CHANNEL_H_

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>

#include "test/softnic/simnic_abi.h"

namespace iovtee::simnic {

class ControlChannel {
 public:
  ControlChannel() = default;
  ControlChannel(const ControlChannel&) = delete;
  ControlChannel& operator=(const ControlChannel&) = delete;
  ~ControlChannel() { Close(); }

  // Connects to the device's listening socket at `path`, retrying (the
  // device may still be starting) until `timeout_ms` has passed. Returns 0 or
  // -errno of the last attempt (-ENOENT: no socket, -ECONNREFUSED: nobody
  // listening).
  int Connect(const std::string& path, int timeout_ms);

  // Sends `msg` (its seq is assigned here) with `fd` (or none if -1) and
  // waits up to `timeout_ms` for the kAck with the same seq. Returns the ack's
  // status (0 or -errno from the device), -ETIMEDOUT, or -errno of a socket
  // failure (then the channel is broken: later requests fail at once).
  // Thread-safe: requests are serialised, so acks are never mixed up.
  int Request(Msg msg, int fd, int timeout_ms);

  bool connected() const { return sock_ >= 0; }
  void Close();

 private:
  int SendLocked(const Msg& msg, int fd);
  // Returns 0 with the ack's status in *status, or -errno of the socket.
  int WaitAckLocked(uint32_t seq, int timeout_ms, int* status);

  std::mutex mu_;
  int sock_ = -1;
  bool broken_ = false;
  uint32_t next_seq_ = 1;
  // A partly received Msg survives a timed-out request: the stream stays in
  // step, and a late ack is recognised by its seq and dropped.
  unsigned char rx_buf_[sizeof(Msg)] = {};
  size_t rx_have_ = 0;
};

}  // namespace iovtee::simnic

#endif  // IOVTEE_TEST_SOFTNIC_PMD_CONTROL_CHANNEL_H_
