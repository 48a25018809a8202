// rouse/async/when.hpp — when_all and when_any: run tasks concurrently, join them all.
//
//   auto [a, b] = co_await when_all(fetch(1), fetch(2));     // both values
//   std::variant<int, std::string> first = co_await when_any(fast(), slow());
//
// Both start every task at once on the awaiting task's executor (each runs
// inline until its first suspension, in argument order) and complete only
// when every one of them has completed: nothing outlives the co_await.
//
// when_all(ts...) -> task<std::tuple<V...>> (V = T, std::monostate for
// void). The first task to fail (an exception) or stop asks the others to
// stop (through their stop tokens) and, once all are done, decides the
// result: the first exception is rethrown, else a stop completes the
// awaiting task as stopped, else the tuple of values.
//
// when_any(ts...) -> task<std::variant<V...>>: the first task to complete
// with a value or an exception wins (the variant's index says which); the
// others are asked to stop and awaited, and what they return is dropped
// (a loser that awaited a notify and completed anyway has consumed it: to
// race a notification against other work without losing it, use
// channel::select with op(n.notified()), which gives it back).
// If every task completed as stopped, when_any completes as stopped.
// when_all() of no task completes at once with an empty tuple; when_any()
// of none does not compile.
//
// Destroying the awaiting coroutine while it waits here destroys the
// children that have not ended, in argument order (their awaitables
// withdraw), as destroying a task destroys the child it awaits; none may be
// running or woken on another thread then (the rule for destroying any
// suspended frame). Nor may one child's destruction wake a later one (a
// child holding an async::mutex guard that a later child waits for: the
// unlock schedules the waiter, whose frame is destroyed next, and the
// executor would resume it): stop such a join instead (a stop token,
// with_timeout) and let it end.
//
// Every child runs with a stop token linked to the awaiting task's: a stop
// request from outside reaches all of them. Cost: the children's own frames
// (each runs detached and hands its result over at its end; no driver
// frame), and when_all's / when_any's own; no lock. A child ends on the
// executor it last ran on; the awaiting task resumes on its own.
#pragma once

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>

#include "rouse/async/spawn.hpp"
#include "rouse/async/task.hpp"
#include "rouse/detail/diagnostics.hpp"

namespace rouse::async {

namespace detail {

enum class join_kind { all, any };

template <join_kind Kind, class... Ts>
class join_op {
 public:
  using rouse_affine = void;
  using values_t = std::tuple<std::optional<non_void_t<Ts>>...>;
  static constexpr std::size_t count = sizeof...(Ts);

  explicit join_op(task<Ts>... ts) : tasks_(std::move(ts)...) {}
  join_op(join_op&&) = delete;
  // Not awaited: tasks_ still owns the children. Awaited: it ends only
  // after every child has ended and destroyed its own frame, unless the
  // awaiting frame is destroyed while it waits here: then the children
  // that have not ended are destroyed with it, as a task's child is (their
  // awaitables withdraw their waiters; as for any frame, none may be
  // running or woken on another thread then).
  ~join_op() {
    if (!started_) return;
    link_.reset();  // no outside stop reaches the children from here on
    destroy_unended(std::index_sequence_for<Ts...>{});
  }

  static constexpr bool await_ready() noexcept { return false; }

  template <class P>
  std::coroutine_handle<> await_suspend(std::coroutine_handle<P> parent) noexcept {
    target_ = resume_target(parent);
    link_.emplace(parent.promise().stop_token(), forward_stop{&stop_});
    started_ = true;
    start(std::index_sequence_for<Ts...>{});
    // Our own share of the count. Ordering: acq_rel: the children's results.
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) != 1) return std::noop_coroutine();
    // Every child finished inline: continue here.
    if (completes_stopped() && target_.stops_in_place()) return target_.on_stopped(parent.address());
    return parent;
  }

  auto await_resume() {
    link_.reset();
    if (error_) std::rethrow_exception(error_);
    if constexpr (Kind == join_kind::all) {
      if (stopped_any_) throw operation_stopped();
      return std::apply([](auto&... v) { return std::tuple<non_void_t<Ts>...>(std::move(*v)...); }, values_);
    } else {
      if (winner_ == no_winner) throw operation_stopped();
      return take_winner(std::index_sequence_for<Ts...>{});
    }
  }

  // Called at each child's end (child_ended). A value whose move into the
  // join throws: when_all's caller sees it as the child's error; when_any's
  // winner has already claimed the win, so the exception is its result.
  template <std::size_t I, class V>
  void set_value(V&& v) {
    if constexpr (Kind == join_kind::all) {
      std::get<I>(values_).emplace(std::forward<V>(v));
    } else {
      if (!claim_winner(I)) return;
      try {
        std::get<I>(values_).emplace(std::forward<V>(v));
      } catch (...) {
        error_ = std::current_exception();
      }
    }
  }
  void set_error(std::size_t i, std::exception_ptr e) noexcept {
    if constexpr (Kind == join_kind::all) {
      // The first error wins, even over an earlier stop.
      if (!error_claimed_.exchange(true, std::memory_order_acq_rel)) error_ = std::move(e);
      stop_.request_stop();
    } else {
      if (claim_winner(i)) error_ = std::move(e);
    }
  }
  void set_stopped() noexcept {
    if constexpr (Kind == join_kind::all) {
      stopped_any_flag_.store(true, std::memory_order_relaxed);
      stop_.request_stop();
    }
  }
  void child_done() noexcept {
    // Ordering: acq_rel: each child's result reaches the last one, which
    // resumes the awaiter.
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    resume_target const t = target_;
    t.complete(completes_stopped());
  }

