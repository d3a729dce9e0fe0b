#include "test/softnic/device/device_rig.h"

#include <unistd.h>

#include "absl/strings/str_cat.h"

namespace iovtee::softnic::testing {

absl::StatusOr<std::unique_ptr<Rig>> Rig::Create(RigOptions options) {
  auto rig = std::make_unique<Rig>();
  auto device = Device::Create(options.device);
  if (!device.ok()) return device.status();
  rig->device = std::move(*device);
  auto driver = FakeDriver::Create(options.driver);
  if (!driver.ok()) return driver.status();
  rig->driver = std::move(*driver);
  auto dma = DmaArea::Create(options.dma_len);
  if (!dma.ok()) return dma.status();
  rig->dma = std::move(*dma);

  auto fd = rig->driver->SocketPair();
  if (!fd.ok()) return fd.status();
  absl::Status s = rig->device->Attach(*fd);
  if (!s.ok()) {
    close(*fd);
    return s;
  }
  Device* dev = rig->device.get();
  rig->driver->set_pump([dev] { dev->PollControl(); });
  if (int r = rig->driver->Hello(); r != 0) {
    return absl::InternalError(absl::StrCat("kHello acked with ", r));
  }
  if (int r = rig->driver->Map(kIova, rig->dma->len(), rig->dma->fd(), 0); r != 0) {
    return absl::InternalError(absl::StrCat("kMap acked with ", r));
  }
  return rig;
}

}  // namespace iovtee::softnic::testing
