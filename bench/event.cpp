// event.pingpong: two auto-reset events pass a turn between 2 threads,
// 100,000 round trips. Unit: ns/roundtrip. The std peer is std::atomic_flag
// used as an auto-reset event (test / wait / clear; test_and_set / notify).
#include <atomic>
#include <memory>
#include <vector>

#include "harness.hpp"
#include "rouse/event.hpp"

#if defined(ROUSE_BENCH_HAVE_ABSL)
#include <absl/synchronization/notification.h>
#endif

namespace {

using rouse::bench::run_context;
using rouse::bench::sample;

template <class Event>
sample pingpong(const run_context& c) {
  std::int64_t const rounds = c.scaled(100'000);
  Event ping, pong;
  double const ns = rouse::bench::run_threads(2, [&](unsigned index) {
    if (index == 0) {
      for (std::int64_t i = 0; i < rounds; ++i) {
        ping.set();
        pong.wait();
      }
    } else {
      for (std::int64_t i = 0; i < rounds; ++i) {
        ping.wait();
        pong.set();
      }
    }
  });
  return {ns / static_cast<double>(rounds), static_cast<double>(rounds)};
}

struct rouse_auto_event {
  rouse::event e{rouse::event_mode::auto_reset};
  void set() { e.set(); }
  void wait() { e.wait(); }
};

struct std_flag_event {
  std::atomic_flag f;
  void set() {
    f.test_and_set(std::memory_order_release);
    f.notify_one();
  }
  void wait() {
    for (;;) {
      f.wait(false, std::memory_order_acquire);
      if (f.test(std::memory_order_acquire)) break;
    }
    f.clear(std::memory_order_relaxed);
  }
};

#if defined(ROUSE_BENCH_HAVE_ABSL)
// absl::Notification is single-use: one per round and side, made before the
// clock starts.
sample absl_pingpong(const run_context& c) {
  std::int64_t const rounds = c.scaled(100'000);
  std::vector<absl::Notification> ping(static_cast<std::size_t>(rounds)), pong(static_cast<std::size_t>(rounds));
  double const ns = rouse::bench::run_threads(2, [&](unsigned index) {
    if (index == 0) {
      for (std::size_t i = 0; i < ping.size(); ++i) {
        ping[i].Notify();
        pong[i].WaitForNotification();
      }
    } else {
      for (std::size_t i = 0; i < ping.size(); ++i) {
        ping[i].WaitForNotification();
        pong[i].Notify();
      }
    }
  });
  return {ns / static_cast<double>(rounds), static_cast<double>(rounds)};
}
#endif

}  // namespace

ROUSE_BENCH_REGISTER(event_workloads) {
  std::vector<rouse::bench::impl> impls{
      {"rouse::event", pingpong<rouse_auto_event>},
      {"std::atomic_flag", pingpong<std_flag_event>},
  };
#if defined(ROUSE_BENCH_HAVE_ABSL)
  impls.push_back({"absl::Notification", absl_pingpong});
#else
  rouse::bench::skipped("event\\..*", "absl::Notification", "abseil not installed");
#endif
  rouse::bench::add({
      .name = "event.pingpong",
      .unit = "ns/roundtrip",
      .baseline = "std::atomic_flag",
      .impls = std::move(impls),
      .description = "two auto-reset events pass a turn between 2 threads "
                     "(absl::Notification: a fresh pair per round)",
  });
}
