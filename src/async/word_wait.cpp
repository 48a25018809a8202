// The helper thread of a coroutine's word wait (rouse/async/wait_on.hpp,
// rouse/async/detail/word_wait.hpp): where no parker carries the wait, one
// thread per waiting coroutine sleeps on the protocol's word and on the
// wait's own stop word at once (platform::wait_any), so that a stop wakes
// it alone.
#include <span>
#include <thread>

#include "rouse/async/wait_on.hpp"
#include "rouse/platform/wait.hpp"

namespace rouse::async::detail {

bool start_wait_helper(word_wait& w) noexcept {
  try {
    // Called under the driver's lock: the helper's end takes that lock, so
    // helper_handle is set before anything can reap it.
    w.helper_handle = new std::thread([&w] { w.helper_loop(); });
    return true;
  } catch (...) {  // std::system_error (no thread), std::bad_alloc
    return false;
  }
}

void reap_wait_helper(word_wait& w) noexcept {
  auto* const t = static_cast<std::thread*>(w.helper_handle);
  w.helper_handle = nullptr;
  // A coroutine without an executor resumes on the helper, whose last act
  // was that resumption: it touches nothing of the wait's any more.
  if (t->get_id() == std::this_thread::get_id())
    t->detach();
  else
    t->join();
  delete t;
}

namespace {
// The word is the last entry: when a wake of the word and the stop's reach
// the wait together, futex_waitv(2) reports the last entry it was woken
// through, so a wake the wait took is never reported as the stop (which
// would drop it: the waker's wake-one would reach nobody). The parking
// table (generic backend) is woken through one entry only.
int wait_pair_platform(const word_wait::word_type& word, std::uint32_t value,
                       const word_wait::word_type& stop) noexcept {
  platform::wait_entry const entries[2] = {{&stop, 0}, {&word, value}};
  return platform::wait_any(std::span<const platform::wait_entry>(entries, 2)) == 0 ? 1 : 0;
}

void wake_stop_platform(const word_wait::word_type& stop) noexcept { (void)platform::wake_all(stop); }

void wake_one_platform(const word_wait::word_type& word) noexcept { (void)platform::wake_one(word); }

constexpr word_wait::fallback_ops wait_layer_ops{&start_wait_helper, &reap_wait_helper, &wait_pair_platform,
                                                 &wake_stop_platform, &wake_one_platform};
}  // namespace

const word_wait::fallback_ops& wait_layer_fallback() noexcept { return wait_layer_ops; }

}  // namespace rouse::async::detail
