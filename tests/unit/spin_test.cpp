// rouse::detail::spinner and the named spin policies: the one spin every
// waiter of rouse does before it sleeps (rouse/detail/spin.hpp). The shapes
// were measured (docs/tuning.md says with what); these tests pin them, so
// that a change to one is a deliberate one. No test here times anything but
// a lower bound ("never stops before its budget").
#include "rouse/detail/spin.hpp"

#include <gtest/gtest.h>

#include <pthread.h>
#include <sched.h>

#include <chrono>
#include <cstdint>
#include <thread>

#include "rouse/platform/cpu.hpp"
#include "rouse/platform/wait.hpp"

namespace spin_test {
namespace {

using namespace std::chrono_literals;
using rouse::detail::spin_policy;
using rouse::detail::spinner;
using std::chrono::steady_clock;

constexpr std::int32_t unbounded = spin_policy::unbounded;

// A lock-shaped policy (mutex_spin's shape) with the given budget.
constexpr spin_policy lock_shaped(std::int32_t multiple, std::chrono::nanoseconds min, std::chrono::nanoseconds max,
                                  std::int32_t max_gap = 64) {
  return {.pause_polls = unbounded,
          .first_gap = 1,
          .max_gap = max_gap,
          .budget_multiple = multiple,
          .budget_min = min,
          .budget_max = max,
          .min_polls = 1,
          .model_polls = 2};
}

// A yield spin (spsc_spin's shape without pauses): at least `min_polls`.
constexpr spin_policy yield_shaped(std::chrono::nanoseconds budget, std::int32_t min_polls) {
  return {.yield_polls = unbounded,
          .budget_multiple = 1,
          .budget_min = budget,
          .budget_max = budget,
          .min_polls = min_polls,
          .model_polls = 0};
}

// Spins until the policy is spent; returns how long that took.
steady_clock::duration spin_out(spinner& spin) {
  auto const start = steady_clock::now();
  while (spin.next()) {
  }
  return steady_clock::now() - start;
}

// Polls until spent, at most `limit` (a shape that never ends fails
// instead of hanging).
std::int64_t polls_until_spent(const spin_policy& policy, std::int64_t limit = 100000) {
  spinner spin(policy);
  std::int64_t n = 0;
  while (n < limit && spin.next()) ++n;
  return n;
}

// ---- budgets (the lock spin's shape) ---------------------------------------

TEST(spinner, never_stops_before_its_budget) {
  static constexpr spin_policy policy = lock_shaped(1, 3ms, 3ms);
  spinner spin(policy);
  EXPECT_GE(spin_out(spin), 3ms);
  EXPECT_GE(spin.polls(), 1);  // the first poll always comes
}

TEST(spinner, polls_keep_coming_while_the_budget_lasts) {
  // A budget no stall of this machine reaches: every poll asked for comes.
  static constexpr spin_policy policy = lock_shaped(1, 10s, 10s);
  spinner spin(policy);
  for (int i = 0; i < 12; ++i) ASSERT_TRUE(spin.next()) << "poll " << i;
  EXPECT_EQ(spin.polls(), 12);
}

TEST(spinner, the_budget_is_a_multiple_of_the_measured_wake_cost) {
  // No wake happens in this test, so wake_cost() stays put while it runs.
  static constexpr spin_policy policy = lock_shaped(3, 0ns, 10s, 16);
  auto const cost = rouse::platform::wake_cost();
  ASSERT_GT(cost.count(), 0);
  spinner spin(policy);
  EXPECT_GE(spin_out(spin), 3 * cost);
}

TEST(spinner, a_zero_budget_still_polls_once_after_its_minimum) {
  static constexpr spin_policy policy = lock_shaped(1, 0ns, 0ns, 16);
  spinner spin(policy);
  EXPECT_TRUE(spin.next());
  EXPECT_FALSE(spin.next());
  EXPECT_EQ(spin.polls(), 1);
}

TEST(spinner, the_budget_is_the_multiple_clamped_to_the_policy) {
  auto const cost = rouse::platform::wake_cost();
  static constexpr spin_policy plain = lock_shaped(4, 0ns, 10s, 16);
  EXPECT_EQ(spinner::budget(plain), 4 * cost);
  static constexpr spin_policy capped = lock_shaped(1000, 0ns, 50us, 16);  // 1000 x cost is ms
  EXPECT_EQ(spinner::budget(capped), std::chrono::nanoseconds(50us));
  static constexpr spin_policy floored = lock_shaped(0, 2ms, 1s, 16);
  EXPECT_EQ(spinner::budget(floored), std::chrono::nanoseconds(2ms));
}

TEST(spinner, a_policy_without_a_budget_has_none) {
  EXPECT_FALSE(rouse::detail::event_spin.has_budget());
  EXPECT_EQ(spinner::budget(rouse::detail::event_spin), 0ns);
}

// ---- yield polls (spsc's shape) ---------------------------------------------

TEST(spinner, makes_at_least_its_minimum_polls_even_with_a_zero_budget) {
  static constexpr spin_policy policy = yield_shaped(0ns, 5);
  EXPECT_EQ(polls_until_spent(policy), 5);
}

TEST(spinner, a_yield_spin_never_stops_before_its_budget) {
  static constexpr spin_policy policy = yield_shaped(3ms, 1);
  spinner spin(policy);
  EXPECT_GE(spin_out(spin), 3ms);
  EXPECT_GE(spin.polls(), 1);
}

TEST(spinner, yield_polls_keep_coming_while_the_budget_lasts) {
  static constexpr spin_policy policy = yield_shaped(10s, 1);
  spinner spin(policy);
  for (int i = 0; i < 40; ++i) ASSERT_TRUE(spin.next()) << "poll " << i;
  EXPECT_TRUE(spin.yielding());
}

// ---- a caller's budget (the pool's) -----------------------------------------

TEST(spinner, a_given_budget_of_zero_makes_no_poll_ever) {
  // rouse::pool with spin = 0 sleeps at once, and again after each wake-up.
  spinner spin(rouse::detail::pool_spin, 0ns);
  for (int i = 0; i < 40; ++i) EXPECT_FALSE(spin.next()) << "call " << i;
  EXPECT_EQ(spin.polls(), 0);
}

TEST(spinner, a_spent_pool_budget_is_checked_again_every_16_calls) {
  // After its budget, a pool spin used again (a worker woken for nothing)
  // polls on until its next clock reading, as it always has.
  spinner spin(rouse::detail::pool_spin, 1ns);
  std::int64_t first = 0;
  while (spin.next()) ++first;
  EXPECT_EQ(first % 16, 15);  // it ends at a reading, every 16th call
  std::int64_t again = 0;
  while (spin.next()) ++again;
  EXPECT_EQ(again, 15);
}

TEST(spinner, a_given_budget_is_never_cut_short) {
  spinner spin(rouse::detail::pool_spin, 3ms);
  EXPECT_GE(spin_out(spin), 3ms);
}

TEST(spinner, a_budget_of_the_largest_duration_never_runs_out) {
  // pool_options' spin = nanoseconds::max() means "spin, never sleep": the
  // end it computes saturates (it must not wrap into the past, which would
  // end the spin at its first clock reading).
  spinner spin(rouse::detail::pool_spin, std::chrono::nanoseconds::max());
  for (int i = 0; i < 200; ++i) ASSERT_TRUE(spin.next()) << "call " << i;
}

TEST(spinner, the_pool_yields_after_64_pause_polls) {
  spinner spin(rouse::detail::pool_spin, 10s);
  for (int i = 0; i < 64; ++i) {
    ASSERT_TRUE(spin.next());
    EXPECT_FALSE(spin.yielding()) << "poll " << i;
  }
  ASSERT_TRUE(spin.next());
  EXPECT_TRUE(spin.yielding());
}

// ---- counted shapes ---------------------------------------------------------

TEST(spin_policies, the_hand_off_waits_make_64_pause_then_64_yield_polls) {
  for (spin_policy const* p :
       {&rouse::detail::event_spin, &rouse::detail::semaphore_spin, &rouse::detail::condvar_spin}) {
    EXPECT_EQ(p->pause_polls, 64);
    EXPECT_EQ(p->yield_polls, 64);
    EXPECT_EQ(polls_until_spent(*p), 128);
  }
}

TEST(spin_policies, spin_until_polls_once_more_than_the_policy_waits) {
  int polls = 0;
  EXPECT_FALSE(rouse::detail::spin_until(rouse::detail::event_spin, [&] { return ++polls, false; }));
  EXPECT_EQ(polls, 64 + 64 + 1);  // before each wait, and after the last
}

TEST(spin_policies, spin_until_returns_at_the_first_poll_that_succeeds) {
  int polls = 0;
  EXPECT_TRUE(rouse::detail::spin_until(rouse::detail::event_spin, [&] { return ++polls == 3; }));
  EXPECT_EQ(polls, 3);
}

TEST(spin_policies, oneshot_polls_100_times_after_a_pause_each) {
  EXPECT_EQ(polls_until_spent(rouse::detail::oneshot_spin), 100);
}

TEST(spin_policies, atomic_wait_makes_32_pause_then_8_yield_polls) {
  spinner spin(rouse::detail::atomic_wait_spin);
  for (int i = 0; i < 32; ++i) {
    ASSERT_TRUE(spin.next());
    EXPECT_FALSE(spin.yielding());
  }
  for (int i = 0; i < 8; ++i) {
    ASSERT_TRUE(spin.next());
    EXPECT_TRUE(spin.yielding());
  }
  EXPECT_FALSE(spin.next());
}

TEST(spin_policies, spsc_makes_its_pause_steps_then_at_least_its_yield_steps) {
  EXPECT_EQ(rouse::detail::spsc_spin.pause_polls, ROUSE_SPSC_SPIN_STEPS);
  EXPECT_EQ(rouse::detail::spsc_spin.min_polls, ROUSE_SPSC_SPIN_STEPS + ROUSE_SPSC_YIELD_STEPS);
  // With a budget that has long passed, the minimum still comes.
  spinner spin(rouse::detail::spsc_spin);
  std::int64_t polls = 0;
  while (polls < ROUSE_SPSC_SPIN_STEPS + ROUSE_SPSC_YIELD_STEPS && spin.next()) ++polls;
  EXPECT_EQ(polls, ROUSE_SPSC_SPIN_STEPS + ROUSE_SPSC_YIELD_STEPS);
}

TEST(spin_policies, the_lock_spins_poll_64_pauses_apart_at_first_for_4_wake_costs) {
  for (spin_policy const* p : {&rouse::detail::mutex_spin, &rouse::detail::shared_mutex_spin}) {
    EXPECT_EQ(p->first_gap, ROUSE_MUTEX_SPIN_FIRST_GAP);
    EXPECT_EQ(p->max_gap, ROUSE_MUTEX_SPIN_MAX_GAP);
    EXPECT_EQ(p->budget_multiple, ROUSE_MUTEX_SPIN_MULTIPLE);
    EXPECT_EQ(p->budget_min, 2us);
    EXPECT_EQ(p->budget_max, std::chrono::microseconds(ROUSE_MUTEX_SPIN_MAX_US));
  }
}

TEST(spin_policies, endless_shapes_never_run_out) {
  // The spin lock's and the channels' CAS spin: the caller decides.
  for (spin_policy const* p :
       {&rouse::detail::spin_lock_spin, &rouse::detail::channel_cas_spin, &rouse::detail::shared_mutex_hand_over}) {
    spinner spin(*p);
    for (int i = 0; i < 1000; ++i) ASSERT_TRUE(spin.next()) << "poll " << i;
  }
}

TEST(spin_policies, the_shared_mutex_hand_over_yields_after_64_pauses) {
  spinner spin(rouse::detail::shared_mutex_hand_over);
  for (int i = 0; i < 64; ++i) ASSERT_TRUE(spin.next());
  EXPECT_FALSE(spin.yielding());
  ASSERT_TRUE(spin.next());
  EXPECT_TRUE(spin.yielding());
}

// ---- the channels' shapes (channel/detail/waiter.hpp) ------------------------

TEST(spin_policies, a_channel_wait_polls_once_after_a_pause_then_after_16_yields) {
  EXPECT_EQ(rouse::detail::channel_wait_spin.pause_polls, 1);
  EXPECT_EQ(rouse::detail::channel_wait_spin.yield_polls, 16);
  spinner spin(rouse::detail::channel_wait_spin);
  ASSERT_TRUE(spin.next());
  EXPECT_FALSE(spin.yielding());
  std::int64_t yields = 0;
  while (spin.next()) {
    EXPECT_TRUE(spin.yielding());
    ++yields;
  }
  EXPECT_EQ(yields, 16);
}

TEST(spin_policies, a_channel_hand_off_wait_pauses_first_then_yields_4_times) {
  // Pause steps of 1, 2, 4, ... 64 (7 of them), then 4 yields: 7 + 4.
  EXPECT_EQ(rouse::detail::channel_hand_off_spin.pause_polls, 7);
  EXPECT_EQ(rouse::detail::channel_hand_off_spin.max_gap, 64);
  EXPECT_EQ(polls_until_spent(rouse::detail::channel_hand_off_spin), 11);
}

TEST(spin_policies, a_channel_cas_spin_never_uses_up_a_wait) {
  // However often a CAS fails, its spin never ends, and a wait spun after
  // it still makes all its polls.
  spinner cas(rouse::detail::channel_cas_spin);
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(cas.next());
  EXPECT_EQ(polls_until_spent(rouse::detail::channel_wait_spin), 17);
}

// ---- group waits (barrier, latch) -------------------------------------------

// The polls of the short spin: the pause polls, the yield polls, and the
// last check.
constexpr int short_spin_polls = rouse::detail::group_spin.pause_polls + rouse::detail::group_spin.yield_polls + 1;

TEST(group_spin_until, the_short_spin_is_16_pauses_and_4_yields) {
  EXPECT_EQ(rouse::detail::group_spin.pause_polls, 16);
  EXPECT_EQ(rouse::detail::group_spin.yield_polls, 4);
}

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
}  // namespace spin_test
