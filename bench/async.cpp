// waker.* and async.* workloads: rouse's wakers and async core against
// Boost.Asio (1.81) and oneTBB.
//
//   waker.register_notify   1 thread: register a waker, notify it,
//                           10,000,000 times                                    ns/op
//   waker.notify_idle4      4 threads notify a waker nobody registered,
//                           10,000,000 in total                                 ns/op
//   async.notify_pingpong   two coroutines on one single-threaded executor
//                           alternate through two notify (or
//                           auto_reset_event) objects, 1,000,000 round trips  ns/roundtrip
//   async.spawn_join        one task spawns 1,000,000 empty tasks on a
//                           2-worker pool and awaits them all                   ops/s (tasks/s)
//   async.timer_many        100,000 tasks each sleep a random 0-10 ms on a
//                           2-worker pool                                       ns/op (process CPU
//                                                                               ns per timer)
//
// Peers. async.notify_pingpong: Asio's notify is a
// asio::experimental::channel<void(error_code)> of capacity 1 on an
// io_context run by one thread (concurrency hint 1): try_send() is
// notify_one (a full channel drops it: one stored permit, as tokio::Notify
// and rouse::async::notify keep), co_await async_receive(use_awaitable) is
// notified(). A steady_timer used as an event (cancel() to wake) stores no
// permit, so a notify before the wait would be lost: not the equivalent.
// async.spawn_join: tbb::task_group run + wait inside a task_arena of 2;
// asio::thread_pool(2), a root coroutine co_spawns the tasks with a
// completion handler that counts down, the last one signals a
// concurrent_channel the root awaits. async.timer_many: a co_spawned
// coroutine per timer on asio::thread_pool(2) waiting on a steady_timer.
//
// The unit of async.spawn_join is tasks per second; the runner knows it as
// ops/s (one op = one task; higher is better).
//
// timer_many: each task takes its deadline when it starts (now + its delay;
// the delays are one fixed random sequence shared by every implementation),
// so lateness is the timer's own, not the spawn queue's. The value is the
// process's CPU time (CLOCK_PROCESS_CPUTIME_ID: every executor thread) from
// the first spawn to the last wake-up, per timer. Extras: worst_late_us,
// p99_late_us, wall_ms. A timer that fires before its deadline aborts the
// benchmark (a sleep never ends early).
//
// System calls: the runner adds wait/wake_calls_per_op to rouse's rows
// (bench preset: ROUSE_SYSCALL_COUNTERS). notify_pingpong also reports
// wake_calls_per_wake (two wakes per round trip): 0 is the goal, every wake
// happens while the loop is busy.
#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <thread>
#include <vector>

#include "harness.hpp"
#include "rouse/async/atomic_waker.hpp"
#include "rouse/async/diatomic_waker.hpp"
#include "rouse/async/event.hpp"
#include "rouse/async/notify.hpp"
#include "rouse/async/run_loop.hpp"
#include "rouse/async/sleep.hpp"
#include "rouse/async/spawn.hpp"
#include "rouse/async/task.hpp"
#include "rouse/async/thread_pool.hpp"
#include "rouse/async/waker.hpp"
#include "rouse/platform/counters.hpp"

#if defined(ROUSE_BENCH_HAVE_BOOST) && __has_include(<boost/asio/experimental/channel.hpp>)
#define ROUSE_BENCH_ASYNC_ASIO 1
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/channel.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#endif

#if defined(ROUSE_BENCH_HAVE_TBB)
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_group.h>
#endif

namespace {

using rouse::bench::clock;
using rouse::bench::ns_between;
using rouse::bench::run_context;
using rouse::bench::sample;
namespace ra = rouse::async;

// Workers of every pool here: the Rust anchor's tokio runtime has 2.
constexpr unsigned pool_threads = 2;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "rouse-bench: %s\n", what);
  std::abort();
}

double process_cpu_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

