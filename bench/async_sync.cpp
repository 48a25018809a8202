// async.* workloads of the async primitives and channels: rouse's async
// semaphore, mutex, notify / auto_reset_event and channel against Boost 1.81
// (Asio's experimental channels, Boost.Fiber).
//
//   async.semaphore100     100 tasks contend for 1 permit on one single-thread
//                          executor, 1,000,000 acquire/release in total; once
//                          with the permit held across a yield, once with no
//                          await while it is held (the two tokio rows of the
//                          Rust anchor: 100 tasks x 5,000 there, 500,000 in
//                          total; the unit is a rate, so the counts
//                          compare)                                       ops/s (acquires/s)
//   async.wake_latency     one waiter task, parked on its executor's thread;
//                          one waker, a plain thread, wakes it 50 us after the
//                          previous wake was seen; the time from the wake
//                          call to the waiter's first instruction after its
//                          co_await, median per run (p99 in extra)        ns/op
//   async.mutex100         100 tasks, 1,000,000 increments of one counter
//                          under the async mutex (no await while held); on
//                          one thread (the mutex is then never contended: the
//                          fast path) and on 2 worker threads              ns/op
//   async.channel_funnel   4 producer tasks, 1 consumer, bounded 1000, on a
//                          2-worker pool, 4,000,000 messages (the tokio
//                          shape: the root task creates the channel, spawns
//                          the producers, drops its sender, receives until
//                          closed; the time includes the spawns)          msgs/s
//   async.channel_pingpong two tasks on one thread, two rendezvous channels
//                          (capacity 0), 1,000,000 round trips            ns/roundtrip
//   async.thread_to_task   a plain thread sends (blocking form), a task
//                          receives on a run_loop driven by another thread,
//                          bounded 1000, 4,000,000 messages               msgs/s
//
// Peers. Asio has no async mutex or semaphore: the stand-in here is a channel
// of capacity 1 used as a one-permit semaphore (async_send = acquire, blocks
// while the one slot is full; try_receive = release, which moves a blocked
// sender's element in and completes it), named so in the rows; a strand would
// serialize whole handlers, not a critical section inside a coroutine.
// Single-thread shapes run on an io_context(1) with
// experimental::channel; pool shapes on thread_pool(2) with
// experimental::concurrent_channel. A yield is co_await post(executor).
// A plain thread's send into an Asio channel: try_send, and when full
// async_send(use_future).get() (Asio has no blocking send).
// Boost.Fiber: fibers on one fresh thread (round_robin) for the single-thread
// shapes; two threads under algo::shared_work (a shared ready queue; its
// default, polling mode) for the pool shapes (work_stealing keeps static
// per-process state sized once, so it cannot be set up again for each
// round). boost::fibers::mutex stands for the semaphore of one permit;
// buffered_channel's capacity must be a power of two and it holds one less:
// 1024 (1023 values) for "bounded 1000".
//
// rouse rows of semaphore100 / mutex100 / channel_* need
// rouse/async/semaphore.hpp, mutex.hpp, channel.hpp (guarded by
// __has_include).
#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <utility>
#include <vector>

#include "harness.hpp"
#include "rouse/async/event.hpp"
#include "rouse/async/notify.hpp"
#include "rouse/async/run_loop.hpp"
#include "rouse/async/spawn.hpp"
#include "rouse/async/task.hpp"
#include "rouse/async/thread_pool.hpp"

#if __has_include("rouse/async/semaphore.hpp")
#define ROUSE_BENCH_ASYNC_SEMAPHORE 1
#include "rouse/async/semaphore.hpp"
#endif
#if __has_include("rouse/async/mutex.hpp")
#define ROUSE_BENCH_ASYNC_MUTEX 1
#include "rouse/async/mutex.hpp"
#endif
#if __has_include("rouse/async/channel.hpp")
#define ROUSE_BENCH_ASYNC_CHANNEL 1
#include "rouse/async/channel.hpp"
#endif

#if defined(ROUSE_BENCH_HAVE_BOOST) && __has_include(<boost/asio/experimental/channel.hpp>)
#define ROUSE_BENCH_SYNC_ASIO 1
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/experimental/channel.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#endif

#if defined(ROUSE_BENCH_HAVE_BOOST_FIBER)
#include <boost/fiber/algo/shared_work.hpp>
#include <boost/fiber/buffered_channel.hpp>
#include <boost/fiber/condition_variable.hpp>
#include <boost/fiber/fiber.hpp>
#include <boost/fiber/mutex.hpp>
#include <boost/fiber/operations.hpp>
#include <boost/fiber/unbuffered_channel.hpp>
#endif

