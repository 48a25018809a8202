// rouse::async::thread_pool: scheduling from outside and inside, the LIFO
// slot and its cap, 100,000 coroutines waking each other (a token ring and
// independent chains), system calls (none while busy, one wake when asleep),
// an idle pool's CPU, timers (never early, all fire, the holder woken by an
// earlier timer, a sleeper takes a timer its adder cannot watch, cancel
// against fire), destruction with work queued.
//
// Until rouse's task<T> is used here, the coroutines are the minimal kind
// below: they start suspended and the test schedules them.
#include "rouse/async/thread_pool.hpp"

#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <coroutine>
#include <exception>
#include <memory>
#include <thread>
#include <vector>

#include "eventually.hpp"
#include "outside_wake.hpp"
#include "rouse/async/event.hpp"
#include "rouse/async/spawn.hpp"
#include "rouse/config.hpp"
#include "rouse/detail/diagnostics.hpp"

namespace async_thread_pool_test {
namespace {

using namespace std::chrono_literals;
using rouse::async::executor;
using rouse::async::thread_pool;
using rouse::async::timer_entry;
using clock_type = std::chrono::steady_clock;

// A coroutine that starts suspended and frees itself when it ends.
struct job {
  struct promise_type {
    job get_return_object() noexcept { return job{std::coroutine_handle<promise_type>::from_promise(*this)}; }
    std::suspend_always initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }
  };
  std::coroutine_handle<promise_type> handle;
};

// The same, but it stays suspended at its end; its owner destroys it.
struct kept_job {
  struct promise_type {
    kept_job get_return_object() noexcept { return kept_job{std::coroutine_handle<promise_type>::from_promise(*this)}; }
    std::suspend_always initial_suspend() noexcept { return {}; }
    std::suspend_always final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }
  };
  std::coroutine_handle<promise_type> handle;
};

// Suspends the caller, then schedules `next` (safe: the caller is suspended).
struct pass_to {
  executor* ex;
  std::coroutine_handle<> next;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<>) const noexcept { ex->schedule(next); }
  void await_resume() const noexcept {}
};

// Runs `f` once, on whichever thread resumes it.
template <class F>
job call(F f) {
  f();
  co_return;
}

// The thread ids before a pool is built. ThreadSanitizer starts its own
// background thread at the first thread creation; one thread made and
// joined first keeps it out of the pool's "new" threads.
std::vector<pid_t> threads_before_pool() {
  std::thread([] {}).join();
  return rouse_test::thread_ids();
}

// The kernel ids of the pool's workers: threads that appeared while it was built.
std::vector<pid_t> new_threads(const std::vector<pid_t>& before) {
  std::vector<pid_t> now = rouse_test::thread_ids(), added;
  for (pid_t id : now)
    if (std::find(before.begin(), before.end(), id) == before.end()) added.push_back(id);
  return added;
}

void until_all_asleep(const std::vector<pid_t>& ids) {
  rouse_test::eventually([&] {
    for (pid_t id : ids)
      if (!rouse_test::is_asleep(id)) return false;
    return true;
  });
}

