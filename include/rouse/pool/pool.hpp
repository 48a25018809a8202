// rouse/pool/pool.hpp — a fork-join pool whose dispatch is one futex word.
//
//   rouse::pool pool;                                   // N = the CPUs this process may use
//   pool.run([](unsigned index, unsigned count) {...}); // every participant once
//   pool.parallel_for(std::size_t{0}, n, [&](std::size_t i) {...});  // split over all participants, f(i)
//   pool.parallel_for(std::size_t{0}, n, [&](rouse::index_range<std::size_t> r) {...});  // f(range)
//   pool.parallel_for(std::size_t{0}, n, 256, f);                    // chunks of 256, taken on demand
//   double s = pool.parallel_reduce(std::size_t{0}, n, 0.0, [&](std::size_t i) { return x[i]; }, std::plus<>{});
//
// What it is for: data parallelism on jobs far smaller than OpenMP, oneTBB
// or a condition-variable pool can split profitably. A pool of N
// participants is N-1 worker threads plus the thread that calls it: the
// caller publishes the job in one atomic exchange, wakes sleeping workers
// with one system call (none when they are spinning), does share 0 itself,
// and waits for the others. Workers claim their share with one fetch_sub
// and report with another. See docs/pool.md for the design and the numbers.
//
// Lifecycle. Construct (starts N-1 threads), call run / parallel_for /
// parallel_reduce any number of times from any threads, destroy (stops and
// joins the workers). A job's callable is invoked concurrently on several
// threads: it must be safe to call that way.
// - Several outside threads calling at once are serialized: one job runs at
//   a time, the others wait for it (on a futex, not spinning).
// - A call made from inside a job of the same pool (a nested run,
//   parallel_for or parallel_reduce), directly or from a job of another
//   pool that this job called (on any of that pool's participants), runs
//   inline on the calling participant, as if the pool had one
//   participant: no deadlock. A job of one pool may use another pool; two
//   callers that enter pools in opposite orders (one calls A, whose job
//   calls B; the other calls B, whose job calls A) can deadlock, like locks
//   taken in a cycle. Inline means on the same thread: a job that waits for
//   another thread which calls this pool deadlocks (that call waits for the
//   job to end).
// - An exception thrown by the callable on any participant stops the job
//   (participants that have not started skip it; loops stop at the next
//   1024-index block or chunk), and is rethrown by the call once every
//   participant has stopped touching the job. With several, the first one
//   recorded wins. The pool stays usable.
// - Misuse, diagnosed in debug builds (ROUSE_CHECK_USAGE, then abort):
//   destroying the pool from inside one of its own jobs (also from a job of
//   another pool that it called); a grain below 1.
// - Destruction (std's rule for mutexes; docs/design.md, rule 7): the destructor
//   takes the callers' lock (waiting for a job that runs), stops and joins
//   the workers. So a thread that knows every other call on the pool has
//   got its turn (its job has started: it saw one of its effects) may
//   destroy the pool at once, even while those calls are still returning:
//   once a call has released the callers' lock it touches nothing of the
//   pool (parallel_reduce's final combine reads only the caller's own
//   partial results). A call still waiting for its turn when the
//   destructor runs is invalid.
//
// Size: sizeof(rouse::pool) is the 384-byte dispatch core, a vector of
// threads and the 256-byte piece cursors' header (static_assert in
// src/pool/pool.cpp), plus 128 bytes of cursor per participant on the heap;
// each worker has its thread's stack.
//
// Fairness: outside callers are served in no particular order. Inside a
// job, parallel_for without a grain and parallel_reduce split statically
// (participant i gets the i-th of N nearly equal pieces); a range of at
// least 4 * 2^14 indices per participant is cut into 4-8 pieces per
// participant instead, each participant running its own pieces first and
// then taking what is left of the others' (rouse/pool/pieces.hpp), so a
// participant on a slow or busy CPU holds the job back by at most one
// piece. With a grain, participants take chunks on demand (one relaxed
// fetch_add per chunk).
//
// Cost with nobody waiting (workers spinning): one exchange and a lock
// round trip on the caller, two read-modify-writes per worker, no system
// call. A range cut into pieces adds one relaxed fetch_add on the caller
// (the job's stamp), m - 1 CASes on its own cursor per participant, and a
// read of each other participant's cursor when it runs out. When workers sleep (idle longer than their spin budget): one
// FUTEX_WAKE and one sched_yield per job. An idle pool uses no CPU once the
// spin budgets are spent (at most max_spin).
//
// Placement: a worker that finds itself on the CPU its caller published
// from moves off it, and a caller woken beside the worker that woke it
// does the same (affinity narrowed, then restored: the threads' masks are
// left as they were). See docs/pool.md, "Placement".
//
// Across processes: no.
//
// Determinism: parallel_reduce combines init, then the partial result of
// each piece in order (participant 0, 1, ..., N-1 for a static split; piece
// 0, 1, ..., N*m-1 for a cut range), each partial folded left to right over
// its piece. The pieces depend only on the range's length and the pool's
// size, not on who ran them: for a given pool size the result is the same
// bit for bit on every run (floating point included). A call nested inside
// a job of the pool runs as if the pool had one participant (one piece,
// folded left to right), so it gives what a pool of size 1 gives, which
// may differ in its last bits from the same call made from outside.
//
// Memory ordering: everything the calling thread did before a call
// happens-before every invocation of the callable, and every invocation
// happens-before the call returns (or rethrows). See rouse/pool/dispatch.hpp.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <optional>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "rouse/detail/diagnostics.hpp"
#include "rouse/detail/sync_types.hpp"
#include "rouse/pool/dispatch.hpp"
#include "rouse/pool/pieces.hpp"

