// rouse::async::notify: tokio's Notify semantics, each rule a test. A permit
// stored when nobody waits (one, not accumulated); notify_one wakes the
// oldest; notify_all wakes every waiter registered before it (creation
// counts), stores nothing, and never completes two sequential awaits
// (tokio #5396); a waiter destroyed after being chosen passes the permit on
// (tokio #4618); cancellation through the stop token before, while waiting
// and after the wake (nothing lost, nothing doubled); waiters resume on their
// executor, not inside the notify; blocking and timed forms; a thread and a
// coroutine signalling each other; misuse. Coroutines run on a
// single-thread loop of this test's own (an executor subclass).
#include "rouse/async/notify.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <coroutine>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "async_test_loop.hpp"
#include "rouse/async/executor.hpp"
#include "rouse/async/stop_token.hpp"

namespace async_notify_test {
namespace {
namespace ra = rouse::async;

// Awaits once, then records its number in `order`.
task<> wait_once(ra::notify& n, std::vector<int>& order, int id) {
  co_await n.notified();
  order.push_back(id);
}
task<true> wait_once_in_place(ra::notify& n, int& count) {
  co_await n.notified();
  ++count;
}
// Awaits `rounds` times in a row, counting each completion.
task<> wait_repeatedly(ra::notify& n, int rounds, int& count) {
  for (int i = 0; i < rounds; ++i) {
    co_await n.notified();
    ++count;
  }
}

// Whether a permit is stored (takes it): a check without a coroutine.
bool take_permit(ra::notify& n) { return n.notified().await_ready(); }

// ---- permits -------------------------------------------------------------------

TEST(async_notify, sizes_are_documented) {
  EXPECT_EQ(sizeof(ra::notify), 32u);
  EXPECT_EQ(sizeof(ra::notify::awaitable), 200u);
}

TEST(async_notify, notify_one_with_nobody_waiting_stores_one_permit_not_two) {
  ra::notify n;
  n.notify_one();
  n.notify_one();
  EXPECT_TRUE(take_permit(n));
  EXPECT_FALSE(take_permit(n));
}

TEST(async_notify, a_stored_permit_completes_the_next_await_without_suspending) {
  ra::notify n;
  test_loop loop;
  std::vector<int> order;
  n.notify_one();
  auto t = wait_once(n, order, 1);
  t.start(loop);
  EXPECT_EQ(loop.drain(), 1);  // the start only
  EXPECT_TRUE(t.finished());
  EXPECT_FALSE(take_permit(n));
}

TEST(async_notify, notify_one_wakes_the_oldest_waiter_on_its_executor) {
  ra::notify n;
  test_loop loop;
  std::vector<int> order;
  auto a = wait_once(n, order, 1);
  auto b = wait_once(n, order, 2);
  auto c = wait_once(n, order, 3);
  a.start(loop);
  b.start(loop);
  c.start(loop);
  loop.drain();
  n.notify_one();
  EXPECT_TRUE(order.empty());  // not resumed inside notify_one()
  loop.drain();
  EXPECT_EQ(order, (std::vector<int>{1}));
  n.notify_one();
  n.notify_one();
  loop.drain();
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
  EXPECT_FALSE(take_permit(n));  // each was consumed by a waiter
}

// ---- notify_all ------------------------------------------------------------------

TEST(async_notify, notify_all_wakes_every_waiter_registered_before_it_and_stores_nothing) {
  ra::notify n;
  test_loop loop;
  std::vector<int> order;
  auto a = wait_once(n, order, 1);
  auto b = wait_once(n, order, 2);
  a.start(loop);
  b.start(loop);
  loop.drain();
  n.notify_all();
  loop.drain();
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
  EXPECT_FALSE(take_permit(n));
  auto late = wait_once(n, order, 3);
  late.start(loop);
  loop.drain();
  EXPECT_FALSE(late.finished());
  n.notify_one();
  loop.drain();
  EXPECT_TRUE(late.finished());
}

TEST(async_notify, a_notified_created_before_notify_all_completes_when_awaited_after) {
  ra::notify n;
  auto f = n.notified();
  n.notify_all();
  EXPECT_TRUE(f.await_ready());
  auto g = n.notified();  // after: not
  EXPECT_FALSE(g.await_ready());
}

TEST(async_notify, one_notify_all_does_not_complete_two_sequential_awaits) {
  ra::notify n;
  test_loop loop;
  int count = 0;
  auto t = wait_repeatedly(n, 2, count);
  t.start(loop);
  loop.drain();
  n.notify_all();
  loop.drain();
  EXPECT_EQ(count, 1);
  n.notify_all();
  loop.drain();
  EXPECT_EQ(count, 2);
}

// ---- give_back: a completed wait whose completion is dropped -------------------------
// (a select's op() branch that completed but lost)

task<> await_it(ra::notify::awaitable& f, int& count) {
  co_await f;
  ++count;
}

TEST(async_notify, give_back_after_taking_a_stored_permit_stores_it_again) {
  ra::notify n;
  n.notify_one();
  auto f = n.notified();
  ASSERT_TRUE(f.await_ready());  // took the permit
  f.await_resume();
  EXPECT_FALSE(take_permit(n));
  n.notify_one();
  ASSERT_TRUE(take_permit(n));
  f.give_back();
  EXPECT_TRUE(take_permit(n));  // back
  EXPECT_FALSE(take_permit(n));
}

TEST(async_notify, give_back_of_a_wait_notify_one_chose_passes_the_permit_to_the_next_waiter) {
  ra::notify n;
  test_loop loop;
  std::vector<int> order;
  int count = 0;
  auto f = n.notified();
  auto a = await_it(f, count);
  auto b = wait_once(n, order, 2);
  a.start(loop);
  b.start(loop);
  loop.drain();
  n.notify_one();  // chooses a
  loop.drain();
  EXPECT_EQ(count, 1);
  EXPECT_TRUE(order.empty());
  f.give_back();  // a's permit goes to b
  loop.drain();
  EXPECT_EQ(order, (std::vector<int>{2}));
  EXPECT_FALSE(take_permit(n));
}

TEST(async_notify, give_back_of_a_wait_notify_all_woke_gives_nothing) {
  ra::notify n;
  test_loop loop;
  int count = 0;
  auto f = n.notified();
  auto a = await_it(f, count);
  a.start(loop);
  loop.drain();
  n.notify_all();
  loop.drain();
  EXPECT_EQ(count, 1);
  f.give_back();
  EXPECT_FALSE(take_permit(n));  // notify_all stores nothing, and gets nothing back
}

TEST(async_notify, give_back_after_a_notify_all_seen_at_the_check_gives_nothing) {
  ra::notify n;
  auto f = n.notified();
  n.notify_all();
  n.notify_one();  // stored, not taken: the check saw the notify_all first
  ASSERT_TRUE(f.await_ready());
  f.await_resume();
  f.give_back();
  EXPECT_TRUE(take_permit(n));
  EXPECT_FALSE(take_permit(n));
}

// ---- a waiter that gives up ----------------------------------------------------------

TEST(async_notify, a_waiter_destroyed_after_being_chosen_passes_the_permit_on) {
  ra::notify n;
  test_loop loop;
  std::vector<int> order;
  auto a = wait_once(n, order, 1);
  auto b = wait_once(n, order, 2);
  a.start(loop);
  b.start(loop);
  loop.drain();
  n.notify_one();  // chooses a
  ASSERT_TRUE(loop.discard(a.h));
  a.destroy();  // a never runs: b gets the permit
  loop.drain();
  EXPECT_EQ(order, (std::vector<int>{2}));
  EXPECT_FALSE(take_permit(n));
}

TEST(async_notify, the_last_waiter_destroyed_after_being_chosen_stores_the_permit) {
  ra::notify n;
  test_loop loop;
  std::vector<int> order;
  auto a = wait_once(n, order, 1);
  a.start(loop);
  loop.drain();
  n.notify_one();
  ASSERT_TRUE(loop.discard(a.h));
  a.destroy();
  EXPECT_TRUE(take_permit(n));
}

TEST(async_notify, a_waiter_destroyed_before_being_chosen_takes_nothing) {
  ra::notify n;
  test_loop loop;
  std::vector<int> order;
  auto a = wait_once(n, order, 1);
  a.start(loop);
  loop.drain();
  a.destroy();
  n.notify_one();
  EXPECT_TRUE(take_permit(n));
}

// ---- cancellation ------------------------------------------------------------------

TEST(async_notify, stop_before_the_await_completes_it_stopped_and_takes_no_permit) {
  ra::notify n;
  test_loop loop;
  ra::inplace_stop_source s;
  s.request_stop();
  std::vector<int> order;
  auto t = wait_once(n, order, 1);
  t.start(loop, s.get_token());
  loop.drain();
  EXPECT_TRUE(t.threw_stopped());
  n.notify_one();
  EXPECT_TRUE(take_permit(n));
}

TEST(async_notify, stop_while_waiting_completes_it_stopped_and_a_later_notify_is_kept) {
  ra::notify n;
  test_loop loop;
  ra::inplace_stop_source s;
  std::vector<int> order;
  auto t = wait_once(n, order, 1);
  auto other = wait_once(n, order, 2);
  t.start(loop, s.get_token());
  other.start(loop);
  loop.drain();
  s.request_stop();
  loop.drain();
  EXPECT_TRUE(t.threw_stopped());
  n.notify_one();  // goes to the other waiter, not to the stopped one
  loop.drain();
  EXPECT_EQ(order, (std::vector<int>{2}));
  EXPECT_FALSE(take_permit(n));
}

TEST(async_notify, stop_while_waiting_with_unhandled_stopped_never_resumes_it) {
  ra::notify n;
  test_loop loop;
  ra::inplace_stop_source s;
  int count = 0;
  auto t = wait_once_in_place(n, count);
  t.start(loop, s.get_token());
  loop.drain();
  s.request_stop();
  loop.drain();
  EXPECT_TRUE(t.stopped());
  EXPECT_FALSE(t.finished());
  EXPECT_EQ(count, 0);
  n.notify_one();
  EXPECT_TRUE(take_permit(n));
}

TEST(async_notify, stop_after_the_wake_lets_the_wake_stand_and_consumes_once) {
  ra::notify n;
  test_loop loop;
  ra::inplace_stop_source s;
  std::vector<int> order;
  auto t = wait_once(n, order, 1);
  t.start(loop, s.get_token());
  loop.drain();
  n.notify_one();
  s.request_stop();
  loop.drain();
  EXPECT_FALSE(t.threw_stopped());
  EXPECT_EQ(order, (std::vector<int>{1}));
  EXPECT_FALSE(take_permit(n));
}

TEST(async_notify, stop_racing_notify_one_on_another_thread_loses_nothing) {
  // Each round: one waiter, a notify_one and a stop on two threads at once.
  // Either the waiter completes normally (the permit consumed) or it
  // completes stopped and the permit is stored: one permit, exactly once.
  for (int round = 0; round < 300; ++round) {
    ra::notify n;
    test_loop loop;
    ra::inplace_stop_source s;
    std::vector<int> order;
    auto t = wait_once(n, order, 1);
    t.start(loop, s.get_token());
    loop.drain();
    std::atomic<int> go{0};
    std::thread notifier([&] {
      while (go.load() == 0) {
      }
      n.notify_one();
    });
    std::thread stopper([&] {
      while (go.load() == 0) {
      }
      s.request_stop();
    });
    go = 1;
    notifier.join();
    stopper.join();
    loop.drain();
    ASSERT_TRUE(t.finished());
    bool const stopped = t.threw_stopped();
    EXPECT_EQ(order.size(), stopped ? 0u : 1u);
    EXPECT_EQ(take_permit(n), stopped) << "round " << round;
  }
}

// ---- threads ----------------------------------------------------------------------

TEST(async_notify, wait_blocking_takes_a_stored_permit) {
  ra::notify n;
  n.notify_one();
  n.wait_blocking();
  EXPECT_FALSE(take_permit(n));
}

TEST(async_notify, timed_wait_times_out_then_sees_a_later_permit) {
  ra::notify n;
  EXPECT_FALSE(n.wait_blocking_for(std::chrono::milliseconds(1)));
  EXPECT_FALSE(n.wait_blocking_until(std::chrono::steady_clock::now() - std::chrono::seconds(1)));
  n.notify_one();
  EXPECT_TRUE(n.wait_blocking_for(std::chrono::milliseconds(1)));
  EXPECT_FALSE(take_permit(n));
}

TEST(async_notify, a_blocked_thread_is_woken_by_notify_one) {
  ra::notify n;
  std::atomic<int> woken{0};
  std::thread th([&] {
    n.wait_blocking();
    woken.fetch_add(1);
    n.wait_blocking();
    woken.fetch_add(1);
  });
  n.notify_one();  // a waiter or a permit: either way it passes the first
  while (woken.load() < 1) std::this_thread::yield();
  // The second wait may or may not be registered yet: notify_one covers both.
  n.notify_one();
  th.join();
  EXPECT_EQ(woken.load(), 2);
}

// A thread and a coroutine take turns through two notifies.
task<> ping(ra::notify& to_thread, ra::notify& to_task, int rounds, int& done) {
  for (int i = 0; i < rounds; ++i) {
    to_thread.notify_one();
    co_await to_task.notified();
    ++done;
  }
}

TEST(async_notify, a_thread_and_a_coroutine_signal_each_other) {
  ra::notify to_thread, to_task;
  test_loop loop;
  constexpr int rounds = 2000;
  int done = 0;
  auto t = ping(to_thread, to_task, rounds, done);
  t.start(loop);
  std::thread th([&] {
    for (int i = 0; i < rounds; ++i) {
      to_thread.wait_blocking();
      to_task.notify_one();
    }
  });
  loop.run_until([&] { return t.finished(); });
  th.join();
  EXPECT_EQ(done, rounds);
  EXPECT_FALSE(take_permit(to_thread));
  EXPECT_FALSE(take_permit(to_task));
}

#if ROUSE_DEBUG_CHECKS && !defined(ROUSE_SANITIZER_thread)
// A second await of one notified() (and of an auto_reset_event's wait(),
// the same awaitable) completed at once without a notification, and left
// its node linked in a frame about to be freed.
TEST(async_notify_death, a_second_await_of_one_notified_is_diagnosed) {
  EXPECT_DEATH(
      {
        ra::notify n;
        n.notify_one();  // a permit: the first await is ready
        auto a = n.notified();
        if (a.await_ready()) {
          a.await_resume();
          (void)a.await_ready();  // awaited again
        }
      },
      "rouse::async::list_awaitable: misuse: awaited twice");
}
TEST(async_notify_death, a_give_back_before_the_await_completed_is_diagnosed) {
  EXPECT_DEATH(
      {
        ra::notify n;
        auto a = n.notified();
        a.give_back();
      },
      "rouse::async::list_awaitable::give_back: misuse: called before the await completed normally");
}

TEST(async_notify_death, destroying_a_notify_with_a_waiter_is_diagnosed) {
  EXPECT_DEATH(
      {
        auto* n = new ra::notify;
        test_loop loop;
        std::vector<int> order;
        auto t = wait_once(*n, order, 1);
        t.start(loop);
        loop.drain();
        delete n;
      },
      "rouse::async::notify: misuse: destroyed while a task or thread waits on it");
}
#endif

}  // namespace
}  // namespace async_notify_test
