// Small pieces the peer's polling loops share (NIC side and guest side).
#ifndef IOVTEE_TEST_SOFTNIC_PEER_LOOP_UTIL_H_
#define IOVTEE_TEST_SOFTNIC_PEER_LOOP_UTIL_H_

#include <sys/stat.h>
#include <time.h>

#include <string>

namespace iovtee::softnic {

inline bool FileExists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

inline bool IsSocket(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

// Sleeps `us` microseconds (0: returns at once): a polling loop with nothing
// to do leaves the core to the other processes of a test (a switch, other
// guests) instead of spinning on it. The caller sets a small timer slack.
inline void IdleSleep(int us) {
  if (us <= 0) return;
  const timespec ts = {0, static_cast<long>(us) * 1000};
  nanosleep(&ts, nullptr);
}

}  // namespace iovtee::softnic

#endif  // IOVTEE_TEST_SOFTNIC_PEER_LOOP_UTIL_H_
