// rouse/async/blocking.hpp and rouse::async::wait_on: coroutines await
// rouse's *blocking* primitives (rouse::mutex, rouse::latch,
// rouse::counting_semaphore / binary_semaphore), which threads wake with
// their ordinary futex wakes. Every test runs on three paths:
//   native    an io::event_loop on io_uring whose ring carries futex waits
//             (IORING_OP_FUTEX_WAIT, Linux >= 6.7; skipped where missing)
//   epoll     an io::event_loop on epoll: the helper thread
//   run_loop  a plain async::run_loop: the helper thread
// Checks: a thread holds / releases and the coroutine gets it; mutual
// exclusion and permit counts with threads and coroutines together;
// cancellation by stop token, by with_timeout and by a destroyed frame
// leaves the primitive usable, no waiter on the word, and no wake lost (a
// thread that sleeps beside the cancelled coroutine still gets the
// release); async::wait_on with no reactor in reach.
#include "rouse/async/blocking.hpp"

#include <gtest/gtest.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <coroutine>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "io_test.hpp"
#include "rouse/async/run_loop.hpp"
#include "rouse/async/spawn.hpp"
#include "rouse/async/stop_token.hpp"
#include "rouse/async/task.hpp"
#include "rouse/async/timeout.hpp"
#include "rouse/async/wait_on.hpp"
#include "rouse/io/reactor.hpp"
#include "rouse/latch.hpp"
#include "rouse/mutex.hpp"
#include "rouse/platform/wait.hpp"
#include "rouse/semaphore.hpp"
#include "eventually.hpp"
#include "self_ending.hpp"

namespace async_blocking_test {
namespace {
using namespace std::chrono_literals;
namespace ra = rouse::async;
using ra::task;
using rouse_test::handmade;

enum class path { native, epoll, run_loop };

std::string path_name(const ::testing::TestParamInfo<path>& info) {
  switch (info.param) {
    case path::native: return "native";
    case path::epoll: return "epoll";
    default: return "run_loop";
  }
}

// One of the three loops, behind one interface.
class any_loop {
 public:
  explicit any_loop(path p) {
    if (p == path::run_loop)
      plain_ = std::make_unique<ra::run_loop>();
    else
      io_ = std::make_unique<rouse::io::event_loop>(p == path::native ? rouse::io::backend::io_uring
                                                                      : rouse::io::backend::epoll);
  }
  // Whether a coroutine of this loop waits with no thread.
  bool native() const {
    return io_ && io_->get_reactor().futex_wait_native() && ra::detail::wakes_are_kernel_futex_wakes;
  }
  template <class T>
  T run(task<T> t, ra::inplace_stop_token stop = {}) {
    return io_ ? io_->run_until_complete(std::move(t), stop) : plain_->run_until_complete(std::move(t), stop);
  }
  ra::scheduler scheduler() { return io_ ? io_->get_scheduler() : plain_->get_scheduler(); }

 private:
  std::unique_ptr<rouse::io::event_loop> io_;
  std::unique_ptr<ra::run_loop> plain_;
};

class async_blocking : public ::testing::TestWithParam<path> {
 protected:
  void SetUp() override {
    loop_ = std::make_unique<any_loop>(GetParam());
    if (GetParam() == path::native && !loop_->native())
      GTEST_SKIP() << "no native futex wait here (io_uring with IORING_OP_FUTEX_WAIT, Linux >= 6.7, futex backend)";
    if (GetParam() != path::native) {
      EXPECT_FALSE(loop_->native());
    }
  }
  any_loop& loop() { return *loop_; }

