// rouse-bench: runs the workloads of BENCHMARKS.md side by side with their
// peers, interleaved, and reports medians and ratios.
//
//   rouse-bench [--quick] [--filter REGEX] [--rounds N] [--json FILE] [--report DIR] [--list]
#include <sys/resource.h>
#include <sys/utsname.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <regex>
#include <sstream>
#include <string>

#include "rouse/platform/counters.hpp"
#include "rouse/platform/cpu.hpp"
#include "rouse/platform/wait.hpp"
#include "runner.hpp"

namespace rouse::bench {

std::vector<workload>& registry() {
  static std::vector<workload> r;
  return r;
}
std::vector<skip_note>& skip_notes() {
  static std::vector<skip_note> s;
  return s;
}
void add(workload w) {
  // Several files may add implementations to one workload (its first
  // registration sets the unit and baseline; a later one must agree).
  for (workload& existing : registry()) {
    if (existing.name != w.name) continue;
    if (existing.unit != w.unit) {
      std::fprintf(stderr, "rouse-bench: workload %s registered with units %s and %s\n", w.name.c_str(),
                   existing.unit.c_str(), w.unit.c_str());
      std::abort();
    }
    for (impl& i : w.impls) existing.impls.push_back(std::move(i));
    if (existing.baseline.empty()) existing.baseline = w.baseline;
    if (!existing.summarize) existing.summarize = std::move(w.summarize);
    if (existing.description.empty()) existing.description = std::move(w.description);
    return;
  }
  registry().push_back(std::move(w));
}
void skipped(std::string pattern, std::string impl, std::string why) {
  skip_notes().push_back({std::move(pattern), std::move(impl), std::move(why)});
}
bool higher_is_better(const std::string& unit) { return unit == "msgs/s" || unit == "ops/s"; }

machine_info describe_machine() {
  machine_info m;
  m.cpus = platform::available_cpus();
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);) {
    if (line.rfind("model name", 0) == 0) {
      auto const colon = line.find(':');
      if (colon != std::string::npos) m.model = line.substr(colon + 2);
      break;
    }
  }
  utsname u{};
  if (::uname(&u) == 0) m.kernel = std::string(u.sysname) + " " + u.release;
#if defined(__clang__)
  m.compiler = "clang " __clang_version__;
#elif defined(__GNUC__)
  m.compiler = "g++ " __VERSION__;
#endif
  m.backend = platform::backend_name();
  return m;
}

namespace {

struct options {
  bool quick = false, list = false;
  int rounds = 0;
  std::string filter, json, report;
};

long voluntary_switches() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);  // the whole process: every thread, joined ones included
  return u.ru_nvcsw;
}

double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  std::size_t const n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

std::string json_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) continue;
    out += c;
  }
  return out;
}

std::string fmt(double v) {
  char buf[64];
  if (v != 0 && (std::abs(v) >= 1e7 || std::abs(v) < 1e-3)) std::snprintf(buf, sizeof buf, "%.4g", v);
  else std::snprintf(buf, sizeof buf, "%.4f", v);
  std::string s = buf;
  if (s.find('.') != std::string::npos && s.find('e') == std::string::npos) {
    while (s.back() == '0') s.pop_back();
    if (s.back() == '.') s.pop_back();
  }
  return s;
}

workload_result run_workload(const workload& w, const options& o) {
  int const rounds = o.rounds > 0 ? o.rounds : (w.rounds > 0 ? w.rounds : (o.quick ? 5 : 7));
  std::vector<std::int64_t> params = w.params.empty() ? std::vector<std::int64_t>{0} : w.params;
  workload_result out{&w, {}};
  for (std::int64_t param : params) {
    std::size_t const n = w.impls.size();
    std::vector<std::vector<double>> values(n);
    std::vector<std::map<std::string, std::vector<double>>> extras(n);
    run_context ctx{o.quick, param};
    for (int round = 0; round < rounds; ++round) {
      // Interleave, and rotate the order each round so no implementation
      // always runs first (cold caches) or last.
      for (std::size_t k = 0; k < n; ++k) {
        std::size_t const i = (k + static_cast<std::size_t>(round)) % n;
        long const csw0 = voluntary_switches();
        auto const sys0 = platform::syscall_counters();
        sample s = w.impls[i].run(ctx);
        long const csw1 = voluntary_switches();
        auto const sys1 = platform::syscall_counters();
        double const ops = s.ops > 0 ? s.ops : 1;
        values[i].push_back(s.value);
        auto& e = extras[i];
        e["csw_per_op"].push_back(static_cast<double>(csw1 - csw0) / ops);
        if (platform::syscall_counters_enabled() && w.impls[i].name.rfind("rouse::", 0) == 0) {
          e["wait_calls_per_op"].push_back(static_cast<double>(sys1.waits - sys0.waits) / ops);
          e["wake_calls_per_op"].push_back(static_cast<double>(sys1.wakes - sys0.wakes) / ops);
        }
        for (auto& [k2, v] : s.extra) e[k2].push_back(v);
      }
    }
    for (std::size_t i = 0; i < n; ++i) {
      impl_result r;
      r.impl = w.impls[i].name;
      r.param = param;
      r.median = median_of(values[i]);
      r.min = *std::min_element(values[i].begin(), values[i].end());
      r.max = *std::max_element(values[i].begin(), values[i].end());
      r.rounds = rounds;
      for (auto& [k, v] : extras[i]) r.extra[k] = median_of(v);
      out.results.push_back(std::move(r));
    }
  }
  if (w.summarize) w.summarize(out.results);
  return out;
}

