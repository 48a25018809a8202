// rouse::async::diatomic_waker / wake_sink / wake_source: every transition
// of the state table checked step by step (each arrow is one RMW, so the
// documented RMW counts follow), the will_wake cache (clone / drop /
// wake_by_ref counted with a counting waker table), the load-only idle
// notify, wait_until in a foreign coroutine (resumed on the notifier's thread
// without an executor, on a tiny loop executor with one), stop before and
// while waiting (both stopped paths), and the blocking form on a thread.
#include "rouse/async/diatomic_waker.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <coroutine>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace async_diatomic_waker_test {
namespace {

using rouse::async::diatomic_waker;
using rouse::async::idle_notify;
using rouse::async::wake_sink;
using rouse::async::wake_source;
using rouse::async::waker;
using rouse::async::waker_vtable;

constexpr std::uint32_t I = diatomic_waker::index_bit;
constexpr std::uint32_t U = diatomic_waker::update_bit;
constexpr std::uint32_t R = diatomic_waker::registered_bit;
constexpr std::uint32_t L = diatomic_waker::locked_bit;
constexpr std::uint32_t N = diatomic_waker::notify_again_bit;
constexpr std::uint32_t D = diatomic_waker::direct_bit;

struct counting {
  std::atomic<int> clones{0}, wakes{0}, wakes_by_ref{0}, drops{0};
  void (*on_wake)(counting*) = nullptr;  // run inside wake_by_ref
  void* context = nullptr;

  static counting* self(const void* d) { return static_cast<counting*>(const_cast<void*>(d)); }
  static const void* clone(const void* d) noexcept {
    self(d)->clones.fetch_add(1);
    return d;
  }
  static void wake(const void* d) noexcept { self(d)->wakes.fetch_add(1); }
  static void wake_by_ref(const void* d) noexcept {
    counting* const c = self(d);
    c->wakes_by_ref.fetch_add(1);
    if (auto f = c->on_wake) f(c);
  }
  static void drop(const void* d) noexcept { self(d)->drops.fetch_add(1); }
  static constexpr waker_vtable vtable{clone, wake, wake_by_ref, drop};
  waker make() noexcept { return waker(this, &vtable); }
};

// ---- a minimal foreign coroutine type and a loop executor ------------------

// Runs scheduled coroutines on the thread that calls run_until().
class loop_executor final : public rouse::async::executor {
 public:
  void schedule(std::coroutine_handle<> h) noexcept override {
    std::lock_guard<std::mutex> g(m_);
    q_.push_back(h);
    scheduled_.fetch_add(1);
  }
  void add_timer(rouse::async::timer_entry&) noexcept override {}
  bool cancel_timer(rouse::async::timer_entry&) noexcept override { return false; }
  // Runs what is queued until `done()` holds (spins with yields in between).
  template <class F>
  void run_until(F done) {
    while (!done()) {
      std::coroutine_handle<> h;
      {
        std::lock_guard<std::mutex> g(m_);
        if (!q_.empty()) {
          h = q_.front();
          q_.pop_front();
        }
      }
      if (h)
        h.resume();
      else
        std::this_thread::yield();
    }
  }
  std::atomic<int> scheduled_{0};
  // The next coroutine to run (null when none), and whether none is queued.
  std::coroutine_handle<> front() {
    std::lock_guard<std::mutex> g(m_);
    return q_.empty() ? std::coroutine_handle<>() : q_.front();
  }
  bool idle() {
    std::lock_guard<std::mutex> g(m_);
    return q_.empty();
  }

 private:
  std::mutex m_;
  std::deque<std::coroutine_handle<>> q_;
};

// A fire-and-forget coroutine whose promise answers get_stop_token (an
// inplace_stop_token) and names its executor; with InPlace it also has
// unhandled_stopped() (completes stopped without being resumed).
template <bool InPlace>
struct job {
  struct promise_type {
    rouse::async::inplace_stop_token token{};
    rouse::async::executor* ex = nullptr;
    bool* stopped_flag = nullptr;

