// rouse/io/operation.hpp — io_operation<Action>: one awaitable I/O operation.
//
// The awaitable every I/O call returns (read_some, accept, send_to, ...).
// An Action says what the system call is:
//   static constexpr int direction;            read_direction / write_direction
//   bool perform(int fd) noexcept;             try once: true = complete
//                                              (result stored), false = EAGAIN
//   void fail(int err) noexcept;               store errno `err` as the result
//   result_type take();                        the result, for await_resume
// and, for an operation the kernel can carry out itself (io_uring):
//   void describe(kernel_request&) noexcept;   the request for what is left
//   bool finish(int res) noexcept;             apply the request's result:
//                                              true = complete, false = ask
//                                              again for the rest
//   void discard(int res) noexcept;            (optional) release what a
//                                              result nobody takes holds
//
// Two ways to wait, chosen by the reactor (reactor.hpp):
//
// Readiness (epoll; io_uring with uring_operations::readiness; actions
// without describe): await_ready tries the call (no lock, no allocation).
// On EAGAIN, await_suspend links the operation (a node in this awaitable,
// in the awaiting frame) into the registration, re-trying first if an edge
// came in since the first try. The reactor retries and completes it; the
// coroutine resumes on its executor.
//
// Completion (io_uring, the default): await_ready tries the call only where
// the reactor is told to (by default never: measured, docs/io.md); await_suspend
// links the operation into the registration's in_kernel list and queues an
// IORING_OP_RECV / SEND / READ / WRITE naming the operation (submitted with
// the loop's next poll() or park(), one system call for all of a round's
// requests; at once from a thread that does not drive the loop). The
// completion carries the result; read_exact / write_all ask again for the
// rest; the coroutine resumes on its executor.
//
// Cancellation (one winner, under the registration's lock):
// - readiness: a stop request from the awaiting promise's stop token
//   (get_stop_token(get_env(promise))) unlinks the node if it is still
//   linked and completes the operation as *stopped*; if the reactor
//   unlinked it first, the completion stands (the bytes it moved are
//   reported, never lost). Every system call on the buffer runs under the
//   lock while the node is linked.
// - completion: a stop request submits IORING_OP_ASYNC_CANCEL for the
//   request (at once, from the stopping thread); the operation completes
//   when the request's own completion comes: -ECANCELED completes it as
//   stopped, data that came first stands. A frame destroyed while the
//   kernel holds the request cancels it and waits, in the destructor, for
//   the request's completion (taking it from the ring itself; other
//   completions are kept for the loop, nobody is resumed inline).
// Either way, once the stop has completed the operation (or the frame's
// destructor has returned) nothing touches the operation's buffer again.
// Closing the object completes waiting operations with operation_canceled
// (requests in the kernel: cancelled, and completed by their completion);
// an operation made before the close and awaited after it completes so at
// once. Each operation holds a reference on its registration from its
// making to its destruction, so that its stop callback, which stays
// registered until the coroutine resumes, never reads a registration the
// reactor has freed.
// Timeouts: wrap the operation in async::with_timeout (a timer's stop).
//
// Gate: await_suspend and the completion are the two parties that must be
// done before the coroutine may resume (2 -> 0; whoever reaches 0 resumes),
// as in sleep.hpp: a completion on another thread may come while
// await_suspend is still running. Ordering: acq_rel on the gate: the
// completion's result reaches the resumed coroutine.
#pragma once

#include <atomic>
#include <concepts>
#include <coroutine>
#include <utility>

#include "rouse/async/env.hpp"
#include "rouse/async/stop_token.hpp"
#include "rouse/async/waker.hpp"
#include "rouse/detail/diagnostics.hpp"
#include "rouse/io/reactor.hpp"

namespace rouse::io {

namespace detail {
template <class Action>
concept kernel_action = requires(Action& a, kernel_request& k, int res) {
  a.describe(k);
  { a.finish(res) } -> std::same_as<bool>;
};
}  // namespace detail

template <class Action>
class io_operation : detail::op_base {
 public:
  using rouse_affine = void;  // resumes its awaiter on the awaiter's executor
  using result_type = decltype(std::declval<Action&>().take());

  // `r` null: the object is not open; the operation fails with EBADF.
  io_operation(detail::registration* r, Action action) noexcept : action_(std::move(action)) { bind(r); }
  // Movable until awaited (with_timeout moves it into its own frame).
  io_operation(io_operation&& o) noexcept : action_(std::move(o.action_)) {
    ROUSE_CHECK_USAGE(!o.armed_, "rouse::io::io_operation", "moved after it was awaited");
    bind(o.reg);
  }
  io_operation(const io_operation&) = delete;
  io_operation& operator=(const io_operation&) = delete;
  io_operation& operator=(io_operation&&) = delete;

  // A frame destroyed while the operation waits: withdraw the node, take
  // the request back from the kernel, or take the completed operation out
  // of the batch being completed on this thread.
  ~io_operation() {
    if (!armed_ || gate_.load(std::memory_order_acquire) == 0) return;
    stop_.reset();         // waits for a stop callback running on another thread
    if (detached) return;  // the reactor is gone (its ring closed)
    reg->lock.lock();
    if (in_kernel.load(std::memory_order_relaxed)) {
      abandoned = true;
      reactor* const owner = reg->owner;
      if (!stop_wanted) owner->request_cancel(this);
      reg->lock.unlock();
      owner->request_abandon(this);  // returns once the kernel gave the request back
      return;
    }
    if (linked) reg->waiting[Action::direction].remove(this);
    reg->lock.unlock();
    // Completed, not resumed yet: in the batch this thread is completing (a
    // coroutine resumed earlier in it destroys this frame). Elsewhere, the
    // frame is destroyed while another thread resumes it: misuse.
    if (in_batch.load(std::memory_order_relaxed)) {
      [[maybe_unused]] bool const withdrawn = detail::withdraw_from_batch(this);
      ROUSE_CHECK_USAGE(withdrawn, "rouse::io",
                        "an operation's frame destroyed while another thread delivers its completion");
    }
  }