void print_table(const workload_result& r) {
  const workload& w = *r.w;
  std::printf("\n%s  [%s]%s\n", w.name.c_str(), w.unit.c_str(),
              higher_is_better(w.unit) ? "  (higher is better)" : "  (lower is better)");
  for (const impl_result& x : r.results) {
    double base = 0;
    for (const impl_result& y : r.results)
      if (y.impl == w.baseline && y.param == x.param) base = y.median;
    std::string label = x.impl;
    if (!w.params.empty()) label += "  " + (w.param_name.empty() ? "param" : w.param_name) + "=" + std::to_string(x.param);
    std::printf("  %-44s median %12s  min %12s  max %12s", label.c_str(), fmt(x.median).c_str(),
                fmt(x.min).c_str(), fmt(x.max).c_str());
    if (base > 0) std::printf("  x%s", fmt(x.median / base).c_str());
    auto csw = x.extra.find("csw_per_op");
    if (csw != x.extra.end()) std::printf("  csw/op %s", fmt(csw->second).c_str());
    auto wt = x.extra.find("wait_calls_per_op");
    auto wk = x.extra.find("wake_calls_per_op");
    if (wt != x.extra.end()) std::printf("  waits/op %s wakes/op %s", fmt(wt->second).c_str(), fmt(wk->second).c_str());
    std::printf("\n");
  }
  std::fflush(stdout);
}

bool write_json(const std::string& file, const machine_info& m, const std::vector<workload_result>& all) {
  std::ofstream f(file);
  if (!f) return false;
  f << "{\n  \"machine\": {\"cpus\": " << m.cpus << ", \"model\": \"" << json_escape(m.model)
    << "\", \"kernel\": \"" << json_escape(m.kernel) << "\", \"compiler\": \"" << json_escape(m.compiler)
    << "\", \"wait_backend\": \"" << m.backend << "\"},\n  \"results\": [";
  bool first = true;
  for (const workload_result& r : all) {
    for (const impl_result& x : r.results) {
      f << (first ? "\n" : ",\n");
      first = false;
      f << "    {\"workload\": \"" << json_escape(r.w->name) << "\", \"impl\": \"" << json_escape(x.impl)
        << "\", \"unit\": \"" << r.w->unit << "\"";
      if (!r.w->params.empty()) f << ", \"param\": " << x.param;
      f << ", \"median\": " << fmt(x.median) << ", \"min\": " << fmt(x.min) << ", \"max\": " << fmt(x.max)
        << ", \"rounds\": " << x.rounds << ", \"extra\": {";
      bool fe = true;
      for (auto& [k, v] : x.extra) {
        f << (fe ? "" : ", ") << "\"" << json_escape(k) << "\": " << fmt(v);
        fe = false;
      }
      f << "}}";
    }
  }
  f << "\n  ]\n}\n";
  return static_cast<bool>(f);
}

int usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s [--quick] [--filter REGEX] [--rounds N] [--json FILE] [--report DIR] [--list]\n",
               argv0);
  return 2;
}

}  // namespace
}  // namespace rouse::bench

int main(int argc, char** argv) {
  using namespace rouse::bench;
  options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--quick") o.quick = true;
    else if (a == "--list") o.list = true;
    else if (a == "--filter") o.filter = value();
    else if (a == "--rounds") o.rounds = std::atoi(value().c_str());
    else if (a == "--json") o.json = value();
    else if (a == "--report") o.report = value();
    else if (a == "--help" || a == "-h") return usage(argv[0]), 0;
    else return usage(argv[0]);
  }
  std::regex filter;
  try {
    filter = std::regex(o.filter.empty() ? std::string(".*") : o.filter);
  } catch (const std::regex_error& e) {
    std::fprintf(stderr, "bad --filter: %s\n", e.what());
    return 2;
  }
  auto& reg = registry();
  std::stable_sort(reg.begin(), reg.end(), [](const workload& a, const workload& b) { return a.name < b.name; });
  machine_info const m = describe_machine();
  if (o.list) {
    for (const workload& w : reg)
      if (std::regex_search(w.name, filter)) std::printf("%s\n", w.name.c_str());
    return 0;
  }
  std::printf("rouse-bench: %u cpus, %s, %s, %s, wait backend %s%s\n", m.cpus, m.model.c_str(), m.kernel.c_str(),
              m.compiler.c_str(), m.backend.c_str(), o.quick ? ", --quick" : "");
  std::vector<workload_result> all;
  for (const workload& w : reg) {
    if (!std::regex_search(w.name, filter)) continue;
    all.push_back(run_workload(w, o));
    print_table(all.back());
  }
  for (const skip_note& s : skip_notes())
    std::printf("skipped: %s for %s: %s\n", s.impl.c_str(), s.pattern.c_str(), s.why.c_str());
  if (all.empty()) {
    std::fprintf(stderr, "no workload matches --filter '%s'\n", o.filter.c_str());
    return 1;
  }
  if (!o.json.empty() && !write_json(o.json, m, all)) {
    std::fprintf(stderr, "cannot write %s\n", o.json.c_str());
    return 1;
  }
  if (!o.report.empty() && !write_report(o.report, m, all)) {
    std::fprintf(stderr, "cannot write the report to %s\n", o.report.c_str());
    return 1;
  }
  return 0;
}
