// Relacy models of select's wait/wake handshake (rouse/async/detail/
// select_core.hpp: the arming guard, the branches' registrations and their
// withdrawal), compiled without the coroutine half: the select is a thread
// that arms its branches, sleeps on a flag (the resume action) unless a
// branch fired while it armed, withdraws every branch and checks them. The
// round's core and the branches live in raw storage the select thread
// destroys right after, so a wake that touches them late is reported.
//
//   select_vs_two_wakes   a recv branch (channel A) and a reserve branch
//                         (channel B, full) armed; a push into A and a
//                         receive from B (its slot handed to the oldest
//                         waiting sender: the select's node, or a plain
//                         sender queued on B) race from two threads: the
//                         select is resumed exactly once per round in which
//                         it slept; the recv branch wins when both are
//                         ready, and the reserve branch's handed slot is
//                         passed on (the plain sender gets it, or the model
//                         deadlocks); A's value is taken exactly once
//   stop_vs_wake          a recv branch armed; a push and the stop callback
//                         (stopped, then fire) race: one resume; a stopped
//                         select takes nothing, the value stays
//
// A lost wake-up shows as a deadlock, a double resume or a lost value or
// slot as an assertion failure, a late touch of the withdrawn frame as an
// access to freed memory.
//
// Broken variant (detail::model_fault) the model must catch:
//   async_select_arming_plain_store   the arming guard stores `armed` instead
//                                     of compare-exchanging arming -> armed:
//                                     a fire that came while the select armed
//                                     is overwritten and the select sleeps
//                                     with no wake coming (deadlock)
#include <cstdint>

#include "async_model.hpp"
#include "rouse/async/detail/select_core.hpp"

namespace {

namespace rd = rouse::detail;
namespace ra = rouse::async;
using rouse_model::flag_waker;
using rouse_model::slot;
namespace cd = rouse::async::channel::detail;
using state = cd::channel_state<int>;
using wait_t = ra::list_wait<state>;
using rouse::channel::status;

// A round's core whose resume wakes a flag the select thread sleeps on.
struct model_core : cd::select_core {
  flag_waker f;
  model_core() noexcept { resume = &wake; }
  static void wake(cd::select_core* c) noexcept { flag_waker::wake(&static_cast<model_core*>(c)->f); }
};

// One round: arm every branch, sleep unless one fired while arming, withdraw
// every branch. Returns whether it slept; the core is gone afterwards.
template <class... B>
bool round(B&... b) {
  slot<model_core> core;
  core.make();
  bool ready = false;
  ((ready = ready || !b.arm(&*core)), ...);
  if (ready) core->fire();  // arming -> woken
  bool const slept = core->finish_arming();
  if (slept) core->f.sleep();
  (b.disarm(), ...);
  // Resumed once when it slept, never when it ran on; every wake returned.
  RL_ASSERT(core->f.count() == (slept ? 1u : 0u));
  core.destroy();
  return slept;
}

bool push(state& st, int v) {
  int x = v;
  return st.push(x) == status::ok;
}

struct select_vs_two_wakes : rl::test_suite<select_vs_two_wakes, 3> {
  slot<state> a;  // the recv branch's channel
  slot<state> b;  // the reserve branch's channel, full
  rl::var<int> got;
  // The plain sender on B.
  cd::wait_record rec;
  flag_waker f;
  slot<wait_t> w;

