#include "examples/iovtee-switch/log.h"

namespace iovtee::sw {
namespace {

// Registered before main() so that --log-level=iovtee.switch:LEVEL given to
// rte_eal_init() applies to it.
const int kLogType = [] {
  const int t = rte_log_register_type_and_pick_level("iovtee.switch", RTE_LOG_INFO);
  return t < 0 ? RTE_LOGTYPE_USER1 : t;
}();

}  // namespace

int SwitchLogType() { return kLogType; }

}  // namespace iovtee::sw
