// Unit tests of rouse/platform/wait.hpp (both backends: the same file runs
// under the debug preset (futex) and the generic preset (parking table)).
//
// Timing rule: timeouts are checked as "never early" and "does not hang";
// nothing asserts that a call was fast. Whether a waiter sleeps is known by
// evidence (a requeue that finds it, its wait call counted, the kernel's view
// of the thread: tests/support/eventually.hpp), never by a sleep.
#include "rouse/platform/wait.hpp"

#include <gtest/gtest.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <csignal>
#include <cstring>
#include <memory>
#include <string_view>
#include <thread>
#include <vector>

#include "../../src/platform/parking_table.hpp"
#include "../../src/platform/wait_testing.hpp"
#include "clocks.hpp"
#include "eventually.hpp"
#include "rouse/platform/counters.hpp"
#include "threads.hpp"

namespace wait_test {
namespace {

using namespace std::chrono_literals;
namespace p = rouse::platform;
using std::chrono::steady_clock;
using std::chrono::system_clock;

using rouse_test::half_speed_clock;

bool generic_backend() { return std::string_view(p::backend_name()) == "generic"; }

// Waits until `n` threads sleep on `from` (which holds `expected`) by moving
// them, as they arrive, onto `to`. Returns once all n sleep on `to`. A thread
// only gets here by being asleep, so this proves the waiters are parked
// without guessing with sleeps.
void gather(const p::word& from, std::uint32_t expected, const p::word& to, int n) {
  int moved = 0;
  bool mismatch = false;
  rouse_test::eventually([&] {
    int const r = p::cmp_requeue(from, expected, to, 0, INT_MAX);
    mismatch = r < 0;
    if (r > 0) moved += r;
    return mismatch || moved >= n;
  });
  ASSERT_FALSE(mismatch) << "`from` no longer holds the expected value";
  ASSERT_EQ(moved, n);
}

// A waiter that loops until `w` leaves `expected` (tolerating spurious
// returns), counting how often wait() returned.
struct loop_waiter {
  std::atomic<int> returns{0};
  std::atomic<bool> done{false};
  void run(const p::word& w, std::uint32_t expected) {
    while (w.load(std::memory_order_acquire) == expected) {
      p::wait(w, expected);
      returns.fetch_add(1, std::memory_order_relaxed);
    }
    done.store(true, std::memory_order_release);
  }
};

TEST(wait, backend_name_is_known) {
  std::string_view const name = p::backend_name();
  EXPECT_TRUE(name == "futex" || name == "generic") << name;
}

TEST(wait, returns_at_once_when_the_word_already_differs) {
  // Nobody ever wakes these: one that sleeps hangs the test (CTest's
  // timeout fails it); the timed ones report "woken", not a timeout.
  p::word w{1};
  p::wait(w, 0);
  EXPECT_EQ(p::wait_until(w, 0, steady_clock::now() + 1h), p::wait_result::woken);
  EXPECT_EQ(p::wait_until(w, 0, system_clock::now() + 1h), p::wait_result::woken);
  EXPECT_EQ(p::wait_for(w, 0, 1h), p::wait_result::woken);
  EXPECT_EQ(w.load(), 1u);
}

TEST(wait, wake_after_store_releases_a_sleeping_waiter) {
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  p::word w{0};
  auto t = rouse_test::after_wait_calls(rouse_test::wait_calls() + 1, [&] {
    w.store(1, std::memory_order_release);
    p::wake_all(w);
  });
  while (w.load(std::memory_order_acquire) == 0) p::wait(w, 0);
  t.join();
  EXPECT_EQ(w.load(), 1u);
}

TEST(wait, wake_before_wait_is_not_lost) {
  // The waker stores and wakes before the waiter calls wait(): the wait sees
  // the changed word and returns instead of sleeping forever.
  p::word w{0};
  std::thread waker([&] {
    w.store(1, std::memory_order_release);
    EXPECT_EQ(p::wake_all(w), 0);  // nobody asleep yet
  });
  waker.join();
  p::wait(w, 0);
  EXPECT_EQ(p::wait_until(w, 0, steady_clock::now() + 10s), p::wait_result::woken);
  EXPECT_EQ(p::wait_for(w, 0, 10s), p::wait_result::woken);
}

TEST(wait, wake_with_nobody_waiting_returns_zero) {
  p::word w{0};
  EXPECT_EQ(p::wake_one(w), 0);
  EXPECT_EQ(p::wake(w, 5), 0);
  EXPECT_EQ(p::wake_all(w), 0);
  EXPECT_EQ(p::wake(w, 0), 0);
  EXPECT_EQ(p::wake(w, -3), 0);
}

void ignore_signal(int) {}

TEST(wait, spurious_returns_are_tolerated_by_a_rechecking_caller) {
  // Signals make futex waits return early (EINTR); the generic backend may
  // simply keep sleeping. Either way the caller's loop ends only once the word
  // really changed, and wait() never reports anything but "re-check". Each
  // signal finds the waiter asleep in the kernel.
  struct sigaction sa {};
  sa.sa_handler = ignore_signal;  // no SA_RESTART
  struct sigaction old {};
  ASSERT_EQ(::sigaction(SIGUSR1, &sa, &old), 0);
  p::word w{0};
  loop_waiter lw;
  rouse_test::thread t([&] { lw.run(w, 0); });
  for (int i = 0; i < 20; ++i) {
    rouse_test::until_asleep(t);
    ::pthread_kill(t.native_handle(), SIGUSR1);
  }
  EXPECT_FALSE(lw.done.load());
  w.store(1, std::memory_order_release);
  p::wake_all(w);
  t.join();
  EXPECT_TRUE(lw.done.load());
  ::sigaction(SIGUSR1, &old, nullptr);
}

TEST(wait, wake_returns_how_many_it_woke) {
  p::word w{0};
  p::word parked{0};
  constexpr int n = 4;
  std::vector<loop_waiter> lw(n);
  std::vector<std::thread> ts;
  for (int i = 0; i < n; ++i) ts.emplace_back([&, i] { lw[i].run(w, 0); });
  gather(w, 0, parked, n);
  EXPECT_EQ(p::wake(w, INT_MAX), 0) << "all waiters were moved off w";
  w.store(1, std::memory_order_release);
  EXPECT_EQ(p::wake(parked, 0), 0);
  EXPECT_EQ(p::wake_one(parked), 1);
  EXPECT_EQ(p::wake(parked, 2), 2);
  EXPECT_EQ(p::wake_all(parked), 1);
  EXPECT_EQ(p::wake_all(parked), 0);
  for (auto& t : ts) t.join();
}

TEST(wait, requeue_moves_waiters_and_a_wake_on_the_target_releases_them) {
  p::word from{0};
  p::word staging{0};
  p::word to{0};
  constexpr int n = 5;
  std::vector<loop_waiter> lw(n);
  std::vector<std::thread> ts;
  for (int i = 0; i < n; ++i) ts.emplace_back([&, i] { lw[i].run(from, 0); });
  // Park all five on `staging` (the loop re-waits on `from` when woken, so
  // the state lives in `from`; staging and to are only queues).
  gather(from, 0, staging, n);
  // requeue: wake 1, move 3, leave 1.
  from.store(1, std::memory_order_release);
  EXPECT_EQ(p::requeue(staging, to, 1, 3), 4);
  EXPECT_EQ(p::wake_all(to), 3) << "the three moved waiters sleep on `to`";
  EXPECT_EQ(p::wake_all(staging), 1) << "one was left on `staging`";
  for (auto& t : ts) t.join();
}

TEST(wait, requeue_with_nobody_waiting_returns_zero) {
  p::word a{0};
  p::word b{0};
  EXPECT_EQ(p::requeue(a, b, 1, INT_MAX), 0);
  EXPECT_EQ(p::cmp_requeue(a, 0, b, 1, INT_MAX), 0);
}

TEST(wait, cmp_requeue_moves_waiters_when_the_value_matches) {
  p::word from{0};
  p::word staging{0};
  p::word to{0};
  constexpr int n = 3;
  std::vector<loop_waiter> lw(n);
  std::vector<std::thread> ts;
  for (int i = 0; i < n; ++i) ts.emplace_back([&, i] { lw[i].run(from, 0); });
  gather(from, 0, staging, n);
  staging.store(7);
  // Wake none, move all: the return counts the moved ones.
  EXPECT_EQ(p::cmp_requeue(staging, 7, to, 0, INT_MAX), n);
  EXPECT_EQ(p::wake_all(staging), 0);
  from.store(1, std::memory_order_release);
  EXPECT_EQ(p::wake_all(to), n);
  for (auto& t : ts) t.join();
}

TEST(wait, cmp_requeue_returns_minus_one_on_value_mismatch) {
  p::word from{5};
  p::word to{0};
  EXPECT_EQ(p::cmp_requeue(from, 4, to, 1, INT_MAX), -1);

  // With a sleeper: a mismatch moves and wakes nobody.
  p::word w{0};
  p::word staging{0};
  loop_waiter lw;
  std::thread t([&] { lw.run(w, 0); });
  gather(w, 0, staging, 1);
  staging.store(3);
  EXPECT_EQ(p::cmp_requeue(staging, 2, to, 1, INT_MAX), -1);
  EXPECT_EQ(p::wake_all(to), 0);
  w.store(1, std::memory_order_release);
  EXPECT_EQ(p::wake_all(staging), 1);
  t.join();
}

TEST(wait, a_wake_is_exact_even_between_words_of_one_parking_bucket) {
  // Two words whose addresses share a bucket of the generic backend's table
  // (the futex backend is exact through the kernel; the test runs on both).
  auto words = std::make_unique<p::word[]>(4096);
  p::word* a = nullptr;
  p::word* b = nullptr;
  for (int i = 1; i < 4096 && !b; ++i) {
    if (p::detail::parking_bucket_index(&words[i]) == p::detail::parking_bucket_index(&words[0])) {
      a = &words[0];
      b = &words[i];
    }
  }
  ASSERT_NE(b, nullptr) << "no two words in one bucket among 4096";
  p::word w{0};
  loop_waiter lw;
  rouse_test::thread t([&] { lw.run(w, 0); });
  gather(w, 0, *a, 1);  // now asleep on *a
  EXPECT_EQ(p::wake_all(*b), 0) << "a wake on the neighbour woke nobody";
  EXPECT_EQ(p::requeue(*b, *a, INT_MAX, INT_MAX), 0);
  // Had either call woken it, it would be running now, or would have
  // returned from wait() (counted in `returns`) and slept again on `w`.
  rouse_test::until_asleep(t);
  EXPECT_EQ(lw.returns.load(), 0);
  EXPECT_FALSE(lw.done.load());
  w.store(1, std::memory_order_release);
  EXPECT_EQ(p::wake_all(*a), 1);
  t.join();
}

TEST(wait, steady_deadline_is_never_early) {
  p::word w{0};
  auto const deadline = steady_clock::now() + 20ms;
  while (p::wait_until(w, 0, deadline) != p::wait_result::timed_out) {
  }
  EXPECT_GE(steady_clock::now(), deadline);
}

TEST(wait, system_deadline_is_never_early) {
  p::word w{0};
  auto const deadline = system_clock::now() + 20ms;
  while (p::wait_until(w, 0, deadline) != p::wait_result::timed_out) {
  }
  EXPECT_GE(system_clock::now(), deadline);
}

TEST(wait, custom_clock_deadline_is_never_early) {
  p::word w{0};
  auto const deadline = half_speed_clock::now() + 10ms;
  while (p::wait_until(w, 0, deadline) != p::wait_result::timed_out) {
  }
  EXPECT_GE(half_speed_clock::now(), deadline);
}

TEST(wait, wait_for_is_never_early) {
  p::word w{0};
  auto const start = steady_clock::now();
  EXPECT_EQ(p::wait_for(w, 0, 20ms), p::wait_result::timed_out);
  EXPECT_GE(steady_clock::now() - start, 20ms);
}

TEST(wait, past_deadlines_time_out_without_sleeping) {
  p::word w{0};
  EXPECT_EQ(p::wait_until(w, 0, steady_clock::now() - 1s), p::wait_result::timed_out);
  EXPECT_EQ(p::wait_until(w, 0, system_clock::now() - 1s), p::wait_result::timed_out);
  EXPECT_EQ(p::wait_until(w, 0, steady_clock::time_point{}), p::wait_result::timed_out);
  EXPECT_EQ(p::wait_until(w, 0, system_clock::time_point{} - 1h), p::wait_result::timed_out);
  EXPECT_EQ(p::wait_until(w, 0, half_speed_clock::now() - 1ms), p::wait_result::timed_out);
  EXPECT_EQ(p::wait_for(w, 0, 0ms), p::wait_result::timed_out);
  EXPECT_EQ(p::wait_for(w, 0, -5s), p::wait_result::timed_out);
}

// The timed waits sleep before the wake (their wait call made): one that
// misses it sleeps for its hour, or wraps its huge timeout into a past
// deadline and reports a timeout.
TEST(wait, timed_waits_return_woken_when_woken) {
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  p::word w{0};
  auto t = rouse_test::after_wait_calls(rouse_test::wait_calls() + 1, [&] {
    w.store(1, std::memory_order_release);
    p::wake_all(w);
  });
  auto const deadline = steady_clock::now() + 1h;
  while (w.load(std::memory_order_acquire) == 0) ASSERT_EQ(p::wait_until(w, 0, deadline), p::wait_result::woken);
  t.join();
  w.store(0);
  auto t2 = rouse_test::after_wait_calls(rouse_test::wait_calls() + 1, [&] {
    w.store(1, std::memory_order_release);
    p::wake_all(w);
  });
  auto const sys_deadline = system_clock::now() + 1h;
  while (w.load(std::memory_order_acquire) == 0) ASSERT_EQ(p::wait_until(w, 0, sys_deadline), p::wait_result::woken);
  t2.join();
}

TEST(wait, wait_for_huge_durations_does_not_overflow) {
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  p::word w{0};
  auto t = rouse_test::after_wait_calls(rouse_test::wait_calls() + 1, [&] {
    w.store(1, std::memory_order_release);
    p::wake_all(w);
  });
  while (w.load(std::memory_order_acquire) == 0) {
    EXPECT_EQ(p::wait_for(w, 0, std::chrono::nanoseconds::max()), p::wait_result::woken);
    if (w.load(std::memory_order_acquire) != 0) break;
    EXPECT_EQ(p::wait_for(w, 0, std::chrono::hours::max()), p::wait_result::woken);
    if (w.load(std::memory_order_acquire) != 0) break;
    EXPECT_EQ(p::wait_for(w, 0, std::chrono::duration<double>(1e300)), p::wait_result::woken);
  }
  t.join();
  // Deadlines far in the future on each clock do not wrap into the past.
  EXPECT_EQ(p::wait_until(w, 0, steady_clock::time_point::max()), p::wait_result::woken);
  EXPECT_EQ(p::wait_until(w, 0, system_clock::time_point::max()), p::wait_result::woken);
}

// --- wait_any ---------------------------------------------------------------

class wait_any_test : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override { previous_ = p::detail::force_wait_any_polling(GetParam()); }
  void TearDown() override { p::detail::force_wait_any_polling(previous_); }
  bool previous_ = false;
};

INSTANTIATE_TEST_SUITE_P(kernel_or_polling, wait_any_test, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "polling" : "native"; });

