// rouse/config.hpp fixes the options that change rouse's code once per
// build: a program whose translation units disagree about NDEBUG still sees
// one rouse. Here a lock taken in a translation unit compiled with NDEBUG
// (config_mixed_ndebug.cpp) is released in one compiled without it, and the
// other way round. When the misuse checks followed each translation unit's
// NDEBUG, the half with checks on kept the thread's list of held locks and
// the other did not: unlocking there aborted with a false "does not hold
// the lock" (and locking there twice went unseen).
// A release build passes -DNDEBUG to every translation unit: this half
// takes it back so that the two halves always disagree.
#undef NDEBUG

#include <gtest/gtest.h>

#include "config_mixed.hpp"
#include "rouse/config.hpp"
#include "rouse/detail/diagnostics.hpp"
#include "rouse/mutex.hpp"
#include "rouse/recursive_mutex.hpp"
#include "rouse/spin_lock.hpp"
#include "rouse/version.hpp"

namespace config_mixed_test {
namespace {

namespace other = config_mixed::ndebug;

TEST(config, both_halves_see_the_configured_checks) {
  EXPECT_EQ(ROUSE_DEBUG_CHECKS, ROUSE_CONFIG_DEBUG_CHECKS);
  EXPECT_EQ(other::debug_checks(), ROUSE_CONFIG_DEBUG_CHECKS);
}

template <class Lock>
void lock_here_unlock_there_and_back() {
  Lock m;
  other::lock(m);
  m.unlock();
  m.lock();
  other::unlock(m);
  other::lock(m);
  other::unlock(m);
  m.lock();
  m.unlock();
}

TEST(config, a_mutex_locked_in_an_ndebug_unit_unlocks_in_a_debug_one) {
  lock_here_unlock_there_and_back<rouse::mutex>();
}

TEST(config, a_spin_lock_locked_in_an_ndebug_unit_unlocks_in_a_debug_one) {
  lock_here_unlock_there_and_back<rouse::spin_lock>();
}

TEST(config, a_recursive_mutex_nests_across_units) {
  rouse::recursive_mutex m;
  other::lock(m);
  m.lock();
  other::unlock(m);
  m.unlock();
  m.lock();
  other::lock(m);
  m.unlock();
  other::unlock(m);
  EXPECT_TRUE(m.try_lock());
  m.unlock();
}

TEST(config, the_version_matches_the_package) {
  EXPECT_EQ(rouse::version_major, ROUSE_VERSION_MAJOR);
  EXPECT_STREQ(rouse::version_string, ROUSE_VERSION_STRING);
  EXPECT_GE(rouse::version_major * 100 + rouse::version_minor, 1);
}

}  // namespace
}  // namespace config_mixed_test
