// Unit tests of rouse/condition_variable.hpp: each public function with
// rouse::mutex and with other locks, timeouts (never early, on steady,
// system and another clock), stop tokens, the cost with nobody waiting,
// notify_all's relay, notify_one releasing exactly one waiter, destruction
// rules, a failing relock, misuse diagnostics and the size.
#include "rouse/condition_variable.hpp"

#include <gtest/gtest.h>
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "clocks.hpp"
#include "eventually.hpp"
#include "rouse/mutex.hpp"
#include "rouse/platform/counters.hpp"
#include "rouse/shared_mutex.hpp"
#include "threads.hpp"

namespace condition_variable_test {
namespace {

using namespace std::chrono_literals;
using rouse::condition_variable;

static_assert(sizeof(void*) != 8 || sizeof(rouse::condition_variable) == 32);
static_assert(std::is_same_v<rouse::condition_variable_any, rouse::condition_variable>);
static_assert(!std::is_copy_constructible_v<rouse::condition_variable>);
static_assert(!std::is_move_constructible_v<rouse::condition_variable>);
static_assert(std::is_nothrow_default_constructible_v<rouse::condition_variable>);

using rouse_test::eventually;
using rouse_test::other_clock;

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

// notify_all wakes each waiter once at most: the notify wakes the first
// sleeper and each sleeper the next (the awake ones need no wake). Counted
// from the notify until every waiter has returned, with a std::mutex, whose
// own sleeps and wakes rouse does not count: at most one wake per waiter.
// (The notifier's own share, one, cannot be told apart here: the counters
// are process-wide and the relay runs while it returns.)
TEST(condition_variable, notify_all_wakes_each_waiter_at_most_once) {
  if (!rouse::platform::syscall_counters_enabled()) GTEST_SKIP() << "syscall counters not built in";
  std::mutex m;
  condition_variable cv;
  bool go = false;
  int registered = 0, woken = 0;
  constexpr int n = 12;
  std::vector<std::thread> ts;
  for (int i = 0; i < n; ++i)
    ts.emplace_back([&] {
      std::unique_lock<std::mutex> l(m);
      ++registered;
      cv.wait(l, [&] { return go; });
      ++woken;
    });
  until_waiting(m, registered, n);
  std::unique_lock<std::mutex> l(m);
  go = true;
  auto const before = rouse::platform::syscall_counters();
  cv.notify_all();  // under the lock: wakes the oldest sleeper, which relays to the next
  l.unlock();
  for (auto& t : ts) t.join();
  auto const after = rouse::platform::syscall_counters();
  EXPECT_EQ(woken, n);
  EXPECT_LE(after.wakes - before.wakes, static_cast<std::uint64_t>(n));
  std::printf("notify_all with %d waiters: %llu wake system call(s) in all\n", n,
              static_cast<unsigned long long>(after.wakes - before.wakes));
}

// notify_all's relay: each released waiter wakes the next (after its relock,
// on one mutex), so the chain never stalls, also when notify_all runs after
// the unlock, and round after round.
TEST(condition_variable, relayed_waiters_all_get_the_mutex_round_after_round) {
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

// --- notify_one releases exactly one waiter ----------------------------------

// The calling thread's kernel id.
pid_t this_thread_tid() { return static_cast<pid_t>(::syscall(SYS_gettid)); }

// True when thread `tid` of this process is blocked in the kernel (state S),
// read from /proc. Evidence that a waiter that can only block on the
// condition variable's futex is asleep on it.
bool thread_is_blocked(pid_t tid) {
  std::ifstream stat("/proc/self/task/" + std::to_string(tid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return false;
  auto const paren = line.rfind(')');
  return paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] == 'S';
}

// n threads each wait once on a fresh condition variable (counting the
// return in `returned`, under the lock), then wait on until `done`. The main
// thread waits until every one is inside wait(), and until `ready(tids)`
// holds (which waiters are asleep), notifies once with the lock held, waits
// for one return, gives the others many chances to return as well, and
// checks that they did not. Then notify_all lets everyone out.
template <class Ready>
void notify_one_releases_exactly_one(int n, int rounds, Ready ready) {
  for (int round = 0; round < rounds; ++round) {
    rouse::mutex m;
    condition_variable cv;
    int registered = 0;
    bool done = false;
    std::atomic<int> returned{0};
    std::vector<std::atomic<pid_t>> tids(static_cast<std::size_t>(n));
    std::vector<std::thread> ts;
    for (int i = 0; i < n; ++i)
      ts.emplace_back([&, i] {
        tids[static_cast<std::size_t>(i)].store(this_thread_tid());
        std::unique_lock<rouse::mutex> l(m);
        ++registered;
        cv.wait(l);
        returned.fetch_add(1);
        while (!done) cv.wait(l);
      });
    for (;;) {
      {
        std::lock_guard<rouse::mutex> l(m);
        if (registered == n) break;
      }
      std::this_thread::yield();
    }
    while (!ready(tids)) std::this_thread::yield();
    {
      std::lock_guard<rouse::mutex> l(m);
      cv.notify_one();
    }
    while (returned.load() == 0) std::this_thread::yield();
    for (int i = 0; i < 4000 && returned.load() == 1; ++i) std::this_thread::yield();
    EXPECT_EQ(returned.load(), 1) << "round " << round << " of " << n << " waiters";
    {
      std::lock_guard<rouse::mutex> l(m);
      done = true;
    }
    cv.notify_all();
    for (auto& t : ts) t.join();
    EXPECT_EQ(returned.load(), n);
    if (::testing::Test::HasFailure()) return;
  }
}

// Notified as soon as all are inside wait(): most are still spinning on the
// sequence (the last one to register surely is), some may be asleep. A
// waiter that saw the bump used to return: every spinner came out.
TEST(condition_variable, notify_one_releases_exactly_one_spinning_waiter) {
  auto const now = [](auto&) { return true; };
  notify_one_releases_exactly_one(2, 200, now);
  notify_one_releases_exactly_one(4, 100, now);
}

// Notified once every waiter is blocked in the kernel (on the futex: nothing
// else can block it after it registered).
TEST(condition_variable, notify_one_releases_exactly_one_sleeping_waiter) {
  auto const asleep = [](auto& tids) {
    for (auto& tid : tids)
      if (!thread_is_blocked(tid.load())) return false;
    return true;
  };
  notify_one_releases_exactly_one(2, 50, asleep);
  notify_one_releases_exactly_one(4, 25, asleep);
}

// The first two CPUs this process may run on; false when it has fewer.
bool two_cpus(cpu_set_t& allowed, int (&cpus)[2]) {
  CPU_ZERO(&allowed);
  if (::sched_getaffinity(0, sizeof allowed, &allowed) != 0) return false;
  int found = 0;
  for (int c = 0; c < CPU_SETSIZE && found < 2; ++c)
    if (CPU_ISSET(c, &allowed)) cpus[found++] = c;
  return found == 2;
}

// Pins the calling thread to one CPU.
void pin(int cpu) {
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(cpu, &one);
  (void)::pthread_setaffinity_np(::pthread_self(), sizeof one, &one);
}

// W1 of the two tests below: waits on `cv` for `flag1` under `m` (counted in
// `registered`), at SCHED_IDLE on CPU `cpu`, where a busy thread can keep it
// off the CPU after it is notified. notify_while_kept_off() waits until W1
// sleeps, starts the busy thread and notifies once with the lock held (W1
// is then the only waiter); let_run() stops the busy thread; done() tells
// whether W1 returned.
class first_waiter_kept_off_cpu {
 public:
  first_waiter_kept_off_cpu(rouse::mutex& m, rouse::condition_variable& cv, bool& flag1, int& registered, int cpu)
      : m_(m), cv_(cv), flag1_(flag1) {
    hog_ = std::thread([this, cpu] {
      pin(cpu);
      while (!hog_exit_.load()) {
        while (hog_on_.load()) {
        }
        std::this_thread::sleep_for(50us);
      }
    });
    w1_ = std::thread([this, cpu, &registered] {
      pin(cpu);
      sched_param idle{};
      (void)::pthread_setschedparam(::pthread_self(), SCHED_IDLE, &idle);
      tid_.store(this_thread_tid());
      std::unique_lock<rouse::mutex> l(m_);
      ++registered;
      while (!flag1_) cv_.wait(l);
      done_.store(true);
    });
  }
  first_waiter_kept_off_cpu(const first_waiter_kept_off_cpu&) = delete;
  first_waiter_kept_off_cpu& operator=(const first_waiter_kept_off_cpu&) = delete;
  ~first_waiter_kept_off_cpu() {
    hog_on_.store(false);
    w1_.join();
    hog_exit_.store(true);
    hog_.join();
  }

  void notify_while_kept_off() {
    while (tid_.load() == 0 || !thread_is_blocked(tid_.load())) std::this_thread::yield();
    hog_on_.store(true);
    std::this_thread::sleep_for(1ms);  // the hog runs on W1's CPU (makes the order likely; not asserted)
    std::lock_guard<rouse::mutex> g(m_);
    flag1_ = true;
    cv_.notify_one();  // W1 is the only waiter
  }
  void let_run() { hog_on_.store(false); }
  bool done() const { return done_.load(); }

 private:
  rouse::mutex& m_;
  rouse::condition_variable& cv_;
  bool& flag1_;
  std::atomic<bool> done_{false}, hog_on_{false}, hog_exit_{false};
  std::atomic<pid_t> tid_{0};
  std::thread hog_, w1_;
};

// W1, the only waiter, is notified with the lock held; W2, W4 and W3 start
// waiting after, and a stop request for W3 comes while W1 has not run yet
// (it is kept off the CPU: SCHED_IDLE beside a busy thread on its CPU).
// Neither W2 nor W4 may take the notification meant for W1, which would then
// sleep on past its notify (std: notify_one unblocks one of the threads
// blocked when it is called; W1 was the only one). Hung with the
// sequence-word design, whose stop request woke every sleeper (with W4:
// also with a first fix there that passed the wake on).
TEST(condition_variable, a_waiter_woken_by_a_stop_request_leaves_an_earlier_waiters_signal) {
  cpu_set_t allowed;
  int cpus[2];
  if (!two_cpus(allowed, cpus)) GTEST_SKIP() << "needs two CPUs";
  pin(cpus[0]);  // the main thread beside W2 and W3, off W1's CPU
  for (int round = 0; round < 5; ++round) {
    rouse::mutex m;
    rouse::condition_variable_any cv;
    bool flag1 = false;
    bool flag2 = false;
    int registered = 0;
    std::atomic<pid_t> tid2{0}, tid3{0}, tid4{0};
    std::stop_source stop3;
    first_waiter_kept_off_cpu w1(m, cv, flag1, registered, cpus[1]);
    until_waiting(m, registered, 1);
    w1.notify_while_kept_off();
    auto const later = [&](std::atomic<pid_t>& tid) {
      return std::thread([&] {
        pin(cpus[0]);
        tid.store(this_thread_tid());
        std::unique_lock<rouse::mutex> l(m);
        ++registered;
        while (!flag2) cv.wait(l);
      });
    };
    std::thread w2 = later(tid2);
    std::thread w4 = later(tid4);
    std::thread w3([&] {
      pin(cpus[0]);
      tid3.store(this_thread_tid());
      std::unique_lock<rouse::mutex> l(m);
      ++registered;
      cv.wait(l, stop3.get_token(), [&] { return flag2; });
    });
    until_waiting(m, registered, 4);
    while (!thread_is_blocked(tid2.load()) || !thread_is_blocked(tid3.load()) || !thread_is_blocked(tid4.load()))
      std::this_thread::yield();
    stop3.request_stop();  // W3's wait ends (the sequence-word design woke every sleeper)
    w3.join();
    // Once W2 and W4 sleep (again) they have made their choice, while W1
    // could not run.
    while (!thread_is_blocked(tid2.load()) || !thread_is_blocked(tid4.load())) std::this_thread::yield();
    w1.let_run();
    while (!w1.done()) std::this_thread::yield();  // hung here: W2 had taken W1's signal
    {
      std::lock_guard<rouse::mutex> g(m);
      flag2 = true;
      cv.notify_all();
    }
    w2.join();
    w4.join();
  }
  (void)::pthread_setaffinity_np(::pthread_self(), sizeof allowed, &allowed);
}

// W1, the only waiter, is notified with the lock held and kept off the CPU
// (SCHED_IDLE beside a busy thread on its CPU); W2 and W3 start waiting
// after, and a second notify_one comes (for one of them). W1 must return:
// its notify was made when it was the only thread blocked. Hangs before the
// waiter queue (W2 and W3 both counted as notified and took both anonymous
// signals).
TEST(condition_variable, later_waiters_and_a_second_notify_one_leave_the_first_notify_to_its_waiter) {
  cpu_set_t allowed;
  int cpus[2];
  if (!two_cpus(allowed, cpus)) GTEST_SKIP() << "needs two CPUs";
  pin(cpus[0]);
  for (int round = 0; round < 5; ++round) {
    rouse::mutex m;
    rouse::condition_variable cv;
    bool flag1 = false;
    bool flag2 = false;
    int registered = 0;
    int later_returns = 0;  // under m
    std::atomic<pid_t> tid2{0}, tid3{0};
    first_waiter_kept_off_cpu w1(m, cv, flag1, registered, cpus[1]);
    until_waiting(m, registered, 1);
    w1.notify_while_kept_off();
    auto const later = [&](std::atomic<pid_t>& tid) {
      return std::thread([&] {
        pin(cpus[0]);
        tid.store(this_thread_tid());
        std::unique_lock<rouse::mutex> l(m);
        ++registered;
        while (!flag2) {
          cv.wait(l);
          if (!flag2) ++later_returns;
        }
      });
    };
    std::thread w2 = later(tid2);
    std::thread w3 = later(tid3);
    until_waiting(m, registered, 3);
    {
      std::lock_guard<rouse::mutex> g(m);
      cv.notify_one();  // for W2 or W3 (a spurious return for it)
    }
    // W2 and W3 have made their choice once both sleep again or one returned
    // for good, while W1 could not run.
    for (;;) {
      int returns;
      {
        std::lock_guard<rouse::mutex> g(m);
        returns = later_returns;
      }
      if (returns >= 1 && thread_is_blocked(tid2.load()) && thread_is_blocked(tid3.load())) break;
      std::this_thread::yield();
    }
    w1.let_run();
    while (!w1.done()) std::this_thread::yield();  // hung here: W2 and W3 had taken both signals
    {
      std::lock_guard<rouse::mutex> g(m);
      EXPECT_EQ(later_returns, 1) << "round " << round;  // the second notify_one released one of them
      flag2 = true;
      cv.notify_all();
    }
    w2.join();
    w3.join();
  }
  (void)::pthread_setaffinity_np(::pthread_self(), sizeof allowed, &allowed);
}

// One waiter asleep, the other just registered (spinning): the kernel wakes
// the sleeper, the spinner sees the bump; only one of them may return.
TEST(condition_variable, notify_one_releases_exactly_one_of_a_sleeping_and_a_spinning_waiter) {
  for (int round = 0; round < 100; ++round) {
    rouse::mutex m;
    condition_variable cv;
    int registered = 0;
    bool done = false;
    std::atomic<int> returned{0};
    std::atomic<pid_t> first_tid{0};
    auto const waiter = [&](bool first) {
      if (first) first_tid.store(this_thread_tid());
      std::unique_lock<rouse::mutex> l(m);
      ++registered;
      cv.wait(l);
      returned.fetch_add(1);
      while (!done) cv.wait(l);
    };
    std::thread sleeper(waiter, true);
    for (;;) {
      {
        std::lock_guard<rouse::mutex> l(m);
        if (registered == 1) break;
      }
      std::this_thread::yield();
    }
    while (!thread_is_blocked(first_tid.load())) std::this_thread::yield();
    std::thread spinner(waiter, false);
    for (;;) {
      std::unique_lock<rouse::mutex> l(m);
      if (registered == 2) {
        cv.notify_one();
        break;
      }
      l.unlock();
      std::this_thread::yield();
    }
    while (returned.load() == 0) std::this_thread::yield();
    for (int i = 0; i < 4000 && returned.load() == 1; ++i) std::this_thread::yield();
    EXPECT_EQ(returned.load(), 1) << "round " << round;
    {
      std::lock_guard<rouse::mutex> l(m);
      done = true;
    }
    cv.notify_all();
    sleeper.join();
    spinner.join();
    if (HasFailure()) return;
  }
}

// With the lock held, a notify_one belongs to the threads already waiting:
// a thread that starts waiting after it and times out before the notified
// sleeper has run reports the time-out and leaves the signal to it. The
// sleeper runs at SCHED_IDLE and the other CPUs are kept busy, so that it
// does not run (and claim) before the later wait has timed out.
TEST(condition_variable, notify_one_under_the_lock_is_not_taken_by_a_later_timed_waiter) {
  unsigned const cpus = std::max(1u, std::thread::hardware_concurrency());
  for (int round = 0; round < 40; ++round) {
    rouse::mutex m;
    condition_variable cv;
    int registered = 0;
    std::atomic<int> returned{0};
    std::atomic<pid_t> tid{0};
    std::thread sleeper([&] {
      sched_param const idle{};
      (void)pthread_setschedparam(pthread_self(), SCHED_IDLE, &idle);
      tid.store(this_thread_tid());
      std::unique_lock<rouse::mutex> l(m);
      ++registered;
      cv.wait(l);
      returned.fetch_add(1);
    });
    for (;;) {
      {
        std::lock_guard<rouse::mutex> l(m);
        if (registered == 1) break;
      }
      std::this_thread::yield();
    }
    while (!thread_is_blocked(tid.load())) std::this_thread::yield();
    std::atomic<bool> busy{true};
    std::atomic<unsigned> spinning{0};
    std::vector<std::thread> spinners;
    for (unsigned i = 1; i < cpus; ++i)
      spinners.emplace_back([&] {
        spinning.fetch_add(1);
        while (busy.load(std::memory_order_relaxed)) {
        }
      });
    while (spinning.load() != cpus - 1) std::this_thread::yield();
    std::cv_status later;
    {
      std::unique_lock<rouse::mutex> l(m);
      cv.notify_one();
      later = cv.wait_for(l, 0ms);  // registers after the notify, times out at once
    }
    busy.store(false);
    for (auto& t : spinners) t.join();
    EXPECT_EQ(later, std::cv_status::timeout) << "round " << round;
    if (later != std::cv_status::timeout) cv.notify_all();  // the sleeper lost its notification
    sleeper.join();
    EXPECT_EQ(returned.load(), 1);
    if (HasFailure()) return;
  }
}

// --- other locks on the same object ------------------------------------------

TEST(condition_variable, waiters_with_two_kinds_of_lock_are_all_released_by_notify_all) {
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

// notify_all's relay with two mutexes: A (first in line, on m1) cannot
// relock while the notifier holds m1, and the notifier holds it until B (on
// m2) has returned. A must wake B before its relock, not after. Hangs if a
// relayed sleeper waits for its relock.
TEST(condition_variable, a_relayed_notify_all_does_not_wait_for_a_relock_of_another_mutex) {
  rouse::mutex m1, m2;
  condition_variable cv;
  bool go1 = false;  // under m1
  bool go2 = false;  // under m2
  std::atomic<pid_t> tid_a{0}, tid_b{0};
  std::atomic<bool> b_out{false};
  std::thread a([&] {
    tid_a.store(this_thread_tid());
    std::unique_lock<rouse::mutex> l(m1);
    cv.wait(l, [&] { return go1; });
  });
  eventually([&] { return tid_a.load() != 0; });
  rouse_test::until_asleep(tid_a.load());
  std::thread b([&] {
    tid_b.store(this_thread_tid());
    std::unique_lock<rouse::mutex> l(m2);
    cv.wait(l, [&] { return go2; });
    b_out.store(true);
  });
  eventually([&] { return tid_b.load() != 0; });
  rouse_test::until_asleep(tid_b.load());
  {
    std::lock_guard<rouse::mutex> g1(m1);
    {
      std::lock_guard<rouse::mutex> g2(m2);
      go1 = go2 = true;
    }
    cv.notify_all();                                  // A first, then B through A's relay
    while (!b_out.load()) std::this_thread::yield();  // hung here: A waited for m1 before waking B
  }
  a.join();
  b.join();
}

// notify_all's relay: A and B wait on m (first, asleep), H holds m and waits
// with another mutex on the same object (condition_variable_any allows it),
// asleep behind them. A must wake B before it relocks m (H holds m until
// its own wait returns, and B wakes H): a relay after the relock hung here.
TEST(condition_variable_any, a_relayed_sleeper_wakes_the_next_before_it_relocks) {
  rouse::mutex m, m2;
  condition_variable cv;
  std::atomic<bool> go{false};
  std::atomic<pid_t> tids[3] = {0, 0, 0};
  std::atomic<bool> h_out{false};
  auto const on_m = [&](int i) {
    return std::thread([&, i] {
      tids[i].store(this_thread_tid());
      std::unique_lock<rouse::mutex> l(m);
      while (!go.load()) cv.wait(l);
    });
  };
  std::thread a = on_m(0);
  eventually([&] { return tids[0].load() != 0; });
  rouse_test::until_asleep(tids[0].load());
  std::thread b = on_m(1);
  eventually([&] { return tids[1].load() != 0; });
  rouse_test::until_asleep(tids[1].load());
  std::thread h([&] {
    tids[2].store(this_thread_tid());
    std::lock_guard<rouse::mutex> hold(m);
    std::unique_lock<rouse::mutex> l2(m2);
    cv.wait(l2);
    h_out.store(true);
  });
  eventually([&] { return tids[2].load() != 0; });
  rouse_test::until_asleep(tids[2].load());
  go.store(true);  // read by A and B after they relock m, once H let it go
  cv.notify_all();
  while (!h_out.load()) std::this_thread::yield();  // hung here
  a.join();
  b.join();
  h.join();
}

// The object destroyed right after request_stop() returned, holding the
// waiter's mutex: std counts a stop request as a notification of the waits
// registered for it ([thread.condvarany.intwait]), so every waiter was
// notified. The waiter unlinked its node itself after the stop, from the
// freed object (ASan; debug builds took it for misuse: "destroyed while
// threads wait on it"); the stop request now unlinks it before it returns.
TEST(condition_variable_any, may_be_destroyed_right_after_a_stop_request) {
  for (int round = 0; round < 200; ++round) {
    auto* cv = new rouse::condition_variable_any;
    std::mutex m;
    std::stop_source stop;
    std::atomic<bool> inside{false};
    struct signalling_lock {  // tells when the wait released it
      std::mutex& m;
      std::atomic<bool>& inside;
      void lock() { m.lock(); }
      void unlock() {
        m.unlock();
        inside.store(true);
      }
    };
    std::thread w([&] {
      signalling_lock l{m, inside};
      l.lock();
      (void)cv->wait(l, stop.get_token(), [] { return false; });  // ends by the stop request
      l.unlock();
    });
    while (!inside.load()) std::this_thread::yield();
    {
      std::lock_guard<std::mutex> g(m);
      (void)stop.request_stop();
      delete cv;
    }
    w.join();
  }
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
// mutex the released waiters need.
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

// The destruction rule the header declares: a waiter released by a notify
// made with the mutex held may destroy the object as soon as its wait
// returns (the notify call is over by then). Heap objects, so that the
// asan preset sees any touch after the delete.
TEST(condition_variable, a_waiter_notified_under_the_lock_may_destroy_it_at_once) {
  for (int round = 0; round < 2000; ++round) {
    rouse::mutex m;
    auto* cv = new condition_variable;
    bool go = false;
    std::atomic<bool> waiting{false};
    std::thread waiter([&] {
      std::unique_lock<rouse::mutex> l(m);
      waiting.store(true);
      while (!go) cv->wait(l);
      delete cv;
    });
    while (!waiting.load()) std::this_thread::yield();
    {
      std::lock_guard<rouse::mutex> l(m);
      go = true;
      if (round % 2 == 0) {
        cv->notify_one();
      } else {
        cv->notify_all();
      }
    }
    waiter.join();
  }
}

// The same with two waiters and notify_all: the first one out destroys it
// while the other may still be on its way out (relayed, or relocking); a
// notified waiter touches nothing of the object.
TEST(condition_variable, a_waiter_released_by_notify_all_under_the_lock_may_destroy_it_at_once) {
  for (int round = 0; round < 500; ++round) {
    rouse::mutex m;
    auto* cv = new condition_variable;
    bool go = false, destroyed = false;
    int registered = 0;
    std::vector<std::thread> ts;
    for (int i = 0; i < 2; ++i)
      ts.emplace_back([&] {
        std::unique_lock<rouse::mutex> l(m);
        ++registered;
        while (!go) cv->wait(l);
        if (!destroyed) {
          destroyed = true;
          delete cv;
        }
      });
    for (;;) {
      std::unique_lock<rouse::mutex> l(m);
      if (registered == 2) {
        go = true;
        cv->notify_all();
        break;
      }
      l.unlock();
      std::this_thread::yield();
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
        // Never joined: the delete below ends the process.
        auto* t = new rouse_test::thread([&] {
          std::unique_lock<rouse::mutex> l(m);
          cv->wait(l);
        });
        rouse_test::until_asleep(*t);  // past its spin, asleep on the sequence word
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
    delete cv;              // waits for the notified waiter to deregister; it then blocks on m
    source.request_stop();  // must not touch the destroyed object
  }
  waiter.join();
}

// --- a relock that throws calls std::terminate -------------------------------

#if !defined(ROUSE_SANITIZER_thread)
// A BasicLockable whose second lock() throws: the first is the test's own,
// the second the relock on the way out of a wait.
struct lock_failing_on_relock {
  std::mutex m;
  int locks = 0;
  void lock() {
    if (++locks == 2) throw std::runtime_error("relock failed");
    m.lock();
  }
  void unlock() { m.unlock(); }
};

// Runs `wait(cv, lock, token)` with the lock held while another thread
// notifies for ever; the wait must end in std::terminate.
template <class Wait>
void wait_then_fail_to_relock(Wait wait) {
  condition_variable cv;
  std::stop_source source;
  lock_failing_on_relock lock;
  std::thread([&] {
    for (;;) {
      cv.notify_all();
      std::this_thread::yield();
    }
  }).detach();
  lock.lock();
  wait(cv, lock, source.get_token());
  std::fprintf(stderr, "the wait returned\n");
}

// A lock whose unlock() throws on the way into a wait (BasicLockable's
// unlock() throws nothing): by then a notify may have chosen the waiter, and
// passing that on touched an object the notifier could have destroyed, or
// woke a thread that started waiting later. It ends in std::terminate.
struct lock_failing_on_unlock {
  std::mutex m;
  void lock() { m.lock(); }
  void unlock() { throw std::runtime_error("unlock failed"); }
};
TEST(condition_variable_death, an_unlock_that_throws_terminates) {
  auto const wait_with_a_failing_unlock = [](bool stoppable) {
    condition_variable cv;
    std::stop_source source;
    lock_failing_on_unlock lock;
    lock.lock();
    if (stoppable) {
      (void)cv.wait(lock, source.get_token(), [] { return false; });
    } else {
      cv.wait(lock);
    }
    std::fprintf(stderr, "the wait returned\n");
  };
  EXPECT_DEATH(wait_with_a_failing_unlock(false), "terminate called");
  EXPECT_DEATH(wait_with_a_failing_unlock(true), "terminate called");
}

TEST(condition_variable_death, a_relock_that_throws_terminates) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  auto const never = [] { return false; };
  auto const far = std::chrono::steady_clock::now() + 1h;
  auto const far_system = std::chrono::system_clock::now() + 1h;
  char const* const terminated = "terminate called";
  EXPECT_DEATH(wait_then_fail_to_relock([](auto& cv, auto& l, auto) { cv.wait(l); }), terminated);
  EXPECT_DEATH(wait_then_fail_to_relock([&](auto& cv, auto& l, auto) { cv.wait(l, never); }), terminated);
  EXPECT_DEATH(wait_then_fail_to_relock([](auto& cv, auto& l, auto) { (void)cv.wait_for(l, 1ms); }), terminated);
  EXPECT_DEATH(wait_then_fail_to_relock([&](auto& cv, auto& l, auto) { (void)cv.wait_for(l, 1h, never); }), terminated);
  EXPECT_DEATH(wait_then_fail_to_relock([&](auto& cv, auto& l, auto) { (void)cv.wait_until(l, far); }), terminated);
  EXPECT_DEATH(wait_then_fail_to_relock([&](auto& cv, auto& l, auto) { (void)cv.wait_until(l, far_system, never); }),
               terminated);
  EXPECT_DEATH(wait_then_fail_to_relock([&](auto& cv, auto& l, auto st) { (void)cv.wait(l, st, never); }), terminated);
  EXPECT_DEATH(wait_then_fail_to_relock([&](auto& cv, auto& l, auto st) { (void)cv.wait_for(l, st, 1h, never); }),
               terminated);
  EXPECT_DEATH(wait_then_fail_to_relock([&](auto& cv, auto& l, auto st) { (void)cv.wait_until(l, st, far, never); }),
               terminated);
}
#endif

// Two waiters on one rouse::mutex are released by notify_all; the first
// out, holding the mutex the second needs, makes a third thread wait with
// another lock, notifies everyone and destroys the condition variable. The
// second waiter (relayed, or before the waiter queue requeued onto the
// mutex word) must not need the object any more: before, a destructor that
// had forgotten the requeue target waited for it forever.
TEST(condition_variable_any, destroyed_holding_the_mutex_a_notified_waiter_needs) {
  rouse::mutex m;
  std::mutex other;
  auto* cv = new rouse::condition_variable_any;
  bool go = false;    // under m
  bool go_x = false;  // under other
  std::atomic<pid_t> tids[2] = {0, 0};
  std::atomic<int> first_out{-1};
  std::atomic<pid_t> x_tid{0};
  std::thread x;
  int entered = 0;  // under m
  auto waiter = [&](int id) {
    tids[id].store(this_thread_tid());
    std::unique_lock lk(m);
    ++entered;
    cv->wait(lk, [&] { return go; });
    int expected = -1;
    if (!first_out.compare_exchange_strong(expected, id)) return;  // the second one just leaves
    // Holding m, the other asleep on m's word: a wait with another lock.
    x = std::thread([&] {
      x_tid.store(this_thread_tid());
      std::unique_lock lx(other);
      cv->wait(lx, [&] { return go_x; });
    });
    eventually([&] { return x_tid.load() != 0; });
    rouse_test::until_asleep(x_tid.load());
    {
      std::lock_guard g(other);
      go_x = true;
    }
    cv->notify_all();  // every waiter is notified now
    delete cv;         // holding m
  };
  std::thread a(waiter, 0), b(waiter, 1);
  eventually([&] {
    std::lock_guard g(m);
    return entered == 2;
  });
  for (auto& t : tids) rouse_test::until_asleep(t.load());  // both in the wait, asleep
  {
    std::lock_guard g(m);
    go = true;
    cv->notify_all();  // wakes one, which relays to the other after its relock
  }
  a.join();
  b.join();
  x.join();
}

}  // namespace
}  // namespace condition_variable_test