TEST_P(wait_any_test, returns_the_index_of_a_word_that_already_differs) {
  p::word w[3]{{0}, {0}, {9}};
  p::wait_entry const e[3] = {{&w[0], 0}, {&w[1], 0}, {&w[2], 0}};
  EXPECT_EQ(p::wait_any(e), 2);
  EXPECT_EQ(p::wait_any_until(e, steady_clock::now() + 1h), 2);
}

TEST_P(wait_any_test, returns_the_index_of_the_word_that_was_woken) {
  // The waiter sleeps (its wait call made) before the wake.
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  for (int target = 0; target < 3; ++target) {
    p::word w[3]{{0}, {0}, {0}};
    p::wait_entry const e[3] = {{&w[0], 0}, {&w[1], 0}, {&w[2], 0}};
    auto t = rouse_test::after_wait_calls(rouse_test::wait_calls() + 1, [&] {
      w[target].store(1, std::memory_order_release);
      p::wake_all(w[target]);
    });
    int r = -1;
    // Spurious returns report some index: re-check, as callers must.
    do {
      r = p::wait_any(e);
      ASSERT_GE(r, 0);
      ASSERT_LT(r, 3);
    } while (w[r].load(std::memory_order_acquire) == 0);
    EXPECT_EQ(r, target);
    t.join();
  }
}

