// channel.* workloads: rouse::channel's bounded, rendezvous and unbounded
// channels against the queues C++ users pick today.
//
//   channel.spsc             bounded 1024, 1 producer, 1 consumer, 4,000,000 msgs   msgs/s
//   channel.mpsc4            bounded 1024, 4 producers, 1 consumer, 4,000,000       msgs/s
//   channel.mpmc4x4          bounded 1024, 4 producers, 4 consumers, 4,000,000      msgs/s
//   channel.rendezvous       capacity 0, 1 producer, 1 consumer, 1,000,000          ns/op
//   channel.unbounded_mpsc4  unbounded, 4 producers, 1 consumer, 4,000,000          msgs/s
//   --scale: channel.mpsc8, channel.mpsc16 (8 / 16 producers, 1 consumer),
//   channel.mpmc8x8, channel.mpmc16x16; bounded 1024, 4,000,000     msgs/s
//
// Messages are 64-bit integers; every operation is the blocking form
// (send/recv, push/pop, enqueue/wait_dequeue). The consumers check the sum
// of what they received, so a lost or duplicated message aborts the run.
//
// rouse rows: the default ring (ring::automatic) and each ring named, so
// that one run shows which ring wins on the machine at hand.
//
// Peers: tbb::concurrent_bounded_queue (set_capacity(1024); unbounded for
// channel.unbounded_mpsc4), moodycamel::BlockingConcurrentQueue (it has no
// bound and no blocking enqueue; in the bounded workloads a semaphore of 1024
// free slots holds it to the capacity, as moodycamel's own bounded blocking
// buffer does; the row "moodycamel (unbounded enqueue)" is the same queue
// without the bound, whose producers never wait: shown, but it does not do
// the bounded workloads' job; it is not linearizable across producers
// either), and "mutex+condvar ring": a
// std::mutex and two std::condition_variables around a ring (capacity 0: a
// single hand-off slot where the sender waits until the value is taken;
// unbounded: a std::deque). Neither TBB nor moodycamel has a rendezvous
// queue, so channel.rendezvous compares rouse with the mutex+condvar one.
// Peers that take longer than 1.5 s for a run send fewer messages in their
// later rounds (see run_budget); the rate is what is compared.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "harness.hpp"
#include "rouse/channel/channel.hpp"

#if ROUSE_BENCH_HAVE_TBB
#include <tbb/concurrent_queue.h>
#endif
#if ROUSE_BENCH_HAVE_MOODYCAMEL
#include <concurrentqueue/blockingconcurrentqueue.h>
#endif

