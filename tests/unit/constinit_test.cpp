// Constant initialisation of rouse's types, as std declares it: a constinit
// global of every public type that can have one, constexpr variables of the
// literal types whose std counterparts have constexpr constructors, and
// construction plus destruction inside constant evaluation (the debug
// misuse checks of the destructors must stay out of it). A constructor
// misuse in a constant initialisation is a compile error when the checks
// are on. Each global is then used, so this is not only a compile check.
//
// Built twice (tests/CMakeLists.txt): constinit_test, and
// constinit_ndebug_test with NDEBUG defined. rouse's misuse checks follow the
// build's configuration (rouse/config.hpp), not a translation unit's NDEBUG:
// the checks-off case (destructors defaulted, no constructor check) is what
// a build configured with them off runs, e.g. the release preset.
#include <gtest/gtest.h>

#include <chrono>
#include <cstddef>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <type_traits>

#include "rouse/barrier.hpp"
#include "rouse/condition_variable.hpp"
#include "rouse/event.hpp"
#include "rouse/eventcount.hpp"
#include "rouse/guarded.hpp"
#include "rouse/latch.hpp"
#include "rouse/mutex.hpp"
#include "rouse/once.hpp"
#include "rouse/recursive_mutex.hpp"
#include "rouse/semaphore.hpp"
#include "rouse/shared_mutex.hpp"
#include "rouse/spin_lock.hpp"
#include "rouse/thread_parker.hpp"
#include "threads.hpp"

