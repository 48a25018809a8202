// tests/support/self_ending.hpp — a coroutine type that is not a rouse task:
// no executor, no environment, and its frame ends wherever it finishes
// (final_suspend never suspends). For tests of rouse awaitables awaited
// from a foreign coroutine, which then resume on the waker's thread.
#pragma once

#include <coroutine>
#include <exception>

namespace rouse_test {

struct self_ending {
  struct promise_type {
    self_ending get_return_object() { return {}; }
    std::suspend_never initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }
  };
};

}  // namespace rouse_test
