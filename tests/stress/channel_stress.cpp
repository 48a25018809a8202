// Stress tests of rouse::channel: more threads than cores, every flavour,
// counters proving each message is received exactly once, per-producer
// order kept, and close racing blocked operations.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "rouse/channel/channel.hpp"
#include "rouse/channel/select.hpp"
#include "stress.hpp"

namespace channel_stress {
namespace {

namespace ch = rouse::channel;
using namespace std::chrono_literals;

std::pair<ch::sender<std::uint64_t>, ch::receiver<std::uint64_t>> make(int flavour) {
  switch (flavour) {
    case 0:
      return ch::bounded<std::uint64_t>(0);
    case 1:
      return ch::bounded<std::uint64_t>(1, ch::ring::compare_exchange);
    case 2:
      return ch::bounded<std::uint64_t>(64, ch::ring::compare_exchange);
    case 4:
      return ch::bounded<std::uint64_t>(1, ch::ring::ticket);
    case 5:
      return ch::bounded<std::uint64_t>(64, ch::ring::ticket);
    case 6:
      return ch::bounded<std::uint64_t>(3, ch::ring::ticket);  // positions by division
    default:
      return ch::unbounded<std::uint64_t>();
  }
}

// 8 producers and 8 consumers; message = producer << 32 | sequence. Each
// consumer checks that every producer's sequence rises (linearizable order),
// and a shared table counts every message: each must be seen exactly once.
void exactly_once(int flavour, long per_producer) {
  constexpr unsigned producers = 8, consumers = 8;
  auto [tx, rx] = make(flavour);
  std::vector<std::atomic<std::uint8_t>> seen(producers * static_cast<std::size_t>(per_producer));
  std::atomic<long> disorder{0}, duplicates{0};
  std::vector<std::thread> threads;
  for (unsigned p = 0; p < producers; ++p)
    threads.emplace_back([tx = tx, p, per_producer]() mutable {
      for (long i = 0; i < per_producer; ++i) {
        std::uint64_t const m = std::uint64_t{p} << 32 | static_cast<std::uint64_t>(i);
        // Mix the blocking, timed and non-blocking forms.
        if (i % 3 == 0) {
          auto r = tx.try_send(m);
          while (!r) {  // full, or timed out: try again with a deadline
            ASSERT_NE(r.status(), ch::status::closed);
            r = tx.send_for(std::move(r).value(), 1ms);
          }
        } else {
          ASSERT_TRUE(tx.send(m));
        }
      }
    });
  tx = {};
  for (unsigned c = 0; c < consumers; ++c)
    threads.emplace_back([rx = rx, &seen, &disorder, &duplicates, per_producer, c]() mutable {
      std::vector<long> last(producers, -1);
      for (long k = 0;; ++k) {
        ch::recv_result<std::uint64_t> r = (k + c) % 4 == 0 ? rx.recv_for(1ms) : rx.recv();
        if (r.status() == ch::status::timed_out) continue;
        if (!r) break;
        std::uint64_t const m = *r;
        unsigned const p = static_cast<unsigned>(m >> 32);
        long const i = static_cast<long>(m & 0xffffffffu);
        if (i <= last[p]) disorder.fetch_add(1);
        last[p] = i;
        if (seen[p * static_cast<std::size_t>(per_producer) + static_cast<std::size_t>(i)].fetch_add(1) != 0)
          duplicates.fetch_add(1);
      }
    });
  rx = {};
  for (auto& t : threads) t.join();
  EXPECT_EQ(disorder.load(), 0);
  EXPECT_EQ(duplicates.load(), 0);
  long missing = 0;
  for (auto& s : seen) missing += s.load() == 0;
  EXPECT_EQ(missing, 0);
}

TEST(channel_stress, rendezvous_8x8_each_message_exactly_once) { exactly_once(0, rouse_test::scaled(2000)); }
TEST(channel_stress, bounded1_8x8_each_message_exactly_once) { exactly_once(1, rouse_test::scaled(10000)); }
TEST(channel_stress, bounded64_8x8_each_message_exactly_once) { exactly_once(2, rouse_test::scaled(40000)); }
TEST(channel_stress, unbounded_8x8_each_message_exactly_once) { exactly_once(3, rouse_test::scaled(40000)); }
TEST(channel_stress, ticket1_8x8_each_message_exactly_once) { exactly_once(4, rouse_test::scaled(10000)); }
TEST(channel_stress, ticket64_8x8_each_message_exactly_once) { exactly_once(5, rouse_test::scaled(40000)); }
TEST(channel_stress, ticket3_8x8_each_message_exactly_once) { exactly_once(6, rouse_test::scaled(10000)); }

// Close races blocked senders and receivers: every send either was received
// or handed its value back; nothing is lost, nobody hangs. Odd senders mix
// in try_send and send_for, whose claims race the close differently.
TEST(channel_stress, close_racing_blocked_operations_loses_nothing) {
  long const rounds = rouse_test::scaled(200);
  unsigned const threads_per_side = rouse_test::oversubscribed(8) / 2;
  for (long round = 0; round < rounds; ++round) {
    int const flavour = static_cast<int>((round / 2) % 7);
    auto [tx, rx] = make(flavour);
    std::atomic<long> sent{0}, returned{0}, received{0};
    std::vector<std::thread> threads;
    for (unsigned i = 0; i < threads_per_side; ++i) {
      threads.emplace_back([tx = tx, &sent, &returned, mixed = i % 2 == 1]() mutable {
        for (std::uint64_t v = 1;; ++v) {
          ch::send_result<std::uint64_t> r;
          switch (mixed ? v % 3 : 0) {
            case 0:
              r = tx.send(v);
              break;
            case 1:
              while ((r = tx.try_send(v)).status() == ch::status::full) std::this_thread::yield();
              break;
            default:
              while ((r = tx.send_for(v, 1ms)).status() == ch::status::timed_out) {
              }
              break;
          }
          if (!r) {
            EXPECT_EQ(r.status(), ch::status::closed);
            EXPECT_TRUE(r.has_value() && r.value() == v);  // handed back
            returned.fetch_add(1);
            return;
          }
          sent.fetch_add(1);
        }
      });
      threads.emplace_back([rx = rx, &received]() mutable {
        for (auto& v : rx) {
          (void)v;
          received.fetch_add(1);
        }
      });
    }
    std::this_thread::sleep_for(std::chrono::microseconds(100 * (round % 7)));
    if (round % 2)
      tx.close();
    else
      rx.close();
    for (auto& t : threads) t.join();
    // Every sender got its last value back; every value sent before the
    // close was drained by the receivers (a close from either side).
    EXPECT_EQ(returned.load(), threads_per_side);
    EXPECT_EQ(received.load(), sent.load());
  }
}

// Selecting consumers over a bounded (either ring) and a rendezvous channel,
// plain and selecting producers: every message exactly once.
void select_consumers(ch::ring ring) {
  long const per = rouse_test::scaled(5000);
  auto [tx1, rx1] = ch::bounded<std::uint64_t>(4, ring);
  auto [tx2, rx2] = ch::bounded<std::uint64_t>(0);
  std::atomic<long> count{0};
  std::atomic<std::uint64_t> sum{0};
  std::vector<std::thread> threads;
  for (int c = 0; c < 4; ++c)
    threads.emplace_back([&, rx1 = rx1, rx2 = rx2]() mutable {
      ch::recv_case a(rx1);
      ch::recv_case b(rx2);
      bool open[2] = {true, true};
      while (open[0] || open[1]) {
        std::size_t i;
        if (open[0] && open[1]) {
          auto sel = ch::select_for(1ms, a, b);
          if (!sel) continue;
          i = *sel;
        } else if (open[0]) {
          i = ch::select(a);
        } else {
          i = ch::select(b) + 1;
        }
        auto& r = i == 0 ? a.result() : b.result();
        if (!r) {
          open[i] = false;
          continue;
        }
        sum.fetch_add(*r);
        count.fetch_add(1);
      }
    });
  for (int p = 0; p < 2; ++p)
    threads.emplace_back([tx1 = tx1, tx2 = tx2, per, p]() mutable {
      // Each producer offers every value to both channels at once.
      for (long i = 1; i <= per; ++i) {
        std::uint64_t v = static_cast<std::uint64_t>(i);
        ch::send_case a(tx1, v);
        ch::send_case b(tx2, v);
        if (p == 0) {
          std::size_t const k = ch::select(a, b);
          ASSERT_EQ(k == 0 ? a.status() : b.status(), ch::status::ok);
        } else if (i % 2) {
          ASSERT_TRUE(tx1.send(v));  // plain blocking sends (the ticket ring's ticketed path)
        } else {
          ASSERT_TRUE(tx2.send(v));
        }
      }
    });
  tx1 = {};
  tx2 = {};
  rx1 = {};
  rx2 = {};
  for (auto& t : threads) t.join();
  EXPECT_EQ(count.load(), 2 * per);
  EXPECT_EQ(sum.load(), static_cast<std::uint64_t>(per * (per + 1)));
}

TEST(channel_stress, select_consumers_take_each_message_exactly_once) { select_consumers(ch::ring::compare_exchange); }
TEST(channel_stress, select_consumers_over_a_ticket_ring_take_each_message_exactly_once) {
  select_consumers(ch::ring::ticket);
}

}  // namespace
}  // namespace channel_stress
