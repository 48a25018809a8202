// counting_new.hpp — the unit-test program's global operator new / delete
// are replaced (counting_new.cpp, linked into it once) with malloc / free plus
// two counters, so a test can check "no allocation per wait" or "every block
// given back" as counts, not times.
//
//   if (!rouse_test::counts_allocations) GTEST_SKIP() << "a sanitizer owns operator new";
//   auto const before = rouse_test::allocations();
//   ... the operation ...
//   EXPECT_EQ(rouse_test::allocations() - before, 0);
//
// Under ThreadSanitizer or AddressSanitizer nothing is replaced: their
// runtimes define the global operator new themselves. There
// counts_allocations is false, the counters stay at 0, and a test that
// checks counts skips.
#pragma once

#include <atomic>

#if defined(ROUSE_SANITIZER_thread) || defined(ROUSE_SANITIZER_address) || defined(__SANITIZE_ADDRESS__) || \
    defined(__SANITIZE_THREAD__)
#define ROUSE_TEST_SANITIZER_OWNS_NEW 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define ROUSE_TEST_SANITIZER_OWNS_NEW 1
#endif
#endif

namespace rouse_test {
#if defined(ROUSE_TEST_SANITIZER_OWNS_NEW)
// False: a sanitizer's runtime owns operator new, nothing is counted.
inline constexpr bool counts_allocations = false;
#else
// True: the global operator new / delete (counting_new.cpp) count every call.
inline constexpr bool counts_allocations = true;
#endif
inline std::atomic<long> allocation_count{0};
inline std::atomic<long> deallocation_count{0};
// Calls of the global operator new (any form) so far.
inline long allocations() noexcept { return allocation_count.load(std::memory_order_relaxed); }
// Calls of the global operator delete (any form) so far, null pointers aside.
inline long deallocations() noexcept { return deallocation_count.load(std::memory_order_relaxed); }
}  // namespace rouse_test
