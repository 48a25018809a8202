// rouse-bench: runs the workloads of docs/benchmarks.md side by side with their
// peers, interleaved, and reports medians and ratios.
//
//   rouse-bench [--quick] [--scale] [--filter REGEX] [--rounds N] [--time-limit S]
//               [--json FILE] [--report DIR] [--list]
//
// Method: every implementation of a workload runs once per round, in an order
// that rotates each round (A B C, B C A, C A B, ...); a workload runs its
// rounds (7, or 5 with --quick) and reports median, min and max per
// implementation. Beside each run the runner measures the process's voluntary
// context switches and, for implementations named rouse::*, rouse's wait and
// wake system calls, both per operation.
//
// Time guard: the run as a whole has a time limit (540 s, or 50 s with
// --quick; --time-limit 0 turns it off). Until 90% of it has passed, each
// workload gets an equal share of what is left of that 90% when it starts,
// and a workload that has used its share stops after its 5th round (never
// fewer). Workloads that start later run scaled down as with --quick (and
// say so); those that would start past the limit are not run and are listed.
#include <sys/resource.h>
#include <sys/utsname.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <regex>
#include <set>
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

namespace {
bool known_unit(const std::string& unit) {
  static const char* const units[] = {"ns/op",  "ns/roundtrip", "ns/generation", "us/generation",
                                      "ns/job", "msgs/s",       "ops/s"};
  return std::any_of(std::begin(units), std::end(units), [&](const char* u) { return unit == u; });
}
}  // namespace

