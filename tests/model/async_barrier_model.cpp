// Relacy models of rouse/async/barrier.hpp's phase hand-over (and
// rouse/async/latch.hpp's release, which is the same handshake): the last
// arriver runs the completion, marks the release (R), claims the queued
// waiters of the phase under the list's lock, drops the lock, publishes the
// next phase (its last touch of the object) and only then wakes the waiters
// it claimed; a waiter that registers after the claim sees R in its
// re-check and waits for the new phase. Waiters are list_wait objects woken
// through a waker that sets a flag their thread sleeps on, or the blocking
// wait; objects live in raw storage and are destroyed in place by the
// waiter the release lets through, so a late touch by the last arriver is
// reported as access to freed memory.
//
//   waiter_destroys_after_release   the waiter (queued, or seeing the new
//                                   phase at once) destroys the barrier
//   two_parties_two_phases          both arrive and wait (blocking form),
//                                   twice: the completion happens-before
//                                   every return of its phase, runs once
//   latch_waiter_destroys           the latch's release, the same way
//   latch_stop_vs_release           a waiter's stop (try_abort) races the
//                                   release while a third party, let
//                                   through, destroys the latch at once: a
//                                   stop that won its claim during the
//                                   release's pass unlinks its node before
//                                   the release (the release waits for it)
//
// A lost wake-up shows as a deadlock, a missing happens-before as a data
// race on the completion's counter, a late touch as freed-memory access.
//
// Broken variant (detail::model_fault) the model must catch:
//   async_barrier_releases_before_claim   the last arriver publishes the new
//                                         phase, then claims and wakes: in
//                                         waiter_destroys_after_release the
//                                         list is read after the waiter
//                                         destroyed the barrier
//   async_release_ignores_leaving         the release's pass unlinks a node
//                                         its own side claimed (leaving) and
//                                         releases at once: in
//                                         latch_stop_vs_release that side's
//                                         unlink reads the destroyed list
#include <cstdint>

#include "async_model.hpp"
#include "rouse/async/barrier.hpp"
#include "rouse/async/latch.hpp"

namespace {

namespace rd = rouse::detail;
namespace ra = rouse::async;
using rouse_model::flag_waker;
using rouse_model::slot;

struct count_runs {
  rl::var<int>* runs;
  void operator()() noexcept { (*runs)($) = (*runs)($) + 1; }
};
using barrier_t = ra::barrier<count_runs>;
using barrier_wait = ra::list_wait<barrier_t>;

// One party's wait through a list_wait woken by a flag (the coroutine
// form's protocol without the coroutine), then nothing more of the wait.
template <class P, class Wait>
void wait_with_flag(P& p, std::uintptr_t tag, slot<Wait>& w, flag_waker& f) {
  rouse_model::await_with_flag(w.make(p, tag, f.make()), f);
  w.destroy();
}

struct waiter_destroys_after_release : rl::test_suite<waiter_destroys_after_release, 2> {
  slot<barrier_t> b;
  slot<barrier_wait> w;
  flag_waker f;
  rl::var<int> runs;
  rl::var<int> before_arrival;

  void before() {
    runs($) = 0;
    before_arrival($) = 0;
    f.woken.store(0, std::memory_order_relaxed);
    b.make(2, count_runs{&runs});
  }
  void thread(unsigned index) {
    if (index == 0) {
      auto token = b->arrive();
      (void)token;
      // The token's phase is 0 (a fresh barrier).
      wait_with_flag(*b, 0, w, f);
      RL_ASSERT(runs($) == 1);
      RL_ASSERT(before_arrival($) == 1);
      b.destroy();  // at once: the last arriver may still be returning
    } else {
      before_arrival($) = 1;
      (void)b->arrive();
    }
  }
};

struct two_parties_two_phases : rl::test_suite<two_parties_two_phases, 2> {
  slot<barrier_t> b;
  rl::var<int> runs;
  rl::var<int> written[2];

  void before() {
    runs($) = 0;
    written[0]($) = 0;
    written[1]($) = 0;
    b.make(2, count_runs{&runs});
  }
  void thread(unsigned index) {
    written[index]($) = 1;
    b->arrive_and_wait_blocking();
    RL_ASSERT(runs($) >= 1);
    RL_ASSERT(written[1 - index]($) == 1);  // the other's write before its arrival
    b->arrive_and_wait_blocking();
    RL_ASSERT(runs($) == 2);
  }
  void after() {
    RL_ASSERT(runs($) == 2);
    b.destroy();
  }
};

struct latch_waiter_destroys : rl::test_suite<latch_waiter_destroys, 2> {
  slot<ra::latch> l;
  slot<ra::list_wait<ra::latch>> w;
  flag_waker f;
  rl::var<int> value;

  void before() {
    value($) = 0;
    f.woken.store(0, std::memory_order_relaxed);
    l.make(1);
  }
  void thread(unsigned index) {
    if (index == 0) {
      wait_with_flag(*l, 0, w, f);
      RL_ASSERT(value($) == 1);
      l.destroy();
    } else {
      value($) = 1;
      l->count_down();
    }
  }
};

struct latch_stop_vs_release : rl::test_suite<latch_stop_vs_release, 3> {
  slot<ra::latch> l;
  slot<ra::list_wait<ra::latch>> w;
  flag_waker f;

  void before() {
    f.woken.store(0, std::memory_order_relaxed);
    l.make(1);
    RL_ASSERT(w.make(*l, 0, f.make()).start() == ra::list_wait<ra::latch>::start_result::suspended);
  }
  void thread(unsigned index) {
    if (index == 0) {
      (void)w->try_abort();  // won: it unlinks its node; lost: the release woke it
    } else if (index == 1) {
      l->count_down();
    } else {
      while (!l->try_wait()) rd::spin_pause();
      l.destroy();  // let through: at once
    }
  }
  void after() {
    RL_ASSERT(f.woken.load(std::memory_order_relaxed) == 1);  // one winner woke it
    w.destroy();
  }
};

}  // namespace

int main() {
  constexpr unsigned long iterations = 200000;  // random search (a fair full search is too large)
  int failures = 0;
  failures += rouse_model::expect_pass<waiter_destroys_after_release>("async_barrier.waiter_destroys_after_release",
                                                                      iterations);
  failures += rouse_model::expect_pass<two_parties_two_phases>("async_barrier.two_parties_two_phases", iterations);
  failures += rouse_model::expect_pass<latch_waiter_destroys>("async_latch.waiter_destroys_after_release", iterations);
  failures += rouse_model::expect_pass<latch_stop_vs_release>("async_latch.stop_vs_release", iterations);
  {
    rd::model_fault_scope fault(rd::model_fault::async_barrier_releases_before_claim);
    failures += rouse_model::expect_failure<waiter_destroys_after_release>(
        "async_barrier.broken_releases_before_claim", rl::test_result_access_to_freed_memory, iterations);
  }
  {
    rd::model_fault_scope fault(rd::model_fault::async_release_ignores_leaving);
    failures += rouse_model::expect_failure<latch_stop_vs_release>(
        "async_latch.broken_release_ignores_leaving", rl::test_result_access_to_freed_memory, iterations);
  }
  return failures == 0 ? 0 : 1;
}