// --- waker.register_notify ----------------------------------------------

struct counting {
  std::uint64_t n = 0;
  void operator()() noexcept { ++n; }
};

struct callback_waker_kind {
  static constexpr bool shared = false;
};
struct shared_waker_kind {
  static constexpr bool shared = true;
};

// The waker the consumer registers: a counting callback (a view: clone and
// drop cost nothing), or a reference-counted one (make_shared_waker: clone
// and drop are RMWs, as Rust's Arc waker).
template <class Kind>
ra::waker make_counting_waker(counting& c) {
  if constexpr (Kind::shared) {
    return ra::make_shared_waker([p = &c]() noexcept { ++p->n; });
  } else {
    return ra::callback_waker(c);
  }
}

template <class Kind>
sample register_notify_diatomic(const run_context& ctx) {
  std::int64_t const n = ctx.scaled(10'000'000);
  counting c;
  ra::waker const w = make_counting_waker<Kind>(c);
  ra::diatomic_waker dw;
  // Every registration after the first re-registers the same waker: the
  // cached path (one RMW, no clone).
  auto const start = clock::now();
  for (std::int64_t i = 0; i < n; ++i) {
    dw.register_waker(w);
    dw.notify();
  }
  auto const stop = clock::now();
  if (c.n != static_cast<std::uint64_t>(n)) fail("waker.register_notify: diatomic_waker lost a wake");
  return {ns_between(start, stop) / static_cast<double>(n), static_cast<double>(n)};
}

template <class Kind>
sample register_notify_atomic(const run_context& ctx) {
  std::int64_t const n = ctx.scaled(10'000'000);
  counting c;
  ra::waker const w = make_counting_waker<Kind>(c);
  ra::atomic_waker aw;
  auto const start = clock::now();
  for (std::int64_t i = 0; i < n; ++i) {
    aw.register_waker(w);  // stores a clone (the slot is empty after wake)
    aw.wake();             // takes it out and wakes it (consuming the clone)
  }
  auto const stop = clock::now();
  if (c.n != static_cast<std::uint64_t>(n)) fail("waker.register_notify: atomic_waker lost a wake");
  return {ns_between(start, stop) / static_cast<double>(n), static_cast<double>(n)};
}

// --- waker.notify_idle4 --------------------------------------------------

constexpr unsigned idle_threads = 4;

template <class Notify>
sample notify_idle4(const run_context& ctx, Notify notify_once) {
  std::int64_t const per = ctx.scaled(10'000'000) / idle_threads;
  double const ns = rouse::bench::run_threads(idle_threads, [&](unsigned) {
    for (std::int64_t i = 0; i < per; ++i) notify_once();
  });
  double const total = static_cast<double>(per) * idle_threads;
  return {ns / total, total};
}

sample idle_diatomic_load(const run_context& ctx) {
  ra::diatomic_waker dw(ra::idle_notify::load);
  // A producer calls notify_after_publish() right after its publish: the
  // light fence (B), then the load (B').
  return notify_idle4(ctx, [&] { dw.notify_after_publish(); });
}
sample idle_diatomic_rmw(const run_context& ctx) {
  ra::diatomic_waker dw;
  return notify_idle4(ctx, [&] { dw.notify(); });
}
sample idle_atomic_waker(const run_context& ctx) {
  ra::atomic_waker aw;
  return notify_idle4(ctx, [&] { aw.wake(); });
}

// --- async.notify_pingpong -----------------------------------------------

// The two ways to hand one wake-up across: notify's notify_one / notified,
// auto_reset_event's set / wait (the same token protocol).
struct via_notify {
  using type = ra::notify;
  static void signal(type& n) noexcept { n.notify_one(); }
  static auto wait(type& n) noexcept { return n.notified(); }
};
struct via_event {
  using type = ra::auto_reset_event;
  static void signal(type& e) noexcept { e.set(); }
  static auto wait(type& e) noexcept { return e.wait(); }
};