    struct env {
      rouse::async::inplace_stop_token t;
      rouse::async::inplace_stop_token query(rouse::async::get_stop_token_t) const noexcept { return t; }
    };
    env get_env() const noexcept { return {token}; }
    rouse::async::executor* rouse_executor() noexcept { return ex; }

    job get_return_object() noexcept { return job{std::coroutine_handle<promise_type>::from_promise(*this)}; }
    std::suspend_always initial_suspend() noexcept { return {}; }
    std::suspend_always final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }
    std::coroutine_handle<> unhandled_stopped() noexcept
      requires InPlace
    {
      if (stopped_flag) *stopped_flag = true;
      return std::noop_coroutine();
    }
  };
  std::coroutine_handle<promise_type> h;
  job(job&& o) noexcept : h(std::exchange(o.h, {})) {}
  explicit job(std::coroutine_handle<promise_type> x) noexcept : h(x) {}
  ~job() {
    if (h) h.destroy();
  }
  void start(rouse::async::inplace_stop_token t = {}, rouse::async::executor* ex = nullptr) {
    h.promise().token = t;
    h.promise().ex = ex;
    h.resume();
  }
  bool done() const { return h.done(); }
};

// ---- state table, step by step ----------------------------------------------

TEST(async_diatomic_waker, size_is_documented) { EXPECT_EQ(sizeof(diatomic_waker), 64u); }

TEST(async_diatomic_waker, register_notify_and_the_cached_waker) {
  counting c;
  diatomic_waker dw;
  waker const w = c.make();
  EXPECT_EQ(dw.state_for_testing(), 0u);
  dw.register_waker(w);  // new waker: | U|R (1 RMW), slot[1] = clone
  EXPECT_EQ(dw.state_for_testing(), U | R);
  EXPECT_EQ(c.clones, 1);
  dw.notify();  // R,!L -> L, flip (1 RMW); wake_by_ref slot[1]; & ~L (1 RMW)
  EXPECT_EQ(dw.state_for_testing(), I);
  EXPECT_EQ(c.wakes_by_ref, 1);
  dw.register_waker(w);  // cached: | R (1 RMW), no clone
  EXPECT_EQ(dw.state_for_testing(), I | R);
  EXPECT_EQ(c.clones, 1);
  dw.notify();
  EXPECT_EQ(dw.state_for_testing(), I);
  EXPECT_EQ(c.wakes_by_ref, 2);
  EXPECT_EQ(c.wakes, 0);  // notifiers never consume the clone
  EXPECT_EQ(c.drops, 0);
}

TEST(async_diatomic_waker, new_waker_goes_to_the_free_slot_and_drops_its_old_one) {
  counting a, b, c3;
  diatomic_waker dw;
  waker const wa = a.make(), wb = b.make(), wc = c3.make();
  dw.register_waker(wa);  // slot[1] = a, U|R
  dw.notify();            // I = 1
  dw.register_waker(wb);  // slot[0] = b: | U|R
  EXPECT_EQ(dw.state_for_testing(), I | U | R);
  EXPECT_EQ(b.clones, 1);
  // U && R: & ~(R|N) (1 RMW), then overwrite the pending slot[0], | U|R.
  dw.register_waker(wc);
  EXPECT_EQ(dw.state_for_testing(), I | U | R);
  EXPECT_EQ(b.drops, 1);
  EXPECT_EQ(c3.clones, 1);
  EXPECT_EQ(a.drops, 0);  // slot[1] (current) untouched
  dw.notify();            // flips to slot[0]: wakes c, not a or b
  EXPECT_EQ(dw.state_for_testing(), 0u);
  EXPECT_EQ(c3.wakes_by_ref, 1);
  EXPECT_EQ(a.wakes_by_ref, 1);
  EXPECT_EQ(b.wakes_by_ref, 0);
  // Back to a: the recent slot (slot[0]) holds c, so a goes to the free
  // slot[1], which still caches a: no clone, no drop; | U|R.
  dw.register_waker(wa);
  EXPECT_EQ(dw.state_for_testing(), U | R);
  EXPECT_EQ(a.clones, 1);
  EXPECT_EQ(a.drops, 0);
  dw.notify();
  EXPECT_EQ(a.wakes_by_ref, 2);
}

