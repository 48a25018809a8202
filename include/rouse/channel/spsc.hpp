// rouse/channel/spsc.hpp — a bounded channel for one producer and one consumer.
//
//   auto [tx, rx] = rouse::channel::spsc<T>(1024);
//   tx.send(v);                      // blocks while full; status closed if closed
//   for (auto& v : rx) use(v);       // until closed and drained
//
// Purpose: the fastest way to stream values from one thread to another. A
// ring of slots, each with a stamp that says whether it is full for the
// current lap (FastForward's in-slot flags, the stamps of Vyukov's bounded
// queue without its CAS): each side reads only the slot it is at, so the
// only cache lines that travel between the two threads are the slots
// themselves — no shared index is read on the fast path. Plus blocking: a
// side that finds its slot not ready polls a little (yielding), then sleeps
// on its own futex word, and the other side wakes it only if it announced
// that it sleeps. While both sides are busy a message costs no atomic
// read-modify-write, no fence instruction and no system call.
//
// Why stamps and not the cached indices of rigtorp's SPSCQueue / folly's
// ProducerConsumerQueue (this channel's first version): when the receiver
// keeps up with the sender, a cached copy of the sender's index runs out
// after every message or two, and each refresh takes the index's line from
// the sender, whose next store takes it back; the receiver never sees
// "empty", so it never backs off (the measurements:
// docs/channels-oneshot-spsc.md).
//
// Lifecycle
// - spsc<T>(capacity) allocates the shared state and returns a sender and a
//   receiver: move-only handles, each used by one thread at a time (moving a
//   handle to another thread is fine). The state is freed when both are gone:
//   each handle's last access is the RMW that gives up its share (its close
//   and its wake of the other side come before it), so either may go away
//   at any time.
// - Sender: send (blocks while full), try_send (status full), send_for /
//   send_until (status timed_out, never early). A failed send hands the value
//   back (send_result::value()). After close, sends fail with closed.
// - Receiver: recv, try_recv (status empty), recv_for / recv_until. After
//   close the receiver drains what was sent before the close, then gets
//   closed. The receiver is a range: `for (auto& v : rx)` runs until closed
//   and drained.
// - close() on either handle, or either handle going away, closes the
//   channel and wakes the other side. Values sent and never received are
//   destroyed exactly once, when the shared state is freed.
// - A send that races with the receiver's close() may still succeed; its
//   value is then received by a later recv() or destroyed with the channel.
//   A send by the sender after its own close() always fails.
//
// Misuse and what happens: capacity 0 is diagnosed in debug builds (release
// builds use 1). Operations on a moved-from handle are diagnosed in debug
// builds and report closed in release builds. Two threads using one handle at
// once is a data race (not diagnosed). T must be nothrow-move-constructible
// and nothrow-destructible (static_assert); it needs no default constructor.
//
// sizeof: each handle is one word, the state pointer (static_assert): each
// side's position and slot index live on its own line of the state, so
// handles kept side by side (a std::pair on one stack) share no written line. The state is three 128-byte lines
// plus the ring: exactly `capacity` slots, each a stamp word and a T.
// Fairness: one producer, one consumer; FIFO.
// Cost with nobody waiting: send is a check of `closed`, an acquire load of
// its slot's stamp, the slot write, a release store of the stamp, a relaxed
// store of `tail` (its own line, for size()) and a load of the receiver's
// sleep word; recv is the mirror image. No system call.
// Blocking: a short backoff (spin, then yield), then announce sleep, pass an asymmetric
// heavy fence (membarrier(2) on Linux: a system call, paid only on the way to
// sleep) and sleep on the side's word. Waking costs the other side one
// exchange and one FUTEX_WAKE.
// Across processes: no.
//
// Words (the shared state):
//
//   word       line       written by            values
//   stamp[i]   slot i     sender: 2p -> 2p+1    2p: empty, ready for the send
//                         receiver: 2p+1 ->     at position p (p % capacity
//                           2(p+capacity)       == i); 2p+1: full, holds it
//   (Doubled so that "full at p" (odd) never equals "empty for the next
//   position in this slot" (even) — with capacity 1 that is p+1 both ways.)
//   tail       producer   sender (store, before next position to write (size());
//                         the stamp's)          stored before the stamp so that
//                                               a receiver never counts less
//                                               than it has received
//   head       consumer   receiver (store,      next position to read (size());
//                         before the stamp's)   likewise for the sender
//   rx_sleep   control    receiver: 0 -> 1,     1: the receiver sleeps or is
//                           1 -> 0 (withdraws)  about to (ring empty)
//                         sender, close(): 1 -> 0
//   tx_sleep   control    sender: 0 -> 1,       1: the sender sleeps or is
//                           1 -> 0 (withdraws)  about to (ring full)
//                         receiver, close(): 1 -> 0
//   closed     control    close(): 0 -> 1       1: no more sends
//   handles    control    handle destructors    live handles, 2 -> 1 -> 0 (free)
//
//   ring state       tail - head    sender's slot     receiver's slot
//   empty            0              empty: sends      empty: sleeps (rx_sleep = 1)
//   partly full      1..cap-1       empty: sends      full: receives
//   full             cap            full: sleeps      full: receives
//   closed, data     > 0            fails (closed)    receives (drains)
//   closed, drained  0              fails (closed)    gets closed
// (Each side's state is its own slot's stamp; tail and head only serve
// size() and the destructor.)
//
// The sleep handshake is a store->load (Dekker) pair on each side:
//   sender:   (1) store stamp 2p+1 ; light fence (A) ; load rx_sleep
//   receiver: (2) store rx_sleep = 1 ; heavy fence (B) ; load stamp, closed
// Either the sender sees rx_sleep = 1 (and wakes the receiver), or the
// receiver sees the new stamp (and does not sleep). Symmetrically for the
// receiver's stamp store and tx_sleep, and for close() (store closed ; light
// fence ; load both sleep words). The light fence is a compiler barrier and the heavy one a
// membarrier(2) where supported (see platform/fence.hpp), both seq_cst fences
// otherwise.
//
// Memory ordering: everything the sender did before a send() happens-before
// the recv() that returns that value (release store of the slot's stamp,
// acquire load of it). A receiver's move-out of a slot happens-before the
// sender reuses it (release store of the next lap's stamp, acquire load of
// it). close() happens-before the
// other side's operation that reports closed (release RMW on closed, acquire
// load); everything sent before the sender's close() is received first.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