template <class Via>
ra::task<> rouse_pong(typename Via::type& ping, typename Via::type& pong, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) {
    co_await Via::wait(ping);
    Via::signal(pong);
  }
}

template <class Via>
ra::task<double> rouse_ping(typename Via::type& ping, typename Via::type& pong, std::int64_t n) {
  auto const start = clock::now();
  for (std::int64_t i = 0; i < n; ++i) {
    Via::signal(ping);
    co_await Via::wait(pong);
  }
  co_return ns_between(start, clock::now());
}

// Both sides spawned, as tokio's and Asio's are: a spawned task carries a
// stoppable token (its join_handle's), so each of its waits registers a
// stop callback; the root task of run_until_complete, given no token,
// would not.
template <class Via>
ra::task<double> rouse_pingpong(ra::run_loop& loop, std::int64_t n) {
  typename Via::type ping, pong;
  auto other = ra::spawn(loop, rouse_pong<Via>(ping, pong, n));
  auto me = ra::spawn(loop, rouse_ping<Via>(ping, pong, n));
  double const ns = co_await std::move(me);
  co_await std::move(other);
  co_return ns;
}

template <class Via>
sample notify_pingpong_rouse(const run_context& ctx) {
  std::int64_t const n = ctx.scaled(1'000'000);
  ra::run_loop loop;
  auto const sys0 = rouse::platform::syscall_counters();
  double const ns = loop.run_until_complete(rouse_pingpong<Via>(loop, n));
  auto const sys1 = rouse::platform::syscall_counters();
  sample s{ns / static_cast<double>(n), static_cast<double>(n)};
  if (rouse::platform::syscall_counters_enabled())
    s.extra["wake_calls_per_wake"] = static_cast<double>(sys1.wakes - sys0.wakes) / (2.0 * static_cast<double>(n));
  return s;
}

// --- async.spawn_join ----------------------------------------------------

ra::task<> rouse_empty() { co_return; }
ra::task<std::uint64_t> rouse_value(std::uint64_t v) { co_return v; }

ra::task<double> rouse_spawn_scope(ra::scheduler s, std::int64_t n) {
  auto const start = clock::now();
  ra::task_scope scope;
  for (std::int64_t i = 0; i < n; ++i) scope.spawn(s, rouse_empty());
  co_await scope.join();
  co_return ns_between(start, clock::now());
}

// tokio's shape (the Rust anchor): keep every handle, then await them in order.
ra::task<double> rouse_spawn_handles(ra::scheduler s, std::int64_t n) {
  auto const start = clock::now();
  std::vector<ra::join_handle<std::uint64_t>> handles;
  handles.reserve(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) handles.push_back(ra::spawn(s, rouse_value(static_cast<std::uint64_t>(i))));
  std::uint64_t sum = 0;
  for (auto& h : handles) sum += co_await std::move(h);
  double const ns = ns_between(start, clock::now());
  if (sum != static_cast<std::uint64_t>(n) * static_cast<std::uint64_t>(n - 1) / 2) fail("async.spawn_join: bad sum");
  co_return ns;
}

template <ra::task<double> (*Root)(ra::scheduler, std::int64_t)>
sample spawn_join_rouse(const run_context& ctx) {
  std::int64_t const n = ctx.scaled(1'000'000);
  ra::thread_pool pool(pool_threads);
  double const ns = ra::spawn(pool.get_scheduler(), Root(pool.get_scheduler(), n)).join();
  return {static_cast<double>(n) / (ns * 1e-9), static_cast<double>(n)};
}

