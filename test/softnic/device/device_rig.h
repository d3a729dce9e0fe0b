// A device, a fake driver connected to it over a socketpair, and one DMA
// area mapped at `kIova`: the starting point of most device tests.
#ifndef IOVTEE_TEST_SOFTNIC_DEVICE_DEVICE_RIG_H_
#define IOVTEE_TEST_SOFTNIC_DEVICE_DEVICE_RIG_H_

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "test/softnic/device/device.h"
#include "test/softnic/device/fake_driver.h"

namespace iovtee::softnic::testing {

struct RigOptions {
  FakeDriverOptions driver;
  DeviceOptions device;
  size_t dma_len = 1 << 20;
};

struct Rig {
  static constexpr uint64_t kIova = 0x40000000;

  static absl::StatusOr<std::unique_ptr<Rig>> Create(RigOptions options = {});

  uint64_t iova(size_t off) const { return kIova + off; }
  uint8_t* host(size_t off) const { return dma->data() + off; }

  std::unique_ptr<Device> device;
  std::unique_ptr<FakeDriver> driver;
  std::unique_ptr<DmaArea> dma;
};

}  // namespace iovtee::softnic::testing

#endif  // IOVTEE_TEST_SOFTNIC_DEVICE_DEVICE_RIG_H_
