// rouse/platform/fence.hpp: membarrier(2) on Linux, full fences elsewhere.
#include "rouse/platform/fence.hpp"

#if defined(__linux__)
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace rouse::platform {
namespace {

bool register_membarrier() noexcept {
#if defined(__linux__) && defined(SYS_membarrier)
  long const commands = ::syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
  if (commands < 0 || (commands & MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0) return false;
  return ::syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
#else
  return false;
#endif
}

}  // namespace

// Dynamic initialization before main; readers that run earlier see the
// zero-initialized `false` and use full fences, which is always correct.
extern const bool asymmetric_fence_supported = register_membarrier();

void asymmetric_heavy_fence() noexcept {
  // The caller's own ordering: membarrier is a full barrier for the calling
  // thread too, but say so explicitly (it is cheap beside the system call).
  std::atomic_thread_fence(std::memory_order_seq_cst);
#if defined(__linux__) && defined(SYS_membarrier)
  if (asymmetric_fence_supported) {
    // Cannot fail once registered; if it ever did, the light side would be
    // unprotected, so fail loudly rather than lose wake-ups.
    if (::syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) != 0) __builtin_trap();
  }
#endif
  std::atomic_thread_fence(std::memory_order_seq_cst);
}

}  // namespace rouse::platform