#include "rouse/channel/result.hpp"
#include "rouse/detail/channel_slot.hpp"
#include "rouse/detail/deadline.hpp"
#include "rouse/detail/diagnostics.hpp"
#include "rouse/detail/spin.hpp"
#include "rouse/detail/sync_types.hpp"
#include "rouse/platform/deadline.hpp"

namespace rouse::channel {

template <class T>
class spsc_sender;
template <class T>
class spsc_receiver;

namespace detail {

// 128 bytes, not 64: Intel's adjacent-line prefetcher pulls cache lines in
// pairs, so two hot words 64 bytes apart still ping-pong (rigtorp pads the
// same way).
inline constexpr std::size_t spsc_line = 128;

// How long a side polls before it sleeps: rouse::detail::spsc_spin (one
// check after a pause, then at least 16 checks each after a sched_yield, and
// more until 4 x platform::wake_cost() within [2, 200] us has passed: a side
// that has just woken the other must outlast the other's wake-up, or the two
// sleep by turns; docs/tuning.md). A timed operation stops at its deadline
// instead, checked in the yield polls.

// A slot: its stamp (see "Words") and storage for one value.
template <class T>
struct spsc_slot {
  rouse::detail::atomic<std::size_t> stamp{0};
  rouse::detail::channel_slot<T> value;
};

template <class T>
struct spsc_shared {
  explicit spsc_shared(std::size_t cap) : capacity(cap), slots(new spsc_slot<T>[cap]) {
    // Ordering: relaxed — the handles reach other threads through a
    // happens-before edge (thread start, a mutex) the user provides.
    for (std::size_t i = 0; i < cap; ++i) slots[i].stamp.store(2 * i, std::memory_order_relaxed);
  }

  spsc_shared(const spsc_shared&) = delete;
  spsc_shared& operator=(const spsc_shared&) = delete;

