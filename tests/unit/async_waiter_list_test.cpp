// rouse::async::waiter_list, list_wait and list_awaitable: the shared piece of
// the async primitives, driven through a scripted test primitive (a permit
// counter whose re-check can run a notify or a stop request at the worst
// moment). FIFO claims, notify_all's match, the register / re-check /
// withdraw protocol with its "claimed while re-checking" pass-on, cancel with
// and without pass-on, the arming guard (a wake during await_suspend resumes
// the coroutine there, never twice), stop callbacks (before, during arming,
// while waiting, after the wake; a token whose callback does not fit the
// in-frame storage), a frame destroyed while suspended, and threads waiting
// on the same list as coroutines. Coroutines run on a single-thread loop of
// this test's own (an executor subclass).
#include "rouse/async/waiter_list.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <coroutine>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "eventually.hpp"
#include "rouse/async/executor.hpp"
#include "rouse/async/stop_token.hpp"

namespace async_waiter_list_test {
namespace {
namespace ra = rouse::async;
using ra::check_result;

// ---- a loop and a coroutine type (until run_loop / task exist) ---------------

class test_loop final : public ra::executor {
 public:
  void schedule(std::coroutine_handle<> h) noexcept override {
    std::lock_guard<std::mutex> g(m_);
    q_.push_back(h);
    ++scheduled_;
  }
  void add_timer(ra::timer_entry&) noexcept override { std::terminate(); }
  bool cancel_timer(ra::timer_entry&) noexcept override { return false; }
  // Resumes queued coroutines until none is left.
  int drain() {
    int n = 0;
    for (;;) {
      std::coroutine_handle<> h;
      {
        std::lock_guard<std::mutex> g(m_);
        if (q_.empty()) return n;
        h = q_.front();
        q_.pop_front();
      }
      h.resume();
      ++n;
    }
  }
  // Drops a queued handle without resuming it (an executor torn down).
  bool discard(std::coroutine_handle<> h) {
    std::lock_guard<std::mutex> g(m_);
    for (auto it = q_.begin(); it != q_.end(); ++it)
      if (*it == h) {
        q_.erase(it);
        return true;
      }
    return false;
  }
  int scheduled() {
    std::lock_guard<std::mutex> g(m_);
    return scheduled_;
  }

 private:
  std::mutex m_;
  std::deque<std::coroutine_handle<>> q_;
  int scheduled_ = 0;
};

template <class Token>
struct env_on_loop {
  test_loop* loop;
  Token token;
  ra::scheduler query(ra::get_scheduler_t) const noexcept { return ra::scheduler(*loop); }
  Token query(ra::get_stop_token_t) const noexcept { return token; }
};

// A lazy coroutine: start() schedules it on a loop. StopsInPlace: its promise
// has unhandled_stopped() (a stopped wait completes it without resuming it).
template <bool StopsInPlace = false, class Token = ra::inplace_stop_token>
struct task {
  struct promise_type {
    test_loop* loop = nullptr;
    Token token{};
    bool stopped = false;
    bool finished = false;
    std::exception_ptr error;
    task get_return_object() { return task{std::coroutine_handle<promise_type>::from_promise(*this)}; }
    std::suspend_always initial_suspend() noexcept { return {}; }
    std::suspend_always final_suspend() noexcept {
      finished = true;
      return {};
    }
    void return_void() {}
    void unhandled_exception() { error = std::current_exception(); }
    env_on_loop<Token> get_env() const noexcept { return {loop, token}; }
    std::coroutine_handle<> unhandled_stopped() noexcept
      requires StopsInPlace
    {
      stopped = true;
      return std::noop_coroutine();
    }
  };
  std::coroutine_handle<promise_type> h;
  explicit task(std::coroutine_handle<promise_type> x) : h(x) {}
  task(task&& o) noexcept : h(std::exchange(o.h, {})) {}
  ~task() {
    if (h) h.destroy();
  }
  void start(test_loop& l, Token t = {}) {
    h.promise().loop = &l;
    h.promise().token = t;
    l.schedule(h);
  }
  bool finished() const { return h.promise().finished; }
  bool stopped() const { return h.promise().stopped; }
  bool threw_stopped() const {
    if (!h.promise().error) return false;
    try {
      std::rethrow_exception(h.promise().error);
    } catch (const ra::operation_stopped&) {
      return true;
    } catch (...) {
      return false;
    }
  }
  // Destroys the frame now (while suspended: the awaitable's destructor runs).
  void destroy() { std::exchange(h, {}).destroy(); }
};

// ---- a scripted primitive ------------------------------------------------------

// A permit counter: the check takes one. `on_recheck` runs inside the
// re-check (B2), between the push and the decision: a notify or a stop
// request at the worst moment.
class counter {
 public:
  using awaitable = ra::list_awaitable<counter>;
  awaitable wait() noexcept { return awaitable(*this, 0); }