namespace {

using rouse::bench::clock;
using rouse::bench::keep;
using rouse::bench::ns_between;
using rouse::bench::run_context;
using rouse::bench::sample;
namespace ra = rouse::async;

constexpr unsigned pool_threads = 2;  // the Rust anchor's tokio runtime has 2 workers
constexpr int sem_tasks = 100;
constexpr std::int64_t channel_capacity = 1000;
constexpr int producers = 4;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "rouse-bench: %s\n", what);
  std::abort();
}

double now_ns() {
  return std::chrono::duration<double, std::nano>(clock::now().time_since_epoch()).count();
}

// --- async.wake_latency: the shared measurement --------------------------------

// The waker thread and the waiter exchange: t0 (the waker's clock just
// before its wake call), the waiter's latency, and an acknowledgement.
struct latency_probe {
  explicit latency_probe(std::size_t n) : lat(n, 0) {}
  std::vector<double> lat;
  std::atomic<double> t0{0};
  std::atomic<std::int64_t> ack{0};

  // The waiter, right after its await returned for the i-th time.
  void resumed(std::size_t i) {
    lat[i] = now_ns() - t0.load(std::memory_order_acquire);
    ack.store(static_cast<std::int64_t>(i) + 1, std::memory_order_release);
  }
  // The waker: for each wake, let the waiter park (a pause), stamp, wake,
  // wait for the acknowledgement.
  template <class Wake>
  void drive(Wake&& wake) {
    for (std::size_t i = 0; i < lat.size(); ++i) {
      std::this_thread::sleep_for(std::chrono::microseconds(50));
      t0.store(now_ns(), std::memory_order_release);
      wake();
      while (ack.load(std::memory_order_acquire) != static_cast<std::int64_t>(i) + 1) std::this_thread::yield();
    }
  }
  sample finish() {
    std::vector<double> s = lat;
    std::sort(s.begin(), s.end());
    sample out{s[s.size() / 2], static_cast<double>(s.size())};
    out.extra["p99_ns"] = s[s.size() * 99 / 100];
    return out;
  }
};

