// Unit tests of rouse/condition_variable.hpp: each public function with
// rouse::mutex and with other locks, timeouts (never early, on steady,
// system and another clock), stop tokens, the cost with nobody waiting, the
// requeue on notify_all, destruction rules, misuse diagnostics and the size.
#include "rouse/condition_variable.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <stop_token>
#include <thread>
#include <vector>

#include "rouse/mutex.hpp"
#include "rouse/platform/counters.hpp"
#include "rouse/shared_mutex.hpp"

namespace {

using namespace std::chrono_literals;
using rouse::condition_variable;

static_assert(sizeof(void*) != 8 || sizeof(rouse::condition_variable) == 24);
static_assert(std::is_same_v<rouse::condition_variable_any, rouse::condition_variable>);
static_assert(!std::is_copy_constructible_v<rouse::condition_variable>);
static_assert(!std::is_move_constructible_v<rouse::condition_variable>);
static_assert(std::is_nothrow_default_constructible_v<rouse::condition_variable>);

struct other_clock {
  using duration = std::chrono::nanoseconds;
  using rep = duration::rep;
  using period = duration::period;
  using time_point = std::chrono::time_point<other_clock>;
  [[maybe_unused]] static constexpr bool is_steady = true;
  static time_point now() noexcept { return time_point(std::chrono::steady_clock::now().time_since_epoch()); }
};

template <class F>
void eventually(F done) {
  while (!done()) std::this_thread::sleep_for(1ms);
}

// Waits until `n` threads have registered as waiters: each increments
// `registered` under the mutex right before waiting, and the mutex being
// free again means the last one has released it inside wait().
template <class Mutex>
void until_waiting(Mutex& m, const int& registered, int n) {
  for (;;) {
    {
      std::lock_guard<Mutex> l(m);
      if (registered >= n) break;
    }
    std::this_thread::sleep_for(1ms);
  }
  std::this_thread::sleep_for(5ms);  // let them reach the futex (not needed for correctness)
}

// --- the same behaviour with every kind of lock ------------------------------

template <class Mutex>
struct cv_with : ::testing::Test {};
using lock_kinds = ::testing::Types<rouse::mutex, std::mutex, rouse::shared_mutex>;
TYPED_TEST_SUITE(cv_with, lock_kinds);

TYPED_TEST(cv_with, notify_one_wakes_a_waiter) {
  TypeParam m;
  condition_variable cv;
  bool ready = false;
  std::thread t([&] {
    std::this_thread::sleep_for(10ms);
    std::lock_guard<TypeParam> l(m);
    ready = true;
    cv.notify_one();
  });
  std::unique_lock<TypeParam> l(m);
  while (!ready) cv.wait(l);
  EXPECT_TRUE(l.owns_lock());
  l.unlock();
  t.join();
}

TYPED_TEST(cv_with, wait_with_predicate_returns_once_it_holds) {
  TypeParam m;
  condition_variable cv;
  int value = 0;
  std::thread t([&] {
    for (int i = 1; i <= 5; ++i) {
      std::this_thread::sleep_for(2ms);
      std::lock_guard<TypeParam> l(m);
      value = i;
      cv.notify_one();
    }
  });
  std::unique_lock<TypeParam> l(m);
  cv.wait(l, [&] { return value == 5; });
  EXPECT_EQ(value, 5);
  l.unlock();
  t.join();
}

TYPED_TEST(cv_with, notify_all_wakes_every_waiter) {
  TypeParam m;
  condition_variable cv;
  bool go = false;
  int registered = 0, woken = 0;
  constexpr int n = 6;
  std::vector<std::thread> ts;
  for (int i = 0; i < n; ++i)
    ts.emplace_back([&] {
      std::unique_lock<TypeParam> l(m);
      ++registered;
      cv.wait(l, [&] { return go; });
      ++woken;
    });
  until_waiting(m, registered, n);
  {
    std::lock_guard<TypeParam> l(m);
    go = true;
  }
  cv.notify_all();
  for (auto& t : ts) t.join();
  EXPECT_EQ(woken, n);
}

TYPED_TEST(cv_with, wait_for_times_out_never_early) {
  TypeParam m;
  condition_variable cv;
  std::unique_lock<TypeParam> l(m);
  auto const start = std::chrono::steady_clock::now();
  EXPECT_EQ(cv.wait_for(l, 20ms), std::cv_status::timeout);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 20ms);
  EXPECT_TRUE(l.owns_lock());
  EXPECT_FALSE(cv.wait_for(l, 10ms, [] { return false; }));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 30ms);
  EXPECT_TRUE(cv.wait_for(l, 10ms, [] { return true; }));
  EXPECT_EQ(cv.wait_for(l, 0ms), std::cv_status::timeout);
  EXPECT_EQ(cv.wait_for(l, -1s), std::cv_status::timeout);
}