#if defined(ROUSE_BENCH_HAVE_TBB)
sample spawn_join_tbb(const run_context& ctx) {
  std::int64_t const n = ctx.scaled(1'000'000);
  tbb::task_arena arena(static_cast<int>(pool_threads));
  arena.execute([] {});  // the arena exists before the clock starts
  double ns = 0;
  arena.execute([&] {
    tbb::task_group g;
    auto const start = clock::now();
    for (std::int64_t i = 0; i < n; ++i) g.run([] {});
    g.wait();
    ns = ns_between(start, clock::now());
  });
  return {static_cast<double>(n) / (ns * 1e-9), static_cast<double>(n)};
}
#endif

// --- async.timer_many ----------------------------------------------------

constexpr std::int64_t max_delay_us = 10'000;

// The delays: one fixed sequence, the same for every implementation.
const std::vector<std::int32_t>& timer_delays_us(std::size_t n) {
  static std::vector<std::int32_t> d;
  if (d.size() < n) {
    std::mt19937_64 rng(20240601);
    std::uniform_int_distribution<std::int32_t> dist(0, static_cast<std::int32_t>(max_delay_us));
    d.resize(n);
    for (auto& x : d) x = dist(rng);
  }
  return d;
}

struct timer_stats {
  explicit timer_stats(std::size_t n) : late_ns(n, 0) {}
  std::vector<std::int64_t> late_ns;  // one slot per timer, written by its task
  std::atomic<std::int64_t> early{0};

  void record(std::size_t i, clock::time_point deadline) {
    auto const late = std::chrono::duration_cast<std::chrono::nanoseconds>(clock::now() - deadline).count();
    if (late < 0) early.fetch_add(1, std::memory_order_relaxed);
    late_ns[i] = late;
  }
  sample finish(double cpu_ns, double wall_ns) {
    std::size_t const n = late_ns.size();
    if (early.load() != 0) {
      std::fprintf(stderr, "rouse-bench: async.timer_many: %lld timers fired before their deadline\n",
                   static_cast<long long>(early.load()));
      std::abort();
    }
    std::vector<std::int64_t> sorted = late_ns;
    std::sort(sorted.begin(), sorted.end());
    sample s{cpu_ns / static_cast<double>(n), static_cast<double>(n)};
    s.extra["worst_late_us"] = static_cast<double>(sorted.back()) / 1000.0;
    s.extra["p99_late_us"] = static_cast<double>(sorted[n * 99 / 100]) / 1000.0;
    s.extra["wall_ms"] = wall_ns / 1e6;
    return s;
  }
};

ra::task<> rouse_sleeper(timer_stats& st, std::size_t i, std::int32_t delay_us) {
  auto const deadline = clock::now() + std::chrono::microseconds(delay_us);
  co_await ra::sleep_until(deadline);
  st.record(i, deadline);
}

ra::task<> rouse_timer_root(ra::scheduler s, timer_stats& st) {
  std::size_t const n = st.late_ns.size();
  const auto& delays = timer_delays_us(n);
  ra::task_scope scope;
  for (std::size_t i = 0; i < n; ++i) scope.spawn(s, rouse_sleeper(st, i, delays[i]));
  co_await scope.join();
}