std::size_t latency_count(const run_context& ctx) { return static_cast<std::size_t>(ctx.scaled(4'000)); }

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
ra::task<> latency_waiter(typename Via::type& n, latency_probe& p) {
  for (std::size_t i = 0; i < p.lat.size(); ++i) {
    co_await Via::wait(n);
    p.resumed(i);
  }
}

template <class Via>
sample wake_latency_rouse(const run_context& ctx) {
  latency_probe p(latency_count(ctx));
  typename Via::type n;
  std::thread loop_thread([&] {
    ra::run_loop loop;
    loop.run_until_complete(latency_waiter<Via>(n, p));
  });
  p.drive([&] { Via::signal(n); });
  loop_thread.join();
  return p.finish();
}

// --- rouse: semaphore, mutex ---------------------------------------------------

#if defined(ROUSE_BENCH_ASYNC_SEMAPHORE)
ra::task<> sem_worker(ra::semaphore& s, std::int64_t per, bool hold, ra::scheduler sched) {
  for (std::int64_t i = 0; i < per; ++i) {
    auto p = co_await s.acquire(1);
    if (!p) fail("async.semaphore100: closed");
    if (hold) co_await sched.schedule();  // a yield with the permit held
  }  // p's destructor releases
}

ra::task<double> sem_root(ra::run_loop& loop, std::int64_t per, bool hold) {
  ra::semaphore s(1);
  auto const start = clock::now();
  std::vector<ra::join_handle<void>> hs;
  hs.reserve(sem_tasks);
  for (int i = 0; i < sem_tasks; ++i) hs.push_back(ra::spawn(loop, sem_worker(s, per, hold, loop.get_scheduler())));
  for (auto& h : hs) co_await std::move(h);
  co_return ns_between(start, clock::now());
}

template <bool Hold>
sample semaphore100_rouse(const run_context& ctx) {
  std::int64_t const per = ctx.scaled(1'000'000) / sem_tasks;
  ra::run_loop loop;
  double const ns = loop.run_until_complete(sem_root(loop, per, Hold));
  double const ops = static_cast<double>(per * sem_tasks);
  return {ops / (ns * 1e-9), ops};
}
#endif

#if defined(ROUSE_BENCH_ASYNC_MUTEX)
ra::task<> mutex_worker(ra::mutex& m, std::int64_t per, std::int64_t& counter) {
  for (std::int64_t i = 0; i < per; ++i) {
    auto g = co_await m.lock();
    ++counter;
  }
}

ra::task<double> mutex_root(ra::scheduler s, std::int64_t per) {
  ra::mutex m;
  std::int64_t counter = 0;
  auto const start = clock::now();
  std::vector<ra::join_handle<void>> hs;
  hs.reserve(sem_tasks);
  for (int i = 0; i < sem_tasks; ++i) hs.push_back(ra::spawn(s, mutex_worker(m, per, counter)));
  for (auto& h : hs) co_await std::move(h);
  double const ns = ns_between(start, clock::now());
  if (counter != per * sem_tasks) fail("async.mutex100: lost an increment");
  co_return ns;
}

sample mutex100_rouse_loop(const run_context& ctx) {
  std::int64_t const per = ctx.scaled(1'000'000) / sem_tasks;
  ra::run_loop loop;
  double const ns = loop.run_until_complete(mutex_root(loop.get_scheduler(), per));
  double const ops = static_cast<double>(per * sem_tasks);
  return {ns / ops, ops};
}

sample mutex100_rouse_pool(const run_context& ctx) {
  std::int64_t const per = ctx.scaled(1'000'000) / sem_tasks;
  ra::thread_pool pool(pool_threads);
  double const ns = ra::spawn(pool.get_scheduler(), mutex_root(pool.get_scheduler(), per)).join();
  double const ops = static_cast<double>(per * sem_tasks);
  return {ns / ops, ops};
}
#endif

// --- rouse: channels -----------------------------------------------------------

#if defined(ROUSE_BENCH_ASYNC_CHANNEL)
namespace rch = ra::channel;

ra::task<> funnel_producer(rch::sender<std::uint64_t> tx, std::uint64_t base, std::uint64_t per) {
  for (std::uint64_t i = 0; i < per; ++i)
    if (!co_await tx.send(base + i)) fail("async.channel_funnel: closed");
}

ra::task<double> funnel_root(ra::scheduler s, std::uint64_t per) {
  auto const start = clock::now();
  auto [tx, rx] = rch::bounded<std::uint64_t>(channel_capacity);
  for (int p = 0; p < producers; ++p)
    ra::spawn(s, funnel_producer(tx, static_cast<std::uint64_t>(p) * per, per)).detach();
  { auto const drop = std::move(tx); }  // the producers hold the only senders now
  std::uint64_t got = 0;
  for (;;) {
    auto r = co_await rx.recv();
    if (!r) break;  // closed: every producer is done
    keep(*r);
    ++got;
  }
  double const ns = ns_between(start, clock::now());
  if (got != per * producers) fail("async.channel_funnel: lost a message");
  co_return ns;
}

sample channel_funnel_rouse(const run_context& ctx) {
  auto const per = static_cast<std::uint64_t>(ctx.scaled(4'000'000) / producers);
  ra::thread_pool pool(pool_threads);
  double const ns = ra::spawn(pool.get_scheduler(), funnel_root(pool.get_scheduler(), per)).join();
  double const msgs = static_cast<double>(per * producers);
  return {msgs / (ns * 1e-9), msgs};
}

ra::task<> pingpong_echo(rch::receiver<int>& in, rch::sender<int>& out, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) {
    auto r = co_await in.recv();
    if (!r) fail("async.channel_pingpong: closed");
    if (!co_await out.send(*r)) fail("async.channel_pingpong: closed");
  }
}

ra::task<double> pingpong_ping(rch::sender<int>& out, rch::receiver<int>& in, std::int64_t n) {
  auto const start = clock::now();
  for (std::int64_t i = 0; i < n; ++i) {
    if (!co_await out.send(static_cast<int>(i))) fail("async.channel_pingpong: closed");
    auto r = co_await in.recv();
    if (!r || *r != static_cast<int>(i)) fail("async.channel_pingpong: wrong value");
  }
  co_return ns_between(start, clock::now());
}

// Both sides spawned, as the peers' are (a spawned task's waits register
// stop callbacks; a root task's without a token would not).
ra::task<double> pingpong_root(ra::run_loop& loop, std::int64_t n) {
  auto [ping_tx, ping_rx] = rch::bounded<int>(0);
  auto [pong_tx, pong_rx] = rch::bounded<int>(0);
  auto echo = ra::spawn(loop, pingpong_echo(ping_rx, pong_tx, n));
  auto me = ra::spawn(loop, pingpong_ping(ping_tx, pong_rx, n));
  double const ns = co_await std::move(me);
  co_await std::move(echo);
  co_return ns;
}

sample channel_pingpong_rouse(const run_context& ctx) {
  std::int64_t const n = ctx.scaled(1'000'000);
  ra::run_loop loop;
  double const ns = loop.run_until_complete(pingpong_root(loop, n));
  return {ns / static_cast<double>(n), static_cast<double>(n)};
}

ra::task<std::uint64_t> thread_to_task_receiver(rch::receiver<std::uint64_t>& rx) {
  std::uint64_t got = 0;
  for (;;) {
    auto r = co_await rx.recv();
    if (!r) break;
    keep(*r);
    ++got;
  }
  co_return got;
}

sample thread_to_task_rouse(const run_context& ctx) {
  auto const n = static_cast<std::uint64_t>(ctx.scaled(4'000'000));
  auto [tx, rx] = rch::bounded<std::uint64_t>(channel_capacity);
  ra::run_loop loop;
  auto const start = clock::now();
  std::thread producer([n, tx = std::move(tx)]() mutable {
    for (std::uint64_t i = 0; i < n; ++i)
      if (!tx.send_blocking(i)) fail("async.thread_to_task: closed");
  });  // tx goes with the thread: the channel closes when it ends
  std::uint64_t const got = loop.run_until_complete(thread_to_task_receiver(rx));
  double const ns = ns_between(start, clock::now());
  producer.join();
  if (got != n) fail("async.thread_to_task: lost a message");
  return {static_cast<double>(n) / (ns * 1e-9), static_cast<double>(n)};
}
#endif

// --- Boost.Asio ----------------------------------------------------------------

#if defined(ROUSE_BENCH_SYNC_ASIO)
namespace asio = boost::asio;
using boost::system::error_code;
using asio_permit = asio::experimental::channel<void(error_code)>;                   // one thread
using asio_permit_mt = asio::experimental::concurrent_channel<void(error_code)>;     // a pool
using asio_values_mt = asio::experimental::concurrent_channel<void(error_code, std::uint64_t)>;
using asio_values = asio::experimental::channel<void(error_code, int)>;

// A channel of capacity 1 as a semaphore of one permit: send acquires (waits
// while the slot is full), try_receive releases.
template <class Permit>
asio::awaitable<void> asio_sem_worker(Permit* sem, std::int64_t per, bool hold, std::int64_t* counter) {
  auto ex = co_await asio::this_coro::executor;
  for (std::int64_t i = 0; i < per; ++i) {
    co_await sem->async_send(error_code{}, asio::use_awaitable);
    if (hold) co_await asio::post(ex, asio::use_awaitable);
    if (counter) ++*counter;
    if (!sem->try_receive([](error_code) {})) fail("asio semaphore: release found no permit");
  }
}

template <bool Hold>
sample semaphore100_asio(const run_context& ctx) {
  std::int64_t const per = ctx.scaled(1'000'000) / sem_tasks;
  asio::io_context io(1);
  asio_permit sem(io, 1);
  auto const start = clock::now();
  for (int i = 0; i < sem_tasks; ++i)
    asio::co_spawn(io, asio_sem_worker(&sem, per, Hold, static_cast<std::int64_t*>(nullptr)), asio::detached);
  io.run();
  double const ns = ns_between(start, clock::now());
  double const ops = static_cast<double>(per * sem_tasks);
  return {ops / (ns * 1e-9), ops};
}

sample mutex100_asio_loop(const run_context& ctx) {
  std::int64_t const per = ctx.scaled(1'000'000) / sem_tasks;
  asio::io_context io(1);
  asio_permit sem(io, 1);
  std::int64_t counter = 0;
  auto const start = clock::now();
  for (int i = 0; i < sem_tasks; ++i) asio::co_spawn(io, asio_sem_worker(&sem, per, false, &counter), asio::detached);
  io.run();
  double const ns = ns_between(start, clock::now());
  if (counter != per * sem_tasks) fail("async.mutex100: asio lost an increment");
  double const ops = static_cast<double>(per * sem_tasks);
  return {ns / ops, ops};
}

sample mutex100_asio_pool(const run_context& ctx) {
  std::int64_t const per = ctx.scaled(1'000'000) / sem_tasks;
  std::int64_t counter = 0;
  double ns = 0;
  {
    asio::thread_pool pool(pool_threads);
    asio_permit_mt sem(pool.get_executor(), 1);
    auto const start = clock::now();
    for (int i = 0; i < sem_tasks; ++i)
      asio::co_spawn(pool, asio_sem_worker(&sem, per, false, &counter), asio::detached);
    pool.join();  // returns once every coroutine is done
    ns = ns_between(start, clock::now());
  }
  if (counter != per * sem_tasks) fail("async.mutex100: asio lost an increment");
  double const ops = static_cast<double>(per * sem_tasks);
  return {ns / ops, ops};
}

asio::awaitable<void> asio_latency_waiter(asio_permit_mt* ch, latency_probe* p) {
  for (std::size_t i = 0; i < p->lat.size(); ++i) {
    co_await ch->async_receive(asio::use_awaitable);
    p->resumed(i);
  }
}

sample wake_latency_asio(const run_context& ctx) {
  latency_probe p(latency_count(ctx));
  asio::io_context io(1);
  asio_permit_mt ch(io, 1);
  asio::co_spawn(io, asio_latency_waiter(&ch, &p), asio::detached);
  std::thread loop_thread([&] { io.run(); });
  p.drive([&] {
    if (!ch.try_send(error_code{})) fail("async.wake_latency: asio channel full");
  });
  loop_thread.join();
  return p.finish();
}

asio::awaitable<void> asio_funnel_producer(asio_values_mt* ch, std::uint64_t base, std::uint64_t per) {
  for (std::uint64_t i = 0; i < per; ++i) co_await ch->async_send(error_code{}, base + i, asio::use_awaitable);
}

asio::awaitable<void> asio_funnel_root(asio_values_mt* ch, std::uint64_t per, double* ns) {
  auto ex = co_await asio::this_coro::executor;
  auto const start = clock::now();
  for (int p = 0; p < producers; ++p)
    asio::co_spawn(ex, asio_funnel_producer(ch, static_cast<std::uint64_t>(p) * per, per), asio::detached);
  for (std::uint64_t got = 0; got < per * producers; ++got) keep(co_await ch->async_receive(asio::use_awaitable));
  *ns = ns_between(start, clock::now());
}

sample channel_funnel_asio(const run_context& ctx) {
  auto const per = static_cast<std::uint64_t>(ctx.scaled(4'000'000) / producers);
  double ns = 0;
  {
    asio::thread_pool pool(pool_threads);
    asio_values_mt ch(pool.get_executor(), channel_capacity);
    asio::co_spawn(pool, asio_funnel_root(&ch, per, &ns), asio::detached);
    pool.join();
  }
  double const msgs = static_cast<double>(per * producers);
  return {msgs / (ns * 1e-9), msgs};
}

asio::awaitable<void> asio_pingpong_echo(asio_values* ping, asio_values* pong, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) {
    int const v = co_await ping->async_receive(asio::use_awaitable);
    co_await pong->async_send(error_code{}, v, asio::use_awaitable);
  }
}

asio::awaitable<void> asio_pingpong_root(asio_values* ping, asio_values* pong, std::int64_t n, double* ns) {
  auto const start = clock::now();
  for (std::int64_t i = 0; i < n; ++i) {
    co_await ping->async_send(error_code{}, static_cast<int>(i), asio::use_awaitable);
    if (co_await pong->async_receive(asio::use_awaitable) != static_cast<int>(i)) fail("asio pingpong: wrong value");
  }
  *ns = ns_between(start, clock::now());
}

sample channel_pingpong_asio(const run_context& ctx) {
  std::int64_t const n = ctx.scaled(1'000'000);
  asio::io_context io(1);
  asio_values ping(io, 0), pong(io, 0);  // capacity 0: a send completes when received
  double ns = 0;
  asio::co_spawn(io, asio_pingpong_echo(&ping, &pong, n), asio::detached);
  asio::co_spawn(io, asio_pingpong_root(&ping, &pong, n, &ns), asio::detached);
  io.run();
  return {ns / static_cast<double>(n), static_cast<double>(n)};
}

asio::awaitable<void> asio_thread_to_task_receiver(asio_values_mt* ch, std::uint64_t n) {
  for (std::uint64_t got = 0; got < n; ++got) keep(co_await ch->async_receive(asio::use_awaitable));
}

sample thread_to_task_asio(const run_context& ctx) {
  auto const n = static_cast<std::uint64_t>(ctx.scaled(4'000'000));
  asio::io_context io(1);
  asio_values_mt ch(io, channel_capacity);
  asio::co_spawn(io, asio_thread_to_task_receiver(&ch, n), asio::detached);
  auto const start = clock::now();
  std::thread producer([&] {
    for (std::uint64_t i = 0; i < n; ++i)
      if (!ch.try_send(error_code{}, i)) ch.async_send(error_code{}, i, asio::use_future).get();
  });
  io.run();
  double const ns = ns_between(start, clock::now());
  producer.join();
  return {static_cast<double>(n) / (ns * 1e-9), static_cast<double>(n)};
}
#endif

// --- Boost.Fiber ---------------------------------------------------------------

#if defined(ROUSE_BENCH_HAVE_BOOST_FIBER)
namespace fibers = boost::fibers;

// Runs body() on a fresh thread whose fibers use the default round_robin
// scheduler (one thread), or on the first of `threads` fresh threads that all
// share one ready queue (algo::shared_work); the others run fibers until
// body() returned. Returns body()'s result.
template <class Body>
double on_fiber_threads(unsigned threads, Body&& body) {
  double result = 0;
  if (threads == 1) {
    std::thread t([&] { result = body(); });
    t.join();
    return result;
  }
  fibers::mutex done_lock;
  fibers::condition_variable done_cv;
  bool done = false;
  std::vector<std::thread> helpers;
  for (unsigned i = 1; i < threads; ++i)
    helpers.emplace_back([&] {
      fibers::use_scheduling_algorithm<fibers::algo::shared_work>();
      std::unique_lock<fibers::mutex> lk(done_lock);
      done_cv.wait(lk, [&] { return done; });
    });
  std::thread main([&] {
    fibers::use_scheduling_algorithm<fibers::algo::shared_work>();
    result = body();
    {
      std::unique_lock<fibers::mutex> lk(done_lock);
      done = true;
    }
    done_cv.notify_all();
  });
  main.join();
  for (auto& h : helpers) h.join();
  return result;
}

template <bool Hold>
sample semaphore100_fiber(const run_context& ctx) {
  std::int64_t const per = ctx.scaled(1'000'000) / sem_tasks;
  double const ns = on_fiber_threads(1, [&] {
    fibers::mutex sem;  // one permit
    auto const start = clock::now();
    std::vector<fibers::fiber> fs;
    fs.reserve(sem_tasks);
    for (int i = 0; i < sem_tasks; ++i)
      fs.emplace_back([&] {
        for (std::int64_t k = 0; k < per; ++k) {
          sem.lock();
          if (Hold) boost::this_fiber::yield();
          sem.unlock();
        }
      });
    for (auto& f : fs) f.join();
    return ns_between(start, clock::now());
  });
  double const ops = static_cast<double>(per * sem_tasks);
  return {ops / (ns * 1e-9), ops};
}

template <unsigned Threads>
sample mutex100_fiber(const run_context& ctx) {
  std::int64_t const per = ctx.scaled(1'000'000) / sem_tasks;
  std::int64_t counter = 0;
  double const ns = on_fiber_threads(Threads, [&] {
    fibers::mutex m;
    auto const start = clock::now();
    std::vector<fibers::fiber> fs;
    fs.reserve(sem_tasks);
    for (int i = 0; i < sem_tasks; ++i)
      fs.emplace_back([&] {
        for (std::int64_t k = 0; k < per; ++k) {
          std::lock_guard<fibers::mutex> g(m);
          ++counter;
        }
      });
    for (auto& f : fs) f.join();
    return ns_between(start, clock::now());
  });
  if (counter != per * sem_tasks) fail("async.mutex100: fiber lost an increment");
  double const ops = static_cast<double>(per * sem_tasks);
  return {ns / ops, ops};
}

sample wake_latency_fiber(const run_context& ctx) {
  latency_probe p(latency_count(ctx));
  fibers::buffered_channel<int> ch(2);  // holds one value
  std::thread waiter([&] {
    fibers::fiber f([&] {
      int v = 0;
      for (std::size_t i = 0; i < p.lat.size(); ++i) {
        if (ch.pop(v) != fibers::channel_op_status::success) fail("async.wake_latency: fiber channel");
        p.resumed(i);
      }
    });
    f.join();
  });
  std::thread waker([&] {
    p.drive([&] {
      if (ch.try_push(1) != fibers::channel_op_status::success) fail("async.wake_latency: fiber channel full");
    });
  });
  waker.join();
  waiter.join();
  return p.finish();
}

sample channel_funnel_fiber(const run_context& ctx) {
  auto const per = static_cast<std::uint64_t>(ctx.scaled(4'000'000) / producers);
  double const ns = on_fiber_threads(pool_threads, [&] {
    fibers::buffered_channel<std::uint64_t> ch(1024);  // 1023 values
    auto const start = clock::now();
    std::vector<fibers::fiber> fs;
    for (int p = 0; p < producers; ++p)
      fs.emplace_back([&ch, p, per] {
        for (std::uint64_t i = 0; i < per; ++i) ch.push(static_cast<std::uint64_t>(p) * per + i);
      });
    std::uint64_t v = 0;
    for (std::uint64_t got = 0; got < per * producers; ++got) {
      if (ch.pop(v) != fibers::channel_op_status::success) fail("async.channel_funnel: fiber channel");
      keep(v);
    }
    double const t = ns_between(start, clock::now());
    for (auto& f : fs) f.join();
    return t;
  });
  double const msgs = static_cast<double>(per * producers);
  return {msgs / (ns * 1e-9), msgs};
}

sample channel_pingpong_fiber(const run_context& ctx) {
  std::int64_t const n = ctx.scaled(1'000'000);
  double const ns = on_fiber_threads(1, [&] {
    fibers::unbuffered_channel<int> ping, pong;
    fibers::fiber echo([&] {
      int v = 0;
      for (std::int64_t i = 0; i < n; ++i) {
        ping.pop(v);
        pong.push(v);
      }
    });
    auto const start = clock::now();
    int v = 0;
    for (std::int64_t i = 0; i < n; ++i) {
      ping.push(static_cast<int>(i));
      pong.pop(v);
      if (v != static_cast<int>(i)) fail("async.channel_pingpong: fiber wrong value");
    }
    double const t = ns_between(start, clock::now());
    echo.join();
    return t;
  });
  return {ns / static_cast<double>(n), static_cast<double>(n)};
}

sample thread_to_task_fiber(const run_context& ctx) {
  auto const n = static_cast<std::uint64_t>(ctx.scaled(4'000'000));
  fibers::buffered_channel<std::uint64_t> ch(1024);
  auto const start = clock::now();
  std::thread producer([&] {
    for (std::uint64_t i = 0; i < n; ++i) ch.push(i);  // a plain thread: blocks in its own scheduler
  });
  std::thread consumer([&] {
    fibers::fiber f([&] {
      std::uint64_t v = 0;
      for (std::uint64_t got = 0; got < n; ++got) {
        if (ch.pop(v) != fibers::channel_op_status::success) fail("async.thread_to_task: fiber channel");
        keep(v);
      }
    });
    f.join();
  });
  consumer.join();
  double const ns = ns_between(start, clock::now());
  producer.join();
  return {static_cast<double>(n) / (ns * 1e-9), static_cast<double>(n)};
}
#endif

}  // namespace

