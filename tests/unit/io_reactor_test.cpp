// rouse::io::reactor / event_loop: the loop's idle wait is epoll (timers are
// never early, a schedule or finish() from another thread wakes it), and the
// reactor's other objects: async_fd over pipes and eventfd, udp_socket, and
// operations awaited by tasks that run on another executor (a thread pool);
// every kind of operation cancelled while it waits (with_timeout, a stop
// from another thread, a destroyed frame), on both backends.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "eventually.hpp"
#include "io_test.hpp"
#include "rouse/async/run_loop.hpp"
#include "rouse/async/sleep.hpp"
#include "rouse/async/spawn.hpp"
#include "rouse/async/task.hpp"
#include "rouse/async/thread_pool.hpp"
#include "rouse/async/timeout.hpp"
#include "rouse/io/async_fd.hpp"
#include "rouse/io/reactor.hpp"
#include "rouse/io/tcp.hpp"
#include "rouse/io/udp.hpp"

namespace io_reactor_test {
namespace {
using namespace std::chrono_literals;
using clk = std::chrono::steady_clock;
using rouse::async::task;
using rouse::async::with_timeout;
using rouse::io::async_fd;
using rouse::io::endpoint;
using rouse::io::event_loop;
using rouse::io::udp_socket;
using rouse_test::bytes_of;
using rouse_test::text_of;

class io_reactor : public ::testing::TestWithParam<rouse::io::backend> {};

struct pipe_pair {
  async_fd read_end;
  async_fd write_end;
};
pipe_pair make_pipe(event_loop& loop) {
  int fds[2];
  EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  auto r = async_fd::adopt(loop, fds[0]);
  auto w = async_fd::adopt(loop, fds[1]);
  EXPECT_TRUE(r);
  EXPECT_TRUE(w);
  return {std::move(*r), std::move(*w)};
}

TEST_P(io_reactor, backend_is_named) {
  event_loop loop(GetParam());
  EXPECT_EQ(loop.get_reactor().backend(), GetParam());  // the list holds io_uring only where it runs
  EXPECT_STREQ(loop.get_reactor().backend_name(), GetParam() == rouse::io::backend::io_uring ? "io_uring" : "epoll");
}

TEST_P(io_reactor, sleep_on_the_event_loop_is_never_early) {
  event_loop loop(GetParam());
  for (auto d : {clk::duration(1us), clk::duration(300us), clk::duration(2ms), clk::duration(5ms)}) {
    auto const took = loop.run_until_complete([](clk::duration d) -> task<clk::duration> {
      auto const start = clk::now();
      co_await rouse::async::sleep_for(d);
      co_return clk::now() - start;
    }(d));
    EXPECT_GE(took, d);
  }
}

TEST_P(io_reactor, schedule_from_another_thread_wakes_the_parked_loop) {
  event_loop loop(GetParam());
  std::thread driver([&] { loop.run(); });
  for (int i = 0; i < 200; ++i) {
    auto h = rouse::async::spawn(loop.get_scheduler(), [](int v) -> task<int> { co_return v + 1; }(i));
    EXPECT_EQ(h.join(), i + 1);
  }
  loop.finish();
  driver.join();
}

TEST_P(io_reactor, pipe_read_waits_for_the_writer) {
  event_loop loop(GetParam());
  auto got = loop.run_until_complete([](event_loop& loop) -> task<std::string> {
    auto p = make_pipe(loop);
    rouse::async::task_scope scope;
    scope.spawn(loop.get_scheduler(), [](async_fd& w) -> task<void> {
      co_await rouse::async::sleep_for(1ms);
      (void)co_await w.write_all(bytes_of("through a pipe"));
      w.close();
    }(p.write_end));
    std::string all;
    std::byte buf[4];
    for (;;) {
      auto r = co_await p.read_end.read_some(buf);
      EXPECT_TRUE(r);
      if (!r || *r == 0) break;  // EOF once the writer closed
      all += text_of(std::span(buf, *r));
    }
    co_await scope.join();
    co_return all;
  }(loop));
  EXPECT_EQ(got, "through a pipe");
}

// Rounds of the loop, none idle, each followed by the reactor's poll: the
// reactor frees a closed descriptor's registration every 16 of them (on
// io_uring once the cancelled request has come back), so these are many.
task<void> rounds_that_free_closed(event_loop& loop) {
  for (int i = 0; i < 256; ++i) co_await loop.get_scheduler().schedule();
}

// A read awaited by a task of another executor (a run_loop standing in for
// a thread pool) is completed by the close (operation_canceled) and its
// task is scheduled there but not run; the event loop runs on, which frees
// a closed descriptor's registration; then a stop request reaches the task.
// The operation's stop callback is still registered (until the task
// resumes) and must not touch a registration that is gone: it locked the
// freed one (AddressSanitizer: heap-use-after-free).
TEST_P(io_reactor, a_stop_after_the_close_completed_an_operation_touches_nothing_freed) {
  event_loop loop(GetParam());
  auto p = make_pipe(loop);
  rouse::async::run_loop elsewhere;
  rouse::async::task_scope scope;
  int outcome = 0;  // 1: data, 2: operation_canceled
  std::byte buf[8];
  scope.spawn(elsewhere.get_scheduler(), [](async_fd& r, std::byte* buf, int& outcome) -> task<void> {
    auto n = co_await r.read_some(std::span(buf, 8));
    outcome = n ? 1 : n.error() == std::errc::operation_canceled ? 2 : 3;
  }(p.read_end, buf, outcome));
  EXPECT_EQ(elsewhere.run_once(), 1u);  // the read waits on the event loop
  p.read_end.close();                   // completes it: the task is scheduled on `elsewhere`
  loop.run_until_complete(rounds_that_free_closed(loop));
  scope.request_stop();
  while (elsewhere.run_once() != 0) {
  }
  scope.join_blocking();
  EXPECT_EQ(outcome, 2);
}

// An operation made while its object is open and awaited after the close
// fails with operation_canceled on every backend, without a system call on
// the descriptor number, which by then names another pipe here (a readiness
// backend read that pipe's bytes), and after the loop has run on (which
// frees the closed object's registration; it was read after it was freed).
TEST_P(io_reactor, an_operation_made_before_the_close_and_awaited_after_it_is_cancelled) {
  event_loop loop(GetParam());
  loop.run_until_complete([](event_loop& loop) -> task<void> {
    auto p = make_pipe(loop);
    std::byte buf[8];
    auto op = p.read_end.read_some(buf);
    p.read_end.close();
    int other[2];
    EXPECT_EQ(::pipe2(other, O_CLOEXEC | O_NONBLOCK), 0);  // takes the closed descriptor's number
    EXPECT_EQ(::write(other[1], "SECRET", 6), 6);
    co_await rounds_that_free_closed(loop);
    auto r = co_await std::move(op);
    EXPECT_FALSE(r);
    if (!r) {
      EXPECT_EQ(r.error(), std::errc::operation_canceled);
    }
    char left[8];
    EXPECT_EQ(::read(other[0], left, sizeof left), 6);  // the other pipe's bytes are all still there
    ::close(other[0]);
    ::close(other[1]);
  }(loop));
}

// The loop never runs out of ready work (a task yields in a loop until a
// read completes): the reactor's poll() between rounds must still deliver
// the readiness, or the loop spins forever.
TEST_P(io_reactor, a_loop_that_never_idles_still_sees_io) {
  event_loop loop(GetParam());
  loop.run_until_complete([](event_loop& loop) -> task<void> {
    auto p = make_pipe(loop);
    bool got = false;
    rouse::async::task_scope scope;
    scope.spawn(loop.get_scheduler(), [](async_fd& r, bool& got) -> task<void> {
      std::byte b[1];
      auto n = co_await r.read_some(b);  // waits: the pipe is empty
      EXPECT_TRUE(n);
      got = true;
    }(p.read_end, got));
    co_await loop.get_scheduler().schedule();  // the reader now waits
    EXPECT_EQ(::write(p.write_end.native_handle(), "x", 1), 1);
    long spins = 0;
    while (!got) {
      co_await loop.get_scheduler().schedule();  // never idle
      ++spins;
    }
    co_await scope.join();
    EXPECT_GT(spins, 0);
  }(loop));
}

TEST_P(io_reactor, full_pipe_write_all_completes_as_the_reader_drains) {
  event_loop loop(GetParam());
  constexpr std::size_t total = 1u << 20;  // a pipe holds 64 KiB
  auto got = loop.run_until_complete([](event_loop& loop) -> task<std::size_t> {
    auto p = make_pipe(loop);
    std::vector<std::byte> out(total, std::byte{0x5a});
    rouse::async::task_scope scope;
    scope.spawn(loop.get_scheduler(), [](async_fd& w, std::span<const std::byte> b) -> task<void> {
      auto r = co_await w.write_all(b);
      EXPECT_TRUE(r);
      w.close();
    }(p.write_end, out));
    std::size_t n = 0;
    std::vector<std::byte> buf(4096);
    for (;;) {
      auto r = co_await p.read_end.read_some(buf);
      if (!r || *r == 0) break;
      n += *r;
    }
    co_await scope.join();
    co_return n;
  }(loop));
  EXPECT_EQ(got, total);
}

TEST_P(io_reactor, eventfd_through_async_fd) {
  event_loop loop(GetParam());
  int const efd = ::eventfd(0, EFD_CLOEXEC);
  ASSERT_GE(efd, 0);
  auto ev = async_fd::adopt(loop, efd);
  ASSERT_TRUE(ev);
  std::uint64_t const seen = loop.run_until_complete([](async_fd& ev) -> task<std::uint64_t> {
    rouse::async::task_scope scope;
    scope.spawn(rouse::async::scheduler(*rouse::async::current_executor()), [](async_fd& ev) -> task<void> {
      co_await rouse::async::sleep_for(1ms);
      std::uint64_t const three = 3;
      (void)co_await ev.write_all(std::as_bytes(std::span(&three, 1)));
    }(ev));
    std::uint64_t value = 0;
    auto r = co_await ev.read_exact(std::as_writable_bytes(std::span(&value, 1)));
    EXPECT_TRUE(r);
    co_await scope.join();
    co_return value;
  }(*ev));
  EXPECT_EQ(seen, 3u);
}

TEST_P(io_reactor, regular_files_are_refused) {
  event_loop loop(GetParam());
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  int const fd = ::dup(::fileno(f));
  std::fclose(f);
  auto r = async_fd::adopt(loop, fd);  // closes fd on failure
  EXPECT_FALSE(r);
  EXPECT_EQ(r.error(), std::errc::operation_not_permitted);
}

// A character device that cannot be polled is refused by both backends
// alike (io_uring took /dev/null and /dev/zero, epoll refused them).
TEST_P(io_reactor, character_devices_without_poll_are_refused_alike) {
  event_loop loop(GetParam());
  for (char const* path : {"/dev/null", "/dev/zero"}) {
    int const fd = ::open(path, O_RDWR | O_CLOEXEC);
    ASSERT_GE(fd, 0) << path;
    auto r = async_fd::adopt(loop, fd);  // closes fd on failure
    EXPECT_FALSE(r) << path;
    if (!r) {
      EXPECT_EQ(r.error(), std::errc::operation_not_permitted) << path;
    }
  }
}

TEST_P(io_reactor, pipe_read_cancelled_then_data_goes_to_the_next_read) {
  event_loop loop(GetParam());
  loop.run_until_complete([](event_loop& loop) -> task<void> {
    auto p = make_pipe(loop);
    auto buf = std::make_unique<std::byte[]>(32);
    auto r = co_await with_timeout(p.read_end.read_some(std::span(buf.get(), 32)), 2ms);
    EXPECT_FALSE(r.has_value());
    buf.reset();
    (void)co_await p.write_end.write_all(bytes_of("next"));
    co_await rouse::async::sleep_for(1ms);
    std::byte b[4];
    auto r2 = co_await p.read_end.read_exact(b);
    EXPECT_TRUE(r2);
    EXPECT_EQ(text_of(b), "next");
  }(loop));
}

TEST_P(io_reactor, udp_round_trip_v4) {
  event_loop loop(GetParam());
  loop.run_until_complete([](event_loop& loop) -> task<void> {
    auto a = udp_socket::bind(loop, endpoint::loopback_v4(0));
    auto b = udp_socket::bind(loop, endpoint::loopback_v4(0));
    EXPECT_TRUE(a);
    EXPECT_TRUE(b);
    rouse::async::task_scope scope;
    scope.spawn(loop.get_scheduler(), [](udp_socket& a, endpoint to) -> task<void> {
      co_await rouse::async::sleep_for(1ms);
      auto s = co_await a.send_to(bytes_of("datagram"), to);
      EXPECT_TRUE(s);
    }(*a, *b->local_endpoint()));
    std::byte buf[64];
    auto d = co_await b->recv_from(buf);  // waits
    co_await scope.join();
    EXPECT_TRUE(d);
    EXPECT_EQ(d->size, 8u);
    EXPECT_EQ(text_of(std::span(buf, d->size)), "datagram");
    EXPECT_EQ(d->from, *a->local_endpoint());
  }(loop));
}

TEST_P(io_reactor, udp_round_trip_v6_and_truncation) {
  event_loop loop(GetParam());
  auto probe = udp_socket::bind(loop, endpoint::loopback_v6(0));
  if (!probe) GTEST_SKIP() << "no IPv6 loopback";
  loop.run_until_complete([](event_loop& loop, udp_socket& b) -> task<void> {
    auto a = udp_socket::bind(loop, endpoint::loopback_v6(0));
    (void)co_await a->send_to(bytes_of("0123456789"), *b.local_endpoint());
    std::byte small[4];
    auto d = co_await b.recv_from(small);
    EXPECT_TRUE(d);
    EXPECT_EQ(d->size, 4u);
    EXPECT_EQ(text_of(small), "0123");
  }(loop, *probe));
}

TEST_P(io_reactor, udp_recv_from_cancelled_by_timeout) {
  event_loop loop(GetParam());
  loop.run_until_complete([](event_loop& loop) -> task<void> {
    auto s = udp_socket::bind(loop, endpoint::loopback_v4(0));
    auto buf = std::make_unique<std::byte[]>(16);
    auto r = co_await with_timeout(s->recv_from(std::span(buf.get(), 16)), 2ms);
    EXPECT_FALSE(r.has_value());
    buf.reset();
    auto a = udp_socket::bind(loop, endpoint::loopback_v4(0));
    (void)co_await a->send_to(bytes_of("z"), *s->local_endpoint());
    co_await rouse::async::sleep_for(1ms);
    std::byte b[4];
    auto d = co_await s->recv_from(b);
    EXPECT_TRUE(d);
    EXPECT_EQ(d->size, 1u);
  }(loop));
}

TEST(io_endpoint, parse_and_print) {
  auto a = endpoint::parse("127.0.0.1", 80);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->to_string(), "127.0.0.1:80");
  EXPECT_EQ(*a, endpoint::loopback_v4(80));
  auto b = endpoint::parse("::1", 443);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->to_string(), "[::1]:443");
  EXPECT_FALSE(endpoint::parse("localhost", 1));  // numeric only
}