 private:
  std::unique_ptr<any_loop> loop_;
};

// How many threads a futex wake-all finds asleep on the word (0: none).
long wake_all(const std::atomic<std::uint32_t>& word) {
  return ::syscall(SYS_futex, &word, FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr, 0);
}

std::uint32_t word_of(rouse::mutex& m) { return rouse::detail::mutex_access::word(m).load(); }
const std::atomic<std::uint32_t>& futex_of(rouse::mutex& m) { return rouse::detail::mutex_access::word(m); }
const std::atomic<std::uint32_t>& futex_of(const rouse::latch& l) { return rouse::detail::latch_access::word(l); }
template <std::ptrdiff_t N>
const std::atomic<std::uint32_t>& futex_of(rouse::counting_semaphore<N>& s) {
  using access = rouse::detail::semaphore_access;
  return access::word(access::impl(s));
}
// The semaphore's sleepers flag is set (a waiter marked it before waiting).
template <std::ptrdiff_t N>
bool sleepers_marked(rouse::counting_semaphore<N>& s) {
  using access = rouse::detail::semaphore_access;
  if constexpr (N <= rouse::detail::semaphore_word_max)
    return (futex_of(s).load() & 1u) != 0;
  else
    return access::count_word(access::impl(s)).load() == 1;  // SLEEPERS
}
// The wide layout (a 64-bit count, waiters on a sequence word).
using wide_semaphore = rouse::counting_semaphore<(std::ptrdiff_t{1} << 40)>;

// Spins until pred() (a thread waiting for the coroutine to reach its wait).
template <class Pred>
void until(Pred pred) {
  auto const give_up = std::chrono::steady_clock::now() + 10s;
  while (!pred()) {
    ASSERT_LT(std::chrono::steady_clock::now(), give_up) << "the awaited state never came";
    std::this_thread::yield();
  }
}

// The threads of this process (/proc/self/status).
int thread_count() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("Threads:", 0) == 0) return std::stoi(line.substr(8));
  return -1;
}

// ---- rouse::mutex ------------------------------------------------------------

TEST_P(async_blocking, lock_is_taken_at_once_when_the_mutex_is_free) {
  rouse::mutex m;
  loop().run([](rouse::mutex& m) -> task<void> {
    co_await ra::lock(m);
    EXPECT_EQ(word_of(m), 1u);  // the fast path: 0 -> 1
    m.unlock();
  }(m));
  EXPECT_EQ(word_of(m), 0u);
}

TEST_P(async_blocking, a_thread_unlocks_and_the_coroutine_gets_the_mutex) {
  rouse::mutex m;
  int data = 0;
  std::atomic<bool> held{false};
  std::thread holder([&] {
    m.lock();
    held.store(true);
    until([&] { return word_of(m) == 2; });  // the coroutine marked it: it waits
    data = 42;                               // written under the lock
    m.unlock();
  });
  until([&] { return held.load(); });
  int const seen = loop().run([](rouse::mutex& m, int& data) -> task<int> {
    co_await ra::lock(m);
    int const v = data;
    m.unlock();
    co_return v;
  }(m, data));
  holder.join();
  EXPECT_EQ(seen, 42);
  EXPECT_EQ(word_of(m), 0u);
  EXPECT_TRUE(m.try_lock());
  m.unlock();
}

TEST_P(async_blocking, a_thread_sleeps_while_the_coroutine_holds_the_mutex) {
  rouse::mutex m;
  std::atomic<bool> thread_got_it{false};
  std::thread other;
  loop().run([](rouse::mutex& m, std::atomic<bool>& got, std::thread& other) -> task<void> {
    co_await ra::lock(m);
    other = std::thread([&m, &got] {
      m.lock();  // sleeps: the coroutine holds it
      got.store(true);
      m.unlock();
    });
    until([&] { return word_of(m) == 2; });
    EXPECT_FALSE(got.load());
    m.unlock();  // on the thread the co_await resumed on
  }(m, thread_got_it, other));
  other.join();
  EXPECT_TRUE(thread_got_it.load());
  EXPECT_EQ(word_of(m), 0u);
}

TEST_P(async_blocking, threads_and_coroutines_increment_one_counter_under_the_mutex) {
  rouse::mutex m;
  long counter = 0;  // plain: the mutex is its only protection
  constexpr int threads = 4;
  constexpr int coroutines = 4;
  constexpr int rounds = 2000;
  std::atomic<bool> go{false};
  std::vector<std::thread> ts;
  for (int i = 0; i < threads; ++i)
    ts.emplace_back([&] {
      while (!go.load()) std::this_thread::yield();
      for (int r = 0; r < rounds; ++r) {
        m.lock();
        ++counter;
        m.unlock();
      }
    });
  loop().run([](any_loop& loop, rouse::mutex& m, long& counter, std::atomic<bool>& go) -> task<void> {
    ra::task_scope scope;
    for (int c = 0; c < coroutines; ++c)
      scope.spawn(loop.scheduler(), [](ra::scheduler s, rouse::mutex& m, long& counter) -> task<void> {
        for (int r = 0; r < rounds; ++r) {
          co_await ra::lock(m);
          ++counter;
          m.unlock();
          if (r % 16 == 0) co_await s.schedule();  // let the neighbours in
        }
      }(loop.scheduler(), m, counter));
    go.store(true);
    co_await scope.join();
  }(loop(), m, counter, go));
  for (auto& t : ts) t.join();
  EXPECT_EQ(counter, long{threads + coroutines} * rounds);
  EXPECT_EQ(word_of(m), 0u);
}