  // Destroys the values sent and never received, once.
  ~spsc_shared() {
    // Ordering: relaxed — the last handle's acq_rel decrement of `handles`
    // ordered both sides' accesses before this.
    std::size_t const end = tail.load(std::memory_order_relaxed);
    std::size_t p = head.load(std::memory_order_relaxed);
    // From the receiver's slot index, not head % capacity: positions may
    // wrap (2^32 messages on a 32-bit target) where the index does not.
    for (std::size_t i = rx_index; p != end; ++p) {
      slots[i].value.destroy();
      if (++i == capacity) i = 0;
    }
    delete[] slots;
  }

  // Wakes the receiver if it announced sleep. Called after every publication
  // of a full slot (and by close()).
  void notify_receiver() noexcept {
    if (!rouse::detail::model_fault_on(rouse::detail::model_fault::spsc_notify_without_fence))
      rouse::detail::asymmetric_light_fence();  // (A) pairs with (B) in wait_for_data()
    // Ordering: relaxed — the fence pair orders it (see the header).
    if (rx_sleep.load(std::memory_order_relaxed) != 0) [[unlikely]]
      wake(rx_sleep);
  }

  // Wakes the sender if it announced sleep. Called after every freeing of a slot.
  void notify_sender() noexcept {
    rouse::detail::asymmetric_light_fence();  // (C) pairs with (D) in wait_for_room()
    // Ordering: relaxed — the fence pair orders it.
    if (tx_sleep.load(std::memory_order_relaxed) != 0) [[unlikely]]
      wake(tx_sleep);
  }

  [[gnu::noinline, gnu::cold]] static void wake(rouse::detail::atomic<std::uint32_t>& sleep_word) noexcept {
    // 1 -> 0: one waker per sleep; a sleeper that sees 0 does not sleep.
    // Ordering: relaxed — the data edge is the stamp; this only decides who
    // makes the system call.
    if (sleep_word.exchange(0, std::memory_order_relaxed) != 0) rouse::detail::wake_one(sleep_word);
  }

  void close() noexcept {
    // Ordering: release pairs with the acquire loads of `closed` in the
    // other side: what this side sent before close() is seen by the receiver
    // that sees closed. acq_rel (not release) keeps it an RMW TSan orders.
    closed.exchange(1, std::memory_order_acq_rel);
    rouse::detail::asymmetric_light_fence();  // (E) pairs with (B) and (D)
    // Ordering: relaxed — the fence pair orders them.
    if (rx_sleep.load(std::memory_order_relaxed) != 0) wake(rx_sleep);
    if (tx_sleep.load(std::memory_order_relaxed) != 0) wake(tx_sleep);
  }

  // A handle lets go; the last one frees the state.
  void release() noexcept {
    // Ordering: acq_rel — each handle's accesses happen-before the free.
    if (handles.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  // Producer line: the sender's position (written after every send, read
  // by the receiver only in size()) and slot index (sender only). It stays
  // in the sender's cache.
  alignas(spsc_line) rouse::detail::atomic<std::size_t> tail{0};
  std::size_t tx_index = 0;  // tail % capacity
  // Consumer line: the same for the receiver.
  alignas(spsc_line) rouse::detail::atomic<std::size_t> head{0};
  std::size_t rx_index = 0;  // head % capacity
  // Control line: read on every operation, written rarely.
  alignas(spsc_line) rouse::detail::atomic<std::uint32_t> rx_sleep{0};
  rouse::detail::atomic<std::uint32_t> tx_sleep{0};
  rouse::detail::atomic<std::uint32_t> closed{0};
  rouse::detail::atomic<std::uint32_t> handles{2};
  std::size_t const capacity;
  spsc_slot<T>* const slots;
};

}  // namespace detail

// The sending half. Move-only; used by one thread at a time.
template <class T>
class spsc_sender {
  static_assert(std::is_nothrow_move_constructible_v<T> && std::is_nothrow_destructible_v<T>,
                "rouse::channel::spsc<T> needs a nothrow move constructor and destructor");
  using shared = detail::spsc_shared<T>;

 public:
  spsc_sender() noexcept = default;
  spsc_sender(spsc_sender&& other) noexcept : shared_(std::exchange(other.shared_, nullptr)) {}
  spsc_sender& operator=(spsc_sender&& other) noexcept {
    if (this != &other) {
      let_go();
      shared_ = std::exchange(other.shared_, nullptr);
    }
    return *this;
  }
  spsc_sender(const spsc_sender&) = delete;
  spsc_sender& operator=(const spsc_sender&) = delete;
  ~spsc_sender() { let_go(); }

