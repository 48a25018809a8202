// Relacy model of the await of a join_handle (rouse/async/spawn.hpp:
// detail::completion's register_joiner / withdraw_joiner / complete and
// join_handle::awaiter's gate and stop callback), copied: completion keeps
// a std::atomic (spawn.hpp is not compiled against Relacy), so this file
// carries the same orders; a change there must be carried over here.
//
// The contract checked: the awaiting coroutine resumes exactly once; when
// it resumes normally the task's result is there (written by the task
// before complete(), read after: no data race), when it resumes stopped
// nobody calls the registered waker; the completion never reads the
// stored waker after a stop took it back (its reset is a plain write).
//
// Threads: the awaiter (await_suspend: register the joiner, then the stop
// callback becomes runnable, then its own count of the gate; a resume it
// makes itself is its "return h"), the task (writes its result, then
// complete()), and the stopper (runs the stop callback once it can run,
// as request_stop() would: the callback slot's lock models stop_slot's
// reset waiting for a run on another thread).
//
// Suites:
//   join_races_stop     all three at once
// Broken variant (switched in this copy):
//   withdraw_by_store   withdraw_joiner reads joiner and stores running
//       instead of a compare-exchange: a completion in between wakes the
//       waker the stop then resets (a data race on the stored waker)
#include <cstdint>

#include "model.hpp"

namespace {

namespace d = rouse::detail;

constexpr std::uint32_t running = 0;
constexpr std::uint32_t done = 1;
constexpr std::uint32_t joiner = 2;

template <bool WithdrawByStore>
struct join_suite : rl::test_suite<join_suite<WithdrawByStore>, 3> {
  // detail::completion
  d::atomic<std::uint32_t> state;
  rl::var<int> stored_waker;  // joiner_: 1 while it names the awaiter
  // the task's result (spawn_state's value)
  rl::var<int> result;
  // join_handle::awaiter
  d::atomic<std::uint32_t> gate;
  rl::var<int> stopped;
  // the stop callback's slot: 0 not yet runnable, 1 runnable, 2 running,
  // 3 finished, 4 deregistered before it ran
  d::atomic<int> slot;
  // how the coroutine resumed (0 not yet, 1 normally, 2 stopped); resumes counted
  d::atomic<int> resumes;
  rl::var<int> how;

  void before() {
    state.store(running, std::memory_order_relaxed);
    stored_waker($) = 0;
    result($) = 0;
    gate.store(2, std::memory_order_relaxed);
    stopped($) = 0;
    slot.store(0, std::memory_order_relaxed);
    resumes.store(0, std::memory_order_relaxed);
    how($) = 0;
  }

  void after() {
    RL_ASSERT(resumes.load(std::memory_order_relaxed) == 1);
    RL_ASSERT(how($) != 0);
  }

  // The coroutine runs on: await_resume's stop_.reset(), then the result.
  void resume(bool on_stopper) {
    resumes.fetch_add(1, std::memory_order_relaxed);
    if (!on_stopper) reset_stop_slot();
    if (stopped($)) {
      how($) = 2;
    } else {
      RL_ASSERT(result($) == 42);
      how($) = 1;
    }
  }
  // stop_slot::reset(): deregisters, or waits for a run on another thread.
  void reset_stop_slot() {
    int s = slot.load(std::memory_order_acquire);
    for (;;) {
      if (s == 3 || s == 4) return;
      if (s == 2) {
        d::yield();
        s = slot.load(std::memory_order_acquire);
        continue;
      }
      if (slot.compare_exchange_weak(s, 4, std::memory_order_acq_rel, std::memory_order_acquire)) return;
    }
  }

  // awaiter::count_down: the last count resumes.
  void count_down(bool on_stopper) {
    if (gate.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    resume(on_stopper);
  }

  // completion::withdraw_joiner
  bool withdraw_joiner() {
    if (WithdrawByStore) {
      if (state.load(std::memory_order_acquire) != joiner) return false;
      state.store(running, std::memory_order_relaxed);
    } else {
      std::uint32_t expected = joiner;
      if (!state.compare_exchange_strong(expected, running, std::memory_order_acquire, std::memory_order_acquire))
        return false;
    }
    stored_waker($) = 0;  // joiner_.reset()
    return true;
  }

  void thread(unsigned index) {
    if (index == 0) {
      // await_suspend
      stored_waker($) = 1;  // joiner_ = the awaiter's waker
      std::uint32_t expected = running;
      if (!state.compare_exchange_strong(expected, joiner, std::memory_order_acq_rel, std::memory_order_acquire)) {
        stored_waker($) = 0;
        resumes.fetch_add(1, std::memory_order_relaxed);  // done meanwhile: return h
        RL_ASSERT(result($) == 42);
        how($) = 1;
        int s = 0;
        slot.compare_exchange_strong(s, 4, std::memory_order_acq_rel);  // never registered
        return;
      }
      slot.store(1, std::memory_order_release);  // stop_.emplace: the callback may run now
      if (gate.fetch_sub(1, std::memory_order_acq_rel) != 1) return;  // noop_coroutine
      resume(false);  // return h, or stopped_here(h)
    } else if (index == 1) {
      // the task ends: its result, then complete()
      result($) = 42;
      if (state.exchange(done, std::memory_order_acq_rel) == joiner) {
        RL_ASSERT(stored_waker($) == 1);  // the waker is taken and woken
        stored_waker($) = 0;
        count_down(false);
      }
    } else {
      // request_stop() runs the callback once it is registered (or never,
      // when the await was over and deregistered it first)
      int s = slot.load(std::memory_order_acquire);
      while (s == 0) {
        d::yield();
        s = slot.load(std::memory_order_acquire);
      }
      if (s != 1 || !slot.compare_exchange_strong(s, 2, std::memory_order_acq_rel)) return;
      // on_stop
      bool const withdrew = withdraw_joiner();
      bool last = false;
      if (withdrew) {
        stopped($) = 1;
        last = gate.fetch_sub(1, std::memory_order_acq_rel) == 1;
      }
      slot.store(3, std::memory_order_release);  // the run ends
      if (last) resume(true);
    }
  }
};

}  // namespace

int main() {
  int failures = 0;
  failures += rouse_model::expect_pass<join_suite<false>>("async_join.join_races_stop", 0);
  failures += rouse_model::expect_failure<join_suite<true>>("async_join.withdraw_by_store", rl::test_result_data_race, 0);
  return failures == 0 ? 0 : 1;
}
