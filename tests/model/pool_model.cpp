// Models of rouse::pool's protocol (rouse/pool/dispatch.hpp, the real code,
// compiled against Relacy): one caller thread and 2 worker threads, fair
// random search of 100,000-300,000 schedules each.
//
//   one_job           dispatch, claim, complete, then the stop: every index
//                     runs exactly once, its writes are visible to the
//                     caller when run_job returns (no data race), every
//                     worker exits (no deadlock = no lost wake-up, on the
//                     dispatch word, the completion word or the stop).
//   one_job_spinning  the same with a spin budget of one poll.
//   held_job          the caller's share waits for both workers' tasks: a
//                     lost wake-up of a sleeping worker is a deadlock.
//   two_jobs          two jobs in a row: a late claim of the first job must
//                     neither run a task twice nor lose one of the second.
//   stop_idle         the pool is stopped without ever running a job.
//   failed_job        a task throws: run_job rethrows it after every task is
//                     reported, and the next job runs normally.
//   pieces            two jobs in a row, each cut into 3 pieces per
//                     participant (rouse/pool/pieces.hpp): every piece runs
//                     exactly once, whoever takes it, its write is visible
//                     to the caller, and the second job's new stamp makes
//                     the cursors left by the first count as unclaimed.
// And broken callers, kept to prove the model sees the bugs they guard:
//   no_wait_done      the caller reads the workers' results without waiting
//                     for their reports: a data race.
//   stale_stamp       the second job reuses the first job's stamp: its
//                     pieces look claimed already and never run.
#include <cstdint>

#include "model.hpp"
#include "rouse/pool/dispatch.hpp"
#include "rouse/pool/pieces.hpp"

namespace {

namespace d = rouse::detail;
using std::chrono::nanoseconds;

constexpr unsigned participants = 3;  // the caller and 2 workers

// The job: each index counts its own runs (plain data, checked for races).
struct counting_job {
  rl::var<int> runs[participants];
  int fail_index = -1;  // this index throws

  void reset() {
    for (auto& r : runs) r($) = 0;
  }
  static void invoke(void* context, unsigned index, unsigned count) {
    auto* self = static_cast<counting_job*>(context);
    RL_ASSERT(count == participants && index < participants);
    self->runs[index]($) += 1;
    if (static_cast<int>(index) == self->fail_index) throw 7;
  }
  d::pool_job job() { return {&counting_job::invoke, this}; }
  void expect_each_once() {
    for (auto& r : runs) RL_ASSERT(r($) == 1);
  }
};

template <long Spin>
struct one_job_suite : rl::test_suite<one_job_suite<Spin>, participants> {
  d::pool_dispatch core{participants - 1, nanoseconds(Spin)};
  counting_job work;

  void before() { work.reset(); }
  void thread(unsigned index) {
    if (index == 0) {
      core.run_job(work.job());
      work.expect_each_once();
      core.stop();
    } else {
      core.worker_loop();
    }
  }
};

// The caller's share sleeps until both workers ran theirs, so the workers
// must wake up and claim (the caller cannot take their tasks): a lost
// wake-up on the dispatch word leaves every thread asleep, which Relacy
// reports as a deadlock.
struct held_job_suite : rl::test_suite<held_job_suite, participants> {
  d::pool_dispatch core{participants - 1, nanoseconds(0)};
  d::atomic<std::uint32_t> workers_done{0};

  static void invoke(void* context, unsigned index, unsigned) {
    auto* self = static_cast<held_job_suite*>(context);
    if (index == 0) {
      std::uint32_t v;
      while ((v = self->workers_done.load(std::memory_order_acquire)) != participants - 1)
        d::wait(self->workers_done, v);
    } else {
      self->workers_done.fetch_add(1, std::memory_order_release);
      d::wake_all(self->workers_done);
    }
  }
  void thread(unsigned index) {
    if (index == 0) {
      core.run_job({&held_job_suite::invoke, this});
      core.stop();
    } else {
      core.worker_loop();
    }
  }
};

struct two_jobs_suite : rl::test_suite<two_jobs_suite, participants> {
  d::pool_dispatch core{participants - 1, nanoseconds(0)};
  counting_job first, second;

  void before() {
    first.reset();
    second.reset();
  }
  void thread(unsigned index) {
    if (index == 0) {
      core.run_job(first.job());
      first.expect_each_once();
      core.run_job(second.job());
      second.expect_each_once();
      first.expect_each_once();
      core.stop();
    } else {
      core.worker_loop();
    }
  }
};

struct stop_idle_suite : rl::test_suite<stop_idle_suite, participants> {
  d::pool_dispatch core{participants - 1, nanoseconds(0)};

