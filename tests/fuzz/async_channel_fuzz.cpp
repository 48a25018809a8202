// libFuzzer target: random sequences of async channel operations, with
// cancellation, on one rouse::async::channel, checked against a model queue.
//
// The first input byte picks the flavour (rendezvous, bounded 1..7 or 64,
// unbounded); every following byte is one step: try_send, try_recv,
// try_reserve (the permit held, later sent or dropped), start a coroutine
// that sends (it waits while the channel is full), start the one coroutine
// that receives, fire the stop token of a waiting coroutine, destroy a
// waiting coroutine's frame, run the loop (resume what was woken), close from
// either side. Single-threaded: every coroutine runs on this file's loop, so
// each step has one correct answer: a send that completes ok appends its
// value to the model at that moment, a receive must get the model's front,
// `empty` only when the model is empty, `closed` only once closed and the
// model is drained, and a counting element proves no value is made or
// destroyed more or fewer times than sent and received. At the end every
// coroutine is stopped and run out, the channel drained, and nothing may be
// left alive.
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <exception>
#include <optional>
#include <utility>
#include <vector>

#include "rouse/async/channel.hpp"
#include "rouse/async/executor.hpp"
#include "rouse/async/stop_token.hpp"

namespace {

namespace ra = rouse::async;
namespace ch = rouse::async::channel;
using rouse::channel::status;

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

class loop final : public ra::executor {
 public:
  void schedule(std::coroutine_handle<> h) noexcept override { q_.push_back(h); }
  void add_timer(ra::timer_entry&) noexcept override { std::abort(); }
  bool cancel_timer(ra::timer_entry&) noexcept override { return false; }
  void drain() {
    while (!q_.empty()) {
      auto h = q_.front();
      q_.pop_front();
      h.resume();
    }
  }
  bool queued(std::coroutine_handle<> h) const {
    for (auto x : q_)
      if (x == h) return true;
    return false;
  }

