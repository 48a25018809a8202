// rouse::detail's one deadline idiom (rouse/detail/deadline.hpp): the three
// deadline types and the one wait on a word until a deadline. Waits here
// either find the word changed or time out at a deadline already passed;
// none depends on timing.
#include "rouse/detail/deadline.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <thread>
#include <type_traits>

#include "clocks.hpp"
#include "rouse/detail/sync_types.hpp"

namespace detail_deadline_test {
namespace {

using namespace std::chrono_literals;
namespace d = rouse::detail;
using steady = std::chrono::steady_clock;
using std::chrono::system_clock;

TEST(deadline_types, no_deadline_is_untimed_and_never_expires) {
  static_assert(!d::no_deadline::timed());
  static_assert(!d::no_deadline::expired());
  EXPECT_FALSE(d::no_deadline{}.expired());
}

TEST(deadline_types, now_deadline_has_always_expired) {
  static_assert(d::now_deadline::timed());
  static_assert(d::now_deadline::expired());
  EXPECT_EQ(d::now_deadline{}.at, steady::time_point::min());
}

TEST(deadline_types, until_deadline_expires_once_its_clock_reaches_it) {
  static_assert(d::until_deadline<steady>::timed());
  EXPECT_TRUE(d::deadline_at(steady::now()).expired());
  EXPECT_TRUE(d::deadline_at(steady::now() - 1h).expired());
  EXPECT_FALSE(d::deadline_at(steady::now() + 1h).expired());
  EXPECT_TRUE(d::deadline_at(system_clock::now() - 1h).expired());
  EXPECT_FALSE(d::deadline_at(system_clock::now() + 1h).expired());
}

TEST(deadline_types, deadline_at_holds_the_time_point_in_the_clocks_duration) {
  auto const t = std::chrono::time_point_cast<std::chrono::hours>(steady::now()) + std::chrono::hours(2);
  auto const dl = d::deadline_at(t);
  static_assert(std::is_same_v<decltype(dl.at), steady::time_point>);
  EXPECT_EQ(dl.at, t);
  // Too late to hold in nanoseconds: "no deadline", never expires.
  auto const far = d::deadline_at(std::chrono::time_point<steady, std::chrono::hours>::max());
  EXPECT_EQ(far.at, steady::time_point::max());
  EXPECT_FALSE(far.expired());
  // Too early to hold: long passed.
  auto const early = d::deadline_at(std::chrono::time_point<steady, std::chrono::hours>::min());
  EXPECT_EQ(early.at, steady::time_point::min());
  EXPECT_TRUE(early.expired());
}

TEST(deadline_types, a_deadline_on_any_clock_is_judged_by_that_clock) {
  // A clock of the tests' own: read through its own now().
  using clock = rouse_test::half_speed_clock;
  auto const dl = d::deadline_at(clock::now() + 1h);
  EXPECT_FALSE(dl.expired());
  EXPECT_TRUE(d::deadline_at(clock::now()).expired());
}

TEST(wait_until_deadline, untimed_returns_woken_when_the_word_has_changed) {
  d::atomic<std::uint32_t> word{1};
  EXPECT_EQ(d::wait_until(word, 0, d::no_deadline{}), d::wait_result::woken);
}

TEST(wait_until_deadline, timed_returns_woken_when_the_word_has_changed) {
  d::atomic<std::uint32_t> word{1};
  EXPECT_EQ(d::wait_until(word, 0, d::deadline_at(steady::now() + 1h)), d::wait_result::woken);
}

TEST(wait_until_deadline, a_passed_deadline_times_out) {
  d::atomic<std::uint32_t> word{0};
  EXPECT_EQ(d::wait_until(word, 0, d::deadline_at(steady::now() - 1s)), d::wait_result::timed_out);
  EXPECT_EQ(d::wait_until(word, 0, d::deadline_at(system_clock::now() - 1s)), d::wait_result::timed_out);
  EXPECT_EQ(d::wait_until(word, 0, d::now_deadline{}), d::wait_result::timed_out);
}

TEST(wait_until_deadline, a_timed_out_wait_is_never_early) {
  d::atomic<std::uint32_t> word{0};
  auto const dl = d::deadline_at(steady::now() + 2ms);
  while (d::wait_until(word, 0, dl) != d::wait_result::timed_out) {
  }
  EXPECT_TRUE(dl.expired());
}

TEST(wait_until_deadline, an_untimed_wait_is_woken) {
  d::atomic<std::uint32_t> word{0};
  std::thread waker([&] {
    word.store(1, std::memory_order_release);
    d::wake_all(word);
  });
  while (word.load(std::memory_order_acquire) == 0) (void)d::wait_until(word, 0, d::no_deadline{});
  waker.join();
  EXPECT_EQ(word.load(std::memory_order_relaxed), 1u);
}

}  // namespace
}  // namespace detail_deadline_test
