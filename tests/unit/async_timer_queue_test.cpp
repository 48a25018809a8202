// rouse::async::detail::timer_queue: randomized operations checked against a
// std::multimap, the never-early rule at nanosecond distances (inside one
// tick, at tick boundaries, after cascades), erase after expiry, a million
// pending entries drained in deadline order, deadlines far in the future and
// in the past, and origins far from the deadlines. Time is synthetic: no test
// reads the clock to judge anything.
#include "rouse/async/detail/timer_queue.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <vector>

namespace async_timer_queue_test {
namespace {

using rouse::async::timer_entry;
using rouse::async::detail::timer_queue;
using clock_type = timer_queue::clock;
using time_point = clock_type::time_point;
using std::chrono::days;
using std::chrono::hours;
using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;
using std::chrono::seconds;

constexpr time_point far_past = time_point::min();
constexpr time_point far_future = time_point::max();
const time_point base{hours(24 * 3)};  // a plausible steady_clock reading

struct random_source {
  std::uint64_t state;
  std::uint64_t next() noexcept {
    std::uint64_t z = (state += 0x9e3779b97f4a7c15);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
    z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
    return z ^ (z >> 31);
  }
  std::int64_t below(std::int64_t bound) noexcept {
    return static_cast<std::int64_t>(next() % static_cast<std::uint64_t>(bound));
  }
};

// Adds d to t, saturating at time_point's ends.
time_point offset(time_point t, nanoseconds d) {
  std::int64_t sum = 0;
  if (__builtin_add_overflow(t.time_since_epoch().count(), d.count(), &sum)) return d.count() > 0 ? far_future : far_past;
  return time_point(nanoseconds(sum));
}

// The entries of a list returned by take_expired, checked for its shape.
std::vector<timer_entry*> collect(timer_entry* list) {
  std::vector<timer_entry*> out;
  for (timer_entry* e = list; e != nullptr; e = e->queue_next) {
    EXPECT_FALSE(e->queued);
    out.push_back(e);
  }
  return out;
}

TEST(async_timer_queue, size_is_documented) { EXPECT_EQ(sizeof(timer_queue), 4728u); }

TEST(async_timer_queue, empty_queue_has_no_deadline_and_nothing_expires) {
  timer_queue q(base);
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.size(), 0u);
  EXPECT_EQ(q.next_deadline(), far_future);
  EXPECT_EQ(q.take_expired(far_future), nullptr);
  EXPECT_EQ(q.next_deadline(), far_future);
}

TEST(async_timer_queue, entry_expires_at_its_deadline_not_one_nanosecond_before) {
  timer_queue q(base);
  timer_entry e;
  e.deadline = base + microseconds(5) + nanoseconds(300);  // inside a tick, not at its start
  q.insert(e);
  EXPECT_TRUE(e.queued);
  EXPECT_EQ(q.size(), 1u);
  EXPECT_LE(q.next_deadline(), e.deadline);
  EXPECT_EQ(q.take_expired(e.deadline - nanoseconds(1)), nullptr);
  EXPECT_LE(q.next_deadline(), e.deadline);  // still pending after a partial look at its tick
  EXPECT_EQ(q.take_expired(e.deadline), &e);
  EXPECT_EQ(e.queue_next, nullptr);
  EXPECT_FALSE(e.queued);
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.next_deadline(), far_future);
}

TEST(async_timer_queue, entries_sharing_a_tick_expire_one_nanosecond_at_a_time) {
  timer_queue q(base);
  std::vector<timer_entry> entries(8);
  const time_point tick_start = base + nanoseconds(1024 * 77);
  for (std::size_t i = 0; i < entries.size(); ++i) {
    entries[i].deadline = tick_start + nanoseconds(100 * i + 1);
    q.insert(entries[i]);
  }
  for (std::size_t i = 0; i < entries.size(); ++i) {
    EXPECT_EQ(q.take_expired(entries[i].deadline - nanoseconds(1)), nullptr) << i;
    EXPECT_EQ(q.take_expired(entries[i].deadline), &entries[i]) << i;
    EXPECT_EQ(q.size(), entries.size() - i - 1);
  }
}

TEST(async_timer_queue, erase_before_expiry_removes_and_after_expiry_returns_false) {
  timer_queue q(base);
  timer_entry a, b, never;
  a.deadline = base + milliseconds(3);
  b.deadline = base + milliseconds(3);
  q.insert(a);
  q.insert(b);
  EXPECT_FALSE(q.erase(never));
  EXPECT_TRUE(q.erase(a));
  EXPECT_FALSE(a.queued);
  EXPECT_FALSE(q.erase(a));  // twice
  EXPECT_EQ(q.size(), 1u);
  EXPECT_EQ(q.take_expired(base + milliseconds(3)), &b);
  EXPECT_FALSE(q.erase(b));  // it expired: too late to cancel
  EXPECT_TRUE(q.empty());
  q.insert(a);  // an erased entry may be inserted again
  EXPECT_EQ(q.take_expired(far_future), &a);
}

