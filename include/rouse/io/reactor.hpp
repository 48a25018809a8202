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
//             probe). Reads and writes (read_some / write_some and what is
//             built on them, recv_from / send_to), accept and connect are
//             completion-based by default (uring_operations::completion):
//             the kernel carries them out (IORING_OP_RECV / SEND, READ /
//             WRITE for other descriptors, RECVMSG / SENDMSG, ACCEPT,
//             CONNECT), the completion carries the result. Requests the loop's thread
//             makes are queued and submitted together at its next poll() or
//             park() (one io_uring_enter, which is also the idle wait, with
//             the timeout as an argument); other threads submit at once.
//             Cancellation: IORING_OP_ASYNC_CANCEL, and the operation ends
//             with the request's own completion (operation.hpp). What
//             waits for readiness instead (other descriptor types, a
//             request the kernel answers with EAGAIN, every operation
//             under uring_operations::readiness) uses a multishot,
//             edge-triggered IORING_OP_POLL_ADD per descriptor, armed
//             when such an operation first waits (re-armed only if the
//             kernel ends it).
//             uring_operations::readiness makes every operation
//             readiness-based (the reactor makes the system call). unpark is
//             the same eventfd, polled by the ring. Asking for io_uring where
//             it is missing (compiled out, kernel too old, io_uring disabled
//             by sysctl or seccomp) falls back to epoll: backend() and
//             backend_name() say which one runs.
//
// The io_uring backend also carries wait_on()'s futex waits
// (IORING_OP_FUTEX_WAIT, Linux >= 6.7; rouse/io/wait_on.hpp); destroying
// the reactor cancels those first, so that no waiter outlives the ring.
//
// A loop that always has ready work never parks: the reactor's poll()
// (called by the loop between rounds) looks for readiness without sleeping
// every 16th round, so I/O is not starved (tokio's event interval idea).
// io_uring: poll() runs every round, but makes a system call only to submit
// what the round queued; completions already in the ring need none.
//
// Costs: an operation that can complete at once makes one system call and
// no lock. A waiting one: one uncontended lock to link, one to be completed
// by the reactor, and the retried system call (io_uring, completion-based:
// no retried call; the request's share of one io_uring_enter and two
// uncontended locks, the registration's and the ring's). unpark(): one
// write(2), only when the loop sleeps.
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

// What a completion-based operation asks the kernel to do (io_uring:
// IORING_OP_RECV / SEND / READ / WRITE / ACCEPT / RECVMSG / SENDMSG /
// CONNECT, or a one-shot POLL_ADD for writability, on the registration's
// descriptor).
enum class kernel_opcode : std::uint8_t { recv, send, read, write, accept, recvmsg, sendmsg, connect, poll_out };
struct kernel_request {
  kernel_opcode opcode = kernel_opcode::recv;
  void* data = nullptr;  // the buffer; recvmsg / sendmsg: the msghdr; connect: the sockaddr
  std::uint32_t size = 0;
  int flags = 0;  // recv / send flags (MSG_NOSIGNAL)
};

// One waiting operation: a node in the awaiting coroutine's frame. The list
// fields belong to the registration's lock while linked.
//
// A completion-based operation (io_uring, an action with a kernel request)
// is linked into the registration's `in_kernel` list instead, while the
// kernel holds its request (and so its buffer):
//   in_kernel   a request is in flight: its completion has not been handled.
//               Written under the registration's lock; the destructor of an
//               abandoned operation waits for it to become false.
//   stop_wanted a stop asked for the request's cancellation: -ECANCELED
//               completes the operation as stopped; data that came first
//               stands.
//   abandoned   the frame is being destroyed: the completion only releases
//               the node (no result, no resumption).
//   detached    the reactor was destroyed while the request was in flight:
//               the frame must not reach back into it.
struct registration;