// Tasks on a thread pool use sockets of an event loop driven by another
// thread: operations start on pool threads, the reactor completes them on
// the loop's thread, and they resume on the pool.
TEST_P(io_reactor, operations_from_pool_threads_resume_on_the_pool) {
  // The pool outlives the loop's thread, which schedules completions onto
  // it (destroying the pool first is covered by async_thread_pool_test's
  // destroyed_at_once_after_a_task_woken_from_outside_ends).
  rouse::async::thread_pool pool(2);
  event_loop loop(GetParam());
  std::thread driver([&] { loop.run(); });
  {
    auto l = rouse::io::tcp_listener::bind(loop, endpoint::loopback_v4(0));
    ASSERT_TRUE(l);
    auto const addr = *l->local_endpoint();
    auto server = rouse::async::spawn(pool.get_scheduler(), [](rouse::io::tcp_listener& l) -> task<std::size_t> {
      auto s = co_await l.accept();
      EXPECT_TRUE(s);
      std::size_t n = 0;
      std::byte buf[1024];
      for (;;) {
        auto r = co_await s->read_some(buf);
        if (!r || *r == 0) break;
        n += *r;
        (void)co_await s->write_all(std::span(buf, *r));
      }
      co_return n;
    }(*l));
    auto client = rouse::async::spawn(pool.get_scheduler(), [](event_loop& loop, endpoint a) -> task<std::size_t> {
      auto c = co_await rouse::io::tcp_stream::connect(loop, a);
      EXPECT_TRUE(c);
      std::vector<std::byte> out(100000, std::byte{7});
      std::size_t back = 0;
      std::byte buf[4096];
      for (std::size_t sent = 0; sent < out.size(); sent += 1000) {
        (void)co_await c->write_all(std::span(out).subspan(sent, 1000));
        auto r = co_await c->read_exact(std::span(buf, 1000));
        if (r) back += *r;
      }
      (void)c->shutdown();
      co_return back;
    }(loop, addr));
    EXPECT_EQ(client.join(), 100000u);
    EXPECT_EQ(server.join(), 100000u);
  }
  loop.finish();
  driver.join();
}

