// bench/study/waiter_queue_study.cpp — a standalone study, not a rouse-bench
// workload: four ways to keep the waiter queue of an async primitive, each
// measured in one process, in interleaved rounds. The figures and the choice
// are in docs/async-waiter-queues.md.
//
// Build (target `waiter-queue-study`, not built by default) and run:
//   cmake --build build/bench --target waiter-queue-study -j2
//   build/bench/bench/waiter-queue-study [--rounds N] [--quick]
// or by hand (release configuration: misuse checks off):
//   g++ -std=c++20 -O2 -Iinclude -Ibuild/release/include bench/study/waiter_queue_study.cpp
//       build/release/librouse.a -pthread -o /tmp/waiter_queue_study     (one line)
//
// The primitive every variant implements is the same: a counting wake-up
// (a semaphore of acquire(1) / release(1), the shape behind an async
// semaphore, mutex and channel): notify_one() hands one permit to the oldest
// waiter or, when nobody waits, stores it; notify_all() wakes every waiter
// registered now, handing nothing; a wait takes a stored permit without
// queueing, else registers a waker, re-checks, and sleeps. A waiter that gives
// up (cancel) leaves before it was chosen, or, chosen, passes its permit on.
//
//   (a) locked_deque   a rouse::mutex around a std::deque of waiter pointers;
//                      every call takes the lock (the check-and-add is atomic
//                      under it)
//   (b) slot_fallback  a lock-free single-waiter slot (one pointer, CAS) with
//                      (a)'s locked deque as fallback when the slot is taken
//   (c) lockfree_ring  a lock-free bounded MPMC ring (Vyukov) of pointers to
//                      heap nodes; wakes are hints (spurious wake-ups: the
//                      woken waiter takes a permit or queues again); a cancel
//                      is a tombstone in the node, collected by the next pop
//   (d) intrusive      rouse::async::waiter_list + list_wait (the nodes live
//                      in the waiting frame): the real thing, behind a tiny
//                      primitive shaped like rouse::async::notify
//
// Nodes of (a) and (b) live in the waiting frame too (a waker cannot be
// kept by value: rouse's coroutine wakers are views of the frame, so a waiter
// that cancels must know whether a notifier still holds its waker).
//
// Shapes (single thread, a counting waker, no executor), then coroutines on a
// rouse::async::run_loop: see docs/async-waiter-queues.md for the exact
// definitions and the table.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "rouse/async/run_loop.hpp"
#include "rouse/async/spawn.hpp"
#include "rouse/async/task.hpp"
#include "rouse/async/waiter_list.hpp"
#include "rouse/async/waker.hpp"
#include "rouse/mutex.hpp"

// ---- allocation counter ----------------------------------------------------
// The global operator new counts; every allocation of the process goes
// through it (malloc/free underneath, so g++ sees free() of what new returned).
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace {
std::atomic<std::uint64_t> g_allocations{0};
}  // namespace

