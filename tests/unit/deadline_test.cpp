// rouse/platform/deadline.hpp, and every `*_for(timeout)` of rouse with an
// endless timeout (hours::max(), duration::max()): it must wait for the
// other thread like the untimed call, never give up at once because the
// timeout overflowed when converted to nanoseconds.
#include "rouse/platform/deadline.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <limits>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <type_traits>

#include "rouse/atomic_wait.hpp"
#include "rouse/channel/channel.hpp"
#include "rouse/channel/oneshot.hpp"
#include "rouse/channel/spsc.hpp"
#include "rouse/condition_variable.hpp"
#include "rouse/event.hpp"
#include "rouse/eventcount.hpp"
#include "rouse/mutex.hpp"
#include "rouse/platform/wait.hpp"
#include "rouse/semaphore.hpp"
#include "rouse/shared_mutex.hpp"
#include "rouse/thread_parker.hpp"

namespace deadline_test {
namespace {

using namespace std::chrono_literals;
using std::chrono::hours;
using steady = std::chrono::steady_clock;
namespace p = rouse::platform;

TEST(deadline_after, non_positive_timeouts_are_now) {
  auto const before = steady::now();
  EXPECT_GE(p::deadline_after(0ms), before);
  auto const negative = p::deadline_after(-5s);
  auto const lowest = p::deadline_after(hours::min());
  auto const after = steady::now();
  EXPECT_LE(negative, after);
  EXPECT_LE(lowest, after);
  EXPECT_FALSE(p::is_unbounded(p::deadline_after(0ms)));
}

TEST(deadline_after, endless_timeouts_mean_no_deadline) {
  EXPECT_TRUE(p::is_unbounded(p::deadline_after(hours::max())));
  EXPECT_TRUE(p::is_unbounded(p::deadline_after(std::chrono::nanoseconds::max())));
  EXPECT_TRUE(p::is_unbounded(p::deadline_after(std::chrono::duration<double>(1e30))));
}

TEST(deadline_after, finite_timeouts_are_rounded_up_never_early) {
  auto const before = steady::now();
  auto const d = p::deadline_after(std::chrono::duration<double, std::milli>(1.5));
  EXPECT_GE(d - before, std::chrono::microseconds(1500));
  EXPECT_FALSE(p::is_unbounded(p::deadline_after(hours(24 * 365))));
}

// deadline_cast: the same instant, rounded up, or max()/min() beyond range.
using ns_point = steady::time_point;
template <class Duration>
using steady_point = std::chrono::time_point<steady, Duration>;

TEST(deadline_cast, converts_exactly_inside_the_range) {
  EXPECT_EQ(p::deadline_cast<std::chrono::nanoseconds>(steady_point<hours>(hours(2))), ns_point(hours(2)));
  EXPECT_EQ(p::deadline_cast<std::chrono::nanoseconds>(steady_point<hours>(hours(-2))), ns_point(hours(-2)));
  // 2,562,047 h is the last whole hour nanoseconds hold (2^63 ns ~ 2,562,047.8 h).
  EXPECT_EQ(p::deadline_cast<std::chrono::nanoseconds>(steady_point<hours>(hours(2'562'047))),
            ns_point(hours(2'562'047)));
  EXPECT_EQ(p::deadline_cast<std::chrono::nanoseconds>(steady_point<hours>(hours(-2'562'047))),
            ns_point(hours(-2'562'047)));
  EXPECT_EQ(p::deadline_cast<std::chrono::nanoseconds>(ns_point::max()), ns_point::max());
  EXPECT_EQ(p::deadline_cast<std::chrono::nanoseconds>(ns_point::min()), ns_point::min());
}

TEST(deadline_cast, saturates_beyond_the_range) {
  EXPECT_EQ(p::deadline_cast<std::chrono::nanoseconds>(steady_point<hours>(hours(2'562'048))), ns_point::max());
  EXPECT_EQ(p::deadline_cast<std::chrono::nanoseconds>(steady_point<hours>(hours(-2'562'048))), ns_point::min());
  EXPECT_EQ(p::deadline_cast<std::chrono::nanoseconds>(steady_point<hours>::max()), ns_point::max());
  EXPECT_EQ(p::deadline_cast<std::chrono::nanoseconds>(steady_point<hours>::min()), ns_point::min());
  using seconds_double = std::chrono::duration<double>;
  EXPECT_EQ(p::deadline_cast<std::chrono::nanoseconds>(steady_point<seconds_double>(seconds_double(1e30))),
            ns_point::max());
  EXPECT_EQ(p::deadline_cast<std::chrono::nanoseconds>(steady_point<seconds_double>(seconds_double(-1e30))),
            ns_point::min());
  double const nan = std::numeric_limits<double>::quiet_NaN();
  EXPECT_EQ(p::deadline_cast<std::chrono::nanoseconds>(steady_point<seconds_double>(seconds_double(nan))),
            ns_point::max());
}

TEST(deadline_cast, rounds_up_never_earlier) {
  using picoseconds = std::chrono::duration<long long, std::pico>;
  EXPECT_EQ(p::deadline_cast<std::chrono::nanoseconds>(steady_point<picoseconds>(picoseconds(1'500))),
            ns_point(std::chrono::nanoseconds(2)));
  EXPECT_EQ(p::deadline_cast<std::chrono::nanoseconds>(steady_point<picoseconds>(picoseconds(-1'500))),
            ns_point(std::chrono::nanoseconds(-1)));
  EXPECT_EQ(p::deadline_cast<std::chrono::nanoseconds>(steady_point<picoseconds>(picoseconds(2'000))),
            ns_point(std::chrono::nanoseconds(2)));
  using milliseconds_double = std::chrono::duration<double, std::milli>;
  EXPECT_EQ(
      p::deadline_cast<std::chrono::nanoseconds>(steady_point<milliseconds_double>(milliseconds_double(1.0000015))),
      ns_point(std::chrono::nanoseconds(1'000'002)));
  // To a coarser duration: up to the next whole tick.
  EXPECT_EQ(p::deadline_cast<std::chrono::seconds>(ns_point(std::chrono::nanoseconds(1'000'000'001))),
            steady_point<std::chrono::seconds>(std::chrono::seconds(2)));
}

// A ratio whose conversion to nanoseconds multiplies by 10^9 and divides by
// 3: std::chrono::duration_cast multiplies first and overflows long before
// the result does.
TEST(deadline_cast, odd_ratios_convert_without_intermediate_overflow) {
  using thirds = std::chrono::duration<long long, std::ratio<1, 3>>;
  // 27,670,116,110 thirds of a second = 9,223,372,036,666,666,666.67 ns: fits.
  EXPECT_EQ(p::deadline_cast<std::chrono::nanoseconds>(steady_point<thirds>(thirds(27'670'116'110))),
            ns_point(std::chrono::nanoseconds(9'223'372'036'666'666'667)));
  EXPECT_EQ(p::deadline_cast<std::chrono::nanoseconds>(steady_point<thirds>(thirds(-27'670'116'110))),
            ns_point(std::chrono::nanoseconds(-9'223'372'036'666'666'666)));
  EXPECT_EQ(p::deadline_cast<std::chrono::nanoseconds>(steady_point<thirds>(thirds(27'670'116'111))), ns_point::max());
}

TEST(deadline_cast, saturates_at_a_narrow_or_unsigned_count) {
  using milliseconds_int = std::chrono::duration<int, std::milli>;  // +-24.8 days
  using point_ms = steady_point<milliseconds_int>;
  EXPECT_EQ(p::deadline_cast<milliseconds_int>(ns_point(hours(1'000))), point_ms::max());
  EXPECT_EQ(p::deadline_cast<milliseconds_int>(ns_point(hours(-1'000))), point_ms::min());
  EXPECT_EQ(p::deadline_cast<milliseconds_int>(ns_point(std::chrono::nanoseconds(1'000'001))),
            point_ms(milliseconds_int(2)));
  using microseconds_unsigned = std::chrono::duration<unsigned long long, std::micro>;
  EXPECT_EQ(
      p::deadline_cast<std::chrono::nanoseconds>(steady_point<microseconds_unsigned>(microseconds_unsigned(~0ull))),
      ns_point::max());
  EXPECT_EQ(p::deadline_cast<std::chrono::nanoseconds>(steady_point<microseconds_unsigned>(microseconds_unsigned(7))),
            ns_point(std::chrono::nanoseconds(7'000)));
  using nanoseconds_unsigned = std::chrono::duration<unsigned long long, std::nano>;
  EXPECT_EQ(p::deadline_cast<nanoseconds_unsigned>(ns_point(-5s)),
            (std::chrono::time_point<steady, nanoseconds_unsigned>::min()));
}

TEST(clock_deadline, is_the_deadline_in_its_clock_duration) {
  auto const system_far = std::chrono::time_point<std::chrono::system_clock, hours>::max();
  EXPECT_TRUE(p::is_unbounded(p::clock_deadline(system_far)));
  static_assert(std::is_same_v<decltype(p::clock_deadline(system_far)), std::chrono::system_clock::time_point>);
  EXPECT_FALSE(p::is_unbounded(p::clock_deadline(steady_point<hours>(hours(1)))));
}

TEST(time_left, saturates_instead_of_overflowing) {
  EXPECT_EQ(p::time_left(ns_point(5s), ns_point(7s)), std::chrono::nanoseconds::zero());
  EXPECT_EQ(p::time_left(ns_point(7s), ns_point(5s)), std::chrono::nanoseconds(2s));
  // max() - (a now far below the epoch) would overflow.
  EXPECT_EQ(p::time_left(ns_point::max() - 1s, ns_point::min() + 1s), std::chrono::nanoseconds::max());
  EXPECT_EQ(p::time_left(ns_point(1s), ns_point::min() + 2s), ns_point(1s) - (ns_point::min() + 2s));
}

TEST(deadline_after, saturates_at_the_edge_of_the_range) {
  // Hours just under the room left from now, and just over it.
  EXPECT_FALSE(p::is_unbounded(p::deadline_after(
      hours(2'562'047) - std::chrono::duration_cast<hours>(steady::now().time_since_epoch()) - hours(2))));
  EXPECT_TRUE(p::is_unbounded(p::deadline_after(hours(2'562'048))));
  using thirds = std::chrono::duration<long long, std::ratio<1, 3>>;
  EXPECT_TRUE(p::is_unbounded(p::deadline_after(thirds::max())));
}

// Runs `release` on another thread after a short pause; `wait` must succeed.
void expect_waits_for_release(const std::function<bool()>& wait, const std::function<void()>& release) {
  std::thread other([&] {
    std::this_thread::sleep_for(20ms);
    release();
  });
  EXPECT_TRUE(wait());
  other.join();
}

TEST(endless_timeout, platform_wait_for) {
  p::word w{0};
  expect_waits_for_release(
      [&] {
        while (w.load() == 0) p::wait_for(w, 0, hours::max());
        return true;
      },
      [&] {
        w.store(1);
        p::wake_all(w);
      });
}

TEST(endless_timeout, atomic_wait_for) {
  std::atomic<std::uint64_t> a{0};
  expect_waits_for_release([&] { return rouse::atomic_wait_for(a, std::uint64_t{0}, hours::max()); },
                           [&] {
                             a.store(1);
                             rouse::atomic_notify_all(a);
                           });
}

TEST(endless_timeout, semaphore_try_acquire_for) {
  rouse::counting_semaphore<4> s(0);
  expect_waits_for_release([&] { return s.try_acquire_for(hours::max()); }, [&] { s.release(); });
}

TEST(endless_timeout, event_wait_for) {
  rouse::event e;
  expect_waits_for_release([&] { return e.wait_for(hours::max()); }, [&] { e.set(); });
}

TEST(endless_timeout, thread_parker_park_for) {
  rouse::thread_parker parker;
  std::atomic<bool> unparked{false};
  expect_waits_for_release(
      [&] {
        while (!unparked.load()) parker.park_for(hours::max());
        return true;
      },
      [&] {
        unparked.store(true);
        parker.unpark();
      });
}

TEST(endless_timeout, eventcount_await_for) {
  rouse::eventcount ec;
  std::atomic<bool> flag{false};
  expect_waits_for_release([&] { return ec.await_for([&] { return flag.load(); }, hours::max()); },
                           [&] {
                             flag.store(true);
                             ec.notify_all();
                           });
}

// A thread holds `m` exclusively for a moment; `try_lock` must wait for it.
template <class Mutex, class TryLock>
void expect_waits_for_holder(Mutex& m, TryLock try_lock) {
  std::atomic<bool> held{false};
  std::thread holder([&] {
    m.lock();
    held.store(true);
    std::this_thread::sleep_for(20ms);
    m.unlock();
  });
  while (!held.load()) std::this_thread::yield();
  EXPECT_TRUE(try_lock());
  holder.join();
}

TEST(endless_timeout, mutex_try_lock_for) {
  rouse::mutex m;
  expect_waits_for_holder(m, [&] {
    bool const got = m.try_lock_for(hours::max());
    if (got) m.unlock();
    return got;
  });
}

TEST(endless_timeout, shared_mutex_try_lock_shared_for) {
  rouse::shared_mutex m;
  expect_waits_for_holder(m, [&] {
    bool const got = m.try_lock_shared_for(hours::max());
    if (got) m.unlock_shared();
    return got;
  });
}

TEST(endless_timeout, shared_mutex_try_lock_for) {
  rouse::shared_mutex m;
  expect_waits_for_holder(m, [&] {
    bool const got = m.try_lock_for(hours::max());
    if (got) m.unlock();
    return got;
  });
}

TEST(endless_timeout, condition_variable_wait_for) {
  rouse::mutex m;
  rouse::condition_variable cv;
  bool ready = false;
  expect_waits_for_release(
      [&] {
        std::unique_lock lock(m);
        return cv.wait_for(lock, hours::max(), [&] { return ready; });
      },
      [&] {
        {
          std::lock_guard guard(m);
          ready = true;
        }
        cv.notify_all();
      });
}

TEST(endless_timeout, oneshot_recv_for) {
  auto channel = rouse::channel::oneshot<int>();  // not a structured binding: clang 14
  auto& tx = channel.first;                       // cannot capture those in a lambda
  auto& rx = channel.second;
  expect_waits_for_release([&] { return rx.recv_for(hours::max()).has_value(); }, [&] { (void)std::move(tx).send(7); });
}

TEST(endless_timeout, channel_recv_for) {
  auto channel = rouse::channel::bounded<int>(1);
  auto& tx = channel.first;
  auto& rx = channel.second;
  expect_waits_for_release([&] { return rx.recv_for(hours::max()).has_value(); }, [&] { (void)tx.send(7); });
}

TEST(endless_timeout, spsc_send_for) {
  auto channel = rouse::channel::spsc<int>(1);
  auto& tx = channel.first;
  auto& rx = channel.second;
  ASSERT_TRUE(static_cast<bool>(tx.send(1)));
  expect_waits_for_release([&] { return static_cast<bool>(tx.send_for(2, hours::max())); }, [&] { (void)rx.recv(); });
}

TEST(endless_timeout, spsc_recv_for) {
  auto channel = rouse::channel::spsc<int>(1);
  auto& tx = channel.first;
  auto& rx = channel.second;
  expect_waits_for_release([&] { return rx.recv_for(hours::max()).has_value(); }, [&] { (void)tx.send(7); });
}

}  // namespace
}  // namespace deadline_test