// ---- every kind of operation, cancelled while it waits ---------------------

// What the operations below wait on: reads on a pair nobody writes to,
// writes into a socket and a pipe that are full, a UDP socket nobody sends
// to, a listener nobody connects to.
struct waiting_targets {
  rouse::io::tcp_stream quiet;  // its peer never writes
  rouse::io::tcp_stream quiet_peer;
  rouse::io::tcp_stream full;  // its send buffer is full
  rouse::io::tcp_stream full_peer;
  pipe_pair empty_pipe;
  pipe_pair full_pipe;
  udp_socket udp;
  rouse::io::tcp_listener listener;
};

task<rouse::io::tcp_stream> connected_to(event_loop& loop, rouse::io::tcp_listener& l,
                                         rouse::io::tcp_stream& accepted) {
  auto c = co_await rouse::io::tcp_stream::connect(loop, *l.local_endpoint());
  auto s = co_await l.accept();
  EXPECT_TRUE(c);
  EXPECT_TRUE(s);
  accepted = std::move(*s);
  co_return std::move(*c);
}

task<void> make_targets(event_loop& loop, waiting_targets& t) {
  auto l = rouse::io::tcp_listener::bind(loop, endpoint::loopback_v4(0));
  EXPECT_TRUE(l);
  t.quiet_peer = co_await connected_to(loop, *l, t.quiet);
  t.full = co_await connected_to(loop, *l, t.full_peer);
  (void)t.full.set_buffer_sizes(16384, 0);
  std::vector<std::byte> junk(65536);
  while (::send(t.full.native_handle(), junk.data(), junk.size(), MSG_NOSIGNAL | MSG_DONTWAIT) > 0) {
  }
  t.listener = std::move(*l);
  t.empty_pipe = make_pipe(loop);
  t.full_pipe = make_pipe(loop);
  while (::write(t.full_pipe.write_end.native_handle(), junk.data(), junk.size()) > 0) {
  }
  auto u = udp_socket::bind(loop, endpoint::loopback_v4(0));
  EXPECT_TRUE(u);
  t.udp = std::move(*u);
}

