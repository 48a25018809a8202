// rouse::io::tcp_listener / tcp_stream on loopback: accept and connect (v4,
// v6, refused), partial reads, EOF, peer reset, a full send buffer, EAGAIN
// storms, close with operations pending, and cancellation of every kind of
// operation mid-flight (stop token from the loop and from another thread,
// with_timeout, a destroyed frame) with the buffer freed right after: under
// AddressSanitizer the reactor must never touch it again.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "io_test.hpp"
#include "rouse/async/sleep.hpp"
#include "rouse/async/spawn.hpp"
#include "rouse/async/task.hpp"
#include "rouse/async/timeout.hpp"
#include "rouse/io/handle.hpp"
#include "rouse/io/reactor.hpp"
#include "rouse/io/tcp.hpp"

namespace io_tcp_test {
namespace {
using namespace std::chrono_literals;
using rouse::async::inplace_stop_source;
using rouse::async::operation_stopped;
using rouse::async::task;
using rouse::async::with_timeout;
using rouse::io::endpoint;
using rouse::io::event_loop;
using rouse::io::io_result;
using rouse::io::tcp_listener;
using rouse::io::tcp_stream;
using rouse_test::bytes_of;
using rouse_test::text_of;

class io_tcp : public ::testing::TestWithParam<rouse::io::backend> {};
class io_tcp_cancel : public ::testing::TestWithParam<rouse::io::backend> {};

struct connected_pair {
  tcp_stream client;
  tcp_stream server;
};

task<connected_pair> make_pair(event_loop& loop, endpoint where = endpoint::loopback_v4(0)) {
  auto listener = tcp_listener::bind(loop, where);
  EXPECT_TRUE(listener) << listener.error().message();
  auto const addr = listener->local_endpoint();
  auto client = co_await tcp_stream::connect(loop, *addr);
  EXPECT_TRUE(client) << client.error().message();
  auto server = co_await listener->accept();
  EXPECT_TRUE(server) << server.error().message();
  co_return connected_pair{std::move(*client), std::move(*server)};
}

// The loop's thread runs other tasks while `op` waits: yields a few times.
task<void> yield_a_few(event_loop& loop, int n = 3) {
  for (int i = 0; i < n; ++i) co_await loop.get_scheduler().schedule();
}

TEST_P(io_tcp, accept_connect_and_exchange_v4) {
  event_loop loop(GetParam());
  std::string got = loop.run_until_complete([](event_loop& loop) -> task<std::string> {
    auto p = co_await make_pair(loop);
    auto w = co_await p.client.write_all(bytes_of("hello"));
    EXPECT_TRUE(w);
    std::byte buf[5];
    auto r = co_await p.server.read_exact(buf);
    EXPECT_TRUE(r);
    EXPECT_EQ(*r, 5u);
    co_return text_of(buf);
  }(loop));
  EXPECT_EQ(got, "hello");
}

TEST_P(io_tcp, accept_connect_and_exchange_v6) {
  event_loop loop(GetParam());
  // A machine without IPv6 on loopback cannot bind ::1: that is not a failure here.
  auto probe = tcp_listener::bind(loop, endpoint::loopback_v6(0));
  if (!probe) GTEST_SKIP() << "no IPv6 loopback: " << probe.error().message();
  probe->close();
  std::string got = loop.run_until_complete([](event_loop& loop) -> task<std::string> {
    auto p = co_await make_pair(loop, endpoint::loopback_v6(0));
    (void)co_await p.server.write_all(bytes_of("six"));
    std::byte buf[3];
    auto r = co_await p.client.read_exact(buf);
    EXPECT_TRUE(r);
    co_return text_of(buf);
  }(loop));
  EXPECT_EQ(got, "six");
}

TEST_P(io_tcp, read_waits_for_data_written_later) {
  event_loop loop(GetParam());
  auto got = loop.run_until_complete([](event_loop& loop) -> task<std::string> {
    auto p = co_await make_pair(loop);
    rouse::async::task_scope scope;
    scope.spawn(loop.get_scheduler(), [](tcp_stream& s, event_loop& loop) -> task<void> {
      co_await yield_a_few(loop);
      co_await rouse::async::sleep_for(1ms);
      (void)co_await s.write_all(bytes_of("late"));
    }(p.client, loop));
    std::byte buf[4];
    auto r = co_await p.server.read_exact(buf);  // suspends: nothing there yet
    co_await scope.join();
    EXPECT_TRUE(r);
    co_return text_of(buf);
  }(loop));
  EXPECT_EQ(got, "late");
  EXPECT_GE(loop.get_reactor().readiness_wakeups(), 1u);
}

// An empty buffer is full already: reads and writes of nothing complete at
// once with 0, though the peer sends nothing (a zero-length recv waited for
// data before, on both backends: a hang here).
TEST_P(io_tcp, reads_and_writes_of_an_empty_buffer_complete_at_once_with_zero) {
  event_loop loop(GetParam());
  auto ok = loop.run_until_complete([](event_loop& loop) -> task<bool> {
    auto p = co_await make_pair(loop);
    std::span<std::byte> none;
    auto a = co_await p.server.read_some(none);
    auto b = co_await p.server.read_exact(none);
    auto c = co_await p.server.write_some(std::span<const std::byte>());
    auto d = co_await p.server.write_all(std::span<const std::byte>());
    co_return a && *a == 0 && b && *b == 0 && c && *c == 0 && d && *d == 0;
  }(loop));
  EXPECT_TRUE(ok);
}

TEST_P(io_tcp, read_some_returns_what_fits_and_leaves_the_rest) {
  event_loop loop(GetParam());
  loop.run_until_complete([](event_loop& loop) -> task<void> {
    auto p = co_await make_pair(loop);
    (void)co_await p.client.write_all(bytes_of("0123456789"));
    std::byte small[4];
    auto a = co_await p.server.read_exact(small);
    EXPECT_EQ(text_of(small), "0123");
    auto b = co_await p.server.read_some(small);
    EXPECT_TRUE(b);
    EXPECT_GE(*b, 1u);
    EXPECT_EQ(text_of(std::span(small, *b)), std::string("4567").substr(0, *b));
    (void)a;
  }(loop));
}

TEST_P(io_tcp, eof_reads_zero_and_read_exact_reports_eof) {
  event_loop loop(GetParam());
  loop.run_until_complete([](event_loop& loop) -> task<void> {
    auto p = co_await make_pair(loop);
    (void)co_await p.client.write_all(bytes_of("ab"));
    EXPECT_TRUE(p.client.shutdown(SHUT_WR));
    std::byte buf[8];
    auto r = co_await p.server.read_exact(buf);  // 2 of 8, then end of stream
    EXPECT_FALSE(r);
    EXPECT_EQ(r.error(), rouse::io::io_errc::eof);
    auto z = co_await p.server.read_some(buf);
    EXPECT_TRUE(z);
    EXPECT_EQ(*z, 0u);
  }(loop));
}

TEST_P(io_tcp, eof_wakes_a_waiting_reader) {
  event_loop loop(GetParam());
  loop.run_until_complete([](event_loop& loop) -> task<void> {
    auto p = co_await make_pair(loop);
    rouse::async::task_scope scope;
    scope.spawn(loop.get_scheduler(), [](tcp_stream& s, event_loop& loop) -> task<void> {
      co_await yield_a_few(loop);
      (void)s.shutdown(SHUT_WR);
    }(p.client, loop));
    std::byte buf[8];
    auto z = co_await p.server.read_some(buf);
    co_await scope.join();
    EXPECT_TRUE(z);
    EXPECT_EQ(*z, 0u);
  }(loop));
}

void reset_on_close(tcp_stream& s) {
  linger l{1, 0};  // close() sends RST
  ASSERT_EQ(::setsockopt(s.native_handle(), SOL_SOCKET, SO_LINGER, &l, sizeof l), 0);
  s.close();
}

TEST_P(io_tcp, peer_reset_fails_a_waiting_read_with_connection_reset) {
  event_loop loop(GetParam());
  loop.run_until_complete([](event_loop& loop) -> task<void> {
    auto p = co_await make_pair(loop);
    rouse::async::task_scope scope;
    scope.spawn(loop.get_scheduler(), [](tcp_stream& s, event_loop& loop) -> task<void> {
      co_await yield_a_few(loop);
      reset_on_close(s);
    }(p.client, loop));
    std::byte buf[8];
    auto r = co_await p.server.read_some(buf);
    co_await scope.join();
    EXPECT_FALSE(r);
    EXPECT_EQ(r.error(), std::errc::connection_reset);
  }(loop));
}

TEST_P(io_tcp, write_to_a_reset_peer_fails_without_a_signal) {
  event_loop loop(GetParam());
  loop.run_until_complete([](event_loop& loop) -> task<void> {
    auto p = co_await make_pair(loop);
    reset_on_close(p.client);
    std::vector<std::byte> big(1 << 20);
    // The first write may be accepted before the RST is seen; keep writing.
    io_result<std::size_t> r;
    for (int i = 0; i < 64 && r; ++i) r = co_await p.server.write_all(big);
    EXPECT_FALSE(r);
    EXPECT_TRUE(r.error() == std::errc::broken_pipe || r.error() == std::errc::connection_reset) << r.error().message();
  }(loop));
}

TEST_P(io_tcp, connect_refused) {
  event_loop loop(GetParam());
  // A port that was just free: bind, read it, close.
  auto l = tcp_listener::bind(loop, endpoint::loopback_v4(0));
  ASSERT_TRUE(l);
  auto const addr = *l->local_endpoint();
  l->close();
  auto r = loop.run_until_complete([](event_loop& loop, endpoint a) -> task<io_result<tcp_stream>> {
    co_return co_await tcp_stream::connect(loop, a);
  }(loop, addr));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), std::errc::connection_refused);
}

