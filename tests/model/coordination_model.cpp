// Relacy models of the coordination primitives' wait/wake handshakes:
//   latch      count_down racing a waiter that goes to sleep; payload visible
//   barrier    a phase change with a sleeping waiter; completion runs once,
//              before the release, and sees every arrival's write
//   semaphore  release racing an acquire that sleeps; release(1) with two
//              sleepers wakes one and the other is not stranded
//   wide semaphore (LeastMaxValue > 2^31 - 1: count word + futex sequence)
//              the same cases, two releases racing (one inside the other's
//              RELEASING window), and a broken release without the
//              RELEASING mark that the model must catch; a coroutine's
//              stepwise acquire (semaphore_access, the waits its driver
//              makes) beside a thread's, and a broken step that waits on
//              the sequence it read in RELEASING(0) (it may sleep past the
//              release's wake)
//   semaphore destruction (both layouts): the acquirer destroys the
//              semaphore as soon as acquire() returns, while the release
//              may still run (docs/design.md, rule 7); and a broken wide release that
//              bumps its sequence after the permits, which the model must
//              catch touching the destroyed semaphore
//   event      auto-reset set racing a sleeping wait; manual-reset with two
// No deadlock means no lost wake-up; rl::var accesses check happens-before.
//
// Broken variants of the latch and the barrier, switched on in the real code
// (detail::model_fault), that the models must catch:
//   latch.broken_count_down_reads_flag_first   the last count_down() decides
//              on its wake from a load of the sleepers flag made before its
//              RMW; a waiter that set the flag in between sleeps for good
//   barrier.broken_generation_before_arrivals  the completing thread releases
//              the waiters before it stores the next phase's arrivals word; a
//              released thread's next arrival lands on the spent count
//
// Timed calls wait on model time (model_clock: the deadline passes when a
// wait times out); the timeout suites count the calls that gave up, and
// main() fails if none did.
#include <cstdio>
#include <new>

#include "model.hpp"
#include "rouse/barrier.hpp"
#include "rouse/event.hpp"
#include "rouse/latch.hpp"
#include "rouse/semaphore.hpp"

namespace {

using clock = rouse::detail::model_clock;

// try_acquire_until() calls that gave up, over a whole search.
unsigned long semaphore_timeouts = 0;
unsigned long wide_semaphore_timeouts = 0;

struct latch_count_down_wakes_waiter : rl::test_suite<latch_count_down_wakes_waiter, 2> {
  rouse::latch l{1};
  rl::var<int> payload;

  void thread(unsigned index) {
    if (index == 0) {
      payload($) = 1;
      l.count_down();
    } else {
      l.wait();
      RL_ASSERT(payload($) == 1);
    }
  }
};

struct latch_two_arrive_and_wait : rl::test_suite<latch_two_arrive_and_wait, 2> {
  rouse::latch l{2};
  rl::var<int> data[2];

  void thread(unsigned index) {
    data[index]($) = 1;
    l.arrive_and_wait();
    RL_ASSERT(data[1 - index]($) == 1);
  }
};

struct count_completion {
  rl::var<int>* runs;
  rl::var<int>* data;
  void operator()() noexcept {
    RL_ASSERT(data[0]($) == 1 && data[1]($) == 1);  // every arrival's write
    (*runs)($) += 1;
  }
};

struct barrier_phase_change : rl::test_suite<barrier_phase_change, 2> {
  rl::var<int> runs;
  rl::var<int> data[2];
  rouse::barrier<count_completion> b{2, count_completion{&runs, data}};

  void before() { runs($) = 0; }

  void thread(unsigned index) {
    data[index]($) = 1;
    b.arrive_and_wait();
    RL_ASSERT(runs($) == 1);  // ran once, before this thread was released
  }
};

// Two phases: the second phase's arrivals are counted afresh.
struct barrier_two_phases : rl::test_suite<barrier_two_phases, 2> {
  rouse::barrier<> b{2};
  rl::var<int> data[2];

  void thread(unsigned index) {
    data[index]($) = 1;
    b.arrive_and_wait();
    RL_ASSERT(data[1 - index]($) == 1);
    b.arrive_and_wait();
    data[1 - index]($) = 2;  // both read in phase 1, write after phase 2: no race
  }
};

struct semaphore_release_wakes_sleeper : rl::test_suite<semaphore_release_wakes_sleeper, 2> {
  rouse::binary_semaphore s{0};
  rl::var<int> payload;

