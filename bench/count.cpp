// count.breakeven: "parallel counting" (the futex pool chapter of "Code that
// counts"). A job adds 1 to a 64-bit counter N times, with an optimization
// barrier that keeps the counter in a register and stops the compiler from
// turning the loop into a closed form or vectorizing it. Sequential counting
// is compared with the same N split over a running pool of every CPU the
// process may use, for N = 2^10 ... 2^24: time per job, and the smallest N
// from which each pool beats sequential at every larger N (extra
// "breakeven_n"; 0 when it never does in the tested range).
//
// Implementations: sequential, rouse::pool (parallel_reduce), rouse::pool
// with a static split (run(), participant i counts the i-th of N shares: the
// split parallel_reduce used for every range before large ranges were cut
// into pieces, kept so that each run shows what the pieces change), omp (libgomp
// `parallel for reduction`), tbb::parallel_reduce (in a persistent
// task_arena), and two pools written here the way people write them: one on
// std::condition_variable (a generation counter and a remaining count under
// one mutex) and one on std::barrier (a start and a done barrier). Every
// pool keeps its threads between jobs: only dispatch and completion are
// measured, as in the book.
//
// --scale adds count.breakeven8 and count.breakeven16: the same with every
// pool sized to 8 and 16 participants, and count.imbalance: a parallel_for
// over 4,096 indices where index i counts to 16 x (1 + 99 i / 4095) (its
// cost rises 100x across the range, a triangular loop), against oneTBB's
// parallel_for and OpenMP's static and dynamic schedules.
//
// One sample: a 40 ms pause so that the previous implementation's threads
// stop spinning (libgomp and oneTBB spin for milliseconds after a job), two
// untimed jobs, then jobs back to back until 10 ms (1 ms with --quick) have
// passed; the value is the mean time per job.
#include <algorithm>
#include <barrier>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "harness.hpp"
#include "rouse/platform/cpu.hpp"
#include "rouse/pool/pool.hpp"

#if defined(ROUSE_BENCH_HAVE_OPENMP)
#include <omp.h>
#endif
#if defined(ROUSE_BENCH_HAVE_TBB)
#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/parallel_reduce.h>
#include <tbb/task_arena.h>
#endif

namespace rouse::bench {

// The job: n increments of a register the compiler may not reason about.
// (Also the probe of each CPU's speed in the report header: cpu_speed.cpp.)
[[gnu::noinline]] std::uint64_t count_steps(std::uint64_t n) {
  std::uint64_t x = 0;
  for (std::uint64_t i = 0; i < n; ++i) {
    x += 1;
    asm volatile("" : "+r"(x));  // the optimization barrier
  }
  return x;
}

}  // namespace rouse::bench

