// The net_simnic PMD's rte_log type ("pmd.net.simnic") and its logging macro.
#ifndef IOVTEE_TEST_SOFTNIC_PMD_SIMNIC_LOG_H_
#define IOVTEE_TEST_SOFTNIC_PMD_SIMNIC_LOG_H_

#include <rte_log.h>

namespace iovtee::simnic {

// Registered at static initialisation (before any probe can run).
extern int g_log_type;

}  // namespace iovtee::simnic

// SIMNIC_LOG(ERR, "%s: cannot connect to %s: %s", name, path, strerror(e)):
// one line, newline added.
#define SIMNIC_LOG(level, fmt, ...) \
  rte_log(RTE_LOG_##level, ::iovtee::simnic::g_log_type, "net_simnic: " fmt "\n", ##__VA_ARGS__)

#endif  // IOVTEE_TEST_SOFTNIC_PMD_SIMNIC_LOG_H_
