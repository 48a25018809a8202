#include "rouse/platform/cpu.hpp"

#include <sched.h>
#include <unistd.h>

#if defined(__linux__)
#include <sys/syscall.h>
#endif

#include <thread>

namespace rouse::platform {

void thread_yield() noexcept { ::sched_yield(); }

std::uint32_t this_thread_id() noexcept {
  // Cached per thread: gettid is a system call.
  thread_local std::uint32_t const id = [] {
#if defined(__linux__)
    return static_cast<std::uint32_t>(::syscall(SYS_gettid));
#else
    static std::atomic<std::uint32_t> next{1};
    return next.fetch_add(1, std::memory_order_relaxed);
#endif
  }();
  return id;
}

unsigned available_cpus() noexcept {
#if defined(__linux__)
  cpu_set_t set;
  if (::sched_getaffinity(0, sizeof set, &set) == 0) {
    int const n = CPU_COUNT(&set);
    if (n > 0) return static_cast<unsigned>(n);
  }
#endif
  unsigned const n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : n;
}

}  // namespace rouse::platform