template <class Op>
rouse_test::handmade await_into(Op op, bool& resumed) {
  (void)co_await std::move(op);
  resumed = true;
}

constexpr std::size_t cancel_buffer_bytes = 4096;

// Cancels the operation `make` starts three ways: with_timeout, a stop
// token stopped from another thread, and its frame destroyed (on the
// loop's thread). Each must end it without a result and leave no request
// in the kernel; the buffer is freed right after (AddressSanitizer).
template <class Make>
void cancel_while_waiting(event_loop& loop, waiting_targets& t, Make make, const char* what) {
  SCOPED_TRACE(what);
  loop.run_until_complete([](waiting_targets& t, Make make) -> task<void> {
    auto buf = std::make_unique<std::byte[]>(cancel_buffer_bytes);
    auto r = co_await with_timeout(make(t, std::span(buf.get(), cancel_buffer_bytes)), 2ms);
    EXPECT_FALSE(r.has_value());
  }(t, make));

  rouse::async::inplace_stop_source source;
  std::atomic<bool> waiting{false};
  std::thread stopper([&] {
    while (!waiting.load()) std::this_thread::yield();
    std::this_thread::sleep_for(1ms);
    source.request_stop();
  });
  auto buf = std::make_unique<std::byte[]>(cancel_buffer_bytes);
  EXPECT_THROW(loop.run_until_complete(
                   [](waiting_targets& t, Make make, std::span<std::byte> b, std::atomic<bool>& waiting) -> task<void> {
                     waiting.store(true);
                     (void)co_await make(t, b);
                     ADD_FAILURE() << "resumed after stop";
                   }(t, make, std::span(buf.get(), cancel_buffer_bytes), waiting),
                   source.get_token()),
               rouse::async::operation_stopped);
  stopper.join();
  buf.reset();

  loop.run_until_complete([](event_loop& loop, waiting_targets& t, Make make) -> task<void> {
    auto buf = std::make_unique<std::byte[]>(cancel_buffer_bytes);
    bool resumed = false;
    rouse_test::handmade c = await_into(make(t, std::span(buf.get(), cancel_buffer_bytes)), resumed);
    c.h.resume();                              // runs to the operation, which waits
    co_await loop.get_scheduler().schedule();  // its request reaches the kernel
    co_await rouse::async::sleep_for(100us);
    EXPECT_FALSE(resumed);
    c.h.destroy();
  }(loop, t, make));
  EXPECT_EQ(loop.get_reactor().kernel_requests_in_flight(), 0);
}

