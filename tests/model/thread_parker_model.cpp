// Relacy models of rouse::thread_parker: an unpark before the park is not
// lost, an unpark racing a sleeping park wakes it, a timed park either takes
// the token or leaves it for the next park, and the unparker's writes are
// visible to the parker that consumed its token.
//
// A broken variant, switched on in the real code (detail::model_fault), that
// the model must catch:
//   broken_wakes_before_token   unpark() wakes the parked thread before it
//                               publishes the token; the woken park finds
//                               none and sleeps again, for good: a deadlock
#include <cstdio>

#include "model.hpp"
#include "rouse/thread_parker.hpp"

namespace {

using clock = rouse::detail::model_clock;

// Timed parks that gave up, over a whole search: main() checks that the
// give-up path was explored at all.
unsigned long timeouts = 0;

// Two threads: one parks until a flag is set, the other sets it and unparks.
// Any interleaving (unpark before, during or after the park) must finish.
struct unpark_before_or_after_park : rl::test_suite<unpark_before_or_after_park, 2> {
  rouse::thread_parker parker;
  rl::var<int> payload;

  void thread(unsigned index) {
    if (index == 0) {
      payload($) = 1;
      parker.unpark();
    } else {
      parker.park();               // this implementation returns only with a token
      RL_ASSERT(payload($) == 1);  // happens-before through the token
    }
  }
};

// One token, two unparkers: the single park consumes one token; no deadlock
// whichever unpark lands first.
struct two_unparkers : rl::test_suite<two_unparkers, 3> {
  rouse::thread_parker parker;
  rouse::detail::atomic<int> count{0};

  void thread(unsigned index) {
    if (index < 2) {
      count.fetch_add(1, std::memory_order_relaxed);
      parker.unpark();
    } else {
      while (count.load(std::memory_order_relaxed) != 2) parker.park();
    }
  }
};

// A timed park racing an unpark: if the timed park reports no token, the
// token is still there for the next park (which therefore cannot hang).
// Model time: the deadline passes when the park's wait times out.
struct timed_park_keeps_or_takes_token : rl::test_suite<timed_park_keeps_or_takes_token, 2> {
  rouse::thread_parker parker;

  void before() { clock::reset(); }

  void thread(unsigned index) {
    if (index == 0) {
      parker.unpark();
    } else {
      if (!parker.park_until(clock::now() + clock::duration(1))) {
        ++timeouts;
        parker.park();
      }
    }
  }
};

}  // namespace

int main() {
  int failures = 0;
  failures += rouse_model::expect_pass<unpark_before_or_after_park>("thread_parker.unpark_before_or_after_park");
  // Three threads: a random search (the exhaustive one is too large).
  failures += rouse_model::expect_pass<two_unparkers>("thread_parker.two_unparkers", 200000);
  failures +=
      rouse_model::expect_pass<timed_park_keeps_or_takes_token>("thread_parker.timed_park_keeps_or_takes_token");
  std::printf("model thread_parker.timed_park_keeps_or_takes_token: %lu park_until() calls timed out\n", timeouts);
  if (timeouts == 0) ++failures;
  {
    rouse::detail::model_fault_scope fault(rouse::detail::model_fault::thread_parker_wakes_before_token);
    failures += rouse_model::expect_failure<unpark_before_or_after_park>("thread_parker.broken_wakes_before_token",
                                                                         rl::test_result_deadlock);
  }
  return failures == 0 ? 0 : 1;
}