namespace {

using rouse::bench::run_context;
using rouse::bench::run_threads;
using rouse::bench::sample;
using msg = std::uint64_t;

constexpr std::size_t ring_capacity = 1024;

// --- one face per implementation -----------------------------------------
// Each queue type Q offers: Q(capacity) (0 = rendezvous, SIZE_MAX =
// unbounded), push(v), pop() -> msg.

template <rouse::channel::ring Ring = rouse::channel::ring::automatic>
struct rouse_queue {
  rouse::channel::sender<msg> tx;
  rouse::channel::receiver<msg> rx;
  explicit rouse_queue(std::size_t cap) {
    auto [t, r] = cap == SIZE_MAX ? rouse::channel::unbounded<msg>() : rouse::channel::bounded<msg>(cap, Ring);
    tx = std::move(t);
    rx = std::move(r);
  }
  void push(msg v) {
    if (!tx.send(v)) std::abort();
  }
  msg pop() {
    auto r = rx.recv();
    if (!r) std::abort();
    return *r;
  }
};

#if ROUSE_BENCH_HAVE_TBB
struct tbb_queue {
  tbb::concurrent_bounded_queue<msg> q;
  explicit tbb_queue(std::size_t cap) {
    if (cap != SIZE_MAX) q.set_capacity(static_cast<std::ptrdiff_t>(cap));
  }
  void push(msg v) { q.push(v); }
  msg pop() {
    msg v = 0;
    q.pop(v);
    return v;
  }
};
#endif

#if ROUSE_BENCH_HAVE_MOODYCAMEL
// moodycamel's queue has no blocking enqueue and no bound of its own: with
// `enqueue` a producer allocates past the initial slots and never waits
// (this face, also the unbounded workload's peer).
struct moodycamel_queue {
  moodycamel::BlockingConcurrentQueue<msg> q;
  explicit moodycamel_queue(std::size_t cap) : q(cap == SIZE_MAX ? 32 * 4 : cap) {}
  void push(msg v) {
    if (!q.enqueue(v)) std::abort();
  }
  msg pop() {
    msg v = 0;
    q.wait_dequeue(v);
    return v;
  }
};

// The same queue held to `cap` messages the way moodycamel's own bounded
// blocking buffer (BlockingReaderWriterCircularBuffer) is built: a
// LightweightSemaphore counts free slots; a producer takes one before it
// enqueues, the consumer gives one back after it dequeues. This is the face
// that does the bounded workloads' job (producers wait while 1024 are queued).
struct moodycamel_bounded_queue {
  moodycamel::BlockingConcurrentQueue<msg> q;
  moodycamel::LightweightSemaphore free_slots;
  explicit moodycamel_bounded_queue(std::size_t cap)
      : q(cap), free_slots(static_cast<moodycamel::LightweightSemaphore::ssize_t>(cap)) {}
  void push(msg v) {
    while (!free_slots.wait()) {
    }
    if (!q.enqueue(v)) std::abort();
  }
  msg pop() {
    msg v = 0;
    q.wait_dequeue(v);
    free_slots.signal();
    return v;
  }
};
#endif

// A std::mutex and two condition variables around a ring.
struct mutex_ring {
  std::mutex m;
  std::condition_variable not_full, not_empty, taken;
  std::size_t cap;
  std::vector<msg> ring;
  std::deque<msg> list;  // unbounded
  std::size_t head = 0, count = 0;
  std::uint64_t sent = 0, received = 0;  // rendezvous: hand-off counts

  explicit mutex_ring(std::size_t c) : cap(c), ring(c == SIZE_MAX || c == 0 ? 1 : c) {}

