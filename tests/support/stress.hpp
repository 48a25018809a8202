// tests/stress support: how big a stress test should be.
//
// ROUSE_STRESS_SCALE (environment, default 1) multiplies iteration counts;
// 0.1 gives a smoke run, 10 a soak. Sanitizer builds divide the default by 4
// (TSan runs code ~10x slower). Counts are never scaled below 1.
#pragma once

#include <algorithm>
#include <cstdlib>
#include <thread>

namespace rouse_test {

inline double stress_scale() {
  double scale = 1.0;
  if (const char* s = std::getenv("ROUSE_STRESS_SCALE")) {
    double const v = std::atof(s);
    if (v > 0) scale = v;
  }
#if defined(ROUSE_SANITIZER_thread) || defined(ROUSE_SANITIZER_address)
  scale /= 4;
#endif
  return scale;
}

// `n` scaled by ROUSE_STRESS_SCALE, at least 1.
inline long scaled(long n) { return std::max(1L, static_cast<long>(static_cast<double>(n) * stress_scale())); }

// More threads than cores, as the stress rules ask: at least `minimum`, and
// at least twice the hardware threads.
inline unsigned oversubscribed(unsigned minimum = 8) {
  return std::max(minimum, 2 * std::max(1u, std::thread::hardware_concurrency()));
}

}  // namespace rouse_test
