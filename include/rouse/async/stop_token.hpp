// rouse/async/stop_token.hpp — stop tokens: the in-place one, and any other.
//
//   inplace_stop_source    owns the stop state, in place (no allocation,
//                          not movable): C++26's std::inplace_stop_source
//   inplace_stop_token     a view of one; copyable, two words
//   inplace_stop_callback  registers a callback in the source's list (in the
//                          callback object: no allocation)
//   never_stop_token       a token that is never stopped (stop_possible() false)
//   stop_callback_for_t<Token, F>   the callback type of any token: std's,
//                          rouse's in-place one, or a token that names its own
//                          `callback_type` (C++26's stoppable-token concept)
//
// rouse's async operations accept any of these from the awaiting promise's
// environment (rouse/async/env.hpp, get_stop_token). A rouse task carries an
// inplace_stop_token: stopping costs no allocation and no reference count.
//
// Lifecycle and rules (as std::stop_source / std::stop_callback):
// - request_stop() runs every registered callback on the calling thread, once,
//   and returns true for the call that made the request. A callback
//   registered after the request runs at once in its constructor.
// - A callback's destructor unregisters it. If request_stop() is running it
//   on another thread, the destructor waits for it to return; on the same
//   thread (the callback destroys itself), it does not wait.
// - The source must outlive its tokens' use and its callbacks. A callback
//   may end the work that owns the source on the thread running
//   request_stop() (a coroutine resumed inline, with no executor), and the
//   source be destroyed there: request_stop() then returns at once,
//   touching nothing of it.
//
// Size: inplace_stop_source 24 bytes (a state word, the list head, the
// running request's record), inplace_stop_token 8 bytes. Cost: a token's
// stop_requested() is one acquire load; registering and unregistering a
// callback take the source's small spin lock (a bit in the state word:
// one RMW to take, a store to release), which is only ever held for a list
// link or unlink.
//
// State word of the source
//   bit 0 (S)  stop requested
//   bit 1 (L)  the list lock: held while a callback is linked or unlinked
//   bit 2 (R)  request_stop() is running: a destructor on another thread
//              waits for it to end (a callback may have completed the work
//              that owns the source)
// Memory ordering: everything before request_stop() happens-before a
// stop_requested() that returns true (release RMW / acquire load), and
// before every callback runs (same thread, or the lock's acquire).
// tests/model/async_stop_token_model.cpp runs this code under Relacy: a
// callback's registration and destruction against request_stop(), and the
// source destroyed by the work a callback let go (on either thread).
#pragma once

#include <cstdint>
#if !defined(ROUSE_MODEL_RELACY)  // <stop_token> does not compile under Relacy's macros
#include <stop_token>
#endif
#include <type_traits>
#include <utility>

#include "rouse/detail/diagnostics.hpp"
#include "rouse/detail/sync_types.hpp"
#include "rouse/platform/cpu.hpp"

namespace rouse::async {

class inplace_stop_token;
template <class F>
class inplace_stop_callback;

namespace detail {

using ::rouse::detail::unsync;
using ::rouse::detail::unsync_ref;

// The list node of an inplace_stop_callback; its fields belong to the
// source's list and are written under the source's lock.
class stop_callback_base {
 public:
  using link = unsync<stop_callback_base*>;

  void run() noexcept { run_(this); }

  explicit stop_callback_base(void (*fn)(stop_callback_base*) noexcept) noexcept
      : run_(fn), next_(nullptr), prev_next_(nullptr), removed_during_run_(nullptr) {}

