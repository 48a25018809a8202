// rouse/detail/channel_slot.hpp — raw storage for one channel element.
//
// A slot is uninitialized storage that a channel protocol fills with
// construct(), reads with get(), and empties with destroy() or take(). The
// protocol, not the slot, knows whether it holds a value; the slot only makes
// the element's lifetime explicit and, under Relacy (ROUSE_MODEL_RELACY), marks
// every access on a race-checked variable so that a model test reports an
// element touched by two threads without a happens-before edge, exactly as it
// would for the element itself.
#pragma once

#include <cstddef>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

#include "rouse/detail/sync_types.hpp"

namespace rouse::detail {

template <class T>
class channel_slot {
 public:
  channel_slot() noexcept = default;
  channel_slot(const channel_slot&) = delete;
  channel_slot& operator=(const channel_slot&) = delete;

  template <class... Args>
  void construct(Args&&... args) noexcept(std::is_nothrow_constructible_v<T, Args...>) {
    touch_write();
    ::new (static_cast<void*>(bytes_)) T(std::forward<Args>(args)...);
  }

  T& get() noexcept {
    touch_read();
    return *std::launder(reinterpret_cast<T*>(bytes_));
  }

  void destroy() noexcept {
    touch_write();
    std::destroy_at(std::launder(reinterpret_cast<T*>(bytes_)));
  }

 private:
#if defined(ROUSE_MODEL_RELACY)
  void touch_write() { unsync_ref(touch_) = 1; }
  void touch_read() {
    int const seen = unsync_ref(touch_);
    (void)seen;
  }
  unsync<int> touch_;
#else
  static void touch_write() noexcept {}
  static void touch_read() noexcept {}
#endif
  alignas(T) std::byte bytes_[sizeof(T)];
};

}  // namespace rouse::detail
