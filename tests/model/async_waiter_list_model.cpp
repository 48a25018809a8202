// Relacy models of rouse/async/waiter_list.hpp through rouse::async::notify:
// the register / re-check / withdraw handshake, the permit moved between the
// state word and a queued waiter, notify_all's generation match, a stop
// (try_abort) against a notify, and cancel with pass-on. Waiters are
// list_wait objects woken through a waker whose wake sets a flag the owning
// thread sleeps on (no coroutines needed); each lives in raw storage its
// owner destroys right after its wait, so a late touch is reported.
//
//   notify_one_vs_cancel_of_first   two queued waiters; notify_one against a
//                                   cancel of the first: the second is woken
//                                   exactly when needed, no permit is left
//   notify_one_vs_register          a waiter registers while notify_one runs
//   two_notify_one_one_waiter       both notifies count: one wake, one permit
//   notify_all_then_await_again     one notify_all completes one await, never
//                                   the next one (tokio #5396)
//   stop_vs_notify_one              try_abort against notify_one: one winner,
//                                   the permit stored iff the stop won
//   thread_wait_vs_notify_one       the blocking form against notify_one
//   two_register_one_notify         two waiters register at once (the slot
//                                   and the locked push) against a
//                                   notify_one: one served, or it is stored
//   stop_of_slot_vs_register_and_notify  the slot's waiter stopped (it
//                                   leaves the slot) while a second waiter
//                                   registers and a notify_one runs
//   slot_move_vs_stops              two queued waiters stopped while a
//                                   notify_one claims the first and its
//                                   unlock moves the second into the slot
//   event_set_then_reset_and_wait   manual_reset_event: a wait that begins
//                                   after a reset() is not released by the
//                                   set() before it, however late that
//                                   set's claim runs (and though its wait
//                                   object was made before that set)
//
// A lost wake-up shows as a deadlock (a thread asleep on its flag forever),
// a double claim or a lost / doubled permit as an assertion failure.
//
// Broken variant (detail::model_fault) the model must catch:
//   async_cancel_drops_notification  a cancelled waiter that had been chosen
//                                    does not pass the permit on: in
//                                    notify_one_vs_cancel_of_first the second
//                                    waiter is never woken (deadlock)
//   async_list_slot_push_acq_rel     a push into the empty list's slot is an
//                                    acq_rel compare-exchange (not B1): in
//                                    notify_one_vs_register the notify finds
//                                    nobody and the re-check no permit
//                                    (deadlock)
//   async_list_slot_push_relaxed     a push into the empty list's slot is a
//                                    relaxed compare-exchange: in
//                                    notify_one_vs_register the notify that
//                                    locks the word reads the node's fields
//                                    unpublished (data race), or, not being
//                                    B1, misses the waiter (deadlock):
//                                    whichever the search meets first
//   async_event_set_claims_every_waiter  set() claims every waiter, whatever
//                                    its generation: in
//                                    event_set_then_reset_and_wait the wait
//                                    after the reset is released (assertion)
#include <cstdint>

#include "async_model.hpp"
#include "rouse/async/event.hpp"
#include "rouse/async/notify.hpp"

namespace {

namespace rd = rouse::detail;
namespace ra = rouse::async;
using rouse_model::flag_waker;
using rouse_model::slot;
using wait_t = ra::list_wait<ra::notify>;
using start = wait_t::start_result;

// Takes a stored permit, if any (a blocking wait that does not wait; the
// generation is 0: these models make notify_all calls only where noted).
bool take_permit(ra::notify& n, std::uintptr_t generation = 0) {
  return ra::wait_blocking(n, generation, rd::now_deadline{});
}

struct notify_one_vs_cancel_of_first : rl::test_suite<notify_one_vs_cancel_of_first, 3> {
  slot<ra::notify> n;
  flag_waker f[2];
  slot<wait_t> w[2];
  rl::var<int> first_left;

  void before() {
    n.make();
    for (int i = 0; i < 2; ++i) {
      f[i].woken.store(0, std::memory_order_relaxed);
      w[i].make(*n, 0, f[i].make());
      RL_ASSERT(w[i]->start() == start::suspended);
    }
  }
  void thread(unsigned index) {
    if (index == 0) {
      n->notify_one();
    } else if (index == 1) {
      first_left($) = w[0]->cancel() ? 1 : 0;
      w[0].destroy();
    } else {
      f[1].sleep();  // the notify, directly or passed on
      w[1].destroy();
    }
  }
  void after() {
    RL_ASSERT(f[0].count() == (first_left($) ? 0u : 1u));
    RL_ASSERT(f[1].count() == 1);
    RL_ASSERT(!take_permit(*n));  // consumed once, not stored as well
    n.destroy();
  }
};

struct notify_one_vs_register : rl::test_suite<notify_one_vs_register, 2> {
  slot<ra::notify> n;
  flag_waker f;
  slot<wait_t> w;
  rl::var<int> how;

