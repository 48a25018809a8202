// rouse's parking table: see parking_table.hpp for the protocol.
#include "rouse/config.hpp"

#include "parking_table.hpp"

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <type_traits>

#include "counters_internal.hpp"

#if !ROUSE_CONFIG_WAIT_BACKEND_GENERIC
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <ctime>
#endif

namespace rouse::platform::detail {
namespace {

constexpr int state_waiting = -1;
constexpr int state_cancelled = -2;
constexpr std::size_t max_park_keys = 128;  // wait_any's limit (futex_waitv's)

// How a parked thread sleeps until its claiming waker signals it.
//
// Generic backend: a std::mutex and std::condition_variable; the waker sets
// `signaled` and notifies under the mutex, so the waiter (which returns only
// after seeing `signaled` under that mutex) cannot destroy them under it.
//
// Futex backend (the 1/2/8-byte atomic waits): a private futex on the
// parker's own word — one system call to sleep and one to wake, and no mutex
// for the woken thread to collide with its waker on. The waker stores 1, then
// wakes the address; the waiter may already have returned by then, so the
// wake may hit a reused stack address: a spurious wake-up for whoever sleeps
// there, which every user of the wait layer tolerates (the state word is the
// truth). These inner calls are not counted: park/unpark count one each.
#if ROUSE_CONFIG_WAIT_BACKEND_GENERIC
struct sleeper {
  std::mutex lock;
  std::condition_variable wakeup;
  bool signaled = false;  // guarded by `lock`

  void signal() noexcept {
    std::lock_guard<std::mutex> g(lock);
    signaled = true;
    wakeup.notify_one();
  }
  void await() noexcept {
    std::unique_lock<std::mutex> g(lock);
    while (!signaled) wakeup.wait(g);
  }
  // Sleeps until signalled or the deadline; false on timeout (never early:
  // the caller re-reads Clock::now()).
  template <class Clock>
  bool await_until(typename Clock::time_point deadline) noexcept {
    std::unique_lock<std::mutex> g(lock);
    if (!signaled) wakeup.wait_until(g, deadline);
    return signaled;
  }
};
#else
struct sleeper {
  std::atomic<std::uint32_t> signaled{0};

  static long futex(std::atomic<std::uint32_t>* w, int op, std::uint32_t value, const timespec* ts) noexcept {
    return ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(w), op, value, ts, nullptr,
                     FUTEX_BITSET_MATCH_ANY);
  }
  void signal() noexcept {
    // Ordering: release — pairs with the acquire loads below: the claim (the
    // state CAS) is visible to the waiter once it sees 1.
    signaled.store(1, std::memory_order_release);
    futex(&signaled, FUTEX_WAKE_BITSET | FUTEX_PRIVATE_FLAG, 1, nullptr);
  }
  void await() noexcept {
    while (signaled.load(std::memory_order_acquire) == 0)
      futex(&signaled, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, 0, nullptr);
  }
  template <class Clock>
  bool await_until(typename Clock::time_point deadline) noexcept {
    if (signaled.load(std::memory_order_acquire) != 0) return true;
    auto const since_epoch = deadline.time_since_epoch();
    auto const secs = std::chrono::floor<std::chrono::seconds>(since_epoch);
    timespec ts{};
    if (secs.count() > 0) {
      ts.tv_sec = static_cast<time_t>(secs.count());
      ts.tv_nsec = static_cast<long>(std::chrono::duration_cast<std::chrono::nanoseconds>(since_epoch - secs).count());
    }
    int const clock = std::is_same_v<Clock, std::chrono::system_clock> ? FUTEX_CLOCK_REALTIME : 0;
    futex(&signaled, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG | clock, 0, &ts);
    return signaled.load(std::memory_order_acquire) != 0;
  }
};
#endif

struct parker {
  sleeper sleep;
  // Who won this park (see the state table in parking_table.hpp). CAS-ed by
  // wakers under a bucket lock and by the waiter.
  std::atomic<int> state{state_waiting};
  parker* next_to_signal = nullptr;   // owned by the waker that claimed this parker
};

struct park_node {
  // Written only under the lock of the bucket it names (and, in requeue, the
  // new bucket's); read without a lock only to guess which lock to take.
  std::atomic<std::uintptr_t> key{0};
  park_node* prev = nullptr;   // guarded by the bucket lock
  park_node* next = nullptr;   // guarded by the bucket lock
  parker* owner = nullptr;
  int index = 0;
  bool linked = false;         // guarded by the bucket lock
};

// 64 bytes: one cache line per bucket, so parking on one bucket does not slow
// a neighbour's.
struct alignas(64) bucket {
  std::mutex lock;
  park_node* head = nullptr;
  park_node* tail = nullptr;

