#include "src/pool/obj_stack.h"

#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace iovtee {
namespace {

void* P(uintptr_t i) { return reinterpret_cast<void*>(i); }

TEST(ObjStackTest, LastPushedComesOutFirst) {
  ObjStack s(8);
  void* in[3] = {P(1), P(2), P(3)};
  ASSERT_TRUE(s.Push(in, 3));
  void* in2[1] = {P(4)};
  ASSERT_TRUE(s.Push(in2, 1));
  EXPECT_EQ(s.Count(), 4u);
  void* out[2];
  ASSERT_TRUE(s.PopBulk(out, 2));
  EXPECT_EQ(out[0], P(4));
  EXPECT_EQ(out[1], P(3));
  EXPECT_EQ(s.Count(), 2u);
}

TEST(ObjStackTest, BulkIsAllOrNothing) {
  ObjStack s(4);
  void* in[3] = {P(1), P(2), P(3)};
  ASSERT_TRUE(s.Push(in, 3));
  EXPECT_FALSE(s.Push(in, 2)) << "5 objects in a stack of 4";
  EXPECT_EQ(s.Count(), 3u);
  void* out[4] = {};
  EXPECT_FALSE(s.PopBulk(out, 4));
  EXPECT_EQ(out[0], nullptr) << "a failed bulk pop writes nothing";
  EXPECT_EQ(s.Count(), 3u);
}

TEST(ObjStackTest, BurstTakesWhatThereIs) {
  ObjStack s(4);
  void* in[2] = {P(1), P(2)};
  ASSERT_TRUE(s.Push(in, 2));
  void* out[4];
  EXPECT_EQ(s.PopBurst(out, 4), 2u);
  EXPECT_EQ(out[0], P(2));
  EXPECT_EQ(out[1], P(1));
  EXPECT_EQ(s.PopBurst(out, 4), 0u);
  EXPECT_EQ(s.Count(), 0u);
}

// Two threads moving objects through the stack: nothing lost or duplicated.
TEST(ObjStackTest, ConcurrentPushPopKeepsEveryObject) {
  constexpr uint32_t kObjs = 1024;
  ObjStack s(kObjs);
  std::vector<void*> all(kObjs);
  for (uint32_t i = 0; i < kObjs; ++i) all[i] = P(i + 1);
  ASSERT_TRUE(s.Push(all.data(), kObjs));
  auto churn = [&s] {
    void* objs[32];
    for (int round = 0; round < 20000; ++round) {
      const uint32_t n = s.PopBurst(objs, 1 + round % 32);
      ASSERT_TRUE(s.Push(objs, n));
    }
  };
  std::thread a(churn), b(churn);
  a.join();
  b.join();
  ASSERT_EQ(s.Count(), kObjs);
  std::vector<void*> out(kObjs);
  ASSERT_TRUE(s.PopBulk(out.data(), kObjs));
  std::vector<bool> seen(kObjs + 1, false);
  for (void* o : out) {
    const auto i = reinterpret_cast<uintptr_t>(o);
    ASSERT_GE(i, 1u);
    ASSERT_LE(i, kObjs);
    EXPECT_FALSE(seen[i]) << "object " << i << " twice";
    seen[i] = true;
  }
}

}  // namespace
}  // namespace iovtee
