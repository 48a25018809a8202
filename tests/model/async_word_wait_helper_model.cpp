// Relacy model of the helper-thread path of a coroutine's futex wait
// (rouse/async/detail/word_wait.hpp, basic_word_wait::helper_loop; the
// thread itself is src/async/word_wait.cpp): where no ring carries the
// wait, a helper thread sleeps on the protocol's word and on the wait's own
// stop word at once, with one futex_waitv. That call can take a wake of the
// word and the stop's wake together and report only one index (the stop's).
// The wake of the word it took was meant for some waiter: the helper must
// leave as a woken waiter does (woke(), then leave()), so that the
// protocol's give-up path passes it on.
//
// What is modelled, and how:
//   the driver        basic_word_wait, the library's code, compiled with
//                     ROUSE_MODEL_RELACY; its fallback_ops are the model's
//   the kernel        fake_kernel below: a FIFO of sleepers on the word and
//                     the helper's registration on the stop word, under one
//                     lock (the futex compare atomic with wakes); a sleeper
//                     woken by both reports the stop word, as futex_waitv
//                     reports the last index woken
//   the protocol      a token word whose waiters count a wake: step() takes
//                     a token or waits while the word is 0; leave() of a
//                     waiter that was woken passes one wake on (the shape of
//                     the semaphore's and the mutex's give-up paths)
//   the threads       W0's awaiter (starts the wait, then stops it), W0's
//                     helper thread, W1 (a plain thread waiting on the same
//                     word through the same kernel), and a waker (one token,
//                     one wake; a second for W1 if W0 took the first)
// W1 must always end with a token: a wake lost on W0's stopped wait leaves
// it asleep, and Relacy reports the deadlock.
//
// The broken variant (model_fault::word_wait_helper_stop_skips_woke): the
// helper, woken with the stop reported, leaves without woke(), as the code
// did before this path was fixed. The model must fail with a deadlock.
//
// helper_abandon_races_wake: W0 is a raw word wait (wait_on's protocol: one
// wait while the word holds 0, no give-up path) whose frame is destroyed
// (abandon()) while a waker stores 1 and wakes one waiter; W1 is a thread
// waiting on the same word. A wake W0's helper took for a frame that is
// gone must be passed on (the driver's give_back_locked()), or W1 sleeps on
// a word that says 1. Here the fake kernel reports the word when both
// wakes reached the helper, as futex_waitv does with the word last (the
// protocol relies on it: it has no give-up path to cover the other case).
// Broken variant model_fault::word_wait_abandon_drops_wake (the code before
// the pass-on): a deadlock.
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
using rouse::async::detail::wait_outcome;
using rouse::async::detail::wait_protocol;

// Over a whole search: schedules where the helper took both wakes.
unsigned long both_taken = 0;

struct fake_kernel {
  struct sleeper {
    rd::atomic<std::uint32_t> bell{0};
    bool by_word = false;
    bool by_stop = false;
  };

  rouse::mutex lock;
  sleeper* queue[4] = {};  // FIFO of sleepers on the word
  int queue_n = 0;
  sleeper* on_stop = nullptr;  // the helper, while it sleeps on the stop word
  // A sleeper woken by both reports the word (futex_waitv(2) with the word
  // as the last entry, as the library's helper waits) instead of the stop
  // (the worst case a protocol's give-up path must cover).
  bool word_reported_first = false;

  static void ring(sleeper& s) {
    s.bell.store(1, std::memory_order_release);
    rd::wake_all(s.bell);
  }
  void unqueue(sleeper& s) {
    for (int i = 0; i < queue_n; ++i)
      if (queue[i] == &s) {
        for (int j = i; j + 1 < queue_n; ++j) queue[j] = queue[j + 1];
        --queue_n;
        return;
      }
  }
  // Sleeps while `word` holds `value` (and, with `stop`, while it is 0).
  // Returns 0 for the word (woken, or it had changed), 1 for the stop word.
  int wait(const rd::atomic<std::uint32_t>& word, std::uint32_t value, const rd::atomic<std::uint32_t>* stop) {
    sleeper s;
    lock.lock();
    // The compare, atomic with wakes (the futex bucket lock).
    if (word.load(std::memory_order_seq_cst) != value) {
      lock.unlock();
      return 0;
    }
    if (stop != nullptr && stop->load(std::memory_order_seq_cst) != 0) {
      lock.unlock();
      return 1;
    }
    queue[queue_n++] = &s;
    if (stop != nullptr) on_stop = &s;
    lock.unlock();
    while (s.bell.load(std::memory_order_acquire) == 0) rd::wait(s.bell, 0);
    lock.lock();
    unqueue(s);
    if (on_stop == &s) on_stop = nullptr;
    bool const word_woke = s.by_word;
    bool const stop_woke = s.by_stop;
    lock.unlock();
    if (word_woke && stop_woke) ++both_taken;
    if (word_woke && word_reported_first) return 0;
    return stop_woke ? 1 : 0;
  }
  // FUTEX_WAKE of one on the word: the first sleeper takes it.
  void wake_one() {
    lock.lock();
    if (queue_n > 0) {
      sleeper& s = *queue[0];
      unqueue(s);
      s.by_word = true;
      ring(s);
    }
    lock.unlock();
  }
  void wake_stop() {
    lock.lock();
    if (on_stop != nullptr) {
      on_stop->by_stop = true;
      ring(*on_stop);
    }
    lock.unlock();
  }
};

