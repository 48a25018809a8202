// A released object may be destroyed at once (std's rule for mutexes;
// docs/design.md, rule 7): the thread a release lets through may destroy the object
// while the releasing thread is still inside its release call. Each test
// repeats one legal pattern many times with the object in a
// rouse_test::guarded_object, whose memory faults once it is destroyed: a
// release that touches the object after its decisive state change crashes
// the test (in every build; AddressSanitizer reports it as well).
//
// The patterns drive each primitive's slow release paths: the waiter bits
// are set (evidence: the syscall counters show the waiter reached its sleep)
// before the release, and the destroying thread is the one the release lets
// through (it returns from its wait and destroys at once), or one that
// polls a try_ form so that it gets in the moment the release lets it.
//
// Objects that rouse allocates itself (a channel's shared state, freed by
// its last handle) and the frames a blocked channel operation keeps on its
// stack (the context its waker claims) cannot live in a guarded_object:
// their tests below catch a late access under AddressSanitizer only (a
// heap-use-after-free, or a stack-use-after-return, switched on for this
// program below). Types whose rule does not allow destroying them while a
// release is under way (rouse::eventcount: see its header) have no test here.
// A late access that follows the decisive RMW within a few instructions
// (no system call between) is rarely caught by a run: the Relacy models of
// tests/model/destroy_at_once_model.cpp explore those interleavings.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <utility>

#include "eventually.hpp"
#include "guarded_object.hpp"
#include "rouse/atomic_wait.hpp"
#include "rouse/barrier.hpp"
#include "rouse/channel/channel.hpp"
#include "rouse/channel/oneshot.hpp"
#include "rouse/channel/select.hpp"
#include "rouse/channel/spsc.hpp"
#include "rouse/event.hpp"
#include "rouse/guarded.hpp"
#include "rouse/latch.hpp"
#include "rouse/mutex.hpp"
#include "rouse/once.hpp"
#include "rouse/platform/counters.hpp"
#include "rouse/pool/pool.hpp"
#include "rouse/recursive_mutex.hpp"
#include "rouse/shared_mutex.hpp"
#include "rouse/spin_lock.hpp"
#include "rouse/thread_parker.hpp"
#include "stress.hpp"