  // Sends `value`, waiting while the ring is full. ok, or closed (value back).
  send_result<T> send(T value) {
    if (!usable()) return send_result<T>(status::closed, std::move(value));
    if (try_push(value)) return send_result<T>();
    return send_slow(std::move(value), rouse::detail::no_deadline{});
  }

  // Never blocks: ok, full, or closed (value back on failure).
  send_result<T> try_send(T value) {
    if (!usable()) return send_result<T>(status::closed, std::move(value));
    if (try_push(value)) return send_result<T>();
    // Ordering: acquire pairs with close()'s release.
    bool const closed = shared_->closed.load(std::memory_order_acquire) != 0;
    return send_result<T>(closed ? status::closed : status::full, std::move(value));
  }

  // As send(), but gives up at `deadline` with timed_out (never early).
  template <class Clock, class Duration>
  send_result<T> send_until(T value, const std::chrono::time_point<Clock, Duration>& deadline) {
    if (!usable()) return send_result<T>(status::closed, std::move(value));
    if (try_push(value)) return send_result<T>();
    // Saturating (platform/deadline.hpp): too far to hold means no deadline.
    auto const at = rouse::detail::deadline_at(deadline);
    if (platform::is_unbounded(at.at)) return send_slow(std::move(value), rouse::detail::no_deadline{});
    return send_slow(std::move(value), at);
  }

  template <class Rep, class Period>
  send_result<T> send_for(T value, const std::chrono::duration<Rep, Period>& timeout) {
    if (!usable()) return send_result<T>(status::closed, std::move(value));
    if (try_push(value)) return send_result<T>();
    if (timeout <= timeout.zero()) {
      // Ordering: acquire pairs with close()'s release.
      if (shared_->closed.load(std::memory_order_acquire) != 0) return send_result<T>(status::closed, std::move(value));
      return send_result<T>(status::timed_out, std::move(value));
    }
    auto const deadline = platform::deadline_after(timeout);
    if (platform::is_unbounded(deadline)) return send_slow(std::move(value), rouse::detail::no_deadline{});
    return send_slow(std::move(value), rouse::detail::deadline_at(deadline));
  }

  // Closes the channel: later sends fail, the receiver drains then gets closed.
  void close() noexcept {
    if (shared_ != nullptr) shared_->close();
  }

  [[nodiscard]] bool is_closed() const noexcept {
    // Ordering: relaxed — a snapshot.
    return shared_ == nullptr || shared_->closed.load(std::memory_order_relaxed) != 0;
  }
  // Values in the ring now (a snapshot).
  [[nodiscard]] std::size_t size() const noexcept {
    if (shared_ == nullptr) return 0;
    // Ordering: relaxed — a snapshot; tail is exact on this side (its only writer).
    return shared_->tail.load(std::memory_order_relaxed) - shared_->head.load(std::memory_order_relaxed);
  }
  [[nodiscard]] std::size_t capacity() const noexcept { return shared_ == nullptr ? 0 : shared_->capacity; }

 private:
  template <class U>
  friend std::pair<spsc_sender<U>, spsc_receiver<U>> spsc(std::size_t);
  explicit spsc_sender(shared* s) noexcept : shared_(s) {}

  bool usable() const noexcept {
    ROUSE_CHECK_USAGE(shared_ != nullptr, "rouse::channel::spsc_sender", "use of a moved-from sender");
    return shared_ != nullptr;
  }

