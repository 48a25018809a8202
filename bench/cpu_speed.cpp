// The speed of each CPU this process may use, measured at the start and at
// the end of a run and written into the report's header. On a shared VM a
// vCPU can run for minutes at half the speed of its neighbour (its core
// shared with another guest): a parallel workload's ratio then depends on
// which CPU each thread ran on, and the header says so instead of leaving
// the reader to guess.
//
// One probe: a thread pinned to the CPU runs 2^20 steps of the
// count.breakeven loop (a dependent add per step, one cycle each on the
// machines measured here), 5 times; the best time counts. 2 CPUs: ~5 ms.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <thread>

#include "rouse/platform/cpu.hpp"
#include "runner.hpp"

namespace rouse::bench {

std::vector<cpu_speed> probe_cpu_speeds() {
  std::vector<cpu_speed> out;
  for (int const cpu : rouse::platform::allowed_cpu_list()) {
    if (out.size() >= 256) break;
    double best = -1;
    std::thread probe([cpu, &best] {
      if (!rouse::platform::pin_this_thread(cpu)) return;
      for (int k = 0; k < 5; ++k) {
        auto const start = std::chrono::steady_clock::now();
        std::uint64_t const got = count_steps(std::uint64_t{1} << 20);
        double const us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
        if (got == (std::uint64_t{1} << 20) && (best < 0 || us < best)) best = us;
      }
    });
    probe.join();
    if (best > 0) out.push_back({cpu, best});
  }
  return out;
}

std::string describe_cpu_speeds(const std::vector<cpu_speed>& speeds) {
  if (speeds.empty()) return "not measured";
  std::string s;
  double lo = speeds.front().us, hi = lo;
  for (const cpu_speed& c : speeds) {
    if (!s.empty()) s += ", ";
    s += "cpu" + std::to_string(c.cpu) + " " + fmt(c.us);
    lo = std::min(lo, c.us);
    hi = std::max(hi, c.us);
  }
  s += " µs";
  if (hi > 1.15 * lo) s += " — uneven: the slowest CPU takes " + fmt(hi / lo) + "× as long as the fastest";
  return s;
}

}  // namespace rouse::bench
