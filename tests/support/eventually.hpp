// tests/support: evidence instead of sleeps.
//
//   rouse_test::eventually([&] { return done.load(); });   // until it holds
//   auto const base = rouse_test::wait_calls();
//   std::thread t([&] { m.lock(); ... });                 // will block
//   rouse_test::until_wait_calls(base + 1);               // it reached its sleep
//   rouse_test::until_asleep(tid);                        // it sleeps in the kernel
//   ROUSE_TEST_NEEDS_SYSCALL_COUNTERS();                  // first, in a test that counts
//
// None has a time limit: a wait that never ends is a hang, and CTest's
// timeout reports it as a failure.
// until_wait_calls() needs the syscall counters (rouse::platform::
// syscall_counters_enabled(), on in rouse's own test builds); a wait call is
// counted just before the system call, so the waiter has published whatever
// it sets before sleeping (a waiting bit, a count) but may not be asleep yet.
// is_asleep() is the stronger evidence, for tests whose outcome depends on
// the thread really sleeping (a wake that must find it, a sleeper that must
// stay asleep): the kernel's own view of the thread, read from /proc.
// rouse_test::thread (threads.hpp) knows its kernel id.
#pragma once

#include <dirent.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "rouse/platform/counters.hpp"

namespace rouse_test {

// Polls `done` until it holds: yielding at first, then napping 50 µs
// between polls. The nap is a poll interval, not evidence of anything; it
// keeps a poller from taking a CPU from the threads it waits for on a small,
// loaded machine, where a poll that only yields still competes with them.
template <class Predicate>
void eventually(Predicate done) {
  for (int polls = 0; !done(); ++polls) {
    if (polls < 64) {
      std::this_thread::yield();
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }
}

// Wait system calls made so far by the whole process.
inline std::uint64_t wait_calls() { return rouse::platform::syscall_counters().waits; }

// Wake system calls made so far by the whole process.
inline std::uint64_t wake_calls() { return rouse::platform::syscall_counters().wakes; }

// In a test body: skips the test where the syscall counters are not built
// in (they are in every rouse test build).
#define ROUSE_TEST_NEEDS_SYSCALL_COUNTERS()         \
  if (!rouse::platform::syscall_counters_enabled()) \
  GTEST_SKIP() << "needs the syscall counters to see a thread wait (rouse::platform::syscall_counters_enabled())"

// Blocks until the process has made at least `total` wait calls.
inline void until_wait_calls(std::uint64_t total) {
  eventually([&] { return wait_calls() >= total; });
}

// The calling thread's kernel id.
inline pid_t kernel_tid() { return static_cast<pid_t>(::syscall(SYS_gettid)); }

// True when thread `tid` of this process (or of process `process`, e.g. a
// forked child: its main thread's id is its pid) sleeps in the kernel in a
// futex wait (FUTEX_WAIT*, or futex_waitv): its state is S (interruptible
// sleep) and the system call it sleeps in is the futex call
// (/proc/<process>/task/<tid>/stat and /syscall). Where the kernel does not
// show the system call, its wait channel is asked (/wchan); where that is
// hidden too, any sleep counts. Every rouse wait (both backends) sleeps in a
// futex call; so does a std::mutex or std::condition_variable.
inline bool is_asleep(pid_t tid, pid_t process = 0) {
  std::string const dir = (process == 0 ? std::string("/proc/self") : "/proc/" + std::to_string(process)) + "/task/" +
                          std::to_string(tid) + "/";
  std::string line;
  {
    std::ifstream stat(dir + "stat");
    if (!std::getline(stat, line)) return false;  // not (or no longer) a thread of this process
  }
  // The state follows the command name, which is in parentheses and may
  // itself hold spaces or parentheses.
  auto const paren = line.rfind(')');
  if (paren == std::string::npos || paren + 2 >= line.size() || line[paren + 2] != 'S') return false;
  std::string call;
  if (std::ifstream syscall_file(dir + "syscall"); syscall_file >> call) {
    if (call == "running") return false;  // woke between the two reads
    if (call != "-1") {
      if (call == std::to_string(SYS_futex)) return true;
#if defined(SYS_futex_waitv)
      if (call == std::to_string(SYS_futex_waitv)) return true;
#endif
      return false;
    }
  }
  std::string channel;
  if (std::ifstream wchan(dir + "wchan"); wchan >> channel && channel != "0")
    return channel.find("futex") != std::string::npos;
  return true;
}

// The kernel ids of this process's threads now (/proc/self/task): taken
// before and after a call that starts threads, the difference is the new
// threads (a pool's workers, say).
inline std::vector<pid_t> thread_ids() {
  std::vector<pid_t> ids;
  if (DIR* const dir = ::opendir("/proc/self/task")) {
    while (dirent const* const entry = ::readdir(dir))
      if (entry->d_name[0] != '.') ids.push_back(static_cast<pid_t>(std::atoi(entry->d_name)));
    ::closedir(dir);
  }
  return ids;
}

// Blocks until thread `tid` (of `process`, as is_asleep()) sleeps in a futex wait.
inline void until_asleep(pid_t tid, pid_t process = 0) {
  eventually([&] { return is_asleep(tid, process); });
}

}  // namespace rouse_test
