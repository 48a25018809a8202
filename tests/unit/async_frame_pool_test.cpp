// rouse::async's coroutine frame pool (detail/frame_pool.hpp), and the frame
// counts of spawn: checked as counts of the global operator new, not times
// (tests/support/counting_new.hpp; under a sanitizer, which owns operator
// new, the counting tests skip).
#include "rouse/async/detail/frame_pool.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include "counting_new.hpp"
#include "rouse/async/event.hpp"
#include "rouse/async/run_loop.hpp"
#include "rouse/async/when.hpp"
#include "rouse/async/sleep.hpp"
#include "rouse/async/spawn.hpp"
#include "rouse/async/task.hpp"
#include "rouse/async/thread_pool.hpp"

namespace async_frame_pool_test {
namespace {

namespace ra = rouse::async;
using ra::detail::frame_allocate;
using ra::detail::frame_deallocate;
using ra::detail::frame_pool_enabled;
using ra::detail::frame_pool_trim;

// Blocks still held by the pool or the program: operator new calls not yet
// matched by operator delete.
long outstanding() { return rouse_test::allocations() - rouse_test::deallocations(); }

TEST(async_frame_pool, blocks_of_every_size_are_usable_and_distinct) {
  std::vector<std::pair<unsigned char*, std::size_t>> live;
  for (std::size_t n = 1; n <= 2 * ra::detail::frame_pool_max_block; n += 7) {
    auto* p = static_cast<unsigned char*>(frame_allocate(n));
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % ra::detail::frame_alignment, 0U) << n;
    std::memset(p, static_cast<int>(n & 0xff), n);
    live.emplace_back(p, n);
  }
  for (auto& [p, n] : live)
    for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(p[i], static_cast<unsigned char>(n & 0xff)) << n;
  for (auto& [p, n] : live) frame_deallocate(p, n);
  frame_pool_trim();
}

TEST(async_frame_pool, a_freed_block_is_reused_by_the_same_thread) {
  if (!frame_pool_enabled()) GTEST_SKIP() << "the pool is off in this build (AddressSanitizer)";
  void* a = frame_allocate(150);
  frame_deallocate(a, 150);
  long const before = rouse_test::allocations();
  void* b = frame_allocate(170);  // the same size class (129-192 bytes)
  EXPECT_EQ(a, b);
  if (rouse_test::counts_allocations) {
    EXPECT_EQ(rouse_test::allocations(), before);  // no new block
  }
  frame_deallocate(b, 190);
  frame_pool_trim();
}

TEST(async_frame_pool, large_blocks_are_not_pooled) {
  if (!rouse_test::counts_allocations) GTEST_SKIP() << "a sanitizer owns operator new";
  long const before = rouse_test::allocations();
  void* p = frame_allocate(ra::detail::frame_pool_max_block + 1);
  frame_deallocate(p, ra::detail::frame_pool_max_block + 1);
  void* q = frame_allocate(ra::detail::frame_pool_max_block + 1);
  frame_deallocate(q, ra::detail::frame_pool_max_block + 1);
  EXPECT_EQ(rouse_test::allocations() - before, 2);
}

// One thread allocates, another frees (a spawner and a worker): blocks travel
// back in batches, so the system allocator is called for a small fraction.
TEST(async_frame_pool, blocks_freed_on_another_thread_come_back_in_batches) {
  if (!frame_pool_enabled()) GTEST_SKIP() << "the pool is off in this build (AddressSanitizer)";
  if (!rouse_test::counts_allocations) GTEST_SKIP() << "a sanitizer owns operator new";
  constexpr int rounds = 200;
  constexpr int per_round = 256;
  std::vector<void*> blocks(per_round);
  long allocations_in_late_rounds = 0;
  for (int r = 0; r < rounds; ++r) {
    long const before = rouse_test::allocations();
    for (auto& b : blocks) b = frame_allocate(128);
    if (r >= rounds / 2) allocations_in_late_rounds += rouse_test::allocations() - before;
    std::thread([&] {
      for (void* b : blocks) frame_deallocate(b, 128);
    }).join();  // the freeing thread exits: its cache goes to the depot
  }
  // Warm, every block of a round comes from the depot (a thread that exits
  // hands its cache over; the depot holds far more than a round).
  EXPECT_EQ(allocations_in_late_rounds, 0);
  frame_pool_trim();
}

// A burst of frames returns its memory once over: the pool keeps a bounded
// number of blocks, and trim() gives back the rest.
TEST(async_frame_pool, a_burst_gives_its_memory_back) {
  if (!rouse_test::counts_allocations) GTEST_SKIP() << "a sanitizer owns operator new";
  constexpr int n = 200'000;
  std::vector<void*> blocks(n);
  frame_pool_trim();  // the shared depot exists (made once, never freed) before the count
  long const base = outstanding();
  for (auto& b : blocks) b = frame_allocate(96);
  EXPECT_GE(outstanding() - base, frame_pool_enabled() ? n - 64 * 32 - 64 : n);
  for (void* b : blocks) frame_deallocate(b, 96);
  // At most one thread cache (64) plus the depot (64 batches of 32) stay.
  EXPECT_LE(outstanding() - base, 64 + 64 * 32);
  frame_pool_trim();
  EXPECT_LE(outstanding() - base, 0);
}

TEST(async_frame_pool, threads_that_exit_leave_nothing_behind_after_trim) {
  if (!rouse_test::counts_allocations) GTEST_SKIP() << "a sanitizer owns operator new";
  std::vector<std::thread> threads;
  threads.reserve(4);
  frame_pool_trim();  // the shared depot exists (made once, never freed) before the count
  long const base = outstanding();
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([] {
      std::vector<void*> blocks;
      for (int i = 0; i < 5'000; ++i) blocks.push_back(frame_allocate(64 + static_cast<std::size_t>(i % 900)));
      for (std::size_t i = 0; i < blocks.size(); ++i) frame_deallocate(blocks[i], 64 + i % 900);
    });
  for (auto& t : threads) t.join();
  frame_pool_trim();
  EXPECT_LE(outstanding() - base, 0);
}

// A task whose frame holds a cache-line-aligned local across a suspension,
// and whose promise holds a cache-line-aligned result: both lie aligned.
// (g++ lays a frame out from its base as if the base were aligned for all
// of it, and C++20 tells operator new no alignment: the pool's blocks are
// what aligns them.)
struct alignas(64) line {
  int v[16] = {};
};
std::atomic<int> misaligned_lines{0};
void check_line(line const& l) {
  if (reinterpret_cast<std::uintptr_t>(&l) % alignof(line) != 0) misaligned_lines.fetch_add(1);
}
// Nested: `depth` frames live at once, most of them new blocks.
ra::task<line> holds_lines(int depth) {
  line l;
  l.v[0] = depth;
  check_line(l);
  if (depth > 0) l.v[0] += (co_await holds_lines(depth - 1)).v[0];
  co_await ra::sleep_for(std::chrono::milliseconds(0));
  check_line(l);
  co_return l;
}
TEST(async_frame_pool, a_frame_holds_cache_line_aligned_values_aligned) {
  misaligned_lines.store(0);
  ra::run_loop loop;
  EXPECT_EQ(loop.run_until_complete(holds_lines(200)).v[0], 200 * 201 / 2);
  EXPECT_EQ(misaligned_lines.load(), 0);
}

ra::task<int> answer(int v) { co_return v; }
ra::task<> nothing() { co_return; }

// spawn + await: two frames (the driver, which holds the shared state, and
// the task's), both from the pool: once warm, no system allocation at all.
TEST(async_frame_pool, spawn_and_join_allocate_nothing_once_warm) {
  if (!frame_pool_enabled()) GTEST_SKIP() << "the pool is off in this build (AddressSanitizer)";
  if (!rouse_test::counts_allocations) GTEST_SKIP() << "a sanitizer owns operator new";
  ra::run_loop loop;
  auto body = [&](int n) -> ra::task<long> {
    long sum = 0;
    for (int i = 0; i < n; ++i) sum += co_await ra::spawn(loop, answer(i));
    co_return sum;
  };
  (void)loop.run_until_complete(body(100));  // warm
  long const before = rouse_test::allocations();
  EXPECT_EQ(loop.run_until_complete(body(10'000)), 10'000L * 9'999 / 2);
  // The root's frame and its shared state's block may be new.
  EXPECT_LE(rouse_test::allocations() - before, 2);
}

// A task spawned into a scope is one frame, its own (detached): no driver.
// A burst far larger than what the pool keeps makes most of them new
// blocks, so the count tells one frame per task from two.
TEST(async_frame_pool, a_scope_spawn_is_one_frame) {
  if (!rouse_test::counts_allocations) GTEST_SKIP() << "a sanitizer owns operator new";
  constexpr long n = 20'000;
  ra::run_loop loop;
  ra::task_scope scope;
  long const before = rouse_test::allocations();
  for (long i = 0; i < n; ++i) scope.spawn(loop.get_scheduler(), nothing());
  long const made = rouse_test::allocations() - before;
  loop.run_until([&] { return scope.size() == 0; });
  EXPECT_LE(made, n + 64);  // the loop's queue grows too (a few blocks)
}

// when_all's children run in their own frames (detached): a when_all of
// two is three frames (its own and the children's), not five (a driver per
// child). Many at once, so most frames are new blocks and the count tells.
ra::task<> waits_for(ra::manual_reset_event& go) { co_await go.wait(); }
ra::task<> pair_of(ra::manual_reset_event& go, long& started) {
  ++started;
  (void)co_await ra::when_all(waits_for(go), waits_for(go));
}
TEST(async_frame_pool, a_when_all_child_is_one_frame) {
  if (!rouse_test::counts_allocations) GTEST_SKIP() << "a sanitizer owns operator new";
  constexpr long n = 5'000;
  ra::run_loop loop;
  ra::manual_reset_event go;
  ra::task_scope scope;
  long started = 0;
  long const before = rouse_test::allocations();
  for (long i = 0; i < n; ++i) scope.spawn(loop.get_scheduler(), pair_of(go, started));
  loop.run_until([&] { return started == n; });  // each ran until its children wait
  long const made = rouse_test::allocations() - before;
  go.set();
  loop.run_until([&] { return scope.size() == 0; });
  // Per pair: its own frame, when_all's, two children's.
  EXPECT_LE(made, 4 * n + 64);
}

// Tasks spawned on one worker and run (and freed) on either: in waves, as a
// server's requests come, the frames cycle through the pool.
TEST(async_frame_pool, scope_spawns_allocate_nothing_once_warm_on_a_pool) {
  if (!frame_pool_enabled()) GTEST_SKIP() << "the pool is off in this build (AddressSanitizer)";
  if (!rouse_test::counts_allocations) GTEST_SKIP() << "a sanitizer owns operator new";
  ra::thread_pool pool(2);
  auto body = [](ra::scheduler s, int waves) -> ra::task<> {
    for (int w = 0; w < waves; ++w) {
      ra::task_scope scope;
      for (int i = 0; i < 500; ++i) scope.spawn(s, nothing());
      co_await scope.join();
    }
  };
  ra::spawn(pool.get_scheduler(), body(pool.get_scheduler(), 20)).join();  // warm
  long const before = rouse_test::allocations();
  constexpr int waves = 200;
  ra::spawn(pool.get_scheduler(), body(pool.get_scheduler(), waves)).join();
  // 100,000 tasks, 100,000 frames. Frames freed on the other worker come
  // back in batches; a wave's frames fit in the pool. Far below one
  // allocation per task (the root's frames and queue growth aside).
  EXPECT_LT(rouse_test::allocations() - before, waves * 500 / 100);
}

}  // namespace
}  // namespace async_frame_pool_test
