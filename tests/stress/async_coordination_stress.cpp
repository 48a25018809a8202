// Stress: rouse::async::barrier, latch, condition_variable and with_timeout
// on the async::thread_pool with many more tasks than workers, plus plain
// threads on the same objects (more parties than cores):
//   - a barrier of 64 tasks and 2 threads through many phases: the
//     completion function runs exactly once per phase, and every party sees
//     the phase's completion before it goes on; some parties wait with
//     short timeouts that race the release (a timed-out wait keeps its
//     arrival and waits again with the same token);
//   - latches counted down by tasks and threads, waited by tasks (some with
//     timeouts) and a thread, and destroyed by the last waiter at once;
//     stops racing a latch's release: each wait ends exactly once;
//   - a stop that claims a latch's or a barrier's waiter while the release
//     walks thousands of waiters, and a party that release let through
//     destroying the object at once: the stopped wait touches nothing of it
//     after the release (AddressSanitizer; it did, unlinking its node);
//   - a bounded queue under an async::mutex and two condition variables:
//     producer and consumer tasks and threads, some consumers stopped at
//     random while they wait: every item is consumed exactly once (the
//     count and the sum), nobody is left waiting;
//   - with_timeout racing notify_one: each notification is received exactly
//     once (a lost one hangs the test; CTest's timeout fails it);
//   - with_timeout racing a semaphore's releases (an awaitable of its own,
//     awaited inside a task): a permit assigned to an acquire as its timer
//     fires is returned, never lost: every permit is back at the end.
// Sized by ROUSE_STRESS_SCALE (tests/support/stress.hpp).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "rouse/async/barrier.hpp"
#include "rouse/async/condition_variable.hpp"
#include "rouse/async/latch.hpp"
#include "rouse/async/mutex.hpp"
#include "rouse/async/notify.hpp"
#include "rouse/async/run_loop.hpp"
#include "rouse/async/semaphore.hpp"
#include "rouse/async/sleep.hpp"
#include "rouse/async/spawn.hpp"
#include "rouse/async/task.hpp"
#include "rouse/async/thread_pool.hpp"
#include "rouse/async/timeout.hpp"
#include "stress.hpp"

