// Stress tests of rouse/platform/wait.hpp: more threads than cores, many
// rounds, counters that prove no wake-up was lost (a lost one hangs the test
// until CTest's timeout fails it) and nothing was duplicated.
#include "rouse/platform/wait.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <climits>
#include <cstdint>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "../../src/platform/wait_testing.hpp"
#include "stress.hpp"

namespace wait_stress {
namespace {

using namespace std::chrono_literals;
namespace p = rouse::platform;

// Pairs of threads pass a turn back and forth through one word each: the
// word counts the turns taken; thread `parity` may move only when the count
// has its parity. Every turn is a store, a wake_one and (usually) a sleep.
TEST(wait_stress, pairs_ping_pong_on_their_own_words) {
  unsigned const threads = rouse_test::oversubscribed() & ~1u;
  unsigned const pairs = threads / 2;
  auto const rounds = static_cast<std::uint32_t>(rouse_test::scaled(12000));
  auto words = std::make_unique<p::word[]>(pairs);
  std::atomic<std::uint64_t> turns{0};
  std::vector<std::thread> ts;
  for (unsigned i = 0; i < threads; ++i)
    ts.emplace_back([&, i] {
      p::word& w = words[i / 2];
      std::uint32_t const parity = i % 2;
      for (std::uint32_t r = 0; r < rounds; ++r) {
        std::uint32_t v;
        while (((v = w.load(std::memory_order_acquire)) & 1u) != parity) p::wait(w, v);
        w.store(v + 1, std::memory_order_release);
        p::wake_one(w);
        turns.fetch_add(1, std::memory_order_relaxed);
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(turns.load(), std::uint64_t{threads} * rounds);
  for (unsigned i = 0; i < pairs; ++i) EXPECT_EQ(words[i].load(), 2 * rounds);
}

// A token goes round a ring of threads that all sleep on one word; each
// holder passes it on with wake_all. Every pass must reach its thread.
TEST(wait_stress, a_token_ring_on_one_word_with_wake_all) {
  unsigned const n = rouse_test::oversubscribed();
  auto const passes = static_cast<std::uint32_t>(rouse_test::scaled(1600));
  p::word token{0};
  std::vector<std::uint32_t> taken(n, 0);
  std::vector<std::thread> ts;
  for (unsigned i = 0; i < n; ++i)
    ts.emplace_back([&, i] {
      for (std::uint32_t r = 0; r < passes; ++r) {
        std::uint32_t const mine = r * n + i;
        std::uint32_t v;
        while ((v = token.load(std::memory_order_acquire)) != mine) p::wait(token, v);
        ++taken[i];  // ordered by the token's release/acquire
        token.store(mine + 1, std::memory_order_release);
        p::wake_all(token);
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(token.load(), n * passes);
  for (unsigned i = 0; i < n; ++i) EXPECT_EQ(taken[i], passes);
}

// A broadcast in the condition-variable style: waiters sleep on a generation
// word; the broadcaster bumps it, wakes one and requeues the rest onto a
// second word, then wakes that one. Every waiter must see every generation.
TEST(wait_stress, broadcast_by_requeue_reaches_every_waiter) {
  unsigned const n = rouse_test::oversubscribed();
  auto const generations = static_cast<std::uint32_t>(rouse_test::scaled(1000));
  p::word generation{0};
  p::word parking{0};
  p::word acks{0};
  std::vector<std::thread> ts;
  for (unsigned i = 0; i < n; ++i)
    ts.emplace_back([&] {
      for (std::uint32_t g = 0; g < generations; ++g) {
        while (generation.load(std::memory_order_acquire) == g) p::wait(generation, g);
        if (acks.fetch_add(1, std::memory_order_acq_rel) + 1 == n) p::wake_one(acks);
      }
    });
  for (std::uint32_t g = 0; g < generations; ++g) {
    generation.store(g + 1, std::memory_order_release);
    int const r = p::cmp_requeue(generation, g + 1, parking, 1, INT_MAX);
    ASSERT_GE(r, 0);
    p::wake_all(parking);
    std::uint32_t a;
    while ((a = acks.load(std::memory_order_acquire)) != n) p::wait(acks, a);
    acks.store(0, std::memory_order_relaxed);
  }
  for (auto& t : ts) t.join();
}

// Producers post on their own words, one consumer collects with wait_any.
void wait_any_collects_every_post(bool polling) {
  bool const previous = p::detail::force_wait_any_polling(polling);
  unsigned const producers = rouse_test::oversubscribed() - 1;
  auto const posts = static_cast<std::uint32_t>(rouse_test::scaled(polling ? 300 : 1000));
  auto words = std::make_unique<p::word[]>(producers);  // 0 empty, 1 posted
  std::vector<p::wait_entry> entries;
  for (unsigned i = 0; i < producers; ++i) entries.push_back({&words[i], 0});
  std::vector<std::thread> ts;
  for (unsigned i = 0; i < producers; ++i)
    ts.emplace_back([&, i] {
      p::word& w = words[i];
      for (std::uint32_t r = 0; r < posts; ++r) {
        while (w.load(std::memory_order_acquire) == 1) p::wait(w, 1);
        w.store(1, std::memory_order_release);
        p::wake_all(w);
      }
    });
  std::vector<std::uint32_t> got(producers, 0);
  std::uint64_t total = 0;
  while (total < std::uint64_t{producers} * posts) {
    int const r = p::wait_any(entries);
    ASSERT_GE(r, 0);
    for (unsigned i = 0; i < producers; ++i) {
      if (words[i].load(std::memory_order_acquire) == 1) {
        ++got[i];
        ++total;
        words[i].store(0, std::memory_order_release);
        p::wake_all(words[i]);
      }
    }
  }
  for (auto& t : ts) t.join();
  for (unsigned i = 0; i < producers; ++i) EXPECT_EQ(got[i], posts);
  p::detail::force_wait_any_polling(previous);
}

TEST(wait_stress, wait_any_collects_every_post) { wait_any_collects_every_post(false); }
TEST(wait_stress, wait_any_polling_fallback_collects_every_post) { wait_any_collects_every_post(true); }

// Waiters with short timeouts race wakers: timeouts, cancellations and wakes
// cross in every order. A wake_one that reports a wake must have woken a
// sleeper (the table's one-winner rule), and nothing hangs.
TEST(wait_stress, short_timeouts_racing_wakes) {
  unsigned const waiters = rouse_test::oversubscribed();
  auto const iterations = rouse_test::scaled(20000);
  p::word w{0};
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> woken_returns{0};
  std::vector<std::thread> ts;
  for (unsigned i = 0; i < waiters; ++i)
    ts.emplace_back([&, i] {
      std::minstd_rand rng(i + 1);
      while (!stop.load(std::memory_order_acquire)) {
        auto const timeout = std::chrono::microseconds(rng() % 200);
        if (p::wait_for(w, 0, timeout) == p::wait_result::woken) woken_returns.fetch_add(1);
      }
    });
  std::uint64_t reported = 0;
  for (long i = 0; i < iterations; ++i) {
    reported += static_cast<std::uint64_t>(p::wake_one(w));
    if (i % 64 == 0) std::this_thread::yield();
  }
  stop.store(true, std::memory_order_release);
  w.store(1, std::memory_order_release);
  p::wake_all(w);
  for (auto& t : ts) t.join();
  // Every reported wake returned `woken` from some wait (returns may also
  // be `woken` for other reasons, e.g. the final store).
  EXPECT_LE(reported, woken_returns.load());
}

}  // namespace
}  // namespace wait_stress
