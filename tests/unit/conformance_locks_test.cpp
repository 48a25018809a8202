// std conformance of rouse's locks: the same typed tests run over the std
// type and its rouse drop-in, through std::lock_guard, std::unique_lock,
// std::scoped_lock, std::lock, std::try_lock and std::condition_variable_any.
//   Lockable      std::mutex, rouse::mutex, std::recursive_mutex, rouse::recursive_mutex
//   TimedLockable std::timed_mutex, rouse::timed_mutex (= rouse::mutex), std::recursive_timed_mutex,
//                 rouse::recursive_timed_mutex
//   recursive     std::recursive_mutex, rouse::recursive_mutex
// (shared_mutex and condition variables have their own conformance file.)
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

#include "rouse/mutex.hpp"
#include "rouse/recursive_mutex.hpp"
#include "threads.hpp"

namespace conformance_locks_test {
namespace {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

template <class M>
bool other_thread_can_lock(M& m) {
  return rouse_test::on_another_thread([&] {
    bool const got = m.try_lock();
    if (got) m.unlock();
    return got;
  });
}

// The type traits std's mutexes have.
template <class M>
constexpr bool std_mutex_traits =
    std::is_default_constructible_v<M>&& std::is_nothrow_destructible_v<M> && !std::is_copy_constructible_v<M> &&
    !std::is_move_constructible_v<M> && !std::is_copy_assignable_v<M> && !std::is_move_assignable_v<M>;

// --- Lockable -------------------------------------------------------------

template <class M>
class lockable : public ::testing::Test {};
using lockable_types = ::testing::Types<std::mutex, rouse::mutex, std::recursive_mutex, rouse::recursive_mutex>;
TYPED_TEST_SUITE(lockable, lockable_types);

TYPED_TEST(lockable, has_the_std_traits) { static_assert(std_mutex_traits<TypeParam>); }

TYPED_TEST(lockable, lock_guard_excludes_other_threads) {
  TypeParam m;
  {
    std::lock_guard g(m);
    EXPECT_FALSE(other_thread_can_lock(m));
  }
  EXPECT_TRUE(other_thread_can_lock(m));
}

TYPED_TEST(lockable, lock_guard_adopt_lock) {
  TypeParam m;
  m.lock();
  {
    std::lock_guard g(m, std::adopt_lock);
    EXPECT_FALSE(other_thread_can_lock(m));
  }
  EXPECT_TRUE(other_thread_can_lock(m));
}

TYPED_TEST(lockable, unique_lock_defer_try_release_and_move) {
  TypeParam m;
  std::unique_lock l(m, std::defer_lock);
  EXPECT_FALSE(l.owns_lock());
  l.lock();
  EXPECT_TRUE(l.owns_lock());
  l.unlock();
  EXPECT_TRUE(l.try_lock());
  std::unique_lock moved(std::move(l));
  EXPECT_TRUE(moved.owns_lock());
  EXPECT_FALSE(l.owns_lock());  // NOLINT(bugprone-use-after-move)
  EXPECT_FALSE(other_thread_can_lock(m));
  TypeParam* raw = moved.release();
  EXPECT_EQ(raw, &m);
  raw->unlock();
  std::unique_lock t(m, std::try_to_lock);
  EXPECT_TRUE(t.owns_lock());
}

TYPED_TEST(lockable, scoped_lock_and_std_lock_take_several_without_deadlock) {
  TypeParam a, b;
  std::atomic<bool> go{false};
  long counter = 0;
  auto worker = [&](bool reversed) {
    while (!go.load()) std::this_thread::yield();
    for (int i = 0; i < 2000; ++i) {
      if (reversed) {
        std::scoped_lock s(b, a);
        ++counter;
      } else {
        std::lock(a, b);
        std::lock_guard ga(a, std::adopt_lock), gb(b, std::adopt_lock);
        ++counter;
      }
    }
  };
  std::thread t1(worker, false), t2(worker, true);
  go.store(true);
  t1.join();
  t2.join();
  EXPECT_EQ(counter, 4000);
}

TYPED_TEST(lockable, std_try_lock_reports_the_busy_index) {
  TypeParam a, b;
  EXPECT_EQ(std::try_lock(a, b), -1);
  a.unlock();
  b.unlock();
  std::atomic<bool> held{false}, release{false};
  std::thread holder([&] {
    std::lock_guard g(b);
    held.store(true);
    while (!release.load()) std::this_thread::yield();
  });
  while (!held.load()) std::this_thread::yield();
  EXPECT_EQ(std::try_lock(a, b), 1);
  EXPECT_TRUE(other_thread_can_lock(a));  // try_lock released `a` again
  release.store(true);
  holder.join();
}

TYPED_TEST(lockable, condition_variable_any_waits_and_is_notified) {
  TypeParam m;
  std::condition_variable_any cv;
  bool ready = false;
  std::thread t([&] {
    std::this_thread::sleep_for(5ms);
    {
      std::lock_guard g(m);
      ready = true;
    }
    cv.notify_one();
  });
  std::unique_lock l(m);
  cv.wait(l, [&] { return ready; });
  EXPECT_TRUE(ready);
  l.unlock();
  t.join();
}

TYPED_TEST(lockable, mutual_exclusion_with_std_guards) {
  TypeParam m;
  long counter = 0;
  std::vector<std::thread> pool;
  for (int t = 0; t < 4; ++t)
    pool.emplace_back([&] {
      for (int i = 0; i < 5000; ++i) {
        std::unique_lock l(m);
        ++counter;
      }
    });
  for (auto& t : pool) t.join();
  EXPECT_EQ(counter, 20000);
}

// --- TimedLockable --------------------------------------------------------

template <class M>
class timed_lockable : public ::testing::Test {};
#if defined(ROUSE_SANITIZER_thread)
// libstdc++'s timed mutexes lock through pthread_mutex_clocklock, which this
// ThreadSanitizer does not intercept: it then reports their unlock as "unlock
// of an unlocked mutex". The std side is checked in the other builds.
using timed_types = ::testing::Types<rouse::timed_mutex, rouse::recursive_timed_mutex>;
#else
using timed_types =
    ::testing::Types<std::timed_mutex, rouse::timed_mutex, std::recursive_timed_mutex, rouse::recursive_timed_mutex>;
#endif
TYPED_TEST_SUITE(timed_lockable, timed_types);

TYPED_TEST(timed_lockable, has_the_std_traits) { static_assert(std_mutex_traits<TypeParam>); }

TYPED_TEST(timed_lockable, unique_lock_with_duration_and_time_point_when_free) {
  TypeParam m;
  {
    std::unique_lock l(m, 1s);
    EXPECT_TRUE(l.owns_lock());
  }
  {
    std::unique_lock l(m, steady::now() + 1s);
    EXPECT_TRUE(l.owns_lock());
  }
  {
    std::unique_lock l(m, std::chrono::system_clock::now() + 1s);
    EXPECT_TRUE(l.owns_lock());
  }
}

TYPED_TEST(timed_lockable, timed_locks_time_out_never_early_while_held) {
  TypeParam m;
  std::atomic<bool> held{false}, release{false};
  std::thread holder([&] {
    std::lock_guard g(m);
    held.store(true);
    while (!release.load()) std::this_thread::sleep_for(1ms);
  });
  while (!held.load()) std::this_thread::yield();
  {
    auto const start = steady::now();
    std::unique_lock l(m, 15ms);
    EXPECT_FALSE(l.owns_lock());
    EXPECT_GE(steady::now() - start, 15ms);
  }
  {
    auto const deadline = steady::now() + 15ms;
    EXPECT_FALSE(m.try_lock_until(deadline));
    EXPECT_GE(steady::now(), deadline);
  }
  {
    auto const deadline = std::chrono::system_clock::now() + 15ms;
    EXPECT_FALSE(m.try_lock_until(deadline));
    EXPECT_GE(std::chrono::system_clock::now(), deadline);
  }
  EXPECT_FALSE(m.try_lock_for(0ms));
  EXPECT_FALSE(m.try_lock_for(-1ms));
  release.store(true);
  holder.join();
}

TYPED_TEST(timed_lockable, timed_lock_succeeds_when_released_in_time) {
  TypeParam m;
  m.lock();
  std::thread releaser([&] { std::this_thread::sleep_for(10ms); });
  std::atomic<bool> got{false};
  std::thread waiter([&] {
    got.store(m.try_lock_for(1h));  // does not hang
    if (got.load()) m.unlock();
  });
  releaser.join();
  m.unlock();
  waiter.join();
  EXPECT_TRUE(got.load());
}

// --- constant initialisation ----------------------------------------------
// std::mutex's constructor is constexpr (std::recursive_mutex's is not;
// rouse's is): a constinit mutex needs no dynamic initialisation, and the
// type is literal (constructed and destroyed in a constant expression).

template <class M>
class lock_constant_initialisation : public ::testing::Test {};
using constant_types = ::testing::Types<std::mutex, rouse::mutex, rouse::recursive_mutex>;
TYPED_TEST_SUITE(lock_constant_initialisation, constant_types);

TYPED_TEST(lock_constant_initialisation, a_constinit_mutex_locks) {
  static constinit TypeParam m;
  {
    std::lock_guard g(m);
    EXPECT_FALSE(other_thread_can_lock(m));
  }
  EXPECT_TRUE(other_thread_can_lock(m));
}

TYPED_TEST(lock_constant_initialisation, constructed_and_destroyed_in_a_constant_expression) {
  static_assert([] {
    TypeParam m;
    (void)m;
    return true;
  }());
}

// --- recursive ------------------------------------------------------------

template <class M>
class recursive_lockable : public ::testing::Test {};
using recursive_types = ::testing::Types<std::recursive_mutex, rouse::recursive_mutex>;
TYPED_TEST_SUITE(recursive_lockable, recursive_types);

TYPED_TEST(recursive_lockable, nested_guards_release_at_the_outermost) {
  TypeParam m;
  {
    std::lock_guard outer(m);
    {
      std::unique_lock inner(m);
      EXPECT_TRUE(m.try_lock());
      m.unlock();
    }
    EXPECT_FALSE(other_thread_can_lock(m));
  }
  EXPECT_TRUE(other_thread_can_lock(m));
}

TYPED_TEST(recursive_lockable, scoped_lock_of_a_held_recursive_mutex) {
  TypeParam a, b;
  std::lock_guard g(a);
  {
    std::scoped_lock s(a, b);
    EXPECT_FALSE(other_thread_can_lock(b));
  }
  EXPECT_TRUE(other_thread_can_lock(b));
  EXPECT_FALSE(other_thread_can_lock(a));
}

}  // namespace
}  // namespace conformance_locks_test
