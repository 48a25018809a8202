// tests/support: evidence instead of sleeps.
//
//   rouse_test::eventually([&] { return done.load(); });   // until it holds
//   auto const base = rouse_test::wait_calls();
//   std::thread t([&] { m.lock(); ... });                 // will block
//   rouse_test::until_wait_calls(base + 1);               // it reached its sleep
//
// Neither has a time limit: a wait that never ends is a hang, and CTest's
// timeout reports it as a failure. Polls yield, so the threads being waited
// for get the CPU on a small machine.
// until_wait_calls() needs the syscall counters (rouse::platform::
// syscall_counters_enabled(), on in rouse's own test builds); a wait call is
// counted just before the system call, so the waiter has published whatever
// it sets before sleeping (a waiting bit, a count) but may not be asleep yet.
#pragma once

#include <cstdint>
#include <thread>

#include "rouse/platform/counters.hpp"

namespace rouse_test {

template <class Predicate>
void eventually(Predicate done) {
  while (!done()) std::this_thread::yield();
}

// Wait system calls made so far by the whole process.
inline std::uint64_t wait_calls() { return rouse::platform::syscall_counters().waits; }

// Blocks until the process has made at least `total` wait calls.
inline void until_wait_calls(std::uint64_t total) {
  eventually([&] { return wait_calls() >= total; });
}

}  // namespace rouse_test
