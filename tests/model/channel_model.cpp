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
//   ticket_give_up_vs_drain    three threads: two sends (the second may block),
//                              a close, and a receiver draining to `closed`;
//                              a send that waited and sees the close gives up
//                              and resolves its own position (dead, or last
//                              on the value before it) while the receiver
//                              waits on it: every value either arrives once
//                              or goes back to its sender
//   ticket_try_send_races_close  a try_send claims its position as close()
//                              comes and a receiver drains: the value arrives,
//                              or goes back never moved (a value type that
//                              counts its moves)
//   ticket_sends_give_up_in_lap_order  capacity 1: two sends take tickets
//                              0 and 1 at once, a close and a drain; the
//                              second send, closed while the first is still
//                              writing, waits for it to publish and then
//                              marks that value last: each value arrives
//                              once or goes back never moved
//   ticket_timed_recv          a timed receive (parked on the waker queue, as
//                              array.hpp's) against a ticketed send
//   ticket_recv_wake_passes_on four threads, capacity 2: two selects parked
//                              on an empty ring and two ticketed sends; the
//                              second send may publish first and wake a
//                              select that finds position 0 still being
//                              written and parks again, its wake spent: the
//                              receive of position 0 passes a wake on
//                              (pass_on_receivers), and both selects get a value
//   ticket_send_wake_passes_on the senders' side: two selects parked on a
//                              full ring of capacity 2 and two ticketed
//                              receives, the second of which may finish first;
//                              the send into the freed slot passes a wake on
//                              (pass_on_senders), and both selects send
//   ticket_recv_past_the_close a send races close(), and a receive may still
//                              be moving that value out while the closer
//                              drains to `closed`, moves head_ on 2^28 laps
//                              (skip_receives_for_testing) and receives again:
//                              `closed`, never the value the stalled receive
//                              is taking (close()'s mark in head_)
//   ticket_close_window        the closer sends and closes while a thread
//                              drains: that thread may learn the close from
//                              tail_ before close() marks head_, then moves
//                              head_ on 2^28 laps and receives again while
//                              another receive may still be moving the value
//                              out: `closed`, the value taken once
//   ticket_closed_claim_waits  capacity 1: two sends (the second waits for
//                              the slot), a receive, and a thread that closes
//                              and drains with try_recv; a try_recv that
//                              claims a position whose slot the previous
//                              lap's receive is still emptying waits for it:
//                              never `empty` once closed, each value once
//
// A broken variant, switched on in the real code (detail::model_fault), that
// the model must catch:
//   broken_park_skips_recheck  a blocked send or receive registers its waiter
//                              and sleeps without re-checking the channel
//                              (B2): a notify that looked for waiters just
//                              before the registration wakes nobody, and
//                              bounded_both_sides_block deadlocks
//   broken_ticket_publish_blind_store   a send publishes with a plain store,
//                              not a compare-exchange: it overwrites the W of
//                              a receive that began to sleep on the slot, and
//                              ticket_both_sides_block deadlocks
//   broken_ticket_receive_kills_slot   a receive below the close that finds
//                              its slot empty for its lap takes it from its
//                              send (the rule before sends resolved their own
//                              positions): ticket_try_send_races_close sees
//                              `closed` with the value moved in and back
//   broken_ticket_give_up_any_lap      a send that gives up at the close
//                              marks the slot last whatever lap it holds, so
//                              also while the first send is still writing:
//                              the drain takes a value not yet published, and
//                              ticket_sends_give_up_in_lap_order reports the
//                              race on the slot's cell
//   broken_ticket_skips_pass_on        a send or receive that went through
//                              passes no wake on to its own side: the select
//                              whose wake was spent sleeps beside a ready
//                              position, and ticket_recv_wake_passes_on
//                              (.recv) and ticket_send_wake_passes_on (.send)
//                              deadlock
//   broken_ticket_close_skips_head_mark   nobody marks head_ (close() marks
//                              tail_ only; the receives that learn the close
//                              do not mark it either):
//                              the receive 2^28 laps past the close matches
//                              its slot's lap and takes the value the stalled
//                              receive is moving out, and
//                              ticket_recv_past_the_close reports the race on
//                              the slot's cell
//   broken_ticket_take_skips_head_mark    a receive that learns the close
//                              from tail_ does not mark head_ (only close()
//                              does): inside close()'s window the receive
//                              2^28 laps on takes the value again, and
//                              ticket_close_window reports the race
//   broken_ticket_closed_claim_says_empty   on a closed channel claim_recv
//                              claims a position only once its slot is
//                              resolved, and says `empty` while the previous
//                              lap's receive moves out (the rule before the
//                              closed claim): ticket_closed_claim_waits sees
//                              `empty`
// (A close() that skipped waking the slot sleepers is not a variant here:
// the model's futex may wake spuriously, and a sleeper re-checks the mark.)
#include <cstdint>

