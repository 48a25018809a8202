// Unit tests of rouse/recursive_mutex.hpp. A waiter is known to sleep by its
// wait call (tests/support/eventually.hpp), never by a sleep.
#include "rouse/recursive_mutex.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

#include "eventually.hpp"
#include "rouse/platform/counters.hpp"
#include "threads.hpp"

namespace recursive_mutex_test {
namespace {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

static_assert(sizeof(rouse::recursive_mutex) == 12);
static_assert(std::is_same_v<rouse::recursive_timed_mutex, rouse::recursive_mutex>);
static_assert(!std::is_copy_constructible_v<rouse::recursive_mutex>);
static_assert(std::is_nothrow_default_constructible_v<rouse::recursive_mutex>);

constinit rouse::recursive_mutex global_recursive;

bool other_thread_try_lock(rouse::recursive_mutex& m) {
  return rouse_test::on_another_thread([&] {
    bool const got = m.try_lock();
    if (got) m.unlock();
    return got;
  });
}

TEST(recursive_mutex, lock_nests_and_the_last_unlock_releases) {
  rouse::recursive_mutex m;
  m.lock();
  m.lock();
  m.lock();
  EXPECT_FALSE(other_thread_try_lock(m));
  m.unlock();
  m.unlock();
  EXPECT_FALSE(other_thread_try_lock(m));
  m.unlock();
  EXPECT_TRUE(other_thread_try_lock(m));
}

TEST(recursive_mutex, constinit_global_works) {
  global_recursive.lock();
  global_recursive.lock();
  global_recursive.unlock();
  EXPECT_FALSE(other_thread_try_lock(global_recursive));  // still held once
  global_recursive.unlock();
  ASSERT_TRUE(global_recursive.try_lock());  // free again: the owner is forgotten
  global_recursive.unlock();
}

TEST(recursive_mutex, try_lock_nests_for_the_owner_and_fails_for_others) {
  rouse::recursive_mutex m;
  ASSERT_TRUE(m.try_lock());
  ASSERT_TRUE(m.try_lock());
  EXPECT_FALSE(other_thread_try_lock(m));
  m.unlock();
  m.unlock();
  EXPECT_TRUE(other_thread_try_lock(m));
}

TEST(recursive_mutex, try_lock_for_nests_and_times_out_never_early_for_others) {
  rouse::recursive_mutex m;
  ASSERT_TRUE(m.try_lock_for(1s));
  ASSERT_TRUE(m.try_lock_for(0s));  // the owner nests without waiting
  std::thread([&] {
    auto const start = steady::now();
    EXPECT_FALSE(m.try_lock_for(20ms));
    EXPECT_GE(steady::now() - start, 20ms);
  }).join();
  m.unlock();
  m.unlock();
}

TEST(recursive_mutex, try_lock_until_both_clocks) {
  rouse::recursive_mutex m;
  ASSERT_TRUE(m.try_lock_until(steady::now() + 1s));
  ASSERT_TRUE(m.try_lock_until(std::chrono::system_clock::now() - 1s));
  std::thread([&] {
    auto const d1 = steady::now() + 15ms;
    EXPECT_FALSE(m.try_lock_until(d1));
    EXPECT_GE(steady::now(), d1);
    auto const d2 = std::chrono::system_clock::now() + 15ms;
    EXPECT_FALSE(m.try_lock_until(d2));
    EXPECT_GE(std::chrono::system_clock::now(), d2);
  }).join();
  m.unlock();
  m.unlock();
}

TEST(recursive_mutex, a_waiter_gets_it_after_the_last_unlock) {
  // The waiter sleeps (its wait call made) before either unlock. The inner
  // unlock must not let it in: it makes no wake call (a release would wake
  // the sleeper). The last unlock must wake it (else a hang).
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  rouse::recursive_mutex m;
  m.lock();
  m.lock();
  std::atomic<bool> got{false};
  auto const base = rouse_test::wait_calls();
  std::thread t([&] {
    m.lock();
    got.store(true);
    m.unlock();
  });
  rouse_test::until_wait_calls(base + 1);
  auto const wakes = rouse_test::wake_calls();
  m.unlock();
  EXPECT_EQ(rouse_test::wake_calls(), wakes) << "the inner unlock released the mutex";
  EXPECT_FALSE(got.load());
  m.unlock();
  t.join();
  EXPECT_TRUE(got.load());
}

TEST(recursive_mutex, uncontended_use_makes_no_system_call) {
  if (!rouse::platform::syscall_counters_enabled()) GTEST_SKIP() << "syscall counters not compiled in";
  rouse::recursive_mutex m;
  auto const before = rouse::platform::syscall_counters();
  for (int i = 0; i < 1000; ++i) {
    m.lock();
    ASSERT_TRUE(m.try_lock());
    ASSERT_TRUE(m.try_lock_for(1s));
    m.unlock();
    m.unlock();
    m.unlock();
  }
  auto const after = rouse::platform::syscall_counters();
  EXPECT_EQ(after.waits, before.waits);
  EXPECT_EQ(after.wakes, before.wakes);
}

TEST(recursive_mutex, works_with_std_guards) {
  rouse::recursive_mutex a, b;
  {
    std::lock_guard g1(a);
    std::lock_guard g2(a);
    std::unique_lock l(b, std::defer_lock);
    EXPECT_TRUE(l.try_lock_for(1s));
  }
  { std::scoped_lock s(a, b); }
  EXPECT_TRUE(other_thread_try_lock(a));
  EXPECT_TRUE(other_thread_try_lock(b));
}

TEST(recursive_mutex, counts_stay_exact_under_contention) {
  rouse::recursive_mutex m;
  long counter = 0;
  std::vector<std::thread> pool;
  for (int t = 0; t < 4; ++t)
    pool.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        std::lock_guard outer(m);
        std::lock_guard inner(m);
        ++counter;
      }
    });
  for (auto& t : pool) t.join();
  EXPECT_EQ(counter, 40000);
}

#if ROUSE_DEBUG_CHECKS && !defined(ROUSE_SANITIZER_thread)
class recursive_mutex_death : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

TEST_F(recursive_mutex_death, unlock_of_an_unlocked_mutex_aborts) {
  EXPECT_DEATH(
      {
        rouse::recursive_mutex m;
        m.unlock();
      },
      "rouse::recursive_mutex: misuse: unlock\\(\\) by a thread that does not hold it");
}

TEST_F(recursive_mutex_death, more_unlocks_than_locks_abort) {
  EXPECT_DEATH(
      {
        rouse::recursive_mutex m;
        m.lock();
        m.lock();
        m.unlock();
        m.unlock();
        m.unlock();
      },
      "rouse::recursive_mutex: misuse: unlock\\(\\) by a thread that does not hold it");
}

TEST_F(recursive_mutex_death, unlock_by_another_thread_aborts) {
  EXPECT_DEATH(
      {
        rouse::recursive_mutex m;
        m.lock();
        std::thread([&] { m.unlock(); }).join();
      },
      "rouse::recursive_mutex: misuse: unlock\\(\\) by a thread that does not hold it");
}

TEST_F(recursive_mutex_death, destroying_a_locked_mutex_aborts) {
  EXPECT_DEATH(
      {
        alignas(rouse::recursive_mutex) unsigned char storage[sizeof(rouse::recursive_mutex)];
        auto* m = new (storage) rouse::recursive_mutex;
        m->lock();
        m->~recursive_mutex();
      },
      "rouse::recursive_mutex: misuse: destroyed while locked");
}
#endif

}  // namespace
}  // namespace recursive_mutex_test