TEST_P(io_tcp, full_send_buffer_write_all_waits_for_the_reader) {
  event_loop loop(GetParam());
  constexpr std::size_t total = 2u << 20;
  auto got = loop.run_until_complete([](event_loop& loop) -> task<std::size_t> {
    auto p = co_await make_pair(loop);
    (void)p.client.set_buffer_sizes(16384, 0);
    std::vector<std::byte> out(total);
    for (std::size_t i = 0; i < total; ++i) out[i] = static_cast<std::byte>(i * 7);
    rouse::async::task_scope scope;
    scope.spawn(loop.get_scheduler(), [](tcp_stream& s, std::span<const std::byte> b) -> task<void> {
      auto w = co_await s.write_all(b);  // fills the buffer many times over
      EXPECT_TRUE(w);
      EXPECT_EQ(*w, b.size());
      (void)s.shutdown(SHUT_WR);
    }(p.client, out));
    std::vector<std::byte> in;
    std::byte chunk[1000];
    for (;;) {
      auto r = co_await p.server.read_some(chunk);
      EXPECT_TRUE(r);
      if (!r || *r == 0) break;
      in.insert(in.end(), chunk, chunk + *r);
    }
    co_await scope.join();
    EXPECT_TRUE(in == out);
    co_return in.size();
  }(loop));
  EXPECT_EQ(got, total);
}

TEST_P(io_tcp, write_some_on_a_full_buffer_is_partial_then_waits) {
  event_loop loop(GetParam());
  loop.run_until_complete([](event_loop& loop) -> task<void> {
    auto p = co_await make_pair(loop);
    (void)p.client.set_buffer_sizes(16384, 0);
    std::vector<std::byte> big(4u << 20);
    auto w = co_await p.client.write_some(big);  // never all of it
    EXPECT_TRUE(w);
    EXPECT_GT(*w, 0u);
    EXPECT_LT(*w, big.size());
    // Now full: the next write waits until the reader drains some.
    rouse::async::task_scope scope;
    std::size_t drained = 0;
    scope.spawn(loop.get_scheduler(), [](tcp_stream& s, std::size_t& drained) -> task<void> {
      std::byte chunk[65536];
      auto r = co_await s.read_some(chunk);
      if (r) drained += *r;
    }(p.server, drained));
    auto w2 = co_await p.client.write_some(big);
    co_await scope.join();
    EXPECT_TRUE(w2);
    EXPECT_GT(*w2, 0u);
    EXPECT_GT(drained, 0u);
  }(loop));
}

TEST_P(io_tcp, eagain_storm_one_byte_ping_pong) {
  event_loop loop(GetParam());
  constexpr int rounds = 5000;
  int done = loop.run_until_complete([](event_loop& loop) -> task<int> {
    auto p = co_await make_pair(loop);
    (void)p.client.set_nodelay(true);
    (void)p.server.set_nodelay(true);
    rouse::async::task_scope scope;
    scope.spawn(loop.get_scheduler(), [](tcp_stream& s) -> task<void> {
      std::byte b[1];
      for (int i = 0; i < rounds; ++i) {
        if (!co_await s.read_exact(b)) co_return;
        if (!co_await s.write_all(b)) co_return;
      }
    }(p.server));
    int ok = 0;
    for (int i = 0; i < rounds; ++i) {
      std::byte b[1] = {static_cast<std::byte>(i)};
      (void)co_await p.client.write_all(b);
      std::byte e[1];
      auto r = co_await p.client.read_exact(e);  // every read finds nothing first
      if (r && e[0] == static_cast<std::byte>(i)) ++ok;
    }
    co_await scope.join();
    co_return ok;
  }(loop));
  EXPECT_EQ(done, rounds);
}