namespace rouse {

namespace detail {
// An index type of the pool's loops: any integer type but bool, of at most
// 64 bits (counts are 64-bit; a wider type would be cut silently).
template <class I>
concept pool_index = std::integral<I> && !std::same_as<std::remove_cv_t<I>, bool> && sizeof(I) <= 8;
}  // namespace detail

// A half-open range of indices [first, last): what a range-form callable gets.
template <detail::pool_index I>
struct index_range {
  I first;
  I last;

  constexpr std::make_unsigned_t<I> size() const noexcept {
    return static_cast<std::make_unsigned_t<I>>(static_cast<std::make_unsigned_t<I>>(last) -
                                                static_cast<std::make_unsigned_t<I>>(first));
  }
  constexpr bool empty() const noexcept { return !(first < last); }

  // Iterates the indices: for (auto i : range).
  struct iterator {
    using value_type = I;
    using difference_type = std::ptrdiff_t;
    I value;
    constexpr I operator*() const noexcept { return value; }
    constexpr iterator& operator++() noexcept {
      ++value;
      return *this;
    }
    constexpr iterator operator++(int) noexcept {
      iterator const before = *this;
      ++value;
      return before;
    }
    friend constexpr bool operator==(iterator, iterator) noexcept = default;
  };
  constexpr iterator begin() const noexcept { return {first}; }
  constexpr iterator end() const noexcept { return {first < last ? last : first}; }
};

struct pool_options {
  // Participants, the calling thread included (so threads - 1 workers are
  // started). 0: the number of CPUs this process may run on.
  unsigned threads = 0;
  // The least a waiting worker polls for the next job before it sleeps on
  // the futex. The default, 20 µs, is a few futex sleep-to-running
  // hand-offs between running CPUs (docs/pool.md, "Spin budget"): spinning
  // much longer than the cost of sleeping and being
  // woken cannot save more than it burns, much shorter puts a wake-up on
  // the critical path of jobs issued in quick succession.
  std::chrono::nanoseconds spin = std::chrono::microseconds(20);
  // The most a waiting thread polls. A worker polls for twice its recently
  // measured wake-up delay (a running average), at least `spin`, at most
  // `max_spin` (room for the wake-up of an idle vCPU on a VM; docs/pool.md).
  // The caller, waiting for its job's last report,
  // polls for `max_spin` (yielding its CPU after 64 polls). At or below
  // `spin`: every budget is `spin`, fixed (0 and 0: always sleep;
  // nanoseconds::max(): never sleep).
  std::chrono::nanoseconds max_spin = std::chrono::milliseconds(1);
  // Pin worker i (1..threads-1) to the i-th CPU of the process's affinity
  // mask (sched_setaffinity); the calling thread is never pinned (its mask
  // is only narrowed for a moment to move it, see "Placement" above). Best
  // effort: a refused pin leaves that worker unpinned. See docs/pool.md.
  bool pin = false;
};

namespace detail {

// The pools whose jobs the current thread runs, innermost first: a call of
// a job that calls another pool pushes a mark on the chain (a worker's
// chain starts with its own pool; while it runs a job it has the caller's
// chain). A call into any pool on the chain runs inline: that pool's job
// waits for this one.
struct pool_mark {
  const void* pool;
  const pool_mark* outer;
};
inline thread_local const pool_mark* pool_marks = nullptr;
inline bool inside_pool(const void* p) noexcept {
  for (const pool_mark* m = pool_marks; m != nullptr; m = m->outer)
    if (m->pool == p) return true;
  return false;
}

// The piece [begin, end) of n indices that participant `index` of `count` gets.
struct pool_piece {
  std::uint64_t begin, end;
};
constexpr pool_piece static_piece(std::uint64_t n, unsigned index, unsigned count) noexcept {
  std::uint64_t const base = n / count, extra = n % count;
  std::uint64_t const begin = base * index + std::min<std::uint64_t>(index, extra);
  return {begin, begin + base + (index < extra ? 1 : 0)};
}

template <detail::pool_index I>
constexpr I index_at(I first, std::uint64_t offset) noexcept {
  using U = std::make_unsigned_t<I>;
  return static_cast<I>(static_cast<U>(static_cast<U>(first) + static_cast<U>(offset)));
}

template <detail::pool_index I>
constexpr std::uint64_t index_count(I first, I last) noexcept {
  using U = std::make_unsigned_t<I>;
  if (!(first < last)) return 0;
  return static_cast<std::uint64_t>(static_cast<U>(static_cast<U>(last) - static_cast<U>(first)));
}

// f(i) when f takes an index, else f(index_range).
template <class F, class I>
concept pool_index_body = std::invocable<F&, I>;
template <class F, class I>
concept pool_range_body = !pool_index_body<F, I> && std::invocable<F&, index_range<I>>;

// An element-form loop checks for a failed participant every this many indices.
inline constexpr std::uint64_t pool_check_block = 1024;

template <class I, class F>
void pool_apply(F& f, I first, std::uint64_t begin, std::uint64_t end, const pool_dispatch* core) {
  if constexpr (pool_index_body<F, I>) {
    while (begin < end) {
      std::uint64_t const stop_at = end - begin > pool_check_block ? begin + pool_check_block : end;
      for (; begin < stop_at; ++begin) f(index_at(first, begin));
      if (core != nullptr && core->stopping()) return;
    }
  } else {
    static_assert(pool_range_body<F, I>, "rouse::pool: the callable must take an index or an index_range");
    f(index_range<I>{index_at(first, begin), index_at(first, end)});
  }
}

// Folds map over [begin, end) left to right: map(b) (+) map(b+1) (+) ...
template <class T, class I, class Map, class Combine>
std::optional<T> pool_fold(Map& map, Combine& combine, I first, std::uint64_t begin, std::uint64_t end,
                           const pool_dispatch* core) {
  if (begin >= end) return std::nullopt;
  if constexpr (std::invocable<Map&, I>) {
    std::optional<T> acc(std::in_place, map(index_at(first, begin)));
    ++begin;
    while (begin < end) {
      std::uint64_t const stop_at = end - begin > pool_check_block ? begin + pool_check_block : end;
      for (; begin < stop_at; ++begin) *acc = combine(std::move(*acc), T(map(index_at(first, begin))));
      if (core != nullptr && core->stopping()) return acc;
    }
    return acc;
  } else {
    static_assert(std::invocable<Map&, index_range<I>>,
                  "rouse::pool: parallel_reduce's map must take an index or an index_range");
    return std::optional<T>(std::in_place, map(index_range<I>{index_at(first, begin), index_at(first, end)}));
  }
}

// A piece's partial result for parallel_reduce (pool_result), and the
// same on a cache line of its own (pool_reduce_slot: one per participant of
// a static split). Only the participant that runs a non-empty piece writes
// its result (put), once, and the caller reads it (get) after the job, for
// non-empty pieces only: such a piece always yields a value unless the job
// fails, and then the call rethrows without reading.
// - Trivially destructible T: raw storage nobody initializes. An
//   initialized slot (the caller constructing a std::optional per job) made
//   the worker's write take that line from the caller's cache first, and
//   its report wait for the transfer: at N = 2^12 on 2 vCPUs ~430 ns apart,
//   1,272-1,318 ns a job raw against 1,686-2,011 initialized (sequential
//   1,220; side harness, interleaved). Nothing to destroy.
// - Other T: a std::optional the caller's array constructs and destroys.
template <class T, bool Raw = std::is_trivially_destructible_v<T>>
struct pool_result {
  void put(T&& v) noexcept(std::is_nothrow_move_constructible_v<T>) {
    ::new (static_cast<void*>(bytes)) T(std::move(v));
  }
  T& get() noexcept { return *std::launder(reinterpret_cast<T*>(bytes)); }
  alignas(T) unsigned char bytes[sizeof(T)];
};
template <class T>
struct pool_result<T, false> {
  void put(T&& v) { value.emplace(std::move(v)); }
  T& get() noexcept { return *value; }
  std::optional<T> value;
};
// A line of its own, or T's own alignment where that is wider (an alignas
// below the type's alignment is ill-formed).
template <class T>
struct alignas(std::max<std::size_t>(64, alignof(T))) pool_reduce_slot : pool_result<T> {};

// `count` default-initialized E (raw result slots stay untouched) in a
// buffer of `Bytes` on the caller's stack when they fit, else on the heap:
// an allocation would delay the job's publish, and a large T must not put
// megabytes on the stack (16 slots of a 1 MiB histogram would). The buffer
// is raw bytes, not a std::array of E: some standard libraries give
// std::array<E, 0> the size of one E.
template <class E, std::size_t Bytes>
class pool_scratch {
  static_assert(std::is_nothrow_default_constructible_v<E>);