TYPED_TEST(cv_with, wait_until_times_out_never_early_on_each_clock) {
  TypeParam m;
  condition_variable cv;
  std::unique_lock<TypeParam> l(m);
  auto const s = std::chrono::steady_clock::now() + 15ms;
  EXPECT_EQ(cv.wait_until(l, s), std::cv_status::timeout);
  EXPECT_GE(std::chrono::steady_clock::now(), s);
  auto const y = std::chrono::system_clock::now() + 15ms;
  EXPECT_EQ(cv.wait_until(l, y), std::cv_status::timeout);
  EXPECT_GE(std::chrono::system_clock::now(), y);
  auto const o = other_clock::now() + 15ms;
  EXPECT_EQ(cv.wait_until(l, o), std::cv_status::timeout);
  EXPECT_GE(other_clock::now(), o);
  auto const y2 = std::chrono::system_clock::now() + 10ms;
  EXPECT_FALSE(cv.wait_until(l, y2, [] { return false; }));
  EXPECT_GE(std::chrono::system_clock::now(), y2);
  EXPECT_TRUE(l.owns_lock());
}

TYPED_TEST(cv_with, timed_wait_returns_no_timeout_when_notified) {
  TypeParam m;
  condition_variable cv;
  bool ready = false;
  std::thread t([&] {
    std::this_thread::sleep_for(10ms);
    std::lock_guard<TypeParam> l(m);
    ready = true;
    cv.notify_all();
  });
  std::unique_lock<TypeParam> l(m);
  EXPECT_TRUE(cv.wait_for(l, 60s, [&] { return ready; }));
  l.unlock();
  t.join();
  l.lock();
  ready = false;
  std::thread t2([&] {
    std::this_thread::sleep_for(10ms);
    std::lock_guard<TypeParam> g(m);
    ready = true;
    cv.notify_one();
  });
  EXPECT_TRUE(cv.wait_until(l, std::chrono::system_clock::now() + 60s, [&] { return ready; }));
  l.unlock();
  t2.join();
}

// --- cost with nobody waiting ------------------------------------------------

TEST(condition_variable, notify_with_nobody_waiting_makes_no_system_call) {
  if (!rouse::platform::syscall_counters_enabled()) GTEST_SKIP() << "syscall counters not built in";
  condition_variable cv;
  rouse::mutex m;
  {
    // A wait that timed out leaves nobody registered.
    std::unique_lock<rouse::mutex> l(m);
    (void)cv.wait_for(l, 1ms);
  }
  auto const before = rouse::platform::syscall_counters();
  for (int i = 0; i < 1000; ++i) {
    cv.notify_one();
    cv.notify_all();
  }
  auto const after = rouse::platform::syscall_counters();
  EXPECT_EQ(after.waits, before.waits);
  EXPECT_EQ(after.wakes, before.wakes);
}

// --- no thundering herd ------------------------------------------------------

