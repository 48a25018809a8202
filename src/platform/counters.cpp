#include "counters_internal.hpp"

namespace rouse::platform {

#if defined(ROUSE_SYSCALL_COUNTERS)
namespace detail {
std::atomic<std::uint64_t> wait_calls{0};
std::atomic<std::uint64_t> wake_calls{0};
std::atomic<std::uint64_t> yield_calls{0};
}  // namespace detail
bool syscall_counters_enabled() noexcept { return true; }
syscall_counts syscall_counters() noexcept {
  return {detail::wait_calls.load(std::memory_order_relaxed), detail::wake_calls.load(std::memory_order_relaxed),
          detail::yield_calls.load(std::memory_order_relaxed)};
}
#else
bool syscall_counters_enabled() noexcept { return false; }
syscall_counts syscall_counters() noexcept { return {}; }
#endif

}  // namespace rouse::platform
