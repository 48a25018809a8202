// atomic_wait.* workloads: rouse::atomic_wait / atomic_notify_one against
// std::atomic<T>::wait / notify_one (libstdc++), for 4- and 8-byte words.
//
//   atomic_wait.notify_idle   10,000,000 notify_one on a word nobody waits on   ns/op
//   atomic_wait.pingpong      2 threads alternate through wait/notify on one
//                             word, 100,000 round trips                         ns/roundtrip
//   atomic_wait.neighbours8   a thread sleeps on one 8-byte atomic while
//                             another stores to and notifies a different
//                             8-byte atomic 64 bytes away, 100,000 times back
//                             to back, then 100 times one at a time             ns/op (per notify)
//
// neighbours8 shows what exact wakes buy. libstdc++ (GCC 11-15) waits on
// 8-byte atomics through a proxy word in one of 16 buckets chosen by
// (address >> 2) % 16, and a notify on any address of a bucket wakes every
// waiter of that bucket; two atomics 64 bytes apart always share a bucket.
// Extras: `spurious_wakes_per_notify` counts how often the sleeper was woken
// (its voluntary context switches, from /proc) per notify on its neighbour,
// with notifies sent one at a time while it sleeps: 1 means every
// notify woke it for nothing. `sleeper_cpu_ns_per_notify` is the CPU time
// the sleeper burned per notify while the notifies came back to back (a
// sleeper woken faster than it can fall asleep again spins instead).
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <string>
#include <thread>

#include "harness.hpp"
#include "rouse/atomic_wait.hpp"

