// Relacy models of rouse::call_once (include/rouse/once.hpp): racing callers
// run the callable exactly once, every caller returns after it completed and
// reads what it wrote (the payload is an rl::var: a read not ordered after
// the write is reported as a race), and no caller sleeps forever.
//
// A broken variant, switched on in the real code (detail::model_fault), that
// the model must catch:
//   broken_waiter_sleeps_unmarked   a waiter sleeps on `running` without
//                                   setting `waiting`; the runner's exchange
//                                   to `done` wakes nobody: a deadlock
#include <cstdint>

#include "model.hpp"
#include "rouse/once.hpp"

namespace {

template <int Threads>
struct racing_callers : rl::test_suite<racing_callers<Threads>, Threads> {
  rouse::once_flag flag;
  rl::var<int> payload;
  rl::var<int> runs;
  void before() {
    payload($) = 0;
    runs($) = 0;
  }
  void thread(unsigned) {
    rouse::call_once(flag, [this] {
      runs($) = runs($) + 1;
      payload($) = 42;
    });
    RL_ASSERT(payload($) == 42);
  }
  void after() { RL_ASSERT(runs($) == 1); }
};

}  // namespace

int main() {
  int failures = 0;
  failures += rouse_model::expect_pass<racing_callers<2>>("once.two_racing_callers");
  failures += rouse_model::expect_pass<racing_callers<3>>("once.three_racing_callers", 200000);
  {
    rouse::detail::model_fault_scope fault(rouse::detail::model_fault::once_waiter_sleeps_unmarked);
    failures +=
        rouse_model::expect_failure<racing_callers<2>>("once.broken_waiter_sleeps_unmarked", rl::test_result_deadlock);
  }
  return failures == 0 ? 0 : 1;
}
