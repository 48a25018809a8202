// Unit tests of rouse/barrier.hpp. A waiter is known to sleep by its wait
// call (tests/support/eventually.hpp), never by a sleep.
#include "rouse/barrier.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "eventually.hpp"
#include "rouse/platform/counters.hpp"
#include "threads.hpp"

namespace barrier_test {
namespace {

using namespace std::chrono_literals;

TEST(barrier, size) { EXPECT_EQ(sizeof(rouse::barrier<>), 16u); }

TEST(barrier, max_is_at_least_four_million) { EXPECT_GE(rouse::barrier<>::max(), 4'000'000); }

TEST(barrier, single_thread_phases_run_the_completion_each_time) {
  int runs = 0;
  auto on_done = [&]() noexcept { ++runs; };
  rouse::barrier<decltype(on_done)> b(1, on_done);
  for (int i = 0; i < 5; ++i) b.arrive_and_wait();
  EXPECT_EQ(runs, 5);
}

TEST(barrier, arrive_with_count_completes_the_phase) {
  int runs = 0;
  auto on_done = [&]() noexcept { ++runs; };
  rouse::barrier<decltype(on_done)> b(3, on_done);
  auto t1 = b.arrive(2);
  EXPECT_EQ(runs, 0);
  auto t2 = b.arrive(1);
  EXPECT_EQ(runs, 1);
  b.wait(std::move(t1));
  b.wait(std::move(t2));
}

TEST(barrier, wait_sleeps_until_the_phase_completes) {
  // This thread arrives first and sleeps (its wait call made) before the
  // other arrives: a phase change that does not wake it leaves it asleep
  // (a hang); one that releases it early shows in `payload` or `runs`.
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  std::atomic<int> runs{0};
  auto on_done = [&]() noexcept { runs.fetch_add(1, std::memory_order_relaxed); };
  rouse::barrier<decltype(on_done)> b(2, on_done);
  int payload = 0;
  auto t = rouse_test::after_wait_calls(rouse_test::wait_calls() + 1, [&] {
    payload = 9;
    b.arrive_and_wait();
  });
  b.arrive_and_wait();
  EXPECT_EQ(payload, 9);
  EXPECT_EQ(runs.load(), 1);  // the completion ran before the release
  t.join();
}

TEST(barrier, completion_runs_before_anyone_is_released) {
  constexpr int threads = 4, phases = 200;
  std::atomic<int> arrivals{0};
  int completed = 0;  // plain: written by the completion, read after release
  auto on_done = [&]() noexcept {
    EXPECT_EQ(arrivals.load(std::memory_order_relaxed), threads * (completed + 1));
    ++completed;
  };
  rouse::barrier<decltype(on_done)> b(threads, on_done);
  std::vector<std::thread> ts;
  for (int i = 0; i < threads; ++i)
    ts.emplace_back([&] {
      for (int p = 0; p < phases; ++p) {
        arrivals.fetch_add(1, std::memory_order_relaxed);
        b.arrive_and_wait();
        EXPECT_GE(completed, p + 1);
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(completed, phases);
}

TEST(barrier, arrive_and_drop_shrinks_later_phases) {
  int runs = 0;
  auto on_done = [&]() noexcept { ++runs; };
  rouse::barrier<decltype(on_done)> b(3, on_done);
  std::thread dropper([&] { b.arrive_and_drop(); });
  std::thread other([&] {
    for (int i = 0; i < 3; ++i) b.arrive_and_wait();
  });
  for (int i = 0; i < 3; ++i) b.arrive_and_wait();  // phase 1 with 3, then 2 each
  dropper.join();
  other.join();
  EXPECT_EQ(runs, 3);
}

TEST(barrier, all_drop_leaves_an_empty_barrier) {
  // The second drop completes the phase (the completion runs once, on it);
  // nothing is left waiting (the destructor's debug check).
  int runs = 0;
  auto on_done = [&]() noexcept { ++runs; };
  rouse::barrier<decltype(on_done)> b(2, on_done);
  b.arrive_and_drop();
  EXPECT_EQ(runs, 0);
  b.arrive_and_drop();
  EXPECT_EQ(runs, 1);
}

TEST(barrier, token_of_a_completed_phase_returns_at_once) {
  rouse::barrier<> b(1);
  auto t = b.arrive();  // completes the phase
  b.wait(std::move(t));
}

TEST(barrier, phases_without_sleepers_make_no_system_call) {
  if (!rouse::platform::syscall_counters_enabled()) GTEST_SKIP() << "syscall counters not compiled in";
  rouse::barrier<> b(2);
  auto const before = rouse::platform::syscall_counters();
  for (int i = 0; i < 1000; ++i) {
    auto t1 = b.arrive();
    auto t2 = b.arrive();  // completes: nobody asleep
    b.wait(std::move(t1));
    b.wait(std::move(t2));
  }
  auto const after = rouse::platform::syscall_counters();
  EXPECT_EQ(after.wakes, before.wakes);
  EXPECT_EQ(after.waits, before.waits);
}

TEST(barrier, a_phase_makes_at_most_one_wake_call) {
  // All three waiters went to sleep (their wait calls made) before the last
  // arrival: it wakes them all with one call. A wake per sleeper, or none
  // (then they hang), fails.
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  rouse::barrier<> b(4);
  auto const base = rouse_test::wait_calls();
  rouse_test::threads ts(3, [&] { b.arrive_and_wait(); });
  rouse_test::until_wait_calls(base + 3);
  auto const before = rouse::platform::syscall_counters();
  (void)b.arrive();
  auto const after = rouse::platform::syscall_counters();
  ts.join();
  EXPECT_EQ(after.wakes - before.wakes, 1u);
}

#if ROUSE_DEBUG_CHECKS && !defined(ROUSE_SANITIZER_thread)
TEST(barrier_death, over_arrival_is_diagnosed) {
  EXPECT_DEATH(
      {
        rouse::barrier<> b(2);
        (void)b.arrive(3);
      },
      "rouse::barrier: misuse: more arrivals in a phase than expected");
}
TEST(barrier_death, non_positive_update_is_diagnosed) {
  EXPECT_DEATH(
      {
        rouse::barrier<> b(2);
        (void)b.arrive(0);
      },
      "rouse::barrier: misuse: arrive\\(\\) with an update that is not positive");
}
TEST(barrier_death, destroying_with_a_sleeping_waiter_is_diagnosed) {
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  EXPECT_DEATH(
      {
        alignas(rouse::barrier<>) unsigned char storage[sizeof(rouse::barrier<>)];
        auto* b = new (storage) rouse::barrier<>(2);
        auto const base = rouse_test::wait_calls();
        std::thread t([&] { b->arrive_and_wait(); });
        t.detach();
        rouse_test::until_wait_calls(base + 1);  // its sleepers bit is set
        b->~barrier();
      },
      "rouse::barrier: misuse: destroyed while a thread is waiting");
}
#endif

}  // namespace
}  // namespace barrier_test
