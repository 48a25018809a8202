// Internal: test hooks of the wait layer. Not part of the public API; rouse's
// own tests include this header from src/.
#pragma once

namespace rouse::platform::detail {

// Forces wait_any / wait_any_until onto the polling fallback that the futex
// backend uses on kernels without futex_waitv (5.16+), so tests can cover it
// on any kernel. No effect on the generic backend. Returns the previous value.
bool force_wait_any_polling(bool on) noexcept;

}  // namespace rouse::platform::detail
