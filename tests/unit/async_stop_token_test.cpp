// rouse::async stop tokens: inplace_stop_source / token / callback,
// never_stop_token, stop_callback_for_t and detail::stop_slot.
#include "rouse/async/stop_token.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <optional>
#include <stop_token>
#include <thread>
#include <type_traits>
#include <vector>

#include "threads.hpp"

namespace async_stop_token_test {
namespace {
using rouse::async::inplace_stop_callback;
using rouse::async::inplace_stop_source;
using rouse::async::inplace_stop_token;
using rouse::async::never_stop_token;
using rouse::async::stop_callback_for_t;

struct bump {
  std::atomic<int>* n;
  void operator()() noexcept { n->fetch_add(1); }
};

TEST(async_stop_token, sizes_are_documented) {
  EXPECT_EQ(sizeof(inplace_stop_source), 24u);
  EXPECT_EQ(sizeof(inplace_stop_token), sizeof(void*));
}

TEST(async_stop_token, tokens_see_the_request_and_compare_by_source) {
  inplace_stop_source s, other;
  inplace_stop_token const t = s.get_token();
  EXPECT_TRUE(t.stop_possible());
  EXPECT_FALSE(t.stop_requested());
  EXPECT_EQ(t, s.get_token());
  EXPECT_NE(t, other.get_token());
  inplace_stop_token const none;
  EXPECT_FALSE(none.stop_possible());
  EXPECT_FALSE(none.stop_requested());
  EXPECT_TRUE(s.request_stop());
  EXPECT_TRUE(t.stop_requested());
  EXPECT_TRUE(s.stop_requested());
  EXPECT_FALSE(other.stop_requested());
}

TEST(async_stop_token, callbacks_run_once_on_request_stop) {
  inplace_stop_source s;
  std::atomic<int> a{0}, b{0}, c{0};
  inplace_stop_callback<bump> ca(s.get_token(), bump{&a});
  inplace_stop_callback<bump> cb(s.get_token(), bump{&b});
  inplace_stop_callback<bump> cc(s.get_token(), bump{&c});
  EXPECT_EQ(a + b + c, 0);
  EXPECT_TRUE(s.request_stop());
  EXPECT_EQ(a, 1);
  EXPECT_EQ(b, 1);
  EXPECT_EQ(c, 1);
  EXPECT_FALSE(s.request_stop());  // only the first call makes the request
  EXPECT_EQ(a + b + c, 3);
}

TEST(async_stop_token, a_callback_destroyed_before_the_request_never_runs) {
  inplace_stop_source s;
  std::atomic<int> a{0}, b{0};
  std::optional<inplace_stop_callback<bump>> ca(std::in_place, s.get_token(), bump{&a});
  inplace_stop_callback<bump> cb(s.get_token(), bump{&b});
  ca.reset();
  s.request_stop();
  EXPECT_EQ(a, 0);
  EXPECT_EQ(b, 1);
}

TEST(async_stop_token, registration_after_stop_runs_inline_in_the_constructor) {
  inplace_stop_source s;
  s.request_stop();
  std::thread::id ran_on{};
  bool ran = false;
  auto f = [&]() noexcept {
    ran = true;
    ran_on = std::this_thread::get_id();
  };
  inplace_stop_callback<decltype(f)> cb(s.get_token(), f);
  EXPECT_TRUE(ran);  // before the constructor returned
  EXPECT_EQ(ran_on, std::this_thread::get_id());
}

TEST(async_stop_token, a_callback_on_an_empty_token_never_runs) {
  std::atomic<int> n{0};
  { inplace_stop_callback<bump> cb(inplace_stop_token{}, bump{&n}); }
  EXPECT_EQ(n, 0);
}

TEST(async_stop_token, callbacks_run_on_the_requesting_thread) {
  inplace_stop_source s;
  std::thread::id ran_on{};
  auto f = [&]() noexcept { ran_on = std::this_thread::get_id(); };
  inplace_stop_callback<decltype(f)> cb(s.get_token(), f);
  std::thread::id requester{};
  std::thread t([&] {
    requester = std::this_thread::get_id();
    s.request_stop();
  });
  t.join();
  EXPECT_EQ(ran_on, requester);
}

TEST(async_stop_token, deregistration_from_another_thread_waits_for_the_running_callback) {
  inplace_stop_source s;
  std::atomic<bool> entered{false}, release{false}, finished{false};
  auto f = [&]() noexcept {
    entered.store(true);
    while (!release.load()) std::this_thread::yield();
    finished.store(true);
  };
  std::optional<inplace_stop_callback<decltype(f)>> cb(std::in_place, s.get_token(), f);
  std::thread requester([&] { s.request_stop(); });
  while (!entered.load()) std::this_thread::yield();
  bool finished_when_destroyed = false;
  rouse_test::thread destroyer([&] {
    cb.reset();  // must wait for f to return
    finished_when_destroyed = finished.load();
  });
  rouse_test::until_asleep(destroyer);  // it waits in the destructor, in the kernel
  EXPECT_FALSE(finished.load());
  release.store(true);
  destroyer.join();
  requester.join();
  EXPECT_TRUE(finished_when_destroyed);
}

TEST(async_stop_token, deregistration_after_the_run_on_another_thread_does_not_wait) {
  inplace_stop_source s;
  std::atomic<int> n{0};
  std::optional<inplace_stop_callback<bump>> cb(std::in_place, s.get_token(), bump{&n});
  std::thread([&] { s.request_stop(); }).join();
  cb.reset();  // the run is over: returns at once (a hang here fails by timeout)
  EXPECT_EQ(n, 1);
}

struct self_destroying {
  std::optional<inplace_stop_callback<self_destroying>>* slot;
  int* runs;
  void operator()() noexcept {
    ++*runs;
    slot->reset();  // destroys the callback object running this very call
  }
};

TEST(async_stop_token, a_callback_destroying_itself_during_its_run) {
  inplace_stop_source s;
  int runs = 0;
  std::atomic<int> before{0}, after{0};
  inplace_stop_callback<bump> first(s.get_token(), bump{&before});
  std::optional<inplace_stop_callback<self_destroying>> slot;
  slot.emplace(s.get_token(), self_destroying{&slot, &runs});
  inplace_stop_callback<bump> last(s.get_token(), bump{&after});
  EXPECT_TRUE(s.request_stop());
  EXPECT_EQ(runs, 1);
  EXPECT_FALSE(slot.has_value());
  EXPECT_EQ(before, 1);  // the list goes on after it
  EXPECT_EQ(after, 1);
}

TEST(async_stop_token, a_callback_destroying_another_not_yet_run_callback_unlinks_it) {
  inplace_stop_source s;
  std::atomic<int> victim_runs{0};
  std::optional<inplace_stop_callback<bump>> victim;
  int killer_runs = 0;
  auto killer_f = [&]() noexcept {
    ++killer_runs;
    victim.reset();
  };
  // Registration order is not run order; register the victim on both sides
  // of the killer so that one of the two is still linked when it runs.
  victim.emplace(s.get_token(), bump{&victim_runs});
  inplace_stop_callback<decltype(killer_f)> killer(s.get_token(), killer_f);
  std::optional<inplace_stop_callback<bump>> victim2;
  std::atomic<int> victim2_runs{0};
  victim2.emplace(s.get_token(), bump{&victim2_runs});
  auto killer2_f = [&]() noexcept { victim2.reset(); };
  inplace_stop_callback<decltype(killer2_f)> killer2(s.get_token(), killer2_f);
  s.request_stop();
  EXPECT_EQ(killer_runs, 1);
  EXPECT_LE(victim_runs + victim2_runs, 2);
  EXPECT_FALSE(victim.has_value());
  EXPECT_FALSE(victim2.has_value());
  // Each victim ran at most once and none twice; whichever was destroyed
  // before its turn did not run.
  EXPECT_LE(victim_runs.load(), 1);
  EXPECT_LE(victim2_runs.load(), 1);
}

TEST(async_stop_token, concurrent_request_stop_has_one_winner_and_runs_each_callback_once) {
  for (int round = 0; round < 200; ++round) {
    inplace_stop_source s;
    std::atomic<int> n{0}, winners{0};
    std::vector<std::optional<inplace_stop_callback<bump>>> cbs(8);
    for (auto& c : cbs) c.emplace(s.get_token(), bump{&n});
    {
      rouse_test::threads ts(4, [&] {
        if (s.request_stop()) winners.fetch_add(1);
      });
    }
    EXPECT_EQ(winners, 1);
    EXPECT_EQ(n, 8);
  }
}

TEST(async_stop_token, registration_racing_the_request_runs_exactly_once) {
  for (int round = 0; round < 200; ++round) {
    inplace_stop_source s;
    std::atomic<int> n{0};
    std::thread t([&] { s.request_stop(); });
    {
      inplace_stop_callback<bump> a(s.get_token(), bump{&n});
      inplace_stop_callback<bump> b(s.get_token(), bump{&n});
      t.join();
    }
    EXPECT_EQ(n, 2);
  }
}

TEST(async_stop_token, never_stop_token_cannot_stop_and_its_callback_never_runs) {
  never_stop_token t;
  EXPECT_FALSE(t.stop_possible());
  EXPECT_FALSE(t.stop_requested());
  EXPECT_TRUE(t == never_stop_token{});
  std::atomic<int> n{0};
  { stop_callback_for_t<never_stop_token, bump> cb(t, bump{&n}); }
  EXPECT_EQ(n, 0);
  static_assert(rouse::async::stoppable_token<never_stop_token>);
  static_assert(rouse::async::stoppable_token<inplace_stop_token>);
  static_assert(rouse::async::stoppable_token<std::stop_token>);
}

TEST(async_stop_token, stop_callback_for_t_names_each_tokens_callback_type) {
  static_assert(std::is_same_v<stop_callback_for_t<std::stop_token, bump>, std::stop_callback<bump>>);
  static_assert(std::is_same_v<stop_callback_for_t<inplace_stop_token, bump>, inplace_stop_callback<bump>>);
  std::stop_source ss;
  std::atomic<int> n{0};
  stop_callback_for_t<std::stop_token, bump> cb(ss.get_token(), bump{&n});
  ss.request_stop();
  EXPECT_EQ(n, 1);
  inplace_stop_source is;
  stop_callback_for_t<inplace_stop_token, bump> icb(is.get_token(), bump{&n});
  is.request_stop();
  EXPECT_EQ(n, 2);
}

TEST(async_stop_token, stop_slot_with_an_inplace_token_runs_once_and_unregisters_on_reset) {
  using rouse::async::detail::stop_slot;
  inplace_stop_source s;
  std::atomic<int> n{0};
  {
    stop_slot<bump> slot;
    slot.emplace(s.get_token(), bump{&n});
    slot.reset();
    s.request_stop();
  }
  EXPECT_EQ(n, 0);
  inplace_stop_source s2;
  stop_slot<bump> slot;
  slot.emplace(s2.get_token(), bump{&n});
  s2.request_stop();
  EXPECT_EQ(n, 1);
  slot.reset();
  slot.reset();  // twice is harmless
  EXPECT_EQ(n, 1);
}

TEST(async_stop_token, stop_slot_with_a_std_stop_token) {
  using rouse::async::detail::stop_slot;
  std::atomic<int> n{0};
  {
    std::stop_source ss;
    stop_slot<bump> slot;
    slot.emplace(ss.get_token(), bump{&n});
    EXPECT_EQ(n, 0);
    ss.request_stop();
    EXPECT_EQ(n, 1);
  }
  {
    std::stop_source ss;
    ss.request_stop();
    stop_slot<bump> slot;
    slot.emplace(ss.get_token(), bump{&n});  // already stopped: runs here
    EXPECT_EQ(n, 2);
  }
  {
    std::stop_source ss;
    stop_slot<bump> slot;
    slot.emplace(ss.get_token(), bump{&n});
    slot.reset();
    ss.request_stop();
    EXPECT_EQ(n, 2);
  }
  {
    stop_slot<bump> slot;
    slot.emplace(std::stop_token{}, bump{&n});  // cannot stop: nothing registered
  }
  EXPECT_EQ(n, 2);
}

TEST(async_stop_token, stop_slot_with_never_stop_token_does_nothing) {
  using rouse::async::detail::stop_slot;
  std::atomic<int> n{0};
  stop_slot<bump> slot;
  slot.emplace(never_stop_token{}, bump{&n});
  slot.reset();
  EXPECT_EQ(n, 0);
}

// A callback that ends the work owning the source, on the thread running
// request_stop() (as a coroutine resumed inline does): the source and the
// running callback are destroyed inside request_stop(), which must then
// touch neither (ASan reports a use after free otherwise).
struct stop_owner;
struct destroy_owner {
  stop_owner** owner;
  void operator()() const noexcept;
};
struct stop_owner {
  inplace_stop_source source;
  std::optional<inplace_stop_callback<destroy_owner>> ends;  // registered first: runs last
  std::optional<inplace_stop_callback<bump>> counts;
};
void destroy_owner::operator()() const noexcept {
  stop_owner** const h = owner;  // this callback goes with the owner
  delete *h;                     // the source, this callback and the other (already run)
  *h = nullptr;
}

TEST(async_stop_token, a_callback_may_destroy_its_source_on_the_requesting_thread) {
  for (int round = 0; round < 100; ++round) {
    std::atomic<int> n{0};
    auto* o = new stop_owner;
    stop_owner* handle = o;
    o->ends.emplace(o->source.get_token(), destroy_owner{&handle});
    o->counts.emplace(o->source.get_token(), bump{&n});
    EXPECT_TRUE(o->source.request_stop());
    EXPECT_EQ(handle, nullptr);
    EXPECT_EQ(n.load(), 1);
  }
}

#if ROUSE_DEBUG_CHECKS && !defined(ROUSE_SANITIZER_thread)
TEST(async_stop_token_death, destroying_a_source_with_a_registered_callback_is_diagnosed) {
  EXPECT_DEATH(
      {
        std::atomic<int> n{0};
        auto* s = new inplace_stop_source;
        auto* cb = new inplace_stop_callback<bump>(s->get_token(), bump{&n});
        delete s;
        (void)cb;
      },
      "rouse::async::inplace_stop_source: misuse: destroyed while a stop callback is registered");
}
#endif

}  // namespace
}  // namespace async_stop_token_test
