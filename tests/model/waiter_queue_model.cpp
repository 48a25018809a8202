// Relacy models of rouse/detail/waiter_queue.hpp: the one-winner claim and
// the release of a waiter whose frame its owner frees the moment it may.
//
//   notify_vs_timeout     a thread waiter with a deadline against a notify
//   notify_vs_cancel      a waker waiter whose owner cancels, against a notify
//   close_vs_two_waiters  a close releases two thread waiters in one chain
//   notify_close_timeout  a notify, a close and a timeout race for one waiter
//
// Each waiter and its node live in raw storage and are destroyed by their
// owner right after its wait (or cancel) returns; Relacy reports any later
// access to them ("ACCESS TO FREED MEMORY"): a futex wake on a destroyed
// word is allowed (it never reads the memory) and finds nobody. A lost
// wake-up shows as a deadlock; a double claim as an assertion failure.
//
// Broken variants, switched on in the real code (detail::model_fault), that
// the models must catch:
//   waiter_released_before_waker_taken  wake() releases a waker waiter, then
//                                       reads the waker out of it
//   waiter_release_store_relaxed        wake() releases a waker waiter with a
//                                       relaxed store: the owner whose cancel
//                                       lost destroys the waiter unsynchronized
//                                       with the claimer's writes (data race)
//   waiter_chain_read_after_wake        wake_chain() reads a node's link
//                                       after waking its waiter
#include <cstdint>
#include <new>

#include "model.hpp"
#include "rouse/detail/deadline.hpp"
#include "rouse/detail/waiter_queue.hpp"

namespace {

namespace d = rouse::detail;
using clock = d::model_clock;

// A waiter that sleeps at once, without polling its release first.
constexpr d::spin_policy no_spin{.model_polls = 0};

struct parked {
  d::waiter w;
  d::waiter_node n{&w};
  parked() = default;
  explicit parked(d::waker k) : w(std::move(k)) {}
};

// A waiter's frame: raw storage its owner constructs and destroys in place.
struct frame {
  alignas(parked) unsigned char storage[sizeof(parked)];
  parked* p = nullptr;

  void make() { p = new (storage) parked; }
  void make(d::waker k) { p = new (storage) parked(std::move(k)); }
  void destroy() {
    p->~parked();
    p = nullptr;
  }
};

// A thread waiter's whole timed wait, as a blocking call makes it: register,
// announce (`pushed`), sleep until claimed or one tick of model time, and
// unlink the node if the waiter claimed itself. Returns the claim; `id` is
// the node's id (a notify's claim).
std::uintptr_t timed_wait(d::waiter_queue<>& q, frame& f, rl::atomic<int>& pushed, std::uintptr_t& id) {
  q.push(f.p->n);
  pushed.store(1, rl::mo_release, $);
  id = f.p->n.id();
  std::uintptr_t const c = f.p->w.wait(d::deadline_at(clock::now() + clock::duration(1)), no_spin);
  if (c == d::waiter::aborted) q.remove(f.p->n);
  return c;
}

// A waker that counts its wakes and drops (its data outlives every frame).
struct counts {
  rl::atomic<int> wakes;
  rl::atomic<int> drops;
  void reset() {
    wakes($) = 0;
    drops($) = 0;
  }
};
void count_wake(const void* data) noexcept {
  static_cast<counts*>(const_cast<void*>(data))->wakes.fetch_add(1, rl::mo_relaxed, $);
}
void count_drop(const void* data) noexcept {
  static_cast<counts*>(const_cast<void*>(data))->drops.fetch_add(1, rl::mo_relaxed, $);
}
const void* count_clone(const void* data) noexcept { return data; }
constexpr d::waker_vtable counting_vtable{count_clone, count_wake, count_wake, count_drop};

// A thread waiter that may time out, against a notify: exactly one claims it.
struct notify_vs_timeout : rl::test_suite<notify_vs_timeout, 2> {
  d::waiter_queue<> q;
  frame f;
  rl::atomic<int> pushed;
  rl::var<int> notified_it;  // 1 when the notify claimed it
  rl::var<int> woke;         // notify_one()'s result
  rl::var<std::uintptr_t> claim_kind;

  void before() {
    clock::reset();
    pushed($) = 0;
    f.make();
  }
  void thread(unsigned index) {
    if (index == 0) {
      std::uintptr_t id = 0;
      std::uintptr_t const c = timed_wait(q, f, pushed, id);
      notified_it($) = c == id ? 1 : 0;
      claim_kind($) = c == id ? 3 : c;
      f.destroy();
    } else {
      while (pushed.load(rl::mo_acquire, $) == 0) rl::yield(1, $);
      woke($) = q.notify_one() ? 1 : 0;
    }
  }
  void after() {
    RL_ASSERT(woke($) == notified_it($));
    RL_ASSERT(claim_kind($) == 3 || claim_kind($) == d::waiter::aborted);
  }
};

// A waker waiter whose owner cancels it, against a notify: the waker is
// woken exactly when the cancel lost, dropped exactly when it won.
struct notify_vs_cancel : rl::test_suite<notify_vs_cancel, 2> {
  d::waiter_queue<> q;
  frame f;
  counts c;
  rl::var<int> left;
  rl::var<int> woke;

