// tests/support/outside_wake.hpp — an executor destroyed at once after a
// thread outside it let its task end (the run_loop and thread_pool tests).
//
//   rouse_test::destroy_at_once_after_outside_wake(
//       rouse_test::outside_wake::add_timer, [] { return std::make_unique<run_loop>(); },
//       [](run_loop& l, rouse::async::task<> t) { l.run_until_complete(std::move(t)); });
//
// Each round: a task waits on an event; a thread outside the executor sets
// it, directly (its schedule() wakes the task) or through a timer it adds
// (deadline now: the timer fires at once on the executor); the task ends,
// `run` returns and the executor is destroyed at once, while the outside
// call may still be waking it. The executor's destructor must wait for that
// call: ThreadSanitizer and ASan builds report it if not.
#pragma once

#include <chrono>
#include <memory>
#include <thread>
#include <utility>

#include "rouse/async/event.hpp"
#include "rouse/async/executor.hpp"
#include "rouse/async/task.hpp"

namespace rouse_test {

enum class outside_wake { schedule, add_timer };

// A timer entry that sets an event when it fires.
struct event_timer : rouse::async::timer_entry {
  explicit event_timer(rouse::async::manual_reset_event& e) noexcept : event(&e) {
    deadline = std::chrono::steady_clock::now();
    fire = [](rouse::async::timer_entry* self) noexcept { static_cast<event_timer*>(self)->event->set(); };
  }
  rouse::async::manual_reset_event* event;
};

template <class Make, class Run>
void destroy_at_once_after_outside_wake(outside_wake how, Make make, Run run, int rounds = 200) {
  for (int i = 0; i < rounds; ++i) {
    rouse::async::manual_reset_event ready;
    event_timer timer(ready);
    auto ex = make();
    auto waiter = [](rouse::async::manual_reset_event& e) -> rouse::async::task<> { co_await e.wait(); };
    std::thread outside([&ready, &timer, how, p = ex.get()] {
      if (how == outside_wake::schedule)
        ready.set();
      else
        p->add_timer(timer);
    });
    run(*ex, waiter(ready));
    ex.reset();
    outside.join();
  }
}

}  // namespace rouse_test
