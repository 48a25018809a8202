// Stress: rouse::async::channel::select with generic branches on the
// async::thread_pool (4 workers) and plain threads (select_blocking), more
// threads than cores. Many selects share two channels and one semaphore:
// producer tasks select between sending into either channel and acquiring
// a permit (op(sem.acquire())); plain threads select between a send, a
// reserve and a timeout; the one consumer task selects between both
// receivers and a permit. Every value sent with an ok result is received
// exactly once and no other value is (per-value flags); a permit holder
// never finds more than the semaphore's count in use; and at the end the
// semaphore holds exactly its permits again: no losing acquire kept one (a
// permit granted to a child that lost is released), none was doubled. A
// second test stops selects whose op branch waits while permits are
// released: every permit comes back. A lost wake-up hangs a test, which
// CTest's timeout fails. Sized by ROUSE_STRESS_SCALE.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include "rouse/async/channel.hpp"
#include "rouse/async/notify.hpp"
#include "rouse/async/select.hpp"
#include "rouse/async/semaphore.hpp"
#include "rouse/async/spawn.hpp"
#include "rouse/async/task.hpp"
#include "rouse/async/thread_pool.hpp"
#include "stress.hpp"

namespace async_select_stress {
namespace {
namespace ch = rouse::async::channel;
using namespace std::chrono_literals;
using rouse::async::join_handle;
using rouse::async::semaphore;
using rouse::async::spawn;
using rouse::async::task;
using rouse::async::thread_pool;
using rouse::channel::status;

constexpr std::size_t permits = 3;

struct shared {
  explicit shared(std::size_t values) : sent(values), seen(values) {}
  semaphore sem{permits};
  std::atomic<long> in_use{0};
  std::atomic<long> permit_wins{0};
  std::vector<std::atomic<std::uint8_t>> sent;  // the send completed ok
  std::vector<std::atomic<std::uint8_t>> seen;  // received

