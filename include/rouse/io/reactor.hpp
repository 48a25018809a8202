// rouse/io/reactor.hpp — the reactor: a run_loop's idle wait that also waits for I/O.
//
//   rouse::io::event_loop loop;                      // run_loop + reactor
//   loop.run_until_complete(server(loop));           // tasks + timers + I/O
//
//   reactor      an async::parker (rouse/async/run_loop.hpp): the loop's idle
//                wait becomes epoll_pwait2 bounded by the next timer's
//                deadline; unpark() from another thread is one eventfd write
//                (the loop only calls it when it sleeps). Descriptors are
//                registered once, edge-triggered, for reading and writing;
//                no re-arming per operation.
//   event_loop   the owner users write: a reactor and the run_loop parked in
//                it (run_until_complete, run, finish, get_scheduler).
//
// How an operation waits (rouse/io/operation.hpp): it tries its system call
// first; only on EAGAIN it links itself (a node in the awaiting coroutine's
// frame: no allocation) into its descriptor's registration, one list per
// direction. When epoll reports the direction ready, the reactor retries the
// waiting operations' system calls itself, in FIFO order, unlinks those that
// complete and, after the whole batch of events and outside every lock,
// resumes their coroutines: scheduled on the coroutine's executor (never
// inline inside event processing); a coroutine with no executor resumes on
// the loop's thread after the batch. A readiness counter per direction
// closes the race between an operation's EAGAIN and an edge that arrives
// before it is linked.
//
// Threads: one thread drives the loop (and so the reactor). Operations may
// be started from any thread; stop requests may come from any thread. A
// registration's lists are guarded by a 4-byte rouse::mutex.
//
// Lifetimes: an I/O object (socket, async_fd) must outlive the operations
// awaiting on it; closing it completes them with operation_canceled. A
// closed descriptor's registration is freed at the reactor's next idle wait
// (events of the batch being processed may still name it). The reactor must
// outlive the I/O objects registered with it (event_loop: declare it first).
//
// Backends, chosen at run time (reactor(backend)), same semantics for both:
//   epoll     the default. Linux >= 5.11 gives nanosecond timeouts through
//             epoll_pwait2; older kernels fall back to epoll_wait with the
//             timeout rounded up to the next millisecond (never early).
//   io_uring  asked for explicitly; needs rouse built with liburing and a
//             kernel with multishot poll (5.13; IORING_FEAT_RSRC_TAGS is the
//             probe). Each descriptor is one multishot, edge-triggered
//             IORING_OP_POLL_ADD (re-armed only if the kernel ends it); the
//             idle wait is io_uring_wait_cqe_timeout; unpark is the same
//             eventfd, polled by the ring. Operations stay readiness-based
//             (the reactor makes the system call), so cancellation and the
//             buffer rule are identical. Asking for io_uring where it is
//             missing (compiled out, kernel too old, io_uring disabled by
//             sysctl or seccomp) falls back to epoll: backend() and
//             backend_name() say which one runs.
//
// The io_uring backend also carries wait_on()'s futex waits
// (IORING_OP_FUTEX_WAIT, Linux >= 6.7; rouse/io/wait_on.hpp); destroying
// the reactor cancels those first, so that no waiter outlives the ring.
//
// A loop that always has ready work never parks: the reactor's poll()
// (called by the loop between rounds) looks for readiness without sleeping
// every 16th round, so I/O is not starved (tokio's event interval idea).
//
// Costs: an operation that can complete at once makes one system call and
// no lock. A waiting one: one uncontended lock to link, one to be completed
// by the reactor, and the retried system call. unpark(): one write(2), only
// when the loop sleeps.
#pragma once

#include <atomic>
#include <cstdint>

#include "rouse/async/run_loop.hpp"
#include "rouse/io/result.hpp"
#include "rouse/mutex.hpp"

namespace rouse::io {

class reactor;

namespace detail {

enum direction : int { read_direction = 0, write_direction = 1 };

// One waiting operation: a node in the awaiting coroutine's frame. The list
// fields belong to the registration's lock while linked.
struct op_base {
  op_base* next = nullptr;
  op_base* prev = nullptr;
  op_base* done_next = nullptr;  // the reactor's batch of completed operations
  bool linked = false;
  // Retries the system call: true when the operation is complete (its
  // result stored), false on EAGAIN. Called under the registration's lock.
  bool (*perform)(op_base* self, int fd) noexcept = nullptr;
  // Stores `err` as the result (the descriptor is being closed).
  void (*fail)(op_base* self, int err) noexcept = nullptr;
  // Resumes the awaiting coroutine; after it the node may be gone.
  void (*complete)(op_base* self) noexcept = nullptr;
};

struct op_list {
  op_base* head = nullptr;
  op_base* tail = nullptr;
  bool empty() const noexcept { return head == nullptr; }
  void push_back(op_base* op) noexcept {
    op->next = nullptr;
    op->prev = tail;
    if (tail)
      tail->next = op;
    else
      head = op;
    tail = op;
    op->linked = true;
  }
  void remove(op_base* op) noexcept {
    if (op->prev)
      op->prev->next = op->next;
    else
      head = op->next;
    if (op->next)
      op->next->prev = op->prev;
    else
      tail = op->prev;
    op->next = op->prev = nullptr;
    op->linked = false;
  }
};

// One descriptor known to the reactor. Heap-allocated once per descriptor
// (stable while I/O objects move), freed by the reactor.
struct registration {
  int fd = -1;
  ::rouse::mutex lock;
  bool closed = false;  // under lock: no operation may link any more
  // Readiness edges seen per direction. Ordering: written under lock;
  // operations read it (acquire) before their first system call.
  std::atomic<std::uint32_t> ready_count[2] = {0, 0};
  op_list waiting[2];
  registration* free_next = nullptr;  // the reactor's deferred-free list
  // io_uring: the multishot poll has ended (its last completion came), so
  // the kernel will not name this registration again. Loop thread only.
  bool poll_done = false;
};

// A coroutine waiting on a futex word through the reactor (wait_on.hpp).
struct futex_wait_node {
  void (*complete)(futex_wait_node* self) noexcept = nullptr;
  void* record = nullptr;   // the reactor's record of the request (io_uring)
  int result = 0;           // the request's completion (0: woken)
  bool detached = false;    // the reactor was destroyed while it waited
  futex_wait_node* done_next = nullptr;
};

}  // namespace detail

enum class backend {
  epoll,
  io_uring,
};

// The reactor, an async::parker. Construct, then hand it to a run_loop
// (event_loop does both). Throws std::system_error if epoll or the eventfd
// cannot be created.
class reactor final : public async::parker {
 public:
  explicit reactor(io::backend requested = io::backend::epoll);
  reactor(const reactor&) = delete;
  reactor& operator=(const reactor&) = delete;
  ~reactor();

