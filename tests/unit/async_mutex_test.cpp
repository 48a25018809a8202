// rouse::async::mutex: FIFO hand-off (unlock hands ownership to the oldest
// waiter; nobody barges, try_lock included); the next owner resumes on its
// executor, never inside unlock(); the guard (move, unlock, adopt_lock,
// owns_lock, mutex()); try_ and blocking forms (timeouts never early); a
// thread and a task sharing one mutex; cancellation (destroyed while queued,
// destroyed after the hand-off: ownership goes on; stop while queued; a stop
// racing an unlock, in a loop). Coroutines run on the test loop.
#include "rouse/async/mutex.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "async_test_loop.hpp"
#include "rouse/async/stop_token.hpp"

namespace async_mutex_test {
namespace {
namespace ra = rouse::async;
using namespace std::chrono_literals;

// Locks, records its id, keeps the guard in `held`.
task<> lock_and_keep(ra::mutex& m, std::vector<int>& order, int id, std::vector<ra::mutex::guard>& held) {
  ra::mutex::guard g = co_await m.lock();
  order.push_back(id);
  held.push_back(std::move(g));
}
task<true> lock_and_count(ra::mutex& m, int& done) {
  auto g = co_await m.lock();
  if (g.owns_lock()) ++done;
}

TEST(async_mutex, sizes_are_documented) {
  EXPECT_EQ(sizeof(ra::mutex), ROUSE_DEBUG_CHECKS ? 32u : 24u);  // debug: its semaphore's permit count
  EXPECT_EQ(sizeof(ra::mutex::guard), sizeof(void*));
}

TEST(async_mutex, try_lock_unlock_and_the_guard) {
  ra::mutex m;
  ASSERT_TRUE(m.try_lock());
  EXPECT_FALSE(m.try_lock());
  {
    ra::mutex::guard g(m, std::adopt_lock);
    EXPECT_TRUE(g.owns_lock());
    EXPECT_TRUE(static_cast<bool>(g));
    EXPECT_EQ(g.mutex(), &m);
    ra::mutex::guard h = std::move(g);
    EXPECT_FALSE(g.owns_lock());
    EXPECT_EQ(h.mutex(), &m);
  }
  EXPECT_TRUE(m.try_lock());
  m.unlock();
  auto g = m.lock_blocking();
  g.unlock();
  EXPECT_FALSE(g.owns_lock());
  EXPECT_TRUE(m.try_lock());
  ra::mutex* const r = ra::mutex::guard(m, std::adopt_lock).release();
  EXPECT_EQ(r, &m);
  m.unlock();
}

TEST(async_mutex, unlock_hands_ownership_to_the_oldest_waiter_not_inline) {
  ra::mutex m;
  test_loop loop;
  std::vector<int> order;
  std::vector<ra::mutex::guard> held;
  ASSERT_TRUE(m.try_lock());
  std::vector<task<>> ts;
  for (int i = 1; i <= 3; ++i) ts.push_back(lock_and_keep(m, order, i, held));
  for (auto& t : ts) t.start(loop);
  loop.drain();
  EXPECT_TRUE(order.empty());
  m.unlock();
  EXPECT_TRUE(order.empty());  // handed over, not resumed inside unlock()
  EXPECT_FALSE(m.try_lock());  // owned by waiter 1 already: nobody barges
  loop.drain();
  EXPECT_EQ(order, std::vector<int>{1});
  held.clear();
  loop.drain();
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
  held.clear();
  loop.drain();
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
  held.clear();
  EXPECT_TRUE(m.try_lock());
  m.unlock();
}

TEST(async_mutex, a_task_destroyed_while_queued_or_after_the_hand_off) {
  ra::mutex m;
  test_loop loop;
  int done = 0;
  ASSERT_TRUE(m.try_lock());
  auto a = lock_and_count(m, done);
  auto b = lock_and_count(m, done);
  auto c = lock_and_count(m, done);
  a.start(loop);
  b.start(loop);
  c.start(loop);
  loop.drain();
  a.destroy();  // queued: leaves
  m.unlock();   // hands to b (scheduled)
  ASSERT_TRUE(loop.discard(b.h));
  b.destroy();  // handed the mutex, never resumed: ownership goes on to c
  loop.drain();
  EXPECT_EQ(done, 1);
  EXPECT_TRUE(c.finished());
  EXPECT_TRUE(m.try_lock());
  m.unlock();
}

TEST(async_mutex, a_stop_while_queued_owns_nothing) {
  ra::mutex m;
  test_loop loop;
  ra::inplace_stop_source src;
  int done = 0;
  ASSERT_TRUE(m.try_lock());
  auto a = lock_and_count(m, done);
  auto b = lock_and_count(m, done);
  a.start(loop, src.get_token());
  b.start(loop);
  loop.drain();
  src.request_stop();
  loop.drain();
  EXPECT_TRUE(a.stopped());
  m.unlock();
  loop.drain();
  EXPECT_EQ(done, 1);
  EXPECT_TRUE(b.finished());
  EXPECT_TRUE(m.try_lock());
  m.unlock();
}

TEST(async_mutex, a_stop_racing_an_unlock_loses_and_doubles_nothing) {
  for (int round = 0; round < 300; ++round) {
    ra::mutex m;
    test_loop loop;
    ra::inplace_stop_source src;
    int done = 0;
    ASSERT_TRUE(m.try_lock());
    auto t = lock_and_count(m, done);
    t.start(loop, src.get_token());
    loop.drain();
    // Both start together (a gate), so that the stop often lands while
    // the wake is under way.
    std::atomic<int> gate{0};
    auto together = [&gate] {
      gate.fetch_add(1);
      while (gate.load() < 2) std::this_thread::yield();
    };
    std::thread stopper([&] {
      together();
      src.request_stop();
    });
    std::thread unlocker([&] {
      together();
      m.unlock();
    });
    stopper.join();
    unlocker.join();
    loop.drain();
    ASSERT_TRUE(t.finished() || t.stopped());
    EXPECT_EQ(done, t.stopped() ? 0 : 1);
    EXPECT_TRUE(m.try_lock()) << "round " << round;  // free again either way
    m.unlock();
  }
}

TEST(async_mutex, blocking_and_timed_forms) {
  ra::mutex m;
  ASSERT_TRUE(m.try_lock());
  auto const t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(m.try_lock_until(t0 + 2ms));
  EXPECT_GE(std::chrono::steady_clock::now(), t0 + 2ms);  // never early
  EXPECT_FALSE(m.try_lock_for(1ms));
  std::thread th([&] {
    auto g = m.lock_blocking();
    EXPECT_TRUE(g.owns_lock());
  });
  m.unlock();
  th.join();
  EXPECT_TRUE(m.try_lock_for(1h));
  m.unlock();
}

TEST(async_mutex, a_thread_and_a_task_share_one_lock) {
  ra::mutex m;
  test_loop loop;
  long counter = 0;  // not atomic: the mutex orders every access
  constexpr int rounds = 2000;
  auto bump = [](ra::mutex& mm, long& c, int n) -> task<> {
    for (int i = 0; i < n; ++i) {
      auto g = co_await mm.lock();
      ++c;
    }
  };
  auto t = bump(m, counter, rounds);
  t.start(loop);
  std::thread th([&] {
    for (int i = 0; i < rounds; ++i) {
      auto g = m.lock_blocking();
      ++counter;
    }
  });
  loop.run_until([&] { return t.finished(); });
  th.join();
  EXPECT_EQ(counter, 2 * rounds);
}

#if ROUSE_DEBUG_CHECKS && !defined(ROUSE_SANITIZER_thread)
TEST(async_mutex_death, a_second_await_of_one_lock_is_diagnosed) {
  EXPECT_DEATH(
      {
        ra::mutex m;
        auto a = m.lock();
        if (a.await_ready()) {
          auto g = a.await_resume();
          (void)a.await_ready();  // awaited again: two owners before
        }
      },
      "rouse::async::semaphore::acquire_awaitable: misuse: awaited twice");
}
TEST(async_mutex_death, unlocking_a_mutex_nobody_owns_is_diagnosed) {
  EXPECT_DEATH(
      {
        ra::mutex m;
        m.unlock();
      },
      "rouse::async::mutex: misuse: unlock\\(\\) of a mutex nobody owns");
}
TEST(async_mutex_death, destroying_a_mutex_with_a_waiter_is_diagnosed) {
  EXPECT_DEATH(
      {
        auto* m = new ra::mutex;
        ASSERT_TRUE(m->try_lock());
        test_loop loop;
        int done = 0;
        auto t = lock_and_count(*m, done);
        t.start(loop);
        loop.drain();
        delete m;
      },
      "rouse::async::mutex: misuse: destroyed while locked");
}
// As shared_mutex does (a guard that outlives the mutex would unlock freed
// memory).
TEST(async_mutex_death, destroying_a_locked_mutex_is_diagnosed) {
  EXPECT_DEATH(
      {
        auto* m = new ra::mutex;
        ASSERT_TRUE(m->try_lock());
        delete m;
      },
      "rouse::async::mutex: misuse: destroyed while locked");
}
#endif

}  // namespace
}  // namespace async_mutex_test
