// rouse::pool's threads: starting, pinning, stopping and joining workers.
// The protocol itself is header code (rouse/pool/dispatch.hpp).
#include "rouse/pool/pool.hpp"

#include <vector>

#include "rouse/platform/cpu.hpp"

namespace rouse {

static_assert(sizeof(detail::pool_dispatch) == 384);
static_assert(sizeof(pool) == sizeof(detail::pool_dispatch) + 128 + sizeof(detail::pool_pieces),
              "the dispatch core, the thread vector and the piece cursors, each on their own lines");

namespace {

unsigned participants_for(const pool_options& options) noexcept {
  unsigned const n = options.threads != 0 ? options.threads : platform::available_cpus();
  return n == 0 ? 1 : n;
}

}  // namespace

pool::pool() : pool(pool_options{}) {}

pool::pool(pool_options options)
    : core_(participants_for(options) - 1, options.spin, options.max_spin), pieces_(core_.participants()) {
  std::vector<int> const cpus = options.pin ? platform::allowed_cpu_list() : std::vector<int>{};
  threads_.reserve(core_.workers());
  try {
    for (unsigned worker = 1; worker <= core_.workers(); ++worker) {
      int const cpu = cpus.empty() ? -1 : cpus[worker % cpus.size()];
      threads_.emplace_back([this, cpu] { worker_main(cpu); });
    }
  } catch (...) {
    // A thread could not be started: stop the ones that were.
    core_.stop();
    for (std::thread& t : threads_) t.join();
    throw;
  }
}

pool::~pool() {
  ROUSE_CHECK_USAGE(!nested(), "rouse::pool", "destroyed from inside one of its own jobs");
  core_.stop();
  for (std::thread& t : threads_) t.join();
}

void pool::worker_main(int cpu) {
  (void)platform::pin_this_thread(cpu);  // best effort (see pool_options::pin)
  detail::pool_mark const own{this, nullptr};
  detail::pool_marks = &own;
  core_.worker_loop();
  detail::pool_marks = nullptr;
}

}  // namespace rouse
