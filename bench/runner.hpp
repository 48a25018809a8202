// rouse-bench internals shared by the runner (main.cpp) and the report
// writer (report.cpp). Workload files need only harness.hpp.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "harness.hpp"

namespace rouse::bench {

struct workload_result {
  const workload* w;
  std::vector<impl_result> results;  // param-major: for each param, one per impl as registered
  double seconds = 0;                // wall time the workload took, all rounds
  bool scaled_down = false;          // run as with --quick because the time limit was near
};

struct machine_info {
  unsigned cpus = 0;
  std::string model, kernel, compiler, backend;
};

struct skip_note {
  std::string pattern, impl, why;
};

// The count.breakeven job: n steps of a dependent register add (count.cpp).
std::uint64_t count_steps(std::uint64_t n);

// How long one CPU took for 2^20 steps of the count.breakeven loop, pinned
// (cpu_speed.cpp).
struct cpu_speed {
  int cpu;
  double us;
};
std::vector<cpu_speed> probe_cpu_speeds();
// "cpu0 283, cpu1 503 µs — uneven: ..." (the note when the slowest takes
// over 1.15× as long as the fastest).
std::string describe_cpu_speeds(const std::vector<cpu_speed>& speeds);

// What the report says about the run as a whole.
struct run_info {
  machine_info machine;
  std::string date;  // UTC, ISO 8601
  bool quick = false;
  double elapsed_s = 0;                             // the whole run
  double time_limit_s = 0;                          // 0: none
  std::vector<std::string> scaled_down;             // workloads run as with --quick because the limit was near
  std::vector<std::string> not_run;                 // workloads dropped because the time limit was reached
  std::vector<skip_note> skipped;                   // peers not built here
  std::vector<cpu_speed> speeds_start, speeds_end;  // probe_cpu_speeds() before and after
};

// One line of the summary: rouse's best implementation against the baseline.
struct summary_line {
  std::string workload, unit;
  bool higher_better = false;
  std::string rouse_impl;  // empty: no rouse implementation ran
  double rouse_median = 0;
  std::string baseline;  // the workload's baseline; empty if it did not run
  double baseline_median = 0;
  double ratio = 0;  // rouse_median / baseline_median; 0 when either is missing
  std::string at;    // for param workloads: the param the numbers are taken at
  std::string note;  // notable extras, the ratio at the other end of the params
};

std::vector<workload>& registry();
std::vector<skip_note>& skip_notes();
machine_info describe_machine();

// Formatting shared by the console and the report.
std::string fmt(double v);                           // a short human number; "-" if not finite
std::string param_label(std::int64_t p);             // 1024 -> "2^10", 1000 -> "1000"
std::string family_of(const std::string& workload);  // "mutex.contended4" -> "mutex"
std::string case_of(const std::string& workload);    // "mutex.contended4" -> "contended4"
// The baseline's median for the same param as `x`, or 0 when there is none.
double baseline_median(const workload_result& r, const impl_result& x);
// How many times better `x` is than the baseline (>1: better), or 0 when unknown.
double speedup(const workload_result& r, const impl_result& x);
// True for the extras every run gets (csw_per_op, wait_calls_per_op, wake_calls_per_op).
bool is_standard_extra(const std::string& key);
summary_line summarize(const workload_result& r);
// "2.31x better", "1.25x worse", "same", or "-".
std::string verdict(const summary_line& s);

// Writes DIR/report.md and the charts beside it (DIR/<family>.gp, .dat, .svg,
// drawn by gnuplot when it is installed). Returns false when DIR/report.md
// cannot be written; a missing gnuplot only prints a note.
bool write_report(const std::string& dir, const run_info& info, const std::vector<workload_result>& all);

}  // namespace rouse::bench