namespace {

using rouse::bench::clock;
using rouse::bench::ns_between;
using rouse::bench::run_context;
using rouse::bench::sample;

using u32 = std::uint32_t;
using u64 = std::uint64_t;

// The two APIs under one face.
template <class T>
struct std_ops {
  static void wait(const std::atomic<T>& a, T old) { a.wait(old, std::memory_order_acquire); }
  static void notify_one(std::atomic<T>& a) { a.notify_one(); }
};

template <class T>
struct rouse_ops {
  static void wait(const std::atomic<T>& a, T old) { rouse::atomic_wait(a, old); }
  static void notify_one(std::atomic<T>& a) { rouse::atomic_notify_one(a); }
};

// --- atomic_wait.notify_idle ----------------------------------------------

template <template <class> class Ops, class T>
sample notify_idle(const run_context& ctx) {
  std::int64_t const n = ctx.scaled(10'000'000);
  alignas(64) std::atomic<T> word{0};
  auto const start = clock::now();
  for (std::int64_t i = 0; i < n; ++i) Ops<T>::notify_one(word);
  auto const stop = clock::now();
  return {ns_between(start, stop) / static_cast<double>(n), static_cast<double>(n)};
}

// --- atomic_wait.pingpong -------------------------------------------------

// Thread 0 stores the odd values 2i+1, thread 1 answers with 2i+2; each
// sleeps on the word until the other has answered.
template <template <class> class Ops, class T>
sample pingpong(const run_context& ctx) {
  std::int64_t const n = ctx.scaled(100'000);
  alignas(64) std::atomic<T> word{0};
  double const ns = rouse::bench::run_threads(2, [&](unsigned who) {
    for (std::int64_t i = 0; i < n; ++i) {
      T const ping = static_cast<T>(2 * i + 1);
      if (who == 0) {
        // Ordering: release/acquire pair the two threads' stores and loads;
        // the wait/notify handshake itself is the library's to get right.
        word.store(ping, std::memory_order_release);
        Ops<T>::notify_one(word);
        while (word.load(std::memory_order_acquire) == ping) Ops<T>::wait(word, ping);
      } else {
        for (T v = word.load(std::memory_order_acquire); v != ping; v = word.load(std::memory_order_acquire))
          Ops<T>::wait(word, v);
        word.store(static_cast<T>(ping + 1), std::memory_order_release);
        Ops<T>::notify_one(word);
      }
    }
  });
  return {ns / static_cast<double>(n), static_cast<double>(n)};
}

// --- atomic_wait.neighbours8 ----------------------------------------------

// Two 8-byte atomics 64 bytes apart: different cache lines, same libstdc++
// wait bucket ((address >> 2) % 16 is equal for addresses 64 bytes apart).
struct alignas(64) neighbour_words {
  std::atomic<u64> words[9]{};
  std::atomic<u64>& sleeper() { return words[0]; }
  std::atomic<u64>& busy() { return words[8]; }
};

// What /proc says about one thread of this process.
struct thread_status {
  char state = '?';  // R running, S sleeping, ...
  long voluntary_switches = -1;
};

thread_status read_status(long tid) {
  thread_status s;
  std::ifstream f("/proc/self/task/" + std::to_string(tid) + "/status");
  for (std::string line; std::getline(f, line);) {
    if (line.rfind("State:", 0) == 0) {
      auto const at = line.find_first_not_of(" \t", 6);
      if (at != std::string::npos) s.state = line[at];
    } else if (line.rfind("voluntary_ctxt_switches:", 0) == 0) {
      s.voluntary_switches = std::atol(line.c_str() + 24);
    }
  }
  return s;
}

// Waits (a second at most) until thread `tid` is asleep in the kernel.
void until_asleep(long tid) {
  auto const give_up = clock::now() + std::chrono::seconds(1);
  while (read_status(tid).state != 'S' && clock::now() < give_up) std::this_thread::yield();
}

double thread_cpu_ns(std::thread& t) {
  clockid_t id{};
  timespec ts{};
  if (::pthread_getcpuclockid(t.native_handle(), &id) != 0 || ::clock_gettime(id, &ts) != 0) return 0;
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

// One run: a thread sleeps on `sleeper` until the end; this thread stores to
// and notifies `busy`, first n times back to back (timed: the notify cost,
// and the CPU time the sleeper burned meanwhile), then m times one by one,
// each time waiting until the sleeper is asleep again (its voluntary context
// switches then count the spurious wake-ups).
template <template <class> class Ops>
sample neighbours8(const run_context& ctx) {
  std::int64_t const n = ctx.scaled(100'000);
  std::int64_t const m = ctx.scaled(100);
  static neighbour_words words;  // static: the same addresses every run
  std::atomic<u64>& sleeper = words.sleeper();
  std::atomic<u64>& busy = words.busy();
  sleeper.store(0, std::memory_order_relaxed);
  busy.store(0, std::memory_order_relaxed);

  std::atomic<long> tid{0};
  std::thread waiter([&] {
    tid.store(static_cast<long>(::syscall(SYS_gettid)), std::memory_order_release);
    // Ordering: acquire pairs with the release store that ends the run.
    while (sleeper.load(std::memory_order_acquire) == 0) Ops<u64>::wait(sleeper, 0);
  });
  while (tid.load(std::memory_order_acquire) == 0) std::this_thread::yield();
  long const waiter_tid = tid.load(std::memory_order_relaxed);
  until_asleep(waiter_tid);

  u64 value = 0;
  double const cpu0 = thread_cpu_ns(waiter);
  auto const start = clock::now();
  for (std::int64_t i = 0; i < n; ++i) {
    busy.store(++value, std::memory_order_release);
    Ops<u64>::notify_one(busy);
  }
  auto const stop = clock::now();
  double const cpu1 = thread_cpu_ns(waiter);

  // One notify at a time, each sent while the sleeper is asleep: a sleeper
  // woken for nothing sleeps again, which adds one voluntary switch.
  until_asleep(waiter_tid);
  long const switches0 = read_status(waiter_tid).voluntary_switches;
  for (std::int64_t i = 0; i < m; ++i) {
    long const before = read_status(waiter_tid).voluntary_switches;
    busy.store(++value, std::memory_order_release);
    Ops<u64>::notify_one(busy);
    // Until it slept again, or still sleeps 1 ms later (not woken), or 50 ms.
    auto const sent = clock::now();
    for (;;) {
      thread_status const st = read_status(waiter_tid);
      auto const waited = clock::now() - sent;
      if (st.state == 'S' && (st.voluntary_switches != before || waited > std::chrono::milliseconds(1))) break;
      if (waited > std::chrono::milliseconds(50)) break;
      std::this_thread::yield();
    }
  }
  long const switches1 = read_status(waiter_tid).voluntary_switches;

  sleeper.store(1, std::memory_order_release);
  Ops<u64>::notify_one(sleeper);
  waiter.join();

  sample s{ns_between(start, stop) / static_cast<double>(n), static_cast<double>(n + m)};
  if (switches0 >= 0 && switches1 >= switches0)
    s.extra["spurious_wakes_per_notify"] = static_cast<double>(switches1 - switches0) / static_cast<double>(m);
  s.extra["sleeper_cpu_ns_per_notify"] = (cpu1 - cpu0) / static_cast<double>(n);
  return s;
}

}  // namespace

ROUSE_BENCH_REGISTER(atomic_wait_workloads) {
  rouse::bench::add({
      .name = "atomic_wait.notify_idle",
      .unit = "ns/op",
      .baseline = "std::atomic<u32>::wait",
      .impls = {{"rouse::atomic_wait<u32>", notify_idle<rouse_ops, u32>},
                {"rouse::atomic_wait<u64>", notify_idle<rouse_ops, u64>},
                {"std::atomic<u32>::wait", notify_idle<std_ops, u32>},
                {"std::atomic<u64>::wait", notify_idle<std_ops, u64>}},
      .description = "10,000,000 notify_one on a word nobody waits on; ns per notify.",
  });
  rouse::bench::add({
      .name = "atomic_wait.pingpong",
      .unit = "ns/roundtrip",
      .baseline = "std::atomic<u32>::wait",
      .impls = {{"rouse::atomic_wait<u32>", pingpong<rouse_ops, u32>},
                {"rouse::atomic_wait<u64>", pingpong<rouse_ops, u64>},
                {"std::atomic<u32>::wait", pingpong<std_ops, u32>},
                {"std::atomic<u64>::wait", pingpong<std_ops, u64>}},
      .description = "2 threads alternate through wait/notify on one word, 100,000 round trips.",
  });
  rouse::bench::add({
      .name = "atomic_wait.neighbours8",
      .unit = "ns/op",
      .baseline = "std::atomic<u64>::wait",
      .impls = {{"rouse::atomic_wait<u64>", neighbours8<rouse_ops>}, {"std::atomic<u64>::wait", neighbours8<std_ops>}},
      .description = "A thread sleeps on one 8-byte atomic while another stores to and notifies a different "
                     "8-byte atomic 64 bytes away (the same libstdc++ wait bucket): 100,000 notifies back to "
                     "back give ns per notify and the sleeper's CPU time per notify; 100 more, one at a time "
                     "while it sleeps, give its spurious wake-ups per notify.",
  });
}
