// rouse/async/detail/timer_queue.hpp — the pending timers of one executor:
// a hierarchical timing wheel of 1.024 µs ticks, intrusive in timer_entry.
//
//   timer_queue q;                       // origin = now
//   q.insert(e);                         // e.deadline set by the caller
//   sleep_until(q.next_deadline());      // a time <= the earliest deadline
//   q.collect_expired(clock::now());     // under the executor's lock, as every call
//   while (timer_entry* t = q.pop_due())
//     t->fire(t);                        // outside the lock
//
// Purpose: the timer half of rouse's executors (rouse/async/executor.hpp):
// add_timer is insert, cancel_timer is erase, the loop sleeps until
// next_deadline() and fires what pop_due() returns, one entry at a time.
// Not thread-safe: the executor calls it under its lock, or from its one
// thread.
//
// Why one at a time: a fire may run arbitrary code inline (a coroutine
// without an executor is resumed on the waker's thread), which may cancel
// another timer that expired in the same round. An entry taken in a batch
// could no longer be erased, and its canceller, waiting for its fire on the
// very thread that was to run it, would wait forever. The due list keeps
// every expired entry that has not been handed out in the queue, where
// erase() still finds it.
//
// Contract
// - insert(e): e must not be queued (in this or another queue). Its deadline
//   may be anything: in the past, before the origin, time_point::min() or
//   max(). Allocates nothing; the queue links e through its queue_* fields,
//   which belong to the queue until e leaves it.
// - erase(e): true when e was queued here and is now removed; false when it
//   was not queued (never inserted, erased already, or handed out by
//   pop_due() or take_expired(): a timer that fired cannot be cancelled).
//   An expired entry not handed out yet is still erased.
// - collect_expired(now): when the due list is empty, moves every entry
//   whose deadline <= now into it, in take_expired()'s order; else does
//   nothing (the round under way is handed out first). A fire that inserts
//   an entry already due does not extend the round: it waits for the next.
// - pop_due(): the first entry of the due list, unlinked (queued = false),
//   or nullptr when the list is empty.
// - take_expired(now): unlinks every entry whose deadline <= now (the due
//   list first) and returns them as a list through queue_next
//   (nullptr-terminated, queued = false), roughly in deadline order (slot by
//   slot, 1.024 µs apart; unordered within a slot). Never an entry whose
//   deadline > now: a timer never fires early. `now` may go backwards
//   (nothing later is returned). For an owner whose fires never run
//   foreign code (the timer study's loop).
// - next_deadline(): time_point::max() when nothing but the due list is
//   queued, else a time <= the earliest deadline outside the due list: the
//   start of the earliest occupied slot (the due list is not counted: whoever
//   collected it is handing it out, and pops until it is empty). A slot of
//   level L spans 1.024 µs * 64^L, so the executor may wake early (once per
//   level an entry falls through, tokio's behaviour) and, for a slot of
//   level 0, re-poll for at most one tick (1.024 µs) before the entry is due.
//
// Invalid (debug builds abort with a message): insert() of a queued entry;
// erase() of an entry queued in another timer_queue (detected when its slot
// here does not hold it). Destroying the queue leaves the entries still in
// it marked queued: the owner drains or forgets them first.
//
// Complexity: insert O(1), erase O(1), next_deadline O(level_count),
// take_expired and collect_expired O(level_count + expired + cascaded),
// pop_due O(1). An entry cascades to a
// lower level at most once per level it passes through: at most 2 times for
// a deadline 0-10 ms away, 3 for 0-10 s, 8 in all. Measured in
// docs/async-timers.md against a 4-ary heap (bench/study/timer_queue_study.cpp).
//
// Layout: one list head per slot (9 levels x 64 slots, a list of overdue
// entries and the due list), one 64-bit occupancy word per level. An entry lives in
// the slot of the highest 6-bit group where its tick differs from elapsed_
// (the tick processed so far): so every occupied slot of a level comes after
// elapsed_, and every slot of a lower level comes before every slot of a
// higher one; the earliest slot is the lowest set bit of the lowest
// non-empty level. An entry records its list in queue_slot (the head's
// index) and queue_level.
//
// sizeof: 4,728 bytes on 64-bit (static_assert below): the heads are 578
// pointers, so the queue belongs inside its executor, not on a hot line.
#pragma once

#include <bit>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "rouse/async/executor.hpp"
#include "rouse/detail/diagnostics.hpp"

namespace rouse::async::detail {

class timer_queue {
 public:
  using clock = std::chrono::steady_clock;
  // Ticks are counted in nanoseconds (steady_clock's unit on every target rouse builds for).
  static_assert(std::is_same_v<clock::duration, std::chrono::nanoseconds>);

