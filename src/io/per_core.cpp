// rouse::io::per_core: the threads of a run, its stop source, its first error.
#include "rouse/io/per_core.hpp"

#include <algorithm>
#include <exception>
#include <thread>
#include <vector>

#include "rouse/latch.hpp"
#include "rouse/mutex.hpp"
#include "rouse/platform/cpu.hpp"

namespace rouse::io {

per_core::per_core(const options& opts)
    : cores_(opts.cores != 0 ? opts.cores : std::max(1u, std::thread::hardware_concurrency())),
      backend_(opts.backend),
      pin_(opts.pin) {}

void per_core::run_cores(const std::function<async::task<void>(core_context&)>& f) {
  // Ordering: acquire: pairs with the release that ended the previous run
  // (a debug check only: run() is not meant to be called concurrently).
  [[maybe_unused]] bool const was_running = running_.exchange(true, std::memory_order_acquire);
  ROUSE_CHECK_USAGE(!was_running, "rouse::io::per_core", "run() while another run() is in progress");
  struct running_reset {
    std::atomic<bool>& flag;
    ~running_reset() { flag.store(false, std::memory_order_release); }  // Ordering: see the exchange
  } reset{running_};

  // Each core makes its loop on its own thread (pinned first: the loop's
  // memory is the core's), and destroys it there once no core can touch it
  // any more. Every core knows every loop before any task starts.
  std::vector<std::unique_ptr<event_loop>> loops(cores_);

  // This run's stop: an error on one core stops the others without making
  // the runtime's own request (which is final).
  async::inplace_stop_source run_stop;
  async::inplace_stop_callback link(stop_.get_token(), detail::stop_forward{&run_stop});

  std::vector<std::unique_ptr<core_context>> contexts;
  contexts.reserve(cores_);
  for (std::size_t i = 0; i < cores_; ++i)
    contexts.push_back(std::unique_ptr<core_context>(new core_context(i, &loops, &run_stop)));

  std::vector<int> const cpus = pin_ ? platform::allowed_cpu_list() : std::vector<int>{};
  ::rouse::mutex error_lock;
  std::exception_ptr first_error;  // under error_lock
  // Cores whose task has not finished. Ordering: acq_rel on the decrement,
  // acquire in the loops' check: every core's task has ended before a loop
  // leaves.
  std::atomic<std::size_t> unfinished{cores_};

  // The threads start together once all exist: if one cannot be made, none
  // runs f (a core could wait forever on a core that never ran).
  ::rouse::latch start(1);
  bool start_failed = false;  // written before start's count_down
  // Every loop is made (or one failed: then no core runs f), and later,
  // every core is done with every loop (the last core to finish calls
  // finish() on all of them) before any loop is destroyed.
  ::rouse::latch made(static_cast<std::ptrdiff_t>(cores_));
  ::rouse::latch done(static_cast<std::ptrdiff_t>(cores_));
  std::atomic<bool> make_failed{false};  // Ordering: the latch orders it

  auto record = [&](std::exception_ptr e) {
    error_lock.lock();
    if (!first_error) first_error = std::move(e);
    error_lock.unlock();
  };

  auto core_main = [&](std::size_t i) {
    start.wait();
    if (start_failed) return;
    core_context& ctx = *contexts[i];
    if (!cpus.empty()) {
      int const cpu = cpus[i % cpus.size()];
      if (platform::pin_this_thread(cpu)) ctx.cpu_ = cpu;
    }
    try {
      loops[i] = std::make_unique<event_loop>(backend_);
    } catch (...) {
      record(std::current_exception());
      make_failed.store(true, std::memory_order_relaxed);
    }
    made.arrive_and_wait();
    if (!make_failed.load(std::memory_order_relaxed)) {
      event_loop& loop = *loops[i];
      try {
        loop.run_until_complete(f(ctx), run_stop.get_token());
      } catch (const async::operation_stopped&) {
        // Completed as stopped: not an error.
      } catch (...) {
        record(std::current_exception());
        run_stop.request_stop();
      }
      // The last core to finish lets every loop leave; until then this loop
      // serves what the other cores send it (submit_to, wakes).
      if (unfinished.fetch_sub(1, std::memory_order_acq_rel) == 1)
        // finish() wakes a sleeping loop (the run_loop's sleep handshake).
        for (auto& l : loops) l->finish();
      loop.executor().run_until([&] { return unfinished.load(std::memory_order_acquire) == 0; });
    }
    done.arrive_and_wait();
    loops[i].reset();
  };

  std::vector<std::thread> threads;
  threads.reserve(cores_);
  try {
    for (std::size_t i = 0; i < cores_; ++i) threads.emplace_back(core_main, i);
  } catch (...) {
    start_failed = true;
    start.count_down();
    for (auto& t : threads) t.join();
    throw;
  }
  start.count_down();
  for (auto& t : threads) t.join();
  if (first_error) std::rethrow_exception(first_error);
}

}  // namespace rouse::io
