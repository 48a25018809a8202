// Every public `*_until` of rouse with a deadline too far from now to hold in
// nanoseconds: a time_point in hours 3,000,000 h ahead (~342 years), or
// time_point::max() of a coarse duration, on steady_clock, system_clock and a
// clock of the test's own. Converted naively to nanoseconds such a deadline
// overflows into the past (the wait times out at once) or, far in the past,
// into the future (the wait hangs).
//
// Far future: the call must wait like the untimed one. Each test lets the
// other side act only once the waiter is known to be asleep (a wait system
// call counted after it started; rouse's tests count them) or has returned;
// the call must not have returned before that, and must then succeed.
// Far past (hours::min(), -3,000,000 h, -1e30 s), and now (a zero timeout):
// the call must time out at once: no yield, no wait system call (counted in
// rouse's test builds; a spin's yields cost a time slice each when the CPUs
// are busy), and a hang is caught by the CTest timeout.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <functional>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <stop_token>
#include <string>
#include <thread>
#include <utility>

#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "clocks.hpp"
#include "rouse/atomic_wait.hpp"
#include "rouse/channel/channel.hpp"
#include "rouse/channel/oneshot.hpp"
#include "rouse/channel/select.hpp"
#include "rouse/channel/spsc.hpp"
#include "rouse/condition_variable.hpp"
#include "rouse/event.hpp"
#include "rouse/eventcount.hpp"
#include "rouse/guarded.hpp"
#include "rouse/mutex.hpp"
#include "rouse/platform/counters.hpp"
#include "rouse/platform/wait.hpp"
#include "rouse/recursive_mutex.hpp"
#include "rouse/semaphore.hpp"
#include "rouse/shared_mutex.hpp"
#include "rouse/thread_parker.hpp"

