// rouse/async/detail/word_wait.hpp — the engine under async::wait_on and the
// awaitables of rouse's blocking primitives (rouse/async/wait_on.hpp,
// rouse/async/blocking.hpp): a word protocol that a sleeping thread would
// run, driven one futex wait at a time for a coroutine, which cannot sleep.
//
//   futex_wait_node   what a parker that carries futex waits (the io_uring
//                     reactor: IORING_OP_FUTEX_WAIT) completes; run_loop.hpp's
//                     parker names it in its optional futex-wait interface
//   wait_protocol     one waiter's side of a word's protocol, in steps:
//                     step() takes / finds the word done, or marks the word as
//                     a sleeper marks it and names the value to wait on;
//                     woke() after each wait; leave() when stopped (the
//                     give-up path of a thread whose timed wait ran out);
//                     give_back() when the waiter is gone after all (a
//                     raw word wait, which took only a wake, has the
//                     driver pass one wake of the word on)
//   basic_word_wait   the driver: steps the protocol, waits through the
//                     carrier (no thread) or a helper thread, re-steps after
//                     each wake, and ends once: done (the protocol is done)
//                     or stopped. Carrier is async::parker in the library, a
//                     fake ring in tests/model/async_wait_on_model.cpp.
//
// Phases (phase_, under lock_): who may act on the wait now.
//   running   a thread steps the protocol: the starter, a completion of the
//             carrier's wait, or a stop that withdrew that wait
//   armed     the carrier's wait is pending; the carrier completes it (then
//             running) unless a stop withdraws it first (then running)
//   helper    a helper thread owns the wait until it ends
//   finished  ended; nothing of the wait runs any more
// Flags (under lock_): stop_ (a stop was asked: the next arming leaves
// instead), abandoned_ (the awaiting frame is being destroyed: the end
// gives back what it took and resumes nobody). What a wait ended "done" by
// a wake took is given back at such an end: a lock or a permit goes back
// to its primitive, and a wake of a raw word (wait_on: nothing else was
// taken) is passed on, one wake of the word under lock_ (the word outlives
// the wait), as the carrier's cancel passes on a wake its request took.
//
// One winner between a completion and a stop: the carrier's cancel is
// called under lock_ and reports whether it withdrew the wait before its
// completion was taken (then the stopping thread drives the end) or not
// (then the completion comes and sees stop_: it steps the protocol first —
// a wake it consumed stands, the protocol takes what it was given — and
// leaves only if still not done). A wake that the carrier's withdrawn
// request had consumed is passed on by the carrier (reactor: a FUTEX_WAKE
// of one from the cancel itself); leave() then runs the protocol's give-up
// path as well.
//
// The helper thread waits on two words at once (platform::wait_any, or the
// kernel-futex form io::wait_on passes): the protocol's word and stop_word_.
// A stop stores stop_word_ and wakes it: the helper, and only it, leaves its
// wait (no wake of the protocol's word, so its other waiters see nothing).
// The index the wait returns says the word (a wake taken: step) or the stop.
// Both wakes may reach the wait in the same moment and the wait reports one
// index: fallback_ops::wait_pair puts the word last, and futex_waitv(2)
// reports the last entry it was woken through, so a wake of the word taken
// with the stop is reported as the word's (a protocol without a give-up
// path, wait_on's, would otherwise drop it: the waker's wake-one would reach
// nobody). The helper still leaves a stop as a woken waiter (woke(), then
// leave()), for a wait that reports the stop anyway: a lost hand-off (a
// rouse::mutex's unlock to a starving waiter) would leave every other
// sleeper asleep.
//
// Memory ordering: lock_ (a rouse::mutex) orders everything the phases hand
// over; the carrier orders its completion after its start (its own lock);
// stop_word_ is stored with release and read with acquire by the helper.
#pragma once

#include <cstdint>
#include <exception>

#include "rouse/detail/sync_types.hpp"
#include "rouse/mutex.hpp"

