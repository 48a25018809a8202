// rouse/channel/spsc.hpp — a bounded channel for one producer and one consumer.
//
//   auto [tx, rx] = rouse::channel::spsc<T>(1024);
//   tx.send(v);                      // blocks while full; status closed if closed
//   for (auto& v : rx) use(v);       // until closed and drained
//
// Purpose: the fastest way to stream values from one thread to another. A
// padded ring in which each side keeps a private copy of the other side's
// index (rigtorp's SPSCQueue, folly's ProducerConsumerQueue), plus blocking:
// a side that finds the ring full (sender) or empty (receiver) spins a little,
// then sleeps on its own futex word, and the other side wakes it only if it
// announced that it sleeps. While both sides are busy a message costs no
// atomic read-modify-write, no fence instruction and no system call.
//
// Lifecycle
// - spsc<T>(capacity) allocates the shared state and returns a sender and a
//   receiver: move-only handles, each used by one thread at a time (moving a
//   handle to another thread is fine). The state is freed when both are gone.
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
// sizeof: each handle is three words: the state pointer, its own position and
// its cached copy of the other side's position (static_assert). The state is
// three 128-byte lines plus the ring of `capacity` rounded up to a power of two
// slots of sizeof(T).
// Fairness: one producer, one consumer; FIFO.
// Cost with nobody waiting: send is a check of `closed`, a slot write, a
// release store of the tail and a load of the receiver's sleep word (all on
// lines that stay in cache); recv is the mirror image. The other side's
// index is read only when the cached copy says full / empty. No system call.
// Blocking: a short backoff (spin, then yield), then announce sleep, pass an asymmetric
// heavy fence (membarrier(2) on Linux: a system call, paid only on the way to
// sleep) and sleep on the side's word. Waking costs the other side one
// exchange and one FUTEX_WAKE.
// Across processes: no.
//
// Words (the shared state):
//
//   word       line       written by            values
//   tail       producer   sender (store)        next position to write
//   head       consumer   receiver (store)      next position to read
//   rx_sleep   control    receiver: 0 -> 1      1: the receiver sleeps or is
//                         sender: 1 -> 0        about to (ring empty)
//   tx_sleep   control    sender: 0 -> 1        1: the sender sleeps or is
//                         receiver: 1 -> 0      about to (ring full)
//   closed     control    close(): 0 -> 1       1: no more sends
//   handles    control    handle destructors    live handles, 2 -> 1 -> 0 (free)
//
//   ring state       tail - head    sender            receiver
//   empty            0              sends             sleeps (rx_sleep = 1)
//   partly full      1..cap-1       sends             receives
//   full             cap            sleeps (tx_sleep) receives
//   closed, data     > 0            fails (closed)    receives (drains)
//   closed, drained  0              fails (closed)    gets closed
//
// The sleep handshake is a store->load (Dekker) pair on each side:
//   sender:   (1) store tail   ; light fence (A) ; load rx_sleep
//   receiver: (2) store rx_sleep = 1 ; heavy fence (B) ; load tail, closed
// Either the sender sees rx_sleep = 1 (and wakes the receiver), or the
// receiver sees the new tail (and does not sleep). Symmetrically for head and
// tx_sleep, and for close() (store closed ; light fence ; load both sleep
// words). The light fence is a compiler barrier and the heavy one a
// membarrier(2) where supported (see platform/fence.hpp), both seq_cst fences
// otherwise.
//
// Memory ordering: everything the sender did before a send() happens-before
// the recv() that returns that value (release store of tail, acquire load of
// tail). A receiver's move-out of a slot happens-before the sender reuses it
// (release store of head, acquire load of head). close() happens-before the
// other side's operation that reports closed (release RMW on closed, acquire
// load); everything sent before the sender's close() is received first.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <optional>
#if !defined(ROUSE_MODEL_RELACY)
#include <thread>  // std::this_thread::yield in the backoff
#endif
#include <type_traits>
#include <utility>

#include "rouse/channel/result.hpp"
#include "rouse/detail/channel_slot.hpp"
#include "rouse/detail/diagnostics.hpp"
#include "rouse/detail/sync_types.hpp"
#include "rouse/platform/deadline.hpp"

#ifndef ROUSE_SPSC_SPIN_STEPS
#define ROUSE_SPSC_SPIN_STEPS 1
#endif
#ifndef ROUSE_SPSC_YIELD_STEPS
#define ROUSE_SPSC_YIELD_STEPS 16
#endif

