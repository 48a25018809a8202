// Relacy models of the async channel's protocol (rouse/async/detail/
// channel_state.hpp), compiled without the coroutine half: sender waits are
// list_wait objects woken through a flag waker (tests/support/
// async_model.hpp), the receiver a thread in the diatomic
// waker's blocking wait. Each waiter lives in raw storage its owner destroys
// right after its wait, so a late touch is reported.
//
//   send_cancel_vs_recv        a full channel, two queued senders; a receive
//                              frees the slot (its permit goes to the oldest
//                              sender) while the first sender cancels: the
//                              second gets the slot exactly when the first
//                              left after it was chosen; no permit lost or
//                              doubled
//   queued_send_vs_recv        a sender registers while the receive frees
//                              the slot: it gets the permit, or it is stored
//   send_vs_waiting_recv       a push against the receiver's register /
//                              re-check: the value is received exactly once
//                              (the push's seq_cst idle notify: a load)
//   two_sends_vs_waiting_recv  two pushes (one a permit then a push, one
//                              try_send_now) against a receiver that waits
//                              twice: one push's notify may hold the
//                              waker's lock and clear R while the other's
//                              idle load runs; both values are received
//   batch_vs_queued_senders    the receiver gives freed slots back (a batch
//                              of 2, or one at once while senders wait)
//                              while two senders queue and re-check: each
//                              sender gets one permit, none is lost or
//                              doubled (all 32 are back once it drains)
//   close_vs_queued_send       close() wakes a queued sender with no permit
//   send_now_vs_close          a send that takes a free permit and its
//                              position in one RMW (try_send_now) races
//                              close() and a receiver that drains: it
//                              reports sent exactly when the receiver gets
//                              the value before `closed`
//   rendezvous_debt            a rendezvous receive gives up while a holder
//                              may have taken its demand (withdraw: 1 -> 0,
//                              or 0 -> -1, a debt) and gives it back unused;
//                              the next receive waits, a sender queues: the
//                              demand reaches the sender exactly once, the
//                              value the receive (no lost wake-up)
//   rendezvous_debt_leftover   the same give-back finds a queued sender that
//                              is leaving (it cannot be claimed), so it
//                              stores the demand again, onto the debt the
//                              receive may have left meanwhile: the
//                              receive waiting again is woken and asks
//
// A lost wake-up shows as a deadlock, a lost or doubled permit or value as an
// assertion failure.
//
// Broken variant (detail::model_fault) the model must catch:
//   async_channel_cancel_keeps_permit   a sender that was handed a permit and
//                                       cancels keeps it: in
//                                       send_cancel_vs_recv the second sender
//                                       is never woken (deadlock)
//   async_channel_batch_drops_leftover  a batch given back to fewer queued
//                                       senders than its size drops the rest:
//                                       batch_vs_queued_senders counts a
//                                       permit short
//   async_channel_debt_paid_without_wake  the give-back that pays a debt
//                                       does not wake the receiver: in
//                                       rendezvous_debt the receive waiting
//                                       meanwhile never asks (deadlock)
//   async_channel_leftover_debt_without_wake  the store of that demand
//                                       pays the debt without waking the
//                                       receiver: in rendezvous_debt_leftover
//                                       the receive sleeps with no demand
//                                       out, the new sender too (deadlock)
//   async_channel_send_now_ignores_close  try_send_now takes a permit and
//                                       a position after the close: in
//                                       send_now_vs_close it reports a
//                                       value sent that nobody receives
//   diatomic_seq_cst_notify_relaxed     the push's idle notify loads the
//                                       waker's state relaxed: in
//                                       send_vs_waiting_recv the receiver
//                                       sleeps through the push (deadlock),
//                                       also in two_sends_vs_waiting_recv
#include <cstdint>
#include <optional>

#include "async_model.hpp"
#include "rouse/async/detail/channel_state.hpp"