struct op_base {
  registration* reg = nullptr;  // null: the object was not open
  int direction = read_direction;
  op_base* next = nullptr;
  op_base* prev = nullptr;
  op_base* done_next = nullptr;  // the reactor's batch of completed operations
  // In such a batch, not completed yet (see complete_all). Ordering:
  // relaxed: read by a destructor on the completing thread (another
  // thread's read is the misuse the destructor's debug check looks for).
  std::atomic<bool> in_batch{false};
  bool linked = false;
  bool stop_wanted = false;
  bool abandoned = false;
  bool detached = false;
  bool stopped = false;  // completes as stopped
  // Ordering: release (under the lock) when the completion is handled;
  // acquire in an abandoning destructor's wait.
  std::atomic<bool> in_kernel{false};
  // Null: readiness only. Otherwise fills the request for what is left to
  // move (called under the registration's lock).
  void (*describe)(op_base* self, kernel_request& out) noexcept = nullptr;
  // Applies a completion's result (bytes >= 0, or -errno other than
  // ECANCELED): true when the operation is complete (result stored), false
  // when the rest must be requested again (read_exact / write_all).
  bool (*finish)(op_base* self, int res) noexcept = nullptr;
  // Null, or releases what a completion nobody will take carries (an
  // accepted descriptor of an abandoned accept).
  void (*discard)(op_base* self, int res) noexcept = nullptr;
  // Retries the system call: true when the operation is complete (its
  // result stored), false on EAGAIN. Called under the registration's lock.
  bool (*perform)(op_base* self, int fd) noexcept = nullptr;
  // Stores `err` as the result (the descriptor is being closed).
  void (*fail)(op_base* self, int err) noexcept = nullptr;
  // Resumes the awaiting coroutine; after it the node may be gone.
  void (*complete)(op_base* self) noexcept = nullptr;
};

// Takes `op` out of a batch the calling thread is completing
// (reactor::complete_all, nested ones included), where a coroutine resumed
// earlier destroyed the frame that holds it; false when no batch of this
// thread holds it.
bool withdraw_from_batch(op_base* op) noexcept;

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
  reactor* owner = nullptr;
  ::rouse::mutex lock;
  bool closed = false;  // under lock: no operation may link any more
  // Set with `closed`, read without the lock by an operation's first try:
  // an operation made before the close and awaited after it fails with
  // operation_canceled, without a system call on a descriptor number that
  // may name another object by then. Ordering: relaxed (a hint; the
  // operation's own thread closed it, or the lock decides in await_suspend).
  std::atomic<bool> closed_hint{false};
  // The operations bound to this registration (made and not yet destroyed)
  // and one for the reactor, dropped when it frees the registration: the
  // last one out deletes it (release()). So an operation whose stop
  // callback runs late, or that is awaited after the close, never reads a
  // registration that is gone.
  std::atomic<std::uint32_t> refs{1};
  // io_uring: the operations whose requests the kernel holds (under lock),
  // and whether the readiness poll is armed (under lock; armed when a
  // readiness operation first waits, so streams whose operations all go
  // through the kernel get no poll completions).
  op_list in_kernel;
  bool poll_armed = false;
  // Readiness edges seen per direction. Ordering: written under lock;
  // operations read it (acquire) before their first system call.
  std::atomic<std::uint32_t> ready_count[2] = {0, 0};
  op_list waiting[2];
  registration* free_next = nullptr;  // the reactor's deferred-free list
  // io_uring: no poll is armed, or the multishot poll has ended (its last
  // completion came), so no poll completion will name this registration
  // again. Under lock.
  bool poll_done = true;
  // io_uring: a removal of the poll was submitted and its completion has
  // not come (it names this registration). Under lock.
  bool poll_removing = false;
};

// Drops one of `r`'s references (above); the last deletes it. Ordering:
// acq_rel: every use of the registration before its drop happens-before
// the delete.
inline void release(registration* r) noexcept {
  if (r->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete r;
}

// A coroutine waiting on a futex word through the reactor (the parker's
// futex waits, rouse/async/run_loop.hpp and rouse/async/wait_on.hpp).
using futex_wait_node = async::detail::futex_wait_node;

}  // namespace detail

enum class backend {
  epoll,
  io_uring,
};

// How the io_uring backend carries out reads, writes and accept:
//   completion  the kernel does (IORING_OP_RECV / SEND, READ / WRITE,
//               RECVMSG / SENDMSG, ACCEPT); the default.
//   readiness   the kernel reports readiness (a multishot poll) and the
//               reactor makes the system call, as epoll does.
// Ignored by the epoll backend.
enum class uring_operations {
  completion,
  readiness,
};

// The reactor, an async::parker. Construct, then hand it to a run_loop
// (event_loop does both). Throws std::system_error if epoll or the eventfd
// cannot be created.
class reactor final : public async::parker {
 public:
  explicit reactor(io::backend requested = io::backend::epoll,
                   io::uring_operations ops = io::uring_operations::completion);
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
  // registration at the next idle wait. io_uring: cancels the requests the
  // kernel holds and returns once it has taken every request published
  // (one not yet taken would name the descriptor's number after its close).
  // Any thread.
  void remove(detail::registration* r) noexcept;