TEST_P(io_tcp, close_completes_pending_operations_with_operation_canceled) {
  event_loop loop(GetParam());
  loop.run_until_complete([](event_loop& loop) -> task<void> {
    auto p = co_await make_pair(loop);
    rouse::async::task_scope scope;
    scope.spawn(loop.get_scheduler(), [](tcp_stream& s, event_loop& loop) -> task<void> {
      co_await yield_a_few(loop);
      s.close();
    }(p.server, loop));
    std::byte buf[8];
    auto r = co_await p.server.read_some(buf);
    co_await scope.join();
    EXPECT_FALSE(r);
    EXPECT_EQ(r.error(), std::errc::operation_canceled);
    auto again = co_await p.server.read_some(buf);  // closed: EBADF
    EXPECT_EQ(again.error(), std::errc::bad_file_descriptor);
  }(loop));
}

// ---- cancellation ---------------------------------------------------------

TEST_P(io_tcp_cancel, read_times_out_and_its_buffer_is_never_touched_again) {
  event_loop loop(GetParam());
  loop.run_until_complete([](event_loop& loop) -> task<void> {
    auto p = co_await make_pair(loop);
    auto buf = std::make_unique<std::byte[]>(64);
    auto r = co_await with_timeout(p.server.read_some(std::span(buf.get(), 64)), 5ms);
    EXPECT_FALSE(r.has_value());  // timed out
    buf.reset();                  // ASan: any later write into it is caught
    (void)co_await p.client.write_all(bytes_of("after"));
    co_await rouse::async::sleep_for(1ms);  // the reactor sees the edge
    std::byte fresh[5];
    auto r2 = co_await p.server.read_exact(fresh);
    EXPECT_TRUE(r2);
    EXPECT_EQ(text_of(fresh), "after");  // nothing was lost to the cancelled read
  }(loop));
}

TEST_P(io_tcp_cancel, write_all_times_out_mid_transfer_and_reports_stopped) {
  event_loop loop(GetParam());
  loop.run_until_complete([](event_loop& loop) -> task<void> {
    auto p = co_await make_pair(loop);
    (void)p.client.set_buffer_sizes(16384, 0);
    auto big = std::make_unique<std::vector<std::byte>>(8u << 20);
    auto r = co_await with_timeout(p.client.write_all(*big), 5ms);  // nobody reads
    EXPECT_FALSE(r.has_value());
    big.reset();
    // The reader now drains: writable edges come, and must not reach the old op.
    std::byte chunk[65536];
    auto got = co_await p.server.read_some(chunk);
    EXPECT_TRUE(got);
    co_await rouse::async::sleep_for(1ms);
  }(loop));
}

TEST_P(io_tcp_cancel, read_exact_cancelled_midway_frees_its_buffer_safely) {
  event_loop loop(GetParam());
  loop.run_until_complete([](event_loop& loop) -> task<void> {
    auto p = co_await make_pair(loop);
    (void)co_await p.client.write_all(bytes_of("abc"));  // 3 of the 8 it wants
    auto buf = std::make_unique<std::byte[]>(8);
    auto r = co_await with_timeout(p.server.read_exact(std::span(buf.get(), 8)), 3ms);
    EXPECT_FALSE(r.has_value());  // the 3 bytes it took are gone with it (docs/io.md)
    buf.reset();
    (void)co_await p.client.write_all(bytes_of("defgh"));
    co_await rouse::async::sleep_for(1ms);
    std::byte rest[5];
    auto r2 = co_await p.server.read_exact(rest);
    EXPECT_TRUE(r2);
    EXPECT_EQ(text_of(rest), "defgh");
  }(loop));
}

TEST_P(io_tcp_cancel, write_some_on_a_full_buffer_times_out) {
  event_loop loop(GetParam());
  loop.run_until_complete([](event_loop& loop) -> task<void> {
    auto p = co_await make_pair(loop);
    (void)p.client.set_buffer_sizes(16384, 0);
    std::vector<std::byte> big(1u << 20);
    // Fill the send buffer and the peer's receive buffer.
    for (;;) {
      auto w = co_await with_timeout(p.client.write_some(big), 3ms);
      if (!w.has_value()) break;  // full: the write waited and was cancelled
      EXPECT_TRUE(*w);
    }
    // Still usable: the reader drains, a new write goes through.
    std::byte chunk[65536];
    auto got = co_await p.server.read_some(chunk);
    EXPECT_TRUE(got);
    auto w2 = co_await with_timeout(p.client.write_some(std::span(big).first(1)), 1h);
    EXPECT_TRUE(w2.has_value());
  }(loop));
}

TEST_P(io_tcp_cancel, accept_times_out) {
  event_loop loop(GetParam());
  loop.run_until_complete([](event_loop& loop) -> task<void> {
    auto l = tcp_listener::bind(loop, endpoint::loopback_v4(0));
    auto r = co_await with_timeout(l->accept(), 2ms);
    EXPECT_FALSE(r.has_value());
    // Still usable afterwards.
    auto c = co_await tcp_stream::connect(loop, *l->local_endpoint());
    auto s = co_await l->accept();
    EXPECT_TRUE(c);
    EXPECT_TRUE(s);
  }(loop));
}

// Connects to `addr` (a listener with backlog 0 that nobody accepts from)
// until one does not complete within 20 ms: the accept queue is full and
// later SYNs are dropped, so a connect stays in progress. True once one
// timed out (it was cancelled mid-flight).
task<bool> fill_backlog(event_loop& loop, endpoint addr, std::vector<tcp_stream>& fillers) {
  for (int i = 0; i < 16; ++i) {
    auto r = co_await with_timeout(tcp_stream::connect(loop, addr), 20ms);
    if (!r.has_value()) co_return true;
    if (*r) fillers.push_back(std::move(**r));
  }
  co_return false;
}

TEST_P(io_tcp_cancel, connect_to_a_full_backlog_times_out) {
  event_loop loop(GetParam());
  loop.run_until_complete([](event_loop& loop) -> task<void> {
    auto l = tcp_listener::bind(loop, endpoint::loopback_v4(0), 0);
    std::vector<tcp_stream> fillers;
    EXPECT_TRUE(co_await fill_backlog(loop, *l->local_endpoint(), fillers))
        << "the backlog never filled: connect could not be cancelled mid-flight";
  }(loop));
}

