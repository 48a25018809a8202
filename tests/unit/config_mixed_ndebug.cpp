// The NDEBUG half of config_mixed_test.cpp: compiled with -DNDEBUG (see
// tests/CMakeLists.txt), while the other half is not. rouse's options come
// from rouse/config.hpp, not from NDEBUG, so both halves must agree.
#ifndef NDEBUG
#error "this translation unit must be compiled with NDEBUG"
#endif

#include "config_mixed.hpp"

#include "rouse/detail/diagnostics.hpp"
#include "rouse/mutex.hpp"
#include "rouse/recursive_mutex.hpp"
#include "rouse/spin_lock.hpp"

namespace config_mixed::ndebug {

int debug_checks() { return ROUSE_DEBUG_CHECKS; }
void lock(rouse::mutex& m) { m.lock(); }
void unlock(rouse::mutex& m) { m.unlock(); }
void lock(rouse::spin_lock& m) { m.lock(); }
void unlock(rouse::spin_lock& m) { m.unlock(); }
void lock(rouse::recursive_mutex& m) { m.lock(); }
void unlock(rouse::recursive_mutex& m) { m.unlock(); }

}  // namespace config_mixed::ndebug
