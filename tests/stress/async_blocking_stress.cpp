// Stress: coroutines and threads (more threads than cores) share rouse's
// *blocking* primitives through rouse/async/blocking.hpp, on each path a
// coroutine can wait on:
//   native  an io::event_loop on io_uring whose ring carries futex waits
//           (skipped where the kernel lacks IORING_OP_FUTEX_WAIT)
//   epoll   an io::event_loop on epoll: a helper thread per waiting coroutine
//   pool    an async::thread_pool (several executor threads): helper threads
// Checks, sized by ROUSE_STRESS_SCALE:
// - rouse::mutex: a plain counter incremented under the lock by threads
//   (lock, try_lock_for) and coroutines (lock, with_timeout(lock), and
//   coroutines stopped by their join handles while they wait) ends exact, and
//   nobody is ever inside with anybody else;
// - rouse::counting_semaphore: never more holders than permits, every
//   permit back at the end (nothing lost, nothing doubled);
// - rouse::latch: counted down by many threads while coroutines wait (some
//   with timeouts, retried): every waiter is released, every round.
// A lost wake-up hangs the test (CTest's timeout fails it).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "rouse/async/blocking.hpp"
#include "rouse/async/run_loop.hpp"
#include "rouse/async/spawn.hpp"
#include "rouse/async/task.hpp"
#include "rouse/async/thread_pool.hpp"
#include "rouse/async/timeout.hpp"
#include "rouse/io/reactor.hpp"
#include "rouse/latch.hpp"
#include "rouse/mutex.hpp"
#include "rouse/semaphore.hpp"
#include "stress.hpp"

namespace async_blocking_stress {
namespace {
using namespace std::chrono_literals;
namespace ra = rouse::async;
using ra::task;

enum class path { native, epoll, pool };

std::string path_name(const ::testing::TestParamInfo<path>& info) {
  switch (info.param) {
    case path::native: return "native";
    case path::epoll: return "epoll";
    default: return "pool";
  }
}

// An executor for the coroutines, run by threads of its own.
class runner {
 public:
  explicit runner(path p) {
    if (p == path::pool) {
      pool_ = std::make_unique<ra::thread_pool>(3);
      return;
    }
    io_ = std::make_unique<rouse::io::event_loop>(p == path::native ? rouse::io::backend::io_uring
                                                                    : rouse::io::backend::epoll);
    thread_ = std::thread([this] { io_->run(); });
  }
  ~runner() {
    if (io_) {
      io_->finish();
      thread_.join();
    }
  }
  bool native() const {
    return io_ && io_->get_reactor().futex_wait_native() && ra::detail::wakes_are_kernel_futex_wakes;
  }
  ra::executor& executor() { return io_ ? static_cast<ra::executor&>(io_->executor()) : *pool_; }

 private:
  std::unique_ptr<rouse::io::event_loop> io_;
  std::unique_ptr<ra::thread_pool> pool_;
  std::thread thread_;
};

class async_blocking_stress : public ::testing::TestWithParam<path> {
 protected:
  void SetUp() override {
    run_ = std::make_unique<runner>(GetParam());
    if (GetParam() == path::native && !run_->native())
      GTEST_SKIP() << "no native futex wait here (io_uring with IORING_OP_FUTEX_WAIT, Linux >= 6.7)";
  }
  runner& run() { return *run_; }
  void TearDown() override { run_.reset(); }

