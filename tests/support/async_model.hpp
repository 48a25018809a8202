// tests/model support for the async models (compiled with ROUSE_MODEL_RELACY,
// like model.hpp): a waiter without the coroutine half. A wait object
// (list_wait, semaphore_wait) is woken through a flag_waker whose wake sets
// a futex word its owner thread sleeps on; the object lives in a slot (raw
// storage) its owner destroys in place right after its wait, so a late
// touch is reported as an access to freed memory.
//
//   rouse_model::flag_waker f;          f.make() is the waker, f.sleep() waits
//   rouse_model::slot<wait_t> w;        w.make(args...), w->start(), w.destroy()
//   rouse_model::await_with_flag(*w, f);  check, register, sleep unless withdrawn
#pragma once

#include <cstdint>
#include <new>
#include <utility>

#include "model.hpp"
#include "rouse/async/waiter_list.hpp"
#include "rouse/detail/waker.hpp"

namespace rouse_model {

// A waker whose wake sets a flag its owner sleeps on (a futex word). Every
// wake counts: count() tells how many there were.
struct flag_waker {
  rouse::detail::atomic<std::uint32_t> woken{0};
  static flag_waker* self(const void* d) { return static_cast<flag_waker*>(const_cast<void*>(d)); }
  static const void* clone(const void* d) noexcept { return d; }
  static void wake(const void* d) noexcept {
    flag_waker* const f = self(d);
    // Ordering: release: pairs with sleep()'s acquire.
    f->woken.fetch_add(1, std::memory_order_release);
    rouse::detail::wake_all(f->woken);
  }
  static void drop(const void*) noexcept {}
  static constexpr rouse::detail::waker_vtable vtable{clone, wake, wake, drop};
  rouse::detail::waker make() noexcept { return rouse::detail::waker(this, &vtable); }
  void sleep() {
    while (woken.load(std::memory_order_acquire) == 0) rouse::detail::wait(woken, 0);
  }
  std::uint32_t count() { return woken.load(std::memory_order_acquire); }
};

// Raw storage for a T its owner constructs and destroys in place.
template <class T>
struct slot {
  alignas(T) unsigned char storage[sizeof(T)];
  T* p = nullptr;
  template <class... A>
  T& make(A&&... a) {
    p = new (storage) T(std::forward<A>(a)...);
    return *p;
  }
  void destroy() {
    p->~T();
    p = nullptr;
  }
  T* operator->() { return p; }
  T& operator*() { return *p; }
};

// The coroutine awaitable's protocol on a wait object made with f's waker:
// the check, then the registration with its re-check, then sleep on the
// flag unless the re-check withdrew the wait (a suspended or claimed wait's
// wake is coming).
template <class Wait>
void await_with_flag(Wait& w, flag_waker& f) {
  if (w.try_acquire() == rouse::async::check_result::not_ready) {
    if (w.start() != Wait::start_result::withdrew) f.sleep();
  }
}

}  // namespace rouse_model
