// tests/model support: run a Relacy test suite and turn the outcome into an
// exit code CTest understands.
//
//   return rouse_model::expect_pass<my_suite>("name");      // must find nothing
//   return rouse_model::expect_failure<broken_suite>("name", rl::test_result_deadlock);
//
// Both run an exhaustive search (fair full search, bounded by the thread
// count and the model's size) unless `iterations` asks for a random search.
#pragma once

#include "rouse/detail/sync_types.hpp"  // the macro-free parts of Relacy

#include <cstdio>
#include <new>
#include <utility>

namespace rouse_model {

// An object of type T in raw storage, built and destroyed in place by the
// model's threads (a word of a destroyed object is "freed memory" to the
// model: rouse/detail/relacy_sync.hpp).
template <class T>
struct in_storage {
  alignas(T) unsigned char bytes[sizeof(T)];
  T* object = nullptr;

  template <class... Args>
  void build(Args&&... args) {
    object = new (bytes) T(std::forward<Args>(args)...);
  }
  void destroy() { object->~T(); }
  T* operator->() const noexcept { return object; }
  T& operator*() const noexcept { return *object; }
};


template <class Suite>
bool simulate(const char* name, rl::test_params& p, unsigned long iterations) {
  if (iterations == 0) {
    p.search_type = rl::fair_full_search_scheduler_type;
  } else {
    p.search_type = rl::random_scheduler_type;
    p.iteration_count = iterations;
  }
  std::printf("model %s: %s search\n", name, iterations == 0 ? "fair full" : "random");
  return rl::simulate<Suite>(p);
}

// Exit code 0 when the model finds no race, assertion failure or deadlock.
template <class Suite>
int expect_pass(const char* name, unsigned long iterations = 0) {
  rl::test_params p;
  bool const ok = simulate<Suite>(name, p, iterations);
  std::printf("model %s: %s after %llu iterations\n", name, ok ? "passed" : "FAILED",
              static_cast<unsigned long long>(p.stop_iteration));
  return ok ? 0 : 1;
}

// Exit code 0 only when the model fails with exactly `expected`: a broken
// variant kept to prove the model catches that class of bug.
template <class Suite>
int expect_failure(const char* name, rl::test_result_e expected, unsigned long iterations = 0) {
  rl::test_params p;
  p.output_history = false;
  bool const ok = simulate<Suite>(name, p, iterations);
  if (ok) {
    std::printf("model %s: expected failure '%s' but the model passed\n", name, rl::test_result_str(expected));
    return 1;
  }
  if (p.test_result != expected) {
    std::printf("model %s: expected failure '%s' but got '%s'\n", name, rl::test_result_str(expected),
                rl::test_result_str(p.test_result));
    return 1;
  }
  std::printf("model %s: failed as expected with '%s'\n", name, rl::test_result_str(expected));
  return 0;
}

// The same for a broken variant whose bug shows in one of two ways, which
// the search may meet in either order (a destroyed object's lock found still
// held, or the object touched after it was freed).
template <class Suite>
int expect_failure_either(const char* name, rl::test_result_e expected, rl::test_result_e or_this,
                          unsigned long iterations = 0) {
  rl::test_params p;
  p.output_history = false;
  bool const ok = simulate<Suite>(name, p, iterations);
  if (ok) {
    std::printf("model %s: expected failure '%s' or '%s' but the model passed\n", name, rl::test_result_str(expected),
                rl::test_result_str(or_this));
    return 1;
  }
  if (p.test_result != expected && p.test_result != or_this) {
    std::printf("model %s: expected failure '%s' or '%s' but got '%s'\n", name, rl::test_result_str(expected),
                rl::test_result_str(or_this), rl::test_result_str(p.test_result));
    return 1;
  }
  std::printf("model %s: failed as expected with '%s'\n", name, rl::test_result_str(p.test_result));
  return 0;
}

}  // namespace rouse_model