  // A tick is 2^10 ns = 1.024 µs: a partly due level-0 slot costs the executor
  // at most ~1 µs of re-polling (a bare system call costs ~1 µs, a futex wake 2-29 µs: docs/tuning.md).
  static constexpr unsigned tick_shift = 10;
  // 64 slots per level: a level's occupancy is one word, searched with one countr_zero.
  static constexpr unsigned slot_bits = 6;
  static constexpr unsigned slots_per_level = 1u << slot_bits;
  // ceil((64 - tick_shift) / slot_bits) = 9 levels span 2^54 ticks, all of
  // steady_clock's range: no deadline is clamped, time_point::max() included.
  static constexpr unsigned level_count = (64 - tick_shift + slot_bits - 1) / slot_bits;

  explicit timer_queue(clock::time_point origin = clock::now()) noexcept : origin_(origin) {}
  timer_queue(const timer_queue&) = delete;
  timer_queue& operator=(const timer_queue&) = delete;
  ~timer_queue() = default;

  void insert(timer_entry& e) noexcept {
    ROUSE_CHECK_USAGE(!e.queued, "rouse::async::timer_queue", "insert() of an entry that is already queued");
    e.queued = true;
    ++size_;
    place(e);
  }

  bool erase(timer_entry& e) noexcept {
    if (!e.queued) return false;
    ROUSE_CHECK_USAGE(e.queue_slot <= due_index && (e.queue_prev != nullptr || heads_[e.queue_slot] == &e),
                      "rouse::async::timer_queue", "erase() of an entry queued in another timer_queue");
    unlink(e);
    e.queued = false;
    e.queue_next = e.queue_prev = nullptr;
    --size_;
    return true;
  }

  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }

  [[nodiscard]] clock::time_point next_deadline() const noexcept {
    for (unsigned level = 0; level < level_count; ++level) {
      if (occupied_[level] == 0) continue;
      const clock::time_point slot_start = time_of(slot_start_tick(level, static_cast<unsigned>(std::countr_zero(occupied_[level]))));
      return slot_start < overdue_min_ ? slot_start : overdue_min_;
    }
    return overdue_min_;  // max() when the overdue list is empty too
  }

  void collect_expired(clock::time_point now) noexcept {
    if (heads_[due_index] != nullptr) return;
    // Take the round, then push it onto the due list back to front (push()
    // prepends), so that it is handed out front to back.
    timer_entry* reversed = nullptr;
    for (timer_entry* e = take_expired(now); e != nullptr;) {
      timer_entry* const next = e->queue_next;
      e->queue_next = reversed;
      reversed = e;
      e = next;
    }
    while (reversed != nullptr) {
      timer_entry* const next = reversed->queue_next;
      reversed->queued = true;
      ++size_;
      push(*reversed, due_index, due_level);
      reversed = next;
    }
  }

  timer_entry* pop_due() noexcept {
    timer_entry* const e = heads_[due_index];
    if (e != nullptr) erase(*e);
    return e;
  }

  timer_entry* take_expired(clock::time_point now) noexcept {
    expired_list out;
    if (heads_[due_index] != nullptr) take_due(due_index, clock::time_point::max(), out);
    if (heads_[overdue_index] != nullptr) take_due(overdue_index, now, out);
    if (now < origin_) return out.head;  // every entry in the wheel is due at or after the origin
    const std::uint64_t now_tick = tick_of(now);
    for (;;) {
      unsigned level = 0;
      while (level < level_count && occupied_[level] == 0) ++level;
      if (level == level_count) break;
      const unsigned slot = static_cast<unsigned>(std::countr_zero(occupied_[level]));
      const std::uint64_t start = slot_start_tick(level, slot);
      if (start > now_tick) break;
      if (level == 0) {
        // Ticks before now_tick end at or before now: all due. The slot of
        // now_tick itself may keep entries due later in this tick.
        take_due(slot, now, out);
        if (start == now_tick) break;
        continue;
      }
      // Cascade: everything before this slot is gone, so the queue may stand
      // at its start; its entries fall to lower levels (never overdue).
      elapsed_ = start;
      const std::uint64_t index = std::uint64_t{level} * slots_per_level + slot;
      timer_entry* e = heads_[index];
      heads_[index] = nullptr;
      occupied_[level] &= ~(std::uint64_t{1} << slot);
      while (e != nullptr) {
        timer_entry* const next = e->queue_next;
        place(*e);
        e = next;
      }
    }
    // Every entry left has tick >= now_tick, and one above level 0 lies in a
    // slot after now_tick's group at its level: placed as if inserted now.
    if (now_tick > elapsed_) elapsed_ = now_tick;
    return out.head;
  }