 public:
  explicit pool_scratch(unsigned count) : count_(count) {
    if (count <= inline_count) {
      data_ = reinterpret_cast<E*>(local_);
      for (unsigned i = 0; i < count; ++i) ::new (static_cast<void*>(data_ + i)) E;  // default-init
    } else {
      heap_.reset(new E[count]);
      data_ = heap_.get();
    }
  }
  ~pool_scratch() {
    if (!heap_) std::destroy_n(data_, count_);
  }
  pool_scratch(const pool_scratch&) = delete;
  pool_scratch& operator=(const pool_scratch&) = delete;
  E* data() const noexcept { return data_; }

 private:
  static constexpr std::size_t inline_count = Bytes / sizeof(E);
  alignas(E) unsigned char local_[inline_count == 0 ? 1 : inline_count * sizeof(E)];
  unsigned count_;
  std::unique_ptr<E[]> heap_;
  E* data_ = nullptr;
};

// A closure that a worker reads from the caller's stack, starting a cache
// line: one line to move per job where the closure fits in 64 bytes, not two
// when it straddles a boundary.
template <class F>
struct alignas(64) line_closure {
  F f;
};
template <class F>
line_closure(F) -> line_closure<F>;

// The partial results of one participant's pieces (rouse/pool/pieces.hpp),
// side by side on lines of their own: the owner writes them all, so where
// several results fit in a line (8 of 8 bytes do in 64) it takes that line
// once per job instead of once per result (each transfer would hold up its
// next claim, a locked instruction that waits for earlier stores). A thief
// writes the results of the pieces it took into the owner's group (false
// sharing, at the tail of a job only).
template <class T>
struct alignas(std::max<std::size_t>(128, alignof(T))) pool_piece_results {
  pool_result<T> piece[pool_pieces::max_pieces];
};

}  // namespace detail

class pool {
 public:
  pool();
  explicit pool(pool_options options);
  ~pool();
  pool(const pool&) = delete;
  pool& operator=(const pool&) = delete;