namespace destroy_at_once_stress {
#if defined(ROUSE_TEST_ASAN)
// A blocked channel operation's context lives in its stack frame: with
// fake stacks, a waker that touched the frame after the operation returned
// is reported as a stack-use-after-return.
extern "C" const char* __asan_default_options() { return "detect_stack_use_after_return=1"; }
#endif

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

// The shape of most tests below: a waiter sleeps in `wait` until `release`
// (on the main thread) lets it go, and destroys the object the moment its
// wait returns, while the releasing thread may still be inside the release.
// The release starts only once the waiter reached its sleep (a wait system
// call was counted), so the release takes its waking path.
template <class T, class Wait, class Release, class... Args>
void waiter_destroys_after_release(Wait wait, Release release, const Args&... args) {
  for (long i = 0; i < rounds(); ++i) {
    guarded_object<T> object(args...);
    T* const p = object.get();
    auto const base = rouse_test::wait_calls();
    std::thread waiter([&] {
      wait(*p);
      object.destroy();
    });
    rouse_test::until_wait_calls(base + 1);
    release(*p);
    waiter.join();
  }
}

// A lock's version: the main thread holds the lock (`depth` times), a second
// thread sleeps in lock(); the main thread's last unlock() takes the slow
// path (the word says a thread sleeps) and wakes it; the woken thread
// unlocks and destroys the lock at once.
template <class Lock>
void woken_locker_destroys(int depth) {
  for (long i = 0; i < rounds(); ++i) {
    guarded_object<Lock> m;
    Lock* const p = m.get();
    for (int d = 0; d < depth; ++d) p->lock();
    auto const base = rouse_test::wait_calls();
    std::thread second([&] {
      p->lock();  // spins, marks the word contended, sleeps
      p->unlock();
      m.destroy();
    });
    rouse_test::until_wait_calls(base + 1);
    for (int d = 0; d < depth; ++d) p->unlock();
    second.join();
  }
}

TEST(destroy_at_once, mutex_after_a_contended_unlock) {
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  woken_locker_destroys<rouse::mutex>(1);
}

TEST(destroy_at_once, recursive_mutex_after_its_last_unlock) {
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  woken_locker_destroys<rouse::recursive_mutex>(2);
}

// A guard's unlock is the mutex's: the guard's own state lives in the guard.
TEST(destroy_at_once, guarded_after_a_guard_unlocks) {
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  for (long i = 0; i < rounds(); ++i) {
    guarded_object<rouse::guarded<int>> data;
    rouse::guarded<int>* const p = data.get();
    auto g = p->lock();
    auto const base = rouse_test::wait_calls();
    std::thread second([&] {
      p->with_lock([](int& v) { ++v; });  // sleeps behind the guard
      data.destroy();
    });
    rouse_test::until_wait_calls(base + 1);
    *g = 1;
    g.unlock();
    second.join();
  }
}

// A spin lock has one release path, a store: the spinner gets in at once.
// (No sleep to prove: the spinner only shows it is about to lock. Fewer
// rounds: a spinner holds its CPU while the holder waits for its turn.)
TEST(destroy_at_once, spin_lock_after_unlock) {
  for (long i = 0; i < rouse_test::scaled(200); ++i) {
    guarded_object<rouse::spin_lock> m;
    rouse::spin_lock* const p = m.get();
    std::atomic<bool> started{false};
    p->lock();
    std::thread second([&] {
      started.store(true);
      p->lock();
      p->unlock();
      m.destroy();
    });
    eventually([&] { return started.load(); });
    p->unlock();
    second.join();
  }
}

// The runner's completing exchange wakes a waiter that marked the flag
// "waiting"; the waiter returns from call_once and destroys the flag while
// the runner is still in its wake call.
TEST(destroy_at_once, once_flag_after_the_run_completes) {
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  for (long i = 0; i < rounds(); ++i) {
    guarded_object<rouse::once_flag> flag;
    rouse::once_flag* const f = flag.get();
    std::atomic<int> step{0};
    std::thread runner([&] {
      rouse::call_once(*f, [&] {
        step.store(1);
        eventually([&] { return step.load() == 2; });
      });
    });
    eventually([&] { return step.load() == 1; });
    auto const base = rouse_test::wait_calls();
    std::thread waiter([&] {
      rouse::call_once(*f, [] { ADD_FAILURE() << "the callable ran twice"; });
      flag.destroy();
    });
    rouse_test::until_wait_calls(base + 1);
    step.store(2);  // the callable returns now
    runner.join();
    waiter.join();
  }
}

TEST(destroy_at_once, latch_after_the_last_count_down) {
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  waiter_destroys_after_release<rouse::latch>([](rouse::latch& l) { l.wait(); },
                                              [](rouse::latch& l) { l.count_down(); }, std::ptrdiff_t{1});
}

// The last arrival (a drop) completes the phase: completion function, the
// next phase's count, the phase change that releases the sleeper, its wake.
TEST(destroy_at_once, barrier_after_the_completing_arrival) {
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  std::atomic<long> phases{0};
  auto completion = [&phases]() noexcept { phases.fetch_add(1, std::memory_order_relaxed); };
  using barrier = rouse::barrier<decltype(completion)>;
  waiter_destroys_after_release<barrier>([](barrier& b) { b.arrive_and_wait(); },
                                         [](barrier& b) { b.arrive_and_drop(); }, std::ptrdiff_t{2}, completion);
  EXPECT_EQ(phases.load(), rounds());
}

TEST(destroy_at_once, event_manual_reset_after_set) {
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  waiter_destroys_after_release<rouse::event>([](rouse::event& e) { e.wait(); }, [](rouse::event& e) { e.set(); });
}

TEST(destroy_at_once, event_auto_reset_after_set) {
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  waiter_destroys_after_release<rouse::event>([](rouse::event& e) { e.wait(); }, [](rouse::event& e) { e.set(); },
                                              rouse::event_mode::auto_reset);
}

TEST(destroy_at_once, thread_parker_after_unpark) {
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  waiter_destroys_after_release<rouse::thread_parker>([](rouse::thread_parker& p) { p.park(); },
                                                      [](rouse::thread_parker& p) { p.unpark(); });
}

// atomic_wait: the notifier's store is what lets the waiter go; the notify
// that follows uses only the atomic's address (the futex, or the parking
// table for other sizes), so the waiter may destroy the atomic under it.
template <class U>
void atomic_waiter_destroys_after_notify() {
  waiter_destroys_after_release<std::atomic<U>>([](std::atomic<U>& a) { rouse::atomic_wait(a, U{0}); },
                                                [](std::atomic<U>& a) {
                                                  a.store(U{1});
                                                  rouse::atomic_notify_one(a);
                                                },
                                                U{0});
}

TEST(destroy_at_once, atomic_wait_32_after_notify) {
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  atomic_waiter_destroys_after_notify<std::uint32_t>();
}

TEST(destroy_at_once, atomic_wait_64_after_notify) {
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  atomic_waiter_destroys_after_notify<std::uint64_t>();
}

// The other order, always: the waiter sees the store and destroys the atomic
// before the notifier calls notify at all (atomic_wait.hpp's Lifecycle).
template <class U>
void notify_after_the_waiter_destroyed_the_atomic() {
  for (long i = 0; i < rounds(); ++i) {
    guarded_object<std::atomic<U>> a(U{0});
    std::atomic<U>* const p = a.get();
    std::atomic<bool> destroyed{false};
    std::thread waiter([&] {
      while (p->load() == U{0}) std::this_thread::yield();
      a.destroy();
      destroyed.store(true);
    });
    p->store(U{1});
    eventually([&] { return destroyed.load(); });
    rouse::atomic_notify_one(*p);
    rouse::atomic_notify_all(*p);
    waiter.join();
  }
}

TEST(destroy_at_once, atomic_notify_32_after_the_waiter_destroyed_it) {
  notify_after_the_waiter_destroyed_the_atomic<std::uint32_t>();
}

TEST(destroy_at_once, atomic_notify_16_after_the_waiter_destroyed_it) {
  notify_after_the_waiter_destroyed_the_atomic<std::uint16_t>();
}

// parallel_reduce folds the partial results after its job, on the calling
// thread, once the callers' lock is free: there the pool may already be
// gone. The fold's first combine (the only one whose left side is the
// initial value) waits until another thread has destroyed the pool; the
// destructor got the callers' lock the moment the call released it.
template <class Reduce>
void pool_destroyed_during_the_final_fold(Reduce reduce) {
  for (long i = 0; i < rouse_test::scaled(200); ++i) {
    rouse::pool_options options;
    options.threads = 2;
    guarded_object<rouse::pool> pool(options);
    rouse::pool* const p = pool.get();
    std::atomic<int> step{0};
    long sum = 0;
    std::thread caller([&] {
      sum = reduce(*p, [&](long a, long b) {
        if (a == -1) {  // the initial value: the fold after the job
          step.store(1);
          eventually([&] { return step.load() == 2; });
          a = 0;
        }
        return a + b;
      });
    });
    eventually([&] { return step.load() == 1; });
    pool.destroy();
    step.store(2);
    caller.join();
    EXPECT_GT(sum, 0);
  }
}

TEST(destroy_at_once, pool_during_parallel_reduce_final_fold) {
  pool_destroyed_during_the_final_fold([](rouse::pool& p, auto combine) {
    // As many indices as participants: a static split, one index each, so
    // no combine runs inside the job.
    return p.parallel_reduce(
        0L, static_cast<long>(p.size()), -1L, [](long i) { return i + 1; }, combine);
  });
}

TEST(destroy_at_once, pool_during_parallel_reduce_final_fold_of_pieces) {
  pool_destroyed_during_the_final_fold([](rouse::pool& p, auto combine) {
    // Large enough to be cut into pieces (pool/pieces.hpp); the job's folds
    // never see the initial value.
    long const n = 64L << 14;
    return p.parallel_reduce(
        0L, n, -1L, [](long) { return 1L; }, combine);
  });
}

// oneshot: the receiver sleeps (WAITING); the sender's publish keeps its
// share across the wake, and the last of the two frees the state.
TEST(destroy_at_once, oneshot_after_send_wakes_the_receiver) {
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  for (long i = 0; i < rounds(); ++i) {
    auto channel = rouse::channel::oneshot<int>();
    auto tx = std::move(channel.first);
    auto rx = std::move(channel.second);
    auto const base = rouse_test::wait_calls();
    std::thread receiver([&] {
      auto r = rx.recv();
      EXPECT_TRUE(r.has_value());
      rx = {};
    });
    rouse_test::until_wait_calls(base + 1);
    EXPECT_EQ(std::move(tx).send(7).status(), rouse::channel::status::ok);
    receiver.join();
  }
}

TEST(destroy_at_once, oneshot_after_the_sender_goes_away) {
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  for (long i = 0; i < rounds(); ++i) {
    auto channel = rouse::channel::oneshot<int>();
    auto tx = std::move(channel.first);
    auto rx = std::move(channel.second);
    auto const base = rouse_test::wait_calls();
    std::thread receiver([&] {
      EXPECT_EQ(rx.recv().status(), rouse::channel::status::closed);
      rx = {};
    });
    rouse_test::until_wait_calls(base + 1);
    tx = {};  // closes: wakes the receiver
    receiver.join();
  }
}

// spsc: the receiver sleeps; the sender sends and lets go of its handle
// (close, then its share); the receiver drains, sees closed and lets go.
TEST(destroy_at_once, spsc_after_send_and_close) {
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  for (long i = 0; i < rounds(); ++i) {
    auto channel = rouse::channel::spsc<int>(1);
    auto tx = std::move(channel.first);
    auto rx = std::move(channel.second);
    auto const base = rouse_test::wait_calls();
    std::thread receiver([&] {
      EXPECT_TRUE(rx.recv().has_value());
      EXPECT_EQ(rx.recv().status(), rouse::channel::status::closed);
      rx = {};
    });
    rouse_test::until_wait_calls(base + 1);
    EXPECT_EQ(tx.send(7).status(), rouse::channel::status::ok);
    tx = {};
    receiver.join();
  }
}

// MPMC channels: the receiver's operation sleeps on a context in its own
// frame; the sender claims it, delivers (rendezvous) and unparks it. The
// receiver returns (its frame is gone) and lets go of its handle.
template <class Make>
void mpmc_receiver_woken_by_send(Make make) {
  for (long i = 0; i < rounds(); ++i) {
    auto channel = make();
    auto tx = std::move(channel.first);
    auto rx = std::move(channel.second);
    auto const base = rouse_test::wait_calls();
    std::thread receiver([&] {
      EXPECT_TRUE(rx.recv().has_value());
      rx = {};
    });
    rouse_test::until_wait_calls(base + 1);
    EXPECT_EQ(tx.send(7).status(), rouse::channel::status::ok);
    tx = {};
    receiver.join();
  }
}

TEST(destroy_at_once, bounded_channel_after_send) {
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  mpmc_receiver_woken_by_send([] { return rouse::channel::bounded<int>(1); });
}

TEST(destroy_at_once, unbounded_channel_after_send) {
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  mpmc_receiver_woken_by_send([] { return rouse::channel::unbounded<int>(); });
}

TEST(destroy_at_once, ticket_channel_after_send) {
  // The receiver sleeps on its slot's word; the publish wakes it.
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  mpmc_receiver_woken_by_send([] { return rouse::channel::bounded<int>(1, rouse::channel::ring::ticket); });
}

// The ticket ring: a sender sleeps on its full slot; a receive frees it and
// wakes it, and the receiver lets go of the channel at once (its last
// handle: a close). The send completes, or, if it saw the close first, gives
// its value back; the last handle frees the state.
TEST(destroy_at_once, ticket_channel_after_a_receive_frees_a_slot) {
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  for (long i = 0; i < rounds(); ++i) {
    auto channel = rouse::channel::bounded<int>(1, rouse::channel::ring::ticket);
    auto tx = std::move(channel.first);
    auto rx = std::move(channel.second);
    ASSERT_TRUE(tx.send(1));
    auto const base = rouse_test::wait_calls();
    std::thread sender([&] {
      auto const r = tx.send(2);
      EXPECT_TRUE(r.ok() || (r.status() == rouse::channel::status::closed && r.value() == 2));
      tx = {};
    });
    rouse_test::until_wait_calls(base + 1);
    EXPECT_EQ(*rx.recv(), 1);
    rx = {};
    sender.join();
  }
}

TEST(destroy_at_once, rendezvous_channel_after_send) {
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  mpmc_receiver_woken_by_send([] { return rouse::channel::bounded<int>(0); });
}

// select: the case (its waiter and rendezvous packet) belongs to the caller
// and may be destroyed as soon as select returns: a close or a rendezvous
// send that claimed it touches it no more.
template <class Release>
void select_case_destroyed_after(std::size_t capacity, Release release, rouse::channel::status expected) {
  for (long i = 0; i < rounds(); ++i) {
    auto channel = rouse::channel::bounded<int>(capacity);
    guarded_object<rouse::channel::recv_case<int>> c(channel.second);
    rouse::channel::recv_case<int>* const p = c.get();
    auto const base = rouse_test::wait_calls();
    std::thread selector([&] {
      EXPECT_EQ(rouse::channel::select(*p), 0u);
      EXPECT_EQ(p->result().status(), expected);
      c.destroy();
    });
    rouse_test::until_wait_calls(base + 1);
    release(channel.first);
    selector.join();
  }
}

TEST(destroy_at_once, select_case_after_close) {
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  select_case_destroyed_after(
      1, [](rouse::channel::sender<int>& tx) { tx.close(); }, rouse::channel::status::closed);
}

TEST(destroy_at_once, select_case_after_a_rendezvous_send) {
  ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();
  select_case_destroyed_after(
      0, [](rouse::channel::sender<int>& tx) { EXPECT_EQ(tx.send(7).status(), rouse::channel::status::ok); },
      rouse::channel::status::ok);
}

}  // namespace
}  // namespace destroy_at_once_stress