TEST_P(async_blocking, lock_stopped_by_its_token_leaves_no_waiter_and_the_mutex_usable) {
  rouse::mutex m;
  m.lock();
  ra::inplace_stop_source stop;
  std::thread stopper([&] {
    until([&] { return word_of(m) == 2; });
    std::this_thread::sleep_for(2ms);  // into the wait proper
    stop.request_stop();
  });
  bool stopped = false;
  try {
    loop().run([](rouse::mutex& m) -> task<void> {
      co_await ra::lock(m);
      ADD_FAILURE() << "the lock was taken while the main thread held it";
      m.unlock();
    }(m), stop.get_token());
  } catch (const ra::operation_stopped&) {
    stopped = true;
  }
  stopper.join();
  EXPECT_TRUE(stopped);
  EXPECT_EQ(wake_all(futex_of(m)), 0) << "a stopped lock left a waiter on the word";
  m.unlock();
  // Usable: a thread locks and unlocks it, and so does a coroutine.
  std::thread t([&] {
    m.lock();
    m.unlock();
  });
  t.join();
  loop().run([](rouse::mutex& m) -> task<void> {
    co_await ra::lock(m);
    m.unlock();
  }(m));
  EXPECT_EQ(word_of(m), 0u);
}

TEST_P(async_blocking, lock_with_timeout_times_out_and_leaves_no_waiter) {
  rouse::mutex m;
  m.lock();
  loop().run([](rouse::mutex& m) -> task<void> {
    for (int i = 0; i < 3; ++i) {
      bool const got = co_await ra::with_timeout(ra::lock(m), 3ms);
      EXPECT_FALSE(got);
      EXPECT_EQ(wake_all(futex_of(m)), 0) << "a timed-out lock left a waiter on the word";
    }
  }(m));
  m.unlock();
  EXPECT_EQ(word_of(m), 0u);
  // with_timeout that gets it: true, and it is held.
  loop().run([](rouse::mutex& m) -> task<void> {
    bool const got = co_await ra::with_timeout(ra::lock(m), 1s);
    EXPECT_TRUE(got);
    if (got) m.unlock();
  }(m));
}

// A thread sleeps in m.lock() beside the coroutine; the coroutine is
// stopped while the holder unlocks, so that the unlock's one wake may land
// on the coroutine's wait: the sleeping thread must still get the mutex.
TEST_P(async_blocking, a_stopped_lock_does_not_lose_the_unlock_meant_for_a_sleeping_thread) {
  for (int round = 0; round < 20; ++round) {
    rouse::mutex m;
    std::atomic<bool> held{false};
    ra::inplace_stop_source stop;
    std::atomic<bool> thread_got_it{false};
    std::thread sleeper;
    std::thread racer([&] {
      m.lock();
      held.store(true);
      until([&] { return word_of(m) == 2; });  // the coroutine marked it
      sleeper = std::thread([&] {
        m.lock();
        thread_got_it.store(true);
        m.unlock();
      });
      std::this_thread::sleep_for(1ms);  // both asleep, the coroutine first
      if (round % 2 == 0) {
        m.unlock();
        stop.request_stop();
      } else {
        stop.request_stop();
        m.unlock();
      }
    });
    until([&] { return held.load(); });
    bool took = false;
    try {
      loop().run([](rouse::mutex& m, bool& took) -> task<void> {
        co_await ra::lock(m);  // may win the race with the stop: then it holds m
        took = true;
        m.unlock();
      }(m, took), stop.get_token());
    } catch (const ra::operation_stopped&) {
    }
    racer.join();
    sleeper.join();  // hangs (CTest's timeout) if the wake was lost
    EXPECT_TRUE(thread_got_it.load());
    EXPECT_EQ(word_of(m), 0u);
  }
}

