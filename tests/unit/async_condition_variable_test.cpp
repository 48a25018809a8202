// rouse::async::condition_variable with rouse::async::mutex: notify_one
// wakes one waiter and notify_all every one, never inside the notify; the
// woken re-acquire the mutex through its FIFO queue; the predicate form; a
// notify between the unlock and the registration is not lost; a stopped
// wait owns the mutex again before it completes as stopped (and a stop
// cannot interrupt the re-lock); a frame destroyed while it waits leaves;
// threads and tasks on one cv; timed waits (never early, the mutex owned
// after); zero allocations per wait; misuse.
#include "rouse/async/condition_variable.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <coroutine>
#include <deque>
#include <optional>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

#include "async_test_loop.hpp"
#include "counting_new.hpp"
#include "rouse/async/mutex.hpp"
#include "rouse/async/run_loop.hpp"
#include "rouse/async/spawn.hpp"
#include "rouse/async/stop_token.hpp"
#include "rouse/async/task.hpp"
#include "rouse/async/thread_pool.hpp"

namespace async_condition_variable_test {
namespace {
using namespace std::chrono_literals;
using clk = std::chrono::steady_clock;

struct shared {
  ra::mutex m;
  ra::condition_variable cv;
  int value = 0;  // guarded by m
  std::vector<int> order;
};

// Locks, waits once, records (id, whether it owns the lock), unlocks.
template <bool StopsInPlace = false>
task<StopsInPlace> wait_once(shared& s, int id, std::vector<bool>* owned = nullptr) {
  auto g = co_await s.m.lock();
  try {
    co_await s.cv.wait(g);
  } catch (const ra::operation_stopped&) {
    if (owned) owned->push_back(g.owns_lock());
    throw;
  }
  if (owned) owned->push_back(g.owns_lock());
  s.order.push_back(id);
}

// Locks and waits until value >= want.
task<> wait_for_value(shared& s, int want, int id) {
  auto g = co_await s.m.lock();
  co_await s.cv.wait(g, [&] { return s.value >= want; });
  s.order.push_back(id);
}

TEST(async_condition_variable, sizes_are_documented) {
  EXPECT_EQ(sizeof(ra::condition_variable), 32u);
  EXPECT_LE(sizeof(ra::condition_variable::wait_awaitable<ra::detail::cv_no_predicate>), 1400u);
}

TEST(async_condition_variable, notify_one_wakes_one_waiter_on_its_executor_not_inside_the_call) {
  shared s;
  test_loop loop;
  auto a = wait_once(s, 1);
  auto b = wait_once(s, 2);
  a.start(loop);
  b.start(loop);
  loop.drain();
  EXPECT_TRUE(s.order.empty());
  EXPECT_TRUE(s.m.try_lock());  // both waiters released the mutex
  s.m.unlock();
  s.cv.notify_one();
  EXPECT_TRUE(s.order.empty());  // scheduled, not resumed inside notify_one()
  loop.drain();
  EXPECT_EQ(s.order, (std::vector<int>{1}));
  EXPECT_FALSE(b.finished());
  s.cv.notify_one();
  loop.drain();
  EXPECT_EQ(s.order, (std::vector<int>{1, 2}));
}

TEST(async_condition_variable, notify_all_wakes_every_waiter_and_they_relock_one_at_a_time) {
  shared s;
  test_loop loop;
  std::vector<bool> owned;
  auto a = wait_once(s, 1, &owned);
  auto b = wait_once(s, 2, &owned);
  auto c = wait_once(s, 3, &owned);
  a.start(loop);
  b.start(loop);
  c.start(loop);
  loop.drain();
  auto g = s.m.lock_blocking();  // the notifier holds the mutex: nobody gets through yet
  s.cv.notify_all();
  loop.drain();
  EXPECT_TRUE(s.order.empty());
  g.unlock();  // hands the mutex to the oldest re-locker, and so on (FIFO)
  loop.drain();
  EXPECT_EQ(s.order, (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(owned, (std::vector<bool>{true, true, true}));
  EXPECT_TRUE(s.m.try_lock());
  s.m.unlock();
}

TEST(async_condition_variable, the_predicate_form_checks_before_and_after_each_wake) {
  shared s;
  test_loop loop;
  s.value = 1;
  auto now = wait_for_value(s, 1, 1);  // holds already: no suspension
  auto later = wait_for_value(s, 3, 2);
  now.start(loop);
  later.start(loop);
  loop.drain();
  EXPECT_EQ(s.order, (std::vector<int>{1}));
  {
    auto g = s.m.lock_blocking();
    s.value = 2;
  }
  s.cv.notify_all();  // pred still false: it waits again
  loop.drain();
  EXPECT_FALSE(later.finished());
  {
    auto g = s.m.lock_blocking();
    s.value = 3;
  }
  s.cv.notify_one();
  loop.drain();
  EXPECT_EQ(s.order, (std::vector<int>{1, 2}));
}

// A predicate that throws ends the wait with the guard owning the lock,
// and the co_await rethrows (std's loop): at the first check, after a
// notify, and under wait_for. (The driver once let it reach its
// unhandled_exception(): std::terminate.)
TEST(async_condition_variable, a_throwing_predicate_is_rethrown_with_the_lock_owned) {
  for (int throw_on : {1, 2}) {
    for (bool timed : {false, true}) {
      ra::run_loop loop;
      ra::mutex m;
      ra::condition_variable cv;
      int calls = 0;
      bool owned_in_catch = false;
      loop.run_until_complete([](ra::mutex& m, ra::condition_variable& cv, int& calls, int throw_on, bool timed,
                                 bool& owned) -> ra::task<> {
        auto s = co_await ra::this_task::get_scheduler();
        auto waiter = [](ra::mutex& m, ra::condition_variable& cv, int& calls, int throw_on, bool timed,
                         bool& owned) -> ra::task<> {
          auto g = co_await m.lock();
          auto pred = [&] {
            if (++calls == throw_on) throw std::runtime_error("pred");
            return false;
          };
          try {
            if (timed)
              (void)co_await cv.wait_for(g, 1h, pred);
            else
              co_await cv.wait(g, pred);
            ADD_FAILURE() << "the predicate's exception was not rethrown";
          } catch (const std::runtime_error&) {
            owned = g.owns_lock();
          }
        };
        auto h = ra::spawn(s, waiter(m, cv, calls, throw_on, timed, owned));
        while (calls < 1) co_await ra::this_task::yield();
        {
          auto g = co_await m.lock();  // the waiter waits (or is done)
          cv.notify_one();
        }
        co_await std::move(h);
      }(m, cv, calls, throw_on, timed, owned_in_catch));
      EXPECT_TRUE(owned_in_catch) << "throw on check " << throw_on << (timed ? ", wait_for" : ", wait");
      EXPECT_TRUE(m.try_lock());  // the guard unlocked it
      m.unlock();
    }
  }
}

TEST(async_condition_variable, a_notify_between_the_wait_call_and_its_registration_is_not_lost) {
  shared s;
  test_loop loop;
  auto t = [](shared& s) -> task<> {
    auto g = co_await s.m.lock();
    auto w = s.cv.wait(g);  // the wait is made here, with the mutex held
    s.cv.notify_one();      // before the co_await registers it
    co_await std::move(w);
    s.order.push_back(1);
  }(s);
  t.start(loop);
  loop.drain();
  EXPECT_EQ(s.order, (std::vector<int>{1}));
}

TEST(async_condition_variable, a_stopped_wait_owns_the_mutex_again_before_it_completes_stopped) {
  shared s;
  test_loop loop;
  ra::inplace_stop_source stop;
  std::vector<bool> owned;
  auto a = wait_once(s, 1, &owned);
  a.start(loop, stop.get_token());
  loop.drain();
  auto g = s.m.lock_blocking();  // someone else holds the mutex
  stop.request_stop();
  loop.drain();
  EXPECT_FALSE(a.finished());  // it waits for the mutex: the re-lock is not stoppable
  g.unlock();
  loop.drain();
  EXPECT_TRUE(a.threw_stopped());
  EXPECT_EQ(owned, (std::vector<bool>{true}));
  EXPECT_TRUE(s.m.try_lock());  // its guard unlocked when the coroutine unwound
  s.m.unlock();
}

TEST(async_condition_variable, a_stopped_wait_in_a_task_completes_stopped_with_the_mutex_released_by_its_guard) {
  shared s;
  ra::inplace_stop_source stop;
  std::atomic<bool> waiting{false};
  std::thread stopper([&] {
    while (!waiting.load()) std::this_thread::yield();
    stop.request_stop();
  });
  auto body = [](shared& s, std::atomic<bool>& waiting) -> ra::task<int> {
    auto g = co_await s.m.lock();
    waiting.store(true);
    for (;;) co_await s.cv.wait(g);
  };
  EXPECT_FALSE(ra::sync_wait(body(s, waiting), stop.get_token()).has_value());
  stopper.join();
  EXPECT_TRUE(s.m.try_lock());
  s.m.unlock();
}

TEST(async_condition_variable, a_stop_after_a_notify_chose_the_waiter_does_not_stop_it) {
  shared s;
  test_loop loop;
  ra::inplace_stop_source stop;
  auto a = wait_once(s, 1);
  a.start(loop, stop.get_token());
  loop.drain();
  s.cv.notify_one();
  stop.request_stop();
  loop.drain();
  EXPECT_FALSE(a.threw_stopped());
  EXPECT_EQ(s.order, (std::vector<int>{1}));
}

TEST(async_condition_variable, a_frame_destroyed_while_waiting_leaves_the_list) {
  auto* s = new shared;
  test_loop loop;
  {
    auto a = wait_once(*s, 1);
    a.start(loop);
    loop.drain();
  }  // destroyed while it waits on the cv (not holding the mutex)
  auto b = wait_once(*s, 2);
  b.start(loop);
  loop.drain();
  s->cv.notify_one();  // goes to b: a left
  loop.drain();
  EXPECT_EQ(s->order, (std::vector<int>{2}));
  EXPECT_TRUE(s->m.try_lock());
  s->m.unlock();
  delete s;  // debug builds check both lists are empty
}

TEST(async_condition_variable, threads_and_tasks_share_one_cv_and_mutex) {
  shared s;
  ra::thread_pool pool(2);
  constexpr int items = 200;
  std::deque<int> q;
  long consumed_sum = 0;
  int consumed = 0;
  bool closed = false;
  auto consumer_task = [](shared& s, std::deque<int>& q, long& sum, int& n, bool& closed) -> ra::task<> {
    for (;;) {
      auto g = co_await s.m.lock();
      co_await s.cv.wait(g, [&] { return !q.empty() || closed; });
      if (q.empty()) co_return;
      sum += q.front();
      q.pop_front();
      ++n;
    }
  };
  auto h1 = ra::spawn(pool.get_scheduler(), consumer_task(s, q, consumed_sum, consumed, closed));
  auto h2 = ra::spawn(pool.get_scheduler(), consumer_task(s, q, consumed_sum, consumed, closed));
  std::thread consumer_thread([&] {
    for (;;) {
      auto g = s.m.lock_blocking();
      s.cv.wait_blocking(g, [&] { return !q.empty() || closed; });
      if (q.empty()) return;
      consumed_sum += q.front();
      q.pop_front();
      ++consumed;
    }
  });
  for (int i = 1; i <= items; ++i) {
    {
      auto g = s.m.lock_blocking();
      q.push_back(i);
    }
    s.cv.notify_one();
  }
  {
    auto g = s.m.lock_blocking();
    closed = true;
  }
  s.cv.notify_all();
  h1.join();
  h2.join();
  consumer_thread.join();
  EXPECT_EQ(consumed, items);
  EXPECT_EQ(consumed_sum, static_cast<long>(items) * (items + 1) / 2);
}

TEST(async_condition_variable, timed_waits_are_never_early_and_own_the_mutex_after) {
  shared s;
  {
    auto g = s.m.lock_blocking();
    auto const start = clk::now();
    EXPECT_FALSE(s.cv.wait_blocking_for(g, 2ms));
    EXPECT_GE(clk::now() - start, 2ms);
    EXPECT_TRUE(g.owns_lock());
    EXPECT_FALSE(s.cv.wait_blocking_for(g, 1ms, [] { return false; }));
    EXPECT_TRUE(s.cv.wait_blocking_until(g, clk::now(), [] { return true; }));
  }
  ra::run_loop loop;
  auto const took = loop.run_until_complete([](shared& s) -> ra::task<clk::duration> {
    auto g = co_await s.m.lock();
    auto const start = clk::now();
    bool const notified = co_await s.cv.wait_for(g, 3ms);
    EXPECT_FALSE(notified);
    EXPECT_TRUE(g.owns_lock());
    bool const held = co_await s.cv.wait_until(g, clk::now() + 1ms, [] { return false; });
    EXPECT_FALSE(held);
    EXPECT_TRUE(g.owns_lock());
    // std's rule: at the timeout the predicate decides (false before the
    // wait, true once the mutex is owned again after the timeout).
    int calls = 0;
    bool const late = co_await s.cv.wait_for(g, 1ms, [&] { return ++calls > 1; });
    EXPECT_TRUE(late);
    EXPECT_EQ(calls, 2);
    EXPECT_TRUE(g.owns_lock());
    co_return clk::now() - start;
  }(s));
  EXPECT_GE(took, 3ms);
  EXPECT_TRUE(s.m.try_lock());
  s.m.unlock();
  EXPECT_EQ(ra::detail::cv_heap_frames().load(), 0);
}

TEST(async_condition_variable, a_timed_wait_notified_in_time_yields_true) {
  shared s;
  ra::run_loop loop;
  bool const r = loop.run_until_complete([](shared& s) -> ra::task<bool> {
    auto g = co_await s.m.lock();
    std::thread t([&s] {
      auto g2 = s.m.lock_blocking();  // waits until the wait released the mutex
      s.value = 1;
      s.cv.notify_one();
    });
    bool const ok = co_await s.cv.wait_for(g, 1h, [&] { return s.value == 1; });
    g.unlock();
    t.join();
    co_return ok;
  }(s));
  EXPECT_TRUE(r);
}

// ---- allocations ---------------------------------------------------------------


bare bare_wait(shared& s, int rounds) {
  for (int i = 0; i < rounds; ++i) {
    auto g = co_await s.m.lock();
    co_await s.cv.wait(g);
  }
}

TEST(async_condition_variable, a_wait_allocates_nothing) {
  if (!rouse_test::counts_allocations) GTEST_SKIP() << "a sanitizer owns operator new";
  shared s;
  bare a = bare_wait(s, 5);
  bare b = bare_wait(s, 5);
  long const before = rouse_test::allocations();
  a.h.resume();  // no executor: everything resumes inline on the notifier's thread
  b.h.resume();
  for (int i = 0; i < 20 && !(a.h.promise().done && b.h.promise().done); ++i) s.cv.notify_all();
  long const after = rouse_test::allocations();
  EXPECT_TRUE(a.h.promise().done && b.h.promise().done);
  EXPECT_EQ(after - before, 0);
  EXPECT_EQ(ra::detail::cv_heap_frames().load(), 0);
}

#if ROUSE_DEBUG_CHECKS && !defined(ROUSE_SANITIZER_thread)
// X waits in co_await cv.wait(g) (a coroutine without an executor); the
// mutex it releases goes to Y, queued on it, resumed inline inside that
// release, and Y destroys X's frame (X waits on the cv: nothing will resume
// it). The release is the wait's last act, after it registered and slept,
// so X leaves the cv's list like any waiter (the release came first, and
// returned into X's freed driver frame: a use of freed memory, and X's wait
// left linked in the cv).
bare holds_then_waits(ra::mutex& m, ra::condition_variable& cv, bool& woken, bool timed) {
  auto g = co_await m.lock();
  co_await std::suspend_always{};  // resumed by the test once Y queued on m
  if (timed)
    (void)co_await cv.wait_for(g, std::chrono::hours(1));
  else
    co_await cv.wait(g);
  woken = true;
}
bare locks_then_destroys(ra::mutex& m, bare*& victim, bool& ran) {
  auto g = co_await m.lock();
  ran = true;
  std::exchange(victim->h, {}).destroy();
}

TEST(async_condition_variable, a_waiter_let_in_by_a_waits_unlock_may_destroy_that_waiter) {
  for (bool const timed : {false, true}) {
    ra::mutex m;
    ra::condition_variable cv;
    bool woken = false, ran = false;
    bare* victim = nullptr;
    bare x = holds_then_waits(m, cv, woken, timed);
    x.h.resume();  // X holds m
    victim = &x;
    bare y = locks_then_destroys(m, victim, ran);
    y.h.resume();  // Y queues on m
    if (timed) {
      // wait_for needs an executor for its timer: the calling thread's.
      ra::run_loop loop;
      loop.run_until_complete([](bare& b) -> ra::task<> {
        b.h.resume();  // X waits on the cv: its unlock lets Y in, inline
        co_return;
      }(x));
    } else {
      x.h.resume();
    }
    EXPECT_TRUE(ran);
    EXPECT_FALSE(woken);
    EXPECT_FALSE(static_cast<bool>(x.h));
    cv.notify_all();  // nobody is left in its list
    EXPECT_TRUE(m.try_lock());  // Y's guard went at its end
    m.unlock();
  }
}

TEST(async_condition_variable_death, a_wait_with_a_guard_that_owns_nothing_is_diagnosed) {
  EXPECT_DEATH(
      {
        ra::condition_variable cv;
        ra::mutex::guard g;
        cv.wait_blocking(g);
      },
      "rouse::async::condition_variable: misuse: wait with a guard that owns no lock");
}
TEST(async_condition_variable_death, destroying_a_condition_variable_with_a_waiter_is_diagnosed) {
  EXPECT_DEATH(
      {
        auto* s = new shared;
        test_loop loop;
        auto t = wait_once(*s, 1);
        t.start(loop);
        loop.drain();
        s->cv.~condition_variable();
      },
      "rouse::async::condition_variable: misuse: destroyed while a task or thread waits on it");
}
#endif

}  // namespace
}  // namespace async_condition_variable_test
