// rouse/detail/relacy_sync.hpp — the Relacy side of detail/sync_types.hpp.
//
// Included only by model tests (ROUSE_MODEL_RELACY). Wraps rl::atomic with
// the std::atomic member functions protocols use, translating memory orders
// and carrying the caller's source location into Relacy's history, and maps
// the futex calls onto Relacy's futex waitset. Timed waits may time out at
// any point Relacy chooses, which is how the models explore timeouts.
#pragma once

#ifndef ROUSE_MODEL_RELACY
#error "relacy_sync.hpp is for model tests only: define ROUSE_MODEL_RELACY"
#endif

#include <relacy/relacy.hpp>
// relacy.hpp #defines memory_order_*, new, delete, malloc, assert and errno
// for code written against it; rouse's code is ordinary C++ and its atomics
// go through the wrapper below, so take those macros back.
#undef memory_order_relaxed
#undef memory_order_consume
#undef memory_order_acquire
#undef memory_order_release
#undef memory_order_acq_rel
#undef memory_order_seq_cst
#undef new
#undef delete
#undef malloc
#undef calloc
#undef realloc
#undef free
#undef assert
#undef errno
#include <cerrno>

#include <atomic>
#include <chrono>
#include <climits>
#include <cstdint>
#include <source_location>
#include <type_traits>

namespace rouse::platform {
enum class wait_result : std::uint8_t { woken, timed_out };
}

namespace rouse::detail {

using location = std::source_location;

inline rl::debug_info info_of(location const& l) noexcept {
  return rl::debug_info(l.function_name(), l.file_name(), l.line());
}

inline rl::memory_order to_rl(std::memory_order mo) noexcept {
  switch (mo) {
    case std::memory_order_relaxed:
      return rl::mo_relaxed;
    case std::memory_order_consume:
      return rl::mo_consume;
    case std::memory_order_acquire:
      return rl::mo_acquire;
    case std::memory_order_release:
      return rl::mo_release;
    case std::memory_order_acq_rel:
      return rl::mo_acq_rel;
    default:
      return rl::mo_seq_cst;
  }
}

// The failure order of a compare-exchange given only the success order.
inline std::memory_order failure_of(std::memory_order mo) noexcept {
  if (mo == std::memory_order_acq_rel) return std::memory_order_acquire;
  if (mo == std::memory_order_release) return std::memory_order_relaxed;
  return mo;
}

namespace model {
// Words whose object has been destroyed. A release may wake a futex address
// after the object was freed (docs/design.md, rule 7: a wake never reads the memory);
// the model lets such a wake find nobody, while every other access to a
// destroyed word is reported by Relacy ("access to freed memory"). A fixed
// table, not a container: Relacy checks the heap for leaks per iteration.
// A ring that keeps the most recent `capacity` destructions: entries of
// earlier iterations and suites are never cleared (only a word built again
// at the same address leaves), so a table that stopped adding once full
// would, after enough iterations, forget a word destroyed in this one.
struct retired_words {
  static constexpr int capacity = 256;
  const void* slots[capacity] = {};
  int next = 0;
  void add(const void* p) noexcept {
    slots[next] = p;
    next = (next + 1) % capacity;
  }
  void remove(const void* p) noexcept {
    for (auto& s : slots)
      if (s == p) s = nullptr;
  }
  bool contains(const void* p) const noexcept {
    for (auto const* s : slots)
      if (s == p) return true;
    return false;
  }
};
inline retired_words& retired() noexcept {
  static retired_words r;
  return r;
}

inline model_fault& active_fault() noexcept {
  static model_fault f = model_fault::none;
  return f;
}
}  // namespace model

// True when a model test switched fault `f` on (sync_types.hpp).
inline bool model_fault_on(model_fault f) noexcept { return model::active_fault() == f; }

// Switches a fault on for the life of the scope (a model test's main()).
class model_fault_scope {
 public:
  explicit model_fault_scope(model_fault f) noexcept { model::active_fault() = f; }
  ~model_fault_scope() { model::active_fault() = model_fault::none; }
  model_fault_scope(const model_fault_scope&) = delete;
  model_fault_scope& operator=(const model_fault_scope&) = delete;
};

template <class T>
class atomic {
 public:
  atomic() noexcept { model::retired().remove(this); }
  atomic(T v) noexcept : a_(v) {
    model::retired().remove(this);
  }  // NOLINT: mirrors std::atomic's converting constructor
  ~atomic() { model::retired().add(this); }
  atomic(const atomic&) = delete;
  atomic& operator=(const atomic&) = delete;

