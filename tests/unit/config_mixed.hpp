// Shared by config_mixed_test.cpp and config_mixed_ndebug.cpp.
#pragma once

namespace rouse {
class mutex;
class spin_lock;
class recursive_mutex;
}  // namespace rouse

namespace config_mixed::ndebug {
int debug_checks();
void lock(rouse::mutex& m);
void unlock(rouse::mutex& m);
void lock(rouse::spin_lock& m);
void unlock(rouse::spin_lock& m);
void lock(rouse::recursive_mutex& m);
void unlock(rouse::recursive_mutex& m);
}  // namespace config_mixed::ndebug
