// Stress: rouse::async::semaphore, mutex and shared_mutex on the
// async::thread_pool. 10,000 tasks (scaled by ROUSE_STRESS_SCALE) hammer
// each primitive while plain threads use the blocking and timed forms at the
// same time (more parties than cores), and a stopper thread fires the stop
// tokens of some tasks while they wait. Checks:
// - semaphore: the permits in use never exceed the count, and every permit
//   is back at the end (available() exact): nothing lost, nothing doubled,
//   partial assignments of stopped waiters included;
// - mutex: a plain counter incremented under the lock ends exact, and a
//   flag proves nobody else was inside;
// - shared_mutex: readers never overlap a writer, writers never overlap
//   anybody; a plain counter written by writers ends exact.
// A lost wake-up hangs the test (CTest's timeout fails it).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include "rouse/async/mutex.hpp"
#include "rouse/async/semaphore.hpp"
#include "rouse/async/shared_mutex.hpp"
#include "rouse/async/spawn.hpp"
#include "rouse/async/task.hpp"
#include "rouse/async/thread_pool.hpp"
#include "stress.hpp"

namespace async_lock_stress {
namespace {
namespace ra = rouse::async;

constexpr unsigned pool_workers = 4;  // more than the cores of the CI machine

// Runs `count` tasks made by make(i) on the pool, stops every `stop_every`th
// one from another thread while they run, and joins them all. Returns how
// many completed as stopped.
template <class Make>
long run_tasks(ra::thread_pool& pool, long count, long stop_every, Make make) {
  std::vector<ra::join_handle<void>> handles;
  handles.reserve(static_cast<std::size_t>(count));  // never reallocated: the stopper reads it
  std::atomic<long> spawned{0};
  std::thread stopper([&] {
    for (long i = 0; i < count; i += stop_every) {
      while (spawned.load(std::memory_order_acquire) <= i) std::this_thread::yield();
      handles[static_cast<std::size_t>(i)].request_stop();
    }
  });
  for (long i = 0; i < count; ++i) {
    handles.push_back(ra::spawn(pool.get_scheduler(), make(i)));
    spawned.store(i + 1, std::memory_order_release);
  }
  stopper.join();
  long stopped = 0;
  for (auto& h : handles) {
    try {
      h.join();
    } catch (const ra::operation_stopped&) {
      ++stopped;
    }
  }
  return stopped;
}

// ---- semaphore -------------------------------------------------------------------

struct sem_state {
  static constexpr std::size_t permits = 5;
  ra::semaphore sem{permits};
  std::atomic<long> in_use{0};
  std::atomic<bool> over{false};
  std::atomic<long> served{0};