  // Participants of every job: the worker threads plus the calling thread.
  unsigned size() const noexcept { return core_.participants(); }
  std::chrono::nanoseconds spin() const noexcept { return core_.spin(); }
  std::chrono::nanoseconds max_spin() const noexcept { return core_.max_spin(); }

  // Calls f(index, count) once for every index in [0, count), count =
  // size(), and returns when all have returned. Index 0 runs on the calling
  // thread; any other index may run on a worker or, when the caller finishes
  // first and that index is not yet taken, on the calling thread too (so an
  // index is not a thread: use it to pick work, not thread-local state).
  // Nested inside a job of this pool: f(0, 1) inline. f may be a function.
  template <class F>
  requires std::invocable<F&, unsigned, unsigned>
  void run(F&& f) {
    if constexpr (std::is_function_v<std::remove_reference_t<F>>) {
      run(&f);  // through a pointer: a function is not an object void* can name
    } else {
      if (nested()) {
        f(0u, 1u);
        return;
      }
      using body = std::remove_reference_t<F>;
      detail::pool_job job;
      job.invoke = [](void* context, unsigned index, unsigned count) { (*static_cast<body*>(context))(index, count); };
      job.context = const_cast<void*>(static_cast<const void*>(std::addressof(f)));
      dispatch(job);
    }
  }