TEST(async_diatomic_waker, unregister_and_notify_with_nobody_registered_wakes_nothing) {
  counting c;
  diatomic_waker dw;
  waker const w = c.make();
  dw.notify();  // !R: the CAS runs, nothing changes
  EXPECT_EQ(dw.state_for_testing(), 0u);
  dw.register_waker(w);
  dw.unregister();  // & ~(R|N)
  EXPECT_EQ(dw.state_for_testing(), U);
  dw.notify();
  EXPECT_EQ(dw.state_for_testing(), U);
  EXPECT_EQ(c.wakes_by_ref, 0);
  dw.register_waker(w);  // cached in slot[1] (U: the recent slot): | R only
  EXPECT_EQ(dw.state_for_testing(), U | R);
  EXPECT_EQ(c.clones, 1);
  dw.notify();
  EXPECT_EQ(c.wakes_by_ref, 1);
}

// A notifier that finds the lock taken while R is set sets N; the holder
// then clears N and R (flipping to a newer slot) and wakes again.
TEST(async_diatomic_waker, a_notifier_that_loses_the_lock_makes_the_holder_notify_again) {
  counting c;
  diatomic_waker dw;
  waker const w = c.make();
  struct ctx {
    diatomic_waker* dw;
    waker const* w;
    std::uint32_t inside = 0, after_register = 0, after_nested_notify = 0;
  } x{&dw, &w};
  c.context = &x;
  c.on_wake = [](counting* self) {
    auto* k = static_cast<ctx*>(self->context);
    self->on_wake = nullptr;
    k->inside = k->dw->state_for_testing();
    k->dw->register_waker(*k->w);  // the sink re-registers while the lock is held
    k->after_register = k->dw->state_for_testing();
    k->dw->notify();  // R, L -> | N, returns at once
    k->after_nested_notify = k->dw->state_for_testing();
  };
  dw.register_waker(w);
  dw.notify();
  EXPECT_EQ(x.inside, L | I);
  EXPECT_EQ(x.after_register, L | I | R);
  EXPECT_EQ(x.after_nested_notify, L | I | R | N);
  EXPECT_EQ(c.wakes_by_ref, 2);  // the holder woke again for the N
  EXPECT_EQ(dw.state_for_testing(), I);
  EXPECT_EQ(c.clones, 1);
}

TEST(async_diatomic_waker, idle_notify_is_a_load_and_still_wakes_a_registrant) {
  counting c;
  diatomic_waker dw(idle_notify::load);
  waker const w = c.make();
  dw.notify_after_publish();  // nobody: a fence and a load, no change
  dw.notify_if_registered();
  EXPECT_EQ(dw.state_for_testing(), 0u);
  EXPECT_EQ(c.wakes_by_ref, 0);
  dw.register_waker(w);
  dw.notify_after_publish();
  EXPECT_EQ(c.wakes_by_ref, 1);
  EXPECT_EQ(dw.state_for_testing(), I);
  dw.notify();  // plain notify stays valid
  EXPECT_EQ(c.wakes_by_ref, 1);
}

TEST(async_diatomic_waker, seq_cst_idle_notify_is_a_load_on_either_mode_and_still_wakes) {
  for (idle_notify mode : {idle_notify::rmw, idle_notify::load}) {
    counting c;
    diatomic_waker dw(mode);
    waker const w = c.make();
    dw.notify_after_seq_cst_rmw();  // nobody: a load, no change
    EXPECT_EQ(dw.state_for_testing(), 0u);
    EXPECT_EQ(c.wakes_by_ref, 0);
    dw.register_waker(w);
    dw.notify_after_seq_cst_rmw();  // R: the full notify
    EXPECT_EQ(c.wakes_by_ref, 1);
    EXPECT_EQ(dw.state_for_testing(), I);
    dw.notify_after_seq_cst_rmw();  // served: nobody again
    EXPECT_EQ(c.wakes_by_ref, 1);
  }
}