namespace constinit_test {
namespace {

using namespace std::chrono_literals;

constexpr std::ptrdiff_t wide_max = std::ptrdiff_t{1} << 40;
using wide_semaphore = rouse::counting_semaphore<wide_max>;

// --- constinit globals: every type ------------------------------------------
// std counterparts with constexpr constructors
constinit rouse::mutex g_mutex;
constinit rouse::once_flag g_once;
constinit rouse::latch g_latch(2);
constinit rouse::barrier<> g_barrier(1);
constinit rouse::counting_semaphore<8> g_semaphore(8);
constinit rouse::counting_semaphore<> g_default_semaphore(0);
constinit rouse::binary_semaphore g_binary(1);
constinit wide_semaphore g_wide(3);
// std counterparts without constexpr constructors (constinit all the same)
constinit rouse::recursive_mutex g_recursive;
constinit rouse::shared_mutex g_shared;
constinit rouse::condition_variable g_cv;
// rouse-only types
constinit rouse::event g_event;
constinit rouse::event g_auto_event(rouse::event_mode::auto_reset, true);
constinit rouse::spin_lock g_spin;
constinit rouse::eventcount g_eventcount;
constinit rouse::thread_parker g_parker;
constinit rouse::guarded<int> g_guarded;

// --- constexpr variables: literal types -----------------------------------
// The std counterparts' constructors are constexpr (std::mutex, once_flag,
// latch, barrier, counting_semaphore); recursive_mutex is rouse's promise.
// A constexpr variable needs a constexpr destructor, which must also be
// constant: its debug check must not run in constant evaluation.
constexpr rouse::mutex k_mutex;
constexpr rouse::recursive_mutex k_recursive;
constexpr rouse::once_flag k_once;
constexpr rouse::latch k_latch(0);
constexpr rouse::barrier<> k_barrier(3);
constexpr rouse::counting_semaphore<8> k_semaphore(5);
constexpr rouse::binary_semaphore k_binary(0);
constexpr wide_semaphore k_wide(wide_max);

// --- construction and destruction inside constant evaluation -------------
template <class T, class... Args>
constexpr bool constant_lifetime(Args... args) {
  T object(args...);
  (void)object;
  return true;
}
static_assert(constant_lifetime<rouse::mutex>());
static_assert(constant_lifetime<rouse::recursive_mutex>());
static_assert(constant_lifetime<rouse::once_flag>());
static_assert(constant_lifetime<rouse::latch>(std::ptrdiff_t{4}));
static_assert(constant_lifetime<rouse::barrier<>>(std::ptrdiff_t{2}));
static_assert(constant_lifetime<rouse::counting_semaphore<8>>(std::ptrdiff_t{8}));
static_assert(constant_lifetime<rouse::binary_semaphore>(std::ptrdiff_t{1}));
static_assert(constant_lifetime<wide_semaphore>(wide_max));
static_assert(constant_lifetime<rouse::event>());

// The wide layout for a maximum above 2^31 - 1, the one-word one up to it.
static_assert(sizeof(rouse::binary_semaphore) == 4 && sizeof(rouse::counting_semaphore<>) == 4);
static_assert(rouse::counting_semaphore<>::max() == 0x7FFFFFFF);
static_assert(sizeof(wide_semaphore) == 16);

// --- misuse in a constant initialisation does not compile ------------------
// (A requires-expression turns "not a constant expression" into false.)
template <class T, std::ptrdiff_t Arg>
concept constant_constructible = requires {
  typename std::bool_constant<constant_lifetime<T>(Arg)>;
};
static_assert(constant_constructible<rouse::latch, 0>);
static_assert(constant_constructible<rouse::counting_semaphore<8>, 8>);
static_assert(constant_constructible<wide_semaphore, wide_max>);
#if ROUSE_DEBUG_CHECKS
static_assert(!constant_constructible<rouse::latch, -1>);
static_assert(!constant_constructible<rouse::barrier<>, -1>);
static_assert(!constant_constructible<rouse::barrier<>, rouse::barrier<>::max() + 1>);
static_assert(!constant_constructible<rouse::counting_semaphore<8>, 9>);
static_assert(!constant_constructible<rouse::counting_semaphore<8>, -1>);
static_assert(!constant_constructible<rouse::binary_semaphore, 2>);
static_assert(!constant_constructible<wide_semaphore, wide_max + 1>);
#endif

// --- every global in use ----------------------------------------------------

using rouse_test::on_another_thread;

TEST(constinit, mutexes_lock_and_unlock) {
  {
    std::lock_guard g(g_mutex);
    EXPECT_FALSE(on_another_thread([] { return g_mutex.try_lock(); }));
  }
  EXPECT_TRUE(g_mutex.try_lock_for(1ms));
  g_mutex.unlock();
  {
    std::lock_guard outer(g_recursive);
    std::lock_guard inner(g_recursive);
    EXPECT_FALSE(on_another_thread([] { return g_recursive.try_lock(); }));
  }
  {
    std::unique_lock g(g_shared);
    EXPECT_FALSE(on_another_thread([] { return g_shared.try_lock_shared(); }));
  }
  {
    std::shared_lock a(g_shared);
    EXPECT_FALSE(on_another_thread([] { return g_shared.try_lock(); }));
  }
  {
    std::lock_guard g(g_spin);
    EXPECT_FALSE(on_another_thread([] { return g_spin.try_lock(); }));
  }
  *g_guarded.lock() = 5;
  EXPECT_EQ(*g_guarded.lock(), 5);
}

TEST(constinit, call_once_runs_once) {
  int runs = 0;
  rouse::call_once(g_once, [&] { ++runs; });
  rouse::call_once(g_once, [&] { ++runs; });
  EXPECT_EQ(runs, 1);
}

TEST(constinit, latch_and_barrier) {
  std::thread t([] { g_latch.count_down(); });
  g_latch.arrive_and_wait();
  t.join();
  EXPECT_TRUE(g_latch.try_wait());
  g_barrier.arrive_and_wait();
  g_barrier.arrive_and_wait();
  EXPECT_TRUE(k_latch.try_wait());  // a constexpr latch(0) is open
  k_latch.wait();
}

TEST(constinit, semaphores_acquire_and_release) {
  for (int i = 0; i < 8; ++i) EXPECT_TRUE(g_semaphore.try_acquire());
  EXPECT_FALSE(g_semaphore.try_acquire());
  g_semaphore.release(8);
  g_binary.acquire();
  EXPECT_FALSE(g_binary.try_acquire_for(1ms));
  g_binary.release();
  std::thread t([] { g_default_semaphore.release(); });
  g_default_semaphore.acquire();
  t.join();
  for (int i = 0; i < 3; ++i) g_wide.acquire();
  EXPECT_FALSE(g_wide.try_acquire());
  g_wide.release(std::ptrdiff_t{1} << 33);
  EXPECT_TRUE(g_wide.try_acquire_for(1ms));
  static_assert(decltype(k_wide)::max() == wide_max && decltype(k_semaphore)::max() == 8 &&
                decltype(k_binary)::max() == 1);
}

TEST(constinit, condition_variable_waits_on_the_constinit_mutex) {
  bool ready = false;
  std::thread t([&] {
    std::lock_guard g(g_mutex);
    ready = true;
    g_cv.notify_one();
  });
  {
    std::unique_lock l(g_mutex);
    g_cv.wait(l, [&] { return ready; });
  }
  t.join();
}

TEST(constinit, events_eventcount_and_parker) {
  EXPECT_FALSE(g_event.is_set());
  g_event.set();
  g_event.wait();
  g_event.reset();
  EXPECT_TRUE(g_auto_event.wait_for(1ms));  // initially set, consumed
  EXPECT_FALSE(g_auto_event.is_set());
  (void)g_eventcount.prepare_wait();
  g_eventcount.cancel_wait();
  g_eventcount.notify_all();
  g_parker.unpark();
  g_parker.park();
  EXPECT_FALSE(g_parker.park_for(1ms));
}

// The constexpr ones are unusable objects (const), but their destructors
// run at exit, with the debug checks on in debug builds.
TEST(constinit, constexpr_objects_are_in_their_initial_state) {
  EXPECT_TRUE(k_latch.try_wait());
  EXPECT_NE(static_cast<const void*>(&k_mutex), static_cast<const void*>(&k_recursive));
  EXPECT_NE(static_cast<const void*>(&k_once), static_cast<const void*>(&k_barrier));
}

}  // namespace
}  // namespace constinit_test
