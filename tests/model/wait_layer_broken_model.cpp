// The deliberately broken one-shot event: the notifier wakes without first
// changing the state word. A waiter that checks the word before the wake and
// sleeps after it is never woken again. This test passes only if Relacy
// reports exactly that, as a deadlock: it proves the model tests can see a
// lost wake-up, so a green model run of a real primitive means something.
#include <cstdint>

#include "model.hpp"
#include "rouse/detail/sync_types.hpp"

namespace {

namespace d = rouse::detail;

struct notifier_skips_state_change : rl::test_suite<notifier_skips_state_change, 2> {
  d::atomic<std::uint32_t> state{0};
  rl::var<int> payload;

  void thread(unsigned index) {
    if (index == 0) {
      payload($) = 42;
      // BUG (on purpose): no `state.store(1, release)` before the wake.
      d::wake_all(state);
    } else {
      while (state.load(std::memory_order_acquire) == 0) d::wait(state, 0);
    }
  }
};

}  // namespace

int main() {
  return rouse_model::expect_failure<notifier_skips_state_change>("wait_layer.notifier_skips_state_change",
                                                                  rl::test_result_deadlock);
}
