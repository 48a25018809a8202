// rouse/detail/channel_slot.hpp — raw storage for one channel element.
//
// The one slot type of rouse's channels: a buffer slot of the bounded and
// unbounded channels, a rendezvous packet, a oneshot's and an spsc ring's
// element. A slot is uninitialized storage that a channel protocol fills
// with construct(), reads with get(), and empties with destroy(); the
// protocol (a stamp, a state word), not the slot, knows whether it holds a
// value, so every element is constructed and destroyed exactly once inside
// the channel. The slot only makes the element's lifetime explicit and,
// under Relacy (ROUSE_MODEL_RELACY), marks every access on a race-checked
// variable, so that a model test reports an element touched by two threads
// without a happens-before edge, exactly as it would for the element itself.
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

// What the channels require of an element type.
template <class T>
inline constexpr bool message_type = std::is_object_v<T> && !std::is_array_v<T> &&
                                     std::is_nothrow_move_constructible_v<T> && std::is_nothrow_destructible_v<T>;

}  // namespace rouse::detail