namespace {

using namespace rouse::bench;
using u64 = std::uint64_t;

constexpr auto count = &count_steps;

unsigned cpus() { return rouse::platform::available_cpus(); }
// Participants of a pool of `Threads` (0: every CPU the process may use).
template <unsigned Threads>
unsigned participants() {
  return Threads == 0 ? cpus() : Threads;
}

// Runs job(n) back to back for at least `target`, returns ns per job.
template <class Job>
sample timed(const run_context& ctx, Job&& job) {
  u64 const n = static_cast<u64>(ctx.param);
  // libgomp's idle threads spin GOMP_SPINCOUNT (300,000) pauses, ~30 ms at
  // the ~100 ns a pause takes on the VMs measured here; 40 ms covers it.
  std::this_thread::sleep_for(std::chrono::milliseconds(ctx.quick ? 2 : 40));
  u64 sink = job(n) + job(n);  // warm: wakes the pool's threads, faults in stacks
  auto const target = std::chrono::milliseconds(ctx.quick ? 1 : 10);
  auto const start = clock::now();
  auto now = start;
  u64 jobs = 0;
  do {
    for (int k = 0; k < 4; ++k) {
      u64 const got = job(n);
      if (got != n) std::abort();  // a pool that lost or repeated work
      sink += got;
      ++jobs;
    }
    now = clock::now();
  } while (now - start < target);
  keep(sink);
  return {ns_between(start, now) / static_cast<double>(jobs), static_cast<double>(jobs), {}};
}

// --- rouse::pool ----------------------------------------------------------

template <unsigned Threads>
u64 rouse_count(u64 n) {
  static rouse::pool pool(rouse::pool_options{.threads = Threads});  // default spin budget
  return pool.parallel_reduce(
      u64{0}, n, u64{0}, [](rouse::index_range<u64> r) { return count(r.size()); }, std::plus<>{});
}

// The same pool with a static split: run() and one share per participant
// (up to 64), each written to its own cache line, as parallel_reduce does
// below its pieces' threshold. A pool of its own, so that the two
// implementations' adaptive spin budgets do not shape each other.
template <unsigned Threads>
u64 rouse_static_count(u64 n) {
  static rouse::pool pool(rouse::pool_options{.threads = Threads});
  struct alignas(64) share {
    u64 value;
  };
  constexpr unsigned inline_shares = 64;
  share shares[inline_shares];
  unsigned const parts = std::min(pool.size(), inline_shares);
  pool.run([n, &shares, parts](unsigned index, unsigned) {
    if (index >= parts) return;
    rouse::detail::pool_piece const piece = rouse::detail::static_piece(n, index, parts);
    shares[index].value = count(piece.end - piece.begin);
  });
  u64 total = 0;
  for (unsigned i = 0; i < parts; ++i) total += shares[i].value;
  return total;
}

// --- a pool on std::condition_variable --------------------------------------

class condvar_pool {
 public:
  explicit condvar_pool(unsigned participants) : partial_(participants) {
    for (unsigned i = 1; i < participants; ++i) threads_.emplace_back([this, i] { work(i); });
  }
  ~condvar_pool() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
      ++generation_;
    }
    start_.notify_all();
    for (auto& t : threads_) t.join();
  }
  u64 operator()(u64 n) {
    unsigned const parts = static_cast<unsigned>(partial_.size());
    {
      std::lock_guard lock(mutex_);
      n_ = n;
      remaining_ = parts - 1;
      ++generation_;
    }
    start_.notify_all();
    u64 total = count(piece(n, 0, parts));
    std::unique_lock lock(mutex_);
    done_.wait(lock, [&] { return remaining_ == 0; });
    for (unsigned i = 1; i < parts; ++i) total += partial_[i].value;
    return total;
  }

 private:
  static u64 piece(u64 n, unsigned i, unsigned parts) { return n / parts + (i < n % parts ? 1 : 0); }
  void work(unsigned i) {
    u64 seen = 0;
    for (;;) {
      u64 n;
      {
        std::unique_lock lock(mutex_);
        start_.wait(lock, [&] { return generation_ != seen; });
        seen = generation_;
        if (stop_) return;
        n = n_;
      }
      partial_[i].value = count(piece(n, i, static_cast<unsigned>(partial_.size())));
      std::lock_guard lock(mutex_);
      if (--remaining_ == 0) done_.notify_one();
    }
  }
  struct alignas(128) slot {
    u64 value = 0;
  };
  std::mutex mutex_;
  std::condition_variable start_, done_;
  u64 generation_ = 0, n_ = 0;
  unsigned remaining_ = 0;
  bool stop_ = false;
  std::vector<slot> partial_;
  std::vector<std::thread> threads_;
};

// --- a pool on std::barrier -------------------------------------------------

class barrier_pool {
 public:
  explicit barrier_pool(unsigned participants)
      : parts_(participants), start_(participants), done_(participants), partial_(participants) {
    for (unsigned i = 1; i < participants; ++i) threads_.emplace_back([this, i] { work(i); });
  }
  ~barrier_pool() {
    stop_ = true;
    start_.arrive_and_wait();
    for (auto& t : threads_) t.join();
  }
  u64 operator()(u64 n) {
    n_ = n;
    start_.arrive_and_wait();
    u64 total = count(n / parts_ + (0 < n % parts_ ? 1 : 0));
    done_.arrive_and_wait();
    for (unsigned i = 1; i < parts_; ++i) total += partial_[i].value;
    return total;
  }

 private:
  void work(unsigned i) {
    for (;;) {
      start_.arrive_and_wait();  // the barrier orders n_ and stop_ for us
      if (stop_) return;
      partial_[i].value = count(n_ / parts_ + (i < n_ % parts_ ? 1 : 0));
      done_.arrive_and_wait();
    }
  }
  struct alignas(128) slot {
    u64 value = 0;
  };
  unsigned const parts_;
  std::barrier<> start_, done_;
  u64 n_ = 0;
  bool stop_ = false;
  std::vector<slot> partial_;
  std::vector<std::thread> threads_;
};

// --- peers --------------------------------------------------------------------