  bool await_ready() noexcept {
    if (reg == nullptr) {
      action_.fail(EBADF);
      return true;
    }
    if (reg->closed_hint.load(std::memory_order_relaxed)) {  // made before a close, awaited after it
      action_.fail(ECANCELED);
      return true;
    }
    if constexpr (requires { action_.completes_empty(); }) {
      if (action_.completes_empty()) return true;
    }
    if constexpr (detail::kernel_action<Action>) {
      kernel_ = reg->owner->completion_ops();
      if (kernel_ && !reg->owner->completion_tries_first(Action::direction)) return false;
    }
    // Ordering: acquire: an edge counted after this load is seen by
    // await_suspend's re-check.
    seen_ = reg->ready_count[Action::direction].load(std::memory_order_acquire);
    return action_.perform(reg->fd);
  }

  template <class P>
  std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) {
    target_ = async::resume_target(h);
    auto const token = async::get_stop_token(async::get_env(h.promise()));
    if (token.stop_requested()) return stopped_now(h);
    detail::registration* const r = reg;
    r->lock.lock();
    if (r->closed) {
      action_.fail(ECANCELED);
      r->lock.unlock();
      return h;
    }
    if (kernel_) {
      // The kernel takes the request (and the buffer) from here on.
      r->in_kernel.push_back(this);
      in_kernel.store(true, std::memory_order_relaxed);
      r->owner->request_start(this);
    } else {
      // An edge since the first try: the data it announced may be there.
      if (r->ready_count[Action::direction].load(std::memory_order_relaxed) != seen_ && action_.perform(r->fd)) {
        r->lock.unlock();
        return h;
      }
      r->waiting[Action::direction].push_back(this);
      if (!r->poll_armed) r->owner->arm_readiness(r);
    }
    armed_ = true;
    r->lock.unlock();
    stop_.emplace(token, on_stop{this});
    // Our part done. Ordering: acq_rel: pairs with complete_op().
    if (gate_.fetch_sub(1, std::memory_order_acq_rel) != 1) return std::noop_coroutine();
    if (stopped) return stopped_now(h);
    return h;
  }

  result_type await_resume() {
    stop_.reset();
    if (stopped) throw async::operation_stopped();
    return action_.take();
  }

  // Whether the operation completed as stopped (tests).
  bool completed_stopped() const noexcept { return stopped; }

 private:
  struct on_stop {
    io_operation* self;
    void operator()() noexcept {
      detail::registration* const r = self->reg;
      r->lock.lock();
      if (self->in_kernel.load(std::memory_order_relaxed)) {
        // The request's completion decides: -ECANCELED (stopped) or data.
        if (!self->stop_wanted) {
          self->stop_wanted = true;
          r->owner->request_cancel(self);
        }
        r->lock.unlock();
        return;
      }
      if (!self->linked) {  // the reactor completed it first: that stands
        r->lock.unlock();
        return;
      }
      r->waiting[Action::direction].remove(self);
      self->stopped = true;
      r->lock.unlock();
      complete_op(self);
    }
  };

  void bind(detail::registration* r) noexcept {
    reg = r;
    // Ordering: relaxed: the reference is this thread's own until it is
    // dropped (release()'s acq_rel).
    if (r != nullptr) r->refs.fetch_add(1, std::memory_order_relaxed);
    hold_.r = r;
    direction = Action::direction;
    perform = [](op_base* self, int fd) noexcept { return static_cast<io_operation*>(self)->action_.perform(fd); };
    fail = [](op_base* self, int err) noexcept { static_cast<io_operation*>(self)->action_.fail(err); };
    complete = &complete_op;
    if constexpr (detail::kernel_action<Action>) {
      describe = [](op_base* self, detail::kernel_request& k) noexcept {
        static_cast<io_operation*>(self)->action_.describe(k);
      };
      finish = [](op_base* self, int res) noexcept { return static_cast<io_operation*>(self)->action_.finish(res); };
      if constexpr (requires(Action & a, int res) { a.discard(res); })
        discard = [](op_base* self, int res) noexcept { static_cast<io_operation*>(self)->action_.discard(res); };
    }
  }

  static void complete_op(op_base* base) noexcept {
    auto* const self = static_cast<io_operation*>(base);
    if (self->gate_.fetch_sub(1, std::memory_order_acq_rel) != 1) return;  // await_suspend finishes it
    // Last party: resume. Nothing of *self is touched after the hand-over.
    async::resume_target const t = self->target_;
    t.complete(self->stopped);
  }

  std::coroutine_handle<> stopped_now(std::coroutine_handle<> h) noexcept {
    stopped = true;
    return target_.stopped_from_suspend(h);  // else await_resume throws operation_stopped
  }

  // The operation's reference on its registration, dropped last (after the
  // stop callback below is gone).
  struct reg_hold {
    detail::registration* r = nullptr;
    reg_hold() = default;
    reg_hold(const reg_hold&) = delete;
    reg_hold& operator=(const reg_hold&) = delete;
    ~reg_hold() {
      if (r != nullptr) detail::release(r);
    }
  };
  reg_hold hold_;
  Action action_;
  std::uint32_t seen_ = 0;
  bool armed_ = false;
  bool kernel_ = false;  // the kernel carries the operation out (io_uring)
  std::atomic<int> gate_{2};
  async::resume_target target_{};
  async::detail::stop_slot<on_stop> stop_;
};

}  // namespace rouse::io
