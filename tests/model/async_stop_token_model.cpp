// Relacy models of rouse::async::inplace_stop_source (rouse/async/stop_token.hpp):
// the registration of a callback (its constructor links it, its destructor
// unlinks it, or waits for a run on another thread) against request_stop(),
// which takes the callbacks one by one and runs them outside the list lock;
// and the source's destruction by the work a callback let go, on another
// thread (the destructor waits for the running request_stop()) or on the
// requesting thread itself (request_stop() returns, touching nothing).
//
// The contract checked: a callback runs at most once, and never after its
// destructor returned (the owner's later write of what the callback touches
// is no data race); no access to a destroyed source or callback; the list
// stays consistent while callbacks of several threads come and go during a
// stop (no race on the links).
//
// Suites:
//   deregister_races_stop           a callback registered and destroyed
//                                   while another thread stops (random)
//   two_callbacks_race_stop         two threads register and destroy one
//                                   callback each while a third stops (random)
//   owner_destroys_after_its_callback   the callback lets its owner go on;
//                                   the owner destroys the callback and the
//                                   source while request_stop() may still be
//                                   inside (random)
//   callback_destroys_the_source    on the requesting thread, the callback
//                                   destroys itself and the source (one thread)
// Broken variants (model_fault, sync_types.hpp):
//   stop_callback_destroyed_while_running   data race on what the callback touches
//   stop_source_destroyed_while_stopping    access to freed memory
//   stop_request_touches_destroyed_source   access to freed memory
#include <cstdint>
#include <new>
#include <utility>

#include "model.hpp"
#include "rouse/async/stop_token.hpp"

// The source asks the platform for the thread's id (out of line in src/,
// which models do not link): under the model, the Relacy thread.
std::uint32_t rouse::platform::this_thread_id() noexcept { return rl::thread_index() + 1; }

namespace {

namespace rd = rouse::detail;
using rouse::async::inplace_stop_callback;
using rouse::async::inplace_stop_source;

using rouse_model::in_storage;  // built in before(), destroyed in place by a thread

// A callback that touches its owner's data (an awaitable in a frame) and
// counts its runs.
struct touch {
  rl::var<int>* data;
  rd::atomic<int>* runs;
  void operator()() noexcept {
    rd::unsync_ref(*data) = rd::unsync_ref(*data) + 1;
    runs->fetch_add(1, std::memory_order_relaxed);
  }
};
using touch_callback = inplace_stop_callback<touch>;

// Thread 0 registers a callback and destroys it, then reuses what the
// callback touched; thread 1 requests stop.
struct deregister_races_stop : rl::test_suite<deregister_races_stop, 2> {
  inplace_stop_source source;
  in_storage<touch_callback> cb;
  rl::var<int> data;
  rd::atomic<int> runs{0};

  void before() { data($) = 0; }
  void thread(unsigned index) {
    if (index == 0) {
      cb.build(source.get_token(), touch{&data, &runs});
      cb.destroy();
      data($) = 100;  // the owner's memory, reused
    } else {
      RL_ASSERT(source.request_stop());
    }
  }
  void after() {
    RL_ASSERT(runs.load(std::memory_order_relaxed) <= 1);
    RL_ASSERT(data($) == 100);
  }
};

// Two owners, one callback each, and a stopper: the links of one callback
// change while request_stop() takes or runs the other.
struct two_callbacks_race_stop : rl::test_suite<two_callbacks_race_stop, 3> {
  inplace_stop_source source;
  in_storage<touch_callback> cb[2];
  rl::var<int> data[2];
  rd::atomic<int> runs[2];

  void before() {
    for (int i = 0; i < 2; ++i) {
      data[i]($) = 0;
      runs[i].store(0, std::memory_order_relaxed);
    }
  }
  void thread(unsigned index) {
    if (index == 2) {
      RL_ASSERT(source.request_stop());
      return;
    }
    cb[index].build(source.get_token(), touch{&data[index], &runs[index]});
    cb[index].destroy();
    data[index]($) = 100;
  }
  void after() {
    for (int i = 0; i < 2; ++i) {
      RL_ASSERT(runs[i].load(std::memory_order_relaxed) <= 1);
      RL_ASSERT(data[i]($) == 100);
    }
  }
};

// The callback lets its owner go on (a coroutine resumed elsewhere that
// finishes its work); the owner destroys the callback, then the source,
// while request_stop() may still be between the callback's return and its
// last touch of the source.
struct owner_destroys_after_its_callback : rl::test_suite<owner_destroys_after_its_callback, 2> {
  struct let_go {
    rd::atomic<std::uint32_t>* go;
    void operator()() noexcept {
      go->store(1, std::memory_order_release);
      rd::wake_all(*go);
    }
  };
  in_storage<inplace_stop_source> source;
  in_storage<inplace_stop_callback<let_go>> cb;
  rd::atomic<std::uint32_t> go{0};

  void before() { source.build(); }
  void thread(unsigned index) {
    if (index == 0) {
      cb.build(source->get_token(), let_go{&go});
      while (go.load(std::memory_order_acquire) == 0) rd::wait(go, 0);
      cb.destroy();
      source.destroy();
    } else {
      source->request_stop();  // the last call: the source may be gone after it
    }
  }
};

// No executor: the stopped work resumes inside request_stop() and destroys
// its callback (from inside the callback's own run) and the source.
struct callback_destroys_the_source : rl::test_suite<callback_destroys_the_source, 1> {
  struct end_work {
    callback_destroys_the_source* self;
    void operator()() noexcept {
      self->cb.destroy();
      self->source.destroy();
    }
  };
  in_storage<inplace_stop_source> source;
  in_storage<inplace_stop_callback<end_work>> cb;

  void before() {
    source.build();
    cb.build(source->get_token(), end_work{this});
  }
  void thread(unsigned) { RL_ASSERT(source->request_stop()); }
};

}  // namespace

int main() {
  int failures = 0;
  failures += rouse_model::expect_pass<deregister_races_stop>("stop_token.deregister_races_stop", 200'000);
  failures += rouse_model::expect_pass<two_callbacks_race_stop>("stop_token.two_callbacks_race_stop", 200'000);
  failures += rouse_model::expect_pass<owner_destroys_after_its_callback>("stop_token.owner_destroys_after_its_callback", 200'000);
  failures += rouse_model::expect_pass<callback_destroys_the_source>("stop_token.callback_destroys_the_source");
  {
    rd::model_fault_scope f(rd::model_fault::stop_callback_destroyed_while_running);
    failures += rouse_model::expect_failure<deregister_races_stop>("stop_token.broken_destroyed_while_running",
                                                                   rl::test_result_data_race, 200'000);
  }
  {
    rd::model_fault_scope f(rd::model_fault::stop_source_destroyed_while_stopping);
    failures += rouse_model::expect_failure<owner_destroys_after_its_callback>(
        "stop_token.broken_source_destroyed_while_stopping", rl::test_result_access_to_freed_memory, 200'000);
  }
  {
    rd::model_fault_scope f(rd::model_fault::stop_request_touches_destroyed_source);
    failures += rouse_model::expect_failure<callback_destroys_the_source>(
        "stop_token.broken_request_touches_destroyed_source", rl::test_result_access_to_freed_memory);
  }
  return failures == 0 ? 0 : 1;
}
