// rouse's parking table: see parking_table.hpp for the protocol.
#include "rouse/config.hpp"

#include "parking_table.hpp"

#include <atomic>
#include <climits>
#include <condition_variable>
#include <mutex>
#include <type_traits>

#include "counters_internal.hpp"
#include "rouse/detail/waiter_queue.hpp"

#if !ROUSE_CONFIG_WAIT_BACKEND_GENERIC
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <ctime>
#endif

namespace rouse::platform::detail {
namespace {

namespace wq = ::rouse::detail;

constexpr std::size_t max_park_keys = 128;  // wait_any's limit (futex_waitv's)

// How a parked thread sleeps until its claimer signals it: the wake action
// of the table's waiters (a waker: see sleeper_vtable).
//
// Generic backend: a std::mutex and std::condition_variable; the waker sets
// `signaled` and notifies under the mutex, so the waiter (which returns only
// after seeing `signaled` under that mutex) cannot destroy them under it.
//
// Futex backend (the 1/2/8-byte atomic waits): a private futex on the
// sleeper's own word — one system call to sleep and one to wake, and no mutex
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
    return ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(w), op, value, ts, nullptr, FUTEX_BITSET_MATCH_ANY);
  }
  void signal() noexcept {
    // Ordering: release — pairs with the acquire loads below: the claim is
    // visible to the waiter once it sees 1.
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

// The sleeper as the waiter's waker. The queue releases the waiter, then
// calls this with the waker it took; the sleeper lives in the parked
// thread's frame, which does not return before it has been signalled.
void sleeper_wake(const void* data) noexcept { static_cast<sleeper*>(const_cast<void*>(data))->signal(); }
void sleeper_drop(const void*) noexcept {}
const void* sleeper_clone(const void* data) noexcept { return data; }
constexpr wq::waker_vtable sleeper_vtable{sleeper_clone, sleeper_wake, sleeper_wake, sleeper_drop};

struct park_node : wq::waiter_node {
  // Written only under the lock of the bucket it names (and, in requeue, the
  // new bucket's); read without a lock only to guess which lock to take.
  std::atomic<std::uintptr_t> key{0};
  int index = 0;
};

// 64 bytes: one cache line per bucket, so parking on one bucket does not slow
// a neighbour's.
struct alignas(64) bucket {
  std::mutex lock;
  wq::waiter_list list;  // guarded by `lock`
};
static_assert(sizeof(bucket) == 64, "one cache line per bucket");

bucket table[parking_buckets];

std::uintptr_t key_of(const void* p) noexcept { return reinterpret_cast<std::uintptr_t>(p); }
bucket& bucket_of(std::uintptr_t key) noexcept {
  return table[parking_bucket_index(reinterpret_cast<const void*>(key))];
}

// Matches the nodes parked on exactly `key` (under the bucket lock).
auto parked_on(std::uintptr_t key) noexcept {
  return [key](wq::waiter_node& n) {
    // Ordering: relaxed — guarded by the bucket lock.
    return static_cast<park_node&>(n).key.load(std::memory_order_relaxed) == key;
  };
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
    b.list.remove(nodes[i]);
    b.lock.unlock();
  }
}

// The key through which a waker claimed `w`.
int index_of_claim(wq::waiter& w) noexcept {
  auto* const n = reinterpret_cast<wq::waiter_node*>(w.claim());
  return static_cast<park_node*>(n)->index;
}

// Sleeps until signalled, or until the deadline passes on `Clock` (then
// claims itself, unless a waker claimed it first). True when it timed out.
template <class Clock>
bool sleep_until(wq::waiter& w, sleeper& s, typename Clock::time_point deadline) noexcept {
  for (;;) {
    if (s.template await_until<Clock>(deadline)) return false;
    if (Clock::now() >= deadline) {
      if (w.try_claim(wq::waiter::aborted)) return true;
      // A waker claimed us at the last moment: it will signal soon.
      s.await();
      return false;
    }
  }
}

