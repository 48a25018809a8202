// The generic backend of rouse/platform/wait.hpp: every call on the parking
// table (parking_table.hpp), over std::mutex and std::condition_variable.
//
// Same semantics as the futex backend:
// - the value check runs under the bucket lock of the word's address, and a
//   waker changes the value before it takes that lock, so a wake between the
//   check and the sleep cannot be lost;
// - wakes are exact by address;
// - deadlines are absolute on their own clock and re-checked against that
//   clock before a wait reports timed_out, so they are never early;
// - scope::process_shared is treated as private (the table is per process).
#include "rouse/config.hpp"

#if ROUSE_CONFIG_WAIT_BACKEND_GENERIC

#include <climits>

#include "parking_table.hpp"
#include "rouse/platform/wait.hpp"
#include "wait_testing.hpp"
#include "wake_cost_internal.hpp"

namespace rouse::platform {
namespace {

struct word_check {
  const word* w;
  std::uint32_t expected;
};

// Ordering: relaxed — runs under the bucket lock; a waker's store to the
// word is sequenced before its lock of the same bucket, so if the waker's
// critical section came first its store happens-before this load.
bool still_expected(const void* context, std::size_t) noexcept {
  auto const* c = static_cast<const word_check*>(context);
  return c->w->load(std::memory_order_relaxed) == c->expected;
}

bool entry_still_expected(const void* context, std::size_t index) noexcept {
  auto const* e = static_cast<const wait_entry*>(context) + index;
  // Ordering: relaxed — as still_expected().
  return e->address->load(std::memory_order_relaxed) == e->expected;
}

wait_result park_word(const word& w, std::uint32_t expected, const detail::park_deadline& deadline) noexcept {
  word_check const c{&w, expected};
  return detail::park(&w, {still_expected, &c}, deadline) == detail::park_result::timed_out ? wait_result::timed_out
                                                                                            : wait_result::woken;
}

int wait_any_impl(std::span<const wait_entry> entries, const detail::park_deadline& deadline) noexcept {
  if (entries.empty() || entries.size() > max_wait_entries) return -1;
  const void* keys[max_wait_entries];
  for (std::size_t i = 0; i < entries.size(); ++i) keys[i] = entries[i].address;
  detail::park_outcome const r = detail::park_any(std::span<const void* const>(keys, entries.size()),
                                                  {entry_still_expected, entries.data()}, deadline);
  return r.result == detail::park_result::timed_out ? -1 : r.index;
}

}  // namespace

void wait(const word& w, std::uint32_t expected, scope) noexcept {
  park_word(w, expected, detail::park_deadline::none());
}

wait_result wait_until(const word& w, std::uint32_t expected, steady_deadline deadline, scope) noexcept {
  if (std::chrono::steady_clock::now() >= deadline) return wait_result::timed_out;  // no park
  return park_word(w, expected, detail::park_deadline::at(deadline));
}

wait_result wait_until(const word& w, std::uint32_t expected, system_deadline deadline, scope) noexcept {
  if (std::chrono::system_clock::now() >= deadline) return wait_result::timed_out;  // no park
  return park_word(w, expected, detail::park_deadline::at(deadline));
}

int wake(const word& w, int count, scope) noexcept {
  std::int64_t const started = steady_now_ns();
  int const r = detail::unpark(&w, count);
  detail::note_wake_cost(started, r);
  return r;
}

int wake_all(const word& w, scope s) noexcept { return wake(w, INT_MAX, s); }

int requeue(const word& from, const word& to, int wake_count, int requeue_count, scope) noexcept {
  std::int64_t const started = steady_now_ns();
  int const r = detail::requeue(&from, &to, wake_count, requeue_count, {});
  detail::note_wake_cost(started, r);
  return r;
}

int cmp_requeue(const word& from, std::uint32_t expected, const word& to, int wake_count, int requeue_count,
                scope) noexcept {
  word_check const c{&from, expected};
  std::int64_t const started = steady_now_ns();
  int const r = detail::requeue(&from, &to, wake_count, requeue_count, {still_expected, &c});
  detail::note_wake_cost(started, r);
  return r;
}

int wait_any(std::span<const wait_entry> entries, scope) noexcept {
  return wait_any_impl(entries, detail::park_deadline::none());
}

int wait_any_until(std::span<const wait_entry> entries, steady_deadline deadline, scope) noexcept {
  return wait_any_impl(entries, detail::park_deadline::at(deadline));
}

const char* backend_name() noexcept { return "generic"; }

bool detail::force_wait_any_polling(bool) noexcept { return false; }  // no fallback here

}  // namespace rouse::platform

#endif  // ROUSE_CONFIG_WAIT_BACKEND_GENERIC
