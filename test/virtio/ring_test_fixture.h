// The fixture both ring tests share: an arena, a driver of one layout, the
// device model over a DeviceQueue, and the checks every test ends with.
#ifndef IOVTEE_TEST_VIRTIO_RING_TEST_FIXTURE_H_
#define IOVTEE_TEST_VIRTIO_RING_TEST_FIXTURE_H_

#include <memory>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "src/virtio/device_queue.h"
#include "test/virtio/driver_emulator.h"

namespace iovtee::virtio::testing {

template <RingLayout kLayout>
class RingTest : public ::testing::Test {
 protected:
  void Init(DriverOptions options, ArenaOptions arena = {}) {
    options.layout = kLayout;
    device_.reset();
    driver_.reset();
    arena_ = std::make_unique<GuestArena>(arena);
    driver_ = std::make_unique<VirtioDriver>(arena_.get(), options);
    auto device = DeviceModel::Create(driver_.get());
    ASSERT_TRUE(device.ok()) << device.status();
    device_ = std::move(*device);
  }

  void TearDown() override {
    if (driver_ == nullptr) return;
    EXPECT_THAT(driver_->violations(), ::testing::IsEmpty());
    EXPECT_THAT(device_->errors(), ::testing::IsEmpty());
    EXPECT_EQ(device_->returned_unverified(), 0u);
    absl::Status integrity = driver_->CheckIntegrity();
    EXPECT_TRUE(integrity.ok()) << integrity;
    EXPECT_FALSE(device_->queue().broken()) << ChainErrorName(device_->queue().last_error());
  }

  DeviceQueue& queue() { return device_->queue(); }

  // Posts up to `max` buffers of `style` (fewer if the ring fills); returns ids.
  std::vector<uint16_t> PostMany(PostStyle style, size_t max) {
    std::vector<uint16_t> ids;
    while (ids.size() < max) {
      std::optional<uint16_t> id = driver_->PostStyled(style);
      if (!id.has_value()) break;
      ids.push_back(*id);
    }
    return ids;
  }

  // Reaps everything, verifies it against the device's writes, returns ids.
  std::vector<uint16_t> ReapIds() {
    std::vector<Completion> done = driver_->ReapAll();
    device_->VerifyAll(done);
    std::vector<uint16_t> ids;
    for (const Completion& c : done) ids.push_back(c.id);
    return ids;
  }

  std::unique_ptr<GuestArena> arena_;
  std::unique_ptr<VirtioDriver> driver_;
  std::unique_ptr<DeviceModel> device_;
};

}  // namespace iovtee::virtio::testing

#endif  // IOVTEE_TEST_VIRTIO_RING_TEST_FIXTURE_H_