fake_kernel* kernel = nullptr;

// The token protocol, whose waiter, woken and giving up, passes one wake on.
struct token_protocol : rouse_model::token_protocol {
  bool woken = false;
  using rouse_model::token_protocol::token_protocol;
  void woke() noexcept override { woken = true; }
  bool leave() noexcept override {
    if (woken) kernel->wake_one();
    return false;
  }
};

struct helper_stop_races_wake;
// No ring: every wait goes to the helper thread.
struct no_carrier {
  bool futex_wait_start(rouse::async::detail::futex_wait_node*, const rd::atomic<std::uint32_t>*,
                        std::uint32_t) noexcept {
    return false;
  }
  bool futex_wait_cancel(rouse::async::detail::futex_wait_node*) noexcept { return false; }
};
using driver = basic_word_wait<no_carrier>;

struct waiter0 : token_protocol, driver {
  helper_stop_races_wake* suite;
  waiter0(helper_stop_races_wake* s, rd::atomic<std::uint32_t>& tokens) noexcept
      : token_protocol(tokens), driver(static_cast<wait_protocol&>(*this), &on_done), suite(s) {}
  static void on_done(driver* w, wait_outcome o) noexcept;
};

// The helper thread of the model: a suite thread that runs helper_loop()
// once start() asked for it.
rd::atomic<std::uint32_t>* helper_go = nullptr;  // 1: run the loop, 2: none is needed
bool start_helper(driver& w) noexcept {
  w.helper_handle = &w;
  helper_go->store(1, std::memory_order_release);
  rd::wake_all(*helper_go);
  return true;
}
void reap_helper(driver& w) noexcept { w.helper_handle = nullptr; }
int wait_pair(const driver::word_type& word, std::uint32_t value, const driver::word_type& stop) noexcept {
  return kernel->wait(word, value, &stop);
}
void wake_stop(const driver::word_type&) noexcept { kernel->wake_stop(); }
void wake_one(const driver::word_type&) noexcept { kernel->wake_one(); }
constexpr driver::fallback_ops model_ops{&start_helper, &reap_helper, &wait_pair, &wake_stop, &wake_one};

struct helper_stop_races_wake : rl::test_suite<helper_stop_races_wake, 4> {
  rd::atomic<std::uint32_t> tokens{0};
  rd::atomic<std::uint32_t> go{0};
  rd::atomic<std::uint32_t> w0_ended{0};
  fake_kernel kern;
  waiter0 w0{this, tokens};
  wait_outcome outcome0 = wait_outcome::pending;
  bool w1_took = false;

  void before() {
    kernel = &kern;
    helper_go = &go;
  }

  void ended(wait_outcome o) {
    outcome0 = o;
    w0_ended.store(1, std::memory_order_release);
    rd::wake_all(w0_ended);
  }

  void thread(unsigned index) {
    if (index == 0) {  // W0's awaiter: starts the wait, then stops it
      wait_outcome const o = w0.start(nullptr, &model_ops);
      if (o != wait_outcome::pending) {
        go.store(2, std::memory_order_release);
        rd::wake_all(go);
        ended(o);
        return;
      }
      w0.request_stop();
    } else if (index == 1) {  // W0's helper thread
      std::uint32_t g;
      while ((g = go.load(std::memory_order_acquire)) == 0) rd::wait(go, 0);
      if (g == 1) w0.helper_loop();
    } else if (index == 2) {  // W1: a plain waiter on the same word
      rouse_model::token_protocol p(tokens);
      std::uint32_t value = 0;
      while (!p.step(value)) (void)kern.wait(tokens, value, nullptr);
      w1_took = true;
    } else {  // the waker: one token, one wake; another for W1 if W0 took it
      // Ordering: release: pairs with the step's acquire.
      tokens.fetch_add(1, std::memory_order_release);
      kern.wake_one();
      while (w0_ended.load(std::memory_order_acquire) == 0) rd::wait(w0_ended, 0);
      if (w0.took) {
        tokens.fetch_add(1, std::memory_order_release);
        kern.wake_one();
      }
    }
  }

  void after() {
    RL_ASSERT(w1_took);
    RL_ASSERT(tokens.load(std::memory_order_relaxed) == 0);
    RL_ASSERT(outcome0 == (w0.took ? wait_outcome::done : wait_outcome::stopped));
  }
};