TEST_P(wait_any_test, times_out_never_early) {
  p::word w[2]{{0}, {0}};
  p::wait_entry const e[2] = {{&w[0], 0}, {&w[1], 0}};
  auto const deadline = steady_clock::now() + 20ms;
  int r = 0;
  do {
    r = p::wait_any_until(e, deadline);
  } while (r != -1);
  EXPECT_GE(steady_clock::now(), deadline);
  EXPECT_EQ(p::wait_any_until(e, steady_clock::now() - 1s), -1);
}

TEST_P(wait_any_test, rejects_empty_and_oversized_spans) {
  EXPECT_EQ(p::wait_any(std::span<const p::wait_entry>{}), -1);
  std::vector<p::word> words(p::max_wait_entries + 1);
  std::vector<p::wait_entry> e;
  for (auto& w : words) e.push_back({&w, 0});
  EXPECT_EQ(p::wait_any(e), -1);
}

TEST_P(wait_any_test, works_with_the_maximum_number_of_entries) {
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  std::vector<p::word> words(p::max_wait_entries);
  std::vector<p::wait_entry> e;
  for (auto& w : words) e.push_back({&w, 0});
  auto t = rouse_test::after_wait_calls(rouse_test::wait_calls() + 1, [&] {
    words.back().store(1, std::memory_order_release);
    p::wake_all(words.back());
  });
  int r = -1;
  do {
    r = p::wait_any(e);
    ASSERT_GE(r, 0);
  } while (words[static_cast<std::size_t>(r)].load(std::memory_order_acquire) == 0);
  EXPECT_EQ(r, static_cast<int>(p::max_wait_entries) - 1);
  t.join();
}