// CPU time of thread `tid` of this process (Linux's per-thread CPU clock id).
double cpu_seconds(pid_t tid) {
  clockid_t const id = static_cast<clockid_t>((~static_cast<unsigned>(tid) << 3) | 6u);
  timespec ts{};
  clock_gettime(id, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

TEST(async_thread_pool, size_and_scheduler) {
  thread_pool three(3);
  EXPECT_EQ(three.size(), 3u);
  EXPECT_TRUE(three.get_scheduler() == rouse::async::scheduler(three));
  EXPECT_EQ(&three.get_scheduler().get_executor(), static_cast<executor*>(&three));
  thread_pool none(0);
  EXPECT_EQ(none.size(), 1u);
  thread_pool defaulted;
  EXPECT_EQ(defaulted.size(), std::max(1u, std::thread::hardware_concurrency()));
}

TEST(async_thread_pool, schedule_from_outside_runs_each_once_on_a_worker) {
  constexpr int n = 5000;
  std::vector<std::atomic<int>> runs(n);
  std::atomic<int> done{0}, off_pool{0};
  {
    thread_pool pool(3);
    for (int i = 0; i < n; ++i) {
      pool.schedule(call([&, i] {
                      if (rouse::async::current_executor() != &pool) off_pool.fetch_add(1);
                      runs[i].fetch_add(1);
                      done.fetch_add(1);
                    }).handle);
    }
    rouse_test::eventually([&] { return done.load() == n; });
  }
  EXPECT_EQ(off_pool.load(), 0);
  for (int i = 0; i < n; ++i) ASSERT_EQ(runs[i].load(), 1) << i;
}

TEST(async_thread_pool, schedule_awaitable_moves_the_coroutine_onto_the_pool) {
  thread_pool pool(2);
  std::atomic<bool> on_pool{false}, done{false};
  auto body = [&]() -> kept_job {
    co_await pool.get_scheduler().schedule();
    on_pool = rouse::async::current_executor() == &pool;
    done = true;
  };
  kept_job k = body();
  k.handle.resume();  // runs here up to the schedule, then continues on the pool
  rouse_test::eventually([&] { return done.load(); });
  EXPECT_TRUE(on_pool.load());
  rouse_test::eventually([&] { return k.handle.done(); });
  k.handle.destroy();
}

TEST(async_thread_pool, a_coroutine_scheduled_from_a_worker_runs_next_on_that_worker) {
  thread_pool pool(4);
  for (int round = 0; round < 200; ++round) {
    std::atomic<std::thread::id> parent{}, child{};
    std::atomic<bool> done{false};
    pool.schedule(call([&] {
                    parent = std::this_thread::get_id();
                    pool.schedule(call([&] {
                                    child = std::this_thread::get_id();
                                    done = true;
                                  }).handle);
                  }).handle);
    rouse_test::eventually([&] { return done.load(); });
    ASSERT_EQ(parent.load(), child.load()) << "round " << round;  // the LIFO slot is not stealable
  }
}

TEST(async_thread_pool, one_worker_runs_the_lifo_slot_first_then_the_ring_in_order) {
  thread_pool pool(1);
  std::vector<int> order;  // only the one worker touches it until `ran` says all 5 ran
  std::atomic<int> ran{0};
  pool.schedule(call([&] {
                  for (int i = 1; i <= 5; ++i)
                    pool.schedule(call([&, i] {
                                    order.push_back(i);
                                    ran.fetch_add(1);
                                  }).handle);
                }).handle);
  rouse_test::eventually([&] { return ran.load() == 5; });
  // 5 went to the LIFO slot; 1..4 were pushed out of it to the ring in order.
  EXPECT_EQ(order, (std::vector<int>{5, 1, 2, 3, 4}));
}

TEST(async_thread_pool, lifo_ping_pong_does_not_starve_the_ring) {
  // One worker: a ping-pong pair hands itself back and forth through the
  // LIFO slot; a third coroutine waits in the ring. The cap lets it run
  // after at most pool_lifo_run_cap hops, not after all of them.
  auto pool = std::make_unique<thread_pool>(1);
  constexpr int hops = 100;
  int hop = 0;           // the one worker's
  int ring_ran_at = -1;  // the hop count when the ring's coroutine ran
  std::atomic<bool> finished{false};
  std::coroutine_handle<> players[2];
  auto player = [&](int me) -> kept_job {
    for (;;) {
      if (hop >= hops) {
        finished = true;
        co_return;
      }
      ++hop;
      co_await pass_to{pool.get(), players[1 - me]};
    }
  };
  players[0] = player(0).handle;
  players[1] = player(1).handle;
  pool->schedule(call([&] {
                   pool->schedule(call([&] { ring_ran_at = hop; }).handle);  // into the LIFO slot ...
                   pool->schedule(players[0]);  // ... pushed out to the ring by the first player
                 }).handle);
  rouse_test::eventually([&] { return finished.load(); });
  pool.reset();
  EXPECT_EQ(hop, hops);
  EXPECT_GE(ring_ran_at, 0);
  EXPECT_LE(ring_ran_at, static_cast<int>(rouse::async::detail::pool_lifo_run_cap));
  for (auto h : players) h.destroy();
}

// 1000 coroutines in a ring pass one token 100 laps: 100,000 resumes, each
// coroutine resumed exactly once per lap.
TEST(async_thread_pool, a_token_ring_of_1000_coroutines_makes_100000_hops) {
  constexpr int k = 1000, laps = 100;
  std::vector<int> visits(k, 0);  // each written by one coroutine at a time (the token orders them)
  std::atomic<int> total{0};
  std::atomic<bool> done{false};
  std::vector<std::coroutine_handle<>> handles(k);
  auto pool = std::make_unique<thread_pool>(4);
  auto member = [&](int i) -> kept_job {
    for (;;) {
      ++visits[i];
      if (total.fetch_add(1) + 1 == k * laps) {
        done = true;
        co_return;
      }
      co_await pass_to{pool.get(), handles[(i + 1) % k]};
    }
  };
  for (int i = 0; i < k; ++i) handles[i] = member(i).handle;
  pool->schedule(handles[0]);
  rouse_test::eventually([&] { return done.load(); });
  pool.reset();  // joined: nothing runs any more
  EXPECT_EQ(total.load(), k * laps);
  for (int i = 0; i < k; ++i) ASSERT_EQ(visits[i], laps) << i;
  for (auto h : handles) h.destroy();
}

// 1000 chains of 100 coroutines: each wakes the next of its chain from its
// worker; half the chains are started from outside, half from inside.
TEST(async_thread_pool, independent_chains_of_100000_coroutines_each_run_once) {
  constexpr int chains = 1000, length = 100, n = chains * length;
  std::vector<std::atomic<int>> runs(n);
  std::atomic<int> completed{0};
  std::vector<std::coroutine_handle<>> handles(n);
  thread_pool pool(4);
  auto link = [&](int i) -> job {
    runs[i].fetch_add(1);
    if (i % length != length - 1) pool.schedule(handles[i + 1]);
    completed.fetch_add(1);
    co_return;
  };
  for (int i = 0; i < n; ++i) handles[i] = link(i).handle;
  pool.schedule(call([&] {
                  for (int c = 1; c < chains; c += 2) pool.schedule(handles[c * length]);
                }).handle);
  for (int c = 0; c < chains; c += 2) pool.schedule(handles[c * length]);
  rouse_test::eventually([&] { return completed.load() == n; });
  for (int i = 0; i < n; ++i) ASSERT_EQ(runs[i].load(), 1) << i;
}

TEST(async_thread_pool, a_schedule_while_every_worker_sleeps_wakes_exactly_one) {
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  auto const before_threads = threads_before_pool();
  thread_pool pool(3);
  auto const workers = new_threads(before_threads);
  ASSERT_EQ(workers.size(), 3u);
  for (int round = 0; round < 5; ++round) {
    until_all_asleep(workers);
    auto const before = rouse::platform::syscall_counters();
    std::atomic<bool> ran{false};
    pool.schedule(call([&] { ran = true; }).handle);
    rouse_test::eventually([&] { return ran.load(); });
    until_all_asleep(workers);
    auto const after = rouse::platform::syscall_counters();
    EXPECT_EQ(after.wakes - before.wakes, 1u) << "round " << round;
  }
}

TEST(async_thread_pool, no_system_call_per_schedule_while_workers_are_busy) {
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  thread_pool pool(2);
  std::atomic<int> running{0}, ran{0};
  std::atomic<bool> release{false}, inside_go{false}, inside_done{false};
  constexpr int n = 2000;
  rouse::platform::syscall_counts inside_before{}, inside_after{};
  for (int b = 0; b < 2; ++b) {
    pool.schedule(call([&, b] {
                    running.fetch_add(1);
                    if (b == 0) {
                      while (!inside_go.load()) std::this_thread::yield();
                      inside_before = rouse::platform::syscall_counters();
                      for (int i = 0; i < n; ++i) pool.schedule(call([&] { ran.fetch_add(1); }).handle);
                      inside_after = rouse::platform::syscall_counters();
                      inside_done = true;
                    }
                    while (!release.load()) std::this_thread::yield();
                  }).handle);
  }
  rouse_test::eventually([&] { return running.load() == 2; });  // both workers are busy now
  auto const before = rouse::platform::syscall_counters();
  for (int i = 0; i < n; ++i) pool.schedule(call([&] { ran.fetch_add(1); }).handle);
  auto const after = rouse::platform::syscall_counters();
  EXPECT_EQ(after.wakes - before.wakes, 0u) << "from outside";
  EXPECT_EQ(after.waits - before.waits, 0u) << "from outside";
  inside_go = true;
  rouse_test::eventually([&] { return inside_done.load(); });
  EXPECT_EQ(inside_after.wakes - inside_before.wakes, 0u) << "from inside";
  release = true;
  rouse_test::eventually([&] { return ran.load() == 2 * n; });
}

TEST(async_thread_pool, an_idle_pool_uses_no_cpu) {
  auto const before_threads = threads_before_pool();
  thread_pool pool(2);
  auto const workers = new_threads(before_threads);
  ASSERT_EQ(workers.size(), 2u);
  std::atomic<int> ran{0};
  for (int i = 0; i < 100; ++i) pool.schedule(call([&] { ran.fetch_add(1); }).handle);
  rouse_test::eventually([&] { return ran.load() == 100; });
  until_all_asleep(workers);  // a worker that never stops searching hangs the test here
  std::vector<double> start;
  for (pid_t id : workers) start.push_back(cpu_seconds(id));
  // The window is the behaviour measured: a spinning worker would use all of it.
  std::this_thread::sleep_for(100ms);
  for (std::size_t i = 0; i < workers.size(); ++i) {
    double const used = cpu_seconds(workers[i]) - start[i];
    EXPECT_LT(used, 0.03) << "worker " << i << " used " << used << " s of CPU while idle";
  }
}

// ---- timers -------------------------------------------------------------------

struct test_timer {
  timer_entry entry;  // first: fire() gets it back from the entry
  thread_pool* pool = nullptr;
  std::atomic<int> fired{0};
  std::atomic<int> early{0};
  std::atomic<int> off_pool{0};
  std::atomic<int>* count = nullptr;

  void arm(thread_pool& p, clock_type::time_point deadline, std::atomic<int>* c = nullptr) {
    pool = &p;
    count = c;
    entry.deadline = deadline;
    entry.fire = [](timer_entry* e) noexcept {
      auto* self = reinterpret_cast<test_timer*>(e);
      if (clock_type::now() < self->entry.deadline) self->early.fetch_add(1);
      if (rouse::async::current_executor() != self->pool) self->off_pool.fetch_add(1);
      std::atomic<int>* const c = self->count;
      self->fired.fetch_add(1);  // the entry may be reused after this
      if (c != nullptr) c->fetch_add(1);
    };
    p.add_timer(entry);
  }
};
static_assert(std::is_standard_layout_v<test_timer>);

TEST(async_thread_pool, timers_fire_never_early_all_of_them_on_a_worker) {
  constexpr int n = 500;
  std::vector<test_timer> timers(n);
  std::atomic<int> fired{0};
  {
    thread_pool pool(2);
    auto const now = clock_type::now();
    for (int i = 0; i < n; ++i) {
      // Some already due, most spread over 5 ms, in no order.
      auto const offset = std::chrono::microseconds((i * 7919) % 5000) - 100us;
      timers[i].arm(pool, now + offset, &fired);
    }
    rouse_test::eventually([&] { return fired.load() == n; });
  }
  for (int i = 0; i < n; ++i) {
    ASSERT_EQ(timers[i].fired.load(), 1) << i;
    ASSERT_EQ(timers[i].early.load(), 0) << i;
    ASSERT_EQ(timers[i].off_pool.load(), 0) << i;
  }
}

TEST(async_thread_pool, a_timer_added_while_every_worker_sleeps_fires) {
  auto const before_threads = threads_before_pool();
  thread_pool pool(2);
  auto const workers = new_threads(before_threads);
  for (int round = 0; round < 5; ++round) {
    until_all_asleep(workers);
    test_timer t;
    t.arm(pool, clock_type::now() + 1ms);
    rouse_test::eventually([&] { return t.fired.load() == 1; });  // a timer nobody waits for hangs here
    EXPECT_EQ(t.early.load(), 0);
  }
}

TEST(async_thread_pool, an_earlier_timer_wakes_the_worker_sleeping_until_a_later_one) {
  auto const before_threads = threads_before_pool();
  thread_pool pool(2);
  auto const workers = new_threads(before_threads);
  test_timer far;
  far.arm(pool, clock_type::now() + 1h);  // one worker sleeps until this one
  until_all_asleep(workers);
  test_timer near;
  near.arm(pool, clock_type::now() + 1ms);
  // If the sleeper kept its deadline the test would hang for an hour: CTest fails it.
  rouse_test::eventually([&] { return near.fired.load() == 1; });
  EXPECT_EQ(near.early.load(), 0);
  EXPECT_TRUE(pool.cancel_timer(far.entry));
  EXPECT_FALSE(pool.cancel_timer(far.entry));
  EXPECT_EQ(far.fired.load(), 0);
}

TEST(async_thread_pool, cancel_racing_with_firing_has_exactly_one_winner) {
  constexpr int rounds = 3000;
  std::vector<test_timer> timers(rounds);
  std::vector<char> cancelled(rounds, 0);
  std::atomic<int> fired{0};
  int expected_fired = 0;
  {
    thread_pool pool(2);
    for (int r = 0; r < rounds; ++r) {
      timers[r].arm(pool, clock_type::now() + std::chrono::microseconds(r % 7), &fired);
      // No gap for most rounds (the cancel usually wins), up to ~50 yields for the rest.
      int const gap = r % 4 == 0 ? (r * 31) % 50 : 0;
      for (int spin = 0; spin < gap; ++spin) std::this_thread::yield();
      cancelled[r] = pool.cancel_timer(timers[r].entry) ? 1 : 0;
      if (!cancelled[r]) ++expected_fired;
    }
    // Every timer not cancelled fires (then the pool may go: no timer is pending).
    rouse_test::eventually([&] { return fired.load() == expected_fired; });
  }
  int wins = 0;
  for (int r = 0; r < rounds; ++r) {
    ASSERT_EQ(timers[r].fired.load(), cancelled[r] ? 0 : 1) << "round " << r;
    wins += cancelled[r];
  }
  std::printf("cancel won %d of %d rounds\n", wins, rounds);
}

TEST(async_thread_pool, a_timer_cancelled_before_its_deadline_never_fires) {
  thread_pool pool(2);
  test_timer t;
  t.arm(pool, clock_type::now() + 1h);
  EXPECT_TRUE(pool.cancel_timer(t.entry));
  EXPECT_FALSE(pool.cancel_timer(t.entry));
  // Re-armed after a cancel, it fires.
  t.arm(pool, clock_type::now());
  rouse_test::eventually([&] { return t.fired.load() == 1; });
  EXPECT_FALSE(pool.cancel_timer(t.entry));
}

// A coroutine that sleeps on the pool's timers and resumes there.
struct sleep_for_awaiter {
  timer_entry entry;  // first: fire() gets the awaiter back
  executor* ex;
  std::coroutine_handle<> waiting;

  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) noexcept {
    waiting = h;
    entry.fire = [](timer_entry* e) noexcept {
      auto* self = reinterpret_cast<sleep_for_awaiter*>(e);
      self->ex->schedule(self->waiting);
    };
    ex->add_timer(entry);
  }
  void await_resume() const noexcept {}
};
static_assert(std::is_standard_layout_v<sleep_for_awaiter>);

// Suspends the caller (its handle goes to *caller), then schedules `next`.
struct hand_over {
  executor* ex;
  std::coroutine_handle<>* caller;
  std::coroutine_handle<> next;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) const noexcept {
    *caller = h;
    ex->schedule(next);
  }
  void await_resume() const noexcept {}
};