  // One attempt. True when the value was published (it is then moved from).
  // False when full or closed (the value is untouched).
  bool try_push(T& value) noexcept {
    shared* const s = shared_;
    // Ordering: relaxed — a send racing a close may go either way; the
    // receiver's acquire of `closed` orders what it must see.
    if (s->closed.load(std::memory_order_relaxed) != 0) [[unlikely]]
      return false;
    if (!room()) return false;
    // Ordering: relaxed — the sender is the only writer of tail.
    std::size_t const tail = s->tail.load(std::memory_order_relaxed);
    auto& slot = s->slots[s->tx_index];
    slot.value.construct(std::move(value));
    // Ordering: relaxed — for size() and the destructor (the last handle's
    // acq_rel release orders it before the destructor); stored before the
    // stamp's release so that a receiver that took this value also sees it
    // counted in tail (its size() never goes below zero).
    s->tail.store(tail + 1, std::memory_order_relaxed);
    // Ordering: release publishes the value to the receiver's acquire load
    // of the stamp.
    slot.stamp.store(2 * tail + 1, std::memory_order_release);  // (1)
    if (++s->tx_index == s->capacity) s->tx_index = 0;
    s->notify_receiver();
    return true;
  }

  // True when our slot is empty for this lap (the receiver has freed it).
  bool room() const noexcept {
    // Ordering: acquire pairs with the receiver's release store of the
    // stamp: its move-out of the slot happens-before we overwrite it.
    shared* const s = shared_;
    // Ordering: relaxed load of tail — the sender is its only writer.
    return s->slots[s->tx_index].stamp.load(std::memory_order_acquire) == 2 * s->tail.load(std::memory_order_relaxed);
  }

  // Spin, then sleep on tx_sleep until there is room, the channel closes, or
  // the deadline passes.
  template <class Deadline>
  [[gnu::noinline, gnu::cold]] send_result<T> send_slow(T value, const Deadline& deadline) {
    shared* const s = shared_;
    rouse::detail::spinner spin(rouse::detail::spsc_spin);
    while (spin.next()) {
      if (try_push(value)) return send_result<T>();
      // Ordering: acquire pairs with close()'s release.
      if (s->closed.load(std::memory_order_acquire) != 0) return send_result<T>(status::closed, std::move(value));
      if (deadline.expired()) break;  // the sleep loop reports timed_out
    }
    for (;;) {
      s->tx_sleep.store(1, std::memory_order_relaxed);  // (D) store
      rouse::detail::asymmetric_heavy_fence();          // (D) pairs with (C) and (E)
      // Ordering: acquire, as in try_push() and for close().
      bool const closed = s->closed.load(std::memory_order_acquire) != 0;
      if (!room() && !closed) {
        if (rouse::detail::wait_until(s->tx_sleep, 1, deadline) == rouse::detail::wait_result::timed_out) {
          s->tx_sleep.store(0, std::memory_order_relaxed);
          if (try_push(value)) return send_result<T>();
          // Ordering: acquire pairs with close()'s release.
          if (s->closed.load(std::memory_order_acquire) != 0) return send_result<T>(status::closed, std::move(value));
          return send_result<T>(status::timed_out, std::move(value));
        }
      }
      // Withdraw the announcement (a waker may have done so already).
      // Ordering: relaxed — it only spares the receiver a useless wake.
      s->tx_sleep.store(0, std::memory_order_relaxed);
      if (try_push(value)) return send_result<T>();
      // Ordering: acquire pairs with close()'s release.
      if (s->closed.load(std::memory_order_acquire) != 0) return send_result<T>(status::closed, std::move(value));
    }
  }

  void let_go() noexcept {
    if (shared_ == nullptr) return;
    shared* const s = std::exchange(shared_, nullptr);
    s->close();
    s->release();
  }

  // The only member: the sender's position and slot live on the producer
  // line of the shared state, so a handle kept beside the receiver's (a
  // std::pair on one stack) is never written on the fast path and shares
  // no written line with it.
  shared* shared_ = nullptr;
};

// The receiving half. Move-only; used by one thread at a time. An input range.
template <class T>
class spsc_receiver {
  static_assert(std::is_nothrow_move_constructible_v<T> && std::is_nothrow_destructible_v<T>,
                "rouse::channel::spsc<T> needs a nothrow move constructor and destructor");
  using shared = detail::spsc_shared<T>;

 public:
  spsc_receiver() noexcept = default;
  spsc_receiver(spsc_receiver&& other) noexcept : shared_(std::exchange(other.shared_, nullptr)) {}
  spsc_receiver& operator=(spsc_receiver&& other) noexcept {
    if (this != &other) {
      let_go();
      shared_ = std::exchange(other.shared_, nullptr);
    }
    return *this;
  }
  spsc_receiver(const spsc_receiver&) = delete;
  spsc_receiver& operator=(const spsc_receiver&) = delete;
  ~spsc_receiver() { let_go(); }

