// rouse::async::shared_mutex: readers together, writers alone; FIFO between
// them: a queued writer stops later readers (writers not starved) and the
// readers after it are admitted as one batch when it unlocks; a queued
// writer that is stopped or destroyed gives back the reader slots it had
// gathered; try_, blocking and timed forms; a thread and tasks sharing it.
#include "rouse/async/shared_mutex.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>
#include <vector>

#include "async_test_loop.hpp"
#include "rouse/async/stop_token.hpp"
#include "rouse/async/task.hpp"

namespace async_shared_mutex_test {
namespace {
namespace ra = rouse::async;
using namespace std::chrono_literals;

task<> read_and_keep(ra::shared_mutex& m, std::vector<int>& order, int id,
                     std::vector<ra::shared_mutex::shared_guard>& held) {
  auto g = co_await m.lock_shared();
  order.push_back(id);
  held.push_back(std::move(g));
}
task<true> write_and_keep(ra::shared_mutex& m, std::vector<int>& order, int id,
                          std::vector<ra::shared_mutex::guard>& held) {
  auto g = co_await m.lock();
  order.push_back(id);
  held.push_back(std::move(g));
}

TEST(async_shared_mutex, sizes_are_documented) {
  EXPECT_EQ(sizeof(ra::shared_mutex), ROUSE_DEBUG_CHECKS ? 32u : 24u);  // debug: its semaphore's permit count
  EXPECT_EQ(sizeof(ra::shared_mutex::guard), sizeof(void*));
}

TEST(async_shared_mutex, readers_share_writers_exclude) {
  ra::shared_mutex m;
  ASSERT_TRUE(m.try_lock_shared());
  ASSERT_TRUE(m.try_lock_shared());
  EXPECT_FALSE(m.try_lock());
  m.unlock_shared();
  m.unlock_shared();
  ASSERT_TRUE(m.try_lock());
  EXPECT_FALSE(m.try_lock_shared());
  EXPECT_FALSE(m.try_lock());
  m.unlock();
  {
    auto w = m.lock_blocking();
    EXPECT_TRUE(w.owns_lock());
    EXPECT_FALSE(m.try_lock_shared_for(1ms));
  }
  {
    auto r1 = m.lock_shared_blocking();
    auto r2 = m.lock_shared_blocking();
    auto const t0 = std::chrono::steady_clock::now();
    EXPECT_FALSE(m.try_lock_until(t0 + 2ms));
    EXPECT_GE(std::chrono::steady_clock::now(), t0 + 2ms);  // never early
    EXPECT_TRUE(m.try_lock_shared_for(1h));
    m.unlock_shared();
  }
  EXPECT_TRUE(m.try_lock_for(1h));
  m.unlock();
}

TEST(async_shared_mutex, a_queued_writer_stops_later_readers_then_they_enter_as_a_batch) {
  ra::shared_mutex m;
  test_loop loop;
  std::vector<int> order;
  std::vector<ra::shared_mutex::shared_guard> readers;
  std::vector<ra::shared_mutex::guard> writers;
  auto r1 = read_and_keep(m, order, 1, readers);
  auto w = write_and_keep(m, order, 10, writers);
  auto r2 = read_and_keep(m, order, 2, readers);
  auto r3 = read_and_keep(m, order, 3, readers);
  r1.start(loop);
  w.start(loop);
  r2.start(loop);
  r3.start(loop);
  loop.drain();
  EXPECT_EQ(order, std::vector<int>{1});  // the writer waits for r1; r2, r3 behind it
  EXPECT_FALSE(m.try_lock_shared());      // no barging past the writer
  readers.clear();
  loop.drain();
  EXPECT_EQ(order, (std::vector<int>{1, 10}));
  writers.clear();  // one unlock admits both readers
  loop.drain();
  EXPECT_EQ(order, (std::vector<int>{1, 10, 2, 3}));
  readers.clear();
  EXPECT_TRUE(m.try_lock());
  m.unlock();
}

TEST(async_shared_mutex, a_stopped_queued_writer_gives_back_what_it_gathered) {
  ra::shared_mutex m;
  test_loop loop;
  ra::inplace_stop_source src;
  std::vector<int> order;
  std::vector<ra::shared_mutex::shared_guard> readers;
  std::vector<ra::shared_mutex::guard> writers;
  auto r1 = read_and_keep(m, order, 1, readers);
  auto r2 = read_and_keep(m, order, 2, readers);
  auto w = write_and_keep(m, order, 10, writers);
  auto r3 = read_and_keep(m, order, 3, readers);
  r1.start(loop);
  r2.start(loop);
  w.start(loop, src.get_token());
  r3.start(loop);
  loop.drain();
  readers.pop_back();  // r2 leaves: its slot is assigned to the writer
  loop.drain();
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
  src.request_stop();  // the writer leaves: r3 enters
  loop.drain();
  EXPECT_TRUE(w.stopped());
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
  readers.clear();
  EXPECT_TRUE(m.try_lock());
  m.unlock();
}

// A queued writer in a rouse task (its second stoppable wait: through the
// task's stop relay), awaited by a foreign coroutine without an executor,
// is stopped; the reader slots it gathered let a queued reader in, inline,
// and that reader destroys the writer's owner. The writer must have been
// released (resumed as stopped) before that reader ran (it was not: a use
// of freed memory in the relay's stop).
ra::task<> reads_then_writes(ra::shared_mutex& m) {
  { auto g = co_await m.lock_shared(); }  // its own stop callback
  auto w = co_await m.lock();              // through the task's relay
}
bare owns_a_writer(ra::shared_mutex& m, bool& stopped) {
  try {
    co_await reads_then_writes(m);
  } catch (const ra::operation_stopped&) {
    stopped = true;
  }
}
bare reads_and_holds(ra::shared_mutex& m, ra::shared_mutex::shared_guard& keep) { keep = co_await m.lock_shared(); }
bare reads_then_destroys(ra::shared_mutex& m, bare*& victim, bool& ran) {
  auto g = co_await m.lock_shared();
  ran = true;
  std::exchange(victim->h, {}).destroy();
}

TEST(async_shared_mutex, a_reader_let_in_by_a_relayed_writers_stop_may_destroy_the_writer) {
  ra::shared_mutex m;
  ASSERT_TRUE(m.try_lock());  // the writer's first (shared) wait queues
  ra::inplace_stop_source src;
  bool stopped = false, ran = false;
  bare* victim = nullptr;
  bare a = owns_a_writer(m, stopped);
  a.h.promise().token = src.get_token();
  a.h.resume();
  ra::shared_mutex::shared_guard kept;
  bare blocker = reads_and_holds(m, kept);
  blocker.h.resume();  // queued behind the writer's shared wait
  m.unlock();          // both readers in, inline; the writer then queues for the lock behind the blocker
  EXPECT_FALSE(stopped);
  victim = &a;
  bare killer = reads_then_destroys(m, victim, ran);
  killer.h.resume();       // queued behind the writer
  src.request_stop();      // the writer leaves; the killer enters and destroys its owner
  EXPECT_TRUE(stopped);
  EXPECT_TRUE(ran);
  EXPECT_FALSE(static_cast<bool>(a.h));
  kept = ra::shared_mutex::shared_guard();
  EXPECT_TRUE(m.try_lock());
  m.unlock();
}

TEST(async_shared_mutex, a_destroyed_queued_writer_gives_back_what_it_gathered) {
  ra::shared_mutex m;
  test_loop loop;
  std::vector<int> order;
  std::vector<ra::shared_mutex::shared_guard> readers;
  std::vector<ra::shared_mutex::guard> writers;
  auto r1 = read_and_keep(m, order, 1, readers);
  auto w = write_and_keep(m, order, 10, writers);
  r1.start(loop);
  w.start(loop);
  loop.drain();
  w.destroy();
  readers.clear();
  EXPECT_TRUE(m.try_lock());
  m.unlock();
}

TEST(async_shared_mutex, threads_and_tasks_share_it) {
  ra::shared_mutex m;
  test_loop loop;
  long value = 0;  // written under the exclusive lock only
  constexpr int rounds = 1000;
  auto writer = [](ra::shared_mutex& mm, long& v, int n) -> task<> {
    for (int i = 0; i < n; ++i) {
      auto g = co_await mm.lock();
      ++v;
    }
  };
  auto t = writer(m, value, rounds);
  t.start(loop);
  std::thread th([&] {
    long last = 0;
    for (int i = 0; i < rounds; ++i) {
      {
        auto r = m.lock_shared_blocking();
        EXPECT_GE(value, last);
        last = value;
      }
      auto w = m.lock_blocking();
      ++value;
    }
  });
  loop.run_until([&] { return t.finished(); });
  th.join();
  EXPECT_EQ(value, 2 * rounds);
}

#if ROUSE_DEBUG_CHECKS && !defined(ROUSE_SANITIZER_thread)
TEST(async_shared_mutex_death, destroying_it_locked_is_diagnosed) {
  EXPECT_DEATH(
      {
        auto* m = new ra::shared_mutex;
        (void)m->try_lock_shared();
        delete m;
      },
      "rouse::async::shared_mutex: misuse: destroyed while locked");
}
#endif

}  // namespace
}  // namespace async_shared_mutex_test