TEST(condition_variable, notify_all_with_n_waiters_on_rouse_mutex_makes_at_most_two_wake_calls) {
  if (!rouse::platform::syscall_counters_enabled()) GTEST_SKIP() << "syscall counters not built in";
  rouse::mutex m;
  condition_variable cv;
  bool go = false;
  int registered = 0, woken = 0;
  constexpr int n = 12;
  std::vector<std::thread> ts;
  for (int i = 0; i < n; ++i)
    ts.emplace_back([&] {
      std::unique_lock<rouse::mutex> l(m);
      ++registered;
      cv.wait(l, [&] { return go; });
      ++woken;
    });
  until_waiting(m, registered, n);
  std::unique_lock<rouse::mutex> l(m);
  go = true;
  auto const before = rouse::platform::syscall_counters();
  cv.notify_all();  // under the lock: every waiter is moved onto the mutex
  auto const after = rouse::platform::syscall_counters();
  l.unlock();
  for (auto& t : ts) t.join();
  EXPECT_EQ(woken, n);
  EXPECT_LE(after.wakes - before.wakes, 2u);
  std::printf("notify_all with %d waiters: %llu wake system call(s)\n", n,
              static_cast<unsigned long long>(after.wakes - before.wakes));
}

// The requeued waiters are woken one by one by the mutex: each relocks in
// the contended state, so the chain never stalls, also when notify_all runs
// after the unlock, and round after round.
TEST(condition_variable, requeued_waiters_all_get_the_mutex_round_after_round) {
  rouse::mutex m;
  condition_variable cv;
  int generation = 0, acks = 0;
  constexpr int n = 8, rounds = 200;
  std::vector<std::thread> ts;
  for (int i = 0; i < n; ++i)
    ts.emplace_back([&] {
      std::unique_lock<rouse::mutex> l(m);
      for (int g = 1; g <= rounds; ++g) {
        cv.wait(l, [&] { return generation >= g; });
        if (++acks == n) cv.notify_all();
      }
    });
  for (int g = 1; g <= rounds; ++g) {
    std::unique_lock<rouse::mutex> l(m);
    acks = 0;
    ++generation;
    if (g % 2 == 0) {
      cv.notify_all();  // under the lock
    } else {
      l.unlock();
      cv.notify_all();  // after the unlock
      l.lock();
    }
    cv.wait(l, [&] { return acks == n; });
  }
  for (auto& t : ts) t.join();
}

// --- other locks on the same object ------------------------------------------

TEST(condition_variable, a_second_kind_of_lock_switches_requeue_off_safely) {
  rouse::mutex rm;
  std::mutex sm;
  condition_variable cv;
  bool go_r = false, go_s = false;
  int registered = 0;
  std::thread r([&] {
    std::unique_lock<rouse::mutex> l(rm);
    ++registered;
    cv.wait(l, [&] { return go_r; });
  });
  until_waiting(rm, registered, 1);
  std::thread s([&] {
    std::unique_lock<std::mutex> l(sm);
    cv.wait(l, [&] { return go_s; });
  });
  std::this_thread::sleep_for(10ms);
  {
    std::scoped_lock l(rm, sm);
    go_r = go_s = true;
  }
  cv.notify_all();
  r.join();
  s.join();
}

TEST(condition_variable, works_with_a_bare_basic_lockable_and_shared_lock) {
  rouse::mutex m;
  condition_variable cv;
  m.lock();
  EXPECT_EQ(cv.wait_for(m, 1ms), std::cv_status::timeout);  // rouse::mutex itself is BasicLockable
  m.unlock();
  rouse::shared_mutex sm;
  std::shared_lock<rouse::shared_mutex> sl(sm);
  EXPECT_EQ(cv.wait_for(sl, 1ms), std::cv_status::timeout);
  EXPECT_TRUE(sl.owns_lock());
}

// --- stop tokens (std::condition_variable_any) ---------------------------------

TEST(condition_variable, stop_request_ends_an_interruptible_wait) {
  rouse::mutex m;
  condition_variable cv;
  std::stop_source source;
  std::atomic<bool> returned{false};
  std::thread t([&] {
    std::unique_lock<rouse::mutex> l(m);
    EXPECT_FALSE(cv.wait(l, source.get_token(), [] { return false; }));
    EXPECT_TRUE(l.owns_lock());
    returned = true;
  });
  std::this_thread::sleep_for(20ms);
  EXPECT_FALSE(returned.load());
  source.request_stop();
  t.join();
  EXPECT_TRUE(returned.load());
}

