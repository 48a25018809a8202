// Relacy models of rouse/async/semaphore.hpp: the queue with partial
// assignment, a serve against a leave, a stop against a release, the
// blocking form. Waiters are semaphore_wait objects (the Wait of the
// coroutine awaitable, without the coroutine half) woken through a waker
// whose wake sets a flag the owning thread sleeps on; each lives in raw
// storage its owner destroys right after its wait, so a late touch by a
// serve is reported.
//
//   partial_assignment           a waiter for 2, two releases of 1 on two
//                                threads: the first is assigned and kept,
//                                the second completes it (3 parties)
//   release_vs_leave_of_first    waiters for 2 and 1; two releases against
//                                the first one leaving (cancel) with what
//                                it was assigned: the second is served and
//                                exactly one permit is left (3 parties)
//   stop_vs_release              try_abort against a release: one winner;
//                                the permit is free iff the stop won
//   blocking_vs_releases         acquire_blocking(2) against two releases
//   queue_vs_release             a waiter queues while a release runs (the
//                                Q bit in the word: no lost wake-up)
//   close_vs_release_vs_leave    close() against a release and a queued
//                                waiter leaving with a partial assignment:
//                                every waiter is claimed once, and the one
//                                permit is either held or back in the count
////   released_then_destroyed      docs/design.md rule 7: two releases of 1 against a
//                                waiter for 2 that queues meanwhile and,
//                                served, destroys the semaphore at once:
//                                neither release touches it after its
//                                permits may have let the waiter through
//
// A lost wake-up shows as a deadlock, a lost or doubled permit as an
// assertion failure.
//
// Broken variants (detail::model_fault) the model must catch:
//   async_semaphore_serve_skips_partial   no partial assignment (the permits
//                                         a serve could not use are lost):
//                                         partial_assignment deadlocks
//   async_semaphore_leave_keeps_assigned  a leaving waiter keeps what was
//                                         assigned to it: in
//                                         release_vs_leave_of_first a permit
//                                         is lost (assertion)
//   async_semaphore_release_adds_then_serves  a release puts its permits in
//                                         the word although Q is set, then
//                                         serves: the other release hands
//                                         them on first and the waiter
//                                         destroys the semaphore before the
//                                         serve (released_then_destroyed:
//                                         access to freed memory)
#include <cstdint>

#include "async_model.hpp"
#include "rouse/async/semaphore.hpp"

