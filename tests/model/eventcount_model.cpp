// Relacy models of rouse::eventcount's prepare / re-check / wait handshake
// against a notifier that publishes its condition, then issues the seq_cst
// fence the header asks for, then notifies (a plain load when nobody waits).
// (Relacy orders a seq_cst fence only against other seq_cst fences, not
// against seq_cst stores, so the models use the fence form of the rule; the
// waiter's side is prepare_wait()'s own fence.) No lost wake-up (no
// deadlock), for notify_one and notify_all, one and two waiters; and a
// broken variant (the notifier's condition store is only release, with no
// fence) that the model must catch.
#include "model.hpp"
#include "rouse/eventcount.hpp"

namespace {

// One waiter, one notifier, notify_one.
struct one_waiter : rl::test_suite<one_waiter, 2> {
  rouse::eventcount ec;
  rouse::detail::atomic<int> flag{0};
  rl::var<int> payload;

  void thread(unsigned index) {
    if (index == 0) {
      payload($) = 5;
      flag.store(1, std::memory_order_release);
      rouse::detail::fence_seq_cst();
      ec.notify_one();
    } else {
      ec.await([&] { return flag.load(std::memory_order_acquire) == 1; });
      RL_ASSERT(payload($) == 5);
    }
  }
};

// Two waiters, notify_all.
struct two_waiters_notify_all : rl::test_suite<two_waiters_notify_all, 3> {
  rouse::eventcount ec;
  rouse::detail::atomic<int> flag{0};

  void thread(unsigned index) {
    if (index == 0) {
      flag.store(1, std::memory_order_relaxed);
      rouse::detail::fence_seq_cst();
      ec.notify_all();
    } else {
      ec.await([&] { return flag.load(std::memory_order_relaxed) == 1; });
    }
  }
};

// Two producers each add an item and notify_one; one consumer takes both.
struct two_notifiers_one_consumer : rl::test_suite<two_notifiers_one_consumer, 3> {
  rouse::eventcount ec;
  rouse::detail::atomic<int> items{0};

  void thread(unsigned index) {
    if (index < 2) {
      items.fetch_add(1, std::memory_order_release);
      rouse::detail::fence_seq_cst();
      ec.notify_one();
    } else {
      for (int taken = 0; taken < 2; ++taken) {
        ec.await([&] {
          int n = items.load(std::memory_order_relaxed);
          while (n > 0)
            if (items.compare_exchange_weak(n, n - 1, std::memory_order_acquire, std::memory_order_relaxed))
              return true;
          return false;
        });
      }
    }
  }
};

// Broken: the notifier publishes with release only and no fence; its load in
// notify_one() may miss the waiter while the waiter's re-check misses the
// flag. The model must find the lost wake-up.
struct broken_release_only_notifier : rl::test_suite<broken_release_only_notifier, 2> {
  rouse::eventcount ec;
  rouse::detail::atomic<int> flag{0};

  void thread(unsigned index) {
    if (index == 0) {
      flag.store(1, std::memory_order_release);
      ec.notify_one();
    } else {
      ec.await([&] { return flag.load(std::memory_order_relaxed) == 1; });
    }
  }
};

}  // namespace

int main() {
  int failures = 0;
  failures += rouse_model::expect_pass<one_waiter>("eventcount.one_waiter");
  failures += rouse_model::expect_pass<two_waiters_notify_all>("eventcount.two_waiters_notify_all", 200000);
  failures += rouse_model::expect_pass<two_notifiers_one_consumer>("eventcount.two_notifiers_one_consumer", 200000);
  failures += rouse_model::expect_failure<broken_release_only_notifier>("eventcount.broken_release_only_notifier",
                                                                        rl::test_result_deadlock);
  return failures == 0 ? 0 : 1;
}