namespace rouse::async::detail {

// A futex wait carried by a parker (rouse/async/run_loop.hpp). The parker
// owns `record` and writes `result` and `detached`; `complete` is called
// once, on the parker's thread, after the wait ended (woken, the word
// changed, or cancelled by the kernel), unless the parker's cancel withdrew
// it first.
struct futex_wait_node {
  void (*complete)(futex_wait_node* self) noexcept = nullptr;
  void* record = nullptr;  // the parker's record of the request
  int result = 0;          // the request's completion (0: woken)
  bool detached = false;   // the parker was destroyed while it waited
};

// One waiter's side of a word protocol (see the top of this file).
class wait_protocol {
 public:
  // True when the waiter is done (it took the primitive, or the wait is
  // over). False: the word is marked as a sleeping thread marks it, and
  // `value` is what to wait on.
  virtual bool step(std::uint32_t& value) noexcept = 0;
  // A wait returned: woken, the word changed, or spuriously.
  virtual void woke() noexcept {}
  // Stopped before done: the protocol's give-up path. True when it took
  // the primitive after all (that result stands).
  virtual bool leave() noexcept { return false; }
  // The waiter is gone (its frame destroyed) after it was done: gives back
  // what it took. True when what it took was a wake of the word and nothing
  // else (a raw word wait): the driver then wakes one waiter of the word in
  // its place.
  virtual bool give_back() noexcept { return false; }

  // The futex word the protocol waits on.
  const ::rouse::detail::atomic<std::uint32_t>* word = nullptr;

 protected:
  wait_protocol() = default;
  wait_protocol(const wait_protocol&) = default;
  wait_protocol& operator=(const wait_protocol&) = default;
  ~wait_protocol() = default;
};

enum class wait_outcome : std::uint8_t {
  pending,  // a completion will report the end (on_done)
  done,     // the protocol is done
  stopped,  // left on a stop
  failed,   // no wait could be started (no helper thread): nothing pending
};

template <class Carrier>
class basic_word_wait : public futex_wait_node {
 public:
  using word_type = ::rouse::detail::atomic<std::uint32_t>;
  // Called once when a wait that start() left pending ends (not when it is
  // abandoned). After it the object may be gone.
  using done_fn = void (*)(basic_word_wait* self, wait_outcome outcome) noexcept;
  // The helper thread's side (src/async/word_wait.cpp): start a thread that
  // calls helper_loop(), join (or detach, on the helper itself) it, the
  // two-word wait it makes (returns 0: the word, or 1: the stop word; either
  // spuriously; a wake of the word taken together with the stop's must be
  // reported as the word's), the wake of the stop word that reaches that
  // wait, and a wake of one waiter of the word as the route's wakers make
  // it (the helper's wait and a carrier's see it): the pass-on of a wake a
  // raw word wait took for a frame that is gone.
  struct fallback_ops {
    bool (*start)(basic_word_wait& w) noexcept;
    void (*reap)(basic_word_wait& w) noexcept;
    int (*wait_pair)(const word_type& word, std::uint32_t value, const word_type& stop) noexcept;
    void (*wake_stop)(const word_type& stop) noexcept;
    void (*wake_one)(const word_type& word) noexcept;
  };

  // `named`: the wait uses `carrier` (null: none) whatever start() is
  // offered; `fallback` null: the one start() is given.
  basic_word_wait(wait_protocol& protocol, done_fn on_done, bool named = false, Carrier* carrier = nullptr,
                  const fallback_ops* fallback = nullptr) noexcept
      : protocol_(&protocol), on_done_(on_done), carrier_(carrier), fallback_(fallback), named_(named) {
    complete = &on_complete;
  }
  // A wait not started yet, made again for `protocol` (its awaitable moved
  // before it was awaited): the same route and completion.
  basic_word_wait(wait_protocol& protocol, const basic_word_wait& unstarted) noexcept
      : protocol_(&protocol),
        on_done_(unstarted.on_done_),
        carrier_(unstarted.carrier_),
        fallback_(unstarted.fallback_),
        named_(unstarted.named_) {
    complete = &on_complete;
  }
  basic_word_wait(const basic_word_wait&) = delete;
  basic_word_wait& operator=(const basic_word_wait&) = delete;
  ~basic_word_wait() = default;