TEST(async_diatomic_waker, destruction_drops_both_slots) {
  counting a, b;
  {
    diatomic_waker dw;
    waker const wa = a.make(), wb = b.make();
    dw.register_waker(wa);
    dw.notify();
    dw.register_waker(wb);
  }
  EXPECT_EQ(a.clones, 1);
  EXPECT_EQ(a.drops, 2);
  EXPECT_EQ(b.clones, 1);
  EXPECT_EQ(b.drops, 2);
}

TEST(async_diatomic_waker, sources_are_copyable_pointers_to_the_sink) {
  counting c;
  wake_sink sink;
  wake_source const s1 = sink.source();
  wake_source const s2 = s1;
  EXPECT_TRUE(s1 == s2);
  EXPECT_TRUE(static_cast<bool>(s1));
  EXPECT_FALSE(static_cast<bool>(wake_source{}));
  waker const w = c.make();
  sink.register_waker(w);
  s2.notify();
  EXPECT_EQ(c.wakes_by_ref, 1);
  sink.register_waker(w);
  sink.unregister();
  s1.notify();
  EXPECT_EQ(c.wakes_by_ref, 1);
}

// ---- wait_until / wait_until_blocking ---------------------------------------

TEST(async_diatomic_waker, wait_until_ready_at_once_does_not_suspend_or_register) {
  wake_sink sink;
  int out = 0;
  auto body = [&]() -> job<false> { out = co_await sink.wait_until([]() -> std::optional<int> { return 7; }); };
  job<false> j = body();
  j.start();
  EXPECT_TRUE(j.done());
  EXPECT_EQ(out, 7);
  EXPECT_EQ(sink.get().state_for_testing(), 0u);
}

TEST(async_diatomic_waker, wait_until_resumes_on_the_notifier_thread_without_an_executor) {
  wake_sink sink;
  std::atomic<int> value{0};
  std::thread::id resumed_on{};
  int calls = 0;
  auto body = [&]() -> job<false> {
    int const v = co_await sink.wait_until([&]() -> std::optional<int> {
      ++calls;
      int const x = value.load(std::memory_order_relaxed);
      if (x == 0) return std::nullopt;
      return x;
    });
    EXPECT_EQ(v, 42);
    resumed_on = std::this_thread::get_id();
  };
  job<false> j = body();
  j.start();
  EXPECT_FALSE(j.done());
  EXPECT_EQ(calls, 2);  // check, register, re-check, sleep
  EXPECT_EQ(sink.get().state_for_testing(), R | D);  // the wait itself is registered: no waker, no slot
  std::thread::id producer_id{};
  wake_source const src = sink.source();
  std::thread producer([&] {
    producer_id = std::this_thread::get_id();
    value.store(42, std::memory_order_relaxed);
    src.notify();
  });
  producer.join();
  EXPECT_TRUE(j.done());
  EXPECT_EQ(resumed_on, producer_id);
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(sink.get().state_for_testing(), 0u);  // the notify's claim unregistered it
}

TEST(async_diatomic_waker, wait_until_on_an_executor_is_scheduled_not_resumed_inline) {
  wake_sink sink;
  loop_executor ex;
  std::atomic<bool> flag{false};
  auto body = [&]() -> job<false> { co_await sink.wait_until([&] { return flag.load(std::memory_order_relaxed); }); };
  job<false> j = body();
  j.start({}, &ex);
  EXPECT_FALSE(j.done());
  flag.store(true, std::memory_order_relaxed);
  sink.source().notify();
  EXPECT_FALSE(j.done());  // on the queue, not run inside notify()
  EXPECT_EQ(ex.scheduled_, 1);
  ex.run_until([&] { return j.done(); });
  EXPECT_TRUE(j.done());
}

