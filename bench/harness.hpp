// rouse-bench harness: how a workload family registers itself.
//
// A workload (docs/rouse-bench.md and docs/benchmarks.md name them: "mutex.contended4") has one unit and
// several implementations ("rouse::mutex", "std::mutex", ...). The runner
// runs every implementation of a workload interleaved, round after round
// (A B C A B C ...), takes medians, and measures beside each run the
// voluntary context switches (getrusage) and rouse's wait/wake system calls
// (rouse::platform::syscall_counters), divided by the run's `ops`.
//
// A family lives in bench/<family>.cpp and registers from a static object:
//
//   ROUSE_BENCH_REGISTER(mutex_workloads) {
//     rouse::bench::add({
//       .name = "mutex.uncontended", .unit = "ns/op", .baseline = "std::mutex",
//       .impls = {{"rouse::mutex", run_uncontended<rouse::mutex>},
//                 {"std::mutex", run_uncontended<std::mutex>}},
//     });
//   }
//
// where `sample run(const run_context&)` does one timed run and returns its
// value in the workload's unit and how many operations it did. A peer that
// is not installed is simply not registered (guard with __has_include) and
// the runner prints a note (see `skipped`).
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace rouse::bench {

struct run_context {
  bool quick = false;      // --quick: scale the work down (each run < ~0.2 s)
  std::int64_t param = 0;  // the x value, for workloads with `params`
  // Scales a count for --quick (divides by 10 unless the count is small).
  std::int64_t scaled(std::int64_t full) const { return quick ? std::max<std::int64_t>(full / 10, 1) : full; }
};

struct sample {
  double value = 0;                       // this run's result, in the workload's unit
  double ops = 1;                         // operations done: divides csw and syscall counts
  std::map<std::string, double> extra{};  // anything else worth reporting (averaged per round)
};

using run_fn = std::function<sample(const run_context&)>;

struct impl {
  std::string name;  // stable: "rouse::mutex", "std::mutex", "absl::Mutex", "omp", ...
  run_fn run;
};

// One implementation's medians, handed to `summarize`.
struct impl_result {
  std::string impl;
  std::int64_t param = 0;
  double median = 0, min = 0, max = 0;
  int rounds = 0;
  std::map<std::string, double> extra;  // csw_per_op, wait_calls_per_op, wake_calls_per_op, ...
};

struct workload {
  std::string name;      // "family.case"
  std::string unit;      // ns/op, ns/roundtrip, ns/generation, us/generation, ns/job, msgs/s, ops/s
  std::string baseline;  // the impl ratios are taken against (the std peer)
  std::vector<impl> impls;
  std::vector<std::int64_t> params{};  // empty: one point; else one result per param (x axis)
  std::string param_name{};            // e.g. "N" (shown in tables and charts)
  int rounds = 0;                      // 0: the runner's default (7, or 5 with --quick)
  std::string description{};           // one line for the report
  // Called once all rounds are done: may add entries to each impl's `extra`
  // (count.breakeven adds breakeven_n this way).
  std::function<void(std::vector<impl_result>&)> summarize{};
  // Sized for a machine with many cores (8, 16 threads): runs only with
  // --scale, so the default run on 2 vCPUs stays within its time limit.
  bool scale = false;
};

// Registers a workload. Adding a workload name that is already registered
// appends the new implementations to it (so channel.spsc can get its rouse
// flavours from one file and its peers from another).
void add(workload w);
// A peer that could not be built here (not installed): printed in the report.
void skipped(std::string workload_pattern, std::string impl, std::string why);

// True for units where a larger number is better (msgs/s, ops/s).
bool higher_is_better(const std::string& unit);

// --- helpers for writing runs -------------------------------------------

using clock = std::chrono::steady_clock;

inline double ns_between(clock::time_point a, clock::time_point b) {
  return std::chrono::duration<double, std::nano>(b - a).count();
}

// Starts `threads` threads that each call body(index), releases them together
// and returns the wall time in ns from the release until the last finished.
template <class Body>
double run_threads(unsigned threads, Body&& body) {
  std::atomic<unsigned> ready{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> pool;
  pool.reserve(threads);
  for (unsigned i = 0; i < threads; ++i)
    pool.emplace_back([&, i] {
      ready.fetch_add(1, std::memory_order_acq_rel);
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      body(i);
    });
  while (ready.load(std::memory_order_acquire) != threads) std::this_thread::yield();
  auto const start = clock::now();
  go.store(true, std::memory_order_release);
  for (auto& t : pool) t.join();
  return ns_between(start, clock::now());
}

// Keeps the compiler from deleting a computation whose result is unused.
template <class T>
inline void keep(T const& value) {
  asm volatile("" : : "r,m"(value) : "memory");
}

struct registrar {
  explicit registrar(void (*f)()) { f(); }
};

}  // namespace rouse::bench

#define ROUSE_BENCH_REGISTER(name)                                                             \
  static void rouse_bench_register_##name();                                                   \
  static ::rouse::bench::registrar rouse_bench_registrar_##name{&rouse_bench_register_##name}; \
  static void rouse_bench_register_##name()