// An operation in the kernel whose frame is destroyed on a thread whose
// submits fail (after the loop stopped: a shutdown order): the destructor's
// cancel is published, not submitted, and its wait for the operation's
// completion must submit it (it waited with nothing to submit: a hang).
rouse_test::handmade read_into(rouse::io::async_fd& f, bool& resumed) {
  std::byte buf[16];
  (void)co_await f.read_some(buf);
  resumed = true;
}

TEST_P(io_reactor, an_operation_abandoned_where_submits_fail_still_ends) {
  if (GetParam() != rouse::io::backend::io_uring) GTEST_SKIP() << "io_uring's submit only";
  event_loop loop(GetParam());
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  auto f = rouse::io::async_fd::adopt(loop, p[0]);
  ASSERT_TRUE(f);
  bool resumed = false;
  std::atomic<bool> running{false};
  std::thread driver([&] {
    running = true;
    loop.run();
  });
  rouse_test::eventually([&] { return running.load(); });
  rouse_test::handmade c = read_into(*f, resumed);
  c.h.resume();  // the read goes to the kernel (submitted from this thread)
  loop.finish();
  driver.join();
  bool filtered = false;
  std::thread destroyer([&] {
    filtered = rouse_test::fail_submit_only_enters();
    c.h.destroy();  // unfiltered too, where the filter cannot be installed
  });
  destroyer.join();
  EXPECT_FALSE(resumed);
  ::close(p[1]);
  if (!filtered) GTEST_SKIP() << "cannot install a seccomp filter here";
}

