// latch.countdown16: 16 threads count down and wait on each of 10,000
// latches in turn. Unit: us/generation, one generation being one latch
// (wall time / latches).
#include <latch>
#include <memory>
#include <vector>

#include "harness.hpp"
#include "rouse/latch.hpp"

#if defined(ROUSE_BENCH_HAVE_ABSL)
#include <absl/synchronization/barrier.h>
#include <absl/synchronization/blocking_counter.h>
#endif

namespace {

using rouse::bench::run_context;
using rouse::bench::sample;

constexpr unsigned threads = 16;
constexpr std::int64_t latches_full = 10'000;

template <class Latch>
sample countdown(const run_context& c) {
  std::int64_t const n = c.scaled(latches_full);
  std::vector<std::unique_ptr<Latch>> ls;
  ls.reserve(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) ls.push_back(std::make_unique<Latch>(threads));
  double const ns = rouse::bench::run_threads(threads, [&](unsigned) {
    for (auto& l : ls) l->arrive_and_wait();
  });
  return {ns / 1000.0 / static_cast<double>(n), static_cast<double>(n)};
}

#if defined(ROUSE_BENCH_HAVE_ABSL)
// absl::Barrier: single-use, Block() is count-down-and-wait.
sample absl_barrier_countdown(const run_context& c) {
  std::int64_t const n = c.scaled(latches_full);
  std::vector<absl::Barrier*> bs(static_cast<std::size_t>(n));
  for (auto& b : bs) b = new absl::Barrier(threads);
  double const ns = rouse::bench::run_threads(threads, [&](unsigned) {
    for (auto* b : bs)
      if (b->Block()) delete b;
  });
  return {ns / 1000.0 / static_cast<double>(n), static_cast<double>(n)};
}

// absl::BlockingCounter allows one Wait() per counter: every thread counts
// down, and one thread (a different one for each latch) waits, so only one
// thread in 16 blocks. Not the same work: a lower bound for it.
sample absl_blocking_counter_countdown(const run_context& c) {
  std::int64_t const n = c.scaled(latches_full);
  std::vector<std::unique_ptr<absl::BlockingCounter>> bs;
  bs.reserve(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) bs.push_back(std::make_unique<absl::BlockingCounter>(threads));
  double const ns = rouse::bench::run_threads(threads, [&](unsigned index) {
    for (std::size_t i = 0; i < bs.size(); ++i) {
      bs[i]->DecrementCount();
      if (i % threads == index) bs[i]->Wait();
    }
  });
  return {ns / 1000.0 / static_cast<double>(n), static_cast<double>(n)};
}
#endif

}  // namespace

ROUSE_BENCH_REGISTER(latch_workloads) {
  std::vector<rouse::bench::impl> impls{
      {"rouse::latch", countdown<rouse::latch>},
      {"std::latch", countdown<std::latch>},
  };
#if defined(ROUSE_BENCH_HAVE_ABSL)
  impls.push_back({"absl::Barrier", absl_barrier_countdown});
  impls.push_back({"absl::BlockingCounter", absl_blocking_counter_countdown});
#else
  rouse::bench::skipped("latch\\..*", "absl::Barrier", "abseil not installed");
  rouse::bench::skipped("latch\\..*", "absl::BlockingCounter", "abseil not installed");
#endif
  rouse::bench::add({
      .name = "latch.countdown16",
      .unit = "us/generation",
      .baseline = "std::latch",
      .impls = std::move(impls),
      .rounds = 5,
      .description = "16 threads arrive_and_wait on each of 10,000 latches in turn "
                     "(absl::BlockingCounter: all count down, one waits)",
  });
}
