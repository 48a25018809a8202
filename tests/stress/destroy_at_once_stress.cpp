// A released object may be destroyed at once (std's rule for mutexes,
// DESIGN rule 7): the thread a release lets through may destroy the object
// while the releasing thread is still inside its release call. Each test
// repeats one legal pattern many times with the object in a
// rouse_test::guarded_object, whose memory faults once it is destroyed: a
// release that touches the object after its decisive state change crashes
// the test (in every build; AddressSanitizer reports it as well).
//
// The patterns drive each primitive's slow release paths: the waiter bits
// are set (evidence: the syscall counters show the waiter reached its sleep)
// before the release, and the destroying thread polls a try_ form so that
// it gets in the moment the release lets it.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "eventually.hpp"
#include "guarded_object.hpp"
#include "rouse/platform/counters.hpp"
#include "rouse/shared_mutex.hpp"
#include "stress.hpp"

namespace {

using namespace std::chrono_literals;
using rouse_test::eventually;
using rouse_test::guarded_object;

long rounds() { return rouse_test::scaled(2000); }

// The reported case: a reader's timed wait gives up behind a writer and
// leaves its waiting bit; the writer's unlock then hands over to readers
// that are not there, while the reader polls try_lock_shared(), gets in,
// unlocks and destroys the mutex.
TEST(destroy_at_once, shared_mutex_after_a_timed_out_reader) {
  for (long i = 0; i < rounds(); ++i) {
    guarded_object<rouse::shared_mutex> m;
    std::atomic<int> step{0};
    std::thread writer([&] {
      m->lock();
      step.store(1);
      eventually([&] { return step.load() == 2; });
      m->unlock();
    });
    eventually([&] { return step.load() == 1; });
    ASSERT_FALSE(m->try_lock_shared_for(50us));  // sleeps (sets WR), then times out
    step.store(2);
    while (!m->try_lock_shared()) std::this_thread::yield();
    m->unlock_shared();
    m.destroy();
    writer.join();
  }
}

// Writer to writer: the second writer sleeps (WW); the first unlocks and
// hands over; the destroying thread takes the lock after the second writer
// is done with it.
TEST(destroy_at_once, shared_mutex_after_a_writer_hand_over) {
  if (!rouse::platform::syscall_counters_enabled()) GTEST_SKIP() << "needs the syscall counters as evidence";
  for (long i = 0; i < rounds(); ++i) {
    guarded_object<rouse::shared_mutex> m;
    std::atomic<int> done_locking{0};
    m->lock();
    auto const base = rouse_test::wait_calls();
    std::thread second([&] {
      m->lock();  // sleeps behind the main thread, sets WW
      done_locking.fetch_add(1);
      m->unlock();  // its own WW (it cannot tell it is alone) makes this a hand-over too
    });
    rouse_test::until_wait_calls(base + 1);
    done_locking.fetch_add(1);
    m->unlock();
    eventually([&] { return done_locking.load() == 2; });
    while (!m->try_lock()) std::this_thread::yield();
    m->unlock();
    m.destroy();
    second.join();
  }
}

// Last reader to writer: a writer sleeps behind a reader (WW); the reader's
// unlock_shared() hands over; the destroying thread takes the lock after
// the writer is done with it.
TEST(destroy_at_once, shared_mutex_after_the_last_reader_hands_over) {
  if (!rouse::platform::syscall_counters_enabled()) GTEST_SKIP() << "needs the syscall counters as evidence";
  for (long i = 0; i < rounds(); ++i) {
    guarded_object<rouse::shared_mutex> m;
    std::atomic<int> done_locking{0};
    std::atomic<bool> reader_holds{false};
    std::thread reader([&] {
      m->lock_shared();
      done_locking.fetch_add(1);
      reader_holds.store(true);
      eventually([&] { return done_locking.load() == 2 || !reader_holds.load(); });
      m->unlock_shared();
    });
    eventually([&] { return reader_holds.load(); });
    auto const base = rouse_test::wait_calls();
    std::thread writer([&] {
      m->lock();  // sleeps behind the reader, sets WW
      done_locking.fetch_add(1);
      m->unlock();
    });
    rouse_test::until_wait_calls(base + 1);
    reader_holds.store(false);  // the reader unlocks now
    eventually([&] { return done_locking.load() == 2; });
    while (!m->try_lock()) std::this_thread::yield();
    m->unlock();
    m.destroy();
    reader.join();
    writer.join();
  }
}

// Writer to readers: a reader sleeps behind a writer (WR); the writer's
// unlock hands the read turn over; the reader gets in and unlocks, and the
// destroying thread (the main one, polling try_lock) destroys the mutex.
TEST(destroy_at_once, shared_mutex_after_a_read_turn) {
  if (!rouse::platform::syscall_counters_enabled()) GTEST_SKIP() << "needs the syscall counters as evidence";
  for (long i = 0; i < rounds(); ++i) {
    guarded_object<rouse::shared_mutex> m;
    std::atomic<int> step{0};
    std::atomic<bool> reader_done{false};
    std::thread writer([&] {
      m->lock();
      step.store(1);
      eventually([&] { return step.load() == 2; });
      m->unlock();
    });
    eventually([&] { return step.load() == 1; });
    auto const base = rouse_test::wait_calls();
    std::thread reader([&] {
      m->lock_shared();  // sleeps behind the writer, sets WR
      m->unlock_shared();
      reader_done.store(true);
    });
    rouse_test::until_wait_calls(base + 1);
    step.store(2);  // the writer unlocks now
    eventually([&] { return reader_done.load(); });
    while (!m->try_lock()) std::this_thread::yield();
    m->unlock();
    m.destroy();
    reader.join();
    writer.join();
  }
}

}  // namespace
