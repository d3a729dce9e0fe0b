// iovtee-switch's rte_log type ("iovtee.switch") and its logging macro.
// Levels are set the usual way: --log-level=iovtee.switch:debug to EAL.
#ifndef IOVTEE_EXAMPLES_IOVTEE_SWITCH_LOG_H_
#define IOVTEE_EXAMPLES_IOVTEE_SWITCH_LOG_H_

#include <rte_log.h>

namespace iovtee::sw {

// The registered log type; valid from static initialisation on.
int SwitchLogType();

}  // namespace iovtee::sw

// SW_LOG(ERR, "port %s: %s", name, why): one line, newline added.
#define SW_LOG(level, fmt, ...) \
  rte_log(RTE_LOG_##level, ::iovtee::sw::SwitchLogType(), "iovtee-switch: " fmt "\n", ##__VA_ARGS__)

#endif  // IOVTEE_EXAMPLES_IOVTEE_SWITCH_LOG_H_