// A predicate that offers ready_hint() (as the channel receive's): the
// release asks it on the notifier's thread. False: the poller goes round
// (polls, registers, sleeps again). True: the coroutine itself is
// scheduled, and polls once when it runs.
struct hinted_pred {
  std::atomic<int>* items;
  int* calls;
  std::atomic<int>* hints;
  bool lie = false;  // a hint that says ready when the predicate is not
  bool operator()() noexcept {
    ++*calls;
    return items->load(std::memory_order_relaxed) != 0;
  }
  bool ready_hint() const noexcept {
    hints->fetch_add(1, std::memory_order_relaxed);
    return lie || items->load(std::memory_order_relaxed) != 0;
  }
};

TEST(async_diatomic_waker, a_release_whose_ready_hint_holds_schedules_the_coroutine_itself) {
  wake_sink sink;
  loop_executor ex;
  std::atomic<int> items{0};
  std::atomic<int> hints{0};
  int calls = 0;
  auto body = [&]() -> job<false> { co_await sink.wait_until(hinted_pred{&items, &calls, &hints}); };
  job<false> j = body();
  j.start({}, &ex);
  EXPECT_FALSE(j.done());
  EXPECT_EQ(calls, 2);  // await_ready, and the re-check after registering
  sink.source().notify();  // nothing published: the hint says no
  EXPECT_EQ(hints.load(), 1);
  ASSERT_EQ(ex.scheduled_, 1);
  EXPECT_NE(ex.front(), std::coroutine_handle<>(j.h));  // the poller
  ex.run_until([&] { return ex.idle(); });
  EXPECT_FALSE(j.done());
  EXPECT_EQ(calls, 4);  // the poller's turn: poll, register, re-check, sleep
  items.store(1, std::memory_order_relaxed);
  sink.source().notify();
  EXPECT_EQ(hints.load(), 2);
  ASSERT_EQ(ex.scheduled_, 2);
  EXPECT_EQ(ex.front(), std::coroutine_handle<>(j.h));  // the coroutine itself
  EXPECT_EQ(calls, 4);                                 // not polled on the notifier's thread
  ex.run_until([&] { return j.done(); });
  EXPECT_EQ(calls, 5);  // once, where it resumed
  EXPECT_EQ(sink.get().state_for_testing() & (R | D), 0u);
}

// A notify that finds nothing new wakes the wait, which polls, finds its
// predicate still false, and registers and sleeps again (the loop on
// resume).
TEST(async_diatomic_waker, a_spurious_wake_polls_again_and_sleeps) {
  wake_sink sink;
  int stage = 0;
  int calls = 0;
  auto body = [&]() -> job<false> {
    co_await sink.wait_until([&] {
      ++calls;
      return stage == 2;
    });
  };
  job<false> j = body();
  j.start();
  EXPECT_EQ(calls, 2);
  sink.source().notify();  // spurious: poll (1 call), register, re-check (1 call), sleep
  EXPECT_FALSE(j.done());
  EXPECT_EQ(calls, 4);
  EXPECT_EQ(sink.get().state_for_testing(), R | D);
  stage = 2;
  sink.source().notify();
  EXPECT_TRUE(j.done());
  EXPECT_EQ(calls, 5);
}

TEST(async_diatomic_waker, stop_before_waiting_throws_operation_stopped_without_calling_pred) {
  wake_sink sink;
  rouse::async::inplace_stop_source stop;
  stop.request_stop();
  int calls = 0;
  bool caught = false;
  auto body = [&]() -> job<false> {
    try {
      co_await sink.wait_until([&] { return ++calls > 100; });
    } catch (const rouse::async::operation_stopped&) {
      caught = true;
    }
  };
  job<false> j = body();
  j.start(stop.get_token());
  EXPECT_TRUE(j.done());
  EXPECT_TRUE(caught);
  EXPECT_EQ(calls, 1);  // await_ready's check only
  EXPECT_EQ(sink.get().state_for_testing() & R, 0u);
}

