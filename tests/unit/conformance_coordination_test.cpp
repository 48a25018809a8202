// The std conformance suite for the coordination types: one set of typed
// tests, written against the std API only, run over std's types and
// rouse's drop-in replacements (latch, barrier, counting and binary
// semaphore). A difference in behaviour between the two is a bug in rouse.
#include <gtest/gtest.h>

#include <atomic>
#include <barrier>
#include <chrono>
#include <latch>
#include <semaphore>
#include <thread>
#include <type_traits>
#include <vector>

#include "rouse/barrier.hpp"
#include "rouse/latch.hpp"
#include "rouse/semaphore.hpp"

namespace {

using namespace std::chrono_literals;

// ---- latch ---------------------------------------------------------------

template <class L>
class latch_conformance : public ::testing::Test {};
using latch_types = ::testing::Types<std::latch, rouse::latch>;
TYPED_TEST_SUITE(latch_conformance, latch_types);

TYPED_TEST(latch_conformance, interface) {
  static_assert(!std::is_copy_constructible_v<TypeParam> && !std::is_copy_assignable_v<TypeParam>);
  static_assert(std::is_nothrow_invocable_v<decltype(&TypeParam::max)>);
  EXPECT_GE(TypeParam::max(), 1'000'000);
}

TYPED_TEST(latch_conformance, count_down_try_wait_wait) {
  TypeParam l(2);
  EXPECT_FALSE(l.try_wait());
  l.count_down();
  EXPECT_FALSE(l.try_wait());
  l.count_down();
  EXPECT_TRUE(l.try_wait());
  l.wait();
}

TYPED_TEST(latch_conformance, arrive_and_wait_across_threads) {
  TypeParam l(4);
  std::atomic<int> before{0};
  std::vector<std::thread> ts;
  for (int i = 0; i < 3; ++i)
    ts.emplace_back([&] {
      before.fetch_add(1);
      l.arrive_and_wait();
      EXPECT_EQ(before.load(), 4);
    });
  before.fetch_add(1);
  l.arrive_and_wait(1);
  for (auto& t : ts) t.join();
}

TYPED_TEST(latch_conformance, zero_is_already_open) {
  TypeParam l(0);
  EXPECT_TRUE(l.try_wait());
  l.wait();
}

// ---- barrier ---------------------------------------------------------------

struct counting_completion {
  int* count;
  void operator()() noexcept { ++*count; }
};

template <class B>
class barrier_conformance : public ::testing::Test {};
using barrier_types = ::testing::Types<std::barrier<counting_completion>, rouse::barrier<counting_completion>>;
TYPED_TEST_SUITE(barrier_conformance, barrier_types);

TYPED_TEST(barrier_conformance, interface) {
  static_assert(!std::is_copy_constructible_v<TypeParam> && !std::is_copy_assignable_v<TypeParam>);
  using token = typename TypeParam::arrival_token;
  static_assert(std::is_move_constructible_v<token> && std::is_move_assignable_v<token>);
  EXPECT_GE(TypeParam::max(), 1'000'000);
}

TYPED_TEST(barrier_conformance, phases_and_completion) {
  int count = 0;
  TypeParam b(3, counting_completion{&count});
  std::vector<std::thread> ts;
  for (int i = 0; i < 2; ++i)
    ts.emplace_back([&] {
      for (int p = 0; p < 50; ++p) b.arrive_and_wait();
    });
  for (int p = 0; p < 50; ++p) {
    b.arrive_and_wait();
    EXPECT_GE(count, p + 1);
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(count, 50);
}

TYPED_TEST(barrier_conformance, arrive_returns_a_token_to_wait_on) {
  int count = 0;
  TypeParam b(2, counting_completion{&count});
  std::thread t([&] { b.arrive_and_wait(); });
  auto token = b.arrive();
  b.wait(std::move(token));
  t.join();
  EXPECT_EQ(count, 1);
}

TYPED_TEST(barrier_conformance, arrive_with_update) {
  int count = 0;
  TypeParam b(3, counting_completion{&count});
  auto t1 = b.arrive(2);
  auto t2 = b.arrive();
  b.wait(std::move(t1));
  b.wait(std::move(t2));
  EXPECT_EQ(count, 1);
}

TYPED_TEST(barrier_conformance, arrive_and_drop) {
  int count = 0;
  TypeParam b(2, counting_completion{&count});
  std::thread t([&] { b.arrive_and_drop(); });
  b.arrive_and_wait();
  t.join();
  b.arrive_and_wait();  // alone now
  b.arrive_and_wait();
  EXPECT_EQ(count, 3);
}

// ---- semaphores ------------------------------------------------------------

template <class S>
class semaphore_conformance : public ::testing::Test {};
using semaphore_types = ::testing::Types<std::counting_semaphore<8>, rouse::counting_semaphore<8>>;
TYPED_TEST_SUITE(semaphore_conformance, semaphore_types);

TYPED_TEST(semaphore_conformance, interface) {
  static_assert(!std::is_copy_constructible_v<TypeParam> && !std::is_copy_assignable_v<TypeParam>);
  EXPECT_GE(TypeParam::max(), 8);
}

TYPED_TEST(semaphore_conformance, acquire_release_try_acquire) {
  TypeParam s(2);
  s.acquire();
  EXPECT_TRUE(s.try_acquire());
  EXPECT_FALSE(s.try_acquire());
  s.release(2);
  EXPECT_TRUE(s.try_acquire());
  s.release();
  s.release();  // 1 + 2
  EXPECT_TRUE(s.try_acquire());
  EXPECT_TRUE(s.try_acquire());
  EXPECT_TRUE(s.try_acquire());
  EXPECT_FALSE(s.try_acquire());
}

TYPED_TEST(semaphore_conformance, timed_acquire) {
  TypeParam s(0);
  auto const start = std::chrono::steady_clock::now();
  EXPECT_FALSE(s.try_acquire_for(10ms));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 10ms);
  EXPECT_FALSE(s.try_acquire_until(std::chrono::steady_clock::now() + 5ms));
  s.release();
  EXPECT_TRUE(s.try_acquire_for(1s));
}

TYPED_TEST(semaphore_conformance, release_wakes_a_blocked_acquire) {
  TypeParam s(0);
  std::thread t([&] { s.acquire(); });
  std::this_thread::sleep_for(10ms);
  s.release();
  t.join();
  EXPECT_FALSE(s.try_acquire());
}

template <class S>
class binary_semaphore_conformance : public ::testing::Test {};
using binary_types = ::testing::Types<std::binary_semaphore, rouse::binary_semaphore>;
TYPED_TEST_SUITE(binary_semaphore_conformance, binary_types);

TYPED_TEST(binary_semaphore_conformance, ping_pong) {
  TypeParam ping(0), pong(0);
  int ball = 0;
  std::thread t([&] {
    for (int i = 0; i < 1000; ++i) {
      ping.acquire();
      ++ball;
      pong.release();
    }
  });
  for (int i = 0; i < 1000; ++i) {
    ping.release();
    pong.acquire();
    EXPECT_EQ(ball, i + 1);
  }
  t.join();
  EXPECT_GE(TypeParam::max(), 1);
}

}  // namespace
