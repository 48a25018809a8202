// wait_on (rouse/io/wait_on.hpp): the reactor's ring carries the wait
// (rouse/async/wait_on.hpp's driver); where it cannot, the helper thread
// sleeps in the kernel's futex wait. With the futex wait backend that is
// rouse's own two-word wait (futex_waitv); with the generic backend, whose
// wakes are not kernel futex wakes, it is made here.
#include "rouse/io/wait_on.hpp"

#include "rouse/config.hpp"

#if ROUSE_CONFIG_WAIT_BACKEND_GENERIC
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#endif

namespace rouse::io::detail {

#if ROUSE_CONFIG_WAIT_BACKEND_GENERIC
namespace {
using word_type = async::detail::word_wait::word_type;

// futex_waitv(2)'s entry (Linux 5.16).
struct waitv_entry {
  std::uint64_t val;
  std::uint64_t uaddr;
  std::uint32_t flags;
  std::uint32_t reserved;
};
#if !defined(SYS_futex_waitv)
constexpr long sys_futex_waitv = 449;
#else
constexpr long sys_futex_waitv = SYS_futex_waitv;
#endif
constexpr std::uint32_t futex2_size_u32 = 0x02;
constexpr std::uint32_t futex2_private = 128;

// 0: the word was woken or changed, 1: the stop word; either spuriously.
// The word is the last entry: futex_waitv(2) reports the last entry it was
// woken through, so a wake of the word taken together with the stop's is
// reported as the word's (src/async/word_wait.cpp).
int wait_pair_kernel(const word_type& word, std::uint32_t value, const word_type& stop) noexcept {
  waitv_entry v[2] = {
      {0, reinterpret_cast<std::uintptr_t>(&stop), futex2_size_u32 | futex2_private, 0},
      {value, reinterpret_cast<std::uintptr_t>(&word), futex2_size_u32 | futex2_private, 0},
  };
  long const r = ::syscall(sys_futex_waitv, v, 2u, 0u, nullptr, CLOCK_MONOTONIC);
  if (r >= 0) return r == 0 ? 1 : 0;
  if (errno != ENOSYS) return stop.load(std::memory_order_acquire) != 0 ? 1 : 0;  // EAGAIN, EINTR: re-check
  // No futex_waitv (before 5.16): sleep on the word in 1 ms slices and look
  // at the stop word between them.
  timespec const slice{0, 1000000};
  for (;;) {
    if (stop.load(std::memory_order_acquire) != 0) return 1;
    long const w = ::syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, value, &slice, nullptr, 0);
    if (w == 0 || errno == EAGAIN) return 0;
  }
}

void wake_stop_kernel(const word_type& stop) noexcept {
  (void)::syscall(SYS_futex, &stop, FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
}

void wake_one_kernel(const word_type& word) noexcept {
  (void)::syscall(SYS_futex, &word, FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
}

constexpr async::detail::word_wait::fallback_ops kernel_ops{&async::detail::start_wait_helper,
                                                            &async::detail::reap_wait_helper, &wait_pair_kernel,
                                                            &wake_stop_kernel, &wake_one_kernel};
}  // namespace

const async::detail::word_wait::fallback_ops& kernel_futex_fallback() noexcept { return kernel_ops; }
#else
// The wait layer is the kernel futex: its helper is the same.
const async::detail::word_wait::fallback_ops& kernel_futex_fallback() noexcept {
  return async::detail::wait_layer_fallback();
}
#endif

}  // namespace rouse::io::detail