// --- costs ------------------------------------------------------------------

TEST(wait, each_call_counts_one_wait_or_wake) {
  if (!p::syscall_counters_enabled()) GTEST_SKIP() << "syscall counters not compiled in";
  p::word w{1};
  auto const before = p::syscall_counters();
  p::wait(w, 0);  // word differs: one call, no sleep
  p::wake_one(w);
  p::wake_all(w);
  auto const after = p::syscall_counters();
  EXPECT_EQ(after.waits - before.waits, 1u);
  EXPECT_EQ(after.wakes - before.wakes, 2u);
}

// --- across processes (futex backend only) -----------------------------------

TEST(wait, process_shared_wait_and_wake_work_across_fork) {
  if (generic_backend()) GTEST_SKIP() << "the generic backend has no process-shared waits";
  void* const mem = ::mmap(nullptr, sizeof(p::word), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(mem, MAP_FAILED);
  auto* const w = new (mem) p::word{0};
  pid_t const child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The child waits until the parent stores 1; a lost wake fails by timeout
    // instead of hanging.
    auto const deadline = steady_clock::now() + 60s;
    while (w->load(std::memory_order_acquire) == 0) {
      if (p::wait_until(*w, 0, deadline, p::scope::process_shared) == p::wait_result::timed_out) _exit(2);
    }
    w->store(2, std::memory_order_release);
    p::wake_all(*w, p::scope::process_shared);
    _exit(0);
  }
  rouse_test::until_asleep(child, child);  // the child sleeps on the shared word
  w->store(1, std::memory_order_release);
  p::wake_all(*w, p::scope::process_shared);
  while (w->load(std::memory_order_acquire) == 1) p::wait(*w, 1, p::scope::process_shared);
  EXPECT_EQ(w->load(), 2u);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  ::munmap(mem, sizeof(p::word));
}

TEST(wake_cost, follows_the_wakes_that_woke_a_thread) {
  namespace p = rouse::platform;
  p::word w{0};
  auto const before = p::wake_cost();
  ASSERT_GT(before.count(), 0);
  // A wake with nobody to wake is not a sample.
  for (int i = 0; i < 100; ++i) p::wake_all(w);
  EXPECT_EQ(p::wake_cost(), before);
  // Wakes that wake a sleeper are. The sleeper is asleep in the kernel
  // before each wake; a wake slower than 1 ms is dropped as a stall, so
  // rounds go on until one made a sample (bounded).
  for (int round = 0; round < 200 && p::wake_cost() == before; ++round) {
    rouse_test::thread sleeper([&] {
      while (w.load() == 0) p::wait(w, 0);
    });
    rouse_test::until_asleep(sleeper);
    w.store(1);
    p::wake_all(w);
    sleeper.join();
    w.store(0);
  }
  auto const after = p::wake_cost();
  EXPECT_NE(after, before);
  EXPECT_GT(after.count(), 0);
  EXPECT_LE(after, std::chrono::nanoseconds(1ms));  // samples above 1 ms are dropped
}

}  // namespace
}  // namespace wait_test