  void thread(unsigned index) {
    if (index == 0) {
      payload($) = 4;
      s.release();
    } else {
      s.acquire();
      RL_ASSERT(payload($) == 4);
    }
  }
};

// Two acquirers, two releases of one permit each: nobody is stranded even
// though each release clears the sleepers flag and wakes only one.
struct semaphore_two_sleepers : rl::test_suite<semaphore_two_sleepers, 3> {
  rouse::counting_semaphore<2> s{0};

  void thread(unsigned index) {
    if (index == 0) {
      s.release();
      s.release();
    } else {
      s.acquire();
    }
  }
};

// release(2) with two sleepers: one wake call for both.
struct semaphore_release_two_two_sleepers : rl::test_suite<semaphore_release_two_two_sleepers, 3> {
  rouse::counting_semaphore<2> s{0};

  void thread(unsigned index) {
    if (index == 0)
      s.release(2);
    else
      s.acquire();
  }
};

// A timed acquirer and a blocking acquirer, one release: whichever is woken,
// if the timed one gives up, the blocking one still gets the permit.
struct semaphore_timeout_does_not_strand : rl::test_suite<semaphore_timeout_does_not_strand, 3> {
  rouse::binary_semaphore s{0};
  rouse::detail::atomic<int> taken{0};

  void before() { clock::reset(); }

  void thread(unsigned index) {
    if (index == 0) {
      s.release();
    } else if (index == 1) {
      if (s.try_acquire_until(clock::now() + clock::duration(1))) {
        taken.store(1, std::memory_order_relaxed);
        s.release();  // hand it on so thread 2 can finish
      } else {
        ++semaphore_timeouts;
      }
    } else {
      s.acquire();
    }
  }
};

// ---- the wide semaphore ----------------------------------------------------

using wide_semaphore = rouse::counting_semaphore<(std::ptrdiff_t{1} << 40)>;

struct wide_semaphore_release_wakes_sleeper : rl::test_suite<wide_semaphore_release_wakes_sleeper, 2> {
  wide_semaphore s{0};
  rl::var<int> payload;

  void thread(unsigned index) {
    if (index == 0) {
      payload($) = 4;
      s.release();
    } else {
      s.acquire();
      RL_ASSERT(payload($) == 4);
    }
  }
};

// Two releases of one permit each, two acquirers: the second release may
// find FREE (the first cleared the flag) and wake nobody; the woken
// acquirer then passes the wake on.
struct wide_semaphore_two_sleepers : rl::test_suite<wide_semaphore_two_sleepers, 3> {
  wide_semaphore s{0};

  void thread(unsigned index) {
    if (index == 0) {
      s.release();
      s.release();
    } else {
      s.acquire();
    }
  }
};

template <class S>
void acquire_stepwise(S& sem);

// One release of two permits, two acquirers: threads, or coroutines (their
// stepwise acquire).
template <bool Stepwise>
struct wide_semaphore_release_two_two_sleepers
    : rl::test_suite<wide_semaphore_release_two_two_sleepers<Stepwise>, 3> {
  wide_semaphore s{0};

  void thread(unsigned index) {
    if (index == 0)
      s.release(2);
    else if (Stepwise)
      acquire_stepwise(s);
    else
      s.acquire();
  }
};

// Two releasers race one acquirer that takes both permits: a release may
// land inside the other's RELEASING window (it adds its permit there, no
// wake); each payload reaches the acquirer.
struct wide_semaphore_two_releasers : rl::test_suite<wide_semaphore_two_releasers, 3> {
  wide_semaphore s{0};
  rl::var<int> payload[2];

  void thread(unsigned index) {
    if (index < 2) {
      payload[index]($) = 1;
      s.release();
    } else {
      s.acquire();
      s.acquire();
      RL_ASSERT(payload[0]($) == 1 && payload[1]($) == 1);
    }
  }
};

struct wide_semaphore_timeout_does_not_strand : rl::test_suite<wide_semaphore_timeout_does_not_strand, 3> {
  wide_semaphore s{0};

  void before() { clock::reset(); }