  // The backend that runs (io_uring asked for but missing: epoll).
  io::backend backend() const noexcept { return backend_; }
  const char* backend_name() const noexcept { return backend_ == io::backend::io_uring ? "io_uring" : "epoll"; }
  // Whether this build and this kernel can run the io_uring backend.
  static bool io_uring_available() noexcept;

  // parker: the loop's idle wait. Waits for I/O readiness, unpark() or the
  // deadline; completes the operations that became ready.
  void park(clock::time_point deadline) noexcept override;
  void unpark() noexcept override;
  // parker: between rounds of ready work, every 16th call looks for
  // readiness without sleeping (a loop that never idles still sees I/O).
  void poll() noexcept override;

  // Registers a non-blocking descriptor (edge-triggered, both directions).
  // The reactor never closes it. Any thread.
  io_result<detail::registration*> add(int fd);
  // Completes the registration's waiting operations with operation_canceled,
  // removes the descriptor from epoll (call before closing it) and frees the
  // registration at the next idle wait. Any thread.
  void remove(detail::registration* r) noexcept;

  // Whether wait_on() uses the ring's IORING_OP_FUTEX_WAIT (io_uring
  // backend, Linux >= 6.7) rather than a helper thread per wait.
  bool futex_wait_native() const noexcept { return futex_native_; }
  // wait_on's side (wait_on.hpp): start a kernel futex wait for `n`
  // (false: not available, use the helper thread), and withdraw it (true:
  // withdrawn before its completion was taken; false: it completes).
  bool futex_wait_start(detail::futex_wait_node* n, const std::atomic<std::uint32_t>* word,
                        std::uint32_t expected) noexcept;
  bool futex_wait_cancel(detail::futex_wait_node* n) noexcept;

  // How many idle waits returned because of readiness (tests).
  std::uint64_t readiness_wakeups() const noexcept { return readiness_wakeups_.load(std::memory_order_relaxed); }

 private:
  struct uring_state;
  struct futex_record;
  void free_deferred() noexcept;
  void dispatch(detail::registration* r, std::uint32_t mask, detail::op_base**& done_tail) noexcept;
  void complete_all(detail::op_base* done) noexcept;
  bool uring_start() noexcept;
  void uring_stop() noexcept;
  io_result<detail::registration*> uring_add(int fd);
  void uring_remove(detail::registration* r) noexcept;
  void uring_park(clock::time_point deadline, bool nonblocking) noexcept;
  void wait(clock::time_point deadline, bool nonblocking) noexcept;

  io::backend backend_ = io::backend::epoll;
  uring_state* uring_ = nullptr;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;  // eventfd: unpark()'s doorbell
  bool use_pwait2_ = true;
  std::uint32_t poll_ticks_ = 0;  // loop thread only
  bool futex_native_ = false;
  ::rouse::mutex futex_lock_;           // the records of kernel futex waits
  futex_record* futex_live_ = nullptr;  // under futex_lock_
  ::rouse::mutex free_lock_;
  detail::registration* to_free_ = nullptr;
  std::atomic<std::uint64_t> readiness_wakeups_{0};
};

// A run_loop parked in a reactor: the event loop users write.
class event_loop {
 public:
  explicit event_loop(io::backend requested = io::backend::epoll) : reactor_(requested), loop_(reactor_) {}
  event_loop(const event_loop&) = delete;
  event_loop& operator=(const event_loop&) = delete;

  io::reactor& get_reactor() noexcept { return reactor_; }
  operator io::reactor&() noexcept { return reactor_; }  // NOLINT: sockets take a reactor&
  async::run_loop& executor() noexcept { return loop_; }
  async::scheduler get_scheduler() noexcept { return loop_.get_scheduler(); }

  template <class T>
  T run_until_complete(async::task<T> t, async::inplace_stop_token stop = {}) {
    return loop_.run_until_complete(std::move(t), stop);
  }
  void run() { loop_.run(); }
  std::size_t run_once() { return loop_.run_once(); }
  void finish() noexcept { loop_.finish(); }

 private:
  io::reactor reactor_;  // outlives loop_ (declared first, destroyed last)
  async::run_loop loop_;
};

}  // namespace rouse::io