  void push_back(park_node* n) noexcept {
    n->prev = tail;
    n->next = nullptr;
    if (tail) tail->next = n; else head = n;
    tail = n;
    n->linked = true;
  }
  void erase(park_node* n) noexcept {
    if (n->prev) n->prev->next = n->next; else head = n->next;
    if (n->next) n->next->prev = n->prev; else tail = n->prev;
    n->prev = n->next = nullptr;
    n->linked = false;
  }
};
static_assert(alignof(bucket) == 64, "buckets start on cache lines");

bucket table[parking_buckets];

std::uintptr_t key_of(const void* p) noexcept { return reinterpret_cast<std::uintptr_t>(p); }
bucket& bucket_of(std::uintptr_t key) noexcept {
  return table[parking_bucket_index(reinterpret_cast<const void*>(key))];
}

// Tries to make `n`'s owner ours (waiting -> n->index). Called under n's
// bucket lock, after unlinking n. False when the owner was already claimed
// through another node or cancelled: then n was a dead node.
bool claim(park_node* n) noexcept {
  int expected = state_waiting;
  // Ordering: acq_rel — the one-winner decision against the waiter's
  // cancelling CAS and other wakers' claims; the waiter reads the claimed
  // index after it sees the sleeper's signal, which is sequenced after this.
  return n->owner->state.compare_exchange_strong(expected, n->index, std::memory_order_acq_rel,
                                                 std::memory_order_acquire);
}

// After the bucket lock is dropped: tell each claimed parker. Reads the chain
// link before signalling, since the parker may be gone once signalled.
void signal_all(parker* chain) noexcept {
  while (chain) {
    parker* const next = chain->next_to_signal;
    chain->sleep.signal();
    chain = next;
  }
}

// Locks the bucket that `n` is currently on and returns it: re-reads the key
// under the lock because requeue may have moved the node meanwhile.
bucket& lock_bucket_of(park_node& n) noexcept {
  for (;;) {
    // Ordering: relaxed — only a guess of which lock to take; the key is
    // re-read under that lock, which orders it after any requeue that moved it.
    std::uintptr_t const k = n.key.load(std::memory_order_relaxed);
    bucket& b = bucket_of(k);
    b.lock.lock();
    if (n.key.load(std::memory_order_relaxed) == k) return b;
    b.lock.unlock();
  }
}

void unlink_own(park_node* nodes, std::size_t count) noexcept {
  for (std::size_t i = 0; i < count; ++i) {
    bucket& b = lock_bucket_of(nodes[i]);
    if (nodes[i].linked) b.erase(&nodes[i]);
    b.lock.unlock();
  }
}

// Waits until the waker that claimed `p` has signalled it.
void await_signal(parker& p) noexcept { p.sleep.await(); }

// Sleeps until signalled, or until the deadline passes on `Clock` (then
// cancels, unless a waker claimed us first). True when it timed out.
template <class Clock>
bool sleep_until(parker& p, typename Clock::time_point deadline) noexcept {
  for (;;) {
    if (p.sleep.template await_until<Clock>(deadline)) return false;
    if (Clock::now() >= deadline) {
      int expected = state_waiting;
      // Ordering: acq_rel — see claim().
      if (p.state.compare_exchange_strong(expected, state_cancelled, std::memory_order_acq_rel,
                                          std::memory_order_acquire))
        return true;
      // A waker claimed us at the last moment: it will signal soon.
      p.sleep.await();
      return false;
    }
  }
}

bool sleep(parker& p, const park_deadline& d) noexcept {
  switch (d.kind) {
    case park_deadline::clock::steady: return sleep_until<std::chrono::steady_clock>(p, d.steady);
    case park_deadline::clock::system: return sleep_until<std::chrono::system_clock>(p, d.system);
    case park_deadline::clock::none: break;
  }
  await_signal(p);
  return false;
}

park_outcome park_nodes(park_node* nodes, std::span<const void* const> keys, park_validate validate,
                        const park_deadline& deadline) noexcept {
  count_wait();
  parker p;
  std::size_t enqueued = 0;
  int invalid_at = -1;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    park_node& n = nodes[i];
    n.owner = &p;
    n.index = static_cast<int>(i);
    n.key.store(key_of(keys[i]), std::memory_order_relaxed);
    bucket& b = bucket_of(key_of(keys[i]));
    std::lock_guard<std::mutex> g(b.lock);
    // Ordering: relaxed — a waker that claimed us did so under a bucket
    // lock; seeing it late only costs enqueueing nodes that will be dead.
    if (p.state.load(std::memory_order_relaxed) != state_waiting) break;  // already woken
    if (!validate(i)) {
      invalid_at = static_cast<int>(i);
      break;
    }
    b.push_back(&n);
    ++enqueued;
  }

