// rouse::atomic_wait's out-of-line halves (see rouse/atomic_wait.hpp).
//
// 4-byte atomics (futex backend): the futex on the atomic's own word, gated by
// the waiter count of its hash slot (detail/waiter_count.hpp). Wakes are
// exact because the kernel keys futex waiters by address.
//
// 1/2/8-byte atomics, and every size on the generic backend: the parking
// table, keyed by the exact address, with the value check under the bucket
// lock; gated by the same waiter counts, so an idle notify still costs no
// lock. The waiter's protocol:
//   (A)  waiter_enter(slot)                  seq_cst RMW on the slot's count
//   (A') the value check, seq_cst            before parking, and again inside
//                                            park()'s validation under the lock
//   park(address) if unchanged               the notifier's unpark takes the
//                                            same bucket lock after its store
// so the argument of waiter_count.hpp holds with "the bucket lock" in place
// of "the futex".
#include "rouse/config.hpp"

#include <climits>
#include <cstring>

#include "rouse/atomic_wait.hpp"
#include "rouse/detail/spin.hpp"
#include "rouse/platform/cpu.hpp"
#include "rouse/platform/park.hpp"
#include "rouse/platform/wait.hpp"

namespace rouse::detail {

atomic_wait_slot atomic_wait_slots[atomic_wait_slot_count];

namespace {

namespace table = rouse::platform::detail;

// The atomic's bytes, read with one seq_cst atomic load of its size ((A')).
// std::atomic<T> of these sizes is lock-free with sizeof(T) alignment, so the
// builtins' view of it as an unsigned integer is the object's representation.
template <class U>
bool holds(const void* address, const void* old_bytes) noexcept {
  U const now = __atomic_load_n(static_cast<const U*>(address), __ATOMIC_SEQ_CST);
  return std::memcmp(&now, old_bytes, sizeof(U)) == 0;
}

bool holds_old(const void* address, std::size_t size, const void* old_bytes) noexcept {
  switch (size) {
    case 1:
      return holds<std::uint8_t>(address, old_bytes);
    case 2:
      return holds<std::uint16_t>(address, old_bytes);
    case 4:
      return holds<std::uint32_t>(address, old_bytes);
    default:
      return holds<std::uint64_t>(address, old_bytes);
  }
}

struct park_check {
  const void* address;
  std::size_t size;
  const void* old_bytes;
};

bool park_check_holds(const void* context, std::size_t) noexcept {
  auto const* c = static_cast<const park_check*>(context);
  return holds_old(c->address, c->size, c->old_bytes);
}

template <class Deadline>
bool park_wait(const void* address, std::size_t size, const void* old_bytes, const Deadline& deadline) noexcept {
  atomic<std::uint32_t>& count = atomic_wait_slots[atomic_wait_slot_index(address)].waiters;
  waiter_enter(count);  // (A)
  park_check const check{address, size, old_bytes};
  table::park_deadline d = table::park_deadline::none();
  if constexpr (Deadline::timed()) d = table::park_deadline::at(deadline.at);
  bool changed = true;
  // (A') before taking the bucket lock, then again under it.
  while (holds_old(address, size, old_bytes)) {
    table::park_result const r = table::park(address, {park_check_holds, &check}, d);
    if (r == table::park_result::timed_out) {
      changed = !holds_old(address, size, old_bytes);
      break;
    }
  }
  waiter_leave(count);
  return changed;
}

#if !ROUSE_CONFIG_WAIT_BACKEND_GENERIC
const platform::word& word_at(const void* address) noexcept {
  // A 4-byte lock-free std::atomic<T> has the size, alignment and
  // representation of the futex word; the kernel only reads it.
  return *static_cast<const platform::word*>(address);
}
#endif

template <class Deadline>
bool wait_bytes(const void* address, std::size_t size, const void* old_bytes, const Deadline& deadline) noexcept {
  // Already changed: no counter traffic at all.
  if (!holds_old(address, size, old_bytes)) return true;
  if (deadline.expired()) return !holds_old(address, size, old_bytes);
  // Spin (detail::atomic_wait_spin: pauses, then yields) before announcing
  // a waiter: a partner that answers within a few microseconds (ping-pong
  // hand-offs) is seen here without the waiter count traffic and the
  // membarrier of waiter_enter(). The deadline is checked in the yield polls.
  spinner spin(atomic_wait_spin);
  while (spin.next()) {
    if (!holds_old(address, size, old_bytes)) return true;
    if (spin.yielding() && deadline.expired()) return !holds_old(address, size, old_bytes);
  }
#if !ROUSE_CONFIG_WAIT_BACKEND_GENERIC
  if (size == 4) {
    std::uint32_t old;
    std::memcpy(&old, old_bytes, 4);
    return counted_wait_u32(atomic_wait_slots[atomic_wait_slot_index(address)].waiters, word_at(address), old,
                            deadline);
  }
#endif
  return park_wait(address, size, old_bytes, deadline);
}

}  // namespace

bool atomic_wait_bytes(const void* address, std::size_t size, const void* old_bytes, no_deadline d) noexcept {
  return wait_bytes(address, size, old_bytes, d);
}

bool atomic_wait_bytes(const void* address, std::size_t size, const void* old_bytes,
                       const until_deadline<std::chrono::steady_clock>& d) noexcept {
  return wait_bytes(address, size, old_bytes, d);
}

void atomic_notify_bytes(const void* address, std::size_t size, int all) noexcept {
#if !ROUSE_CONFIG_WAIT_BACKEND_GENERIC
  if (size == 4) {
    if (all) {
      platform::wake_all(word_at(address));
    } else {
      platform::wake_one(word_at(address));
    }
    return;
  }
#else
  (void)size;
#endif
  table::unpark(address, all ? INT_MAX : 1);
}

}  // namespace rouse::detail
