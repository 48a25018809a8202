// counting_new.hpp — replaces the global operator new / delete of the test
// executable that includes it (include it in one translation unit only) with
// malloc / free plus two counters, so a test can check "no allocation per
// wait" or "every block given back" as counts, not times.
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
#include <cstdlib>
#include <new>

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
// True: the global operator new / delete below count every call.
inline constexpr bool counts_allocations = true;
#endif
inline std::atomic<long> allocation_count{0};
inline std::atomic<long> deallocation_count{0};
// Calls of the global operator new (any form) so far.
inline long allocations() noexcept { return allocation_count.load(std::memory_order_relaxed); }
// Calls of the global operator delete (any form) so far, null pointers aside.
inline long deallocations() noexcept { return deallocation_count.load(std::memory_order_relaxed); }
}  // namespace rouse_test

#if !defined(ROUSE_TEST_SANITIZER_OWNS_NEW)
// GCC pairs the inlined malloc / free of these replacements with the
// new-expressions of the test and warns; they are the same allocator.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
void* operator new(std::size_t n) {
  rouse_test::allocation_count.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return ::operator new(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  rouse_test::allocation_count.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(n ? n : 1);
}
void operator delete(void* p) noexcept {
  if (p == nullptr) return;
  rouse_test::deallocation_count.fetch_add(1, std::memory_order_relaxed);
  std::free(p);
}
void operator delete[](void* p) noexcept { ::operator delete(p); }
void operator delete(void* p, std::size_t) noexcept { ::operator delete(p); }
void operator delete[](void* p, std::size_t) noexcept { ::operator delete(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { ::operator delete(p); }
// The aligned forms (the coroutine frame pool's blocks are aligned).
void* operator new(std::size_t n, std::align_val_t a) {
  rouse_test::allocation_count.fetch_add(1, std::memory_order_relaxed);
  std::size_t const align = static_cast<std::size_t>(a);
  std::size_t const size = ((n ? n : 1) + align - 1) / align * align;  // aligned_alloc wants a multiple
  if (void* p = std::aligned_alloc(align, size)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n, std::align_val_t a) { return ::operator new(n, a); }
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  try {
    return ::operator new(n, a);
  } catch (...) {
    return nullptr;
  }
}
void operator delete(void* p, std::align_val_t) noexcept { ::operator delete(p); }
void operator delete[](void* p, std::align_val_t) noexcept { ::operator delete(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { ::operator delete(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { ::operator delete(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { ::operator delete(p); }
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif  // !ROUSE_TEST_SANITIZER_OWNS_NEW
