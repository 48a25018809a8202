// Stress tests of rouse/atomic_wait.hpp for 1-, 2-, 4- and 8-byte atomics:
// more threads than cores, pairs on atomics that share a parking bucket and
// a waiter-count slot (so an inexact wake or a lost one hangs a pair until
// CTest's timeout fails the test), counters proving every turn happened once.
#include "rouse/atomic_wait.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "../../src/platform/parking_table.hpp"
#include "stress.hpp"

namespace atomic_wait_stress {
namespace {

using namespace std::chrono_literals;

template <class T>
class atomic_wait_stress : public ::testing::Test {};
using sizes = ::testing::Types<std::uint8_t, std::uint16_t, std::uint32_t, std::uint64_t>;
TYPED_TEST_SUITE(atomic_wait_stress, sizes);

// `count` atomics from `cells` whose addresses all hash to one parking bucket.
template <class T>
std::vector<std::atomic<T>*> same_bucket(std::atomic<T>* cells, std::size_t n, std::size_t count) {
  std::vector<std::atomic<T>*> out{&cells[0]};
  auto const bucket = rouse::platform::detail::parking_bucket_index(&cells[0]);
  for (std::size_t i = 1; i < n && out.size() < count; ++i)
    if (rouse::platform::detail::parking_bucket_index(&cells[i]) == bucket) out.push_back(&cells[i]);
  return out;
}

// Pairs ping-pong with notify_one, each pair on its own atomic, all atomics
// in one bucket: a notify that woke a neighbour instead of the partner would
// leave the partner asleep.
TYPED_TEST(atomic_wait_stress, pairs_ping_pong_on_neighbours_in_one_bucket) {
  using T = TypeParam;
  unsigned const threads = rouse_test::oversubscribed() & ~1u;
  unsigned const pairs = threads / 2;
  auto const rounds = static_cast<std::uint32_t>(rouse_test::scaled(6000));
  constexpr std::size_t pool = 1 << 16;
  auto cells = std::make_unique<std::atomic<T>[]>(pool);
  auto const slots = same_bucket(cells.get(), pool, pairs);
  ASSERT_EQ(slots.size(), pairs);
  std::atomic<std::uint64_t> turns{0};
  std::vector<std::thread> ts;
  for (unsigned i = 0; i < threads; ++i)
    ts.emplace_back([&, i] {
      std::atomic<T>& a = *slots[i / 2];
      T const mine = static_cast<T>(i % 2);
      for (std::uint32_t r = 0; r < rounds; ++r) {
        T v;
        while ((v = a.load(std::memory_order_acquire)) != mine) rouse::atomic_wait(a, v);
        a.store(static_cast<T>(1 - mine), std::memory_order_release);
        rouse::atomic_notify_one(a);
        turns.fetch_add(1, std::memory_order_relaxed);
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(turns.load(), std::uint64_t{threads} * rounds);
}

// A token ring on one atomic: every thread waits for its own number,
// notify_all passes the token on. Values wrap modulo the ring size.
TYPED_TEST(atomic_wait_stress, a_token_ring_on_one_atomic_with_notify_all) {
  using T = TypeParam;
  unsigned const n = rouse_test::oversubscribed();
  auto const passes = static_cast<std::uint32_t>(rouse_test::scaled(1000));
  std::atomic<T> token{0};
  std::vector<std::uint32_t> taken(n, 0);
  std::vector<std::thread> ts;
  for (unsigned i = 0; i < n; ++i)
    ts.emplace_back([&, i] {
      for (std::uint32_t r = 0; r < passes; ++r) {
        T v;
        while ((v = token.load(std::memory_order_acquire)) != static_cast<T>(i)) rouse::atomic_wait(token, v);
        ++taken[i];  // ordered by the token's release/acquire
        token.store(static_cast<T>((i + 1) % n), std::memory_order_release);
        rouse::atomic_notify_all(token);
      }
    });
  for (auto& t : ts) t.join();
  for (unsigned i = 0; i < n; ++i) EXPECT_EQ(taken[i], passes);
}

// Timed waiters with short timeouts churn against notifiers on neighbours of
// one bucket: cancellations and wakes cross in every order; each waiter
// still sees its final value and nothing hangs (a lost final notify would).
TYPED_TEST(atomic_wait_stress, short_timeouts_racing_notifies_on_neighbours) {
  using T = TypeParam;
  unsigned const waiters = rouse_test::oversubscribed();
  auto const iterations = rouse_test::scaled(16000);
  constexpr std::size_t pool = 1 << 16;
  auto cells = std::make_unique<std::atomic<T>[]>(pool);
  auto const slots = same_bucket(cells.get(), pool, 4);
  ASSERT_EQ(slots.size(), 4u);
  std::vector<std::thread> ts;
  std::atomic<unsigned> started{0};
  std::atomic<unsigned> finished{0};
  for (unsigned i = 0; i < waiters; ++i)
    ts.emplace_back([&, i] {
      std::minstd_rand rng(i + 1);
      std::atomic<T>& a = *slots[i % slots.size()];
      started.fetch_add(1);
      while (a.load(std::memory_order_acquire) != T{1}) {
        if (rng() % 4 == 0) {
          rouse::atomic_wait(a, T{0});
        } else {
          rouse::atomic_wait_for(a, T{0}, std::chrono::microseconds(rng() % 300));
        }
      }
      finished.fetch_add(1);
    });
  // The notifies below are meant to race waiters that are in their loops.
  while (started.load() != waiters) std::this_thread::yield();
  for (long i = 0; i < iterations; ++i) {
    std::atomic<T>& a = *slots[static_cast<std::size_t>(i) % slots.size()];
    rouse::atomic_notify_one(a);  // no change: waiters must go back to sleep
    if (i % 32 == 0) std::this_thread::yield();
  }
  for (auto* a : slots) {
    a->store(T{1}, std::memory_order_release);
    rouse::atomic_notify_all(*a);
  }
  // A lost wake-up of an untimed waiter hangs this join (CTest's timeout
  // fails it); a timed waiter that missed one would still see the value.
  for (auto& t : ts) t.join();
  EXPECT_EQ(finished.load(), waiters);
}

}  // namespace
}  // namespace atomic_wait_stress
