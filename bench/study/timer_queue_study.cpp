// bench/study/timer_queue_study.cpp — a standalone study, not a rouse-bench
// workload (bench/CMakeLists.txt globs bench/*.cpp only): the timing wheel of
// rouse/async/detail/timer_queue.hpp against d-ary heaps (d = 2, 4) indexed
// through timer_entry::queue_slot. The figures and the choice are in
// docs/async-timers.md.
//
// Build and run by hand (release configuration: misuse checks off):
//   g++ -std=c++20 -O2 -Iinclude -Ibuild/release/include bench/study/timer_queue_study.cpp -o /tmp/timer_queue_study
// (with -Ibuild/debug/include the misuse checks are on: add build/debug/librouse.a -pthread)
//   /tmp/timer_queue_study            # every queue, every workload
//   /tmp/timer_queue_study wheel      # one queue (wheel, heap4, heap2)
//
// Time is synthetic (deadlines and `now` are computed, never read from the
// clock), so a run measures the queue, not the machine's timers. Workloads,
// each timed 3 times, the best reported, in ns per timer:
//   insert+erase    n pending; then n times: erase a random pending entry,
//                   give it a new random deadline, insert it (a cancelled timer).
//   insert+expire   n pending; `now` advances by range/1000 per step; each
//                   expired entry is re-inserted at now + random(range) (a timer
//                   that fires; n stays pending); 2n expiries, the first n warm up.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include "rouse/async/detail/timer_queue.hpp"

namespace {

using rouse::async::timer_entry;
using clock_type = std::chrono::steady_clock;
using std::chrono::nanoseconds;

// The d-ary heap the wheel is measured against: nodes carry their deadline
// (a comparison reads no entry), entries carry their node index in queue_slot.
template <unsigned arity>
class heap_queue {
 public:
  explicit heap_queue(clock_type::time_point) {}
  void reserve(std::size_t n) { nodes_.reserve(n); }

  void insert(timer_entry& e) noexcept {
    e.queued = true;
    nodes_.push_back(node{e.deadline.time_since_epoch().count(), &e});  // amortized growth
    sift_up(nodes_.size() - 1);
  }
  bool erase(timer_entry& e) noexcept {
    if (!e.queued) return false;
    e.queued = false;
    const std::size_t i = e.queue_slot;
    const node last = nodes_.back();
    nodes_.pop_back();
    if (i == nodes_.size()) return true;
    nodes_[i] = last;
    last.entry->queue_slot = i;
    if (i > 0 && last.deadline < nodes_[(i - 1) / arity].deadline)
      sift_up(i);
    else
      sift_down(i);
    return true;
  }
  std::size_t size() const noexcept { return nodes_.size(); }
  clock_type::time_point next_deadline() const noexcept {
    return nodes_.empty() ? clock_type::time_point::max() : nodes_[0].entry->deadline;
  }
  timer_entry* take_expired(clock_type::time_point now) noexcept {
    const std::int64_t limit = now.time_since_epoch().count();
    timer_entry* head = nullptr;
    timer_entry** tail = &head;
    while (!nodes_.empty() && nodes_[0].deadline <= limit) {
      timer_entry* const e = nodes_[0].entry;
      e->queued = false;
      const node last = nodes_.back();
      nodes_.pop_back();
      if (!nodes_.empty()) {
        nodes_[0] = last;
        last.entry->queue_slot = 0;
        sift_down(0);
      }
      e->queue_next = nullptr;
      *tail = e;
      tail = &e->queue_next;
    }
    return head;
  }