rouse_test::handmade connect_into(event_loop& loop, endpoint addr, bool& resumed) {
  (void)co_await tcp_stream::connect(loop, addr);
  resumed = true;
}

TEST_P(io_tcp_cancel, destroyed_frame_abandons_its_connect) {
  event_loop loop(GetParam());
  loop.run_until_complete([](event_loop& loop) -> task<void> {
    auto l = tcp_listener::bind(loop, endpoint::loopback_v4(0), 0);
    endpoint const addr = *l->local_endpoint();
    std::vector<tcp_stream> fillers;
    EXPECT_TRUE(co_await fill_backlog(loop, addr, fillers));
    bool resumed = false;
    rouse_test::handmade c = connect_into(loop, addr, resumed);
    c.h.resume();  // to the connect, which waits: the backlog is full
    EXPECT_FALSE(resumed);
    c.h.destroy();  // io_uring: returns once the kernel gave the request back
    EXPECT_EQ(loop.get_reactor().kernel_requests_in_flight(), 0);
    co_await rouse::async::sleep_for(1ms);
    EXPECT_FALSE(resumed);
  }(loop));
}

TEST_P(io_tcp_cancel, stop_token_from_the_loop_completes_as_stopped) {
  event_loop loop(GetParam());
  inplace_stop_source source;
  std::atomic<bool> waiting{false};
  // A neighbour task on the same loop requests the stop once the read waits.
  auto stopper = rouse::async::spawn(
      loop.get_scheduler(), [](std::atomic<bool>& waiting, event_loop& loop, inplace_stop_source& s) -> task<void> {
        while (!waiting.load()) co_await loop.get_scheduler().schedule();
        co_await yield_a_few(loop);
        s.request_stop();
      }(waiting, loop, source));
  EXPECT_THROW(loop.run_until_complete(
                   [](event_loop& loop, std::atomic<bool>& waiting) -> task<void> {
                     auto p = co_await make_pair(loop);
                     std::byte buf[8];
                     waiting.store(true);
                     (void)co_await p.server.read_some(buf);  // stopped here
                     ADD_FAILURE() << "resumed after stop";
                   }(loop, waiting),
                   source.get_token()),
               operation_stopped);
  loop.executor().run_until([&] { return stopper.is_done(); });
}

TEST_P(io_tcp_cancel, stop_from_another_thread_wakes_the_parked_loop) {
  event_loop loop(GetParam());
  inplace_stop_source source;
  std::atomic<bool> waiting{false};
  std::thread stopper([&] {
    while (!waiting.load()) std::this_thread::yield();
    source.request_stop();  // the loop is parked in epoll, or about to be
  });
  EXPECT_THROW(loop.run_until_complete(
                   [](event_loop& loop, std::atomic<bool>& waiting) -> task<void> {
                     auto p = co_await make_pair(loop);
                     std::vector<std::byte> buf(64);
                     waiting.store(true);
                     (void)co_await p.server.read_some(buf);
                     ADD_FAILURE() << "resumed after stop";
                   }(loop, waiting),
                   source.get_token()),
               operation_stopped);
  stopper.join();
}

using rouse_test::handmade;

handmade read_into(tcp_stream& s, std::span<std::byte> buf, bool& resumed) {
  (void)co_await s.read_some(buf);
  resumed = true;
}

TEST_P(io_tcp_cancel, destroyed_frame_withdraws_its_read) {
  event_loop loop(GetParam());
  loop.run_until_complete([](event_loop& loop) -> task<void> {
    auto p = co_await make_pair(loop);
    auto buf = std::make_unique<std::byte[]>(16);
    bool resumed = false;
    handmade c = read_into(p.server, std::span(buf.get(), 16), resumed);
    c.h.resume();  // runs to the read, which waits
    EXPECT_FALSE(resumed);
    c.h.destroy();
    buf.reset();
    (void)co_await p.client.write_all(bytes_of("x"));
    co_await rouse::async::sleep_for(1ms);
    EXPECT_FALSE(resumed);
    std::byte b[1];
    EXPECT_TRUE(co_await p.server.read_exact(b));
  }(loop));
}

TEST_P(io_tcp_cancel, foreign_coroutine_gets_operation_stopped_from_when_any_loser) {
  // with_timeout over a read in a task awaited by a rouse task: the result is
  // "timed out", and a second read then gets the data.
  event_loop loop(GetParam());
  loop.run_until_complete([](event_loop& loop) -> task<void> {
    auto p = co_await make_pair(loop);
    for (int i = 0; i < 50; ++i) {
      std::byte buf[4];
      auto r = co_await with_timeout(p.server.read_some(buf), 1us);
      EXPECT_FALSE(r.has_value());
    }
    (void)co_await p.client.write_all(bytes_of("ok"));
    std::byte b[2];
    auto r = co_await with_timeout(p.server.read_exact(b), 1h);
    EXPECT_TRUE(r.has_value());
    EXPECT_TRUE(*r);
  }(loop));
}

// ---- the kernel holds the buffer (io_uring), cancellation mid-flight -------

bool is_uring(event_loop& loop) { return loop.get_reactor().backend() == rouse::io::backend::io_uring; }

// A connected pair made without the loop running (AF_UNIX: recv and send
// behave as on TCP), for tests that drive the loop from another thread.
struct unix_pair {
  tcp_stream a;
  tcp_stream b;
};
unix_pair make_unix_pair(event_loop& loop) {
  int sv[2];
  EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  auto a = rouse::io::io_handle::adopt(loop, sv[0]);
  auto b = rouse::io::io_handle::adopt(loop, sv[1]);
  EXPECT_TRUE(a);
  EXPECT_TRUE(b);
  return {tcp_stream(std::move(*a)), tcp_stream(std::move(*b))};
}

