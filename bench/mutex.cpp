// mutex.* workloads (docs/benchmarks.md): lock; ++shared counter; unlock.
//
//   mutex.uncontended   1 thread, 5,000,000 ops                  ns/op
//   mutex.contended2    2 threads x 2,000,000 ops                ns/op (total time / total ops)
//   mutex.contended4    4 threads x 1,000,000 ops                ns/op
//   mutex.oversub32     32 threads x 50,000 ops                  ns/op
//   --scale: mutex.contended8 / 16 / 32, 8 x 500,000, 16 x 250,000,
//   32 x 125,000 ops                                             ns/op
//
// Implementations: rouse::mutex, std::mutex (baseline), absl::Mutex,
// tbb::spin_mutex, tbb::queuing_mutex, rouse::spin_lock.
//
// Spin locks on an oversubscribed machine can take minutes for one run (a
// waiter spins through a preempted holder's whole time slice; a FIFO queue
// lock hands the lock to threads that are not running). So that a full run
// stays within the benchmark plan's 10 minutes, a contended run stops its threads
// after `run_cap` of wall time and reports time / operations actually done;
// such a run carries extra "capped" = 1 (the fraction of rounds capped,
// after the runner's median). No implementation below rouse::mutex's class
// gets near the cap.
//
// Extras: csw_per_op (voluntary context switches, the runner), and for
// rouse's types wait/wake system calls per op (the runner).
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

#include "harness.hpp"
#include "rouse/mutex.hpp"
#include "rouse/platform/wait.hpp"
#include "rouse/spin_lock.hpp"

#if defined(ROUSE_BENCH_HAVE_ABSL)
#include <absl/synchronization/mutex.h>
#endif
#if defined(ROUSE_BENCH_HAVE_TBB)
#include <oneapi/tbb/queuing_mutex.h>
#include <oneapi/tbb/spin_mutex.h>
#endif