TEST_P(io_reactor, every_kind_of_operation_is_cancelled_mid_flight_three_ways) {
  event_loop loop(GetParam());
  waiting_targets t;
  loop.run_until_complete(make_targets(loop, t));
  using span = std::span<std::byte>;
  cancel_while_waiting(
      loop, t, [](waiting_targets& t, span b) { return t.quiet.read_some(b); }, "tcp read_some");
  cancel_while_waiting(
      loop, t, [](waiting_targets& t, span b) { return t.quiet.read_exact(b); }, "tcp read_exact");
  cancel_while_waiting(
      loop, t, [](waiting_targets& t, span b) { return t.full.write_some(b); }, "tcp write_some");
  cancel_while_waiting(
      loop, t, [](waiting_targets& t, span b) { return t.full.write_all(b); }, "tcp write_all");
  cancel_while_waiting(
      loop, t, [](waiting_targets& t, span b) { return t.empty_pipe.read_end.read_some(b); }, "pipe read_some");
  cancel_while_waiting(
      loop, t, [](waiting_targets& t, span b) { return t.full_pipe.write_end.write_all(b); }, "pipe write_all");
  cancel_while_waiting(
      loop, t, [](waiting_targets& t, span b) { return t.udp.recv_from(b); }, "udp recv_from");
  cancel_while_waiting(
      loop, t, [](waiting_targets& t, span) { return t.listener.accept(); }, "tcp accept");
  // Everything still works afterwards: the quiet pair carries a message.
  loop.run_until_complete([](waiting_targets& t) -> task<void> {
    (void)co_await t.quiet_peer.write_all(bytes_of("still"));
    std::byte b[5];
    auto r = co_await t.quiet.read_exact(b);
    EXPECT_TRUE(r);
    EXPECT_EQ(text_of(b), "still");
  }(t));
  if (loop.get_reactor().backend() == rouse::io::backend::io_uring) {
    EXPECT_GT(loop.get_reactor().kernel_requests(), 0u);
  }
}

