// Relacy models of rouse/channel/oneshot.hpp: every interleaving of the
// one-shot handshake with 2 threads (fair full search). Relacy reports a lost
// wake-up as a deadlock, an unordered access to the value as a data race, a
// state freed twice or never as a double free or a leak (the value is a heap
// object here, so a value destroyed twice or never is caught the same way).
//
// A broken variant, switched on in the real code (detail::model_fault), that
// the model must catch:
//   broken_ready_before_value   send() publishes READY before it constructs
//                               the value; the receiver reads the slot before
//                               (or while) it is written
//
// The timed receive waits on model time (model_clock: the deadline passes
// when a wait times out); main() fails if no receive timed out.
#include <cstdio>
#include <memory>

#include "model.hpp"
#include "rouse/channel/oneshot.hpp"

// Relacy replaces the unsized global operator delete only; C++14 sized
// deallocation would bypass it and free Relacy's memory with free().
void operator delete(void* p, std::size_t) noexcept { ::operator delete(p); }
void operator delete[](void* p, std::size_t) noexcept { ::operator delete[](p); }

namespace {

namespace ch = rouse::channel;
using value = std::unique_ptr<int>;
using clock = rouse::detail::model_clock;

// recv_until() calls that timed out, over a whole search.
unsigned long timeouts = 0;

// A sender and a receiver that blocks in recv(): the value always arrives.
struct send_vs_blocking_recv : rl::test_suite<send_vs_blocking_recv, 2> {
  ch::oneshot_sender<value> tx;
  ch::oneshot_receiver<value> rx;
  void before() {
    auto [t, r] = ch::oneshot<value>();
    tx = std::move(t);
    rx = std::move(r);
  }
  void thread(unsigned index) {
    if (index == 0) {
      auto s = std::move(tx).send(std::make_unique<int>(42));
      RL_ASSERT(s.ok());
    } else {
      auto r = rx.recv();
      RL_ASSERT(r.has_value() && **r == 42);
      RL_ASSERT(rx.recv().is_closed());
    }
  }
};

// The sender goes away without sending while the receiver blocks: the
// receiver always wakes with closed.
struct sender_dropped_vs_blocking_recv : rl::test_suite<sender_dropped_vs_blocking_recv, 2> {
  ch::oneshot_sender<value> tx;
  ch::oneshot_receiver<value> rx;
  void before() {
    auto [t, r] = ch::oneshot<value>();
    tx = std::move(t);
    rx = std::move(r);
  }
  void thread(unsigned index) {
    if (index == 0) {
      auto gone = std::move(tx);
    } else {
      RL_ASSERT(rx.recv().is_closed());
    }
  }
};

// The receiver goes away while the sender sends: the value is handed back or
// destroyed by the last handle, exactly once (a leak or double delete fails).
struct send_vs_receiver_dropped : rl::test_suite<send_vs_receiver_dropped, 2> {
  ch::oneshot_sender<value> tx;
  ch::oneshot_receiver<value> rx;
  void before() {
    auto [t, r] = ch::oneshot<value>();
    tx = std::move(t);
    rx = std::move(r);
  }
  void thread(unsigned index) {
    if (index == 0) {
      auto s = std::move(tx).send(std::make_unique<int>(7));
      if (!s) RL_ASSERT(s.is_closed() && *s.value() == 7);
    } else {
      auto gone = std::move(rx);
    }
  }
};

// A receiver with a deadline (Relacy may time it out at any wait) racing the
// send, then dropped: a value it did not take is destroyed exactly once.
struct send_vs_timed_recv : rl::test_suite<send_vs_timed_recv, 2> {
  ch::oneshot_sender<value> tx;
  ch::oneshot_receiver<value> rx;
  void before() {
    clock::reset();
    auto [t, r] = ch::oneshot<value>();
    tx = std::move(t);
    rx = std::move(r);
  }
  void thread(unsigned index) {
    if (index == 0) {
      auto s = std::move(tx).send(std::make_unique<int>(5));
      RL_ASSERT(s.ok() || s.is_closed());
    } else {
      auto r = rx.recv_until(clock::now() + clock::duration(1));
      if (r) {
        RL_ASSERT(**r == 5);
      } else {
        RL_ASSERT(r.is_timed_out());
        ++timeouts;
      }
      auto gone = std::move(rx);
    }
  }
};

}  // namespace

int main() {
  int failures = 0;
  failures += rouse_model::expect_pass<send_vs_blocking_recv>("oneshot.send_vs_blocking_recv");
  failures += rouse_model::expect_pass<sender_dropped_vs_blocking_recv>("oneshot.sender_dropped_vs_blocking_recv");
  failures += rouse_model::expect_pass<send_vs_receiver_dropped>("oneshot.send_vs_receiver_dropped");
  // Exhaustive search of this one takes ~27M iterations (minutes): sample it.
  failures += rouse_model::expect_pass<send_vs_timed_recv>("oneshot.send_vs_timed_recv", 1000000);
  std::printf("model oneshot.send_vs_timed_recv: %lu recv_until() calls timed out\n", timeouts);
  if (timeouts == 0) ++failures;
  {
    rouse::detail::model_fault_scope fault(rouse::detail::model_fault::oneshot_ready_before_value);
    failures += rouse_model::expect_failure<send_vs_blocking_recv>("oneshot.broken_ready_before_value",
                                                                   rl::test_result_data_race);
  }
  return failures == 0 ? 0 : 1;
}