#include "model.hpp"
#include "rouse/channel/channel.hpp"
#include "rouse/channel/detail/array.hpp"
#include "rouse/channel/detail/list.hpp"
#include "rouse/channel/detail/ticket.hpp"
#include "rouse/channel/detail/zero.hpp"
#include "rouse/channel/select.hpp"
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

struct ticket_give_up_vs_drain : rl::test_suite<ticket_give_up_vs_drain, 3> {
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

// A value that counts the moves that made it.
struct move_counted {
  int v = 0;
  int moves = 0;
  explicit move_counted(int x) noexcept : v(x) {}
  move_counted(move_counted&& o) noexcept : v(o.v), moves(o.moves + 1) {}
  move_counted& operator=(move_counted&&) = delete;
};

// A ticket ring of capacity 1 racing its close: what the sends put in, what
// a drain took out, and the rule for a send that came back (untouched).
struct ticket_close_counts {
  cd::ticket_channel<move_counted> chan{1};
  d::atomic<int> sent{0};
  d::atomic<int> got{0};

  void count_send(status s, const move_counted& v, int x) {
    if (s == status::ok) {
      sent.fetch_add(x, std::memory_order_relaxed);
    } else {
      RL_ASSERT(s == status::closed);
      RL_ASSERT(v.v == x && v.moves == 0);  // untouched
    }
  }
  void drain() {
    for (;;) {
      auto r = chan.recv(cd::no_deadline{});
      if (!r.has_value()) {
        RL_ASSERT(r.status() == status::closed);
        return;
      }
      got.fetch_add(r->v, std::memory_order_relaxed);
    }
  }
  void check() { RL_ASSERT(sent.load(std::memory_order_relaxed) == got.load(std::memory_order_relaxed)); }
};

struct ticket_try_send_races_close : rl::test_suite<ticket_try_send_races_close, 3>, ticket_close_counts {
  void thread(unsigned index) {
    if (index == 0) {
      move_counted v(1);
      count_send(chan.try_send(v), v, 1);
    } else if (index == 1) {
      RL_ASSERT(chan.close());
    } else {
      drain();
    }
  }
  void after() { check(); }
};

struct ticket_sends_give_up_in_lap_order : rl::test_suite<ticket_sends_give_up_in_lap_order, 4>,
                                           ticket_close_counts {
  void thread(unsigned index) {
    if (index < 2) {
      int const x = static_cast<int>(index) + 1;
      move_counted v(x);
      count_send(chan.send(v, cd::no_deadline{}), v, x);
    } else if (index == 2) {
      RL_ASSERT(chan.close());
    } else {
      drain();
    }
  }
  void after() { check(); }
};

// Selects, not timed waits, park on the sides' queues here: a timed wait may
// time out at any point in the model and would hide a lost wake-up. A wake
// is spent only where two operations of the other side complete out of
// order, and lost only where a second waiter takes the next wake: hence four
// threads.
struct ticket_recv_wake_passes_on : rl::test_suite<ticket_recv_wake_passes_on, 4> {
  std::pair<rouse::channel::sender<int>, rouse::channel::receiver<int>> ends =
      rouse::channel::bounded<int>(2, rouse::channel::ring::ticket);
  d::atomic<int> got{0};

  void thread(unsigned index) {
    if (index < 2) {
      RL_ASSERT(ends.first.send(static_cast<int>(index) + 1).status() == status::ok);
    } else {
      rouse::channel::recv_case c(ends.second);
      RL_ASSERT(rouse::channel::select(c) == 0);
      RL_ASSERT(c.result().has_value());
      got.fetch_add(*c.result(), std::memory_order_relaxed);
    }
  }
  void after() { RL_ASSERT(got.load(std::memory_order_relaxed) == 3); }
};

struct ticket_send_wake_passes_on : rl::test_suite<ticket_send_wake_passes_on, 4> {
  std::pair<rouse::channel::sender<int>, rouse::channel::receiver<int>> ends =
      rouse::channel::bounded<int>(2, rouse::channel::ring::ticket);
  d::atomic<int> got{0};

  void before() {
    RL_ASSERT(ends.first.try_send(1).status() == status::ok);
    RL_ASSERT(ends.first.try_send(2).status() == status::ok);
  }

