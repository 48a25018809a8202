// barrier.cycle2 / barrier.cycle4: 2 / 4 threads pass 50,000 barrier phases
// (barrier.cycle8 / barrier.cycle16 with --scale).
// Unit: ns/generation (wall time / phases).
#include <pthread.h>

#include <barrier>
#include <memory>
#include <vector>

#include "harness.hpp"
#include "rouse/barrier.hpp"

#if defined(ROUSE_BENCH_HAVE_ABSL)
#include <absl/synchronization/barrier.h>
#endif

namespace {

using rouse::bench::run_context;
using rouse::bench::sample;

constexpr std::int64_t phases_full = 50'000;

template <class Barrier>
sample cycle(const run_context& c, unsigned threads) {
  std::int64_t const phases = c.scaled(phases_full);
  Barrier b(threads);
  double const ns = rouse::bench::run_threads(threads, [&](unsigned) {
    for (std::int64_t p = 0; p < phases; ++p) b.arrive_and_wait();
  });
  return {ns / static_cast<double>(phases), static_cast<double>(phases)};
}

struct pthread_barrier {
  pthread_barrier_t b;
  explicit pthread_barrier(unsigned n) { pthread_barrier_init(&b, nullptr, n); }
  ~pthread_barrier() { pthread_barrier_destroy(&b); }
  void arrive_and_wait() { pthread_barrier_wait(&b); }
};

#if defined(ROUSE_BENCH_HAVE_ABSL)
// absl::Barrier is single-use: one per phase, made before the clock starts;
// the thread Block() returns true to deletes it (absl's documented use).
sample absl_cycle(const run_context& c, unsigned threads) {
  std::int64_t const phases = c.scaled(phases_full);
  std::vector<absl::Barrier*> bs(static_cast<std::size_t>(phases));
  for (auto& b : bs) b = new absl::Barrier(static_cast<int>(threads));
  double const ns = rouse::bench::run_threads(threads, [&](unsigned) {
    for (std::int64_t p = 0; p < phases; ++p)
      if (bs[static_cast<std::size_t>(p)]->Block()) delete bs[static_cast<std::size_t>(p)];
  });
  return {ns / static_cast<double>(phases), static_cast<double>(phases)};
}
#endif

void add_cycle(const char* name, unsigned threads, bool scale = false) {
  std::vector<rouse::bench::impl> impls{
      {"rouse::barrier", [threads](const run_context& c) { return cycle<rouse::barrier<>>(c, threads); }},
      {"std::barrier", [threads](const run_context& c) { return cycle<std::barrier<>>(c, threads); }},
      {"pthread_barrier_t", [threads](const run_context& c) { return cycle<pthread_barrier>(c, threads); }},
  };
#if defined(ROUSE_BENCH_HAVE_ABSL)
  impls.push_back({"absl::Barrier", [threads](const run_context& c) { return absl_cycle(c, threads); }});
#endif
  rouse::bench::add({
      .name = name,
      .unit = "ns/generation",
      .baseline = "std::barrier",
      .impls = std::move(impls),
      .description = "threads pass barrier phases back to back (arrive_and_wait)",
      .scale = scale,
  });
}

}  // namespace

ROUSE_BENCH_REGISTER(barrier_workloads) {
  add_cycle("barrier.cycle2", 2);
  add_cycle("barrier.cycle4", 4);
  add_cycle("barrier.cycle8", 8, true);
  add_cycle("barrier.cycle16", 16, true);
#if !defined(ROUSE_BENCH_HAVE_ABSL)
  rouse::bench::skipped("barrier\\..*", "absl::Barrier", "abseil not installed");
#endif
}
