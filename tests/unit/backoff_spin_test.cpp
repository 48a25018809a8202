// rouse::detail::backoff_spin: the spin every blocking primitive that uses
// it does before sleeping (rouse/detail/backoff_spin.hpp).
#include "rouse/detail/backoff_spin.hpp"

#include <gtest/gtest.h>

#include <chrono>

#include "rouse/platform/wait.hpp"

namespace {

using namespace std::chrono_literals;
using std::chrono::steady_clock;

// Spins until the budget is spent; returns how long that took.
steady_clock::duration spin_out(rouse::detail::backoff_spin& spin) {
  auto const start = steady_clock::now();
  while (spin.next()) {
  }
  return steady_clock::now() - start;
}

TEST(backoff_spin, never_stops_before_its_budget) {
  static constexpr rouse::detail::spin_policy policy{1, 3ms, 3ms, 1, 64, 2};
  rouse::detail::backoff_spin spin(policy);
  EXPECT_GE(spin_out(spin), 3ms);
  EXPECT_GE(spin.polls(), 1);  // the first poll always comes
}

TEST(backoff_spin, polls_keep_coming_while_the_budget_lasts) {
  // A budget no stall of this machine reaches: every poll asked for comes.
  static constexpr rouse::detail::spin_policy policy{1, 10s, 10s, 1, 64, 2};
  rouse::detail::backoff_spin spin(policy);
  for (int i = 0; i < 12; ++i) ASSERT_TRUE(spin.next()) << "poll " << i;
  EXPECT_EQ(spin.polls(), 12);
}

TEST(backoff_spin, the_budget_is_a_multiple_of_the_measured_wake_cost) {
  // No wake happens in this test, so wake_cost() stays put while it runs.
  static constexpr rouse::detail::spin_policy policy{3, 0ns, 10s, 1, 16, 2};
  auto const cost = rouse::platform::wake_cost();
  ASSERT_GT(cost.count(), 0);
  rouse::detail::backoff_spin spin(policy);
  EXPECT_GE(spin_out(spin), 3 * cost);
}

TEST(backoff_spin, a_zero_budget_still_polls_once) {
  static constexpr rouse::detail::spin_policy policy{1, 0ns, 0ns, 1, 16, 2};
  rouse::detail::backoff_spin spin(policy);
  EXPECT_TRUE(spin.next());
  EXPECT_FALSE(spin.next());
  EXPECT_EQ(spin.polls(), 1);
}

TEST(backoff_spin, the_budget_is_the_multiple_clamped_to_the_policy) {
  using rouse::detail::backoff_spin;
  using rouse::detail::spin_policy;
  auto const cost = rouse::platform::wake_cost();
  static constexpr spin_policy plain{4, 0ns, 10s, 1, 16, 2};
  EXPECT_EQ(backoff_spin::budget(plain), 4 * cost);
  static constexpr spin_policy capped{1000, 0ns, 50us, 1, 16, 2};  // 1000 x cost is ms
  EXPECT_EQ(backoff_spin::budget(capped), std::chrono::nanoseconds(50us));
  static constexpr spin_policy floored{0, 2ms, 1s, 1, 16, 2};
  EXPECT_EQ(backoff_spin::budget(floored), std::chrono::nanoseconds(2ms));
}

TEST(yield_spin, makes_at_least_its_minimum_polls_even_with_a_zero_budget) {
  static constexpr rouse::detail::spin_policy policy{1, 0ns, 0ns, 0, 0, 0};
  rouse::detail::yield_spin spin(policy, 5);
  int polls = 0;
  while (spin.next()) ++polls;
  EXPECT_EQ(polls, 5);
  EXPECT_EQ(spin.polls(), 5);
}

TEST(yield_spin, never_stops_before_its_budget) {
  static constexpr rouse::detail::spin_policy policy{1, 3ms, 3ms, 0, 0, 0};
  rouse::detail::yield_spin spin(policy, 1);
  auto const start = std::chrono::steady_clock::now();
  while (spin.next()) {
  }
  EXPECT_GE(std::chrono::steady_clock::now() - start, 3ms);
  EXPECT_GE(spin.polls(), 1);
}

TEST(yield_spin, polls_keep_coming_while_the_budget_lasts) {
  // A budget no stall of this machine reaches: every poll asked for comes.
  static constexpr rouse::detail::spin_policy policy{1, 10s, 10s, 0, 0, 0};
  rouse::detail::yield_spin spin(policy, 1);
  for (int i = 0; i < 40; ++i) ASSERT_TRUE(spin.next()) << "poll " << i;
}

}  // namespace
