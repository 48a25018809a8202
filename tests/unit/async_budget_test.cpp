// The cooperative budget (rouse/async/task.hpp, "Budget"): a task whose
// awaits keep completing at once yields to its executor's waiting work
// after detail::coop_budget of them. Liveness on both executors (a
// coroutine in a pool worker's LIFO slot, a run_loop's queue and its
// timers), the exact count of yields and of questions on a counting
// executor, results kept across the yield, and this_task::yield().
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <coroutine>
#include <deque>
#include <exception>
#include <string>
#include <thread>
#include <vector>

#include "rouse/async/channel.hpp"
#include "rouse/async/event.hpp"
#include "rouse/async/executor.hpp"
#include "rouse/async/mutex.hpp"
#include "rouse/async/run_loop.hpp"
#include "rouse/async/sleep.hpp"
#include "rouse/async/spawn.hpp"
#include "rouse/async/task.hpp"
#include "rouse/async/thread_pool.hpp"

namespace async_budget_test {
namespace {
namespace ra = rouse::async;
namespace ch = rouse::async::channel;
using namespace std::chrono_literals;
template <class T = void>
using rtask = ra::task<T>;

// Without the budget these loops would run to their cap: what they wait for
// needs the thread they hold.
constexpr long loop_cap = 20'000'000;

ra::task<void> set_flag(std::atomic<bool>& ran) {
  ran.store(true, std::memory_order_release);
  co_return;
}

// Spawns set_flag onto its own executor, then awaits an event that is
// always set until the flag shows; returns how many awaits that took.
ra::task<long> spawn_then_spin(std::atomic<bool>& ran) {
  ra::manual_reset_event open(true);
  ra::spawn((co_await ra::this_task::get_scheduler()).get_executor(), set_flag(ran)).detach();
  long n = 0;
  while (!ran.load(std::memory_order_acquire) && n < loop_cap) {
    co_await open.wait();
    ++n;
  }
  co_return n;
}

TEST(async_budget, a_task_spawned_into_the_lifo_slot_runs_while_its_spawner_loops_on_ready_awaits) {
  // From a worker, spawn puts the new task in that worker's LIFO slot,
  // which no other worker may steal.
  ra::thread_pool pool(2);
  for (int round = 0; round < 20; ++round) {
    std::atomic<bool> ran{false};
    long const n = ra::spawn(pool, spawn_then_spin(ran)).join();
    EXPECT_LT(n, loop_cap) << "round " << round;
    EXPECT_TRUE(ran.load());
  }
}

TEST(async_budget, a_task_queued_on_a_run_loop_runs_while_another_loops_on_ready_awaits) {
  ra::run_loop loop;
  std::atomic<bool> ran{false};
  long const n = loop.run_until_complete(spawn_then_spin(ran));
  EXPECT_LT(n, loop_cap);
  EXPECT_LE(n, static_cast<long>(ra::detail::coop_budget) + 1);  // the yield before the 129th lets it run
  EXPECT_TRUE(ran.load());
}

ra::task<void> sleep_then_flag(std::atomic<bool>& ran) {
  co_await ra::sleep_for(1ms);
  ran.store(true, std::memory_order_release);
}

ra::task<long> spin_until_timer(std::atomic<bool>& ran) {
  ra::manual_reset_event open(true);
  ra::join_handle<void> sleeper =
      ra::spawn((co_await ra::this_task::get_scheduler()).get_executor(), sleep_then_flag(ran));
  long n = 0;
  while (!ran.load(std::memory_order_acquire) && n < loop_cap) {
    co_await open.wait();
    ++n;
  }
  co_await std::move(sleeper);
  co_return n;
}

TEST(async_budget, a_run_loop_fires_its_timers_while_a_task_loops_on_ready_awaits) {
  ra::run_loop loop;
  std::atomic<bool> ran{false};
  EXPECT_LT(loop.run_until_complete(spin_until_timer(ran)), loop_cap);
}

TEST(async_budget, a_pool_fires_its_timers_while_a_task_loops_on_ready_awaits) {
  // Workers fire timers between resumes only: with the sleeper's timer the
  // sole other work, the spinner's yield is what lets it fire (one worker:
  // nobody else could; two: the other sleeps, nobody woke it for the timer).
  for (unsigned workers : {1u, 2u}) {
    ra::thread_pool pool(workers);
    std::atomic<bool> ran{false};
    EXPECT_LT(ra::spawn(pool, spin_until_timer(ran)).join(), loop_cap) << workers << " workers";
  }
}

// ---- the count, on an executor that counts -----------------------------------

class counting_executor final : public ra::executor {
 public:
  explicit counting_executor(bool others) : others_(others) {}
  void schedule(std::coroutine_handle<> h) noexcept override { q_.push_back(h); }
  void schedule_yield(std::coroutine_handle<> h) noexcept override {
    ++yields;
    q_.push_back(h);
  }
  bool others_waiting() noexcept override {
    ++asked;
    return others_;
  }
  void add_timer(ra::timer_entry&) noexcept override { std::terminate(); }
  bool cancel_timer(ra::timer_entry&) noexcept override { return false; }
  // Resumes until nothing is queued; refills the budget as executors must.
  void drain() {
    ra::current_executor_scope scope(this);
    while (!q_.empty()) {
      std::coroutine_handle<> h = q_.front();
      q_.pop_front();
      ra::detail::coop_left = ra::detail::coop_budget;
      h.resume();
    }
  }
  int yields = 0;
  int asked = 0;