  void use(std::size_t n) {
    long const now = in_use.fetch_add(static_cast<long>(n)) + static_cast<long>(n);
    if (now > static_cast<long>(permits)) over = true;
    in_use.fetch_sub(static_cast<long>(n));
    served.fetch_add(1, std::memory_order_relaxed);
  }
};

ra::task<> sem_task(sem_state& s, std::size_t n, bool yield_while_held) {
  auto p = co_await s.sem.acquire(n);
  if (!p) co_return;
  s.use(n);
  if (yield_while_held) co_await (co_await ra::this_task::get_scheduler()).schedule();
}

TEST(async_lock_stress, semaphore_permits_are_conserved_with_stops_and_threads) {
  sem_state s;
  long const tasks = rouse_test::scaled(10000);
  ra::thread_pool pool(pool_workers);
  std::atomic<bool> done{false};
  std::vector<std::thread> threads;
  std::atomic<long> thread_rounds{0};
  for (unsigned t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      std::minstd_rand rng(t + 1);
      while (!done.load()) {
        std::size_t const n = 1 + rng() % 3;
        if (t % 2 == 0) {
          auto p = s.sem.acquire_blocking(n);
          if (p) s.use(n);
        } else if (auto p = s.sem.try_acquire_for(n, std::chrono::microseconds(20))) {
          s.use(n);
        }
        thread_rounds.fetch_add(1, std::memory_order_relaxed);
      }
    });
  long const stopped =
      run_tasks(pool, tasks, 7, [&](long i) { return sem_task(s, 1 + static_cast<std::size_t>(i % 4), i % 3 == 0); });
  done = true;
  for (auto& t : threads) t.join();
  EXPECT_FALSE(s.over.load());
  EXPECT_EQ(s.sem.available(), sem_state::permits);  // every permit back
  EXPECT_GE(s.served.load(), tasks - stopped);
  EXPECT_LE(stopped, tasks / 7 + 1);
  std::printf("semaphore: %ld tasks, %ld stopped while waiting, %ld thread rounds\n", tasks, stopped,
              thread_rounds.load());
}

// close() racing queued tasks, releasing threads and blocked threads: every
// acquire completes (served or closed), and the permits end exact.
ra::task<> close_task(ra::semaphore& sem, std::size_t n, std::atomic<long>& closed) {
  auto p = co_await sem.acquire(n);
  if (!p) closed.fetch_add(1, std::memory_order_relaxed);
}

TEST(async_lock_stress, semaphore_close_races_waiters_and_releases) {
  long const rounds = rouse_test::scaled(40);
  ra::thread_pool pool(pool_workers);
  long closed_total = 0;
  for (long round = 0; round < rounds; ++round) {
    ra::semaphore sem(1);
    std::atomic<long> closed{0};
    std::vector<ra::join_handle<void>> hs;
    for (int i = 0; i < 100; ++i)
      hs.push_back(ra::spawn(pool.get_scheduler(), close_task(sem, 1 + static_cast<std::size_t>(i % 3), closed)));
    std::thread blocked([&] {
      for (int i = 0; i < 20; ++i)
        if (auto p = sem.acquire_blocking(2); !p) break;
    });
    std::thread releaser([&] {
      for (int i = 0; i < 10; ++i) sem.release(1);
    });
    std::thread closer([&] { sem.close(); });
    releaser.join();
    closer.join();
    blocked.join();
    for (auto& h : hs) h.join();
    EXPECT_TRUE(sem.is_closed());
    EXPECT_EQ(sem.available(), 11u);  // 1 + 10 released: every permit back
    closed_total += closed.load();
  }
  std::printf("close: %ld acquires saw closed\n", closed_total);
}

// ---- mutex ---------------------------------------------------------------------

struct mutex_state {
  ra::mutex m;
  long counter = 0;  // plain: the mutex orders every access (TSan checks it)
  std::atomic<int> inside{0};
  std::atomic<bool> overlap{false};
  void enter() {
    if (inside.exchange(1) != 0) overlap = true;
    ++counter;
    inside.store(0);
  }
};

ra::task<> mutex_task(mutex_state& s, bool yield_while_held, std::atomic<long>& entered) {
  auto g = co_await s.m.lock();
  s.enter();
  entered.fetch_add(1, std::memory_order_relaxed);
  if (yield_while_held) co_await (co_await ra::this_task::get_scheduler()).schedule();
}

TEST(async_lock_stress, mutex_excludes_and_the_counter_ends_exact) {
  mutex_state s;
  long const tasks = rouse_test::scaled(10000);
  long const per_thread = rouse_test::scaled(2000);
  std::atomic<long> entered{0};
  ra::thread_pool pool(pool_workers);
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (long i = 0; i < per_thread;) {
        if (t % 2 == 0) {
          auto g = s.m.lock_blocking();
          s.enter();
          ++i;
        } else if (s.m.try_lock_for(std::chrono::microseconds(20))) {
          s.enter();
          s.m.unlock();
          ++i;
        }
      }
    });
  long const stopped = run_tasks(pool, tasks, 11, [&](long i) { return mutex_task(s, i % 5 == 0, entered); });
  for (auto& t : threads) t.join();
  EXPECT_FALSE(s.overlap.load());
  EXPECT_EQ(entered.load() + stopped, tasks);
  EXPECT_EQ(s.counter, entered.load() + 4 * per_thread);
  EXPECT_TRUE(s.m.try_lock());
  s.m.unlock();
}

// ---- shared_mutex ------------------------------------------------------------------

struct rw_state {
  ra::shared_mutex m;
  long value = 0;  // written under the exclusive lock only
  std::atomic<int> readers{0};
  std::atomic<int> writers{0};
  std::atomic<bool> bad{false};
  void read() {
    readers.fetch_add(1);
    if (writers.load() != 0) bad = true;
    (void)value;
    readers.fetch_sub(1);
  }
  void write() {
    if (writers.fetch_add(1) != 0 || readers.load() != 0) bad = true;
    ++value;
    writers.fetch_sub(1);
  }
};

ra::task<> rw_task(rw_state& s, bool writer, std::atomic<long>& writes) {
  if (writer) {
    auto g = co_await s.m.lock();
    s.write();
    writes.fetch_add(1, std::memory_order_relaxed);
  } else {
    auto g = co_await s.m.lock_shared();
    s.read();
    co_await (co_await ra::this_task::get_scheduler()).schedule();  // readers overlap
    s.read();
  }
}

TEST(async_lock_stress, shared_mutex_readers_never_overlap_a_writer) {
  rw_state s;
  long const tasks = rouse_test::scaled(10000);
  long const per_thread = rouse_test::scaled(1000);
  std::atomic<long> writes{0};
  ra::thread_pool pool(pool_workers);
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (long i = 0; i < per_thread; ++i) {
        if (t % 2 == 0) {
          auto g = s.m.lock_blocking();
          s.write();
          writes.fetch_add(1, std::memory_order_relaxed);
        } else {
          auto g = s.m.lock_shared_blocking();
          s.read();
        }
      }
    });
  (void)run_tasks(pool, tasks, 13, [&](long i) { return rw_task(s, i % 4 == 0, writes); });
  for (auto& t : threads) t.join();
  EXPECT_FALSE(s.bad.load());
  EXPECT_EQ(s.value, writes.load());
  EXPECT_TRUE(s.m.try_lock());
  s.m.unlock();
}

}  // namespace
}  // namespace async_lock_stress
