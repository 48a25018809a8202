// libFuzzer target: random sequences of async channel operations, with
// cancellation, timeouts and select, on three rouse::async::channels, each
// checked against a model queue.
//
// The first input byte picks the three flavours (rendezvous, bounded 1..7 or
// 64, unbounded); every following byte is one step (low 4 bits: what; high
// 4 bits: which channel, which coroutine, which variant): try_send,
// try_recv, try_reserve (the permit held, later sent or dropped), start a
// coroutine that sends / receives (plain, or timed: send_for / recv_for with
// a deadline already passed or an hour away), start a coroutine that
// selects over two or three channels (recv, send, reserve branches) with a
// timeout branch, fire the stop token of a waiting coroutine, destroy a
// waiting coroutine's frame, fire a pending timer (the loop's timers fire
// only when a step says so: the input alone decides the run), run the loop
// (resume what was woken), close from either side. Single-threaded: every
// coroutine runs on this file's loop, so each step has one correct answer:
// a send that completes ok appends its value to its channel's model at that
// moment, a receive must get the model's front, `empty` only when the model
// is empty, `closed` only once closed and the model is drained; a select
// completes exactly one branch and its losers take and send nothing (the
// later receives still match the models); a counting element proves no
// value is made or destroyed more or fewer times than sent and received. At
// the end every coroutine is stopped and run out, the channels drained,
// every bounded channel's slots are back, no timer is left, and nothing may
// be left alive.
#include <chrono>
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
#include "rouse/async/select.hpp"
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
  void add_timer(ra::timer_entry& e) noexcept override { timers_.push_back(&e); }
  bool cancel_timer(ra::timer_entry& e) noexcept override {
    for (std::size_t i = 0; i < timers_.size(); ++i)
      if (timers_[i] == &e) {
        timers_.erase(timers_.begin() + static_cast<std::ptrdiff_t>(i));
        return true;
      }
    return false;  // fired
  }
  // Fires the k-th pending timer now (its deadline is the input's to decide).
  void fire_timer(std::size_t k) {
    if (timers_.empty()) return;
    ra::timer_entry* const e = timers_[k % timers_.size()];
    timers_.erase(timers_.begin() + static_cast<std::ptrdiff_t>(k % timers_.size()));
    e->fire(e);
  }
  std::size_t timers() const { return timers_.size(); }
  bool idle() const { return q_.empty(); }
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
  std::vector<ra::timer_entry*> timers_;
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

using namespace std::chrono_literals;

struct model {
  std::deque<std::uint32_t> q;
  bool closed = false;
};

// One channel, its model and its consumer's state.
struct chan {
  ch::sender<counted> tx;
  ch::receiver<counted> rx;
  model m;
  bool unbounded = false;
  bool rendezvous = false;
  std::size_t capacity = 0;
  bool receiving = false;  // a coroutine waits on rx (one consumer at a time)
  std::optional<ch::permit<counted>> held;
};

// A waiting coroutine with its stop source and the receivers it holds.
struct pending {
  job j;
  ra::inplace_stop_source stop;
  std::vector<chan*> receives;
  bool destroyable = true;  // only when nothing of it can be in flight
};

void sent(chan& c, ch::send_result<counted>& r, std::uint32_t v) {
  if (r) {
    c.m.q.push_back(v);
  } else if (r.status() == status::closed) {
    check(c.m.closed && r.value().v == v);
  } else {
    check(r.status() == status::timed_out && r.value().v == v);
  }
}

void received(chan& c, ch::recv_result<counted>& r, bool timed) {
  if (r) {
    check(!c.m.q.empty() && c.m.q.front() == r->v);
    c.m.q.pop_front();
  } else if (r.status() == status::closed) {
    check(c.m.closed && c.m.q.empty());
  } else {
    check(timed && r.status() == status::timed_out);
  }
}

ch::detail::clock::duration wait_of(unsigned param) { return (param & 4) ? ch::detail::clock::duration(0) : 1h; }