void* operator new(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new(std::size_t n, std::align_val_t a) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  std::size_t const al = static_cast<std::size_t>(a);
  if (void* p = std::aligned_alloc(al, (n + al - 1) / al * al)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n, std::align_val_t a) { return operator new(n, a); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

namespace {

namespace ra = rouse::async;
using ra::waker;
using clock_type = std::chrono::steady_clock;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "waiter_queue_study: %s\n", what);
  std::abort();
}

double ns_since(clock_type::time_point t0) {
  return std::chrono::duration<double, std::nano>(clock_type::now() - t0).count();
}

// How a waiter was woken (a node's `state`).
enum : std::uint32_t {
  waiting = 0,
  woken_one = 1,  // by notify_one: holds a permit (transferable)
  woken_all = 2,  // by notify_all: holds nothing
  cancelled = 3,  // (c): a tombstone
};

// Takes one stored permit if there is one.
inline bool take_permit(std::atomic<std::int64_t>& permits) noexcept {
  std::int64_t c = permits.load(std::memory_order_seq_cst);
  while (c > 0)
    if (permits.compare_exchange_weak(c, c - 1, std::memory_order_seq_cst, std::memory_order_seq_cst)) return true;
  return false;
}

inline void spin_until_not_waiting(const std::atomic<std::uint32_t>& s) noexcept {
  while (s.load(std::memory_order_acquire) == waiting) {
#if defined(__x86_64__)
    __builtin_ia32_pause();
#endif
  }
}

// A node in the waiting frame, for (a) and (b).
struct frame_node {
  waker w;
  std::atomic<std::uint32_t> state{waiting};
};

// The notifier's hand-over: it owns `n` (it unlinked it); copies the waker
// out, publishes the state (its last touch: the waiter may free the node
// once it sees it), then wakes.
inline void hand_over(frame_node* n, std::uint32_t how) noexcept {
  waker w = std::move(n->w);
  // Ordering: release: pairs with the waiter's acquire in finish()/cancel().
  n->state.store(how, std::memory_order_release);
  std::move(w).wake();
}

// ---- (a) a mutex around a deque ----------------------------------------------

class locked_deque {
 public:
  bool try_take() noexcept {
    lock_.lock();
    bool const got = permits_ > 0;
    if (got) --permits_;
    lock_.unlock();
    return got;
  }

  void notify_one() noexcept {
    lock_.lock();
    if (queue_.empty()) {
      ++permits_;
      lock_.unlock();
      return;
    }
    frame_node* const n = queue_.front();
    queue_.pop_front();
    lock_.unlock();
    hand_over(n, woken_one);
  }
  void notify_all() noexcept {
    // Wakes the waiters present now, in batches of 64 (wakers are called
    // outside the lock; no allocation): the first `left` in the queue.
    lock_.lock();
    std::size_t left = queue_.size();
    for (;;) {
      frame_node* batch[64];
      std::size_t k = 0;
      while (left > 0 && k < 64 && !queue_.empty()) {  // a waiter may have left meanwhile
        batch[k++] = queue_.front();
        queue_.pop_front();
        --left;
      }
      lock_.unlock();
      for (std::size_t i = 0; i < k; ++i) hand_over(batch[i], woken_all);
      if (left == 0) return;
      lock_.lock();
    }
  }

  class wait {
   public:
    wait(locked_deque& q, waker w) noexcept : q_(q) { node_.w = std::move(w); }
    // True: registered (a wake will come). False: took a permit at once.
    bool start() {
      q_.lock_.lock();
      if (q_.permits_ > 0) {
        --q_.permits_;
        q_.lock_.unlock();
        return false;
      }
      q_.queue_.push_back(&node_);
      q_.lock_.unlock();
      return true;
    }
    // After the wake: true (a permit or a broadcast).
    bool finish() noexcept {
      spin_until_not_waiting(node_.state);
      return true;
    }
    // True: left before it was chosen.
    bool cancel() noexcept {
      q_.lock_.lock();
      auto const it = std::find(q_.queue_.begin(), q_.queue_.end(), &node_);
      bool const found = it != q_.queue_.end();
      if (found) q_.queue_.erase(it);
      q_.lock_.unlock();
      if (found) return true;
      spin_until_not_waiting(node_.state);
      if (node_.state.load(std::memory_order_acquire) == woken_one) q_.notify_one();  // pass it on
      return false;
    }

   private:
    locked_deque& q_;
    frame_node node_;
  };

 private:
  rouse::mutex lock_;
  std::int64_t permits_ = 0;
  std::deque<frame_node*> queue_;
};

// ---- (b) a lock-free single-waiter slot, a locked deque behind it -------------
//
// slot_: the one waiter registered while the deque was empty (so it is older
// than everything in the deque: notify serves it first, FIFO holds). A
// waiter takes the slot with one CAS (nullptr -> its node) only when nobody
// is queued; else it queues under the lock. Whoever removes a node from the
// slot (a notifier's exchange, the waiter's own CAS back to nullptr) owns it.
// Dekker: a waiter's registration (B1: the slot CAS, or queued_ += 1, seq_cst)
// then its re-check of permits_ (B2, seq_cst); a notifier's permits_ RMW (A1)
// then has_waiters() (A2, seq_cst loads).

class slot_fallback {
 public:
  bool try_take() noexcept { return take_permit(permits_); }

  void notify_one() noexcept {
    if (has_waiters()) return notify_slow(false);
    permits_.fetch_add(1, std::memory_order_seq_cst);  // (A1)
    if (!has_waiters()) [[likely]]                     // (A2)
      return;
    notify_slow(true);
  }
  void notify_all() noexcept {
    if (!has_waiters()) return;
    if (frame_node* const n = slot_.exchange(nullptr, std::memory_order_seq_cst)) hand_over(n, woken_all);
    if (queued_.load(std::memory_order_seq_cst) == 0) return;
    lock_.lock();
    std::size_t left = queue_.size();
    for (;;) {
      frame_node* batch[64];
      std::size_t k = 0;
      while (left > 0 && k < 64 && !queue_.empty()) {  // a waiter may have left meanwhile
        batch[k++] = queue_.front();
        queue_.pop_front();
        --left;
      }
      queued_.fetch_sub(static_cast<std::uint32_t>(k), std::memory_order_relaxed);
      lock_.unlock();
      for (std::size_t i = 0; i < k; ++i) hand_over(batch[i], woken_all);
      if (left == 0) return;
      lock_.lock();
    }
  }

  class wait {
   public:
    wait(slot_fallback& q, waker w) noexcept : q_(q) { node_.w = std::move(w); }
    bool start() {
      for (;;) {
        if (q_.try_take()) return false;
        frame_node* expected = nullptr;
        in_slot_ = q_.queued_.load(std::memory_order_relaxed) == 0 &&
                   q_.slot_.compare_exchange_strong(expected, &node_, std::memory_order_seq_cst);  // (B1)
        if (!in_slot_) {
          q_.lock_.lock();
          q_.queue_.push_back(&node_);
          q_.queued_.fetch_add(1, std::memory_order_seq_cst);  // (B1)
          q_.lock_.unlock();
        }
        if (q_.permits_.load(std::memory_order_seq_cst) == 0) return true;  // (B2)
        // A permit appeared: leave and take it (or, chosen meanwhile, the
        // wake is coming).
        if (!withdraw()) return true;
      }
    }
    bool finish() noexcept {
      spin_until_not_waiting(node_.state);
      return true;
    }
    bool cancel() noexcept {
      if (withdraw()) return true;
      spin_until_not_waiting(node_.state);
      if (node_.state.load(std::memory_order_acquire) == woken_one) q_.notify_one();
      return false;
    }

   private:
    // True when the waiter took its node back before a notifier did.
    bool withdraw() noexcept {
      if (in_slot_) {
        frame_node* expected = &node_;
        return q_.slot_.compare_exchange_strong(expected, nullptr, std::memory_order_seq_cst);
      }
      q_.lock_.lock();
      auto const it = std::find(q_.queue_.begin(), q_.queue_.end(), &node_);
      bool const found = it != q_.queue_.end();
      if (found) {
        q_.queue_.erase(it);
        q_.queued_.fetch_sub(1, std::memory_order_relaxed);
      }
      q_.lock_.unlock();
      return found;
    }

    slot_fallback& q_;
    frame_node node_;
    bool in_slot_ = false;
  };

 private:
  bool has_waiters() const noexcept {
    return slot_.load(std::memory_order_seq_cst) != nullptr || queued_.load(std::memory_order_seq_cst) != 0;
  }

  // `in_word`: our permit is in permits_: take it back first (if a waiter
  // took one meanwhile, that was ours: done). Then hand it to the slot's
  // waiter, or the deque's oldest, or store it and look again.
  [[gnu::noinline]] void notify_slow(bool in_word) noexcept {
    for (;;) {
      if (in_word && !take_permit(permits_)) return;
      if (frame_node* const n = slot_.exchange(nullptr, std::memory_order_seq_cst)) return hand_over(n, woken_one);
      if (queued_.load(std::memory_order_seq_cst) != 0) {
        lock_.lock();
        if (!queue_.empty()) {
          frame_node* const n = queue_.front();
          queue_.pop_front();
          queued_.fetch_sub(1, std::memory_order_relaxed);
          lock_.unlock();
          return hand_over(n, woken_one);
        }
        lock_.unlock();
      }
      permits_.fetch_add(1, std::memory_order_seq_cst);  // (A1)
      if (!has_waiters()) return;                        // (A2)
      in_word = true;
    }
  }

  std::atomic<frame_node*> slot_{nullptr};
  std::atomic<std::int64_t> permits_{0};
  std::atomic<std::uint32_t> queued_{0};
  rouse::mutex lock_;
  std::deque<frame_node*> queue_;
};

// ---- (c) a lock-free MPMC ring of heap nodes ----------------------------------

// Vyukov's bounded MPMC queue. The publishing store of push and the
// sequence load of pop are seq_cst: they are (B1) and (A2) of the Dekker
// pairing with the permit counter.
template <class T>
class mpmc_ring {
 public:
  explicit mpmc_ring(std::size_t capacity) : cells_(new cell[capacity]), mask_(capacity - 1) {
    for (std::size_t i = 0; i < capacity; ++i) cells_[i].seq.store(i, std::memory_order_relaxed);
  }
  bool push(T v) noexcept {
    std::size_t pos = enqueue_.load(std::memory_order_relaxed);
    for (;;) {
      cell& c = cells_[pos & mask_];
      std::size_t const seq = c.seq.load(std::memory_order_acquire);
      auto const dif = static_cast<std::intptr_t>(seq) - static_cast<std::intptr_t>(pos);
      if (dif == 0) {
        if (enqueue_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
          c.value = v;
          c.seq.store(pos + 1, std::memory_order_seq_cst);  // (B1)
          return true;
        }
      } else if (dif < 0) {
        return false;  // full
      } else {
        pos = enqueue_.load(std::memory_order_relaxed);
      }
    }
  }
  bool pop(T& v) noexcept {
    std::size_t pos = dequeue_.load(std::memory_order_relaxed);
    for (;;) {
      cell& c = cells_[pos & mask_];
      std::size_t const seq = c.seq.load(std::memory_order_seq_cst);  // (A2)
      auto const dif = static_cast<std::intptr_t>(seq) - static_cast<std::intptr_t>(pos + 1);
      if (dif == 0) {
        if (dequeue_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
          v = c.value;
          c.seq.store(pos + mask_ + 1, std::memory_order_release);
          return true;
        }
      } else if (dif < 0) {
        return false;  // empty
      } else {
        pos = dequeue_.load(std::memory_order_relaxed);
      }
    }
  }

 private:
  struct cell {
    std::atomic<std::size_t> seq;
    T value;
  };
  std::unique_ptr<cell[]> cells_;
  std::size_t mask_;
  alignas(64) std::atomic<std::size_t> enqueue_{0};
  alignas(64) std::atomic<std::size_t> dequeue_{0};
};

class lockfree_ring {
  // A waiter's registration: owned by the ring's cell and by the wait.
  struct heap_node {
    waker w;
    std::atomic<std::uint32_t> state{waiting};
    std::atomic<std::uint32_t> refs{2};
    void unref() noexcept {
      if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
    }
  };

 public:
  // Big enough for the cancel shapes' tombstones (they stay until popped).
  static constexpr std::size_t capacity = std::size_t{1} << 18;

  lockfree_ring() : ring_(capacity) {}
  ~lockfree_ring() {
    heap_node* n = nullptr;
    while (ring_.pop(n)) n->unref();
  }

  bool try_take() noexcept { return take_permit(permits_); }

  void notify_one() noexcept {
    permits_.fetch_add(1, std::memory_order_seq_cst);  // (A1)
    wake_one();
  }
  void notify_all() noexcept {
    // Wakes what is queued now: pops until empty (a waiter that queues
    // meanwhile may be woken too: a spurious wake-up, allowed here).
    heap_node* n = nullptr;
    while (ring_.pop(n)) claim_and_wake(n, woken_all);
  }

  class wait {
   public:
    wait(lockfree_ring& q, waker w) noexcept : q_(q), w_(std::move(w)) {}
    ~wait() {
      if (node_) node_->unref();
    }
    bool start() {
      for (;;) {
        if (q_.try_take()) return false;
        if (node_) node_->unref();
        node_ = new heap_node;  // the queue and this wait own it
        node_->w = w_;
        if (!q_.ring_.push(node_)) fail("lockfree_ring full");  // (B1)
        if (q_.permits_.load(std::memory_order_seq_cst) == 0) return true;  // (B2)
        // A permit appeared: tombstone the node and take it; chosen
        // meanwhile (the CAS fails), the wake is coming.
        std::uint32_t expected = waiting;
        if (!node_->state.compare_exchange_strong(expected, cancelled, std::memory_order_acq_rel)) return true;
      }
    }
    // True: the wait is over (took a permit, or a broadcast). False: a
    // spurious wake-up (another waiter took the permit): start() again.
    bool finish() noexcept {
      spin_until_not_waiting(node_->state);
      if (node_->state.load(std::memory_order_acquire) == woken_all) return true;
      return q_.try_take();
    }
    bool cancel() noexcept {
      std::uint32_t expected = waiting;
      if (node_->state.compare_exchange_strong(expected, cancelled, std::memory_order_acq_rel)) return true;
      spin_until_not_waiting(node_->state);
      // Woken by a notify_one: the permit is in the counter; somebody queued
      // must hear of it.
      if (node_->state.load(std::memory_order_acquire) == woken_one &&
          q_.permits_.load(std::memory_order_seq_cst) > 0)
        q_.wake_one();
      return false;
    }

   private:
    lockfree_ring& q_;
    waker w_;
    heap_node* node_ = nullptr;
  };

 private:
  void wake_one() noexcept {
    heap_node* n = nullptr;
    while (ring_.pop(n))
      if (claim_and_wake(n, woken_one)) return;
  }
  // The popper owns the queue's reference: claims, wakes, drops it. False
  // for a tombstone.
  static bool claim_and_wake(heap_node* n, std::uint32_t how) noexcept {
    std::uint32_t expected = waiting;
    // waiting -> how; fails on a tombstone. Ordering: acq_rel: pairs with
    // the waiter's acquire of the state (finish / cancel).
    if (!n->state.compare_exchange_strong(expected, how, std::memory_order_acq_rel)) {
      n->unref();
      return false;
    }
    waker w = std::move(n->w);  // the waiter never reads it again
    n->unref();
    std::move(w).wake();
    return true;
  }

  std::atomic<std::int64_t> permits_{0};
  mpmc_ring<heap_node*> ring_;
};

// ---- (d) rouse's intrusive list ------------------------------------------------

// A counting primitive on rouse::async::waiter_list, shaped like
// rouse::async::notify (its permit is a counter here): list_wait and
// list_awaitable call try_acquire / pass_on / waiters().
class intrusive_semaphore {
 public:
  intrusive_semaphore() noexcept = default;
  intrusive_semaphore(const intrusive_semaphore&) = delete;

  void notify_one() noexcept {
    if (list_.has_waiters()) return notify_slow(false);
    permits_.fetch_add(1, std::memory_order_seq_cst);  // (A1)
    if (!list_.has_waiters()) [[likely]]               // (A2)
      return;
    notify_slow(true);
  }
  void notify_all() noexcept { list_.notify_all(); }

  // For list_wait / list_awaitable.
  ra::check_result try_acquire(std::uintptr_t) noexcept {
    return take_permit(permits_) ? ra::check_result::ready_with_permit : ra::check_result::not_ready;
  }
  void pass_on() noexcept { notify_one(); }
  ra::waiter_list& waiters() noexcept { return list_; }

 private:
  [[gnu::noinline]] void notify_slow(bool in_word) noexcept {
    list_.notify_one_locked([this, in_word]() noexcept { return !in_word || take_permit(permits_); },
                            [this]() noexcept { permits_.fetch_add(1, std::memory_order_seq_cst); });
  }

  std::atomic<std::int64_t> permits_{0};
  ra::waiter_list list_;
};

class intrusive {
 public:
  bool try_take() noexcept { return sem_.try_acquire(0) != ra::check_result::not_ready; }
  void notify_one() noexcept { sem_.notify_one(); }
  void notify_all() noexcept { sem_.notify_all(); }
  intrusive_semaphore& primitive() noexcept { return sem_; }

  class wait {
   public:
    wait(intrusive& q, waker w) noexcept : wait_(q.sem_, 0, std::move(w)) {}
    bool start() noexcept {
      if (wait_.primitive().try_acquire(0) != ra::check_result::not_ready) return false;  // the check
      // withdrew: the re-check took a permit and the waiter left; claimed:
      // a notify chose it during the re-check: its wake is coming.
      return wait_.start() != ra::list_wait<intrusive_semaphore>::start_result::withdrew;
    }
    bool finish() noexcept { return true; }
    bool cancel() noexcept { return wait_.cancel(); }

   private:
    ra::list_wait<intrusive_semaphore> wait_;
  };

 private:
  intrusive_semaphore sem_;
};

// ---- shapes without an executor ----------------------------------------------

struct counter {
  std::uint64_t n = 0;
  void operator()() noexcept { ++n; }
};

struct result {
  double value = 0;       // ns per op
  double allocs_per = 0;  // allocations per wait
};

// wake one, uncontended: register (check, push, re-check), notify_one (the
// claim and the wake call), finish; a fresh wait object each time.
template <class Q>
result wake_one(std::int64_t n) {
  Q q;
  counter c;
  waker const w = ra::callback_waker(c);
  auto const a0 = g_allocations.load();
  auto const t0 = clock_type::now();
  for (std::int64_t i = 0; i < n; ++i) {
    typename Q::wait wt(q, w);
    if (!wt.start()) fail("wake_one: ready without a permit");
    q.notify_one();
    if (!wt.finish()) fail("wake_one: spurious");
  }
  double const ns = ns_since(t0);
  auto const a1 = g_allocations.load();
  if (c.n != static_cast<std::uint64_t>(n)) fail("wake_one: lost a wake");
  return {ns / static_cast<double>(n), static_cast<double>(a1 - a0) / static_cast<double>(n)};
}

// notify_one with nobody registered (a release nobody waits for): stores a
// permit each time (they accumulate: a counting primitive).
template <class Q>
result notify_idle(std::int64_t n) {
  Q q;
  auto const a0 = g_allocations.load();
  auto const t0 = clock_type::now();
  for (std::int64_t i = 0; i < n; ++i) q.notify_one();
  double const ns = ns_since(t0);
  auto const a1 = g_allocations.load();
  if (!q.try_take()) fail("notify_idle: no permit stored");
  return {ns / static_cast<double>(n), static_cast<double>(a1 - a0) / static_cast<double>(n)};
}

// `waiters` waiters stay registered; one op = one notify_one, which wakes the
// oldest, and that waiter's re-registration at the tail (after its finish;
// a spurious wake-up (c) re-registers without counting). ns per op (ops/s =
// 1e9 / ns). Allocations per op (= per wait).
template <class Q>
struct driver {
  struct slot {
    driver* d;
    int index;
    void operator()() noexcept { d->ready.push_back(index); }
  };
  Q q;
  std::vector<slot> slots;
  std::vector<std::optional<typename Q::wait>> waits;
  std::deque<int> ready;  // woken, not yet finished (the "executor")

  explicit driver(int n) : slots(static_cast<std::size_t>(n)), waits(static_cast<std::size_t>(n)) {
    for (int i = 0; i < n; ++i) {
      slots[static_cast<std::size_t>(i)] = slot{this, i};
      enter(i);
    }
  }
  ~driver() {
    // Leave (cancel) whatever is still registered.
    for (auto& w : waits)
      if (w) {
        w->cancel();
        w.reset();
      }
  }
  void enter(int i) {
    auto& w = waits[static_cast<std::size_t>(i)];
    w.emplace(q, ra::callback_waker(slots[static_cast<std::size_t>(i)]));
    if (!w->start()) fail("driver: ready without a permit");
  }
  // Finishes every woken waiter and registers it again. Returns how many
  // completed (not spurious).
  int run_ready() {
    int done = 0;
    while (!ready.empty()) {
      int const i = ready.front();
      ready.pop_front();
      auto& w = waits[static_cast<std::size_t>(i)];
      if (w->finish()) ++done;
      w.reset();
      enter(i);
    }
    return done;
  }
};

template <class Q>
result throughput(int waiters, std::int64_t n) {
  driver<Q> d(waiters);
  d.ready.clear();
  std::int64_t done = 0;
  auto const a0 = g_allocations.load();
  auto const t0 = clock_type::now();
  while (done < n) {
    d.q.notify_one();
    done += d.run_ready();
  }
  double const ns = ns_since(t0);
  auto const a1 = g_allocations.load();
  return {ns / static_cast<double>(done), static_cast<double>(a1 - a0) / static_cast<double>(done)};
}

// notify_all with 100 registered: every waiter woken and re-registered; ns
// per woken waiter.
template <class Q>
result broadcast(int waiters, std::int64_t n) {
  driver<Q> d(waiters);
  std::int64_t done = 0;
  auto const a0 = g_allocations.load();
  auto const t0 = clock_type::now();
  while (done < n) {
    d.q.notify_all();
    done += d.run_ready();
  }
  double const ns = ns_since(t0);
  auto const a1 = g_allocations.load();
  return {ns / static_cast<double>(done), static_cast<double>(a1 - a0) / static_cast<double>(done)};
}

// Cancellation: register + cancel. `queued` other waiters stay registered;
// with queued > 0 the cancelled waiter is one of them, at a position that
// moves (waiter i*37 mod queued, re-registered at the tail after its cancel):
// ns per (cancel + register).
template <class Q>
result cancel(int queued, std::int64_t n) {
  if (queued == 0) {
    Q q;
    counter c;
    waker const w = ra::callback_waker(c);
    auto const a0 = g_allocations.load();
    auto const t0 = clock_type::now();
    for (std::int64_t i = 0; i < n; ++i) {
      typename Q::wait wt(q, w);
      if (!wt.start()) fail("cancel: ready");
      if (!wt.cancel()) fail("cancel: was chosen");
    }
    double const ns = ns_since(t0);
    auto const a1 = g_allocations.load();
    if (c.n != 0) fail("cancel: woken");
    return {ns / static_cast<double>(n), static_cast<double>(a1 - a0) / static_cast<double>(n)};
  }
  driver<Q> d(queued);
  auto const a0 = g_allocations.load();
  auto const t0 = clock_type::now();
  for (std::int64_t i = 0; i < n; ++i) {
    int const k = static_cast<int>((i * 37) % queued);
    auto& w = d.waits[static_cast<std::size_t>(k)];
    if (!w->cancel()) fail("cancel: was chosen");
    w.reset();
    d.enter(k);
  }
  double const ns = ns_since(t0);
  auto const a1 = g_allocations.load();
  return {ns / static_cast<double>(n), static_cast<double>(a1 - a0) / static_cast<double>(n)};
}

// Two threads share one queue; each, `n / 2` times: registers its waiter,
// calls notify_one() (which wakes the oldest waiter, its own or the other
// thread's, or stores a permit), then waits (spinning, a yield every 64
// polls) until its own waiter was woken. Every registration is matched by one
// notify, so nobody waits forever. ns per op = wall time / n (both threads).
template <class Q>
result contended2(std::int64_t n) {
  Q q;
  std::int64_t const per = n / 2;
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  auto const body = [&] {
    std::atomic<bool> woken{false};
    struct setter {
      std::atomic<bool>* flag;
      void operator()() noexcept { flag->store(true, std::memory_order_release); }
    } set{&woken};
    waker const w = ra::callback_waker(set);
    auto const wait_woken = [&] {
      for (unsigned spins = 1; !woken.load(std::memory_order_acquire); ++spins) {
        if (spins % 64 == 0) std::this_thread::yield();
#if defined(__x86_64__)
        __builtin_ia32_pause();
#endif
      }
    };
    ready.fetch_add(1);
    while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
    for (std::int64_t i = 0; i < per; ++i) {
      woken.store(false, std::memory_order_relaxed);
      typename Q::wait wt(q, w);
      bool const suspended = wt.start();
      q.notify_one();
      if (!suspended) continue;
      wait_woken();
      while (!wt.finish()) {  // (c): a spurious wake-up: queue again
        woken.store(false, std::memory_order_relaxed);
        if (!wt.start()) break;
        wait_woken();
      }
    }
  };
  std::thread t1(body), t2(body);
  while (ready.load() != 2) std::this_thread::yield();
  auto const a0 = g_allocations.load();
  auto const t0 = clock_type::now();
  go.store(true, std::memory_order_release);
  t1.join();
  t2.join();
  double const ns = ns_since(t0);
  auto const a1 = g_allocations.load();
  return {ns / static_cast<double>(2 * per), static_cast<double>(a1 - a0) / static_cast<double>(2 * per)};
}

// ---- coroutines on a run_loop ------------------------------------------------

// The awaitable of (a)-(c), and of (d) without rouse's arming guard and stop
// callback ("d bare"): builds the variant's wait in the frame, with a
// coroutine waker (schedules the coroutine on its executor, never inline).
// On a single-thread run_loop a wake during await_suspend only schedules the
// coroutine, so suspending anyway is correct here (rouse's list_awaitable
// carries a guard for executors that resume at once on another thread).
// await_resume: true = done, false = spurious (await again).
template <class Q>
class acquire_awaitable {
 public:
  using rouse_affine = void;
  explicit acquire_awaitable(Q& q) noexcept : q_(q) {}
  bool await_ready() noexcept { return q_.try_take(); }
  template <class P>
  bool await_suspend(std::coroutine_handle<P> h) {
    target_ = ra::resume_target(h);
    wait_.emplace(q_, ra::coroutine_waker(target_));
    suspended_ = wait_->start();  // false: took a permit at the check
    return suspended_;
  }
  bool await_resume() noexcept { return !suspended_ || wait_->finish(); }

 private:
  Q& q_;
  ra::resume_target target_;
  std::optional<typename Q::wait> wait_;
  bool suspended_ = false;
};

struct shared_state {
  std::int64_t completed = 0;
};

template <class Q>
ra::task<> co_waiter(Q& q, std::int64_t count, shared_state& st) {
  for (std::int64_t i = 0; i < count;) {
    if (co_await acquire_awaitable<Q>(q)) {
      ++i;
      ++st.completed;
    }
  }
}

// (d) through rouse's own awaitable (arming guard, stop callback).
ra::task<> co_waiter_rouse(intrusive& q, std::int64_t count, shared_state& st) {
  for (std::int64_t i = 0; i < count; ++i) {
    co_await ra::list_awaitable<intrusive_semaphore>(q.primitive(), 0);
    ++st.completed;
  }
}

// One notifier: `batch` notify_one() (one per waiter), then a yield (the
// woken run, and queue again), until `n` notifies.
template <class Q>
ra::task<> co_notifier(Q& q, std::int64_t n, int batch, ra::scheduler s) {
  for (std::int64_t i = 0; i < n;) {
    for (int k = 0; k < batch && i < n; ++k, ++i) q.notify_one();
    co_await s.schedule();
  }
}

template <class Q, bool rouse_awaitable>
ra::task<double> co_root(ra::run_loop& loop, int tasks, std::int64_t n, shared_state& st) {
  Q q;
  std::vector<ra::join_handle<void>> hs;
  std::int64_t const per = n / tasks;
  auto const t0 = clock_type::now();
  for (int i = 0; i < tasks; ++i) {
    if constexpr (rouse_awaitable)
      hs.push_back(ra::spawn(loop, co_waiter_rouse(q, per, st)));
    else
      hs.push_back(ra::spawn(loop, co_waiter<Q>(q, per, st)));
  }
  auto notifier = ra::spawn(loop, co_notifier<Q>(q, per * tasks, tasks, loop.get_scheduler()));
  for (auto& h : hs) co_await std::move(h);
  co_await std::move(notifier);
  co_return ns_since(t0);
}

template <class Q, bool rouse_awaitable = false>
result coroutines(int tasks, std::int64_t n) {
  ra::run_loop loop;
  shared_state st;
  auto const a0 = g_allocations.load();
  double const ns = loop.run_until_complete(co_root<Q, rouse_awaitable>(loop, tasks, n, st));
  auto const a1 = g_allocations.load();
  std::int64_t const per = n / tasks * tasks;
  if (st.completed != per) fail("coroutines: count");
  // Allocations: the spawns (tasks + 1 frames and their states) are
  // included; the doc subtracts the empty-wait baseline.
  return {ns / static_cast<double>(per), static_cast<double>(a1 - a0) / static_cast<double>(per)};
}

// ---- the run --------------------------------------------------------------------

struct cell_stats {
  std::vector<double> values;
  double allocs = 0;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

struct shape {
  const char* name;
  const char* unit;
  result (*run[5])(std::int64_t);  // a, b, c, d, d-bare/rouse-awaitable
  std::int64_t n;
};

}  // namespace

int main(int argc, char** argv) {
  int rounds = 7;
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
      rounds = std::atoi(argv[++i]);
    else if (std::strcmp(argv[i], "--quick") == 0)
      quick = true;
  }
  auto const scale = [quick](std::int64_t n) { return quick ? n / 10 : n; };

  const char* const variants[5] = {"(a) mutex+deque", "(b) slot+fallback", "(c) lock-free ring", "(d) rouse list",
                                   "(d) list_awaitable"};
  std::vector<shape> shapes = {
      {"notify_one, nobody waiting (stores a permit)",
       "ns/op",
       {[](std::int64_t n) { return notify_idle<locked_deque>(n); },
        [](std::int64_t n) { return notify_idle<slot_fallback>(n); },
        [](std::int64_t n) { return notify_idle<lockfree_ring>(n); },
        [](std::int64_t n) { return notify_idle<intrusive>(n); }, nullptr},
       scale(2'000'000)},
      {"wake one, uncontended (register+notify+wake)",
       "ns/op",
       {[](std::int64_t n) { return wake_one<locked_deque>(n); },
        [](std::int64_t n) { return wake_one<slot_fallback>(n); },
        [](std::int64_t n) { return wake_one<lockfree_ring>(n); }, [](std::int64_t n) { return wake_one<intrusive>(n); },
        nullptr},
       scale(2'000'000)},
      {"1 waiter: notify_one + re-register",
       "ns/op",
       {[](std::int64_t n) { return throughput<locked_deque>(1, n); },
        [](std::int64_t n) { return throughput<slot_fallback>(1, n); },
        [](std::int64_t n) { return throughput<lockfree_ring>(1, n); },
        [](std::int64_t n) { return throughput<intrusive>(1, n); }, nullptr},
       scale(2'000'000)},
      {"100 waiters: notify_one + re-register",
       "ns/op",
       {[](std::int64_t n) { return throughput<locked_deque>(100, n); },
        [](std::int64_t n) { return throughput<slot_fallback>(100, n); },
        [](std::int64_t n) { return throughput<lockfree_ring>(100, n); },
        [](std::int64_t n) { return throughput<intrusive>(100, n); }, nullptr},
       scale(2'000'000)},
      {"100 waiters: notify_all, per waiter woken",
       "ns/op",
       {[](std::int64_t n) { return broadcast<locked_deque>(100, n); },
        [](std::int64_t n) { return broadcast<slot_fallback>(100, n); },
        [](std::int64_t n) { return broadcast<lockfree_ring>(100, n); },
        [](std::int64_t n) { return broadcast<intrusive>(100, n); }, nullptr},
       scale(2'000'000)},
      {"cancel, queue otherwise empty (register+cancel)",
       "ns/op",
       {[](std::int64_t n) { return cancel<locked_deque>(0, n); },
        [](std::int64_t n) { return cancel<slot_fallback>(0, n); },
        [](std::int64_t n) { return cancel<lockfree_ring>(0, n); }, [](std::int64_t n) { return cancel<intrusive>(0, n); },
        nullptr},
       scale(200'000)},
      {"cancel among 100 queued (cancel+re-register)",
       "ns/op",
       {[](std::int64_t n) { return cancel<locked_deque>(100, n); },
        [](std::int64_t n) { return cancel<slot_fallback>(100, n); },
        [](std::int64_t n) { return cancel<lockfree_ring>(100, n); },
        [](std::int64_t n) { return cancel<intrusive>(100, n); }, nullptr},
       scale(200'000)},
      {"2 threads: register + notify_one + wait own wake",
       "ns/op",
       {[](std::int64_t n) { return contended2<locked_deque>(n); },
        [](std::int64_t n) { return contended2<slot_fallback>(n); },
        [](std::int64_t n) { return contended2<lockfree_ring>(n); },
        [](std::int64_t n) { return contended2<intrusive>(n); }, nullptr},
       scale(400'000)},
      {"run_loop, 1 task + notifier (notify_one, yield)",
       "ns/op",
       {[](std::int64_t n) { return coroutines<locked_deque>(1, n); },
        [](std::int64_t n) { return coroutines<slot_fallback>(1, n); },
        [](std::int64_t n) { return coroutines<lockfree_ring>(1, n); },
        [](std::int64_t n) { return coroutines<intrusive>(1, n); },
        [](std::int64_t n) { return coroutines<intrusive, true>(1, n); }},
       scale(500'000)},
      {"run_loop, 100 tasks + notifier (100 notify_one, yield)",
       "ns/op",
       {[](std::int64_t n) { return coroutines<locked_deque>(100, n); },
        [](std::int64_t n) { return coroutines<slot_fallback>(100, n); },
        [](std::int64_t n) { return coroutines<lockfree_ring>(100, n); },
        [](std::int64_t n) { return coroutines<intrusive>(100, n); },
        [](std::int64_t n) { return coroutines<intrusive, true>(100, n); }},
       scale(1'000'000)},
  };

  // cells[shape][variant]
  std::vector<std::vector<cell_stats>> cells(shapes.size(), std::vector<cell_stats>(5));
  for (int r = 0; r < rounds; ++r) {
    for (std::size_t s = 0; s < shapes.size(); ++s)
      for (int v = 0; v < 5; ++v) {
        if (!shapes[s].run[v]) continue;
        result const x = shapes[s].run[v](shapes[s].n);
        cells[s][static_cast<std::size_t>(v)].values.push_back(x.value);
        cells[s][static_cast<std::size_t>(v)].allocs = x.allocs_per;
      }
    std::fprintf(stderr, "round %d/%d done\n", r + 1, rounds);
  }

  std::printf("# waiter-queue study: medians of %d interleaved rounds (ns per op; min-max in brackets;"
              " allocations per op after the slash)\n\n",
              rounds);
  std::printf("| shape |");
  for (auto const* v : variants) std::printf(" %s |", v);
  std::printf("\n|---|---|---|---|---|---|\n");
  for (std::size_t s = 0; s < shapes.size(); ++s) {
    std::printf("| %s |", shapes[s].name);
    for (int v = 0; v < 5; ++v) {
      auto const& c = cells[s][static_cast<std::size_t>(v)];
      if (c.values.empty()) {
        std::printf(" - |");
        continue;
      }
      auto const [mn, mx] = std::minmax_element(c.values.begin(), c.values.end());
      std::printf(" %.1f [%.1f-%.1f] / %.3g |", median(c.values), *mn, *mx, c.allocs);
    }
    std::printf("\n");
  }
  return 0;
}