  // Steps the protocol, then waits through the carrier (the named one, else
  // `carrier`; null: no native wait) or, without one, through the fallback's
  // helper thread. Returns done or stopped when it ended here (on_done is
  // not called), pending when a completion will call on_done, failed when no
  // helper thread could start.
  wait_outcome start(Carrier* carrier, const fallback_ops* fallback) noexcept {
    if (!named_) carrier_ = carrier;
    if (fallback_ == nullptr) fallback_ = fallback;
    return drive();
  }

  // A stop request (any thread, any time). A wait the carrier holds is
  // withdrawn and this thread ends it (leave(), then on_done); a running
  // step sees the flag before it waits again; the helper is woken out of
  // its wait.
  void request_stop() noexcept {
    lock_.lock();
    unsync_set(stop_, true);
    if (detached) {  // the carrier is gone: nothing of it may be touched
      lock_.unlock();
      return;
    }
    int const phase = unsync_get(phase_);
    if (phase == armed && carrier_->futex_wait_cancel(this)) {
      unsync_set(phase_, running);  // withdrawn before its completion: ours
      lock_.unlock();
      end_and_report(protocol_->leave() ? wait_outcome::done : wait_outcome::stopped);
      return;
    }
    // Ordering: release: pairs with the helper's acquire loads.
    if (phase == helper) stop_word_.store(1, std::memory_order_release);
    lock_.unlock();
    // The helper may end and let the awaiter go on now; the awaiter's stop
    // callback is unregistered (and waits for this call) before the object
    // can go, so this wake still names live memory.
    if (phase == helper) fallback_->wake_stop(stop_word_);
  }

  // The awaiting frame is being destroyed while the wait may be pending:
  // withdraws it, waits for a completion already under way, and gives back
  // what the protocol took. Nothing is resumed.
  void abandon() noexcept {
    lock_.lock();
    unsync_set(abandoned_, true);
    unsync_set(stop_, true);
    int const phase = unsync_get(phase_);
    if (phase == finished) {
      lock_.unlock();
      reap();
      return;
    }
    if (phase == armed && (detached || carrier_->futex_wait_cancel(this))) {
      // Withdrawn (or its carrier is gone, with the kernel's waiter); a wake
      // the request took is passed on by the carrier.
      if (protocol_->leave()) give_back_locked();
      unsync_set(phase_, finished);
      lock_.unlock();
      return;
    }
    // Ordering: release: pairs with the helper's acquire loads.
    if (phase == helper) stop_word_.store(1, std::memory_order_release);
    lock_.unlock();
    if (phase == helper) {
      fallback_->wake_stop(stop_word_);
      reap();  // the helper ends (finish() sees abandoned_) and is joined
    }
    // A completion under way (armed, its completion taken; or running)
    // ends in finish(), which sees abandoned_.
    for (;;) {
      lock_.lock();
      bool const ended = unsync_get(phase_) == finished;
      lock_.unlock();
      if (ended) return;
      ::rouse::detail::yield();
    }
  }

  // Joins the helper thread, if one ran (detaches it when called on it).
  void reap() noexcept {
    if (helper_handle != nullptr) fallback_->reap(*this);
  }

  // The end reported by start() or on_done.
  wait_outcome outcome() const noexcept { return outcome_; }

  // ---- the helper thread's side (src/async/word_wait.cpp) ----
  void* helper_handle = nullptr;  // the fallback's thread object

  // The helper thread's body: waits on the value drive() armed it with.
  void helper_loop() noexcept {
    std::uint32_t value = helper_value_;
    wait_outcome o;
    for (;;) {
      int const which = fallback_->wait_pair(*protocol_->word, value, stop_word_);
      // Ordering: acquire: pairs with the release stores of stop_word_.
      if (which != 0 && stop_word_.load(std::memory_order_acquire) != 0) {
        // The stop woke it. A wake of the word taken in the same moment is
        // reported as the word's (wait_pair puts it last); leave as a woken
        // waiter does all the same, for a wait that cannot tell: the
        // protocol's give-up path then takes what such a wake was for (a
        // mutex's hand-off) or passes it on.
        if (!::rouse::detail::model_fault_on(::rouse::detail::model_fault::word_wait_helper_stop_skips_woke))
          protocol_->woke();
        o = protocol_->leave() ? wait_outcome::done : wait_outcome::stopped;
        break;
      }
      protocol_->woke();
      if (protocol_->step(value)) {
        o = wait_outcome::done;
        break;
      }
      if (stop_word_.load(std::memory_order_acquire) != 0) {
        o = protocol_->leave() ? wait_outcome::done : wait_outcome::stopped;
        break;
      }
    }
    end_and_report(o);
  }