 private:
  static constexpr std::size_t no_winner = static_cast<std::size_t>(-1);

  struct forward_stop {
    inplace_stop_source* s;
    void operator()() noexcept { s->request_stop(); }
  };

  bool claim_winner(std::size_t i) noexcept {
    std::size_t expected = no_winner;
    if (!winner_atomic_.compare_exchange_strong(expected, i, std::memory_order_acq_rel)) return false;
    winner_ = i;
    stop_.request_stop();
    return true;
  }

  bool completes_stopped() noexcept {
    stopped_any_ = stopped_any_flag_.load(std::memory_order_relaxed);
    if constexpr (Kind == join_kind::all)
      return stopped_any_ && !error_;
    else
      return winner_atomic_.load(std::memory_order_acquire) == no_winner;
  }

  template <std::size_t... I>
  auto take_winner(std::index_sequence<I...>) {
    using result_t = std::variant<non_void_t<Ts>...>;
    std::optional<result_t> out;
    ((winner_ == I ? (void)out.emplace(std::in_place_index<I>, std::move(*std::get<I>(values_))) : (void)0), ...);
    return std::move(*out);
  }

  // Binds every child detached, then runs each to its first suspension. A
  // child that ends at once destroys its own frame: the handles are taken
  // first, and each is resumed once and not touched again.
  template <std::size_t... I>
  void start(std::index_sequence<I...>) noexcept {
    if constexpr (count > 0) {
      std::coroutine_handle<> const children[count] = {bind_child<I>()...};
      for (std::size_t i = 0; i < count; ++i) children_[i] = children[i];
      for (std::coroutine_handle<> c : children) c.resume();
    }
  }

  template <std::size_t... I>
  void destroy_unended(std::index_sequence<I...>) noexcept {
    // Ordering: acquire: pairs with the release in child_ended (a child
    // that ended on another thread).
    ((ended_[I].load(std::memory_order_acquire) ? (void)0 : children_[I].destroy()), ...);
  }

  template <std::size_t I>
  std::coroutine_handle<> bind_child() noexcept {
    using T = std::tuple_element_t<I, std::tuple<Ts...>>;
    ROUSE_CHECK_USAGE(std::get<I>(tasks_).valid(), "rouse::async::when_all / when_any",
                      "an empty or moved-from task among the children");
    auto const h = std::get<I>(tasks_).release();
    task_promise_base::bind_detached(h, target_.ex, stop_.get_token(), &child_ended<I, T>, this);
    return h;
  }

  // A child's end (bind_detached): its value, exception or stop reported;
  // then, its frame gone, its count.
  template <std::size_t I, class T>
  static void child_ended(task_promise_base* p, void* arg) noexcept {
    auto* const op = static_cast<join_op*>(arg);
    if (p == nullptr) {  // its frame is gone
      // Ordering: release: pairs with destroy_unended's acquire.
      op->ended_[I].store(true, std::memory_order_release);
      op->child_done();
      return;
    }
    if (p->stopped()) {
      op->set_stopped();
      return;
    }
    hand_over_result<T>(
        *p, [op](auto&& v) { op->template set_value<I>(std::forward<decltype(v)>(v)); },
        [op](std::exception_ptr e) noexcept { op->set_error(I, std::move(e)); });
  }

  // stop_ first: members die in reverse order, and whatever holds a
  // callback on stop_'s token must die before it (a started child destroys
  // its frame before it counts itself done).
  inplace_stop_source stop_;
  std::optional<inplace_stop_callback<forward_stop>> link_;
  std::tuple<task<Ts>...> tasks_;  // until start() binds them detached
  values_t values_;
  std::exception_ptr error_;
  resume_target target_;
  std::atomic<std::size_t> pending_{count + 1};
  std::atomic<bool> error_claimed_{false};
  std::atomic<bool> stopped_any_flag_{false};
  bool stopped_any_ = false;
  std::atomic<std::size_t> winner_atomic_{no_winner};
  std::size_t winner_ = no_winner;
  bool started_ = false;
  std::coroutine_handle<> children_[count > 0 ? count : 1] = {};
  std::atomic<bool> ended_[count > 0 ? count : 1] = {};
};

}  // namespace detail

template <class... Ts>
task<std::tuple<detail::non_void_t<Ts>...>> when_all(task<Ts>... ts) {
  co_return co_await detail::join_op<detail::join_kind::all, Ts...>(std::move(ts)...);
}

template <class... Ts>
task<std::variant<detail::non_void_t<Ts>...>> when_any(task<Ts>... ts) {
  static_assert(sizeof...(Ts) > 0, "rouse::async::when_any: give it at least one task (none would never complete)");
  co_return co_await detail::join_op<detail::join_kind::any, Ts...>(std::move(ts)...);
}

}  // namespace rouse::async
