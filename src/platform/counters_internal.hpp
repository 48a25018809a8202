// Internal: bump the syscall counters of rouse/platform/counters.hpp.
#pragma once

#include <atomic>
#include <cstdint>

#include "rouse/platform/counters.hpp"

namespace rouse::platform::detail {

#if defined(ROUSE_SYSCALL_COUNTERS)
extern std::atomic<std::uint64_t> wait_calls;
extern std::atomic<std::uint64_t> wake_calls;
// Ordering: relaxed — a statistic, read after the threads that bumped it have
// been joined (which orders it) or read approximately.
inline void count_wait() noexcept { wait_calls.fetch_add(1, std::memory_order_relaxed); }
inline void count_wake() noexcept { wake_calls.fetch_add(1, std::memory_order_relaxed); }
extern std::atomic<std::uint64_t> yield_calls;
inline void count_yield() noexcept { yield_calls.fetch_add(1, std::memory_order_relaxed); }
#else
inline void count_wait() noexcept {}
inline void count_wake() noexcept {}
inline void count_yield() noexcept {}
#endif

}  // namespace rouse::platform::detail