TEST_P(async_blocking, a_destroyed_frame_leaves_no_waiter_and_gives_the_mutex_on) {
  rouse::mutex m;
  m.lock();
  struct body {
    static handmade run(rouse::mutex& m, bool& got) {
      co_await ra::lock(m);
      got = true;
      m.unlock();
    }
  };
  bool got = false;
  handmade c = body::run(m, got);
  c.h.resume();  // to the wait: no executor, so the helper thread waits
  EXPECT_FALSE(got);
  c.h.destroy();
  EXPECT_EQ(wake_all(futex_of(m)), 0);
  m.unlock();
  EXPECT_TRUE(m.try_lock());
  m.unlock();
  EXPECT_FALSE(got);
}

// ---- rouse::latch ------------------------------------------------------------

TEST_P(async_blocking, the_coroutine_waits_for_threads_to_count_the_latch_down) {
  rouse::latch done(3);
  std::atomic<int> counted{0};
  std::vector<std::thread> ts;
  for (int i = 0; i < 3; ++i)
    ts.emplace_back([&] {
      until([&] { return (futex_of(done).load() & 1u) != 0; });  // the coroutine set the sleepers flag
      counted.fetch_add(1);
      done.count_down();
    });
  loop().run([](rouse::latch& done, std::atomic<int>& counted) -> task<void> {
    co_await ra::wait(done);
    EXPECT_EQ(counted.load(), 3);
    EXPECT_TRUE(done.try_wait());
  }(done, counted));
  for (auto& t : ts) t.join();
  // At zero: returns at once.
  loop().run([](rouse::latch& done) -> task<void> { co_await ra::wait(done); }(done));
}

TEST_P(async_blocking, latch_wait_stopped_or_timed_out_leaves_no_waiter) {
  rouse::latch done(1);
  ra::inplace_stop_source stop;
  std::thread stopper([&] {
    until([&] { return (futex_of(done).load() & 1u) != 0; });
    std::this_thread::sleep_for(2ms);
    stop.request_stop();
  });
  EXPECT_THROW(loop().run([](rouse::latch& done) -> task<void> { co_await ra::wait(done); }(done), stop.get_token()),
               ra::operation_stopped);
  stopper.join();
  EXPECT_EQ(wake_all(futex_of(done)), 0);
  loop().run([](rouse::latch& done) -> task<void> {
    EXPECT_FALSE(co_await ra::with_timeout(ra::wait(done), 3ms));
  }(done));
  EXPECT_EQ(wake_all(futex_of(done)), 0);
  // A thread waiting beside: the count_down still wakes it.
  std::thread waiter([&] { done.wait(); });
  until([&] { return (futex_of(done).load() & 1u) != 0; });
  done.count_down();
  waiter.join();
  EXPECT_TRUE(done.try_wait());  // at zero before it goes (the flag stays set otherwise)
}

// ---- rouse::counting_semaphore / binary_semaphore ----------------------------

template <class S>
void the_coroutine_acquires_what_a_thread_releases_on(any_loop& loop) {
  S s(0);
  std::thread releaser([&] {
    until([&] { return sleepers_marked(s); });  // the coroutine set the sleepers flag
    s.release();
  });
  loop.run([](S& s) -> task<void> { co_await ra::acquire(s); }(s));
  releaser.join();
  EXPECT_FALSE(s.try_acquire());  // the one permit was taken, once
  s.release(2);
  loop.run([](S& s) -> task<void> {
    co_await ra::acquire(s);  // the fast path
    co_await ra::acquire(s);
  }(s));
  EXPECT_FALSE(s.try_acquire());
}

