// rouse/platform/counters.hpp — counts of wait, wake and yield system calls.
//
// Built in when rouse is compiled with ROUSE_SYSCALL_COUNTERS (rouse's own
// tests and the `bench` preset; off by default for a library built for
// users). Every wait/wake that reaches the OS (futex backend) or the parking
// table (generic backend and the 1/2/8-byte atomic waits) adds one, and so
// does every yield of a spin (platform::thread_yield). Tests use them to
// prove "nobody waiting costs no system call" and "a deadline that has
// passed gives up at once"; rouse-bench reports them per operation.
//
// The counters are process-wide relaxed atomics bumped only beside a system
// call (which costs ~1 µs on the VMs rouse is measured on), so they do not
// change what they measure.
#pragma once

#include <cstdint>

#include "rouse/config.hpp"

namespace rouse::platform {

struct syscall_counts {
  std::uint64_t waits = 0;  // calls that asked to sleep (FUTEX_WAIT*, futex_waitv, parks)
  std::uint64_t wakes = 0;  // calls that asked to wake (FUTEX_WAKE, requeue, unparks)
  std::uint64_t yields = 0;  // platform::thread_yield() calls (a spin's yield polls)
};

// True when this build counts; when false, syscall_counters() returns zeros.
bool syscall_counters_enabled() noexcept;
syscall_counts syscall_counters() noexcept;

}  // namespace rouse::platform
