// Stress tests of rouse::call_once: many threads race on many flags; each
// callable runs exactly once (or once more per exception), and every caller
// returns seeing its effects.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

#include "rouse/once.hpp"
#include "stress.hpp"

namespace once_stress {
namespace {

TEST(once_stress, every_flag_runs_once_however_many_race) {
  unsigned const threads = rouse_test::oversubscribed(8);
  long const flags = rouse_test::scaled(20000);
  auto once = std::make_unique<rouse::once_flag[]>(static_cast<std::size_t>(flags));
  auto runs = std::make_unique<std::atomic<int>[]>(static_cast<std::size_t>(flags));
  auto value = std::make_unique<long[]>(static_cast<std::size_t>(flags));  // plain: published by call_once
  std::atomic<long> bad{0};
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < threads; ++t)
    pool.emplace_back([&] {
      for (long f = 0; f < flags; ++f) {
        rouse::call_once(once[f], [&] {
          runs[f].fetch_add(1, std::memory_order_relaxed);
          value[f] = f + 1;
        });
        if (value[f] != f + 1) bad.fetch_add(1);
      }
    });
  for (auto& t : pool) t.join();
  for (long f = 0; f < flags; ++f) ASSERT_EQ(runs[f].load(), 1) << "flag " << f;
  EXPECT_EQ(bad.load(), 0);
}

TEST(once_stress, failing_runs_are_retried_until_one_succeeds) {
  unsigned const threads = rouse_test::oversubscribed(8);
  long const flags = rouse_test::scaled(5000);
  auto once = std::make_unique<rouse::once_flag[]>(static_cast<std::size_t>(flags));
  auto attempts = std::make_unique<std::atomic<int>[]>(static_cast<std::size_t>(flags));
  auto successes = std::make_unique<std::atomic<int>[]>(static_cast<std::size_t>(flags));
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < threads; ++t)
    pool.emplace_back([&] {
      for (long f = 0; f < flags; ++f) {
        for (;;) {
          try {
            rouse::call_once(once[f], [&] {
              // The first two attempts on each flag throw.
              if (attempts[f].fetch_add(1, std::memory_order_relaxed) < 2) throw std::runtime_error("not yet");
              successes[f].fetch_add(1, std::memory_order_relaxed);
            });
            break;
          } catch (const std::runtime_error&) {
          }
        }
      }
    });
  for (auto& t : pool) t.join();
  for (long f = 0; f < flags; ++f) {
    ASSERT_EQ(successes[f].load(), 1) << "flag " << f;
    ASSERT_EQ(attempts[f].load(), 3) << "flag " << f;
  }
}

}  // namespace
}  // namespace once_stress