// Sleeps on the pool's timers like sleep_for_awaiter, scheduling `also`
// first: from a worker, `also` takes the LIFO slot and runs next there.
struct schedule_then_sleep {
  timer_entry entry;  // first: fire() gets the awaiter back
  executor* ex;
  std::coroutine_handle<> also;
  std::coroutine_handle<> waiting;

  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) noexcept {
    waiting = h;
    entry.fire = [](timer_entry* e) noexcept {
      auto* self = reinterpret_cast<schedule_then_sleep*>(e);
      self->ex->schedule(self->waiting);
    };
    ex->schedule(also);
    ex->add_timer(entry);  // the last touch: the sleeper may be resumed at once
  }
  void await_resume() const noexcept {}
};
static_assert(std::is_standard_layout_v<schedule_then_sleep>);

// A coroutine sleeps while the other worker sleeps untimed (no timers yet),
// and its worker then runs a coroutine that blocks until the sleep is over.
// The timer must not wait for that coroutine: a sleeper takes it.
TEST(async_thread_pool, a_timer_added_by_a_worker_that_then_runs_a_long_coroutine_fires_on_another) {
  auto const before_threads = threads_before_pool();
  thread_pool pool(2);
  auto const workers = new_threads(before_threads);
  ASSERT_EQ(workers.size(), 2u);
  for (int round = 0; round < 3; ++round) {
    std::atomic<int> woke{0}, done{0};
    std::coroutine_handle<> blocker_handle;
    auto sleeper = [&]() -> job {
      co_await schedule_then_sleep{{.deadline = clock_type::now() + 1ms}, &pool, blocker_handle, {}};
      woke.store(1);
    };
    job const s = sleeper();
    auto blocker = [&]() -> job {
      pid_t const self = static_cast<pid_t>(::syscall(SYS_gettid));
      until_all_asleep({workers[0] == self ? workers[1] : workers[0]});  // the other worker, untimed
      co_await hand_over{&pool, &blocker_handle, s.handle};  // the sleeper runs next on this worker...
      // ...and this coroutine right after it, blocking its worker.
      rouse_test::eventually([&] { return woke.load() == 1; });  // before the fix: a hang
      done.store(1);
    };
    pool.schedule(blocker().handle);
    rouse_test::eventually([&] { return done.load() == 1; });
  }
}

