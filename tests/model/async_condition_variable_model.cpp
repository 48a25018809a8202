// Relacy models of rouse/async/condition_variable.hpp's wait / notify
// handshake with rouse::async::mutex. A wait takes its tag (the notify
// count) with the mutex held; its re-check after registering (B2) is ready
// once the count moved, so a notify made between the mutex's release and
// the registration is never lost. Two forms, as the header has them:
//   a thread's wait     tag, unlock, wait on the list (wait_blocking), relock
//   a coroutine's wait  tag, register on the list, and only if it sleeps
//                       release the mutex (its last act); woken, relock.
//                       Taken here by hand, without a coroutine: the wait is
//                       a list_wait woken through a flag_waker
//                       (async_model.hpp), as the awaitable's is
// Every waiter waits for a flag set under the mutex, in std's loop
// (`while (!ready) wait`), and checks it owns the mutex afterwards (the
// flag is a plain variable: a read without the mutex is a reported race).
//
//   thread_wait_vs_notify_one   a thread waits; a notifier sets the flag
//                               under the mutex and calls notify_one after
//                               unlocking: the waiter wakes (no lost notify)
//   task_wait_vs_notify_one     the same with the coroutine form's order
//   two_waiters_notify_all      a thread and a coroutine-form waiter; one
//                               notify_all wakes both
//   chosen_waiter_leaves        of two sleeping coroutine-form waits, the
//                               older gives up (its frame destroyed:
//                               cancel()) while notify_one may choose it: a
//                               notification it was handed goes on to the
//                               other (pass_on), which wakes
//
// A lost notify shows as a deadlock (a waiter asleep for ever).
//
// Broken variants (detail::model_fault) the model must catch:
//   async_cv_tag_after_unlock        a thread's wait reads its tag after it
//                                    released the mutex: the notify made in
//                                    between is missed (deadlock)
//   async_cv_notify_relaxed          the notify count is a relaxed RMW, not
//                                    (A1): the waiter's re-check and the
//                                    notify's look at the list both miss
//                                    (deadlock)
//   async_cancel_drops_notification  a cancelled waiter that was chosen does
//                                    not pass the notification on: in
//                                    chosen_waiter_leaves the other waiter
//                                    sleeps for ever (deadlock)
#include <cstdint>

#include "async_model.hpp"
#include "rouse/async/condition_variable.hpp"
#include "rouse/async/mutex.hpp"

namespace rouse::async::detail {
struct cv_model_access {
  static std::uint32_t sequence(const condition_variable& cv) noexcept { return cv.sequence(); }
};
}  // namespace rouse::async::detail

namespace {

namespace rd = rouse::detail;
namespace ra = rouse::async;
using rouse_model::flag_waker;
using rouse_model::slot;
using wait_t = ra::list_wait<ra::condition_variable>;
using start = wait_t::start_result;

// The coroutine form's steps for one wait, g owning the mutex before and
// after: register, re-check, release the mutex only if it sleeps, relock.
void task_form_wait(ra::condition_variable& cv, ra::mutex& m, ra::mutex::guard& g, flag_waker& f) {
  f.woken.store(0, std::memory_order_relaxed);
  slot<wait_t> w;
  w.make(cv, ra::detail::cv_model_access::sequence(cv), f.make());
  start r = start::withdrew;
  if (w->try_acquire() == ra::check_result::not_ready) r = w->start();
  // suspended: it sleeps. claimed (a notify chose it during the re-check):
  // its wake is coming; the guard's arm says whether it came first (the
  // coroutine goes on at once, the mutex still held) or the wait sleeps
  // until it comes.
  bool const sleeps = r == start::suspended || (r == start::claimed && f.count() == 0);
  if (sleeps) g.unlock();  // the last act of a suspension that sleeps
  if (r != start::withdrew) f.sleep();
  w.destroy();
  if (sleeps) g = m.lock_blocking();
}

// A mutex, a cv and the flag set under the mutex; a waker for one
// coroutine-form waiter.
struct cv_fixture {
  ra::mutex m;
  ra::condition_variable cv;
  flag_waker f;
  rl::var<int> ready;

