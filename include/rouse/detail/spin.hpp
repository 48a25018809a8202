// rouse/detail/spin.hpp — the one spin: how a waiter of rouse polls before it sleeps.
//
//   detail::spinner spin(detail::mutex_spin);
//   while (!ready()) {
//     if (!spin.next()) { sleep on the word; break; }   // the policy is spent
//   }
//
//   if (detail::spin_until(detail::event_spin, [&] { return ready(); })) return;
//
// One loop, one policy type, one named policy per use (below). A spin is a
// run of polls; next() waits before each one:
//   - the first `pause_polls` polls each come after a gap of pauses
//     (detail::spin_pause(): the thread waited for runs on another CPU):
//     `first_gap` pauses before the first, doubling up to `max_gap`. With
//     `pause_yield_every` > 0, every that-many-th of them yields as well;
//   - then `yield_polls` polls, each after a yield (detail::yield(): the
//     thread waited for may need this CPU).
// next() returns false instead — spent, go to sleep — once both counts are
// used up, or once the time budget has passed: `budget_multiple` x
// platform::wake_cost() (what a wake-up measurably costs here: spin about as
// long as the sleep it may save would cost, the 2-competitive rule), clamped
// to [budget_min, budget_max]. The budget starts at the first next() (one
// clock read); the clock is read again at every `clock_every`-th call, and
// ends nothing before `min_polls` polls were made (with no minimum, a
// budget of zero or less makes no poll at all). `unbounded` counts never
// run out; a policy without a budget (budget_max < 0) ends by its counts
// only, or never: the caller decides (a spin lock).
//
// Under a Relacy model a spin is `model_polls` polls, each after one
// spin_pause() (a scheduling point), whatever the rest of the policy says:
// models stay deterministic, and a long spin only multiplies the
// interleavings to explore.
//
// Every figure below is chosen by a measurement; the evidence, dated, is in
// docs/tuning.md (one section per policy, same name). Tuning macros
// (ROUSE_MUTEX_SPIN_*, ROUSE_SPSC_*) are read here and nowhere else.
#pragma once

#include <chrono>
#include <climits>
#include <cstdint>
#include <limits>

#include "rouse/detail/sync_types.hpp"
#if !defined(ROUSE_MODEL_RELACY)
#include "rouse/platform/cpu.hpp"
#include "rouse/platform/park.hpp"
#include "rouse/platform/wait.hpp"
#endif

#if !defined(ROUSE_MUTEX_SPIN_MULTIPLE)
#define ROUSE_MUTEX_SPIN_MULTIPLE 4
#endif
#if !defined(ROUSE_MUTEX_SPIN_MAX_US)
#define ROUSE_MUTEX_SPIN_MAX_US 200
#endif
#if !defined(ROUSE_MUTEX_SPIN_FIRST_GAP)
#define ROUSE_MUTEX_SPIN_FIRST_GAP 64
#endif
#if !defined(ROUSE_MUTEX_SPIN_MAX_GAP)
#define ROUSE_MUTEX_SPIN_MAX_GAP 256
#endif
#if !defined(ROUSE_SPSC_SPIN_STEPS)
#define ROUSE_SPSC_SPIN_STEPS 1
#endif
#if !defined(ROUSE_SPSC_YIELD_STEPS)
#define ROUSE_SPSC_YIELD_STEPS 16
#endif

namespace rouse::detail {

struct spin_policy {
  static constexpr std::int32_t unbounded = INT32_MAX;
  static constexpr std::int32_t largest_gap = std::int32_t{1} << 30;

