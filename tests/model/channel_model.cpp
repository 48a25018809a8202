// Models of rouse::channel's blocking handshakes, run on the real channel
// code (compiled with ROUSE_MODEL_RELACY, so every atomic and futex call goes
// through Relacy). Relacy explores the interleavings and the C++ memory
// model and reports data races on the message cells, assertion failures and
// deadlocks (a lost wake-up shows up as a deadlock).
//
//   bounded_both_sides_block   capacity 1, one sender sends 3 values (it
//                              blocks while full), one receiver receives 3
//                              (it blocks while empty): values arrive in order
//   close_races_blocked_recv   a receiver blocks on an empty channel while
//                              another thread sends one value and closes: the
//                              receiver gets the value, then `closed`
//   close_races_blocked_send   a sender blocks on a full channel while the
//                              receiver closes: the sender gets its value back
//   rendezvous_hand_off        capacity 0: a send returns only after the
//                              receive took its value
//   unbounded_close            the list flavour: send, send, close against a
//                              blocking receiver
//   ticket_both_sides_block    the ticket ring (ticket.hpp), capacity 1: the
//                              sender and receiver take tickets and sleep on
//                              their slot; 3 values arrive in order
//   ticket_close_wakes_recv    a receiver asleep on its slot of an empty ring
//                              while another thread closes: it gets `closed`
//   ticket_close_races_send    a sender asleep on a full slot while the
//                              receiver closes and drains: the sender either
//                              gets its value back, or (its slot freed before
//                              it saw the close) is received; nothing else
//   ticket_kill_vs_publish     three threads: two sends (the second may block),
//                              a close, and a receiver draining to `closed`;
//                              the receiver kills the slot of a send that gave
//                              up, racing that send's publish: every value
//                              either arrives once or goes back to its sender
//   ticket_timed_recv          a timed receive (parked on the waker queue, as
//                              array.hpp's) against a ticketed send
//
// A broken variant, switched on in the real code (detail::model_fault), that
// the model must catch:
//   broken_park_skips_recheck  a blocked send or receive registers its waiter
//                              and sleeps without re-checking the channel
//                              (B2): a notify that looked for waiters just
//                              before the registration wakes nobody, and
//                              bounded_both_sides_block deadlocks
//   broken_ticket_publish_blind_store   a send publishes with a plain store,
//                              not a compare-exchange: it overwrites the
//                              receiver's kill of its slot after the close,
//                              and ticket_kill_vs_publish loses the value
// (A close() that skipped waking the slot sleepers is not a variant here:
// the model's futex may wake spuriously, and a sleeper re-checks the mark.)
#include <cstdint>

#include "model.hpp"
#include "rouse/channel/detail/array.hpp"
#include "rouse/channel/detail/list.hpp"
#include "rouse/channel/detail/ticket.hpp"
#include "rouse/channel/detail/zero.hpp"
#include "rouse/detail/deadline.hpp"

namespace {

namespace cd = rouse::channel::detail;
namespace d = rouse::detail;
using rouse::channel::status;

struct bounded_both_sides_block : rl::test_suite<bounded_both_sides_block, 2> {
  cd::array_channel<int> chan{1};

  void thread(unsigned index) {
    if (index == 0) {
      for (int i = 1; i <= 3; ++i) {
        int v = i;
        RL_ASSERT(chan.send(v, cd::no_deadline{}) == status::ok);
      }
    } else {
      for (int i = 1; i <= 3; ++i) {
        auto r = chan.recv(cd::no_deadline{});
        RL_ASSERT(r.has_value() && *r == i);
      }
    }
  }
};

struct close_races_blocked_recv : rl::test_suite<close_races_blocked_recv, 2> {
  cd::array_channel<int> chan{2};

  void thread(unsigned index) {
    if (index == 0) {
      int v = 7;
      RL_ASSERT(chan.send(v, cd::no_deadline{}) == status::ok);
      RL_ASSERT(chan.close());
    } else {
      auto r = chan.recv(cd::no_deadline{});
      RL_ASSERT(r.has_value() && *r == 7);
      auto c = chan.recv(cd::no_deadline{});
      RL_ASSERT(c.status() == status::closed);
    }
  }
};

struct close_races_blocked_send : rl::test_suite<close_races_blocked_send, 2> {
  cd::array_channel<int> chan{1};