  // Calls f for every index in [first, last) exactly once, splitting the
  // range statically into size() nearly equal pieces, or, for a range of at
  // least 4 * 2^14 indices per participant, into 4-8 pieces per participant
  // that participants take over from slower ones (see "Fairness" above). f
  // takes an index (f(i)) or, if it does not, an index_range (called once
  // per non-empty piece).
  template <detail::pool_index I, class F>
  void parallel_for(I first, I last, F&& f) {
    std::uint64_t const n = detail::index_count(first, last);
    if (n == 0) return;
    if (n == 1 || size() == 1 || nested()) {
      detail::pool_apply(f, first, 0, n, nullptr);
      return;
    }
    if (unsigned const m = detail::pool_pieces::pieces_per_participant(n, size()); m > 1) {
      run_pieces(n, m, [first, &f, this](unsigned, std::uint64_t begin, std::uint64_t end) {
        detail::pool_apply(f, first, begin, end, &core_);
      });
      return;
    }
    detail::line_closure const job{[n, first, &f, this](unsigned index, unsigned count) {
      detail::pool_piece const piece = detail::static_piece(n, index, count);
      if (piece.begin < piece.end) detail::pool_apply(f, first, piece.begin, piece.end, &core_);
    }};
    run(job.f);
  }

  // As above, but the range is cut into chunks of `grain` indices (the last
  // may be shorter) that participants take one at a time as they finish
  // the previous one: for uneven work. A range form f gets one chunk per call.
  template <detail::pool_index I, class F>
  void parallel_for(I first, I last, std::type_identity_t<I> grain, F&& f) {
    ROUSE_CHECK_USAGE(grain > 0, "rouse::pool", "parallel_for() with a grain below 1");
    std::uint64_t const n = detail::index_count(first, last);
    if (n == 0) return;
    std::uint64_t const g = grain > 0 ? static_cast<std::uint64_t>(grain) : 1;
    if (n <= g || size() == 1 || nested()) {
      for (std::uint64_t b = 0; b < n; b += std::min(g, n - b))
        detail::pool_apply(f, first, b, b + std::min(g, n - b), nullptr);
      return;
    }
    std::uint64_t const chunks = (n - 1) / g + 1;
    struct alignas(128) cursor {
      detail::atomic<std::uint64_t> next{0};
    } next_chunk;
    run([&](unsigned, unsigned) {
      while (!core_.stopping()) {
        // Ordering: relaxed: the cursor only hands out chunk numbers; the
        // job itself was published by the dispatch word.
        std::uint64_t const c = next_chunk.next.fetch_add(1, std::memory_order_relaxed);
        if (c >= chunks) return;
        std::uint64_t const b = c * g;
        detail::pool_apply(f, first, b, b + std::min(g, n - b), nullptr);
      }
    });
  }

  // Reduces [first, last): the range is cut into pieces as parallel_for
  // cuts it; each piece is folded with combine, starting from map of its
  // first index (map takes an index, or an index_range and returns the
  // piece's value); the call returns combine(...combine(combine(init, p0),
  // p1)..., pK-1) over the non-empty pieces, in piece order. No lock: each
  // partial result goes to a slot of its own (one cache line per
  // participant, or per participant's group of pieces).
  template <detail::pool_index I, class T, class Map, class Combine>
  T parallel_reduce(I first, I last, T init, Map&& map, Combine&& combine) {
    std::uint64_t const n = detail::index_count(first, last);
    if (n == 0) return init;
    if (n == 1 || size() == 1 || nested()) {
      std::optional<T> all = detail::pool_fold<T>(map, combine, first, 0, n, nullptr);
      return combine(std::move(init), std::move(*all));
    }
    using slot = detail::pool_reduce_slot<T>;
    if (unsigned const m = detail::pool_pieces::pieces_per_participant(n, size()); m > 1)
      return reduce_pieces<T>(n, m, first, std::move(init), map, combine);
    // Read before the job: once run() returns, the pool may be gone (see
    // "Destruction" above), so the fold below does not call size().
    unsigned const participants = size();
    detail::pool_scratch<slot, 16 * 64> scratch(participants);  // 16 slots of a small T inline
    slot* const slots = scratch.data();
    // n and first by value, so that a worker reads them from the closure,
    // not from the caller's stack frame; the closure on a line of its own.
    detail::line_closure const job{[n, first, slots, &map, &combine, this](unsigned index, unsigned count) {
      detail::pool_piece const piece = detail::static_piece(n, index, count);
      if (piece.begin < piece.end)
        slots[index].put(*detail::pool_fold<T>(map, combine, first, piece.begin, piece.end, &core_));
    }};
    run(job.f);
    T result = std::move(init);
    for (unsigned i = 0; i < participants; ++i) {
      detail::pool_piece const piece = detail::static_piece(n, i, participants);
      if (piece.begin < piece.end) result = combine(std::move(result), std::move(slots[i].get()));
    }
    return result;
  }

