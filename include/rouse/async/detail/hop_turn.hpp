// rouse/async/detail/hop_turn.hpp — who resumes a task after the hop of a
// foreign awaitable (task.hpp: affine_awaitable). Internal; it compiles
// without the coroutine half so that tests/model runs it
// (tests/model/async_hop_model.cpp).
//
// The task's await_suspend runs the hop inline (a call: a hop that ends at
// once then leaves nothing on the stack; clang 14 does not compile the
// hop's final transfer as a tail call). The hop ends either during that run
// (at once, or on another thread before the run returned) or after it:
//
//   method          before     after      the caller
//   end (hop)       running    ended      returns false: the inline run resumes the task
//   end (hop)       returned   ended      returns true: resumes the task itself
//   run_returned    running    returned   returns false: the hop resumes it when it ends
//   run_returned    ended      returned   returns true: resumes the task itself
//
// Memory ordering: both exchanges are acq_rel: the result the hop stored
// before end() is published to an inline run that resumes the task (the
// hop's release, the run's acquire); the other way, the run's stores
// before run_returned() reach a hop that resumes the task. Whoever gets
// false touches nothing of the hop after the exchange: the task may run at
// once and destroy it.
#pragma once

#include <cstdint>

#include "rouse/detail/sync_types.hpp"

namespace rouse::async::detail {

class hop_turn {
 public:
  // The hop ended: true when the inline run has returned (the hop resumes
  // the task).
  bool end() noexcept { return turn_.exchange(ended, order()) == returned; }
  // The inline run returned: true when the hop has ended (the run resumes
  // the task).
  bool run_returned() noexcept { return turn_.exchange(returned, order()) == ended; }

 private:
  static constexpr std::uint32_t running = 0;
  static constexpr std::uint32_t returned = 1;
  static constexpr std::uint32_t ended = 2;
  static std::memory_order order() noexcept {
    // BROKEN on purpose (model tests only): relaxed publishes nothing.
    if (::rouse::detail::model_fault_on(::rouse::detail::model_fault::async_hop_turn_relaxed))
      return std::memory_order_relaxed;
    return std::memory_order_acq_rel;
  }

  ::rouse::detail::atomic<std::uint32_t> turn_{running};
};

}  // namespace rouse::async::detail