 private:
  static constexpr int running = 0;
  static constexpr int armed = 1;
  static constexpr int helper = 2;
  static constexpr int finished = 3;

  template <class T>
  static T unsync_get(::rouse::detail::unsync<T>& v) noexcept {
    return ::rouse::detail::unsync_ref(v);
  }
  template <class T>
  static void unsync_set(::rouse::detail::unsync<T>& v, T x) noexcept {
    ::rouse::detail::unsync_ref(v) = x;
  }

  // The caller owns the wait (running): one step, then the end or a wait.
  wait_outcome drive() noexcept {
    std::uint32_t value = 0;
    if (protocol_->step(value)) return end(wait_outcome::done);
    lock_.lock();
    if (unsync_get(stop_)) {
      lock_.unlock();
      return end(protocol_->leave() ? wait_outcome::done : wait_outcome::stopped);
    }
    if (carrier_ != nullptr && !detached && carrier_->futex_wait_start(this, protocol_->word, value)) {
      unsync_set(phase_, armed);
      lock_.unlock();
      return wait_outcome::pending;
    }
    // No native wait (or it could not be started): a helper thread.
    helper_value_ = value;
    unsync_set(phase_, helper);
    bool const started = fallback_ != nullptr && fallback_->start(*this);
    if (!started) unsync_set(phase_, finished);
    lock_.unlock();
    return started ? wait_outcome::pending : wait_outcome::failed;
  }

  // The carrier's wait ended (on the carrier's thread).
  static void on_complete(futex_wait_node* n) noexcept {
    auto* const self = static_cast<basic_word_wait*>(n);
    self->lock_.lock();
    unsync_set(self->phase_, running);
    bool const stop = unsync_get(self->stop_);
    self->lock_.unlock();
    if (stop && ::rouse::detail::model_fault_on(::rouse::detail::model_fault::word_wait_completion_skips_step)) {
      self->end_and_report(wait_outcome::stopped);
      return;
    }
    self->protocol_->woke();
    wait_outcome const o = self->drive();
    if (o == wait_outcome::failed) std::terminate();  // no thread to wait on: cannot be reported here
    if (o != wait_outcome::pending) self->on_done_(self, o);
  }

  // The wait ends with `o`; returns it, or pending when the frame is being
  // destroyed (what was taken is given back, nobody is resumed).
  wait_outcome end(wait_outcome o) noexcept {
    lock_.lock();
    bool const gone = unsync_get(abandoned_);
    if (gone && o == wait_outcome::done) give_back_locked();
    outcome_ = o;
    unsync_set(phase_, finished);
    // The last touch when abandoned: abandon() may free the object after it.
    lock_.unlock();
    return gone ? wait_outcome::pending : o;
  }

  // Under lock_, the frame gone: what the protocol took goes back; a wake
  // of a raw word is passed on to the word's next waiter (the word is alive
  // while the wait is: this is before the last touch).
  void give_back_locked() noexcept {
    if (protocol_->give_back() &&
        !::rouse::detail::model_fault_on(::rouse::detail::model_fault::word_wait_abandon_drops_wake))
      fallback_->wake_one(*protocol_->word);
  }

  void end_and_report(wait_outcome o) noexcept {
    wait_outcome const r = end(o);
    if (r != wait_outcome::pending) on_done_(this, r);
  }

  wait_protocol* protocol_;
  done_fn on_done_;
  Carrier* carrier_ = nullptr;
  const fallback_ops* fallback_ = nullptr;
  bool named_;
  ::rouse::mutex lock_;
  ::rouse::detail::unsync<int> phase_{running};
  ::rouse::detail::unsync<bool> stop_{false};
  ::rouse::detail::unsync<bool> abandoned_{false};
  wait_outcome outcome_ = wait_outcome::pending;  // written by end(), under lock_
  std::uint32_t helper_value_ = 0;                // handed to the helper by its start
  word_type stop_word_{0};                        // 1: the helper must leave its wait
};

}  // namespace rouse::async::detail