  // Waits for a value. ok, or closed (closed and drained).
  recv_result<T> recv() {
    if (!usable()) return recv_result<T>(status::closed);
    if (ready()) return pop();
    return recv_slow(rouse::detail::no_deadline{});
  }

  // Never blocks: ok, empty, or closed (closed and drained).
  recv_result<T> try_recv() {
    if (!usable()) return recv_result<T>(status::closed);
    if (ready()) return pop();
    return recv_result<T>(drained_and_closed() ? status::closed : status::empty);
  }

  template <class Clock, class Duration>
  recv_result<T> recv_until(const std::chrono::time_point<Clock, Duration>& deadline) {
    if (!usable()) return recv_result<T>(status::closed);
    if (ready()) return pop();
    // Saturating (platform/deadline.hpp): too far to hold means no deadline.
    auto const at = rouse::detail::deadline_at(deadline);
    if (platform::is_unbounded(at.at)) return recv_slow(rouse::detail::no_deadline{});
    return recv_slow(at);
  }

  template <class Rep, class Period>
  recv_result<T> recv_for(const std::chrono::duration<Rep, Period>& timeout) {
    if (!usable()) return recv_result<T>(status::closed);
    if (ready()) return pop();
    if (timeout <= timeout.zero()) {
      if (drained_and_closed()) return recv_result<T>(status::closed);
      return recv_result<T>(status::timed_out);
    }
    auto const deadline = platform::deadline_after(timeout);
    if (platform::is_unbounded(deadline)) return recv_slow(rouse::detail::no_deadline{});
    return recv_slow(rouse::detail::deadline_at(deadline));
  }

  // Closes the channel: later sends fail; values already sent stay receivable.
  void close() noexcept {
    if (shared_ != nullptr) shared_->close();
  }

  [[nodiscard]] bool is_closed() const noexcept {
    // Ordering: relaxed — a snapshot.
    return shared_ == nullptr || shared_->closed.load(std::memory_order_relaxed) != 0;
  }
  [[nodiscard]] std::size_t size() const noexcept {
    if (shared_ == nullptr) return 0;
    // Ordering: relaxed — a snapshot; head is exact on this side (its only writer).
    return shared_->tail.load(std::memory_order_relaxed) - shared_->head.load(std::memory_order_relaxed);
  }
  [[nodiscard]] std::size_t capacity() const noexcept { return shared_ == nullptr ? 0 : shared_->capacity; }

  // Input iteration: each step is a recv(); the range ends when the channel is
  // closed and drained.
  class iterator {
   public:
    using value_type = T;
    using difference_type = std::ptrdiff_t;
    using iterator_concept = std::input_iterator_tag;

    iterator() = default;
    iterator(iterator&&) noexcept = default;
    iterator& operator=(iterator&&) noexcept = default;

    T& operator*() const noexcept { return *current_; }
    T* operator->() const noexcept { return &*current_; }
    iterator& operator++() {
      advance();
      return *this;
    }
    void operator++(int) { advance(); }
    friend bool operator==(const iterator& it, std::default_sentinel_t) noexcept { return !it.current_; }

   private:
    friend class spsc_receiver;
    explicit iterator(spsc_receiver* rx) : rx_(rx) { advance(); }
    void advance() {
      current_.reset();
      if (rx_ == nullptr) return;
      auto r = rx_->recv();
      if (r) current_.emplace(*std::move(r));
    }

    spsc_receiver* rx_ = nullptr;
    mutable std::optional<T> current_;
  };

  iterator begin() { return iterator(this); }
  std::default_sentinel_t end() const noexcept { return {}; }

 private:
  template <class U>
  friend std::pair<spsc_sender<U>, spsc_receiver<U>> spsc(std::size_t);
  explicit spsc_receiver(shared* s) noexcept : shared_(s) {}

  bool usable() const noexcept {
    ROUSE_CHECK_USAGE(shared_ != nullptr, "rouse::channel::spsc_receiver", "use of a moved-from receiver");
    return shared_ != nullptr;
  }