  void push(msg v) {
    std::unique_lock lock(m);
    if (cap == SIZE_MAX) {
      list.push_back(v);
      lock.unlock();
      not_empty.notify_one();
      return;
    }
    std::size_t const room = cap == 0 ? 1 : cap;
    not_full.wait(lock, [&] { return count < room; });
    ring[(head + count) % room] = v;
    ++count;
    std::uint64_t const mine = ++sent;
    not_empty.notify_one();
    if (cap == 0) taken.wait(lock, [&] { return received >= mine; });
  }
  msg pop() {
    std::unique_lock lock(m);
    if (cap == SIZE_MAX) {
      not_empty.wait(lock, [&] { return !list.empty(); });
      msg const v = list.front();
      list.pop_front();
      return v;
    }
    std::size_t const room = cap == 0 ? 1 : cap;
    not_empty.wait(lock, [&] { return count > 0; });
    msg const v = ring[head];
    head = (head + 1) % room;
    --count;
    ++received;
    not_full.notify_one();
    if (cap == 0) taken.notify_all();
    return v;
  }
};

// --- the runs --------------------------------------------------------------

// `producers` threads send `total` messages in all, `consumers` receive them.
template <class Q>
double run_transfer(std::size_t capacity, unsigned producers, unsigned consumers, std::int64_t total) {
  Q q(capacity);
  std::int64_t const per_producer = total / producers;
  std::int64_t const sent = per_producer * producers;
  std::int64_t const per_consumer = sent / consumers;
  std::atomic<std::uint64_t> sum{0};
  double const ns = run_threads(producers + consumers, [&](unsigned i) {
    if (i < producers) {
      for (std::int64_t k = 0; k < per_producer; ++k) q.push(static_cast<msg>(k + 1));
    } else {
      std::int64_t n = per_consumer;
      if (i == producers) n += sent - per_consumer * consumers;  // the remainder
      std::uint64_t local = 0;
      for (std::int64_t k = 0; k < n; ++k) local += q.pop();
      sum.fetch_add(local, std::memory_order_relaxed);
    }
  });
  std::uint64_t const expected = static_cast<std::uint64_t>(producers) * static_cast<std::uint64_t>(per_producer) *
                                 static_cast<std::uint64_t>(per_producer + 1) / 2;
  if (sum.load() != expected) {
    std::fprintf(stderr, "channel bench: lost or duplicated messages\n");
    std::abort();
  }
  return ns / static_cast<double>(sent);  // ns per message
}

// A run longer than this is cut down in the next rounds (see `run_budget`).
constexpr double max_run_ns = 1.5e9;

// Messages for the next run of one implementation of one workload. Some
// peers collapse when threads outnumber cores (tbb::concurrent_bounded_queue
// spins in sched_yield: ~0.1 M msgs/s in mpmc4x4 on 2 vCPUs, 40 s for 4 M
// messages). So that the family stays inside rouse-bench's time limit, the
// first round of each implementation is a probe with 1/16 of the workload's
// messages, and later rounds send the full count, or as many as fit in
// max_run_ns at the probed rate (never fewer than 1/64 of the count). The
// unit is a rate (or a time per message), so rounds of different lengths
// stay comparable; `extra.messages` reports the counts used.
struct run_budget {
  std::int64_t full;
  std::int64_t next = 0;
  std::int64_t take(const run_context& ctx) {
    std::int64_t const n = ctx.scaled(full);
    if (next == 0) next = std::max<std::int64_t>(n / 16, 1000);  // the probe
    return std::min(next, n);
  }
  void record(const run_context& ctx, std::int64_t used, double ns_per) {
    std::int64_t const n = ctx.scaled(full);
    std::int64_t const floor = std::max<std::int64_t>(n / 64, 1000);
    double const fit = max_run_ns / std::max(ns_per, 1e-3);
    next = std::clamp<std::int64_t>(static_cast<std::int64_t>(std::min(fit, static_cast<double>(n))), floor, n);
    (void)used;
  }
};

template <class Q, unsigned P, unsigned C>
sample bounded_rate(const run_context& ctx) {
  static run_budget budget{4'000'000};
  std::int64_t const total = budget.take(ctx);
  double const ns_per = run_transfer<Q>(ring_capacity, P, C, total);
  budget.record(ctx, total, ns_per);
  return {1e9 / ns_per, static_cast<double>(total), {{"messages", static_cast<double>(total)}}};
}

template <class Q>
sample unbounded_rate(const run_context& ctx) {
  static run_budget budget{4'000'000};
  std::int64_t const total = budget.take(ctx);
  double const ns_per = run_transfer<Q>(SIZE_MAX, 4, 1, total);
  budget.record(ctx, total, ns_per);
  return {1e9 / ns_per, static_cast<double>(total), {{"messages", static_cast<double>(total)}}};
}

template <class Q>
sample rendezvous_ns(const run_context& ctx) {
  static run_budget budget{1'000'000};
  std::int64_t const total = budget.take(ctx);
  double const ns_per = run_transfer<Q>(0, 1, 1, total);
  budget.record(ctx, total, ns_per);
  return {ns_per, static_cast<double>(total), {{"messages", static_cast<double>(total)}}};
}

template <unsigned P, unsigned C>
std::vector<rouse::bench::impl> bounded_impls() {
  std::vector<rouse::bench::impl> v;
  using rouse::channel::ring;
  v.push_back({"rouse::channel::bounded", bounded_rate<rouse_queue<>, P, C>});
  v.push_back({"rouse bounded, ring::compare_exchange", bounded_rate<rouse_queue<ring::compare_exchange>, P, C>});
  v.push_back({"rouse bounded, ring::ticket", bounded_rate<rouse_queue<ring::ticket>, P, C>});
#if ROUSE_BENCH_HAVE_TBB
  v.push_back({"tbb::concurrent_bounded_queue", bounded_rate<tbb_queue, P, C>});
#endif
#if ROUSE_BENCH_HAVE_MOODYCAMEL
  v.push_back({"moodycamel::BlockingConcurrentQueue", bounded_rate<moodycamel_bounded_queue, P, C>});
  v.push_back({"moodycamel (unbounded enqueue)", bounded_rate<moodycamel_queue, P, C>});
#endif
  v.push_back({"mutex+condvar ring", bounded_rate<mutex_ring, P, C>});
  return v;
}

}  // namespace