job send_job(chan& c, std::uint32_t v, bool timed, unsigned param) {
  auto r = timed ? co_await c.tx.send_for(counted(v), wait_of(param)) : co_await c.tx.send(counted(v));
  sent(c, r, v);
}

job recv_job(chan& c, bool timed, unsigned param) {
  auto r = timed ? co_await c.rx.recv_for(wait_of(param)) : co_await c.rx.recv();
  received(c, r, timed);
}

// recv(a), recv(b), timeout.
job select_recv_job(chan& a, chan& b, unsigned param) {
  auto r = co_await ch::select(ch::recv(a.rx), ch::recv(b.rx), ch::timeout(wait_of(param)));
  if (r.index() == 0) received(a, std::get<0>(r), false);
  if (r.index() == 1) received(b, std::get<1>(r), false);
}

// recv(a), send(b, v), recv(c), timeout: v is moved only if the send wins.
job select_send_job(chan& a, chan& b, chan& c, std::uint32_t v, unsigned param) {
  counted value(v);
  auto r = co_await ch::select(ch::recv(a.rx), ch::send(b.tx, value), ch::recv(c.rx), ch::timeout(wait_of(param)));
  if (r.index() == 0) received(a, std::get<0>(r), false);
  if (r.index() == 1) sent(b, std::get<1>(r), v);
  if (r.index() == 2) received(c, std::get<2>(r), false);
}

// reserve(a), recv(b), timeout: a won slot is used or dropped.
job select_reserve_job(chan& a, chan& b, std::uint32_t v, unsigned param) {
  auto r = co_await ch::select(ch::reserve(a.tx), ch::recv(b.rx), ch::timeout(wait_of(param)));
  if (r.index() == 0) {
    ch::permit<counted>& p = std::get<0>(r);
    if (!p) {
      check(p.status() == status::closed && a.m.closed);
    } else if (param & 8) {
      auto s = p.send(counted(v));
      sent(a, s, v);
    }
  }
  if (r.index() == 1) received(b, std::get<1>(r), false);
}

