// rouse-bench --report DIR: DIR/report.md and one chart per workload family.
//
// report.md: a header naming the machine and the run, a summary table (one
// line per workload: rouse's best implementation against the baseline), the
// peers that were skipped, then one section per family with its chart(s) and
// one table per workload.
//
// Charts are drawn by gnuplot (Debian gnuplot-nox) from files written beside
// the report: for each family with point workloads, <family>.dat and
// <family>.gp give <family>.svg, a bar chart of each implementation's speed
// relative to the workload's baseline; for each workload with params,
// <family>.<case>.{dat,gp,svg} give a line chart of the medians against the
// param on a log2 axis. Without gnuplot the data and scripts are still
// written, the report says the charts were not drawn, and a note is printed.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "runner.hpp"

namespace rouse::bench {
namespace {

// --- small helpers ------------------------------------------------------

// Inline code in Markdown: impl names such as std::atomic<u32>::wait would
// otherwise be read as HTML tags.
std::string code(const std::string& s) {
  std::string out = "`";
  for (char c : s) out += c == '|' ? std::string("\\|") : std::string(1, c);
  return out + "`";
}

// A string literal for a gnuplot script.
std::string gp_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// A number for a gnuplot data file (NaN marks a missing point).
std::string gp_number(double v) {
  if (!std::isfinite(v)) return "NaN";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

// A file name part made of [A-Za-z0-9._-] only.
std::string file_part(const std::string& s) {
  std::string out;
  for (char c : s) out += (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-') ? c : '_';
  return out;
}

std::string param_name(const workload& w) { return w.param_name.empty() ? std::string("param") : w.param_name; }

// Every implementation that ran in `rs`, in registration order, taking the
// workload with the most implementations first (so a family's charts keep
// one order and one colour per implementation).
std::vector<std::string> impls_in_order(std::vector<const workload_result*> rs) {
  std::stable_sort(rs.begin(), rs.end(), [](const workload_result* a, const workload_result* b) {
    return a->w->impls.size() > b->w->impls.size();
  });
  std::vector<std::string> names;
  for (const workload_result* r : rs)
    for (const impl_result& x : r->results)
      if (std::find(names.begin(), names.end(), x.impl) == names.end()) names.push_back(x.impl);
  return names;
}

// As impls_in_order, less those without a single result (nothing to draw).
std::vector<std::string> drawable_impls(const std::vector<const workload_result*>& rs) {
  std::vector<std::string> names = impls_in_order(rs);
  std::erase_if(names, [&](const std::string& name) {
    for (const workload_result* r : rs)
      for (const impl_result& x : r->results)
        if (x.impl == name && std::isfinite(x.median)) return false;
    return true;
  });
  return names;
}

std::string secs(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", s);
  return buf;
}

bool have_gnuplot() {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/bin:/bin");
  for (std::string d; std::getline(dirs, d, ':');) {
    std::string const f = (d.empty() ? std::string(".") : d) + "/gnuplot";
    if (::access(f.c_str(), X_OK) == 0) return true;
  }
  return false;
}

// Runs `gnuplot script` in `dir`. True when it exited with status 0.
bool run_gnuplot(const std::string& dir, const std::string& script) {
  std::fflush(nullptr);
  pid_t const pid = ::fork();
  if (pid < 0) return false;
  if (pid == 0) {
    if (::chdir(dir.c_str()) != 0) ::_exit(126);
    ::execlp("gnuplot", "gnuplot", script.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return false;
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// SVG, and no "enhanced" text: impl names hold _ and ^, which it would
// read as sub- and superscripts.
std::string terminal(int width, int height) {
  char buf[200];
  std::snprintf(buf, sizeof buf,
                "set terminal svg size %d,%d dynamic noenhanced font \"sans,12\" background \"white\"\n", width,
                height);
  return buf;
}

// --- charts -------------------------------------------------------------

struct chart {
  std::string svg;  // file name in DIR
  std::string gp;   // the script that draws it
  std::string title;
};

// Bar chart: one cluster per point workload of the family, one bar per
// implementation, height = speed relative to the workload's baseline.
bool write_bar_chart(const std::string& dir, const std::string& family, const std::vector<const workload_result*>& rs,
                     chart& out) {
  std::vector<std::string> const impls = drawable_impls(rs);
  std::string const stem = file_part(family);
  std::ofstream dat(dir + "/" + stem + ".dat");
  dat << "# workload";
  for (const std::string& i : impls) dat << "\t" << i;
  dat << "\n# speed relative to the workload's baseline (baseline = 1, higher is better); NaN: not run\n";
  double lo = 1, hi = 1;
  for (const workload_result* r : rs) {
    dat << case_of(r->w->name);
    for (const std::string& i : impls) {
      double v = std::nan("");
      for (const impl_result& x : r->results)
        if (x.impl == i) {
          double const sp = speedup(*r, x);
          if (sp > 0) v = sp;
        }
      if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
      dat << "\t" << gp_number(v);
    }
    dat << "\n";
  }
  if (!dat) return false;

  int const clusters = static_cast<int>(rs.size());
  int const n = static_cast<int>(impls.size());
  int const width = std::clamp(260 + clusters * (40 + 38 * n), 640, 1600);
  bool const log = hi / lo > 30;
  std::ofstream gp(dir + "/" + stem + ".gp");
  gp << "# Draws " << stem << ".svg from " << stem << ".dat (run: gnuplot " << stem << ".gp)\n"
     << terminal(width, 460) << "set output " << gp_string(stem + ".svg") << "\n"
     << "set datafile separator \"\\t\"\n"
     << "set datafile missing \"NaN\"\n"
     << "set title " << gp_string(family + ": speed relative to each workload's baseline (higher is better)") << "\n"
     << "set ylabel \"x baseline speed\"\n"
     << "set style data histograms\nset style histogram clustered gap 1\n"
     << "set style fill solid 0.85 border -1\nset boxwidth 0.9 relative\n"
     << "set grid ytics\nset key outside bottom center horizontal\nset xtics nomirror\n";
  if (log)
    gp << "set logscale y\nset yrange [" << gp_number(lo / 2) << ":" << gp_number(hi * 2) << "]\n";
  else
    gp << "set yrange [0:" << gp_number(hi * 1.18) << "]\n";
  gp << "set arrow from graph 0, first 1 to graph 1, first 1 nohead dt 2 lw 1.5 lc rgb \"#444444\"\n"
     << "n = " << n << ".0\ngap = 1.0\n"
     << "plot ";
  for (int i = 0; i < n; ++i)
    gp << (i ? ", \\\n     " : "") << gp_string(stem + ".dat") << " using " << i + 2 << (i == 0 ? ":xtic(1)" : "")
       << " title " << gp_string(impls[static_cast<std::size_t>(i)]);
  for (int i = 0; i < n; ++i)
    gp << ", \\\n     " << gp_string(stem + ".dat") << " using ($0 + (" << i << " - (n - 1) / 2) / (n + gap)):" << i + 2
       << ":(sprintf(\"%.2f\", column(" << i + 2 << "))) with labels font \",9\" offset 0,0.6 notitle";
  gp << "\n";
  if (!gp) return false;
  out = {stem + ".svg", stem + ".gp", family + ": speed relative to the baseline"};
  return true;
}

// Line chart: medians against the param (log2 x axis), one line per impl.
bool write_line_chart(const std::string& dir, const workload_result& r, chart& out) {
  const workload& w = *r.w;
  std::vector<const workload_result*> one{&r};
  std::vector<std::string> const impls = drawable_impls(one);
  std::string const stem = file_part(w.name);
  std::vector<std::int64_t> params;
  for (const impl_result& x : r.results)
    if (std::find(params.begin(), params.end(), x.param) == params.end()) params.push_back(x.param);
  std::sort(params.begin(), params.end());

  std::ofstream dat(dir + "/" + stem + ".dat");
  dat << "# " << param_name(w);
  for (const std::string& i : impls) dat << "\t" << i;
  dat << "\n# median " << w.unit << "; NaN: not run\n";
  bool all_positive = true;
  for (std::int64_t p : params) {
    dat << p;
    for (const std::string& i : impls) {
      double v = std::nan("");
      for (const impl_result& x : r.results)
        if (x.impl == i && x.param == p) v = x.median;
      if (std::isfinite(v) && v <= 0) all_positive = false;
      dat << "\t" << gp_number(v);
    }
    dat << "\n";
  }
  if (!dat) return false;

  bool const log2x = !params.empty() && params.front() > 0;
  std::ofstream gp(dir + "/" + stem + ".gp");
  gp << "# Draws " << stem << ".svg from " << stem << ".dat (run: gnuplot " << stem << ".gp)\n"
     << terminal(900, 500) << "set output " << gp_string(stem + ".svg") << "\n"
     << "set datafile separator \"\\t\"\n"
     << "set datafile missing \"NaN\"\n"
     << "set title "
     << gp_string(w.name + ": median " + w.unit + " against " + param_name(w) +
                  (higher_is_better(w.unit) ? " (higher is better)" : " (lower is better)"))
     << "\n"
     << "set xlabel " << gp_string(param_name(w)) << "\nset ylabel " << gp_string(w.unit) << "\n"
     << "set grid xtics ytics mxtics mytics\nset key outside right top\n";
  if (log2x) gp << "set logscale x 2\nset format x \"2^%L\"\n";
  if (all_positive) gp << "set logscale y 10\n";
  gp << "plot ";
  for (std::size_t i = 0; i < impls.size(); ++i)
    gp << (i ? ", \\\n     " : "") << gp_string(stem + ".dat") << " using 1:" << i + 2 << " with linespoints lw 2 pt "
       << (i % 10) + 4 << " title " << gp_string(impls[i]);
  gp << "\n";
  if (!gp) return false;
  out = {stem + ".svg", stem + ".gp", w.name + ": " + w.unit + " against " + param_name(w)};
  return true;
}

// --- tables -------------------------------------------------------------

std::vector<std::string> other_extras(const workload_result& r) {
  std::set<std::string> keys;
  for (const impl_result& x : r.results)
    for (auto& [k, v] : x.extra)
      if (!is_standard_extra(k)) keys.insert(k);
  return {keys.begin(), keys.end()};
}

std::string extra_cell(const impl_result& x, const std::string& key) {
  auto const it = x.extra.find(key);
  return it == x.extra.end() ? "-" : fmt(it->second);
}

std::string ratio_cell(const workload_result& r, const impl_result& x) {
  if (x.impl == r.w->baseline) return "1 (baseline)";
  double const base = baseline_median(r, x);
  if (base <= 0 || !std::isfinite(x.median)) return "-";
  double const ratio = x.median / base;
  double const sp = speedup(r, x);
  std::string s = fmt(ratio);
  if (sp >= 1.005)
    s += " (" + fmt(sp) + "x better)";
  else if (sp > 0 && sp <= 0.995)
    s += " (" + fmt(1 / sp) + "x worse)";
  return s;
}

void write_point_table(std::ostream& f, const workload_result& r) {
  std::vector<std::string> const extras = other_extras(r);
  f << "| impl | median | min | max | ratio to " << code(r.w->baseline) << " | csw/op | waits/op | wakes/op |";
  for (const std::string& k : extras) f << " " << k << " |";
  f << "\n|---|--:|--:|--:|--:|--:|--:|--:|";
  for (std::size_t k = 0; k < extras.size(); ++k) f << "--:|";
  f << "\n";
  for (const impl_result& x : r.results) {
    f << "| " << code(x.impl) << " | " << fmt(x.median) << " | " << fmt(x.min) << " | " << fmt(x.max) << " | "
      << ratio_cell(r, x) << " | " << extra_cell(x, "csw_per_op") << " | " << extra_cell(x, "wait_calls_per_op")
      << " | " << extra_cell(x, "wake_calls_per_op") << " |";
    for (const std::string& k : extras) f << " " << extra_cell(x, k) << " |";
    f << "\n";
  }
}

void write_param_tables(std::ostream& f, const workload_result& r) {
  const workload& w = *r.w;
  std::vector<const workload_result*> one{&r};
  std::vector<std::string> const impls = impls_in_order(one);
  std::vector<std::int64_t> params;
  for (const impl_result& x : r.results)
    if (std::find(params.begin(), params.end(), x.param) == params.end()) params.push_back(x.param);
  // Medians, one row per param; the ratio to the baseline in parentheses.
  f << "| " << param_name(w) << " |";
  for (const std::string& i : impls) f << " " << code(i) << " |";
  f << "\n|--:|";
  for (std::size_t k = 0; k < impls.size(); ++k) f << "--:|";
  f << "\n";
  for (std::int64_t p : params) {
    f << "| " << param_label(p) << " |";
    for (const std::string& i : impls) {
      std::string cell = "-";
      for (const impl_result& x : r.results)
        if (x.impl == i && x.param == p) {
          cell = fmt(x.median);
          double const base = baseline_median(r, x);
          if (i != w.baseline && base > 0 && std::isfinite(x.median)) cell += " (x" + fmt(x.median / base) + ")";
        }
      f << " " << cell << " |";
    }
    f << "\n";
  }
  f << "\nMedians in " << w.unit << "; (xR) = ratio to " << code(w.baseline) << " at the same " << param_name(w)
    << ".\n";
  // Extras that summarize the whole workload (e.g. breakeven_n), per impl.
  std::vector<std::string> const extras = other_extras(r);
  if (!extras.empty()) {
    f << "\n| impl |";
    for (const std::string& k : extras) f << " " << k << " |";
    f << "\n|---|";
    for (std::size_t k = 0; k < extras.size(); ++k) f << "--:|";
    f << "\n";
    for (const std::string& i : impls) {
      // Shown when the value is the same at every param (a per-workload
      // result); otherwise its value at the largest param.
      f << "| " << code(i) << " |";
      for (const std::string& k : extras) {
        std::string cell = "-";
        for (const impl_result& x : r.results)
          if (x.impl == i && x.extra.count(k)) cell = fmt(x.extra.at(k));
        f << " " << cell << " |";
      }
      f << "\n";
    }
  }
  f << "\n<details><summary>every run of " << code(w.name) << "</summary>\n\n| " << param_name(w)
    << " | impl | median | min | max | ratio | csw/op | waits/op | wakes/op |\n|--:|---|--:|--:|--:|--:|--:|--:|--:|\n";
  for (const impl_result& x : r.results)
    f << "| " << param_label(x.param) << " | " << code(x.impl) << " | " << fmt(x.median) << " | " << fmt(x.min) << " | "
      << fmt(x.max) << " | " << ratio_cell(r, x) << " | " << extra_cell(x, "csw_per_op") << " | "
      << extra_cell(x, "wait_calls_per_op") << " | " << extra_cell(x, "wake_calls_per_op") << " |\n";
  f << "\n</details>\n";
}

int rounds_of(const workload_result& r) {
  int n = 0;
  for (const impl_result& x : r.results) n = std::max(n, x.rounds);
  return n;
}

}  // namespace

bool write_report(const std::string& dir, const run_info& info, const std::vector<workload_result>& all) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  std::ofstream f(dir + "/report.md");
  if (!f) return false;
  const machine_info& m = info.machine;

  f << "# rouse-bench report\n\n"
    << "| | |\n|---|---|\n"
    << "| date | " << info.date << " |\n"
    << "| run | " << (info.quick ? "quick (--quick: smaller runs, 5 rounds; a smoke run, not for quoting)" : "full")
    << ", " << secs(info.elapsed_s) << " |\n"
    << "| cpus | " << m.cpus << " |\n"
    << "| model | " << (m.model.empty() ? "unknown" : m.model) << " |\n"
    << "| kernel | " << m.kernel << " |\n"
    << "| compiler | " << m.compiler << " |\n"
    << "| wait backend | " << m.backend << " |\n"
    << "| cpu speed at the start | " << describe_cpu_speeds(info.speeds_start) << " |\n"
    << "| cpu speed at the end | " << describe_cpu_speeds(info.speeds_end) << " |\n\n"
    << "CPU speed: the time a thread pinned to each CPU took for 2^20 steps of the count.breakeven loop "
       "(best of 5). Where it is uneven, a parallel workload's ratio depends on which CPU each of its "
       "threads ran on.\n\n"
    << "Every implementation of a workload ran in the same process, interleaved (A B C, B C A, ...), "
       "round after round; the tables give the median, min and max over the rounds. The ratio is "
       "median / the baseline's median: below 1 is faster for times, above 1 is better for rates. "
       "csw/op is voluntary context switches per operation (getrusage); waits/op and wakes/op are "
       "rouse's wait and wake system calls per operation (rouse implementations only). Absolute "
       "numbers drift on shared machines; ratios from one side-by-side run hold.\n";

  // Summary.
  f << "\n## Summary\n\nrouse's best implementation of each workload against its baseline.\n\n"
    << "| workload | unit | better | rouse (best) | median | baseline | median | ratio | rouse is | notes |\n"
    << "|---|---|---|---|--:|---|--:|--:|---|---|\n";
  for (const workload_result& r : all) {
    summary_line const s = summarize(r);
    f << "| " << code(s.workload) << (s.at.empty() ? "" : " at " + s.at) << " | " << s.unit << " | "
      << (s.higher_better ? "higher" : "lower") << " | " << (s.rouse_impl.empty() ? "-" : code(s.rouse_impl)) << " | "
      << (s.rouse_impl.empty() ? "-" : fmt(s.rouse_median)) << " | " << (s.baseline.empty() ? "-" : code(s.baseline))
      << " | " << (s.baseline.empty() ? "-" : fmt(s.baseline_median)) << " | " << (s.ratio > 0 ? fmt(s.ratio) : "-")
      << " | " << verdict(s) << " | " << s.note << " |\n";
  }
  if (!info.skipped.empty()) {
    f << "\n### Peers skipped\n\nNot installed or not buildable here, so not run (never faked):\n\n";
    for (const skip_note& s : info.skipped)
      f << "- " << code(s.impl) << " for " << code(s.pattern) << ": " << s.why << "\n";
  }
  if (!info.scaled_down.empty()) {
    f << "\n### Scaled down\n\n90% of the run's time limit (" << fmt(info.time_limit_s)
      << " s) had passed before these workloads, so they ran scaled down as with --quick (their numbers are "
         "not comparable with a full run's):\n\n";
    for (const std::string& n : info.scaled_down) f << "- " << code(n) << "\n";
  }
  if (!info.not_run.empty()) {
    f << "\n### Not run\n\nThe run's time limit (" << fmt(info.time_limit_s)
      << " s) was reached before these workloads:\n\n";
    for (const std::string& n : info.not_run) f << "- " << code(n) << "\n";
  }

  // Families, in name order (the results are sorted by workload name).
  bool const gnuplot = have_gnuplot();
  bool charts_failed = false;
  std::vector<std::string> families;
  for (const workload_result& r : all)
    if (std::find(families.begin(), families.end(), family_of(r.w->name)) == families.end())
      families.push_back(family_of(r.w->name));
  for (const std::string& family : families) {
    std::vector<const workload_result*> points, lines;
    for (const workload_result& r : all) {
      if (family_of(r.w->name) != family) continue;
      (r.w->params.empty() ? points : lines).push_back(&r);
    }
    f << "\n## " << family << "\n";
    std::vector<chart> charts;
    chart c;
    if (!points.empty() && write_bar_chart(dir, family, points, c)) charts.push_back(c);
    for (const workload_result* r : lines)
      if (write_line_chart(dir, *r, c)) charts.push_back(c);
    for (const chart& ch : charts) {
      bool drawn = false;
      if (gnuplot) {
        std::filesystem::remove(dir + "/" + ch.svg, ec);
        drawn = run_gnuplot(dir, ch.gp) && std::filesystem::exists(dir + "/" + ch.svg, ec);
        if (!drawn) {
          charts_failed = true;
          std::fprintf(stderr, "rouse-bench: gnuplot failed on %s/%s\n", dir.c_str(), ch.gp.c_str());
        }
      }
      if (drawn)
        f << "\n![" << ch.title << "](" << ch.svg << ")\n";
      else
        f << "\n*Chart not drawn (" << (gnuplot ? "gnuplot failed" : "gnuplot is not installed") << "): `gnuplot "
          << ch.gp << "` in this folder draws " << ch.svg << ".*\n";
    }
    for (const workload_result* rp : points) {
      const workload_result& r = *rp;
      f << "\n### " << code(r.w->name) << " (" << r.w->unit << ", "
        << (higher_is_better(r.w->unit) ? "higher" : "lower") << " is better)\n\n";
      if (!r.w->description.empty()) f << r.w->description << "\n\n";
      write_point_table(f, r);
      f << "\n"
        << rounds_of(r) << " rounds, " << secs(r.seconds)
        << (r.scaled_down ? "; scaled down as with --quick (time limit)" : "") << ".\n";
    }
    for (const workload_result* rp : lines) {
      const workload_result& r = *rp;
      f << "\n### " << code(r.w->name) << " (" << r.w->unit << " against " << param_name(*r.w) << ", "
        << (higher_is_better(r.w->unit) ? "higher" : "lower") << " is better)\n\n";
      if (!r.w->description.empty()) f << r.w->description << "\n\n";
      write_param_tables(f, r);
      f << "\n"
        << rounds_of(r) << " rounds per " << param_name(*r.w) << ", " << secs(r.seconds)
        << (r.scaled_down ? "; scaled down as with --quick (time limit)" : "") << ".\n";
    }
  }
  f.close();
  if (!gnuplot)
    std::printf(
        "note: gnuplot is not installed, so %s/report.md has no charts (scripts/setup installs "
        "gnuplot-nox; the .gp scripts beside the report draw them)\n",
        dir.c_str());
  else if (charts_failed)
    std::printf("note: some charts could not be drawn (see above)\n");
  return static_cast<bool>(f);
}

}  // namespace rouse::bench