namespace {

namespace rd = rouse::detail;
namespace ra = rouse::async;
using rouse_model::flag_waker;
using rouse_model::slot;
namespace cd = rouse::async::channel::detail;
using state = cd::channel_state<int>;
using wait_t = ra::list_wait<state>;
using start = wait_t::start_result;
using rouse::channel::status;

// One sender's wait: its record, its list_wait.
struct sender_waiter {
  cd::wait_record rec;
  flag_waker f;
  slot<wait_t> w;
  void make(state& st) {
    rec.took = false;
    rec.timed_out.store(0, std::memory_order_relaxed);
    f.woken.store(0, std::memory_order_relaxed);
    w.make(st, cd::tag_of(rec), f.make());
  }
  bool holds() { return state::holds_permit(rec, w->claim()); }
};

bool push(state& st, int v) {
  int x = v;
  return st.push(x) == status::ok;
}

// The receiver's blocking receive of one value (it asks: a rendezvous
// demand; it waits on the diatomic waker).
int receive_one(state& st) {
  int v = 0;
  st.receiver_waker().wait_until_blocking([&]() noexcept {
    auto r = st.try_recv(true);
    if (!r.has_value()) return false;
    v = *r;
    return true;
  });
  return v;
}

// A sender that queues for a permit (a rendezvous demand), then sends v.
void send_queued(state& st, sender_waiter& s, int v) {
  s.make(st);
  rouse_model::await_with_flag(*s.w, s.f);
  RL_ASSERT(s.holds());
  RL_ASSERT(push(st, v));
  s.w.destroy();
}

// A rendezvous channel whose one value `v` was received (`got`): no
// demand, no debt, nothing left; destroys it.
void settled_after_one_value(slot<state>& st, int got, int v) {
  RL_ASSERT(got == v);
  RL_ASSERT(st->permits_for_testing() == 0);
  RL_ASSERT(st->try_recv(false).status() == status::empty);
  st.destroy();
}

struct send_cancel_vs_recv : rl::test_suite<send_cancel_vs_recv, 3> {
  slot<state> st;
  sender_waiter s[2];
  rl::var<int> first_left;
  rl::var<int> received;

  void before() {
    st.make(cd::kind::bounded, 1);
    RL_ASSERT(st->try_take_permit());
    RL_ASSERT(push(*st, 1));
    for (auto& x : s) {
      x.make(*st);
      RL_ASSERT(x.w->start() == start::suspended);
    }
  }
  void thread(unsigned index) {
    if (index == 0) {
      auto r = st->try_recv(false);  // frees the slot: a permit for the oldest
      RL_ASSERT(r.has_value() && *r == 1);
      received($) = 1;
    } else if (index == 1) {
      first_left($) = s[0].w->cancel() ? 1 : 0;  // a chosen one passes its permit on
      s[0].w.destroy();
    } else {
      s[1].f.sleep();
      RL_ASSERT(s[1].holds());
      RL_ASSERT(push(*st, 2));
      s[1].w.destroy();
    }
  }
  void after() {
    RL_ASSERT(s[0].f.count() == (first_left($) ? 0u : 1u));
    RL_ASSERT(s[1].f.count() == 1);
    RL_ASSERT(st->permits_for_testing() == 0);  // the one slot holds value 2
    auto r = st->try_recv(false);
    RL_ASSERT(r.has_value() && *r == 2);
    RL_ASSERT(st->permits_for_testing() == 1);
    st.destroy();
  }
};

struct queued_send_vs_recv : rl::test_suite<queued_send_vs_recv, 2> {
  slot<state> st;
  sender_waiter s;

  void before() {
    st.make(cd::kind::bounded, 1);
    RL_ASSERT(st->try_take_permit());
    RL_ASSERT(push(*st, 1));
  }
  void thread(unsigned index) {
    if (index == 0) {
      s.make(*st);
      rouse_model::await_with_flag(*s.w, s.f);
      RL_ASSERT(s.holds());
      RL_ASSERT(push(*st, 2));
      s.w.destroy();
    } else {
      auto r = st->try_recv(false);
      RL_ASSERT(r.has_value() && *r == 1);
    }
  }
  void after() {
    RL_ASSERT(st->permits_for_testing() == 0);
    auto r = st->try_recv(false);
    RL_ASSERT(r.has_value() && *r == 2);
    st.destroy();
  }
};

struct send_vs_waiting_recv : rl::test_suite<send_vs_waiting_recv, 2> {
  slot<state> st;
  rl::var<int> got;

  void before() { st.make(cd::kind::bounded, 2); }
  void thread(unsigned index) {
    if (index == 0) {
      got($) = receive_one(*st);
    } else {
      RL_ASSERT(st->try_take_permit());
      RL_ASSERT(push(*st, 7));
    }
  }
  void after() {
    RL_ASSERT(got($) == 7);
    RL_ASSERT(st->try_recv(false).status() == status::empty);
    RL_ASSERT(st->permits_for_testing() == 2);
    st.destroy();
  }
};

struct two_sends_vs_waiting_recv : rl::test_suite<two_sends_vs_waiting_recv, 3> {
  slot<state> st;
  rl::var<int> sum;

