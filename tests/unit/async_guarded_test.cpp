// rouse::async::guarded<T, Mutex>: the data reached only through a guard;
// co_await lock() / lock_shared() (const access), blocking, try_ and timed
// forms; an empty guard is false; a thread and a task sharing the data.
#include "rouse/async/guarded.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "async_test_loop.hpp"

namespace async_guarded_test {
namespace {
namespace ra = rouse::async;
using namespace std::chrono_literals;

task<> push(ra::guarded<std::vector<int>>& g, int v) {
  auto l = co_await g.lock();
  l->push_back(v);
}
task<> read_size(ra::guarded<std::vector<int>, ra::shared_mutex>& g, std::size_t& out) {
  auto r = co_await g.lock_shared();
  static_assert(std::is_same_v<decltype(*r), const std::vector<int>&>);
  out = r->size();
}

TEST(async_guarded, lock_gives_exclusive_access) {
  ra::guarded<std::vector<int>> g(3, 7);
  test_loop loop;
  auto t = push(g, 1);
  t.start(loop);
  loop.drain();
  EXPECT_TRUE(t.finished());
  auto l = g.lock_blocking();
  EXPECT_EQ(*l, (std::vector<int>{7, 7, 7, 1}));
  EXPECT_FALSE(g.try_lock());
  EXPECT_FALSE(g.try_lock_for(1ms));
  l.unlock();
  EXPECT_FALSE(l);
  auto m = g.try_lock();
  ASSERT_TRUE(m);
  m->clear();
  auto moved = std::move(m);
  EXPECT_FALSE(m);
  EXPECT_TRUE(moved->empty());
}

TEST(async_guarded, a_queued_task_gets_the_lock_on_release) {
  ra::guarded<std::vector<int>> g;
  test_loop loop;
  auto l = g.lock_blocking();
  auto t = push(g, 5);
  t.start(loop);
  loop.drain();
  EXPECT_FALSE(t.finished());
  l->push_back(4);
  l.unlock();
  loop.drain();
  EXPECT_TRUE(t.finished());
  EXPECT_EQ(*g.lock_blocking(), (std::vector<int>{4, 5}));
}

TEST(async_guarded, shared_access_is_const_and_shared) {
  ra::guarded<std::vector<int>, ra::shared_mutex> g(2, 1);
  test_loop loop;
  std::size_t size = 0;
  auto r0 = g.lock_shared_blocking();
  auto r1 = g.try_lock_shared();
  ASSERT_TRUE(r1);
  EXPECT_FALSE(g.try_lock());
  auto t = read_size(g, size);
  t.start(loop);
  loop.drain();
  EXPECT_TRUE(t.finished());
  EXPECT_EQ(size, 2u);
  r0.unlock();
  r1.unlock();
  auto w = g.try_lock_until(std::chrono::steady_clock::now() + 1h);
  ASSERT_TRUE(w);
  w->push_back(3);
  EXPECT_FALSE(g.try_lock_shared());
}

TEST(async_guarded, a_thread_and_a_task_share_the_data) {
  ra::guarded<long> g(0L);
  test_loop loop;
  constexpr int rounds = 2000;
  auto bump = [](ra::guarded<long>& gg, int n) -> task<> {
    for (int i = 0; i < n; ++i) ++*co_await gg.lock();
  };
  auto t = bump(g, rounds);
  t.start(loop);
  std::thread th([&] {
    for (int i = 0; i < rounds; ++i) ++*g.lock_blocking();
  });
  loop.run_until([&] { return t.finished(); });
  th.join();
  EXPECT_EQ(g.unsafe_get_unlocked(), 2L * rounds);
}

}  // namespace
}  // namespace async_guarded_test
