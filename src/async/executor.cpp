// The calling thread's current executor (rouse/async/executor.hpp).
#include "rouse/async/executor.hpp"

namespace rouse::async::detail {

executor*& current_executor_slot() noexcept {
  thread_local executor* current = nullptr;
  return current;
}

}  // namespace rouse::async::detail
