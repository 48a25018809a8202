// Unit tests of rouse/guarded.hpp.
#include "rouse/guarded.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <shared_mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "rouse/recursive_mutex.hpp"
#include "rouse/shared_mutex.hpp"
#include "rouse/spin_lock.hpp"

namespace guarded_test {
namespace {

using namespace std::chrono_literals;
using int_vector = rouse::guarded<std::vector<int>>;

// The data is reachable only through a guard or the named unsafe accessor.
template <class G>
concept exposes_data = requires(G& g) {
  g.data_;
};
template <class G>
concept exposes_mutex = requires(G& g) {
  g.mutex_;
};
static_assert(!exposes_data<int_vector> && !exposes_mutex<int_vector>);
// Guards move but do not copy; the guarded object does neither.
static_assert(std::is_nothrow_move_constructible_v<int_vector::guard>);
static_assert(!std::is_copy_constructible_v<int_vector::guard>);
static_assert(!std::is_copy_constructible_v<int_vector>);
// Shared access is const; it exists only for shared mutexes.
using shared_string = rouse::guarded<std::string, std::shared_mutex>;
static_assert(std::is_same_v<decltype(*std::declval<shared_string::shared_guard&>()), const std::string&>);
template <class G>
concept has_lock_shared = requires(G& g) {
  g.lock_shared();
};
static_assert(has_lock_shared<shared_string> && !has_lock_shared<int_vector>);
// No size overhead beyond the mutex and the data.
static_assert(sizeof(rouse::guarded<int>) == sizeof(rouse::mutex) + sizeof(int));

TEST(guarded, lock_gives_access_through_arrow_and_star) {
  int_vector v;
  v.lock()->push_back(1);
  {
    auto g = v.lock();
    g->push_back(2);
    (*g).push_back(3);
    EXPECT_TRUE(g);
    EXPECT_TRUE(g.owns_lock());
  }
  EXPECT_EQ(v.unsafe_get_unlocked(), (std::vector<int>{1, 2, 3}));
}

TEST(guarded, constructs_its_data_from_arguments) {
  rouse::guarded<std::string> a(std::in_place, 3, 'x');
  rouse::guarded<std::string> b(std::string("hello"));
  EXPECT_EQ(*a.lock(), "xxx");
  EXPECT_EQ(*b.lock(), "hello");
}

TEST(guarded, the_guard_holds_the_lock_until_it_dies_or_unlocks) {
  int_vector v;
  auto g = v.lock();
  bool other = true;
  std::thread([&] { other = static_cast<bool>(v.try_lock()); }).join();
  EXPECT_FALSE(other);
  g.unlock();
  EXPECT_FALSE(g);
  std::thread([&] { other = static_cast<bool>(v.try_lock()); }).join();
  EXPECT_TRUE(other);
}

TEST(guarded, guards_move_and_the_lock_moves_with_them) {
  int_vector v;
  auto g1 = v.lock();
  auto g2 = std::move(g1);
  EXPECT_FALSE(g1);  // NOLINT(bugprone-use-after-move): checking the moved-from state
  EXPECT_TRUE(g2);
  g2->push_back(5);
  auto g3 = std::move(g2);  // move assignment chain keeps one owner
  EXPECT_FALSE(g2);         // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(g3->size(), 1u);
}

TEST(guarded, try_lock_returns_an_empty_guard_when_busy) {
  int_vector v;
  std::atomic<bool> held{false}, release{false};
  std::thread t([&] {
    auto g = v.lock();
    held.store(true);
    while (!release.load()) std::this_thread::yield();
  });
  while (!held.load()) std::this_thread::yield();
  auto g = v.try_lock();
  EXPECT_FALSE(g);
  auto timed = v.try_lock_for(5ms);
  EXPECT_FALSE(timed);
  release.store(true);
  t.join();
  EXPECT_TRUE(v.try_lock());
  EXPECT_TRUE(v.try_lock_until(std::chrono::steady_clock::now() + 1s));
}

TEST(guarded, with_lock_returns_the_result_of_the_function) {
  int_vector v(std::in_place, std::initializer_list<int>{1, 2, 3});
  auto const n = v.with_lock([](std::vector<int>& x) {
    x.push_back(4);
    return x.size();
  });
  EXPECT_EQ(n, 4u);
  int& first = v.with_lock([](std::vector<int>& x) -> int& { return x.front(); });  // decltype(auto) keeps references
  EXPECT_EQ(first, 1);
}

TEST(guarded, shared_guards_coexist_and_exclude_writers) {
  shared_string s(std::string("abc"));
  auto r1 = s.lock_shared();
  auto r2 = s.try_lock_shared();
  EXPECT_TRUE(r2);
  EXPECT_EQ(*r1, "abc");
  EXPECT_EQ(r2->size(), 3u);
  bool writer_got_it = true;
  std::thread([&] { writer_got_it = static_cast<bool>(s.try_lock()); }).join();
  EXPECT_FALSE(writer_got_it);
  r1.unlock();
  r2.unlock();
  EXPECT_EQ(s.with_lock_shared([](const std::string& x) { return x.size(); }), 3u);
  s.with_lock([](std::string& x) { x += "d"; });
  EXPECT_EQ(*s.lock_shared(), "abcd");
}

TEST(guarded, shared_access_over_rouse_shared_mutex) {
  rouse::guarded<std::vector<int>, rouse::shared_mutex> v(std::in_place, std::initializer_list<int>{1, 2});
  static_assert(has_lock_shared<decltype(v)>);
  {
    auto r1 = v.lock_shared();
    auto r2 = v.lock_shared();
    EXPECT_EQ(r1->size() + r2->size(), 4u);
    bool writer_got_it = true;
    std::thread([&] { writer_got_it = static_cast<bool>(v.try_lock()); }).join();
    EXPECT_FALSE(writer_got_it);
  }
  v.lock()->push_back(3);
  EXPECT_EQ(v.with_lock_shared([](const std::vector<int>& x) { return x.back(); }), 3);
  EXPECT_TRUE(v.try_lock_for(1s));
}

TEST(guarded, works_over_other_lockables) {
  rouse::guarded<int, rouse::spin_lock> a;
  rouse::guarded<int, rouse::recursive_mutex> b;
  rouse::guarded<int, std::mutex> c;
  *a.lock() += 1;
  *b.lock() += 2;
  *c.lock() += 3;
  EXPECT_EQ(a.unsafe_get_unlocked() + b.unsafe_get_unlocked() + c.unsafe_get_unlocked(), 6);
}

TEST(guarded, as_unique_lock_works_with_a_condition_variable) {
  // The guard is taken before the producer starts: the producer can set the
  // value only once the wait has released the lock through
  // as_unique_lock(), and the wait returns holding it again.
  rouse::guarded<int, std::mutex> value;
  std::condition_variable cv;
  auto g = value.lock();
  std::thread producer([&] {
    *value.lock() = 7;
    cv.notify_one();
  });
  cv.wait(g.as_unique_lock(), [&] { return value.unsafe_get_unlocked() == 7; });
  EXPECT_EQ(*g, 7);
  g.unlock();
  producer.join();
}

TEST(guarded, concurrent_updates_are_not_lost) {
  rouse::guarded<long> total;
  std::vector<std::thread> pool;
  for (int t = 0; t < 4; ++t)
    pool.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) ++*total.lock();
    });
  for (auto& t : pool) t.join();
  EXPECT_EQ(total.unsafe_get_unlocked(), 40000);
}

#if ROUSE_DEBUG_CHECKS && !defined(ROUSE_SANITIZER_thread)
TEST(guarded_death, access_through_an_empty_guard_aborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        int_vector v;
        auto g = v.lock();
        g.unlock();
        g->push_back(1);
      },
      "rouse::guarded: misuse: access through a guard that does not hold the lock");
}
#endif

}  // namespace
}  // namespace guarded_test
