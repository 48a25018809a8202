// Models of rouse::shared_mutex's handshakes (Relacy, fair full search):
// a writer that waits behind readers, readers that wait behind a writer and
// get the read turn, two writers, and a timed writer that gives up while
// others wait. Exclusion is checked through rl::var (a reader and a writer
// touching the protected value at once is a data race Relacy reports); no
// lost wake-up shows as no deadlock.
#include <cstdint>

#include "model.hpp"
#include "rouse/shared_mutex.hpp"

namespace {

// One writer, one reader (fair full search): the smallest wait/wake
// handshake in both directions.
struct reader_and_writer : rl::test_suite<reader_and_writer, 2> {
  rouse::shared_mutex m;
  rl::var<int> value;

  void before() { value($) = 0; }
  void thread(unsigned index) {
    if (index == 0) {
      m.lock();
      value($) = value($) + 1;
      m.unlock();
    } else {
      m.lock_shared();
      int const v = value($);
      RL_ASSERT(v == 0 || v == 1);
      m.unlock_shared();
    }
  }
  void after() { RL_ASSERT(value($) == 1); }
};

// Two readers, one writer: the writer waits behind the readers (WW, wake on
// the last read unlock), a reader may wait behind the writer (WR, read turn).
struct writer_behind_readers : rl::test_suite<writer_behind_readers, 3> {
  rouse::shared_mutex m;
  rl::var<int> value;

  void before() { value($) = 0; }
  void thread(unsigned index) {
    if (index == 0) {
      m.lock();
      value($) = value($) + 1;
      m.unlock();
    } else {
      m.lock_shared();
      int const v = value($);
      RL_ASSERT(v == 0 || v == 1);
      m.unlock_shared();
    }
  }
  void after() { RL_ASSERT(value($) == 1); }
};

// Two writers and a reader: WW handed from writer to writer while a reader
// waits, and the read turn given on a writer's unlock.
struct two_writers_one_reader : rl::test_suite<two_writers_one_reader, 3> {
  rouse::shared_mutex m;
  rl::var<int> value;

  void before() { value($) = 0; }
  void thread(unsigned index) {
    if (index < 2) {
      m.lock();
      value($) = value($) + 1;
      m.unlock();
    } else {
      m.lock_shared();
      int const v = value($);
      RL_ASSERT(v >= 0 && v <= 2);
      m.unlock_shared();
    }
  }
  void after() { RL_ASSERT(value($) == 2); }
};

// A reader holds the lock; a timed writer waits and may give up at any
// point (Relacy times out the futex wait at will); a second writer and the
// reader must still finish (the give-up clears WW and re-wakes writers).
struct timed_writer_gives_up : rl::test_suite<timed_writer_gives_up, 3> {
  rouse::shared_mutex m;
  rl::var<int> value;

  void before() { value($) = 0; }
  void thread(unsigned index) {
    if (index == 0) {
      // Deadline at the epoch: once its wait times out, Clock::now() is past it.
      if (m.try_lock_until(std::chrono::steady_clock::time_point{})) {
        value($) = value($) + 1;
        m.unlock();
      }
    } else if (index == 1) {
      m.lock();
      value($) = value($) + 1;
      m.unlock();
    } else {
      m.lock_shared();
      (void)value($).load();
      m.unlock_shared();
      m.lock_shared();
      (void)value($).load();
      m.unlock_shared();
    }
  }
};

// A timed reader behind a writer may give up; the writer's hand-over to the
// readers (read turn) must not strand a second reader or a second writer.
struct timed_reader_gives_up : rl::test_suite<timed_reader_gives_up, 3> {
  rouse::shared_mutex m;
  rl::var<int> value;

  void before() { value($) = 0; }
  void thread(unsigned index) {
    if (index == 0) {
      m.lock();
      value($) = value($) + 1;
      m.unlock();
      m.lock();
      value($) = value($) + 1;
      m.unlock();
    } else if (index == 1) {
      if (m.try_lock_shared_until(std::chrono::steady_clock::time_point{})) {
        (void)value($).load();
        m.unlock_shared();
      }
    } else {
      m.lock_shared();
      (void)value($).load();
      m.unlock_shared();
    }
  }
  void after() { RL_ASSERT(value($) == 2); }
};

}  // namespace

int main() {
  constexpr unsigned long iterations = 200000;  // random search for the 3-thread models
  int failures = 0;
  failures += rouse_model::expect_pass<reader_and_writer>("shared_mutex.reader_and_writer");
  failures += rouse_model::expect_pass<writer_behind_readers>("shared_mutex.writer_behind_readers", iterations);
  failures += rouse_model::expect_pass<two_writers_one_reader>("shared_mutex.two_writers_one_reader", iterations);
  failures += rouse_model::expect_pass<timed_writer_gives_up>("shared_mutex.timed_writer_gives_up", iterations);
  failures += rouse_model::expect_pass<timed_reader_gives_up>("shared_mutex.timed_reader_gives_up", iterations);
  return failures == 0 ? 0 : 1;
}