  void thread(unsigned index) {
    if (index == 0)
      core.stop();
    else
      core.worker_loop();
  }
};

struct failed_job_suite : rl::test_suite<failed_job_suite, participants> {
  d::pool_dispatch core{participants - 1, nanoseconds(0)};
  counting_job failing, next;

  void before() {
    failing.reset();
    failing.fail_index = 1;
    next.reset();
  }
  void thread(unsigned index) {
    if (index == 0) {
      bool rethrown = false;
      try {
        core.run_job(failing.job());
      } catch (int e) {
        rethrown = (e == 7);
      }
      RL_ASSERT(rethrown);
      // Index 1 ran (it threw); no index ran twice.
      RL_ASSERT(failing.runs[1]($) == 1);
      RL_ASSERT(failing.runs[0]($) <= 1 && failing.runs[2]($) <= 1);
      core.run_job(next.job());
      next.expect_each_once();
      core.stop();
    } else {
      core.worker_loop();
    }
  }
};

// Jobs cut into pieces: participant i runs piece i*m first, then claims
// the rest of its own and of the others' from their cursors.
template <bool FreshStamp>
struct pieces_suite : rl::test_suite<pieces_suite<FreshStamp>, participants> {
  static constexpr unsigned m = 3;
  static constexpr unsigned pieces = participants * m;
  d::pool_dispatch core{participants - 1, nanoseconds(0)};
  d::pool_pieces cursors{participants};

  struct job_state {
    pieces_suite* suite;
    rl::var<std::uint64_t> stamp;  // plain data: the dispatch must publish it
    rl::var<int> runs[pieces];
  } first{this, {}, {}}, second{this, {}, {}};

  void before() {
    for (auto& r : first.runs) r($) = 0;
    for (auto& r : second.runs) r($) = 0;
  }
  static void invoke(void* context, unsigned index, unsigned count) {
    auto* job = static_cast<job_state*>(context);
    RL_ASSERT(count == participants);
    std::uint64_t const stamp = job->stamp($);
    job->suite->cursors.run_pieces(
        index, stamp, m, [&](unsigned q) { job->runs[q]($) += 1; }, [] { return false; });
  }
  static void expect_each_once(job_state& job) {
    for (auto& r : job.runs) RL_ASSERT(r($) == 1);
  }
  void thread(unsigned index) {
    if (index == 0) {
      first.stamp($) = cursors.next_stamp();
      core.run_job({&pieces_suite::invoke, &first});
      expect_each_once(first);
      second.stamp($) = FreshStamp ? cursors.next_stamp() : std::uint64_t(first.stamp($));
      core.run_job({&pieces_suite::invoke, &second});
      expect_each_once(second);
      core.stop();
    } else {
      core.worker_loop();
    }
  }
};

// Broken on purpose: the caller looks at a worker's result before the
// completion word says the workers are done.
struct no_wait_done_suite : rl::test_suite<no_wait_done_suite, participants> {
  d::pool_dispatch core{participants - 1, nanoseconds(0)};
  counting_job work;

  void before() { work.reset(); }
  void thread(unsigned index) {
    if (index == 0) {
      core.publish(work.job());
      core.execute(work.job(), 0);
      core.help();
      int const seen = work.runs[1]($);  // races with the worker that runs index 1
      (void)seen;
      core.wait_done();
      core.stop();
    } else {
      core.worker_loop();
    }
  }
};

}  // namespace

int main() {
  int failures = 0;
  // Three threads with futex sleeps make the exhaustive search too large to
  // finish; a random search of this many schedules each runs in seconds.
  failures += rouse_model::expect_pass<one_job_suite<0>>("pool.one_job", 300000);
  failures += rouse_model::expect_pass<one_job_suite<1>>("pool.one_job_spinning", 200000);
  failures += rouse_model::expect_pass<held_job_suite>("pool.held_job", 200000);
  failures += rouse_model::expect_pass<stop_idle_suite>("pool.stop_idle", 100000);
  failures += rouse_model::expect_pass<two_jobs_suite>("pool.two_jobs", 200000);
  failures += rouse_model::expect_pass<failed_job_suite>("pool.failed_job", 200000);
  failures += rouse_model::expect_pass<pieces_suite<true>>("pool.pieces", 200000);
  failures +=
      rouse_model::expect_failure<pieces_suite<false>>("pool.stale_stamp", rl::test_result_user_assert_failed, 200000);
  failures += rouse_model::expect_failure<no_wait_done_suite>("pool.no_wait_done", rl::test_result_data_race, 200000);
  return failures == 0 ? 0 : 1;
}