sample timer_many_rouse(const run_context& ctx) {
  auto const n = static_cast<std::size_t>(ctx.scaled(100'000));
  timer_stats st(n);
  timer_delays_us(n);
  ra::thread_pool pool(pool_threads);
  double const cpu0 = process_cpu_ns();
  auto const start = clock::now();
  ra::spawn(pool.get_scheduler(), rouse_timer_root(pool.get_scheduler(), st)).join();
  auto const stop = clock::now();
  double const cpu1 = process_cpu_ns();
  return st.finish(cpu1 - cpu0, ns_between(start, stop));
}

// --- Boost.Asio ------------------------------------------------------------

#if defined(ROUSE_BENCH_ASYNC_ASIO)
namespace asio = boost::asio;
using boost::system::error_code;
using asio_notify = asio::experimental::channel<void(error_code)>;
using asio_signal = asio::experimental::concurrent_channel<void(error_code)>;

asio::awaitable<void> asio_pong(asio_notify* ping, asio_notify* pong, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) {
    co_await ping->async_receive(asio::use_awaitable);
    pong->try_send(error_code{});
  }
}

asio::awaitable<void> asio_ping(asio_notify* ping, asio_notify* pong, std::int64_t n, double* ns) {
  auto const start = clock::now();
  for (std::int64_t i = 0; i < n; ++i) {
    ping->try_send(error_code{});
    co_await pong->async_receive(asio::use_awaitable);
  }
  *ns = ns_between(start, clock::now());
}

sample notify_pingpong_asio(const run_context& ctx) {
  std::int64_t const n = ctx.scaled(1'000'000);
  asio::io_context io(1);
  asio_notify ping(io, 1), pong(io, 1);
  double ns = 0;
  asio::co_spawn(io, asio_pong(&ping, &pong, n), asio::detached);
  asio::co_spawn(io, asio_ping(&ping, &pong, n, &ns), asio::detached);
  io.run();
  return {ns / static_cast<double>(n), static_cast<double>(n)};
}

// Counts completions down; the last one signals the awaiting root.
struct countdown {
  countdown(asio::thread_pool& pool, std::int64_t n) : left(n), signal(pool, 1) {}
  std::atomic<std::int64_t> left;
  asio_signal signal;
  void done() {
    if (left.fetch_sub(1, std::memory_order_acq_rel) == 1) signal.try_send(error_code{});
  }
};

struct count_out {
  countdown* cd;
  void operator()(const std::exception_ptr& e) const {
    if (e) fail("asio task threw");
    cd->done();
  }
};

asio::awaitable<void> asio_empty() { co_return; }

asio::awaitable<double> asio_spawn_root(countdown* cd, std::int64_t n) {
  auto ex = co_await asio::this_coro::executor;
  auto const start = clock::now();
  for (std::int64_t i = 0; i < n; ++i) asio::co_spawn(ex, asio_empty(), count_out{cd});
  co_await cd->signal.async_receive(asio::use_awaitable);
  co_return ns_between(start, clock::now());
}

sample spawn_join_asio(const run_context& ctx) {
  std::int64_t const n = ctx.scaled(1'000'000);
  asio::thread_pool pool(pool_threads);
  countdown cd(pool, n);
  double const ns = asio::co_spawn(pool, asio_spawn_root(&cd, n), asio::use_future).get();
  pool.join();
  return {static_cast<double>(n) / (ns * 1e-9), static_cast<double>(n)};
}

asio::awaitable<void> asio_sleeper(timer_stats* st, std::size_t i, std::int32_t delay_us) {
  asio::steady_timer t(co_await asio::this_coro::executor);
  auto const deadline = clock::now() + std::chrono::microseconds(delay_us);
  t.expires_at(deadline);
  co_await t.async_wait(asio::use_awaitable);
  st->record(i, deadline);
}

asio::awaitable<void> asio_timer_root(timer_stats* st, countdown* cd) {
  auto ex = co_await asio::this_coro::executor;
  std::size_t const n = st->late_ns.size();
  const auto& delays = timer_delays_us(n);
  for (std::size_t i = 0; i < n; ++i) asio::co_spawn(ex, asio_sleeper(st, i, delays[i]), count_out{cd});
  co_await cd->signal.async_receive(asio::use_awaitable);
}

sample timer_many_asio(const run_context& ctx) {
  auto const n = static_cast<std::size_t>(ctx.scaled(100'000));
  timer_stats st(n);
  timer_delays_us(n);
  asio::thread_pool pool(pool_threads);
  countdown cd(pool, static_cast<std::int64_t>(n));
  double const cpu0 = process_cpu_ns();
  auto const start = clock::now();
  asio::co_spawn(pool, asio_timer_root(&st, &cd), asio::use_future).get();
  auto const stop = clock::now();
  double const cpu1 = process_cpu_ns();
  pool.join();
  return st.finish(cpu1 - cpu0, ns_between(start, stop));
}
#endif

}  // namespace

ROUSE_BENCH_REGISTER(async_workloads) {
  using rouse::bench::add;
  add({
      .name = "waker.register_notify",
      .unit = "ns/op",
      .baseline = "rouse::async::atomic_waker",
      .impls = {{"rouse::async::diatomic_waker", register_notify_diatomic<callback_waker_kind>},
                {"rouse::async::atomic_waker", register_notify_atomic<callback_waker_kind>},
                {"rouse::async::diatomic_waker (shared waker)", register_notify_diatomic<shared_waker_kind>},
                {"rouse::async::atomic_waker (shared waker)", register_notify_atomic<shared_waker_kind>}},
      .description = "1 thread: register a waker (a counting callback, or a reference-counted one), "
                     "notify it; diatomic re-registers the cached waker.",
  });
  add({
      .name = "waker.notify_idle4",
      .unit = "ns/op",
      .baseline = "rouse::async::atomic_waker wake",
      .impls = {{"rouse::async::diatomic_waker notify_after_publish (load)", idle_diatomic_load},
                {"rouse::async::diatomic_waker notify (RMW)", idle_diatomic_rmw},
                {"rouse::async::atomic_waker wake", idle_atomic_waker}},
      .description = "4 threads notify a waker nobody registered, 10,000,000 in total; wall time / all notifies.",
  });
  add({
      .name = "async.notify_pingpong",
      .unit = "ns/roundtrip",
      .baseline = "boost::asio::experimental::channel (io_context, 1 thread)",
      .impls = {{"rouse::async::notify (run_loop)", notify_pingpong_rouse<via_notify>},
                {"rouse::async::auto_reset_event (run_loop)", notify_pingpong_rouse<via_event>},
#if defined(ROUSE_BENCH_ASYNC_ASIO)
                {"boost::asio::experimental::channel (io_context, 1 thread)", notify_pingpong_asio},
#endif
      },
      .description = "two coroutines on one single-threaded executor alternate through two notify objects, "
                     "1,000,000 round trips.",
  });
  add({
      .name = "async.spawn_join",
      .unit = "ops/s",
      .baseline = "boost::asio::thread_pool + co_spawn",
      .impls = {{"rouse::async::thread_pool (task_scope)", spawn_join_rouse<rouse_spawn_scope>},
                {"rouse::async::thread_pool (join_handle)", spawn_join_rouse<rouse_spawn_handles>},
#if defined(ROUSE_BENCH_HAVE_TBB)
                {"tbb::task_group", spawn_join_tbb},
#endif
#if defined(ROUSE_BENCH_ASYNC_ASIO)
                {"boost::asio::thread_pool + co_spawn", spawn_join_asio},
#endif
      },
      .description = "one task spawns 1,000,000 empty tasks on a 2-worker pool and awaits them all; "
                     "tasks/s (ops/s).",
  });
  add({
      .name = "async.timer_many",
      .unit = "ns/op",
      .baseline = "boost::asio::steady_timer (thread_pool)",
      .impls = {{"rouse::async::sleep_until (thread_pool)", timer_many_rouse},
#if defined(ROUSE_BENCH_ASYNC_ASIO)
                {"boost::asio::steady_timer (thread_pool)", timer_many_asio},
#endif
      },
      .description = "100,000 tasks each sleep a random 0-10 ms on a 2-worker pool; process CPU ns per timer, "
                     "worst and p99 lateness in extra.",
  });
#if !defined(ROUSE_BENCH_ASYNC_ASIO)
  rouse::bench::skipped("async\\..*", "boost::asio", "Boost 1.81 (asio/experimental/channel.hpp) not installed");
#endif
#if !defined(ROUSE_BENCH_HAVE_TBB)
  rouse::bench::skipped("async\\.spawn_join", "tbb::task_group", "oneTBB not installed");
#endif
}
