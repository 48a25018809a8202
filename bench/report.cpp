// rouse-bench --report DIR: DIR/report.md, one table per workload.
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "runner.hpp"

namespace rouse::bench {

bool write_report(const std::string& dir, const machine_info& m, const std::vector<workload_result>& all) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  std::ofstream f(dir + "/report.md");
  if (!f) return false;
  f << "# rouse-bench report\n\nMachine: " << m.cpus << " CPUs, " << m.model << ", " << m.kernel << ", "
    << m.compiler << ", wait backend " << m.backend << ".\n";
  for (const workload_result& r : all) {
    f << "\n## " << r.w->name << " (" << r.w->unit << ")\n\n| impl | median | min | max | ratio to "
      << r.w->baseline << " |\n|---|---|---|---|---|\n";
    for (const impl_result& x : r.results) {
      double base = 0;
      for (const impl_result& y : r.results)
        if (y.impl == r.w->baseline && y.param == x.param) base = y.median;
      f << "| " << x.impl << " | " << x.median << " | " << x.min << " | " << x.max << " | "
        << (base > 0 ? std::to_string(x.median / base) : std::string("-")) << " |\n";
    }
  }
  return static_cast<bool>(f);
}

}  // namespace rouse::bench
