// The `_for(d)` forms of the async primitives at the ends of the duration
// range. A timeout too long to represent is no timeout: the wait waits for
// the other side (hours::max() in nanoseconds overflowed, and the deadline
// came out in the past, so these timed out at once). A timeout of zero or
// less never suspends and never overflows. Every long wait here is ended by
// another thread after a short pause; nothing checks a time.
#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <thread>

#include "rouse/async/barrier.hpp"
#include "rouse/async/channel.hpp"
#include "rouse/async/condition_variable.hpp"
#include "rouse/async/event.hpp"
#include "rouse/async/guarded.hpp"
#include "rouse/async/latch.hpp"
#include "rouse/async/mutex.hpp"
#include "rouse/async/notify.hpp"
#include "rouse/async/run_loop.hpp"
#include "rouse/async/semaphore.hpp"
#include "rouse/async/shared_mutex.hpp"
#include "rouse/async/sleep.hpp"
#include "rouse/async/spawn.hpp"
#include "rouse/async/task.hpp"
#include "rouse/async/timeout.hpp"

namespace async_timeout_range_test {
namespace {

namespace ra = rouse::async;
namespace ch = rouse::async::channel;
using namespace std::chrono_literals;
using rouse::channel::status;

constexpr auto endless = std::chrono::hours::max();
constexpr auto far_past = std::chrono::hours::min();

// Runs `later` on another thread after a short pause, while the caller
// waits; joins it.
template <class F>
struct after_a_pause {
  std::thread t;
  explicit after_a_pause(F f) : t([f] {
    std::this_thread::sleep_for(20ms);
    f();
  }) {}
  ~after_a_pause() { t.join(); }
};
template <class F>
after_a_pause(F) -> after_a_pause<F>;

TEST(async_timeout_range, a_channels_blocking_for_forms_wait_out_an_endless_timeout) {
  {
    auto [tx, rx] = ch::bounded<int>(1);
    after_a_pause send([&tx = tx] { (void)tx.try_send(7); });
    auto r = rx.recv_blocking_for(endless);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(*r, 7);
  }
  {
    auto [tx, rx] = ch::bounded<int>(1);
    ASSERT_TRUE(tx.try_send(1));
    after_a_pause take([&rx = rx] { (void)rx.try_recv(); });
    EXPECT_TRUE(tx.send_blocking_for(2, endless));
  }
  {
    auto [tx, rx] = ch::bounded<int>(1);
    ASSERT_TRUE(tx.try_send(1));
    after_a_pause take([&rx = rx] { (void)rx.try_recv(); });
    EXPECT_TRUE(static_cast<bool>(tx.reserve_blocking_for(std::chrono::seconds::max())));
  }
  auto [tx, rx] = ch::bounded<int>(1);
  EXPECT_EQ(rx.recv_blocking_for(far_past).status(), status::timed_out);
}

TEST(async_timeout_range, the_other_blocking_for_forms_wait_out_an_endless_timeout) {
  {
    ra::notify n;
    after_a_pause go([&] { n.notify_one(); });
    EXPECT_TRUE(n.wait_blocking_for(endless));
  }
  {
    ra::manual_reset_event e;
    after_a_pause go([&] { e.set(); });
    EXPECT_TRUE(e.wait_blocking_for(endless));
  }
  {
    ra::auto_reset_event e;
    after_a_pause go([&] { e.set(); });
    EXPECT_TRUE(e.wait_blocking_for(endless));
  }
  {
    ra::latch l(1);
    after_a_pause go([&] { l.count_down(); });
    EXPECT_TRUE(l.wait_blocking_for(endless));
  }
  {
    ra::barrier b(2);
    after_a_pause go([&] { (void)b.arrive(); });
    EXPECT_TRUE(b.wait_blocking_for(b.arrive(), endless));
  }
  {
    ra::semaphore s(0);
    after_a_pause go([&] { s.release(1); });
    EXPECT_TRUE(static_cast<bool>(s.try_acquire_for(1, endless)));
  }
  {
    ra::mutex m;
    ASSERT_TRUE(m.try_lock());
    after_a_pause go([&] { m.unlock(); });
    ASSERT_TRUE(m.try_lock_for(endless));
    m.unlock();
  }
  {
    ra::shared_mutex m;
    ASSERT_TRUE(m.try_lock());
    after_a_pause go([&] { m.unlock(); });
    ASSERT_TRUE(m.try_lock_shared_for(endless));
    m.unlock_shared();
  }
  {
    ra::mutex m;
    ra::condition_variable cv;
    bool ready = false;
    after_a_pause go([&] {
      auto g = m.lock_blocking();
      ready = true;
      cv.notify_one();
    });
    auto g = m.lock_blocking();
    EXPECT_TRUE(cv.wait_blocking_for(g, endless, [&] { return ready; }));
  }
  ra::notify n;
  EXPECT_FALSE(n.wait_blocking_for(far_past));
  ra::semaphore s(0);
  EXPECT_FALSE(static_cast<bool>(s.try_acquire_for(1, far_past)));
}

ra::task<int> value_soon() {
  co_await ra::sleep_for(1ms);
  co_return 5;
}

TEST(async_timeout_range, coroutine_timeouts_at_both_ends) {
  ra::run_loop loop;
  // Endless: the operation's own result.
  auto r = loop.run_until_complete(
      []() -> ra::task<std::optional<int>> { co_return co_await ra::with_timeout(value_soon(), endless); }());
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(*r, 5);
  // Far past: no suspension, no overflow.
  loop.run_until_complete([]() -> ra::task<> { co_await ra::sleep_for(far_past); }());
  auto [tx, rx] = ch::bounded<int>(1);
  auto timed = loop.run_until_complete([](ch::receiver<int>& rx) -> ra::task<status> {
    co_return (co_await rx.recv_for(far_past)).status();
  }(rx));
  EXPECT_EQ(timed, status::timed_out);
}

ra::task<int> sends_soon(ch::sender<int>& tx) {
  co_await ra::sleep_for(1ms);
  (void)tx.try_send(9);
  co_return 0;
}

// Deadlines on another clock, or in a coarse duration, at both ends of
// their range: converted without overflow (a far one is no deadline, a
// long-passed one has passed).
TEST(async_timeout_range, deadlines_in_other_clocks_and_durations_at_both_ends) {
  using sys_hours = std::chrono::time_point<std::chrono::system_clock, std::chrono::hours>;
  using steady_hours = std::chrono::time_point<std::chrono::steady_clock, std::chrono::hours>;
  ra::run_loop loop;
  {
    auto [tx, rx] = ch::bounded<int>(1);
    auto got = loop.run_until_complete([](ch::sender<int>& tx, ch::receiver<int>& rx) -> ra::task<int> {
      auto s = ra::spawn(co_await ra::this_task::get_scheduler(), sends_soon(tx));
      auto r = co_await rx.recv_until(sys_hours::max());
      co_await std::move(s);
      co_return r ? *r : -1;
    }(tx, rx));
    EXPECT_EQ(got, 9);
  }
  {
    auto [tx, rx] = ch::bounded<int>(1);
    auto st = loop.run_until_complete([](ch::receiver<int>& rx) -> ra::task<status> {
      co_return (co_await rx.recv_until(steady_hours::min())).status();
    }(rx));
    EXPECT_EQ(st, status::timed_out);
  }
  auto late = loop.run_until_complete([]() -> ra::task<std::optional<int>> {
    co_return co_await ra::with_deadline(value_soon(), sys_hours::max());
  }());
  ASSERT_TRUE(late.has_value());
  EXPECT_EQ(*late, 5);
  auto passed = loop.run_until_complete([]() -> ra::task<std::optional<int>> {
    co_return co_await ra::with_deadline(value_soon(), std::chrono::system_clock::time_point::min());
  }());
  EXPECT_FALSE(passed.has_value());
}

}  // namespace
}  // namespace async_timeout_range_test