TEST(async_diatomic_waker, stop_while_waiting_resumes_and_throws_and_unregisters) {
  wake_sink sink;
  rouse::async::inplace_stop_source stop;
  bool caught = false;
  auto body = [&]() -> job<false> {
    try {
      co_await sink.wait_until([] { return false; });
    } catch (const rouse::async::operation_stopped&) {
      caught = true;
    }
  };
  job<false> j = body();
  j.start(stop.get_token());
  EXPECT_FALSE(j.done());
  EXPECT_NE(sink.get().state_for_testing() & R, 0u);
  std::thread([&] { stop.request_stop(); }).join();
  EXPECT_TRUE(j.done());
  EXPECT_TRUE(caught);
  EXPECT_EQ(sink.get().state_for_testing() & R, 0u);
  EXPECT_EQ(sink.get().state_for_testing() & (R | D), 0u);
  sink.source().notify();  // a late notify reaches nobody
}

TEST(async_diatomic_waker, stop_while_waiting_completes_in_place_through_unhandled_stopped) {
  wake_sink sink;
  rouse::async::inplace_stop_source stop;
  bool stopped = false, after = false;
  auto body = [&]() -> job<true> {
    co_await sink.wait_until([] { return false; });
    after = true;
  };
  job<true> j = body();
  j.h.promise().stopped_flag = &stopped;
  j.start(stop.get_token());
  stop.request_stop();
  EXPECT_TRUE(stopped);
  EXPECT_FALSE(after);
  EXPECT_FALSE(j.done());  // never resumed; its owner destroys it
  EXPECT_EQ(sink.get().state_for_testing() & (R | D), 0u);
  EXPECT_EQ(sink.get().state_for_testing() & R, 0u);
}

TEST(async_diatomic_waker, a_ready_predicate_wins_over_a_later_stop) {
  wake_sink sink;
  rouse::async::inplace_stop_source stop;
  std::atomic<int> v{0};
  int got = 0;
  auto body = [&]() -> job<false> {
    got = co_await sink.wait_until([&]() -> std::optional<int> {
      int const x = v.load();
      return x ? std::optional<int>(x) : std::nullopt;
    });
  };
  job<false> j = body();
  j.start(stop.get_token());
  v.store(5);
  sink.source().notify();
  stop.request_stop();
  EXPECT_TRUE(j.done());
  EXPECT_EQ(got, 5);
}

// A stop that claims the registration while the re-check runs (between
// the register and the withdraw) does not drop what the re-check took: the
// value wins, as a ready predicate does over any stop.
TEST(async_diatomic_waker, a_stop_during_the_recheck_leaves_the_value_it_took) {
  for (bool stops_in_place : {false, true}) {
    wake_sink sink;
    rouse::async::inplace_stop_source stop;
    int queue = 0;
    int calls = 0;
    int got = -1;
    bool caught = false, stopped = false;
    auto pred = [&]() -> std::optional<int> {
      if (++calls == 2) {  // the re-check, registered (R|D)
        queue = 1;         // a producer publishes,
        stop.request_stop();  // and a stop claims the registration, here
      }
      if (queue == 0) return std::nullopt;
      queue = 0;
      return 42;
    };
    if (stops_in_place) {
      auto body = [&]() -> job<true> { got = co_await sink.wait_until(pred); };
      job<true> j = body();
      j.h.promise().stopped_flag = &stopped;
      j.start(stop.get_token());
      EXPECT_TRUE(j.done());
    } else {
      auto body = [&]() -> job<false> {
        try {
          got = co_await sink.wait_until(pred);
        } catch (const rouse::async::operation_stopped&) {
          caught = true;
        }
      };
      job<false> j = body();
      j.start(stop.get_token());
      EXPECT_TRUE(j.done());
    }
    EXPECT_EQ(got, 42) << "stops_in_place " << stops_in_place;
    EXPECT_FALSE(caught);
    EXPECT_FALSE(stopped);
    EXPECT_EQ(queue, 0);
    EXPECT_EQ(sink.get().state_for_testing() & (R | D), 0u);
  }
}

