// rouse/channel/channel.hpp — multi-producer multi-consumer channels.
//
//   auto [tx, rx] = rouse::channel::bounded<int>(1024);   // capacity >= 1: a ring
//   // or: auto [tx, rx] = rouse::channel::bounded<int>(1024, rouse::channel::ring::ticket);
//   // or: auto [tx, rx] = rouse::channel::bounded<int>(0);   // rendezvous
//   // or: auto [tx, rx] = rouse::channel::unbounded<int>();  // a linked list of blocks
//   tx.send(42);                   // blocks while full; send_result says why it failed
//   auto r = rx.recv();            // blocks while empty; r.value(), or r.status()
//   for (int& v : rx) use(v);      // until closed and drained
//
// Purpose: hand values between any number of threads with Go's semantics
// (close, drain, select, rendezvous) at crossbeam-channel's speed. One pair
// of handle types covers the three flavours: sender<T> and receiver<T>.
//
// Lifecycle
// - bounded<T>(n) / unbounded<T>() allocate one shared state and return a
//   sender and a receiver. Handles are copyable (each copy is another
//   producer or consumer) and movable (a moved-from handle is empty).
// - The channel closes on close() (from either side, any number of times;
//   true for the call that closed it), when the last sender goes away, or
//   when the last receiver goes away. After close: sends fail with `closed`
//   and hand their value back; receivers first drain every value sent before
//   the close, then get `closed`; every blocked sender and receiver wakes.
//   (In the ticket ring a send claims its position first: a send that found
//   its slot free while the channel was open completes, and its value is
//   drained, even when close() comes while it moves the value in: the
//   operations blocked behind it wake once it is done; a blocked send woken
//   by the close gives its value back untouched, as in the default ring.)
// - Destruction: handles own the shared state, so a handle may be dropped
//   at any time, even while another thread is inside an operation that let
//   it go on. A blocked operation waits in rouse's one waiter queue, on a
//   waiter in its own stack frame; the thread that claims and releases it
//   touches it no more once the operation can return
//   (rouse/detail/waiter_queue.hpp), so that frame may be gone at once.
// - The shared state is freed by the last handle. Values still buffered then
//   (possible only once every receiver is gone) are destroyed with it.
//
// Operations (statuses from result.hpp)
//   send(v)                  ok | closed (value handed back)
//   try_send(v)              ok | full | closed (never waits for a receive
//                            to begin; the default ring waits for one moving
//                            a value out of the slot it needs; rendezvous:
//                            ok only if a receiver is blocked right now)
//   send_for / send_until    ok | closed | timed_out (never early)
//   recv()                   value | closed (closed and drained)
//   try_recv()               value | empty | closed (never waits for a send
//                            to begin; the default ring and unbounded wait
//                            for one that claimed the next position to
//                            finish moving its value in; a closed
//                            ring::ticket may wait for the operations under
//                            way on its slot: its send moving a value in, a
//                            receive moving one out). So a try_ form, a timed
//                            wait or a select must not hold a lock that a
//                            value's move constructor takes.
//   recv_for / recv_until    value | closed | timed_out
//   size(), capacity(), empty(), full(), is_closed()   snapshots
// A rendezvous send returns ok only once a receiver has taken its value.
//
// Ordering: each flavour is linearizable: a send takes effect at one atomic
// step (a CAS on the tail index; in the ticket ring, the publish of its slot;
// rendezvous, the claim of a blocked receiver), a receive likewise, and
// receivers get values in the order of the positions their sends took. In
// particular one producer's values arrive in the order it sent them.
// try_send/try_recv do not fail spuriously: `full` and `empty` are reported
// only after seeing the indices say so (in the ticket ring also while the
// operation on the neighbouring position is under way: see `ring`).
//
// Element types may be move-only and need not be default-constructible; they
// must be nothrow move-constructible and nothrow destructible. Each value is
// constructed in the channel once and destroyed there once.
//
// Misuse and what happens: an operation on an empty (moved-from or
// default-constructed) handle is diagnosed in debug builds and crashes
// (null dereference) in release builds.
//
// sizeof(sender<T>) == sizeof(receiver<T>) == 16 (a pointer and the flavour).
// Fairness: blocked operations of one side are woken in FIFO order; a woken
// thread competes with running ones (no hand-off), like crossbeam and Go.
// Cost with nobody waiting: bounded/unbounded send and receive are one CAS
// on an index, one store (or fetch_or) on a slot word and one seq_cst load of
// the other side's waiter flag: no lock, no system call. The ticket ring's
// blocking forms: one fetch_add on an index, one CAS on the slot word, one
// load. A blocked operation spins briefly, yields, then sleeps on a
// thread_parker in its own stack frame (the ticket ring's blocking forms: on
// their slot's word); waking it costs its waker one lock, one CAS and one
// futex wake (on a slot: one futex wake).
// Rendezvous operations take a lock (a rouse::mutex) per operation.
// Across processes: no.
//
// Memory ordering: everything a thread did before a successful send
// happens-before everything the receiver does after the receive that got
// that value; close() happens-before any operation that reports `closed`.
// The per-flavour protocols are in detail/array.hpp, detail/list.hpp,
// detail/zero.hpp and detail/waiter.hpp; the waiter queue's in
// rouse/detail/waiter_queue.hpp.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <limits>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "rouse/channel/detail/array.hpp"
#include "rouse/channel/detail/list.hpp"
#include "rouse/channel/detail/ticket.hpp"
#include "rouse/channel/detail/waiter.hpp"
#include "rouse/channel/detail/zero.hpp"
#include "rouse/channel/result.hpp"
#include "rouse/detail/deadline.hpp"
#include "rouse/detail/diagnostics.hpp"
#include "rouse/platform/deadline.hpp"