bool sleep(wq::waiter& w, sleeper& s, const park_deadline& d) noexcept {
  switch (d.kind) {
    case park_deadline::clock::steady:
      return sleep_until<std::chrono::steady_clock>(w, s, d.steady);
    case park_deadline::clock::system:
      return sleep_until<std::chrono::system_clock>(w, s, d.system);
    case park_deadline::clock::none:
      break;
  }
  s.await();
  return false;
}

park_outcome park_nodes(park_node* nodes, std::span<const void* const> keys, park_validate validate,
                        const park_deadline& deadline) noexcept {
  count_wait();
  sleeper s;
  wq::waiter w(wq::waker(&s, &sleeper_vtable));
  std::size_t enqueued = 0;
  int invalid_at = -1;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    park_node& n = nodes[i];
    n.reset(&w);
    n.index = static_cast<int>(i);
    n.key.store(key_of(keys[i]), std::memory_order_relaxed);
    bucket& b = bucket_of(key_of(keys[i]));
    std::lock_guard<std::mutex> g(b.lock);
    // A waker that claimed us did so under a bucket lock; seeing it late
    // only costs enqueueing nodes that will be dead.
    if (!w.is_waiting()) break;  // already woken
    if (!validate(i)) {
      invalid_at = static_cast<int>(i);
      break;
    }
    b.list.push_back(n);
    ++enqueued;
  }

  park_outcome out{park_result::unparked, -1};
  if (invalid_at >= 0) {
    if (w.try_claim(wq::waiter::aborted)) {
      out = {park_result::invalid, invalid_at};
    } else {
      s.await();  // an earlier key was woken first: report that wake
      out = {park_result::unparked, index_of_claim(w)};
    }
  } else if (enqueued < keys.size()) {
    s.await();  // woken while still enqueueing
    out = {park_result::unparked, index_of_claim(w)};
  } else if (sleep(w, s, deadline)) {
    out = {park_result::timed_out, -1};
  } else {
    // The waiter saw `signaled` (under the sleeper's mutex, or by an acquire
    // load), which the claiming waker set after its claim.
    out = {park_result::unparked, index_of_claim(w)};
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
  wq::waiter_node* chain = nullptr;
  int woken;
  {
    std::lock_guard<std::mutex> g(b.lock);
    woken = b.list.claim(count, wq::waiter_list::by_node, parked_on(k), chain);
  }
  wq::waiter_list::wake_chain(chain);
  return woken;
}

int requeue(const void* from, const void* to, int wake_count, int requeue_count, park_validate validate) noexcept {
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

  wq::waiter_node* chain = nullptr;
  int const woken = wake_count > 0 ? bf.list.claim(wake_count, wq::waiter_list::by_node, parked_on(kf), chain) : 0;
  // Then move up to requeue_count of the rest, oldest first, onto `to`:
  // gathered first, appended after the scan, so that a node moved within
  // one bucket is not met again. Dead nodes of `from` met on the way go.
  wq::waiter_list moved;
  int moving = 0;
  for (wq::waiter_node* n = bf.list.front(); n && moving < requeue_count;) {
    wq::waiter_node* const next = wq::waiter_list::next_of(*n);
    if (parked_on(kf)(*n)) {
      bf.list.erase(*n);
      // A stale "waiting" only moves a dead node, which the next wake on
      // `to` unlinks without counting.
      if (n->owner()->is_waiting()) {
        moved.push_back(*n);
        ++moving;
      }
    }
    n = next;
  }
  while (wq::waiter_node* n = moved.front()) {
    moved.erase(*n);
    // Ordering: relaxed — both bucket locks are held; a waiter re-reads the
    // key under the lock it takes.
    static_cast<park_node*>(n)->key.store(kt, std::memory_order_relaxed);
    bt.list.push_back(*n);
  }
  if (g2.owns_lock()) g2.unlock();
  g1.unlock();
  wq::waiter_list::wake_chain(chain);
  return woken + moving;
}

}  // namespace rouse::platform::detail
