// Unit tests of rouse/semaphore.hpp.
#include "rouse/semaphore.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "rouse/platform/counters.hpp"

namespace {

using namespace std::chrono_literals;

TEST(semaphore, size_is_one_word) {
  EXPECT_EQ(sizeof(rouse::binary_semaphore), 4u);
  EXPECT_EQ(sizeof(rouse::counting_semaphore<>), 4u);
}

TEST(semaphore, max_is_least_max_value) {
  EXPECT_EQ(rouse::binary_semaphore::max(), 1);
  EXPECT_EQ(rouse::counting_semaphore<100>::max(), 100);
}

TEST(semaphore, try_acquire_takes_what_is_there) {
  rouse::counting_semaphore<4> s(2);
  EXPECT_TRUE(s.try_acquire());
  EXPECT_TRUE(s.try_acquire());
  EXPECT_FALSE(s.try_acquire());
  s.release(2);
  EXPECT_TRUE(s.try_acquire());
  EXPECT_TRUE(s.try_acquire());
  EXPECT_FALSE(s.try_acquire());
}

TEST(semaphore, acquire_returns_at_once_with_a_permit) {
  rouse::binary_semaphore s(1);
  s.acquire();
  EXPECT_FALSE(s.try_acquire());
}

TEST(semaphore, release_wakes_a_sleeping_acquire) {
  rouse::binary_semaphore s(0);
  int payload = 0;
  std::thread t([&] {
    std::this_thread::sleep_for(10ms);
    payload = 7;
    s.release();
  });
  s.acquire();
  EXPECT_EQ(payload, 7);
  t.join();
}

TEST(semaphore, release_n_wakes_n_sleepers) {
  rouse::counting_semaphore<8> s(0);
  std::atomic<int> done{0};
  std::vector<std::thread> ts;
  for (int i = 0; i < 4; ++i)
    ts.emplace_back([&] {
      s.acquire();
      done.fetch_add(1);
    });
  std::this_thread::sleep_for(20ms);
  s.release(3);
  while (done.load() < 3) std::this_thread::yield();
  EXPECT_FALSE(s.try_acquire());
  s.release();
  for (auto& t : ts) t.join();
  EXPECT_EQ(done.load(), 4);
}

TEST(semaphore, release_zero_changes_nothing_and_strands_no_sleeper) {
  rouse::binary_semaphore s(0);
  std::atomic<bool> got{false};
  std::thread sleeper([&] {
    s.acquire();
    got = true;
  });
  std::this_thread::sleep_for(20ms);
  s.release(0);
  EXPECT_FALSE(s.try_acquire());
  s.release();
  sleeper.join();
  EXPECT_TRUE(got.load());
}

TEST(semaphore, try_acquire_for_times_out_never_early) {
  rouse::binary_semaphore s(0);
  auto const start = std::chrono::steady_clock::now();
  EXPECT_FALSE(s.try_acquire_for(20ms));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 20ms);
}

TEST(semaphore, try_acquire_until_system_clock_never_early) {
  rouse::binary_semaphore s(0);
  auto const deadline = std::chrono::system_clock::now() + 20ms;
  EXPECT_FALSE(s.try_acquire_until(deadline));
  EXPECT_GE(std::chrono::system_clock::now(), deadline);
}

TEST(semaphore, try_acquire_for_succeeds_when_released) {
  rouse::binary_semaphore s(0);
  std::thread t([&] {
    std::this_thread::sleep_for(10ms);
    s.release();
  });
  EXPECT_TRUE(s.try_acquire_for(1h));
  t.join();
}

TEST(semaphore, timed_out_waiter_does_not_strand_another_sleeper) {
  rouse::binary_semaphore s(0);
  std::atomic<bool> got{false};
  std::thread sleeper([&] {
    s.acquire();
    got = true;
  });
  EXPECT_FALSE(s.try_acquire_for(30ms));
  s.release();
  sleeper.join();
  EXPECT_TRUE(got.load());
}

TEST(semaphore, zero_and_negative_timeouts) {
  rouse::binary_semaphore s(0);
  EXPECT_FALSE(s.try_acquire_for(0ms));
  EXPECT_FALSE(s.try_acquire_for(-1ms));
  s.release();
  EXPECT_TRUE(s.try_acquire_for(0ms));
}

TEST(semaphore, release_with_nobody_asleep_makes_no_system_call) {
  if (!rouse::platform::syscall_counters_enabled()) GTEST_SKIP() << "syscall counters not compiled in";
  rouse::counting_semaphore<10> s(0);
  auto const before = rouse::platform::syscall_counters();
  for (int i = 0; i < 1000; ++i) {
    s.release(3);
    s.acquire();
    EXPECT_TRUE(s.try_acquire());
    EXPECT_TRUE(s.try_acquire_for(1ms));
  }
  auto const after = rouse::platform::syscall_counters();
  EXPECT_EQ(after.wakes, before.wakes);
  EXPECT_EQ(after.waits, before.waits);
}

#if ROUSE_DEBUG_CHECKS && !defined(ROUSE_SANITIZER_thread)
TEST(semaphore_death, release_past_max_is_diagnosed) {
  EXPECT_DEATH(
      {
        rouse::binary_semaphore s(1);
        s.release();
      },
      "rouse::counting_semaphore: misuse: release\\(\\) past max\\(\\)");
}
TEST(semaphore_death, negative_release_is_diagnosed) {
  EXPECT_DEATH(
      {
        rouse::counting_semaphore<5> s(1);
        s.release(-1);
      },
      "rouse::counting_semaphore: misuse: release\\(\\) with a negative update");
}
TEST(semaphore_death, initial_count_past_max_is_diagnosed) {
  EXPECT_DEATH({ rouse::binary_semaphore s(2); }, "rouse::counting_semaphore: misuse: initial count");
}
#endif

}  // namespace
