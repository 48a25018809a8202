// Relacy model of the handshake that is rouse's own in a coroutine's futex
// wait carried by a ring (rouse/async/detail/word_wait.hpp, the driver under
// async::wait_on and rouse/async/blocking.hpp): a stop that withdraws the
// ring's request while the request's completion — a wake-one it consumed —
// may already be on its way.
//
// What is modelled, and how:
//   the driver        basic_word_wait, the library's code, compiled with
//                     ROUSE_MODEL_RELACY (its lock is a rouse::mutex on
//                     Relacy's atomics and futex)
//   the protocol      a token word: step() takes a token or asks to wait
//                     while the word is 0 (the shape of the semaphore's and
//                     the mutex's steps); leave() takes nothing
//   the ring          fake_ring below, a model of what the io_uring reactor
//                     and the kernel do for it (src/io/reactor_uring.cpp:
//                     futex_wait_start / futex_wait_cancel / the completion
//                     handling of uring_park) under one lock: the kernel's
//                     FIFO of queued waits on the word (the futex compare
//                     atomic with wakes), the completion queue, and the
//                     reactor's records (withdrawn = node cleared under the
//                     lock; a withdrawn request's completion that says
//                     "woken" is passed on with a wake of one)
// The reactor's part is a copy (its code is not header code), so the model
// proves the driver against the reactor's stated contract, not the
// reactor's code. The helper-thread path (a two-word futex_waitv) has its
// own model: async_word_wait_helper_model.cpp.
//
// The suite: two coroutine waiters W0, W1 on one word, both waiting through
// the ring (their await_suspend runs on the loop thread, which then reaps
// completions); a waker adds one token and wakes one; a stopper stops W0.
// Exactly one waiter must end with the token; the other ends stopped (W1 is
// stopped once W0 has the token). A wake-one lost on W0's withdrawn or
// stopped wait leaves W1 asleep forever: Relacy reports the deadlock.
//
// The broken variant (model_fault::word_wait_completion_skips_step): a
// completion that finds the stop requested ends the wait as stopped without
// stepping the protocol, dropping the wake its request consumed. The model
// must fail with a deadlock.
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "model.hpp"
#include "rouse/async/detail/word_wait.hpp"
#include "rouse/mutex.hpp"
#include "word_wait_model.hpp"

namespace {

namespace rd = rouse::detail;
using rouse::async::detail::basic_word_wait;
using rouse::async::detail::futex_wait_node;
using rouse::async::detail::wait_outcome;
using rouse::async::detail::wait_protocol;

// Over a whole search, that the races of interest were explored at all:
// a withdrawn request's consumed wake passed on, and a stopped W0 that
// ended with the token all the same (its completion won).
unsigned long passed_on = 0;
unsigned long stopped_w0_took = 0;

constexpr int result_woken = 0;
constexpr int result_again = -11;      // -EAGAIN: the word did not hold the value
constexpr int result_canceled = -125;  // -ECANCELED: withdrawn from the queue

// The reactor + kernel + ring of one futex word, under one lock.
struct fake_ring {
  static constexpr int capacity = 8;  // requests over one run: a few per waiter
  struct record {
    futex_wait_node* node = nullptr;  // null: withdrawn
    bool live = false;                // until its completion was handled
    bool queued = false;              // the kernel holds the waiter
  };
  struct completion {
    int rec;
    int res;
  };

  rouse::mutex lock;
  const rd::atomic<std::uint32_t>* word = nullptr;
  record records[capacity];
  int used = 0;
  int queue[capacity] = {};  // FIFO of queued record indices
  int queue_head = 0;
  int queue_tail = 0;
  completion cq[capacity] = {};
  int cq_head = 0;
  int cq_tail = 0;
  int live = 0;
  rd::atomic<std::uint32_t> posted{0};  // the loop thread sleeps on it

  // Under lock.
  void post(int rec, int res) {
    cq[cq_tail++] = {rec, res};
    bump();
  }
  void bump() {
    posted.fetch_add(1, std::memory_order_release);
    rd::wake_all(posted);
  }

  // The parker's interface (run_loop.hpp), as the driver calls it.
  bool futex_wait_start(futex_wait_node* n, const rd::atomic<std::uint32_t>* w, std::uint32_t expected) noexcept {
    lock.lock();
    RL_ASSERT(used < capacity);
    int const r = used++;
    records[r] = {n, true, false};
    ++live;
    n->record = &records[r];
    // The futex compare, atomic with wakes (the bucket lock).
    if (w->load(std::memory_order_seq_cst) != expected) {
      post(r, result_again);
    } else {
      records[r].queued = true;
      queue[queue_tail++] = r;
    }
    lock.unlock();
    return true;
  }
  bool futex_wait_cancel(futex_wait_node* n) noexcept {
    lock.lock();
    auto* const rec = static_cast<record*>(n->record);
    if (rec == nullptr || rec->node != n) {  // its completion was taken: it comes
      lock.unlock();
      return false;
    }
    rec->node = nullptr;
    if (rec->queued) {  // IORING_OP_ASYNC_CANCEL removes the kernel's waiter
      rec->queued = false;
      int const r = static_cast<int>(rec - records);
      for (int i = queue_head; i < queue_tail; ++i)
        if (queue[i] == r) {
          for (int j = i; j + 1 < queue_tail; ++j) queue[j] = queue[j + 1];
          --queue_tail;
          break;
        }
      post(r, result_canceled);
    }
    lock.unlock();
    return true;
  }

