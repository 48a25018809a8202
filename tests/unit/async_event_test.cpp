// rouse::async::manual_reset_event and auto_reset_event: set before and
// after the wait, set releases every waiter (manual) or exactly one (auto),
// reset, sets do not accumulate, waiters resume on their executor and never
// inside set(), cancellation of a waiter (before, while waiting, after the
// wake: an auto-reset token is never lost or doubled), the blocking and
// timed forms, a thread and a coroutine signalling each other, misuse.
#include "rouse/async/event.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <coroutine>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "rouse/async/executor.hpp"
#include "rouse/async/stop_token.hpp"
#include "async_test_loop.hpp"

namespace async_event_test {
namespace {
namespace ra = rouse::async;

template <class Event>
task<> wait_once(Event& ev, std::vector<int>& order, int id) {
  co_await ev.wait();
  order.push_back(id);
}

TEST(async_event, sizes_are_documented) {
  EXPECT_EQ(sizeof(ra::manual_reset_event), 32u);
  EXPECT_EQ(sizeof(ra::auto_reset_event), 32u);
  EXPECT_EQ(sizeof(ra::manual_reset_event::awaitable), 200u);
  EXPECT_EQ(sizeof(ra::auto_reset_event::awaitable), 200u);
}

// ---- manual reset --------------------------------------------------------------

TEST(async_manual_reset_event, a_set_event_completes_every_wait_at_once) {
  ra::manual_reset_event ev(true);
  EXPECT_TRUE(ev.is_set());
  test_loop loop;
  std::vector<int> order;
  auto a = wait_once(ev, order, 1);
  auto b = wait_once(ev, order, 2);
  a.start(loop);
  b.start(loop);
  EXPECT_EQ(loop.drain(), 2);  // the starts only: nobody suspended
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
  EXPECT_TRUE(ev.is_set());  // waits do not change it
}

TEST(async_manual_reset_event, set_releases_every_waiter_on_its_executor_not_inside_set) {
  ra::manual_reset_event ev;
  test_loop loop;
  std::vector<int> order;
  auto a = wait_once(ev, order, 1);
  auto b = wait_once(ev, order, 2);
  a.start(loop);
  b.start(loop);
  loop.drain();
  EXPECT_TRUE(order.empty());
  ev.set();
  EXPECT_TRUE(order.empty());  // scheduled, not resumed inside set()
  EXPECT_EQ(loop.drain(), 2);
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
}

TEST(async_manual_reset_event, reset_makes_later_waits_suspend_but_keeps_released_ones) {
  ra::manual_reset_event ev;
  test_loop loop;
  std::vector<int> order;
  auto a = wait_once(ev, order, 1);
  a.start(loop);
  loop.drain();
  ev.set();
  ev.reset();  // a was chosen by set(): it completes anyway
  EXPECT_FALSE(ev.is_set());
  auto b = wait_once(ev, order, 2);
  b.start(loop);
  loop.drain();
  EXPECT_EQ(order, (std::vector<int>{1}));
  EXPECT_FALSE(b.finished());
  ev.set();
  loop.drain();
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
}

TEST(async_manual_reset_event, a_stopped_waiter_leaves_and_set_still_releases_the_others) {
  ra::manual_reset_event ev;
  test_loop loop;
  ra::inplace_stop_source s;
  std::vector<int> order;
  auto a = wait_once(ev, order, 1);
  auto b = wait_once(ev, order, 2);
  a.start(loop, s.get_token());
  b.start(loop);
  loop.drain();
  s.request_stop();
  loop.drain();
  EXPECT_TRUE(a.threw_stopped());
  ev.set();
  loop.drain();
  EXPECT_EQ(order, (std::vector<int>{2}));
}

TEST(async_manual_reset_event, blocking_and_timed_waits) {
  ra::manual_reset_event ev;
  EXPECT_FALSE(ev.wait_blocking_for(std::chrono::milliseconds(1)));
  std::thread th([&] { ev.wait_blocking(); });
  ev.set();
  th.join();
  EXPECT_TRUE(ev.wait_blocking_until(std::chrono::steady_clock::now()));
  EXPECT_TRUE(ev.is_set());
}

// ---- auto reset ----------------------------------------------------------------

TEST(async_auto_reset_event, set_with_nobody_waiting_stays_set_and_does_not_accumulate) {
  ra::auto_reset_event ev;
  ev.set();
  ev.set();
  EXPECT_TRUE(ev.is_set());
  test_loop loop;
  std::vector<int> order;
  auto a = wait_once(ev, order, 1);
  auto b = wait_once(ev, order, 2);
  a.start(loop);
  b.start(loop);
  loop.drain();
  EXPECT_EQ(order, (std::vector<int>{1}));  // one token for two sets
  EXPECT_FALSE(ev.is_set());
  ev.set();
  loop.drain();
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
  EXPECT_FALSE(ev.is_set());
}

TEST(async_auto_reset_event, each_set_releases_exactly_one_waiter_oldest_first) {
  ra::auto_reset_event ev;
  test_loop loop;
  std::vector<int> order;
  auto a = wait_once(ev, order, 1);
  auto b = wait_once(ev, order, 2);
  auto c = wait_once(ev, order, 3);
  a.start(loop);
  b.start(loop);
  c.start(loop);
  loop.drain();
  ev.set();
  EXPECT_TRUE(order.empty());  // not inside set()
  loop.drain();
  EXPECT_EQ(order, (std::vector<int>{1}));
  EXPECT_FALSE(ev.is_set());
  ev.set();
  ev.set();
  loop.drain();
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
  EXPECT_FALSE(ev.is_set());
}

TEST(async_auto_reset_event, reset_drops_a_stored_token) {
  ra::auto_reset_event ev(true);
  EXPECT_TRUE(ev.is_set());
  ev.reset();
  EXPECT_FALSE(ev.is_set());
  EXPECT_FALSE(ev.wait_blocking_for(std::chrono::milliseconds(1)));
}

TEST(async_auto_reset_event, a_stopped_waiter_takes_no_token) {
  ra::auto_reset_event ev;
  test_loop loop;
  ra::inplace_stop_source s;
  std::vector<int> order;
  auto a = wait_once(ev, order, 1);
  a.start(loop, s.get_token());
  loop.drain();
  s.request_stop();
  loop.drain();
  EXPECT_TRUE(a.threw_stopped());
  ev.set();
  EXPECT_TRUE(ev.is_set());  // stored, not lost on the stopped waiter
}

TEST(async_auto_reset_event, a_waiter_stopped_after_the_set_keeps_the_token) {
  ra::auto_reset_event ev;
  test_loop loop;
  ra::inplace_stop_source s;
  std::vector<int> order;
  auto a = wait_once(ev, order, 1);
  a.start(loop, s.get_token());
  loop.drain();
  ev.set();
  s.request_stop();
  loop.drain();
  EXPECT_EQ(order, (std::vector<int>{1}));
  EXPECT_FALSE(ev.is_set());  // consumed once, not stored again
}

TEST(async_auto_reset_event, a_destroyed_chosen_waiter_hands_the_token_to_the_next) {
  ra::auto_reset_event ev;
  test_loop loop;
  std::vector<int> order;
  auto a = wait_once(ev, order, 1);
  auto b = wait_once(ev, order, 2);
  a.start(loop);
  b.start(loop);
  loop.drain();
  ev.set();
  ASSERT_TRUE(loop.discard(a.h));
  a.destroy();
  loop.drain();
  EXPECT_EQ(order, (std::vector<int>{2}));
  EXPECT_FALSE(ev.is_set());
}

// A thread and a coroutine take turns through two auto-reset events and a
// manual one that ends the game.
task<> player(ra::auto_reset_event& to_thread, ra::auto_reset_event& to_task, int rounds, int& done) {
  for (int i = 0; i < rounds; ++i) {
    to_thread.set();
    co_await to_task.wait();
    ++done;
  }
}
task<> finisher(ra::manual_reset_event& over, bool& seen) {
  co_await over.wait();
  seen = true;
}

// Two waiters without an executor, released by one set(): the first runs
// inside set() and destroys the second's frame, which set() had chosen too
// but not woken yet. Its destructor must leave set()'s chain, not wait for
// a release this thread has not reached (it hung).
bare waits_then_destroys(ra::manual_reset_event& ev, bare*& other, bool& ran) {
  co_await ev.wait();
  ran = true;
  std::exchange(other->h, {}).destroy();
}
bare waits(ra::manual_reset_event& ev, bool& ran) {
  co_await ev.wait();
  ran = true;
}

TEST(async_event, a_waiter_resumed_inside_set_may_destroy_another_waiter_it_set_free) {
  ra::manual_reset_event ev;
  bool a_ran = false, b_ran = false;
  bare* b_ptr = nullptr;
  bare a = waits_then_destroys(ev, b_ptr, a_ran);
  bare b = waits(ev, b_ran);
  b_ptr = &b;
  a.h.resume();  // both wait, a first
  b.h.resume();
  ev.set();  // wakes a, which destroys b, then returns
  EXPECT_TRUE(a_ran);
  EXPECT_FALSE(b_ran);
  EXPECT_FALSE(static_cast<bool>(b.h));
  EXPECT_TRUE(ev.wait().await_ready());
}

TEST(async_event, a_thread_and_a_coroutine_signal_each_other) {
  ra::auto_reset_event to_thread, to_task;
  ra::manual_reset_event over;
  test_loop loop;
  constexpr int rounds = 2000;
  int done = 0;
  bool seen = false;
  auto t = player(to_thread, to_task, rounds, done);
  auto f = finisher(over, seen);
  f.start(loop);
  t.start(loop);
  std::thread th([&] {
    for (int i = 0; i < rounds; ++i) {
      to_thread.wait_blocking();
      to_task.set();
    }
    over.set();
  });
  loop.run_until([&] { return t.finished() && f.finished(); });
  th.join();
  EXPECT_EQ(done, rounds);
  EXPECT_TRUE(seen);
  EXPECT_FALSE(to_thread.is_set());
  EXPECT_FALSE(to_task.is_set());
}

#if ROUSE_DEBUG_CHECKS && !defined(ROUSE_SANITIZER_thread)
// Deletes an event of type Event while a task waits on it.
template <class Event>
void destroy_with_a_waiter() {
  auto* ev = new Event;
  test_loop loop;
  std::vector<int> order;
  auto t = wait_once(*ev, order, 1);
  t.start(loop);
  loop.drain();
  delete ev;
}
TEST(async_event_death, destroying_an_event_with_a_waiter_is_diagnosed) {
  EXPECT_DEATH(destroy_with_a_waiter<ra::manual_reset_event>(),
               "rouse::async::manual_reset_event: misuse: destroyed while a task or thread waits on it");
  EXPECT_DEATH(destroy_with_a_waiter<ra::auto_reset_event>(),
               "rouse::async::auto_reset_event: misuse: destroyed while a task or thread waits on it");
}
#endif

}  // namespace
}  // namespace async_event_test