  void (*run_)(stop_callback_base*) noexcept;
  link next_;
  unsync<link*> prev_next_;           // where the pointer to this node lives; null: not linked
  unsync<bool*> removed_during_run_;  // set when the callback destroys itself while running
  ::rouse::detail::atomic<std::uint32_t> done_{0};  // 1 once request_stop() has finished running it
};

}  // namespace detail

class inplace_stop_source {
 public:
  inplace_stop_source() noexcept = default;
  inplace_stop_source(const inplace_stop_source&) = delete;
  inplace_stop_source& operator=(const inplace_stop_source&) = delete;
  // A request_stop() still running on another thread (its callbacks may
  // have let the owner go on and destroy this source) is waited for. One
  // running on this thread (a callback completed the work that owns the
  // source, inline) is told, and touches the source no more.
  ~inplace_stop_source() {
    // Ordering: acquire: pairs with the release that ends request_stop().
    if (state_.load(std::memory_order_acquire) & running_bit) {
      lock();
      stop_run* const run = running();
      bool const here = run != nullptr && run->thread == platform::this_thread_id();
      if (here) run->source_destroyed = true;
      unlock();
      if (!here && !::rouse::detail::model_fault_on(::rouse::detail::model_fault::stop_source_destroyed_while_stopping))
        while (state_.load(std::memory_order_acquire) & running_bit) ::rouse::detail::yield();
    }
    ROUSE_CHECK_USAGE(detail::unsync_ref(head_) == nullptr, "rouse::async::inplace_stop_source",
                      "destroyed while a stop callback is registered");
  }

  [[nodiscard]] inplace_stop_token get_token() const noexcept;
  [[nodiscard]] static constexpr bool stop_possible() noexcept { return true; }
  [[nodiscard]] bool stop_requested() const noexcept {
    // Ordering: acquire: pairs with the release in request_stop().
    return (state_.load(std::memory_order_acquire) & stop_bit) != 0;
  }

  // Requests stop and runs every registered callback here. True for the call
  // that made the request, false if stop was already requested.
  bool request_stop() noexcept {
    if (!lock_unless_stopped()) return false;
    stop_run run{platform::this_thread_id()};
    detail::unsync_ref(run_) = &run;  // read only under L while R is set
    // Set S (and R, until the end) while holding L. Ordering: release (with
    // L's acquire): pairs with the acquire of stop_requested() and of
    // lock_unless_stopped().
    state_.fetch_or(stop_bit | running_bit, std::memory_order_release);
    for (;;) {
      detail::stop_callback_base* const cb = detail::unsync_ref(head_);
      if (cb == nullptr) break;
      detail::stop_callback_base* const next = detail::unsync_ref(cb->next_);
      detail::unsync_ref(head_) = next;
      if (next) detail::unsync_ref(next->prev_next_) = &head_;
      detail::unsync_ref(cb->prev_next_) = nullptr;  // unlinked: its destructor will not touch the list
      bool removed = false;
      detail::unsync_ref(cb->removed_during_run_) = &removed;
      unlock();
      cb->run();
      if (!removed) {
        detail::unsync_ref(cb->removed_during_run_) = nullptr;
        // Ordering: release: the destructor waiting on another thread sees the
        // callback finished (acquire in remove()).
        cb->done_.store(1, std::memory_order_release);
        ::rouse::detail::wake_all(cb->done_);  // an address only: the callback may be gone (rule 7)
      }
      // The callback let this thread's owner of the source destroy it (a
      // coroutine resumed inline, without an executor): nothing is left to
      // run (a source destroyed with callbacks registered is misuse) and
      // nothing of it may be touched.
      if (run.source_destroyed &&
          !::rouse::detail::model_fault_on(::rouse::detail::model_fault::stop_request_touches_destroyed_source))
        return true;
      lock();
    }
    // The last touch of the source: L and R go in one RMW. Ordering:
    // release: pairs with the acquire in the destructor.
    state_.fetch_and(static_cast<std::uint8_t>(~(lock_bit | running_bit)), std::memory_order_release);
    return true;
  }

 private:
  friend class inplace_stop_token;
  template <class F>
  friend class inplace_stop_callback;
  static constexpr std::uint8_t stop_bit = 1;
  static constexpr std::uint8_t lock_bit = 2;
  static constexpr std::uint8_t running_bit = 4;  // request_stop() is running its callbacks

  // On request_stop()'s stack while it runs the callbacks.
  struct stop_run {
    std::uint32_t thread;  // platform::this_thread_id()
    bool source_destroyed = false;  // set by the destructor, on that thread
  };
  // Under L: the running request_stop()'s record, or null once it ended.
  stop_run* running() const noexcept {
    return (state_.load(std::memory_order_relaxed) & running_bit) != 0 ? static_cast<stop_run*>(detail::unsync_ref(run_))
                                                                     : nullptr;
  }

