#include "rouse/platform/cpu.hpp"

#include "counters_internal.hpp"

#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#if defined(__linux__)
#include <sys/syscall.h>
#endif

#include <atomic>
#include <thread>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#endif

namespace rouse::platform {

void thread_yield() noexcept {
  detail::count_yield();
  ::sched_yield();
}

namespace {

// The calling thread's id, 0 until it is first asked for. Constant-initialized,
// so reading it is a plain thread-local load (no guard, no TLS wrapper call).
constinit thread_local std::uint32_t cached_thread_id = 0;

// pthread_atfork child handler. It runs in the child on the thread that
// called fork(), the only thread the child has: that thread's cached id is
// the parent's, which the kernel may give to a new thread once the parent's
// thread has exited; forget it so the next call reads the child's own.
void forget_thread_id() noexcept { cached_thread_id = 0; }

[[gnu::cold, gnu::noinline]] std::uint32_t read_thread_id() noexcept {
#if defined(__linux__)
  // Registered once, before any id is cached (a thread-safe static). Should
  // the registration fail (ENOMEM), nothing is cached: each call asks the
  // kernel, and stays right across fork().
  static bool const forgets_on_fork = ::pthread_atfork(nullptr, nullptr, &forget_thread_id) == 0;
  auto const id = static_cast<std::uint32_t>(::syscall(SYS_gettid));
  if (forgets_on_fork) cached_thread_id = id;
  return id;
#else
  // Ids that are never reused: the forking thread's stays unique in the
  // child, whose new threads draw later numbers.
  static std::atomic<std::uint32_t> next{1};
  cached_thread_id = next.fetch_add(1, std::memory_order_relaxed);
  return cached_thread_id;
#endif
}

}  // namespace

std::uint32_t this_thread_id() noexcept {
  // Cached per thread: gettid is a system call.
  std::uint32_t const id = cached_thread_id;
  if (id != 0) [[likely]]
    return id;
  return read_thread_id();
}

namespace {

#if defined(__linux__)
// The affinity mask of thread `tid` (0: the caller); false if unreadable.
bool read_mask(pid_t tid, cpu_set_t& set) noexcept {
  CPU_ZERO(&set);
  return ::sched_getaffinity(tid, sizeof set, &set) == 0;
}
#endif

// How many CPUs the mask of `tid` allows, at least 1 (the hardware's count
// where the mask cannot be read).
unsigned count_cpus([[maybe_unused]] int tid) noexcept {
#if defined(__linux__)
  cpu_set_t set;
  if (read_mask(static_cast<pid_t>(tid), set)) {
    int const n = CPU_COUNT(&set);
    if (n > 0) return static_cast<unsigned>(n);
  }
#endif
  unsigned const n = std::thread::hardware_concurrency();
  return n == 0 ? 1u : n;
}

}  // namespace

unsigned available_cpus() noexcept { return count_cpus(0); }

unsigned process_cpus() noexcept {
  static unsigned const cpus = count_cpus(static_cast<int>(::getpid()));
  return cpus;
}

std::vector<int> allowed_cpu_list() {
  std::vector<int> cpus;
#if defined(__linux__)
  cpu_set_t set;
  if (read_mask(0, set))
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu)
      if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
#endif
  return cpus;
}

bool pin_this_thread([[maybe_unused]] int cpu) noexcept {
#if defined(__linux__)
  if (cpu < 0 || cpu >= CPU_SETSIZE) return false;
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(cpu, &one);
  return ::sched_setaffinity(0, sizeof one, &one) == 0;
#else
  return false;
#endif
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
  if (!read_mask(0, allowed)) return false;
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