  void before() {
    n.make();
    f.woken.store(0, std::memory_order_relaxed);
  }
  void thread(unsigned index) {
    if (index == 0) {
      wait_t& mine = w.make(*n, 0, f.make());
      start const r = mine.try_acquire() != ra::check_result::not_ready ? start::withdrew : mine.start();
      if (r != start::withdrew) f.sleep();  // suspended or claimed: the wake comes
      how($) = static_cast<int>(r);
      w.destroy();
    } else {
      n->notify_one();
    }
  }
  void after() {
    RL_ASSERT(!take_permit(*n));  // the one permit went to the waiter
    RL_ASSERT(f.count() == (how($) == static_cast<int>(start::withdrew) ? 0u : 1u));
    n.destroy();
  }
};

struct two_notify_one_one_waiter : rl::test_suite<two_notify_one_one_waiter, 3> {
  slot<ra::notify> n;
  flag_waker f;
  slot<wait_t> w;

  void before() {
    n.make();
    f.woken.store(0, std::memory_order_relaxed);
    w.make(*n, 0, f.make());
    RL_ASSERT(w->start() == start::suspended);
  }
  void thread(unsigned index) {
    if (index == 0) {
      f.sleep();
      w.destroy();
    } else {
      n->notify_one();
    }
  }
  void after() {
    RL_ASSERT(f.count() == 1);
    RL_ASSERT(take_permit(*n));  // the other notify is stored, not lost
    RL_ASSERT(!take_permit(*n));
    n.destroy();
  }
};

struct notify_all_then_await_again : rl::test_suite<notify_all_then_await_again, 2> {
  slot<ra::notify> n;
  flag_waker f[2];
  slot<wait_t> w[2];
  rl::var<int> second;

  void before() {
    n.make();
    f[0].woken.store(0, std::memory_order_relaxed);
    f[1].woken.store(0, std::memory_order_relaxed);
  }
  void thread(unsigned index) {
    if (index == 0) {
      // The first await, created before notify_all (generation 0).
      wait_t& a = w[0].make(*n, 0, f[0].make());
      start const r = a.try_acquire() != ra::check_result::not_ready ? start::withdrew : a.start();
      if (r != start::withdrew) f[0].sleep();
      w[0].destroy();
      // The next await, created after the first completed: generation 1
      // (one notify_all, counted in units of 2). It must wait.
      wait_t& b = w[1].make(*n, 2, f[1].make());
      RL_ASSERT(b.try_acquire() == ra::check_result::not_ready);
      second($) = static_cast<int>(b.start());
    } else {
      n->notify_all();
    }
  }
  void after() {
    RL_ASSERT(second($) == static_cast<int>(start::suspended));
    RL_ASSERT(f[1].count() == 0);
    RL_ASSERT(w[1]->cancel());  // it left, never chosen
    w[1].destroy();
    RL_ASSERT(!take_permit(*n, 2));  // notify_all stores nothing
    n.destroy();
  }
};

struct stop_vs_notify_one : rl::test_suite<stop_vs_notify_one, 2> {
  slot<ra::notify> n;
  flag_waker f;
  slot<wait_t> w;
  rl::var<int> stopped;

  void before() {
    n.make();
    f.woken.store(0, std::memory_order_relaxed);
    w.make(*n, 0, f.make());
    RL_ASSERT(w->start() == start::suspended);
  }
  void thread(unsigned index) {
    if (index == 0)
      stopped($) = w->try_abort() ? 1 : 0;
    else
      n->notify_one();
  }
  void after() {
    RL_ASSERT(f.count() == 1);  // released once, by the one winner
    if (stopped($)) RL_ASSERT(w->claim() == rd::waiter::aborted);
    RL_ASSERT(ra::waiter_list::transferable(w->claim()) == !stopped($));
    RL_ASSERT(take_permit(*n) == (stopped($) == 1));  // stored iff the stop won
    w.destroy();
    n.destroy();
  }
};

struct thread_wait_vs_notify_one : rl::test_suite<thread_wait_vs_notify_one, 2> {
  slot<ra::notify> n;

  void before() { n.make(); }
  void thread(unsigned index) {
    if (index == 0)
      ra::wait_blocking(*n, 0, rd::no_deadline{});
    else
      n->notify_one();
  }
  void after() {
    RL_ASSERT(!take_permit(*n));
    n.destroy();
  }
};

// The list's word: two waiters register at once (one takes the slot, the
// other locks and moves it into the list, or finds it gone) while a
// notify_one runs: the one permit reaches exactly one waiter (woken, or
// withdrawn at its re-check) or stays stored; the other waiter leaves
// (cancel) never chosen.
struct two_register_one_notify : rl::test_suite<two_register_one_notify, 3> {
  slot<ra::notify> n;
  flag_waker f[2];
  slot<wait_t> w[2];
  rl::var<int> how[2];