  std::int32_t pause_polls = 0;        // polls after pauses, first ...
  std::int32_t first_gap = 1;          // ... pauses before the first of them, doubling ...
  std::int32_t max_gap = 1;            // ... up to this many (at most largest_gap)
  std::int32_t pause_yield_every = 0;  // every n-th pause poll yields too (0: none does)
  std::int32_t yield_polls = 0;        // then polls after a yield each
  std::int32_t budget_multiple = 0;    // budget: multiple x wake_cost() ...
  std::chrono::nanoseconds budget_min{0};
  std::chrono::nanoseconds budget_max{-1};  // ... within [min, max]; max < 0: no budget
  std::int32_t min_polls = 0;               // polls made whatever the budget says
  std::int32_t clock_every = 1;             // the budget is checked at the first and every n-th call
  std::int32_t model_polls = 1;             // under a Relacy model: this many polls, nothing else

  constexpr bool has_budget() const noexcept { return budget_max.count() >= 0; }
  constexpr bool counted() const noexcept { return pause_polls != unbounded && yield_polls != unbounded; }
};

// ---- the named policies: one per use (evidence: docs/tuning.md) ----------

// rouse::mutex's lock: contended2 fastest with the first poll after 64 pauses, oversub32 with 4 x wake_cost (docs/tuning.md "mutex_spin").
inline constexpr spin_policy mutex_spin{.pause_polls = spin_policy::unbounded,
                                        .first_gap = ROUSE_MUTEX_SPIN_FIRST_GAP,
                                        .max_gap = ROUSE_MUTEX_SPIN_MAX_GAP,
                                        .budget_multiple = ROUSE_MUTEX_SPIN_MULTIPLE,
                                        .budget_min = std::chrono::microseconds(2),
                                        .budget_max = std::chrono::microseconds(ROUSE_MUTEX_SPIN_MAX_US),
                                        .min_polls = 1,
                                        .model_polls = 2};
// rouse::shared_mutex's lock and lock_shared: mutex_spin's, measured again with rwlock.read95 (docs/tuning.md "shared_mutex_spin"); one poll under a model.
inline constexpr spin_policy shared_mutex_spin = [] {
  spin_policy p = mutex_spin;
  p.model_polls = 1;
  return p;
}();
// rouse::shared_mutex's wait for a hand-over to end (never a sleep): 64 pauses cover its few instructions, then yields for a preempted releaser (docs/tuning.md "shared_mutex_hand_over").
inline constexpr spin_policy shared_mutex_hand_over{
    .pause_polls = 64, .yield_polls = spin_policy::unbounded, .model_polls = spin_policy::unbounded};
// A waker waiter's owner waiting for its claimer's release store, before it naps: the list lock's shape (docs/tuning.md "async_list_lock_spin").
inline constexpr spin_policy waker_release_wait{
    .pause_polls = 16, .max_gap = 64, .yield_polls = 64, .model_polls = spin_policy::unbounded};
// The async waiter list's lock, before its locker naps: 16 polls after 1, 2, 4 ... 64 pauses, then 64 yields for a preempted holder (docs/tuning.md "async_list_lock_spin").
inline constexpr spin_policy async_list_lock_spin{
    .pause_polls = 16, .max_gap = 64, .yield_polls = 64, .model_polls = spin_policy::unbounded};
// rouse::event's wait: 64 pauses then 64 yields, semaphore.pingpong's shape (docs/tuning.md "event_spin").
inline constexpr spin_policy event_spin{.pause_polls = 64, .yield_polls = 64, .model_polls = 1};
// rouse::counting_semaphore's acquire: semaphore.pingpong fastest at 64 pauses before the yields (docs/tuning.md "semaphore_spin").
inline constexpr spin_policy semaphore_spin{.pause_polls = 64, .yield_polls = 64, .model_polls = 1};
// rouse::counting_semaphore's wide layout, waiting out a release between its bump and its permits (never a sleep): the hand-over wait's shape (docs/tuning.md "semaphore_release_wait").
inline constexpr spin_policy semaphore_release_wait{
    .pause_polls = 64, .yield_polls = spin_policy::unbounded, .model_polls = spin_policy::unbounded};
// rouse::condition_variable's waiter before it sleeps: the semaphore's hand-off shape (docs/tuning.md "condvar_spin").
inline constexpr spin_policy condvar_spin{.pause_polls = 64, .yield_polls = 64, .model_polls = 1};
// rouse::latch and rouse::barrier: 16 pauses and 4 yields, barrier.cycle2/cycle4 on 2 vCPUs (docs/tuning.md "group_spin").
inline constexpr spin_policy group_spin{.pause_polls = 16, .yield_polls = 4, .model_polls = 1};
// ... then, when the group fits on the CPUs: pause polls for 4 x wake_cost in [2, 50] us, barrier.cycle4 and latch.countdown16 on 16 cores (docs/tuning.md "group_fit_spin").
inline constexpr spin_policy group_fit_spin{.pause_polls = spin_policy::unbounded,
                                            .pause_yield_every = 64,
                                            .budget_multiple = 4,
                                            .budget_min = std::chrono::microseconds(2),
                                            .budget_max = std::chrono::microseconds(50),
                                            .clock_every = 64,
                                            .model_polls = 0};
// rouse::pool's waits (a worker for a job, the caller for the reports): 64 pauses then yields for the caller's measured budget, count.breakeven (docs/tuning.md "pool_spin").
inline constexpr spin_policy pool_spin{.pause_polls = 64,
                                       .yield_polls = spin_policy::unbounded,
                                       .budget_max = std::chrono::nanoseconds(0),
                                       .clock_every = 16,
                                       .model_polls = 1};
// rouse::channel::spsc's sides: 1 pause then at least 16 yields, more for 4 x wake_cost in [2, 200] us, a standalone channel.spsc harness (docs/tuning.md "spsc_spin").
inline constexpr spin_policy spsc_spin{.pause_polls = ROUSE_SPSC_SPIN_STEPS,
                                       .max_gap = spin_policy::largest_gap,
                                       .yield_polls = spin_policy::unbounded,
                                       .budget_multiple = 4,
                                       .budget_min = std::chrono::microseconds(2),
                                       .budget_max = std::chrono::microseconds(200),
                                       .min_polls = ROUSE_SPSC_SPIN_STEPS + ROUSE_SPSC_YIELD_STEPS,
                                       .model_polls = 1};
// rouse::channel::oneshot's recv(): 100 pauses, 1-3 us, below a futex sleep and wake (docs/tuning.md "oneshot_spin").
inline constexpr spin_policy oneshot_spin{.pause_polls = 100, .model_polls = 1};
// rouse::atomic_wait: 32 pauses then 8 yields, libstdc++'s order of magnitude, atomic_wait.pingpong (docs/tuning.md "atomic_wait_spin").
inline constexpr spin_policy atomic_wait_spin{.pause_polls = 32, .yield_polls = 8, .model_polls = 1};
// rouse::spin_lock: reads 1, 2, 4 ... 64 pauses apart, about one short critical section (docs/tuning.md "spin_lock_spin").
inline constexpr spin_policy spin_lock_spin{
    .pause_polls = spin_policy::unbounded, .max_gap = 64, .model_polls = spin_policy::unbounded};
// The channels, after a lost compare-exchange: 1, 2, 4 ... 64 pauses, never a yield, crossbeam's (docs/tuning.md "channel_cas_spin").
inline constexpr spin_policy channel_cas_spin{
    .pause_polls = spin_policy::unbounded, .max_gap = 64, .model_polls = spin_policy::unbounded};
// The channels, waiting for another thread: 1 pause then 16 yields, bounded 1024 channel 1/1, 4/1, 4/4 (docs/tuning.md "channel_wait_spin").
inline constexpr spin_policy channel_wait_spin{.pause_polls = 1, .yield_polls = 16, .model_polls = 2};
// The async channels' blocking send, before it queues: 16 polls after 1, 2, 4 ... 64 pauses, then 16 yields, async.thread_to_task (docs/tuning.md "async_send_spin").
inline constexpr spin_policy async_send_spin{.pause_polls = 16, .max_gap = 64, .yield_polls = 16, .model_polls = 1};
// The rendezvous channel's lock, before rouse::mutex's own lock(): 16 polls after 1, 2, 4 ... 16 pauses, channel.rendezvous (docs/tuning.md "channel_lock_spin").
inline constexpr spin_policy channel_lock_spin{.pause_polls = 16, .max_gap = 16, .model_polls = 1};
// The channels, waiting for a hand-off under way: 1, 2 ... 64 pauses then 4 yields, channel.rendezvous (docs/tuning.md "channel_hand_off_spin").
inline constexpr spin_policy channel_hand_off_spin{.pause_polls = 7, .max_gap = 64, .yield_polls = 4, .model_polls = 2};

// ---- the loop ---------------------------------------------------------------

class spinner {
 public:
  explicit spinner(const spin_policy& policy) noexcept
#if defined(ROUSE_MODEL_RELACY)
      : model_polls_(policy.model_polls){}
#else
      : policy_(policy) {
  }
#endif
        // With a budget the caller measured (rouse::pool's) in place of the
        // policy's. Under a model the budget's count is the number of polls.
        spinner(const spin_policy& policy, std::chrono::nanoseconds budget) noexcept
#if defined(ROUSE_MODEL_RELACY)
      : model_polls_(budget.count() > spin_policy::unbounded ? spin_policy::unbounded
                                                             : static_cast<std::int32_t>(budget.count())) {
    (void)policy;
  }
#else
      : policy_(policy), given_budget_ns_(budget.count()), budget_given_(true) {
  }
#endif
  spinner(const spinner&) = delete;
  spinner& operator=(const spinner&) = delete;