// The timer holder wakes for the first of two timers and runs the coroutine
// it fires, which blocks until the second timer fired: dropping the role
// as it left its sleep, it must hand the remaining timer on (a hang before,
// the other worker asleep untimed).
TEST(async_thread_pool, a_holder_that_runs_what_it_fired_hands_the_remaining_timers_on) {
  auto const before_threads = threads_before_pool();
  thread_pool pool(2);
  auto const workers = new_threads(before_threads);
  for (int round = 0; round < 3; ++round) {
    until_all_asleep(workers);
    std::atomic<int> second_fired{0}, done{0};
    auto first = [&]() -> job {
      co_await sleep_for_awaiter{{.deadline = clock_type::now() + 1ms}, &pool, {}};
      rouse_test::eventually([&] { return second_fired.load() == 1; });  // holds its worker
      done.store(1);
    };
    auto second = [&]() -> job {
      co_await sleep_for_awaiter{{.deadline = clock_type::now() + 3ms}, &pool, {}};
      second_fired.store(1);
    };
    pool.schedule(first().handle);
    pool.schedule(second().handle);
    rouse_test::eventually([&] { return done.load() == 1; });
  }
}

// Suspends the caller and resumes it behind the work waiting now.
struct yield_awaiter {
  executor* ex;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) const noexcept { ex->schedule_yield(h); }
  void await_resume() const noexcept {}
};