  // A waiter in std's loop, in the thread's form or the coroutine form's.
  void wait_for_flag(bool task_form) {
    ra::mutex::guard g = m.lock_blocking();
    while (ready($) == 0) {
      if (task_form)
        task_form_wait(cv, m, g, f);
      else
        cv.wait_blocking(g);
    }
    RL_ASSERT(g.owns_lock());
  }
  // The notifier: sets the flag under the mutex, notifies after the unlock.
  void set_and_notify(bool all) {
    {
      ra::mutex::guard g = m.lock_blocking();
      ready($) = 1;
    }
    if (all)
      cv.notify_all();
    else
      cv.notify_one();
  }
};

template <bool TaskForm>
struct wait_vs_notify_one : rl::test_suite<wait_vs_notify_one<TaskForm>, 2>, cv_fixture {
  void before() { ready($) = 0; }
  void thread(unsigned index) {
    if (index == 0)
      wait_for_flag(TaskForm);
    else
      set_and_notify(false);
  }
  void after() {
    RL_ASSERT(m.try_lock());
    m.unlock();
  }
};
using thread_wait_vs_notify_one = wait_vs_notify_one<false>;
using task_wait_vs_notify_one = wait_vs_notify_one<true>;

struct two_waiters_notify_all : rl::test_suite<two_waiters_notify_all, 3>, cv_fixture {
  void before() { ready($) = 0; }
  void thread(unsigned index) {
    if (index < 2)
      wait_for_flag(index == 1);
    else
      set_and_notify(true);
  }
  void after() {
    RL_ASSERT(m.try_lock());
    m.unlock();
  }
};

// Two coroutine-form waits are registered (and asleep, their mutex
// released) before the threads run; the older one's frame is destroyed
// while notify_one runs, and the other waits for its wake.
struct chosen_waiter_leaves : rl::test_suite<chosen_waiter_leaves, 3>, cv_fixture {
  flag_waker fs[2];
  slot<wait_t> w[2];
  void before() {
    ready($) = 0;
    for (int i = 0; i < 2; ++i) {
      fs[i].woken.store(0, std::memory_order_relaxed);
      w[i].make(cv, ra::detail::cv_model_access::sequence(cv), fs[i].make());
      RL_ASSERT(w[i]->start() == start::suspended);
    }
  }
  void thread(unsigned index) {
    if (index == 0) {
      (void)w[0]->cancel();  // leaves; a notification it was handed goes on
      w[0].destroy();
    } else if (index == 1) {
      fs[1].sleep();  // the notify, directly or passed on
      w[1].destroy();
      ra::mutex::guard g = m.lock_blocking();
      RL_ASSERT(ready($) == 1);  // woken only by the notify after the flag
    } else {
      set_and_notify(false);
    }
  }
  void after() {
    RL_ASSERT(m.try_lock());
    m.unlock();
  }
};

}  // namespace

int main() {
  constexpr unsigned long iterations = 300000;  // random search
  int failures = 0;
  failures += rouse_model::expect_pass<thread_wait_vs_notify_one>("async_cv.thread_wait_vs_notify_one", iterations);
  failures += rouse_model::expect_pass<task_wait_vs_notify_one>("async_cv.task_wait_vs_notify_one", iterations);
  failures += rouse_model::expect_pass<two_waiters_notify_all>("async_cv.two_waiters_notify_all", iterations);
  failures += rouse_model::expect_pass<chosen_waiter_leaves>("async_cv.chosen_waiter_leaves", iterations);
  {
    rd::model_fault_scope fault(rd::model_fault::async_cv_tag_after_unlock);
    failures += rouse_model::expect_failure<thread_wait_vs_notify_one>("async_cv.broken_tag_after_unlock",
                                                                       rl::test_result_deadlock, iterations);
  }
  {
    rd::model_fault_scope fault(rd::model_fault::async_cv_notify_relaxed);
    failures += rouse_model::expect_failure<thread_wait_vs_notify_one>("async_cv.broken_notify_relaxed",
                                                                       rl::test_result_deadlock, iterations);
  }
  {
    rd::model_fault_scope fault(rd::model_fault::async_cancel_drops_notification);
    failures += rouse_model::expect_failure<chosen_waiter_leaves>("async_cv.broken_cancel_drops_notification",
                                                                  rl::test_result_deadlock, iterations);
  }
  return failures == 0 ? 0 : 1;
}