  void thread(unsigned index) {
    if (index == 0) {
      int a = 1, b = 2;
      RL_ASSERT(chan.send(a, cd::no_deadline{}) == status::ok);
      status const s = chan.send(b, cd::no_deadline{});  // full: blocks until the close
      RL_ASSERT(s == status::closed);
      RL_ASSERT(b == 2);
    } else {
      while (chan.size() == 0) rouse::detail::spin_pause();
      chan.close();
      auto r = chan.recv(cd::no_deadline{});  // drains the first value
      RL_ASSERT(r.has_value() && *r == 1);
    }
  }
};

struct rendezvous_hand_off : rl::test_suite<rendezvous_hand_off, 2> {
  cd::zero_channel<int> chan;
  rl::var<int> after_recv;

  void thread(unsigned index) {
    if (index == 0) {
      int v = 5;
      RL_ASSERT(chan.send(v, cd::no_deadline{}) == status::ok);
      RL_ASSERT(after_recv($) == 1);  // the receive has happened-before the send's return
      int w = 6;
      RL_ASSERT(chan.send(w, cd::no_deadline{}) == status::closed);
    } else {
      after_recv($) = 1;
      auto r = chan.recv(cd::no_deadline{});
      RL_ASSERT(r.has_value() && *r == 5);
      chan.close();
    }
  }
};

struct unbounded_close : rl::test_suite<unbounded_close, 2> {
  cd::list_channel<int> chan;

  void thread(unsigned index) {
    if (index == 0) {
      int a = 1, b = 2;
      RL_ASSERT(chan.send(a, cd::no_deadline{}) == status::ok);
      RL_ASSERT(chan.send(b, cd::no_deadline{}) == status::ok);
      chan.close();
    } else {
      auto r1 = chan.recv(cd::no_deadline{});
      RL_ASSERT(r1.has_value() && *r1 == 1);
      auto r2 = chan.recv(cd::no_deadline{});
      RL_ASSERT(r2.has_value() && *r2 == 2);
      RL_ASSERT(chan.recv(cd::no_deadline{}).status() == status::closed);
    }
  }
};

struct ticket_both_sides_block : rl::test_suite<ticket_both_sides_block, 2> {
  cd::ticket_channel<int> chan{1};

  void thread(unsigned index) {
    if (index == 0) {
      for (int i = 1; i <= 3; ++i) {
        int v = i;
        RL_ASSERT(chan.send(v, cd::no_deadline{}) == status::ok);
      }
    } else {
      for (int i = 1; i <= 3; ++i) {
        auto r = chan.recv(cd::no_deadline{});
        RL_ASSERT(r.has_value() && *r == i);
      }
    }
  }
};

struct ticket_close_wakes_recv : rl::test_suite<ticket_close_wakes_recv, 2> {
  cd::ticket_channel<int> chan{1};

  void thread(unsigned index) {
    if (index == 0) {
      RL_ASSERT(chan.recv(cd::no_deadline{}).status() == status::closed);
    } else {
      RL_ASSERT(chan.close());
    }
  }
};

struct ticket_close_races_send : rl::test_suite<ticket_close_races_send, 2> {
  cd::ticket_channel<int> chan{1};
  rl::var<int> second;  // 1: the second send went through, 2: it came back

  void thread(unsigned index) {
    if (index == 0) {
      int a = 1, b = 2;
      RL_ASSERT(chan.send(a, cd::no_deadline{}) == status::ok);
      status const s = chan.send(b, cd::no_deadline{});  // full: blocks
      if (s == status::closed) {
        RL_ASSERT(b == 2);
        second($) = 2;
      } else {
        RL_ASSERT(s == status::ok);
        second($) = 1;
      }
    } else {
      while (chan.size() == 0) rouse::detail::spin_pause();
      chan.close();
      auto r = chan.recv(cd::no_deadline{});  // drains the first value
      RL_ASSERT(r.has_value() && *r == 1);
      auto r2 = chan.recv(cd::no_deadline{});
      if (r2.has_value()) {
        RL_ASSERT(*r2 == 2);
        RL_ASSERT(chan.recv(cd::no_deadline{}).status() == status::closed);
      } else {
        RL_ASSERT(r2.status() == status::closed);
      }
    }
  }
};

struct ticket_kill_vs_publish : rl::test_suite<ticket_kill_vs_publish, 3> {
  cd::ticket_channel<int> chan{1};
  d::atomic<int> sent{0};
  d::atomic<int> got{0};