namespace {

using rouse::bench::clock;
using rouse::bench::ns_between;
using rouse::bench::run_context;
using rouse::bench::sample;

// Each implementation as "run f while holding the lock".
template <class Mutex>
struct lockable {
  Mutex m;
  template <class F>
  void locked(F&& f) {
    m.lock();
    f();
    m.unlock();
  }
};

#if defined(ROUSE_BENCH_HAVE_ABSL)
struct absl_lock {
  absl::Mutex m;
  template <class F>
  void locked(F&& f) {
    m.Lock();
    f();
    m.Unlock();
  }
};
#endif

#if defined(ROUSE_BENCH_HAVE_TBB)
template <class Mutex>
struct tbb_lock {
  Mutex m;
  template <class F>
  void locked(F&& f) {
    typename Mutex::scoped_lock hold(m);  // queuing_mutex's queue node lives here
    f();
  }
};
#endif

// The lock and the data it guards share a line, as they usually do.
template <class Lock>
struct alignas(64) protected_counter {
  Lock lock;
  std::int64_t value = 0;
};

sample uncontended_impl(const run_context& ctx, auto& pc) {
  std::int64_t const n = ctx.scaled(5'000'000);
  auto const start = clock::now();
  for (std::int64_t i = 0; i < n; ++i) pc.lock.locked([&] { ++pc.value; });
  auto const stop = clock::now();
  rouse::bench::keep(pc.value);
  return {ns_between(start, stop) / static_cast<double>(n), static_cast<double>(n)};
}

// glibc elides the atomic instructions of pthread_mutex_lock/unlock while
// the process has never had a second thread (__libc_single_threaded). A
// program that needs a mutex has threads, so the uncontended workload makes
// sure one has existed before it measures, whatever ran before it (with
// --filter '^mutex.uncontended$' nothing else would have).
void ensure_process_is_multithreaded() {
  static bool const done = [] {
    std::thread([] {}).join();
    return true;
  }();
  (void)done;
}

template <class Lock>
sample uncontended(const run_context& ctx) {
  ensure_process_is_multithreaded();
  auto pc = std::make_unique<protected_counter<Lock>>();
  return uncontended_impl(ctx, *pc);
}

template <class Lock>
sample contended(const run_context& ctx, unsigned threads, std::int64_t per_thread_full) {
  std::int64_t const per_thread = ctx.scaled(per_thread_full);
  auto const run_cap = ctx.quick ? std::chrono::milliseconds(1500) : std::chrono::milliseconds(8000);
  auto pc = std::make_unique<protected_counter<Lock>>();
  std::atomic<bool> stop{false};
  std::vector<std::int64_t> done(threads, 0);
  clock::time_point const cap_at = clock::now() + run_cap;  // threads start within microseconds of this
  double const ns = rouse::bench::run_threads(threads, [&](unsigned index) {
    std::int64_t i = 0;
    while (i < per_thread) {
      // Check the cap every 256 operations: one relaxed load, off the lock.
      std::int64_t const chunk_end = std::min(per_thread, i + 256);
      for (; i < chunk_end; ++i) pc->lock.locked([&] { ++pc->value; });
      if (stop.load(std::memory_order_relaxed)) break;
      if (clock::now() > cap_at) {
        stop.store(true, std::memory_order_relaxed);
        break;
      }
    }
    done[index] = i;
  });
  std::int64_t total = 0;
  for (std::int64_t d : done) total += d;
  if (pc->value != total) std::abort();  // mutual exclusion broken: never report a number
  sample s{ns / static_cast<double>(total), static_cast<double>(total)};
  s.extra["capped"] = stop.load() ? 1.0 : 0.0;
  // rouse's spinning is sized from this (rouse/platform/wait.hpp, wake_cost).
  if constexpr (std::is_same_v<Lock, lockable<rouse::mutex>>)
    s.extra["wake_cost_us"] = static_cast<double>(rouse::platform::wake_cost().count()) / 1000.0;
  return s;
}

template <class Lock>
void add_impl(std::vector<rouse::bench::impl> (&impls)[7], const char* name) {
  impls[0].push_back({name, [](const run_context& c) { return uncontended<Lock>(c); }});
  impls[1].push_back({name, [](const run_context& c) { return contended<Lock>(c, 2, 2'000'000); }});
  impls[2].push_back({name, [](const run_context& c) { return contended<Lock>(c, 4, 1'000'000); }});
  impls[3].push_back({name, [](const run_context& c) { return contended<Lock>(c, 32, 50'000); }});
  impls[4].push_back({name, [](const run_context& c) { return contended<Lock>(c, 8, 500'000); }});
  impls[5].push_back({name, [](const run_context& c) { return contended<Lock>(c, 16, 250'000); }});
  impls[6].push_back({name, [](const run_context& c) { return contended<Lock>(c, 32, 125'000); }});
}

}  // namespace

ROUSE_BENCH_REGISTER(mutex_workloads) {
  std::vector<rouse::bench::impl> impls[7];
  add_impl<lockable<rouse::mutex>>(impls, "rouse::mutex");
  add_impl<lockable<std::mutex>>(impls, "std::mutex");
#if defined(ROUSE_BENCH_HAVE_ABSL)
  add_impl<absl_lock>(impls, "absl::Mutex");
#else
  rouse::bench::skipped("mutex\\..*", "absl::Mutex", "abseil not installed");
#endif
#if defined(ROUSE_BENCH_HAVE_TBB)
  add_impl<tbb_lock<oneapi::tbb::spin_mutex>>(impls, "tbb::spin_mutex");
  add_impl<tbb_lock<oneapi::tbb::queuing_mutex>>(impls, "tbb::queuing_mutex");
#else
  rouse::bench::skipped("mutex\\..*", "tbb::spin_mutex", "oneTBB not installed");
  rouse::bench::skipped("mutex\\..*", "tbb::queuing_mutex", "oneTBB not installed");
#endif
  add_impl<lockable<rouse::spin_lock>>(impls, "rouse::spin_lock");

  const char* names[7] = {"mutex.uncontended", "mutex.contended2",  "mutex.contended4", "mutex.oversub32",
                          "mutex.contended8",  "mutex.contended16", "mutex.contended32"};
  const char* descriptions[7] = {
      "1 thread, 5,000,000 x (lock; ++counter; unlock)",
      "2 threads x 2,000,000 x (lock; ++shared; unlock); total time / total ops",
      "4 threads x 1,000,000, same",
      "32 threads x 50,000, same (threads outnumber cores)",
      "8 threads x 500,000, same (--scale)",
      "16 threads x 250,000, same (--scale)",
      "32 threads x 125,000, same (--scale)",
  };
  for (int w = 0; w < 7; ++w) {
    rouse::bench::add({
        .name = names[w],
        .unit = "ns/op",
        .baseline = "std::mutex",
        .impls = std::move(impls[w]),
        .description = descriptions[w],
        .scale = w >= 4,
    });
  }
}
