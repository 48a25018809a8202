// Models of rouse::async::thread_pool's protocol (rouse/async/thread_pool.hpp:
// detail::pool_core, the real code, compiled against Relacy): 2 workers and
// 1 spawner thread, random search. Coroutines here are real C++ coroutines
// whose frames Relacy allocates; a worker resumes them as the pool does.
//
//   spawn_one      the spawner schedules one coroutine from outside (the
//                  global queue) and sleeps until it ran; then stops the
//                  pool. A lost wake-up leaves every thread asleep: Relacy
//                  reports a deadlock. It ran exactly once (rl::var count).
//   spawn_after_sleep  the same, the spawner first waiting until both
//                  workers registered as sleepers (so the wake is needed).
//   fan_out        the spawned coroutine schedules two more from its worker
//                  (the LIFO slot, then the ring: the other worker may be
//                  woken and steal); each runs exactly once, its writes seen.
//   spill          a ring of 2 slots: four local schedules spill half the
//                  ring to the global queue; every coroutine runs once.
//   timer_cancel   a timer already due, raced by the spawner's cancel:
//                  exactly one of "cancel returned true" and "fired".
//   timer_wakes    the same timer is all the spawner waits for: added
//                  while the workers may sleep, add_timer must wake one.
//   timer_handed_on  a worker adds a timer while the other sleeps untimed,
//                  then runs a coroutine that blocks it until the timer
//                  fired: a sleeper must be given the timers.
//   batch          the spawner schedules two coroutines from outside; the
//                  first blocks its worker until the second ran. A worker
//                  that takes both from the global queue (a batch: one to
//                  run, the rest into its ring) while the other parks must
//                  wake it for the ring's task, or nothing runs it.
//   fired_after_yield  a coroutine adds a timer due at once, yields, and
//                  then blocks its worker until the timer's coroutine ran:
//                  its worker fires the timer after picking it again, and
//                  the fired coroutine must go where the other worker can
//                  take it (and that worker be woken for it).
//   stop_idle      the pool is stopped without work: every worker returns.
// And the broken variants, kept to prove the model sees the bugs it guards:
//   spawn_skips_wake   model_fault::pool_spawn_skips_wake: a schedule from
//                  outside pushes its task and does not look for a sleeping
//                  worker: a deadlock (spawn_after_sleep's shape).
//   timer_not_handed_on  model_fault::pool_timer_not_handed_on: the adder
//                  runs on without handing the timers on: a deadlock.
//   batch_skips_wake  model_fault::pool_batch_skips_wake: a worker that is
//                  not searching takes a batch from the global queue and
//                  does not look for a sleeper: a deadlock (batch's shape).
//   fired_stays_in_lifo  model_fault::pool_fired_stays_in_lifo: what the
//                  fire between two coroutines scheduled stays in the LIFO
//                  slot: a deadlock (fired_after_yield's shape).
#include <coroutine>
#include <cstdint>
#include <exception>

#include "model.hpp"
#include "rouse/async/thread_pool.hpp"

namespace {

namespace d = rouse::detail;
namespace ad = rouse::async::detail;

constexpr unsigned threads = 3;  // thread 0 spawns; threads 1 and 2 are the workers

// A coroutine that starts suspended and frees itself when it ends.
struct job {
  struct promise_type {
    job get_return_object() noexcept { return job{std::coroutine_handle<promise_type>::from_promise(*this)}; }
    std::suspend_always initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }
  };
  std::coroutine_handle<promise_type> handle;
};

template <std::uint32_t Capacity>
struct pool_suite_base {
  ad::pool_core<Capacity> core{threads - 1};
  d::atomic<std::uint32_t> finished{0};  // coroutines that ran to their end
  rl::var<int> runs[4];

  void reset() {
    for (auto& r : runs) r($) = 0;
  }
  // The worker the calling model thread is (the pool's thread-local, here).
  typename ad::pool_core<Capacity>::worker& me() { return core.worker_at(rl::thread_index() - 1); }
  void finish() {
    finished.fetch_add(1, std::memory_order_release);
    d::wake_all(finished);
  }
  void await_finished(std::uint32_t n) {
    std::uint32_t v;
    while ((v = finished.load(std::memory_order_acquire)) != n) d::wait(finished, v);
  }
  void run_worker() { core.run_worker(me()); }
};

// A timer due at once (model time stands still at min() for steady_clock)
// whose fire calls on_fire(suite).
template <class Suite>
struct due_timer {
  rouse::async::timer_entry e;  // first: fire() finds the timer from its entry
  Suite* suite = nullptr;
  void (*on_fire)(Suite*) = nullptr;