  void thread(unsigned index) {
    if (index < 2) {
      auto r = ends.second.recv();
      RL_ASSERT(r.has_value());
      got.fetch_add(*r, std::memory_order_relaxed);
    } else {
      int v = static_cast<int>(index) + 1;
      rouse::channel::send_case c(ends.first, v);
      RL_ASSERT(rouse::channel::select(c) == 0);
      RL_ASSERT(c.status() == status::ok);
    }
  }
  void after() { RL_ASSERT(got.load(std::memory_order_relaxed) == 3); }
};

// The receives past the close come after close() returned (the closer makes
// them), so head_ carries the mark when they take their tickets; before
// close() has marked head_, a receive that learns the close from tail_ still
// reads its slot, which this suite does not exercise.
struct ticket_recv_past_the_close : rl::test_suite<ticket_recv_past_the_close, 3> {
  cd::ticket_channel<int> chan{1};
  d::atomic<int> sent{0};
  d::atomic<int> got{0};

  bool received(const rouse::channel::recv_result<int>& r) {
    if (!r.has_value()) {
      RL_ASSERT(r.status() == status::closed);
      return false;
    }
    RL_ASSERT(*r == 1);
    got.fetch_add(1, std::memory_order_relaxed);
    return true;
  }

  void thread(unsigned index) {
    if (index == 0) {
      int v = 1;
      status const s = chan.send(v, cd::no_deadline{});
      if (s == status::ok) {
        sent.fetch_add(1, std::memory_order_relaxed);
      } else {
        RL_ASSERT(s == status::closed && v == 1);
      }
    } else if (index == 1) {
      (void)received(chan.recv(cd::no_deadline{}));  // may stall inside its take
    } else {
      RL_ASSERT(chan.close());
      while (received(chan.recv(cd::no_deadline{}))) {
      }
      // Where thread 1 took ticket 0 and this thread ticket 1, head_ is at
      // 2: 2^28 - 2 receives more bring it to 2^28, the lap of ticket 0
      // again at capacity 1.
      chan.skip_receives_for_testing((std::uint64_t{1} << 28) - 2);
      RL_ASSERT(chan.recv(cd::no_deadline{}).status() == status::closed);
    }
  }
  void after() { RL_ASSERT(sent.load(std::memory_order_relaxed) == got.load(std::memory_order_relaxed)); }
};

// close()'s window: the closer sends and closes while thread 2 drains, so
// thread 2 may learn the close from tail_'s mark before close() has marked
// head_; its receives past the close then stand for 2^28 laps of them
// (skip_receives_for_testing) and receive once more, while thread 1 may
// still be moving the value out: `closed`, never that value a second time.
// (The receive that first learns the close marks head_ itself.)
struct ticket_close_window : rl::test_suite<ticket_close_window, 3> {
  cd::ticket_channel<int> chan{1};
  d::atomic<int> got{0};

  bool received(const rouse::channel::recv_result<int>& r) {
    if (!r.has_value()) {
      RL_ASSERT(r.status() == status::closed);
      return false;
    }
    got.fetch_add(1, std::memory_order_relaxed);
    return true;
  }

  void thread(unsigned index) {
    if (index == 0) {
      int v = 1;
      RL_ASSERT(chan.send(v, cd::no_deadline{}) == status::ok);
      RL_ASSERT(chan.close());
    } else if (index == 1) {
      (void)received(chan.recv(cd::no_deadline{}));  // may stall inside its take
    } else {
      while (received(chan.recv(cd::no_deadline{}))) {
      }
      chan.skip_receives_for_testing((std::uint64_t{1} << 28) - 2);
      RL_ASSERT(chan.recv(cd::no_deadline{}).status() == status::closed);
    }
  }
  void after() { RL_ASSERT(got.load(std::memory_order_relaxed) == 1); }
};

// A value whose move takes a while (a large value being copied): scheduling
// points inside the move let the model preempt a receive while it moves its
// value out of the slot, the window ticket_closed_claim_waits is about.
struct slow_move {
  int v = 0;
  explicit slow_move(int x) noexcept : v(x) {}
  slow_move(slow_move&& o) noexcept : v(o.v) {
    for (int i = 0; i < 4; ++i) d::yield();
  }
  slow_move& operator=(slow_move&&) = delete;
};

struct ticket_closed_claim_waits : rl::test_suite<ticket_closed_claim_waits, 3> {
  cd::ticket_channel<slow_move> chan{1};
  d::atomic<int> sent{0};
  d::atomic<int> got{0};
  d::atomic<int> sending{0};

