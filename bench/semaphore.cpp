// semaphore.pingpong: two binary semaphores pass a turn between 2 threads,
// 100,000 round trips. Unit: ns/roundtrip.
#include <semaphore.h>

#include <semaphore>

#include "harness.hpp"
#include "rouse/semaphore.hpp"

#if defined(ROUSE_BENCH_HAVE_MOODYCAMEL)
// lightweightsemaphore.h needs concurrentqueue.h first; this header includes both.
#include <concurrentqueue/blockingconcurrentqueue.h>
#endif

namespace {

using rouse::bench::run_context;
using rouse::bench::sample;

template <class Semaphore>
sample pingpong(const run_context& c) {
  std::int64_t const rounds = c.scaled(100'000);
  Semaphore ping(0), pong(0);
  double const ns = rouse::bench::run_threads(2, [&](unsigned index) {
    if (index == 0) {
      for (std::int64_t i = 0; i < rounds; ++i) {
        ping.release();
        pong.acquire();
      }
    } else {
      for (std::int64_t i = 0; i < rounds; ++i) {
        ping.acquire();
        pong.release();
      }
    }
  });
  return {ns / static_cast<double>(rounds), static_cast<double>(rounds)};
}

struct posix_semaphore {
  sem_t s;
  explicit posix_semaphore(unsigned initial) { sem_init(&s, 0, initial); }
  ~posix_semaphore() { sem_destroy(&s); }
  void release() { sem_post(&s); }
  void acquire() {
    while (sem_wait(&s) != 0) {
    }
  }
};

#if defined(ROUSE_BENCH_HAVE_MOODYCAMEL)
struct moodycamel_semaphore {
  moodycamel::LightweightSemaphore s;  // its default spin (10,000) before sleeping
  explicit moodycamel_semaphore(int initial) : s(initial) {}
  void release() { s.signal(); }
  void acquire() { s.wait(); }
};
#endif

}  // namespace

ROUSE_BENCH_REGISTER(semaphore_workloads) {
  std::vector<rouse::bench::impl> impls{
      {"rouse::binary_semaphore", pingpong<rouse::binary_semaphore>},
      {"std::binary_semaphore", pingpong<std::binary_semaphore>},
      {"std::counting_semaphore", pingpong<std::counting_semaphore<>>},
      {"sem_t", pingpong<posix_semaphore>},
  };
#if defined(ROUSE_BENCH_HAVE_MOODYCAMEL)
  impls.push_back({"moodycamel::LightweightSemaphore", pingpong<moodycamel_semaphore>});
#else
  rouse::bench::skipped("semaphore\\..*", "moodycamel::LightweightSemaphore", "moodycamel not installed");
#endif
  rouse::bench::add({
      .name = "semaphore.pingpong",
      .unit = "ns/roundtrip",
      .baseline = "std::binary_semaphore",
      .impls = std::move(impls),
      .description = "two binary semaphores pass a turn between 2 threads",
  });
}
