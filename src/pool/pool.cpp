// rouse::pool's threads: starting, pinning, stopping and joining workers.
// The protocol itself is header code (rouse/pool/dispatch.hpp).
#include "rouse/pool/pool.hpp"

#include <sched.h>

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

// The CPUs this process may run on, in ascending order.
std::vector<int> allowed_cpus() {
  std::vector<int> cpus;
#if defined(__linux__)
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) == 0)
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu)
      if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
#endif
  return cpus;
}

void pin_this_thread(int cpu) noexcept {
#if defined(__linux__)
  if (cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  (void)::sched_setaffinity(0, sizeof set, &set);  // best effort (see pool_options::pin)
#else
  (void)cpu;
#endif
}

}  // namespace

pool::pool() : pool(pool_options{}) {}

pool::pool(pool_options options)
    : core_(participants_for(options) - 1, options.spin, options.max_spin), pieces_(core_.participants()) {
  std::vector<int> const cpus = options.pin ? allowed_cpus() : std::vector<int>{};
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
  pin_this_thread(cpu);
  detail::pool_current = this;
  core_.worker_loop();
}

}  // namespace rouse