ROUSE_BENCH_REGISTER(async_sync_workloads) {
  using rouse::bench::add;
  add({
      .name = "async.semaphore100",
      .unit = "ops/s",
      // The summary compares rouse's best row with the baseline: both are the
      // "no await while held" shape (the other rows are in the table).
      .baseline = "boost::asio::experimental::channel cap 1 as semaphore (io_context, 1 thread; no await while held)",
      .impls =
          {
#if defined(ROUSE_BENCH_ASYNC_SEMAPHORE)
              {"rouse::async::semaphore (run_loop; hold across yield)", semaphore100_rouse<true>},
              {"rouse::async::semaphore (run_loop; no await while held)", semaphore100_rouse<false>},
#endif
#if defined(ROUSE_BENCH_SYNC_ASIO)
              {"boost::asio::experimental::channel cap 1 as semaphore (io_context, 1 thread; hold across yield)",
               semaphore100_asio<true>},
              {"boost::asio::experimental::channel cap 1 as semaphore (io_context, 1 thread; no await while held)",
               semaphore100_asio<false>},
#endif
#if defined(ROUSE_BENCH_HAVE_BOOST_FIBER)
              {"boost::fibers::mutex as 1-permit semaphore (1 thread; hold across yield)", semaphore100_fiber<true>},
              {"boost::fibers::mutex as 1-permit semaphore (1 thread; no await while held)",
               semaphore100_fiber<false>},
#endif
          },
      .description = "100 tasks contend for 1 permit on one single-thread executor, 1,000,000 acquire/release in "
                     "total (the Rust anchor: 500,000); permit held across a yield, or not; acquires/s.",
  });
  add({
      .name = "async.wake_latency",
      .unit = "ns/op",
      .baseline = "boost::asio::experimental::concurrent_channel (io_context, 1 thread)",
      .impls =
          {
              {"rouse::async::notify (run_loop)", wake_latency_rouse<via_notify>},
              {"rouse::async::auto_reset_event (run_loop)", wake_latency_rouse<via_event>},
#if defined(ROUSE_BENCH_SYNC_ASIO)
              {"boost::asio::experimental::concurrent_channel (io_context, 1 thread)", wake_latency_asio},
#endif
#if defined(ROUSE_BENCH_HAVE_BOOST_FIBER)
              {"boost::fibers::buffered_channel (fiber on 1 thread)", wake_latency_fiber},
#endif
          },
      .rounds = 5,
      .description = "a plain thread wakes one task parked on its executor's thread (50 us after the previous wake "
                     "was seen), 4,000 wakes; median ns from the wake call to the task's resumption, p99 in extra.",
  });
  add({
      .name = "async.mutex100",
      .unit = "ns/op",
      .baseline = "boost::asio::experimental::channel cap 1 as mutex (io_context, 1 thread)",
      .impls =
          {
#if defined(ROUSE_BENCH_ASYNC_MUTEX)
              {"rouse::async::mutex (run_loop)", mutex100_rouse_loop},
              {"rouse::async::mutex (thread_pool 2)", mutex100_rouse_pool},
#endif
#if defined(ROUSE_BENCH_SYNC_ASIO)
              {"boost::asio::experimental::channel cap 1 as mutex (io_context, 1 thread)", mutex100_asio_loop},
              {"boost::asio::experimental::concurrent_channel cap 1 as mutex (thread_pool 2)", mutex100_asio_pool},
#endif
#if defined(ROUSE_BENCH_HAVE_BOOST_FIBER)
              {"boost::fibers::mutex (1 thread)", mutex100_fiber<1>},
              {"boost::fibers::mutex (2 threads, shared_work)", mutex100_fiber<2>},
#endif
          },
      .description = "100 tasks, 1,000,000 increments of one counter under the async mutex (no await while held), "
                     "on one thread and on 2 worker threads; ns per increment.",
  });
  add({
      .name = "async.channel_funnel",
      .unit = "msgs/s",
      .baseline = "boost::asio::experimental::concurrent_channel (thread_pool 2)",
      .impls =
          {
#if defined(ROUSE_BENCH_ASYNC_CHANNEL)
              {"rouse::async::channel::bounded (thread_pool 2)", channel_funnel_rouse},
#endif
#if defined(ROUSE_BENCH_SYNC_ASIO)
              {"boost::asio::experimental::concurrent_channel (thread_pool 2)", channel_funnel_asio},
#endif
#if defined(ROUSE_BENCH_HAVE_BOOST_FIBER)
              {"boost::fibers::buffered_channel 1024 (2 threads, shared_work)", channel_funnel_fiber},
#endif
          },
      .rounds = 5,  // the slow peers (0.7-3 M msgs/s) take 5-6 s a run: the full run's time limit
      .description = "4 producer tasks, 1 consumer, bounded 1000, on a 2-worker pool, 4,000,000 messages "
                     "(spawns included, as the tokio anchor).",
  });
  add({
      .name = "async.channel_pingpong",
      .unit = "ns/roundtrip",
      .baseline = "boost::asio::experimental::channel cap 0 (io_context, 1 thread)",
      .impls =
          {
#if defined(ROUSE_BENCH_ASYNC_CHANNEL)
              {"rouse::async::channel::bounded(0) (run_loop)", channel_pingpong_rouse},
#endif
#if defined(ROUSE_BENCH_SYNC_ASIO)
              {"boost::asio::experimental::channel cap 0 (io_context, 1 thread)", channel_pingpong_asio},
#endif
#if defined(ROUSE_BENCH_HAVE_BOOST_FIBER)
              {"boost::fibers::unbuffered_channel (1 thread)", channel_pingpong_fiber},
#endif
          },
      .description = "two tasks on one thread, two rendezvous channels, 1,000,000 round trips.",
  });
  add({
      .name = "async.thread_to_task",
      .unit = "msgs/s",
      .baseline = "boost::asio::experimental::concurrent_channel (thread: try_send, else async_send(use_future))",
      .impls =
          {
#if defined(ROUSE_BENCH_ASYNC_CHANNEL)
              {"rouse::async::channel::bounded (thread: send_blocking; task on run_loop)", thread_to_task_rouse},
#endif
#if defined(ROUSE_BENCH_SYNC_ASIO)
              {"boost::asio::experimental::concurrent_channel (thread: try_send, else async_send(use_future))",
               thread_to_task_asio},
#endif
#if defined(ROUSE_BENCH_HAVE_BOOST_FIBER)
              {"boost::fibers::buffered_channel 1024 (thread: push; fiber on 1 thread)", thread_to_task_fiber},
#endif
          },
      .rounds = 5,  // the slow peers (0.7-3 M msgs/s) take 5-6 s a run: the full run's time limit
      .description = "a plain thread sends, a task receives, bounded 1000, 4,000,000 messages.",
  });
#if !defined(ROUSE_BENCH_SYNC_ASIO)
  rouse::bench::skipped("async\\.(semaphore100|wake_latency|mutex100|channel_.*|thread_to_task)", "boost::asio",
                        "Boost 1.81 (asio/experimental/channel.hpp) not installed");
#endif
#if !defined(ROUSE_BENCH_HAVE_BOOST_FIBER)
  rouse::bench::skipped("async\\.(semaphore100|wake_latency|mutex100|channel_.*|thread_to_task)", "boost::fibers",
                        "Boost.Fiber 1.81 (libboost-fiber1.81-dev) not installed");
#endif
#if !defined(ROUSE_BENCH_ASYNC_SEMAPHORE) || !defined(ROUSE_BENCH_ASYNC_MUTEX) || !defined(ROUSE_BENCH_ASYNC_CHANNEL)
  rouse::bench::skipped("async\\.(semaphore100|mutex100|channel_.*|thread_to_task)", "rouse::async",
                        "rouse/async/semaphore.hpp, mutex.hpp or channel.hpp not there yet");
#endif
}
