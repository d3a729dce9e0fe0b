#include "src/common/log.h"

namespace iovtee {
namespace {

// Registered before main() so that --log-level=lib.iovtee:LEVEL given to
// rte_eal_init() applies to it.
const int kLogType = [] {
  const int t = rte_log_register_type_and_pick_level("lib.iovtee", RTE_LOG_INFO);
  return t < 0 ? RTE_LOGTYPE_USER1 : t;
}();

}  // namespace

int LogType() { return kLogType; }

}  // namespace iovtee