namespace {

namespace rd = rouse::detail;
namespace ra = rouse::async;
using rouse_model::flag_waker;
using rouse_model::slot;
using wait_t = ra::detail::semaphore_wait;
using start = wait_t::start_result;

// A queued request: its request record, its waker, its wait.
struct queued {
  ra::detail::semaphore_request req;
  flag_waker f;
  slot<wait_t> w;
  void make(ra::semaphore& s, std::size_t n) {
    req.n = n;
    rd::unsync_ref(req.remaining) = n;
    rd::unsync_ref(req.closed) = false;
    f.woken.store(0, std::memory_order_relaxed);
    w.make(s, reinterpret_cast<std::uintptr_t>(&req), f.make());
  }
};

struct partial_assignment : rl::test_suite<partial_assignment, 3> {
  slot<ra::semaphore> s;
  queued a;
  void before() {
    s.make(0);
    a.make(*s, 2);
    RL_ASSERT(a.w->start() == start::suspended);
  }
  void thread(unsigned index) {
    if (index == 2) {
      a.f.sleep();  // served only once both permits were assigned
      RL_ASSERT(rd::unsync_ref(a.req.remaining) == 0);
      a.w.destroy();
    } else {
      s->release(1);
    }
  }
  void after() {
    RL_ASSERT(a.f.count() == 1);
    RL_ASSERT(s->available() == 0);
    s.destroy();
  }
};

struct release_vs_leave_of_first : rl::test_suite<release_vs_leave_of_first, 3> {
  slot<ra::semaphore> s;
  queued a, b;
  rl::var<int> first_left;
  void before() {
    s.make(0);
    a.make(*s, 2);
    b.make(*s, 1);
    RL_ASSERT(a.w->start() == start::suspended);
    RL_ASSERT(b.w->start() == start::suspended);
  }
  void thread(unsigned index) {
    if (index == 0) {
      s->release(1);
      s->release(1);
    } else if (index == 1) {
      // The first gives up: it leaves with what it was assigned, or, served
      // meanwhile, passes its 2 permits on.
      first_left($) = a.w->cancel() ? 1 : 0;
      a.w.destroy();
    } else {
      b.f.sleep();
      b.w.destroy();
    }
  }
  void after() {
    RL_ASSERT(a.f.count() == (first_left($) ? 0u : 1u));
    RL_ASSERT(b.f.count() == 1);
    RL_ASSERT(s->available() == 1);  // 2 released, 1 held by b: nothing lost or doubled
    s.destroy();
  }
};

struct stop_vs_release : rl::test_suite<stop_vs_release, 2> {
  slot<ra::semaphore> s;
  queued a;
  rl::var<int> stopped;
  void before() {
    s.make(0);
    a.make(*s, 1);
    RL_ASSERT(a.w->start() == start::suspended);
  }
  void thread(unsigned index) {
    if (index == 0)
      stopped($) = a.w->try_abort([] {}) ? 1 : 0;
    else
      s->release(1);
  }
  void after() {
    RL_ASSERT(a.f.count() == 1);  // released once, by the one winner
    if (stopped($))
      RL_ASSERT(a.w->claim() == rd::waiter::aborted);
    else
      RL_ASSERT(ra::waiter_list::transferable(a.w->claim()));
    RL_ASSERT(s->available() == (stopped($) ? 1u : 0u));  // free iff the stop won
    a.w.destroy();
    s.destroy();
  }
};

struct blocking_vs_releases : rl::test_suite<blocking_vs_releases, 3> {
  slot<ra::semaphore> s;
  void before() { s.make(0); }
  void thread(unsigned index) {
    if (index == 0) {
      ra::semaphore::permit p = s->acquire_blocking(2);
      RL_ASSERT(p && p.count() == 2);
      p.forget();
    } else {
      s->release(1);
    }
  }
  void after() {
    RL_ASSERT(s->available() == 0);
    s.destroy();
  }
};

struct queue_vs_release : rl::test_suite<queue_vs_release, 2> {
  slot<ra::semaphore> s;
  queued a;
  rl::var<int> how;
  void before() { s.make(0); }
  void thread(unsigned index) {
    if (index == 0) {
      a.make(*s, 1);
      start const r = a.w->try_acquire() != ra::check_result::not_ready ? start::withdrew : a.w->start();
      if (r == start::suspended) a.f.sleep();
      how($) = static_cast<int>(r);
      a.w.destroy();
    } else {
      s->release(1);
    }
  }
  void after() {
    RL_ASSERT(a.f.count() == (how($) == static_cast<int>(start::suspended) ? 1u : 0u));
    RL_ASSERT(s->available() == 0);
    s.destroy();
  }
};

struct close_vs_release_vs_leave : rl::test_suite<close_vs_release_vs_leave, 3> {
  slot<ra::semaphore> s;
  queued a, b;
  void before() {
    s.make(0);
    a.make(*s, 2);
    b.make(*s, 1);
    RL_ASSERT(a.w->start() == start::suspended);
    RL_ASSERT(b.w->start() == start::suspended);
  }
  void thread(unsigned index) {
    if (index == 0) {
      s->release(1);  // to a first (partial), or to b if a left
    } else if (index == 1) {
      s->close();
    } else {
      (void)a.w->cancel();  // leaves with what it holds, or was closed
      a.w.destroy();
    }
  }
  void after() {
    RL_ASSERT(b.f.count() == 1);  // served or closed, exactly once
    bool const b_served = b.w->claim() != rd::waiter::closed;
    RL_ASSERT(b_served == !rd::unsync_ref(b.req.closed));
    RL_ASSERT(s->is_closed());
    RL_ASSERT(s->available() + (b_served ? 1u : 0u) == 1u);  // conserved
    b.w.destroy();
    s.destroy();
  }
};

struct released_then_destroyed : rl::test_suite<released_then_destroyed, 3> {
  slot<ra::semaphore> s;
  queued a;
  void before() { s.make(0); }
  void thread(unsigned index) {
    if (index == 0) {
      // Queues while the releases run (a release may see Q or not), waits
      // for both permits, then destroys the semaphore at once.
      a.make(*s, 2);
      rouse_model::await_with_flag(*a.w, a.f);
      RL_ASSERT(rd::unsync_ref(a.req.remaining) == 0);
      a.w.destroy();
      s.destroy();
    } else {
      s->release(1);
    }
  }
};

}  // namespace

int main() {
  constexpr unsigned long iterations = 300000;  // random search
  int failures = 0;
  failures += rouse_model::expect_pass<partial_assignment>("async_semaphore.partial_assignment", iterations);
  failures +=
      rouse_model::expect_pass<release_vs_leave_of_first>("async_semaphore.release_vs_leave_of_first", iterations);
  failures += rouse_model::expect_pass<stop_vs_release>("async_semaphore.stop_vs_release", iterations);
  failures += rouse_model::expect_pass<blocking_vs_releases>("async_semaphore.blocking_vs_releases", iterations);
  failures += rouse_model::expect_pass<queue_vs_release>("async_semaphore.queue_vs_release", iterations);
  failures += rouse_model::expect_pass<close_vs_release_vs_leave>("async_semaphore.close_vs_release_vs_leave",
                                                                  iterations);
  failures += rouse_model::expect_pass<released_then_destroyed>("async_semaphore.released_then_destroyed", iterations);
  {
    rd::model_fault_scope fault(rd::model_fault::async_semaphore_release_adds_then_serves);
    failures += rouse_model::expect_failure<released_then_destroyed>(
        "async_semaphore.broken_release_adds_then_serves", rl::test_result_access_to_freed_memory, iterations);
  }
  {
    rd::model_fault_scope fault(rd::model_fault::async_semaphore_serve_skips_partial);
    failures += rouse_model::expect_failure<partial_assignment>("async_semaphore.broken_serve_skips_partial",
                                                                rl::test_result_deadlock, iterations);
  }
  {
    rd::model_fault_scope fault(rd::model_fault::async_semaphore_leave_keeps_assigned);
    failures += rouse_model::expect_failure<release_vs_leave_of_first>("async_semaphore.broken_leave_keeps_assigned",
                                                                       rl::test_result_user_assert_failed, iterations);
  }
  return failures == 0 ? 0 : 1;
}