  T load(std::memory_order mo = std::memory_order_seq_cst, location l = location::current()) const {
    return const_cast<rl::atomic<T>&>(a_).load(to_rl(mo), info_of(l));
  }
  void store(T v, std::memory_order mo = std::memory_order_seq_cst, location l = location::current()) {
    a_.store(v, to_rl(mo), info_of(l));
  }
  T exchange(T v, std::memory_order mo = std::memory_order_seq_cst, location l = location::current()) {
    return a_.exchange(v, to_rl(mo), info_of(l));
  }
  bool compare_exchange_strong(T& expected, T desired, std::memory_order mo = std::memory_order_seq_cst,
                               location l = location::current()) {
    return compare_exchange_strong(expected, desired, mo, failure_of(mo), l);
  }
  bool compare_exchange_strong(T& expected, T desired, std::memory_order success, std::memory_order failure,
                               location l = location::current()) {
    return a_.compare_exchange_strong(expected, desired, to_rl(success), info_of(l), to_rl(failure), info_of(l));
  }
  bool compare_exchange_weak(T& expected, T desired, std::memory_order mo = std::memory_order_seq_cst,
                             location l = location::current()) {
    return compare_exchange_weak(expected, desired, mo, failure_of(mo), l);
  }
  bool compare_exchange_weak(T& expected, T desired, std::memory_order success, std::memory_order failure,
                             location l = location::current()) {
    return a_.compare_exchange_weak(expected, desired, to_rl(success), info_of(l), to_rl(failure), info_of(l));
  }
  T fetch_add(T v, std::memory_order mo = std::memory_order_seq_cst, location l = location::current()) {
    return a_.fetch_add(v, to_rl(mo), info_of(l));
  }
  T fetch_sub(T v, std::memory_order mo = std::memory_order_seq_cst, location l = location::current()) {
    return a_.fetch_sub(v, to_rl(mo), info_of(l));
  }
  T fetch_and(T v, std::memory_order mo = std::memory_order_seq_cst, location l = location::current()) {
    return a_.fetch_and(v, to_rl(mo), info_of(l));
  }
  T fetch_or(T v, std::memory_order mo = std::memory_order_seq_cst, location l = location::current()) {
    return a_.fetch_or(v, to_rl(mo), info_of(l));
  }
  T fetch_xor(T v, std::memory_order mo = std::memory_order_seq_cst, location l = location::current()) {
    return a_.fetch_xor(v, to_rl(mo), info_of(l));
  }

  // For the futex mapping below.
  rl::atomic<T>& raw() const noexcept { return const_cast<rl::atomic<T>&>(a_); }