  park_outcome out{park_result::unparked, -1};
  if (invalid_at >= 0) {
    int expected = state_waiting;
    // Ordering: acq_rel — see claim().
    if (p.state.compare_exchange_strong(expected, state_cancelled, std::memory_order_acq_rel,
                                        std::memory_order_acquire)) {
      out = {park_result::invalid, invalid_at};
    } else {
      await_signal(p);  // an earlier key was woken first: report that wake
      out = {park_result::unparked, expected};
    }
  } else if (sleep(p, deadline)) {
    out = {park_result::timed_out, -1};
  } else {
    // Ordering: relaxed — the waiter saw `signaled` (under the sleeper's
    // mutex, or by an acquire load), which the claiming waker set after its
    // CAS, so the CAS is visible.
    out = {park_result::unparked, p.state.load(std::memory_order_relaxed)};
  }
  unlink_own(nodes, enqueued);
  return out;
}

}  // namespace

park_result park(const void* key, park_validate validate, const park_deadline& deadline) noexcept {
  park_node node;
  const void* const keys[1] = {key};
  return park_nodes(&node, keys, validate, deadline).result;
}

park_outcome park_any(std::span<const void* const> keys, park_validate validate,
                      const park_deadline& deadline) noexcept {
  if (keys.empty() || keys.size() > max_park_keys) return {park_result::invalid, 0};
  if (keys.size() == 1) {
    park_node node;
    return park_nodes(&node, keys, validate, deadline);
  }
  park_node nodes[max_park_keys];
  return park_nodes(nodes, keys, validate, deadline);
}

int unpark(const void* key, int count) noexcept {
  if (count <= 0) return 0;
  count_wake();
  std::uintptr_t const k = key_of(key);
  bucket& b = bucket_of(k);
  parker* chain = nullptr;
  int woken = 0;
  {
    std::lock_guard<std::mutex> g(b.lock);
    park_node* n = b.head;
    while (n && woken < count) {
      park_node* const next = n->next;
      if (n->key.load(std::memory_order_relaxed) == k) {  // Ordering: relaxed — guarded by b.lock
        b.erase(n);
        if (claim(n)) {
          n->owner->next_to_signal = chain;
          chain = n->owner;
          ++woken;
        }
      }
      n = next;
    }
  }
  signal_all(chain);
  return woken;
}

int requeue(const void* from, const void* to, int wake_count, int requeue_count,
            park_validate validate) noexcept {
  if (wake_count < 0) wake_count = 0;
  if (requeue_count < 0) requeue_count = 0;
  count_wake();
  std::uintptr_t const kf = key_of(from);
  std::uintptr_t const kt = key_of(to);
  bucket& bf = bucket_of(kf);
  bucket& bt = bucket_of(kt);
  // Lock order: by bucket address, so two requeues in opposite directions
  // cannot deadlock.
  bucket* first = &bf < &bt ? &bf : &bt;
  bucket* second = &bf < &bt ? &bt : &bf;
  std::unique_lock<std::mutex> g1(first->lock);
  std::unique_lock<std::mutex> g2;
  if (second != first) g2 = std::unique_lock<std::mutex>(second->lock);
  if (!validate(0)) return -1;

  parker* chain = nullptr;
  park_node* moved_head = nullptr;  // moved nodes, in order, linked through `next`
  park_node* moved_tail = nullptr;
  int woken = 0;
  int moved = 0;
  park_node* n = bf.head;
  while (n && (woken < wake_count || moved < requeue_count)) {
    park_node* const next = n->next;
    if (n->key.load(std::memory_order_relaxed) == kf) {  // Ordering: relaxed — guarded by bf.lock
      bf.erase(n);
      if (woken < wake_count) {
        if (claim(n)) {
          n->owner->next_to_signal = chain;
          chain = n->owner;
          ++woken;
        }
      } else if (n->owner->state.load(std::memory_order_relaxed) == state_waiting) {
        // Ordering: relaxed — a stale "waiting" only moves a dead node,
        // which the next wake on `to` unlinks without counting.
        n->next = nullptr;
        if (moved_tail) moved_tail->next = n; else moved_head = n;
        moved_tail = n;
        ++moved;
      }
    }
    n = next;
  }
  // Append after the scan, so a node moved within one bucket is not met again.
  while (moved_head) {
    park_node* const next = moved_head->next;
    // Ordering: relaxed — both bucket locks are held; a waiter re-reads the
    // key under the lock it takes.
    moved_head->key.store(kt, std::memory_order_relaxed);
    bt.push_back(moved_head);
    moved_head = next;
  }
  if (g2.owns_lock()) g2.unlock();
  g1.unlock();
  signal_all(chain);
  return woken + moved;
}

}  // namespace rouse::platform::detail
