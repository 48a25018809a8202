// rouse/channel/detail/cell.hpp — uninitialized storage for one message.
//
// A slot of a channel buffer holds either nothing or one T, and the slot's
// stamp or state word (not this cell) says which. put() move-constructs a T
// into the cell, take() moves it out and destroys the cell's copy, so every
// message is constructed and destroyed exactly once inside the channel.
// Under the model checker the cell also carries a plain variable that put()
// writes and take() reads, so Relacy reports a data race if the protocol ever
// lets the two overlap.
#pragma once

#include <new>
#include <type_traits>
#include <utility>

#include "rouse/detail/sync_types.hpp"

namespace rouse::channel::detail {

template <class T>
class cell {
 public:
  void put(T&& v) noexcept {
    ::new (static_cast<void*>(bytes_)) T(std::move(v));
#if defined(ROUSE_MODEL_RELACY)
    ::rouse::detail::unsync_ref(witness_) = 1;
#endif
  }
  T& get() noexcept {
#if defined(ROUSE_MODEL_RELACY)
    (void)static_cast<int>(::rouse::detail::unsync_ref(witness_));
#endif
    return *std::launder(reinterpret_cast<T*>(bytes_));
  }
  void destroy() noexcept { get().~T(); }

 private:
  alignas(T) unsigned char bytes_[sizeof(T)];
#if defined(ROUSE_MODEL_RELACY)
  ::rouse::detail::unsync<int> witness_;
#endif
};

// What the channels require of a message type.
template <class T>
inline constexpr bool message_type =
    std::is_object_v<T> && !std::is_array_v<T> && std::is_nothrow_move_constructible_v<T> &&
    std::is_nothrow_destructible_v<T>;

}  // namespace rouse::channel::detail