 private:
  rl::atomic<T> a_;
};

template <class T>
using unsync = rl::var<T>;
template <class T>
inline rl::var_proxy<T> unsync_ref(unsync<T>& v, location l = location::current()) {
  return v(info_of(l));
}
template <class T>
inline T unsync_load(unsync<T>& v, location l = location::current()) {
  return v(info_of(l));
}
template <class T>
inline void unsync_store(unsync<T>& v, T x, location l = location::current()) {
  v(info_of(l)) = x;
}
template <class T>
inline T unsync_hint(const unsync<T>&) noexcept {
  return T{};
}

using wait_result = platform::wait_result;

namespace model {
// The same steps as Relacy's own futex model: a seq_cst fence, an atomic
// check of the value, then park in the word's waitset (which may also wake
// spuriously, or time out when `timed`).
inline bool futex_wait(const atomic<std::uint32_t>& w, std::uint32_t expected, bool timed, location const& l) {
  rl::context& c = rl::ctx();
  rl::debug_info const info = info_of(l);
  c.sched();
  c.atomic_thread_fence_seq_cst();
  std::uint32_t v;
  {
    rl::preemption_disabler pd(c);
    v = w.raw().load(rl::mo_acquire, info);
  }
  if (v != expected) return false;
  return w.raw().wait(c, timed, true, info) == rl::unpark_reason_timeout;
}
inline int futex_wake(const atomic<std::uint32_t>& w, int count, location const& l) {
  if (count <= 0) return 0;
  rl::context& c = rl::ctx();
  c.sched();
  c.atomic_thread_fence_seq_cst();
  // After the scheduling points above (the fence is one too), where the
  // object may have been destroyed: a wake on a freed address finds nobody
  // of ours sleeping there.
  if (retired().contains(&w)) return 0;
  return static_cast<int>(w.raw().wake(c, static_cast<rl::thread_id_t>(count), info_of(l)));
}
}  // namespace model

// A clock for model tests. Model time stands still, except that a timed wait
// that times out moves it on by one tick: a deadline of
// `model_clock::now() + model_clock::duration(1)` has passed exactly when
// some timed wait has timed out since (steady_clock deadlines are judged
// by the real clock, which the model does not control). reset() in a
// suite's before().
struct model_clock {
  using rep = long;
  using period = std::nano;
  using duration = std::chrono::duration<rep, period>;
  using time_point = std::chrono::time_point<model_clock>;
  static constexpr bool is_steady = true;
  static rep& ticks() noexcept {
    static rep t = 0;
    return t;
  }
  static time_point now() noexcept { return time_point(duration(ticks())); }
  static void reset() noexcept { ticks() = 0; }
};

inline void wait(const atomic<std::uint32_t>& w, std::uint32_t expected, location l = location::current()) {
  model::futex_wait(w, expected, false, l);
}
template <class Clock, class Duration>
inline wait_result wait_until(const atomic<std::uint32_t>& w, std::uint32_t expected,
                              std::chrono::time_point<Clock, Duration>, location l = location::current()) {
  if (!model::futex_wait(w, expected, true, l)) return wait_result::woken;
  ++model_clock::ticks();
  return wait_result::timed_out;
}
inline int wake(const atomic<std::uint32_t>& w, int count, location l = location::current()) {
  return model::futex_wake(w, count, l);
}
inline int wake_one(const atomic<std::uint32_t>& w, location l = location::current()) {
  return model::futex_wake(w, 1, l);
}
inline int wake_all(const atomic<std::uint32_t>& w, location l = location::current()) {
  // Relacy's thread ids are small; any count above the thread count wakes all.
  return model::futex_wake(w, 1 << 20, l);
}
// A wait on a deadline object (detail/deadline.hpp): an untimed wait for a
// no_deadline, a wait that may time out at any point (moving model time on)
// for a timed one.
template <class Deadline>
requires requires { Deadline::timed(); }
inline wait_result wait_until(const atomic<std::uint32_t>& w, std::uint32_t expected, const Deadline&,
                              location l = location::current()) {
  if (!model::futex_wait(w, expected, Deadline::timed(), l) || !Deadline::timed()) return wait_result::woken;
  ++model_clock::ticks();
  return wait_result::timed_out;
}

inline void spin_pause() { rl::yield(1, RL_INFO); }

// A yield is a scheduling point, as a pause is.
inline void yield() { rl::yield(1, RL_INFO); }

// Model time (sync_types.hpp, "Time under Relacy"): model_clock's own; any
// other clock stands still at min(), so its deadlines are never reached by
// the clock and only a timed wait's time-out ends a wait on one.
template <class Clock>
inline typename Clock::time_point now() noexcept {
  if constexpr (std::is_same_v<Clock, model_clock>) {
    return model_clock::now();
  } else {
    return Clock::time_point::min();
  }
}
inline std::int64_t now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(now<std::chrono::steady_clock>().time_since_epoch())
      .count();
}

// sync_types.hpp's wait_timer, in wake-ups: a threshold counts as reached
// from the second reading on.
class wait_timer {
 public:
  void start() noexcept { readings_ = 0; }
  bool reached(std::chrono::nanoseconds) noexcept { return ++readings_ >= 2; }

 private:
  int readings_ = 0;
};

// sync_types.hpp's placement hints: no CPUs under a model.
inline int current_cpu() noexcept { return -1; }
inline bool move_off_cpu(int) noexcept { return false; }

inline constexpr bool in_model = true;

inline void fence_seq_cst(location l = location::current()) { rl::atomic_thread_fence(rl::mo_seq_cst, info_of(l)); }

// The asymmetric pair is modelled as what it guarantees: a seq_cst fence on
// each side.
inline void asymmetric_light_fence(location l = location::current()) { fence_seq_cst(l); }
inline void asymmetric_heavy_fence(location l = location::current()) { fence_seq_cst(l); }

}  // namespace rouse::detail
