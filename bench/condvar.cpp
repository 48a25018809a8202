// condvar.* workloads: rouse::condition_variable (with rouse::mutex) against
// std::condition_variable (with std::mutex), std::condition_variable_any and
// absl::CondVar (with absl::Mutex).
//
//   condvar.pingpong     2 threads pass a turn flag under one mutex + condvar,
//                        100,000 round trips                                  ns/roundtrip
//   condvar.broadcast16  16 threads wait for a generation counter; one thread
//                        bumps it under the mutex and notifies all, then waits
//                        until all 16 have acknowledged; 5,000 generations     us/generation
//
// broadcast16 counts one "op" per generation, so the runner's
// wait_calls_per_op / wake_calls_per_op are system calls per generation (for
// rouse's own types); `notify_wake_calls_per_generation` in extra counts only
// the wake system calls made inside notify_all (at most 1: rouse releases
// the awake waiters at once and relays the sleepers, one waking the next).
// Notifiers signal after unlocking in pingpong and while holding the mutex in
// broadcast16 (the pattern that, with a plain wake-all, wakes 16 threads into
// a held mutex).
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

#include "harness.hpp"
#include "rouse/condition_variable.hpp"
#include "rouse/mutex.hpp"
#include "rouse/platform/counters.hpp"

#if defined(ROUSE_BENCH_HAVE_ABSL)
#include "absl/synchronization/mutex.h"
#endif

namespace {

using rouse::bench::clock;
using rouse::bench::ns_between;
using rouse::bench::run_context;
using rouse::bench::sample;

// One face for each mutex + condition variable pair:
//   lock_type l(m); wait(cv, l); notify_one(cv); notify_all(cv); l.unlock()
template <class Mutex, class CV>
struct std_style {
  using mutex = Mutex;
  using cv = CV;
  using lock = std::unique_lock<Mutex>;
  static void wait(cv& c, lock& l) { c.wait(l); }
  static void notify_one(cv& c) { c.notify_one(); }
  static void notify_all(cv& c) { c.notify_all(); }
};

using rouse_pair = std_style<rouse::mutex, rouse::condition_variable>;
using std_pair = std_style<std::mutex, std::condition_variable>;
using std_any_pair = std_style<std::mutex, std::condition_variable_any>;

#if defined(ROUSE_BENCH_HAVE_ABSL)
struct absl_pair {
  using mutex = absl::Mutex;
  using cv = absl::CondVar;
  struct lock {
    explicit lock(absl::Mutex& m) : m_(&m) { m_->Lock(); }
    ~lock() {
      if (held_) m_->Unlock();
    }
    void unlock() {
      m_->Unlock();
      held_ = false;
    }
    absl::Mutex* m_;
    bool held_ = true;
  };
  static void wait(cv& c, lock& l) { c.Wait(l.m_); }
  static void notify_one(cv& c) { c.Signal(); }
  static void notify_all(cv& c) { c.SignalAll(); }
};
#endif

// --- condvar.pingpong --------------------------------------------------------

template <class P>
sample pingpong(const run_context& ctx) {
  std::int64_t const n = ctx.scaled(100'000);
  typename P::mutex m;
  typename P::cv cv;
  int turn = 0;  // whose turn: 0 or 1
  double const ns = rouse::bench::run_threads(2, [&](unsigned me) {
    for (std::int64_t i = 0; i < n; ++i) {
      typename P::lock l(m);
      while (turn != static_cast<int>(me)) P::wait(cv, l);
      turn = 1 - static_cast<int>(me);
      l.unlock();
      P::notify_one(cv);
    }
  });
  return {ns / static_cast<double>(n), static_cast<double>(n)};
}

// --- condvar.broadcast16 -----------------------------------------------------

template <class P>
sample broadcast16(const run_context& ctx) {
  constexpr unsigned waiters = 16;
  std::int64_t const generations = ctx.scaled(5'000);
  typename P::mutex m;
  typename P::cv cv, acked;
  std::int64_t generation = 0;
  unsigned acks = 0, ready = 0;
  std::uint64_t notify_wakes = 0;
  std::vector<std::thread> ts;
  for (unsigned i = 0; i < waiters; ++i)
    ts.emplace_back([&] {
      typename P::lock l(m);
      ++ready;
      for (std::int64_t g = 1; g <= generations; ++g) {
        while (generation < g) P::wait(cv, l);
        if (++acks == waiters) P::notify_one(acked);
      }
    });
  // Let every waiter reach its first wait before the clock starts.
  for (;;) {
    {
      typename P::lock l(m);
      if (ready == waiters) break;
    }
    std::this_thread::yield();
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  auto const start = clock::now();
  for (std::int64_t g = 1; g <= generations; ++g) {
    typename P::lock l(m);
    acks = 0;
    generation = g;
    auto const before = rouse::platform::syscall_counters().wakes;
    P::notify_all(cv);
    notify_wakes += rouse::platform::syscall_counters().wakes - before;
    while (acks != waiters) P::wait(acked, l);
  }
  auto const stop = clock::now();
  for (auto& t : ts) t.join();
  sample s{ns_between(start, stop) / 1000.0 / static_cast<double>(generations), static_cast<double>(generations)};
  if (std::is_same_v<P, rouse_pair> && rouse::platform::syscall_counters_enabled())
    s.extra["notify_wake_calls_per_generation"] = static_cast<double>(notify_wakes) / static_cast<double>(generations);
  return s;
}

}  // namespace

ROUSE_BENCH_REGISTER(condvar_workloads) {
  rouse::bench::add({
      .name = "condvar.pingpong",
      .unit = "ns/roundtrip",
      .baseline = "std::condition_variable",
      .impls =
          {
              {"rouse::condition_variable", pingpong<rouse_pair>},
              {"std::condition_variable", pingpong<std_pair>},
              {"std::condition_variable_any", pingpong<std_any_pair>},
#if defined(ROUSE_BENCH_HAVE_ABSL)
              {"absl::CondVar", pingpong<absl_pair>},
#endif
          },
      .description = "2 threads pass a turn flag under one mutex + condvar (notify after unlock), "
                     "100,000 round trips.",
  });
  rouse::bench::add({
      .name = "condvar.broadcast16",
      .unit = "us/generation",
      .baseline = "std::condition_variable",
      .impls =
          {
              {"rouse::condition_variable", broadcast16<rouse_pair>},
              {"std::condition_variable", broadcast16<std_pair>},
              {"std::condition_variable_any", broadcast16<std_any_pair>},
#if defined(ROUSE_BENCH_HAVE_ABSL)
              {"absl::CondVar", broadcast16<absl_pair>},
#endif
          },
      .description = "16 threads wait for a generation counter; one thread bumps it under the mutex and "
                     "notifies all, then waits until all 16 have acknowledged; 5,000 generations.",
  });
#if !defined(ROUSE_BENCH_HAVE_ABSL)
  rouse::bench::skipped("condvar\\..*", "absl::CondVar", "abseil not installed");
#endif
}