// The executors' loop: collect a round, hand it out one entry at a time.
// An entry of the round not handed out yet can still be erased (a fire may
// cancel it); one inserted already due during the round waits for the next.
TEST(async_timer_queue, a_collected_round_is_handed_out_in_order_and_stays_erasable) {
  timer_queue q(base);
  std::vector<timer_entry> entries(6);
  for (std::size_t i = 0; i < entries.size(); ++i) {
    entries[i].deadline = base + microseconds(10 * (i + 1));  // one slot each
    q.insert(entries[i]);
  }
  timer_entry later;
  later.deadline = base + milliseconds(5);
  q.insert(later);
  const time_point now = base + microseconds(60);
  q.collect_expired(now);
  EXPECT_EQ(q.size(), 7u);  // the round is still in the queue
  EXPECT_LE(q.next_deadline(), later.deadline);  // the round is its collector's: not counted
  EXPECT_GT(q.next_deadline(), now);
  EXPECT_EQ(q.pop_due(), &entries[0]);
  EXPECT_FALSE(entries[0].queued);
  EXPECT_FALSE(q.erase(entries[0]));  // handed out: it fires, too late to cancel
  EXPECT_TRUE(entries[2].queued);
  EXPECT_TRUE(q.erase(entries[2]));  // expired, not handed out yet: cancelled
  EXPECT_TRUE(q.erase(entries[5]));  // the last of the round
  timer_entry again;  // inserted during the round, already due
  again.deadline = base;
  q.insert(again);
  q.collect_expired(far_future);  // a round is under way: nothing added to it
  EXPECT_EQ(q.pop_due(), &entries[1]);
  EXPECT_EQ(q.pop_due(), &entries[3]);
  EXPECT_EQ(q.pop_due(), &entries[4]);
  EXPECT_EQ(q.pop_due(), nullptr);
  EXPECT_EQ(q.size(), 2u);
  EXPECT_LE(q.next_deadline(), base);  // `again`, overdue
  q.collect_expired(now);
  EXPECT_EQ(q.pop_due(), &again);
  EXPECT_EQ(q.pop_due(), nullptr);
  EXPECT_TRUE(q.erase(later));
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.next_deadline(), far_future);
  // take_expired empties the due list too.
  q.insert(entries[0]);
  q.insert(later);
  q.collect_expired(now);
  EXPECT_EQ(collect(q.take_expired(base)), std::vector<timer_entry*>{&entries[0]});
  EXPECT_EQ(q.size(), 1u);
  EXPECT_TRUE(q.erase(later));
}

TEST(async_timer_queue, erase_of_a_cascaded_entry_and_of_its_neighbours) {
  timer_queue q(base);
  std::vector<timer_entry> entries(5);
  for (auto& e : entries) {
    e.deadline = base + seconds(2) + microseconds(1);  // level 3 from the origin
    q.insert(e);
  }
  EXPECT_EQ(q.take_expired(base + seconds(2)), nullptr);  // cascades them to level 0
  EXPECT_TRUE(q.erase(entries[0]));
  EXPECT_TRUE(q.erase(entries[4]));
  EXPECT_TRUE(q.erase(entries[2]));
  std::set<timer_entry*> left;
  for (timer_entry* e : collect(q.take_expired(entries[1].deadline))) left.insert(e);
  EXPECT_EQ(left, (std::set<timer_entry*>{&entries[1], &entries[3]}));
  EXPECT_TRUE(q.empty());
}

TEST(async_timer_queue, deadlines_hours_days_and_max_away_expire_only_at_them) {
  timer_queue q(base);
  const nanoseconds distances[] = {hours(1), hours(7) + nanoseconds(1), days(1), days(400), days(365 * 200)};
  std::vector<timer_entry> entries(std::size(distances) + 2);
  for (std::size_t i = 0; i < std::size(distances); ++i) entries[i].deadline = base + distances[i];
  entries[std::size(distances)].deadline = far_future - nanoseconds(1);
  entries.back().deadline = far_future;
  for (auto& e : entries) q.insert(e);
  for (auto& e : entries) {
    EXPECT_LE(q.next_deadline(), e.deadline);
    EXPECT_EQ(q.take_expired(e.deadline - nanoseconds(1)), nullptr);
    EXPECT_LE(q.next_deadline(), e.deadline);
    EXPECT_EQ(q.take_expired(e.deadline), &e);
  }
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.next_deadline(), far_future);
}