 private:
  std::deque<std::coroutine_handle<>> q_;
};

struct env {
  loop* l;
  ra::inplace_stop_token token;
  ra::scheduler query(ra::get_scheduler_t) const noexcept { return ra::scheduler(*l); }
  ra::inplace_stop_token query(ra::get_stop_token_t) const noexcept { return token; }
};

// A coroutine without unhandled_stopped: a stop shows as operation_stopped.
struct job {
  struct promise_type {
    loop* l = nullptr;
    ra::inplace_stop_token token{};
    bool done = false;
    job get_return_object() { return job{std::coroutine_handle<promise_type>::from_promise(*this)}; }
    std::suspend_always initial_suspend() noexcept { return {}; }
    std::suspend_always final_suspend() noexcept {
      done = true;
      return {};
    }
    void return_void() {}
    void unhandled_exception() {
      try {
        throw;
      } catch (const ra::operation_stopped&) {
      } catch (...) {
        std::abort();
      }
    }
    env get_env() const noexcept { return {l, token}; }
  };
  std::coroutine_handle<promise_type> h;
};

struct model {
  std::deque<std::uint32_t> q;
  bool closed = false;
};

// A waiting coroutine with its stop source.
struct pending {
  job j;
  ra::inplace_stop_source stop;
  bool is_recv = false;
};

job send_job(ch::sender<counted>& tx, std::uint32_t v, model& m) {
  auto r = co_await tx.send(counted(v));
  if (r) {
    m.q.push_back(v);
  } else {
    check(r.status() == status::closed && m.closed && r.value().v == v);
  }
}

job recv_job(ch::receiver<counted>& rx, model& m) {
  auto r = co_await rx.recv();
  if (r) {
    check(!m.q.empty() && m.q.front() == r->v);
    m.q.pop_front();
  } else {
    check(r.status() == status::closed && m.closed && m.q.empty());
  }
}

void run(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return;
  std::uint8_t const shape = data[0] % 10;  // 0: rendezvous, 1..7: bounded(n), 8: bounded(64), 9: unbounded
  bool const is_unbounded = shape == 9;
  std::size_t const capacity = shape == 8 ? 64 : shape;
  {
    loop l;
    model m;
    auto channel = is_unbounded ? ch::unbounded<counted>() : ch::bounded<counted>(capacity);
    ch::sender<counted>& tx = channel.first;
    ch::receiver<counted>& rx = channel.second;
    std::vector<pending*> waiting;
    std::optional<ch::permit<counted>> held;
    std::uint32_t next = 1;
    bool receiving = false;

    auto start = [&](job j, bool is_recv) {
      auto* p = new pending{j, {}, is_recv};
      j.h.promise().l = &l;
      j.h.promise().token = p->stop.get_token();
      l.schedule(j.h);
      waiting.push_back(p);
      if (is_recv) receiving = true;
    };
    auto reap = [&] {
      for (std::size_t i = 0; i < waiting.size();) {
        pending* p = waiting[i];
        if (p->j.h.promise().done) {
          if (p->is_recv) receiving = false;
          p->j.h.destroy();
          delete p;
          waiting.erase(waiting.begin() + static_cast<std::ptrdiff_t>(i));
        } else {
          ++i;
        }
      }
    };
    auto try_recv = [&] {
      if (receiving) return;  // one consumer at a time
      auto r = rx.try_recv();
      if (r) {
        check(!m.q.empty() && m.q.front() == r->v);
        m.q.pop_front();
      } else if (r.status() == status::closed) {
        check(m.closed && m.q.empty());
      } else {
        check(r.status() == status::empty && m.q.empty() && !m.closed);
      }
    };

    for (std::size_t i = 1; i < size; ++i) {
      std::uint8_t const op = data[i];
      switch (op % 11) {
        case 0: {  // try_send
          std::uint32_t const v = next++;
          auto r = tx.try_send(counted(v));
          if (r) {
            check(!m.closed);
            m.q.push_back(v);
          } else {
            check(r.value().v == v && (r.status() == status::closed) == m.closed);
            check(r.status() != status::full || !is_unbounded);
          }
          break;
        }
        case 1:
          try_recv();
          break;
        case 2:  // try_reserve / use or drop the held permit
          if (held) {
            if (op & 0x10) {
              std::uint32_t const v = next++;
              auto r = held->send(counted(v));
              if (r) {
                m.q.push_back(v);
              } else {
                check(m.closed && r.value().v == v);
              }
            }
            held.reset();
          } else {
            auto p = tx.try_reserve();
            if (p) {
              check(!m.closed);
              held.emplace(std::move(p));
            } else {
              check((p.status() == status::closed) == m.closed);
            }
          }
          break;
        case 3:
        case 4:  // a sending coroutine
          if (waiting.size() < 16) start(send_job(tx, next++, m), false);
          break;
        case 5:  // the receiving coroutine
          if (!receiving && waiting.size() < 16) start(recv_job(rx, m), true);
          break;
        case 6:  // stop a waiting coroutine
          if (!waiting.empty()) waiting[(op >> 4) % waiting.size()]->stop.request_stop();
          break;
        case 7: {  // destroy a waiting coroutine that is not scheduled
          if (waiting.empty()) break;
          std::size_t const k = (op >> 4) % waiting.size();
          pending* p = waiting[k];
          // A suspended frame whose wake is not in flight: not queued, not done.
          // A receive woken (its poll queued on the waker's poller) is left alone.
          if (p->j.h.promise().done || l.queued(p->j.h) || p->is_recv) break;
          p->j.h.destroy();
          delete p;
          waiting.erase(waiting.begin() + static_cast<std::ptrdiff_t>(k));
          break;
        }
        case 8:
        case 9:
          l.drain();
          reap();
          break;
        case 10:  // close from either side
          if (op & 0x10)
            tx.close();
          else
            rx.close();
          m.closed = true;
          break;
      }
    }
    // Wind down: stop everyone, run it out, drain.
    held.reset();
    for (pending* p : waiting) p->stop.request_stop();
    l.drain();
    reap();
    check(waiting.empty());
    try_recv();
    while (!m.q.empty()) try_recv();
    try_recv();  // reports empty (or closed): every freed slot is back
    if (!m.closed && !is_unbounded && shape != 0) check(rx.permits_for_testing() == static_cast<std::int64_t>(capacity));
  }
  check(live == 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  run(data, size);
  return 0;
}
