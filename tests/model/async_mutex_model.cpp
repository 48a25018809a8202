// Relacy models of rouse/async/mutex.hpp's hand-off (a semaphore of one
// permit: rouse/async/semaphore.hpp). Three threads lock (the blocking form:
// a thread waiter in the same queue that tasks use), increment a plain
// counter (a race on it is reported: mutual exclusion) and unlock; an
// unlock with a waiter queued hands the ownership straight to it. A waker
// waiter (the coroutine path without the coroutine) queues behind a held
// lock and is handed it by the unlock.
//
//   three_lockers        lock / ++counter / unlock on three threads: the
//                        counter ends at 3 and the mutex is free
//   hand_off_to_waker    a held lock, a waker waiter queued behind it and a
//                        thread locking too: the unlock hands the lock on
//                        (FIFO), the waiter unlocks after its turn
//   unlock_then_destroy  docs/design.md rule 7: a held lock, a queued waiter that
//                        leaves, and a thread that locks, unlocks and
//                        destroys the mutex (in raw storage) while the first
//                        unlock may still be inside its serve: any touch of
//                        the mutex after the unlock's publication is
//                        reported as an access to freed memory
//
// Broken variants (detail::model_fault) the model must catch:
//   async_semaphore_release_ignores_queued    unlock() puts the permit back
//                                             in the word without serving the
//                                             queue: a queued locker is never
//                                             handed the lock (deadlock)
//   async_semaphore_unlock_rereads_word       the queue's unlock re-reads the
//                                             word after its publication:
//                                             unlock_then_destroy reports
//                                             the access to freed memory
#include <cstdint>

#include "async_model.hpp"
#include "rouse/async/mutex.hpp"

namespace {

namespace rd = rouse::detail;
namespace ra = rouse::async;
using rouse_model::flag_waker;
using rouse_model::slot;
using wait_t = ra::detail::semaphore_wait;

struct three_lockers : rl::test_suite<three_lockers, 3> {
  ra::mutex m;
  rl::var<int> counter;
  void before() { counter($) = 0; }
  void thread(unsigned) {
    ra::mutex::guard g = m.lock_blocking();
    counter($) = counter($) + 1;
  }
  void after() {
    RL_ASSERT(counter($) == 3);
    RL_ASSERT(m.try_lock());
    m.unlock();
  }
};

// The waker waiter reaches the mutex's semaphore as a coroutine's lock does
// (semaphore_wait on the mutex's permit): built here through a semaphore of
// one permit used exactly as async::mutex uses it.
struct hand_off_to_waker : rl::test_suite<hand_off_to_waker, 3> {
  ra::semaphore s{1};
  ra::detail::semaphore_request req;
  flag_waker f;
  slot<wait_t> w;
  rl::var<int> counter;
  void before() {
    counter($) = 0;
    f.woken.store(0, std::memory_order_relaxed);
  }
  void thread(unsigned index) {
    if (index == 0) {
      // Owns the lock, then unlocks (the hand-off).
      ra::semaphore::permit p = s.acquire_blocking(1);
      counter($) = counter($) + 1;
    } else if (index == 1) {
      req.n = 1;
      rd::unsync_ref(req.remaining) = 1;
      rd::unsync_ref(req.closed) = false;
      w.make(s, reinterpret_cast<std::uintptr_t>(&req), f.make());
      if (w->try_acquire() == ra::check_result::not_ready && w->start() == wait_t::start_result::suspended) f.sleep();
      w.destroy();
      counter($) = counter($) + 1;
      s.release(1);  // its unlock
    } else {
      ra::semaphore::permit p = s.acquire_blocking(1);
      counter($) = counter($) + 1;
    }
  }
  void after() {
    RL_ASSERT(counter($) == 3);
    RL_ASSERT(s.available() == 1);
  }
};

struct unlock_then_destroy : rl::test_suite<unlock_then_destroy, 3> {
  slot<ra::semaphore> s;
  ra::detail::semaphore_request req;
  flag_waker f;
  slot<wait_t> w;
  rd::atomic<std::uint32_t> left{0};
  void before() {
    s.make(1);
    s->try_acquire(1).forget();  // thread 0 owns the lock
    req.n = 1;
    rd::unsync_ref(req.remaining) = 1;
    rd::unsync_ref(req.closed) = false;
    f.woken.store(0, std::memory_order_relaxed);
    left.store(0, std::memory_order_relaxed);
    w.make(*s, reinterpret_cast<std::uintptr_t>(&req), f.make());
    RL_ASSERT(w->start() == wait_t::start_result::suspended);  // Q is set
  }
  void thread(unsigned index) {
    if (index == 0) {
      s->release(1);  // the unlock: serves the queue
    } else if (index == 1) {
      (void)w->cancel();  // leaves, or passes the hand-off on
      w.destroy();
      // Ordering: release: pairs with the destroyer's acquire.
      left.store(1, std::memory_order_release);
      rd::wake_all(left);
    } else {
      s->acquire_blocking(1).release();  // locks after the unlock, unlocks
      while (left.load(std::memory_order_acquire) == 0) rd::wait(left, 0);
      s.destroy();  // the last user: destroys it at once
    }
  }
};

}  // namespace

int main() {
  constexpr unsigned long iterations = 300000;  // random search
  int failures = 0;
  failures += rouse_model::expect_pass<three_lockers>("async_mutex.three_lockers", iterations);
  failures += rouse_model::expect_pass<hand_off_to_waker>("async_mutex.hand_off_to_waker", iterations);
  failures += rouse_model::expect_pass<unlock_then_destroy>("async_mutex.unlock_then_destroy", iterations);
  {
    rd::model_fault_scope fault(rd::model_fault::async_semaphore_release_ignores_queued);
    failures += rouse_model::expect_failure<three_lockers>("async_mutex.broken_release_ignores_queued",
                                                           rl::test_result_deadlock, iterations);
  }
  {
    rd::model_fault_scope fault(rd::model_fault::async_semaphore_unlock_rereads_word);
    failures += rouse_model::expect_failure<unlock_then_destroy>("async_mutex.broken_unlock_rereads_word",
                                                                 rl::test_result_access_to_freed_memory, iterations);
  }
  return failures == 0 ? 0 : 1;
}
