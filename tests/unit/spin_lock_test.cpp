// Unit tests of rouse/spin_lock.hpp.
#include "rouse/spin_lock.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

#include "rouse/platform/counters.hpp"
#include "threads.hpp"

namespace spin_lock_test {
namespace {

using namespace std::chrono_literals;

bool another_thread_gets(rouse::spin_lock& s) {
  return rouse_test::on_another_thread([&] {
    if (!s.try_lock()) return false;
    s.unlock();
    return true;
  });
}

static_assert(sizeof(rouse::spin_lock) == 4);
static_assert(!std::is_copy_constructible_v<rouse::spin_lock>);
static_assert(std::is_nothrow_default_constructible_v<rouse::spin_lock>);

constinit rouse::spin_lock global_spin;

TEST(spin_lock, lock_then_unlock) {
  rouse::spin_lock s;
  s.lock();
  global_spin.lock();
  EXPECT_FALSE(rouse_test::on_another_thread([&] { return s.try_lock() || global_spin.try_lock(); }));
  s.unlock();
  global_spin.unlock();
  EXPECT_TRUE(s.try_lock());  // free again
  s.unlock();
  EXPECT_TRUE(global_spin.try_lock());
  global_spin.unlock();
}

TEST(spin_lock, try_lock_fails_while_another_thread_holds_it) {
  rouse::spin_lock s;
  ASSERT_TRUE(s.try_lock());
  EXPECT_FALSE(another_thread_gets(s));
  s.unlock();
  EXPECT_TRUE(another_thread_gets(s));
}

TEST(spin_lock, a_spinning_locker_gets_it_after_unlock) {
  // The locker has spun inside lock() (100 us of its own CPU time after it
  // started) while the lock was held, without getting it; a lock() that
  // took a held lock sets `got`, an unlock() that is never seen hangs.
  rouse::spin_lock s;
  s.lock();
  std::atomic<bool> got{false};
  std::atomic<bool> locking{false};
  rouse_test::thread t([&] {
    locking.store(true);
    s.lock();
    got.store(true);
    s.unlock();
  });
  rouse_test::eventually([&] { return locking.load(); });
  auto const spun_from = t.cpu_time();
  rouse_test::eventually([&] { return got.load() || t.cpu_time() - spun_from >= 100us; });
  EXPECT_FALSE(got.load());
  s.unlock();
  t.join();
  EXPECT_TRUE(got.load());
}

TEST(spin_lock, never_makes_a_system_call) {
  if (!rouse::platform::syscall_counters_enabled()) GTEST_SKIP() << "syscall counters not compiled in";
  rouse::spin_lock s;
  auto const before = rouse::platform::syscall_counters();
  for (int i = 0; i < 1000; ++i) {
    std::lock_guard g(s);
  }
  auto const after = rouse::platform::syscall_counters();
  EXPECT_EQ(after.waits, before.waits);
  EXPECT_EQ(after.wakes, before.wakes);
}

TEST(spin_lock, counts_stay_exact_under_contention) {
  rouse::spin_lock s;
  long counter = 0;
  std::vector<std::thread> pool;
  for (int t = 0; t < 3; ++t)
    pool.emplace_back([&] {
      for (int i = 0; i < 20000; ++i) {
        std::lock_guard g(s);
        ++counter;
      }
    });
  for (auto& t : pool) t.join();
  EXPECT_EQ(counter, 60000);
}

#if ROUSE_DEBUG_CHECKS && !defined(ROUSE_SANITIZER_thread)
class spin_lock_death : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};
TEST_F(spin_lock_death, unlock_of_an_unlocked_spin_lock_aborts) {
  EXPECT_DEATH(
      {
        rouse::spin_lock s;
        s.unlock();
      },
      "rouse::spin_lock: misuse: unlock\\(\\) of a lock that is not locked");
}
TEST_F(spin_lock_death, unlock_by_another_thread_aborts) {
  EXPECT_DEATH(
      {
        rouse::spin_lock s;
        s.lock();
        std::thread([&] { s.unlock(); }).join();
      },
      "rouse::spin_lock: misuse: unlock\\(\\) by a thread that does not hold the lock");
}
TEST_F(spin_lock_death, relock_by_the_holder_aborts) {
  EXPECT_DEATH(
      {
        rouse::spin_lock s;
        s.lock();
        s.lock();
      },
      "rouse::spin_lock: misuse: lock\\(\\) by the thread that already holds it");
}
TEST_F(spin_lock_death, destroying_a_locked_spin_lock_aborts) {
  EXPECT_DEATH(
      {
        alignas(rouse::spin_lock) unsigned char storage[sizeof(rouse::spin_lock)];
        auto* s = new (storage) rouse::spin_lock;
        s->lock();
        s->~spin_lock();
      },
      "rouse::spin_lock: misuse: destroyed while locked");
}
#endif

}  // namespace
}  // namespace spin_lock_test
