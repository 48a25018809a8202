#include "rouse/detail/diagnostics.hpp"

#include <cstdio>
#include <cstdlib>

namespace rouse::detail {

void report_misuse(const char* primitive, const char* rule) noexcept {
  std::fprintf(stderr, "%s: misuse: %s\n", primitive, rule);
  std::fflush(stderr);
  std::abort();
}

}  // namespace rouse::detail
