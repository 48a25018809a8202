// The calling thread's current executor (rouse/async/executor.hpp): the
// out-of-line accessor of 0.1.0's headers, kept for the ABI.
#include "rouse/async/executor.hpp"

namespace rouse::async::detail {

executor*& current_executor_slot() noexcept { return current_executor_tls; }

}  // namespace rouse::async::detail