namespace rouse::channel {

// capacity() of an unbounded channel.
inline constexpr std::size_t unbounded_capacity = std::numeric_limits<std::size_t>::max();
// The largest capacity bounded() accepts (2^62 - 1 on 64-bit targets: a
// ring's positions carry lap bits above the index); more throws
// std::length_error. Any capacity whose ring cannot be allocated throws
// std::bad_alloc.
inline constexpr std::size_t max_capacity = std::numeric_limits<std::size_t>::max() / 4;

template <class T>
class sender;
template <class T>
class receiver;
template <class T>
class recv_case;
template <class T>
class send_case;

// How a bounded channel's ring hands out positions (capacity >= 1; a
// rendezvous channel has no ring). Both keep every property this header
// names; they differ in speed only (docs/channels.md "Choosing a ring" has
// the measurements).
//   compare_exchange  a position is claimed by a compare-exchange that sees
//                     its slot ready: one atomic read-modify-write per send
//                     and per receive; suits few threads running at once
//   ticket            a blocking send or receive takes its position with one
//                     fetch_add and waits on its own slot: two per value,
//                     but no retried compare-exchange on a shared line when
//                     many threads on many cores contend (folly's MPMCQueue
//                     design); a ticket holder that is descheduled holds up
//                     the next lap of its slot, so it suffers when threads
//                     outnumber cores
//   automatic         compare_exchange, until measurements on many cores say
//                     where the ticket ring wins
enum class ring : std::uint8_t { automatic, compare_exchange, ticket };

template <class T>
std::pair<sender<T>, receiver<T>> bounded(std::size_t capacity, ring r = ring::automatic);
template <class T>
std::pair<sender<T>, receiver<T>> unbounded();

namespace detail {

enum class flavor : std::uint8_t { array, ticket, list, zero };

// The shared state: handle counts, then the flavour's channel.
struct control_base {
  d::atomic<std::size_t> senders{1};
  d::atomic<std::size_t> receivers{1};
  d::atomic<std::uint32_t> one_side_gone{0};
};

template <class Chan>
struct control : control_base {
  template <class... Args>
  explicit control(Args&&... args) : chan(std::forward<Args>(args)...) {}
  Chan chan;
};

// A flavour-tagged pointer to the shared state, with the reference counting
// both handle types share.
template <class T>
class handle_base {
 protected:
  handle_base() = default;
  handle_base(control_base* c, flavor f) noexcept : ctl_(c), kind_(f) {}