  void before() {
    n.make();
    f[0].woken.store(0, std::memory_order_relaxed);
    f[1].woken.store(0, std::memory_order_relaxed);
  }
  void thread(unsigned index) {
    if (index < 2) {
      wait_t& mine = w[index].make(*n, 0, f[index].make());
      start const r = mine.try_acquire() != ra::check_result::not_ready ? start::withdrew : mine.start();
      how[index]($) = static_cast<int>(r);
    } else {
      n->notify_one();
    }
  }
  void after() {
    int served = 0;
    for (int i = 0; i < 2; ++i) {
      bool const withdrew = how[i]($) == static_cast<int>(start::withdrew);
      RL_ASSERT(f[i].count() <= 1);
      if (withdrew || f[i].count() == 1) {
        RL_ASSERT(!(withdrew && f[i].count() == 1));
        ++served;
      } else {
        RL_ASSERT(w[i]->cancel());  // never chosen: it leaves
      }
      w[i].destroy();
    }
    // A waiter that slept was claimable when the notify locked, or its
    // re-check saw the permit: the permit is never left stored.
    RL_ASSERT(served == 1);
    RL_ASSERT(!take_permit(*n));
    n.destroy();
  }
};

// The list's word: two waiters queued (the word says Q); a notify_one
// claims the first, and its unlock moves the second into the slot, while
// both are stopped (each stop's remove() races that move: the slot's
// compare-exchange or the locked path). One winner per waiter; the permit
// is served once or stored.
struct slot_move_vs_stops : rl::test_suite<slot_move_vs_stops, 3> {
  slot<ra::notify> n;
  flag_waker f[2];
  slot<wait_t> w[2];
  rl::var<int> stopped[2];

  void before() {
    n.make();
    for (int i = 0; i < 2; ++i) {
      f[i].woken.store(0, std::memory_order_relaxed);
      w[i].make(*n, 0, f[i].make());
      RL_ASSERT(w[i]->start() == start::suspended);
    }
  }
  void thread(unsigned index) {
    if (index < 2) {
      stopped[index]($) = w[index]->try_abort() ? 1 : 0;
      if (!stopped[index]($)) f[index].sleep();
      w[index].destroy();
    } else {
      n->notify_one();
    }
  }
  void after() {
    RL_ASSERT(f[0].count() == 1);  // its stop's wake, or the notify's
    RL_ASSERT(f[1].count() == 1);
    int const served = (1 - stopped[0]($)) + (1 - stopped[1]($));
    RL_ASSERT(served + (take_permit(*n) ? 1 : 0) == 1);
    n.destroy();
  }
};

// The list's word: the lone waiter in the slot is stopped (its claim, then
// remove(): the slot's compare-exchange) while a second waiter registers
// (locking the word, moving the slot into the list) and a notify_one runs:
// one winner per waiter, the notify reaches the second waiter or stays
// stored, and the stopped waiter's node is never touched after it left.
struct stop_of_slot_vs_register_and_notify : rl::test_suite<stop_of_slot_vs_register_and_notify, 3> {
  slot<ra::notify> n;
  flag_waker f[2];
  slot<wait_t> w[2];
  rl::var<int> stopped;
  rl::var<int> how;

  void before() {
    n.make();
    f[0].woken.store(0, std::memory_order_relaxed);
    f[1].woken.store(0, std::memory_order_relaxed);
    w[0].make(*n, 0, f[0].make());
    RL_ASSERT(w[0]->start() == start::suspended);  // in the slot
  }
  void thread(unsigned index) {
    if (index == 0) {
      stopped($) = w[0]->try_abort() ? 1 : 0;
      if (!stopped($)) f[0].sleep();
      w[0].destroy();
    } else if (index == 1) {
      wait_t& mine = w[1].make(*n, 0, f[1].make());
      start const r = mine.try_acquire() != ra::check_result::not_ready ? start::withdrew : mine.start();
      how($) = static_cast<int>(r);
    } else {
      n->notify_one();
    }
  }
  void after() {
    // The stopped waiter's own wake (try_abort wakes it), or the notify's.
    RL_ASSERT(f[0].count() == 1);
    bool const second_woken = f[1].count() == 1;
    bool const second_withdrew = how($) == static_cast<int>(start::withdrew);
    if (stopped($)) {
      // The notify went to the second waiter: woken, or it withdrew with
      // the permit (its push came after the notify's unlock, or its
      // re-check saw the permit). Never stored while the second sleeps.
      RL_ASSERT(int(second_woken) + int(second_withdrew) == 1);
      RL_ASSERT(!take_permit(*n));
    } else {
      RL_ASSERT(!second_woken && !second_withdrew);
      RL_ASSERT(!take_permit(*n));
    }
    if (!second_woken && !second_withdrew) RL_ASSERT(w[1]->cancel());  // it left, never chosen
    w[1].destroy();
    n.destroy();
  }
};

using event_wait = ra::list_wait<ra::manual_reset_event>;
using event_start = event_wait::start_result;

struct event_set_then_reset_and_wait : rl::test_suite<event_set_then_reset_and_wait, 2> {
  slot<ra::manual_reset_event> ev;
  flag_waker f[2];
  slot<event_wait> w[2];
  rl::var<int> second;