  void before() {
    c.reset();
    f.make(d::waker(&c, &counting_vtable));
    q.push(f.p->n);
  }
  void thread(unsigned index) {
    if (index == 0) {
      left($) = q.cancel(f.p->n) ? 1 : 0;
      f.destroy();
    } else {
      woke($) = q.notify_one() ? 1 : 0;
    }
  }
  void after() {
    RL_ASSERT(left($) + woke($) == 1);
    RL_ASSERT(c.wakes($) == woke($));
    RL_ASSERT(c.drops($) == left($));
  }
};

// A close claims and releases two thread waiters in one chain; each frees
// its frame as soon as it returns.
struct close_vs_two_waiters : rl::test_suite<close_vs_two_waiters, 3> {
  d::waiter_queue<> q;
  frame f[2];
  rl::atomic<int> pushed;
  rl::var<int> closed_count;

  void before() {
    pushed($) = 0;
    f[0].make();
    f[1].make();
  }
  void thread(unsigned index) {
    if (index < 2) {
      frame& mine = f[index];
      q.push(mine.p->n);
      pushed.fetch_add(1, rl::mo_release, $);
      std::uintptr_t const got = mine.p->w.wait(d::no_deadline{}, no_spin);
      RL_ASSERT(got == d::waiter::closed);
      mine.destroy();
    } else {
      while (pushed.load(rl::mo_acquire, $) != 2) rl::yield(1, $);
      closed_count($) = q.close();
    }
  }
  void after() { RL_ASSERT(closed_count($) == 2); }
};

// A notify, a close and the waiter's own timeout race for one waiter.
struct notify_close_timeout : rl::test_suite<notify_close_timeout, 3> {
  d::waiter_queue<> q;
  frame f;
  rl::atomic<int> pushed;
  rl::var<std::uintptr_t> result;  // 0 notified, else aborted / closed
  rl::var<int> woke;
  rl::var<int> closed_count;

  void before() {
    clock::reset();
    pushed($) = 0;
    f.make();
  }
  void thread(unsigned index) {
    if (index == 0) {
      std::uintptr_t id = 0;
      std::uintptr_t const c = timed_wait(q, f, pushed, id);
      result($) = c == id ? 0 : c;
      f.destroy();
    } else {
      while (pushed.load(rl::mo_acquire, $) == 0) rl::yield(1, $);
      if (index == 1)
        woke($) = q.notify_one() ? 1 : 0;
      else
        closed_count($) = q.close();
    }
  }
  void after() {
    std::uintptr_t const r = result($);
    RL_ASSERT(woke($) + closed_count($) + (r == d::waiter::aborted ? 1 : 0) == 1);
    RL_ASSERT((woke($) == 1) == (r == 0));
    RL_ASSERT((closed_count($) == 1) == (r == d::waiter::closed));
  }
};

}  // namespace

int main() {
  constexpr unsigned long iterations = 200000;  // random search (a fair full search is too large)
  int failures = 0;
  failures += rouse_model::expect_pass<notify_vs_timeout>("waiter_queue.notify_vs_timeout", iterations);
  failures += rouse_model::expect_pass<notify_vs_cancel>("waiter_queue.notify_vs_cancel", iterations);
  failures += rouse_model::expect_pass<close_vs_two_waiters>("waiter_queue.close_vs_two_waiters", iterations);
  failures += rouse_model::expect_pass<notify_close_timeout>("waiter_queue.notify_close_timeout", iterations);
  {
    // BROKEN on purpose: the release of a waker waiter is a relaxed store.
    d::model_fault_scope fault(d::model_fault::waiter_release_store_relaxed);
    failures += rouse_model::expect_failure<notify_vs_cancel>("waiter_queue.broken_release_store_relaxed",
                                                              rl::test_result_data_race, iterations);
  }
  {
    // BROKEN on purpose: the claimer releases the waker waiter, then reads
    // the waker out of it; the owner, whose cancel lost, frees it between.
    d::model_fault_scope fault(d::model_fault::waiter_released_before_waker_taken);
    failures += rouse_model::expect_failure<notify_vs_cancel>("waiter_queue.broken_release_before_waker_taken",
                                                              rl::test_result_access_to_freed_memory, iterations);
  }
  {
    // BROKEN on purpose: the close reads the second node's link after
    // waking the first waiter... and the first node's after its waiter
    // freed it.
    d::model_fault_scope fault(d::model_fault::waiter_chain_read_after_wake);
    failures += rouse_model::expect_failure<close_vs_two_waiters>("waiter_queue.broken_chain_read_after_wake",
                                                                  rl::test_result_access_to_freed_memory, iterations);
  }
  return failures == 0 ? 0 : 1;
}