ROUSE_BENCH_REGISTER(channel_workloads) {
  using rouse::bench::add;
  add({.name = "channel.spsc",
       .unit = "msgs/s",
       .baseline = "mutex+condvar ring",
       .impls = bounded_impls<1, 1>(),
       .description = "bounded 1024, 1 producer, 1 consumer, 4M 64-bit messages, blocking send/recv"});
  add({.name = "channel.mpsc4",
       .unit = "msgs/s",
       .baseline = "mutex+condvar ring",
       .impls = bounded_impls<4, 1>(),
       .description = "bounded 1024, 4 producers, 1 consumer, 4M messages in total"});
  add({.name = "channel.mpmc4x4",
       .unit = "msgs/s",
       .baseline = "mutex+condvar ring",
       .impls = bounded_impls<4, 4>(),
       .description = "bounded 1024, 4 producers, 4 consumers, 4M messages in total"});
  add({.name = "channel.mpmc8x8",
       .unit = "msgs/s",
       .baseline = "mutex+condvar ring",
       .impls = bounded_impls<8, 8>(),
       .description = "bounded 1024, 8 producers, 8 consumers, 4M messages in total (--scale)",
       .scale = true});
  // The many-core shapes (--scale): producers x consumers.
  auto const scaled = [](const char* name, std::vector<rouse::bench::impl> impls, const char* shape) {
    add({.name = name,
         .unit = "msgs/s",
         .baseline = "mutex+condvar ring",
         .impls = std::move(impls),
         .description = std::string("bounded 1024, ") + shape + ", 4M messages in total (--scale)",
         .scale = true});
  };
  scaled("channel.mpsc8", bounded_impls<8, 1>(), "8 producers, 1 consumer");
  scaled("channel.mpsc16", bounded_impls<16, 1>(), "16 producers, 1 consumer");
  scaled("channel.mpmc16x16", bounded_impls<16, 16>(), "16 producers, 16 consumers");
  add({.name = "channel.rendezvous",
       .unit = "ns/op",
       .baseline = "mutex+condvar ring",
       .impls = {{"rouse::channel::bounded", rendezvous_ns<rouse_queue<>>},
                 {"mutex+condvar ring", rendezvous_ns<mutex_ring>}},
       .description = "capacity 0 (send returns once the value is taken), 1 producer, 1 consumer, 1M messages"});
  std::vector<rouse::bench::impl> unbounded{{"rouse::channel::unbounded", unbounded_rate<rouse_queue<>>}};
#if ROUSE_BENCH_HAVE_TBB
  unbounded.push_back({"tbb::concurrent_bounded_queue", unbounded_rate<tbb_queue>});
#endif
#if ROUSE_BENCH_HAVE_MOODYCAMEL
  unbounded.push_back({"moodycamel::BlockingConcurrentQueue", unbounded_rate<moodycamel_queue>});
#endif
  unbounded.push_back({"mutex+condvar ring", unbounded_rate<mutex_ring>});
  add({.name = "channel.unbounded_mpsc4",
       .unit = "msgs/s",
       .baseline = "mutex+condvar ring",
       .impls = std::move(unbounded),
       .description = "unbounded, 4 producers, 1 consumer, 4M messages in total"});
#if !ROUSE_BENCH_HAVE_TBB
  rouse::bench::skipped("channel\\..*", "tbb::concurrent_bounded_queue", "oneTBB not installed");
#endif
#if !ROUSE_BENCH_HAVE_MOODYCAMEL
  rouse::bench::skipped("channel\\..*", "moodycamel::BlockingConcurrentQueue", "moodycamel not installed");
#endif
}
