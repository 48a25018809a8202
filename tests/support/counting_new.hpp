// counting_new.hpp — replaces the global operator new / delete of the test
// executable that includes it (include it in one translation unit only) with
// malloc / free plus two counters, so a test can check "no allocation per
// wait" or "every block given back" as counts, not times.
//
//   auto const before = rouse_test::allocations();
//   ... the operation ...
//   EXPECT_EQ(rouse_test::allocations() - before, 0);
//
// Under AddressSanitizer the replacement still counts (ASan intercepts
// malloc / free underneath, so its checks stay on).
#pragma once

#include <atomic>
#include <cstdlib>
#include <new>

namespace rouse_test {
inline std::atomic<long> allocation_count{0};
inline std::atomic<long> deallocation_count{0};
// Calls of the global operator new (any form) so far.
inline long allocations() noexcept { return allocation_count.load(std::memory_order_relaxed); }
// Calls of the global operator delete (any form) so far, null pointers aside.
inline long deallocations() noexcept { return deallocation_count.load(std::memory_order_relaxed); }
}  // namespace rouse_test

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
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
