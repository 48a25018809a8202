// rouse/platform/cpu.hpp — spinning and thread identity.
#pragma once

#include <cstdint>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

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
// this process (the kernel tid on Linux). Used by recursive locks and debug
// ownership checks.
std::uint32_t this_thread_id() noexcept;

// How many CPUs this process may run on (its affinity mask), at least 1.
unsigned available_cpus() noexcept;

}  // namespace rouse::platform
