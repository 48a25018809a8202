// rouse::io::wait_on: a coroutine waits on a futex word; a FUTEX_WAKE from a
// thread resumes it. On both backends: io_uring uses IORING_OP_FUTEX_WAIT
// where the kernel has it (6.7), epoll (or an older kernel) the helper
// thread. Cancellation (timeout, destroyed frame) leaves no waiter on the
// word, and a ring closed while a wait is pending leaves no stale waiter.
#include "rouse/io/wait_on.hpp"

#include <dirent.h>
#include <gtest/gtest.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>

#include <atomic>
#include <chrono>
#include <climits>
#include <coroutine>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "eventually.hpp"
#include "io_test.hpp"
#include "rouse/async/sleep.hpp"
#include "rouse/async/spawn.hpp"
#include "rouse/async/task.hpp"
#include "rouse/async/timeout.hpp"
#include "rouse/io/async_fd.hpp"
#include "rouse/io/reactor.hpp"
#include "self_ending.hpp"

namespace io_wait_on_test {
namespace {
using namespace std::chrono_literals;
using rouse::async::task;
using rouse::io::event_loop;
using rouse::io::wait_on;

class io_wait_on : public ::testing::TestWithParam<rouse::io::backend> {};

// How many waiters a wake-all finds on the word (0: none left).
long wake_all(std::atomic<std::uint32_t>& word) {
  return ::syscall(SYS_futex, &word, FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr, 0);
}

TEST_P(io_wait_on, returns_at_once_when_the_word_differs) {
  event_loop loop(GetParam());
  std::atomic<std::uint32_t> word{7};
  loop.run_until_complete([](event_loop& loop, std::atomic<std::uint32_t>& w) -> task<void> {
    co_await wait_on(loop, w, 0);  // 7 != 0: no wait
  }(loop, word));
}

TEST_P(io_wait_on, a_futex_wake_from_a_thread_resumes_it) {
  event_loop loop(GetParam());
  std::atomic<std::uint32_t> word{0};
  std::atomic<bool> waiting{false};
  std::thread waker([&] {
    while (!waiting.load()) std::this_thread::yield();
    word.store(1);
    (void)wake_all(word);
  });
  int rounds = loop.run_until_complete(
      [](event_loop& loop, std::atomic<std::uint32_t>& w, std::atomic<bool>& waiting) -> task<int> {
        int n = 0;
        waiting.store(true);
        while (w.load() == 0) {  // a futex wait may return spuriously
          co_await wait_on(loop, w, 0);
          ++n;
        }
        co_return n;
      }(loop, word, waiting));
  waker.join();
  EXPECT_GE(rounds, 0);
  EXPECT_EQ(word.load(), 1u);
}

TEST_P(io_wait_on, many_coroutines_wait_on_one_word) {
  event_loop loop(GetParam());
  std::atomic<std::uint32_t> word{0};
  std::atomic<int> started{0};
  constexpr int waiters = 8;  // the helper path costs a thread each
  std::thread waker([&] {
    while (started.load() < waiters) std::this_thread::yield();
    word.store(1);
    (void)wake_all(word);
  });
  loop.run_until_complete([](event_loop& loop, std::atomic<std::uint32_t>& w, std::atomic<int>& started) -> task<void> {
    rouse::async::task_scope scope;
    for (int i = 0; i < waiters; ++i)
      scope.spawn(loop.get_scheduler(), [](event_loop& loop, std::atomic<std::uint32_t>& w,
                                           std::atomic<int>& started) -> task<void> {
        started.fetch_add(1);
        while (w.load() == 0) co_await wait_on(loop, w, 0);
      }(loop, w, started));
    co_await scope.join();
  }(loop, word, started));
  waker.join();
}

TEST_P(io_wait_on, timeout_cancels_and_leaves_no_waiter) {
  event_loop loop(GetParam());
  std::atomic<std::uint32_t> word{0};
  loop.run_until_complete([](event_loop& loop, std::atomic<std::uint32_t>& w) -> task<void> {
    for (int i = 0; i < 5; ++i) {
      bool const woken = co_await rouse::async::with_timeout(wait_on(loop, w, 0), 2ms);
      EXPECT_FALSE(woken);
      EXPECT_EQ(wake_all(w), 0) << "a cancelled wait left a waiter on the word";
    }
  }(loop, word));
}

using rouse_test::handmade;

handmade wait_once(rouse::io::reactor& r, std::atomic<std::uint32_t>& w, bool& resumed) {
  co_await wait_on(r, w, 0);
  resumed = true;
}

TEST_P(io_wait_on, destroyed_frame_leaves_no_waiter) {
  event_loop loop(GetParam());
  std::atomic<std::uint32_t> word{0};
  bool resumed = false;
  handmade c = wait_once(loop, word, resumed);
  c.h.resume();  // waits (the kernel's request, or the helper thread)
  EXPECT_FALSE(resumed);
  c.h.destroy();
  EXPECT_EQ(wake_all(word), 0);
  loop.run_once();  // the cancelled request's completion is reaped quietly
  EXPECT_FALSE(resumed);
}

// Two waits whose completions the reactor hands out in one batch, for
// coroutines without an executor (resumed inline, one after the other):
// whichever resumes first destroys the other's frame, whose wait has
// completed but which has not been resumed. The destroyed wait must be
// withdrawn from the batch: it must neither hang the destructor (only the
// loop's thread, inside that destructor, could deliver it) nor be resumed.
handmade wait_then_destroy(rouse::io::reactor& r, std::atomic<std::uint32_t>& w, handmade& other, int& resumed) {
  co_await wait_on(r, w, 0);
  ++resumed;
  other.h.destroy();
  other.h = {};
}

TEST_P(io_wait_on, a_frame_destroyed_by_an_earlier_completion_of_its_batch_is_withdrawn) {
  event_loop loop(GetParam());
  if (!loop.get_reactor().futex_wait_native()) GTEST_SKIP() << "no IORING_OP_FUTEX_WAIT here: no batch of waits";
  std::atomic<std::uint32_t> w1{0};
  std::atomic<std::uint32_t> w2{0};
  int resumed = 0;
  handmade a;
  handmade b;
  a = wait_then_destroy(loop, w1, b, resumed);
  b = wait_then_destroy(loop, w2, a, resumed);
  a.h.resume();  // both wait in the kernel
  b.h.resume();
  w1.store(1);
  ASSERT_EQ(wake_all(w1), 1);
  w2.store(1);
  ASSERT_EQ(wake_all(w2), 1);
  loop.run_until_complete([]() -> task<void> { co_await rouse::async::sleep_for(5ms); }());
  EXPECT_EQ(resumed, 1);
  EXPECT_NE(static_cast<bool>(a.h), static_cast<bool>(b.h)) << "exactly one frame is left";
  if (a.h) a.h.destroy();
  if (b.h) b.h.destroy();
  a.h = {};
  b.h = {};
}

// The same when the frame is destroyed by an I/O completion of the batch
// (operations are handed out before futex waits): the futex wait must be
// withdrawable from the first resumption of the batch on.
handmade read_then_destroy(rouse::io::async_fd& r, handmade& other, int& resumed) {
  std::byte b[16];
  (void)co_await r.read_some(std::span<std::byte>(b, 16));
  ++resumed;
  if (other.h) {
    other.h.destroy();
    other.h = {};
  }
}
handmade wait_and_count(rouse::io::reactor& r, std::atomic<std::uint32_t>& w, int& resumed) {
  co_await wait_on(r, w, 0);
  ++resumed;
}

TEST_P(io_wait_on, a_futex_wait_destroyed_by_an_io_completion_of_its_batch_is_withdrawn) {
  event_loop loop(GetParam());
  if (!loop.get_reactor().futex_wait_native()) GTEST_SKIP() << "no IORING_OP_FUTEX_WAIT here: no batch of waits";
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  auto rd = rouse::io::async_fd::adopt(loop, fds[0]);
  ASSERT_TRUE(rd);
  std::atomic<std::uint32_t> w{0};
  int resumed = 0;
  handmade reader;
  handmade waiter;
  reader = read_then_destroy(*rd, waiter, resumed);
  waiter = wait_and_count(loop, w, resumed);
  reader.h.resume();
  waiter.h.resume();
  loop.run_until_complete([]() -> task<void> { co_await rouse::async::sleep_for(2ms); }());  // the read's poll is armed
  ASSERT_EQ(::write(fds[1], "x", 1), 1);
  w.store(1);
  ASSERT_EQ(wake_all(w), 1);
  loop.run_until_complete([]() -> task<void> { co_await rouse::async::sleep_for(5ms); }());  // hangs before
  EXPECT_EQ(resumed, 1);
  EXPECT_FALSE(waiter.h);
  if (reader.h) reader.h.destroy();
  reader.h = {};
  ::close(fds[1]);
}

// A coroutine without an executor resumes where the wake lands: on the
// helper thread (epoll) or the loop's thread (io_uring). Its frame then ends
// there (final_suspend never suspends), joining nothing of its own.
using rouse_test::self_ending;

self_ending wait_then_flag(rouse::io::reactor& r, std::atomic<std::uint32_t>& w, std::atomic<bool>& resumed) {
  while (w.load() == 0) co_await wait_on(r, w, 0);
  resumed.store(true);
}

TEST_P(io_wait_on, coroutine_without_an_executor_resumes_on_the_waking_side) {
  event_loop loop(GetParam());
  std::atomic<std::uint32_t> word{0};
  std::atomic<bool> resumed{false};
  wait_then_flag(loop, word, resumed);  // runs to the wait
  EXPECT_FALSE(resumed.load());
  word.store(1);
  (void)wake_all(word);
  if (loop.get_reactor().futex_wait_native())
    loop.executor().run_until([&] { return resumed.load(); });  // the ring reports it
  else
    while (!resumed.load()) std::this_thread::yield();  // the helper resumes it
  EXPECT_TRUE(resumed.load());
}

// Regression: closing the ring (destroying the reactor) while a futex wait
// is pending must not leave the kernel's waiter on the word, and the frame
// destroyed afterwards must not reach the dead reactor.
TEST_P(io_wait_on, ring_closed_while_waiting_leaves_no_stale_waiter) {
  auto loop = std::make_unique<event_loop>(GetParam());
  if (!loop->get_reactor().futex_wait_native()) GTEST_SKIP() << "no IORING_OP_FUTEX_WAIT here: no ring to close";
  std::atomic<std::uint32_t> word{0};
  bool resumed = false;
  handmade c = wait_once(*loop, word, resumed);
  c.h.resume();
  loop.reset();  // the ring closes with the wait pending
  EXPECT_EQ(wake_all(word), 0) << "a stale waiter survived the ring";
  EXPECT_FALSE(resumed);
  c.h.destroy();
}

// The threads of this process now.
int thread_count() {
  int n = 0;
  if (DIR* const d = ::opendir("/proc/self/task")) {
    while (dirent* const e = ::readdir(d))
      if (e->d_name[0] != '.') ++n;
    ::closedir(d);
  }
  return n;
}

// Regression: a futex wait whose submit failed (EAGAIN: the request stays
// published in the submission ring, for the loop's next enter) was taken
// for "not queued": its record was freed and a helper thread waited
// instead, and the request, submitted later, completed with the freed
// record's address (ASan: use after free; else the ring's teardown counted
// one completion too many and hung). The wait must stand, carried by the
// loop's next enter: no helper thread, resumed once the word changed.
TEST_P(io_wait_on, a_failed_submit_keeps_the_wait_queued) {
  if (GetParam() != rouse::io::backend::io_uring) GTEST_SKIP() << "io_uring's submit only";
  auto loop = std::make_unique<event_loop>(GetParam());
  if (!loop->get_reactor().futex_wait_native()) GTEST_SKIP() << "no IORING_OP_FUTEX_WAIT here";
  std::atomic<std::uint32_t> word{0};
  int threads_before = 0, threads_waiting = -1, rounds = 0;
  bool filtered = false;
  // The filter stays with the thread that installs it: a thread of its own.
  std::thread driver([&] {
    filtered = rouse_test::fail_submit_only_enters();
    if (!filtered) return;
    threads_before = thread_count();
    loop->run_until_complete([](event_loop& loop, std::atomic<std::uint32_t>& w, int& waiting,
                                int& rounds) -> task<void> {
      rouse::async::task_scope scope;
      scope.spawn(loop.get_scheduler(), [](event_loop& loop, std::atomic<std::uint32_t>& w, int& rounds) -> task<void> {
        while (w.load() == 0) {  // its submit fails: the wait must stand anyway
          co_await wait_on(loop, w, 0);
          ++rounds;
        }
      }(loop, w, rounds));
      scope.spawn(loop.get_scheduler(), [](std::atomic<std::uint32_t>& w, int& waiting) -> task<void> {
        waiting = thread_count();  // the first waits now: natively, or with a helper thread
        w.store(1);
        (void)wake_all(w);
        co_return;
      }(w, waiting));
      co_await scope.join();
    }(*loop, word, threads_waiting, rounds));
  });
  driver.join();
  if (!filtered) GTEST_SKIP() << "cannot install a seccomp filter here";
  // At most as many: a helper an earlier test detached may be ending.
  EXPECT_LE(threads_waiting, threads_before) << "the wait fell back to a helper thread";
  EXPECT_GE(rounds, 1);
  loop.reset();  // the ring's teardown reaps every completion it expects, no more
  EXPECT_EQ(wake_all(word), 0);
}

// The same from a thread that does not drive the loop, while the loop
// sleeps: the request published by the failed submit waits for the loop's
// next enter, so the loop must be woken for it (or the wait never reaches
// the kernel, and the loop sleeps on).
TEST_P(io_wait_on, a_failed_submit_from_another_thread_wakes_the_loop) {
  if (GetParam() != rouse::io::backend::io_uring) GTEST_SKIP() << "io_uring's submit only";
  event_loop loop(GetParam());
  if (!loop.get_reactor().futex_wait_native()) GTEST_SKIP() << "no IORING_OP_FUTEX_WAIT here";
  std::atomic<std::uint32_t> word{0};
  std::atomic<bool> resumed{false};
  std::atomic<bool> running{false};
  std::thread driver([&] {
    running = true;
    loop.run();  // sleeps: nothing is ready
  });
  rouse_test::eventually([&] { return running.load(); });
  rouse_test::handmade c = [](rouse::io::reactor& r, std::atomic<std::uint32_t>& w,
                              std::atomic<bool>& resumed) -> rouse_test::handmade {
    co_await wait_on(r, w, 0);
    resumed = true;  // on the loop's thread (no executor: the completion resumes it)
  }(loop.get_reactor(), word, resumed);
  bool filtered = false;
  std::thread starter([&] {
    filtered = rouse_test::fail_submit_only_enters();
    if (filtered) c.h.resume();  // starts the wait here; its submit fails
  });
  starter.join();
  if (filtered) {
    word.store(1);
    (void)wake_all(word);
    rouse_test::eventually([&] { return resumed.load(); });  // a loop left asleep hangs here
  }
  loop.finish();
  driver.join();
  if (!filtered) {
    c.h.destroy();
    GTEST_SKIP() << "cannot install a seccomp filter here";
  }
  c.h.destroy();  // suspended at its end
  EXPECT_EQ(wake_all(word), 0);
}

// More waits than the submission ring holds, each submit failing on the
// loop's own thread: once the ring is full of published requests, taking
// an entry must submit them by a call that works (it looped on the failing
// submit, holding the ring's lock: a hang).
TEST_P(io_wait_on, a_ring_full_of_failed_submits_is_submitted_another_way) {
  if (GetParam() != rouse::io::backend::io_uring) GTEST_SKIP() << "io_uring's submit only";
  auto loop = std::make_unique<event_loop>(GetParam());
  if (!loop->get_reactor().futex_wait_native()) GTEST_SKIP() << "no IORING_OP_FUTEX_WAIT here";
  constexpr int waiters = 300;  // the ring has 256 entries
  std::vector<std::atomic<std::uint32_t>> words(waiters);
  std::atomic<int> resumed{0};
  bool filtered = false;
  std::thread driver([&] {
    filtered = rouse_test::fail_submit_only_enters();
    if (!filtered) return;
    loop->run_until_complete([](event_loop& loop, std::vector<std::atomic<std::uint32_t>>& words,
                                std::atomic<int>& resumed) -> task<void> {
      rouse::async::task_scope scope;
      for (auto& w : words)
        scope.spawn(loop.get_scheduler(),
                    [](event_loop& loop, std::atomic<std::uint32_t>& w, std::atomic<int>& resumed) -> task<void> {
                      while (w.load() == 0) co_await wait_on(loop, w, 0);
                      resumed.fetch_add(1);
                    }(loop, w, resumed));
      scope.spawn(loop.get_scheduler(), [](std::vector<std::atomic<std::uint32_t>>& words) -> task<void> {
        for (auto& w : words) {
          w.store(1);
          (void)wake_all(w);
        }
        co_return;
      }(words));
      co_await scope.join();
    }(*loop, words, resumed));
  });
  driver.join();
  if (!filtered) GTEST_SKIP() << "cannot install a seccomp filter here";
  EXPECT_EQ(resumed.load(), waiters);
  loop.reset();
}

// The loop destroyed on a thread whose submits fail, with a wait pending:
// the teardown's cancels are published, not submitted, and its waits for
// their completions must submit them (it waited with nothing to submit
// for a completion that never came: a hang).
TEST_P(io_wait_on, a_loop_destroyed_where_submits_fail_withdraws_its_waits) {
  if (GetParam() != rouse::io::backend::io_uring) GTEST_SKIP() << "io_uring's submit only";
  auto loop = std::make_unique<event_loop>(GetParam());
  if (!loop->get_reactor().futex_wait_native()) GTEST_SKIP() << "no IORING_OP_FUTEX_WAIT here";
  std::atomic<std::uint32_t> word{0};
  bool resumed = false;
  handmade c = wait_once(*loop, word, resumed);
  c.h.resume();  // submitted from this thread
  bool filtered = false;
  std::thread destroyer([&] {
    filtered = rouse_test::fail_submit_only_enters();
    loop.reset();  // unfiltered too, where the filter cannot be installed
  });
  destroyer.join();
  EXPECT_FALSE(resumed);
  c.h.destroy();
  EXPECT_EQ(wake_all(word), 0) << "a stale waiter survived the ring";
  if (!filtered) GTEST_SKIP() << "cannot install a seccomp filter here";
}

TEST_P(io_wait_on, native_path_is_used_where_the_kernel_has_it) {
  event_loop loop(GetParam());
  if (GetParam() == rouse::io::backend::epoll) {
    EXPECT_FALSE(loop.get_reactor().futex_wait_native());
  } else {
    // Linux 6.7 added IORING_OP_FUTEX_WAIT; the reactor probed for it.
    std::printf("io_uring futex wait: %s\n", loop.get_reactor().futex_wait_native() ? "native" : "helper thread");
  }
}

INSTANTIATE_TEST_SUITE_P(backends, io_wait_on, ::testing::ValuesIn(rouse_test::io_backends()),
                         rouse_test::io_backend_name);

}  // namespace
}  // namespace io_wait_on_test