 private:
  bool nested() const noexcept { return detail::inside_pool(this); }
  void dispatch(detail::pool_job job);
  void worker_main(int cpu);

  // Calls body(q, begin, end) for every piece q of [0, n) cut into m =
  // pieces_per_participant(n, size()) > 1 pieces per participant (none is
  // empty), each participant taking its own pieces first and then what is
  // left of the others' (rouse/pool/pieces.hpp).
  // parallel_reduce over a range cut into pieces. Out of line, so that its
  // 2 KiB of result groups do not enlarge the frame of the small-range path
  // (whose closure a worker reads from the caller's stack).
  template <class T, class I, class Map, class Combine>
  [[gnu::noinline]] T reduce_pieces(std::uint64_t n, unsigned m, I first, T init, Map& map, Combine& combine) {
    unsigned const participants = size();  // read before the job, as in parallel_reduce()
    detail::pool_scratch<detail::pool_piece_results<T>, 2048> groups(participants);
    auto* const g = groups.data();
    run_pieces(n, m, [first, g, m, &map, &combine, this](unsigned q, std::uint64_t begin, std::uint64_t end) {
      g[q / m].piece[q % m].put(*detail::pool_fold<T>(map, combine, first, begin, end, &core_));
    });
    // Every piece is non-empty (m <= n / size() / min_piece), so each has a result.
    T result = std::move(init);
    for (unsigned owner = 0; owner < participants; ++owner)
      for (unsigned k = 0; k < m; ++k) result = combine(std::move(result), std::move(g[owner].piece[k].get()));
    return result;
  }

  template <class Body>
  void run_pieces(std::uint64_t n, unsigned m, Body body) {
    std::uint64_t const stamp = pieces_.next_stamp();
    // The body by value, beside n: a worker reads one closure, not two
    // objects of the caller's frame (each a line to move).
    run([n, m, stamp, body, this](unsigned index, unsigned count) {
      unsigned const pieces = count * m;
      // No piece is empty: m <= n / count / min_piece.
      pieces_.run_pieces(
          index, stamp, m,
          [&](unsigned q) {
            detail::pool_piece const piece = detail::static_piece(n, q, pieces);
            body(q, piece.begin, piece.end);
          },
          [this] { return core_.stopping(); });
    });
  }

  detail::pool_dispatch core_;
  std::vector<std::thread> threads_;
  detail::pool_pieces pieces_;
};

// The calling thread runs its share of the job marked as inside this pool
// (for nested calls), and takes the mark off afterwards. The workers run
// theirs under the caller's chain (this pool, then the pools whose jobs
// the caller is running), so that a call they make into any of those runs
// inline too: each of those jobs waits for this one. The caller's mark
// outlives every worker's use of it: run_job() returns once every
// participant is done with the job.
inline void pool::dispatch(detail::pool_job job) {
  struct mark {
    detail::pool_mark m;
    explicit mark(const void* p) noexcept : m{p, detail::pool_marks} { detail::pool_marks = &m; }
    ~mark() { detail::pool_marks = m.outer; }
    mark(const mark&) = delete;
    mark& operator=(const mark&) = delete;
  } const guard(this);
  struct marked {
    detail::pool_job job;
    const detail::pool_mark* chain;
    static void invoke(void* context, unsigned index, unsigned count) {
      auto const* const self = static_cast<const marked*>(context);
      if (index == 0) return self->job.invoke(self->job.context, index, count);  // the caller: marked above
      struct under {
        const detail::pool_mark* saved;
        explicit under(const detail::pool_mark* chain) noexcept : saved(std::exchange(detail::pool_marks, chain)) {}
        ~under() { detail::pool_marks = saved; }
        under(const under&) = delete;
        under& operator=(const under&) = delete;
      } const as_caller(self->chain);
      self->job.invoke(self->job.context, index, count);
    }
  } const with_chain{job, &guard.m};
  core_.run_job({&marked::invoke, const_cast<marked*>(&with_chain)});
}

}  // namespace rouse