void add(workload w) {
  if (!known_unit(w.unit))
    std::fprintf(stderr, "rouse-bench: workload %s has unit '%s', not one of the benchmark plan's units\n", w.name.c_str(),
                 w.unit.c_str());
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
    if (existing.params.empty()) existing.params = std::move(w.params);
    if (existing.param_name.empty()) existing.param_name = std::move(w.param_name);
    if (existing.rounds == 0) existing.rounds = w.rounds;
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
      if (colon != std::string::npos && colon + 2 <= line.size()) m.model = line.substr(colon + 2);
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

// --- formatting shared with the report ----------------------------------

std::string fmt(double v) {
  if (!std::isfinite(v)) return "-";
  char buf[64];
  double const a = std::abs(v);
  if (v != 0 && (a >= 1e7 || a < 1e-3))
    std::snprintf(buf, sizeof buf, "%.3g", v);
  else if (a >= 1000)
    std::snprintf(buf, sizeof buf, "%.0f", v);
  else if (a >= 100)
    std::snprintf(buf, sizeof buf, "%.1f", v);
  else if (a >= 1)
    std::snprintf(buf, sizeof buf, "%.2f", v);
  else
    std::snprintf(buf, sizeof buf, "%.4f", v);
  std::string s = buf;
  if (s.find('.') != std::string::npos && s.find('e') == std::string::npos) {
    while (s.back() == '0') s.pop_back();
    if (s.back() == '.') s.pop_back();
  }
  return s;
}

std::string param_label(std::int64_t p) {
  if (p >= 1024 && (p & (p - 1)) == 0) {
    int k = 0;
    while ((std::int64_t{1} << k) != p) ++k;
    return "2^" + std::to_string(k);
  }
  return std::to_string(p);
}

std::string family_of(const std::string& name) { return name.substr(0, name.find('.')); }
std::string case_of(const std::string& name) {
  auto const dot = name.find('.');
  return dot == std::string::npos ? name : name.substr(dot + 1);
}

double baseline_median(const workload_result& r, const impl_result& x) {
  for (const impl_result& y : r.results)
    if (y.impl == r.w->baseline && y.param == x.param && std::isfinite(y.median) && y.median > 0) return y.median;
  return 0;
}

double speedup(const workload_result& r, const impl_result& x) {
  double const base = baseline_median(r, x);
  if (base <= 0 || !std::isfinite(x.median) || x.median <= 0) return 0;
  return higher_is_better(r.w->unit) ? x.median / base : base / x.median;
}

bool is_standard_extra(const std::string& key) {
  return key == "csw_per_op" || key == "wait_calls_per_op" || key == "wake_calls_per_op";
}

summary_line summarize(const workload_result& r) {
  const workload& w = *r.w;
  summary_line s;
  s.workload = w.name;
  s.unit = w.unit;
  s.higher_better = higher_is_better(w.unit);
  if (r.results.empty()) return s;
  bool const has_params = !w.params.empty();
  std::int64_t const last = r.results.back().param;
  std::int64_t const first = r.results.front().param;
  auto better = [&](double a, double b) { return s.higher_better ? a > b : a < b; };

  const impl_result* best = nullptr;
  const impl_result* base = nullptr;
  for (const impl_result& x : r.results) {
    if (x.param != last) continue;
    if (x.impl == w.baseline) {
      if (std::isfinite(x.median)) base = &x;
      continue;
    }
    if (x.impl.rfind("rouse::", 0) != 0 || !std::isfinite(x.median)) continue;
    if (!best || better(x.median, best->median)) best = &x;
  }
  if (has_params) s.at = (w.param_name.empty() ? std::string("param") : w.param_name) + "=" + param_label(last);
  if (base) {
    s.baseline = base->impl;
    s.baseline_median = base->median;
  }
  std::string note;
  auto append = [&](const std::string& part) { note += (note.empty() ? "" : "; ") + part; };
  if (best) {
    s.rouse_impl = best->impl;
    s.rouse_median = best->median;
    if (base && base->median > 0) s.ratio = best->median / base->median;
    for (auto& [k, v] : best->extra) {
      if (is_standard_extra(k) || !std::isfinite(v)) continue;
      std::string part = k + " " + fmt(v);
      if (base) {
        auto const b = base->extra.find(k);
        if (b != base->extra.end() && std::isfinite(b->second)) part += " vs " + fmt(b->second);
      }
      append(part);
    }
    if (has_params && first != last) {
      // The other end of the x axis, for the same implementation.
      for (const impl_result& x : r.results)
        if (x.param == first && x.impl == best->impl) {
          double const b = baseline_median(r, x);
          if (b > 0 && std::isfinite(x.median))
            append("at " + (w.param_name.empty() ? std::string("param") : w.param_name) + "=" + param_label(first) +
                   ": ratio " + fmt(x.median / b));
        }
    }
  }
  s.note = note;
  return s;
}

std::string verdict(const summary_line& s) {
  if (!(s.ratio > 0) || !std::isfinite(s.ratio)) return "-";
  double const sp = s.higher_better ? s.ratio : 1 / s.ratio;
  char buf[64];
  if (std::abs(sp - 1) < 0.005) return "same";
  if (sp > 1)
    std::snprintf(buf, sizeof buf, "%.2fx better", sp);
  else
    std::snprintf(buf, sizeof buf, "%.2fx worse", 1 / sp);
  return buf;
}

namespace {

using seconds = std::chrono::duration<double>;

struct options {
  bool quick = false, list = false, scale = false;
  int rounds = 0;
  double time_limit = -1;  // < 0: the default for the mode
  std::string filter, json, report;
};

long voluntary_switches() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);  // the whole process: every thread, joined ones included
  return u.ru_nvcsw;
}

// Median of the finite values; NaN when there are none.
double median_of(std::vector<double> v) {
  v.erase(std::remove_if(v.begin(), v.end(), [](double x) { return !std::isfinite(x); }), v.end());
  if (v.empty()) return std::nan("");
  std::sort(v.begin(), v.end());
  std::size_t const n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}