  void arm(Suite* s, void (*f)(Suite*)) {
    suite = s;
    on_fire = f;
    e.deadline = rouse::async::timer_entry::clock::time_point::min();
    e.fire = [](rouse::async::timer_entry* p) noexcept {
      auto* const t = reinterpret_cast<due_timer*>(p);
      t->on_fire(t->suite);
    };
  }
};

// AfterSleep: the spawner first waits until both workers registered as
// sleepers, so that the schedule must wake one (a random schedule rarely
// lets both workers get that far before the spawner's few steps).
template <bool AfterSleep>
struct spawn_one_suite : rl::test_suite<spawn_one_suite<AfterSleep>, threads>, pool_suite_base<4> {
  void before() { this->reset(); }
  static job body(spawn_one_suite* s) {
    s->runs[0]($) += 1;
    s->finish();
    co_return;
  }
  void thread(unsigned index) {
    if (index == 0) {
      if (AfterSleep) {
        while (this->core.worker_at(0).park_word.load(std::memory_order_relaxed) == 0 ||
               this->core.worker_at(1).park_word.load(std::memory_order_relaxed) == 0)
          d::yield();
      }
      this->core.schedule_remote(body(this).handle.address());
      this->await_finished(1);
      RL_ASSERT(this->runs[0]($) == 1);
      this->core.stop();
    } else {
      this->run_worker();
    }
  }
};

template <std::uint32_t Capacity, int Children>
struct fan_out_suite : rl::test_suite<fan_out_suite<Capacity, Children>, threads>, pool_suite_base<Capacity> {
  void before() { this->reset(); }
  static job child(fan_out_suite* s, int i) {
    s->runs[i]($) += 1;
    s->finish();
    co_return;
  }
  static job parent(fan_out_suite* s) {
    for (int i = 0; i < Children; ++i) s->core.schedule_local(s->me(), child(s, i).handle.address());
    co_return;
  }
  void thread(unsigned index) {
    if (index == 0) {
      this->core.schedule_remote(parent(this).handle.address());
      this->await_finished(Children);
      for (int i = 0; i < Children; ++i) RL_ASSERT(this->runs[i]($) == 1);
      this->core.stop();
    } else {
      this->run_worker();
    }
  }
};

// Cancel: the spawner races a cancel with the firing. Otherwise the timer
// is the only thing that ends the spawner's wait: add_timer must wake a
// sleeping worker (nobody would look at the timers otherwise).
template <bool Cancel>
struct timer_suite : rl::test_suite<timer_suite<Cancel>, threads>, pool_suite_base<4> {
  due_timer<timer_suite> t{};
  rl::var<int> fired;

  void before() {
    fired($) = 0;
    t.arm(this, [](timer_suite* s) {
      s->fired($) += 1;
      s->finish();
    });
  }
  void thread(unsigned index) {
    if (index == 0) {
      this->core.add_timer(t.e, nullptr);
      bool const cancelled = Cancel && this->core.cancel_timer(t.e);
      if (!cancelled) {
        this->await_finished(1);  // it fires, on a worker, exactly once
        RL_ASSERT(fired($) == 1);
      } else {
        RL_ASSERT(fired($) == 0);
      }
      this->core.stop();
    } else {
      this->run_worker();
    }
  }
};

// A worker adds a timer while the other sleeps untimed (no timer yet), then
// runs a coroutine that blocks its thread until the timer fired: the timers
// must go to the sleeper (the adder hands them on before that resume).
struct timer_handed_on_suite : rl::test_suite<timer_handed_on_suite, threads>, pool_suite_base<4> {
  due_timer<timer_handed_on_suite> t{};
  rl::var<int> fired;

  void before() {
    fired($) = 0;
    t.arm(this, [](timer_handed_on_suite* s) {
      s->fired($) += 1;
      s->finish();
    });
  }
  static job blocker(timer_handed_on_suite* s) {
    s->await_finished(1);  // blocks this worker's thread until the timer fired
    s->finish();
    co_return;
  }
  static job adder(timer_handed_on_suite* s) {
    s->core.add_timer(s->t.e, &s->me());
    s->core.schedule_local(s->me(), blocker(s).handle.address());  // runs next on this worker
    co_return;
  }
  void thread(unsigned index) {
    if (index == 0) {
      while (core.worker_at(0).park_word.load(std::memory_order_relaxed) == 0 ||
             core.worker_at(1).park_word.load(std::memory_order_relaxed) == 0)
        d::yield();
      core.schedule_remote(adder(this).handle.address());
      await_finished(2);
      RL_ASSERT(fired($) == 1);
      core.stop();
    } else {
      run_worker();
    }
  }
};

