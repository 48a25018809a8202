// Relacy model of the hop's turn (rouse/async/detail/hop_turn.hpp): who
// resumes a task after the hop of a foreign awaitable, the inline run of
// the task's await_suspend or the hop's end. The hop (its turn and the
// result it stores) lives in raw storage that whoever resumes the task
// destroys at once, as the task does when it runs on (~affine_awaitable).
//
//   ends_elsewhere    the hop suspended in the foreign awaitable and ends on
//                     another thread, racing the inline run's return: the
//                     task is resumed exactly once, seeing the result
//   ends_inline       the hop ends during the inline run: the run resumes
//                     the task, the hop does not
//
// A task resumed twice shows as a data race on the resumption count (or an
// assertion), one never resumed as an assertion, a result read without the
// hop's publication as a data race, a touch of the hop after it was
// destroyed as an access to freed memory.
//
// Broken variant (detail::model_fault) the model must catch:
//   async_hop_turn_relaxed   both exchanges relaxed: an inline run that
//                            resumes the task reads the result the hop
//                            stored on another thread unordered (data race)
#include "async_model.hpp"
#include "rouse/async/detail/hop_turn.hpp"

namespace {

namespace rd = rouse::detail;
using rouse::async::detail::hop_turn;
using rouse_model::slot;

struct hop_frame {
  hop_turn turn;
  rl::var<int> result;
};

// The hop, and what the task sees when it runs on.
struct hop_world {
  slot<hop_frame> hop;
  rl::var<int> resumed;
  rl::var<int> seen;

  void make() {
    hop.make();
    hop->result($) = 0;
    resumed($) = 0;
    seen($) = 0;
  }
  // The task runs on: takes the result, and destroys the hop.
  void resume_task() {
    seen($) = hop->result($);
    resumed($) = resumed($) + 1;
    hop.destroy();
  }
  void check(int result) {
    RL_ASSERT(resumed($) == 1);
    RL_ASSERT(seen($) == result);
  }
};

struct ends_elsewhere : rl::test_suite<ends_elsewhere, 2> {
  hop_world w;

  void before() { w.make(); }
  void thread(unsigned index) {
    if (index == 0) {
      // The inline run returns (the hop is suspended in the foreign awaitable).
      if (w.hop->turn.run_returned()) w.resume_task();
    } else {
      // The foreign awaitable completes on this thread: the hop stores the
      // result and ends.
      w.hop->result($) = 42;
      if (w.hop->turn.end()) w.resume_task();
    }
  }
  void after() { w.check(42); }
};

struct ends_inline : rl::test_suite<ends_inline, 2> {
  hop_world w;
  rd::atomic<int> bystander{0};

  void before() { w.make(); }
  void thread(unsigned index) {
    if (index == 0) {
      w.hop->result($) = 7;
      bool const hop_resumes = w.hop->turn.end();  // the foreign awaitable completed at once
      RL_ASSERT(!hop_resumes);
      if (w.hop->turn.run_returned()) w.resume_task();
    } else {
      bystander.store(1, std::memory_order_relaxed);  // another thread, touching nothing of the hop
    }
  }
  void after() { w.check(7); }
};

}  // namespace

int main() {
  constexpr unsigned long iterations = 200000;  // random search
  int failures = 0;
  failures += rouse_model::expect_pass<ends_elsewhere>("async_hop.ends_elsewhere", iterations);
  failures += rouse_model::expect_pass<ends_inline>("async_hop.ends_inline", iterations);
  {
    rd::model_fault_scope fault(rd::model_fault::async_hop_turn_relaxed);
    failures += rouse_model::expect_failure<ends_elsewhere>("async_hop.broken_turn_relaxed",
                                                            rl::test_result_data_race, iterations);
  }
  return failures == 0 ? 0 : 1;
}
