// A deliberately broken variant of atomic_wait's waiter-count handshake
// (rouse/detail/waiter_count.hpp), kept to prove the model sees the bug the
// notifier's fence (B) prevents. It passes only if Relacy reports the lost
// wake-up as a deadlock (it does, deterministically, under the fair full
// search). The other half — a relaxed waiter increment instead of (A) — is
// also wrong by the C++ memory model, but Relacy's full search does not
// produce the failing execution, so no test claims it.
#include <cstdint>

#include "model.hpp"
#include "rouse/detail/sync_types.hpp"

namespace {

namespace d = rouse::detail;

// The correct waiter: (A) seq_cst increment, (A') seq_cst check, futex wait.
inline void waiter(d::atomic<std::uint32_t>& waiters, d::atomic<std::uint32_t>& value) {
  waiters.fetch_add(1, std::memory_order_seq_cst);
  while (value.load(std::memory_order_seq_cst) == 0) d::wait(value, 0);
  waiters.fetch_sub(1, std::memory_order_relaxed);
}

// BUG (on purpose): the notifier loads the count without the fence (B). Its
// store can still sit in a store buffer when it reads the count, while the
// waiter's increment is not yet visible: both miss each other, the notifier
// skips the wake, the waiter sleeps forever.
struct notifier_without_fence : rl::test_suite<notifier_without_fence, 2> {
  d::atomic<std::uint32_t> waiters{0};
  d::atomic<std::uint32_t> value{0};

  void thread(unsigned index) {
    if (index == 0) {
      value.store(1, std::memory_order_release);
      if (waiters.load(std::memory_order_relaxed) != 0) d::wake_one(value);
    } else {
      waiter(waiters, value);
    }
  }
};

}  // namespace

int main() {
  int failures = 0;
  failures += rouse_model::expect_failure<notifier_without_fence>("atomic_wait.notifier_without_fence",
                                                                  rl::test_result_deadlock);
  return failures == 0 ? 0 : 1;
}