double min_of(const std::vector<double>& v) {
  double m = std::nan("");
  for (double x : v)
    if (std::isfinite(x) && !(m <= x)) m = x;
  return m;
}
double max_of(const std::vector<double>& v) {
  double m = std::nan("");
  for (double x : v)
    if (std::isfinite(x) && !(m >= x)) m = x;
  return m;
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

// A JSON number, or null for NaN and infinities (which JSON cannot hold).
std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

workload_result run_workload(const workload& w, const options& o, clock::time_point deadline) {
  auto const started = clock::now();
  int const rounds = o.rounds > 0 ? o.rounds : (w.rounds > 0 ? w.rounds : (o.quick ? 5 : 7));
  int const min_rounds = std::min(rounds, 5);
  std::vector<std::int64_t> params = w.params.empty() ? std::vector<std::int64_t>{0} : w.params;
  workload_result out{&w, {}, 0};
  for (std::size_t p = 0; p < params.size(); ++p) {
    std::int64_t const param = params[p];
    // This param's share of the workload's time.
    auto const now = clock::now();
    auto const param_deadline =
        now + (deadline > now ? (deadline - now) / static_cast<long>(params.size() - p) : clock::duration{0});
    std::size_t const n = w.impls.size();
    std::vector<std::vector<double>> values(n);
    std::vector<std::map<std::string, std::vector<double>>> extras(n);
    std::vector<bool> failed(n, false);  // threw: not run again for this param
    run_context ctx{o.quick, param};
    for (int round = 0; round < rounds; ++round) {
      // Interleave, and rotate the order each round so no implementation
      // always runs first (cold caches) or last.
      for (std::size_t k = 0; k < n; ++k) {
        std::size_t const i = (k + static_cast<std::size_t>(round)) % n;
        if (failed[i]) continue;
        long const csw0 = voluntary_switches();
        auto const sys0 = platform::syscall_counters();
        sample s;
        try {
          s = w.impls[i].run(ctx);
        } catch (const std::exception& e) {
          if (round == 0 && p == 0)
            std::fprintf(stderr, "rouse-bench: %s / %s failed: %s\n", w.name.c_str(), w.impls[i].name.c_str(),
                         e.what());
          failed[i] = true;
          continue;
        }
        long const csw1 = voluntary_switches();
        auto const sys1 = platform::syscall_counters();
        double const ops = s.ops > 0 && std::isfinite(s.ops) ? s.ops : 1;
        values[i].push_back(s.value);
        auto& e = extras[i];
        e["csw_per_op"].push_back(static_cast<double>(csw1 - csw0) / ops);
        if (platform::syscall_counters_enabled() && w.impls[i].name.rfind("rouse::", 0) == 0) {
          e["wait_calls_per_op"].push_back(static_cast<double>(sys1.waits - sys0.waits) / ops);
          e["wake_calls_per_op"].push_back(static_cast<double>(sys1.wakes - sys0.wakes) / ops);
        }
        for (auto& [k2, v] : s.extra) e[k2].push_back(v);
      }
      if (round + 1 >= min_rounds && clock::now() >= param_deadline) break;
    }
    for (std::size_t i = 0; i < n; ++i) {
      impl_result r;
      r.impl = w.impls[i].name;
      r.param = param;
      r.median = median_of(values[i]);
      r.min = min_of(values[i]);
      r.max = max_of(values[i]);
      r.rounds = static_cast<int>(
          std::count_if(values[i].begin(), values[i].end(), [](double v) { return std::isfinite(v); }));
      for (auto& [k, v] : extras[i]) {
        double const m = median_of(v);
        if (std::isfinite(m)) r.extra[k] = m;
      }
      out.results.push_back(std::move(r));
    }
  }
  if (w.summarize) w.summarize(out.results);
  out.seconds = seconds(clock::now() - started).count();
  return out;
}

void print_table(const workload_result& r) {
  const workload& w = *r.w;
  std::printf("\n%s  [%s]%s\n", w.name.c_str(), w.unit.c_str(),
              higher_is_better(w.unit) ? "  (higher is better)" : "  (lower is better)");
  int rounds = 0;
  for (const impl_result& x : r.results) {
    rounds = std::max(rounds, x.rounds);
    std::string label = x.impl;
    if (!w.params.empty())
      label += "  " + (w.param_name.empty() ? std::string("param") : w.param_name) + "=" + param_label(x.param);
    std::printf("  %-40s median %10s  min %10s  max %10s", label.c_str(), fmt(x.median).c_str(), fmt(x.min).c_str(),
                fmt(x.max).c_str());
    double const base = baseline_median(r, x);
    if (base > 0 && std::isfinite(x.median))
      std::printf("  x%-6s", fmt(x.median / base).c_str());
    else
      std::printf("  %-7s", "");
    auto csw = x.extra.find("csw_per_op");
    if (csw != x.extra.end()) std::printf("  csw/op %s", fmt(csw->second).c_str());
    auto wt = x.extra.find("wait_calls_per_op");
    auto wk = x.extra.find("wake_calls_per_op");
    if (wt != x.extra.end()) std::printf("  waits/op %s", fmt(wt->second).c_str());
    if (wk != x.extra.end()) std::printf("  wakes/op %s", fmt(wk->second).c_str());
    for (auto& [k, v] : x.extra)
      if (!is_standard_extra(k)) std::printf("  %s %s", k.c_str(), fmt(v).c_str());
    std::printf("\n");
  }
  std::printf("  (%d rounds, %.1f s%s; x = ratio to %s)\n", rounds, r.seconds,
              r.scaled_down ? ", scaled down as with --quick: time limit" : "", w.baseline.c_str());
  std::fflush(stdout);
}

void print_summary(const std::vector<workload_result>& all) {
  struct row {
    std::string cells[7];
  };
  std::vector<row> rows;
  rows.push_back({{"workload", "unit", "rouse best", "median", "baseline", "median", "ratio (rouse/baseline)"}});
  std::vector<std::string> notes;
  for (const workload_result& r : all) {
    summary_line const s = summarize(r);
    std::string name = s.workload + (s.at.empty() ? "" : " @" + s.at);
    std::string ratio = s.ratio > 0 ? fmt(s.ratio) + "  " + verdict(s) : "-";
    rows.push_back({{name, s.unit + (s.higher_better ? " (higher)" : " (lower)"),
                     s.rouse_impl.empty() ? "-" : s.rouse_impl, s.rouse_impl.empty() ? "-" : fmt(s.rouse_median),
                     s.baseline.empty() ? "-" : s.baseline, s.baseline.empty() ? "-" : fmt(s.baseline_median), ratio}});
    if (!s.note.empty()) notes.push_back(s.workload + ": " + s.note);
  }
  std::size_t width[7] = {};
  for (const row& r : rows)
    for (int c = 0; c < 7; ++c) width[c] = std::max(width[c], r.cells[c].size());
  std::printf("\n=== summary: rouse's best implementation against each workload's baseline ===\n");
  for (std::size_t k = 0; k < rows.size(); ++k) {
    for (int c = 0; c < 7; ++c) {
      bool const right = c == 3 || c == 5;
      std::printf(right ? "%*s  " : "%-*s  ", static_cast<int>(width[c]), rows[k].cells[c].c_str());
    }
    std::printf("\n");
    if (k == 0) {
      std::size_t total = 0;
      for (std::size_t c : width) total += c + 2;
      std::printf("%s\n", std::string(total, '-').c_str());
    }
  }
  for (const std::string& n : notes) std::printf("  %s\n", n.c_str());
  std::fflush(stdout);
}

std::string json_speeds(const std::vector<cpu_speed>& speeds) {
  std::string s = "[";
  for (const cpu_speed& c : speeds)
    s += (s.size() > 1 ? ", " : "") + std::string("[") + std::to_string(c.cpu) + ", " + json_number(c.us) + "]";
  return s + "]";
}

bool write_json(const std::string& file, const run_info& info, const std::vector<workload_result>& all) {
  const machine_info& m = info.machine;
  std::error_code ec;
  auto const parent = std::filesystem::path(file).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  std::ofstream f(file);
  if (!f) return false;
  f << "{\n  \"machine\": {\"cpus\": " << m.cpus << ", \"model\": \"" << json_escape(m.model) << "\", \"kernel\": \""
    << json_escape(m.kernel) << "\", \"compiler\": \"" << json_escape(m.compiler) << "\", \"wait_backend\": \""
    << json_escape(m.backend) << "\", \"cpu_speed_us_start\": " << json_speeds(info.speeds_start)
    << ", \"cpu_speed_us_end\": " << json_speeds(info.speeds_end) << "},\n  \"results\": [";
  bool first = true;
  for (const workload_result& r : all) {
    for (const impl_result& x : r.results) {
      if (!std::isfinite(x.median)) continue;  // failed every round: nothing to report
      f << (first ? "\n" : ",\n");
      first = false;
      f << "    {\"workload\": \"" << json_escape(r.w->name) << "\", \"impl\": \"" << json_escape(x.impl)
        << "\", \"unit\": \"" << json_escape(r.w->unit) << "\"";
      if (!r.w->params.empty()) f << ", \"param\": " << x.param;
      f << ", \"median\": " << json_number(x.median) << ", \"min\": " << json_number(x.min)
        << ", \"max\": " << json_number(x.max) << ", \"rounds\": " << x.rounds << ", \"extra\": {";
      bool fe = true;
      for (auto& [k, v] : x.extra) {
        if (!std::isfinite(v)) continue;
        f << (fe ? "" : ", ") << "\"" << json_escape(k) << "\": " << json_number(v);
        fe = false;
      }
      if (r.scaled_down) f << (fe ? "" : ", ") << "\"scaled_down\": 1";
      f << "}}";
    }
  }
  f << "\n  ]\n}\n";
  f.close();
  return static_cast<bool>(f);
}

std::string utc_now() {
  std::time_t const t = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", &tm);
  return buf;
}

int usage(const char* argv0, FILE* to) {
  std::fprintf(to,
               "usage: %s [--quick] [--scale] [--filter REGEX] [--rounds N] [--time-limit SECONDS]\n"
               "          [--json FILE] [--report DIR] [--list]\n"
               "  --quick         smaller runs and 5 rounds, for smoke runs (time limit 50 s)\n"
               "  --scale         also the workloads sized for many cores (8 and 16 threads)\n"
               "  --filter REGEX  only workloads whose name matches (std::regex, searched)\n"
               "  --rounds N      rounds per workload (default 7, --quick 5)\n"
               "  --time-limit S  limit for the whole run (default 540 s, --quick 50 s; 0: none);\n"
               "                  past 90%% of it workloads run scaled down, past it they are skipped\n"
               "  --json FILE     results as JSON (docs/rouse-bench.md)\n"
               "  --report DIR    DIR/report.md with tables and gnuplot SVG charts\n"
               "  --list          print the workload names and exit\n",
               argv0);
  return to == stdout ? 0 : 2;
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
    auto number = [&](double lo) {
      std::string const v = value();
      char* end = nullptr;
      double const d = std::strtod(v.c_str(), &end);
      if (v.empty() || *end != '\0' || !std::isfinite(d) || d < lo) {
        std::fprintf(stderr, "%s: bad value '%s'\n", a.c_str(), v.c_str());
        std::exit(2);
      }
      return d;
    };
    if (a == "--quick")
      o.quick = true;
    else if (a == "--scale")
      o.scale = true;
    else if (a == "--list")
      o.list = true;
    else if (a == "--filter")
      o.filter = value();
    else if (a == "--rounds")
      o.rounds = static_cast<int>(number(1));
    else if (a == "--time-limit")
      o.time_limit = number(0);
    else if (a == "--json")
      o.json = value();
    else if (a == "--report")
      o.report = value();
    else if (a == "--help" || a == "-h")
      return usage(argv[0], stdout);
    else
      return usage(argv[0], stderr);
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
  auto const wanted = [&](const workload& w) { return (o.scale || !w.scale) && std::regex_search(w.name, filter); };
  if (o.list) {
    for (const workload& w : reg)
      if (wanted(w)) std::printf("%s\n", w.name.c_str());
    return 0;
  }
  std::vector<const workload*> selected;
  for (const workload& w : reg)
    if (wanted(w) && !w.impls.empty()) selected.push_back(&w);
  if (selected.empty()) {
    std::fprintf(stderr, "no workload matches --filter '%s'%s\n", o.filter.c_str(),
                 o.scale ? "" : " (the 8- and 16-thread workloads need --scale)");
    return 1;
  }

  run_info info;
  info.machine = describe_machine();
  info.date = utc_now();
  info.quick = o.quick;
  info.time_limit_s = o.time_limit >= 0 ? o.time_limit : (o.quick ? 50 : 540);
  const machine_info& m = info.machine;
  std::printf("rouse-bench: %u cpus, %s, %s, %s, wait backend %s, %s run", m.cpus, m.model.c_str(), m.kernel.c_str(),
              m.compiler.c_str(), m.backend.c_str(), o.quick ? "quick" : "full");
  if (info.time_limit_s > 0) std::printf(", time limit %.0f s", info.time_limit_s);
  std::printf("\n");
  info.speeds_start = probe_cpu_speeds();
  std::printf("cpu speeds at the start (2^20 counting steps, pinned, best of 5): %s\n",
              describe_cpu_speeds(info.speeds_start).c_str());

  auto const start = clock::now();
  bool const limited = info.time_limit_s > 0;
  auto const after = [&](double fraction) {
    return start + std::chrono::duration_cast<clock::duration>(seconds(info.time_limit_s * fraction));
  };
  auto const soft = limited ? after(0.9) : clock::time_point::max();
  auto const hard = limited ? after(1.0) : clock::time_point::max();
  std::vector<workload_result> all;
  for (std::size_t k = 0; k < selected.size(); ++k) {
    const workload& w = *selected[k];
    auto const now = clock::now();
    if (now >= hard) {
      info.not_run.push_back(w.name);
      continue;
    }
    options wo = o;
    clock::time_point share = clock::time_point::max();
    if (now >= soft) {
      wo.quick = true;  // late: scaled down, at its minimum rounds
      share = now;
    } else if (limited) {
      share = now + (soft - now) / static_cast<long>(selected.size() - k);
    }
    all.push_back(run_workload(w, wo, share));
    all.back().scaled_down = wo.quick && !o.quick;
    if (all.back().scaled_down) info.scaled_down.push_back(w.name);
    print_table(all.back());
  }
  info.elapsed_s = seconds(clock::now() - start).count();
  info.speeds_end = probe_cpu_speeds();
  std::printf("cpu speeds at the end: %s\n", describe_cpu_speeds(info.speeds_end).c_str());
  info.skipped = skip_notes();

  print_summary(all);
  for (const skip_note& s : info.skipped)
    std::printf("skipped: %s for %s: %s\n", s.impl.c_str(), s.pattern.c_str(), s.why.c_str());
  for (const std::string& n : info.scaled_down)
    std::printf("scaled down as with --quick: %s (90%% of the %.0f s time limit had passed)\n", n.c_str(),
                info.time_limit_s);
  for (const std::string& n : info.not_run)
    std::printf("not run: %s (the %.0f s time limit was reached)\n", n.c_str(), info.time_limit_s);
  std::printf("elapsed: %.1f s for %zu workloads\n", info.elapsed_s, all.size());
  std::fflush(stdout);

  int rc = 0;
  if (!o.json.empty() && !write_json(o.json, info, all)) {
    std::fprintf(stderr, "cannot write %s\n", o.json.c_str());
    rc = 1;
  }
  if (!o.report.empty() && !write_report(o.report, info, all)) {
    std::fprintf(stderr, "cannot write the report to %s\n", o.report.c_str());
    rc = 1;
  }
  return rc;
}