  void before() {
    a.make(cd::kind::bounded, 1);
    b.make(cd::kind::bounded, 1);
    RL_ASSERT(b->try_take_permit());
    RL_ASSERT(push(*b, 1));
  }
  void thread(unsigned index) {
    if (index == 0) {
      slot<cd::recv_branch<int>> rb;
      slot<cd::slot_branch<int>> sb;
      rb.make(*a);
      sb.make(*b);
      int v = 0;
      for (;;) {
        if (auto r = rb->poll()) {  // the recv branch first: it wins when both are ready
          RL_ASSERT(r->has_value());
          v = **r;
          sb->lose();  // a slot it was handed goes to the plain sender
          break;
        }
        if (auto s = sb->poll_slot()) {
          RL_ASSERT(*s == status::ok);
          sb->lose();  // the slot it won, dropped unused: the plain sender's
          break;
        }
        (void)round(*rb, *sb);
      }
      RL_ASSERT(!sb->holds_slot());
      rb.destroy();
      sb.destroy();
      got($) = v;
    } else if (index == 1) {
      RL_ASSERT(a->try_take_permit());
      RL_ASSERT(push(*a, 7));
      // Then a plain sender on B: it needs the one slot B frees.
      w.make(*b, cd::tag_of(rec), f.make());
      rouse_model::await_with_flag(*w, f);
      RL_ASSERT(state::holds_permit(rec, w->claim()));
      RL_ASSERT(push(*b, 8));
      w.destroy();
    } else {
      auto r = b->try_recv(false);  // frees the slot: to the oldest waiting sender
      RL_ASSERT(r.has_value() && *r == 1);
    }
  }
  void after() {
    if (got($) == 0) {
      auto r = a->try_recv(false);  // the select took the slot: the value stayed
      RL_ASSERT(r.has_value() && *r == 7);
    } else {
      RL_ASSERT(got($) == 7);
    }
    RL_ASSERT(a->try_recv(false).status() == status::empty);
    auto r = b->try_recv(false);
    RL_ASSERT(r.has_value() && *r == 8);
    RL_ASSERT(b->permits_for_testing() == 1);  // every slot back
    a.destroy();
    b.destroy();
  }
};

struct stop_vs_wake : rl::test_suite<stop_vs_wake, 3> {
  slot<state> a;
  rl::var<int> got;
  rd::atomic<model_core*> live{nullptr};  // the round the stop may reach

  void before() { a.make(cd::kind::bounded, 1); }
  void thread(unsigned index) {
    if (index == 0) {
      // One round whose core the stop thread reaches: it stays until the
      // stop was made (as a stop callback's unregistration waits for it).
      slot<cd::recv_branch<int>> rb;
      rb.make(*a);
      int v = 0;
      slot<model_core> core;
      core.make();
      live.store(&*core, std::memory_order_release);
      if (auto r = rb->poll()) {
        v = **r;  // ready at once: no wait, the stop comes too late to matter
      } else {
        bool const ready = !rb->arm(&*core);
        if (ready) core->fire();
        bool const slept = core->finish_arming();
        if (slept) core->f.sleep();
        rb->disarm();
        while (live.load(std::memory_order_acquire) != nullptr) rd::yield();  // the stop was made
        RL_ASSERT(core->f.count() == (slept ? 1u : 0u));
        if (core->stopped.load(std::memory_order_relaxed) == 0) {
          auto r = rb->poll();
          RL_ASSERT(r.has_value());  // not stopped: the value woke it
          v = **r;
        }
      }
      while (live.load(std::memory_order_acquire) != nullptr) rd::yield();
      core.destroy();
      rb.destroy();
      got($) = v;
    } else if (index == 1) {
      RL_ASSERT(a->try_take_permit());
      RL_ASSERT(push(*a, 7));
    } else {
      model_core* c;
      while ((c = live.load(std::memory_order_acquire)) == nullptr) rd::yield();
      // Ordering: relaxed: fire()'s acq_rel exchange orders it.
      c->stopped.store(1, std::memory_order_relaxed);
      c->fire();
      live.store(nullptr, std::memory_order_release);
    }
  }
  void after() {
    if (got($) == 0) {
      auto r = a->try_recv(false);  // stopped, or ran on before the push: the value stayed
      RL_ASSERT(r.has_value() && *r == 7);
    } else {
      RL_ASSERT(got($) == 7);
    }
    RL_ASSERT(a->try_recv(false).status() == status::empty);
    a.destroy();
  }
};

}  // namespace

int main() {
  constexpr unsigned long iterations = 200000;  // random search (a fair full search is too large)
  int failures = 0;
  failures += rouse_model::expect_pass<select_vs_two_wakes>("async_select.select_vs_two_wakes", iterations);
  failures += rouse_model::expect_pass<stop_vs_wake>("async_select.stop_vs_wake", iterations);
  {
    rd::model_fault_scope fault(rd::model_fault::async_select_arming_plain_store);
    failures += rouse_model::expect_failure<select_vs_two_wakes>("async_select.broken_arming_plain_store",
                                                                 rl::test_result_deadlock, iterations);
  }
  return failures == 0 ? 0 : 1;
}