  void thread(unsigned index) {
    if (index == 0) {
      s.release();
    } else if (index == 1) {
      if (s.try_acquire_until(clock::now() + clock::duration(1)))
        s.release();
      else
        ++wide_semaphore_timeouts;
    } else {
      s.acquire();
    }
  }
};

// A coroutine's acquire (rouse/async/blocking.hpp), as its driver makes it:
// semaphore_access's steps, each "wait" a futex wait on the value the step
// returned (any return counts as woken, as the driver's completion does).
template <class S>
void acquire_stepwise(S& sem) {
  using access = rouse::detail::semaphore_access;
  auto& s = access::impl(sem);
  bool slept = false;
  std::uint32_t value = 0;
  while (!access::acquire_step(s, value, slept)) {
    rouse::detail::wait(access::word(s), value);
    slept = true;
  }
}

// Threads release one permit each to a stepwise (coroutine) acquirer and a
// thread acquirer: the releases' RELEASING windows are where the stepwise
// waiter must not sleep on a sequence already bumped.
struct wide_semaphore_stepwise_and_thread : rl::test_suite<wide_semaphore_stepwise_and_thread, 4> {
  wide_semaphore s{0};
  rl::var<int> payload[2];

  void thread(unsigned index) {
    if (index < 2) {
      payload[index]($) = 1;
      s.release();
    } else if (index == 2) {
      acquire_stepwise(s);
    } else {
      s.acquire();
    }
  }
};

}  // namespace

// Broken on purpose: a release to sleepers without the RELEASING mark. Its
// claim clears the flag (SLEEPERS -> FREE(0)), then it bumps the sequence,
// adds the permit and wakes. A waiter that reads the new sequence before the
// permit arrives finds FREE(0), sets SLEEPERS and sleeps on a sequence that
// nobody bumps again: a lost wake-up.
struct rouse::detail::semaphore_wide_model_access {
  static void release_without_mark(semaphore_wide& s) {
    std::uint64_t v = s.word_.load(std::memory_order_relaxed);
    for (;;) {
      if (v == semaphore_wide::sleepers) {
        if (s.word_.compare_exchange_weak(v, semaphore_wide::free_empty, std::memory_order_relaxed,
                                          std::memory_order_relaxed))
          break;
        continue;
      }
      if (s.word_.compare_exchange_weak(v, v + 2, std::memory_order_release, std::memory_order_relaxed)) return;
    }
    s.seq_.fetch_add(1, std::memory_order_release);
    v = s.word_.load(std::memory_order_relaxed);
    while (!s.word_.compare_exchange_weak(v, (semaphore_wide::count_of(v) + 1) << 1, std::memory_order_release,
                                          std::memory_order_relaxed)) {
    }
    wake_one(s.seq_);
  }

  // Broken on purpose: release(1) to sleepers that bumps the sequence after
  // the RMW that makes the permit available. The thread that permit lets
  // through may have destroyed the semaphore by then (docs/design.md, rule 7).
  static void release_bump_after_permits(semaphore_wide& s) {
    std::uint64_t v = s.word_.load(std::memory_order_relaxed);
    for (;;) {
      if (v == semaphore_wide::sleepers) {
        if (s.word_.compare_exchange_weak(v, semaphore_wide::releasing_empty, std::memory_order_relaxed,
                                          std::memory_order_relaxed))
          break;
        continue;
      }
      if (s.word_.compare_exchange_weak(v, v + 2, std::memory_order_release, std::memory_order_relaxed)) return;
    }
    s.word_.fetch_add(std::uint64_t{2} - 3, std::memory_order_release);
    s.seq_.fetch_add(1, std::memory_order_release);  // too late
    wake_one(s.seq_);
  }
};

namespace {

struct broken_wide_release_without_mark : rl::test_suite<broken_wide_release_without_mark, 2> {
  rouse::detail::semaphore_wide s{0};

