// Relacy models of rouse::async::atomic_waker's register / wake / take
// handshake: a consumer that registers (two different wakers, so the second
// register writes the slot while a wake may be taking it), re-checks, and
// sleeps on its waker's flag; a producer that publishes, then wakes (or
// takes and wakes). No lost wake-up (no deadlock), no race on the slot; and
// the broken variant (take() clears WAKING before it has taken the waker)
// must be caught as a data race on the slot.
#include "model.hpp"
#include "rouse/async/atomic_waker.hpp"

namespace {

namespace rd = rouse::detail;
using rouse::async::atomic_waker;
using rouse::async::waker;
using rouse::async::waker_vtable;

// A waker whose wake sets a flag the consumer sleeps on (futex).
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
  void sleep() {
    while (woken.load(std::memory_order_acquire) == 0) rd::wait(woken, 0);
  }
};

template <bool UseTake>
struct register_wake : rl::test_suite<register_wake<UseTake>, 2> {
  atomic_waker aw;
  rd::atomic<int> item{0};
  flag_waker w[2];

  void thread(unsigned index) {
    if (index == 0) {
      item.store(1, std::memory_order_relaxed);
      if (UseTake) {
        if (waker t = aw.take()) std::move(t).wake();
      } else {
        aw.wake();
      }
    } else {
      // A first registration, then a second with another waker: the second
      // writes the slot while the producer's take may be reading it.
      aw.register_waker(w[0].make());
      for (unsigned k = 1;; ++k) {
        flag_waker& mine = w[k % 2];
        mine.woken.store(0, std::memory_order_relaxed);
        aw.register_waker(mine.make());
        if (item.load(std::memory_order_relaxed) == 1) break;
        mine.sleep();
        if (item.load(std::memory_order_relaxed) == 1) break;
      }
    }
  }
};

}  // namespace

int main() {
  int failures = 0;
  failures += rouse_model::expect_pass<register_wake<false>>("atomic_waker.register_wake");
  failures += rouse_model::expect_pass<register_wake<true>>("atomic_waker.register_take");
  {
    rd::model_fault_scope f(rd::model_fault::atomic_waker_releases_before_take);
    failures += rouse_model::expect_failure<register_wake<false>>("atomic_waker.broken_releases_before_take",
                                                                  rl::test_result_data_race);
  }
  return failures == 0 ? 0 : 1;
}