TEST(condition_variable, interruptible_waits_return_the_predicate) {
  std::mutex m;
  condition_variable cv;
  std::stop_source source;
  std::unique_lock<std::mutex> l(m);
  EXPECT_TRUE(cv.wait(l, source.get_token(), [] { return true; }));
  auto const start = std::chrono::steady_clock::now();
  EXPECT_FALSE(cv.wait_for(l, source.get_token(), 15ms, [] { return false; }));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 15ms);
  auto const y = std::chrono::system_clock::now() + 10ms;
  EXPECT_FALSE(cv.wait_until(l, source.get_token(), y, [] { return false; }));
  EXPECT_GE(std::chrono::system_clock::now(), y);
  source.request_stop();
  EXPECT_FALSE(cv.wait(l, source.get_token(), [] { return false; }));
  EXPECT_TRUE(cv.wait_for(l, source.get_token(), 1s, [] { return true; }));
}

TEST(condition_variable, stop_during_a_timed_interruptible_wait) {
  std::mutex m;
  condition_variable cv;
  std::jthread t([&](std::stop_token st) {
    std::unique_lock<std::mutex> l(m);
    EXPECT_FALSE(cv.wait_for(l, st, 60s, [] { return false; }));
  });
  std::this_thread::sleep_for(10ms);
  t.request_stop();
  t.join();
}

// --- destruction --------------------------------------------------------------

// std allows destroying a condition variable once all waiters were notified,
// before they return; here the notifier destroys it while still holding the
// mutex the requeued waiters need.
TEST(condition_variable, may_be_destroyed_after_notify_all_before_waiters_return) {
  for (int round = 0; round < 20; ++round) {
    rouse::mutex m;
    auto cv = std::make_unique<condition_variable>();
    bool go = false;
    int registered = 0;
    std::vector<std::thread> ts;
    for (int i = 0; i < 4; ++i)
      ts.emplace_back([&, c = cv.get()] {
        std::unique_lock<rouse::mutex> l(m);
        ++registered;
        while (!go) c->wait(l);
      });
    until_waiting(m, registered, 4);
    {
      std::lock_guard<rouse::mutex> l(m);
      go = true;
      cv->notify_all();
      cv.reset();
    }
    for (auto& t : ts) t.join();
  }
}

#if ROUSE_DEBUG_CHECKS && !defined(ROUSE_SANITIZER_thread)
TEST(condition_variable_death, destroyed_with_a_waiter_never_notified) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        rouse::mutex m;
        auto* cv = new condition_variable;
        std::thread t([&] {
          std::unique_lock<rouse::mutex> l(m);
          cv->wait(l);
        });
        t.detach();
        std::this_thread::sleep_for(50ms);
        delete cv;
      },
      "rouse::condition_variable: misuse: destroyed while threads wait on it");
}
#endif

// std allows destroying a condition variable once every waiter has been
// notified, even before they return. A waiter with a stop_token must not
// leave its stop callback (which touches the object) registered after it
// deregistered: here it is still relocking the mutex when the object is
// freed and a stop is requested. The old code wrote to freed memory (caught
// by the asan and tsan presets).
TEST(condition_variable, destroyed_after_notify_all_while_a_stoppable_waiter_relocks) {
  rouse::mutex m;
  auto* cv = new condition_variable;
  std::stop_source source;
  bool flag = false;
  std::atomic<bool> waiting{false};
  std::thread waiter([&] {
    std::unique_lock lock(m);
    waiting.store(true);
    EXPECT_TRUE(cv->wait(lock, source.get_token(), [&] { return flag; }));
  });
  while (!waiting.load()) std::this_thread::yield();
  {
    std::lock_guard guard(m);  // the waiter is asleep: it released m in wait()
    flag = true;
    cv->notify_all();
    delete cv;               // waits for the notified waiter to deregister; it then blocks on m
    source.request_stop();   // must not touch the destroyed object
  }
  waiter.join();
}

}  // namespace
