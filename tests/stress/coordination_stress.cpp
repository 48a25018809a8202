// Stress tests of the coordination primitives with more threads than cores:
// counters prove that nothing is lost, duplicated or exceeded. A lost
// wake-up shows as a hang, which CTest's timeout turns into a failure.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "rouse/barrier.hpp"
#include "rouse/event.hpp"
#include "rouse/eventcount.hpp"
#include "rouse/latch.hpp"
#include "rouse/semaphore.hpp"
#include "rouse/thread_parker.hpp"
#include "stress.hpp"

namespace coordination_stress {
namespace {

using namespace std::chrono_literals;

template <class F>
void run_threads(unsigned n, F&& f) {
  std::vector<std::thread> ts;
  ts.reserve(n);
  for (unsigned i = 0; i < n; ++i) ts.emplace_back([&f, i] { f(i); });
  for (auto& t : ts) t.join();
}

TEST(barrier_stress, every_thread_sees_every_phase_and_the_completion_runs_once_per_phase) {
  unsigned const threads = rouse_test::oversubscribed(8);
  long const phases = rouse_test::scaled(20000);
  std::atomic<long> arrivals{0};
  long completions = 0;  // plain: only the completion writes it
  std::atomic<long> completion_errors{0};
  auto on_done = [&]() noexcept {
    ++completions;
    if (arrivals.load(std::memory_order_relaxed) != static_cast<long>(threads) * completions)
      completion_errors.fetch_add(1, std::memory_order_relaxed);
  };
  rouse::barrier<decltype(on_done)> b(threads, on_done);
  std::atomic<long> phase_errors{0};
  run_threads(threads, [&](unsigned index) {
    for (long p = 0; p < phases; ++p) {
      arrivals.fetch_add(1, std::memory_order_relaxed);
      if (index % 2 == 0) {
        b.arrive_and_wait();
      } else {
        auto token = b.arrive();
        b.wait(std::move(token));
      }
      if (completions != p + 1 && completions != p + 2) phase_errors.fetch_add(1, std::memory_order_relaxed);
    }
  });
  EXPECT_EQ(completions, phases);
  EXPECT_EQ(completion_errors.load(), 0);
  EXPECT_EQ(phase_errors.load(), 0);
}

TEST(barrier_stress, threads_dropping_out_shrink_later_phases) {
  unsigned const threads = rouse_test::oversubscribed(8);
  long const phases = rouse_test::scaled(5000);
  std::atomic<long> completions{0};
  auto on_done = [&]() noexcept { completions.fetch_add(1, std::memory_order_relaxed); };
  rouse::barrier<decltype(on_done)> b(threads, on_done);
  // Thread i takes part in phases [0, i * phases / threads), then drops; the
  // last thread runs all phases.
  run_threads(threads, [&](unsigned index) {
    long const mine = index + 1 == threads ? phases : static_cast<long>(index) * phases / threads;
    for (long p = 0; p < mine; ++p) b.arrive_and_wait();
    if (index + 1 != threads) b.arrive_and_drop();
  });
  EXPECT_EQ(completions.load(), phases + 0);  // drops complete phases, never add any
}

TEST(semaphore_stress, sixteen_threads_never_exceed_the_count_nor_lose_a_permit) {
  constexpr int permits = 4;
  unsigned const threads = std::max(16u, rouse_test::oversubscribed(8));
  long const rounds = rouse_test::scaled(30000);
  rouse::counting_semaphore<permits> s(permits);
  std::atomic<int> inside{0};
  std::atomic<int> most{0};
  std::atomic<long> timeouts{0};
  run_threads(threads, [&](unsigned index) {
    for (long r = 0; r < rounds; ++r) {
      if ((index + r) % 3 == 0) {
        if (!s.try_acquire_for(50us)) {
          timeouts.fetch_add(1, std::memory_order_relaxed);
          continue;
        }
      } else if ((index + r) % 3 == 1) {
        if (!s.try_acquire()) continue;
      } else {
        s.acquire();
      }
      int const now = inside.fetch_add(1, std::memory_order_relaxed) + 1;
      int seen = most.load(std::memory_order_relaxed);
      while (now > seen && !most.compare_exchange_weak(seen, now, std::memory_order_relaxed)) {
      }
      if (r % 16 == 0) std::this_thread::yield();
      inside.fetch_sub(1, std::memory_order_relaxed);
      s.release();
    }
  });
  EXPECT_LE(most.load(), permits);
  // Every permit is still there, and no more.
  for (int i = 0; i < permits; ++i) EXPECT_TRUE(s.try_acquire());
  EXPECT_FALSE(s.try_acquire());
}

TEST(semaphore_stress, binary_semaphore_relay_loses_no_handoff) {
  unsigned const threads = rouse_test::oversubscribed(8);
  long const laps = rouse_test::scaled(5000);
  std::vector<std::unique_ptr<rouse::binary_semaphore>> turn;
  for (unsigned i = 0; i < threads; ++i) turn.push_back(std::make_unique<rouse::binary_semaphore>(i == 0 ? 1 : 0));
  long counter = 0;  // plain: the relay orders every access
  run_threads(threads, [&](unsigned index) {
    for (long lap = 0; lap < laps; ++lap) {
      turn[index]->acquire();
      ++counter;
      turn[(index + 1) % threads]->release();
    }
  });
  EXPECT_EQ(counter, laps * static_cast<long>(threads));
}

// The wide layout (LeastMaxValue > 2^31 - 1) with exact counts: producers
// release permits in batches of 1 to 4 (some to sleepers, some inside
// another release's RELEASING window), consumers take a fixed quota each
// by acquire, try_acquire and try_acquire_for. Every permit is taken exactly
// once: all quotas are met (a lost wake-up hangs) and none is left over.
TEST(semaphore_stress, wide_semaphore_hands_every_permit_to_exactly_one_acquirer) {
  using wide = rouse::counting_semaphore<(std::ptrdiff_t{1} << 40)>;
  unsigned const threads = std::max(16u, rouse_test::oversubscribed(8));
  unsigned const producers = threads / 4;
  unsigned const consumers = threads - producers;
  long const quota = rouse_test::scaled(20000);
  long const total = quota * static_cast<long>(consumers);
  wide s(0);
  std::atomic<long> released{0};
  std::atomic<long> taken{0};
  std::atomic<long> timeouts{0};
  run_threads(threads, [&](unsigned index) {
    if (index < producers) {
      // Producer `index` releases its share of `total`.
      long share = total / producers + (index < static_cast<unsigned>(total % producers) ? 1 : 0);
      for (long r = 0; share > 0; ++r) {
        long const n = std::min<long>(share, 1 + (r + index) % 4);
        released.fetch_add(n, std::memory_order_relaxed);
        s.release(n);
        share -= n;
        // Slower than the consumers, so that they often find none and sleep.
        std::this_thread::yield();
        if (r % 16 == 0) std::this_thread::sleep_for(50us);
      }
      return;
    }
    for (long got = 0; got < quota;) {
      switch ((index + got) % 3) {
        case 0:
          s.acquire();
          break;
        case 1:
          while (!s.try_acquire()) std::this_thread::yield();
          break;
        default:
          while (!s.try_acquire_for(50us)) timeouts.fetch_add(1, std::memory_order_relaxed);
          break;
      }
      ++got;
      taken.fetch_add(1, std::memory_order_relaxed);
    }
  });
  EXPECT_EQ(released.load(), total);
  EXPECT_EQ(taken.load(), total);
  EXPECT_FALSE(s.try_acquire());  // nothing left, nothing made up
}

// A released semaphore may vanish at once (Rule 7): the acquirer deletes it
// as soon as acquire() returns, while the releasing thread may still be
// inside release(). ASan reports a release that touches it after the RMW
// that let the acquirer through (the futex wake reads no memory).
template <class Semaphore>
void released_semaphore_destroyed_at_once() {
  long const rounds = rouse_test::scaled(20000);
  for (long r = 0; r < rounds; ++r) {
    auto* s = new Semaphore(0);
    std::thread acquirer([s] {
      s->acquire();
      delete s;
    });
    if (r % 2 == 0) std::this_thread::yield();  // vary the interleaving: the acquirer asleep or not yet
    s->release();
    acquirer.join();
  }
}

TEST(semaphore_stress, released_semaphore_may_be_destroyed_by_the_acquirer_at_once) {
  released_semaphore_destroyed_at_once<rouse::binary_semaphore>();
  released_semaphore_destroyed_at_once<rouse::counting_semaphore<(std::ptrdiff_t{1} << 40)>>();
}

TEST(latch_stress, many_latches_many_threads) {
  unsigned const threads = rouse_test::oversubscribed(16);
  long const latches = rouse_test::scaled(5000);
  std::vector<std::unique_ptr<rouse::latch>> ls;
  for (long i = 0; i < latches; ++i) ls.push_back(std::make_unique<rouse::latch>(threads));
  std::atomic<long> before{0};
  std::atomic<long> errors{0};
  run_threads(threads, [&](unsigned index) {
    for (long i = 0; i < latches; ++i) {
      before.fetch_add(1, std::memory_order_relaxed);
      if (index % 2 == 0) {
        ls[i]->arrive_and_wait();
      } else {
        ls[i]->count_down();
        ls[i]->wait();
      }
      if (before.load(std::memory_order_relaxed) < (i + 1) * static_cast<long>(threads))
        errors.fetch_add(1, std::memory_order_relaxed);
    }
  });
  EXPECT_EQ(errors.load(), 0);
}

TEST(event_stress, auto_reset_event_hands_each_set_to_one_waiter) {
  unsigned const consumers = rouse_test::oversubscribed(8);
  long const items = rouse_test::scaled(30000);
  rouse::event available(rouse::event_mode::auto_reset);
  rouse::event consumed(rouse::event_mode::auto_reset);
  std::atomic<long> taken{0};
  std::atomic<bool> done{false};
  std::vector<std::thread> ts;
  for (unsigned i = 0; i < consumers; ++i)
    ts.emplace_back([&] {
      for (;;) {
        available.wait();
        if (done.load(std::memory_order_acquire)) {
          available.set();  // pass the shutdown on
          return;
        }
        taken.fetch_add(1, std::memory_order_relaxed);
        consumed.set();
      }
    });
  for (long i = 0; i < items; ++i) {
    available.set();
    consumed.wait();  // exactly one consumer took this set
  }
  done.store(true, std::memory_order_release);
  available.set();
  for (auto& t : ts) t.join();
  EXPECT_EQ(taken.load(), items);
}

TEST(event_stress, manual_reset_generations_release_everybody) {
  unsigned const threads = rouse_test::oversubscribed(8);
  long const rounds = rouse_test::scaled(3000);
  std::vector<std::unique_ptr<rouse::event>> gates;
  for (long i = 0; i < rounds; ++i) gates.push_back(std::make_unique<rouse::event>());
  std::atomic<long> passed{0};
  std::vector<std::thread> ts;
  for (unsigned i = 0; i < threads; ++i)
    ts.emplace_back([&] {
      for (long r = 0; r < rounds; ++r) {
        gates[r]->wait();
        passed.fetch_add(1, std::memory_order_relaxed);
      }
    });
  for (long r = 0; r < rounds; ++r) {
    gates[r]->set();
    if (r % 8 == 0) std::this_thread::yield();
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(passed.load(), rounds * static_cast<long>(threads));
}

// A bounded lock-free MPMC queue (sequence number per cell) made blocking by
// two eventcounts: consumers await "not empty", producers await "not full".
class blocking_queue {
 public:
  explicit blocking_queue(std::size_t capacity) : cells_(capacity), mask_(capacity - 1) {
    for (std::size_t i = 0; i < capacity; ++i) cells_[i].sequence.store(i, std::memory_order_relaxed);
  }

  void push(std::uint64_t value) {
    not_full_.await([&] { return try_push(value); });
    // The eventcount's rule: the change must precede notify's load in the
    // seq_cst order (try_push's publishing store is only release).
    std::atomic_thread_fence(std::memory_order_seq_cst);
    not_empty_.notify_one();
  }
  std::uint64_t pop() {
    std::uint64_t value = 0;
    not_empty_.await([&] { return try_pop(value); });
    std::atomic_thread_fence(std::memory_order_seq_cst);
    not_full_.notify_one();
    return value;
  }

 private:
  struct cell {
    std::atomic<std::size_t> sequence;
    std::uint64_t value;
  };

  bool try_push(std::uint64_t value) {
    std::size_t pos = tail_.load(std::memory_order_relaxed);
    for (;;) {
      cell& c = cells_[pos & mask_];
      std::size_t const seq = c.sequence.load(std::memory_order_acquire);
      auto const diff = static_cast<std::ptrdiff_t>(seq) - static_cast<std::ptrdiff_t>(pos);
      if (diff == 0) {
        if (tail_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
          c.value = value;
          c.sequence.store(pos + 1, std::memory_order_release);
          return true;
        }
      } else if (diff < 0) {
        return false;  // full
      } else {
        pos = tail_.load(std::memory_order_relaxed);
      }
    }
  }
  bool try_pop(std::uint64_t& value) {
    std::size_t pos = head_.load(std::memory_order_relaxed);
    for (;;) {
      cell& c = cells_[pos & mask_];
      std::size_t const seq = c.sequence.load(std::memory_order_acquire);
      auto const diff = static_cast<std::ptrdiff_t>(seq) - static_cast<std::ptrdiff_t>(pos + 1);
      if (diff == 0) {
        if (head_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
          value = c.value;
          c.sequence.store(pos + mask_ + 1, std::memory_order_release);
          return true;
        }
      } else if (diff < 0) {
        return false;  // empty
      } else {
        pos = head_.load(std::memory_order_relaxed);
      }
    }
  }

  std::vector<cell> cells_;
  std::size_t const mask_;
  alignas(64) std::atomic<std::size_t> head_{0};
  alignas(64) std::atomic<std::size_t> tail_{0};
  rouse::eventcount not_empty_;
  rouse::eventcount not_full_;
};

TEST(eventcount_stress, lock_free_queue_made_blocking_loses_no_wake_up) {
  unsigned const producers = rouse_test::oversubscribed(8) / 2;
  unsigned const consumers = producers;
  long const per_producer = rouse_test::scaled(100000);
  blocking_queue q(8);  // small: producers block on "full" as often as consumers on "empty"
  std::atomic<std::uint64_t> sum{0};
  std::atomic<long> count{0};
  std::vector<std::thread> ts;
  for (unsigned c = 0; c < consumers; ++c)
    ts.emplace_back([&] {
      for (;;) {
        std::uint64_t const v = q.pop();
        if (v == 0) return;  // one stop marker per consumer
        sum.fetch_add(v, std::memory_order_relaxed);
        count.fetch_add(1, std::memory_order_relaxed);
      }
    });
  std::vector<std::thread> ps;
  for (unsigned p = 0; p < producers; ++p)
    ps.emplace_back([&, p] {
      for (long i = 1; i <= per_producer; ++i) q.push(static_cast<std::uint64_t>(p) * 1'000'000'000ULL + i);
    });
  for (auto& t : ps) t.join();
  for (unsigned c = 0; c < consumers; ++c) q.push(0);
  for (auto& t : ts) t.join();
  std::uint64_t expected = 0;
  for (unsigned p = 0; p < producers; ++p)
    for (long i = 1; i <= per_producer; ++i) expected += static_cast<std::uint64_t>(p) * 1'000'000'000ULL + i;
  EXPECT_EQ(count.load(), per_producer * static_cast<long>(producers));
  EXPECT_EQ(sum.load(), expected);
}

TEST(thread_parker_stress, unparks_from_many_threads_are_never_lost) {
  unsigned const unparkers = rouse_test::oversubscribed(8);
  long const each = rouse_test::scaled(50000);
  rouse::thread_parker parker;
  std::atomic<long> posted{0};
  std::thread owner([&] {
    long const total = each * static_cast<long>(unparkers);
    while (posted.load(std::memory_order_acquire) != total) parker.park();
  });
  run_threads(unparkers, [&](unsigned) {
    for (long i = 0; i < each; ++i) {
      posted.fetch_add(1, std::memory_order_release);
      parker.unpark();
      if (i % 64 == 0) std::this_thread::yield();
    }
  });
  owner.join();
  EXPECT_EQ(posted.load(), each * static_cast<long>(unparkers));
}

TEST(thread_parker_stress, ping_pong_of_two_parkers) {
  long const rounds = rouse_test::scaled(50000);
  rouse::thread_parker a, b;
  std::atomic<long> ball{0};
  std::thread t([&] {
    for (long i = 0; i < rounds; ++i) {
      while (ball.load(std::memory_order_acquire) != 2 * i + 1) b.park();
      ball.store(2 * i + 2, std::memory_order_release);
      a.unpark();
    }
  });
  for (long i = 0; i < rounds; ++i) {
    ball.store(2 * i + 1, std::memory_order_release);
    b.unpark();
    while (ball.load(std::memory_order_acquire) != 2 * i + 2) a.park();
  }
  t.join();
  EXPECT_EQ(ball.load(), 2 * rounds);
}

}  // namespace
}  // namespace coordination_stress
