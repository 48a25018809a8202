// Unit tests of rouse/once.hpp. A waiter is known to sleep by its wait call
// (tests/support/eventually.hpp), never by a sleep.
#include "rouse/once.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <type_traits>
#include <vector>

#include "eventually.hpp"
#include "rouse/platform/counters.hpp"
#include "threads.hpp"

namespace once_test {
namespace {

using namespace std::chrono_literals;

static_assert(sizeof(rouse::once_flag) == 4);
static_assert(!std::is_copy_constructible_v<rouse::once_flag> && !std::is_move_constructible_v<rouse::once_flag>);
static_assert(std::is_nothrow_default_constructible_v<rouse::once_flag>);

constinit rouse::once_flag global_flag;

TEST(call_once, runs_the_callable_once) {
  rouse::once_flag flag;
  int runs = 0;
  for (int i = 0; i < 3; ++i) rouse::call_once(flag, [&] { ++runs; });
  EXPECT_EQ(runs, 1);
}

TEST(call_once, constinit_global_flag_works) {
  int runs = 0;
  rouse::call_once(global_flag, [&] { ++runs; });
  rouse::call_once(global_flag, [&] { ++runs; });
  EXPECT_EQ(runs, 1);
}

int free_function_calls = 0;
void add_to(int& target, int amount) {
  target += amount;
  ++free_function_calls;
}
struct widget {
  int value = 0;
  void set(int v) { value = v; }
};

TEST(call_once, forwards_arguments_like_std_invoke) {
  rouse::once_flag f1, f2;
  int target = 1;
  rouse::call_once(f1, add_to, target, 41);  // by reference: std::invoke passes lvalues through
  EXPECT_EQ(target, 42);
  EXPECT_EQ(free_function_calls, 1);
  widget w;
  rouse::call_once(f2, &widget::set, w, 7);  // pointer to member
  EXPECT_EQ(w.value, 7);
}

TEST(call_once, an_exception_leaves_the_flag_unset_and_the_next_caller_retries) {
  rouse::once_flag flag;
  int attempts = 0;
  EXPECT_THROW(rouse::call_once(flag,
                                [&] {
                                  ++attempts;
                                  throw std::runtime_error("first try fails");
                                }),
               std::runtime_error);
  rouse::call_once(flag, [&] { ++attempts; });
  rouse::call_once(flag, [&] { ++attempts; });
  EXPECT_EQ(attempts, 2);
}

TEST(call_once, racing_callers_run_it_once_and_all_see_its_effects) {
  // The one that runs it holds on until the five others sleep (five wait
  // calls): they must all wait for it, be woken (else a hang), and see
  // its effect.
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  constexpr int callers = 6;
  for (int round = 0; round < 50; ++round) {
    rouse::once_flag flag;
    std::atomic<int> runs{0};
    int value = 0;  // plain: published by call_once's ordering
    std::atomic<int> seen_ok{0};
    auto const base = rouse_test::wait_calls();
    rouse_test::threads pool(callers, [&] {
      rouse::call_once(flag, [&] {
        runs.fetch_add(1);
        rouse_test::until_wait_calls(base + callers - 1);
        value = 99;
      });
      if (value == 99) seen_ok.fetch_add(1);
    });
    pool.join();
    ASSERT_EQ(runs.load(), 1);
    ASSERT_EQ(seen_ok.load(), callers);
  }
}

TEST(call_once, a_waiter_runs_it_after_the_runner_throws) {
  // The runner throws only once this thread sleeps (its wait call made): a
  // throw that does not wake it leaves it asleep (a hang).
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  rouse::once_flag flag;
  std::atomic<bool> runner_started{false};
  std::atomic<int> successes{0};
  std::atomic<std::uint64_t> base{0};
  std::thread runner([&] {
    try {
      rouse::call_once(flag, [&] {
        base.store(rouse_test::wait_calls());
        runner_started.store(true);
        rouse_test::until_wait_calls(base.load() + 1);
        throw std::runtime_error("fails");
      });
    } catch (const std::runtime_error&) {
    }
  });
  while (!runner_started.load()) std::this_thread::yield();
  rouse::call_once(flag, [&] { successes.fetch_add(1); });  // sleeps, then runs it itself
  runner.join();
  EXPECT_EQ(successes.load(), 1);
}

TEST(call_once, after_completion_it_makes_no_system_call) {
  if (!rouse::platform::syscall_counters_enabled()) GTEST_SKIP() << "syscall counters not compiled in";
  rouse::once_flag flag;
  auto const before = rouse::platform::syscall_counters();
  rouse::call_once(flag, [] {});  // nobody waits: no wake either
  for (int i = 0; i < 1000; ++i) rouse::call_once(flag, [] {});
  auto const after = rouse::platform::syscall_counters();
  EXPECT_EQ(after.waits, before.waits);
  EXPECT_EQ(after.wakes, before.wakes);
}

#if ROUSE_DEBUG_CHECKS && !defined(ROUSE_SANITIZER_thread)
TEST(call_once_death, calling_it_from_its_own_callable_aborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        rouse::once_flag flag;
        rouse::call_once(flag, [&] { rouse::call_once(flag, [] {}); });
      },
      "rouse::call_once: misuse: call_once\\(\\) on a flag from inside its own callable");
}
#endif

}  // namespace
}  // namespace once_test