template <class S>
void a_stopped_acquire_does_not_lose_the_release_meant_for_a_sleeping_thread_on(any_loop& loop) {
  for (int round = 0; round < 20; ++round) {
    S s(0);
    ra::inplace_stop_source stop;
    std::atomic<bool> thread_got_it{false};
    std::thread sleeper;
    std::thread racer([&] {
      until([&] { return sleepers_marked(s); });
      sleeper = std::thread([&] {
        s.acquire();
        thread_got_it.store(true);
      });
      std::this_thread::sleep_for(1ms);
      if (round % 2 == 0) {
        s.release();
        stop.request_stop();
      } else {
        stop.request_stop();
        s.release();
      }
    });
    bool took = false;
    try {
      loop.run([](S& s, bool& took) -> task<void> {
        co_await ra::acquire(s);  // may win the race with the stop
        took = true;
      }(s, took), stop.get_token());
    } catch (const ra::operation_stopped&) {
    }
    racer.join();
    if (took) s.release();  // the coroutine's permit, for the sleeper
    sleeper.join();         // hangs (CTest's timeout) if the release was lost
    EXPECT_TRUE(thread_got_it.load());
    EXPECT_FALSE(s.try_acquire());  // one permit, taken once
  }
}

template <class S>
void acquire_with_timeout_times_out_and_leaves_no_waiter_on(any_loop& loop) {
  S s(0);
  loop.run([](S& s) -> task<void> {
    EXPECT_FALSE(co_await ra::with_timeout(ra::acquire(s), 3ms));
  }(s));
  EXPECT_EQ(wake_all(futex_of(s)), 0);
  s.release();
  EXPECT_TRUE(s.try_acquire());
}

template <class S>
void a_destroyed_frame_leaves_no_waiter_on_the_semaphore_on(any_loop&) {
  S s(0);
  struct body {
    static handmade run(S& s, bool& got) {
      co_await ra::acquire(s);
      got = true;
    }
  };
  bool got = false;
  handmade c = body::run(s, got);
  c.h.resume();
  c.h.destroy();
  EXPECT_EQ(wake_all(futex_of(s)), 0);
  s.release();
  EXPECT_TRUE(s.try_acquire());  // the permit is there: nobody took it
  EXPECT_FALSE(got);
}

TEST_P(async_blocking, the_coroutine_acquires_what_a_thread_releases) {
  the_coroutine_acquires_what_a_thread_releases_on<rouse::counting_semaphore<>>(loop());
  the_coroutine_acquires_what_a_thread_releases_on<wide_semaphore>(loop());
}

TEST_P(async_blocking, a_stopped_acquire_does_not_lose_the_release_meant_for_a_sleeping_thread) {
  a_stopped_acquire_does_not_lose_the_release_meant_for_a_sleeping_thread_on<rouse::counting_semaphore<>>(loop());
  a_stopped_acquire_does_not_lose_the_release_meant_for_a_sleeping_thread_on<wide_semaphore>(loop());
}

TEST_P(async_blocking, acquire_with_timeout_times_out_and_leaves_no_waiter) {
  acquire_with_timeout_times_out_and_leaves_no_waiter_on<rouse::counting_semaphore<>>(loop());
  acquire_with_timeout_times_out_and_leaves_no_waiter_on<wide_semaphore>(loop());
}

TEST_P(async_blocking, a_destroyed_frame_leaves_no_waiter_on_the_semaphore) {
  a_destroyed_frame_leaves_no_waiter_on_the_semaphore_on<rouse::counting_semaphore<>>(loop());
  a_destroyed_frame_leaves_no_waiter_on_the_semaphore_on<wide_semaphore>(loop());
}

TEST_P(async_blocking, a_binary_semaphore_hands_over_between_a_thread_and_a_coroutine) {
  rouse::binary_semaphore ping(0);
  rouse::binary_semaphore pong(0);
  constexpr int rounds = 200;
  std::thread t([&] {
    for (int i = 0; i < rounds; ++i) {
      ping.release();
      pong.acquire();
    }
  });
  loop().run([](rouse::binary_semaphore& ping, rouse::binary_semaphore& pong) -> task<void> {
    for (int i = 0; i < rounds; ++i) {
      co_await ra::acquire(ping);
      pong.release();
    }
  }(ping, pong));
  t.join();
  EXPECT_FALSE(ping.try_acquire());
  EXPECT_FALSE(pong.try_acquire());
}

// ---- the paths ---------------------------------------------------------------