  // Whether wait_on() uses the ring's IORING_OP_FUTEX_WAIT (io_uring
  // backend, Linux >= 6.7) rather than a helper thread per wait.
  bool futex_wait_native() const noexcept override { return futex_native_; }
  // wait_on's side (wait_on.hpp): start a kernel futex wait for `n`
  // (false: not available, use the helper thread), and withdraw it (true:
  // withdrawn before its completion was taken; false: it completes).
  bool futex_wait_start(detail::futex_wait_node* n, const std::atomic<std::uint32_t>* word,
                        std::uint32_t expected) noexcept override;
  bool futex_wait_cancel(detail::futex_wait_node* n) noexcept override;

  // How many idle waits returned because of readiness (tests).
  std::uint64_t readiness_wakeups() const noexcept { return readiness_wakeups_.load(std::memory_order_relaxed); }

  // Whether reads, writes, accept and connect go through the kernel (io_uring
  // backend, uring_operations::completion), and whether such an operation in
  // `direction` first makes the system call itself.
  bool completion_ops() const noexcept { return completion_ops_; }
  bool completion_tries_first(int direction) const noexcept { return try_first_[direction]; }
  // Tuning and measurement (bench/net.cpp): whether a completion-based
  // operation first tries its system call, per direction. Before any I/O.
  void set_completion_tries_first(bool read, bool write) noexcept {
    try_first_[0] = read;
    try_first_[1] = write;
  }
  // Tuning and measurement: whether the loop thread's kernel requests are
  // submitted at once (one io_uring_enter each) instead of together at the
  // loop's next poll() or park() (the default). Before any I/O.
  void set_submit_at_once(bool at_once) noexcept { submit_at_once_ = at_once; }
  // operation.hpp's side of completion-based operations; each is called
  // with the operation's registration locked.
  // Queues the request `op` describes (submitted at the loop's next poll()
  // or park(); at once from a thread that does not drive the loop).
  void request_start(detail::op_base* op) noexcept;
  // Submits IORING_OP_ASYNC_CANCEL for op's request at once.
  void request_cancel(detail::op_base* op) noexcept;
  // Arms the registration's readiness poll (io_uring; once).
  void arm_readiness(detail::registration* r) noexcept;
  // Called without the lock, after marking op abandoned: cancels its
  // request and returns once the kernel has given it back (its completion
  // taken from the ring; other completions are kept for the loop).
  void request_abandon(detail::op_base* op) noexcept;
  // How many completion-based requests were submitted (tests).
  std::uint64_t kernel_requests() const noexcept { return kernel_requests_.load(std::memory_order_relaxed); }
  // How many of them the kernel still holds (their completion not taken).
  std::int64_t kernel_requests_in_flight() const noexcept { return kernel_in_flight_.load(std::memory_order_relaxed); }

 private:
  struct uring_state;
  struct futex_record;
  struct futex_batches;
  void free_deferred() noexcept;
  void dispatch(detail::registration* r, std::uint32_t mask, detail::op_base**& done_tail) noexcept;
  void complete_all(detail::op_base* done) noexcept;
  bool uring_start() noexcept;
  void uring_stop() noexcept;
  io_result<detail::registration*> uring_add(int fd);
  io_result<detail::registration*> epoll_add(int fd);
  void uring_remove(detail::registration* r) noexcept;
  void uring_settle() noexcept;  // returns once the kernel took every request published
  void uring_park(clock::time_point deadline, bool nonblocking) noexcept;
  void wait(clock::time_point deadline, bool nonblocking) noexcept;
  void uring_handle_op(detail::op_base* op, int res, detail::op_base**& done_tail) noexcept;
  bool kernel_ops_pending() noexcept;
  bool driven_here() const noexcept;
  void uring_submit_published(unsigned n) noexcept;

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
  bool completion_ops_ = false;
  bool submit_at_once_ = false;
  // Read, write: handed to the kernel at once (measured: docs/io.md, Backends).
  bool try_first_[2] = {false, false};
  // The thread that last called park() or poll(): it submits what it
  // queues at its next call (tag of a thread_local; relaxed: a thread only
  // needs to recognise its own value).
  std::atomic<const void*> driver_{nullptr};
  std::atomic<std::uint64_t> kernel_requests_{0};
  std::atomic<std::int64_t> kernel_in_flight_{0};
  // Descriptors added and not removed yet (the destructor's misuse check:
  // an I/O object that outlives its reactor). Ordering: relaxed: a count.
  std::atomic<std::int64_t> open_registrations_{0};
};

// A run_loop parked in a reactor: the event loop users write.
class event_loop {
 public:
  explicit event_loop(io::backend requested = io::backend::epoll,
                      io::uring_operations ops = io::uring_operations::completion)
      : reactor_(requested, ops), loop_(reactor_) {}
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
