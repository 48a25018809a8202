// Stress tests of rouse::shared_mutex: more threads than cores, readers
// that check an invariant writers maintain, timed lockers that give up, and
// counters proving that every write happened exactly once. A lost wake-up
// shows up as a hang (CTest timeout).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <vector>

#include "rouse/shared_mutex.hpp"
#include "stress.hpp"

namespace shared_mutex_stress {
namespace {

using namespace std::chrono_literals;

// Writers keep every slot equal to the version; readers check that they
// never see a torn (partly updated) struct.
struct guarded_data {
  long version = 0;
  long slots[7] = {};
};

void check(const guarded_data& d) {
  for (long s : d.slots) ASSERT_EQ(s, d.version);
}

void write(guarded_data& d) {
  ++d.version;
  for (long& s : d.slots) s = d.version;
}

// Lets all threads start together, so they contend instead of running one
// after the other; and now and then gives up the CPU inside a critical
// section, so that others must sleep behind it.
struct start_gate {
  std::atomic<bool> open{false};
  void wait() const {
    while (!open.load(std::memory_order_acquire)) std::this_thread::yield();
  }
};
inline void maybe_yield(long k) {
  if (k % 97 == 0) std::this_thread::yield();
}

TEST(shared_mutex_stress, readers_see_consistent_data_while_writers_update) {
  rouse::shared_mutex m;
  guarded_data data;
  unsigned const threads = std::max(16u, rouse_test::oversubscribed());
  unsigned const writers = threads / 4;
  long const rounds = rouse_test::scaled(200000);
  std::atomic<long> reads{0};
  start_gate gate;
  std::vector<std::thread> ts;
  for (unsigned i = 0; i < threads; ++i)
    ts.emplace_back([&, i] {
      bool const writer = i < writers;
      gate.wait();
      for (long k = 0; k < rounds; ++k) {
        if (writer && k % 4 == 0) {
          std::unique_lock<rouse::shared_mutex> l(m);
          write(data);
          maybe_yield(k);
        } else {
          std::shared_lock<rouse::shared_mutex> l(m);
          check(data);
          maybe_yield(k);
          reads.fetch_add(1, std::memory_order_relaxed);
        }
      }
    });
  gate.open = true;
  for (auto& t : ts) t.join();
  long const expected_writes = static_cast<long>(writers) * ((rounds + 3) / 4);
  EXPECT_EQ(data.version, expected_writes);
  check(data);
  EXPECT_EQ(reads.load(), static_cast<long>(threads) * rounds - expected_writes);
}

// Write-heavy: writers queue behind each other while readers come and go.
TEST(shared_mutex_stress, write_heavy_mix_loses_no_update) {
  rouse::shared_mutex m;
  guarded_data data;
  unsigned const threads = 24;
  long const rounds = rouse_test::scaled(60000);
  std::atomic<long> writes{0};
  start_gate gate;
  std::vector<std::thread> ts;
  for (unsigned i = 0; i < threads; ++i)
    ts.emplace_back([&, i] {
      gate.wait();
      for (long k = 0; k < rounds; ++k) {
        if ((k + i) % 2 == 0) {
          std::lock_guard<rouse::shared_mutex> l(m);
          write(data);
          maybe_yield(k);
          writes.fetch_add(1, std::memory_order_relaxed);
        } else {
          std::shared_lock<rouse::shared_mutex> l(m);
          check(data);
          maybe_yield(k);
        }
      }
    });
  gate.open = true;
  for (auto& t : ts) t.join();
  EXPECT_EQ(data.version, writes.load());
}

// Timed lockers of both kinds give up all the time; the others must never
// be stranded (a hang fails the test) and exclusion must hold.
TEST(shared_mutex_stress, timed_lockers_that_give_up_strand_nobody) {
  rouse::shared_mutex m;
  guarded_data data;
  unsigned const threads = 16;
  long const rounds = rouse_test::scaled(200000);
  std::atomic<long> writes{0}, timeouts{0};
  start_gate gate;
  std::vector<std::thread> ts;
  for (unsigned i = 0; i < threads; ++i)
    ts.emplace_back([&, i] {
      gate.wait();
      for (long k = 0; k < rounds; ++k) {
        switch ((k + i) % 4) {
          case 0:
            if (m.try_lock_for(std::chrono::microseconds(k % 50))) {
              write(data);
              writes.fetch_add(1, std::memory_order_relaxed);
              m.unlock();
            } else {
              timeouts.fetch_add(1, std::memory_order_relaxed);
            }
            break;
          case 1:
            if (m.try_lock_shared_until(std::chrono::system_clock::now() + std::chrono::microseconds(k % 50))) {
              check(data);
              m.unlock_shared();
            } else {
              timeouts.fetch_add(1, std::memory_order_relaxed);
            }
            break;
          case 2: {
            std::lock_guard<rouse::shared_mutex> l(m);
            write(data);
            maybe_yield(k);
            writes.fetch_add(1, std::memory_order_relaxed);
            break;
          }
          default: {
            std::shared_lock<rouse::shared_mutex> l(m);
            check(data);
            break;
          }
        }
      }
    });
  gate.open = true;
  for (auto& t : ts) t.join();
  EXPECT_EQ(data.version, writes.load());
  std::printf("timed lockers gave up %ld times\n", timeouts.load());
}

// One writer among a stream of readers still gets in, many times.
TEST(shared_mutex_stress, a_writer_is_not_starved_by_a_reader_stream) {
  rouse::shared_mutex m;
  guarded_data data;
  std::atomic<bool> stop{false};
  std::vector<std::thread> readers;
  for (int i = 0; i < 12; ++i)
    readers.emplace_back([&] {
      while (!stop.load(std::memory_order_relaxed)) {
        std::shared_lock<rouse::shared_mutex> l(m);
        check(data);
      }
    });
  long const writes = rouse_test::scaled(1000);
  for (long k = 0; k < writes; ++k) {
    std::lock_guard<rouse::shared_mutex> l(m);
    write(data);
  }
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(data.version, writes);
}

// One reader among a stream of writers still gets in, many times.
TEST(shared_mutex_stress, a_reader_is_not_starved_by_a_writer_stream) {
  rouse::shared_mutex m;
  guarded_data data;
  std::atomic<bool> stop{false};
  std::vector<std::thread> writers;
  for (int i = 0; i < 12; ++i)
    writers.emplace_back([&] {
      while (!stop.load(std::memory_order_relaxed)) {
        std::lock_guard<rouse::shared_mutex> l(m);
        write(data);
      }
    });
  long const reads = rouse_test::scaled(2000);
  for (long k = 0; k < reads; ++k) {
    std::shared_lock<rouse::shared_mutex> l(m);
    check(data);
  }
  stop = true;
  for (auto& t : writers) t.join();
}

}  // namespace
}  // namespace shared_mutex_stress
