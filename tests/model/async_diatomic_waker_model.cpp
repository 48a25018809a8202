// Relacy models of rouse::async::diatomic_waker: two notifiers against a
// sink that re-registers a new waker on every round (three wakers, so the
// two slots are reused while a lock holder may still read one), the
// blocking wait_until (the wait registers itself: R|D, claimed by one
// notify, withdrawn by the consumer when its re-check is ready), the
// external wait a select drives (every registration has one owner: the
// claimer that releases it, or the consumer that withdrew it, never both),
// and the load-only idle notify with its fence contract. A lost wake-up
// shows as a deadlock (the sink sleeps on its waker's flag, or parks, with
// every notifier gone), and the final assertion checks the sink observed
// the last notification. Broken variants that must be caught: a notifier
// that drops its retry request (no N), the idle notify without its fence, a
// wait that registers relaxed (the notify that claims it reads the record
// unpublished: a data race), and a withdraw that ignores a claim (a release
// reaches a wait the consumer gave up).
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

// A notifier's whole part: publish one item, notify.
void publish_one(rd::atomic<int>& items, diatomic_waker& dw) {
  items.fetch_add(1, std::memory_order_relaxed);
  dw.notify();
}

// Raw API: check, register a fresh waker (k % 3), re-check, sleep on it.
struct reregister_three_wakers : rl::test_suite<reregister_three_wakers, notifiers + 1> {
  diatomic_waker dw;
  rd::atomic<int> items{0};
  flag_waker w[3];

  void thread(unsigned index) {
    if (index < notifiers) return publish_one(items, dw);
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

// wait_until_blocking: the wait registered itself (R|D), its claim, the
// withdraw at a ready re-check, and the parker as its guard.
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

// arm_external / end_external with a record whose release checks it still
// belongs to the wait: a withdraw that succeeded means no release, ever.
struct external_one_owner : rl::test_suite<external_one_owner, notifiers + 1> {
  struct record : rouse::async::detail::wait_record {
    rd::atomic<std::uint32_t> fired{0};
    rd::atomic<std::uint32_t> withdrawn{0};
  };
  diatomic_waker dw;
  rd::atomic<int> items{0};
  record rec[2];

  static void on_release(rouse::async::detail::wait_record* r) noexcept {
    auto* const self = static_cast<record*>(r);
    RL_ASSERT(self->withdrawn.load(std::memory_order_relaxed) == 0);  // the consumer gave it up: not ours
    self->fired.store(1, std::memory_order_release);
    rd::wake_all(self->fired);
  }

  void thread(unsigned index) {
    if (index < notifiers) return publish_one(items, dw);
    for (unsigned k = 0;; ++k) {
      record& r = rec[k % 2];
      r.release = &on_release;
      r.fired.store(0, std::memory_order_relaxed);
      r.withdrawn.store(0, std::memory_order_relaxed);
      auto ready = [&]() noexcept { return items.load(std::memory_order_relaxed) == notifiers; };
      if (!dw.arm_external(r, ready)) break;
      if (ready()) {
        if (dw.end_external())
          r.withdrawn.store(1, std::memory_order_relaxed);
        else
          while (r.fired.load(std::memory_order_acquire) == 0) rd::wait(r.fired, 0);
        break;
      }
      while (r.fired.load(std::memory_order_acquire) == 0) rd::wait(r.fired, 0);
      RL_ASSERT(!dw.end_external());  // released: nothing left to withdraw
    }
    RL_ASSERT(items.load(std::memory_order_relaxed) == notifiers);
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
  failures += rouse_model::expect_pass<external_one_owner>("diatomic_waker.external_one_owner", 200000);
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
  {
    rd::model_fault_scope f(rd::model_fault::diatomic_wait_registers_relaxed);
    failures += rouse_model::expect_failure<blocking_wait<idle_notify::rmw>>(
        "diatomic_waker.broken_wait_registers_relaxed", rl::test_result_data_race, 300000);
  }
  {
    rd::model_fault_scope f(rd::model_fault::diatomic_withdraw_ignores_claim);
    failures += rouse_model::expect_failure<external_one_owner>("diatomic_waker.broken_withdraw_ignores_claim",
                                                                rl::test_result_user_assert_failed, 200000);
  }
  return failures == 0 ? 0 : 1;
}
