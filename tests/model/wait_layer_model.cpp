// Model of the smallest handshake on the wait layer: a one-shot event.
// A notifier publishes a payload, sets the state word and wakes; a waiter
// sleeps while the word is unset, then reads the payload. Relacy explores
// every interleaving (2 threads, fair full search) and checks that the waiter
// always wakes (no deadlock = no lost wake-up) and that the payload read is
// ordered after its write (no data race).
#include <cstdint>
#include <cstdio>

#include "model.hpp"
#include "rouse/detail/sync_types.hpp"

namespace {

namespace d = rouse::detail;
using clock = d::model_clock;

// Timed waiters that gave up, over a whole search.
unsigned long timeouts = 0;

struct oneshot_event : rl::test_suite<oneshot_event, 2> {
  d::atomic<std::uint32_t> state{0};  // 0 = unset, 1 = set
  rl::var<int> payload;

  void thread(unsigned index) {
    if (index == 0) {
      payload($) = 42;
      state.store(1, std::memory_order_release);  // pairs with the waiter's acquire load
      d::wake_all(state);
    } else {
      while (state.load(std::memory_order_acquire) == 0) d::wait(state, 0);
      RL_ASSERT(payload($) == 42);
    }
  }
};

// A waiter with a deadline: it either sees the event or times out, and
// never reads the payload unless it saw the event. Model time: the deadline
// passes when the wait times out.
struct oneshot_event_timed : rl::test_suite<oneshot_event_timed, 2> {
  d::atomic<std::uint32_t> state{0};
  rl::var<int> payload;

  void before() { clock::reset(); }

  void thread(unsigned index) {
    if (index == 0) {
      payload($) = 7;
      state.store(1, std::memory_order_release);
      d::wake_one(state);
    } else {
      auto const deadline = clock::now() + clock::duration(1);
      while (state.load(std::memory_order_acquire) == 0) {
        if (clock::now() >= deadline) {  // timed out, never set
          ++timeouts;
          return;
        }
        (void)d::wait_until(state, 0, deadline);
      }
      RL_ASSERT(payload($) == 7);
    }
  }
};

}  // namespace

int main() {
  int failures = 0;
  failures += rouse_model::expect_pass<oneshot_event>("wait_layer.oneshot_event");
  failures += rouse_model::expect_pass<oneshot_event_timed>("wait_layer.oneshot_event_timed");
  std::printf("model wait_layer.oneshot_event_timed: %lu waiters timed out\n", timeouts);
  if (timeouts == 0) ++failures;
  return failures == 0 ? 0 : 1;
}
