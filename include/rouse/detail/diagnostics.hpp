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
// Checks are on when ROUSE_DEBUG_CHECKS is 1. It is fixed when rouse is
// configured (rouse/config.hpp: -DROUSE_DEBUG_CHECKS=ON|OFF|AUTO, AUTO being
// "on unless the build's flags define NDEBUG"), for the library and every
// translation unit that uses it: a translation unit's own NDEBUG does not
// change it, so checks that pair up across translation units (the list of
// locks a thread holds) always agree. With checks off a check compiles to
// nothing (its condition is not evaluated), so it costs nothing and may not
// have effects.
#pragma once

#include "rouse/config.hpp"

#if defined(ROUSE_DEBUG_CHECKS)
#error \
    "ROUSE_DEBUG_CHECKS is fixed when rouse is configured (rouse/config.hpp): configure with -DROUSE_DEBUG_CHECKS=ON or OFF instead of defining it"
#endif
#define ROUSE_DEBUG_CHECKS ROUSE_CONFIG_DEBUG_CHECKS

#include <type_traits>

#if defined(ROUSE_MODEL_RELACY)
#include <cstdio>
#include <cstdlib>
#endif

// ROUSE_CONSTEXPR marks the constructors and destructors that std declares
// constexpr (and rouse's own that can be): constinit globals, literal types.
// It is empty under a Relacy model, whose atomics (rl::atomic) are not
// literal types. ROUSE_CHECK_USAGE in such a constructor checks at run time
// as anywhere else; in a constant evaluation a failing check calls
// report_misuse(), which is not constexpr, so the initialisation does not
// compile. A constexpr destructor checks with ROUSE_CHECK_USAGE_AT_RUN_TIME:
// not in constant evaluation (where there is no state to check, and its
// atomic loads could not run).
#if defined(ROUSE_MODEL_RELACY)
#define ROUSE_CONSTEXPR
#else
#define ROUSE_CONSTEXPR constexpr
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
#define ROUSE_CHECK_USAGE(condition, primitive, rule)      \
  do {                                                     \
    if (!(condition)) [[unlikely]]                         \
      ::rouse::detail::report_misuse((primitive), (rule)); \
  } while (false)
#else
#define ROUSE_CHECK_USAGE(condition, primitive, rule) \
  do {                                                \
  } while (false)
#endif

// ROUSE_CHECK_USAGE, skipped in constant evaluation (see ROUSE_CONSTEXPR).
#if defined(ROUSE_MODEL_RELACY)
#define ROUSE_CHECK_USAGE_AT_RUN_TIME(condition, primitive, rule) ROUSE_CHECK_USAGE(condition, primitive, rule)
#else
#define ROUSE_CHECK_USAGE_AT_RUN_TIME(condition, primitive, rule)                     \
  do {                                                                                \
    if (!std::is_constant_evaluated()) ROUSE_CHECK_USAGE(condition, primitive, rule); \
  } while (false)
#endif
