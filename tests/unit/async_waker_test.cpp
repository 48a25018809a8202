// rouse::async wakers: the waker's own clone / drop / wake accounting (a
// counting table), and the documented counts and behaviour of each maker:
// noop, coroutine (on its executor, never inside wake(); inline without
// one), thread, callback and shared (reference-counted, freed once).
#include "rouse/async/waker.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <coroutine>
#include <thread>
#include <vector>

#include "rouse/thread_parker.hpp"
#include "threads.hpp"

namespace async_waker_test {
namespace {
using rouse::async::waker;
using rouse::async::waker_vtable;

struct counting {
  std::atomic<int> clones{0}, wakes{0}, wakes_by_ref{0}, drops{0};
  static counting* of(const void* d) { return static_cast<counting*>(const_cast<void*>(d)); }
  static const void* clone(const void* d) noexcept {
    of(d)->clones.fetch_add(1);
    return d;
  }
  static void wake(const void* d) noexcept { of(d)->wakes.fetch_add(1); }
  static void wake_by_ref(const void* d) noexcept { of(d)->wakes_by_ref.fetch_add(1); }
  static void drop(const void* d) noexcept { of(d)->drops.fetch_add(1); }
  static constexpr waker_vtable vtable{clone, wake, wake_by_ref, drop};
  waker make() noexcept { return waker(this, &vtable); }
};

TEST(async_waker, size_is_two_words) { EXPECT_EQ(sizeof(waker), 2 * sizeof(void*)); }

TEST(async_waker, copy_clones_move_does_not_and_destruction_drops) {
  counting c;
  {
    waker a = c.make();
    EXPECT_TRUE(static_cast<bool>(a));
    waker b = a;  // clone
    EXPECT_EQ(c.clones, 1);
    waker m = std::move(a);  // no clone, a empty
    EXPECT_EQ(c.clones, 1);
    EXPECT_FALSE(static_cast<bool>(a));  // NOLINT(bugprone-use-after-move)
    EXPECT_TRUE(m.will_wake(b));
    EXPECT_EQ(c.drops, 0);
  }
  EXPECT_EQ(c.drops, 2);  // b and m; the moved-from a drops nothing
}

TEST(async_waker, wake_consumes_the_reference_and_wake_by_ref_keeps_it) {
  counting c;
  waker w = c.make();
  w.wake_by_ref();
  EXPECT_EQ(c.wakes_by_ref, 1);
  EXPECT_TRUE(static_cast<bool>(w));
  std::move(w).wake();
  EXPECT_EQ(c.wakes, 1);
  EXPECT_FALSE(static_cast<bool>(w));  // NOLINT(bugprone-use-after-move)
  std::move(w).wake();                 // empty: nothing
  w.wake_by_ref();
  w.reset();
  EXPECT_EQ(c.wakes, 1);
  EXPECT_EQ(c.wakes_by_ref, 1);
  EXPECT_EQ(c.drops, 0);  // the wake consumed it: no drop
}

TEST(async_waker, assignment_drops_the_old_reference_and_self_assignment_is_harmless) {
  counting a, b;
  waker wa = a.make();
  waker wb = b.make();
  wa = wb;  // drops a's, clones b's
  EXPECT_EQ(a.drops, 1);
  EXPECT_EQ(b.clones, 1);
  waker& alias = wa;
  wa = alias;
  wa = std::move(alias);
  EXPECT_EQ(b.clones, 1);
  EXPECT_EQ(b.drops, 0);
  wb = std::move(wa);  // drops wb's old reference
  EXPECT_EQ(b.drops, 1);
  wb.reset();
  EXPECT_EQ(b.drops, 2);
}

TEST(async_waker, release_gives_the_reference_away_without_dropping) {
  counting c;
  waker w = c.make();
  auto [data, vt] = w.release();
  EXPECT_EQ(data, &c);
  EXPECT_EQ(vt, &counting::vtable);
  EXPECT_FALSE(static_cast<bool>(w));
  EXPECT_EQ(c.drops, 0);
  waker back(data, vt);  // adopt it again
  back.reset();
  EXPECT_EQ(c.drops, 1);
}

TEST(async_waker, will_wake_compares_data_and_table) {
  counting a, b;
  waker wa = a.make(), wa2 = a.make(), wb = b.make();
  EXPECT_TRUE(wa.will_wake(wa2));
  EXPECT_FALSE(wa.will_wake(wb));
  waker other_table(&a, &rouse::async::detail::noop_vtable);
  EXPECT_FALSE(wa.will_wake(other_table));
  EXPECT_TRUE(waker{}.will_wake(waker{}));
  other_table.release();
}

TEST(async_waker, noop_waker_does_nothing_and_clones_to_itself) {
  waker n = rouse::async::noop_waker();
  EXPECT_TRUE(static_cast<bool>(n));
  waker c = n;
  EXPECT_TRUE(c.will_wake(n));
  EXPECT_TRUE(n.will_wake(rouse::async::noop_waker()));
  c.wake_by_ref();
  std::move(c).wake();
}

TEST(async_waker, callback_waker_calls_the_callers_callable_without_copying_it) {
  int calls = 0;
  auto f = [&calls]() noexcept { ++calls; };
  waker w = rouse::async::callback_waker(f);
  EXPECT_EQ(w.data(), &f);
  waker c = w;  // clone: a view
  EXPECT_EQ(c.data(), &f);
  EXPECT_TRUE(c.will_wake(w));
  c.wake_by_ref();
  std::move(c).wake();
  std::move(w).wake();
  EXPECT_EQ(calls, 3);
}

struct tracked_fn {
  static inline std::atomic<int> live{0};
  static inline std::atomic<int> calls{0};
  tracked_fn() noexcept { live.fetch_add(1); }
  tracked_fn(const tracked_fn&) noexcept { live.fetch_add(1); }
  tracked_fn(tracked_fn&&) noexcept { live.fetch_add(1); }
  ~tracked_fn() { live.fetch_sub(1); }
  void operator()() noexcept { calls.fetch_add(1); }
};

TEST(async_waker, make_shared_waker_is_freed_once_when_the_last_reference_goes) {
  tracked_fn::live = 0;
  tracked_fn::calls = 0;
  {
    waker w = rouse::async::make_shared_waker(tracked_fn{});
    EXPECT_EQ(tracked_fn::live, 1);  // the heap copy only
    {
      waker a = w, b = w, c = a;
      EXPECT_TRUE(a.will_wake(w));
      a.wake_by_ref();
      std::move(b).wake();  // wake + drop
      EXPECT_EQ(tracked_fn::calls, 2);
      EXPECT_EQ(tracked_fn::live, 1);
    }
    EXPECT_EQ(tracked_fn::live, 1);  // w still holds it
    std::move(w).wake();             // the last reference: calls, then frees
    EXPECT_EQ(tracked_fn::calls, 3);
    EXPECT_EQ(tracked_fn::live, 0);
  }
  EXPECT_EQ(tracked_fn::live, 0);
}

TEST(async_waker, make_shared_waker_clones_and_drops_balance_across_threads) {
  tracked_fn::live = 0;
  tracked_fn::calls = 0;
  constexpr int threads = 4, rounds = 2000;
  {
    waker w = rouse::async::make_shared_waker(tracked_fn{});
    std::vector<waker> seeds;
    for (int i = 0; i < threads; ++i) seeds.push_back(w);
    w.reset();
    rouse_test::threads ts(threads, [&](int i) {
      waker mine = std::move(seeds[static_cast<std::size_t>(i)]);
      for (int r = 0; r < rounds; ++r) {
        waker c = mine;
        if (r % 2) std::move(c).wake();
      }
      mine.reset();
    });
  }
  EXPECT_EQ(tracked_fn::calls, threads * rounds / 2);
  EXPECT_EQ(tracked_fn::live, 0);  // freed, exactly once (ASan sees a double free)
}

TEST(async_waker, thread_waker_unparks_a_parked_thread) {
  rouse::thread_parker p;
  std::atomic<bool> returned{false};
  waker w = rouse::async::thread_waker(p);
  EXPECT_EQ(w.data(), &p);
  waker clone = w;
  EXPECT_TRUE(clone.will_wake(w));
  rouse_test::thread t([&] {
    p.park();
    returned.store(true);
  });
  rouse_test::until_asleep(t);
  EXPECT_FALSE(returned.load());
  std::move(clone).wake();
  t.join();
  EXPECT_TRUE(returned.load());
  // wake_by_ref leaves a token: the next park returns at once.
  w.wake_by_ref();
  p.park();
}

// An executor that only records what it is asked to schedule.
struct recording_executor final : rouse::async::executor {
  std::vector<std::coroutine_handle<>> scheduled;
  void schedule(std::coroutine_handle<> h) noexcept override { scheduled.push_back(h); }
  void add_timer(rouse::async::timer_entry&) noexcept override {}
  bool cancel_timer(rouse::async::timer_entry&) noexcept override { return false; }
};

// A coroutine whose environment names `ex` (or nothing, when it is null),
// and which parks itself once, handing out a coroutine waker.
struct env_with_scheduler {
  rouse::async::executor* ex;
  rouse::async::scheduler query(rouse::async::get_scheduler_t) const noexcept { return rouse::async::scheduler(*ex); }
};
struct parks_once {
  rouse::async::resume_target* target;
  bool await_ready() const noexcept { return false; }
  template <class P>
  void await_suspend(std::coroutine_handle<P> h) noexcept {
    *target = rouse::async::resume_target(h);
  }
  void await_resume() const noexcept {}
};
template <bool WithEnv>
struct coro {
  struct promise_type {
    rouse::async::executor* ex = nullptr;
    coro get_return_object() { return {std::coroutine_handle<promise_type>::from_promise(*this)}; }
    std::suspend_always initial_suspend() noexcept { return {}; }
    std::suspend_always final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }
    env_with_scheduler get_env() const noexcept
      requires WithEnv
    {
      return {ex};
    }
  };
  std::coroutine_handle<promise_type> h;
};
template <bool WithEnv>
coro<WithEnv> park_once(rouse::async::resume_target& t, int& step) {
  step = 1;
  co_await parks_once{&t};
  step = 2;
}

TEST(async_waker, coroutine_waker_schedules_on_the_executor_never_inline) {
  recording_executor ex;
  rouse::async::resume_target target;
  int step = 0;
  auto c = park_once<true>(target, step);
  c.h.promise().ex = &ex;
  c.h.resume();
  ASSERT_EQ(step, 1);
  EXPECT_EQ(target.ex, &ex);
  EXPECT_FALSE(target.stops_in_place());  // no unhandled_stopped()
  waker w = rouse::async::coroutine_waker(target);
  waker clone = w;  // a view: same data, same table
  EXPECT_TRUE(clone.will_wake(w));
  EXPECT_EQ(clone.data(), &target);
  clone.reset();
  std::move(w).wake();
  EXPECT_EQ(step, 1);  // not resumed inside wake()
  ASSERT_EQ(ex.scheduled.size(), 1u);
  EXPECT_EQ(ex.scheduled[0].address(), c.h.address());
  ex.scheduled[0].resume();
  EXPECT_EQ(step, 2);
  c.h.destroy();
}

TEST(async_waker, coroutine_waker_without_an_executor_resumes_inline_on_the_wakers_thread) {
  rouse::async::resume_target target;
  int step = 0;
  auto c = park_once<false>(target, step);
  c.h.resume();
  ASSERT_EQ(step, 1);
  EXPECT_EQ(target.ex, nullptr);
  waker w = rouse::async::coroutine_waker(target);
  std::thread::id resumed_on{};
  std::thread t([&] {
    std::move(w).wake();
    resumed_on = std::this_thread::get_id();
    EXPECT_EQ(step, 2);  // resumed inside wake(), on this thread
  });
  t.join();
  EXPECT_EQ(step, 2);
  c.h.destroy();
}

TEST(async_waker, operation_stopped_says_what_it_is) {
  rouse::async::operation_stopped e;
  EXPECT_STREQ(e.what(), "rouse::async: operation stopped");
}

}  // namespace
}  // namespace async_waker_test