  // True when our slot holds this lap's value.
  bool ready() const noexcept {
    // Ordering: acquire pairs with the sender's release store of the stamp (1).
    shared* const s = shared_;
    // Ordering: relaxed load of head — the receiver is its only writer.
    return s->slots[s->rx_index].stamp.load(std::memory_order_acquire) ==
           2 * s->head.load(std::memory_order_relaxed) + 1;
  }

  // After ready() said no: closed and nothing left? Re-reads its slot's
  // stamp after seeing closed, so everything sent before the close is
  // received first.
  bool drained_and_closed() noexcept {
    // Ordering: acquire pairs with close()'s release.
    if (shared_->closed.load(std::memory_order_acquire) == 0) return false;
    return !ready();
  }

  recv_result<T> pop() noexcept {
    shared* const s = shared_;
    // Ordering: relaxed — the receiver is the only writer of head.
    std::size_t const head = s->head.load(std::memory_order_relaxed);
    auto& slot = s->slots[s->rx_index];
    recv_result<T> r(std::in_place, std::move(slot.value.get()));
    slot.value.destroy();
    // Ordering: relaxed — for size() and the destructor; before the stamp's
    // release, so a sender that reuses the slot sees the position freed
    // (its size() never exceeds the capacity).
    s->head.store(head + 1, std::memory_order_relaxed);
    // Ordering: release: the slot's move-out happens-before the sender's
    // acquire load of the stamp that lets it reuse the slot (next lap).
    slot.stamp.store(2 * (head + s->capacity), std::memory_order_release);
    if (++s->rx_index == s->capacity) s->rx_index = 0;
    s->notify_sender();
    return r;
  }

  template <class Deadline>
  [[gnu::noinline, gnu::cold]] recv_result<T> recv_slow(const Deadline& deadline) {
    shared* const s = shared_;
    rouse::detail::spinner spin(rouse::detail::spsc_spin);
    while (spin.next()) {
      if (ready()) return pop();
      if (drained_and_closed()) return recv_result<T>(status::closed);
      if (deadline.expired()) break;  // the sleep loop reports timed_out
    }
    for (;;) {
      s->rx_sleep.store(1, std::memory_order_relaxed);  // (2) store
      rouse::detail::asymmetric_heavy_fence();          // (B) pairs with (A) and (E)
      if (!ready() && !drained_and_closed_after_fence()) {
        if (rouse::detail::wait_until(s->rx_sleep, 1, deadline) == rouse::detail::wait_result::timed_out) {
          s->rx_sleep.store(0, std::memory_order_relaxed);
          if (ready()) return pop();
          if (drained_and_closed()) return recv_result<T>(status::closed);
          return recv_result<T>(status::timed_out);
        }
      }
      // Withdraw the announcement (a waker may have done so already).
      // Ordering: relaxed — it only spares the sender a useless wake.
      s->rx_sleep.store(0, std::memory_order_relaxed);
      if (ready()) return pop();
      if (drained_and_closed()) return recv_result<T>(status::closed);
    }
  }

  // The closed check inside the sleep handshake: same as drained_and_closed()
  // (ready() already said empty).
  bool drained_and_closed_after_fence() noexcept {
    // Ordering: acquire pairs with close()'s release.
    return shared_->closed.load(std::memory_order_acquire) != 0;
  }

  void let_go() noexcept {
    if (shared_ == nullptr) return;
    shared* const s = std::exchange(shared_, nullptr);
    s->close();
    s->release();
  }

  // The only member (see spsc_sender).
  shared* shared_ = nullptr;
};

static_assert(sizeof(spsc_sender<int>) == sizeof(void*));
static_assert(sizeof(spsc_receiver<int>) == sizeof(void*));
static_assert(alignof(detail::spsc_shared<int>) == detail::spsc_line);

// Creates a channel of `capacity` (>= 1) values for one sender and one receiver.
template <class T>
std::pair<spsc_sender<T>, spsc_receiver<T>> spsc(std::size_t capacity) {
  ROUSE_CHECK_USAGE(capacity >= 1, "rouse::channel::spsc", "capacity must be at least 1");
  if (capacity == 0) capacity = 1;
  auto* const s = new detail::spsc_shared<T>(capacity);
  return {spsc_sender<T>(s), spsc_receiver<T>(s)};
}

}  // namespace rouse::channel
