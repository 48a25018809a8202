// channel.oneshot: create a one-shot channel, send on one thread, receive on
// another, 1,000,000 times; rouse::channel::oneshot against
// std::promise / std::future.                                          ns/op
//
// The producer creates channel i, hands its receiving end to the consumer
// through slot i of an array (a release flag), then sends; the consumer
// waits for slot i's flag, then receives (often before the send: the
// blocking path). The hand-over costs both implementations the same.
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <future>
#include <memory>
#include <optional>

#include "harness.hpp"
#include "rouse/channel/oneshot.hpp"

namespace {

using rouse::bench::run_context;
using rouse::bench::sample;

struct rouse_oneshot {
  using receiver = rouse::channel::oneshot_receiver<std::uint64_t>;
  static void start_and_send(std::uint64_t v, auto&& hand_over) {
    auto [tx, rx] = rouse::channel::oneshot<std::uint64_t>();
    hand_over(std::move(rx));
    if (!std::move(tx).send(v)) std::abort();
  }
  static std::uint64_t receive(receiver& rx) {
    auto r = rx.recv();
    if (!r) std::abort();
    return *r;
  }
};

struct std_promise {
  using receiver = std::future<std::uint64_t>;
  static void start_and_send(std::uint64_t v, auto&& hand_over) {
    std::promise<std::uint64_t> p;
    hand_over(p.get_future());
    p.set_value(v);
  }
  static std::uint64_t receive(receiver& f) { return f.get(); }
};

template <class Impl>
sample oneshot_ns(const run_context& ctx) {
  std::int64_t const n = ctx.scaled(1'000'000);
  struct slot {
    std::atomic<bool> ready{false};
    std::optional<typename Impl::receiver> rx;
  };
  auto slots = std::make_unique<slot[]>(static_cast<std::size_t>(n));
  std::uint64_t sum = 0;
  double const ns = rouse::bench::run_threads(2, [&](unsigned index) {
    if (index == 0) {
      for (std::int64_t i = 0; i < n; ++i) {
        slot& s = slots[static_cast<std::size_t>(i)];
        Impl::start_and_send(static_cast<std::uint64_t>(i), [&](typename Impl::receiver rx) {
          s.rx.emplace(std::move(rx));
          s.ready.store(true, std::memory_order_release);
        });
      }
    } else {
      for (std::int64_t i = 0; i < n; ++i) {
        slot& s = slots[static_cast<std::size_t>(i)];
        while (!s.ready.load(std::memory_order_acquire)) rouse::bench::keep(i);
        sum += Impl::receive(*s.rx);
        s.rx.reset();
      }
    }
  });
  rouse::bench::keep(sum);
  if (sum != static_cast<std::uint64_t>(n) * static_cast<std::uint64_t>(n - 1) / 2) std::abort();
  return {.value = ns / static_cast<double>(n), .ops = static_cast<double>(n)};
}

}  // namespace

ROUSE_BENCH_REGISTER(channel_oneshot) {
  rouse::bench::add({.name = "channel.oneshot",
                     .unit = "ns/op",
                     .baseline = "std::promise/std::future",
                     .impls = {{"rouse::channel::oneshot", oneshot_ns<rouse_oneshot>},
                               {"std::promise/std::future", oneshot_ns<std_promise>}},
                     .description = "create + send on one thread + recv on another, 1,000,000 times"});
}
