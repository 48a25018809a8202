// tests/support: an element that counts its lives, to prove that a channel
// or container loses nothing and destroys nothing twice.
//
//   rouse_test::counted_scope scope;               // counts from 0; at its end expects none alive
//   EXPECT_TRUE(tx.send(rouse_test::counted(1)));
//   EXPECT_EQ(rouse_test::counted::live.load(), 1);
//
// counted is move-only and has no default constructor: the least a channel
// may ask of its element type. A move leaves the source holding moved_from,
// so a value received twice, or a moved-from husk received, shows in the
// values a test checks.
#pragma once

#include <gtest/gtest.h>

#include <atomic>

namespace rouse_test {

struct counted {
  static constexpr long moved_from = -1;
  // Constructions (of any kind) minus destructions. Relaxed: tests read it
  // after the threads that changed it were joined, or on the one thread
  // that made and destroyed the elements.
  static inline std::atomic<long> live{0};

  explicit counted(long v) noexcept : value(v) { live.fetch_add(1, std::memory_order_relaxed); }
  counted(counted&& o) noexcept : value(o.value) {
    o.value = moved_from;
    live.fetch_add(1, std::memory_order_relaxed);
  }
  counted(const counted&) = delete;
  counted& operator=(const counted&) = delete;
  counted& operator=(counted&&) = delete;
  ~counted() { live.fetch_sub(1, std::memory_order_relaxed); }

  long value;
};

// Sets the count of live elements to 0; at the end of its scope, expects it
// to be 0 again (every element made was destroyed exactly once).
class counted_scope {
 public:
  counted_scope() { counted::live.store(0); }
  counted_scope(const counted_scope&) = delete;
  counted_scope& operator=(const counted_scope&) = delete;
  ~counted_scope() { EXPECT_EQ(counted::live.load(), 0) << "an element leaked or was destroyed twice"; }
};

}  // namespace rouse_test