namespace async_coordination_stress {
namespace {

namespace ra = rouse::async;
using namespace std::chrono_literals;
using rouse_test::scaled;

unsigned pool_workers() { return 4; }  // twice the cores of the CI machines: oversubscribed

// ---- barrier ---------------------------------------------------------------------

struct phase_counter {
  std::atomic<long>* runs;
  void operator()() noexcept { runs->fetch_add(1, std::memory_order_relaxed); }
};

TEST(async_coordination_stress, barrier_of_64_tasks_runs_the_completion_once_per_phase) {
  long const phases = scaled(1000);
  constexpr int tasks = 64;
  constexpr int threads = 2;
  std::atomic<long> runs{0};
  ra::barrier<phase_counter> b(tasks + threads, phase_counter{&runs});
  std::atomic<long> early{0};  // a party that went on before its phase's completion ran
  ra::thread_pool pool(pool_workers());
  std::vector<ra::join_handle<void>> hs;
  for (int i = 0; i < tasks; ++i)
    hs.push_back(ra::spawn(pool.get_scheduler(), [](ra::barrier<phase_counter>& b, std::atomic<long>& runs,
                                                     std::atomic<long>& early, long phases,
                                                     bool timed) -> ra::task<> {
      for (long p = 1; p <= phases; ++p) {
        if (timed && p % 3 == 0) {
          auto token = b.arrive();
          while (!co_await b.wait_for(token, 1us)) {
          }
        } else {
          co_await b.arrive_and_wait();
        }
        if (runs.load(std::memory_order_relaxed) < p) early.fetch_add(1);
      }
    }(b, runs, early, phases, i % 8 == 0)));
  std::vector<std::thread> ts;
  for (int i = 0; i < threads; ++i)
    ts.emplace_back([&] {
      for (long p = 1; p <= phases; ++p) {
        b.arrive_and_wait_blocking();
        if (runs.load(std::memory_order_relaxed) < p) early.fetch_add(1);
      }
    });
  for (auto& t : ts) t.join();
  for (auto& h : hs) h.join();
  EXPECT_EQ(runs.load(), phases);
  EXPECT_EQ(early.load(), 0);
}

// ---- latch -------------------------------------------------------------------------

TEST(async_coordination_stress, latches_release_tasks_and_threads_and_die_at_once) {
  long const rounds = scaled(400);
  constexpr int counters = 6;  // tasks and a thread count down
  constexpr int waiters = 4;   // tasks (half of them timed) and the main thread wait
  ra::thread_pool pool(pool_workers());
  std::atomic<long> released{0};
  for (long r = 0; r < rounds; ++r) {
    auto* l = new ra::latch(counters + 1);
    // The last of the waiters (the waiting tasks and this thread) deletes it.
    auto remaining = std::make_shared<std::atomic<int>>(waiters + 1);
    auto leave = [l, remaining]() {
      if (remaining->fetch_sub(1) == 1) delete l;
    };
    std::vector<ra::join_handle<void>> hs;
    for (int i = 0; i < waiters; ++i)
      hs.push_back(ra::spawn(pool.get_scheduler(), [](ra::latch& l, bool timed, std::atomic<long>& released,
                                                       decltype(leave) leave) -> ra::task<> {
        if (timed) {
          while (!co_await l.wait_for(2us)) {
          }
        } else {
          co_await l.wait();
        }
        released.fetch_add(1);
        leave();
      }(*l, i % 2 == 0, released, leave)));
    for (int i = 0; i < counters; ++i)
      hs.push_back(ra::spawn(pool.get_scheduler(), [](ra::latch& l) -> ra::task<> {
        l.count_down();
        co_return;
      }(*l)));
    std::thread counter([l] { l->count_down(); });
    l->wait_blocking();
    released.fetch_add(1);
    leave();
    counter.join();
    for (auto& h : hs) h.join();
  }
  EXPECT_EQ(released.load(), rounds * (waiters + 1));
}

TEST(async_coordination_stress, stops_racing_a_latch_release_end_each_wait_exactly_once) {
  long const rounds = scaled(300);
  constexpr int waiters = 8;
  ra::thread_pool pool(pool_workers());
  long completed = 0;
  long stopped = 0;
  for (long r = 0; r < rounds; ++r) {
    ra::latch l(1);
    std::vector<ra::join_handle<void>> hs;
    for (int i = 0; i < waiters; ++i)
      hs.push_back(ra::spawn(pool.get_scheduler(), [](ra::latch& l) -> ra::task<> { co_await l.wait(); }(l)));
    std::thread stopper([&hs] {
      for (int i = 0; i < waiters; i += 2) hs[static_cast<std::size_t>(i)].request_stop();
    });
    l.count_down();  // races the stops: each wait ends once, either way
    stopper.join();
    for (auto& h : hs) {
      try {
        h.join();
        ++completed;
      } catch (const ra::operation_stopped&) {
        ++stopped;
      }
    }
  }
  EXPECT_EQ(completed + stopped, rounds * waiters);
  EXPECT_GE(completed, rounds * waiters / 2);  // the unstopped half always completes
}

// Many tasks wait on `object` on a run_loop (the last one, `target`, with a
// stop); three threads then race: `release` (the last count_down or
// arrival: its claim pass walks every waiter), a stop of the target after a
// varying spin, and `destroy_when_through` (a party the release lets
// through, which destroys the object at once). Each wait ends once.
template <class Object, class Wait, class Release, class DestroyWhenThrough>
void stop_racing_a_release_that_destroys(Wait wait, Release release, DestroyWhenThrough destroy_when_through,
                                         Object* (*make)(int waiters)) {
  // Not scaled down under the sanitizers: AddressSanitizer is what sees a
  // touch of the destroyed object, in about one round in ten.
  long const rounds = std::max(80L, scaled(80));
  constexpr int waiters = 5000;
  long stopped = 0;
  for (long r = 0; r < rounds; ++r) {
    ra::run_loop loop;
    Object* object = make(waiters);
    ra::task_scope many;
    for (int i = 0; i < waiters; ++i) many.spawn(loop.get_scheduler(), wait(object));
    ra::join_handle<void> target = ra::spawn(loop.get_scheduler(), wait(object));
    while (loop.run_once() != 0) {
    }  // every task waits now; the target is queued last
    std::atomic<bool> go{false};
    std::thread destroyer([&] {
      while (!go.load()) {
      }
      destroy_when_through(object);
    });
    std::thread releaser([&] {
      while (!go.load()) {
      }
      release(object);
    });
    std::thread stopper([&] {
      while (!go.load()) {
      }
      // A moment that varies from round to round across the release's pass
      // (a count of pauses, not a time: only where in the pass the stop lands).
      for (long k = (r * 37 % 400) * 64; k > 0; --k) rouse::detail::spin_pause();
      target.request_stop();
    });
    go.store(true);
    releaser.join();
    stopper.join();
    destroyer.join();
    loop.run_until([&] { return many.size() == 0 && target.is_done(); });
    try {
      target.join();
    } catch (const ra::operation_stopped&) {
      ++stopped;
    }
  }
  ::testing::Test::RecordProperty("stopped", static_cast<int>(stopped));
}

TEST(async_coordination_stress, a_stop_racing_a_latch_release_touches_nothing_after_it) {
  stop_racing_a_release_that_destroys<ra::latch>(
      [](ra::latch* l) -> ra::task<> { co_await l->wait(); }, [](ra::latch* l) { l->count_down(); },
      [](ra::latch* l) {
        while (!l->try_wait()) {
        }
        delete l;  // let through: at once
      },
      [](int) { return new ra::latch(1); });
}

TEST(async_coordination_stress, a_stop_racing_a_barrier_release_touches_nothing_after_it) {
  // Parties: the waiting tasks and the target, the releaser's arrive(), and
  // the destroyer's arrive() and blocking wait (from arrive(), so that it may
  // destroy the barrier once through).
  stop_racing_a_release_that_destroys<ra::barrier<>>(
      [](ra::barrier<>* b) -> ra::task<> { co_await b->arrive_and_wait(); },
      [](ra::barrier<>* b) { (void)b->arrive(); },
      [](ra::barrier<>* b) {
        b->wait_blocking(b->arrive());
        delete b;  // let through: at once
      },
      [](int waiters) { return new ra::barrier<>(waiters + 3); });
}

// ---- condition variable --------------------------------------------------------------

struct bounded_queue {
  static constexpr std::size_t capacity = 8;
  ra::mutex m;
  ra::condition_variable not_empty;
  ra::condition_variable not_full;
  std::deque<long> items;  // guarded by m
  bool closed = false;     // guarded by m
};

ra::task<> produce_task(bounded_queue& q, long first, long count) {
  for (long i = first; i < first + count; ++i) {
    auto g = co_await q.m.lock();
    co_await q.not_full.wait(g, [&] { return q.items.size() < bounded_queue::capacity; });
    q.items.push_back(i);
    g.unlock();
    q.not_empty.notify_one();
  }
}

// Consumes until closed and empty; a stop ends it early (the item it would
// have taken stays in the queue for the others).
ra::task<> consume_task(bounded_queue& q, std::atomic<long>& count, std::atomic<long>& sum) {
  for (;;) {
    auto g = co_await q.m.lock();
    co_await q.not_empty.wait(g, [&] { return !q.items.empty() || q.closed; });
    if (q.items.empty()) co_return;
    long const v = q.items.front();
    q.items.pop_front();
    g.unlock();
    q.not_full.notify_one();
    count.fetch_add(1);
    sum.fetch_add(v);
  }
}

TEST(async_coordination_stress, cv_producers_and_consumers_with_stops_lose_and_duplicate_nothing) {
  long const per_producer = scaled(3000);
  constexpr int producer_tasks = 6;
  constexpr int producer_threads = 2;
  constexpr int consumer_tasks = 12;
  constexpr int consumer_threads = 2;
  constexpr int producers = producer_tasks + producer_threads;
  bounded_queue q;
  std::atomic<long> count{0};
  std::atomic<long> sum{0};
  ra::thread_pool pool(pool_workers());
  std::vector<ra::join_handle<void>> consumers;
  for (int i = 0; i < consumer_tasks; ++i)
    consumers.push_back(ra::spawn(pool.get_scheduler(), consume_task(q, count, sum)));
  std::vector<std::thread> threads;
  for (int i = 0; i < consumer_threads; ++i)
    threads.emplace_back([&] {
      for (;;) {
        auto g = q.m.lock_blocking();
        q.not_empty.wait_blocking(g, [&] { return !q.items.empty() || q.closed; });
        if (q.items.empty()) return;
        long const v = q.items.front();
        q.items.pop_front();
        g.unlock();
        q.not_full.notify_one();
        count.fetch_add(1);
        sum.fetch_add(v);
      }
    });
  std::vector<ra::join_handle<void>> producer_handles;
  for (int p = 0; p < producer_tasks; ++p)
    producer_handles.push_back(ra::spawn(pool.get_scheduler(), produce_task(q, p * per_producer, per_producer)));
  for (int p = producer_tasks; p < producers; ++p)
    threads.emplace_back([&q, p, per_producer] {
      for (long i = p * per_producer; i < (p + 1) * per_producer; ++i) {
        auto g = q.m.lock_blocking();
        q.not_full.wait_blocking(g, [&] { return q.items.size() < bounded_queue::capacity; });
        q.items.push_back(i);
        g.unlock();
        q.not_empty.notify_one();
      }
    });
  // Stop a third of the consumer tasks while they run (mostly while waiting).
  for (int i = 0; i < consumer_tasks; i += 3) {
    std::this_thread::yield();
    consumers[static_cast<std::size_t>(i)].request_stop();
  }
  for (auto& h : producer_handles) h.join();
  // Wait until every item was produced (the producer threads), then close.
  while (true) {
    bool const all_produced = [&] {
      auto g = q.m.lock_blocking();
      return count.load() + static_cast<long>(q.items.size()) == producers * per_producer;
    }();
    if (all_produced) break;
    std::this_thread::yield();
  }
  {
    auto g = q.m.lock_blocking();
    q.closed = true;
  }
  q.not_empty.notify_all();
  for (auto& t : threads) t.join();
  int stopped = 0;
  for (auto& h : consumers) {
    try {
      h.join();
    } catch (const ra::operation_stopped&) {
      ++stopped;
    }
  }
  long const n = producers * per_producer;
  EXPECT_EQ(count.load(), n);
  EXPECT_EQ(sum.load(), n * (n - 1) / 2);
  EXPECT_LE(stopped, (consumer_tasks + 2) / 3);
  EXPECT_TRUE(q.items.empty());
}

// ---- with_timeout racing completions ----------------------------------------------------

TEST(async_coordination_stress, timed_waits_racing_notify_one_receive_each_notification_once) {
  long const notifications = scaled(20000);
  constexpr int waiters = 8;
  ra::thread_pool pool(pool_workers());
  ra::notify n;
  std::atomic<long> received{0};
  std::atomic<long> timeouts{0};
  std::atomic<bool> done{false};
  std::vector<ra::join_handle<void>> hs;
  for (int i = 0; i < waiters; ++i)
    hs.push_back(ra::spawn(pool.get_scheduler(), [](ra::notify& n, std::atomic<long>& received,
                                                     std::atomic<long>& timeouts, std::atomic<bool>& done,
                                                     int i) -> ra::task<> {
      auto const d = std::chrono::microseconds(50 * (1 + i % 4));
      while (!done.load()) {
        if (co_await ra::with_timeout(n.notified(), d))
          received.fetch_add(1);
        else
          timeouts.fetch_add(1);
      }
    }(n, received, timeouts, done, i)));
  // One permit in flight at a time (permits do not accumulate): the next
  // notify_one only once the last one was received.
  for (long i = 1; i <= notifications; ++i) {
    n.notify_one();
    while (received.load() < i) std::this_thread::yield();
  }
  done.store(true);
  for (auto& h : hs) h.join();
  EXPECT_EQ(received.load(), notifications);
  EXPECT_FALSE(n.wait_blocking_for(0s));  // nothing stored twice
  EXPECT_GT(timeouts.load(), 0);
}

TEST(async_coordination_stress, timed_acquires_racing_releases_return_every_permit) {
  long const rounds = scaled(6000);
  constexpr std::size_t permits = 3;
  constexpr int tasks = 12;
  ra::thread_pool pool(pool_workers());
  ra::semaphore s(permits);
  std::atomic<long> held{0};
  std::atomic<long> over{0};  // more holders than permits at some moment
  std::atomic<long> got{0};
  std::vector<ra::join_handle<void>> hs;
  for (int i = 0; i < tasks; ++i)
    hs.push_back(ra::spawn(pool.get_scheduler(), [](ra::semaphore& s, std::atomic<long>& held, std::atomic<long>& over,
                                                     std::atomic<long>& got, long rounds, int i) -> ra::task<> {
      auto const d = std::chrono::microseconds(1 + 3 * (i % 4));
      for (long r = 0; r < rounds / tasks; ++r) {
        auto p = co_await ra::with_timeout(s.acquire(1), d);
        if (!p || !*p) continue;  // timed out: it holds nothing
        if (held.fetch_add(1) + 1 > static_cast<long>(permits)) over.fetch_add(1);
        got.fetch_add(1);
        co_await ra::sleep_for(std::chrono::microseconds(3));  // held across a timer: others queue, time out
        held.fetch_sub(1);
      }  // the permit goes back when p is destroyed
    }(s, held, over, got, rounds, i)));
  for (auto& h : hs) h.join();
  EXPECT_EQ(over.load(), 0);
  EXPECT_GT(got.load(), 0);
  EXPECT_EQ(s.available(), permits);  // nothing lost to a timed-out acquire
}

}  // namespace
}  // namespace async_coordination_stress
