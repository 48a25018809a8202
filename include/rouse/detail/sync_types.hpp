// rouse/detail/sync_types.hpp — the one alias point for atomics and wait/wake.
//
// Every protocol in rouse (layers 1–3) reaches atomics, the futex and spin
// hints only through the names below, never through std::atomic or
// rouse::platform directly. A normal build maps them to std and the platform
// layer at zero cost. A model test defines ROUSE_MODEL_RELACY before including
// any rouse header and the same protocol code then runs under the Relacy race
// detector, which explores thread interleavings and the C++ memory model and
// reports data races, assertion failures and deadlocks (lost wake-ups).
//
//   name                                   normal build             under Relacy
//   detail::atomic<T>                      std::atomic<T>           rl::atomic<T> wrapper
//   detail::wait(w, expected)              platform::wait           rl futex wait
//   detail::wait_until(w, expected, t)     platform::wait_until     futex wait that may time out
//   detail::wake(w, n) / wake_one / wake_all   platform::wake...    rl futex wake
//   detail::wait_until(w, expected, d)     d a deadline object (detail/deadline.hpp): no_deadline
//                                          waits untimed, until_deadline at d.at
//   detail::spin_pause()                   platform::cpu_relax      rl::yield (lets the scheduler switch)
//   detail::yield()                        platform::thread_yield   rl::yield (a scheduling point)
//   detail::now<Clock>()                   Clock::now()             model_clock: model time; any other
//                                                                   clock stands still at min() (below)
//   detail::now_ns()                       platform::steady_now_ns  now<steady_clock>() in ns
//   detail::wait_timer                     steady clock             counts wake-ups (below)
//   detail::current_cpu()                  platform::current_cpu    -1 (placement hints: none)
//   detail::move_off_cpu(cpu)              platform::move_off_cpu   false
//   detail::in_model                       false                    true (for size static_asserts only)
//   detail::fence_seq_cst()                atomic_thread_fence      rl seq_cst fence
//   detail::asymmetric_light_fence()       platform (compiler fence) seq_cst fence
//   detail::asymmetric_heavy_fence()       platform (membarrier)    seq_cst fence
//   detail::unsync<T>                      T                        rl::var<T>: plain data checked for races
//   detail::unsync_load/store/hint(v)      std::atomic_ref, relaxed checked accesses; hint: T{}
//
// Time under Relacy: the model controls no real clock, so a real clock
// stands still (detail::now<steady_clock>() is time_point::min()): a
// deadline on it is never reached by reading the clock, and a timed wait
// ends only when Relacy makes it time out, which it may do at any point.
// model_clock (relacy_sync.hpp) is the model's own time, which moves on one
// tick at each time-out. A spin is counted in polls instead (detail/spin.hpp).
//
// Rules for protocol code:
// - Declare words as `detail::atomic<std::uint32_t>` (it is `platform::word`
//   in normal builds, so the platform calls accept it).
// - Give every operation an explicit memory order: the wrapper forwards it.
// - Spin loops call detail::spin_pause() each iteration, or Relacy reports a
//   livelock.
// - Keep a protocol's code in headers (inline or templates): a model test
//   compiles it with ROUSE_MODEL_RELACY, so out-of-line code in src/ would not
//   be modelled. Cold paths are still marked noinline.
#pragma once

#include <atomic>
#include <chrono>
#include <climits>
#include <cstdint>

