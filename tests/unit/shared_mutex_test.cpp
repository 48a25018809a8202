// Unit tests of rouse/shared_mutex.hpp: each public function, the fairness
// policy, timeouts (never early, on steady, system and another clock), the
// cost with nobody waiting, misuse diagnostics and the size. A waiter is
// known to sleep by its wait call or the kernel's view of it
// (tests/support/eventually.hpp), never by a sleep.
#include "rouse/shared_mutex.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <vector>

#include "clocks.hpp"
#include "eventually.hpp"
#include "rouse/platform/counters.hpp"
#include "threads.hpp"

namespace shared_mutex_test {
namespace {

using namespace std::chrono_literals;
using rouse::shared_mutex;

static_assert(sizeof(rouse::shared_mutex) == 12);
static_assert(std::is_same_v<rouse::shared_timed_mutex, rouse::shared_mutex>);
static_assert(std::is_nothrow_default_constructible_v<rouse::shared_mutex>);
static_assert(!std::is_copy_constructible_v<rouse::shared_mutex>);
static_assert(!std::is_move_constructible_v<rouse::shared_mutex>);

// A clock that is neither steady_clock nor system_clock: exercises the
// sliced wait path.
using rouse_test::eventually;
using rouse_test::other_clock;

// True while a writer waits: new readers are held off (try_lock_shared fails).
bool a_writer_waits(shared_mutex& m) {
  if (m.try_lock_shared()) {
    m.unlock_shared();
    return false;
  }
  return true;
}

TEST(shared_mutex, lock_unlock_single_thread) {
  shared_mutex m;
  m.lock();
  m.unlock();
  m.lock();
  m.unlock();
}

TEST(shared_mutex, try_lock_succeeds_when_free_and_fails_when_held) {
  shared_mutex m;
  ASSERT_TRUE(m.try_lock());
  std::thread([&] {
    EXPECT_FALSE(m.try_lock());
    EXPECT_FALSE(m.try_lock_shared());
  }).join();
  m.unlock();
  m.lock_shared();
  std::thread([&] {
    EXPECT_FALSE(m.try_lock());
    EXPECT_TRUE(m.try_lock_shared());
    m.unlock_shared();
  }).join();
  m.unlock_shared();
  EXPECT_TRUE(m.try_lock());
  m.unlock();
}

TEST(shared_mutex, lock_shared_admits_many_readers) {
  shared_mutex m;
  constexpr int readers = 6;
  std::atomic<int> inside{0};
  std::atomic<bool> release{false};
  std::vector<std::thread> ts;
  for (int i = 0; i < readers; ++i)
    ts.emplace_back([&] {
      m.lock_shared();
      inside.fetch_add(1);
      eventually([&] { return release.load(); });
      m.unlock_shared();
    });
  eventually([&] { return inside.load() == readers; });  // all inside at once
  EXPECT_FALSE(m.try_lock());
  release = true;
  for (auto& t : ts) t.join();
  EXPECT_TRUE(m.try_lock());
  m.unlock();
}

TEST(shared_mutex, lock_excludes_readers_and_writers) {
  shared_mutex m;
  long counter = 0;
  std::vector<std::thread> ts;
  for (int i = 0; i < 4; ++i)
    ts.emplace_back([&] {
      for (int k = 0; k < 20000; ++k) {
        std::unique_lock<shared_mutex> l(m);
        ++counter;
      }
    });
  for (int i = 0; i < 2; ++i)
    ts.emplace_back([&] {
      for (int k = 0; k < 20000; ++k) {
        std::shared_lock<shared_mutex> l(m);
        long const a = counter;
        long const b = counter;
        EXPECT_EQ(a, b);
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(counter, 4 * 20000);
}

TEST(shared_mutex, writer_waits_for_readers_then_gets_the_lock) {
  // The writer sleeps (its wait call made) without the lock; the last
  // reader's unlock must wake it (else a hang).
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  shared_mutex m;
  m.lock_shared();
  std::atomic<bool> locked{false};
  auto const base = rouse_test::wait_calls();
  std::thread w([&] {
    m.lock();
    locked = true;
    m.unlock();
  });
  rouse_test::until_wait_calls(base + 1);
  EXPECT_FALSE(locked.load());
  m.unlock_shared();
  w.join();
  EXPECT_TRUE(locked.load());
}

TEST(shared_mutex, readers_wait_for_a_writer_then_all_get_in) {
  // All four readers sleep (their wait calls made) without the lock; the
  // writer's unlock must let every one in (else a hang).
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  shared_mutex m;
  m.lock();
  std::atomic<int> got{0};
  auto const base = rouse_test::wait_calls();
  rouse_test::threads ts(4, [&] {
    m.lock_shared();
    got.fetch_add(1);
    m.unlock_shared();
  });
  rouse_test::until_wait_calls(base + 4);
  EXPECT_EQ(got.load(), 0);
  m.unlock();
  ts.join();
  EXPECT_EQ(got.load(), 4);
}

// Writers are not starved: once a writer waits, a new reader does not get in.
// The writer sleeps (its wait call made, so it has announced itself), then a
// new reader comes and is seen asleep in the kernel without the lock; it
// gets in only after the writer (else `writer_in` is false).
TEST(shared_mutex, a_waiting_writer_holds_off_new_readers) {
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  shared_mutex m;
  m.lock_shared();
  std::atomic<bool> writer_in{false};
  auto const base = rouse_test::wait_calls();
  std::thread w([&] {
    m.lock();
    writer_in = true;
    m.unlock();
  });
  rouse_test::until_wait_calls(base + 1);
  EXPECT_TRUE(a_writer_waits(m));
  std::atomic<bool> reader_in{false};
  rouse_test::thread r([&] {
    m.lock_shared();
    reader_in = true;
    EXPECT_TRUE(writer_in.load());  // the writer went first
    m.unlock_shared();
  });
  rouse_test::until_asleep(r);
  EXPECT_FALSE(reader_in.load());
  m.unlock_shared();
  w.join();
  r.join();
}

// The last reader out wakes the waiting writer and hands it a write turn:
// the same reader, coming straight back, cannot take the lock before the
// writer it woke (which takes microseconds to get back on a CPU). Without
// the turn a reader stream starved writers: each woken writer found the lock
// read-held again and went back to sleep.
TEST(shared_mutex, the_last_reader_cannot_take_the_lock_back_from_the_writer_it_woke) {
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  for (int round = 0; round < 50; ++round) {
    shared_mutex m;
    m.lock_shared();
    std::atomic<bool> writer_in{false};
    auto const base = rouse_test::wait_calls();
    rouse_test::thread w([&] {
      m.lock();
      writer_in = true;
      m.unlock();
    });
    rouse_test::until_wait_calls(base + 1);  // the writer announced itself (WW) ...
    rouse_test::until_asleep(w);             // ... and sleeps in the kernel (a wait call
                                             // counted may not have entered it yet: then
                                             // the unlock wakes nobody and frees the lock)
    m.unlock_shared();                       // wakes it
    bool const got = m.try_lock_shared();
    if (got) {
      EXPECT_TRUE(writer_in.load()) << "round " << round << ": a reader took the lock before the woken writer";
      m.unlock_shared();
    }
    w.join();
  }
}

// Readers are not starved: a writer's unlock with readers waiting hands the
// lock to them before any other waiting writer.
// Both sleep (their wait calls made: WR, then WW set) before the unlock.
TEST(shared_mutex, a_writer_unlock_gives_waiting_readers_a_turn) {
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  shared_mutex m;
  m.lock();
  std::atomic<int> order{0};
  std::atomic<int> reader_pos{-1}, writer_pos{-1};
  auto const base = rouse_test::wait_calls();
  rouse_test::thread r([&] {
    m.lock_shared();
    reader_pos = order.fetch_add(1);
    m.unlock_shared();
  });
  rouse_test::until_wait_calls(base + 1);  // the reader waits (WR)
  rouse_test::thread w([&] {
    m.lock();
    writer_pos = order.fetch_add(1);
    m.unlock();
  });
  // Both asleep, the kernel's view: the unlock gives the read turn to a
  // reader its wake finds asleep, and a counted wait call may not be asleep
  // yet (then the unlock is a plain one, and the writer may win).
  rouse_test::until_asleep(w);
  rouse_test::until_asleep(r);
  m.unlock();
  r.join();
  w.join();
  EXPECT_EQ(reader_pos.load(), 0);
  EXPECT_EQ(writer_pos.load(), 1);
}

TEST(shared_mutex, try_lock_for_times_out_never_early_on_steady_clock) {
  shared_mutex m;
  m.lock_shared();
  std::thread([&] {
    auto const start = std::chrono::steady_clock::now();
    EXPECT_FALSE(m.try_lock_for(20ms));
    EXPECT_GE(std::chrono::steady_clock::now() - start, 20ms);
    // A zero or negative timeout is a try_lock.
    EXPECT_FALSE(m.try_lock_for(0ms));
    EXPECT_FALSE(m.try_lock_for(-5ms));
  }).join();
  m.unlock_shared();
  EXPECT_TRUE(m.try_lock_for(20ms));
  m.unlock();
}

TEST(shared_mutex, try_lock_until_times_out_never_early_on_each_clock) {
  shared_mutex m;
  m.lock();
  std::thread([&] {
    auto const s = std::chrono::steady_clock::now() + 15ms;
    EXPECT_FALSE(m.try_lock_until(s));
    EXPECT_GE(std::chrono::steady_clock::now(), s);
    auto const y = std::chrono::system_clock::now() + 15ms;
    EXPECT_FALSE(m.try_lock_until(y));
    EXPECT_GE(std::chrono::system_clock::now(), y);
    auto const o = other_clock::now() + 15ms;
    EXPECT_FALSE(m.try_lock_until(o));
    EXPECT_GE(other_clock::now(), o);
  }).join();
  m.unlock();
}

TEST(shared_mutex, try_lock_shared_for_and_until_time_out_never_early) {
  shared_mutex m;
  m.lock();
  std::thread([&] {
    auto const start = std::chrono::steady_clock::now();
    EXPECT_FALSE(m.try_lock_shared_for(15ms));
    EXPECT_GE(std::chrono::steady_clock::now() - start, 15ms);
    auto const y = std::chrono::system_clock::now() + 15ms;
    EXPECT_FALSE(m.try_lock_shared_until(y));
    EXPECT_GE(std::chrono::system_clock::now(), y);
    auto const o = other_clock::now() + 15ms;
    EXPECT_FALSE(m.try_lock_shared_until(o));
    EXPECT_GE(other_clock::now(), o);
  }).join();
  m.unlock();
  EXPECT_TRUE(m.try_lock_shared_for(15ms));
  EXPECT_TRUE(m.try_lock_shared_until(std::chrono::system_clock::now() + 15ms));
  m.unlock_shared();
  m.unlock_shared();
}

TEST(shared_mutex, timed_lock_succeeds_when_released_before_the_deadline) {
  // The timed reader sleeps (its wait call made) before the unlock: one that
  // misses the wake sleeps its minute (CTest's timeout fails first).
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  shared_mutex m;
  m.lock();
  auto const base = rouse_test::wait_calls();
  std::thread t([&] {
    EXPECT_TRUE(m.try_lock_shared_for(60s));
    m.unlock_shared();
    EXPECT_TRUE(m.try_lock_until(std::chrono::system_clock::now() + 60s));
    m.unlock();
  });
  rouse_test::until_wait_calls(base + 1);
  m.unlock();
  t.join();
}

// A timed-out writer must not leave the "writer waiting" mark behind, or new
// readers would wait for a writer that is gone.
TEST(shared_mutex, a_timed_out_writer_does_not_block_later_readers) {
  shared_mutex m;
  m.lock_shared();
  std::thread([&] { EXPECT_FALSE(m.try_lock_for(10ms)); }).join();
  std::thread([&] {
    EXPECT_TRUE(m.try_lock_shared());
    m.unlock_shared();
    m.lock_shared();  // must not hang
    m.unlock_shared();
  }).join();
  m.unlock_shared();
  EXPECT_TRUE(m.try_lock());
  m.unlock();
}

// Readers held back by a writer that then times out are let in. The reader
// comes once the writer sleeps (its wait call made, WW set), well inside the
// writer's 40 ms; a reader left behind after the writer left hangs.
TEST(shared_mutex, readers_behind_a_timed_out_writer_get_in) {
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  shared_mutex m;
  m.lock_shared();
  auto const base = rouse_test::wait_calls();
  std::thread w([&] { EXPECT_FALSE(m.try_lock_for(40ms)); });
  rouse_test::until_wait_calls(base + 1);
  std::atomic<bool> in{false};
  std::thread r([&] {
    m.lock_shared();
    in = true;
    m.unlock_shared();
  });
  w.join();
  r.join();  // must not hang although this thread still holds a shared lock
  EXPECT_TRUE(in.load());
  m.unlock_shared();
}

// A writer waiting behind another writer that times out still gets the lock.
// Both sleep (two wait calls) inside a's 30 ms; after a left, b is seen
// asleep again before the last reader leaves: an unlock that no longer wakes
// a writer (the WW mark lost with a) leaves b there (a hang).
TEST(shared_mutex, writers_behind_a_timed_out_writer_still_wake) {
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  shared_mutex m;
  m.lock_shared();
  auto const base = rouse_test::wait_calls();
  std::thread a([&] { EXPECT_FALSE(m.try_lock_for(30ms)); });
  std::atomic<bool> b_in{false};
  rouse_test::thread b([&] {
    m.lock();
    b_in = true;
    m.unlock();
  });
  rouse_test::until_wait_calls(base + 2);
  a.join();
  rouse_test::until_asleep(b);
  EXPECT_FALSE(b_in.load());
  m.unlock_shared();
  b.join();
  EXPECT_TRUE(b_in.load());
}

// A timed writer that gives up while another writer sleeps behind the same
// readers leaves that state as it was: the lock stays closed to new readers
// (they queue behind the writer still waiting), and nobody is woken (the
// sleeper keeps its place in the futex queue). Before, it cleared the
// writers' mark, and a writer timing out over and over let readers overlap
// past a waiting writer without end; then it woke the sleeper, which went
// behind the timed writer's next attempt, and that writer took every
// hand-over from a plain lock(). The timed writer's own try of a read lock
// right after its timeout is such a new reader.
TEST(shared_mutex, a_timed_writer_giving_up_leaves_the_writer_waiting_behind_it_as_it_was) {
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  for (int round = 0; round < 10; ++round) {
    shared_mutex m;
    m.lock_shared();
    std::atomic<bool> a_in{false};
    rouse_test::thread a([&] {
      m.lock();
      a_in = true;
      m.unlock();
    });
    rouse_test::until_asleep(a);
    auto const wakes = rouse_test::wake_calls();
    std::thread b([&] {
      EXPECT_FALSE(m.try_lock_for(1ms));
      EXPECT_EQ(rouse_test::wake_calls(), wakes) << "round " << round << ": the writer that gave up woke a writer";
      bool const passed = m.try_lock_shared();
      EXPECT_FALSE(passed) << "round " << round << ": a new reader passed the waiting writer";
      if (passed) m.unlock_shared();
    });
    b.join();
    EXPECT_FALSE(a_in.load());
    m.unlock_shared();  // the last reader out hands the lock to a
    a.join();
    EXPECT_TRUE(a_in.load());
    EXPECT_TRUE(m.try_lock_shared());  // and a's unlock leaves it open to readers
    m.unlock_shared();
  }
}

TEST(shared_mutex, works_with_std_lock_types) {
  shared_mutex m;
  { std::lock_guard<shared_mutex> g(m); }
  { std::scoped_lock g(m); }
  {
    std::unique_lock<shared_mutex> g(m, 10ms);
    EXPECT_TRUE(g.owns_lock());
  }
  {
    std::shared_lock<shared_mutex> g(m, 10ms);
    EXPECT_TRUE(g.owns_lock());
  }
  {
    std::shared_lock<shared_mutex> g(m, std::try_to_lock);
    EXPECT_TRUE(g.owns_lock());
  }
}

TEST(shared_mutex, nobody_waiting_makes_no_system_call) {
  if (!rouse::platform::syscall_counters_enabled()) GTEST_SKIP() << "syscall counters not built in";
  shared_mutex m;
  auto const before = rouse::platform::syscall_counters();
  for (int i = 0; i < 1000; ++i) {
    m.lock();
    m.unlock();
    m.lock_shared();
    m.lock_shared();
    m.unlock_shared();
    m.unlock_shared();
    EXPECT_TRUE(m.try_lock());
    m.unlock();
    EXPECT_TRUE(m.try_lock_shared_for(1s));
    m.unlock_shared();
    EXPECT_TRUE(m.try_lock_until(std::chrono::system_clock::now() + 1s));
    m.unlock();
  }
  auto const after = rouse::platform::syscall_counters();
  EXPECT_EQ(after.waits, before.waits);
  EXPECT_EQ(after.wakes, before.wakes);
}

// Read unlock wakes a writer only when it is the last reader.
TEST(shared_mutex, only_the_last_reader_wakes_a_writer) {
  if (!rouse::platform::syscall_counters_enabled()) GTEST_SKIP() << "syscall counters not built in";
  shared_mutex m;
  m.lock_shared();
  m.lock_shared();
  std::thread w([&] {
    m.lock();
    m.unlock();
  });
  // Wait until the writer is announced (new readers are held off).
  eventually([&] { return a_writer_waits(m); });
  auto const before = rouse::platform::syscall_counters();
  m.unlock_shared();  // not the last reader: no wake
  auto const mid = rouse::platform::syscall_counters();
  EXPECT_EQ(mid.wakes, before.wakes);
  m.unlock_shared();  // the last: wakes the writer, with one call
  auto const last = rouse::platform::syscall_counters();
  EXPECT_EQ(last.wakes - mid.wakes, 1u);
  w.join();
}

// The debug builds' ownership checks (below) keep each lock's holds apart:
// holds of neighbouring locks in both modes, released in any order, and
// locks taken again after their release are no misuse.
TEST(shared_mutex, holds_of_neighbouring_locks_in_both_modes_are_no_misuse) {
  shared_mutex locks[2];
  shared_mutex& a = locks[0];
  shared_mutex& b = locks[1];
  a.lock_shared();
  b.lock();
  b.unlock();
  b.lock_shared();
  a.unlock_shared();
  a.lock();
  b.unlock_shared();
  EXPECT_TRUE(b.try_lock());
  a.unlock();
  b.unlock();
  EXPECT_TRUE(a.try_lock_shared());
  a.unlock_shared();
}

#if ROUSE_DEBUG_CHECKS && !defined(ROUSE_SANITIZER_thread)
TEST(shared_mutex_death, unlock_shared_without_a_shared_lock) {
  EXPECT_DEATH(
      {
        shared_mutex m;
        m.unlock_shared();
      },
      "rouse::shared_mutex: misuse: unlock_shared");
}

TEST(shared_mutex_death, unlock_shared_while_write_locked) {
  EXPECT_DEATH(
      {
        shared_mutex m;
        m.lock();
        m.unlock_shared();
      },
      "rouse::shared_mutex: misuse: unlock_shared");
}

TEST(shared_mutex_death, unlock_without_holding) {
  EXPECT_DEATH(
      {
        shared_mutex m;
        m.unlock();
      },
      "rouse::shared_mutex: misuse: unlock\\(\\) without");
}

TEST(shared_mutex_death, unlock_while_read_locked) {
  EXPECT_DEATH(
      {
        shared_mutex m;
        m.lock_shared();
        m.unlock();
      },
      "rouse::shared_mutex: misuse: unlock\\(\\) without");
}

TEST(shared_mutex_death, a_lock_by_a_thread_that_holds_it_in_either_mode) {
  EXPECT_DEATH(
      {
        shared_mutex m;
        m.lock_shared();
        m.lock();  // an upgrade: deadlocks
      },
      "rouse::shared_mutex: misuse: lock\\(\\) by a thread that holds it shared");
  EXPECT_DEATH(
      {
        shared_mutex m;
        m.lock();
        m.lock();
      },
      "rouse::shared_mutex: misuse: lock\\(\\) by the thread that already holds it");
  EXPECT_DEATH(
      {
        shared_mutex m;
        m.lock();
        (void)m.try_lock_shared();
      },
      "rouse::shared_mutex: misuse: lock_shared\\(\\) by the thread that holds it exclusively");
}

TEST(shared_mutex_death, an_unlock_by_a_thread_that_does_not_hold_it) {
  EXPECT_DEATH(
      {
        shared_mutex m;
        std::thread([&] { m.lock(); }).join();
        m.unlock();
      },
      "rouse::shared_mutex: misuse: unlock\\(\\) by a thread that does not hold the lock");
  EXPECT_DEATH(
      {
        shared_mutex m;
        std::thread([&] { m.lock_shared(); }).join();
        m.unlock_shared();
      },
      "rouse::shared_mutex: misuse: unlock_shared\\(\\) by a thread that does not hold it shared");
}

TEST(shared_mutex_death, destroyed_while_locked) {
  EXPECT_DEATH(
      {
        auto* m = new shared_mutex;
        m->lock_shared();
        delete m;
      },
      "rouse::shared_mutex: misuse: destroyed while locked");
  EXPECT_DEATH(
      {
        auto* m = new shared_mutex;
        m->lock();
        delete m;
      },
      "rouse::shared_mutex: misuse: destroyed while locked");
}
#endif

}  // namespace
}  // namespace shared_mutex_test
