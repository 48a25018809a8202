// channel.spsc: rouse::channel::spsc's implementation of the workload (the
// peers and the baseline, "mutex+condvar ring", are registered with the other
// channel workloads; the runner merges implementations by workload name).
//
//   channel.spsc   bounded capacity 1024, 64-bit messages, 4,000,000 in total,
//                  1 producer and 1 consumer, blocking send/recv      msgs/s
#include <atomic>
#include <cstdint>

#include "harness.hpp"
#include "rouse/channel/spsc.hpp"

namespace {

using rouse::bench::run_context;
using rouse::bench::sample;

sample spsc_rate(const run_context& ctx) {
  std::int64_t const messages = ctx.scaled(4'000'000);
  // Named handles, not a structured binding: clang 14 cannot capture
  // structured bindings in a lambda.
  auto channel = rouse::channel::spsc<std::uint64_t>(1024);
  auto& tx = channel.first;
  auto& rx = channel.second;
  // The consumer sums into a local of its own and publishes it once at the
  // end, as the other channel workloads do: a sum on this frame, written per
  // message, would share a cache line with the handles the producer reads
  // per message.
  std::atomic<std::uint64_t> sum{0};
  double const ns = rouse::bench::run_threads(2, [&](unsigned index) {
    if (index == 0) {
      for (std::int64_t i = 0; i < messages; ++i) {
        if (!tx.send(static_cast<std::uint64_t>(i))) std::abort();
      }
    } else {
      std::uint64_t local = 0;
      for (std::int64_t i = 0; i < messages; ++i) {
        auto r = rx.recv();
        if (!r) std::abort();
        local += *r;
      }
      sum.store(local, std::memory_order_relaxed);
    }
  });
  std::uint64_t const total = sum.load(std::memory_order_relaxed);
  rouse::bench::keep(total);
  if (total != static_cast<std::uint64_t>(messages) * static_cast<std::uint64_t>(messages - 1) / 2) std::abort();
  return {.value = static_cast<double>(messages) * 1e9 / ns, .ops = static_cast<double>(messages)};
}

}  // namespace

ROUSE_BENCH_REGISTER(channel_spsc_rouse) {
  rouse::bench::add({.name = "channel.spsc",
                     .unit = "msgs/s",
                     .baseline = "mutex+condvar ring",
                     .impls = {{"rouse::channel::spsc", spsc_rate}}});
}