  // FUTEX_WAKE of one: the first queued waiter's request completes.
  void wake_one() {
    lock.lock();
    if (queue_head < queue_tail) {
      int const r = queue[queue_head++];
      records[r].queued = false;
      post(r, result_woken);
    }
    lock.unlock();
  }

  // The loop thread's reaping (uring_park): one completion, outside the
  // lock. False when none is queued.
  bool reap_one() {
    lock.lock();
    if (cq_head == cq_tail) {
      lock.unlock();
      return false;
    }
    completion const c = cq[cq_head++];
    record& rec = records[c.rec];
    futex_wait_node* const node = rec.node;
    rec.live = false;
    --live;
    if (node) node->record = nullptr;
    lock.unlock();
    if (node) {
      node->result = c.res;
      node->complete(node);
    } else if (c.res == result_woken) {
      ++passed_on;
      wake_one();  // a wake the withdrawn request consumed: passed on
    }
    return true;
  }
  bool idle() {
    lock.lock();
    bool const r = cq_head == cq_tail && live == 0;
    lock.unlock();
    return r;
  }
};

using rouse_model::token_protocol;

struct cancel_races_wake;

struct waiter : token_protocol, basic_word_wait<fake_ring> {
  cancel_races_wake* suite;
  int id;
  waiter(cancel_races_wake* s, int i, rd::atomic<std::uint32_t>& tokens) noexcept
      : token_protocol(tokens),
        basic_word_wait<fake_ring>(static_cast<wait_protocol&>(*this), &on_done),
        suite(s),
        id(i) {}
  static void on_done(basic_word_wait<fake_ring>* w, wait_outcome o) noexcept;
};

struct cancel_races_wake : rl::test_suite<cancel_races_wake, 3> {
  rd::atomic<std::uint32_t> tokens{0};
  fake_ring ring;
  waiter w0{this, 0, tokens};
  waiter w1{this, 1, tokens};
  rd::atomic<std::uint32_t> ended{0};
  wait_outcome outcome[2] = {wait_outcome::pending, wait_outcome::pending};

  void before() { ring.word = &tokens; }

  // A waiter's wait ended (on whichever thread ended it).
  void ended_with(int id, wait_outcome o) {
    outcome[id] = o;
    if (id == 0) w0_ended.store(1, std::memory_order_release);
    // W0 has the token: W1 will get none, stop it (the program's own stop).
    if (id == 0 && o == wait_outcome::done) w1.request_stop();
    ended.fetch_add(1, std::memory_order_release);
    ring.bump();  // the loop thread looks again
  }

  void thread(unsigned index) {
    if (index == 0) {  // the loop: both await_suspends, then the completions
      for (waiter* w : {&w0, &w1}) {
        wait_outcome const o = w->start(&ring, nullptr);
        if (o != wait_outcome::pending) ended_with(w->id, o);
      }
      for (;;) {
        std::uint32_t const seen = ring.posted.load(std::memory_order_acquire);
        while (ring.reap_one()) {
        }
        if (ended.load(std::memory_order_acquire) == 2 && ring.idle()) return;
        rd::wait(ring.posted, seen);
      }
    } else if (index == 1) {  // the waker: one token, one wake
      // Ordering: release: pairs with the step's acquire.
      tokens.fetch_add(1, std::memory_order_release);
      ring.wake_one();
    } else {  // the stopper
      bool const ended_first = w0_ended.load(std::memory_order_acquire) != 0;
      w0.request_stop();
      stopped_while_waiting = !ended_first;  // read in after(), once every thread is done
    }
  }

  rd::atomic<std::uint32_t> w0_ended{0};
  bool stopped_while_waiting = false;  // the stop came before W0's wait ended

  void after() {
    if (stopped_while_waiting && w0.took) ++stopped_w0_took;
    RL_ASSERT(tokens.load(std::memory_order_relaxed) == 0);  // the token was taken...
    RL_ASSERT((w0.took ? 1 : 0) + (w1.took ? 1 : 0) == 1);   // ...once
    RL_ASSERT(outcome[0] == (w0.took ? wait_outcome::done : wait_outcome::stopped));
    RL_ASSERT(outcome[1] == (w1.took ? wait_outcome::done : wait_outcome::stopped));
  }
};

void waiter::on_done(basic_word_wait<fake_ring>* w, wait_outcome o) noexcept {
  auto* const self = static_cast<waiter*>(w);
  self->suite->ended_with(self->id, o);
}

}  // namespace

int main(int argc, char** argv) {
  // A full search is large (three threads, three locks); a random search of
  // this many schedules finds the broken variant every time.
  unsigned long const iterations = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 200000;
  int failures = 0;
  failures += rouse_model::expect_pass<cancel_races_wake>("word_wait.cancel_races_wake", iterations);
  std::printf(
      "model word_wait.cancel_races_wake: %lu schedules passed a withdrawn wake on, %lu had the stopped W0 "
      "take the token\n",
      passed_on, stopped_w0_took);
  if (passed_on == 0 || stopped_w0_took == 0) {
    std::printf("model word_wait.cancel_races_wake: a race of interest was never explored\n");
    ++failures;
  }
  {
    rd::model_fault_scope f(rd::model_fault::word_wait_completion_skips_step);
    failures += rouse_model::expect_failure<cancel_races_wake>("word_wait.broken_completion_skips_step",
                                                               rl::test_result_deadlock, iterations);
  }
  return failures == 0 ? 0 : 1;
}
