// Relacy model of task_scope's count and join (rouse/async/detail/
// scope_count.hpp): tasks counting out against a joiner, and a task spawned
// from outside while the join waits. The scope's count lives in raw storage
// the joiner destroys as soon as a join returned with nothing spawned after
// it, as a program may (every task it spawned has counted out), so a touch
// of the count after the step that lets the joiner go is reported.
//
//   two_tasks_one_join       two tasks count out while a join registers:
//                            the join returns exactly when both are out
//   spawn_during_join        a task counts out while an outside thread
//                            spawns one more (which ends at once) during
//                            the join; the joiner then joins again, after
//                            that spawn, and destroys the scope
//
// A lost wake shows as a deadlock, a join that returns early as an
// assertion, a late touch of the destroyed count as an access to freed
// memory.
//
// Broken variant (detail::model_fault) the model must catch:
//   async_scope_count_out_two_steps   the last task's count_out decrements,
//                                     then clears the joiner bit in a second
//                                     step: in spawn_during_join the spawned
//                                     task's count_out takes the wake first,
//                                     the joiner destroys the scope, and the
//                                     second step touches freed memory
#include <cstdint>

#include "async_model.hpp"
#include "rouse/async/detail/scope_count.hpp"

namespace {

namespace rd = rouse::detail;
using rouse::async::detail::scope_count;
using rouse_model::flag_waker;
using rouse_model::slot;

// A join: register, and sleep on the flag when it must wait.
void join(scope_count& s, flag_waker& f) {
  if (s.idle()) return;
  if (s.register_joiner(f.make())) f.sleep();
}

struct two_tasks_one_join : rl::test_suite<two_tasks_one_join, 3> {
  slot<scope_count> s;
  flag_waker f;
  rl::var<int> done[2];

  void before() {
    s.make();
    s->add();
    s->add();
    done[0]($) = 0;
    done[1]($) = 0;
  }
  void thread(unsigned index) {
    if (index < 2) {
      done[index]($) = 1;  // the task's effect, before it counts out
      s->count_out();
    } else {
      join(*s, f);
      RL_ASSERT(done[0]($) == 1 && done[1]($) == 1);  // every effect seen: no early return
      s.destroy();
    }
  }
};

struct spawn_during_join : rl::test_suite<spawn_during_join, 3> {
  slot<scope_count> s;
  flag_waker first;
  flag_waker second;
  rd::atomic<std::uint32_t> spawned{0};

  void before() {
    s.make();
    s->add();  // task A, spawned before the join
    spawned.store(0, std::memory_order_relaxed);
  }
  void thread(unsigned index) {
    if (index == 0) {
      s->count_out();  // A ends
    } else if (index == 1) {
      s->add();  // B, spawned from outside while the join may wait
      // Ordering: release: the spawn before the joiner's second join.
      spawned.store(1, std::memory_order_release);
      rd::wake_all(spawned);
      s->count_out();  // B ends at once
    } else {
      join(*s, first);
      while (spawned.load(std::memory_order_acquire) == 0) rd::wait(spawned, 0);
      join(*s, second);  // after the last spawn: every task is out when it returns
      RL_ASSERT(s->tasks() == 0);
      s.destroy();
    }
  }
};

}  // namespace

int main() {
  constexpr unsigned long iterations = 300000;  // random search
  int failures = 0;
  failures += rouse_model::expect_pass<two_tasks_one_join>("async_scope.two_tasks_one_join", iterations);
  failures += rouse_model::expect_pass<spawn_during_join>("async_scope.spawn_during_join", iterations);
  {
    rd::model_fault_scope fault(rd::model_fault::async_scope_count_out_two_steps);
    failures += rouse_model::expect_failure<spawn_during_join>("async_scope.broken_count_out_two_steps",
                                                               rl::test_result_access_to_freed_memory, iterations);
  }
  return failures == 0 ? 0 : 1;
}
