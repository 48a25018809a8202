// Unit tests of rouse/platform/wait.hpp.
#include "rouse/platform/wait.hpp"

#include <gtest/gtest.h>

#include <thread>

#include "rouse/platform/counters.hpp"

namespace {

using namespace std::chrono_literals;
namespace p = rouse::platform;

TEST(wait, returns_at_once_when_the_word_already_differs) {
  p::word w{1};
  p::wait(w, 0);  // must not sleep
  SUCCEED();
}

TEST(wait, wake_after_store_releases_a_sleeping_waiter) {
  p::word w{0};
  std::thread t([&] {
    std::this_thread::sleep_for(10ms);
    w.store(1, std::memory_order_release);
    p::wake_all(w);
  });
  while (w.load(std::memory_order_acquire) == 0) p::wait(w, 0);
  t.join();
  EXPECT_EQ(w.load(), 1u);
}

TEST(wait, steady_deadline_is_never_early) {
  p::word w{0};
  auto const deadline = std::chrono::steady_clock::now() + 20ms;
  while (p::wait_until(w, 0, deadline) != p::wait_result::timed_out) {
  }
  EXPECT_GE(std::chrono::steady_clock::now(), deadline);
}

}  // namespace