  // Adds a permit and hands it to the oldest waiter if one can be claimed.
  void post() noexcept {
    waiters_.notify_one_locked([] { return true; }, [this] { permits_.fetch_add(1); });
  }
  int permits() const { return permits_.load(); }
  void add_permit() { permits_.fetch_add(1); }
  ra::waiter_list& list() { return waiters_; }

  std::function<void()> on_recheck;
  std::atomic<int> checks{0};
  std::atomic<int> passed_on{0};

 private:
  friend class ra::list_wait<counter>;
  friend class ra::list_awaitable<counter>;
  template <class P, class Deadline>
  friend bool ra::wait_blocking(P&, std::uintptr_t, const Deadline&) noexcept;

  check_result try_acquire(std::uintptr_t) noexcept {
    if (++checks == 2 && on_recheck) std::exchange(on_recheck, nullptr)();
    int p = permits_.load();
    while (p > 0)
      if (permits_.compare_exchange_weak(p, p - 1)) return check_result::ready_with_permit;
    return check_result::not_ready;
  }
  void pass_on() noexcept {
    ++passed_on;
    post();
  }
  ra::waiter_list& waiters() noexcept { return waiters_; }

  std::atomic<int> permits_{0};
  ra::waiter_list waiters_;
};

// A waker that counts its wakes.
struct flag {
  int wakes = 0;
  void operator()() noexcept { ++wakes; }
};

task<> wait_on(counter& c, int& resumed) {
  co_await c.wait();
  ++resumed;
}
task<true> wait_on_in_place(counter& c, int& resumed) {
  co_await c.wait();
  ++resumed;
}

// ---- waiter_list ---------------------------------------------------------------

TEST(async_waiter_list, sizes_are_documented) {
  EXPECT_EQ(sizeof(ra::waiter_list), 24u);
  EXPECT_EQ(sizeof(ra::list_wait<counter>), 80u);
  EXPECT_EQ(sizeof(counter::awaitable), 200u);
}

TEST(async_waiter_list, notify_one_claims_the_oldest_and_wakes_outside_the_lock) {
  counter c;
  flag f[3];
  std::vector<std::unique_ptr<ra::list_wait<counter>>> w;
  for (auto& x : f) {
    w.push_back(std::make_unique<ra::list_wait<counter>>(c, 0, ra::callback_waker(x)));
    ASSERT_EQ(w.back()->start(), ra::list_wait<counter>::start_result::suspended);
  }
  EXPECT_TRUE(c.list().has_waiters());
  EXPECT_TRUE(c.list().notify_one());
  EXPECT_EQ(f[0].wakes, 1);
  EXPECT_EQ(f[1].wakes, 0);
  EXPECT_TRUE(ra::waiter_list::transferable(w[0]->claim()));
  EXPECT_TRUE(c.list().notify_one());
  EXPECT_EQ(f[1].wakes, 1);
  // The last one gives up before it was chosen: it leaves, nothing passed on.
  EXPECT_TRUE(w[2]->cancel());
  EXPECT_EQ(c.passed_on, 0);
  EXPECT_FALSE(c.list().has_waiters());
  EXPECT_FALSE(c.list().notify_one());  // one load, nobody
  EXPECT_EQ(f[2].wakes, 0);
}

TEST(async_waiter_list, notify_all_claims_only_the_matching_waiters_and_is_not_transferable) {
  counter c;
  flag f[3];
  std::vector<std::unique_ptr<ra::list_wait<counter>>> w;
  for (std::uintptr_t tag = 0; tag < 3; ++tag) {
    w.push_back(std::make_unique<ra::list_wait<counter>>(c, tag * 2, ra::callback_waker(f[tag])));
    ASSERT_EQ(w.back()->start(), ra::list_wait<counter>::start_result::suspended);
  }
  int const n = c.list().notify_all([](ra::detail::waiter_node& node) {
    return ra::list_wait<counter>::tag_of(node) != 2;
  });
  EXPECT_EQ(n, 2);
  EXPECT_EQ(f[0].wakes, 1);
  EXPECT_EQ(f[1].wakes, 0);
  EXPECT_EQ(f[2].wakes, 1);
  EXPECT_EQ(w[0]->claim(), ra::waiter_list::broadcast);
  EXPECT_FALSE(ra::waiter_list::transferable(w[0]->claim()));
  // A broadcast waiter that gives up has nothing to pass on.
  EXPECT_FALSE(w[0]->cancel());
  EXPECT_EQ(c.passed_on, 0);
  EXPECT_EQ(c.list().notify_all(), 1);
  EXPECT_EQ(f[1].wakes, 1);
}

TEST(async_waiter_list, a_chosen_waiter_that_gives_up_passes_its_permit_to_the_next) {
  counter c;
  flag f[2];
  ra::list_wait<counter> first(c, 0, ra::callback_waker(f[0]));
  ra::list_wait<counter> second(c, 0, ra::callback_waker(f[1]));
  ASSERT_EQ(first.start(), ra::list_wait<counter>::start_result::suspended);
  ASSERT_EQ(second.start(), ra::list_wait<counter>::start_result::suspended);
  c.post();  // chooses `first`
  EXPECT_EQ(f[0].wakes, 1);
  EXPECT_FALSE(first.cancel());  // chosen: passes it on
  EXPECT_EQ(c.passed_on, 1);
  EXPECT_EQ(f[1].wakes, 1);
  EXPECT_EQ(c.permits(), 0);
}

TEST(async_waiter_list, a_chosen_last_waiter_that_gives_up_stores_its_permit) {
  counter c;
  flag f;
  ra::list_wait<counter> only(c, 0, ra::callback_waker(f));
  ASSERT_EQ(only.start(), ra::list_wait<counter>::start_result::suspended);
  c.post();
  EXPECT_FALSE(only.cancel());
  EXPECT_EQ(c.permits(), 1);  // nobody else: stored, not lost
}

TEST(async_waiter_list, start_withdraws_when_the_recheck_finds_it_ready) {
  counter c;
  flag f;
  c.on_recheck = [&] { c.add_permit(); };
  ra::list_wait<counter> w(c, 0, ra::callback_waker(f));
  ASSERT_EQ(w.try_acquire(), check_result::not_ready);  // check 1
  EXPECT_EQ(w.start(), ra::list_wait<counter>::start_result::withdrew);
  EXPECT_EQ(w.claim(), ra::detail::waiter::aborted);
  EXPECT_FALSE(c.list().has_waiters());
  EXPECT_EQ(f.wakes, 0);
  EXPECT_EQ(c.permits(), 0);
}

TEST(async_waiter_list, start_chosen_during_its_recheck_keeps_one_and_passes_one_on) {
  counter c;
  flag f;
  // Between the push and the re-check: a post claims it, and another permit
  // appears that the re-check takes. Two reasons: one passed on (stored).
  c.on_recheck = [&] {
    c.post();
    c.add_permit();
  };
  ra::list_wait<counter> w(c, 0, ra::callback_waker(f));
  ASSERT_EQ(w.try_acquire(), check_result::not_ready);
  EXPECT_EQ(w.start(), ra::list_wait<counter>::start_result::claimed);
  EXPECT_EQ(f.wakes, 1);
  EXPECT_EQ(c.passed_on, 1);
  EXPECT_EQ(c.permits(), 1);
}

TEST(async_waiter_list, try_abort_wins_only_before_a_notify) {
  counter c;
  flag f[2];
  ra::list_wait<counter> a(c, 0, ra::callback_waker(f[0]));
  ra::list_wait<counter> b(c, 0, ra::callback_waker(f[1]));
  ASSERT_EQ(a.start(), ra::list_wait<counter>::start_result::suspended);
  ASSERT_EQ(b.start(), ra::list_wait<counter>::start_result::suspended);
  EXPECT_TRUE(a.try_abort());  // unlinked, released, woken (as stopped)
  EXPECT_EQ(f[0].wakes, 1);
  c.post();  // b, not the aborted a
  EXPECT_EQ(f[1].wakes, 1);
  EXPECT_FALSE(b.try_abort());  // the notify won: the wake stands
  EXPECT_EQ(f[1].wakes, 1);
  EXPECT_EQ(c.permits(), 0);
}

// The list's word: a lone waiter sits in the slot; a second moves it into the
// list (the oldest first); when one waiter is left, the unlock puts it back
// in the slot. FIFO holds across those moves, and so do the exact leaves.
TEST(async_waiter_list, fifo_holds_as_waiters_move_between_the_slot_and_the_list) {
  counter c;
  flag f[5];
  std::vector<std::unique_ptr<ra::list_wait<counter>>> w;
  for (auto& x : f) w.push_back(std::make_unique<ra::list_wait<counter>>(c, 0, ra::callback_waker(x)));
  using start = ra::list_wait<counter>::start_result;
  ASSERT_EQ(w[0]->start(), start::suspended);  // the slot
  ASSERT_EQ(w[1]->start(), start::suspended);  // both into the list
  c.post();                                    // w[0]; w[1] alone: back to the slot
  EXPECT_EQ(f[0].wakes, 1);
  ASSERT_EQ(w[2]->start(), start::suspended);  // w[1] (oldest) and w[2] in the list
  EXPECT_TRUE(w[1]->cancel());                 // leaves: w[2] alone, back in the slot
  EXPECT_TRUE(w[2]->cancel());                 // leaves the slot: empty
  EXPECT_FALSE(c.list().has_waiters());
  ASSERT_EQ(w[4]->start(), start::suspended);
  ASSERT_EQ(w[3]->start(), start::suspended);
  c.post();
  EXPECT_EQ(f[4].wakes, 1);  // the older of the two
  EXPECT_EQ(f[3].wakes, 0);
  c.post();
  EXPECT_EQ(f[3].wakes, 1);
  EXPECT_EQ(f[1].wakes + f[2].wakes, 0);
  EXPECT_FALSE(c.list().has_waiters());
  EXPECT_EQ(c.permits(), 0);
  EXPECT_EQ(c.passed_on, 0);
}

// The list's lock is held for a whole notify_all: a thread that registers
// and leaves meanwhile waits for it (pausing, yielding, then napping), and
// gets in; every waiter of the broadcast is woken once, every other wait
// leaves unchosen. Nothing hangs.
TEST(async_waiter_list, a_registration_behind_a_long_notify_all_gets_in) {
  counter c;
  constexpr int many = 100'000;
  std::vector<flag> f(many);
  std::vector<std::unique_ptr<ra::list_wait<counter>>> w;
  w.reserve(many);
  for (auto& x : f) {
    w.push_back(std::make_unique<ra::list_wait<counter>>(c, 0, ra::callback_waker(x)));
    ASSERT_EQ(w.back()->start(), ra::list_wait<counter>::start_result::suspended);
  }
  std::atomic<bool> go{false};
  std::atomic<int> left{0};
  std::thread other([&] {
    while (!go.load()) std::this_thread::yield();
    for (int i = 0; i < 2'000; ++i) {
      flag mine;
      ra::list_wait<counter> x(c, 1, ra::callback_waker(mine));  // tag 1: not the broadcast's
      if (x.start() == ra::list_wait<counter>::start_result::suspended && x.cancel()) left.fetch_add(1);
    }
  });
  go.store(true);
  int const woken = c.list().notify_all([](ra::detail::waiter_node& n) { return ra::list_wait<counter>::tag_of(n) == 0; });
  other.join();
  EXPECT_EQ(woken, many);
  for (auto& x : f) ASSERT_EQ(x.wakes, 1);
  EXPECT_EQ(left.load(), 2'000);
  EXPECT_FALSE(c.list().has_waiters());
}

// A task waiter whose cancel lost the claim waits for its claimer's release
// (a store, which it polls and then naps on), not less: here the claimer
// (a notify_all on another thread) releases it only after the waker of the
// waiter before it in the chain returns, which takes a while.
TEST(async_waiter_list, a_cancel_that_lost_its_claim_waits_for_the_release) {
  counter c;
  std::atomic<bool> in_first{false};
  std::atomic<bool> first_done{false};
  struct slow {
    std::atomic<bool>* in;
    std::atomic<bool>* done;
    void operator()() noexcept {
      in->store(true);
      std::this_thread::sleep_for(std::chrono::milliseconds(5));  // longer than the poll: the owner naps
      done->store(true);
    }
  };
  flag second;
  slow first{&in_first, &first_done};
  ra::list_wait<counter> first_wait(c, 0, ra::callback_waker(first));
  ra::list_wait<counter> second_wait(c, 0, ra::callback_waker(second));
  ASSERT_EQ(first_wait.start(), ra::list_wait<counter>::start_result::suspended);
  ASSERT_EQ(second_wait.start(), ra::list_wait<counter>::start_result::suspended);
  std::thread notifier([&] { EXPECT_EQ(c.list().notify_all(), 2); });  // claims both, wakes in order
  while (!in_first.load()) std::this_thread::yield();
  EXPECT_FALSE(second_wait.cancel());  // claimed by the broadcast: it waits for the release
  EXPECT_TRUE(first_done.load());      // which came after the first waker returned
  notifier.join();
  EXPECT_EQ(second.wakes, 1);
  EXPECT_EQ(c.passed_on, 0);  // a broadcast is not passed on
}

// ---- list_awaitable -------------------------------------------------------------

TEST(async_waiter_list, awaitable_ready_at_once_does_not_suspend) {
  counter c;
  test_loop loop;
  int resumed = 0;
  c.add_permit();
  auto t = wait_on(c, resumed);
  t.start(loop);
  loop.drain();
  EXPECT_TRUE(t.finished());
  EXPECT_EQ(resumed, 1);
  EXPECT_EQ(loop.scheduled(), 1);  // the start only
}

TEST(async_waiter_list, awaitable_resumes_on_its_executor_not_inside_the_notify) {
  counter c;
  test_loop loop;
  int resumed = 0;
  auto t = wait_on(c, resumed);
  t.start(loop);
  loop.drain();
  EXPECT_FALSE(t.finished());
  c.post();
  EXPECT_EQ(resumed, 0);  // scheduled, not run inside post()
  EXPECT_EQ(loop.drain(), 1);
  EXPECT_EQ(resumed, 1);
  EXPECT_TRUE(t.finished());
}

TEST(async_waiter_list, a_wake_while_arming_resumes_in_await_suspend_once) {
  counter c;
  test_loop loop;
  int resumed = 0;
  c.on_recheck = [&] { c.post(); };  // claims it between push and re-check
  auto t = wait_on(c, resumed);
  t.start(loop);
  EXPECT_EQ(loop.drain(), 1);  // the start; the wake did not schedule it again
  EXPECT_TRUE(t.finished());
  EXPECT_EQ(resumed, 1);
  EXPECT_EQ(loop.scheduled(), 1);
  EXPECT_EQ(c.permits(), 0);
}

TEST(async_waiter_list, stop_before_the_wait_completes_it_stopped_and_takes_nothing) {
  counter c;
  test_loop loop;
  ra::inplace_stop_source s;
  s.request_stop();
  int resumed = 0;
  auto t = wait_on(c, resumed);
  t.start(loop, s.get_token());
  loop.drain();
  EXPECT_TRUE(t.finished());
  EXPECT_TRUE(t.threw_stopped());
  EXPECT_EQ(resumed, 0);
  EXPECT_FALSE(c.list().has_waiters());
}

TEST(async_waiter_list, stop_while_waiting_unlinks_and_completes_in_place) {
  counter c;
  test_loop loop;
  ra::inplace_stop_source s;
  int resumed = 0;
  auto t = wait_on_in_place(c, resumed);
  t.start(loop, s.get_token());
  loop.drain();
  s.request_stop();
  EXPECT_TRUE(t.stopped());  // unhandled_stopped() ran; the loop got noop
  EXPECT_FALSE(c.list().has_waiters());
  loop.drain();
  EXPECT_FALSE(t.finished());
  c.post();  // nobody: stored, not lost
  EXPECT_EQ(c.permits(), 1);
  t.destroy();  // the stopped frame; its awaitable leaves quietly
  EXPECT_EQ(c.passed_on, 0);
}

TEST(async_waiter_list, stop_during_arming_completes_it_stopped_from_await_suspend) {
  counter c;
  test_loop loop;
  ra::inplace_stop_source s;
  int resumed = 0;
  // Stop lands after the early check, before the callback is registered: the
  // registration runs it inline, it wins the claim while arming.
  c.on_recheck = [&] { s.request_stop(); };
  auto t = wait_on(c, resumed);
  t.start(loop, s.get_token());
  loop.drain();
  EXPECT_TRUE(t.finished());
  EXPECT_TRUE(t.threw_stopped());
  EXPECT_EQ(loop.scheduled(), 1);
  c.post();
  EXPECT_EQ(c.permits(), 1);
}

TEST(async_waiter_list, stop_after_the_wake_lets_the_wake_stand) {
  counter c;
  test_loop loop;
  ra::inplace_stop_source s;
  int resumed = 0;
  auto t = wait_on(c, resumed);
  t.start(loop, s.get_token());
  loop.drain();
  c.post();          // chosen, scheduled
  s.request_stop();  // loses the claim
  loop.drain();
  EXPECT_TRUE(t.finished());
  EXPECT_FALSE(t.threw_stopped());
  EXPECT_EQ(resumed, 1);
  EXPECT_EQ(c.permits(), 0);  // consumed once, not doubled
}

// A token whose callback does not fit the awaitable's storage.
struct big_token {
  ra::inplace_stop_token inner;
  template <class F>
  struct callback {
    ra::inplace_stop_callback<F> cb;
    unsigned char padding[128]{};
    template <class G>
    callback(big_token t, G&& g) : cb(t.inner, std::forward<G>(g)) {}
  };
  template <class F>
  using callback_type = callback<F>;
  bool stop_requested() const noexcept { return inner.stop_requested(); }
  bool stop_possible() const noexcept { return inner.stop_possible(); }
};

task<false, big_token> wait_big(counter& c, int& resumed) {
  co_await c.wait();
  ++resumed;
}

TEST(async_waiter_list, a_large_stop_callback_is_allocated_and_freed) {
  counter c;
  test_loop loop;
  ra::inplace_stop_source s;
  int resumed = 0;
  auto t = wait_big(c, resumed);
  t.start(loop, big_token{s.get_token()});
  loop.drain();
  s.request_stop();
  loop.drain();
  EXPECT_TRUE(t.threw_stopped());
  auto u = wait_big(c, resumed);
  ra::inplace_stop_source s2;
  u.start(loop, big_token{s2.get_token()});
  loop.drain();
  c.post();
  loop.drain();
  EXPECT_EQ(resumed, 1);  // and ASan sees both callbacks freed
}

TEST(async_waiter_list, a_frame_destroyed_while_waiting_leaves_the_list) {
  counter c;
  test_loop loop;
  int resumed = 0;
  auto a = wait_on(c, resumed);
  auto b = wait_on(c, resumed);
  a.start(loop);
  b.start(loop);
  loop.drain();
  a.destroy();
  c.post();  // goes to b
  loop.drain();
  EXPECT_TRUE(b.finished());
  EXPECT_EQ(c.passed_on, 0);
  EXPECT_EQ(c.permits(), 0);
}

TEST(async_waiter_list, a_frame_destroyed_after_being_chosen_passes_the_permit_on) {
  counter c;
  test_loop loop;
  int resumed = 0;
  auto a = wait_on(c, resumed);
  auto b = wait_on(c, resumed);
  a.start(loop);
  b.start(loop);
  loop.drain();
  c.post();  // chooses a: scheduled
  ASSERT_TRUE(loop.discard(a.h));
  a.destroy();  // never ran: its permit goes to b
  EXPECT_EQ(c.passed_on, 1);
  loop.drain();
  EXPECT_TRUE(b.finished());
  EXPECT_EQ(resumed, 1);
  EXPECT_EQ(c.permits(), 0);
}

// Without a scheduler in its environment a coroutine resumes inside the
// notify, on the notifier's thread (coroutine_waker's documented fallback).
struct bare_task {
  struct promise_type {
    bool finished = false;
    bare_task get_return_object() { return bare_task{std::coroutine_handle<promise_type>::from_promise(*this)}; }
    std::suspend_never initial_suspend() noexcept { return {}; }
    std::suspend_always final_suspend() noexcept {
      finished = true;
      return {};
    }
    void return_void() {}
    void unhandled_exception() { std::terminate(); }
  };
  std::coroutine_handle<promise_type> h;
  ~bare_task() { h.destroy(); }
};
bare_task bare_wait(counter& c) { co_await c.wait(); }

TEST(async_waiter_list, without_an_executor_the_waiter_resumes_inside_the_notify) {
  counter c;
  auto t = bare_wait(c);
  EXPECT_FALSE(t.h.promise().finished);
  c.post();
  EXPECT_TRUE(t.h.promise().finished);
}

// ---- threads on the same list ---------------------------------------------------

TEST(async_waiter_list, a_thread_and_a_coroutine_wait_in_one_fifo) {
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  counter c;
  test_loop loop;
  int resumed = 0;
  std::atomic<bool> thread_done{false};
  auto const base = rouse_test::wait_calls();
  std::thread th([&] {
    EXPECT_TRUE(ra::wait_blocking(c, 0, rouse::detail::no_deadline{}));
    thread_done = true;
  });
  rouse_test::until_wait_calls(base + 1);  // queued (it sleeps in its park)
  auto t = wait_on(c, resumed);
  t.start(loop);
  loop.drain();
  c.post();  // the thread, first in line
  th.join();
  EXPECT_TRUE(thread_done);
  loop.drain();
  EXPECT_EQ(resumed, 0);
  c.post();
  loop.drain();
  EXPECT_EQ(resumed, 1);
}

TEST(async_waiter_list, a_timed_thread_wait_times_out_and_leaves) {
  counter c;
  auto const soon = std::chrono::steady_clock::now() + std::chrono::milliseconds(1);
  EXPECT_FALSE(ra::wait_blocking(c, 0, rouse::detail::deadline_at(soon)));
  EXPECT_FALSE(c.list().has_waiters());
  c.post();
  EXPECT_EQ(c.permits(), 1);
  EXPECT_TRUE(ra::wait_blocking(c, 0, rouse::detail::deadline_at(soon)));  // takes it at once
}

#if ROUSE_DEBUG_CHECKS && !defined(ROUSE_SANITIZER_thread)
TEST(async_waiter_list_death, destroying_a_list_with_a_waiter_is_diagnosed) {
  EXPECT_DEATH(
      {
        auto* c = new counter;
        flag f;
        auto* w = new ra::list_wait<counter>(*c, 0, ra::callback_waker(f));
        (void)w->start();
        delete c;
      },
      "rouse::async::waiter_list: .*destroyed while a waiter is registered");
}
#endif

}  // namespace
}  // namespace async_waiter_list_test