 private:
  bool others_;
  std::deque<std::coroutine_handle<>> q_;
};

ra::task<std::vector<int>> receive_all(ch::receiver<int>& rx, int count) {
  std::vector<int> got;
  for (int i = 0; i < count; ++i) {
    auto r = co_await rx.recv();
    got.push_back(r ? *r : -1);
  }
  co_return got;
}

std::vector<int> iota(int count) {
  std::vector<int> v;
  for (int i = 0; i < count; ++i) v.push_back(i);
  return v;
}

void receive_1000_on(counting_executor& ex) {
  auto [tx, rx] = ch::unbounded<int>();
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(tx.try_send(int{i}));
  ra::join_handle<std::vector<int>> h = ra::spawn(ex, receive_all(rx, 1000));
  ex.drain();
  EXPECT_EQ(h.join(), iota(1000));  // every value once, in order, across the yields
}

TEST(async_budget, a_task_yields_once_per_budget_of_ready_awaits_when_others_wait) {
  counting_executor ex(true);
  receive_1000_on(ex);
  int const expected = 1000 / static_cast<int>(ra::detail::coop_budget);
  EXPECT_EQ(ex.yields, expected);
  EXPECT_EQ(ex.asked, expected);
}

TEST(async_budget, a_task_never_yields_when_nothing_else_waits) {
  counting_executor ex(false);
  receive_1000_on(ex);
  EXPECT_EQ(ex.yields, 0);
  EXPECT_EQ(ex.asked, 1000 / static_cast<int>(ra::detail::coop_budget));  // asked, answered no
}

TEST(async_budget, the_budget_is_refilled_at_every_resume) {
  // 100 ready awaits per resume never reach 128: no question, no yield.
  counting_executor ex(true);
  auto [tx, rx] = ch::unbounded<int>();
  auto consumer = [](ch::receiver<int>& r, ra::executor& e) -> rtask<int> {
    int sum = 0;
    for (int round = 0; round < 10; ++round) {
      for (int i = 0; i < 100; ++i) sum += *co_await r.recv();
      co_await ra::scheduler(e).schedule();  // suspends: the next resume refills
    }
    co_return sum;
  };
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(tx.try_send(1));
  ra::join_handle<int> h = ra::spawn(ex, consumer(rx, ex));
  ex.drain();
  EXPECT_EQ(h.join(), 1000);
  EXPECT_EQ(ex.asked, 0);
  EXPECT_EQ(ex.yields, 0);
}

// ---- a stop reaches a task whose awaits all complete at once -------------------

// Receives until the channel is empty, counting; a stop ends it at the end
// of a budget, before the operation it was about to perform.
rtask<void> receive_counting(ch::receiver<int>& rx, int& got) {
  while (rx.size() > 0) {
    auto r = co_await rx.recv();
    if (r) ++got;
  }
}

TEST(async_budget, a_stop_ends_a_task_whose_awaits_all_complete_at_once) {
  counting_executor ex(false);  // nothing else waits: the budget alone asks
  auto [tx, rx] = ch::unbounded<int>();
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(tx.try_send(int{i}));
  int got = 0;
  ra::join_handle<void> h = ra::spawn(ex, receive_counting(rx, got));
  h.request_stop();
  ex.drain();
  EXPECT_THROW(h.join(), ra::operation_stopped);
  // At the first budget's end, and the receive it was about to make was not
  // made: every value is either taken or still there.
  EXPECT_EQ(got, static_cast<int>(ra::detail::coop_budget));
  EXPECT_EQ(got + static_cast<int>(rx.size()), 1000);
  EXPECT_EQ(ex.yields, 1);  // through the budget's yield
}

// A free async mutex, locked and unlocked in a loop on a pool, stopped from
// another thread (the loop is capped, so without the stop it ends normally).
rtask<long> lock_forever(ra::mutex& m, std::atomic<bool>& started) {
  long n = 0;
  for (; n < loop_cap; ++n) {
    auto g = co_await m.lock();
    started.store(true, std::memory_order_release);
  }
  co_return n;
}

TEST(async_budget, a_stop_from_another_thread_ends_a_loop_of_free_locks) {
  ra::thread_pool pool(2);
  ra::mutex m;
  std::atomic<bool> started{false};
  ra::join_handle<long> h = ra::spawn(pool, lock_forever(m, started));
  while (!started.load(std::memory_order_acquire)) std::this_thread::yield();
  h.request_stop();
  EXPECT_THROW(h.join(), ra::operation_stopped);
  EXPECT_TRUE(m.try_lock());  // the stopped task holds nothing
  m.unlock();
}

// ---- this_task::yield() ----------------------------------------------------------

// Each step: `ready` awaits that complete at once, a log line, a yield.
rtask<void> steps(std::vector<std::string>& log, std::string name, int count, int ready) {
  ra::manual_reset_event open(true);
  for (int i = 0; i < count; ++i) {
    for (int k = 0; k < ready; ++k) co_await open.wait();
    log.push_back(name + std::to_string(i));
    co_await ra::this_task::yield();
  }
}

// Two step tasks "a" and "b", spawned in that order on one run_loop.
std::vector<std::string> two_on_a_loop(int count, int ready) {
  ra::run_loop loop;
  std::vector<std::string> log;
  auto both = [&]() -> rtask<void> {
    ra::join_handle<void> a = ra::spawn(loop, steps(log, "a", count, ready));
    ra::join_handle<void> b = ra::spawn(loop, steps(log, "b", count, ready));
    co_await std::move(a);
    co_await std::move(b);
  };
  loop.run_until_complete(both());
  return log;
}

TEST(async_budget, yield_lets_the_waiting_tasks_of_a_run_loop_run_first) {
  EXPECT_EQ(two_on_a_loop(3, 0), (std::vector<std::string>{"a0", "b0", "a1", "b1", "a2", "b2"}));
}

TEST(async_budget, a_run_loop_refills_the_budget_at_every_resume) {
  // 100 ready awaits per step never use up the budget if the loop refills
  // it at every resume, so the tasks alternate exactly; without the refill
  // the second step's 129th await would yield in the middle of it.
  EXPECT_EQ(two_on_a_loop(4, 100), (std::vector<std::string>{"a0", "b0", "a1", "b1", "a2", "b2", "a3", "b3"}));
}

TEST(async_budget, yield_goes_through_the_executors_schedule_yield) {
  counting_executor ex(false);
  ra::join_handle<void> h = ra::spawn(ex, [](ra::executor&) -> rtask<void> {
    co_await ra::this_task::yield();
    co_await ra::this_task::yield();
  }(ex));
  ex.drain();
  h.join();
  EXPECT_EQ(ex.yields, 2);
}

TEST(async_budget, yield_on_a_pool_lets_the_lifo_slot_run) {
  ra::thread_pool pool(1);  // one worker: nothing can steal
  std::vector<std::string> log;
  auto other_body = [&]() -> rtask<void> {
    log.push_back("other");
    co_return;
  };
  auto body = [&]() -> rtask<void> {
    ra::join_handle<void> other = ra::spawn(pool, other_body());  // into this worker's LIFO slot
    log.push_back("before");
    co_await ra::this_task::yield();
    log.push_back("after");
    co_await std::move(other);
  };
  ra::spawn(pool, body()).join();
  EXPECT_EQ(log, (std::vector<std::string>{"before", "other", "after"}));
}

}  // namespace
}  // namespace async_budget_test