// Two reads that complete in one batch, for coroutines without an
// executor (resumed inline, one after the other, by the reactor): the first
// destroys the second's frame, whose read has completed but which has not
// been resumed. The second must then never be touched (ASan: a
// use-after-free of its frame; plain builds: a crash or a resume).
handmade read_then_destroy(tcp_stream& s, handmade& other) {
  std::byte b[1];
  (void)co_await s.read_some(b);
  other.h.destroy();
  other.h = {};
}
TEST_P(io_tcp_cancel, a_frame_destroyed_by_an_earlier_completion_of_its_batch_is_not_touched) {
  event_loop loop(GetParam());
  auto first = make_unix_pair(loop);
  auto second = make_unix_pair(loop);
  auto buf = std::make_unique<std::byte[]>(8);
  bool resumed = false;
  handmade victim = read_into(second.b, std::span(buf.get(), 8), resumed);
  handmade killer = read_then_destroy(first.b, victim);
  loop.run_until_complete([](handmade& k, handmade& v) -> task<void> {
    k.h.resume();  // both reads wait: the killer's registered first
    v.h.resume();
    co_return;
  }(killer, victim));
  ASSERT_EQ(::write(first.a.native_handle(), "x", 1), 1);
  ASSERT_EQ(::write(second.a.native_handle(), "y", 1), 1);
  loop.run_until_complete([]() -> task<void> { co_await rouse::async::sleep_for(5ms); }());
  EXPECT_FALSE(resumed);
  EXPECT_FALSE(victim.h);
  killer.h.destroy();
  // And the same through close(): both waiting reads of one stream
  // complete in one batch, the killer's first (close() completes the
  // waiting reads newest first; io_uring's cancellations complete in the
  // order the requests went in).
  auto shared = make_unix_pair(loop);
  resumed = false;
  handmade victim2 = read_into(shared.b, std::span(buf.get(), 8), resumed);
  handmade killer2 = read_then_destroy(shared.b, victim2);
  loop.run_until_complete([](handmade& k, handmade& v, bool killer_first) -> task<void> {
    (killer_first ? k : v).h.resume();
    (killer_first ? v : k).h.resume();
    co_return;
  }(killer2, victim2, is_uring(loop)));
  shared.b.close();
  loop.run_until_complete([]() -> task<void> { co_await rouse::async::sleep_for(5ms); }());
  EXPECT_FALSE(resumed);
  EXPECT_FALSE(victim2.h);
  killer2.h.destroy();
}

// A coroutine resumed inline from a batch that closes a descriptor with a
// waiting operation completes that one inside its close(), but not the
// rest of its own batch: an unrelated coroutine whose read completed in
// the same batch runs after the closer suspends, as it would without the
// close.
handmade read_then_close(tcp_stream& s, tcp_stream& other, bool& other_ran, bool& ran_inside_close) {
  std::byte b[1];
  (void)co_await s.read_some(b);
  other.close();
  ran_inside_close = other_ran;
}
TEST_P(io_tcp_cancel, a_close_inside_a_batch_runs_no_other_coroutine_of_that_batch) {
  event_loop loop(GetParam());
  auto k = make_unix_pair(loop);
  auto x = make_unix_pair(loop);
  auto v = make_unix_pair(loop);
  auto kbuf = std::make_unique<std::byte[]>(8);
  auto xbuf = std::make_unique<std::byte[]>(8);
  auto vbuf = std::make_unique<std::byte[]>(8);
  bool x_resumed = false, v_resumed = false, ran_inside_close = true;
  handmade closer = read_then_close(k.b, x.b, v_resumed, ran_inside_close);
  handmade waiter = read_into(x.b, std::span(xbuf.get(), 8), x_resumed);
  handmade unrelated = read_into(v.b, std::span(vbuf.get(), 8), v_resumed);
  loop.run_until_complete([](handmade& a, handmade& b, handmade& c) -> task<void> {
    a.h.resume();
    b.h.resume();
    c.h.resume();
    co_return;
  }(closer, waiter, unrelated));
  ASSERT_EQ(::write(k.a.native_handle(), "k", 1), 1);  // the closer's read first,
  ASSERT_EQ(::write(v.a.native_handle(), "v", 1), 1);  // the unrelated one in the same batch
  loop.run_until_complete([](bool& v_resumed) -> task<void> {
    while (!v_resumed) co_await rouse::async::sleep_for(1ms);
  }(v_resumed));
  EXPECT_FALSE(ran_inside_close);
  loop.run_until_complete([](bool& x_resumed) -> task<void> {
    while (!x_resumed) co_await rouse::async::sleep_for(1ms);
  }(x_resumed));
  closer.h.destroy();
  waiter.h.destroy();
  unrelated.h.destroy();
}

#if ROUSE_DEBUG_CHECKS && !defined(ROUSE_SANITIZER_thread)
// A loop destroyed while an I/O object registered with it is still open
// (the object would outlive its reactor; or a task waiting on its I/O was
// never joined, as per_core's cores must): diagnosed.
TEST_P(io_tcp_cancel, destroying_a_loop_with_an_open_stream_is_diagnosed) {
  EXPECT_DEATH(
      {
        auto loop = std::make_unique<event_loop>(GetParam());
        auto pair = make_unix_pair(*loop);
        loop.reset();
      },
      "rouse::io::reactor: misuse: destroyed while I/O objects registered with it are open");
}
#endif

constexpr std::byte sentinel{0xee};  // never in the streams below (bytes < 200)
bool all_sentinel(std::span<const std::byte> b) {
  for (std::byte x : b)
    if (x != sentinel) return false;
  return true;
}

TEST_P(io_tcp_cancel, a_waiting_read_is_carried_out_by_the_kernel_on_io_uring) {
  event_loop loop(GetParam());
  loop.run_until_complete([](event_loop& loop) -> task<void> {
    auto p = co_await make_pair(loop);
    rouse::async::task_scope scope;
    scope.spawn(loop.get_scheduler(), [](tcp_stream& s, event_loop& loop) -> task<void> {
      co_await yield_a_few(loop);
      (void)co_await s.write_all(bytes_of("kernel"));
    }(p.client, loop));
    std::byte buf[6];
    auto r = co_await p.server.read_exact(buf);
    co_await scope.join();
    EXPECT_TRUE(r);
    EXPECT_EQ(text_of(buf), "kernel");
  }(loop));
  auto& r = loop.get_reactor();
  if (is_uring(loop))
    EXPECT_GT(r.kernel_requests(), 0u);  // a reactor that made the call itself would show none
  else
    EXPECT_EQ(r.kernel_requests(), 0u);
  EXPECT_EQ(r.kernel_requests_in_flight(), 0);
}

// A thread writes a numbered byte stream in small pieces while the loop
// reads it with reads that time out after 0-39 µs (most are cancelled while
// the kernel holds them; some complete as the timer fires). Every byte is
// reported exactly once, in order; every buffer of a cancelled read is
// filled with a sentinel right after the cancellation returns and must
// still hold it at the end (a kernel write after the cancellation would
// show); half of them are freed at once instead (AddressSanitizer).
constexpr std::size_t cancelled_stream_bytes = 60000;

