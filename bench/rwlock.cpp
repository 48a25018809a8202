// rwlock.* workloads: rouse::shared_mutex against std::shared_mutex
// (libstdc++: pthread_rwlock_t), std::shared_timed_mutex and absl::Mutex
// (ReaderLock / Lock).
//
//   rwlock.read95   4 threads x 500,000 ops: 95% shared lock + read a 64-byte
//                   struct, 5% exclusive lock + update                     ns/op
//
// ns/op is the wall time of the run divided by all threads' operations.
// Readers check the struct is consistent (all fields equal), so a broken
// lock would be noticed (the run aborts).
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <shared_mutex>

#include "harness.hpp"
#include "rouse/shared_mutex.hpp"

#if defined(ROUSE_BENCH_HAVE_ABSL)
#include "absl/synchronization/mutex.h"
#endif

namespace {

using rouse::bench::run_context;
using rouse::bench::sample;

struct alignas(64) payload {
  std::uint64_t fields[8] = {};
};
static_assert(sizeof(payload) == 64);

template <class M>
struct std_style {
  using mutex = M;
  static void lock(M& m) { m.lock(); }
  static void unlock(M& m) { m.unlock(); }
  static void lock_shared(M& m) { m.lock_shared(); }
  static void unlock_shared(M& m) { m.unlock_shared(); }
};

#if defined(ROUSE_BENCH_HAVE_ABSL)
struct absl_style {
  using mutex = absl::Mutex;
  static void lock(absl::Mutex& m) { m.Lock(); }
  static void unlock(absl::Mutex& m) { m.Unlock(); }
  static void lock_shared(absl::Mutex& m) { m.ReaderLock(); }
  static void unlock_shared(absl::Mutex& m) { m.ReaderUnlock(); }
};
#endif

template <class L>
sample read95(const run_context& ctx) {
  constexpr unsigned threads = 4;
  std::int64_t const per_thread = ctx.scaled(500'000);
  typename L::mutex m;
  payload data;
  double const ns = rouse::bench::run_threads(threads, [&](unsigned me) {
    std::uint64_t rng = 0x9e3779b97f4a7c15ull * (me + 1);
    std::uint64_t sum = 0;
    for (std::int64_t i = 0; i < per_thread; ++i) {
      rng = rng * 6364136223846793005ull + 1442695040888963407ull;
      if ((rng >> 33) % 100 < 5) {
        L::lock(m);
        for (auto& f : data.fields) ++f;
        L::unlock(m);
      } else {
        L::lock_shared(m);
        payload const copy = data;
        L::unlock_shared(m);
        if (copy.fields[0] != copy.fields[7]) std::abort();  // torn read: the lock is broken
        sum += copy.fields[3];
      }
    }
    rouse::bench::keep(sum);
  });
  double const ops = static_cast<double>(threads) * static_cast<double>(per_thread);
  return {ns / ops, ops};
}

}  // namespace

ROUSE_BENCH_REGISTER(rwlock_workloads) {
  rouse::bench::add({
      .name = "rwlock.read95",
      .unit = "ns/op",
      .baseline = "std::shared_mutex",
      .impls =
          {
              {"rouse::shared_mutex", read95<std_style<rouse::shared_mutex>>},
              {"std::shared_mutex", read95<std_style<std::shared_mutex>>},
              {"std::shared_timed_mutex", read95<std_style<std::shared_timed_mutex>>},
#if defined(ROUSE_BENCH_HAVE_ABSL)
              {"absl::Mutex", read95<absl_style>},
#endif
          },
      .description = "4 threads x 500,000 ops: 95% shared lock + read a 64-byte struct, "
                     "5% exclusive lock + update; wall time / all ops.",
  });
#if !defined(ROUSE_BENCH_HAVE_ABSL)
  rouse::bench::skipped("rwlock\\..*", "absl::Mutex", "abseil not installed");
#endif
  rouse::bench::skipped("rwlock\\..*|condvar\\..*", "boost::shared_mutex / boost::condition_variable",
                        "need the compiled Boost.Thread library; rouse-bench links Boost headers only");
}
