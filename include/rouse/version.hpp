// rouse/version.hpp — which rouse this is.
//
//   #include <rouse/version.hpp>
//   static_assert(rouse::version_major == 0);
//   std::puts(rouse::version_string);   // "0.1.0"
//
// The macros ROUSE_VERSION_MAJOR / _MINOR / _PATCH / _STRING come from the
// generated rouse/config.hpp, so they always match the library the headers
// were installed with. Before 1.0, a minor version may change the API and
// the ABI (the shared library's soname is MAJOR.MINOR).
#pragma once

#include "rouse/config.hpp"

namespace rouse {

inline constexpr int version_major = ROUSE_VERSION_MAJOR;
inline constexpr int version_minor = ROUSE_VERSION_MINOR;
inline constexpr int version_patch = ROUSE_VERSION_PATCH;
inline constexpr const char* version_string = ROUSE_VERSION_STRING;

}  // namespace rouse
