// rouse/detail/diagnostics.hpp — misuse checks.
//
// Misuse (unlocking what you do not hold, releasing a semaphore past its
// maximum, arriving at a barrier more often than expected, destroying a
// primitive that has waiters) is caught in debug builds with a message that
// names the primitive and the rule broken, then aborts:
//
//   ROUSE_CHECK_USAGE(owner_ == me, "rouse::mutex", "unlock() by a thread that does not hold the lock");
//   -> "rouse::mutex: misuse: unlock() by a thread that does not hold the lock" on stderr, abort()
//
// Checks are on when ROUSE_DEBUG_CHECKS is 1, which it is by default when
// NDEBUG is not defined. In release builds a check compiles to nothing (its
// condition is not evaluated), so it costs nothing and may not have effects.
#pragma once

#if !defined(ROUSE_DEBUG_CHECKS)
#if defined(NDEBUG)
#define ROUSE_DEBUG_CHECKS 0
#else
#define ROUSE_DEBUG_CHECKS 1
#endif
#endif

#if defined(ROUSE_MODEL_RELACY)
#include <cstdio>
#include <cstdlib>
#endif

namespace rouse::detail {

// Prints "<primitive>: misuse: <rule>" to stderr and aborts.
#if defined(ROUSE_MODEL_RELACY)
// Model tests link nothing of rouse's compiled library: define it here.
[[noreturn]] inline void report_misuse(const char* primitive, const char* rule) noexcept {
  std::fprintf(stderr, "%s: misuse: %s\n", primitive, rule);
  std::abort();
}
#else
[[noreturn, gnu::cold, gnu::noinline]] void report_misuse(const char* primitive, const char* rule) noexcept;
#endif

}  // namespace rouse::detail

#if defined(ROUSE_MODEL_RELACY)
// Under a Relacy model, misuse is an assertion failure reported with the
// interleaving that caused it (model tests link none of rouse's library).
#define ROUSE_CHECK_USAGE(condition, primitive, rule) RL_ASSERT(condition)
#elif ROUSE_DEBUG_CHECKS
#define ROUSE_CHECK_USAGE(condition, primitive, rule)                      \
  do {                                                                     \
    if (!(condition)) [[unlikely]]                                         \
      ::rouse::detail::report_misuse((primitive), (rule));                 \
  } while (false)
#else
#define ROUSE_CHECK_USAGE(condition, primitive, rule) \
  do {                                                \
  } while (false)
#endif