TEST_P(io_tcp_cancel, cancelled_reads_lose_no_bytes_and_their_buffers_are_not_written_afterwards) {
  event_loop loop(GetParam());
  loop.run_until_complete([](event_loop& loop) -> task<void> {
    auto p = co_await make_pair(loop);
    (void)p.client.set_nodelay(true);
    int const fd = p.client.native_handle();
    std::thread writer([fd] {
      constexpr std::size_t total = cancelled_stream_bytes;
      std::byte chunk[7];
      std::size_t sent = 0;
      while (sent < total) {
        std::size_t const n = std::min<std::size_t>(1 + sent % 7, total - sent);
        for (std::size_t k = 0; k < n; ++k) chunk[k] = static_cast<std::byte>((sent + k) % 200);
        ssize_t const w = ::send(fd, chunk, n, MSG_NOSIGNAL);
        if (w > 0) sent += static_cast<std::size_t>(w);
        if ((sent & 63) == 0) std::this_thread::sleep_for(std::chrono::microseconds(20));
        if (w < 0) std::this_thread::yield();
      }
      ::shutdown(fd, SHUT_WR);
    });
    std::vector<std::unique_ptr<std::byte[]>> kept;
    std::size_t next = 0;
    int timed_out = 0;
    bool in_order = true;
    for (int i = 0;; ++i) {
      constexpr std::size_t size = 16;
      auto buf = std::make_unique<std::byte[]>(size);
      auto r = co_await with_timeout(p.server.read_some(std::span(buf.get(), size)), std::chrono::microseconds(i % 40));
      if (!r.has_value()) {
        ++timed_out;
        std::fill_n(buf.get(), size, sentinel);
        if (i % 2 == 0 && kept.size() < 20000) kept.push_back(std::move(buf));
        continue;
      }
      EXPECT_TRUE(*r) << r->error().message();
      if (!*r || **r == 0) break;
      for (std::size_t k = 0; k < **r; ++k, ++next)
        if (buf[k] != static_cast<std::byte>(next % 200)) in_order = false;
    }
    writer.join();
    EXPECT_EQ(next, cancelled_stream_bytes);  // nothing lost, nothing twice
    EXPECT_TRUE(in_order);
    EXPECT_GT(timed_out, 0);
    std::size_t touched = 0;
    for (auto& b : kept)
      if (!all_sentinel(std::span(b.get(), 16))) ++touched;
    EXPECT_EQ(touched, 0u) << "buffers written after their read was cancelled";
  }(loop));
  EXPECT_EQ(loop.get_reactor().kernel_requests_in_flight(), 0);
}

// Frames destroyed (on the loop's thread) while their read waits, as a
// thread keeps writing: each destructor returns only once the kernel has
// given the buffer back, so the sentinel written right after stays.
TEST_P(io_tcp_cancel, destroyed_frames_give_their_buffers_back_while_the_peer_writes) {
  event_loop loop(GetParam());
  loop.run_until_complete([](event_loop& loop) -> task<void> {
    auto p = co_await make_pair(loop);
    int const fd = p.client.native_handle();
    std::atomic<bool> stop{false};
    std::thread writer([fd, &stop] {
      std::byte b[3] = {std::byte{1}, std::byte{2}, std::byte{3}};
      while (!stop.load()) {
        (void)::send(fd, b, sizeof b, MSG_NOSIGNAL);
        std::this_thread::sleep_for(std::chrono::microseconds(5));
      }
    });
    std::vector<std::unique_ptr<std::byte[]>> kept;
    int never_resumed = 0;
    for (int i = 0; i < 2000; ++i) {
      constexpr std::size_t size = 8;
      auto buf = std::make_unique<std::byte[]>(size);
      bool resumed = false;
      handmade c = read_into(p.server, std::span(buf.get(), size), resumed);
      c.h.resume();                                              // runs to the read
      if (i % 3 == 0) co_await loop.get_scheduler().schedule();  // the request reaches the kernel
      if (!resumed) {
        ++never_resumed;
        c.h.destroy();
        std::fill_n(buf.get(), size, sentinel);
        if (i % 2 == 0) kept.push_back(std::move(buf));
      } else {
        c.h.destroy();  // completed (data was there at once, or the frame ran on)
      }
    }
    stop.store(true);
    writer.join();
    EXPECT_GT(never_resumed, 0);
    std::size_t touched = 0;
    for (auto& b : kept)
      if (!all_sentinel(std::span(b.get(), 8))) ++touched;
    EXPECT_EQ(touched, 0u) << "buffers written after their frame was destroyed";
    std::byte b[1];  // the stream still works
    (void)co_await p.client.write_all(bytes_of("z"));
    EXPECT_TRUE(co_await with_timeout(p.server.read_some(b), 1h));
  }(loop));
  EXPECT_EQ(loop.get_reactor().kernel_requests_in_flight(), 0);
}

// Frames destroyed on another thread while the loop runs a ping-pong on a
// second connection (on its own thread, often parked): the destroying
// thread takes completions from the ring to find its own and must leave the
// others to the loop (and wake it), or the ping-pong would stall.
TEST_P(io_tcp_cancel, frames_destroyed_on_another_thread_leave_other_completions_to_the_loop) {
  event_loop loop(GetParam());
  auto busy = make_unix_pair(loop);
  auto idle = make_unix_pair(loop);
  constexpr int rounds = 3000;
  auto pong = rouse::async::spawn(loop.get_scheduler(), [](tcp_stream& s) -> task<int> {
    std::byte b[1];
    int n = 0;
    while (co_await s.read_exact(b)) {
      if (!co_await s.write_all(b)) break;
      ++n;
    }
    co_return n;
  }(busy.b));
  auto ping = rouse::async::spawn(loop.get_scheduler(), [](tcp_stream& s) -> task<int> {
    int ok = 0;
    for (int i = 0; i < rounds; ++i) {
      std::byte b[1] = {static_cast<std::byte>(i)};
      if (!co_await s.write_all(b)) break;
      std::byte e[1];
      if (co_await s.read_exact(e) && e[0] == b[0]) ++ok;
    }
    (void)s.shutdown(SHUT_WR);
    co_return ok;
  }(busy.a));
  std::thread driver([&] { loop.run(); });
  std::vector<std::unique_ptr<std::byte[]>> kept;
  for (int i = 0; i < 300; ++i) {
    auto buf = std::make_unique<std::byte[]>(8);
    bool resumed = false;
    handmade c = read_into(idle.b, std::span(buf.get(), 8), resumed);  // nobody writes to idle
    c.h.resume();  // the read starts on this thread: submitted at once
    if (i % 4 == 0) std::this_thread::sleep_for(std::chrono::microseconds(50));
    EXPECT_FALSE(resumed);
    c.h.destroy();
    std::fill_n(buf.get(), 8, sentinel);
    kept.push_back(std::move(buf));
  }
  EXPECT_EQ(ping.join(), rounds);
  EXPECT_EQ(pong.join(), rounds);
  loop.finish();
  driver.join();
  for (auto& b : kept) EXPECT_TRUE(all_sentinel(std::span(b.get(), 8)));
  EXPECT_EQ(loop.get_reactor().kernel_requests_in_flight(), 0);
}

