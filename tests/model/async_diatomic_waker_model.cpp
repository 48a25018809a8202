// Relacy models of rouse::async::diatomic_waker: two notifiers against a
// sink that re-registers a new waker on every round (three wakers, so the
// two slots are reused while a lock holder may still read one), the
// blocking wait_until (the relay's claim word and the poll loop shared with
// the coroutine wait), and the load-only idle notify with its fence
// contract. A lost wake-up shows as a deadlock (the sink sleeps on its
// waker's flag, or parks, with every notifier gone), and the final
// assertion checks the sink observed the last notification. Broken
// variants that must be caught: a notifier that drops its retry request (no
// N) and the idle notify without its fence.
#include "model.hpp"
#include "rouse/async/diatomic_waker.hpp"

#include <optional>

namespace {

namespace rd = rouse::detail;
using rouse::async::diatomic_waker;
using rouse::async::idle_notify;
using rouse::async::waker;
using rouse::async::waker_vtable;

// A waker whose wake sets a flag the sink sleeps on (futex).
struct flag_waker {
  rd::atomic<std::uint32_t> woken{0};
  static flag_waker* self(const void* d) { return static_cast<flag_waker*>(const_cast<void*>(d)); }
  static const void* clone(const void* d) noexcept { return d; }
  static void wake(const void* d) noexcept {
    self(d)->woken.store(1, std::memory_order_release);
    rd::wake_all(self(d)->woken);
  }
  static void drop(const void*) noexcept {}
  static constexpr waker_vtable vtable{clone, wake, wake, drop};
  waker make() noexcept { return waker(this, &vtable); }
};

constexpr int notifiers = 2;

// Raw API: check, register a fresh waker (k % 3), re-check, sleep on it.
struct reregister_three_wakers : rl::test_suite<reregister_three_wakers, notifiers + 1> {
  diatomic_waker dw;
  rd::atomic<int> items{0};
  flag_waker w[3];

  void thread(unsigned index) {
    if (index < notifiers) {
      items.fetch_add(1, std::memory_order_relaxed);
      dw.notify();
      return;
    }
    for (unsigned k = 0;; ++k) {
      if (items.load(std::memory_order_relaxed) == notifiers) break;
      flag_waker& mine = w[k % 3];
      mine.woken.store(0, std::memory_order_relaxed);
      dw.register_waker(mine.make());
      if (items.load(std::memory_order_relaxed) == notifiers) break;
      while (mine.woken.load(std::memory_order_acquire) == 0) rd::wait(mine.woken, 0);
    }
    dw.unregister();
    RL_ASSERT(items.load(std::memory_order_relaxed) == notifiers);
  }
};

// wait_until_blocking: the relay, its claim word and the poll loop.
template <idle_notify Mode>
struct blocking_wait : rl::test_suite<blocking_wait<Mode>, notifiers + 1> {
  diatomic_waker dw{Mode};
  rd::atomic<int> items{0};

  void thread(unsigned index) {
    if (index < notifiers) {
      items.fetch_add(1, std::memory_order_relaxed);
      if (Mode == idle_notify::load)
        dw.notify_after_publish();
      else
        dw.notify();
      return;
    }
    int seen = 0;
    while (seen < notifiers) {
      seen = dw.wait_until_blocking([&]() -> std::optional<int> {
        int const n = items.load(std::memory_order_relaxed);
        if (n > seen) return n;
        return std::nullopt;
      });
    }
    RL_ASSERT(seen == notifiers);
  }
};

// The idle notify with one notifier and the raw API: the smallest Dekker
// pair, where the missing fence shows directly.
struct idle_notify_pair : rl::test_suite<idle_notify_pair, 2> {
  diatomic_waker dw{idle_notify::load};
  rd::atomic<int> item{0};
  flag_waker w;

  void thread(unsigned index) {
    if (index == 0) {
      item.store(1, std::memory_order_relaxed);
      dw.notify_after_publish();
      return;
    }
    if (item.load(std::memory_order_relaxed) == 1) return;
    dw.register_waker(w.make());  // (A) and (A2)
    if (item.load(std::memory_order_relaxed) == 1) return;
    while (w.woken.load(std::memory_order_acquire) == 0) rd::wait(w.woken, 0);
    RL_ASSERT(item.load(std::memory_order_relaxed) == 1);
  }
};

}  // namespace

int main() {
  int failures = 0;
  failures += rouse_model::expect_pass<reregister_three_wakers>("diatomic_waker.reregister_three_wakers", 200000);
  failures += rouse_model::expect_pass<blocking_wait<idle_notify::rmw>>("diatomic_waker.blocking_wait", 300000);
  failures += rouse_model::expect_pass<blocking_wait<idle_notify::load>>("diatomic_waker.blocking_wait_idle_load",
                                                                        200000);
  failures += rouse_model::expect_pass<idle_notify_pair>("diatomic_waker.idle_notify_pair", 200000);
  {
    rd::model_fault_scope f(rd::model_fault::diatomic_notify_drops_retry);
    failures += rouse_model::expect_failure<reregister_three_wakers>("diatomic_waker.broken_notify_drops_retry",
                                                                     rl::test_result_deadlock, 200000);
  }
  {
    rd::model_fault_scope f(rd::model_fault::diatomic_idle_notify_without_fence);
    failures += rouse_model::expect_failure<idle_notify_pair>("diatomic_waker.broken_idle_notify_without_fence",
                                                              rl::test_result_deadlock, 200000);
  }
  return failures == 0 ? 0 : 1;
}
