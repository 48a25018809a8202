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
  EXPECT_EQ(sizeof(ra::shared_mutex), 24u);
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