TEST(async_diatomic_waker, the_coroutine_waits_again_after_a_wait) {
  wake_sink sink;
  std::atomic<int> count{0};
  int seen = 0;
  auto body = [&]() -> job<false> {
    for (int round = 1; round <= 5; ++round) {
      co_await sink.wait_until([&] { return count.load() >= round; });
      ++seen;
    }
  };
  job<false> j = body();
  j.start();
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(seen, i);
    count.fetch_add(1);
    sink.source().notify();
  }
  EXPECT_TRUE(j.done());
  EXPECT_EQ(seen, 5);
}

TEST(async_diatomic_waker, blocking_wait_on_a_thread) {
  wake_sink sink;
  std::atomic<int> items{0};
  constexpr int total = 5000;
  std::thread consumer([&] {
    int taken = 0;
    while (taken < total) {
      taken += sink.wait_until_blocking([&]() -> std::optional<int> {
        int const n = items.exchange(0, std::memory_order_acquire);
        return n ? std::optional<int>(n) : std::nullopt;
      });
    }
    EXPECT_EQ(taken, total);
  });
  wake_source const src = sink.source();
  for (int i = 0; i < total; ++i) {
    items.fetch_add(1, std::memory_order_release);
    src.notify();
  }
  consumer.join();
  EXPECT_EQ(sink.get().state_for_testing() & (R | D), 0u);
}

// The deadline form: false only when the deadline passed and pred() still
// fails after it (never early; the registration is withdrawn); pred() that
// holds by the time the deadline passed makes it true, as
// std::condition_variable::wait_until with a predicate does.
TEST(async_diatomic_waker, blocking_wait_with_a_deadline_asks_pred_once_more_at_the_deadline) {
  wake_sink sink;
  auto const deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(20);
  EXPECT_FALSE(sink.get().wait_until_blocking_until([] { return false; }, deadline));
  EXPECT_GE(std::chrono::steady_clock::now(), deadline);
  EXPECT_EQ(sink.get().state_for_testing() & (R | D), 0u);
  auto const later = std::chrono::steady_clock::now() + std::chrono::milliseconds(20);
  int calls = 0;
  EXPECT_TRUE(sink.get().wait_until_blocking_until(
      [&] {
        ++calls;
        return std::chrono::steady_clock::now() >= later;  // holds once the deadline passed
      },
      later));
  EXPECT_EQ(calls, 3);  // check, re-check, and the last look after the deadline
  EXPECT_EQ(sink.get().state_for_testing() & (R | D), 0u);
}

TEST(async_diatomic_waker, predicate_exceptions_reach_the_waiter) {
  wake_sink sink;
  int n = 0;
  EXPECT_THROW(sink.wait_until_blocking([&]() -> bool {
    if (++n == 2) throw std::runtime_error("boom");
    return false;
  }),
               std::runtime_error);
  EXPECT_EQ(sink.get().state_for_testing() & (R | D), 0u);
  EXPECT_EQ(sink.get().state_for_testing() & R, 0u);
}

#if ROUSE_DEBUG_CHECKS
TEST(async_diatomic_waker_death, a_ready_hint_that_holds_while_the_predicate_does_not_is_diagnosed) {
  EXPECT_DEATH(
      {
        wake_sink sink;
        loop_executor ex;
        std::atomic<int> items{0};
        std::atomic<int> hints{0};
        int calls = 0;
        auto body = [&]() -> job<false> {
          co_await sink.wait_until(hinted_pred{&items, &calls, &hints, /*lie=*/true});
        };
        job<false> j = body();
        j.start({}, &ex);
        sink.source().notify();
        int turns = 0;  // bounded: a build that did not diagnose it must not hang here
        ex.run_until([&] { return j.done() || ++turns > 1000; });
      },
      "rouse::async::diatomic_waker: misuse: a predicate's ready_hint\\(\\) held but it was not ready");
}

TEST(async_diatomic_waker_death, idle_notify_on_an_rmw_waker_is_diagnosed) {
  EXPECT_DEATH(
      {
        diatomic_waker dw;
        dw.notify_if_registered();
      },
      "rouse::async::diatomic_waker: misuse: notify_if_registered\\(\\) on a waker built with idle_notify::rmw");
}
#endif

}  // namespace
}  // namespace async_diatomic_waker_test