// Native: the coroutine waits with no thread of its own; elsewhere a helper
// thread waits for it (and is gone once the wait ended).
TEST_P(async_blocking, the_native_path_waits_without_a_thread_the_fallback_with_one) {
#if defined(ROUSE_SANITIZER_thread)
  // ThreadSanitizer starts a background thread of its own when it chooses
  // (in a process running this test alone: during it), so counts are not exact.
  GTEST_SKIP() << "thread counts are not exact under ThreadSanitizer";
#endif
  rouse::mutex m;
  std::atomic<bool> held{false};
  int const before = thread_count();
  int during = -1;
  std::thread holder([&] {
    m.lock();
    held.store(true);
    until([&] { return word_of(m) == 2; });
    std::this_thread::sleep_for(5ms);  // the helper, if any, has started
    during = thread_count();
    m.unlock();
  });
  until([&] { return held.load(); });
  loop().run([](rouse::mutex& m) -> task<void> {
    co_await ra::lock(m);
    m.unlock();
  }(m));
  holder.join();
  // `before` counts the main thread; `during` the holder too.
  if (loop().native())
    EXPECT_EQ(during, before + 1);
  else
    EXPECT_EQ(during, before + 2);
  std::printf("path %s: %d thread(s) beside the loop's while waiting\n", loop().native() ? "native" : "helper",
              during - before - 1);
}

INSTANTIATE_TEST_SUITE_P(paths, async_blocking, ::testing::Values(path::native, path::epoll, path::run_loop),
                         path_name);

// ---- async::wait_on: a wake-one racing a stop ---------------------------------

// True when thread `tid` sleeps in io_uring_enter(2) (/proc, as
// rouse_test::is_asleep does for futex waits).
bool asleep_in_ring(pid_t tid) {
  std::string const dir = "/proc/self/task/" + std::to_string(tid) + "/";
  std::string line;
  std::ifstream stat(dir + "stat");
  if (!std::getline(stat, line)) return false;
  auto const paren = line.rfind(')');
  if (paren == std::string::npos || paren + 2 >= line.size() || line[paren + 2] != 'S') return false;
  std::string call;
  std::ifstream syscall_file(dir + "syscall");
  return syscall_file >> call && call == std::to_string(SYS_io_uring_enter);
}

// The coroutine's wait is queued on the word first, a thread's second; one
// wake-one and a stop of the coroutine race. Whoever the wake reached keeps
// it: when the wait completes as stopped, the thread must have been woken
// (the helper's two-word wait once reported a wake taken with the stop as
// the stop alone, and the wait_on dropped it; the ring's pass-on waited for
// a completion the loop reaped only when it ran again: the thread slept on).
TEST_P(async_blocking, a_wake_one_racing_a_stop_of_wait_on_is_never_dropped) {
  pid_t const loop_tid = rouse_test::kernel_tid();
  for (int round = 0; round < 40; ++round) {
    std::thread([] {}).join();  // a sanitizer's own thread starts with the first thread, before the snapshot
    std::vector<pid_t> const before = rouse_test::thread_ids();
    rouse::platform::word word{0};
    ra::inplace_stop_source stop;
    std::atomic<pid_t> sleeper_tid{0};
    int woken_by_the_wake = -1;
    std::thread sleeper;
    std::thread racer([&] {
      // The coroutine's wait sleeps first: its helper thread (the only new
      // thread besides this one), or the ring's request (native: no thread;
      // the request is in the kernel once the loop sleeps in the ring).
      pid_t const me = rouse_test::kernel_tid();
      if (GetParam() == path::native) {
        rouse_test::eventually([&] { return asleep_in_ring(loop_tid); });
      } else {
        // The helper: a new thread asleep in a futex wait.
        rouse_test::eventually([&] {
          for (pid_t t : rouse_test::thread_ids())
            if (t != me && std::find(before.begin(), before.end(), t) == before.end() && rouse_test::is_asleep(t))
              return true;
          return false;
        });
      }
      sleeper = std::thread([&] {
        sleeper_tid.store(rouse_test::kernel_tid());
        rouse::platform::wait(word, 0);  // once: any wake ends it
      });
      rouse_test::eventually([&] { return sleeper_tid.load() != 0; });
      rouse_test::until_asleep(sleeper_tid.load());
      std::thread stopper([&stop, round] {
        for (int spin = (round * 37) % 400; spin > 0; --spin) std::atomic_signal_fence(std::memory_order_seq_cst);
        stop.request_stop();
      });
      woken_by_the_wake = rouse::platform::wake_one(word);
      stopper.join();
    });
    bool stopped = false;
    try {
      loop().run([](rouse::platform::word& w) -> task<void> { co_await ra::wait_on(w, 0); }(word), stop.get_token());
    } catch (const ra::operation_stopped&) {
      stopped = true;
    }
    racer.join();
    // The wake found someone (the coroutine's wait, the thread), or nobody
    // when a stopped native wait had passed a wake on to the thread first.
    EXPECT_TRUE(woken_by_the_wake == 1 || (stopped && woken_by_the_wake == 0));
    // The thread still sleeps only if the wake reached the coroutine, which
    // then returned normally.
    bool const sleeper_still_waits = rouse::platform::wake_all(word) == 1;
    if (stopped) {
      EXPECT_FALSE(sleeper_still_waits) << "round " << round << ": the wake-one was dropped";
    }
    word.store(1);
    rouse::platform::wake_all(word);
    sleeper.join();
  }
}