namespace far_deadline_test {
namespace {

using std::chrono::hours;
using std::chrono::time_point;
using steady = std::chrono::steady_clock;
using sys = std::chrono::system_clock;
using seconds_double = std::chrono::duration<double>;
namespace p = rouse::platform;
namespace ch = rouse::channel;

// A clock the OS does not know (rouse waits on it in steady slices).
using own_clock = rouse_test::other_clock;

template <class Clock>
time_point<Clock, hours> hours_ahead(long long n) {
  return std::chrono::time_point_cast<hours>(Clock::now()) + hours(n);
}

// Calls f(deadline) for each far-future deadline: every one is "no deadline".
template <class F>
void for_each_far_future(F&& f) {
  SCOPED_TRACE("far future");
  {
    SCOPED_TRACE("steady_clock, now + 3,000,000 h");
    f(hours_ahead<steady>(3'000'000));
  }
  {
    SCOPED_TRACE("steady_clock, time_point<hours>::max()");
    f(time_point<steady, hours>::max());
  }
  {
    SCOPED_TRACE("steady_clock, time_point<duration<double>>(1e30 s)");
    f(time_point<steady, seconds_double>(seconds_double(1e30)));
  }
  {
    SCOPED_TRACE("steady_clock, time_point::max()");
    f(steady::time_point::max());
  }
  {
    SCOPED_TRACE("system_clock, now + 3,000,000 h");
    f(hours_ahead<sys>(3'000'000));
  }
  {
    SCOPED_TRACE("system_clock, time_point<hours>::max()");
    f(time_point<sys, hours>::max());
  }
  {
    SCOPED_TRACE("system_clock, time_point::max()");
    f(sys::time_point::max());
  }
  {
    SCOPED_TRACE("own clock, now + 3,000,000 h");
    f(hours_ahead<own_clock>(3'000'000));
  }
}

// Calls f(deadline) with `deadline`, and checks that it neither yielded nor
// asked to sleep: a deadline that has passed gives up after one look.
template <class F, class Deadline>
void at_once(F& f, Deadline deadline) {
  p::syscall_counts const before = p::syscall_counters();
  f(deadline);
  p::syscall_counts const after = p::syscall_counters();
  EXPECT_EQ(after.yields, before.yields) << "yielded after its deadline";
  EXPECT_EQ(after.waits, before.waits) << "asked to sleep after its deadline";
}

// Calls f(deadline) for each far-past deadline, and for now (a zero
// timeout): every one has passed.
template <class F>
void for_each_far_past(F&& f) {
  SCOPED_TRACE("far past");
  {
    SCOPED_TRACE("steady_clock, time_point<hours>::min()");
    at_once(f, time_point<steady, hours>::min());
  }
  {
    SCOPED_TRACE("steady_clock, -3,000,000 h");
    at_once(f, time_point<steady, hours>(hours(-3'000'000)));
  }
  {
    SCOPED_TRACE("steady_clock, time_point<duration<double>>(-1e30 s)");
    at_once(f, time_point<steady, seconds_double>(seconds_double(-1e30)));
  }
  {
    SCOPED_TRACE("steady_clock::now(), a zero timeout");
    at_once(f, steady::now());
  }
  {
    SCOPED_TRACE("system_clock, time_point<hours>::min()");
    at_once(f, time_point<sys, hours>::min());
  }
  {
    SCOPED_TRACE("system_clock, -3,000,000 h");
    at_once(f, time_point<sys, hours>(hours(-3'000'000)));
  }
  {
    SCOPED_TRACE("own clock, -3,000,000 h");
    at_once(f, time_point<own_clock, hours>(hours(-3'000'000)));
  }
}

// True once thread `tid` of this process is asleep (state S in procfs): with
// a wait system call counted, it sleeps in that wait, not just before it.
// Elsewhere than Linux, the count alone is the evidence.
bool asleep(long tid) {
#if defined(__linux__)
  std::ifstream stat("/proc/self/task/" + std::to_string(tid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return true;
  std::size_t const name_end = line.rfind(')');  // "tid (name) S ..."
  return name_end != std::string::npos && name_end + 2 < line.size() && line[name_end + 2] == 'S';
#else
  (void)tid;
  return true;
#endif
}

long current_tid() {
#if defined(__linux__)
  return static_cast<long>(::syscall(SYS_gettid));
#else
  return 0;
#endif
}

// Runs `wait` on a new thread, and `release` on this one once the waiter is
// asleep (a wait system call counted since it started, and the thread in
// state S; without the counters, once it has started) or has returned. The
// waiter must not have returned before the release, and must then report
// success.
void expect_waits_for_release(const std::function<bool()>& wait, const std::function<void()>& release) {
  bool const counted = p::syscall_counters_enabled();
  std::uint64_t const base = p::syscall_counters().waits;
  std::atomic<long> tid{-1};
  std::atomic<bool> returned{false};
  bool result = false;
  std::thread waiter([&] {
    tid.store(current_tid());
    result = wait();
    returned.store(true);
  });
  auto const sleeping = [&] {
    if (tid.load() == -1) return false;
    return !counted || (p::syscall_counters().waits > base && asleep(tid.load()));
  };
  while (!returned.load() && !sleeping()) std::this_thread::yield();
  bool const returned_early = returned.load();
  release();
  waiter.join();
  EXPECT_FALSE(returned_early) << "returned before the release: the deadline was taken as passed";
  EXPECT_TRUE(result);
}

// --- platform ----------------------------------------------------------------

TEST(far_future_deadline, platform_wait_until) {
  for_each_far_future([](auto deadline) {
    p::word w{0};
    expect_waits_for_release(
        [&] {
          while (w.load() == 0)
            if (p::wait_until(w, 0, deadline) == p::wait_result::timed_out) return false;
          return true;
        },
        [&] {
          w.store(1);
          p::wake_all(w);
        });
  });
}

TEST(far_past_deadline, platform_wait_until) {
  for_each_far_past([](auto deadline) {
    p::word w{0};
    EXPECT_EQ(p::wait_until(w, 0, deadline), p::wait_result::timed_out);
  });
}

// wait_any_until takes steady_clock deadlines only.
TEST(far_future_deadline, platform_wait_any_until) {
  auto const run = [](auto deadline) {
    p::word a{0};
    p::word b{0};
    p::wait_entry const entries[] = {{&a, 0}, {&b, 0}};
    expect_waits_for_release(
        [&] {
          while (b.load() == 0)
            if (p::wait_any_until(entries, deadline) < 0) return false;
          return true;
        },
        [&] {
          b.store(1);
          p::wake_all(b);
        });
  };
  run(hours_ahead<steady>(3'000'000));
  run(time_point<steady, hours>::max());
}

TEST(far_past_deadline, platform_wait_any_until) {
  p::word a{0};
  p::wait_entry const entries[] = {{&a, 0}};
  EXPECT_EQ(p::wait_any_until(entries, time_point<steady, hours>::min()), -1);
  EXPECT_EQ(p::wait_any_until(entries, time_point<steady, hours>(hours(-3'000'000))), -1);
}

// --- atomic_wait ---------------------------------------------------------------

template <class T>
void atomic_wait_until_far_future() {
  for_each_far_future([](auto deadline) {
    std::atomic<T> a{0};
    expect_waits_for_release([&] { return rouse::atomic_wait_until(a, T{0}, deadline); },
                             [&] {
                               a.store(1);
                               rouse::atomic_notify_all(a);
                             });
  });
}

TEST(far_future_deadline, atomic_wait_until_4_bytes) { atomic_wait_until_far_future<std::uint32_t>(); }
TEST(far_future_deadline, atomic_wait_until_8_bytes) { atomic_wait_until_far_future<std::uint64_t>(); }

TEST(far_past_deadline, atomic_wait_until) {
  for_each_far_past([](auto deadline) {
    std::atomic<std::uint32_t> a4{0};
    std::atomic<std::uint64_t> a8{0};
    EXPECT_FALSE(rouse::atomic_wait_until(a4, std::uint32_t{0}, deadline));
    EXPECT_FALSE(rouse::atomic_wait_until(a8, std::uint64_t{0}, deadline));
  });
}

// --- locks ---------------------------------------------------------------------

// This thread holds `m` (lock_fn), another thread's timed attempt must wait
// for the unlock.
template <class Mutex, class TryLock>
void expect_waits_for_holder(Mutex& m, TryLock try_lock) {
  m.lock();
  expect_waits_for_release(try_lock, [&] { m.unlock(); });
}

// This thread holds `m`; another thread's attempt with a passed deadline fails.
template <class Mutex, class TryLock>
void expect_gives_up_on_holder(Mutex& m, TryLock try_lock) {
  m.lock();
  bool got = true;
  std::thread([&] { got = try_lock(); }).join();
  m.unlock();
  EXPECT_FALSE(got);
}

TEST(far_future_deadline, mutex_try_lock_until) {
  for_each_far_future([](auto deadline) {
    rouse::mutex m;
    expect_waits_for_holder(m, [&] {
      bool const got = m.try_lock_until(deadline);
      if (got) m.unlock();
      return got;
    });
  });
}

TEST(far_past_deadline, mutex_try_lock_until) {
  for_each_far_past([](auto deadline) {
    rouse::mutex m;
    expect_gives_up_on_holder(m, [&] {
      bool const got = m.try_lock_until(deadline);
      if (got) m.unlock();
      return got;
    });
  });
}

TEST(far_future_deadline, recursive_mutex_try_lock_until) {
  for_each_far_future([](auto deadline) {
    rouse::recursive_mutex m;
    expect_waits_for_holder(m, [&] {
      bool const got = m.try_lock_until(deadline);
      if (got) m.unlock();
      return got;
    });
  });
}

TEST(far_past_deadline, recursive_mutex_try_lock_until) {
  for_each_far_past([](auto deadline) {
    rouse::recursive_mutex m;
    expect_gives_up_on_holder(m, [&] {
      bool const got = m.try_lock_until(deadline);
      if (got) m.unlock();
      return got;
    });
  });
}

TEST(far_future_deadline, shared_mutex_try_lock_until) {
  for_each_far_future([](auto deadline) {
    rouse::shared_mutex m;
    expect_waits_for_holder(m, [&] {
      bool const got = m.try_lock_until(deadline);
      if (got) m.unlock();
      return got;
    });
  });
}

TEST(far_future_deadline, shared_mutex_try_lock_shared_until) {
  for_each_far_future([](auto deadline) {
    rouse::shared_mutex m;
    expect_waits_for_holder(m, [&] {
      bool const got = m.try_lock_shared_until(deadline);
      if (got) m.unlock_shared();
      return got;
    });
  });
}

TEST(far_past_deadline, shared_mutex_try_lock_until) {
  for_each_far_past([](auto deadline) {
    rouse::shared_mutex m;
    expect_gives_up_on_holder(m, [&] {
      bool const got = m.try_lock_until(deadline);
      if (got) m.unlock();
      return got;
    });
    expect_gives_up_on_holder(m, [&] {
      bool const got = m.try_lock_shared_until(deadline);
      if (got) m.unlock_shared();
      return got;
    });
  });
}

TEST(far_future_deadline, guarded_try_lock_until) {
  for_each_far_future([](auto deadline) {
    rouse::guarded<int> value(0);
    auto held = value.lock();
    expect_waits_for_release(
        [&] {
          auto g = value.try_lock_until(deadline);
          if (!g) return false;
          *g = 1;
          return true;
        },
        [&] { held.unlock(); });
    EXPECT_EQ(*value.lock(), 1);
  });
}

TEST(far_past_deadline, guarded_try_lock_until) {
  for_each_far_past([](auto deadline) {
    rouse::guarded<int> value(0);
    auto held = value.lock();
    bool got = true;
    std::thread([&] { got = static_cast<bool>(value.try_lock_until(deadline)); }).join();
    EXPECT_FALSE(got);
  });
}

// --- condition variable ----------------------------------------------------------

// A condition variable, its mutex and its condition, and the notifier.
struct cv_case {
  rouse::mutex m;
  rouse::condition_variable cv;
  bool ready = false;
  void notify() {
    {
      std::lock_guard guard(m);
      ready = true;
    }
    cv.notify_all();
  }
};

TEST(far_future_deadline, condition_variable_wait_until) {
  for_each_far_future([](auto deadline) {
    cv_case c;
    expect_waits_for_release(
        [&] {
          std::unique_lock lock(c.m);
          while (!c.ready)
            if (c.cv.wait_until(lock, deadline) == std::cv_status::timeout) return false;
          return true;
        },
        [&] { c.notify(); });
  });
}

TEST(far_future_deadline, condition_variable_wait_until_predicate) {
  for_each_far_future([](auto deadline) {
    cv_case c;
    expect_waits_for_release(
        [&] {
          std::unique_lock lock(c.m);
          return c.cv.wait_until(lock, deadline, [&] { return c.ready; });
        },
        [&] { c.notify(); });
  });
}

TEST(far_future_deadline, condition_variable_wait_until_stop_token) {
  for_each_far_future([](auto deadline) {
    cv_case c;
    std::stop_source source;
    expect_waits_for_release(
        [&] {
          std::unique_lock lock(c.m);
          return c.cv.wait_until(lock, source.get_token(), deadline, [&] { return c.ready; });
        },
        [&] { c.notify(); });
  });
}

TEST(far_past_deadline, condition_variable_wait_until) {
  for_each_far_past([](auto deadline) {
    cv_case c;
    std::stop_source source;
    std::unique_lock lock(c.m);
    EXPECT_EQ(c.cv.wait_until(lock, deadline), std::cv_status::timeout);
    EXPECT_FALSE(c.cv.wait_until(lock, deadline, [&] { return c.ready; }));
    EXPECT_FALSE(c.cv.wait_until(lock, source.get_token(), deadline, [&] { return c.ready; }));
  });
}

// --- coordination ----------------------------------------------------------------

TEST(far_future_deadline, semaphore_try_acquire_until) {
  for_each_far_future([](auto deadline) {
    rouse::counting_semaphore<4> s(0);
    expect_waits_for_release([&] { return s.try_acquire_until(deadline); }, [&] { s.release(); });
  });
}

TEST(far_past_deadline, semaphore_try_acquire_until) {
  for_each_far_past([](auto deadline) {
    rouse::counting_semaphore<4> s(0);
    EXPECT_FALSE(s.try_acquire_until(deadline));
    rouse::counting_semaphore<(std::ptrdiff_t{1} << 40)> wide(0);  // the wide layout
    EXPECT_FALSE(wide.try_acquire_until(deadline));
  });
}

TEST(far_future_deadline, event_wait_until) {
  for_each_far_future([](auto deadline) {
    rouse::event e;
    expect_waits_for_release([&] { return e.wait_until(deadline); }, [&] { e.set(); });
  });
}

TEST(far_past_deadline, event_wait_until) {
  for_each_far_past([](auto deadline) {
    rouse::event e;
    EXPECT_FALSE(e.wait_until(deadline));
  });
}

TEST(far_future_deadline, eventcount_wait_until) {
  for_each_far_future([](auto deadline) {
    rouse::eventcount ec;
    std::atomic<bool> flag{false};
    expect_waits_for_release(
        [&] {
          for (;;) {
            auto const k = ec.prepare_wait();
            if (flag.load()) {
              ec.cancel_wait();
              return true;
            }
            if (!ec.wait_until(k, deadline)) return false;
          }
        },
        [&] {
          flag.store(true);
          ec.notify_all();
        });
  });
}

TEST(far_future_deadline, eventcount_await_until) {
  for_each_far_future([](auto deadline) {
    rouse::eventcount ec;
    std::atomic<bool> flag{false};
    expect_waits_for_release([&] { return ec.await_until([&] { return flag.load(); }, deadline); },
                             [&] {
                               flag.store(true);
                               ec.notify_all();
                             });
  });
}

TEST(far_past_deadline, eventcount_wait_until) {
  for_each_far_past([](auto deadline) {
    rouse::eventcount ec;
    auto const k = ec.prepare_wait();
    EXPECT_FALSE(ec.wait_until(k, deadline));
    EXPECT_FALSE(ec.await_until([] { return false; }, deadline));
  });
}

TEST(far_future_deadline, thread_parker_park_until) {
  for_each_far_future([](auto deadline) {
    rouse::thread_parker parker;
    std::atomic<bool> unparked{false};
    expect_waits_for_release(
        [&] {
          // A park may return false spuriously only by timing out; a token
          // from the unpark below makes it return true.
          while (!unparked.load())
            if (!parker.park_until(deadline) && !unparked.load()) return false;
          return true;
        },
        [&] {
          unparked.store(true);
          parker.unpark();
        });
  });
}

TEST(far_past_deadline, thread_parker_park_until) {
  for_each_far_past([](auto deadline) {
    rouse::thread_parker parker;
    EXPECT_FALSE(parker.park_until(deadline));
  });
}

// --- channels --------------------------------------------------------------------

TEST(far_future_deadline, channel_recv_until) {
  for_each_far_future([](auto deadline) {
    for (auto make : {+[] { return ch::bounded<int>(1); }, +[] { return ch::bounded<int>(0); },
                      +[] { return ch::unbounded<int>(); }}) {
      auto channel = make();  // not a structured binding: clang 14 cannot capture those
      auto& tx = channel.first;
      auto& rx = channel.second;
      std::thread sender;
      expect_waits_for_release([&] { return rx.recv_until(deadline).has_value(); },
                               [&] { sender = std::thread([&] { (void)tx.send(7); }); });
      rx = ch::receiver<int>();  // a rendezvous send nobody took returns closed
      sender.join();
    }
  });
}

TEST(far_future_deadline, channel_send_until) {
  for_each_far_future([](auto deadline) {
    for (std::size_t capacity : {1, 0}) {
      auto channel = ch::bounded<int>(capacity);
      auto& tx = channel.first;
      auto& rx = channel.second;
      if (capacity == 1) {
        ASSERT_TRUE(static_cast<bool>(tx.send(1)));
      }
      std::thread receiver;
      expect_waits_for_release([&] { return static_cast<bool>(tx.send_until(2, deadline)); },
                               [&] { receiver = std::thread([&] { (void)rx.recv(); }); });
      tx = ch::sender<int>();  // a receive that got nothing returns closed
      receiver.join();
    }
  });
}

TEST(far_past_deadline, channel_send_recv_until) {
  for_each_far_past([](auto deadline) {
    auto full = ch::bounded<int>(1);
    ASSERT_TRUE(static_cast<bool>(full.first.send(1)));
    EXPECT_EQ(full.first.send_until(2, deadline).status(), ch::status::timed_out);
    auto ticket = ch::bounded<int>(1, ch::ring::ticket);
    EXPECT_EQ(ticket.second.recv_until(deadline).status(), ch::status::timed_out);
    ASSERT_TRUE(static_cast<bool>(ticket.first.send(1)));
    EXPECT_EQ(ticket.first.send_until(2, deadline).status(), ch::status::timed_out);
    auto rendezvous = ch::bounded<int>(0);
    EXPECT_EQ(rendezvous.first.send_until(2, deadline).status(), ch::status::timed_out);
    EXPECT_EQ(rendezvous.second.recv_until(deadline).status(), ch::status::timed_out);
    auto empty = ch::unbounded<int>();
    EXPECT_EQ(empty.second.recv_until(deadline).status(), ch::status::timed_out);
  });
}

TEST(far_future_deadline, oneshot_recv_until) {
  for_each_far_future([](auto deadline) {
    auto channel = ch::oneshot<int>();
    auto& tx = channel.first;
    auto& rx = channel.second;
    expect_waits_for_release([&] { return rx.recv_until(deadline).has_value(); }, [&] { (void)std::move(tx).send(7); });
  });
}

TEST(far_past_deadline, oneshot_recv_until) {
  for_each_far_past([](auto deadline) {
    auto channel = ch::oneshot<int>();
    EXPECT_EQ(channel.second.recv_until(deadline).status(), ch::status::timed_out);
  });
}

TEST(far_future_deadline, spsc_recv_until) {
  for_each_far_future([](auto deadline) {
    auto channel = ch::spsc<int>(1);
    auto& tx = channel.first;
    auto& rx = channel.second;
    expect_waits_for_release([&] { return rx.recv_until(deadline).has_value(); }, [&] { (void)tx.send(7); });
  });
}

TEST(far_future_deadline, spsc_send_until) {
  for_each_far_future([](auto deadline) {
    auto channel = ch::spsc<int>(1);
    auto& tx = channel.first;
    auto& rx = channel.second;
    ASSERT_TRUE(static_cast<bool>(tx.send(1)));
    expect_waits_for_release([&] { return static_cast<bool>(tx.send_until(2, deadline)); }, [&] { (void)rx.recv(); });
  });
}

TEST(far_past_deadline, spsc_send_recv_until) {
  for_each_far_past([](auto deadline) {
    auto channel = ch::spsc<int>(1);
    EXPECT_EQ(channel.second.recv_until(deadline).status(), ch::status::timed_out);
    ASSERT_TRUE(static_cast<bool>(channel.first.send(1)));
    EXPECT_EQ(channel.first.send_until(2, deadline).status(), ch::status::timed_out);
  });
}

TEST(far_future_deadline, select_until) {
  for_each_far_future([](auto deadline) {
    auto one = ch::bounded<int>(1);
    auto two = ch::unbounded<int>();
    auto& tx = two.first;
    ch::recv_case a(one.second);
    ch::recv_case b(two.second);
    expect_waits_for_release(
        [&] {
          std::optional<std::size_t> const chosen = ch::select_until(deadline, a, b);
          return chosen == std::optional<std::size_t>(1) && b.result().has_value();
        },
        [&] { (void)tx.send(7); });
  });
}

TEST(far_past_deadline, select_until) {
  for_each_far_past([](auto deadline) {
    auto one = ch::bounded<int>(1);
    auto two = ch::unbounded<int>();
    ch::recv_case a(one.second);
    ch::recv_case b(two.second);
    EXPECT_FALSE(ch::select_until(deadline, a, b).has_value());
  });
}

}  // namespace
}  // namespace far_deadline_test