  void before() { st.make(cd::kind::bounded, 2); }
  void thread(unsigned index) {
    if (index == 0) {
      int total = 0;
      for (int k = 0; k < 2; ++k) {
        std::optional<rouse::channel::recv_result<int>> out;
        st->receiver_waker().wait_until_blocking([&]() noexcept { return st->try_recv_into(true, out); });
        RL_ASSERT(out.has_value() && out->has_value());
        total += **out;
      }
      sum($) = total;
    } else if (index == 1) {
      RL_ASSERT(st->try_take_permit());
      RL_ASSERT(push(*st, 1));
    } else {
      int x = 2;
      RL_ASSERT(st->try_send_now(x));  // the permit and the position in one RMW
    }
  }
  void after() {
    RL_ASSERT(sum($) == 1 + 2);
    st.destroy();
  }
};

struct batch_vs_queued_senders : rl::test_suite<batch_vs_queued_senders, 3> {
  static constexpr int capacity = 32;  // gives slots back 2 at a time
  slot<state> st;
  sender_waiter s[2];

  void before() {
    st.make(cd::kind::bounded, capacity);
    for (int i = 0; i < capacity; ++i) {
      RL_ASSERT(st->try_take_permit());
      RL_ASSERT(push(*st, i));
    }
  }
  void thread(unsigned index) {
    if (index == 0) {
      // Three receives free three slots and give back at least two (a
      // receive keeps at most batch - 1 = 1 while nobody waits).
      for (int i = 0; i < 3; ++i) {
        auto r = st->try_recv(false);
        RL_ASSERT(r.has_value() && *r == i);
      }
    } else {
      sender_waiter& me = s[index - 1];
      me.make(*st);
      rouse_model::await_with_flag(*me.w, me.f);
      RL_ASSERT(me.holds());
      RL_ASSERT(push(*st, 100 + static_cast<int>(index)));
      me.w.destroy();
    }
  }
  void after() {
    RL_ASSERT(!st->waiters().has_waiters());
    int left = 0;
    for (;;) {
      auto r = st->try_recv(false);
      if (!r.has_value()) break;
      ++left;
    }
    RL_ASSERT(left == capacity - 3 + 2);
    RL_ASSERT(st->permits_for_testing() == capacity);  // every slot back, once
    st.destroy();
  }
};

struct close_vs_queued_send : rl::test_suite<close_vs_queued_send, 2> {
  slot<state> st;
  sender_waiter s;

  void before() {
    st.make(cd::kind::bounded, 1);
    RL_ASSERT(st->try_take_permit());
    RL_ASSERT(push(*st, 1));
  }
  void thread(unsigned index) {
    if (index == 0) {
      s.make(*st);
      rouse_model::await_with_flag(*s.w, s.f);
      RL_ASSERT(!s.holds());
      RL_ASSERT(!push(*st, 2));
      s.w.destroy();
    } else {
      st->close();
    }
  }
  void after() {
    auto r = st->try_recv(false);
    RL_ASSERT(r.has_value() && *r == 1);
    RL_ASSERT(st->try_recv(false).status() == status::closed);
    st.destroy();
  }
};

struct send_now_vs_close : rl::test_suite<send_now_vs_close, 3> {
  slot<state> st;
  rl::var<int> received;  // the sum of the values received before `closed`
  rl::var<bool> sent;

  void before() { st.make(cd::kind::bounded, 1); }
  void thread(unsigned index) {
    if (index == 0) {
      int total = 0;
      for (;;) {
        std::optional<rouse::channel::recv_result<int>> out;
        st->receiver_waker().wait_until_blocking([&]() noexcept { return st->try_recv_into(true, out); });
        RL_ASSERT(out.has_value());
        if (!out->has_value()) break;  // closed and drained
        total += **out;
      }
      received($) = total;
    } else if (index == 1) {
      int x = 5;
      bool const ok = st->try_send_now(x);
      RL_ASSERT(ok || x == 5);  // a refused send keeps its value
      sent($) = ok;
    } else {
      st->close();
    }
  }
  void after() {
    RL_ASSERT(received($) == (sent($) ? 5 : 0));
    st.destroy();
  }
};

// A rendezvous receive gave a demand; it gives up (withdraw) while a
// holder may take that demand and gives it back unused; then the receiver
// receives again (waiting: a demand it may give only once the debt is
// paid), and a sender queues for a permit and sends. The value arrives;
// nothing is left in the word.
struct rendezvous_debt : rl::test_suite<rendezvous_debt, 3> {
  slot<state> st;
  sender_waiter s;
  rl::var<int> got;

  void before() {
    st.make(cd::kind::rendezvous, 0);
    RL_ASSERT(st->try_recv(true).status() == status::empty);  // its demand: the word is 1
  }
  void thread(unsigned index) {
    if (index == 0) {
      st->withdraw_demand();  // the receive gave up
      got($) = receive_one(*st);
    } else if (index == 1) {
      if (st->try_take_permit()) st->give_back_permit();  // a reserve dropped unused
    } else {
      send_queued(*st, s, 5);
    }
  }
  void after() { settled_after_one_value(st, got($), 5); }
};

// The debt met by a demand taken back for a queued sender that could not
// be claimed: a receive asked (1), a reserve took the demand (0), a sender
// queued. The reserve is dropped unused (the give-back finds the queued
// sender, takes its demand back out of the word under the list's lock)
// while that sender times out (it claims itself: the give-back stores the
// demand again) and the receive gives up (0 -> -1 if it comes in between)
// and waits again; then a new sender sends.
struct rendezvous_debt_leftover : rl::test_suite<rendezvous_debt_leftover, 3> {
  slot<state> st;
  sender_waiter leaving;
  sender_waiter s;
  rl::var<int> got;

