// The Linux futex backend of rouse/platform/wait.hpp.
#include "rouse/config.hpp"

#if !ROUSE_CONFIG_WAIT_BACKEND_GENERIC

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <ctime>

#include "counters_internal.hpp"
#include "rouse/platform/wait.hpp"
#include "wait_testing.hpp"
#include "wake_cost_internal.hpp"

#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449  // Linux 5.16, same number on every architecture
#endif
#ifndef FUTEX_32
#define FUTEX_32 2  // futex_waitv entry flag: a 32-bit futex
#endif

namespace rouse::platform {
namespace {

static_assert(sizeof(word) == sizeof(std::uint32_t), "the futex word is a plain u32");

int private_flag(scope s) noexcept { return s == scope::process_private ? FUTEX_PRIVATE_FLAG : 0; }

std::uint32_t* address(const word& w) noexcept {
  // The kernel reads the word; it never writes it for WAIT/WAKE/REQUEUE.
  return reinterpret_cast<std::uint32_t*>(const_cast<word*>(&w));
}

long futex(const word& w, int op, std::uint32_t value, const timespec* timeout, const word* second,
           std::uint32_t value3) noexcept {
  return ::syscall(SYS_futex, address(w), op, value, timeout, second ? address(*second) : nullptr, value3);
}

template <class Duration>
timespec to_timespec(Duration since_epoch) noexcept {
  timespec ts{};
  // A deadline before the epoch: already past. Tested first: for one within a
  // second of Duration::min(), `since_epoch - secs` below would overflow.
  if (since_epoch < Duration::zero()) return ts;
  auto const secs = std::chrono::floor<std::chrono::seconds>(since_epoch);
  auto const nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(since_epoch - secs);
  ts.tv_sec = static_cast<time_t>(secs.count());
  ts.tv_nsec = static_cast<long>(nanos.count());
  return ts;
}

// One absolute-deadline wait. `clock_flag` is 0 for CLOCK_MONOTONIC or
// FUTEX_CLOCK_REALTIME. Returns true when the kernel reported ETIMEDOUT.
bool wait_bitset(const word& w, std::uint32_t expected, const timespec& deadline, int clock_flag, scope s) noexcept {
  for (;;) {
    detail::count_wait();
    long const r = futex(w, FUTEX_WAIT_BITSET | clock_flag | private_flag(s), expected, &deadline, nullptr,
                         FUTEX_BITSET_MATCH_ANY);
    if (r == 0) return false;
    int const e = errno;
    if (e == EINTR) {
      // A signal: the deadline is absolute, so retrying does not stretch it.
      // Re-check the word first, as a spurious return would.
      if (w.load(std::memory_order_relaxed) != expected) return false;
      continue;
    }
    return e == ETIMEDOUT;  // EAGAIN: the word had changed
  }
}

}  // namespace

void wait(const word& w, std::uint32_t expected, scope s) noexcept {
  detail::count_wait();
  // EINTR and EAGAIN both mean "return and let the caller re-check".
  futex(w, FUTEX_WAIT | private_flag(s), expected, nullptr, nullptr, 0);
}

wait_result wait_until(const word& w, std::uint32_t expected, steady_deadline deadline, scope s) noexcept {
  // libstdc++'s steady_clock is CLOCK_MONOTONIC, the clock FUTEX_WAIT_BITSET
  // uses without FUTEX_CLOCK_REALTIME: the kernel compares against the same
  // clock the caller will read, so ETIMEDOUT is never early.
  if (std::chrono::steady_clock::now() >= deadline) return wait_result::timed_out;  // no system call
  timespec const ts = to_timespec(deadline.time_since_epoch());
  if (!wait_bitset(w, expected, ts, 0, s)) return wait_result::woken;
  return wait_result::timed_out;
}

wait_result wait_until(const word& w, std::uint32_t expected, system_deadline deadline, scope s) noexcept {
  if (std::chrono::system_clock::now() >= deadline) return wait_result::timed_out;  // no system call
  timespec const ts = to_timespec(deadline.time_since_epoch());
  if (!wait_bitset(w, expected, ts, FUTEX_CLOCK_REALTIME, s)) return wait_result::woken;
  return wait_result::timed_out;
}

int wake(const word& w, int count, scope s) noexcept {
  if (count <= 0) return 0;
  detail::count_wake();
  std::int64_t const started = steady_now_ns();
  long const r = futex(w, FUTEX_WAKE | private_flag(s), static_cast<std::uint32_t>(count), nullptr, nullptr, 0);
  detail::note_wake_cost(started, r);
  return r < 0 ? 0 : static_cast<int>(r);
}

int wake_all(const word& w, scope s) noexcept { return wake(w, INT_MAX, s); }

int requeue(const word& from, const word& to, int wake_count, int requeue_count, scope s) noexcept {
  if (wake_count < 0) wake_count = 0;
  if (requeue_count < 0) requeue_count = 0;
  detail::count_wake();
  std::int64_t const started = steady_now_ns();
  // FUTEX_REQUEUE passes the requeue limit in the timeout argument's slot.
  long const r = ::syscall(SYS_futex, address(from), FUTEX_REQUEUE | private_flag(s), wake_count,
                           static_cast<long>(requeue_count), address(to), 0);
  detail::note_wake_cost(started, r);
  return r < 0 ? 0 : static_cast<int>(r);
}

int cmp_requeue(const word& from, std::uint32_t expected, const word& to, int wake_count, int requeue_count,
                scope s) noexcept {
  if (wake_count < 0) wake_count = 0;
  if (requeue_count < 0) requeue_count = 0;
  detail::count_wake();
  std::int64_t const started = steady_now_ns();
  long const r = ::syscall(SYS_futex, address(from), FUTEX_CMP_REQUEUE | private_flag(s), wake_count,
                           static_cast<long>(requeue_count), address(to), expected);
  detail::note_wake_cost(started, r);
  if (r < 0) return errno == EAGAIN ? -1 : 0;
  return static_cast<int>(r);
}

namespace {

struct waitv_entry {  // struct futex_waitv of <linux/futex.h> (5.16+)
  std::uint64_t val;
  std::uint64_t uaddr;
  std::uint32_t flags;
  std::uint32_t reserved;
};

std::atomic<int> waitv_supported{-1};     // -1 unknown, 0 no (ENOSYS), 1 yes
std::atomic<bool> polling_forced{false};  // detail::force_wait_any_polling (tests)

// Index of the first entry whose word no longer holds its expected value.
int first_changed(std::span<const wait_entry> entries) noexcept {
  for (std::size_t i = 0; i < entries.size(); ++i)
    if (entries[i].address->load(std::memory_order_acquire) != entries[i].expected) return static_cast<int>(i);
  return -1;
}

// Returns the index, -1 on timeout, or -2 when futex_waitv is missing.
int waitv(std::span<const wait_entry> entries, const steady_deadline* deadline, scope s) noexcept {
  waitv_entry v[max_wait_entries];
  std::uint32_t const flags = FUTEX_32 | (s == scope::process_private ? FUTEX_PRIVATE_FLAG : 0);
  for (std::size_t i = 0; i < entries.size(); ++i)
    v[i] = {entries[i].expected, reinterpret_cast<std::uintptr_t>(address(*entries[i].address)), flags, 0};
  timespec ts{};
  if (deadline) ts = to_timespec(deadline->time_since_epoch());
  for (;;) {
    detail::count_wait();
    long const r = ::syscall(SYS_futex_waitv, v, static_cast<unsigned>(entries.size()), 0u, deadline ? &ts : nullptr,
                             CLOCK_MONOTONIC);
    if (r >= 0) return static_cast<int>(r);
    int const e = errno;
    if (e == ENOSYS) return -2;
    if (e == ETIMEDOUT) return -1;
    if (e == EAGAIN) {  // some word had changed: report which
      int const i = first_changed(entries);
      return i < 0 ? 0 : i;
    }
    if (e == EINTR) {
      int const i = first_changed(entries);
      if (i >= 0) return i;
      continue;
    }
    return 0;  // unexpected (EINVAL, EFAULT): return and let the caller re-check
  }
}

// Fallback for kernels without futex_waitv: check every word, then sleep on
// the last one with a short timeout that doubles up to 1 ms. A wake of the
// last word is seen at once and reported (a wake it takes is never dropped,
// as futex_waitv reports the last entry it was woken through); a change of
// any other is seen within the current slice.
int wait_any_polling(std::span<const wait_entry> entries, const steady_deadline* deadline, scope s) noexcept {
  auto slice = std::chrono::microseconds(20);
  std::size_t const last = entries.size() - 1;
  for (;;) {
    int const i = first_changed(entries);
    if (i >= 0) return i;
    auto const now = std::chrono::steady_clock::now();
    if (deadline && now >= *deadline) return -1;
    auto until = now + slice;
    if (deadline && until > *deadline) until = *deadline;
    if (wait_until(*entries[last].address, entries[last].expected, until, s) == wait_result::woken)
      return static_cast<int>(last);  // woken (perhaps spuriously: callers re-check)
    if (slice < std::chrono::milliseconds(1)) slice *= 2;
  }
}

int wait_any_impl(std::span<const wait_entry> entries, const steady_deadline* deadline, scope s) noexcept {
  if (entries.empty() || entries.size() > max_wait_entries) return -1;
  // Ordering: relaxed — independent flags; a stale value only picks the
  // other (equally correct) path once.
  if (waitv_supported.load(std::memory_order_relaxed) != 0 && !polling_forced.load(std::memory_order_relaxed)) {
    int const r = waitv(entries, deadline, s);
    if (r != -2) {
      waitv_supported.store(1, std::memory_order_relaxed);
      return r;
    }
    waitv_supported.store(0, std::memory_order_relaxed);
  }
  return wait_any_polling(entries, deadline, s);
}

}  // namespace

int wait_any(std::span<const wait_entry> entries, scope s) noexcept { return wait_any_impl(entries, nullptr, s); }

int wait_any_until(std::span<const wait_entry> entries, steady_deadline deadline, scope s) noexcept {
  return wait_any_impl(entries, &deadline, s);
}

const char* backend_name() noexcept { return "futex"; }

bool detail::force_wait_any_polling(bool on) noexcept {
  // Ordering: relaxed — see wait_any_impl().
  return polling_forced.exchange(on, std::memory_order_relaxed);
}

}  // namespace rouse::platform

#endif  // !ROUSE_CONFIG_WAIT_BACKEND_GENERIC
