// rouse::channel::detail::backoff: how many polls a channel waiter makes
// before it announces itself and sleeps (rouse/channel/detail/waiter.hpp).
// The shapes were measured (the header says with what); these tests pin
// them, so that a change to either is a deliberate one.
#include "rouse/channel/detail/waiter.hpp"

#include <gtest/gtest.h>

namespace {

using rouse::channel::detail::backoff;

// Snoozes until completed(); returns how many it took (bounded, so that a
// shape that never completes fails instead of hanging).
int snoozes_until_completed(backoff& b) {
  int n = 0;
  while (!b.completed() && n < 1000) {
    b.snooze();
    ++n;
  }
  return n;
}

TEST(channel_backoff, a_wait_polls_once_after_a_pause_then_after_16_yields) {
  backoff b;
  EXPECT_FALSE(b.completed());
  // 1 pause step + 16 yield steps.
  EXPECT_EQ(snoozes_until_completed(b), backoff::snooze_spin_limit + backoff::yield_limit);
  EXPECT_EQ(backoff::snooze_spin_limit, 1u);
  EXPECT_EQ(backoff::yield_limit, 16u);
}

TEST(channel_backoff, a_hand_off_wait_pauses_first_then_yields_4_times) {
  backoff b(backoff::hand_off);
  // Pause steps of 1, 2, 4, ... 64 (spin_limit + 1 of them), then yields up
  // to step 10: 7 + 4.
  EXPECT_EQ(snoozes_until_completed(b), 11);
}

TEST(channel_backoff, spin_after_a_failed_cas_never_completes_the_wait) {
  // spin() (after a lost CAS) counts steps too, but only up to spin_limit
  // + 1: however often a CAS fails, the waiter still gets yield polls
  // (yield_limit - spin_limit of them) before it may sleep.
  backoff b;
  for (int i = 0; i < 100; ++i) b.spin();
  EXPECT_FALSE(b.completed());
  EXPECT_EQ(snoozes_until_completed(b), static_cast<int>(backoff::yield_limit - backoff::spin_limit));
}

}  // namespace
