// rouse-bench internals shared by the runner and the report writer.
#pragma once

#include <string>
#include <vector>

#include "harness.hpp"

namespace rouse::bench {

struct workload_result {
  const workload* w;
  std::vector<impl_result> results;  // impl-major order as registered, one per (impl, param)
};

struct machine_info {
  unsigned cpus = 0;
  std::string model, kernel, compiler, backend;
};

struct skip_note {
  std::string pattern, impl, why;
};

std::vector<workload>& registry();
std::vector<skip_note>& skip_notes();
machine_info describe_machine();

// Writes DIR/report.md (and charts beside it). Returns false on failure.
bool write_report(const std::string& dir, const machine_info& m, const std::vector<workload_result>& all);

}  // namespace rouse::bench
