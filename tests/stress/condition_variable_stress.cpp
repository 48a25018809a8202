// Stress tests of rouse::condition_variable: producers and consumers on a
// bounded queue (counts prove nothing lost or duplicated), broadcast rounds
// through notify_all's relay (one mutex, two mutexes, timed and stoppable
// waiters in the chain), timed waiters mixed with notify_one, the same with
// a std::mutex, and notify_one releasing at most one waiter each. More threads than cores; a lost wake-up shows up as a hang
// (CTest timeout).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <deque>
#include <mutex>
#include <stop_token>
#include <thread>
#include <vector>

#include "rouse/condition_variable.hpp"
#include "rouse/mutex.hpp"
#include "stress.hpp"

namespace condition_variable_stress {
namespace {

using namespace std::chrono_literals;

template <class Mutex>
void producers_and_consumers(unsigned producers, unsigned consumers, long per_producer, bool notify_under_lock) {
  Mutex m;
  rouse::condition_variable not_empty, not_full;
  std::deque<long> queue;
  constexpr std::size_t capacity = 8;
  unsigned producers_left = producers;
  std::atomic<long> consumed{0}, sum{0};
  std::vector<std::thread> ts;
  for (unsigned p = 0; p < producers; ++p)
    ts.emplace_back([&, p] {
      for (long i = 0; i < per_producer; ++i) {
        std::unique_lock<Mutex> l(m);
        not_full.wait(l, [&] { return queue.size() < capacity; });
        queue.push_back(static_cast<long>(p) * per_producer + i);
        if (notify_under_lock) {
          not_empty.notify_one();
        } else {
          l.unlock();
          not_empty.notify_one();
        }
      }
      std::lock_guard<Mutex> l(m);
      if (--producers_left == 0) not_empty.notify_all();
    });
  for (unsigned c = 0; c < consumers; ++c)
    ts.emplace_back([&] {
      for (;;) {
        std::unique_lock<Mutex> l(m);
        not_empty.wait(l, [&] { return !queue.empty() || producers_left == 0; });
        if (queue.empty()) return;
        long const v = queue.front();
        queue.pop_front();
        l.unlock();
        not_full.notify_one();
        consumed.fetch_add(1, std::memory_order_relaxed);
        sum.fetch_add(v, std::memory_order_relaxed);
      }
    });
  for (auto& t : ts) t.join();
  long const total = static_cast<long>(producers) * per_producer;
  EXPECT_EQ(consumed.load(), total);
  EXPECT_EQ(sum.load(), total * (total - 1) / 2);  // every value exactly once
}

TEST(condition_variable_stress, producers_consumers_rouse_mutex_notify_outside_lock) {
  producers_and_consumers<rouse::mutex>(8, 8, rouse_test::scaled(20000), false);
}

TEST(condition_variable_stress, producers_consumers_rouse_mutex_notify_under_lock) {
  producers_and_consumers<rouse::mutex>(12, 4, rouse_test::scaled(15000), true);
}

TEST(condition_variable_stress, producers_consumers_std_mutex) {
  producers_and_consumers<std::mutex>(4, 12, rouse_test::scaled(15000), false);
}

// Broadcast rounds: 16 waiters, notify_all (each released waiter relays to
// the next), each acknowledges; the last wakes the driver. A waiter left
// asleep (a broken relay) hangs the test.
template <class Mutex>
void broadcast_rounds(unsigned waiters, long rounds) {
  Mutex m;
  rouse::condition_variable cv, acked;
  long generation = 0;
  unsigned acks = 0;
  std::vector<std::thread> ts;
  for (unsigned i = 0; i < waiters; ++i)
    ts.emplace_back([&] {
      std::unique_lock<Mutex> l(m);
      for (long g = 1; g <= rounds; ++g) {
        cv.wait(l, [&] { return generation >= g; });
        if (++acks == waiters) acked.notify_one();
      }
    });
  for (long g = 1; g <= rounds; ++g) {
    std::unique_lock<Mutex> l(m);
    acks = 0;
    ++generation;
    if (g % 3 == 0) {
      l.unlock();
      cv.notify_all();
      l.lock();
    } else {
      cv.notify_all();
    }
    acked.wait(l, [&] { return acks == waiters; });
  }
  for (auto& t : ts) t.join();
}

TEST(condition_variable_stress, broadcast_rounds_rouse_mutex) {
  broadcast_rounds<rouse::mutex>(16, rouse_test::scaled(2000));
}

TEST(condition_variable_stress, broadcast_rounds_std_mutex) {
  broadcast_rounds<std::mutex>(16, rouse_test::scaled(1000));
}

// Broadcast rounds on one condition variable shared by waiters on two
// mutexes, a third of them timed (1 ms: they time out and wait again), a
// third stoppable (their stop sources fire now and then; a stopped waiter
// starts a new wait). Each waiter must see every generation: the relay runs
// through waiters on the other mutex, timed-out and stopped ones, and a
// relay that waited for a relock of the other mutex, or a stopped waiter
// that dropped its relay, hangs the test.
TEST(condition_variable_stress, broadcast_relay_through_two_mutexes_timed_and_stopped_waiters) {
  constexpr int waiters = 12;
  rouse::mutex m[2];
  long generation[2] = {0, 0};  // under m[i]
  rouse::condition_variable cv;
  long const rounds = rouse_test::scaled(2000);
  std::atomic<int> finished{0};
  std::atomic<int> acks{0};  // waiters that saw the current generation
  std::mutex stops_m;        // guards the stop sources (a waiter replaces its own once used)
  std::vector<std::stop_source> stops(waiters);
  std::vector<std::thread> ts;
  for (int i = 0; i < waiters; ++i)
    ts.emplace_back([&, i] {
      int const k = i % 2;
      std::unique_lock<rouse::mutex> l(m[k]);
      for (long seen = 0; seen < rounds;) {
        auto const moved = [&] { return generation[k] > seen; };
        if (i % 3 == 0) {
          (void)cv.wait_for(l, 1ms, moved);
        } else if (i % 3 == 1) {
          std::stop_token token;
          {
            std::lock_guard<std::mutex> g(stops_m);
            auto& source = stops[static_cast<std::size_t>(i)];
            if (source.stop_requested()) source = std::stop_source{};
            token = source.get_token();
          }
          (void)cv.wait(l, token, moved);
        } else {
          cv.wait(l, moved);
        }
        if (generation[k] == seen) continue;  // timed out, or stopped: wait again
        seen = generation[k];
        if (acks.fetch_add(1) + 1 == waiters) acks.notify_one();
      }
      finished.fetch_add(1);
    });
  for (long g = 1; g <= rounds; ++g) {
    acks.store(0);
    for (auto& mk : m) mk.lock();
    generation[0] = generation[1] = g;
    if (g % 2 == 0) {
      cv.notify_all();  // under both locks
      for (auto& mk : m) mk.unlock();
    } else {
      for (auto& mk : m) mk.unlock();
      cv.notify_all();
    }
    if (g % 7 == 0) {
      std::lock_guard<std::mutex> sg(stops_m);
      (void)stops[static_cast<std::size_t>(1 + 3 * ((g / 7) % (waiters / 3)))].request_stop();
    }
    for (int a = acks.load(); a != waiters; a = acks.load()) acks.wait(a);  // every waiter saw g
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(finished.load(), waiters);
}

// A timed waiter whose timeout claims it just as notify_all runs is skipped
// by the notify (its node is dead) and still has to unlink that node; the
// notifier destroys the object right after notify_all, as std allows (every
// waiter was notified). The waiter's unlink touched freed memory (ASan) until
// notifies counted such waiters and the destructor waited for them.
TEST(condition_variable_stress, may_be_destroyed_after_notify_all_while_a_timed_out_waiter_leaves) {
  long const rounds = rouse_test::scaled(20000);
  for (long r = 0; r < rounds; ++r) {
    auto* cv = new rouse::condition_variable;
    std::mutex m;
    bool done = false;  // under m
    std::vector<std::thread> ts;
    for (int k = 0; k < 6; ++k)
      ts.emplace_back([&, k] {
        std::unique_lock<std::mutex> l(m);
        while (!done) (void)cv->wait_for(l, std::chrono::microseconds(k % 3));  // times out again and again
      });
    // Notify at varied moments of the waiters' spins, parks and timeouts.
    for (long spin = 0; spin < (r % 200) * 50; ++spin) std::atomic_signal_fence(std::memory_order_seq_cst);
    {
      std::lock_guard<std::mutex> g(m);
      done = true;
      cv->notify_all();
    }
    delete cv;  // every waiter was notified (or had just timed out): allowed
    for (auto& t : ts) t.join();
  }
}

// request_stop() at about the deadline of timed stoppable waiters, then the
// object destroyed: std counts the stop as a notification of the waits
// still running, so it may go. A waiter whose timeout had just claimed it
// still had to unlink its node, after request_stop() returned: debug builds
// took it for misuse (its node still linked), others touched the freed
// object (ASan). The stop request now unlinks and counts such a waiter. The
// window is narrow: an outside tester's program of this shape hit it in 5
// of 5 runs of 20,000 rounds (debug + ASan); this shorter run is regression
// coverage, not a reliable reproducer.
TEST(condition_variable_stress, may_be_destroyed_after_a_stop_racing_the_timeouts) {
  constexpr int waiters = 3;
  long const rounds = rouse_test::scaled(1500);
  for (long r = 0; r < rounds; ++r) {
    auto* cv = new rouse::condition_variable_any;
    std::mutex m;
    std::stop_source stop;
    std::atomic<int> inside{0};
    std::atomic<std::chrono::steady_clock::rep> deadline{0};
    struct signalling_lock {  // counts the waits that released it
      std::mutex& m;
      std::atomic<int>& inside;
      bool waited = false;
      void lock() { m.lock(); }
      void unlock() {
        m.unlock();
        if (!waited) {
          waited = true;
          inside.fetch_add(1);
        }
      }
    };
    auto const timeout = std::chrono::microseconds(20 + r % 40);
    std::vector<std::thread> ts;
    for (int k = 0; k < waiters; ++k)
      ts.emplace_back([&, k] {
        signalling_lock l{m, inside};
        l.lock();
        auto const t = timeout + std::chrono::microseconds(k);
        if (k == 0) deadline.store((std::chrono::steady_clock::now() + t).time_since_epoch().count());
        (void)cv->wait_for(l, stop.get_token(), t, [] { return false; });  // ends by its timeout or the stop
        l.unlock();
      });
    while (inside.load() < waiters) std::this_thread::yield();
    // The stop around the first waiter's deadline, a few microseconds either side.
    auto const at = std::chrono::steady_clock::time_point(std::chrono::steady_clock::duration(deadline.load())) +
                    std::chrono::microseconds(r % 13 - 6);
    while (std::chrono::steady_clock::now() < at) {
    }
    (void)stop.request_stop();
    delete cv;  // every wait still running was notified by the stop
    for (auto& t : ts) t.join();
  }
}

// notify_all without the lock, running ahead of waiters that keep
// re-registering: registrations race the claim of the whole queue, and
// relays overlap with the next notify_all (a stranded waiter hangs).
TEST(condition_variable_stress, notify_all_outside_the_lock_races_registrations) {
  rouse::mutex m;
  rouse::condition_variable cv;
  long generation = 0;
  long const rounds = rouse_test::scaled(20000);
  std::atomic<long> passes{0};
  std::vector<std::thread> ts;
  for (int i = 0; i < 12; ++i)
    ts.emplace_back([&] {
      std::unique_lock<rouse::mutex> l(m);
      for (long seen = 0; seen < rounds;) {
        cv.wait(l, [&] { return generation > seen; });
        seen = generation;
        passes.fetch_add(1, std::memory_order_relaxed);
      }
    });
  for (long g = 1; g <= rounds; ++g) {
    {
      std::lock_guard<rouse::mutex> l(m);
      generation = g;
    }
    cv.notify_all();
    if (g % 64 == 0) std::this_thread::yield();
  }
  for (auto& t : ts) t.join();
  EXPECT_GE(passes.load(), 12);
}

// Timed waiters take tokens; a notifier hands out tokens with notify_one
// and notify_all mixed. Every token is taken exactly once; timeouts of
// relayed waiters must not break the relay.
TEST(condition_variable_stress, timed_waiters_take_every_token_once) {
  rouse::mutex m;
  rouse::condition_variable cv;
  long tokens = 0, taken = 0;
  bool done = false;
  long const total = rouse_test::scaled(30000);
  std::atomic<long> timeouts{0};
  std::vector<std::thread> ts;
  for (int i = 0; i < 16; ++i)
    ts.emplace_back([&, i] {
      std::unique_lock<rouse::mutex> l(m);
      for (;;) {
        if (tokens > 0) {
          --tokens;
          ++taken;
          continue;
        }
        if (done) return;
        auto const timeout = std::chrono::microseconds(20 + 37 * i);
        if (i % 2 == 0) {
          if (cv.wait_for(l, timeout) == std::cv_status::timeout) timeouts.fetch_add(1, std::memory_order_relaxed);
        } else {
          if (cv.wait_until(l, std::chrono::system_clock::now() + timeout) == std::cv_status::timeout)
            timeouts.fetch_add(1, std::memory_order_relaxed);
        }
      }
    });
  for (long k = 0; k < total; ++k) {
    std::lock_guard<rouse::mutex> l(m);
    ++tokens;
    if (k % 5 == 0) {
      cv.notify_all();
    } else {
      cv.notify_one();
    }
  }
  {
    std::lock_guard<rouse::mutex> l(m);
    done = true;
  }
  cv.notify_all();
  for (auto& t : ts) t.join();
  EXPECT_EQ(taken, total);
  EXPECT_EQ(tokens, 0);
  std::printf("timed waits that timed out: %ld\n", timeouts.load());
}

// Predicate-free waiters (more than cores) count every return of wait();
// a notifier makes notify_one calls, half of them with the lock held,
// counting each before it makes it. Each notify_one releases at most one
// waiter, spinning or asleep, so the returns never exceed the notifies
// issued so far: each waiter checks that when it returns (nothing else here
// makes a wait return: no stop requests, no destruction; the final
// notify_all's returns are not counted; a waiter that starts after it does
// not wait). `paced`: each notify_one waits
// until the previous ones have each released a waiter and every waiter is
// back inside wait() (most spin or sleep then), where a herd would show at
// once; otherwise the notifier runs ahead of the waiters.
void notify_one_returns_never_exceed_the_notifies(bool paced, long notifies) {
  rouse::mutex m;
  rouse::condition_variable cv;
  bool done = false;
  unsigned waiting = 0;  // under m: threads inside wait()
  long returns = 0;      // under m
  std::atomic<long> issued{0}, excess{0};
  unsigned const waiters = rouse_test::oversubscribed(8);
  std::vector<std::thread> ts;
  for (unsigned i = 0; i < waiters; ++i)
    ts.emplace_back([&] {
      std::unique_lock<rouse::mutex> l(m);
      // `done` is checked before the first wait too: a thread that starts
      // only after the final notify_all (a loaded machine) must not wait.
      while (!done) {
        ++waiting;
        cv.wait(l);
        --waiting;
        if (done) return;
        if (++returns > issued.load()) excess.fetch_add(1, std::memory_order_relaxed);
      }
    });
  // Every waiter is inside its first wait before the first notify, so the
  // notifies have someone to release however late the threads start.
  {
    std::unique_lock<rouse::mutex> l(m);
    while (waiting != waiters) {
      l.unlock();
      std::this_thread::yield();
      l.lock();
    }
  }
  for (long k = 0; k < notifies; ++k) {
    std::unique_lock<rouse::mutex> l(m);
    while (paced && (waiting != waiters || returns < k)) {
      l.unlock();
      std::this_thread::yield();
      l.lock();
    }
    issued.fetch_add(1);
    if (k % 2 == 0) {
      cv.notify_one();
      l.unlock();
    } else {
      l.unlock();
      cv.notify_one();
    }
    if (!paced && k % 8 == 0) std::this_thread::yield();
  }
  long counted;
  {
    std::lock_guard<rouse::mutex> l(m);
    done = true;
    counted = returns;
  }
  cv.notify_all();
  for (auto& t : ts) t.join();
  EXPECT_EQ(excess.load(), 0) << "returns that exceeded the notify_one calls made so far";
  EXPECT_LE(counted, notifies);
  EXPECT_GT(counted, 0);
  std::printf("%s: %ld notify_one calls, %ld returns of %u waiters\n", paced ? "paced" : "running ahead", notifies,
              counted, waiters);
}

TEST(condition_variable_stress, notify_one_returns_never_exceed_the_notifies) {
  notify_one_returns_never_exceed_the_notifies(true, rouse_test::scaled(3000));
}

TEST(condition_variable_stress, notify_one_returns_never_exceed_the_notifies_running_ahead) {
  notify_one_returns_never_exceed_the_notifies(false, rouse_test::scaled(20000));
}

}  // namespace
}  // namespace condition_variable_stress