 private:
  std::unique_ptr<runner> run_;
};

// Joins a spawned task that may have completed as stopped.
template <class T>
bool join_maybe_stopped(ra::join_handle<T>& h) {
  try {
    h.join();
    return false;
  } catch (const ra::operation_stopped&) {
    return true;
  }
}

// ---- rouse::mutex ------------------------------------------------------------

struct guarded_counter {
  rouse::mutex m;
  long value = 0;  // plain: only the mutex protects it
  std::atomic<int> inside{0};
  std::atomic<bool> overlap{false};
  std::atomic<long> found_held{0};  // coroutine locks that found it held (a hint: the slow path ran)
  void note_attempt() {
    if (rouse::detail::mutex_access::word(m).load(std::memory_order_relaxed) != 0)
      found_held.fetch_add(1, std::memory_order_relaxed);
  }
  // `linger`: a thread yields its CPU inside, so that others find the mutex
  // held and sleep (the paths under test); a coroutine, which must not
  // block its executor, does not.
  void critical_section(bool linger) {
    // Ordering: relaxed: the mutex orders the sections; this only detects overlap.
    if (inside.fetch_add(1, std::memory_order_relaxed) != 0) overlap.store(true);
    ++value;
    if (linger) std::this_thread::yield();
    inside.fetch_sub(1, std::memory_order_relaxed);
  }
};

// At least `rounds` rounds, and on until the threads are done (`go` back to
// false): coroutines and threads contend for the whole run.
task<void> mutex_worker(guarded_counter& c, std::atomic<long>& done, long rounds, int id, std::atomic<int>& go) {
  ra::scheduler const s = co_await ra::this_task::get_scheduler();
  while (go.load() == 0) co_await s.schedule();  // start with the threads
  for (long r = 0; r < rounds || go.load() == 1; ++r) {
    if ((r + id) % 7 == 3) {
      c.note_attempt();
      if (co_await ra::with_timeout(ra::lock(c.m), 30us)) {
        c.critical_section(false);
        c.m.unlock();
        done.fetch_add(1, std::memory_order_relaxed);
      }
    } else {
      c.note_attempt();
      co_await ra::lock(c.m);
      c.critical_section(false);
      c.m.unlock();
      done.fetch_add(1, std::memory_order_relaxed);
    }
    co_await s.schedule();  // let neighbours and timers in
    // On a small machine a busy executor would starve the threads (whose
    // hand-offs need a CPU): give the CPU away now and then.
    if (r % 8 == 0) std::this_thread::yield();
  }
}

// Locks until stopped (by its join handle, from another thread): stopped
// inside a contended lock, or seen between two uncontended ones (whose fast
// path does not look at the token).
task<void> mutex_until_stopped(guarded_counter& c, std::atomic<long>& done) {
  ra::scheduler const s = co_await ra::this_task::get_scheduler();
  ra::inplace_stop_token const token = co_await ra::this_task::stop_token();
  while (!token.stop_requested()) {
    co_await ra::lock(c.m);
    c.critical_section(false);
    c.m.unlock();
    done.fetch_add(1, std::memory_order_relaxed);
    co_await s.schedule();
  }
}

TEST_P(async_blocking_stress, threads_and_coroutines_share_one_mutex) {
  guarded_counter c;
  unsigned const threads = rouse_test::oversubscribed();
  constexpr int coroutines = 6;
  constexpr int stoppable = 3;
  long const rounds = rouse_test::scaled(3000);
  std::atomic<long> by_threads{0};
  std::atomic<long> by_coroutines{0};
  std::atomic<int> go{0};  // 0 before, 1 while the threads run, 2 after

  std::vector<ra::join_handle<void>> handles;
  for (int i = 0; i < coroutines; ++i)
    handles.push_back(ra::spawn(run().executor(), mutex_worker(c, by_coroutines, rounds, i, go)));
  std::vector<ra::join_handle<void>> stoppables;
  for (int i = 0; i < stoppable; ++i)
    stoppables.push_back(ra::spawn(run().executor(), mutex_until_stopped(c, by_coroutines)));

  std::vector<std::thread> ts;
  for (unsigned t = 0; t < threads; ++t)
    ts.emplace_back([&, t] {
      while (go.load() == 0) std::this_thread::yield();
      for (long r = 0; r < rounds; ++r) {
        if ((r + t) % 5 == 0) {
          if (!c.m.try_lock_for(20us)) continue;
        } else {
          c.m.lock();
        }
        c.critical_section(r % 2 == 0);
        c.m.unlock();
        by_threads.fetch_add(1, std::memory_order_relaxed);
      }
    });
  go.store(1);
  // Stop the endless lockers while everybody contends (they may be waiting).
  std::this_thread::sleep_for(20ms);
  for (auto& h : stoppables) h.request_stop();
  for (auto& h : stoppables) (void)join_maybe_stopped(h);  // stopped in a wait, or ended at the check
  for (auto& t : ts) t.join();
  go.store(2);
  for (auto& h : handles) EXPECT_FALSE(join_maybe_stopped(h));
  EXPECT_FALSE(c.overlap.load()) << "two holders of the mutex at once";
  EXPECT_EQ(c.value, by_threads.load() + by_coroutines.load()) << "an increment was lost or doubled";
  EXPECT_EQ(rouse::detail::mutex_access::word(c.m).load(), 0u);
  std::printf("mutex: %ld by %u threads, %ld by coroutines, %ld of whose locks found it held (%s)\n",
              by_threads.load(), threads, by_coroutines.load(), c.found_held.load(),
              run().native() ? "native" : "helper");
}

// ---- rouse::counting_semaphore ----------------------------------------------

constexpr std::ptrdiff_t permits = 3;

// The wide layout (a 64-bit count, waiters on a sequence word).
using wide_semaphore = rouse::counting_semaphore<(std::ptrdiff_t{1} << 40)>;

template <class S>
struct permit_count {
  S s{permits};
  std::atomic<int> holders{0};
  std::atomic<bool> too_many{false};
  std::atomic<long> uses{0};
  std::atomic<long> found_empty{0};  // coroutine acquires that found no permit (a hint: the slow path ran)
  void note_attempt() {
    using access = rouse::detail::semaphore_access;
    bool empty;
    if constexpr (sizeof(s) == 4)  // one word: count << 1 | sleepers
      empty = (access::word(access::impl(s)).load(std::memory_order_relaxed) >> 1) == 0;
    else  // field << 1 | flag, the field holding count + flag
      empty = (access::count_word(access::impl(s)).load(std::memory_order_relaxed) >> 1) <= 1;
    if (empty) found_empty.fetch_add(1, std::memory_order_relaxed);
  }
  void use(bool linger) {
    // Ordering: relaxed: counts holders only; the semaphore orders the rest.
    if (holders.fetch_add(1, std::memory_order_relaxed) >= permits) too_many.store(true);
    uses.fetch_add(1, std::memory_order_relaxed);
    if (linger) std::this_thread::yield();  // (as guarded_counter's)
    holders.fetch_sub(1, std::memory_order_relaxed);
  }
};

// As mutex_worker: at least `rounds`, and on while the threads run.
template <class S>
task<void> semaphore_worker(permit_count<S>& p, long rounds, int id, std::atomic<int>& go) {
  ra::scheduler const s = co_await ra::this_task::get_scheduler();
  while (go.load() == 0) co_await s.schedule();  // start with the threads
  for (long r = 0; r < rounds || go.load() == 1; ++r) {
    p.note_attempt();
    if ((r + id) % 5 == 2) {
      if (!co_await ra::with_timeout(ra::acquire(p.s), 30us)) continue;
    } else {
      co_await ra::acquire(p.s);
    }
    p.use(false);
    p.s.release();
    co_await s.schedule();
    if (r % 8 == 0) std::this_thread::yield();  // (as mutex_worker)
  }
}

template <class S>
void share_one_semaphore(runner& run) {
  permit_count<S> p;
  unsigned const threads = rouse_test::oversubscribed();
  constexpr int coroutines = 6;
  long const rounds = rouse_test::scaled(3000);
  std::atomic<int> go{0};  // 0 before, 1 while the threads run, 2 after
  std::vector<ra::join_handle<void>> handles;
  for (int i = 0; i < coroutines; ++i) handles.push_back(ra::spawn(run.executor(), semaphore_worker(p, rounds, i, go)));
  std::vector<std::thread> ts;
  for (unsigned t = 0; t < threads; ++t)
    ts.emplace_back([&, t] {
      while (go.load() == 0) std::this_thread::yield();
      for (long r = 0; r < rounds; ++r) {
        if ((r + t) % 6 == 1) {
          if (!p.s.try_acquire_for(20us)) continue;
        } else {
          p.s.acquire();
        }
        p.use(true);
        p.s.release();
      }
    });
  go.store(1);
  for (auto& t : ts) t.join();
  go.store(2);
  for (auto& h : handles) EXPECT_FALSE(join_maybe_stopped(h));
  EXPECT_FALSE(p.too_many.load()) << "more holders than permits";
  for (std::ptrdiff_t i = 0; i < permits; ++i) EXPECT_TRUE(p.s.try_acquire()) << "a permit was lost";
  EXPECT_FALSE(p.s.try_acquire()) << "a permit was doubled";
  std::printf("semaphore (%zu bytes): %ld uses, %ld coroutine acquires found no permit (%s)\n", sizeof(S),
              p.uses.load(), p.found_empty.load(), run.native() ? "native" : "helper");
}

TEST_P(async_blocking_stress, threads_and_coroutines_share_one_counting_semaphore) {
  share_one_semaphore<rouse::counting_semaphore<>>(run());
}

TEST_P(async_blocking_stress, threads_and_coroutines_share_one_wide_counting_semaphore) {
  share_one_semaphore<wide_semaphore>(run());
}

// ---- rouse::latch ------------------------------------------------------------

task<void> latch_waiter(rouse::latch& l, std::atomic<int>& released, bool timed) {
  if (timed) {
    while (!co_await ra::with_timeout(ra::wait(l), 50us)) {
    }
  } else {
    co_await ra::wait(l);
  }
  EXPECT_TRUE(l.try_wait());
  released.fetch_add(1, std::memory_order_relaxed);
}

TEST_P(async_blocking_stress, many_threads_count_a_latch_down_while_coroutines_wait) {
  unsigned const threads = rouse_test::oversubscribed();
  constexpr int waiters = 6;
  long const rounds = rouse_test::scaled(150);
  for (long round = 0; round < rounds; ++round) {
    rouse::latch l(static_cast<std::ptrdiff_t>(threads));
    std::atomic<int> released{0};
    std::vector<ra::join_handle<void>> handles;
    for (int i = 0; i < waiters; ++i)
      handles.push_back(ra::spawn(run().executor(), latch_waiter(l, released, (i + round) % 3 == 0)));
    std::vector<std::thread> ts;
    for (unsigned t = 0; t < threads; ++t)
      ts.emplace_back([&l, t, round] {
        if ((t + static_cast<unsigned>(round)) % 4 == 0) std::this_thread::yield();
        l.count_down();
      });
    for (auto& t : ts) t.join();
    for (auto& h : handles) h.join();
    ASSERT_EQ(released.load(), waiters) << "round " << round;
  }
}

INSTANTIATE_TEST_SUITE_P(paths, async_blocking_stress, ::testing::Values(path::native, path::epoll, path::pool),
                         path_name);

}  // namespace
}  // namespace async_blocking_stress
