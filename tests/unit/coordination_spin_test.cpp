// rouse::detail::group_spin_until: the spin of a barrier or latch waiter
// before it sleeps (rouse/detail/coordination_spin.hpp).
#include "rouse/detail/coordination_spin.hpp"

#include <gtest/gtest.h>

#include <pthread.h>
#include <sched.h>

#include <chrono>
#include <thread>

#include "rouse/platform/cpu.hpp"

namespace {

using namespace std::chrono_literals;
using std::chrono::steady_clock;

// The polls of the short spin: the pause polls, the yield polls, and the
// last check.
constexpr int short_spin_polls = rouse::detail::coordination_spin_limit + rouse::detail::group_yield_limit + 1;

TEST(group_spin_until, returns_at_the_first_poll_that_succeeds) {
  int polls = 0;
  EXPECT_TRUE(rouse::detail::group_spin_until([&] { return ++polls == 3; }, 1));
  EXPECT_EQ(polls, 3);
}

TEST(group_spin_until, a_group_larger_than_the_cpus_gives_up_after_the_short_spin) {
  unsigned const cpus = rouse::platform::process_cpus();
  int polls = 0;
  EXPECT_FALSE(rouse::detail::group_spin_until([&] { return ++polls, false; }, cpus + 1));
  EXPECT_EQ(polls, short_spin_polls);
}

TEST(group_spin_until, a_group_that_fits_polls_on_for_at_least_two_microseconds) {
  int polls = 0;
  auto const start = steady_clock::now();
  EXPECT_FALSE(rouse::detail::group_spin_until([&] { return ++polls, false; }, 1));
  auto const took = steady_clock::now() - start;
  EXPECT_GT(polls, short_spin_polls);
  EXPECT_GE(took, 2us);  // the budget's floor: never shorter (and it ends: CTest's timeout)
}

TEST(group_spin_until, a_group_that_fits_still_succeeds_late_in_the_spin) {
  // Done only after more polls than the short spin has: the long phase
  // must be the one that sees it.
  int polls = 0;
  EXPECT_TRUE(rouse::detail::group_spin_until([&] { return ++polls > short_spin_polls + 10; }, 1));
  EXPECT_EQ(polls, short_spin_polls + 11);
}

// The CPU count a group is compared with is the process's, not the mask of
// whichever thread asks first: under CTest each test is its own process, so
// here a thread pinned to one CPU is the first to ask.
TEST(process_cpus, a_pinned_first_caller_still_gets_the_process_mask) {
  unsigned const main_mask = rouse::platform::available_cpus();  // this is the main thread
  if (main_mask < 2) GTEST_SKIP() << "needs a process that may use 2 CPUs";
  unsigned seen = 0, pinned_mask = 0;
  std::thread t([&] {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(static_cast<unsigned>(sched_getcpu()), &one);
    if (pthread_setaffinity_np(pthread_self(), sizeof one, &one) != 0) return;
    pinned_mask = rouse::platform::available_cpus();
    seen = rouse::platform::process_cpus();
  });
  t.join();
  if (pinned_mask != 1) GTEST_SKIP() << "could not pin a thread";
  EXPECT_EQ(seen, main_mask);
  EXPECT_EQ(rouse::platform::process_cpus(), main_mask);
}

}  // namespace
