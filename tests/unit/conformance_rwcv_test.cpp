// std conformance: the same typed tests run over each std type and its rouse
// drop-in, so a behaviour rouse has that std lacks (or the reverse) shows up
// as a test that passes for one and fails for the other.
//   std::shared_mutex          / rouse::shared_mutex
//   std::shared_timed_mutex    / rouse::shared_timed_mutex
//   std::condition_variable    / rouse::condition_variable     (with std::mutex / rouse::mutex)
//   std::condition_variable_any / rouse::condition_variable_any (with any lock)
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <shared_mutex>
#include <stop_token>
#include <thread>
#include <vector>

#include "rouse/condition_variable.hpp"
#include "rouse/mutex.hpp"
#include "rouse/shared_mutex.hpp"

namespace conformance_rwcv_test {
namespace {

using namespace std::chrono_literals;

// --- SharedMutex ----------------------------------------------------------------

template <class M>
struct shared_mutex_conformance : ::testing::Test {};
using shared_mutexes = ::testing::Types<std::shared_mutex, rouse::shared_mutex>;
TYPED_TEST_SUITE(shared_mutex_conformance, shared_mutexes);

TYPED_TEST(shared_mutex_conformance, meets_the_type_requirements) {
  static_assert(std::is_default_constructible_v<TypeParam>);
  static_assert(!std::is_copy_constructible_v<TypeParam> && !std::is_copy_assignable_v<TypeParam>);
  static_assert(!std::is_move_constructible_v<TypeParam> && !std::is_move_assignable_v<TypeParam>);
  static_assert(std::is_nothrow_destructible_v<TypeParam>);
}

TYPED_TEST(shared_mutex_conformance, exclusive_lock_excludes_everyone) {
  TypeParam m;
  m.lock();
  std::thread([&] {
    EXPECT_FALSE(m.try_lock());
    EXPECT_FALSE(m.try_lock_shared());
  }).join();
  m.unlock();
  EXPECT_TRUE(m.try_lock());
  m.unlock();
}

TYPED_TEST(shared_mutex_conformance, shared_lock_admits_readers_not_writers) {
  TypeParam m;
  m.lock_shared();
  std::thread([&] {
    EXPECT_TRUE(m.try_lock_shared());
    m.unlock_shared();
    EXPECT_FALSE(m.try_lock());
  }).join();
  m.unlock_shared();
}

TYPED_TEST(shared_mutex_conformance, std_lock_types_work) {
  TypeParam m;
  {
    std::unique_lock<TypeParam> l(m);
    EXPECT_TRUE(l.owns_lock());
  }
  {
    std::shared_lock<TypeParam> l(m);
    EXPECT_TRUE(l.owns_lock());
  }
  {
    std::unique_lock<TypeParam> l(m, std::try_to_lock);
    EXPECT_TRUE(l.owns_lock());
  }
  {
    std::shared_lock<TypeParam> l(m, std::try_to_lock);
    EXPECT_TRUE(l.owns_lock());
  }
  { std::lock_guard<TypeParam> l(m); }
  { std::scoped_lock l(m); }
}

TYPED_TEST(shared_mutex_conformance, a_writer_gets_in_after_the_readers_leave) {
  TypeParam m;
  int value = 0;
  m.lock_shared();
  std::thread w([&] {
    std::unique_lock<TypeParam> l(m);
    value = 1;
  });
  std::this_thread::sleep_for(10ms);
  EXPECT_EQ(value, 0);
  m.unlock_shared();
  w.join();
  std::shared_lock<TypeParam> l(m);
  EXPECT_EQ(value, 1);
}

// --- SharedTimedMutex -------------------------------------------------------------

template <class M>
struct shared_timed_mutex_conformance : ::testing::Test {};
using shared_timed_mutexes = ::testing::Types<std::shared_timed_mutex, rouse::shared_timed_mutex>;
TYPED_TEST_SUITE(shared_timed_mutex_conformance, shared_timed_mutexes);

TYPED_TEST(shared_timed_mutex_conformance, timed_locks_time_out_never_early) {
  TypeParam m;
  m.lock();
  std::thread([&] {
    auto const start = std::chrono::steady_clock::now();
    EXPECT_FALSE(m.try_lock_for(10ms));
    EXPECT_FALSE(m.try_lock_shared_for(10ms));
    EXPECT_GE(std::chrono::steady_clock::now() - start, 20ms);
    auto const d = std::chrono::system_clock::now() + 10ms;
    EXPECT_FALSE(m.try_lock_until(d));
    EXPECT_FALSE(m.try_lock_shared_until(d));
    EXPECT_GE(std::chrono::system_clock::now(), d);
  }).join();
  m.unlock();
}

TYPED_TEST(shared_timed_mutex_conformance, timed_locks_succeed_when_free) {
  TypeParam m;
  EXPECT_TRUE(m.try_lock_for(10ms));
  m.unlock();
  EXPECT_TRUE(m.try_lock_shared_for(10ms));
  EXPECT_TRUE(m.try_lock_shared_until(std::chrono::steady_clock::now() + 10ms));
  m.unlock_shared();
  m.unlock_shared();
  EXPECT_TRUE(m.try_lock_until(std::chrono::system_clock::now() + 10ms));
  m.unlock();
  {
    std::unique_lock<TypeParam> l(m, 10ms);
    EXPECT_TRUE(l.owns_lock());
  }
  {
    std::shared_lock<TypeParam> l(m, 10ms);
    EXPECT_TRUE(l.owns_lock());
  }
}

TYPED_TEST(shared_timed_mutex_conformance, timed_lock_gets_the_lock_released_in_time) {
  TypeParam m;
  m.lock_shared();
  std::thread w([&] {
    EXPECT_TRUE(m.try_lock_for(60s));
    m.unlock();
  });
  std::this_thread::sleep_for(10ms);
  m.unlock_shared();
  w.join();
}

// --- condition variables -----------------------------------------------------------

template <class CV, class M>
struct cv_pair {
  using cv = CV;
  using mutex = M;
};

template <class P>
struct cv_conformance : ::testing::Test {};
using cv_pairs = ::testing::Types<
    cv_pair<std::condition_variable, std::mutex>, cv_pair<rouse::condition_variable, rouse::mutex>,
    cv_pair<std::condition_variable_any, std::mutex>, cv_pair<rouse::condition_variable_any, std::mutex>,
    cv_pair<std::condition_variable_any, rouse::mutex>, cv_pair<rouse::condition_variable_any, rouse::mutex>>;
TYPED_TEST_SUITE(cv_conformance, cv_pairs);

TYPED_TEST(cv_conformance, meets_the_type_requirements) {
  using cv = typename TypeParam::cv;
  static_assert(std::is_default_constructible_v<cv>);
  static_assert(!std::is_copy_constructible_v<cv> && !std::is_move_constructible_v<cv>);
  static_assert(std::is_same_v<decltype(std::declval<cv&>().wait_for(
                                   std::declval<std::unique_lock<typename TypeParam::mutex>&>(), 1ms)),
                               std::cv_status>);
}

TYPED_TEST(cv_conformance, wait_with_predicate_sees_the_update) {
  typename TypeParam::mutex m;
  typename TypeParam::cv cv;
  int value = 0;
  std::thread t([&] {
    std::this_thread::sleep_for(5ms);
    {
      std::lock_guard<typename TypeParam::mutex> l(m);
      value = 42;
    }
    cv.notify_one();
  });
  std::unique_lock<typename TypeParam::mutex> l(m);
  cv.wait(l, [&] { return value == 42; });
  EXPECT_TRUE(l.owns_lock());
  l.unlock();
  t.join();
}

TYPED_TEST(cv_conformance, timeouts_report_timeout_never_early) {
  typename TypeParam::mutex m;
  typename TypeParam::cv cv;
  std::unique_lock<typename TypeParam::mutex> l(m);
  auto const start = std::chrono::steady_clock::now();
  EXPECT_EQ(cv.wait_for(l, 10ms), std::cv_status::timeout);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 10ms);
  auto const d = std::chrono::system_clock::now() + 10ms;
  EXPECT_EQ(cv.wait_until(l, d), std::cv_status::timeout);
  EXPECT_GE(std::chrono::system_clock::now(), d);
  EXPECT_FALSE(cv.wait_for(l, 5ms, [] { return false; }));
  EXPECT_TRUE(cv.wait_for(l, 5ms, [] { return true; }));
  EXPECT_FALSE(cv.wait_until(l, std::chrono::steady_clock::now() + 5ms, [] { return false; }));
  EXPECT_TRUE(l.owns_lock());
}

TYPED_TEST(cv_conformance, notify_all_wakes_every_waiter) {
  typename TypeParam::mutex m;
  typename TypeParam::cv cv;
  bool go = false;
  int done = 0;
  std::vector<std::thread> ts;
  for (int i = 0; i < 5; ++i)
    ts.emplace_back([&] {
      std::unique_lock<typename TypeParam::mutex> l(m);
      cv.wait(l, [&] { return go; });
      ++done;
    });
  std::this_thread::sleep_for(10ms);
  {
    std::lock_guard<typename TypeParam::mutex> l(m);
    go = true;
  }
  cv.notify_all();
  for (auto& t : ts) t.join();
  EXPECT_EQ(done, 5);
}

// Two threads wait once each (counted under the lock), then wait on until
// `done`; one notify_one with the lock held, once both are inside wait():
// one returns, the other stays until the notify_all.
TYPED_TEST(cv_conformance, notify_one_releases_one_of_two_waiters) {
  for (int round = 0; round < 50; ++round) {
    typename TypeParam::mutex m;
    typename TypeParam::cv cv;
    int registered = 0;
    bool done = false;
    std::atomic<int> returned{0};
    std::vector<std::thread> ts;
    for (int i = 0; i < 2; ++i)
      ts.emplace_back([&] {
        std::unique_lock<typename TypeParam::mutex> l(m);
        ++registered;
        cv.wait(l);
        returned.fetch_add(1);
        while (!done) cv.wait(l);
      });
    for (;;) {
      std::unique_lock<typename TypeParam::mutex> l(m);
      if (registered == 2) {
        cv.notify_one();
        break;
      }
      l.unlock();
      std::this_thread::yield();
    }
    while (returned.load() == 0) std::this_thread::yield();
    for (int i = 0; i < 4000 && returned.load() == 1; ++i) std::this_thread::yield();
    EXPECT_EQ(returned.load(), 1) << "round " << round;
    {
      std::lock_guard<typename TypeParam::mutex> l(m);
      done = true;
    }
    cv.notify_all();
    for (auto& t : ts) t.join();
    if (this->HasFailure()) return;
  }
}

TYPED_TEST(cv_conformance, notify_with_nobody_waiting_is_harmless) {
  typename TypeParam::cv cv;
  cv.notify_one();
  cv.notify_all();
}

// condition_variable_any only: any BasicLockable and stop tokens.
template <class CV>
struct cv_any_conformance : ::testing::Test {};
using cv_anys = ::testing::Types<std::condition_variable_any, rouse::condition_variable_any>;
TYPED_TEST_SUITE(cv_any_conformance, cv_anys);

TYPED_TEST(cv_any_conformance, waits_with_a_shared_lock) {
  std::shared_mutex m;
  TypeParam cv;
  std::shared_lock<std::shared_mutex> l(m);
  EXPECT_EQ(cv.wait_for(l, 5ms), std::cv_status::timeout);
  EXPECT_TRUE(l.owns_lock());
}

TYPED_TEST(cv_any_conformance, stop_request_interrupts_the_wait) {
  std::mutex m;
  TypeParam cv;
  std::stop_source source;
  std::thread t([&] {
    std::unique_lock<std::mutex> l(m);
    EXPECT_FALSE(cv.wait(l, source.get_token(), [] { return false; }));
    EXPECT_TRUE(l.owns_lock());
  });
  std::this_thread::sleep_for(10ms);
  source.request_stop();
  t.join();
  std::unique_lock<std::mutex> l(m);
  EXPECT_FALSE(cv.wait_for(l, source.get_token(), 60s, [] { return false; }));
  EXPECT_TRUE(cv.wait_until(l, source.get_token(), std::chrono::steady_clock::now() + 60s, [] { return true; }));
}

}  // namespace
}  // namespace conformance_rwcv_test