  void lock() const noexcept {
    // Ordering: acquire: the list written under the previous holder.
    while (state_.fetch_or(lock_bit, std::memory_order_acquire) & lock_bit) ::rouse::detail::spin_pause();
  }
  void unlock() const noexcept {
    // A store, not an RMW: every change of the word is made under L (a
    // spinner's fetch_or of L rewrites the locked value it read), so the
    // holder's load sees the value to keep. Ordering: release: the list
    // changes to the next holder.
    state_.store(static_cast<std::uint8_t>(state_.load(std::memory_order_relaxed) & ~lock_bit),
                 std::memory_order_release);
  }
  // Takes L unless S is set; false (lock not taken) when stop was requested.
  bool lock_unless_stopped() const noexcept {
    // Ordering: acquire: a stop seen here happened-before (request_stop()'s
    // release); relaxed re-reads are confirmed by the CAS's acquire.
    std::uint8_t s = state_.load(std::memory_order_acquire);
    for (;;) {
      if (s & stop_bit) return false;
      if (s & lock_bit) {
        ::rouse::detail::spin_pause();
        s = state_.load(std::memory_order_acquire);
        continue;
      }
      // unlocked, not stopped -> locked. Ordering: acquire, as lock().
      if (state_.compare_exchange_weak(s, s | lock_bit, std::memory_order_acquire, std::memory_order_relaxed))
        return true;
    }
  }

  // Links `cb`, or returns false when stop was already requested (the caller
  // runs it at once).
  bool add(detail::stop_callback_base* cb) const noexcept {
    if (!lock_unless_stopped()) return false;
    detail::stop_callback_base* const first = detail::unsync_ref(head_);
    detail::unsync_ref(cb->next_) = first;
    detail::unsync_ref(cb->prev_next_) = &head_;
    if (first) detail::unsync_ref(first->prev_next_) = &cb->next_;
    detail::unsync_ref(head_) = cb;
    unlock();
    return true;
  }
  void remove(detail::stop_callback_base* cb) const noexcept {
    lock();
    if (detail::stop_callback_base::link* const where = detail::unsync_ref(cb->prev_next_)) {
      // Still linked: nobody runs it.
      detail::stop_callback_base* const next = detail::unsync_ref(cb->next_);
      detail::unsync_ref(*where) = next;
      if (next) detail::unsync_ref(next->prev_next_) = where;
      unlock();
      return;
    }
    stop_run* const run = running();
    std::uint32_t const runner = run != nullptr ? run->thread : 0;  // thread ids are not 0
    unlock();
    // request_stop() has taken it: it runs, or has run.
    if (runner == platform::this_thread_id()) {
      // Destroyed from inside its own run (or after it, on the requesting
      // thread): request_stop() must not touch it again.
      if (bool* const removed = detail::unsync_ref(cb->removed_during_run_)) *removed = true;
      return;
    }
    if (::rouse::detail::model_fault_on(::rouse::detail::model_fault::stop_callback_destroyed_while_running)) return;
    // Ordering: acquire: pairs with the release store of done_.
    while (cb->done_.load(std::memory_order_acquire) == 0) ::rouse::detail::wait(cb->done_, 0u);
  }

  mutable ::rouse::detail::atomic<std::uint8_t> state_{0};
  mutable detail::stop_callback_base::link head_{nullptr};
  mutable detail::unsync<stop_run*> run_{nullptr};
};

class inplace_stop_token {
 public:
  template <class F>
  using callback_type = inplace_stop_callback<F>;

  inplace_stop_token() noexcept = default;
  [[nodiscard]] bool stop_requested() const noexcept { return source_ && source_->stop_requested(); }
  [[nodiscard]] bool stop_possible() const noexcept { return source_ != nullptr; }
  friend bool operator==(const inplace_stop_token&, const inplace_stop_token&) = default;
  void swap(inplace_stop_token& other) noexcept { std::swap(source_, other.source_); }

