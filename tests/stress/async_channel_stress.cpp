// Stress: rouse::async::channel on the async::thread_pool (2 workers, more
// tasks than cores) and plain threads at once. Every value sent with an ok
// result is received exactly once (a per-value flag), every value handed back
// (timeout, stop) was never received, a select completes exactly one branch
// and a stopped one holds no slot, and counted elements prove nothing is
// constructed or destroyed more or fewer times than sent and received. A lost
// wake-up hangs a test, which CTest's timeout fails. Sized by
// ROUSE_STRESS_SCALE.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include "counted.hpp"
#include "rouse/async/channel.hpp"
#include "rouse/async/select.hpp"
#include "rouse/async/spawn.hpp"
#include "rouse/async/task.hpp"
#include "rouse/async/thread_pool.hpp"
#include "stress.hpp"

namespace async_channel_stress {
namespace {
namespace ch = rouse::async::channel;
using namespace std::chrono_literals;
using rouse::async::join_handle;
using rouse::async::spawn;
using rouse::async::task;
using rouse::async::thread_pool;
using rouse::channel::status;
using rouse_test::counted;
using rouse_test::counted_scope;
using recv_result_of_counted = rouse::channel::recv_result<counted>;

// Receives until closed, marking each value; fails on a duplicate.
task<long> consume(ch::receiver<counted> rx, std::vector<std::atomic<std::uint8_t>>& seen) {
  long n = 0;
  for (;;) {
    auto r = co_await rx.recv();
    if (!r) break;
    EXPECT_EQ(seen[static_cast<std::size_t>(r->value)].exchange(1), 0) << "received twice: " << r->value;
    ++n;
  }
  co_return n;
}

// Sends `count` values from `first`, by one of three ways: send, reserve and
// permit, a timed send (a timed-out one sends the value it got back).
task<long> produce(ch::sender<counted> tx, long first, long count, int way) {
  long ok = 0;
  for (long v = first; v < first + count; ++v) {
    if (way == 0) {
      if (co_await tx.send(counted(v))) ++ok;
    } else if (way == 1) {
      auto p = co_await tx.reserve();
      if (p && p.send(counted(v))) ++ok;
    } else {
      // A timed send that times out hands its value back; then it waits
      // without a deadline (retrying with timeouts would only re-queue
      // behind thousands of waiting senders, over and over).
      auto r = co_await tx.send_for(counted(v), 20us);
      if (r.status() == status::timed_out) {
        EXPECT_EQ(r.value().value, v);
        r = co_await tx.send(std::move(r).value());
      }
      if (r) ++ok;
    }
  }
  co_return ok;
}

void run_tasks(std::size_t capacity, bool unbounded) {
  counted_scope scope;
  long const tasks = rouse_test::scaled(40000);  // 10,000 at the default scale
  long const per_task = 8;
  std::vector<std::atomic<std::uint8_t>> seen(static_cast<std::size_t>(tasks * per_task));
  {
    thread_pool pool(2);
    auto pair_76 = unbounded ? ch::unbounded<counted>() : ch::bounded<counted>(capacity);
    auto& tx = pair_76.first;
    auto& rx = pair_76.second;
    auto consumer = spawn(pool, consume(std::move(rx), seen));
    std::vector<join_handle<long>> producers;
    producers.reserve(static_cast<std::size_t>(tasks));
    for (long t = 0; t < tasks; ++t)
      producers.push_back(spawn(pool, produce(tx, t * per_task, per_task, static_cast<int>(t % 3))));
    tx = ch::sender<counted>();
    long sent = 0;
    for (auto& p : producers) sent += p.join();
    EXPECT_EQ(sent, tasks * per_task);
    EXPECT_EQ(consumer.join(), tasks * per_task);
  }
  for (auto& s : seen) EXPECT_EQ(s.load(), 1);
}

TEST(async_channel_stress, ten_thousand_tasks_deliver_every_value_once_bounded) { run_tasks(16, false); }
TEST(async_channel_stress, ten_thousand_tasks_deliver_every_value_once_rendezvous) { run_tasks(0, false); }
TEST(async_channel_stress, ten_thousand_tasks_deliver_every_value_once_unbounded) { run_tasks(0, true); }

// Threads (blocking and timed forms) and tasks send at once; a thread
// receives with timed waits; then the roles swap: tasks send to a thread.
TEST(async_channel_stress, threads_and_tasks_share_one_channel) {
  for (std::size_t cap : {0u, 1u, 64u}) {
    counted_scope scope;
    long const per = rouse_test::scaled(4000);
    int const threads = 3, tasks = 40;
    long const total = per * threads + per / 10 * tasks;
    std::vector<std::atomic<std::uint8_t>> seen(static_cast<std::size_t>(total));
    thread_pool pool(2);
    auto pair_105 = ch::bounded<counted>(cap);
    auto& tx = pair_105.first;
    auto& rx = pair_105.second;
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t)
      ts.emplace_back([tx = tx, t, per]() mutable {
        for (long v = t * per; v < (t + 1) * per; ++v) {
          if (v % 2) {
            EXPECT_TRUE(tx.send_blocking(counted(v)));
          } else {
            auto r = tx.send_blocking_for(counted(v), 10us);
            while (r.status() == status::timed_out) r = tx.send_blocking_for(std::move(r).value(), 10us);
            EXPECT_TRUE(r);
          }
        }
      });
    std::vector<join_handle<long>> hs;
    for (int k = 0; k < tasks; ++k)
      hs.push_back(spawn(pool, produce(tx, per * threads + k * (per / 10), per / 10, k % 3)));
    tx = ch::sender<counted>();
    long got = 0;
    for (;;) {
      auto r = rx.recv_blocking_for(50us);
      if (r.status() == status::timed_out) continue;
      if (!r) break;
      EXPECT_EQ(seen[static_cast<std::size_t>(r->value)].exchange(1), 0);
      ++got;
    }
    for (auto& t : ts) t.join();
    for (auto& h : hs) h.join();
    EXPECT_EQ(got, total) << "capacity " << cap;
  }
}

// Producer tasks are stopped at random while they wait to send: a stopped
// send sends nothing and loses nothing; the consumer gets exactly the values
// whose sends returned ok, and the channel's permits all come back.
task<long> produce_counting(ch::sender<counted> tx, long first, long count, std::atomic<std::uint8_t>* sent) {
  long ok = 0;
  for (long v = first; v < first + count; ++v) {
    if (co_await tx.send(counted(v))) {
      sent[v].store(1);
      ++ok;
    }
  }
  co_return ok;
}

TEST(async_channel_stress, stopped_senders_lose_and_duplicate_nothing) {
  counted_scope scope;
  long const tasks = rouse_test::scaled(2000);
  long const per_task = 6;
  std::size_t const n = static_cast<std::size_t>(tasks * per_task);
  std::vector<std::atomic<std::uint8_t>> seen(n), sent(n);
  {
    thread_pool pool(2);
    auto pair_159 = ch::bounded<counted>(4);
    auto& tx = pair_159.first;
    auto& rx = pair_159.second;
    std::vector<join_handle<long>> hs;
    for (long t = 0; t < tasks; ++t) hs.push_back(spawn(pool, produce_counting(tx, t * per_task, per_task, sent.data())));
    std::thread stopper([&hs] {
      std::mt19937 rng(7);
      for (std::size_t i = 0; i < hs.size(); i += 1 + rng() % 3) hs[i].request_stop();
    });
    long got = 0;
    std::thread consumer([&, rx = std::move(rx)]() mutable {
      for (;;) {
        auto r = rx.recv_blocking();
        if (!r) break;
        EXPECT_EQ(seen[static_cast<std::size_t>(r->value)].exchange(1), 0);
        ++got;
        if (got % 64 == 0) std::this_thread::yield();
      }
      EXPECT_EQ(rx.permits_for_testing(), 4);
    });
    stopper.join();
    tx = ch::sender<counted>();
    long ok = 0;
    for (auto& h : hs) {
      try {
        ok += h.join();
      } catch (const rouse::async::operation_stopped&) {
      }
    }
    consumer.join();
    long sent_count = 0;
    for (auto& s : sent) sent_count += s.load();
    EXPECT_GE(sent_count, ok);
    EXPECT_EQ(got, sent_count);
  }
  for (std::size_t i = 0; i < n; ++i) EXPECT_EQ(seen[i].load(), sent[i].load()) << i;
}

// A consumer task selects over two channels (recv, recv, a short timeout)
// while producer tasks and a thread fill both; another task selects between
// a reserve on a full channel and a recv, and is stopped at random. Every
// value is received exactly once; no slot is lost (the permits all return).
task<long> select_consumer(ch::receiver<counted> a, ch::receiver<counted> b,
                           std::vector<std::atomic<std::uint8_t>>& seen) {
  long n = 0;
  bool a_open = true, b_open = true;
  while (a_open || b_open) {
    auto r = co_await ch::select(ch::recv(a), ch::recv(b), ch::timeout(200us));
    recv_result_of_counted* got = nullptr;
    if (r.index() == 0) got = &std::get<0>(r);
    if (r.index() == 1) got = &std::get<1>(r);
    if (got == nullptr) continue;  // timed out
    if (!*got) {
      (r.index() == 0 ? a_open : b_open) = false;
      if (!a_open && !b_open) break;
      // A closed channel's branch is always ready: drain the other alone.
      ch::receiver<counted>& rest = a_open ? a : b;
      while (auto v = co_await rest.recv()) {
        EXPECT_EQ(seen[static_cast<std::size_t>(v->value)].exchange(1), 0);
        ++n;
      }
      break;
    }
    EXPECT_EQ(seen[static_cast<std::size_t>((*got)->value)].exchange(1), 0);
    ++n;
  }
  co_return n;
}

TEST(async_channel_stress, select_receives_every_value_once) {
  counted_scope scope;
  long const tasks = rouse_test::scaled(2000);
  long const per_task = 8;
  std::vector<std::atomic<std::uint8_t>> seen(static_cast<std::size_t>(2 * tasks * per_task));
  {
    thread_pool pool(2);
    auto ca = ch::bounded<counted>(8);
    auto cb = ch::bounded<counted>(0);
    auto consumer = spawn(pool, select_consumer(std::move(ca.second), std::move(cb.second), seen));
    std::vector<join_handle<long>> hs;
    for (long t = 0; t < tasks; ++t) {
      hs.push_back(spawn(pool, produce(ca.first, 2 * t * per_task, per_task, static_cast<int>(t % 3))));
      hs.push_back(spawn(pool, produce(cb.first, (2 * t + 1) * per_task, per_task, static_cast<int>(t % 2))));
    }
    ca.first = ch::sender<counted>();
    cb.first = ch::sender<counted>();
    long sent = 0;
    for (auto& h : hs) sent += h.join();
    EXPECT_EQ(sent, 2 * tasks * per_task);
    EXPECT_EQ(consumer.join(), sent);
  }
  for (auto& s : seen) EXPECT_EQ(s.load(), 1);
}

task<int> reserve_or_recv(ch::sender<counted>& full, ch::receiver<counted>& rx) {
  auto r = co_await ch::select(ch::reserve(full), ch::recv(rx));
  if (r.index() == 0) {
    auto& p = std::get<0>(r);
    if (p) {
      EXPECT_TRUE(p.send(counted(-1)));
    }
    co_return 0;
  }
  co_return std::get<1>(r) ? 1 : 2;
}

TEST(async_channel_stress, stopped_selects_leave_no_slot_behind) {
  counted_scope scope;
  long const rounds = rouse_test::scaled(2000);
  thread_pool pool(2);
  auto full = ch::bounded<counted>(1);
  std::mt19937 rng(11);
  for (long i = 0; i < rounds; ++i) {
    auto other = ch::bounded<counted>(1);
    EXPECT_TRUE(full.first.try_send(counted(0)));
    auto h = spawn(pool, reserve_or_recv(full.first, other.second));
    switch (rng() % 3) {
      case 0:
        h.request_stop();
        break;
      case 1:
        EXPECT_EQ(full.second.recv_blocking()->value, 0);  // frees the slot
        break;
      default:
        EXPECT_TRUE(other.first.send_blocking(counted(i)));
        break;
    }
    int outcome = -1;
    try {
      outcome = h.join();
    } catch (const rouse::async::operation_stopped&) {
    }
    // Drain: whatever is left, the permits must come back to 1.
    while (auto v = full.second.try_recv()) (void)v;
    while (auto v = other.second.try_recv()) (void)v;
    EXPECT_EQ(full.second.permits_for_testing(), 1) << "round " << i << " outcome " << outcome;
  }
}

// A receive stopped while a send wakes it: the value is either received by
// it, or left in the channel for the next receive; never both, never lost.
task<long> recv_one(ch::receiver<counted>& rx) {
  auto r = co_await rx.recv();
  co_return r ? r->value : -1;
}

TEST(async_channel_stress, a_recv_stopped_while_being_woken_takes_the_value_once) {
  counted_scope scope;
  long const rounds = rouse_test::scaled(4000);
  thread_pool pool(2);
  for (std::size_t cap : {0u, 1u}) {
    auto c = ch::bounded<counted>(cap);
    long received = 0, left = 0;
    std::mt19937 rng(5);
    for (long i = 0; i < rounds; ++i) {
      auto h = spawn(pool, recv_one(c.second));
      std::thread sender([&c, i] { EXPECT_TRUE(c.first.send_blocking(counted(i))); });
      if (rng() % 2) std::this_thread::yield();
      h.request_stop();
      long got = -1;
      try {
        got = h.join();
      } catch (const rouse::async::operation_stopped&) {
      }
      if (got >= 0) {
        EXPECT_EQ(got, i);
        ++received;
      } else {  // before the join: a rendezvous send may wait for this receive
        auto r = c.second.recv_blocking();
        EXPECT_TRUE(r);
        if (r) {
          EXPECT_EQ(r->value, i);
        }
        ++left;
      }
      sender.join();
      EXPECT_EQ(c.second.try_recv().status(), status::empty);
    }
    EXPECT_EQ(received + left, rounds);
  }
}

}  // namespace
}  // namespace async_channel_stress