namespace rouse::channel {

template <class T>
class spsc_sender;
template <class T>
class spsc_receiver;

namespace spsc_detail {

// 128 bytes, not 64: Intel's adjacent-line prefetcher pulls cache lines in
// pairs, so two hot words 64 bytes apart still ping-pong (rigtorp pads the
// same way).
inline constexpr std::size_t line = 128;

// How long a side polls before it sleeps: one check after a pause, then
// `yield_steps` checks each after a sched_yield. The yields matter more than
// the pauses on the 2-vCPU AMD EPYC VMs rouse is measured on: the peer is
// often on this side's own CPU (the kernel puts a woken thread beside its
// waker), where a pause spin burns the time slice the peer needs and a
// yield hands it over; on the other CPU a yield is a ~0.3 us system call
// that spaces the polls and lets a batch build up. Going to sleep costs far
// more there (~100-250 us per announce: membarrier, a wake of a halted vCPU,
// the waker's system call), and a side that slept once tends to make the
// two sleep in turn. Measured with channel.spsc (4M messages, medians,
// interleaved, vCPUs ~100 ns apart): 1, 2, 4, 8 pauses then 4 yields (the
// previous shape) 61-73 M msgs/s with 100-300 announces a run; 16 yields
// without pauses 104-153 M msgs/s with 0-10; in the ~400 ns placement
// 1, 2, 4, 8 pauses + 4 yields slept up to 2,200 times a run (7-12 M msgs/s).
#if defined(ROUSE_MODEL_RELACY)
inline constexpr int spin_steps = 1;  // each poll is a point Relacy must explore
inline constexpr int yield_steps = 0;
#else
inline constexpr int spin_steps = ROUSE_SPSC_SPIN_STEPS;
inline constexpr int yield_steps = ROUSE_SPSC_YIELD_STEPS;
#endif

// One step of the backoff before a re-check.
inline void backoff(int step) noexcept {
  if (step < spin_steps) {
    for (int i = 0; i < (1 << step); ++i) rouse::detail::spin_pause();
  } else {
#if defined(ROUSE_MODEL_RELACY)
    rouse::detail::spin_pause();
#else
    std::this_thread::yield();
#endif
  }
}

using clock_deadline = std::chrono::steady_clock::time_point;

inline std::size_t ring_size(std::size_t capacity) noexcept {
  std::size_t n = 1;
  while (n < capacity) n <<= 1;
  return n;
}

template <class T>
struct shared {
  explicit shared(std::size_t cap)
      : capacity(cap), mask(ring_size(cap) - 1), slots(new rouse::detail::channel_slot<T>[mask + 1]) {}

  shared(const shared&) = delete;
  shared& operator=(const shared&) = delete;

  // Destroys the values sent and never received, once.
  ~shared() {
    // Ordering: relaxed — the last handle's acq_rel decrement of `handles`
    // ordered both sides' accesses before this.
    std::size_t const end = tail.load(std::memory_order_relaxed);
    for (std::size_t p = head.load(std::memory_order_relaxed); p != end; ++p) slots[p & mask].destroy();
    delete[] slots;
  }

  // Wakes the receiver if it announced sleep. Called after every publication
  // of tail (and by close()).
  void notify_receiver() noexcept {
    rouse::detail::asymmetric_light_fence();  // (A) pairs with (B) in wait_for_data()
    // Ordering: relaxed — the fence pair orders it (see the header).
    if (rx_sleep.load(std::memory_order_relaxed) != 0) [[unlikely]]
      wake(rx_sleep);
  }

  // Wakes the sender if it announced sleep. Called after every store of head.
  void notify_sender() noexcept {
    rouse::detail::asymmetric_light_fence();  // (C) pairs with (D) in wait_for_room()
    // Ordering: relaxed — the fence pair orders it.
    if (tx_sleep.load(std::memory_order_relaxed) != 0) [[unlikely]]
      wake(tx_sleep);
  }

  [[gnu::noinline, gnu::cold]] static void wake(rouse::detail::atomic<std::uint32_t>& sleep_word) noexcept {
    // 1 -> 0: one waker per sleep; a sleeper that sees 0 does not sleep.
    // Ordering: relaxed — the data edge is tail/head; this only decides who
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

  // Producer line.
  alignas(line) rouse::detail::atomic<std::size_t> tail{0};
  // Consumer line.
  alignas(line) rouse::detail::atomic<std::size_t> head{0};
  // Control line: read on every operation, written rarely.
  alignas(line) rouse::detail::atomic<std::uint32_t> rx_sleep{0};
  rouse::detail::atomic<std::uint32_t> tx_sleep{0};
  rouse::detail::atomic<std::uint32_t> closed{0};
  rouse::detail::atomic<std::uint32_t> handles{2};
  std::size_t const capacity;
  std::size_t const mask;
  rouse::detail::channel_slot<T>* const slots;
};

}  // namespace spsc_detail

// The sending half. Move-only; used by one thread at a time.
template <class T>
class spsc_sender {
  static_assert(std::is_nothrow_move_constructible_v<T> && std::is_nothrow_destructible_v<T>,
                "rouse::channel::spsc<T> needs a nothrow move constructor and destructor");
  using shared = spsc_detail::shared<T>;

