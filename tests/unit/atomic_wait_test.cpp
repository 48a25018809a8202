// Unit tests of rouse/atomic_wait.hpp.
#include "rouse/atomic_wait.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <thread>

namespace {

using namespace std::chrono_literals;

template <class T>
class atomic_wait_sized : public ::testing::Test {};
using sizes = ::testing::Types<std::uint8_t, std::uint16_t, std::uint32_t, std::uint64_t>;
TYPED_TEST_SUITE(atomic_wait_sized, sizes);

TYPED_TEST(atomic_wait_sized, returns_at_once_when_the_value_already_differs) {
  std::atomic<TypeParam> a{1};
  rouse::atomic_wait(a, TypeParam{0});
  SUCCEED();
}

TYPED_TEST(atomic_wait_sized, notify_after_store_releases_a_sleeping_waiter) {
  std::atomic<TypeParam> a{0};
  std::thread t([&] {
    std::this_thread::sleep_for(10ms);
    a.store(1, std::memory_order_release);
    rouse::atomic_notify_one(a);
  });
  rouse::atomic_wait(a, TypeParam{0});
  EXPECT_EQ(a.load(), TypeParam{1});
  t.join();
}

}  // namespace
