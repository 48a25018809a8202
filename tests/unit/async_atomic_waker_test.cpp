// rouse::async::atomic_waker: every transition of its state table, the
// will_wake clone skip, and the documented clone / drop / wake counts per
// operation (counted with a waker table that counts its calls). RMW counts
// follow from the transitions checked step by step (each arrow of the table
// is one RMW).
#include "rouse/async/atomic_waker.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "rouse/async/waker.hpp"
#include "rouse/thread_parker.hpp"

namespace async_atomic_waker_test {
namespace {

using rouse::async::atomic_waker;
using rouse::async::waker;
using rouse::async::waker_vtable;

// A waker target that counts every call its table receives.
struct counting {
  std::atomic<int> clones{0}, wakes{0}, wakes_by_ref{0}, drops{0};
  // An optional hook run inside clone (to step into the REGISTERING window).
  void (*on_clone)(counting*) = nullptr;
  void* context = nullptr;

  static const void* clone(const void* d) noexcept {
    auto* c = static_cast<counting*>(const_cast<void*>(d));
    c->clones.fetch_add(1);
    if (c->on_clone) c->on_clone(c);
    return d;
  }
  static void wake(const void* d) noexcept { static_cast<counting*>(const_cast<void*>(d))->wakes.fetch_add(1); }
  static void wake_by_ref(const void* d) noexcept {
    static_cast<counting*>(const_cast<void*>(d))->wakes_by_ref.fetch_add(1);
  }
  static void drop(const void* d) noexcept { static_cast<counting*>(const_cast<void*>(d))->drops.fetch_add(1); }
  static constexpr waker_vtable vtable{clone, wake, wake_by_ref, drop};