  void hold(semaphore::permit& p) {
    EXPECT_TRUE(p);
    EXPECT_EQ(p.count(), 1u);
    long const n = in_use.fetch_add(1) + 1;
    EXPECT_LE(n, static_cast<long>(permits)) << "more permits in use than the semaphore has";
    in_use.fetch_sub(1);
    permit_wins.fetch_add(1);
  }
  void mark_sent(long v) { EXPECT_EQ(sent[static_cast<std::size_t>(v)].exchange(1), 0) << "sent twice: " << v; }
  void mark_seen(long v) { EXPECT_EQ(seen[static_cast<std::size_t>(v)].exchange(1), 0) << "received twice: " << v; }
};

// Each round: send va into a, or vb into b, or take a permit (then the
// values of that round are not sent).
task<> producer(ch::sender<long> a, ch::sender<long> b, shared& s, long first, long rounds) {
  for (long k = 0; k < rounds; ++k) {
    long va = 2 * (first + k);
    long vb = va + 1;
    auto r = co_await ch::select(ch::send(a, va), ch::send(b, vb), ch::op(s.sem.acquire()));
    switch (r.index()) {
      case 0:
        EXPECT_TRUE(std::get<0>(r));
        s.mark_sent(2 * (first + k));
        break;
      case 1:
        EXPECT_TRUE(std::get<1>(r));
        s.mark_sent(2 * (first + k) + 1);
        break;
      case 2:
        s.hold(std::get<2>(r));
        break;
    }
  }
}

// The one consumer of both channels: receives until both are closed, and
// takes permits too.
task<long> consumer(ch::receiver<long>& a, ch::receiver<long>& b, shared& s) {
  auto sched = co_await rouse::async::this_task::get_scheduler();
  long got = 0;
  bool a_open = true;
  bool b_open = true;
  while (a_open && b_open) {
    auto r = co_await ch::select(ch::recv(a), ch::recv(b), ch::op(s.sem.acquire()));
    if (r.index() == 2) {
      s.hold(std::get<2>(r));
      // Yield: with free permits this loop never suspends, and a producer
      // woken into this worker's LIFO slot (not stealable) would wait for it.
      co_await sched.schedule();
      continue;
    }
    auto& v = r.index() == 0 ? std::get<0>(r) : std::get<1>(r);
    if (!v) {
      EXPECT_EQ(v.status(), status::closed);
      (r.index() == 0 ? a_open : b_open) = false;
      continue;
    }
    s.mark_seen(*v);
    ++got;
  }
  ch::receiver<long>& rest = a_open ? a : b;
  for (;;) {
    auto v = co_await rest.recv();
    if (!v) break;
    s.mark_seen(*v);
    ++got;
  }
  co_return got;
}

TEST(async_select_stress, selects_with_semaphore_branches_deliver_once_and_conserve_permits) {
  long const tasks = rouse_test::scaled(2000);
  long const rounds = 8;
  long const thread_values = rouse_test::scaled(2000);
  unsigned const threads = 2;
  std::size_t const values = static_cast<std::size_t>(2 * tasks * rounds + threads * thread_values);
  shared s(values);
  long received = 0;
  {
    thread_pool pool(4);
    auto ca = ch::bounded<long>(4);
    auto cb = ch::bounded<long>(4);
    auto cons = spawn(pool, consumer(ca.second, cb.second, s));
    std::vector<join_handle<void>> producers;
    for (long t = 0; t < tasks; ++t)
      producers.push_back(spawn(pool, producer(ca.first, cb.first, s, t * rounds, rounds)));
    // Plain threads: a send into a, or a slot in b (a value sent through it),
    // or a short timeout (that value is not sent).
    std::vector<std::thread> ts;
    long const base = 2 * tasks * rounds;
    for (unsigned k = 0; k < threads; ++k) {
      ts.emplace_back([&, k, a = ca.first, b = cb.first]() mutable {
        for (long i = 0; i < thread_values; ++i) {
          long const v = base + static_cast<long>(k) * thread_values + i;
          long mine = v;
          auto r = ch::select_blocking(ch::send(a, mine), ch::reserve(b), ch::timeout(50us));
          if (r.index() == 0) {
            EXPECT_TRUE(std::get<0>(r));
            s.mark_sent(v);
          } else if (r.index() == 1) {
            EXPECT_TRUE(std::get<1>(r).send(v));
            s.mark_sent(v);
          }
        }
      });
    }
    for (auto& p : producers) p.join();
    for (auto& t : ts) t.join();
    ca.first.close();
    cb.first.close();
    received = cons.join();
  }
  long sent = 0;
  for (std::size_t v = 0; v < values; ++v) {
    sent += s.sent[v].load();
    EXPECT_EQ(s.seen[v].load(), s.sent[v].load()) << "value " << v;
  }
  EXPECT_EQ(received, sent);
  EXPECT_EQ(s.in_use.load(), 0);
  EXPECT_EQ(s.sem.available(), permits) << "a losing acquire kept a permit, or one was doubled";
  EXPECT_GT(s.permit_wins.load(), 0);
}

TEST(async_select_stress, stopped_selects_with_waiting_op_branches_return_every_permit) {
  long const n = rouse_test::scaled(4000);
  semaphore sem(0);
  auto idle = ch::bounded<long>(1);  // never sent into: its branch only waits
  std::atomic<long> wins{0};         // a winner's permit goes back when its task ends: others may win it again
  {
    thread_pool pool(4);
    std::vector<join_handle<void>> hs;
    for (long i = 0; i < n; ++i)
      hs.push_back(spawn(pool, [](ch::receiver<long>& rx, semaphore& s, std::atomic<long>& w) -> task<> {
        auto r = co_await ch::select(ch::op(s.acquire()), ch::timeout(1h));
        if (r.index() == 0 && std::get<0>(r)) w.fetch_add(1);
        (void)rx;
      }(idle.second, sem, wins)));
    std::thread releaser([&] {
      for (long i = 0; i < n / 2; ++i) sem.release(1);
    });
    for (auto& h : hs) h.request_stop();
    releaser.join();
    for (auto& h : hs) {
      try {
        h.join();
      } catch (const rouse::async::operation_stopped&) {
      }
    }
  }
  // Every select is gone: no waiter is left in the queue, and every permit a
  // winner held, or a stopped child was granted, is back.
  EXPECT_EQ(sem.available(), static_cast<std::size_t>(n / 2));
}

// Two op() branches whose semaphores are released back to back on a pool:
// the loser often ends on another worker between the select's look at its
// running children and its next join round. A round that found every child
// ended armed nothing and slept for good (a hang here).
TEST(async_select_stress, a_loser_that_ends_just_before_a_join_round_does_not_leave_the_select_asleep) {
  thread_pool pool(4);
  semaphore a(0), b(0);
  long const rounds = rouse_test::scaled(50000);
  for (long i = 0; i < rounds; ++i) {
    auto h = spawn(pool, [](semaphore& a, semaphore& b) -> task<std::size_t> {
      auto r = co_await ch::select(ch::op(a.acquire()), ch::op(b.acquire()));
      co_return r.index();
    }(a, b));
    for (long k = 0; k < (i % 7) * 300; ++k) asm volatile("");
    a.release(1);
    b.release(1);
    std::size_t const won = h.join();
    ASSERT_LT(won, 2u);
    // The winner's permit came back with its result; the loser took none, or
    // was granted one and gave it back: two permits in all.
    auto pa = a.try_acquire(1);
    auto pb = b.try_acquire(1);
    ASSERT_TRUE(pa && pb) << "round " << i;
    pa.forget();
    pb.forget();
  }
}

// A notify branch beside a busy channel, on a pool: a notifier thread makes
// one notify_one at a time and waits for the consumer to report it; a feeder
// thread keeps the channel ready, so the select often chooses the recv while
// the notified() child was chosen too (at its check, at its re-check, or
// asleep). A losing child gives its permit back; a lost one leaves the
// notifier waiting for good (a hang), a doubled one shows in the count.
TEST(async_select_stress, a_notify_branch_beside_a_busy_channel_loses_no_notification) {
  long const rounds = rouse_test::scaled(5000);
  rouse::async::notify n;
  std::atomic<long> reported{0};
  long wins = 0;
  {
    thread_pool pool(4);
    auto c = ch::bounded<long>(4);
    auto cons = spawn(pool, [](ch::receiver<long>& rx, rouse::async::notify& nt, std::atomic<long>& rep,
                               long want) -> task<long> {
      long got = 0;
      while (got < want) {
        auto r = co_await ch::select(ch::recv(rx), ch::op(nt.notified()));
        if (r.index() == 1) {
          ++got;
          rep.store(got);
          rep.notify_one();
        }
      }
      co_return got;
    }(c.second, n, reported, rounds));
    std::thread feeder([tx = c.first]() mutable {
      for (long v = 0; tx.send_blocking(v); ++v) {
      }
    });
    for (long i = 0; i < rounds; ++i) {
      n.notify_one();
      for (long r = reported.load(); r <= i; r = reported.load()) reported.wait(r);
    }
    wins = cons.join();
    c.second.close();  // the feeder's send fails: it ends
    feeder.join();
  }
  EXPECT_EQ(wins, rounds);
  EXPECT_FALSE(n.notified().await_ready()) << "a notification was doubled";
}

}  // namespace
}  // namespace async_select_stress