#if defined(ROUSE_BENCH_HAVE_OPENMP)
template <unsigned Threads>
u64 omp_count(u64 n) {
  u64 x = 0;
#pragma omp parallel for reduction(+ : x) schedule(static) num_threads(participants<Threads>())
  for (u64 i = 0; i < n; ++i) {
    x += 1;
    asm volatile("" : "+r"(x));
  }
  return x;
}
#endif

#if defined(ROUSE_BENCH_HAVE_TBB)
template <unsigned Threads>
u64 tbb_count(u64 n) {
  static tbb::task_arena arena(static_cast<int>(participants<Threads>()));
  return arena.execute([n] {
    return tbb::parallel_reduce(
        tbb::blocked_range<u64>(0, n), u64{0},
        [](const tbb::blocked_range<u64>& r, u64 acc) { return acc + count(r.size()); }, std::plus<>{});
  });
}
#endif

// breakeven_n: the smallest N from which an implementation is faster than
// sequential at that N and at every larger one; 0 if not even at the largest.
void add_breakeven(std::vector<impl_result>& results) {
  std::map<std::int64_t, double> sequential;
  for (const impl_result& r : results)
    if (r.impl == "sequential") sequential[r.param] = r.median;
  std::map<std::string, std::map<std::int64_t, double>> by_impl;
  for (const impl_result& r : results) by_impl[r.impl][r.param] = r.median;
  std::map<std::string, std::int64_t> breakeven;
  for (auto& [name, points] : by_impl) {
    if (name == "sequential") continue;
    std::int64_t from = 0;
    for (auto it = points.rbegin(); it != points.rend(); ++it) {
      auto const s = sequential.find(it->first);
      if (s == sequential.end() || !(it->second < s->second)) break;
      from = it->first;
    }
    breakeven[name] = from;
  }
  for (impl_result& r : results) {
    auto const b = breakeven.find(r.impl);
    if (b != breakeven.end()) r.extra["breakeven_n"] = static_cast<double>(b->second);
  }
}

// --- count.imbalance --------------------------------------------------------

constexpr u64 imbalance_indices = 4096;
constexpr u64 imbalance_base = 16;  // steps of the cheapest index
// Index i's steps: 16 x (1 + 99 i / 4095), from 16 to 1,600.
u64 imbalance_steps(u64 i) { return imbalance_base * (1 + 99 * i / (imbalance_indices - 1)); }
u64 imbalance_total() {
  u64 t = 0;
  for (u64 i = 0; i < imbalance_indices; ++i) t += imbalance_steps(i);
  return t;
}

// A job: every index counted once, each result written to its own slot; the
// sum of the slots is checked against the sequential total.
struct alignas(64) imbalance_slot {
  u64 value;
};
template <class Run>
sample imbalance_job(const run_context& ctx, Run&& run) {
  static std::vector<imbalance_slot> out(imbalance_indices);
  static u64 const expected = imbalance_total();
  run_context c = ctx;
  c.param = 0;
  return timed(c, [&](u64) {
    run(out);
    u64 sum = 0;
    for (const imbalance_slot& s : out) sum += s.value;
    if (sum != expected) std::abort();  // an index lost or counted twice
    return u64{0};
  });
}