  // Waits until the next poll (pauses or a yield): true = poll now, false =
  // the policy is spent (go to sleep). Every call counts, a false one too.
  [[gnu::always_inline]] bool next() noexcept {
#if defined(ROUSE_MODEL_RELACY)
    if (polls_ >= model_polls_) return false;
    ++polls_;
    spin_pause();
    return true;
#else
    std::int64_t const call = ++calls_;
    if (policy_.counted() && call > std::int64_t{policy_.pause_polls} + policy_.yield_polls) return false;
    if (policy_.has_budget()) {
      if (call == 1) {
        std::int64_t const b = budget_given_ ? given_budget_ns_ : budget(policy_).count();
        if (b <= 0 && policy_.min_polls == 0) {
          calls_ = 0;  // a budget of nothing: no poll, now or at any later call
          return false;
        }
        // Saturating: a budget of nanoseconds::max() means "no end".
        std::int64_t const now = now_ns();
        end_ns_ = b > std::numeric_limits<std::int64_t>::max() - now ? std::numeric_limits<std::int64_t>::max() : now + b;
      } else if (call > policy_.min_polls && call % policy_.clock_every == 0 && now_ns() >= end_ns_) {
        return false;
      }
    }
    if (policy_.pause_polls == spin_policy::unbounded || call <= policy_.pause_polls) {
      for (std::int32_t i = 0; i < gap_; ++i) spin_pause();
      if (gap_ < policy_.max_gap) gap_ = gap_ * 2 > policy_.max_gap ? policy_.max_gap : gap_ * 2;
      if (policy_.pause_yield_every > 0 && call % policy_.pause_yield_every == 0) yield();
    } else {
      yield();
    }
    ++polls_;
    return true;
#endif
  }

