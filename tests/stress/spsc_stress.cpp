// Stress tests of rouse/channel/spsc.hpp: more producer/consumer pairs than
// cores, small rings so both sides block, timed operations, and closes racing
// sends, with counters proving nothing is lost, duplicated or reordered and
// every element is destroyed exactly once.
#include "rouse/channel/spsc.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "counted.hpp"
#include "stress.hpp"

namespace spsc_stress {
namespace {

using namespace std::chrono_literals;
namespace ch = rouse::channel;

using rouse_test::counted;

// Every pair streams 0..n-1; the consumer checks the exact order. Capacities
// 1, 2, 3 and 64 make both sides sleep often; the operation kinds rotate
// between blocking, timed and polling.
TEST(spsc_stress, many_pairs_keep_order_and_lose_nothing) {
  counted::live.store(0);
  unsigned const pairs = rouse_test::oversubscribed(8) / 2;
  long const n = rouse_test::scaled(40000);
  std::atomic<long> received{0};
  std::vector<std::thread> threads;
  for (unsigned p = 0; p < pairs; ++p) {
    std::size_t const capacities[] = {1, 2, 3, 64};
    auto [tx, rx] = ch::spsc<counted>(capacities[p % 4]);
    threads.emplace_back([&, p, t = std::move(tx)]() mutable {
      for (long i = 0; i < n; ++i) {
        switch ((i + p) % 3) {
          case 0:
            ASSERT_TRUE(t.send(counted(i)));
            break;
          case 1: {
            auto r = t.send_for(counted(i), 1ms);
            while (!r) {
              ASSERT_EQ(r.status(), ch::status::timed_out);
              r = t.send_for(std::move(r).value(), 1ms);
            }
            break;
          }
          default: {
            auto r = t.try_send(counted(i));
            while (!r) {
              ASSERT_EQ(r.status(), ch::status::full);
              std::this_thread::yield();
              r = t.try_send(std::move(r).value());
            }
          }
        }
      }
    });  // the sender's destruction closes the channel
    threads.emplace_back([&, p, r = std::move(rx)]() mutable {
      long expected = 0;
      if (p % 2 == 0) {
        for (auto& v : r) {
          ASSERT_EQ(v.value, expected);
          ++expected;
        }
      } else {
        for (;;) {
          auto got = r.recv_for(1ms);
          if (got.is_timed_out()) continue;
          if (got.is_closed()) break;
          ASSERT_EQ(got->value, expected);
          ++expected;
        }
      }
      EXPECT_EQ(expected, n);
      received.fetch_add(expected, std::memory_order_relaxed);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(received.load(), static_cast<long>(pairs) * n);
  EXPECT_EQ(counted::live.load(), 0);
}

// The receiver closes (or goes away) at a random point while the sender is
// still sending: the sender stops with closed and gets its value back; what
// the receiver got is an in-order prefix; every element is destroyed once,
// whether received, handed back, or left in the ring.
TEST(spsc_stress, close_racing_sends_destroys_every_element_once) {
  counted::live.store(0);
  unsigned const pairs = rouse_test::oversubscribed(8) / 2;
  long const rounds = rouse_test::scaled(800);
  std::vector<std::thread> threads;
  for (unsigned p = 0; p < pairs; ++p) {
    threads.emplace_back([&, p] {
      for (long round = 0; round < rounds; ++round) {
        auto [tx, rx] = ch::spsc<counted>(1 + static_cast<std::size_t>(round % 5));
        long const stop_after = (round * 7 + p) % 40;
        std::thread consumer([&, r = std::move(rx)]() mutable {
          long expected = 0;
          while (expected < stop_after) {
            auto got = r.recv();
            if (!got) break;
            ASSERT_EQ(got->value, expected);
            ++expected;
          }
          if (round % 2 == 0) r.close();  // else: just go away
        });
        long sent = 0;
        for (long i = 0;; ++i) {
          auto s = tx.send(counted(i));
          if (!s) {
            ASSERT_EQ(s.status(), ch::status::closed);
            ASSERT_EQ(s.value().value, i);
            break;
          }
          ++sent;
        }
        consumer.join();
        EXPECT_GE(sent, stop_after);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(counted::live.load(), 0) << "an element leaked or was destroyed twice";
}

}  // namespace
}  // namespace spsc_stress