  template <class F>
  decltype(auto) visit(F&& f) const {
    ROUSE_CHECK_USAGE(ctl_ != nullptr, "rouse::channel", "operation on an empty (moved-from) handle");
    switch (kind_) {
      case flavor::array:
        return f(static_cast<control<array_channel<T>>*>(ctl_)->chan);
      case flavor::ticket:
        return f(static_cast<control<ticket_channel<T>>*>(ctl_)->chan);
      case flavor::list:
        return f(static_cast<control<list_channel<T>>*>(ctl_)->chan);
      default:
        return f(static_cast<control<zero_channel<T>>*>(ctl_)->chan);
    }
  }

  // Called by the last handle of one side: close; by the last of both: free.
  void release_side(d::atomic<std::size_t> control_base::*count) noexcept {
    if (ctl_ == nullptr) return;
    // Ordering: acq_rel; the last handle's release sees every other
    // handle's operations before it closes or frees the state.
    if ((ctl_->*count).fetch_sub(1, std::memory_order_acq_rel) == 1) {
      visit([](auto& c) { c.close(); });
      // Ordering: acq_rel; the second side to get here frees the state,
      // after the first side's close.
      if (ctl_->one_side_gone.exchange(1, std::memory_order_acq_rel) == 1) destroy();
    }
    ctl_ = nullptr;
  }

  void destroy() noexcept {
    switch (kind_) {
      case flavor::array:
        delete static_cast<control<array_channel<T>>*>(ctl_);
        break;
      case flavor::ticket:
        delete static_cast<control<ticket_channel<T>>*>(ctl_);
        break;
      case flavor::list:
        delete static_cast<control<list_channel<T>>*>(ctl_);
        break;
      default:
        delete static_cast<control<zero_channel<T>>*>(ctl_);
        break;
    }
  }

  control_base* ctl_ = nullptr;
  flavor kind_ = flavor::array;

 public:
  // Whether the handle refers to a channel (false once moved from).
  explicit operator bool() const noexcept { return ctl_ != nullptr; }
  // Snapshots.
  [[nodiscard]] std::size_t size() const noexcept {
    return visit([](auto& c) -> std::size_t { return c.size(); });
  }
  [[nodiscard]] std::size_t capacity() const noexcept {
    if (kind_ == flavor::list) return unbounded_capacity;
    return visit([](auto& c) -> std::size_t {
      if constexpr (requires { c.capacity(); })
        return c.capacity();
      else
        return unbounded_capacity;
    });
  }
  [[nodiscard]] bool empty() const noexcept {
    return visit([](auto& c) -> bool { return c.is_empty(); });
  }
  [[nodiscard]] bool full() const noexcept {
    return visit([](auto& c) -> bool {
      if constexpr (requires { c.is_full(); })
        return c.is_full();
      else
        return false;
    });
  }
  [[nodiscard]] bool is_closed() const noexcept {
    return visit([](auto& c) -> bool { return c.is_closed(); });
  }
  // Closes the channel (see the header). True for the call that closed it.
  bool close() noexcept {
    return visit([](auto& c) -> bool { return c.close(); });
  }
  // Whether two handles refer to the same channel.
  friend bool operator==(const handle_base& a, const handle_base& b) noexcept { return a.ctl_ == b.ctl_; }

