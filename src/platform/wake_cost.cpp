// rouse::platform::wake_cost(): the running average kept by the wake calls
// of both backends (wake_cost_internal.hpp).
#include "rouse/platform/wait.hpp"
#include "wake_cost_internal.hpp"

namespace rouse::platform {

namespace detail {
wake_cost_average wake_cost_estimate{initial_wake_cost.count()};
}  // namespace detail

std::chrono::nanoseconds wake_cost() noexcept {
  // Ordering: relaxed: a hint (see wait.hpp).
  return std::chrono::nanoseconds(detail::wake_cost_estimate.ns.load(std::memory_order_relaxed));
}

}  // namespace rouse::platform