namespace rouse::detail {

// Deliberately broken steps, for model tests only. A protocol marks a step
// whose breaking a model must catch with `if (model_fault_on(f)) ...broken
// step...; else ...correct step...`; a model test switches one fault on
// (relacy_sync.hpp, model_fault_scope) and expects Relacy to report the bug.
// In a normal build every fault is off: model_fault_on() is a constant
// false and the broken branch compiles away.
enum class model_fault : unsigned {
  none,
  // shared_mutex: a writer's unlock hands the read turn over before it
  // knows a reader woke, and takes it back after (reads the object after a
  // reader may have locked, unlocked and destroyed it).
  shared_mutex_read_turn_taken_back,
  // event: set() re-reads the word after its RMW to choose between waking
  // one and waking all (reads the object after the released waiter may have
  // destroyed it).
  event_set_reads_word_after_release,
  // waiter_queue: a claimer releases a waker waiter (the store that lets it
  // go) before it has taken the waker out of it.
  waiter_released_before_waker_taken,
  // waiter_queue: a claimer releases a waker waiter with a relaxed store, so
  // an owner that waited for the release (its cancel lost) does not see the
  // claimer's writes to the waiter before it destroys it.
  waiter_release_store_relaxed,
  // waiter_queue: wake_chain() reads a claimed node's link after waking its
  // waiter (which may have returned and freed the node).
  waiter_chain_read_after_wake,
  // mutex: a waiter sleeps on `locked` without marking it contended (1 -> 2),
  // so the unlock() that frees it takes the fast path and wakes nobody.
  mutex_waiter_sleeps_unmarked,
  // call_once: a waiter sleeps on `running` without setting `waiting`, so
  // the runner's exchange to `done` wakes nobody.
  once_waiter_sleeps_unmarked,
  // thread_parker: unpark() wakes the parked thread before it publishes the
  // token, and makes no wake after it.
  thread_parker_wakes_before_token,
  // latch: count_down() reads the sleepers flag in a load before its RMW, so
  // the last one skips the wake of a waiter that set the flag in between.
  latch_count_down_reads_flag_first,
  // barrier: the completing thread starts the next generation (releasing the
  // waiters) before it stores the next phase's arrivals word.
  barrier_generation_before_arrivals,
  // oneshot: send() publishes READY before it constructs the value.
  oneshot_ready_before_value,
  // spsc: the sender's notify of the receiver loads rx_sleep without fence
  // (A) after its stamp store.
  spsc_notify_without_fence,
  // channels: a blocking send or receive registers its waiter and sleeps
  // without re-checking the channel (B2), so a notify that looked for
  // waiters just before the registration wakes nobody.
  channel_park_skips_recheck,
  // channel ticket ring: a send publishes its value with a plain store
  // instead of a compare-exchange, so it can overwrite the W of a receive
  // that began to sleep on the slot meanwhile, and wakes nobody.
  ticket_publish_blind_store,
  // channel ticket ring: a receive below the close that finds its slot
  // empty for its lap takes the slot from its send (dead), the rule before
  // senders resolved their own positions; a send that claimed its position
  // and moved its value in then moves it back.
  ticket_receive_kills_slot,
  // channel ticket ring: a blocked send that gives up at the close marks
  // the slot last whatever lap it holds, also while an earlier lap's send
  // is still under way there (whose publish then overwrites the mark).
  ticket_give_up_any_lap,
  // async::waiter_list::notify_all_releasing: the claim pass unlinks the
  // nodes whose own side claimed them (leaving) and releases at once, so
  // that side's unlink may touch the list after the release let someone
  // destroy it.
  async_release_ignores_leaving,
  // channel ticket ring: a send (receive) that went through passes no wake
  // on to its own side (pass_on_senders / pass_on_receivers do nothing), so
  // a parked waiter whose wake was spent on a position under way sleeps on
  // beside a ready one.
  ticket_skips_pass_on,
  // channel ticket ring: nobody marks head_ (close() sets the mark in tail_
  // only, and a receive that learns the close does not set it), so a
  // receive past the close looks at its slot, whose lap may have come round
  // to that of a value a stalled receive below the close is taking.
  ticket_close_skips_head_mark,
  // channel ticket ring: a receive that learns the close from tail_'s mark
  // (close() has not marked head_ yet) returns `closed` without marking
  // head_: until close() does, receives keep taking tickets and looking at
  // slots, and 2^28 laps of them reach a value a stalled receive is taking.
  ticket_take_skips_head_mark,
  // channel ticket ring: on a closed channel claim_recv claims a position
  // only once its slot is resolved (empty for its lap, or dead), and says
  // `empty` while the previous lap's receive is still moving out.
  ticket_closed_claim_says_empty,
  // async::atomic_waker: wake() clears WAKING before it has taken the waker,
  // so a concurrent register() may overwrite (and drop) the one being woken.
  atomic_waker_releases_before_take,
  // async::diatomic_waker: a notifier that fails to take the notification
  // lock while a waker is registered returns without asking the holder to
  // notify again (no N bit).
  diatomic_notify_drops_retry,
  // async::diatomic_waker: the load-only idle notify is used without the
  // fence its contract asks of the notifier.
  diatomic_idle_notify_without_fence,
  // async::diatomic_waker: the seq_cst idle notify (notify_after_seq_cst_rmw)
  // loads the state relaxed.
  diatomic_seq_cst_notify_relaxed,
  // async::diatomic_waker: a wait registers itself (R|D) relaxed, so the
  // notify that claims it reads the wait's record unpublished.
  diatomic_wait_registers_relaxed,
  // async::diatomic_waker: a wait withdraws its registration with a load and
  // a store, so a notify's claim between them is overwritten (two parties
  // believe they own the wait).
  diatomic_withdraw_ignores_claim,
  // async::diatomic_waker: a coroutine wait's own guard is armed with a
  // store, not an exchange, so a release that came while the turn armed is
  // overwritten and nobody resumes the wait.
  diatomic_turn_arms_with_store,
  // async::diatomic_waker: a coroutine wait's own stop callback, finding the
  // wait unregistered (between two turns), leaves no S mark: the next turn
  // registers and sleeps as if no stop had come.
  diatomic_stop_leaves_no_mark,
  // async::diatomic_waker: a coroutine wait's own stop callback whose claim
  // lost to a notify leaves no S mark (the wait goes round on that notify's
  // release; if its re-check finds nothing, it sleeps past the stop).
  diatomic_stop_lost_to_claim,
  // async::diatomic_waker: a released coroutine wait resumes its coroutine
  // directly (no poller) without asking ready_hint(), so a release whose
  // notify published nothing resumes a wait whose predicate is not ready.
  diatomic_direct_without_hint,
  // async::diatomic_waker: a released coroutine wait resumes its coroutine
  // directly even when its re-check had already taken a value (held_), so
  // the predicate runs a second time and takes (or overwrites) another.
  diatomic_direct_ignores_held,
  // async rendezvous channel: a permit given back onto a debt (its demand's
  // receive gave up while a sender held it) pays the debt but does not wake
  // the receiver, so a receive waiting meanwhile never asks again.
  async_channel_debt_paid_without_wake,
  // async rendezvous channel: a demand a give-back took out of the word for
  // a queued sender and stored again (the sender was leaving) pays a debt
  // its receive left meanwhile, but does not wake the receiver.
  async_channel_leftover_debt_without_wake,
  // async::waiter_list: a cancelled waiter that had already been notified
  // does not pass the notification on.
  async_cancel_drops_notification,
  // async::waiter_list: a coroutine wait's arming guard (list_turn) is armed
  // with a store, not an exchange, so a wake that came while the wait armed
  // (woken) is overwritten and nobody resumes the coroutine.
  async_list_guard_arms_with_store,
  // async::waiter_list: a coroutine wait that sleeps marks slept() after
  // its sleep act (the condition variable's unlock) ran, not before the
  // arm: a wake may already have resumed the coroutine and its frame may
  // be gone.
  async_list_act_marks_slept_after,
  // async::waiter_list: a coroutine wait stopped through the task's relay
  // while it armed claims itself but does not end the stop in the relay
  // (end_stopped()): the relay stays taken, and the task's next wait
  // cannot use it.
  async_list_relay_self_claim_keeps_relay,
  // async::task_scope (detail/scope_count.hpp): the last task's count_out
  // decrements, then clears the joiner bit in a second step, so a task
  // spawned from outside and ending meanwhile may wake the joiner first and
  // the scope may be gone before that second step.
  async_scope_count_out_two_steps,
  // async::task (detail/hop_turn.hpp): both exchanges of the hop's turn are
  // relaxed: the result the hop stored is not published to an inline run
  // that resumes the task.
  async_hop_turn_relaxed,
  // async::waiter_list: a push into the empty list's slot is a relaxed
  // compare-exchange: it does not publish the node to the notifier that
  // locks the word and reads it (nor is it the Dekker store B1).
  async_list_slot_push_relaxed,
  // async::waiter_list: a push into the empty list's slot is an acq_rel
  // compare-exchange (it publishes the node, but is not in the seq_cst
  // order): a notifier's (A2) misses it while the waiter's (B2) misses the
  // notifier's (A1).
  async_list_slot_push_acq_rel,
  // async::thread_pool: a spawn pushes its task and does not look for a
  // sleeping worker (the sleep/spawn handshake's wake is skipped).
  pool_spawn_skips_wake,
  // async::thread_pool: a worker that added a timer nobody held runs on
  // without handing the timers to a sleeper.
  pool_timer_not_handed_on,
  // async::thread_pool: a worker that is not searching moves a batch from
  // the global queue into its ring and does not look for a sleeping worker.
  pool_batch_skips_wake,
  // async::thread_pool: a coroutine that a timer fired between two
  // coroutines scheduled stays in the worker's LIFO slot, behind the next.
  pool_fired_stays_in_lifo,
  // async timers: the timer queue fires an entry one slot early.
  timer_fires_early,
  // async::semaphore: a serve that cannot fully serve the oldest waiter
  // gives it nothing (no partial assignment) and drops what it holds.
  async_semaphore_serve_skips_partial,
  // async::semaphore: a waiter that leaves (stop, destroyed frame, timeout)
  // does not return the permits already assigned to it.
  async_semaphore_leave_keeps_assigned,
  // async::semaphore (async::mutex's unlock): release() adds its permits to
  // the word and does not serve the queue when it finds Q set, so a queued
  // waiter (the mutex's next owner) is never handed its permits.
  async_semaphore_release_ignores_queued,
  // async::semaphore: the queue's unlock publishes its permits and drops the
  // lock, then reads the word again (a released semaphore may already be
  // destroyed, rule 7).
  async_semaphore_unlock_rereads_word,
  // async::semaphore: release() adds its permits to the word whatever Q
  // says and then serves if Q was set: another serve may hand those permits
  // on first, and the waiter they let through destroy the semaphore before
  // this release touches it again (rule 7).
  async_semaphore_release_adds_then_serves,
  // async::manual_reset_event: set() claims every registered waiter, not
  // only those registered before it (a wait begun after a later reset() is
  // released by the earlier set's late claim).
  async_event_set_claims_every_waiter,
  // async channels: a sender wait that was handed a permit and gives up
  // (cancelled, timed out, destroyed) keeps it instead of passing it on.
  async_channel_cancel_keeps_permit,
  // async::barrier: the last arriver publishes the next phase before it
  // claims the queued waiters (it reads the list after a waiter the new
  // phase let through may have destroyed the barrier).
  async_barrier_releases_before_claim,
  // async select: the arming guard is a plain store (arming -> armed), not a
  // compare-exchange: a branch that fired while the select armed (woken) is
  // overwritten, and its wake is lost.
  async_select_arming_plain_store,
  // async word waits (async/detail/word_wait.hpp): a completion of the
  // carrier's futex wait that finds a stop requested ends the wait as
  // stopped without stepping the protocol, so a wake-one its request
  // consumed is dropped.
  word_wait_completion_skips_step,
  // async word wait, the helper thread: woken with the stop reported, it
  // leaves without woke(), so a wake of the word its futex_waitv took in the
  // same moment is dropped.
  word_wait_helper_stop_skips_woke,
  // async::wait_on: a frame destroyed after its helper took a wake of the
  // word does not pass the wake on.
  word_wait_abandon_drops_wake,
  // async wait relay: a wake that finds its wait pinned by the stop
  // callback resumes it too (two resumptions).
  wait_relay_wake_ignores_pin,
  // async wait relay: the stop callback that finds its wait's wake came
  // leaves the resumption to that wake (nobody resumes).
  wait_relay_stop_defers_after_wake,
  // async wait relay: the stop's own wake (its claim won) leaves woken|S and
  // the stop callback resumes the wait only after its claim returned (after
  // the waiters that claim's pass-on let in, which may destroy the wait).
  wait_relay_stop_resumes_after_its_claim,
  // async channel: a batch of freed slots given back while fewer senders
  // are queued than the batch drops the permits nobody could be handed.
  async_channel_batch_drops_leftover,
  // async channel: a send that takes a free permit and its position in one
  // RMW (try_send_now) does not look at the closed bit, so it reports a
  // value sent into a channel already closed (and drained).
  async_channel_send_now_ignores_close,
  // semaphore (wide layout), the stepwise acquire of a coroutine: in
  // RELEASING(0) it waits on the sequence it read, not on one it no longer
  // holds, so it may sleep past the release's wake.
  wide_semaphore_step_waits_in_releasing,
  // inplace_stop_source: a callback's destructor on another thread returns
  // while request_stop() still runs the callback (does not wait for done_).
  stop_callback_destroyed_while_running,
  // inplace_stop_source: the destructor on another thread does not wait for
  // a running request_stop() (R) to end, which then touches a freed source.
  stop_source_destroyed_while_stopping,
  // inplace_stop_source: request_stop() goes on after a callback destroyed
  // the source on the requesting thread (locks it again).
  stop_request_touches_destroyed_source,
  // condition_variable: a waiter links its node after it released the
  // lock, so a notify made in between under the lock finds nobody.
  condvar_registers_after_unlock,
  // condition_variable: a relayed waiter (notify_all) wakes the next one
  // after its relock, so a next waiter that holds that mutex, or a waiter
  // of another mutex behind it, is held up for good.
  condvar_relay_after_relock,
  // condition_variable: a notify that meets the node of a waiter leaving
  // after its timeout does not count it, so the destructor does not wait
  // for that waiter's last touch of the queue.
  condvar_leaver_not_counted,
  // async::condition_variable: a thread's wait reads its tag after it
  // released the mutex, so a notify made in between (under the mutex) is
  // not seen by its re-check and finds nobody queued.
  async_cv_tag_after_unlock,
  // async::condition_variable: notify's count is a relaxed RMW (not the
  // seq_cst (A1) of the Dekker pairing with a waiter's re-check).
  async_cv_notify_relaxed,
};

}  // namespace rouse::detail

