// rouse/detail/waker.hpp — the waker: what a suspended waiter leaves behind.
//
// A waker is two words: a data pointer and a table of four functions
// (clone / wake / wake_by_ref / drop), Rust's RawWaker in C++. Whoever makes
// progress possible calls wake(); what waking means is the table's business:
// schedule a coroutine on its executor, unpark a thread, run a callback.
// The one waiter queue (detail/waiter_queue.hpp) holds wakers as its async
// wake action, so this type lives below it; users name it
// `rouse::async::waker` (rouse/async/waker.hpp, which also has the makers).
//
// Lifecycle: a waker owns one reference to its data. Copying clones
// (table->clone), destroying drops (table->drop), wake() consumes the
// reference, wake_by_ref() keeps it. An empty waker (default-constructed or
// moved-from) does nothing. The data's lifetime is the table's contract: a
// coroutine waker points into a suspended coroutine frame and is valid until
// it is woken once; a shared callback waker counts references.
//
// Misuse: waking a waker whose data is gone (a coroutine waker kept past the
// resumption it was made for) is undefined, as a dangling pointer is.
// sizeof: 16 bytes (static_assert below). wake/clone/drop cost what the
// table's functions cost; every maker of rouse documents its count.
#pragma once

#include <utility>

namespace rouse::detail {

struct waker_vtable {
  // Returns the data of a new reference (the table stays the same).
  const void* (*clone)(const void* data) noexcept;
  void (*wake)(const void* data) noexcept;         // wake, and give up the reference
  void (*wake_by_ref)(const void* data) noexcept;  // wake, keep the reference
  void (*drop)(const void* data) noexcept;         // give up the reference without waking
};

class waker {
 public:
  constexpr waker() noexcept = default;
  // Adopts one reference to `data`.
  constexpr waker(const void* data, const waker_vtable* vtable) noexcept : data_(data), vtable_(vtable) {}
  waker(const waker& other) noexcept
      : data_(other.vtable_ ? other.vtable_->clone(other.data_) : nullptr), vtable_(other.vtable_) {}
  waker(waker&& other) noexcept : data_(other.data_), vtable_(std::exchange(other.vtable_, nullptr)) {}
  waker& operator=(const waker& other) noexcept {
    if (this != &other) *this = waker(other);
    return *this;
  }
  waker& operator=(waker&& other) noexcept {
    if (this != &other) {
      reset();
      data_ = other.data_;
      vtable_ = std::exchange(other.vtable_, nullptr);
    }
    return *this;
  }
  ~waker() { reset(); }

  explicit operator bool() const noexcept { return vtable_ != nullptr; }
  const void* data() const noexcept { return data_; }
  const waker_vtable* vtable() const noexcept { return vtable_; }

  // Whether waking this waker and `other` do the same thing (same data, same
  // table): a waiter that re-registers the waker it registered before may
  // skip the clone.
  [[nodiscard]] bool will_wake(const waker& other) const noexcept {
    return data_ == other.data_ && vtable_ == other.vtable_;
  }

  // Wakes and gives up the reference (the waker is empty afterwards).
  void wake() && noexcept {
    if (const waker_vtable* const vt = std::exchange(vtable_, nullptr)) vt->wake(data_);
  }
  void wake_by_ref() const noexcept {
    if (vtable_) vtable_->wake_by_ref(data_);
  }
  // Drops the reference now; the waker is empty afterwards.
  void reset() noexcept {
    if (const waker_vtable* const vt = std::exchange(vtable_, nullptr)) vt->drop(data_);
  }
  // Gives the reference away without dropping it (the caller now owns it).
  std::pair<const void*, const waker_vtable*> release() noexcept { return {data_, std::exchange(vtable_, nullptr)}; }

 private:
  const void* data_ = nullptr;
  const waker_vtable* vtable_ = nullptr;
};

static_assert(sizeof(waker) == 2 * sizeof(void*));

}  // namespace rouse::detail