  void thread(unsigned index) {
    if (index == 0) {
      for (int i = 1; i <= 2; ++i) {
        sending.store(i, std::memory_order_relaxed);
        slow_move v(i);
        status const s = chan.send(v, cd::no_deadline{});  // the second waits for the slot
        if (s == status::ok) {
          sent.fetch_add(i, std::memory_order_relaxed);
        } else {
          RL_ASSERT(s == status::closed && v.v == i);
        }
      }
    } else if (index == 1) {
      auto r = chan.recv(cd::no_deadline{});
      if (r.has_value()) {
        got.fetch_add(r->v, std::memory_order_relaxed);
      } else {
        RL_ASSERT(r.status() == status::closed);
      }
    } else {
      // Close once the second send has begun, so that the close often finds
      // it holding ticket 1 (closed_at_ 2) behind the value being received.
      while (sending.load(std::memory_order_relaxed) < 2) d::spin_pause();
      RL_ASSERT(chan.close());
      for (;;) {
        auto r = chan.try_recv();
        RL_ASSERT(r.status() != status::empty);  // `empty` would say "open"
        if (!r.has_value()) break;
        got.fetch_add(r->v, std::memory_order_relaxed);
      }
    }
  }
  void after() { RL_ASSERT(sent.load(std::memory_order_relaxed) == got.load(std::memory_order_relaxed)); }
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
  failures += rouse_model::expect_pass<ticket_give_up_vs_drain>("channel.ticket_give_up_vs_drain", iterations);
  failures +=
      rouse_model::expect_pass<ticket_try_send_races_close>("channel.ticket_try_send_races_close", iterations);
  failures += rouse_model::expect_pass<ticket_sends_give_up_in_lap_order>("channel.ticket_sends_give_up_in_lap_order",
                                                                         iterations);
  failures += rouse_model::expect_pass<ticket_timed_recv>("channel.ticket_timed_recv", iterations);
  failures += rouse_model::expect_pass<ticket_recv_wake_passes_on>("channel.ticket_recv_wake_passes_on", iterations);
  failures += rouse_model::expect_pass<ticket_send_wake_passes_on>("channel.ticket_send_wake_passes_on", iterations);
  failures += rouse_model::expect_pass<ticket_recv_past_the_close>("channel.ticket_recv_past_the_close", iterations);
  failures += rouse_model::expect_pass<ticket_closed_claim_waits>("channel.ticket_closed_claim_waits", iterations);
  failures += rouse_model::expect_pass<ticket_close_window>("channel.ticket_close_window", iterations);
  {
    rouse::detail::model_fault_scope fault(rouse::detail::model_fault::ticket_publish_blind_store);
    failures += rouse_model::expect_failure<ticket_both_sides_block>("channel.broken_ticket_publish_blind_store",
                                                                     rl::test_result_deadlock, iterations);
  }
  {
    rouse::detail::model_fault_scope fault(rouse::detail::model_fault::ticket_receive_kills_slot);
    failures += rouse_model::expect_failure<ticket_try_send_races_close>("channel.broken_ticket_receive_kills_slot",
                                                                         rl::test_result_user_assert_failed,
                                                                         iterations);
  }
  {
    rouse::detail::model_fault_scope fault(rouse::detail::model_fault::ticket_give_up_any_lap);
    failures += rouse_model::expect_failure<ticket_sends_give_up_in_lap_order>(
        "channel.broken_ticket_give_up_any_lap", rl::test_result_data_race, iterations);
  }
  {
    rouse::detail::model_fault_scope fault(rouse::detail::model_fault::ticket_skips_pass_on);
    failures += rouse_model::expect_failure<ticket_recv_wake_passes_on>("channel.broken_ticket_skips_pass_on.recv",
                                                                        rl::test_result_deadlock, iterations);
    failures += rouse_model::expect_failure<ticket_send_wake_passes_on>("channel.broken_ticket_skips_pass_on.send",
                                                                        rl::test_result_deadlock, iterations);
  }
  {
    rouse::detail::model_fault_scope fault(rouse::detail::model_fault::ticket_close_skips_head_mark);
    failures += rouse_model::expect_failure<ticket_recv_past_the_close>("channel.broken_ticket_close_skips_head_mark",
                                                                        rl::test_result_data_race, iterations);
  }
  {
    rouse::detail::model_fault_scope fault(rouse::detail::model_fault::ticket_take_skips_head_mark);
    failures += rouse_model::expect_failure<ticket_close_window>("channel.broken_ticket_take_skips_head_mark",
                                                                 rl::test_result_data_race, iterations);
  }
  {
    rouse::detail::model_fault_scope fault(rouse::detail::model_fault::ticket_closed_claim_says_empty);
    failures += rouse_model::expect_failure<ticket_closed_claim_waits>("channel.broken_ticket_closed_claim_says_empty",
                                                                       rl::test_result_user_assert_failed, iterations);
  }
  {
    rouse::detail::model_fault_scope fault(rouse::detail::model_fault::channel_park_skips_recheck);
    failures += rouse_model::expect_failure<bounded_both_sides_block>("channel.broken_park_skips_recheck",
                                                                      rl::test_result_deadlock, iterations);
  }
  return failures == 0 ? 0 : 1;
}