#if defined(ROUSE_MODEL_RELACY)
#include "rouse/detail/relacy_sync.hpp"
#else
#include "rouse/platform/cpu.hpp"
#include "rouse/platform/fence.hpp"
#include "rouse/platform/wait.hpp"

namespace rouse::detail {

template <class T>
using atomic = std::atomic<T>;

// Plain (non-atomic) data that a protocol hands from thread to thread; under
// Relacy it is checked for data races.
template <class T>
using unsync = T;
template <class T>
inline T& unsync_ref(unsync<T>& v) noexcept {
  return v;
}

// Plain data that its owner writes while other threads read it, racily, as
// a hint (a barrier's expected count): every access goes through
// std::atomic_ref (relaxed), so that the hint read is no data race. Under
// Relacy the owner's accesses are checked plain accesses, and a hint read
// reads nothing (T{}): models ignore hints, which would only add states.
template <class T>
inline T unsync_load(unsync<T>& v) noexcept {
  return std::atomic_ref<T>(v).load(std::memory_order_relaxed);
}
template <class T>
inline void unsync_store(unsync<T>& v, T x) noexcept {
  std::atomic_ref<T>(v).store(x, std::memory_order_relaxed);
}
template <class T>
inline T unsync_hint(const unsync<T>& v) noexcept {
  return std::atomic_ref<T>(const_cast<T&>(v)).load(std::memory_order_relaxed);
}

using wait_result = platform::wait_result;

inline void wait(const atomic<std::uint32_t>& w, std::uint32_t expected) noexcept { platform::wait(w, expected); }
template <class Clock, class Duration>
inline wait_result wait_until(const atomic<std::uint32_t>& w, std::uint32_t expected,
                              std::chrono::time_point<Clock, Duration> deadline) noexcept {
  return platform::wait_until(w, expected, deadline);
}
inline int wake(const atomic<std::uint32_t>& w, int count) noexcept { return platform::wake(w, count); }
inline int wake_one(const atomic<std::uint32_t>& w) noexcept { return platform::wake_one(w); }
inline int wake_all(const atomic<std::uint32_t>& w) noexcept { return platform::wake_all(w); }

// A wait on a deadline object (detail/deadline.hpp): untimed for a
// no_deadline, until `d.at` for a timed one. timed_out only when the
// deadline has passed on its own clock.
template <class Deadline>
requires requires { Deadline::timed(); }
inline wait_result wait_until(const atomic<std::uint32_t>& w, std::uint32_t expected, const Deadline& d) noexcept {
  if constexpr (Deadline::timed()) {
    return platform::wait_until(w, expected, d.at);
  } else {
    (void)d;
    platform::wait(w, expected);
    return wait_result::woken;
  }
}

inline void spin_pause() noexcept { platform::cpu_relax(); }

// Gives the rest of the time slice away: a spin's yield poll (the thread
// waited for may need this CPU). Decides only when to re-check, never part
// of a protocol.
inline void yield() noexcept { platform::thread_yield(); }

// The time a protocol reads: Clock::now(); now_ns() is the steady clock in
// nanoseconds (spin budgets, time stamps shared through an atomic).
template <class Clock>
inline typename Clock::time_point now() noexcept {
  return Clock::now();
}
inline std::int64_t now_ns() noexcept { return platform::steady_now_ns(); }

// How long a waiter has waited, for a protocol that changes course after a
// while (rouse::mutex's fairness hand-off): start() before the first sleep,
// reached(threshold) after each wake. Under a model, where time stands
// still, it counts wake-ups instead: reached() is true from its second call
// on, so a model explores both courses.
class wait_timer {
 public:
  void start() noexcept { since_ = platform::steady_now_ns(); }
  bool reached(std::chrono::nanoseconds threshold) const noexcept {
    return platform::steady_now_ns() - since_ >= threshold.count();
  }

 private:
  std::int64_t since_ = 0;
};

// Placement hints (rouse::pool keeps a thread off the CPU of the thread it
// runs beside): the CPU this thread runs on (-1: unknown), and a move off
// one. Under a model there are no CPUs: -1 and no move.
inline int current_cpu() noexcept { return platform::current_cpu(); }
inline bool move_off_cpu(int cpu) noexcept { return platform::move_off_cpu(cpu); }

// True under a model. Only for the static_asserts of a primitive's size
// (Relacy's atomics are larger); protocol code never branches on it.
inline constexpr bool in_model = false;

constexpr bool model_fault_on(model_fault) noexcept { return false; }

// A seq_cst fence, for the few protocols whose argument needs one (each use
// says why; TSan does not model fences, so never rely on one for data hb).
inline void fence_seq_cst() noexcept { std::atomic_thread_fence(std::memory_order_seq_cst); }

// A store->load handshake whose one side is hot and the other rare (see
// platform/fence.hpp): the pair acts as two seq_cst fences.
inline void asymmetric_light_fence() noexcept { platform::asymmetric_light_fence(); }
inline void asymmetric_heavy_fence() noexcept { platform::asymmetric_heavy_fence(); }

}  // namespace rouse::detail
#endif