template <unsigned Threads>
void add_imbalance_impls(std::vector<impl>& impls) {
  using slots = std::vector<imbalance_slot>;
  impls.push_back({"sequential", [](const run_context& c) {
                     return imbalance_job(c, [](slots& out) {
                       for (u64 i = 0; i < imbalance_indices; ++i) out[i].value = count(imbalance_steps(i));
                     });
                   }});
  impls.push_back({"rouse::pool parallel_for", [](const run_context& c) {
                     static rouse::pool pool(rouse::pool_options{.threads = Threads});
                     return imbalance_job(c, [](slots& out) {
                       pool.parallel_for(u64{0}, imbalance_indices,
                                         [&out](u64 i) { out[i].value = count(imbalance_steps(i)); });
                     });
                   }});
  impls.push_back({"rouse::pool parallel_for, grain 16", [](const run_context& c) {
                     static rouse::pool pool(rouse::pool_options{.threads = Threads});
                     return imbalance_job(c, [](slots& out) {
                       pool.parallel_for(u64{0}, imbalance_indices, u64{16},
                                         [&out](u64 i) { out[i].value = count(imbalance_steps(i)); });
                     });
                   }});
#if defined(ROUSE_BENCH_HAVE_OPENMP)
  impls.push_back({"omp schedule(static)", [](const run_context& c) {
                     return imbalance_job(c, [](slots& out) {
#pragma omp parallel for schedule(static) num_threads(participants<Threads>())
                       for (u64 i = 0; i < imbalance_indices; ++i) out[i].value = count(imbalance_steps(i));
                     });
                   }});
  impls.push_back({"omp schedule(dynamic, 16)", [](const run_context& c) {
                     return imbalance_job(c, [](slots& out) {
#pragma omp parallel for schedule(dynamic, 16) num_threads(participants<Threads>())
                       for (u64 i = 0; i < imbalance_indices; ++i) out[i].value = count(imbalance_steps(i));
                     });
                   }});
#endif
#if defined(ROUSE_BENCH_HAVE_TBB)
  impls.push_back({"tbb::parallel_for", [](const run_context& c) {
                     static tbb::task_arena arena(static_cast<int>(participants<Threads>()));
                     return imbalance_job(c, [](slots& out) {
                       arena.execute([&out] {
                         tbb::parallel_for(tbb::blocked_range<u64>(0, imbalance_indices),
                                           [&out](const tbb::blocked_range<u64>& r) {
                                             for (u64 i = r.begin(); i != r.end(); ++i)
                                               out[i].value = count(imbalance_steps(i));
                                           });
                       });
                     });
                   }});
#endif
}

template <unsigned Threads>
std::vector<impl> breakeven_impls() {
  std::vector<impl> impls;
  impls.push_back({"sequential", [](const run_context& c) { return timed(c, count); }});
  impls.push_back({"rouse::pool", [](const run_context& c) { return timed(c, rouse_count<Threads>); }});
  impls.push_back(
      {"rouse::pool, static split", [](const run_context& c) { return timed(c, rouse_static_count<Threads>); }});
#if defined(ROUSE_BENCH_HAVE_OPENMP)
  impls.push_back({"omp", [](const run_context& c) { return timed(c, omp_count<Threads>); }});
#endif
#if defined(ROUSE_BENCH_HAVE_TBB)
  impls.push_back({"tbb::parallel_reduce", [](const run_context& c) { return timed(c, tbb_count<Threads>); }});
#endif
  impls.push_back({"std::condition_variable pool", [](const run_context& c) {
                     static condvar_pool pool(participants<Threads>());
                     return timed(c, [](u64 n) { return pool(n); });
                   }});
  impls.push_back({"std::barrier pool", [](const run_context& c) {
                     static barrier_pool pool(participants<Threads>());
                     return timed(c, [](u64 n) { return pool(n); });
                   }});
  return impls;
}

}  // namespace

ROUSE_BENCH_REGISTER(count_workloads) {
  std::vector<std::int64_t> params;
  for (int k = 10; k <= 24; ++k) params.push_back(std::int64_t{1} << k);
#if !defined(ROUSE_BENCH_HAVE_OPENMP)
  skipped("count\\..*", "omp", "OpenMP not found at build time");
#endif
#if !defined(ROUSE_BENCH_HAVE_TBB)
  skipped("count\\..*", "tbb", "oneTBB not found at build time");
#endif
  auto const breakeven = [&params](std::string name, std::vector<impl> impls, std::string description,
                                   bool scale) {
    rouse::bench::add({
        .name = std::move(name),
        .unit = "ns/job",
        .baseline = "sequential",
        .impls = std::move(impls),
        .params = params,
        .param_name = "N",
        .description = std::move(description),
        .summarize = add_breakeven,
        .scale = scale,
    });
  };
  breakeven("count.breakeven", breakeven_impls<0>(),
            "a job counts to N in a register (optimization barrier per step), split over all CPUs; "
            "breakeven_n = smallest N from which the pool beats sequential at every larger N",
            false);
  breakeven("count.breakeven8", breakeven_impls<8>(),
            "count.breakeven with every pool of 8 participants (--scale)", true);
  breakeven("count.breakeven16", breakeven_impls<16>(),
            "count.breakeven with every pool of 16 participants (--scale)", true);
  std::vector<impl> imbalance;
  add_imbalance_impls<0>(imbalance);
  rouse::bench::add({
      .name = "count.imbalance",
      .unit = "ns/job",
      .baseline = "sequential",
      .impls = std::move(imbalance),
      .description = "parallel_for over 4,096 indices, index i counts to 16 x (1 + 99 i / 4095) (cost rising "
                     "100x across the range), all CPUs (--scale)",
      .scale = true,
  });
}
