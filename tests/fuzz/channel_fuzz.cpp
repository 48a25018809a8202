// libFuzzer target: random operation sequences on one rouse::channel,
// checked against a model queue (std::deque with the same capacity).
//
// The first input byte picks the flavour and capacity (rendezvous, bounded
// 1..8, unbounded); every following byte is one operation: try_send,
// try_recv, send_for / recv_for with a zero timeout, size / empty / full,
// close from either side, a copy or drop of a handle, try_select over a
// receive and a send. Statuses, values, sizes and the closed flag must match
// the model after every step, and a counting message type proves that no
// value is created or destroyed more often than it is sent and received.
// Single-threaded, so every step has exactly one correct answer.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <optional>

#include "rouse/channel/channel.hpp"
#include "rouse/channel/select.hpp"

namespace {

namespace ch = rouse::channel;

long live = 0;

struct counted {
  std::uint32_t v;
  explicit counted(std::uint32_t value) noexcept : v(value) { ++live; }
  counted(counted&& o) noexcept : v(o.v) { ++live; }
  counted& operator=(counted&&) = delete;
  ~counted() { --live; }
};

void check(bool ok) {
  if (!ok) std::abort();
}

void run(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return;
  std::uint8_t const shape = data[0] % 10;  // 0: rendezvous, 1..8: bounded(n), 9: unbounded
  bool const rendezvous = shape == 0;
  bool const is_unbounded = shape == 9;
  std::size_t const cap = is_unbounded ? SIZE_MAX : shape;
  ch::ring const ring = (data[0] / 10) % 2 ? ch::ring::ticket : ch::ring::compare_exchange;
  auto [tx, rx] = is_unbounded ? ch::unbounded<counted>() : ch::bounded<counted>(cap, ring);
  std::deque<std::uint32_t> model;
  bool closed = false;
  std::uint32_t next = 1;
  std::optional<ch::sender<counted>> extra_tx;
  std::optional<ch::receiver<counted>> extra_rx;

  auto expect_send = [&](ch::send_result<counted> r, std::uint32_t v) {
    if (closed) {
      check(r.status() == ch::status::closed && r.value().v == v);
    } else if (rendezvous || model.size() == cap) {
      check(!r.ok() && r.value().v == v);
    } else {
      check(r.ok());
      model.push_back(v);
    }
  };
  auto expect_recv = [&](ch::recv_result<counted> r, ch::status when_empty) {
    if (!model.empty()) {
      check(r.has_value() && r->v == model.front());
      model.pop_front();
    } else {
      check(!r.has_value() && r.status() == (closed ? ch::status::closed : when_empty));
    }
  };

  for (std::size_t i = 1; i < size; ++i) {
    switch (data[i] % 12) {
      case 0:
      case 1: {
        std::uint32_t const v = next++;
        expect_send(tx.try_send(counted(v)), v);
        break;
      }
      case 2:
      case 3:
        expect_recv(rx.try_recv(), ch::status::empty);
        break;
      case 4: {
        std::uint32_t const v = next++;
        auto r = tx.send_for(counted(v), std::chrono::nanoseconds(0));
        if (!closed && (rendezvous || model.size() == cap)) {
          check(r.status() == ch::status::timed_out && r.value().v == v);
        } else {
          expect_send(std::move(r), v);
        }
        break;
      }
      case 5:
        expect_recv(rx.recv_for(std::chrono::nanoseconds(0)), ch::status::timed_out);
        break;
      case 6:
        check(rx.size() == model.size());
        check(tx.empty() == model.empty());
        check(tx.full() == (!is_unbounded && model.size() == cap));
        check(tx.capacity() == (is_unbounded ? ch::unbounded_capacity : cap));
        check(rx.is_closed() == closed);
        break;
      case 7:
        if (data[i] % 24 == 7) {  // rarely: close
          check((data[i] & 0x80 ? tx.close() : rx.close()) == !closed);
          closed = true;
        }
        break;
      case 8:  // another sender / receiver comes and goes: no effect
        if (extra_tx)
          extra_tx.reset();
        else
          extra_tx.emplace(tx);
        break;
      case 9:
        if (extra_rx)
          extra_rx.reset();
        else
          extra_rx.emplace(rx);
        break;
      case 10: {  // try_select over a receive and a send: exactly one or none
        counted v(next++);
        std::uint32_t const value = v.v;
        ch::recv_case a(rx);
        ch::send_case b(tx, v);
        std::size_t const before = model.size();
        auto sel = ch::try_select(a, b);
        bool const can_recv = !model.empty() || closed;
        bool const can_send = closed || (!rendezvous && model.size() < cap);
        check(sel.has_value() == (can_recv || can_send));
        if (sel && *sel == 0) {
          expect_recv(std::move(a.result()), ch::status::empty);
          check(v.v == value);  // the send case left its value alone
        } else if (sel && *sel == 1) {
          if (closed) {
            check(b.status() == ch::status::closed && v.v == value);
          } else {
            check(b.status() == ch::status::ok);
            model.push_back(value);
          }
        }
        check(model.size() <= before + 1);
        break;
      }
      default: {  // blocking forms only when they cannot block
        if (!model.empty() || closed) {
          expect_recv(rx.recv(), ch::status::empty);
        } else if (!rendezvous && model.size() < cap) {
          std::uint32_t const v = next++;
          expect_send(tx.send(counted(v)), v);
        }
        break;
      }
    }
    check(live == static_cast<long>(model.size()));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  run(data, size);
  check(live == 0);  // the channel destroyed what nobody received
  return 0;
}
