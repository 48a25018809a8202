// Unit tests of rouse/platform/cpu.hpp's affinity calls: the CPU list and
// counts agree with each other and with the kernel's view, and pinning
// moves a thread onto exactly the CPU asked for.
#include "rouse/platform/cpu.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <thread>
#include <vector>

namespace cpu_test {
namespace {

namespace p = rouse::platform;

TEST(cpu, the_allowed_list_is_sorted_and_matches_the_count) {
  std::vector<int> const cpus = p::allowed_cpu_list();
  ASSERT_FALSE(cpus.empty());
  EXPECT_TRUE(std::is_sorted(cpus.begin(), cpus.end()));
  EXPECT_EQ(std::adjacent_find(cpus.begin(), cpus.end()), cpus.end());  // no repeats
  EXPECT_EQ(cpus.size(), p::available_cpus());
  EXPECT_GE(p::process_cpus(), 1u);
}

TEST(cpu, a_pinned_thread_runs_on_its_cpu_and_its_list_is_that_cpu) {
  for (int const cpu : p::allowed_cpu_list()) {
    std::vector<int> seen_list;
    int seen_cpu = -2;
    bool pinned = false;
    std::thread t([&] {
      pinned = p::pin_this_thread(cpu);
      seen_list = p::allowed_cpu_list();
      seen_cpu = p::current_cpu();  // the kernel moves a thread at once when its mask excludes its CPU
    });
    t.join();
    ASSERT_TRUE(pinned) << "cpu " << cpu;
    EXPECT_EQ(seen_list, std::vector<int>{cpu});
    if (seen_cpu != -1) {
      EXPECT_EQ(seen_cpu, cpu);
    }
  }
}

TEST(cpu, pinning_to_no_cpu_or_a_cpu_out_of_reach_changes_nothing) {
  std::vector<int> const before = p::allowed_cpu_list();
  std::thread t([&] {
    EXPECT_FALSE(p::pin_this_thread(-1));
    EXPECT_FALSE(p::pin_this_thread(1 << 20));
    EXPECT_EQ(p::allowed_cpu_list(), before);
  });
  t.join();
}

}  // namespace
}  // namespace cpu_test
