// The library's rte_log type ("lib.iovtee") and its logging macro.
//
// Messages go through DPDK's logger so users control them the usual way:
// --log-level=lib.iovtee:debug on the EAL command line, or rte_log_set_level().
#ifndef IOVTEE_SRC_COMMON_LOG_H_
#define IOVTEE_SRC_COMMON_LOG_H_

#include <rte_log.h>

namespace iovtee {

// The registered log type; valid from static initialisation on.
int LogType();

}  // namespace iovtee

// IOVTEE_LOG(ERR, "mapping %s: %s", name, why): one line, newline added.
#define IOVTEE_LOG(level, fmt, ...) \
  rte_log(RTE_LOG_##level, ::iovtee::LogType(), "iovtee: " fmt "\n", ##__VA_ARGS__)

#endif  // IOVTEE_SRC_COMMON_LOG_H_