  template <class U>
  friend class channel::sender;
  template <class U>
  friend class channel::receiver;
  template <class U>
  friend class channel::recv_case;
  template <class U>
  friend class channel::send_case;
};

// Every timed channel operation converts its timeout here: platform's
// saturating conversion (duration::max() means no deadline). Every `*_until`
// makes its deadline with rouse::detail::deadline_at() (detail/deadline.hpp:
// platform::clock_deadline(), saturating: a deadline too far to hold in the
// clock's duration means no deadline).
using platform::deadline_after;

}  // namespace detail

// The sending handle. Copyable: every copy is another producer.
template <class T>
class sender : public detail::handle_base<T> {
  static_assert(rouse::detail::message_type<T>,
                "channel messages must be object types, nothrow move-constructible and nothrow destructible");
  using base = detail::handle_base<T>;

 public:
  using value_type = T;

  sender() = default;
  sender(const sender& o) noexcept : base(o.ctl_, o.kind_) {
    // Ordering: relaxed; a new reference from an existing one (as shared_ptr).
    if (this->ctl_) this->ctl_->senders.fetch_add(1, std::memory_order_relaxed);
  }
  sender(sender&& o) noexcept : base(std::exchange(o.ctl_, nullptr), o.kind_) {}
  sender& operator=(sender o) noexcept {
    swap(o);
    return *this;
  }
  ~sender() { this->release_side(&detail::control_base::senders); }
  void swap(sender& o) noexcept {
    std::swap(this->ctl_, o.ctl_);
    std::swap(this->kind_, o.kind_);
  }

  // Blocks while the channel is full (rendezvous: until a receiver takes it).
  send_result<T> send(T value) noexcept {
    return finish(this->visit([&](auto& c) { return c.send(value, rouse::detail::no_deadline{}); }), value);
  }
  // Never blocks.
  send_result<T> try_send(T value) noexcept {
    return finish(this->visit([&](auto& c) { return c.try_send(value); }), value);
  }
  template <class Rep, class Period>
  send_result<T> send_for(T value, std::chrono::duration<Rep, Period> timeout) noexcept {
    return send_until(std::move(value), detail::deadline_after(timeout));
  }
  template <class Clock, class Duration>
  send_result<T> send_until(T value, std::chrono::time_point<Clock, Duration> deadline) noexcept {
    // One path to finish(): g++ 12 at -O2 otherwise warns that the result's
    // optional value may be used uninitialized (-Wmaybe-uninitialized, a
    // false positive) where the result is assigned to an existing one.
    auto const d = rouse::detail::deadline_at(deadline);
    bool const unbounded = platform::is_unbounded(d.at);
    status const s = this->visit(
        [&](auto& c) { return unbounded ? c.send(value, rouse::detail::no_deadline{}) : c.send(value, d); });
    return finish(s, value);
  }

 private:
  template <class U>
  friend std::pair<sender<U>, receiver<U>> bounded(std::size_t, ring);
  template <class U>
  friend std::pair<sender<U>, receiver<U>> unbounded();
  sender(detail::control_base* c, detail::flavor f) noexcept : base(c, f) {}

  static send_result<T> finish(status s, T& value) noexcept {
    if (s == status::ok) return send_result<T>();
    return send_result<T>(s, std::move(value));
  }
};

// The receiving handle. Copyable: every copy is another consumer. A range:
// `for (T& v : rx)` receives until the channel is closed and drained.
template <class T>
class receiver : public detail::handle_base<T> {
  static_assert(rouse::detail::message_type<T>,
                "channel messages must be object types, nothrow move-constructible and nothrow destructible");
  using base = detail::handle_base<T>;

 public:
  using value_type = T;

  receiver() = default;
  receiver(const receiver& o) noexcept : base(o.ctl_, o.kind_) {
    // Ordering: relaxed; a new reference from an existing one.
    if (this->ctl_) this->ctl_->receivers.fetch_add(1, std::memory_order_relaxed);
  }
  receiver(receiver&& o) noexcept : base(std::exchange(o.ctl_, nullptr), o.kind_) {}
  receiver& operator=(receiver o) noexcept {
    swap(o);
    return *this;
  }
  ~receiver() { this->release_side(&detail::control_base::receivers); }
  void swap(receiver& o) noexcept {
    std::swap(this->ctl_, o.ctl_);
    std::swap(this->kind_, o.kind_);
  }

