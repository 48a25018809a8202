// rouse/async/detail/scope_count.hpp — task_scope's count of running tasks
// and its joiner. Internal; it compiles without the coroutine half so that
// tests/model runs it (tests/model/async_scope_model.cpp).
//
// Word: bit 0 = J (a joiner waits); the rest = T, the tasks running (<< 1).
//
//   method              before          after          effect
//   add (spawn)         any             T + 1          -
//   count_out           T > 1 or !J     T - 1          -
//   count_out           T == 1, J       0              wakes the joiner (the last touch)
//   register_joiner     any             | J            T > 0: wait for the wake
//   (withdraw)          J, T == 0       0              join returns at once
//   (withdraw)          otherwise       unchanged      a spawn came meanwhile: wait
//
// count_out's last-task-with-joiner step is one compare-exchange from
// (T == 1, J) to 0, never a decrement and then a separate clear: after a
// decrement that left (T == 0, J), a task spawned from outside and ending at
// once could take that state's wake first, and the joiner, woken, may
// destroy the scope while the first count_out still had its clear to make
// (the model's broken variant, async_scope_count_out_two_steps).
//
// Memory ordering: count_out is acq_rel (a task's effects reach the joiner
// that reads 0; its acquire takes the joiner's waker published by
// register_joiner's release); register_joiner's fetch_or is acq_rel (it
// publishes the waker, and sees the completions so far). A joiner that
// reads 0 with an acquire load sees every counted-out task's effects.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>

#include "rouse/detail/diagnostics.hpp"
#include "rouse/detail/sync_types.hpp"
#include "rouse/detail/waker.hpp"

namespace rouse::async::detail {

class scope_count {
 public:
  static constexpr std::size_t joiner_bit = 1;
  static constexpr std::size_t one_task = 2;

  // A task is spawned: counted in before it can run (and count out).
  void add() noexcept {
    // Ordering: relaxed: the count's decrement is what a joiner synchronizes
    // with; the spawn itself reaches the task through its schedule.
    word_.fetch_add(one_task, std::memory_order_relaxed);
  }

  // A task ended. After it, nothing of *this is touched: the last task's
  // count_out wakes a joiner that may destroy the scope at once.
  void count_out() noexcept {
    if (::rouse::detail::model_fault_on(::rouse::detail::model_fault::async_scope_count_out_two_steps)) {
      // BROKEN on purpose (model tests only): a decrement, then the clear.
      if (word_.fetch_sub(one_task, std::memory_order_acq_rel) != (one_task | joiner_bit)) return;
      std::size_t expected = joiner_bit;
      if (!word_.compare_exchange_strong(expected, 0, std::memory_order_acq_rel, std::memory_order_relaxed)) return;
      ::rouse::detail::waker w = std::move(joiner_);
      std::move(w).wake();
      return;
    }
    std::size_t c = word_.load(std::memory_order_relaxed);
    for (;;) {
      bool const last_with_joiner = c == (one_task | joiner_bit);
      // (T == 1, J) -> 0, else T - 1. Ordering: acq_rel: release: the task's
      // effects reach the joiner; acquire: the joiner's waker (its fetch_or).
      if (word_.compare_exchange_weak(c, last_with_joiner ? 0 : c - one_task, std::memory_order_acq_rel,
                                      std::memory_order_relaxed)) {
        if (!last_with_joiner) return;
        break;
      }
    }
    // The joiner waits for this wake: the scope lives until it.
    ::rouse::detail::waker w = std::move(joiner_);
    std::move(w).wake();  // the last touch
  }

  // A join: true when it must wait for `w`'s wake (tasks run), false when
  // none ran (nothing registered). One joiner at a time.
  bool register_joiner(::rouse::detail::waker w) noexcept {
    // Ordering: relaxed; a diagnosis (the joiner's bit is ours to set).
    ROUSE_CHECK_USAGE((word_.load(std::memory_order_relaxed) & joiner_bit) == 0, "rouse::async::task_scope",
                      "join() while another join() of the same scope waits");
    joiner_ = std::move(w);
    // Ordering: acq_rel: publishes the waker; sees the completions so far.
    std::size_t const before = word_.fetch_or(joiner_bit, std::memory_order_acq_rel);
    if ((before >> 1) != 0) return true;
    // Nothing runs: withdraw, unless a task was spawned meanwhile (then its
    // completion will wake us).
    std::size_t expected = joiner_bit;
    if (!word_.compare_exchange_strong(expected, 0, std::memory_order_acq_rel, std::memory_order_relaxed))
      return true;
    joiner_.reset();
    return false;
  }

  // Every task spawned so far has counted out (the joiner's check).
  [[nodiscard]] bool idle() const noexcept {
    // Ordering: acquire: pairs with count_out's release.
    return word_.load(std::memory_order_acquire) == 0;
  }
  // Tasks counted in and not yet out (a snapshot).
  [[nodiscard]] std::size_t tasks() const noexcept { return word_.load(std::memory_order_relaxed) >> 1; }

 private:
  ::rouse::detail::atomic<std::size_t> word_{0};
  ::rouse::detail::waker joiner_;  // the joiner's, from its registration until the wake
};

}  // namespace rouse::async::detail