// io_uring, readiness mode: close() while the descriptor's poll keeps
// firing (a peer writes). The kernel refuses a poll removal that meets a
// wake-up being handled (-EALREADY) and the poll stayed armed, holding the
// file open: the peer never saw the close, and its read here hung.
TEST(io_reactor_uring, close_while_the_poll_fires_closes_the_descriptor) {
  if (!rouse::io::reactor::io_uring_available()) GTEST_SKIP() << "io_uring is not available";
  event_loop loop(rouse::io::backend::io_uring, rouse::io::uring_operations::readiness);
  std::thread driver([&] { loop.run(); });
  {
    rouse::async::thread_pool pool(2);
    for (int round = 0; round < 300; ++round) {
      int sv[2];
      ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
      auto a = async_fd::adopt(loop, sv[0]);
      ASSERT_TRUE(a);
      auto h = rouse::async::spawn(pool.get_scheduler(), [](async_fd& fd) -> task<void> {
        std::byte b[1];
        (void)co_await fd.read_some(b);  // waits: the poll is armed; ends once the writer starts
      }(*a));
      std::atomic<bool> stop{false};
      std::thread writer([&] {
        char const c = 'x';
        while (!stop.load()) (void)::send(sv[1], &c, 1, MSG_DONTWAIT | MSG_NOSIGNAL);
      });
      h.join();
      for (int spin = 0; spin < (round % 8) * 50; ++spin) std::this_thread::yield();
      a->close();  // while the writer's data keeps waking the poll
      stop.store(true);
      writer.join();
      // The end (EOF, or a reset: the closed side had unread data) comes:
      // before, this read hung.
      char c;
      ssize_t const r = ::recv(sv[1], &c, 1, 0);
      int const err = errno;
      EXPECT_TRUE(r == 0 || (r < 0 && err == ECONNRESET)) << "round " << round << ": " << r << " " << err;
      ::close(sv[1]);
    }
  }
  loop.finish();
  driver.join();
}

