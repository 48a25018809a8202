// rouse/platform/deadline.hpp, and every `*_for(timeout)` of rouse with an
// endless timeout (hours::max(), duration::max()): it must wait for the
// other thread like the untimed call, never give up at once because the
// timeout overflowed when converted to nanoseconds.
#include "rouse/platform/deadline.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <shared_mutex>
#include <thread>

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
  expect_waits_for_release([&] { return rx.recv_for(hours::max()).has_value(); },
                           [&] { (void)std::move(tx).send(7); });
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
  expect_waits_for_release([&] { return static_cast<bool>(tx.send_for(2, hours::max())); },
                           [&] { (void)rx.recv(); });
}

TEST(endless_timeout, spsc_recv_for) {
  auto channel = rouse::channel::spsc<int>(1);
  auto& tx = channel.first;
  auto& rx = channel.second;
  expect_waits_for_release([&] { return rx.recv_for(hours::max()).has_value(); }, [&] { (void)tx.send(7); });
}

}  // namespace