  // A waker adopting one (uncounted) reference: the test's own handle.
  waker make() noexcept { return waker(this, &vtable); }
  // References the atomic_waker holds: clones minus what it gave up.
  int held() const noexcept { return clones - wakes - drops; }
};

TEST(async_atomic_waker, size_is_documented) { EXPECT_EQ(sizeof(atomic_waker), 24u); }

TEST(async_atomic_waker, register_then_wake_clones_once_and_wakes_once) {
  counting c;
  atomic_waker aw;
  {
    waker const w = c.make();
    aw.register_waker(w);  // waiting -> registering -> waiting: 2 RMW
    EXPECT_EQ(aw.state_for_testing(), atomic_waker::waiting);
    EXPECT_EQ(c.clones, 1);
    EXPECT_EQ(c.drops, 0);
    aw.wake();  // waiting -> waking -> waiting: 2 RMW, 1 wake (consumes the clone)
    EXPECT_EQ(aw.state_for_testing(), atomic_waker::waiting);
    EXPECT_EQ(c.wakes, 1);
    EXPECT_EQ(c.wakes_by_ref, 0);
    EXPECT_EQ(c.held(), 0);
  }
  EXPECT_EQ(c.drops, 1);  // the test's own handle
}

TEST(async_atomic_waker, wake_with_nothing_registered_wakes_nothing) {
  counting c;
  atomic_waker aw;
  aw.wake();
  EXPECT_EQ(aw.state_for_testing(), atomic_waker::waiting);
  EXPECT_FALSE(aw.take());
  {
    waker const w = c.make();
    aw.register_waker(w);
    aw.wake();
    aw.wake();  // the second finds the slot empty
  }
  EXPECT_EQ(c.wakes, 1);
}

TEST(async_atomic_waker, reregistering_the_same_waker_skips_the_clone) {
  counting c;
  atomic_waker aw;
  waker const w = c.make();
  aw.register_waker(w);
  aw.register_waker(w);
  aw.register_waker(w);
  EXPECT_EQ(c.clones, 1);
  EXPECT_EQ(c.drops, 0);
  // A clone of the same waker will_wake it too.
  waker const copy = w;  // +1 clone (the test's)
  aw.register_waker(copy);
  EXPECT_EQ(c.clones, 2);  // no new clone by the atomic_waker
  EXPECT_EQ(c.drops, 0);
}

TEST(async_atomic_waker, registering_a_new_waker_drops_the_old_clone) {
  counting a, b;
  atomic_waker aw;
  waker const wa = a.make(), wb = b.make();
  aw.register_waker(wa);
  aw.register_waker(wb);
  EXPECT_EQ(a.clones, 1);
  EXPECT_EQ(a.drops, 1);
  EXPECT_EQ(b.clones, 1);
  EXPECT_EQ(b.drops, 0);
  aw.wake();
  EXPECT_EQ(a.wakes, 0);
  EXPECT_EQ(b.wakes, 1);
}

TEST(async_atomic_waker, take_moves_the_waker_out) {
  counting c;
  atomic_waker aw;
  waker const w = c.make();
  aw.register_waker(w);
  waker taken = aw.take();
  ASSERT_TRUE(taken);
  EXPECT_TRUE(taken.will_wake(w));
  EXPECT_FALSE(aw.take());
  EXPECT_EQ(c.wakes, 0);
  std::move(taken).wake();
  EXPECT_EQ(c.wakes, 1);
  EXPECT_EQ(c.held(), 0);
}

TEST(async_atomic_waker, destruction_drops_the_stored_waker) {
  counting c;
  {
    atomic_waker aw;
    waker const w = c.make();
    aw.register_waker(w);
  }
  EXPECT_EQ(c.clones, 1);
  EXPECT_EQ(c.drops, 2);  // the stored clone and the test's handle
  EXPECT_EQ(c.wakes, 0);
}

// A take() that lands while register_waker() holds the slot (REGISTERING):
// take finds registering, sets waking and returns nothing; the registrant's
// unlocking compare-exchange fails on registering|waking and it wakes the
// waker itself, leaving the word waiting.
TEST(async_atomic_waker, take_during_register_makes_the_registrant_wake) {
  counting c;
  atomic_waker aw;
  struct seen {
    atomic_waker* aw;
    std::uint32_t state_in_clone = 99;
    bool took = true;
  } s{&aw};
  c.context = &s;
  c.on_clone = [](counting* self) {
    auto* st = static_cast<seen*>(self->context);
    st->state_in_clone = st->aw->state_for_testing();
    st->took = static_cast<bool>(st->aw->take());
    self->on_clone = nullptr;
  };
  waker const w = c.make();
  aw.register_waker(w);
  EXPECT_EQ(s.state_in_clone, atomic_waker::registering);
  EXPECT_FALSE(s.took);
  EXPECT_EQ(aw.state_for_testing(), atomic_waker::waiting);
  EXPECT_EQ(c.clones, 1);
  EXPECT_EQ(c.wakes, 1);  // the registrant woke its own clone
  EXPECT_EQ(c.held(), 0);
  EXPECT_FALSE(aw.take());
}

// A thread consumer: register a thread waker, re-check, park; producers
// publish then wake. Every wake-up is seen (the count reaches the total).
TEST(async_atomic_waker, thread_consumer_sees_every_publish) {
  constexpr int producers = 4;
  constexpr int per_producer = 2000;
  atomic_waker aw;
  std::atomic<int> published{0};
  rouse::thread_parker parker;
  std::vector<std::thread> threads;
  for (int p = 0; p < producers; ++p)
    threads.emplace_back([&] {
      for (int i = 0; i < per_producer; ++i) {
        published.fetch_add(1, std::memory_order_relaxed);
        aw.wake();
      }
    });
  waker const w = rouse::async::thread_waker(parker);
  int rounds = 0;
  while (published.load(std::memory_order_relaxed) != producers * per_producer) {
    aw.register_waker(w);
    if (published.load(std::memory_order_relaxed) == producers * per_producer) break;
    parker.park();
    ++rounds;
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(published.load(), producers * per_producer);
  EXPECT_GE(rounds, 0);
}

#if ROUSE_DEBUG_CHECKS
TEST(async_atomic_waker_death, concurrent_register_is_diagnosed) {
  EXPECT_DEATH(
      {
        counting c;
        atomic_waker aw;
        c.context = &aw;
        c.on_clone = [](counting* self) {
          self->on_clone = nullptr;
          counting other;
          static_cast<atomic_waker*>(self->context)->register_waker(other.make());
        };
        aw.register_waker(c.make());
      },
      "rouse::async::atomic_waker: misuse: register_waker\\(\\) called concurrently");
}
#endif

}  // namespace
}  // namespace async_atomic_waker_test