  void thread(unsigned index) {
    if (index == 0) {
      for (int i = 1; i <= 2; ++i) {
        int v = i;
        status const s = chan.send(v, cd::no_deadline{});
        if (s == status::ok) {
          sent.fetch_add(i, std::memory_order_relaxed);
        } else {
          RL_ASSERT(s == status::closed && v == i);
        }
      }
    } else if (index == 1) {
      chan.close();
    } else {
      for (;;) {
        auto r = chan.recv(cd::no_deadline{});
        if (!r.has_value()) {
          RL_ASSERT(r.status() == status::closed);
          break;
        }
        got.fetch_add(*r, std::memory_order_relaxed);
      }
    }
  }
  void after() { RL_ASSERT(sent.load(std::memory_order_relaxed) == got.load(std::memory_order_relaxed)); }
};

struct ticket_timed_recv : rl::test_suite<ticket_timed_recv, 2> {
  cd::ticket_channel<int> chan{1};
  void before() { d::model_clock::reset(); }

  void thread(unsigned index) {
    if (index == 0) {
      int v = 9;
      RL_ASSERT(chan.send(v, cd::no_deadline{}) == status::ok);
    } else {
      for (;;) {
        auto const deadline = d::deadline_at(d::model_clock::now() + d::model_clock::duration(1));
        auto r = chan.recv(deadline);
        if (r.has_value()) {
          RL_ASSERT(*r == 9);
          break;
        }
        RL_ASSERT(r.status() == status::timed_out);
      }
    }
  }
};

}  // namespace

int main() {
  // The spin-then-sleep loops make the exhaustive search too large for a
  // test run (millions of schedules), so each model runs a random search of
  // `iterations` schedules; raise it for a soak.
  constexpr unsigned long iterations = 300000;
  int failures = 0;
  failures += rouse_model::expect_pass<close_races_blocked_recv>("channel.close_races_blocked_recv", iterations);
  failures += rouse_model::expect_pass<close_races_blocked_send>("channel.close_races_blocked_send", iterations);
  failures += rouse_model::expect_pass<rendezvous_hand_off>("channel.rendezvous_hand_off", iterations);
  failures += rouse_model::expect_pass<unbounded_close>("channel.unbounded_close", iterations);
  failures += rouse_model::expect_pass<bounded_both_sides_block>("channel.bounded_both_sides_block", iterations);
  failures += rouse_model::expect_pass<ticket_both_sides_block>("channel.ticket_both_sides_block", iterations);
  failures += rouse_model::expect_pass<ticket_close_wakes_recv>("channel.ticket_close_wakes_recv", iterations);
  failures += rouse_model::expect_pass<ticket_close_races_send>("channel.ticket_close_races_send", iterations);
  failures += rouse_model::expect_pass<ticket_kill_vs_publish>("channel.ticket_kill_vs_publish", iterations);
  failures += rouse_model::expect_pass<ticket_timed_recv>("channel.ticket_timed_recv", iterations);
  {
    rouse::detail::model_fault_scope fault(rouse::detail::model_fault::ticket_publish_blind_store);
    failures += rouse_model::expect_failure<ticket_kill_vs_publish>("channel.broken_ticket_publish_blind_store",
                                                                    rl::test_result_user_assert_failed, iterations);
  }
  {
    rouse::detail::model_fault_scope fault(rouse::detail::model_fault::channel_park_skips_recheck);
    failures += rouse_model::expect_failure<bounded_both_sides_block>("channel.broken_park_skips_recheck",
                                                                      rl::test_result_deadlock, iterations);
  }
  return failures == 0 ? 0 : 1;
}
