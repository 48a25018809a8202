// rouse/detail/held_locks.hpp — debug-only record of the locks a thread holds.
//
// rouse's exclusive locks (mutex, spin_lock, and their recursive cousin's
// inner mutex) diagnose ownership misuse in debug builds:
//   - lock() by the thread that already holds the lock (a self-deadlock),
//   - unlock() by a thread that does not hold it (never locked, unlocked
//     twice, or held by another thread).
// The owner is not kept in the lock: that would make sizeof(rouse::mutex)
// differ between debug and release translation units of one program. Each
// thread instead keeps a small list of the lock addresses it holds, in a
// constant-initialized thread_local (no allocation, no TLS destructor).
// The list holds `capacity` locks; locks beyond that are only counted, and
// are not checked (a thread holding more than 64 locks at once is rare).
//
// Release builds (ROUSE_DEBUG_CHECKS == 0) compile every call to nothing.
// Model tests (ROUSE_MODEL_RELACY) run all simulated threads on one OS
// thread, so the list would be shared between them: tracking is off there.
#pragma once

#include "rouse/detail/diagnostics.hpp"

#if ROUSE_DEBUG_CHECKS && !defined(ROUSE_MODEL_RELACY)
#define ROUSE_TRACK_HELD_LOCKS 1
#else
#define ROUSE_TRACK_HELD_LOCKS 0
#endif

namespace rouse::detail {

#if ROUSE_TRACK_HELD_LOCKS
class held_locks {
 public:
  static constexpr int capacity = 64;

  static held_locks& mine() noexcept {
    static constinit thread_local held_locks list;
    return list;
  }

  bool contains(const void* lock) const noexcept {
    for (int i = 0; i < count_; ++i)
      if (held_[i] == lock) return true;
    return false;
  }
  void add(const void* lock) noexcept {
    if (count_ < capacity)
      held_[count_++] = lock;
    else
      ++untracked_;
  }
  // False when this thread does not hold `lock` (as far as the list knows).
  bool remove(const void* lock) noexcept {
    for (int i = count_ - 1; i >= 0; --i) {
      if (held_[i] == lock) {
        held_[i] = held_[--count_];
        return true;
      }
    }
    if (untracked_ > 0) {  // may be one of the locks beyond capacity
      --untracked_;
      return true;
    }
    return false;
  }

 private:
  const void* held_[capacity] = {};
  int count_ = 0;
  int untracked_ = 0;
};
#endif

// Before a blocking lock(): the caller must not hold it already.
inline void check_not_held([[maybe_unused]] const void* lock, [[maybe_unused]] const char* primitive) noexcept {
#if ROUSE_TRACK_HELD_LOCKS
  ROUSE_CHECK_USAGE(!held_locks::mine().contains(lock), primitive,
                    "lock() by the thread that already holds it (self-deadlock)");
#endif
}
// After a lock was acquired.
inline void note_acquired([[maybe_unused]] const void* lock) noexcept {
#if ROUSE_TRACK_HELD_LOCKS
  held_locks::mine().add(lock);
#endif
}
// At unlock(): `locked` is what the lock's own state says (false: nobody
// holds it at all). Aborts unless this thread holds the lock.
inline void note_released([[maybe_unused]] const void* lock, [[maybe_unused]] bool locked,
                          [[maybe_unused]] const char* primitive) noexcept {
#if ROUSE_TRACK_HELD_LOCKS
  ROUSE_CHECK_USAGE(locked, primitive, "unlock() of a lock that is not locked (never locked, or unlocked twice)");
  ROUSE_CHECK_USAGE(held_locks::mine().remove(lock), primitive, "unlock() by a thread that does not hold the lock");
#endif
}

}  // namespace rouse::detail
