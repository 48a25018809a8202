// What rouse promises across fork() (docs/wait.md, "fork()"): the thread
// ids of platform::this_thread_id() are refreshed in the child, so a
// recursive_mutex there tells its threads apart. Each test forks before it
// starts any thread of its own; the child reports through its exit code
// (_exit, no gtest in the child) and the parent checks it with waitpid.
#include <gtest/gtest.h>

#if defined(__linux__)
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#endif

#include <atomic>
#include <cstdlib>
#include <cstdint>
#include <thread>

#include "rouse/mutex.hpp"
#include "rouse/platform/cpu.hpp"
#include "rouse/recursive_mutex.hpp"

namespace fork_test {
namespace {

namespace p = rouse::platform;

#if defined(__linux__)

std::uint32_t kernel_tid() { return static_cast<std::uint32_t>(::syscall(SYS_gettid)); }

// Runs `child` in a forked child and returns its exit code (-1: it did not
// exit normally, e.g. a debug check aborted it).
template <class Child>
int in_child(Child child) {
  pid_t const pid = ::fork();
  if (pid == 0) ::_exit(child());
  if (pid < 0) return -2;
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return -3;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(fork, the_child_gets_its_own_thread_id) {
  std::uint32_t const parent_id = p::this_thread_id();  // cached before the fork
  ASSERT_EQ(parent_id, kernel_tid());
  EXPECT_EQ(in_child([&] {
              std::uint32_t const id = p::this_thread_id();
              if (id == parent_id) return 1;     // the parent's id, kept across the fork
              if (id != kernel_tid()) return 2;  // not the child's own
              if (p::this_thread_id() != id) return 3;
              return 0;
            }),
            0);
  EXPECT_EQ(p::this_thread_id(), parent_id);  // the parent's cache is untouched
}

// The child's threads each hold the recursive_mutex in turn; the other's
// try_lock must fail while one holds it, and the holder may lock it again.
TEST(fork, recursive_mutex_tells_the_child_threads_apart) {
  (void)p::this_thread_id();  // the id is cached before the fork
  EXPECT_EQ(in_child([] {
              rouse::recursive_mutex m;
              // The forking thread locks it; another thread must not get it.
              m.lock();
              if (!m.try_lock()) return 10;  // recursion by the holder
              m.unlock();
              bool other_got = true;
              std::thread([&] {
                other_got = m.try_lock();
                if (other_got) m.unlock();
              }).join();
              m.unlock();
              if (other_got) return 11;
              // Another thread holds it; the forking thread must not get it.
              std::atomic<int> step{0};
              std::thread holder([&] {
                m.lock();
                step.store(1);
                while (step.load() != 2) std::this_thread::yield();
                m.unlock();
              });
              while (step.load() != 1) std::this_thread::yield();
              bool const mine_got = m.try_lock();
              if (mine_got) m.unlock();
              step.store(2);
              holder.join();
              if (mine_got) return 12;
              // Free again: the forking thread takes it.
              if (!m.try_lock()) return 13;
              m.unlock();
              return 0;
            }),
            0);
}

// A rouse::mutex the forking thread held across fork() is still held by it
// in the child (its state was copied and it records no owner id), and it may
// unlock it there: the pthread_atfork idiom of locking in the prepare
// handler and unlocking in both processes works with it.
TEST(fork, the_forking_thread_may_unlock_its_mutex_in_the_child) {
  rouse::mutex m;
  m.lock();
  int const code = in_child([&] {
    m.unlock();
    if (!m.try_lock()) return 20;
    m.unlock();
    return 0;
  });
  m.unlock();
  EXPECT_EQ(code, 0);
}

#if ROUSE_DEBUG_CHECKS && !defined(ROUSE_SANITIZER_thread)
// A recursive_mutex the forking thread held is not its own in the child
// (its id changed): a lock there is diagnosed as that, naming the
// recursive_mutex (it was reported as a self-deadlock of its inner
// rouse::mutex). The child of the death test forks; its child's abort is
// passed on.
TEST(fork_death, a_recursive_mutex_held_across_fork_is_named_in_the_child) {
  EXPECT_DEATH(
      {
        rouse::recursive_mutex m;
        m.lock();
        pid_t const pid = ::fork();
        if (pid == 0) {
          m.lock();
          ::_exit(0);
        }
        int status = 0;
        if (pid > 0 && ::waitpid(pid, &status, 0) == pid && WIFSIGNALED(status)) std::abort();
        ::_exit(0);
      },
      "rouse::recursive_mutex: misuse: a lock by the thread that held it before fork\\(\\)");
}
#endif

#else
TEST(fork, not_tested_here) { GTEST_SKIP() << "fork() tests are Linux-only"; }
#endif

}  // namespace
}  // namespace fork_test