// A worker that resumes a yielded coroutine first fires the timers due:
// the coroutine a fire schedules must not wait in that worker's LIFO slot
// behind the yielded one, which here blocks its worker until the fired one
// ran (a hang before, the other worker asleep).
TEST(async_thread_pool, a_coroutine_fired_before_a_yielded_one_resumes_is_not_held_behind_it) {
  thread_pool pool(2);
  for (int round = 0; round < 20; ++round) {
    std::atomic<int> fired_ran{0}, done{0};
    auto const deadline = clock_type::now() + 2ms;
    auto sleeper = [&]() -> job {
      co_await sleep_for_awaiter{{.deadline = deadline}, &pool, {}};
      fired_ran.store(1);
    };
    auto yielder = [&]() -> job {
      while (clock_type::now() < deadline) co_await yield_awaiter{&pool};
      co_await yield_awaiter{&pool};  // its worker fires the timer, then resumes this
      rouse_test::eventually([&] { return fired_ran.load() == 1; });  // holds its worker
      done.store(1);
    };
    pool.schedule(sleeper().handle);
    pool.schedule(yielder().handle);
    rouse_test::eventually([&] { return done.load() == 1; });
  }
}

TEST(async_thread_pool, coroutines_sleeping_on_timers_resume_on_the_pool_after_their_deadline) {
  constexpr int n = 300;
  std::atomic<int> done{0}, early{0}, off_pool{0};
  thread_pool pool(2);
  auto sleeper = [&](int i) -> job {
    for (int step = 0; step < 3; ++step) {
      auto const deadline = clock_type::now() + std::chrono::microseconds((i * 37 + step * 11) % 400);
      co_await sleep_for_awaiter{{.deadline = deadline}, &pool, {}};
      if (clock_type::now() < deadline) early.fetch_add(1);
      if (rouse::async::current_executor() != &pool) off_pool.fetch_add(1);
    }
    done.fetch_add(1);
  };
  for (int i = 0; i < n; ++i) pool.schedule(sleeper(i).handle);
  rouse_test::eventually([&] { return done.load() == n; });
  EXPECT_EQ(early.load(), 0);
  EXPECT_EQ(off_pool.load(), 0);
}