 private:
  struct node {
    std::int64_t deadline;
    timer_entry* entry;
  };
  void sift_up(std::size_t i) noexcept {
    const node moving = nodes_[i];
    while (i > 0) {
      const std::size_t parent = (i - 1) / arity;
      if (nodes_[parent].deadline <= moving.deadline) break;
      nodes_[i] = nodes_[parent];
      nodes_[i].entry->queue_slot = i;
      i = parent;
    }
    nodes_[i] = moving;
    moving.entry->queue_slot = i;
  }
  void sift_down(std::size_t i) noexcept {
    const node moving = nodes_[i];
    const std::size_t n = nodes_.size();
    for (;;) {
      const std::size_t first = i * arity + 1;
      if (first >= n) break;
      std::size_t best = first;
      const std::size_t end = std::min(first + arity, n);
      for (std::size_t c = first + 1; c < end; ++c)
        if (nodes_[c].deadline < nodes_[best].deadline) best = c;
      if (moving.deadline <= nodes_[best].deadline) break;
      nodes_[i] = nodes_[best];
      nodes_[i].entry->queue_slot = i;
      i = best;
    }
    nodes_[i] = moving;
    moving.entry->queue_slot = i;
  }
  std::vector<node> nodes_;
};

struct wheel_queue : rouse::async::detail::timer_queue {
  using timer_queue::timer_queue;
  void reserve(std::size_t) {}
};

// splitmix64: cheap, deterministic, the same stream for every queue.
struct random_source {
  std::uint64_t state;
  std::uint64_t next() noexcept {
    std::uint64_t z = (state += 0x9e3779b97f4a7c15);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
    z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
    return z ^ (z >> 31);
  }
  std::int64_t below(std::int64_t bound) noexcept { return static_cast<std::int64_t>(next() % static_cast<std::uint64_t>(bound)); }
};

const clock_type::time_point origin{std::chrono::hours(1)};
std::uint64_t sink = 0;  // keeps results observable

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

template <class queue>
double insert_erase(std::size_t n, std::int64_t range_ns) {
  std::vector<timer_entry> entries(n);
  queue q(origin);
  q.reserve(n);
  random_source rng{42};
  for (auto& e : entries) {
    e.deadline = origin + nanoseconds(rng.below(range_ns));
    q.insert(e);
  }
  const auto start = std::chrono::steady_clock::now();
  for (std::size_t k = 0; k < n; ++k) {
    timer_entry& e = entries[rng.below(static_cast<std::int64_t>(n))];
    sink += q.erase(e);
    e.deadline = origin + nanoseconds(rng.below(range_ns));
    q.insert(e);
  }
  const double s = seconds_since(start);
  sink += q.size();
  return s * 1e9 / static_cast<double>(n);
}

template <class queue>
double insert_expire(std::size_t n, std::int64_t range_ns) {
  std::vector<timer_entry> entries(n);
  queue q(origin);
  q.reserve(n);
  random_source rng{7};
  for (auto& e : entries) {
    e.deadline = origin + nanoseconds(rng.below(range_ns));
    q.insert(e);
  }
  const std::int64_t step = range_ns / 1000;
  clock_type::time_point now = origin;
  std::size_t fired = 0;
  std::chrono::steady_clock::time_point start{};
  bool timing = false;
  while (fired < 2 * n) {
    if (!timing && fired >= n) {
      timing = true;
      fired = n;
      start = std::chrono::steady_clock::now();
    }
    now += nanoseconds(step);
    sink += static_cast<std::uint64_t>(q.next_deadline() <= now);
    for (timer_entry* e = q.take_expired(now); e != nullptr;) {
      timer_entry* const next = e->queue_next;
      if (e->deadline > now) std::abort();  // never early
      e->deadline = now + nanoseconds(rng.below(range_ns));
      q.insert(*e);
      ++fired;
      e = next;
    }
  }
  const double s = seconds_since(start);
  return s * 1e9 / static_cast<double>(fired - n);
}

template <double (*workload)(std::size_t, std::int64_t)>
double best_of_3(std::size_t n, std::int64_t range_ns) {
  double best = 1e300;
  for (int i = 0; i < 3; ++i) best = std::min(best, workload(n, range_ns));
  return best;
}

template <class queue>
void study(const char* name) {
  constexpr std::int64_t ms10 = 10'000'000, s10 = 10'000'000'000;
  struct row {
    const char* what;
    std::size_t n;
    std::int64_t range;
    bool expire;
  };
  const row rows[] = {
      {"insert+erase,  n=1M,   0-10 ms", 1'000'000, ms10, false},
      {"insert+erase,  n=1M,   0-10 s ", 1'000'000, s10, false},
      {"insert+expire, n=1M,   0-10 ms", 1'000'000, ms10, true},
      {"insert+expire, n=1M,   0-10 s ", 1'000'000, s10, true},
      {"insert+erase,  n=100k, 0-10 ms", 100'000, ms10, false},
      {"insert+expire, n=100k, 0-10 ms", 100'000, ms10, true},
  };
  for (const row& r : rows) {
    const double ns = r.expire ? best_of_3<insert_expire<queue>>(r.n, r.range) : best_of_3<insert_erase<queue>>(r.n, r.range);
    std::printf("%-6s %s  %7.1f ns/timer\n", name, r.what, ns);
    std::fflush(stdout);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const char* only = argc > 1 ? argv[1] : nullptr;
  auto wanted = [&](const char* name) { return only == nullptr || std::strcmp(only, name) == 0; };
  if (wanted("wheel")) study<wheel_queue>("wheel");
  if (wanted("heap4")) study<heap_queue<4>>("heap4");
  if (wanted("heap2")) study<heap_queue<2>>("heap2");
  std::printf("(checksum %llu)\n", static_cast<unsigned long long>(sink));
}