  void thread(unsigned index) {
    if (index == 0) {
      rouse::detail::semaphore_wide_model_access::release_without_mark(s);
    } else if (!s.try_acquire()) {
      (void)s.acquire_slow(rouse::detail::no_deadline{});
    }
  }
};

// Destruction (docs/design.md, rule 7): the thread a release lets through may destroy
// the semaphore at once, while the releasing thread is still inside
// release(). The semaphore lives in raw storage and that thread destroys it
// in place; Relacy reports any later access to its words ("access to freed
// memory"). A futex wake on a destroyed word is allowed (it never reads the
// memory) and finds nobody. The acquirer first makes a timed attempt that
// sleeps and times out (the releaser waits for it), which leaves the
// sleepers flag set, so the release takes its slow path; then it takes the
// permit by acquire() (woken by the release) or by polling try_acquire() (in
// the moment the release makes it available), and destroys the semaphore.
template <class Semaphore, class Ops, bool Poll>
struct semaphore_destroyed_by_its_acquirer
    : rl::test_suite<semaphore_destroyed_by_its_acquirer<Semaphore, Ops, Poll>, 2> {
  alignas(Semaphore) unsigned char storage[sizeof(Semaphore)];
  Semaphore* s = nullptr;
  rl::atomic<int> attempted;

  void before() {
    clock::reset();
    s = new (storage) Semaphore(0);
    attempted($) = 0;
  }

  void thread(unsigned index) {
    if (index == 0) {
      while (attempted.load(rl::mo_acquire, $) == 0) rl::yield(1, $);
      Ops::release(*s);
    } else {
      RL_ASSERT(!Ops::timed_acquire(*s));
      attempted.store(1, rl::mo_release, $);
      if constexpr (Poll) {
        while (!s->try_acquire()) rl::yield(1, $);
      } else {
        Ops::acquire(*s);
      }
      s->~Semaphore();
    }
  }
};

struct public_ops {
  template <class S>
  static bool timed_acquire(S& s) {
    return s.try_acquire_until(clock::now() + clock::duration(1));
  }
  template <class S>
  static void acquire(S& s) {
    s.acquire();
  }
  template <class S>
  static void release(S& s) {
    s.release();
  }
};
// The wide layout's own calls (what counting_semaphore's make), with the
// broken release.
struct broken_wide_ops {
  static bool timed_acquire(rouse::detail::semaphore_wide& s) {
    return s.try_acquire() || s.acquire_slow(rouse::detail::deadline_at(clock::now() + clock::duration(1)));
  }
  static void acquire(rouse::detail::semaphore_wide& s) {
    if (!s.try_acquire()) (void)s.acquire_slow(rouse::detail::no_deadline{});
  }
  static void release(rouse::detail::semaphore_wide& s) {
    rouse::detail::semaphore_wide_model_access::release_bump_after_permits(s);
  }
};

template <class Semaphore, bool Poll>
using destroyed_by_its_acquirer = semaphore_destroyed_by_its_acquirer<Semaphore, public_ops, Poll>;
using broken_wide_bump_after_permits_destroyed =
    semaphore_destroyed_by_its_acquirer<rouse::detail::semaphore_wide, broken_wide_ops, true>;

struct event_auto_set_wakes_sleeper : rl::test_suite<event_auto_set_wakes_sleeper, 2> {
  rouse::event e{rouse::event_mode::auto_reset};
  rl::var<int> payload;

  void thread(unsigned index) {
    if (index == 0) {
      payload($) = 2;
      e.set();
    } else {
      e.wait();
      RL_ASSERT(payload($) == 2);
    }
  }
};

struct event_manual_two_waiters : rl::test_suite<event_manual_two_waiters, 3> {
  rouse::event e;

  void thread(unsigned index) {
    if (index == 0)
      e.set();
    else
      e.wait();
  }
};

struct event_auto_two_sets_two_waiters : rl::test_suite<event_auto_two_sets_two_waiters, 3> {
  rouse::event e{rouse::event_mode::auto_reset};
  rouse::detail::atomic<int> woken{0};

  void thread(unsigned index) {
    if (index == 0) {
      // Set again only after the first set was consumed (tokens do not
      // accumulate), so both waiters must get one each.
      e.set();
      while (woken.load(std::memory_order_acquire) == 0) rouse::detail::spin_pause();
      e.set();
    } else {
      e.wait();
      woken.fetch_add(1, std::memory_order_release);
    }
  }
};

}  // namespace

