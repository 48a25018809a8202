// parallel_count: the experiment of the futex pool chapter of "Code that
// counts", with rouse::pool.
//
// A job counts to N in a register (an empty asm statement per step keeps
// the compiler from turning the loop into a closed form or vectorizing it).
// For N = 2^10 ... 2^24 this prints the time per job counted sequentially
// and split over a rouse::pool of every CPU the process may use, the
// speed-up, and the smallest N from which the pool is faster at every
// larger N (the "break-even").
//
//   example_parallel_count [threads] [spin_us]
//
// The book's result on an 8-core Zen 2: 2 threads beat sequential from
// 128K iterations with a futex pool (256K with a std Barrier pool, 4M with
// rayon). bench/count.cpp measures the same job against OpenMP, oneTBB and
// pools on std::condition_variable and std::barrier (rouse-bench --filter count).
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <vector>

#include "rouse/pool/pool.hpp"

namespace {

using clock_type = std::chrono::steady_clock;

[[gnu::noinline]] std::uint64_t count(std::uint64_t n) {
  std::uint64_t x = 0;
  for (std::uint64_t i = 0; i < n; ++i) {
    x += 1;
    asm volatile("" : "+r"(x));
  }
  return x;
}

// Mean ns per job over at least 20 ms of back-to-back jobs (after 2 warm ones).
template <class Job>
double ns_per_job(std::uint64_t n, Job&& job) {
  std::uint64_t sink = job(n) + job(n);
  auto const start = clock_type::now();
  auto now = start;
  std::uint64_t jobs = 0;
  do {
    sink += job(n);
    ++jobs;
    now = clock_type::now();
  } while (now - start < std::chrono::milliseconds(20));
  if (sink != (jobs + 2) * n) std::abort();
  return std::chrono::duration<double, std::nano>(now - start).count() / static_cast<double>(jobs);
}

}  // namespace

int main(int argc, char** argv) {
  rouse::pool_options options;
  if (argc > 1) options.threads = static_cast<unsigned>(std::atoi(argv[1]));
  if (argc > 2) options.spin = std::chrono::microseconds(std::atoi(argv[2]));
  rouse::pool pool(options);

  auto parallel = [&](std::uint64_t n) {
    return pool.parallel_reduce(
        std::uint64_t{0}, n, std::uint64_t{0}, [](rouse::index_range<std::uint64_t> r) { return count(r.size()); },
        std::plus<>{});
  };

  std::printf("rouse::pool of %u threads, spin budget %lld us\n", pool.size(),
              static_cast<long long>(std::chrono::duration_cast<std::chrono::microseconds>(pool.spin()).count()));
  std::printf("%10s %16s %16s %9s\n", "N", "sequential ns", "pool ns", "speed-up");
  struct point {
    std::uint64_t n;
    double speedup;
  };
  std::vector<point> points;
  for (int k = 10; k <= 24; ++k) {
    std::uint64_t const n = std::uint64_t{1} << k;
    double const seq = ns_per_job(n, count);
    double const par = ns_per_job(n, parallel);
    points.push_back({n, seq / par});
    std::printf("  2^%-6d %16.0f %16.0f %8.2fx\n", k, seq, par, seq / par);
  }
  std::uint64_t breakeven = 0;
  for (auto it = points.rbegin(); it != points.rend() && it->speedup > 1.0; ++it) breakeven = it->n;
  if (breakeven != 0)
    std::printf("break-even: the pool beats sequential from N = %llu on\n", static_cast<unsigned long long>(breakeven));
  else
    std::printf("break-even: not reached up to 2^24\n");
}
