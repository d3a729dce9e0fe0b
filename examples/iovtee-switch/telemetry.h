// The switch's telemetry endpoints (rte_telemetry; query them with
// dpdk-telemetry.py): /iovtee_switch/ports[,PORT], /iovtee_switch/acl,
// /iovtee_switch/mappings, /iovtee_switch/perf, /iovtee_switch/perf_reset.
#ifndef IOVTEE_EXAMPLES_IOVTEE_SWITCH_TELEMETRY_H_
#define IOVTEE_EXAMPLES_IOVTEE_SWITCH_TELEMETRY_H_

namespace iovtee::sw {

class Switch;

// Registers the commands (once per process) and points them at `sw`.
// Commands that arrive while no switch is registered return an error.
void RegisterTelemetry(Switch* sw);
// Waits for commands in progress; none reads `sw` afterwards.
void UnregisterTelemetry(Switch* sw);

}  // namespace iovtee::sw

#endif  // IOVTEE_EXAMPLES_IOVTEE_SWITCH_TELEMETRY_H_