TEST_P(io_tcp_cancel, write_all_stopped_from_another_thread_on_a_full_buffer) {
  event_loop loop(GetParam());
  inplace_stop_source source;
  std::atomic<bool> writing{false};
  std::thread stopper([&] {
    while (!writing.load()) std::this_thread::yield();
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    source.request_stop();
  });
  auto p = loop.run_until_complete(make_pair(loop));
  (void)p.client.set_buffer_sizes(16384, 0);
  auto big = std::make_unique<std::vector<std::byte>>(8u << 20);
  EXPECT_THROW(loop.run_until_complete(
                   [](tcp_stream& s, std::span<const std::byte> b, std::atomic<bool>& writing) -> task<void> {
                     writing.store(true);
                     (void)co_await s.write_all(b);  // nobody reads: stopped here
                     ADD_FAILURE() << "resumed after stop";
                   }(p.client, *big, writing),
                   source.get_token()),
               operation_stopped);
  stopper.join();
  big.reset();
  // The stream still carries a fresh write after the reader drains.
  loop.run_until_complete([](connected_pair& p) -> task<void> {
    std::vector<std::byte> sink(1 << 16);
    (void)co_await p.server.read_some(sink);
    auto w = co_await with_timeout(p.client.write_some(bytes_of("x")), 1h);
    EXPECT_TRUE(w.has_value());
  }(p));
  EXPECT_EQ(loop.get_reactor().kernel_requests_in_flight(), 0);
}

TEST_P(io_tcp, close_completes_a_write_all_waiting_on_a_full_buffer_with_operation_canceled) {
  event_loop loop(GetParam());
  loop.run_until_complete([](event_loop& loop) -> task<void> {
    auto p = co_await make_pair(loop);
    (void)p.client.set_buffer_sizes(16384, 0);
    std::vector<std::byte> big(8u << 20);
    rouse::async::task_scope scope;
    scope.spawn(loop.get_scheduler(), [](tcp_stream& s, event_loop& loop) -> task<void> {
      co_await yield_a_few(loop, 5);
      co_await rouse::async::sleep_for(1ms);
      s.close();
    }(p.client, loop));
    auto w = co_await p.client.write_all(big);
    co_await scope.join();
    EXPECT_FALSE(w);
    EXPECT_EQ(w.error(), std::errc::operation_canceled);
  }(loop));
  EXPECT_EQ(loop.get_reactor().kernel_requests_in_flight(), 0);
}

// The reactor is destroyed while a read's request is in the kernel (its
// object closed first, as the lifetime rule asks; the frame never resumed
// afterwards): the frame, destroyed later, must not reach the reactor.
TEST_P(io_tcp_cancel, reactor_destroyed_with_a_request_in_flight_detaches_the_frame) {
  auto loop = std::make_unique<event_loop>(GetParam());
  auto p = make_unix_pair(*loop);
  auto buf = std::make_unique<std::byte[]>(8);
  bool resumed = false;
  handmade c = read_into(p.b, std::span(buf.get(), 8), resumed);
  c.h.resume();
  EXPECT_FALSE(resumed);
  p.b.close();  // epoll: completes it here (resumed inline: no executor); io_uring: cancels the request
  p.a.close();
  loop.reset();   // io_uring: waits for the request's completion, detaches the operation
  c.h.destroy();  // must not touch the destroyed reactor
  std::fill_n(buf.get(), 8, sentinel);
  EXPECT_TRUE(all_sentinel(std::span(buf.get(), 8)));
}

handmade accept_into(tcp_listener& l, bool& resumed) {
  (void)co_await l.accept();
  resumed = true;
}

// An accept whose frame is destroyed after the kernel accepted a connection
// (io_uring: the completion carries the new descriptor): the connection is
// closed, not leaked — the client sees its end. On epoll the connection was
// never taken and waits for the next accept.
TEST_P(io_tcp_cancel, connection_taken_by_an_abandoned_accept_is_closed_not_leaked) {
  event_loop loop(GetParam());
  auto l = tcp_listener::bind(loop, endpoint::loopback_v4(0));
  ASSERT_TRUE(l);
  bool resumed = false;
  handmade c = accept_into(*l, resumed);
  c.h.resume();  // the accept waits (io_uring: its request is in the kernel)
  int const client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(client, 0);
  auto const addr = *l->local_endpoint();
  ASSERT_EQ(::connect(client, addr.data(), addr.size()), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(2));  // the kernel's accept completes meanwhile
  EXPECT_FALSE(resumed);                                      // nobody ran the loop
  c.h.destroy();
  if (is_uring(loop)) {
    char b;
    ssize_t const n = ::recv(client, &b, 1, 0);  // blocking: the server side was closed
    EXPECT_TRUE(n == 0 || (n < 0 && errno == ECONNRESET)) << n;
  } else {
    auto s = loop.run_until_complete([](tcp_listener& l) -> task<io_result<tcp_stream>> {
      co_return co_await l.accept();  // the connection is still queued: at once
    }(*l));
    EXPECT_TRUE(s);
  }
  ::close(client);
  EXPECT_EQ(loop.get_reactor().kernel_requests_in_flight(), 0);
}

handmade read_result_into(tcp_stream& s, std::span<std::byte> buf, io_result<std::size_t>& out, bool& resumed) {
  out = co_await s.read_some(buf);
  resumed = true;
}