 public:
  spsc_sender() noexcept = default;
  spsc_sender(spsc_sender&& other) noexcept
      : shared_(std::exchange(other.shared_, nullptr)), tail_(other.tail_), head_cache_(other.head_cache_) {}
  spsc_sender& operator=(spsc_sender&& other) noexcept {
    if (this != &other) {
      let_go();
      shared_ = std::exchange(other.shared_, nullptr);
      tail_ = other.tail_;
      head_cache_ = other.head_cache_;
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
    return send_slow(std::move(value), static_cast<const spsc_detail::clock_deadline*>(nullptr));
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
    return send_slow(std::move(value), &deadline);
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
    if (platform::is_unbounded(deadline))
      return send_slow(std::move(value), static_cast<const spsc_detail::clock_deadline*>(nullptr));
    return send_slow(std::move(value), &deadline);
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
    // Ordering: relaxed — a snapshot; only tail_ is exact on this side.
    return tail_ - shared_->head.load(std::memory_order_relaxed);
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
    if (tail_ - head_cache_ == s->capacity) {
      // head_cache_ saves reading the receiver's line on every send: refresh
      // it only when the ring looks full.
      // Ordering: acquire pairs with the receiver's release store of head:
      // its move-out of the slot happens-before we overwrite it.
      head_cache_ = s->head.load(std::memory_order_acquire);
      if (tail_ - head_cache_ == s->capacity) return false;
    }
    s->slots[tail_ & s->mask].construct(std::move(value));
    ++tail_;
    // Ordering: release publishes the slot to the receiver's acquire load.
    s->tail.store(tail_, std::memory_order_release);  // (1)
    s->notify_receiver();
    return true;
  }

  // Spin, then sleep on tx_sleep until there is room, the channel closes, or
  // the deadline passes.
  template <class Deadline>
  [[gnu::noinline, gnu::cold]] send_result<T> send_slow(T value, const Deadline* deadline) {
    shared* const s = shared_;
    for (int step = 0; step < spsc_detail::spin_steps + spsc_detail::yield_steps; ++step) {
      spsc_detail::backoff(step);
      if (try_push(value)) return send_result<T>();
      // Ordering: acquire pairs with close()'s release.
      if (s->closed.load(std::memory_order_acquire) != 0) return send_result<T>(status::closed, std::move(value));
    }
    for (;;) {
      s->tx_sleep.store(1, std::memory_order_relaxed);  // (D) store
      rouse::detail::asymmetric_heavy_fence();           // (D) pairs with (C) and (E)
      // Ordering: acquire, as in try_push() and for close().
      bool const room = tail_ - s->head.load(std::memory_order_acquire) < s->capacity;
      bool const closed = s->closed.load(std::memory_order_acquire) != 0;
      if (!room && !closed) {
        if (deadline == nullptr) {
          rouse::detail::wait(s->tx_sleep, 1);
        } else if (rouse::detail::wait_until(s->tx_sleep, 1, *deadline) == rouse::detail::wait_result::timed_out) {
          s->tx_sleep.store(0, std::memory_order_relaxed);
          if (try_push(value)) return send_result<T>();
          // Ordering: acquire pairs with close()'s release.
          if (s->closed.load(std::memory_order_acquire) != 0)
            return send_result<T>(status::closed, std::move(value));
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

  shared* shared_ = nullptr;
  std::size_t tail_ = 0;        // our own position: we are the only writer of tail
  std::size_t head_cache_ = 0;  // the receiver's position when we last looked
};

// The receiving half. Move-only; used by one thread at a time. An input range.
template <class T>
class spsc_receiver {
  static_assert(std::is_nothrow_move_constructible_v<T> && std::is_nothrow_destructible_v<T>,
                "rouse::channel::spsc<T> needs a nothrow move constructor and destructor");
  using shared = spsc_detail::shared<T>;

 public:
  spsc_receiver() noexcept = default;
  spsc_receiver(spsc_receiver&& other) noexcept
      : shared_(std::exchange(other.shared_, nullptr)), head_(other.head_), tail_cache_(other.tail_cache_) {}
  spsc_receiver& operator=(spsc_receiver&& other) noexcept {
    if (this != &other) {
      let_go();
      shared_ = std::exchange(other.shared_, nullptr);
      head_ = other.head_;
      tail_cache_ = other.tail_cache_;
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
    return recv_slow(static_cast<const spsc_detail::clock_deadline*>(nullptr));
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
    return recv_slow(&deadline);
  }

  template <class Rep, class Period>
  recv_result<T> recv_for(const std::chrono::duration<Rep, Period>& timeout) {
    if (!usable()) return recv_result<T>(status::closed);
    if (ready()) return pop();
    if (timeout <= timeout.zero()) {
      if (drained_and_closed()) return recv_result<T>(status::closed);
      return recv_result<T>(status::timed_out);
    }
    auto const now = std::chrono::steady_clock::now();
    if (timeout >= spsc_detail::clock_deadline::max() - now)
      return recv_slow(static_cast<const spsc_detail::clock_deadline*>(nullptr));
    auto const deadline = now + std::chrono::ceil<spsc_detail::clock_deadline::duration>(timeout);
    return recv_slow(&deadline);
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
    // Ordering: relaxed — a snapshot; only head_ is exact on this side.
    return shared_->tail.load(std::memory_order_relaxed) - head_;
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

  // True when a value is there to pop.
  bool ready() noexcept {
    if (head_ != tail_cache_) return true;
    // tail_cache_ saves reading the sender's line on every recv: refresh it
    // only when the ring looks empty.
    // Ordering: acquire pairs with the sender's release store of tail (1).
    tail_cache_ = shared_->tail.load(std::memory_order_acquire);
    return head_ != tail_cache_;
  }

  // After ready() said no: closed and nothing left? Re-reads tail after
  // seeing closed, so everything sent before the close is received first.
  bool drained_and_closed() noexcept {
    // Ordering: acquire pairs with close()'s release.
    if (shared_->closed.load(std::memory_order_acquire) == 0) return false;
    return !ready();
  }

  recv_result<T> pop() noexcept {
    shared* const s = shared_;
    auto& slot = s->slots[head_ & s->mask];
    recv_result<T> r(std::in_place, std::move(slot.get()));
    slot.destroy();
    ++head_;
    // Ordering: release: the slot's move-out happens-before the sender's
    // acquire load of head that lets it reuse the slot.
    s->head.store(head_, std::memory_order_release);
    s->notify_sender();
    return r;
  }

  template <class Deadline>
  [[gnu::noinline, gnu::cold]] recv_result<T> recv_slow(const Deadline* deadline) {
    shared* const s = shared_;
    for (int step = 0; step < spsc_detail::spin_steps + spsc_detail::yield_steps; ++step) {
      spsc_detail::backoff(step);
      if (ready()) return pop();
      if (drained_and_closed()) return recv_result<T>(status::closed);
    }
    for (;;) {
      s->rx_sleep.store(1, std::memory_order_relaxed);  // (2) store
      rouse::detail::asymmetric_heavy_fence();           // (B) pairs with (A) and (E)
      if (!ready() && !drained_and_closed_after_fence()) {
        if (deadline == nullptr) {
          rouse::detail::wait(s->rx_sleep, 1);
        } else if (rouse::detail::wait_until(s->rx_sleep, 1, *deadline) == rouse::detail::wait_result::timed_out) {
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

  shared* shared_ = nullptr;
  std::size_t head_ = 0;        // our own position: we are the only writer of head
  std::size_t tail_cache_ = 0;  // the sender's position when we last looked
};

static_assert(sizeof(spsc_sender<int>) == 3 * sizeof(void*));
static_assert(sizeof(spsc_receiver<int>) == 3 * sizeof(void*));
static_assert(alignof(spsc_detail::shared<int>) == spsc_detail::line);

// Creates a channel of `capacity` (>= 1) values for one sender and one receiver.
template <class T>
std::pair<spsc_sender<T>, spsc_receiver<T>> spsc(std::size_t capacity) {
  ROUSE_CHECK_USAGE(capacity >= 1, "rouse::channel::spsc", "capacity must be at least 1");
  if (capacity == 0) capacity = 1;
  auto* const s = new spsc_detail::shared<T>(capacity);
  return {spsc_sender<T>(s), spsc_receiver<T>(s)};
}

}  // namespace rouse::channel