// ---- async::wait_on without a reactor ----------------------------------------

TEST(async_wait_on, a_plain_run_loop_waits_through_the_helper) {
  ra::run_loop loop;
  rouse::platform::word word{0};
  std::atomic<bool> waiting{false};
  std::thread waker([&] {
    while (!waiting.load()) std::this_thread::yield();
    std::this_thread::sleep_for(1ms);
    word.store(1);
    rouse::platform::wake_all(word);
  });
  loop.run_until_complete([](rouse::platform::word& w, std::atomic<bool>& waiting) -> task<void> {
    waiting.store(true);
    while (w.load() == 0) co_await ra::wait_on(w, 0);  // may return spuriously
  }(word, waiting));
  waker.join();
  EXPECT_EQ(word.load(), 1u);
}

TEST(async_wait_on, returns_at_once_when_the_word_differs) {
  ra::run_loop loop;
  rouse::platform::word word{7};
  loop.run_until_complete([](rouse::platform::word& w) -> task<void> { co_await ra::wait_on(w, 0); }(word));
}

using rouse_test::self_ending;  // (a coroutine that is not a rouse task; support/self_ending.hpp)

self_ending wait_then_flag(rouse::platform::word& w, std::atomic<bool>& resumed, std::thread::id& where) {
  while (w.load() == 0) co_await ra::wait_on(w, 0);
  where = std::this_thread::get_id();
  resumed.store(true);  // the frame then ends here, on this thread
}

TEST(async_wait_on, a_coroutine_without_an_executor_resumes_on_the_helper) {
  rouse::platform::word word{0};
  std::atomic<bool> resumed{false};
  std::thread::id where;
  wait_then_flag(word, resumed, where);  // runs to its wait
  EXPECT_FALSE(resumed.load());
  word.store(1);
  rouse::platform::wake_all(word);
  until([&] { return resumed.load(); });
  EXPECT_NE(where, std::this_thread::get_id());
}

TEST(async_wait_on, a_stopped_wait_leaves_no_waiter_and_a_wake_one_reaches_a_thread) {
  ra::run_loop loop;
  rouse::platform::word word{0};
  ra::inplace_stop_source stop;
  std::thread stopper([&] {
    std::this_thread::sleep_for(2ms);
    stop.request_stop();
  });
  EXPECT_THROW(loop.run_until_complete([](rouse::platform::word& w) -> task<void> { co_await ra::wait_on(w, 0); }(word),
                                       stop.get_token()),
               ra::operation_stopped);
  stopper.join();
  EXPECT_EQ(wake_all(word), 0);
  // A thread asleep on the word gets a wake-one.
  std::atomic<bool> woken{false};
  std::thread t([&] {
    rouse::platform::wait(word, 0);
    woken.store(true);
  });
  std::this_thread::sleep_for(2ms);
  while (!woken.load()) {
    rouse::platform::wake_one(word);
    std::this_thread::yield();
  }
  t.join();
}

// An executor that records what is scheduled on it and never runs it.
class recording_executor final : public ra::executor {
 public:
  void schedule(std::coroutine_handle<> h) noexcept override { scheduled.store(h.address()); }
  void add_timer(ra::timer_entry&) noexcept override { std::terminate(); }
  bool cancel_timer(ra::timer_entry&) noexcept override { return false; }
  std::atomic<void*> scheduled{nullptr};
};