TEST(async_timer_queue, past_deadlines_expire_at_once_even_inserted_after_time_advanced) {
  timer_queue q(base);
  timer_entry before_origin, at_min, behind, later;
  before_origin.deadline = base - hours(1);
  at_min.deadline = far_past;
  q.insert(before_origin);
  q.insert(at_min);
  EXPECT_LE(q.next_deadline(), far_past);
  EXPECT_EQ(collect(q.take_expired(base - hours(1))).size(), 2u);
  later.deadline = base + seconds(1);
  q.insert(later);
  EXPECT_EQ(q.take_expired(base + milliseconds(900)), nullptr);  // time has advanced to 0.9 s
  behind.deadline = base + milliseconds(500);  // behind what was processed
  q.insert(behind);
  EXPECT_LE(q.next_deadline(), behind.deadline);
  EXPECT_EQ(q.take_expired(base + milliseconds(400)), nullptr);  // `now` going backwards
  EXPECT_EQ(q.take_expired(base + milliseconds(500)), &behind);
  EXPECT_LE(q.next_deadline(), later.deadline);
  EXPECT_TRUE(q.erase(later));
  EXPECT_EQ(q.next_deadline(), far_future);
}

// The queue and a reference multimap, driven by the same random operations;
// after each one: size, next_deadline <= the reference's earliest, and each
// take_expired (or collect_expired and pop_due, some of the round erased
// meanwhile) returns exactly the reference's entries at or before `now`.
void run_against_reference(time_point origin, time_point start, std::uint64_t seed, int operations) {
  SCOPED_TRACE(testing::Message() << "seed " << seed << " origin " << origin.time_since_epoch().count());
  constexpr std::size_t pool_size = 2048;
  std::vector<timer_entry> pool(pool_size);
  using reference_map = std::multimap<time_point, timer_entry*>;
  reference_map reference;
  std::vector<std::optional<reference_map::iterator>> where(pool_size);
  timer_queue q(origin);
  random_source rng{seed};
  time_point now = start;

  auto pick_distance = [&]() -> nanoseconds {
    switch (rng.below(10)) {
      case 0: return nanoseconds(rng.below(3000));  // within a few ticks
      case 1: return nanoseconds(1024 * rng.below(200) - 1 + rng.below(3));  // at a tick boundary, +-1 ns
      case 2: return microseconds(rng.below(100'000));
      case 3: return milliseconds(rng.below(10));
      case 4: return milliseconds(rng.below(10'000));
      case 5: return hours(rng.below(100));
      case 6: return days(rng.below(1000));
      case 7: return -nanoseconds(rng.below(5'000'000));  // in the past
      case 8: return rng.below(2) ? nanoseconds::max() : nanoseconds::min();  // max() or min()
      default: return nanoseconds(rng.below(1'000'000));
    }
  };
  auto advance = [&]() -> nanoseconds {
    switch (rng.below(8)) {
      case 0: return nanoseconds(rng.below(2048));
      case 1: return microseconds(rng.below(1000));
      case 2: return milliseconds(rng.below(50));
      case 3: return seconds(rng.below(100));
      case 4: return hours(rng.below(50));
      case 5: return -microseconds(rng.below(100));  // `now` may go backwards
      default: return microseconds(rng.below(50));
    }
  };

  for (int op = 0; op < operations; ++op) {
    const std::size_t i = static_cast<std::size_t>(rng.below(pool_size));
    timer_entry& e = pool[i];
    const std::int64_t kind = rng.below(10);
    if (kind < 5) {  // insert (or cancel and re-arm when queued)
      if (where[i]) {
        ASSERT_TRUE(q.erase(e));
        reference.erase(*where[i]);
        where[i].reset();
      }
      e.deadline = offset(now, pick_distance());
      q.insert(e);
      where[i] = reference.emplace(e.deadline, &e);
    } else if (kind < 7) {  // erase
      ASSERT_EQ(q.erase(e), where[i].has_value());
      if (where[i]) {
        reference.erase(*where[i]);
        where[i].reset();
      }
      EXPECT_FALSE(e.queued);
    } else {  // time passes
      now = offset(now, advance());
      std::vector<timer_entry*> expected;
      for (auto it = reference.begin(); it != reference.end() && it->first <= now;) {
        expected.push_back(it->second);
        where[static_cast<std::size_t>(it->second - pool.data())].reset();
        it = reference.erase(it);
      }
      std::vector<timer_entry*> got;
      if (kind == 7) {
        got = collect(q.take_expired(now));
      } else {  // the executors' way: a round collected, some of it erased while it is handed out
        q.collect_expired(now);
        ASSERT_EQ(q.size(), reference.size() + expected.size());
        std::vector<timer_entry*> kept;
        for (timer_entry* t : expected) {
          if (rng.below(4) == 0) {
            ASSERT_TRUE(q.erase(*t)) << "an expired entry not handed out is erasable";
          } else {
            kept.push_back(t);
          }
        }
        expected = kept;
        while (timer_entry* t = q.pop_due()) {
          ASSERT_FALSE(t->queued);
          got.push_back(t);
        }
      }
      for (timer_entry* t : got) ASSERT_LE(t->deadline, now) << "fired early";
      std::sort(got.begin(), got.end());
      std::sort(expected.begin(), expected.end());
      ASSERT_EQ(got, expected) << "op " << op;
    }
    ASSERT_EQ(q.size(), reference.size());
    ASSERT_EQ(q.empty(), reference.empty());
    if (reference.empty())
      ASSERT_EQ(q.next_deadline(), far_future);
    else
      ASSERT_LE(q.next_deadline(), reference.begin()->first) << "op " << op;
  }
  // Drain: everything comes out by time_point::max().
  EXPECT_EQ(collect(q.take_expired(far_future)).size(), reference.size());
  EXPECT_TRUE(q.empty());
}

TEST(async_timer_queue, random_operations_match_a_multimap) {
  for (std::uint64_t seed = 1; seed <= 6; ++seed) run_against_reference(base, base, seed, 200'000);
}

TEST(async_timer_queue, random_operations_match_a_multimap_with_origin_far_from_now) {
  // Origin long before the deadlines, long after them, and at the clock's ends.
  run_against_reference(base - days(400), base, 11, 40'000);
  run_against_reference(base + days(400), base, 12, 40'000);
  run_against_reference(far_past, base, 13, 40'000);
  run_against_reference(far_future, base, 14, 20'000);
  run_against_reference(time_point{}, far_future - days(30), 15, 40'000);
}

// A million pending entries come out in deadline order: each step takes
// exactly the entries due at the earliest pending deadline.
void drain_million_in_order(nanoseconds range, std::uint64_t seed) {
  constexpr std::size_t n = 1'000'000;
  std::vector<timer_entry> entries(n);
  std::vector<time_point> sorted(n);
  timer_queue q(base);
  random_source rng{seed};
  for (std::size_t i = 0; i < n; ++i) {
    entries[i].deadline = base + nanoseconds(rng.below(range.count()));
    sorted[i] = entries[i].deadline;
    q.insert(entries[i]);
  }
  ASSERT_EQ(q.size(), n);
  std::sort(sorted.begin(), sorted.end());
  std::size_t taken = 0, late_bound_violations = 0, early = 0, out_of_order = 0, wrong_count = 0;
  time_point previous = far_past;
  while (taken < n) {
    const time_point now = sorted[taken];
    if (q.next_deadline() > now) ++late_bound_violations;
    const std::size_t due = static_cast<std::size_t>(std::upper_bound(sorted.begin(), sorted.end(), now) - sorted.begin()) - taken;
    std::size_t got = 0;
    for (timer_entry* e = q.take_expired(now); e != nullptr; e = e->queue_next) {
      ++got;
      if (e->deadline > now) ++early;
      if (e->deadline <= previous) ++out_of_order;  // was due at an earlier step
    }
    if (got != due) ++wrong_count;
    if (got == 0) break;  // a bug: stop rather than loop forever
    taken += got;
    previous = now;
  }
  EXPECT_EQ(taken, n);
  EXPECT_EQ(late_bound_violations, 0u);
  EXPECT_EQ(early, 0u);
  EXPECT_EQ(out_of_order, 0u);
  EXPECT_EQ(wrong_count, 0u);
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.next_deadline(), far_future);
}

TEST(async_timer_queue, million_pending_within_10_seconds_drain_in_deadline_order) {
  drain_million_in_order(seconds(10), 21);
}

TEST(async_timer_queue, million_pending_within_10_milliseconds_drain_in_deadline_order) {
  drain_million_in_order(milliseconds(10), 22);
}

#if ROUSE_DEBUG_CHECKS
TEST(async_timer_queue_death, insert_of_a_queued_entry_is_diagnosed) {
  EXPECT_DEATH(
      {
        timer_queue q(base);
        timer_entry e;
        e.deadline = base + seconds(1);
        q.insert(e);
        q.insert(e);
      },
      "rouse::async::timer_queue: misuse: insert\\(\\) of an entry that is already queued");
}

TEST(async_timer_queue_death, erase_from_another_queue_is_diagnosed) {
  EXPECT_DEATH(
      {
        timer_queue q(base);
        timer_queue other(base);
        timer_entry e;
        e.deadline = base + seconds(1);
        q.insert(e);
        other.erase(e);
      },
      "rouse::async::timer_queue: misuse: erase\\(\\) of an entry queued in another timer_queue");
}
#endif

}  // namespace
}  // namespace async_timer_queue_test