void waiter0::on_done(driver* w, wait_outcome o) noexcept { static_cast<waiter0*>(w)->suite->ended(o); }

// wait_on's protocol (rouse/async/wait_on.hpp, word_protocol): one wait
// while the word holds 0; what it takes is a wake of the word only.
struct raw_word_protocol : wait_protocol {
  bool waited = false;
  explicit raw_word_protocol(const rd::atomic<std::uint32_t>& w) noexcept { word = &w; }
  bool step(std::uint32_t& value) noexcept override {
    if (waited || word->load(std::memory_order_acquire) != 0) return true;
    value = 0;
    return false;
  }
  void woke() noexcept override { waited = true; }
  bool give_back() noexcept override { return waited; }
};

struct helper_abandon_races_wake;
struct raw_waiter : raw_word_protocol, driver {
  helper_abandon_races_wake* suite;
  raw_waiter(helper_abandon_races_wake* s, const rd::atomic<std::uint32_t>& w) noexcept
      : raw_word_protocol(w), driver(static_cast<wait_protocol&>(*this), &on_done), suite(s) {}
  static void on_done(driver* w, wait_outcome o) noexcept;
};

// W0 waits on a raw word (wait_on) through the helper, and its frame is
// destroyed (abandon()) while a waker stores 1 and wakes one waiter; W1 is
// a thread waiting on the same word. If W0's helper took the one wake and
// the frame is gone before its end, the driver must pass the wake on to W1
// (else W1 sleeps on a word that says 1: a deadlock). A W0 that ended
// first (resumed normally) keeps its wake; the waker then wakes again.
struct helper_abandon_races_wake : rl::test_suite<helper_abandon_races_wake, 4> {
  rd::atomic<std::uint32_t> word{0};
  rd::atomic<std::uint32_t> go{0};
  rd::atomic<std::uint32_t> w0_settled{0};  // 1: W0 ended or was abandoned
  fake_kernel kern;
  raw_waiter w0{this, word};
  bool w0_ended = false;  // its end was reported (it "resumed")

  void before() {
    kernel = &kern;
    kern.word_reported_first = true;  // wait_on's protocol has no give-up path: it relies on this
    helper_go = &go;
  }

  void settled() {
    w0_settled.store(1, std::memory_order_release);
    rd::wake_all(w0_settled);
  }

  void thread(unsigned index) {
    if (index == 0) {  // W0's awaiter: starts the wait, then its frame goes
      wait_outcome const o = w0.start(nullptr, &model_ops);
      if (o != wait_outcome::pending) {
        go.store(2, std::memory_order_release);
        rd::wake_all(go);
        w0_ended = true;
      } else {
        w0.abandon();  // waits for an end under way: w0_ended is final after it
      }
      settled();
    } else if (index == 1) {  // W0's helper thread
      std::uint32_t g;
      while ((g = go.load(std::memory_order_acquire)) == 0) rd::wait(go, 0);
      if (g == 1) w0.helper_loop();
    } else if (index == 2) {  // W1: a thread waiting on the same word
      while (word.load(std::memory_order_acquire) == 0) (void)kern.wait(word, 0, nullptr);
    } else {  // the waker: the word says 1, one wake; another if W0 kept it
      word.store(1, std::memory_order_seq_cst);
      kern.wake_one();
      while (w0_settled.load(std::memory_order_acquire) == 0) rd::wait(w0_settled, 0);
      if (w0_ended) kern.wake_one();
    }
  }
};

void raw_waiter::on_done(driver* w, wait_outcome) noexcept { static_cast<raw_waiter*>(w)->suite->w0_ended = true; }

}  // namespace

int main(int argc, char** argv) {
  unsigned long const iterations = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 200000;
  int failures = 0;
  failures += rouse_model::expect_pass<helper_stop_races_wake>("word_wait.helper_stop_races_wake", iterations);
  std::printf("model word_wait.helper_stop_races_wake: %lu schedules had the helper take both wakes\n", both_taken);
  if (both_taken == 0) {
    std::printf("model word_wait.helper_stop_races_wake: the race of interest was never explored\n");
    ++failures;
  }
  {
    rd::model_fault_scope f(rd::model_fault::word_wait_helper_stop_skips_woke);
    failures += rouse_model::expect_failure<helper_stop_races_wake>("word_wait.broken_helper_stop_skips_woke",
                                                                    rl::test_result_deadlock, iterations);
  }
  failures += rouse_model::expect_pass<helper_abandon_races_wake>("word_wait.helper_abandon_races_wake", iterations);
  {
    rd::model_fault_scope f(rd::model_fault::word_wait_abandon_drops_wake);
    failures += rouse_model::expect_failure<helper_abandon_races_wake>("word_wait.broken_abandon_drops_wake",
                                                                       rl::test_result_deadlock, iterations);
  }
  return failures == 0 ? 0 : 1;
}
