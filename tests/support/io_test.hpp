// tests/support/io_test.hpp — what the rouse::io tests share: the backends
// a test is run on (a value-parameterized suite, one instance per backend
// this kernel offers, named after it), bytes <-> text for buffers, and a
// coroutine that is not a rouse task (a frame to destroy by hand).
//
//   class io_thing : public ::testing::TestWithParam<rouse::io::backend> {};
//   TEST_P(io_thing, ...) { rouse::io::event_loop loop(GetParam()); ... }
//   INSTANTIATE_TEST_SUITE_P(backends, io_thing, ::testing::ValuesIn(rouse_test::io_backends()),
//                            rouse_test::io_backend_name);
#pragma once

#include <gtest/gtest.h>

#include <coroutine>
#include <cstddef>
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