// A foreign coroutine resumed through a recording_executor, started and
// destroyed by hand.
struct on_recorder {
  struct promise_type {
    recording_executor* ex;
    promise_type(recording_executor& e, rouse::platform::word&) noexcept : ex(&e) {}
    struct env {
      recording_executor* ex;
      ra::scheduler query(ra::get_scheduler_t) const noexcept { return ra::scheduler(*ex); }
    };
    env get_env() const noexcept { return {ex}; }
    on_recorder get_return_object() { return {std::coroutine_handle<promise_type>::from_promise(*this)}; }
    std::suspend_always initial_suspend() noexcept { return {}; }
    std::suspend_always final_suspend() noexcept { return {}; }
    void return_void() {}
    void unhandled_exception() { std::terminate(); }
  };
  std::coroutine_handle<promise_type> h;
};

on_recorder wait_for_word(recording_executor&, rouse::platform::word& w) { co_await ra::wait_on(w, 0); }

// The frame of a wait goes (its owner destroys it) just after the wait's
// helper took a wake-one of the word, before the wait ended: the wake was
// meant for some waiter of the word, here a thread asleep behind the
// helper, and is passed on to it. (A wait that ended first was scheduled:
// it kept the wake, and the thread is woken here; the rounds go on until
// the destruction came first a few times. On a loaded machine the helper
// usually ends the wait first: about one round in sixty goes the other
// way, so the bound on rounds is far above what five such rounds take.)
TEST(async_wait_on, a_wake_taken_for_a_destroyed_frame_is_passed_on) {
  int destroyed_first = 0;
  for (int round = 0; round < 5'000 && destroyed_first < 5; ++round) {
    std::thread([] {}).join();  // a sanitizer's own thread starts with the first thread, before the snapshot
    std::vector<pid_t> const before = rouse_test::thread_ids();
    rouse::platform::word word{0};
    recording_executor ex;
    on_recorder c = wait_for_word(ex, word);
    c.h.resume();  // to its wait: the helper thread (the executor has no parker)
    rouse_test::eventually([&] {
      for (pid_t t : rouse_test::thread_ids())
        if (std::find(before.begin(), before.end(), t) == before.end() && rouse_test::is_asleep(t)) return true;
      return false;
    });
    std::atomic<pid_t> sleeper_tid{0};
    std::atomic<int> slept{-2};  // the thread's wait (the wait layer's: either backend): 0 woken, -1 timed out
    std::thread sleeper([&] {
      sleeper_tid.store(rouse_test::kernel_tid());
      auto const r = rouse::platform::wait_until(word, 0, std::chrono::steady_clock::now() + 10s);
      slept.store(r == rouse::platform::wait_result::woken ? 0 : -1);
    });
    rouse_test::eventually([&] { return sleeper_tid.load() != 0; });
    rouse_test::until_asleep(sleeper_tid.load());  // queued on the word behind the helper
    word.store(1);
    rouse::platform::wake_one(word);  // the helper, first in the word's queue, takes it
    c.h.destroy();                    // waits for a wait's end under way, joins the helper
    if (ex.scheduled.load() != nullptr)
      rouse::platform::wake_one(word);  // the wait ended first: the wake was its own
    else
      ++destroyed_first;
    sleeper.join();
    EXPECT_EQ(slept.load(), 0) << "round " << round << ": the wake-one the destroyed wait took was dropped (timed out)";
  }
  EXPECT_GT(destroyed_first, 0) << "the frame never went before its wait ended: the case was not exercised";
}

TEST(async_wait_on, sizes_are_documented) {
  std::printf("sizeof: wait_on %zu, lock %zu, latch wait %zu, acquire %zu\n", sizeof(ra::wait_on_awaitable),
              sizeof(ra::lock_awaitable), sizeof(ra::latch_wait_awaitable), sizeof(ra::acquire_awaitable<1>));
  if constexpr (sizeof(void*) == 8) {  // the figures the headers state (x86-64)
    EXPECT_EQ(sizeof(ra::wait_on_awaitable), 216u);
    EXPECT_EQ(sizeof(ra::lock_awaitable), 232u);
    EXPECT_EQ(sizeof(ra::latch_wait_awaitable), 216u);
    EXPECT_EQ(sizeof(ra::acquire_awaitable<1>), 224u);
  }
}

}  // namespace
}  // namespace async_blocking_test