  void before() {
    ev.make(false);
    f[0].woken.store(0, std::memory_order_relaxed);
    f[1].woken.store(0, std::memory_order_relaxed);
  }
  void thread(unsigned index) {
    if (index == 0) {
      // The first wait, tagged before the set (generation 0).
      event_wait& a = w[0].make(*ev, 0, f[0].make());
      event_start const r = a.try_acquire() != ra::check_result::not_ready ? event_start::withdrew : a.start();
      if (r != event_start::withdrew) f[0].sleep();
      w[0].destroy();
      ev->reset();
      // The next wait, begun after the reset, from a wait object made with
      // the first one's tag (an awaitable made before the set, awaited
      // only now): the wait is tagged when it registers. No set() came
      // since the reset: it must wait.
      event_wait& b = w[1].make(*ev, 0, f[1].make());
      RL_ASSERT(b.try_acquire() == ra::check_result::not_ready);
      second($) = static_cast<int>(b.start());
    } else {
      ev->set();
    }
  }
  void after() {
    RL_ASSERT(second($) == static_cast<int>(event_start::suspended));
    RL_ASSERT(f[1].count() == 0);  // not released by the set before the reset
    RL_ASSERT(w[1]->cancel());     // it left, never chosen
    w[1].destroy();
    ev.destroy();
  }
};

}  // namespace

int main() {
  constexpr unsigned long iterations = 300000;  // random search (a fair full search is too large)
  int failures = 0;
  failures += rouse_model::expect_pass<notify_one_vs_cancel_of_first>("async_waiter_list.notify_one_vs_cancel_of_first", iterations);
  failures += rouse_model::expect_pass<notify_one_vs_register>("async_waiter_list.notify_one_vs_register", iterations);
  failures += rouse_model::expect_pass<two_notify_one_one_waiter>("async_waiter_list.two_notify_one_one_waiter", iterations);
  failures += rouse_model::expect_pass<notify_all_then_await_again>("async_waiter_list.notify_all_then_await_again", iterations);
  failures += rouse_model::expect_pass<stop_vs_notify_one>("async_waiter_list.stop_vs_notify_one", iterations);
  failures += rouse_model::expect_pass<thread_wait_vs_notify_one>("async_waiter_list.thread_wait_vs_notify_one", iterations);
  failures += rouse_model::expect_pass<event_set_then_reset_and_wait>("async_waiter_list.event_set_then_reset_and_wait",
                                                                    iterations);
  failures += rouse_model::expect_pass<two_register_one_notify>("async_waiter_list.two_register_one_notify", iterations);
  failures += rouse_model::expect_pass<stop_of_slot_vs_register_and_notify>(
      "async_waiter_list.stop_of_slot_vs_register_and_notify", iterations);
  failures += rouse_model::expect_pass<slot_move_vs_stops>("async_waiter_list.slot_move_vs_stops", iterations);
  {
    rd::model_fault_scope fault(rd::model_fault::async_list_slot_push_acq_rel);
    failures += rouse_model::expect_failure<notify_one_vs_register>("async_waiter_list.broken_slot_push_acq_rel",
                                                                    rl::test_result_deadlock, iterations);
  }
  {
    rd::model_fault_scope fault(rd::model_fault::async_list_slot_push_relaxed);
    failures += rouse_model::expect_failure_either<notify_one_vs_register>(
        "async_waiter_list.broken_slot_push_relaxed", rl::test_result_data_race, rl::test_result_deadlock, iterations);
  }
  {
    rd::model_fault_scope fault(rd::model_fault::async_event_set_claims_every_waiter);
    failures += rouse_model::expect_failure<event_set_then_reset_and_wait>(
        "async_waiter_list.broken_event_set_claims_every_waiter", rl::test_result_user_assert_failed, iterations);
  }
  {
    rd::model_fault_scope fault(rd::model_fault::async_cancel_drops_notification);
    failures += rouse_model::expect_failure<notify_one_vs_cancel_of_first>(
        "async_waiter_list.broken_cancel_drops_notification", rl::test_result_deadlock, iterations);
  }
  return failures == 0 ? 0 : 1;
}
