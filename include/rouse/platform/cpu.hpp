// rouse/platform/cpu.hpp — spinning and thread identity.
#pragma once

#include <cstdint>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "rouse/config.hpp"

namespace rouse::platform {

// One spin-wait hint (x86 `pause`, Arm `yield`). Tells the core we are in a
// spin loop: saves power and lets a hyper-thread sibling run.
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__) || defined(__arm__)
  asm volatile("yield" ::: "memory");
#else
  asm volatile("" ::: "memory");
#endif
}

// Gives the rest of this thread's time slice away (sched_yield).
void thread_yield() noexcept;

// A small non-zero id for the calling thread, unique among live threads of
// this process (the kernel tid on Linux). Used by recursive locks. Cached in
// a thread_local (the fast path is one load); in a child made by fork() the
// forking thread's cache is dropped (a pthread_atfork child handler), so the
// child's thread reports its own tid, never the parent's, which the kernel
// may give to another thread once the parent's has exited. Not refreshed
// where no fork handlers run (a raw clone(), _Fork()).
std::uint32_t this_thread_id() noexcept;

// How many CPUs this process may run on (its affinity mask), at least 1.
// On Linux the mask read is the calling thread's (sched_getaffinity(0)).
unsigned available_cpus() noexcept;

// The CPUs the calling thread may run on (its affinity mask), in ascending
// order; empty where that cannot be told (then nothing should be pinned).
std::vector<int> allowed_cpu_list();

// Pins the calling thread to `cpu` (its affinity mask becomes that one CPU).
// Best effort: false, and the mask unchanged, where that is not possible
// (a CPU outside the process's cpuset, a platform without affinity);
// a negative `cpu` does nothing and returns false.
bool pin_this_thread(int cpu) noexcept;

// The same for the process as a whole: the mask of its main thread (the
// thread whose id is the process id), read once, on the first call, and
// cached; at least 1. For heuristics on the hot side of a slow path (how
// long to spin), where a system call per use would cost more than the
// answer is worth and a pinned calling thread would mislead.
unsigned process_cpus() noexcept;

// Whether this x86-64 CPU has PREFETCHW (a prefetch that takes the line
// exclusive, ahead of a write: every x86-64 AMD part, Intel since
// Broadwell; CPUID 0x80000001 ECX bit 8), read once and cached. False on
// other architectures.
bool has_prefetchw() noexcept;

// The CPU the calling thread is running on, or -1 where that cannot be
// told. A hint: the thread may have moved by the time it is read. Cheap on
// Linux with glibc >= 2.35 (read from the thread's rseq area, no system call).
int current_cpu() noexcept;

// Moves the calling thread off `cpu` if its affinity mask allows another
// CPU, and leaves the mask as it was: sets the mask without `cpu` (the
// kernel migrates the thread at once), then restores it (which does not
// move the thread back). Three system calls. True if the thread was moved.
// A mask set on this thread by another thread between the two calls is
// overwritten by the restore.
// For a thread that the scheduler keeps placing on the CPU of the thread it
// has to run beside (rouse::pool's workers, see docs/pool.md).
bool move_off_cpu(int cpu) noexcept;

}  // namespace rouse::platform