// ---- destruction ----------------------------------------------------------------

TEST(async_thread_pool, destruction_runs_everything_queued_and_what_it_schedules) {
  constexpr int n = 20000;
  std::vector<std::atomic<int>> runs(2 * n);
  auto pool = std::make_unique<thread_pool>(2);
  for (int i = 0; i < n; ++i) {
    pool->schedule(call([&, i, p = pool.get()] {
                     runs[i].fetch_add(1);
                     p->schedule(call([&, i] { runs[n + i].fetch_add(1); }).handle);
                   }).handle);
  }
  pool.reset();  // at once: most of the work is still queued
  for (int i = 0; i < 2 * n; ++i) ASSERT_EQ(runs[i].load(), 1) << i;
}

TEST(async_thread_pool, destroyed_idle_or_right_after_construction) {
  for (int i = 0; i < 50; ++i) thread_pool pool(3);
  std::atomic<int> ran{0};
  for (int i = 0; i < 50; ++i) {
    thread_pool pool(2);
    pool.schedule(call([&] { ran.fetch_add(1); }).handle);
  }
  EXPECT_EQ(ran.load(), 50);
}

#if ROUSE_DEBUG_CHECKS && !defined(ROUSE_SANITIZER_thread)
TEST(async_thread_pool_death, destroying_the_pool_with_a_timer_pending_is_diagnosed) {
  EXPECT_DEATH(
      {
        test_timer t;
        thread_pool pool(1);
        t.arm(pool, clock_type::now() + 1h);
      },
      "rouse::async::thread_pool: misuse: destroyed with timers pending");
}