// io_uring, readiness mode: a descriptor closed after its poll was armed,
// then the loop destroyed before it ran again: the destructor's reaping
// took the poll removal's completion for a futex wait's (a hang, waiting
// for a completion that never comes).
TEST(io_reactor_uring, a_loop_destroyed_right_after_a_close_ends) {
  if (!rouse::io::reactor::io_uring_available()) GTEST_SKIP() << "io_uring is not available";
  for (int round = 0; round < 5; ++round) {
    event_loop loop(rouse::io::backend::io_uring, rouse::io::uring_operations::readiness);
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    auto a = async_fd::adopt(loop, sv[0]);
    ASSERT_TRUE(a);
    std::thread writer([&] {
      std::this_thread::sleep_for(1ms);  // usually after the read waits (arms the poll)
      char const c = 'x';
      (void)::send(sv[1], &c, 1, MSG_NOSIGNAL);
    });
    loop.run_until_complete([](async_fd& fd) -> task<void> {
      std::byte b[1];
      (void)co_await fd.read_some(b);
    }(*a));
    writer.join();
    a->close();  // the removal's completion is left to the destructor
    ::close(sv[1]);
  }  // ~event_loop: a hang before
}

// io_uring, completion mode, where the kernel refuses a submit: a read
// queued by the loop's thread, then its object closed in the same round.
// The close's cancel could not be submitted, the descriptor was closed
// anyway, and the read, still published, was taken by the loop's next enter
// on whatever the number named by then: another socket's data went to the
// closed object's read (which completed with it), not to that socket.
TEST(io_reactor_uring, a_request_not_yet_submitted_never_runs_on_a_reused_descriptor) {
  if (!rouse::io::reactor::io_uring_available()) GTEST_SKIP() << "io_uring is not available";
  bool filtered = false;
  std::string read_result;
  std::string other_got;
  std::thread t([&] {  // the filter stays with the thread that installs it
    event_loop loop(rouse::io::backend::io_uring);
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    auto a = async_fd::adopt(loop, sv[0]);
    ASSERT_TRUE(a);
    filtered = rouse_test::fail_submit_only_enters();
    int other[2] = {-1, -1};
    loop.run_until_complete([](event_loop& loop, async_fd& a, int (&other)[2], std::string& read_result) -> task<void> {
      rouse::async::task_scope scope;
      std::byte buf[16];
      scope.spawn(loop.get_scheduler(), [](async_fd& a, std::byte (&buf)[16], std::string& out) -> task<void> {
        auto r = co_await a.read_some(buf);  // queued for the loop's next enter
        out = r ? "read " + text_of(std::span(buf, *r)) : r.error().message();
      }(a, buf, read_result));
      co_await loop.get_scheduler().schedule();  // the reader runs and waits
      int const number = a.native_handle();
      a.close();
      // A socket under the closed descriptor's number, with data waiting.
      EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, other), 0);
      if (other[0] != number) {
        if (other[1] == number) {
          std::swap(other[0], other[1]);
        } else {
          EXPECT_EQ(::dup2(other[0], number), number);
          ::close(other[0]);
          other[0] = number;
        }
      }
      EXPECT_EQ(::write(other[1], "other", 5), 5);
      co_await scope.join();
    }(loop, *a, other, read_result));
    char got[16];
    ssize_t const n = ::read(other[0], got, sizeof got);
    other_got = n > 0 ? std::string(got, static_cast<std::size_t>(n)) : std::to_string(n);
    ::close(other[0]);
    ::close(other[1]);
    ::close(sv[1]);
  });
  t.join();
  EXPECT_EQ(read_result, std::make_error_code(std::errc::operation_canceled).message());
  EXPECT_EQ(other_got, "other");
  if (!filtered) GTEST_SKIP() << "cannot install a seccomp filter here";
}

INSTANTIATE_TEST_SUITE_P(backends, io_reactor, ::testing::ValuesIn(rouse_test::io_backends()),
                         rouse_test::io_backend_name);

}  // namespace
}  // namespace io_reactor_test