// A read started on a thread that then exits (io_uring: the kernel cancels
// the requests of an exiting thread): the read still waits for its data,
// which the loop's thread delivers; it is not failed or lost.
TEST_P(io_tcp, a_read_started_on_a_thread_that_exits_still_gets_its_data) {
  event_loop loop(GetParam());
  auto p = make_unix_pair(loop);
  std::byte buf[8];
  io_result<std::size_t> got;
  bool resumed = false;
  handmade c = read_result_into(p.b, buf, got, resumed);
  std::thread([&] { c.h.resume(); }).join();  // the read starts there; the thread ends
  EXPECT_FALSE(resumed);
  loop.run_until_complete([](tcp_stream& a, bool& resumed, event_loop& loop) -> task<void> {
    co_await rouse::async::sleep_for(1ms);  // the loop handles whatever the exit caused
    EXPECT_FALSE(resumed);
    (void)co_await a.write_all(bytes_of("data"));
    while (!resumed) co_await loop.get_scheduler().schedule();
  }(p.a, resumed, loop));
  EXPECT_TRUE(got) << got.error().message();
  EXPECT_EQ(text_of(std::span(buf, got ? *got : 0)), "data");
  c.h.destroy();
  EXPECT_EQ(loop.get_reactor().kernel_requests_in_flight(), 0);
  // io_uring: the exiting thread's request was cancelled and asked again.
  if (is_uring(loop)) {
    EXPECT_GE(loop.get_reactor().kernel_requests(), 2u);
  }
}

// connect on io_uring, in each of the reactor's ways to carry it out: the
// kernel's IORING_OP_CONNECT (default), a call tried first and then a
// writability poll in the kernel, and readiness (the reactor's own call).
// Each connects and exchanges, is refused by a closed port, and shows in
// the reactor's count of kernel requests only where the kernel makes it.
struct connect_mode {
  const char* name;
  rouse::io::uring_operations ops;
  bool write_tried_first;
  bool submit_at_once = false;
};

void check_connect_modes_on_io_uring() {
  connect_mode const modes[] = {{"completion", rouse::io::uring_operations::completion, false},
                                {"completion, submitted at once", rouse::io::uring_operations::completion, false, true},
                                {"completion, writes tried first", rouse::io::uring_operations::completion, true},
                                {"readiness", rouse::io::uring_operations::readiness, false}};
  for (connect_mode const& m : modes) {
    SCOPED_TRACE(m.name);
    event_loop loop(rouse::io::backend::io_uring, m.ops);
    loop.get_reactor().set_completion_tries_first(false, m.write_tried_first);
    loop.get_reactor().set_submit_at_once(m.submit_at_once);
    auto l = tcp_listener::bind(loop, endpoint::loopback_v4(0));
    ASSERT_TRUE(l);
    endpoint const addr = *l->local_endpoint();
    std::uint64_t const before = loop.get_reactor().kernel_requests();
    auto c = loop.run_until_complete([](event_loop& loop, endpoint a) -> task<io_result<tcp_stream>> {
      co_return co_await tcp_stream::connect(loop, a);
    }(loop, addr));
    ASSERT_TRUE(c) << c.error().message();
    std::uint64_t const made = loop.get_reactor().kernel_requests() - before;
    if (m.ops == rouse::io::uring_operations::completion && !m.write_tried_first) {
      EXPECT_EQ(made, 1u);  // the connect itself
    } else if (m.ops == rouse::io::uring_operations::readiness) {
      EXPECT_EQ(made, 0u);
    }
    loop.run_until_complete([](tcp_listener& l, tcp_stream& c) -> task<void> {
      auto s = co_await l.accept();
      EXPECT_TRUE(s);
      EXPECT_TRUE(co_await c.write_all(bytes_of("hello")));
      std::byte buf[5];
      EXPECT_TRUE(co_await s->read_exact(buf));
      EXPECT_EQ(text_of(buf), "hello");
    }(*l, *c));
    l->close();
    auto refused = loop.run_until_complete([](event_loop& loop, endpoint a) -> task<io_result<tcp_stream>> {
      co_return co_await tcp_stream::connect(loop, a);
    }(loop, addr));
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error(), std::errc::connection_refused);
    EXPECT_EQ(loop.get_reactor().kernel_requests_in_flight(), 0);
  }
}

TEST(io_tcp_uring, connect_in_every_operation_mode) {
  if (!rouse::io::reactor::io_uring_available()) GTEST_SKIP() << "io_uring is not available here";
  check_connect_modes_on_io_uring();
}

task<bool> fill_backlog(event_loop& loop, endpoint addr, std::vector<tcp_stream>& fillers);

// A connect that stays in progress (its SYN dropped by a full backlog) and
// then completes when the listener makes room (the SYN's retransmission,
// about a second later), or is refused when the listener closes: on
// io_uring as the kernel's own CONNECT, and with the call tried first (then
// a writability poll in the kernel finishes it).
TEST(io_tcp_uring, a_connect_in_progress_completes_or_is_refused_in_every_operation_mode) {
  if (!rouse::io::reactor::io_uring_available()) GTEST_SKIP() << "io_uring is not available here";
  for (bool write_tried_first : {false, true}) {
    for (bool refuse : {false, true}) {
      SCOPED_TRACE(std::string(write_tried_first ? "tried first" : "kernel") + (refuse ? ", refused" : ", accepted"));
      event_loop loop(rouse::io::backend::io_uring);
      loop.get_reactor().set_completion_tries_first(false, write_tried_first);
      loop.run_until_complete([](event_loop& loop, bool refuse) -> task<void> {
        auto l = tcp_listener::bind(loop, endpoint::loopback_v4(0), 0);
        endpoint const addr = *l->local_endpoint();
        std::vector<tcp_stream> fillers;
        EXPECT_TRUE(co_await fill_backlog(loop, addr, fillers));
        auto pending = rouse::async::spawn(loop.get_scheduler(), [](event_loop& loop, endpoint a) -> task<io_result<tcp_stream>> {
          co_return co_await tcp_stream::connect(loop, a);
        }(loop, addr));
        co_await rouse::async::sleep_for(50ms);  // (its first SYN is dropped)
        if (refuse) {
          l->close();
        } else {
          auto taken = co_await l->accept();  // room in the accept queue
          EXPECT_TRUE(taken);
        }
        io_result<tcp_stream> r = co_await std::move(pending);
        if (refuse) {
          EXPECT_FALSE(r);
          if (!r) {
            EXPECT_EQ(r.error(), std::errc::connection_refused) << r.error().message();
          }
        } else {
          EXPECT_TRUE(r) << (r ? "" : r.error().message());
        }
      }(loop, refuse));
      EXPECT_EQ(loop.get_reactor().kernel_requests_in_flight(), 0);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(backends, io_tcp, ::testing::ValuesIn(rouse_test::io_backends()), rouse_test::io_backend_name);
INSTANTIATE_TEST_SUITE_P(backends, io_tcp_cancel, ::testing::ValuesIn(rouse_test::io_backends()),
                         rouse_test::io_backend_name);

}  // namespace
}  // namespace io_tcp_test
