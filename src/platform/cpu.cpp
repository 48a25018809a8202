#include "rouse/platform/cpu.hpp"

#include <sched.h>
#include <unistd.h>

#if defined(__linux__)
#include <sys/syscall.h>
#endif

#include <thread>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#endif

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

unsigned process_cpus() noexcept {
  static unsigned const cpus = [] {
#if defined(__linux__)
    cpu_set_t set;
    if (::sched_getaffinity(::getpid(), sizeof set, &set) == 0) {
      int const n = CPU_COUNT(&set);
      if (n > 0) return static_cast<unsigned>(n);
    }
#endif
    unsigned const n = std::thread::hardware_concurrency();
    return n == 0 ? 1u : n;
  }();
  return cpus;
}

bool has_prefetchw() noexcept {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  static bool const yes = [] {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    return __get_cpuid(0x80000001u, &eax, &ebx, &ecx, &edx) != 0 && ((ecx >> 8) & 1u) != 0;
  }();
  return yes;
#else
  return false;
#endif
}

int current_cpu() noexcept {
#if defined(__linux__)
  return ::sched_getcpu();
#else
  return -1;
#endif
}

bool move_off_cpu(int cpu) noexcept {
#if defined(__linux__)
  if (cpu < 0 || cpu >= CPU_SETSIZE) return false;
  cpu_set_t allowed;
  if (::sched_getaffinity(0, sizeof allowed, &allowed) != 0) return false;
  if (!CPU_ISSET(cpu, &allowed) || CPU_COUNT(&allowed) < 2) return false;
  cpu_set_t elsewhere = allowed;
  CPU_CLR(cpu, &elsewhere);
  if (::sched_setaffinity(0, sizeof elsewhere, &elsewhere) != 0) return false;
  // The restore cannot fail where the narrowing succeeded (same thread, a
  // superset of a mask just accepted); if it did, the thread would stay
  // off `cpu`, which is still a valid placement.
  (void)::sched_setaffinity(0, sizeof allowed, &allowed);
  return true;
#else
  (void)cpu;
  return false;
#endif
}

}  // namespace rouse::platform