 private:
  friend class inplace_stop_source;
  template <class F>
  friend class inplace_stop_callback;
  explicit inplace_stop_token(const inplace_stop_source* s) noexcept : source_(s) {}
  const inplace_stop_source* source_ = nullptr;
};

inline inplace_stop_token inplace_stop_source::get_token() const noexcept { return inplace_stop_token(this); }

template <class F>
class inplace_stop_callback : private detail::stop_callback_base {
 public:
  template <class Init>
    requires std::is_constructible_v<F, Init>
  explicit inplace_stop_callback(inplace_stop_token token, Init&& init) noexcept(
      std::is_nothrow_constructible_v<F, Init>)
      : stop_callback_base(&invoke), f_(std::forward<Init>(init)), source_(token.source_) {
    if (source_ && !source_->add(this)) {
      source_ = nullptr;
      std::move(f_)();  // stop was already requested: run now, here
    }
  }
  inplace_stop_callback(const inplace_stop_callback&) = delete;
  inplace_stop_callback& operator=(const inplace_stop_callback&) = delete;
  ~inplace_stop_callback() {
    if (source_) source_->remove(this);
  }

 private:
  static void invoke(stop_callback_base* self) noexcept { std::move(static_cast<inplace_stop_callback*>(self)->f_)(); }
  F f_;
  const inplace_stop_source* source_;
};

template <class Token, class Init>
inplace_stop_callback(Token, Init) -> inplace_stop_callback<Init>;

// A token that is never stopped: operations skip their stop callbacks.
class never_stop_token {
  struct callback {
    template <class Init>
    explicit callback(never_stop_token, Init&&) noexcept {}
  };

 public:
  template <class F>
  using callback_type = callback;
  [[nodiscard]] static constexpr bool stop_requested() noexcept { return false; }
  [[nodiscard]] static constexpr bool stop_possible() noexcept { return false; }
  friend constexpr bool operator==(never_stop_token, never_stop_token) noexcept { return true; }
};

namespace detail {
template <class Token, class F>
struct stop_callback_for {
  using type = typename Token::template callback_type<F>;
};
#if !defined(ROUSE_MODEL_RELACY)
template <class F>
struct stop_callback_for<std::stop_token, F> {
  using type = std::stop_callback<F>;
};
#endif
}  // namespace detail

// The callback type that `Token` runs `F` with on a stop request.
template <class Token, class F>
using stop_callback_for_t = typename detail::stop_callback_for<Token, F>::type;

// What rouse accepts as a stop token (C++26's stoppable_token, in short).
template <class Token>
concept stoppable_token = std::copy_constructible<Token> && requires(const Token& t) {
  { t.stop_requested() } -> std::same_as<bool>;
  { t.stop_possible() } -> std::same_as<bool>;
};

}  // namespace rouse::async

namespace rouse::async::detail {

// Room for one stop callback `F` on whatever token an awaiting promise
// offers, decided in await_suspend (when the token type is known): in place
// for rouse's inplace_stop_token, nothing for a token that cannot stop, one
// allocation for any other token type (std::stop_token included).
template <class F>
class stop_slot {
 public:
  stop_slot() noexcept = default;
  stop_slot(const stop_slot&) = delete;
  stop_slot& operator=(const stop_slot&) = delete;
  ~stop_slot() { reset(); }

  // Registers `f` with `token` (runs it at once if stop was requested).
  template <class Token>
  void emplace(const Token& token, F f) {
    if constexpr (std::is_same_v<Token, inplace_stop_token>) {
      if (token.stop_possible()) {
        new (&inplace_) inplace_stop_callback<F>(token, std::move(f));
        has_inplace_ = true;
      }
    } else if constexpr (std::is_same_v<Token, never_stop_token>) {
      (void)token;
      (void)f;
    } else {
      if (token.stop_possible()) other_ = new holder<stop_callback_for_t<Token, F>>(token, std::move(f));
    }
  }
  // Unregisters; waits for a run of the callback on another thread to end.
  void reset() noexcept {
    if (has_inplace_) {
      has_inplace_ = false;
      reinterpret_cast<inplace_stop_callback<F>*>(&inplace_)->~inplace_stop_callback<F>();
    }
    if (other_) {
      holder_base* const o = other_;
      other_ = nullptr;
      delete o;
    }
  }

 private:
  struct holder_base {
    virtual ~holder_base() = default;
  };
  template <class Callback>
  struct holder final : holder_base {
    template <class Token>
    holder(const Token& t, F f) : cb(t, std::move(f)) {}
    Callback cb;
  };
  alignas(inplace_stop_callback<F>) unsigned char inplace_[sizeof(inplace_stop_callback<F>)];
  bool has_inplace_ = false;
  holder_base* other_ = nullptr;
};

}  // namespace rouse::async::detail