  // Polls made so far (calls of next() that returned true).
  std::int64_t polls() const noexcept { return polls_; }

  // Whether the pause polls are over (each poll now comes after a yield).
  bool yielding() const noexcept {
#if defined(ROUSE_MODEL_RELACY)
    return false;
#else
    return policy_.pause_polls != spin_policy::unbounded && calls_ > policy_.pause_polls;
#endif
  }

#if !defined(ROUSE_MODEL_RELACY)
  // The time a spin with this policy lasts, as of now (0 without a budget).
  static std::chrono::nanoseconds budget(const spin_policy& policy) noexcept {
    if (!policy.has_budget()) return std::chrono::nanoseconds(0);
    std::int64_t b = policy.budget_multiple * platform::wake_cost().count();
    if (b < policy.budget_min.count()) b = policy.budget_min.count();
    if (b > policy.budget_max.count()) b = policy.budget_max.count();
    return std::chrono::nanoseconds(b);
  }
#endif

 private:
#if defined(ROUSE_MODEL_RELACY)
  std::int32_t model_polls_;
#else
  const spin_policy& policy_;
  std::int64_t given_budget_ns_ = 0;
  bool budget_given_ = false;
  std::int32_t gap_ = policy_.first_gap;
  std::int64_t calls_ = 0;
  std::int64_t end_ns_ = 0;
#endif
  std::int64_t polls_ = 0;
};

// Calls done() until it returns true (then true) or the policy is spent
// (then false: done() was false at its last call).
template <class Done>
inline bool spin_until(const spin_policy& policy, Done&& done) {
  spinner spin(policy);
  for (;;) {
    if (done()) return true;
    if (!spin.next()) return false;
  }
}

// The same for a timed wait: no poll once `deadline` (detail/deadline.hpp)
// has passed, so a zero timeout looks once and gives up at once. The clock
// is read before each poll (never for no_deadline).
template <class Deadline, class Done>
inline bool spin_until(const spin_policy& policy, const Deadline& deadline, Done&& done) {
  spinner spin(policy);
  for (;;) {
    if (done()) return true;
    if (deadline.expired() || !spin.next()) return false;
  }
}

// The spin of a group wait (barrier, latch): group_spin, then, if the
// group's `participants` (a barrier's expected count; for a latch an
// estimate, see latch.hpp) fit on the CPUs this process may use
// (platform::process_cpus()), group_fit_spin. Which case applies:
//
//   participants > CPUs   some participant is usually waiting for a CPU
//                         that a waiter holds: 16 pauses, 4 yields, then
//                         sleep (a waiter that keeps yielding stays
//                         runnable and keeps the CPUs looking busy)
//   participants <= CPUs  the ones still to come are probably running on
//                         other CPUs, and a sleeper costs the phase a
//                         wake-up: poll on with pauses for the budget, and
//                         yield once per 64 polls in case one of them
//                         shares this CPU anyway
//
// Under a model only group_spin: the group's size is a hint it ignores.
template <class Done>
inline bool group_spin_until(Done&& done, std::uint32_t participants) {
  if (spin_until(group_spin, done)) return true;
#if defined(ROUSE_MODEL_RELACY)
  (void)participants;
  return false;
#else
  if (participants > platform::process_cpus()) return false;
  return spin_until(group_fit_spin, done);
#endif
}

// ---- the nap ----------------------------------------------------------------

// For a wait whose releaser makes no wake call (a store, so that its fast
// path stays one): once the spin is spent, a napper's once(key, still)
// sleeps unless still(key, 0) is false by then (a timed park on `key`, in the
// parking table; nobody unparks it), and the caller polls again. The first
// nap is nap_first long, each next one twice as long up to nap_max: a wait
// that outlasts its spin is noticed at most one nap late, and a long one
// (a releaser held up by the code it runs first) costs a few wake-ups, not a
// CPU. Under a model: a scheduling point.
inline constexpr std::chrono::microseconds nap_first{100};  // docs/tuning.md "async_list_lock_spin"
inline constexpr std::chrono::microseconds nap_max{1600};   // docs/tuning.md "async_list_lock_spin"
class napper {
 public:
  void once(const void* key, bool (*still)(const void* key, std::size_t) noexcept) noexcept {
#if defined(ROUSE_MODEL_RELACY)
    (void)key;
    (void)still;
    spin_pause();
#else
    (void)platform::detail::park(key, {still, key},
                                 platform::detail::park_deadline::at(std::chrono::steady_clock::now() + next_));
    if (next_ < nap_max) next_ *= 2;
#endif
  }

 private:
  std::chrono::microseconds next_ = nap_first;
};

}  // namespace rouse::detail