struct batch_suite : rl::test_suite<batch_suite, threads>, pool_suite_base<4> {
  void before() { reset(); }
  static job blocker(batch_suite* s) {
    s->await_finished(1);  // blocks this worker's thread until the second coroutine ran
    s->runs[0]($) += 1;
    s->finish();
    co_return;
  }
  static job second(batch_suite* s) {
    s->runs[1]($) += 1;
    s->finish();
    co_return;
  }
  void thread(unsigned index) {
    if (index == 0) {
      core.schedule_remote(blocker(this).handle.address());
      core.schedule_remote(second(this).handle.address());
      await_finished(2);
      RL_ASSERT(runs[0]($) == 1 && runs[1]($) == 1);
      core.stop();
    } else {
      run_worker();
    }
  }
};

struct fired_after_yield_suite : rl::test_suite<fired_after_yield_suite, threads>, pool_suite_base<4> {
  due_timer<fired_after_yield_suite> t{};

  void before() {
    reset();
    t.arm(this, [](fired_after_yield_suite* s) {
      s->core.schedule_local(s->me(), fired(s).handle.address());  // fired on a worker: its LIFO slot
    });
  }
  static job fired(fired_after_yield_suite* s) {
    s->runs[0]($) += 1;
    s->finish();
    co_return;
  }
  struct yield_now {
    fired_after_yield_suite* s;
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) const noexcept { s->core.schedule_yield(s->me(), h.address()); }
    void await_resume() const noexcept {}
  };
  static job yielder(fired_after_yield_suite* s) {
    s->core.add_timer(s->t.e, &s->me());
    co_await yield_now{s};
    s->await_finished(1);  // blocks this worker's thread until the fired coroutine ran
    s->runs[1]($) += 1;
    s->finish();
    co_return;
  }
  void thread(unsigned index) {
    if (index == 0) {
      core.schedule_remote(yielder(this).handle.address());
      await_finished(2);
      RL_ASSERT(runs[0]($) == 1 && runs[1]($) == 1);
      core.stop();
    } else {
      run_worker();
    }
  }
};

struct stop_idle_suite : rl::test_suite<stop_idle_suite, threads>, pool_suite_base<4> {
  void thread(unsigned index) {
    if (index == 0)
      core.stop();
    else
      run_worker();
  }
};

}  // namespace

int main() {
  int failures = 0;
  failures += rouse_model::expect_pass<spawn_one_suite<false>>("async_thread_pool.spawn_one", 200000);
  failures += rouse_model::expect_pass<spawn_one_suite<true>>("async_thread_pool.spawn_after_sleep", 200000);
  failures += rouse_model::expect_pass<fan_out_suite<4, 2>>("async_thread_pool.fan_out", 200000);
  failures += rouse_model::expect_pass<fan_out_suite<2, 4>>("async_thread_pool.spill", 100000);
  failures += rouse_model::expect_pass<timer_suite<true>>("async_thread_pool.timer_cancel", 100000);
  failures += rouse_model::expect_pass<timer_suite<false>>("async_thread_pool.timer_wakes", 100000);
  failures += rouse_model::expect_pass<timer_handed_on_suite>("async_thread_pool.timer_handed_on", 100000);
  failures += rouse_model::expect_pass<batch_suite>("async_thread_pool.batch", 200000);
  failures += rouse_model::expect_pass<fired_after_yield_suite>("async_thread_pool.fired_after_yield", 200000);
  failures += rouse_model::expect_pass<stop_idle_suite>("async_thread_pool.stop_idle", 50000);
  {
    d::model_fault_scope fault(d::model_fault::pool_spawn_skips_wake);
    failures += rouse_model::expect_failure<spawn_one_suite<true>>("async_thread_pool.spawn_skips_wake",
                                                                   rl::test_result_deadlock, 200000);
  }
  {
    d::model_fault_scope fault(d::model_fault::pool_timer_not_handed_on);
    failures += rouse_model::expect_failure<timer_handed_on_suite>("async_thread_pool.timer_not_handed_on",
                                                                   rl::test_result_deadlock, 100000);
  }
  {
    d::model_fault_scope fault(d::model_fault::pool_batch_skips_wake);
    failures += rouse_model::expect_failure<batch_suite>("async_thread_pool.batch_skips_wake", rl::test_result_deadlock,
                                                         200000);
  }
  {
    d::model_fault_scope fault(d::model_fault::pool_fired_stays_in_lifo);
    failures += rouse_model::expect_failure<fired_after_yield_suite>("async_thread_pool.fired_stays_in_lifo",
                                                                     rl::test_result_deadlock, 200000);
  }
  return failures == 0 ? 0 : 1;
}