TEST(async_thread_pool_death, destroying_the_pool_from_its_own_worker_is_diagnosed) {
  EXPECT_DEATH(
      {
        auto* pool = new thread_pool(1);
        std::atomic<bool> never{false};
        pool->schedule(call([&] { delete pool; }).handle);
        while (!never.load()) std::this_thread::yield();
      },
      "rouse::async::thread_pool: misuse: destroyed by one of its own workers");
}
#endif

// A thread outside the pool wakes a task (its schedule() pushes the task
// onto the pool, or a timer it adds fires at once on a worker); the task
// ends, join() returns, and the pool is destroyed at once while that call
// may still be waking a worker. The destructor waits for it.
void destroy_pool_at_once_after(rouse_test::outside_wake how) {
  rouse_test::destroy_at_once_after_outside_wake(
      how, [] { return std::make_unique<thread_pool>(2); },
      [](thread_pool& p, rouse::async::task<> t) { rouse::async::spawn(p.get_scheduler(), std::move(t)).join(); });
}

TEST(async_thread_pool, destroyed_at_once_after_a_task_woken_from_outside_ends) {
  destroy_pool_at_once_after(rouse_test::outside_wake::schedule);
}

TEST(async_thread_pool, destroyed_at_once_after_a_timer_added_from_outside_fires) {
  destroy_pool_at_once_after(rouse_test::outside_wake::add_timer);
}

}  // namespace
}  // namespace async_thread_pool_test
