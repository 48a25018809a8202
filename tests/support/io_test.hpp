// tests/support/io_test.hpp — what the rouse::io tests share: the backends
// a test is run on (a value-parameterized suite, one instance per backend
// this kernel offers, named after it), bytes <-> text for buffers, a
// coroutine that is not a rouse task (a frame to destroy by hand), and a
// seccomp filter that makes the calling thread's io_uring submits fail.
//
//   class io_thing : public ::testing::TestWithParam<rouse::io::backend> {};
//   TEST_P(io_thing, ...) { rouse::io::event_loop loop(GetParam()); ... }
//   INSTANTIATE_TEST_SUITE_P(backends, io_thing, ::testing::ValuesIn(rouse_test::io_backends()),
//                            rouse_test::io_backend_name);
#pragma once

#include <gtest/gtest.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/io_uring.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include <cerrno>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "rouse/io/reactor.hpp"

namespace rouse_test {

// epoll always; io_uring where this kernel (and liburing) offer it.
inline std::vector<rouse::io::backend> io_backends() {
  std::vector<rouse::io::backend> b{rouse::io::backend::epoll};
  if (rouse::io::reactor::io_uring_available()) b.push_back(rouse::io::backend::io_uring);
  return b;
}
// The instance's name in the test's name: epoll or io_uring.
inline std::string io_backend_name(const ::testing::TestParamInfo<rouse::io::backend>& info) {
  return info.param == rouse::io::backend::io_uring ? "io_uring" : "epoll";
}

inline std::span<const std::byte> bytes_of(std::string_view s) { return std::as_bytes(std::span(s.data(), s.size())); }
inline std::string text_of(std::span<const std::byte> b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

// For the calling thread (and the threads it creates) from now on: an
// io_uring_enter that only submits (no IORING_ENTER_GETEVENTS) fails with
// EAGAIN, as the kernel's fails when it is short of memory; the loop's
// waiting enters still work. False where the filter cannot be installed.
inline bool fail_submit_only_enters() {
#if defined(__x86_64__)
  constexpr std::uint32_t arch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
  constexpr std::uint32_t arch = AUDIT_ARCH_AARCH64;
#else
  return false;
#endif
  sock_filter code[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, arch, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_enter, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      // The flags argument's low word (both architectures are little-endian).
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, args) + 3 * sizeof(std::uint64_t)),
      BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, IORING_ENTER_GETEVENTS, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EAGAIN),
  };
  sock_fprog program{static_cast<unsigned short>(sizeof code / sizeof code[0]), code};
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return false;
  return ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) == 0;
}

// A coroutine that is not a rouse task, destroyed by hand while it waits.

struct handmade {
  struct promise_type {
    handmade get_return_object() { return {std::coroutine_handle<promise_type>::from_promise(*this)}; }
    std::suspend_always initial_suspend() noexcept { return {}; }
    std::suspend_always final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }
  };
  std::coroutine_handle<promise_type> h;
};

}  // namespace rouse_test
