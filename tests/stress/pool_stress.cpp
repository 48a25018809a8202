// Stress tests of rouse::pool: long runs of tiny jobs (a lost wake-up hangs
// and fails by the CTest timeout), more threads than cores, several outside
// callers, construction and destruction in a loop. Counters prove that no
// index is lost or run twice.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

#include "rouse/pool/pool.hpp"
#include "stress.hpp"

namespace pool_stress {
namespace {

using namespace std::chrono_literals;

// `jobs` tiny run() jobs in a row; every index must run exactly once per job.
// With `hold`, the caller's share waits until every other index ran, so the
// workers must wake up and claim them (the caller cannot take them itself):
// a lost wake-up hangs the test.
void tiny_jobs(rouse::pool& pool, long jobs, bool hold) {
  unsigned const n = pool.size();
  std::vector<std::uint32_t> last_job(n, 0);  // per index: the job it last ran in
  std::atomic<std::uint64_t> calls{0};
  for (long job = 1; job <= jobs; ++job) {
    auto const tag = static_cast<std::uint32_t>(job);
    std::atomic<unsigned> others{0};
    pool.run([&](unsigned index, unsigned count) {
      ASSERT_EQ(count, n);
      // Each index belongs to one thread per job: a plain write, checked by TSan.
      ASSERT_EQ(last_job[index], tag - 1);
      last_job[index] = tag;
      calls.fetch_add(1, std::memory_order_relaxed);
      if (index != 0) {
        others.fetch_add(1, std::memory_order_relaxed);
      } else if (hold) {
        while (others.load(std::memory_order_relaxed) != count - 1) std::this_thread::yield();
      }
    });
  }
  EXPECT_EQ(calls.load(), static_cast<std::uint64_t>(jobs) * n);
}

TEST(pool_stress, hundred_thousand_tiny_jobs_spinning) {
  rouse::pool pool;  // all CPUs, default spin
  tiny_jobs(pool, rouse_test::scaled(100000), false);
  tiny_jobs(pool, rouse_test::scaled(20000), true);
}

TEST(pool_stress, hundred_thousand_tiny_jobs_always_sleeping) {
  // Spin 0, max_spin 0: every wait goes to the futex, the path where a
  // wake-up can be lost.
  rouse::pool pool(rouse::pool_options{.threads = 2, .spin = 0ns, .max_spin = 0ns});
  tiny_jobs(pool, rouse_test::scaled(100000), false);
  tiny_jobs(pool, rouse_test::scaled(100000), true);
}

TEST(pool_stress, tiny_jobs_with_more_threads_than_cores) {
  // A fixed, short budget: most waits sleep.
  rouse::pool pool(rouse::pool_options{.threads = rouse_test::oversubscribed(), .spin = 2us, .max_spin = 2us});
  tiny_jobs(pool, rouse_test::scaled(20000), false);
  tiny_jobs(pool, rouse_test::scaled(5000), true);
}

TEST(pool_stress, tiny_jobs_with_more_threads_than_cores_default_budgets) {
  // The adaptive budget and the placement hint (workers moving off the
  // caller's CPU, the caller off a reporter's) with more threads than CPUs.
  rouse::pool pool(rouse::pool_options{.threads = rouse_test::oversubscribed()});
  tiny_jobs(pool, rouse_test::scaled(20000), false);
  tiny_jobs(pool, rouse_test::scaled(5000), true);
}

TEST(pool_stress, parallel_for_and_reduce_oversubscribed_count_every_index) {
  rouse::pool pool(rouse::pool_options{.threads = rouse_test::oversubscribed(), .spin = 5us, .max_spin = 5us});
  long const rounds = rouse_test::scaled(2000);
  std::vector<std::atomic<std::uint8_t>> hits(4099);
  for (long round = 0; round < rounds; ++round) {
    std::size_t const n = static_cast<std::size_t>(round * 37 % 4099) + 1;
    for (std::size_t i = 0; i < n; ++i) hits[i].store(0, std::memory_order_relaxed);
    if (round % 2 == 0)
      pool.parallel_for(std::size_t{0}, n, [&](std::size_t i) { hits[i].fetch_add(1); });
    else
      pool.parallel_for(std::size_t{0}, n, std::size_t{7}, [&](std::size_t i) { hits[i].fetch_add(1); });
    for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << "round " << round << " index " << i;
    auto const sum = pool.parallel_reduce(
        std::size_t{0}, n, std::size_t{0}, [](std::size_t i) { return i; }, std::plus<>{});
    ASSERT_EQ(sum, n * (n - 1) / 2);
  }
}

// Ranges large enough to be cut into pieces (rouse/pool/pieces.hpp), on
// more threads than cores, where participants are descheduled mid-job and
// the others take their pieces. Each piece's range is written by whoever ran
// it into the slot of its piece (plain data: TSan checks that the job's
// report publishes it); the slots must tile [0, n) exactly, job after job
// (a stale cursor would skip pieces, a double claim would write one twice).
TEST(pool_stress, large_ranges_oversubscribed_run_every_piece_once) {
  unsigned const threads = rouse_test::oversubscribed();
  rouse::pool pool(rouse::pool_options{.threads = threads, .spin = 5us, .max_spin = 5us});
  using rouse::detail::pool_pieces;
  std::uint64_t const threshold = threads * pool_pieces::min_pieces * pool_pieces::min_piece;
  long const rounds = rouse_test::scaled(300);
  std::vector<std::uint64_t> first_of(threads * pool_pieces::max_pieces), last_of(first_of.size());
  // Atomic: two runs of one piece may overlap, and a plain count could lose one.
  std::vector<std::atomic<int>> runs(first_of.size());
  for (long round = 0; round < rounds; ++round) {
    std::uint64_t const n = threshold + static_cast<std::uint64_t>(round * 7919) % (3 * threshold);
    unsigned const pieces = threads * pool_pieces::pieces_per_participant(n, threads);
    for (auto& r : runs) r.store(0, std::memory_order_relaxed);
    std::atomic<bool> misplaced{false};
    pool.parallel_for(std::uint64_t{0}, n, [&](rouse::index_range<std::uint64_t> r) {
      // The piece number, from the documented cut: static_piece(n, q, pieces).
      unsigned q = static_cast<unsigned>(r.first / (n / pieces + 1));
      while (q < pieces && rouse::detail::static_piece(n, q, pieces).begin < r.first) ++q;
      if (q == pieces || rouse::detail::static_piece(n, q, pieces).begin != r.first) {
        misplaced.store(true);  // not a piece of the documented cut
        return;
      }
      first_of[q] = r.first;
      last_of[q] = r.last;
      runs[q].fetch_add(1, std::memory_order_relaxed);
    });
    ASSERT_FALSE(misplaced.load()) << "round " << round;
    for (unsigned q = 0; q < pieces; ++q) {
      ASSERT_EQ(runs[q].load(), 1) << "round " << round << " piece " << q;
      ASSERT_EQ(first_of[q], q == 0 ? 0 : last_of[q - 1]) << "round " << round << " piece " << q;
    }
    ASSERT_EQ(last_of[pieces - 1], n);
    auto const sum = pool.parallel_reduce(
        std::uint64_t{0}, n, std::uint64_t{0}, [](rouse::index_range<std::uint64_t> r) { return r.size(); },
        std::plus<>{});
    ASSERT_EQ(sum, n) << "round " << round;
  }
}

TEST(pool_stress, several_outside_callers_share_one_pool) {
  rouse::pool pool(rouse::pool_options{.threads = 3, .spin = 1us, .max_spin = 1us});
  long const jobs = rouse_test::scaled(5000);
  std::atomic<std::uint64_t> total{0};
  std::vector<std::thread> callers;
  for (unsigned t = 0; t < rouse_test::oversubscribed(4); ++t)
    callers.emplace_back([&] {
      for (long job = 0; job < jobs; ++job) {
        std::atomic<unsigned> runs{0};
        pool.run([&](unsigned, unsigned) { runs.fetch_add(1, std::memory_order_relaxed); });
        ASSERT_EQ(runs.load(), 3u);
        total.fetch_add(1, std::memory_order_relaxed);
      }
    });
  for (auto& c : callers) c.join();
  EXPECT_EQ(total.load(), static_cast<std::uint64_t>(jobs) * rouse_test::oversubscribed(4));
}

TEST(pool_stress, create_run_destroy_in_a_loop) {
  long const rounds = rouse_test::scaled(500);
  for (long round = 0; round < rounds; ++round) {
    rouse::pool pool(rouse::pool_options{.threads = 1 + static_cast<unsigned>(round % 4),
                                         .spin = (round % 3 == 0) ? std::chrono::nanoseconds(0) : 20us,
                                         .max_spin = (round % 3 == 0) ? std::chrono::nanoseconds(0) : 1ms});
    std::atomic<unsigned> runs{0};
    for (long job = 0; job < round % 3; ++job) pool.run([&](unsigned, unsigned) { runs.fetch_add(1); });
    ASSERT_EQ(runs.load(), static_cast<unsigned>(round % 3) * pool.size());
  }
}

TEST(pool_stress, exceptions_in_a_loop_leave_the_pool_usable) {
  rouse::pool pool(rouse::pool_options{.threads = 4, .spin = 1us, .max_spin = 1us});
  long const rounds = rouse_test::scaled(20000);
  for (long round = 0; round < rounds; ++round) {
    unsigned const thrower = static_cast<unsigned>(round % 5);  // 4 = nobody
    std::atomic<unsigned> runs{0};
    bool threw = false;
    try {
      pool.run([&](unsigned index, unsigned) {
        runs.fetch_add(1);
        if (index == thrower) throw static_cast<int>(index);
      });
    } catch (int e) {
      ASSERT_EQ(static_cast<unsigned>(e), thrower);
      threw = true;
    }
    ASSERT_EQ(threw, thrower < 4);
    ASSERT_LE(runs.load(), 4u);
    if (!threw) {
      ASSERT_EQ(runs.load(), 4u);
    }
  }
}

}  // namespace
}  // namespace pool_stress