void run(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return;
  {
    loop l;
    chan chans[3];
    // 0: rendezvous, 1..7: bounded(n), 8: bounded(64), 9: unbounded
    unsigned const shapes[3] = {data[0] % 10u, (data[0] / 10u) % 10u, (data[0] / 100u + data[0] % 7u) % 10u};
    for (int k = 0; k < 3; ++k) {
      chan& c = chans[k];
      c.unbounded = shapes[k] == 9;
      c.rendezvous = shapes[k] == 0;
      c.capacity = shapes[k] == 8 ? 64 : shapes[k];
      auto p = c.unbounded ? ch::unbounded<counted>() : ch::bounded<counted>(c.capacity);
      c.tx = std::move(p.first);
      c.rx = std::move(p.second);
    }
    std::vector<pending*> waiting;
    std::uint32_t next = 1;

    auto start = [&](job j, std::vector<chan*> receives, bool destroyable) {
      for (chan* c : receives) c->receiving = true;
      auto* p = new pending{j, {}, std::move(receives), destroyable};
      j.h.promise().l = &l;
      j.h.promise().token = p->stop.get_token();
      l.schedule(j.h);
      waiting.push_back(p);
    };
    auto forget = [&](std::size_t i) {
      pending* p = waiting[i];
      for (chan* c : p->receives) c->receiving = false;
      p->j.h.destroy();
      delete p;
      waiting.erase(waiting.begin() + static_cast<std::ptrdiff_t>(i));
    };
    auto reap = [&] {
      for (std::size_t i = 0; i < waiting.size();) {
        if (waiting[i]->j.h.promise().done)
          forget(i);
        else
          ++i;
      }
    };
    auto try_recv = [&](chan& c) {
      if (c.receiving) return;  // one consumer at a time
      auto r = c.rx.try_recv();
      if (r) {
        check(!c.m.q.empty() && c.m.q.front() == r->v);
        c.m.q.pop_front();
      } else if (r.status() == status::closed) {
        check(c.m.closed && c.m.q.empty());
      } else {
        check(r.status() == status::empty && c.m.q.empty() && !c.m.closed);
      }
    };

    for (std::size_t i = 1; i < size; ++i) {
      std::uint8_t const op = data[i];
      unsigned const param = op >> 4;
      chan& c = chans[param % 3];
      chan& d = chans[(param + 1) % 3];
      chan& e = chans[(param + 2) % 3];
      bool const room = waiting.size() < 16;
      switch (op % 16) {
        case 0: {  // try_send
          std::uint32_t const v = next++;
          auto r = c.tx.try_send(counted(v));
          if (r) {
            check(!c.m.closed);
            c.m.q.push_back(v);
          } else {
            check(r.value().v == v && (r.status() == status::closed) == c.m.closed);
            check(r.status() != status::full || !c.unbounded);
          }
          break;
        }
        case 1:
          try_recv(c);
          break;
        case 2:  // try_reserve / use or drop the held permit
          if (c.held) {
            if (param & 8) {
              std::uint32_t const v = next++;
              auto r = c.held->send(counted(v));
              if (r) {
                c.m.q.push_back(v);
              } else {
                check(c.m.closed && r.value().v == v);
              }
            }
            c.held.reset();
          } else {
            auto p = c.tx.try_reserve();
            if (p) {
              check(!c.m.closed);
              c.held.emplace(std::move(p));
            } else {
              check((p.status() == status::closed) == c.m.closed);
            }
          }
          break;
        case 3:  // a sending coroutine
        case 4:  // a timed one
          if (room) start(send_job(c, next++, op % 16 == 4, param), {}, true);
          break;
        case 5:  // the receiving coroutine
        case 6:  // a timed one
          if (room && !c.receiving) start(recv_job(c, op % 16 == 6, param), {&c}, false);
          break;
        case 7:  // select: recv, recv, timeout
          if (room && !c.receiving && !d.receiving) start(select_recv_job(c, d, param), {&c, &d}, true);
          break;
        case 8:  // select: recv, send, recv, timeout
          if (room && !c.receiving && !e.receiving) start(select_send_job(c, d, e, next++, param), {&c, &e}, true);
          break;
        case 9:  // select: reserve, recv, timeout
          if (room && !d.receiving) start(select_reserve_job(c, d, next++, param), {&d}, true);
          break;
        case 10:  // stop a waiting coroutine
          if (!waiting.empty()) waiting[param % waiting.size()]->stop.request_stop();
          break;
        case 11: {  // destroy a waiting coroutine that is not scheduled
          if (waiting.empty()) break;
          std::size_t const k = param % waiting.size();
          pending* p = waiting[k];
          // A suspended frame whose wake is not in flight: not queued, not
          // done. A receive woken (its poll queued on the waker's poller) is
          // left alone; a select (whose own frame is what a wake queues) only
          // while nothing at all is queued.
          if (p->j.h.promise().done || l.queued(p->j.h) || !p->destroyable) break;
          if (!p->receives.empty() && !l.idle()) break;
          forget(k);
          break;
        }
        case 12:  // a pending timer fires
          l.fire_timer(param);
          break;
        case 13:
        case 14:
          l.drain();
          reap();
          break;
        case 15:  // close from either side
          if (param & 8)
            c.tx.close();
          else
            c.rx.close();
          c.m.closed = true;
          break;
      }
    }
    // Wind down: stop everyone, run it out, drain.
    for (chan& c : chans) c.held.reset();
    for (pending* p : waiting) p->stop.request_stop();
    l.drain();
    reap();
    check(waiting.empty());
    check(l.timers() == 0);  // every timer withdrawn or fired
    for (chan& c : chans) {
      try_recv(c);
      while (!c.m.q.empty()) try_recv(c);
      try_recv(c);  // reports empty (or closed): every freed slot is back
      if (!c.m.closed && !c.unbounded && !c.rendezvous)
        check(c.rx.permits_for_testing() == static_cast<std::int64_t>(c.capacity));
    }
  }
  check(live == 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  run(data, size);
  return 0;
}
