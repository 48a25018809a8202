// The std conformance suite for the coordination types: one set of typed
// tests, written against the std API only, run over std's types and
// rouse's drop-in replacements (latch, barrier, counting and binary
// semaphore). A difference in behaviour between the two is a bug in rouse.
#include <gtest/gtest.h>

#include <atomic>
#include <barrier>
#include <chrono>
#include <cstddef>
#include <latch>
#include <limits>
#include <semaphore>
#include <thread>
#include <type_traits>
#include <vector>

#include "rouse/barrier.hpp"
#include "rouse/latch.hpp"
#include "rouse/semaphore.hpp"

namespace conformance_coordination_test {
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

// ---- semaphores with the largest maximums ----------------------------------
// std accepts any non-negative LeastMaxValue, and max() is at least it.
// libstdc++ 12 stops at INT_MAX (a static_assert, the limit rouse had too),
// so with it the std side is its largest, counting_semaphore<INT_MAX>;
// other libraries also run std's 2^40 and PTRDIFF_MAX.

template <class S>
struct least_max_value;
template <std::ptrdiff_t N>
struct least_max_value<std::counting_semaphore<N>> : std::integral_constant<std::ptrdiff_t, N> {};
template <std::ptrdiff_t N>
struct least_max_value<rouse::counting_semaphore<N>> : std::integral_constant<std::ptrdiff_t, N> {};

constexpr std::ptrdiff_t int_max = std::numeric_limits<int>::max();
constexpr std::ptrdiff_t two_40 = std::ptrdiff_t{1} << 40;
constexpr std::ptrdiff_t ptrdiff_max = std::numeric_limits<std::ptrdiff_t>::max();

template <class S>
class semaphore_maximum_conformance : public ::testing::Test {};
#if defined(__GLIBCXX__)
using large_semaphore_types =
    ::testing::Types<std::counting_semaphore<int_max>, rouse::counting_semaphore<int_max>,
                     rouse::counting_semaphore<two_40>, rouse::counting_semaphore<ptrdiff_max>>;
#else
using large_semaphore_types =
    ::testing::Types<std::counting_semaphore<int_max>, rouse::counting_semaphore<int_max>,
                     std::counting_semaphore<two_40>, rouse::counting_semaphore<two_40>,
                     std::counting_semaphore<ptrdiff_max>, rouse::counting_semaphore<ptrdiff_max>>;
#endif
TYPED_TEST_SUITE(semaphore_maximum_conformance, large_semaphore_types);

TYPED_TEST(semaphore_maximum_conformance, max_is_at_least_least_max_value) {
  static_assert(noexcept(TypeParam::max()));
  EXPECT_GE(TypeParam::max(), least_max_value<TypeParam>::value);
}

TYPED_TEST(semaphore_maximum_conformance, counts_past_2_to_the_32) {
  std::ptrdiff_t const two_32 = std::ptrdiff_t{1} << 32;
  if (least_max_value<TypeParam>::value < two_32 + 3) GTEST_SKIP() << "a maximum below 2^32";
  TypeParam s(0);
  s.release(two_32 + 3);
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(s.try_acquire());  // 2^32 - 1 left
  s.release(2);                                              // 2^32 + 1
  for (int i = 0; i < 2; ++i) EXPECT_TRUE(s.try_acquire());
  TypeParam low(two_32 - 1);
  low.release(2);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(low.try_acquire());
}

TYPED_TEST(semaphore_maximum_conformance, starts_at_least_max_value) {
  TypeParam s(least_max_value<TypeParam>::value);
  EXPECT_TRUE(s.try_acquire());
  s.acquire();
  EXPECT_TRUE(s.try_acquire_for(1ms));
  EXPECT_TRUE(s.try_acquire_until(std::chrono::steady_clock::now() + 1ms));
  s.release(4);  // at LeastMaxValue again
}

TYPED_TEST(semaphore_maximum_conformance, timed_acquire_of_an_empty_one_times_out_never_early) {
  TypeParam s(0);
  auto const start = std::chrono::steady_clock::now();
  EXPECT_FALSE(s.try_acquire_for(10ms));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 10ms);
  auto const deadline = std::chrono::system_clock::now() + 5ms;
  EXPECT_FALSE(s.try_acquire_until(deadline));
  EXPECT_GE(std::chrono::system_clock::now(), deadline);
  EXPECT_FALSE(s.try_acquire_for(0ms));
}

TYPED_TEST(semaphore_maximum_conformance, a_release_of_all_permits_wakes_a_blocked_acquire) {
  TypeParam s(0);
  std::atomic<bool> got{false};
  std::thread t([&] {
    s.acquire();
    got = true;
  });
  s.release(least_max_value<TypeParam>::value);
  t.join();
  EXPECT_TRUE(got.load());
  EXPECT_TRUE(s.try_acquire());
}

// ---- constant initialisation ----------------------------------------------
// std declares the constructors of latch, barrier and counting_semaphore
// constexpr. libstdc++ 12 has it for std::latch only (its barrier allocates
// its tree, its semaphores' constructors are not constexpr), so std::latch
// is the std side here; rouse's are all constinit-able.

template <class T>
class coordination_constant_initialisation : public ::testing::Test {};
using constant_types = ::testing::Types<std::latch, rouse::latch, rouse::barrier<>, rouse::counting_semaphore<8>,
                                        rouse::binary_semaphore, rouse::counting_semaphore<two_40>>;
TYPED_TEST_SUITE(coordination_constant_initialisation, constant_types);

TYPED_TEST(coordination_constant_initialisation, a_constinit_object_works) {
  static constinit TypeParam object(1);
  if constexpr (requires { object.count_down(); }) {
    object.count_down();
    EXPECT_TRUE(object.try_wait());
    object.wait();
  } else if constexpr (requires { object.arrive_and_wait(); }) {
    object.arrive_and_wait();
    object.arrive_and_wait();
  } else {
    object.acquire();
    EXPECT_FALSE(object.try_acquire());
    object.release();
    EXPECT_TRUE(object.try_acquire());
    object.release();
  }
}

TYPED_TEST(coordination_constant_initialisation, constructed_and_destroyed_in_a_constant_expression) {
  static_assert([] {
    TypeParam object(1);
    (void)object;
    return true;
  }());
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
}  // namespace conformance_coordination_test