  void before() {
    st.make(cd::kind::rendezvous, 0);
    RL_ASSERT(st->try_recv(true).status() == status::empty);  // its demand: the word is 1
    RL_ASSERT(st->try_take_permit());                          // the reserve
    leaving.make(*st);
    RL_ASSERT(leaving.w->try_acquire() == ra::check_result::not_ready);
    RL_ASSERT(leaving.w->start() == start::suspended);
  }
  void thread(unsigned index) {
    if (index == 0) {
      st->withdraw_demand();  // the receive gave up
      got($) = receive_one(*st);
    } else if (index == 1) {
      st->give_back_permit();  // the reserve dropped unused
    } else {
      (void)leaving.w->cancel();  // its timeout; a permit it was handed goes on
      leaving.w.destroy();
      send_queued(*st, s, 5);
    }
  }
  void after() { settled_after_one_value(st, got($), 5); }
};

}  // namespace

int main() {
  constexpr unsigned long iterations = 200000;  // random search (a fair full search is too large)
  int failures = 0;
  failures += rouse_model::expect_pass<send_cancel_vs_recv>("async_channel.send_cancel_vs_recv", iterations);
  failures += rouse_model::expect_pass<queued_send_vs_recv>("async_channel.queued_send_vs_recv", iterations);
  failures += rouse_model::expect_pass<send_vs_waiting_recv>("async_channel.send_vs_waiting_recv", iterations);
  failures +=
      rouse_model::expect_pass<two_sends_vs_waiting_recv>("async_channel.two_sends_vs_waiting_recv", iterations);
  failures += rouse_model::expect_pass<batch_vs_queued_senders>("async_channel.batch_vs_queued_senders", iterations);
  failures += rouse_model::expect_pass<close_vs_queued_send>("async_channel.close_vs_queued_send", iterations);
  failures += rouse_model::expect_pass<send_now_vs_close>("async_channel.send_now_vs_close", iterations);
  failures += rouse_model::expect_pass<rendezvous_debt>("async_channel.rendezvous_debt", iterations);
  failures += rouse_model::expect_pass<rendezvous_debt_leftover>("async_channel.rendezvous_debt_leftover", iterations);
  {
    rd::model_fault_scope f(rd::model_fault::async_channel_debt_paid_without_wake);
    failures += rouse_model::expect_failure<rendezvous_debt>("async_channel.broken_debt_paid_without_wake",
                                                             rl::test_result_deadlock, iterations);
  }
  {
    rd::model_fault_scope f(rd::model_fault::async_channel_leftover_debt_without_wake);
    failures += rouse_model::expect_failure<rendezvous_debt_leftover>(
        "async_channel.broken_leftover_debt_without_wake", rl::test_result_deadlock, iterations);
  }
  {
    rd::model_fault_scope fault(rd::model_fault::async_channel_cancel_keeps_permit);
    failures += rouse_model::expect_failure<send_cancel_vs_recv>("async_channel.broken_cancel_keeps_permit",
                                                                 rl::test_result_deadlock, iterations);
  }
  {
    rd::model_fault_scope fault(rd::model_fault::async_channel_batch_drops_leftover);
    failures += rouse_model::expect_failure<batch_vs_queued_senders>("async_channel.broken_batch_drops_leftover",
                                                                     rl::test_result_user_assert_failed, iterations);
  }
  {
    rd::model_fault_scope fault(rd::model_fault::async_channel_send_now_ignores_close);
    failures += rouse_model::expect_failure<send_now_vs_close>("async_channel.broken_send_now_ignores_close",
                                                               rl::test_result_user_assert_failed, iterations);
  }
  {
    rd::model_fault_scope fault(rd::model_fault::diatomic_seq_cst_notify_relaxed);
    failures += rouse_model::expect_failure<send_vs_waiting_recv>("async_channel.broken_notify_load_relaxed",
                                                                  rl::test_result_deadlock, iterations);
    failures += rouse_model::expect_failure<two_sends_vs_waiting_recv>(
        "async_channel.broken_notify_load_relaxed_two_sends", rl::test_result_deadlock, iterations);
  }
  return failures == 0 ? 0 : 1;
}
