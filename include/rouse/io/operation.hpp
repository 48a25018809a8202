// rouse/io/operation.hpp — io_operation<Action>: one awaitable I/O operation.
//
// The awaitable every I/O call returns (read_some, accept, send_to, ...).
// An Action says what the system call is:
//   static constexpr int direction;            read_direction / write_direction
//   bool perform(int fd) noexcept;             try once: true = complete
//                                              (result stored), false = EAGAIN
//   void fail(int err) noexcept;               store errno `err` as the result
//   result_type take();                        the result, for await_resume
//
// Steps: await_ready tries the call (no lock, no allocation). On EAGAIN,
// await_suspend links the operation (a node in this awaitable, in the
// awaiting frame) into the registration, re-trying first if an edge came in
// since the first try. The reactor retries and completes it (see
// reactor.hpp); the coroutine resumes on its executor.
//
// Cancellation (one winner, under the registration's lock): a stop request
// from the awaiting promise's stop token (get_stop_token(get_env(promise)))
// unlinks the node if it is still linked and completes the operation as
// *stopped*; if the reactor unlinked it first, the completion stands (the
// bytes it moved are reported, never lost). Either way, once the stop
// callback has returned (or the frame's destruction has withdrawn the node)
// the reactor never touches the operation's buffer again: every system call
// on it runs under the lock, while it is linked. A frame destroyed while
// the operation waits unlinks it in the destructor. Timeouts: wrap the
// operation in async::with_timeout (a timer's stop).
//
// Gate: await_suspend and the completion are the two parties that must be
// done before the coroutine may resume (2 -> 0; whoever reaches 0 resumes),
// as in sleep.hpp: a completion on another thread may come while
// await_suspend is still running. Ordering: acq_rel on the gate: the
// completion's result reaches the resumed coroutine.
#pragma once

#include <atomic>
#include <coroutine>
#include <utility>

#include "rouse/async/env.hpp"
#include "rouse/async/stop_token.hpp"
#include "rouse/async/waker.hpp"
#include "rouse/detail/diagnostics.hpp"
#include "rouse/io/reactor.hpp"

namespace rouse::io {

template <class Action>
class io_operation : detail::op_base {
 public:
  using rouse_affine = void;  // resumes its awaiter on the awaiter's executor
  using result_type = decltype(std::declval<Action&>().take());

  // `r` null: the object is not open; the operation fails with EBADF.
  io_operation(detail::registration* r, Action action) noexcept : reg_(r), action_(std::move(action)) { bind(); }
  // Movable until awaited (with_timeout moves it into its own frame).
  io_operation(io_operation&& o) noexcept : reg_(o.reg_), action_(std::move(o.action_)) {
    ROUSE_CHECK_USAGE(!o.armed_, "rouse::io::io_operation", "moved after it was awaited");
    bind();
  }
  io_operation(const io_operation&) = delete;
  io_operation& operator=(const io_operation&) = delete;
  io_operation& operator=(io_operation&&) = delete;

  // A frame destroyed while the operation waits: withdraw the node.
  ~io_operation() {
    if (!armed_ || gate_.load(std::memory_order_acquire) == 0) return;
    stop_.reset();  // waits for a stop callback running on another thread
    reg_->lock.lock();
    if (linked) reg_->waiting[Action::direction].remove(this);
    reg_->lock.unlock();
  }

  bool await_ready() noexcept {
    if (reg_ == nullptr) {
      action_.fail(EBADF);
      return true;
    }
    // Ordering: acquire: an edge counted after this load is seen by
    // await_suspend's re-check.
    seen_ = reg_->ready_count[Action::direction].load(std::memory_order_acquire);
    return action_.perform(reg_->fd);
  }

  template <class P>
  std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) {
    target_ = async::resume_target(h);
    auto const token = async::get_stop_token(async::get_env(h.promise()));
    if (token.stop_requested()) return stopped_now(h);
    reg_->lock.lock();
    if (reg_->closed) {
      action_.fail(ECANCELED);
      reg_->lock.unlock();
      return h;
    }
    // An edge since the first try: the data it announced may be there.
    if (reg_->ready_count[Action::direction].load(std::memory_order_relaxed) != seen_ &&
        action_.perform(reg_->fd)) {
      reg_->lock.unlock();
      return h;
    }
    reg_->waiting[Action::direction].push_back(this);
    armed_ = true;
    reg_->lock.unlock();
    stop_.emplace(token, on_stop{this});
    // Our part done. Ordering: acq_rel: pairs with complete_op().
    if (gate_.fetch_sub(1, std::memory_order_acq_rel) != 1) return std::noop_coroutine();
    if (stopped_) return stopped_now(h);
    return h;
  }

  result_type await_resume() {
    stop_.reset();
    if (stopped_) throw async::operation_stopped();
    return action_.take();
  }

  // Whether the operation completed as stopped (tests).
  bool completed_stopped() const noexcept { return stopped_; }

 private:
  struct on_stop {
    io_operation* self;
    void operator()() noexcept {
      detail::registration* const r = self->reg_;
      r->lock.lock();
      if (!self->linked) {  // the reactor completed it first: that stands
        r->lock.unlock();
        return;
      }
      r->waiting[Action::direction].remove(self);
      self->stopped_ = true;
      r->lock.unlock();
      complete_op(self);
    }
  };

  void bind() noexcept {
    perform = [](op_base* self, int fd) noexcept { return static_cast<io_operation*>(self)->action_.perform(fd); };
    fail = [](op_base* self, int err) noexcept { static_cast<io_operation*>(self)->action_.fail(err); };
    complete = &complete_op;
  }

  static void complete_op(op_base* base) noexcept {
    auto* const self = static_cast<io_operation*>(base);
    if (self->gate_.fetch_sub(1, std::memory_order_acq_rel) != 1) return;  // await_suspend finishes it
    // Last party: resume. Nothing of *self is touched after the hand-over.
    async::resume_target const t = self->target_;
    if (self->stopped_ && t.stops_in_place())
      t.resume_stopped();
    else
      t.resume();
  }

  std::coroutine_handle<> stopped_now(std::coroutine_handle<> h) noexcept {
    stopped_ = true;
    if (target_.stops_in_place()) return target_.on_stopped(h.address());
    return h;  // await_resume throws operation_stopped
  }

  detail::registration* reg_;
  Action action_;
  std::uint32_t seen_ = 0;
  bool armed_ = false;
  bool stopped_ = false;
  std::atomic<int> gate_{2};
  async::resume_target target_{};
  async::detail::stop_slot<on_stop> stop_;
};

}  // namespace rouse::io
