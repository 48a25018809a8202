// Stress test of rouse::spin_lock: more threads than cores (the case it is
// not meant for, so the counts are small), counters proving mutual exclusion.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "rouse/spin_lock.hpp"
#include "stress.hpp"

namespace spin_lock_stress {
namespace {

TEST(spin_lock_stress, mutual_exclusion_with_more_threads_than_cores) {
  rouse::spin_lock s;
  unsigned const threads = rouse_test::oversubscribed(8);
  long const per_thread = rouse_test::scaled(50000);
  long counter = 0;
  std::atomic<int> inside{0}, overlaps{0};
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < threads; ++t)
    pool.emplace_back([&] {
      for (long i = 0; i < per_thread; ++i) {
        if (i % 3 == 0) {
          while (!s.try_lock()) std::this_thread::yield();
        } else {
          s.lock();
        }
        if (inside.fetch_add(1, std::memory_order_relaxed) != 0) overlaps.fetch_add(1);
        ++counter;
        inside.fetch_sub(1, std::memory_order_relaxed);
        s.unlock();
      }
    });
  for (auto& t : pool) t.join();
  EXPECT_EQ(overlaps.load(), 0);
  EXPECT_EQ(counter, static_cast<long>(threads) * per_thread);
}

}  // namespace
}  // namespace spin_lock_stress