 private:
  static constexpr std::uint64_t overdue_index = std::uint64_t{level_count} * slots_per_level;
  static constexpr std::uint32_t overdue_level = level_count;
  static constexpr std::uint64_t due_index = overdue_index + 1;
  static constexpr std::uint32_t due_level = level_count + 1;

  struct expired_list {
    timer_entry* head = nullptr;
    timer_entry* tail = nullptr;
  };

  // Ticks since origin_ of t >= origin_ (the difference computed unsigned: no overflow for any pair).
  std::uint64_t tick_of(clock::time_point t) const noexcept {
    const std::uint64_t since = static_cast<std::uint64_t>(t.time_since_epoch().count()) -
                                static_cast<std::uint64_t>(origin_.time_since_epoch().count());
    return since >> tick_shift;
  }
  // The time a tick starts; a tick of a queued entry's slot never ends after time_point::max().
  clock::time_point time_of(std::uint64_t tick) const noexcept {
    const std::uint64_t count = static_cast<std::uint64_t>(origin_.time_since_epoch().count()) + (tick << tick_shift);
    return clock::time_point(clock::duration(static_cast<clock::rep>(count)));
  }
  // First tick of slot `slot` of `level`: elapsed_'s groups above the level, then the slot.
  std::uint64_t slot_start_tick(unsigned level, unsigned slot) const noexcept {
    const unsigned shift = slot_bits * level;
    const std::uint64_t above = elapsed_ & ~((std::uint64_t{1} << (shift + slot_bits)) - 1);
    return above | (std::uint64_t{slot} << shift);
  }

  void place(timer_entry& e) noexcept {
    const std::uint64_t tick = e.deadline < origin_ ? 0 : tick_of(e.deadline);
    if (e.deadline < origin_ || tick < elapsed_) {
      push(e, overdue_index, overdue_level);
      if (e.deadline < overdue_min_) overdue_min_ = e.deadline;
      return;
    }
    // The highest group where tick and elapsed_ differ (group 0 when none do).
    const unsigned level =
        static_cast<unsigned>(63 - std::countl_zero((tick ^ elapsed_) | (slots_per_level - 1))) / slot_bits;
    const unsigned slot = static_cast<unsigned>(tick >> (slot_bits * level)) & (slots_per_level - 1);
    push(e, std::uint64_t{level} * slots_per_level + slot, level);
    occupied_[level] |= std::uint64_t{1} << slot;
  }

  void push(timer_entry& e, std::uint64_t index, std::uint32_t level) noexcept {
    e.queue_slot = index;
    e.queue_level = level;
    e.queue_prev = nullptr;
    e.queue_next = heads_[index];
    if (e.queue_next != nullptr) e.queue_next->queue_prev = &e;
    heads_[index] = &e;
  }

  void unlink(timer_entry& e) noexcept {
    if (e.queue_prev != nullptr)
      e.queue_prev->queue_next = e.queue_next;
    else
      heads_[e.queue_slot] = e.queue_next;
    if (e.queue_next != nullptr) e.queue_next->queue_prev = e.queue_prev;
    if (heads_[e.queue_slot] != nullptr) return;
    if (e.queue_level < level_count)
      occupied_[e.queue_level] &= ~(std::uint64_t{1} << (e.queue_slot % slots_per_level));
    else if (e.queue_level == overdue_level)
      overdue_min_ = clock::time_point::max();  // the overdue list is empty
  }

  // Moves the entries of list `index` whose deadline <= now to `out`.
  void take_due(std::uint64_t index, clock::time_point now, expired_list& out) noexcept {
    timer_entry* e = heads_[index];
    while (e != nullptr) {
      timer_entry* const next = e->queue_next;
      if (e->deadline <= now) {
        unlink(*e);
        e->queued = false;
        e->queue_prev = nullptr;
        e->queue_next = nullptr;
        --size_;
        if (out.tail != nullptr)
          out.tail->queue_next = e;
        else
          out.head = e;
        out.tail = e;
      }
      e = next;
    }
  }

  // One list per slot, level-major, then the overdue list: entries whose
  // deadline is before origin_ or before elapsed_'s tick (inserted late),
  // then the due list: expired, in the order pop_expired() hands them out.
  timer_entry* heads_[due_index + 1] = {};
  // Bit s of occupied_[L]: the list of slot s of level L is not empty.
  std::uint64_t occupied_[level_count] = {};
  // The tick processed so far: every entry in the wheel has a tick >= elapsed_.
  std::uint64_t elapsed_ = 0;
  // <= every deadline in the overdue list (not raised by erase); max() when it is empty.
  clock::time_point overdue_min_ = clock::time_point::max();
  std::size_t size_ = 0;
  clock::time_point origin_;
};

static_assert(sizeof(void*) != 8 || sizeof(timer_queue) == 4728);

}  // namespace rouse::async::detail
