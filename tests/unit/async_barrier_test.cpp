// rouse::async::barrier: phases, the completion function run once per phase
// by the last arriver before anyone of the phase goes on, arrive/wait with
// tokens, arrive_and_drop, waiters resumed on their executor and never
// inside arrive(), cancellation (a stopped wait keeps its arrival: the phase
// still completes; a destroyed frame leaves the list), threads and tasks on
// one barrier, timed waits (never early; the token stays valid), zero
// allocations per wait, misuse.
#include "rouse/async/barrier.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <coroutine>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "async_test_loop.hpp"
#include "counting_new.hpp"
#include "rouse/async/run_loop.hpp"
#include "rouse/async/spawn.hpp"
#include "rouse/async/stop_token.hpp"
#include "rouse/async/task.hpp"
#include "rouse/async/thread_pool.hpp"
#include "rouse/async/timeout.hpp"

namespace async_barrier_test {
namespace {
using namespace std::chrono_literals;
using clk = std::chrono::steady_clock;

struct count_phases {
  int* phases;
  void operator()() noexcept { ++*phases; }
};
using counting_barrier = ra::barrier<count_phases>;

// Arrives `rounds` times, recording (phase seen by the completion count).
task<> cycle(counting_barrier& b, int rounds, std::vector<int>& seen, int* phases) {
  for (int i = 0; i < rounds; ++i) {
    co_await b.arrive_and_wait();
    seen.push_back(*phases);
  }
}

TEST(async_barrier, sizes_are_documented) {
  EXPECT_EQ(sizeof(ra::barrier<>), 48u);
  EXPECT_EQ(sizeof(ra::barrier<>::awaitable), 200u);
  EXPECT_EQ(ra::barrier<>::max(), (std::ptrdiff_t{1} << 31) - 1);
}

TEST(async_barrier, each_phase_runs_the_completion_once_before_anyone_goes_on) {
  int phases = 0;
  counting_barrier b(3, count_phases{&phases});
  test_loop loop;
  std::vector<int> seen;
  auto a = cycle(b, 4, seen, &phases);
  auto c = cycle(b, 4, seen, &phases);
  auto d = cycle(b, 4, seen, &phases);
  a.start(loop);
  c.start(loop);
  d.start(loop);
  loop.drain();
  EXPECT_TRUE(a.finished() && c.finished() && d.finished());
  EXPECT_EQ(phases, 4);
  ASSERT_EQ(seen.size(), 12u);
  for (std::size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i], static_cast<int>(i / 3) + 1) << i;
}

TEST(async_barrier, the_last_arrival_releases_waiters_on_their_executor_not_inside_arrive) {
  int phases = 0;
  counting_barrier b(2, count_phases{&phases});
  test_loop loop;
  std::vector<int> seen;
  auto a = cycle(b, 1, seen, &phases);
  a.start(loop);
  loop.drain();
  EXPECT_FALSE(a.finished());
  auto token = b.arrive();  // the last arrival, from a thread: completion runs here
  EXPECT_EQ(phases, 1);
  EXPECT_TRUE(seen.empty());  // scheduled, not resumed inside arrive()
  EXPECT_EQ(loop.drain(), 1);
  EXPECT_EQ(seen, (std::vector<int>{1}));
  b.wait_blocking(std::move(token));  // its phase is over: returns at once
}

TEST(async_barrier, arrive_then_wait_with_the_token_and_arrive_many) {
  ra::barrier<> b(3);
  auto t1 = b.arrive(2);
  test_loop loop;
  int done = 0;
  auto w = [](ra::barrier<>& b, ra::barrier<>::arrival_token t, int& done) -> task<> {
    co_await b.wait(std::move(t));
    ++done;
  }(b, t1, done);
  w.start(loop);
  loop.drain();
  EXPECT_EQ(done, 0);
  auto t2 = b.arrive();
  loop.drain();
  EXPECT_EQ(done, 1);
  // The next phase expects 3 again; a wait on an old token is ready at once.
  b.wait_blocking(std::move(t2));
  auto t3 = b.arrive(3);
  b.wait_blocking(std::move(t3));
}

TEST(async_barrier, arrive_and_drop_lowers_the_next_phases_expectation) {
  int phases = 0;
  counting_barrier b(3, count_phases{&phases});
  auto t = b.arrive();
  b.arrive_and_drop();
  auto t2 = b.arrive();  // phase 1 complete
  EXPECT_EQ(phases, 1);
  b.wait_blocking(std::move(t));
  (void)b.arrive();
  auto t3 = b.arrive();  // two arrivals complete phase 2
  EXPECT_EQ(phases, 2);
  b.wait_blocking(std::move(t3));
  b.wait_blocking(std::move(t2));
}

TEST(async_barrier, a_stopped_wait_keeps_its_arrival_and_the_phase_still_completes) {
  int phases = 0;
  counting_barrier b(2, count_phases{&phases});
  test_loop loop;
  ra::inplace_stop_source s;
  std::vector<int> seen;
  auto a = cycle(b, 1, seen, &phases);
  a.start(loop, s.get_token());
  loop.drain();
  s.request_stop();
  loop.drain();
  EXPECT_TRUE(a.threw_stopped());
  EXPECT_EQ(phases, 0);
  auto t = b.arrive();  // the stopped party's arrival counted: this ends the phase
  EXPECT_EQ(phases, 1);
  b.wait_blocking(std::move(t));
  EXPECT_TRUE(seen.empty());
}

TEST(async_barrier, a_stop_after_the_phase_chose_the_waiter_does_not_stop_it) {
  int phases = 0;
  counting_barrier b(2, count_phases{&phases});
  test_loop loop;
  ra::inplace_stop_source s;
  std::vector<int> seen;
  auto a = cycle(b, 1, seen, &phases);
  a.start(loop, s.get_token());
  loop.drain();
  (void)b.arrive();
  s.request_stop();
  loop.drain();
  EXPECT_FALSE(a.threw_stopped());
  EXPECT_EQ(seen, (std::vector<int>{1}));
}

TEST(async_barrier, a_frame_destroyed_while_queued_leaves_the_list_and_its_arrival_stands) {
  auto* b = new ra::barrier<>(2);
  test_loop loop;
  {
    auto a = [](ra::barrier<>& b) -> task<> { co_await b.arrive_and_wait(); }(*b);
    a.start(loop);
    loop.drain();
    EXPECT_FALSE(a.finished());
  }
  auto t = b->arrive();
  b->wait_blocking(std::move(t));
  delete b;  // debug builds check that no waiter is left
}

TEST(async_barrier, threads_and_tasks_cycle_through_one_barrier) {
  constexpr int threads = 3;
  constexpr int tasks = 3;
  constexpr int rounds = 50;
  int phases = 0;
  counting_barrier b(threads + tasks, count_phases{&phases});
  ra::thread_pool pool(2);
  std::vector<ra::join_handle<void>> hs;
  std::atomic<int> passed{0};
  for (int i = 0; i < tasks; ++i)
    hs.push_back(ra::spawn(pool.get_scheduler(), [](counting_barrier& b, std::atomic<int>& passed) -> ra::task<> {
      for (int r = 0; r < rounds; ++r) {
        co_await b.arrive_and_wait();
        passed.fetch_add(1);
      }
    }(b, passed)));
  std::vector<std::thread> ts;
  for (int i = 0; i < threads; ++i)
    ts.emplace_back([&] {
      for (int r = 0; r < rounds; ++r) {
        b.arrive_and_wait_blocking();
        passed.fetch_add(1);
      }
    });
  for (auto& t : ts) t.join();
  for (auto& h : hs) h.join();
  EXPECT_EQ(phases, rounds);
  EXPECT_EQ(passed.load(), rounds * (threads + tasks));
}

TEST(async_barrier, the_barrier_may_be_destroyed_by_a_party_it_released) {
  for (int round = 0; round < 200; ++round) {
    auto* b = new ra::barrier<>(2);
    std::thread other([b] { (void)b->arrive(); });
    b->arrive_and_wait_blocking();
    delete b;  // the other arrive may still be returning: it must not touch *b
    other.join();
  }
}

TEST(async_barrier, timed_waits_are_never_early_and_keep_the_token) {
  ra::barrier<> b(2);
  auto t = b.arrive();
  auto const start = clk::now();
  EXPECT_FALSE(b.wait_blocking_for(t, 2ms));
  EXPECT_GE(clk::now() - start, 2ms);
  ra::run_loop loop;
  auto const r = loop.run_until_complete([](ra::barrier<>& b, ra::barrier<>::arrival_token t) -> ra::task<clk::duration> {
    auto const s = clk::now();
    bool const done = co_await b.wait_for(t, 3ms);
    EXPECT_FALSE(done);
    co_return clk::now() - s;
  }(b, t));
  EXPECT_GE(r, 3ms);
  (void)b.arrive();  // the phase ends: the same token now completes
  EXPECT_TRUE(loop.run_until_complete([](ra::barrier<>& b, ra::barrier<>::arrival_token t) -> ra::task<bool> {
    co_return co_await b.wait_until(t, clk::now() + 1h);
  }(b, t)));
  EXPECT_TRUE(b.wait_blocking_until(t, clk::now()));
}

// ---- allocations ---------------------------------------------------------------


bare bare_cycle(ra::barrier<>& b, int rounds) {
  for (int i = 0; i < rounds; ++i) co_await b.arrive_and_wait();
}

TEST(async_barrier, a_wait_allocates_nothing) {
  if (!rouse_test::counts_allocations) GTEST_SKIP() << "a sanitizer owns operator new";
  constexpr int parties = 4;
  ra::barrier<> b(parties);
  ra::inplace_stop_source s;
  std::vector<bare> cycles;
  cycles.reserve(parties);
  for (int i = 0; i < parties; ++i) {
    cycles.push_back(bare_cycle(b, 10));
    cycles.back().h.promise().token = s.get_token();
  }
  long const before = rouse_test::allocations();
  // Resumed inline (no executor): the last arrival of each phase runs the others.
  for (auto& c : cycles) c.h.resume();
  long const after = rouse_test::allocations();
  EXPECT_EQ(after - before, 0);
  for (auto& c : cycles) EXPECT_TRUE(c.h.promise().done);
}

#if ROUSE_DEBUG_CHECKS && !defined(ROUSE_SANITIZER_thread)
TEST(async_barrier_death, more_arrivals_than_expected_is_diagnosed) {
  EXPECT_DEATH(
      {
        ra::barrier<> b(2);
        (void)b.arrive(3);
      },
      "rouse::async::barrier: misuse: more arrivals in a phase than it expects");
}
TEST(async_barrier_death, destroying_a_barrier_with_a_waiter_is_diagnosed) {
  EXPECT_DEATH(
      {
        auto* b = new ra::barrier<>(2);
        test_loop loop;
        auto t = [](ra::barrier<>& b) -> task<> { co_await b.arrive_and_wait(); }(*b);
        t.start(loop);
        loop.drain();
        delete b;
      },
      "rouse::async::barrier: misuse: destroyed while a task or thread waits on it");
}
#endif

}  // namespace
}  // namespace async_barrier_test