  // Blocks while the channel is empty and open.
  recv_result<T> recv() noexcept {
    return this->visit([](auto& c) { return c.recv(rouse::detail::no_deadline{}); });
  }
  recv_result<T> try_recv() noexcept {
    return this->visit([](auto& c) { return c.try_recv(); });
  }
  template <class Rep, class Period>
  recv_result<T> recv_for(std::chrono::duration<Rep, Period> timeout) noexcept {
    return recv_until(detail::deadline_after(timeout));
  }
  template <class Clock, class Duration>
  recv_result<T> recv_until(std::chrono::time_point<Clock, Duration> deadline) noexcept {
    auto const d = rouse::detail::deadline_at(deadline);
    if (platform::is_unbounded(d.at)) return recv();
    return this->visit([&](auto& c) { return c.recv(d); });
  }

  // Input iterator over received values; equal to end() once recv() says
  // closed.
  class iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = T;
    using difference_type = std::ptrdiff_t;
    using reference = T&;
    using pointer = T*;

    iterator() = default;
    explicit iterator(receiver* rx) : rx_(rx) { ++*this; }
    T& operator*() const noexcept { return *current_; }
    T* operator->() const noexcept { return &*current_; }
    iterator& operator++() {
      auto r = rx_->recv();
      if (r.has_value())
        current_.emplace(std::move(*r));
      else
        current_.reset();
      return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& it, std::default_sentinel_t) noexcept { return !it.current_; }

   private:
    receiver* rx_ = nullptr;
    mutable std::optional<T> current_;
  };
  iterator begin() { return iterator(this); }
  std::default_sentinel_t end() const noexcept { return {}; }

  // For tests, on a closed channel only: as if `n` more receives had run
  // (each says closed; on ring::ticket each also moves the receivers'
  // ticket count on, which no other ring has).
  void skip_receives_for_testing(std::uint64_t n) noexcept {
    this->visit([n](auto& c) {
      if constexpr (requires { c.skip_receives_for_testing(n); }) c.skip_receives_for_testing(n);
    });
  }

 private:
  template <class U>
  friend std::pair<sender<U>, receiver<U>> bounded(std::size_t, ring);
  template <class U>
  friend std::pair<sender<U>, receiver<U>> unbounded();
  receiver(detail::control_base* c, detail::flavor f) noexcept : base(c, f) {}
};

static_assert(sizeof(sender<int>) == 16 && sizeof(receiver<int>) == 16);

// A channel that holds at most `capacity` values; capacity 0 is a rendezvous
// channel (every send waits for a receive). `r`: the ring (see `ring`).
// Throws std::length_error above max_capacity, std::bad_alloc when the ring
// cannot be allocated.
template <class T>
std::pair<sender<T>, receiver<T>> bounded(std::size_t capacity, ring r) {
  if (capacity > max_capacity) throw std::length_error("rouse::channel::bounded: capacity above max_capacity");
  detail::control_base* c;
  detail::flavor f;
  if (capacity == 0) {
    c = new detail::control<detail::zero_channel<T>>();
    f = detail::flavor::zero;
  } else if (r == ring::ticket) {
    c = new detail::control<detail::ticket_channel<T>>(capacity);
    f = detail::flavor::ticket;
  } else {
    c = new detail::control<detail::array_channel<T>>(capacity);
    f = detail::flavor::array;
  }
  return {sender<T>(c, f), receiver<T>(c, f)};
}

// A channel without a bound: send never blocks (memory permitting).
template <class T>
std::pair<sender<T>, receiver<T>> unbounded() {
  detail::control_base* c = new detail::control<detail::list_channel<T>>();
  return {sender<T>(c, detail::flavor::list), receiver<T>(c, detail::flavor::list)};
}

}  // namespace rouse::channel
