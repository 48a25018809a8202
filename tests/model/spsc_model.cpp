// Relacy models of rouse/channel/spsc.hpp with 2 threads: the sleep handshake
// on each side (capacity 1, so the sender blocks on full and the receiver on
// empty), and close racing a blocked side. A lost wake-up shows as a deadlock,
// an unordered slot access as a data race, a value lost or duplicated as an
// assertion failure, a slot destroyed twice or never as a double free or leak.
//
// A broken variant, switched on in the real code (detail::model_fault), that
// the model must catch:
//   broken_notify_without_fence   the sender's notify loads rx_sleep without
//                                 fence (A) after its stamp store: with the
//                                 receiver's (B) alone, the sender may miss
//                                 rx_sleep = 1 while the receiver misses the
//                                 stamp, and both end up asleep
//
// The timed receive waits on model time (model_clock: the deadline passes
// when a wait times out); main() fails if no receive timed out.
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "model.hpp"
#include "rouse/channel/spsc.hpp"

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

template <class Suite>
struct channel_suite {
  ch::spsc_sender<value> tx;
  ch::spsc_receiver<value> rx;
  void make(std::size_t capacity) {
    auto [t, r] = ch::spsc<value>(capacity);
    tx = std::move(t);
    rx = std::move(r);
  }
};

// Capacity 1, two values: the sender blocks on full, the receiver on empty;
// then the sender goes away and the receiver sees closed after draining.
struct both_sides_block : rl::test_suite<both_sides_block, 2>, channel_suite<both_sides_block> {
  void before() { make(1); }
  void thread(unsigned index) {
    if (index == 0) {
      RL_ASSERT(tx.send(std::make_unique<int>(1)).ok());
      RL_ASSERT(tx.send(std::make_unique<int>(2)).ok());
      auto gone = std::move(tx);
    } else {
      auto a = rx.recv();
      RL_ASSERT(a.has_value() && **a == 1);
      auto b = rx.recv();
      RL_ASSERT(b.has_value() && **b == 2);
      RL_ASSERT(rx.recv().is_closed());
    }
  }
};

// The sender sends one value and closes while the receiver blocks: the
// receiver gets the value, then closed, never a hang.
struct close_vs_blocked_receiver : rl::test_suite<close_vs_blocked_receiver, 2>,
                                   channel_suite<close_vs_blocked_receiver> {
  void before() { make(2); }
  void thread(unsigned index) {
    if (index == 0) {
      RL_ASSERT(tx.send(std::make_unique<int>(1)).ok());
      tx.close();
    } else {
      auto a = rx.recv();
      RL_ASSERT(a.has_value() && **a == 1);
      RL_ASSERT(rx.recv().is_closed());
    }
  }
};

// The receiver closes and goes away while the sender is blocked on a full
// ring: the sender wakes with closed and its value back; the value left in
// the ring is destroyed exactly once.
struct receiver_close_vs_blocked_sender : rl::test_suite<receiver_close_vs_blocked_sender, 2>,
                                          channel_suite<receiver_close_vs_blocked_sender> {
  void before() { make(1); }
  void thread(unsigned index) {
    if (index == 0) {
      auto first = tx.send(std::make_unique<int>(1));  // fails if the close came first
      if (!first) {
        RL_ASSERT(first.is_closed() && *first.value() == 1);
        return;
      }
      auto s = tx.send(std::make_unique<int>(2));  // blocks on the full ring unless closed
      if (!s) RL_ASSERT(s.is_closed() && *s.value() == 2);
    } else {
      rx.close();
      auto gone = std::move(rx);
    }
  }
  void after() { tx = ch::spsc_sender<value>(); }
};

// Timed receive (Relacy may time out at any wait) racing a send: the value is
// received or left for the channel to destroy; no race, no leak.
struct send_vs_timed_recv : rl::test_suite<send_vs_timed_recv, 2>, channel_suite<send_vs_timed_recv> {
  void before() {
    clock::reset();
    make(1);
  }
  void thread(unsigned index) {
    if (index == 0) {
      RL_ASSERT(tx.send(std::make_unique<int>(3)).ok());
    } else {
      auto r = rx.recv_until(clock::now() + clock::duration(1));
      if (r) {
        RL_ASSERT(**r == 3);
      } else {
        RL_ASSERT(r.is_timed_out() || r.is_closed());
        if (r.is_timed_out()) ++timeouts;
      }
    }
  }
  void after() {
    tx = ch::spsc_sender<value>();
    rx = ch::spsc_receiver<value>();
  }
};

}  // namespace

int main() {
  // Random searches: the spin-then-sleep loops on both sides make the fair
  // full search of these models run for hours.
  int failures = 0;
  failures += rouse_model::expect_pass<both_sides_block>("spsc.both_sides_block", 1000000);
  failures += rouse_model::expect_pass<close_vs_blocked_receiver>("spsc.close_vs_blocked_receiver", 500000);
  failures +=
      rouse_model::expect_pass<receiver_close_vs_blocked_sender>("spsc.receiver_close_vs_blocked_sender", 500000);
  failures += rouse_model::expect_pass<send_vs_timed_recv>("spsc.send_vs_timed_recv", 500000);
  std::printf("model spsc.send_vs_timed_recv: %lu recv_until() calls timed out\n", timeouts);
  if (timeouts == 0) ++failures;
  {
    rouse::detail::model_fault_scope fault(rouse::detail::model_fault::spsc_notify_without_fence);
    failures += rouse_model::expect_failure<both_sides_block>("spsc.broken_notify_without_fence",
                                                              rl::test_result_deadlock, 1000000);
  }
  return failures == 0 ? 0 : 1;
}