int main() {
  int failures = 0;
  failures += rouse_model::expect_pass<latch_count_down_wakes_waiter>("latch.count_down_wakes_waiter");
  failures += rouse_model::expect_pass<latch_two_arrive_and_wait>("latch.two_arrive_and_wait");
  failures += rouse_model::expect_pass<barrier_phase_change>("barrier.phase_change");
  failures += rouse_model::expect_pass<barrier_two_phases>("barrier.two_phases", 300000);
  {
    rouse::detail::model_fault_scope fault(rouse::detail::model_fault::latch_count_down_reads_flag_first);
    failures += rouse_model::expect_failure<latch_count_down_wakes_waiter>("latch.broken_count_down_reads_flag_first",
                                                                           rl::test_result_deadlock);
  }
  {
    rouse::detail::model_fault_scope fault(rouse::detail::model_fault::barrier_generation_before_arrivals);
    // Random search, as barrier.two_phases (the full search reaches the
    // failure only after ~60M schedules).
    failures += rouse_model::expect_failure<barrier_two_phases>("barrier.broken_generation_before_arrivals",
                                                                rl::test_result_user_assert_failed, 300000);
  }
  failures += rouse_model::expect_pass<semaphore_release_wakes_sleeper>("semaphore.release_wakes_sleeper");
  failures += rouse_model::expect_pass<semaphore_two_sleepers>("semaphore.two_sleepers", 1000000);
  failures += rouse_model::expect_pass<semaphore_timeout_does_not_strand>("semaphore.timeout_does_not_strand", 1000000);
  std::printf("model semaphore.timeout_does_not_strand: %lu try_acquire_until() calls timed out\n", semaphore_timeouts);
  if (semaphore_timeouts == 0) ++failures;
  failures +=
      rouse_model::expect_pass<semaphore_release_two_two_sleepers>("semaphore.release_two_two_sleepers", 1000000);
  failures += rouse_model::expect_pass<wide_semaphore_release_wakes_sleeper>("wide_semaphore.release_wakes_sleeper");
  failures += rouse_model::expect_pass<wide_semaphore_two_sleepers>("wide_semaphore.two_sleepers", 1000000);
  failures += rouse_model::expect_pass<wide_semaphore_release_two_two_sleepers<false>>(
      "wide_semaphore.release_two_two_sleepers", 1000000);
  failures += rouse_model::expect_pass<wide_semaphore_two_releasers>("wide_semaphore.two_releasers", 1000000);
  failures += rouse_model::expect_pass<wide_semaphore_timeout_does_not_strand>("wide_semaphore.timeout_does_not_strand",
                                                                               1000000);
  std::printf("model wide_semaphore.timeout_does_not_strand: %lu try_acquire_until() calls timed out\n",
              wide_semaphore_timeouts);
  if (wide_semaphore_timeouts == 0) ++failures;
  failures += rouse_model::expect_failure<broken_wide_release_without_mark>(
      "wide_semaphore.broken_release_without_mark", rl::test_result_deadlock);
  failures += rouse_model::expect_pass<wide_semaphore_stepwise_and_thread>("wide_semaphore.stepwise_and_thread",
                                                                           1000000);
  failures += rouse_model::expect_pass<wide_semaphore_release_two_two_sleepers<true>>(
      "wide_semaphore.release_two_two_stepwise", 1000000);
  {
    rouse::detail::model_fault_scope fault(rouse::detail::model_fault::wide_semaphore_step_waits_in_releasing);
    failures += rouse_model::expect_failure<wide_semaphore_stepwise_and_thread>(
        "wide_semaphore.broken_step_waits_in_releasing", rl::test_result_deadlock, 1000000);
  }
  // The destruction models poll: a random search.
  failures += rouse_model::expect_pass<destroyed_by_its_acquirer<rouse::binary_semaphore, false>>(
      "semaphore.destroyed_by_its_woken_acquirer", 200000);
  failures += rouse_model::expect_pass<destroyed_by_its_acquirer<rouse::binary_semaphore, true>>(
      "semaphore.destroyed_by_its_polling_acquirer", 200000);
  failures += rouse_model::expect_pass<destroyed_by_its_acquirer<wide_semaphore, false>>(
      "wide_semaphore.destroyed_by_its_woken_acquirer", 200000);
  failures += rouse_model::expect_pass<destroyed_by_its_acquirer<wide_semaphore, true>>(
      "wide_semaphore.destroyed_by_its_polling_acquirer", 200000);
  failures += rouse_model::expect_failure<broken_wide_bump_after_permits_destroyed>(
      "wide_semaphore.broken_bump_after_permits", rl::test_result_access_to_freed_memory, 200000);
  failures += rouse_model::expect_pass<event_auto_set_wakes_sleeper>("event.auto_set_wakes_sleeper");
  failures += rouse_model::expect_pass<event_manual_two_waiters>("event.manual_two_waiters", 300000);
  failures += rouse_model::expect_pass<event_auto_two_sets_two_waiters>("event.auto_two_sets_two_waiters", 300000);
  return failures == 0 ? 0 : 1;
}
