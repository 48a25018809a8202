// rouse::async::channel::select: exactly one branch completes; a ready branch
// completes without waiting; ready branches are chosen fairly (random); a
// waiting select wakes for the first value, slot or deadline; a losing recv
// takes no value; a losing reserve or send holds no slot and moves nothing;
// the timeout branch is never early; a stopped select takes nothing; closed
// channels complete their branches. Generic branches (op): a semaphore
// acquire, a sleep, a join handle or a task wins; a losing acquire leaves
// the semaphore's count exact (its child is stopped and awaited, a permit
// it got anyway is released); a stop of the select stops and awaits its
// children; an op's exception is rethrown. select_blocking: a thread waits
// on the same branches, with a task on the other end; its deadline is never
// early.
#include "rouse/async/select.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>
#include <variant>

#include "counted.hpp"
#include "rouse/async/event.hpp"
#include "rouse/async/mutex.hpp"
#include "rouse/async/notify.hpp"
#include "rouse/async/run_loop.hpp"
#include "rouse/async/semaphore.hpp"
#include "rouse/async/sleep.hpp"
#include "rouse/async/spawn.hpp"
#include "rouse/async/task.hpp"
#include "rouse/async/thread_pool.hpp"
#include "rouse/async/timeout.hpp"

namespace async_select_test {
namespace {
namespace ch = rouse::async::channel;
using namespace std::chrono_literals;
using clk = std::chrono::steady_clock;
using rouse::async::run_loop;
using rouse::async::task;
using rouse::channel::status;
using rouse_test::counted;
using rouse_test::counted_scope;

template <class T>
T run(run_loop& loop, task<T> t) {
  return loop.run_until_complete(std::move(t));
}

TEST(async_select, a_ready_recv_completes_at_once_and_the_other_takes_nothing) {
  run_loop loop;
  auto a = ch::bounded<int>(4);
  auto b = ch::unbounded<int>();
  EXPECT_TRUE(b.first.try_send(7));
  auto r = run(loop, ch::select(ch::recv(a.second), ch::recv(b.second)));
  ASSERT_EQ(r.index(), 1u);
  EXPECT_EQ(*std::get<1>(r), 7);
  EXPECT_TRUE(a.first.try_send(1));
  EXPECT_EQ(*a.second.try_recv(), 1);
}

TEST(async_select, ready_branches_are_chosen_fairly_and_exactly_one_completes) {
  run_loop loop;
  auto a = ch::bounded<int>(4);
  auto b = ch::bounded<int>(4);
  int wins[2] = {0, 0};
  for (int i = 0; i < 2000; ++i) {
    if (a.second.size() == 0) {
      EXPECT_TRUE(a.first.try_send(i));
    }
    if (b.second.size() == 0) {
      EXPECT_TRUE(b.first.try_send(i));
    }
    auto r = run(loop, ch::select(ch::recv(a.second), ch::recv(b.second)));
    ++wins[r.index()];
  }
  EXPECT_GT(wins[0], 700);
  EXPECT_GT(wins[1], 700);
  // One value taken per select: the loser of the last round keeps its value.
  EXPECT_EQ(a.second.size() + b.second.size(), 1u);
  EXPECT_EQ(wins[0] + wins[1], 2000);
}

// Beside a branch that is not ready, the ready ones are chosen alike (a scan
// from a random start would give the branch after the empty one two thirds).
TEST(async_select, ready_branches_are_chosen_alike_beside_one_not_ready) {
  run_loop loop;
  auto never = ch::bounded<int>(1);
  auto a = ch::unbounded<int>();
  auto b = ch::unbounded<int>();
  constexpr int rounds = 3000;
  for (int i = 0; i < rounds; ++i) {
    EXPECT_TRUE(a.first.try_send(i));
    EXPECT_TRUE(b.first.try_send(i));
  }
  int wins[3] = {0, 0, 0};
  for (int i = 0; i < rounds; ++i)
    ++wins[run(loop, ch::select(ch::recv(never.second), ch::recv(a.second), ch::recv(b.second))).index()];
  EXPECT_EQ(wins[0], 0);
  EXPECT_GT(wins[1], rounds * 2 / 5);
  EXPECT_GT(wins[2], rounds * 2 / 5);
}

task<std::size_t> select_two(ch::receiver<int>& a, ch::receiver<int>& b, int& got) {
  auto r = co_await ch::select(ch::recv(a), ch::recv(b));
  got = r.index() == 0 ? *std::get<0>(r) : *std::get<1>(r);
  co_return r.index();
}

TEST(async_select, a_waiting_select_wakes_for_the_first_value) {
  for (std::size_t cap : {0u, 1u}) {
    run_loop loop;
    auto a = ch::bounded<int>(cap);
    auto b = ch::bounded<int>(cap);
    int got = 0;
    auto h = rouse::async::spawn(loop, select_two(a.second, b.second, got));
    run(loop, []() -> task<> { co_return; }());
    EXPECT_FALSE(h.is_done());
    std::thread t([&b] { EXPECT_TRUE(b.first.send_blocking(42)); });
    auto idx = run(loop, [](rouse::async::join_handle<std::size_t> h) -> task<std::size_t> {
      co_return co_await std::move(h);
    }(std::move(h)));
    t.join();
    EXPECT_EQ(idx, 1u);
    EXPECT_EQ(got, 42);
    EXPECT_EQ(a.second.try_recv().status(), status::empty);
  }
}

TEST(async_select, the_timeout_branch_is_never_early) {
  run_loop loop;
  auto a = ch::bounded<int>(1);
  for (auto d : {0us, 200us, 3000us}) {
    auto const start = clk::now();
    auto r = run(loop, ch::select(ch::recv(a.second), ch::timeout(d)));
    EXPECT_GE(clk::now() - start, d);
    EXPECT_EQ(r.index(), 1u);
  }
  EXPECT_TRUE(a.first.try_send(3));
  auto r = run(loop, ch::select(ch::recv(a.second), ch::timeout(1h)));
  EXPECT_EQ(r.index(), 0u);
}

TEST(async_select, a_losing_reserve_holds_no_slot) {
  run_loop loop;
  auto full = ch::bounded<int>(1);
  auto other = ch::bounded<int>(1);
  EXPECT_TRUE(full.first.try_send(0));
  auto h = rouse::async::spawn(loop, [](ch::sender<int>& tx, ch::receiver<int>& rx) -> task<std::size_t> {
    auto r = co_await ch::select(ch::reserve(tx), ch::recv(rx));
    co_return r.index();
  }(full.first, other.second));
  run(loop, []() -> task<> { co_return; }());
  EXPECT_TRUE(other.first.try_send(5));
  EXPECT_EQ(*full.second.try_recv(), 0);  // a slot for the reserve, if it is still waiting
  auto idx = run(loop, [](rouse::async::join_handle<std::size_t> h) -> task<std::size_t> {
    co_return co_await std::move(h);
  }(std::move(h)));
  if (idx == 1) {
    EXPECT_EQ(full.second.permits_for_testing(), 1);  // given back
  } else {
    EXPECT_EQ(*other.second.try_recv(), 5);           // the value stayed
    EXPECT_EQ(full.second.permits_for_testing(), 1);  // the permit was dropped unused
  }
}

TEST(async_select, a_send_branch_moves_its_value_only_when_it_wins) {
  counted_scope scope;
  run_loop loop;
  auto full = ch::bounded<counted>(1);
  auto other = ch::bounded<counted>(1);
  EXPECT_TRUE(full.first.try_send(counted(0)));
  EXPECT_TRUE(other.first.try_send(counted(1)));
  counted v(9);
  auto r = run(loop, ch::select(ch::send(full.first, v), ch::recv(other.second)));
  EXPECT_EQ(r.index(), 1u);
  EXPECT_EQ(v.value, 9);  // untouched
  auto r2 = run(loop, ch::select(ch::send(other.first, v), ch::recv(full.second)));
  // Both are ready: either the send went (v moved into the channel) or the
  // receive got 0 and v is untouched.
  if (r2.index() == 0) {
    EXPECT_TRUE(std::get<0>(r2));
    EXPECT_EQ(v.value, counted::moved_from);
    EXPECT_EQ(other.second.try_recv()->value, 9);
  } else {
    EXPECT_EQ(std::get<1>(r2)->value, 0);
    EXPECT_EQ(v.value, 9);
  }
}

TEST(async_select, a_closed_channel_completes_its_branch) {
  run_loop loop;
  auto a = ch::bounded<int>(1);
  auto b = ch::bounded<int>(1);
  b.first.close();
  auto r = run(loop, ch::select(ch::recv(a.second), ch::recv(b.second)));
  ASSERT_EQ(r.index(), 1u);
  EXPECT_EQ(std::get<1>(r).status(), status::closed);
  auto r2 = run(loop, ch::select(ch::reserve(b.first), ch::recv(a.second)));
  ASSERT_EQ(r2.index(), 0u);
  EXPECT_EQ(std::get<0>(r2).status(), status::closed);
}

TEST(async_select, a_stopped_select_takes_nothing) {
  run_loop loop;
  auto a = ch::bounded<int>(1);
  auto full = ch::bounded<int>(1);
  EXPECT_TRUE(full.first.try_send(0));
  auto h = rouse::async::spawn(loop, [](ch::receiver<int>& rx, ch::sender<int>& tx) -> task<std::size_t> {
    auto r = co_await ch::select(ch::recv(rx), ch::reserve(tx));
    co_return r.index();
  }(a.second, full.first));
  run(loop, []() -> task<> { co_return; }());
  h.request_stop();
  bool stopped = false;
  run(loop, [](rouse::async::join_handle<std::size_t> h, bool& stopped) -> task<> {
    try {
      (void)co_await std::move(h);
    } catch (const rouse::async::operation_stopped&) {
      stopped = true;
    }
  }(std::move(h), stopped));
  EXPECT_TRUE(stopped);
  EXPECT_TRUE(a.first.try_send(1));
  EXPECT_EQ(*a.second.try_recv(), 1);
  EXPECT_EQ(*full.second.try_recv(), 0);
  EXPECT_EQ(full.second.permits_for_testing(), 1);
}

// A stop that comes after a branch fired but before the select ran again:
// the select completes as stopped (never an exception in the task's body),
// and the value stays in the channel. Through with_timeout, whose timer is
// such a stop, the result is a timeout (nullopt) or the value, never an
// exception.
TEST(async_select, a_stop_after_a_branch_fired_completes_the_select_as_stopped) {
  run_loop loop;
  auto [tx, rx] = ch::bounded<int>(1);
  bool caught = false;
  auto h = rouse::async::spawn(loop, [](ch::receiver<int>& rx, bool& caught) -> task<> {
    try {
      (void)co_await ch::select(ch::recv(rx));
    } catch (const rouse::async::operation_stopped&) {
      caught = true;
    }
  }(rx, caught));
  run(loop, []() -> task<> { co_return; }());  // the select waits
  EXPECT_TRUE(tx.try_send(1));                 // its branch fires: the select is scheduled
  h.request_stop();                            // the stop finds the round woken
  bool stopped = false;
  run(loop, [](rouse::async::join_handle<void> h, bool& stopped) -> task<> {
    try {
      co_await std::move(h);
    } catch (const rouse::async::operation_stopped&) {
      stopped = true;
    }
  }(std::move(h), stopped));
  EXPECT_TRUE(stopped);
  EXPECT_FALSE(caught);
  EXPECT_EQ(rx.size(), 1U);
  EXPECT_EQ(*rx.try_recv(), 1);

  auto t = rouse::async::spawn(loop, [](ch::receiver<int>& rx) -> task<int> {
    auto r = co_await rouse::async::with_timeout(ch::select(ch::recv(rx)), 2ms);
    co_return r ? 1 : 0;
  }(rx));
  run(loop, []() -> task<> { co_return; }());  // the select waits
  std::this_thread::sleep_for(5ms);            // its timer is due, not yet run
  EXPECT_TRUE(tx.try_send(2));                 // its branch fires first
  int const got = run(loop, [](rouse::async::join_handle<int> t) -> task<int> { co_return co_await std::move(t); }(std::move(t)));
  EXPECT_TRUE(got == 0 || got == 1);
  EXPECT_EQ(rx.size() + static_cast<std::size_t>(got), 1U);
}

// A branch that turns ready while the select arms its branches (a timeout
// expiring in that window, a value arriving) resumes the select once: the
// other branches, still armed until it resumes, must not schedule a second
// resume when they fire. ASan and TSan builds report the double resume
// (a use of the freed select frame); in plain builds the count checks.
TEST(async_select, a_branch_ready_while_arming_resumes_the_select_once) {
  constexpr long n = 20'000;
  auto [tx, rx] = ch::unbounded<int>();
  auto consumer = [](ch::receiver<int>& r, long want) -> task<long> {
    long got = 0, i = 0;
    while (got < want) {
      // Timeouts of 0-3 us: many expire while the select arms.
      auto v = co_await ch::select(ch::recv(r), ch::timeout(std::chrono::nanoseconds(++i % 3000)));
      if (v.index() == 0) {
        EXPECT_TRUE(std::get<0>(v));
        ++got;
      }
    }
    co_return got;
  };
  std::thread producer([tx = tx]() mutable {
    for (long i = 0; i < n; ++i) {
      EXPECT_TRUE(tx.try_send(static_cast<int>(i)));
      if (i % 4 == 0) std::this_thread::sleep_for(1us);
    }
  });
  EXPECT_EQ(rouse::async::sync_wait(consumer(rx, n)), std::optional<long>(n));
  producer.join();
}

// ---- generic branches ---------------------------------------------------------

using rouse::async::join_handle;
using rouse::async::semaphore;

// Runs the loop until nothing is ready (the spawned tasks are asleep).
void settle(run_loop& loop) {
  run(loop, []() -> task<> { co_return; }());
}

template <class T>
T join(run_loop& loop, join_handle<T> h) {
  return run(loop, [](join_handle<T> h) -> task<T> { co_return co_await std::move(h); }(std::move(h)));
}

task<int> answer(int v) { co_return v; }

TEST(async_select, an_op_branch_wins_with_a_semaphore_permit) {
  run_loop loop;
  semaphore sem(0);
  auto a = ch::bounded<int>(1);
  auto h = rouse::async::spawn(loop, [](ch::receiver<int>& rx, semaphore& s) -> task<std::size_t> {
    auto r = co_await ch::select(ch::recv(rx), ch::op(s.acquire()));
    if (r.index() == 1) {
      EXPECT_TRUE(std::get<1>(r));
      EXPECT_EQ(std::get<1>(r).count(), 1u);
      EXPECT_EQ(s.available(), 0u);
    }
    co_return r.index();  // the permit is released here
  }(a.second, sem));
  settle(loop);
  EXPECT_FALSE(h.is_done());
  sem.release(1);
  EXPECT_EQ(join(loop, std::move(h)), 1u);
  EXPECT_EQ(sem.available(), 1u);
  // Ready at once: the child completes inside the first round.
  {
    auto r = run(loop, ch::select(ch::recv(a.second), ch::op(sem.acquire())));
    EXPECT_EQ(r.index(), 1u);
    EXPECT_EQ(sem.available(), 0u);
  }
  EXPECT_EQ(sem.available(), 1u);
}

TEST(async_select, an_op_branch_wins_with_a_sleep_that_is_never_early) {
  run_loop loop;
  auto a = ch::bounded<int>(1);
  for (auto d : {0us, 300us, 2000us}) {
    auto const start = clk::now();
    auto r = run(loop, [](ch::receiver<int>& rx, std::chrono::microseconds d) -> task<std::size_t> {
      auto v = co_await ch::select(ch::recv(rx), ch::op(rouse::async::sleep_for(d)));
      co_return v.index();
    }(a.second, d));
    EXPECT_GE(clk::now() - start, d);
    EXPECT_EQ(r, 1u);
  }
}

TEST(async_select, an_op_branch_wins_with_a_join_handle_or_a_task) {
  run_loop loop;
  auto a = ch::bounded<int>(1);
  auto r = run(loop, [](run_loop& l, ch::receiver<int>& rx) -> task<int> {
    auto v = co_await ch::select(ch::recv(rx), ch::op(rouse::async::spawn(l, answer(5))));
    EXPECT_EQ(v.index(), 1u);
    co_return v.index() == 1 ? std::get<1>(v) : -1;
  }(loop, a.second));
  EXPECT_EQ(r, 5);
  auto r2 = run(loop, ch::select(ch::recv(a.second), ch::op(answer(7))));
  ASSERT_EQ(r2.index(), 1u);
  EXPECT_EQ(std::get<1>(r2), 7);
}

TEST(async_select, an_op_branch_locks_a_mutex_and_a_losing_lock_leaves_it_free) {
  run_loop loop;
  rouse::async::mutex m;
  auto a = ch::bounded<int>(1);
  auto body = [](ch::receiver<int>& rx, rouse::async::mutex& mx) -> task<std::size_t> {
    auto r = co_await ch::select(ch::recv(rx), ch::op(mx.lock()));
    if (r.index() == 1) {
      EXPECT_FALSE(mx.try_lock());  // ours, through the guard
    }
    co_return r.index();  // the guard unlocks here
  };
  ASSERT_TRUE(m.try_lock());
  auto h = rouse::async::spawn(loop, body(a.second, m));
  settle(loop);
  m.unlock();  // the waiting lock gets it
  EXPECT_EQ(join(loop, std::move(h)), 1u);
  ASSERT_TRUE(m.try_lock());
  auto h2 = rouse::async::spawn(loop, body(a.second, m));
  settle(loop);
  EXPECT_TRUE(a.first.try_send(1));
  EXPECT_EQ(join(loop, std::move(h2)), 0u);
  m.unlock();  // nobody is queued any more: the mutex is free
  EXPECT_TRUE(m.try_lock());
  m.unlock();
}

TEST(async_select, a_losing_acquire_leaves_the_count_exact) {
  run_loop loop;
  semaphore sem(0);
  auto a = ch::bounded<int>(1);
  auto h = rouse::async::spawn(loop, [](ch::receiver<int>& rx, semaphore& s) -> task<std::size_t> {
    auto r = co_await ch::select(ch::recv(rx), ch::op(s.acquire()));
    co_return r.index();
  }(a.second, sem));
  settle(loop);
  EXPECT_TRUE(a.first.try_send(1));
  EXPECT_EQ(join(loop, std::move(h)), 0u);
  // The child's wait left the queue: a release now stays in the count.
  sem.release(1);
  EXPECT_EQ(sem.available(), 1u);
}

// Both ready when the select wakes: whichever wins, the loser's permit (it
// was granted before the stop) is released and the channel's value stays.
TEST(async_select, a_loser_that_completed_anyway_releases_its_permit) {
  run_loop loop;
  semaphore sem(0);
  auto a = ch::bounded<int>(1);
  int wins[2] = {0, 0};
  for (int i = 0; i < 400; ++i) {
    auto h = rouse::async::spawn(loop, [](ch::receiver<int>& rx, semaphore& s) -> task<std::size_t> {
      auto r = co_await ch::select(ch::recv(rx), ch::op(s.acquire()));
      co_return r.index();
    }(a.second, sem));
    settle(loop);
    sem.release(1);
    EXPECT_TRUE(a.first.try_send(i));
    std::size_t const idx = join(loop, std::move(h));
    ++wins[idx];
    EXPECT_EQ(sem.available(), 1u);
    if (idx == 1) {
      EXPECT_EQ(*a.second.try_recv(), i);  // the value stayed
    }
    EXPECT_EQ(a.second.try_recv().status(), status::empty);
    auto p = sem.try_acquire(1);  // back to 0
    EXPECT_TRUE(p);
    p.forget();
  }
  EXPECT_GT(wins[0], 50);  // both orders happen: the choice is random
  EXPECT_GT(wins[1], 50);
}

// Rounds of a select between a recv and an op branch waiting on a notify: a
// notify_one chooses the op's wait, then a value makes the recv ready too.
// When the recv wins, the permit the loser took goes back to the notify
// (stored: nobody else waits), so no notification is lost: a fresh wait
// completes at once, exactly once. `wait(n)` makes the op's awaitable.
template <class Wait>
void a_losing_wait_passes_the_notify_on(Wait wait) {
  run_loop loop;
  rouse::async::notify n;
  auto a = ch::bounded<int>(1);
  int wins[2] = {0, 0};
  for (int i = 0; i < 400; ++i) {
    auto h =
        rouse::async::spawn(loop, [](ch::receiver<int>& rx, rouse::async::notify& nt, Wait w) -> task<std::size_t> {
          auto r = co_await ch::select(ch::recv(rx), ch::op(w(nt)));
          co_return r.index();
        }(a.second, n, wait));
    settle(loop);
    n.notify_one();  // chooses the child, queued on the loop
    EXPECT_TRUE(a.first.try_send(i));
    std::size_t const idx = join(loop, std::move(h));
    ++wins[idx];
    if (idx == 1) {
      EXPECT_EQ(*a.second.try_recv(), i);  // the value stayed
    }
    // Either the notify was the winner's, or its permit is stored.
    bool const stored = n.notified().await_ready();
    EXPECT_EQ(stored, idx == 0) << "round " << i;
    if (stored) {
      EXPECT_FALSE(n.notified().await_ready());
    }
  }
  EXPECT_GT(wins[0], 50);  // both orders happen: the choice is random
  EXPECT_GT(wins[1], 50);
}

TEST(async_select, a_losing_notified_that_was_notified_passes_its_permit_on) {
  a_losing_wait_passes_the_notify_on([](rouse::async::notify& n) { return n.notified(); });
}

// with_timeout forwards the give-back when the wait completed in time.
TEST(async_select, a_losing_timed_notified_that_was_notified_passes_its_permit_on) {
  a_losing_wait_passes_the_notify_on(
      [](rouse::async::notify& n) { return rouse::async::with_timeout(n.notified(), 1h); });
}

// Through an auto_reset_event, the other order: the value wakes the select
// first, then a set() chooses the child's wait. The select runs before the
// child and picks the recv; the child, asked to stop after it was chosen,
// completes anyway, and gives the set back: the event stays set.
TEST(async_select, a_loser_chosen_by_a_set_after_the_select_woke_leaves_the_event_set) {
  run_loop loop;
  rouse::async::auto_reset_event ev;
  auto a = ch::bounded<int>(1);
  for (int i = 0; i < 100; ++i) {
    auto h = rouse::async::spawn(loop, [](ch::receiver<int>& rx, rouse::async::auto_reset_event& e) -> task<std::size_t> {
      auto r = co_await ch::select(ch::recv(rx), ch::op(e.wait()));
      co_return r.index();
    }(a.second, ev));
    settle(loop);
    EXPECT_TRUE(a.first.try_send(i));
    ev.set();
    EXPECT_EQ(join(loop, std::move(h)), 0u);
    EXPECT_TRUE(ev.is_set()) << "round " << i;
    ev.reset();
  }
}

TEST(async_select, a_stopped_select_stops_and_awaits_its_op_children) {
  run_loop loop;
  semaphore sem(0);
  auto a = ch::bounded<int>(1);
  bool child_ended = false;
  auto h = rouse::async::spawn(loop, [](ch::receiver<int>& rx, semaphore& s, bool& ended) -> task<std::size_t> {
    auto child = [](semaphore& s, bool& ended) -> task<int> {
      struct mark {
        bool& e;
        ~mark() { e = true; }
      } m{ended};
      auto p = co_await s.acquire();
      co_return 1;
    };
    auto r = co_await ch::select(ch::recv(rx), ch::op(child(s, ended)));
    co_return r.index();
  }(a.second, sem, child_ended));
  settle(loop);
  EXPECT_FALSE(child_ended);
  h.request_stop();
  bool stopped = false;
  run(loop, [](join_handle<std::size_t> h, bool& stopped, bool& ended) -> task<> {
    try {
      (void)co_await std::move(h);
    } catch (const rouse::async::operation_stopped&) {
      stopped = true;
      EXPECT_TRUE(ended);  // the child's frame was gone before the select completed
    }
  }(std::move(h), stopped, child_ended));
  EXPECT_TRUE(stopped);
  EXPECT_TRUE(child_ended);
  sem.release(1);
  EXPECT_EQ(sem.available(), 1u);
  EXPECT_TRUE(a.first.try_send(3));
  EXPECT_EQ(*a.second.try_recv(), 3);
}

TEST(async_select, an_op_exception_is_rethrown_by_the_select) {
  run_loop loop;
  auto a = ch::bounded<int>(1);
  auto boom = []() -> task<int> {
    throw std::runtime_error("boom");
    co_return 0;
  };
  EXPECT_THROW(run(loop, ch::select(ch::recv(a.second), ch::op(boom()))), std::runtime_error);
}

// Several op() branches: once one wins, the join rounds wait for the running
// losers only (a select that counted the finished winner as ready spun).
TEST(async_select, with_several_op_branches_the_winner_ends_the_select_and_the_losers_are_stopped) {
  run_loop loop;
  semaphore s0(0), s1(0), s2(0);
  for (int winner = 0; winner < 3; ++winner) {
    auto h = rouse::async::spawn(loop, [](semaphore& a, semaphore& b, semaphore& c) -> task<std::size_t> {
      auto r = co_await ch::select(ch::op(a.acquire()), ch::op(b.acquire()), ch::op(c.acquire()));
      co_return r.index();
    }(s0, s1, s2));
    settle(loop);
    EXPECT_FALSE(h.is_done());
    semaphore* const sems[] = {&s0, &s1, &s2};
    sems[winner]->release(1);
    EXPECT_EQ(join(loop, std::move(h)), static_cast<std::size_t>(winner));  // a hang before
    // The winner's permit came back with the dropped result; the stopped
    // losers took none.
    for (int i = 0; i < 3; ++i) EXPECT_EQ(sems[i]->available(), i == winner ? 1u : 0u) << i;
    sems[winner]->try_acquire(1).forget();
  }
  // An error in one op: rethrown once the other is stopped and awaited.
  auto boom = []() -> task<int> {
    throw std::runtime_error("boom");
    co_return 0;
  };
  EXPECT_THROW(run(loop, ch::select(ch::op(s0.acquire()), ch::op(boom()))), std::runtime_error);
  EXPECT_EQ(s0.available(), 0u);
  s0.release(1);
  EXPECT_EQ(s0.available(), 1u);  // the stopped loser took nothing
}

TEST(async_select, with_several_op_branches_on_a_thread_pool_the_losers_are_stopped) {
  rouse::async::thread_pool pool(2);
  for (int round = 0; round < 200; ++round) {
    auto r = rouse::async::sync_wait([](rouse::async::thread_pool& p) -> task<std::size_t> {
      co_await p.get_scheduler().schedule();
      auto v = co_await ch::select(ch::op(rouse::async::sleep_for(std::chrono::microseconds(50))),
                                   ch::op(rouse::async::sleep_for(std::chrono::hours(1))));
      co_return v.index();
    }(pool));
    ASSERT_TRUE(r.has_value());
    ASSERT_EQ(*r, 0u);
  }
}

// ---- select_blocking ----------------------------------------------------------

TEST(async_select, select_blocking_from_a_thread_with_a_task_on_the_other_end) {
  run_loop loop;
  auto a = ch::bounded<int>(0);
  auto b = ch::bounded<int>(0);
  std::size_t idx = 9;
  int got = 0;
  std::thread t([&] {
    auto r = ch::select_blocking(ch::recv(a.second), ch::recv(b.second));
    idx = r.index();
    got = r.index() == 0 ? *std::get<0>(r) : *std::get<1>(r);
  });
  auto s =
      run(loop, [](ch::sender<int>& tx) -> task<bool> { co_return static_cast<bool>(co_await tx.send(42)); }(b.first));
  t.join();
  EXPECT_TRUE(s);
  EXPECT_EQ(idx, 1u);
  EXPECT_EQ(got, 42);
  EXPECT_EQ(a.second.try_recv().status(), status::empty);

  // A reserve on a full channel, freed by a task's receive.
  auto full = ch::bounded<int>(1);
  EXPECT_TRUE(full.first.try_send(0));
  std::thread t2([&] {
    auto r = ch::select_blocking(ch::reserve(full.first), ch::recv(a.second));
    ASSERT_EQ(r.index(), 0u);
    EXPECT_TRUE(std::get<0>(r).send(1));
  });
  auto v = run(loop, [](ch::receiver<int>& rx) -> task<int> { co_return *co_await rx.recv(); }(full.second));
  EXPECT_EQ(v, 0);
  t2.join();
  EXPECT_EQ(*full.second.try_recv(), 1);
}

TEST(async_select, select_blocking_deadline_is_never_early) {
  auto a = ch::bounded<int>(1);
  for (auto d : {0us, 200us, 3000us}) {
    auto const start = clk::now();
    auto r = ch::select_blocking(ch::recv(a.second), ch::timeout(d));
    EXPECT_GE(clk::now() - start, d);
    EXPECT_EQ(r.index(), 1u);
  }
  auto const until = clk::now() + 2ms;
  auto r = ch::select_blocking(ch::recv(a.second), ch::deadline(until));
  EXPECT_GE(clk::now(), until);
  EXPECT_EQ(r.index(), 1u);
  EXPECT_TRUE(a.first.try_send(3));
  auto r2 = ch::select_blocking(ch::recv(a.second), ch::timeout(1h));
  ASSERT_EQ(r2.index(), 0u);
  EXPECT_EQ(*std::get<0>(r2), 3);
}

TEST(async_select, select_blocking_a_losing_reserve_passes_its_slot_on) {
  auto full = ch::bounded<int>(1);
  auto other = ch::bounded<int>(1);
  EXPECT_TRUE(full.first.try_send(0));
  for (int i = 0; i < 200; ++i) {
    std::thread rx([&] {
      EXPECT_EQ(*full.second.recv_blocking(), 0);  // frees the slot: maybe handed to the waiting reserve
    });
    EXPECT_TRUE(other.first.try_send(i));
    auto r = ch::select_blocking(ch::reserve(full.first), ch::recv(other.second));
    rx.join();
    if (r.index() == 0) {
      EXPECT_TRUE(std::get<0>(r).send(0));
      EXPECT_EQ(*other.second.try_recv(), i);
    } else {
      EXPECT_EQ(*std::get<1>(r), i);
      EXPECT_EQ(full.second.permits_for_testing(), 1);  // passed on, not lost
      EXPECT_TRUE(full.first.try_send(0));
    }
  }
}
}  // namespace
}  // namespace async_select_test
