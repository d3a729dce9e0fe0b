// The queue start/stop handshake of simnic_abi.h, shared by Rx and Tx.
#include <time.h>
#include <unistd.h>

#include <cerrno>

#include <rte_pause.h>

#include "test/softnic/pmd/port.h"

namespace iovtee::simnic {

void EnableQueue(QueueRegs* regs) {
  StoreRelaxed(&regs->generation, LoadRelaxed(&regs->generation) + 1);
  // Release: the ring, the tail and the configuration are visible to a
  // device that sees enabled = 1.
  __atomic_store_n(&regs->enabled, 1u, __ATOMIC_RELEASE);
}

int DisableQueue(QueueRegs* regs, int timeout_ms) {
  __atomic_store_n(&regs->enabled, 0u, __ATOMIC_SEQ_CST);
  const uint32_t gen = LoadRelaxed(&regs->generation);
  timespec start;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (unsigned spins = 0;; ++spins) {
    // Acquire: the device's last writes to the ring and the buffers happen
    // before its acknowledgement.
    if (__atomic_load_n(&regs->stopped_generation, __ATOMIC_ACQUIRE) == gen) return 0;
    if (spins < 1000) {
      rte_pause();
      continue;
    }
    timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    const int64_t waited_ms =
        (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
    if (waited_ms >= timeout_ms) return -ETIMEDOUT;
    usleep(50);
  }
}

}  // namespace iovtee::simnic
