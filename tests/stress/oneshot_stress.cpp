// Stress tests of rouse/channel/oneshot.hpp: many one-shot channels raced
// between threads (send vs drop of the receiver, recv vs drop of the sender),
// with counters proving every value is delivered or handed back exactly once
// and destroyed exactly once.
#include "rouse/channel/oneshot.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include "counted.hpp"
#include "stress.hpp"

namespace oneshot_stress {
namespace {

using namespace std::chrono_literals;
namespace ch = rouse::channel;

using rouse_test::counted;

// Receives blocking, timed or polling, by round number.
ch::recv_result<counted> receive(ch::oneshot_receiver<counted>& rx, long i) {
  if (i % 4 == 0) return rx.recv();
  if (i % 4 == 1) {
    auto got = rx.recv_for(20ms);
    if (!got.is_timed_out()) return got;
    return rx.recv();  // slow machine: it must still come
  }
  for (;;) {
    auto got = rx.try_recv();
    if (got.status() != ch::status::empty) return got;
  }
}

// Pairs of threads share `rounds` channels each. For channel i the sending
// thread sends (or drops the sender when (i + p) % 5 == 4) while the receiving
// thread receives blocking, timed, polling, or drops the receiver (i % 4 == 3),
// so every combination races.
TEST(oneshot_stress, raced_sends_receives_and_drops_lose_and_duplicate_nothing) {
  counted::live.store(0);
  unsigned const pairs = rouse_test::oversubscribed(8) / 2;
  long const rounds = rouse_test::scaled(20000);
  std::atomic<long> received_sum{0}, sent_to_receivers_sum{0}, closed_seen{0}, sender_drops_seen{0};
  std::atomic<long> handed_back{0}, receiver_drops{0};

  std::vector<std::thread> threads;
  for (unsigned p = 0; p < pairs; ++p) {
    std::vector<ch::oneshot_sender<counted>> senders;
    std::vector<ch::oneshot_receiver<counted>> receivers;
    for (long i = 0; i < rounds; ++i) {
      auto [tx, rx] = ch::oneshot<counted>();
      senders.push_back(std::move(tx));
      receivers.push_back(std::move(rx));
    }
    threads.emplace_back([&, p, s = std::move(senders)]() mutable {
      for (long i = 0; i < rounds; ++i) {
        long const v = static_cast<long>(p) * rounds + i + 1;
        bool const receiver_drops_it = i % 4 == 3;
        if ((i + static_cast<long>(p)) % 5 == 4) {
          auto gone = std::move(s[static_cast<std::size_t>(i)]);
          if (!receiver_drops_it) sender_drops_seen.fetch_add(1, std::memory_order_relaxed);
          continue;
        }
        auto r = std::move(s[static_cast<std::size_t>(i)]).send(counted(v));
        if (r) {
          if (!receiver_drops_it) sent_to_receivers_sum.fetch_add(v, std::memory_order_relaxed);
        } else {
          EXPECT_TRUE(receiver_drops_it);
          EXPECT_EQ(r.status(), ch::status::closed);
          EXPECT_EQ(r.value().value, v);
          handed_back.fetch_add(1, std::memory_order_relaxed);
        }
      }
    });
    threads.emplace_back([&, r = std::move(receivers)]() mutable {
      for (long i = 0; i < rounds; ++i) {
        auto& rx = r[static_cast<std::size_t>(i)];
        if (i % 4 == 3) {
          auto gone = std::move(rx);
          receiver_drops.fetch_add(1, std::memory_order_relaxed);
          continue;
        }
        auto got = receive(rx, i);
        if (got) {
          received_sum.fetch_add(got->value, std::memory_order_relaxed);
        } else {
          EXPECT_EQ(got.status(), ch::status::closed);
          closed_seen.fetch_add(1, std::memory_order_relaxed);
        }
      }
    });
  }
  for (auto& t : threads) t.join();

  EXPECT_EQ(received_sum.load(), sent_to_receivers_sum.load()) << "a value was lost or duplicated";
  EXPECT_EQ(closed_seen.load(), sender_drops_seen.load()) << "a close was lost or invented";
  EXPECT_LE(handed_back.load(), receiver_drops.load());
  EXPECT_EQ(counted::live.load(), 0) << "a value leaked or was destroyed twice";
}

// Request/reply: for every round the client creates a reply channel and
// sends its sender to the server over a request channel; the server answers.
// Both sides block on every round, many pairs at once.
TEST(oneshot_stress, request_reply_round_trips) {
  unsigned const pairs = rouse_test::oversubscribed(8) / 2;
  long const rounds = rouse_test::scaled(10000);
  std::atomic<long> replies{0};
  std::vector<std::thread> threads;
  for (unsigned p = 0; p < pairs; ++p) {
    std::vector<ch::oneshot_sender<ch::oneshot_sender<long>>> requests_tx;
    std::vector<ch::oneshot_receiver<ch::oneshot_sender<long>>> requests_rx;
    for (long i = 0; i < rounds; ++i) {
      auto [tx, rx] = ch::oneshot<ch::oneshot_sender<long>>();
      requests_tx.push_back(std::move(tx));
      requests_rx.push_back(std::move(rx));
    }
    threads.emplace_back([&, rx = std::move(requests_rx)]() mutable {
      for (long i = 0; i < rounds; ++i) {
        auto req = rx[static_cast<std::size_t>(i)].recv();
        ASSERT_TRUE(req);
        EXPECT_TRUE(std::move(*req).send(i));
      }
    });
    threads.emplace_back([&, tx = std::move(requests_tx)]() mutable {
      for (long i = 0; i < rounds; ++i) {
        auto [reply_tx, reply_rx] = ch::oneshot<long>();
        ASSERT_TRUE(std::move(tx[static_cast<std::size_t>(i)]).send(std::move(reply_tx)));
        auto r = reply_rx.recv();
        ASSERT_TRUE(r);
        EXPECT_EQ(*r, i);
        replies.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(replies.load(), static_cast<long>(pairs) * rounds);
}

}  // namespace
}  // namespace oneshot_stress
