// The reactor (rouse/io/reactor.hpp): what both backends share, and epoll.
// The io_uring backend is in reactor_uring.cpp.
#include "rouse/io/reactor.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <climits>
#include <ctime>
#include <system_error>

#include "batch.hpp"
#include "rouse/detail/diagnostics.hpp"

namespace rouse::io {

namespace detail {
// epoll_event.data.ptr / io_uring user_data of the eventfd: no
// registration has this address.
char wake_marker;
}  // namespace detail

namespace {
constexpr int max_events = 256;
}  // namespace

reactor::reactor(io::backend requested, io::uring_operations ops) {
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) throw std::system_error(errno, std::system_category(), "rouse::io::reactor: eventfd");
  if (requested == io::backend::io_uring && uring_start()) {
    backend_ = io::backend::io_uring;
    completion_ops_ = ops == io::uring_operations::completion;
    return;
  }
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) {
    int const err = errno;
    ::close(wake_fd_);
    throw std::system_error(err, std::system_category(), "rouse::io::reactor: epoll_create1");
  }
  epoll_event ev{};
  ev.events = EPOLLIN;  // level-triggered: park() drains it
  ev.data.ptr = &detail::wake_marker;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev) != 0) {
    int const err = errno;
    ::close(wake_fd_);
    ::close(epoll_fd_);
    throw std::system_error(err, std::system_category(), "rouse::io::reactor: epoll_ctl");
  }
}

reactor::~reactor() {
  ROUSE_CHECK_USAGE(open_registrations_.load(std::memory_order_relaxed) == 0, "rouse::io::reactor",
                    "destroyed while I/O objects registered with it are open (an object outlives its loop, or a "
                    "task waiting on its I/O was never joined)");
  if (backend_ == io::backend::io_uring) uring_stop();  // closes the ring first: no poll names a registration
  free_deferred();
  ::close(wake_fd_);
  if (epoll_fd_ >= 0) ::close(epoll_fd_);
}

io_result<detail::registration*> reactor::add(int fd) {
  io_result<detail::registration*> r = backend_ == io::backend::io_uring ? uring_add(fd) : epoll_add(fd);
  if (r) open_registrations_.fetch_add(1, std::memory_order_relaxed);
  return r;
}

io_result<detail::registration*> reactor::epoll_add(int fd) {
  auto* const r = new detail::registration;
  r->fd = fd;
  r->owner = this;
  r->poll_armed = true;  // registered once, below
  epoll_event ev{};
  // Edge-triggered, both directions, once for the descriptor's life.
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.ptr = r;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    int const err = errno;
    delete r;
    return errno_code(err);
  }
  return r;
}

void reactor::remove(detail::registration* r) noexcept {
  detail::op_base* done = nullptr;
  r->lock.lock();
  r->closed = true;
  r->closed_hint.store(true, std::memory_order_relaxed);
  for (detail::op_list& list : r->waiting) {
    while (detail::op_base* op = list.head) {
      list.remove(op);
      op->fail(op, ECANCELED);
      op->done_next = done;
      op->in_batch.store(true, std::memory_order_relaxed);
      done = op;
    }
  }
  // Requests the kernel holds: cancelled now (before the descriptor is
  // closed); each completes with operation_canceled when its completion
  // comes (or with its data, if that came first).
  for (detail::op_base* op = r->in_kernel.head; op; op = op->next) request_cancel(op);
  r->lock.unlock();
  if (backend_ == io::backend::io_uring)
    uring_remove(r);
  else
    (void)::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, r->fd, nullptr);
  // Completed outside the lock; each may resume (and free) its frame.
  complete_all(done);
  free_lock_.lock();
  r->free_next = to_free_;
  to_free_ = r;
  free_lock_.unlock();
  // Last: a reactor destroyed while this close still runs is diagnosed.
  open_registrations_.fetch_sub(1, std::memory_order_relaxed);
}

void reactor::free_deferred() noexcept {
  free_lock_.lock();
  detail::registration* r = to_free_;
  to_free_ = nullptr;
  free_lock_.unlock();
  detail::registration* keep = nullptr;
  while (r) {
    detail::registration* const next = r->free_next;
    // io_uring: a registration whose poll has not ended yet, or whose
    // operations' requests the kernel still holds, may still be named by a
    // completion; it waits for that (or for the ring's close).
    bool busy = false;
    if (backend_ == io::backend::io_uring && uring_ != nullptr) {
      r->lock.lock();
      busy = !r->poll_done || r->poll_removing || !r->in_kernel.empty();
      r->lock.unlock();
    }
    if (busy) {
      r->free_next = keep;
      keep = r;
    } else {
      detail::release(r);  // the reactor's reference: operations may still hold theirs
    }
    r = next;
  }
  if (keep) {
    free_lock_.lock();
    detail::registration* tail = keep;
    while (tail->free_next) tail = tail->free_next;
    tail->free_next = to_free_;
    to_free_ = keep;
    free_lock_.unlock();
  }
}

void reactor::unpark() noexcept {
  std::uint64_t const one = 1;
  // EAGAIN only when the counter is saturated: a wake-up is pending anyway.
  while (::write(wake_fd_, &one, sizeof one) < 0 && errno == EINTR) {
  }
}

void reactor::dispatch(detail::registration* r, std::uint32_t mask, detail::op_base**& done_tail) noexcept {
  bool const dirs[2] = {(mask & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0,
                        (mask & (EPOLLOUT | EPOLLHUP | EPOLLERR)) != 0};
  r->lock.lock();
  for (int d = 0; d < 2; ++d) {
    if (!dirs[d]) continue;
    // Ordering: release: pairs with the acquire in io_operation::await_ready.
    r->ready_count[d].fetch_add(1, std::memory_order_release);
    if (r->closed) continue;
    detail::op_list& list = r->waiting[d];
    // FIFO: retry the waiting operations until one would block.
    while (detail::op_base* op = list.head) {
      if (!op->perform(op, r->fd)) break;
      list.remove(op);
      op->done_next = nullptr;
      op->in_batch.store(true, std::memory_order_relaxed);
      *done_tail = op;
      done_tail = &op->done_next;
    }
  }
  r->lock.unlock();
}

namespace {
using op_batches = detail::batch_levels<detail::op_base, &detail::op_base::done_next>;
}  // namespace

bool detail::withdraw_from_batch(op_base* op) noexcept {
  if (op_batches::withdraw([op](op_base* n) { return n == op; }) == nullptr) return false;
  op->in_batch.store(false, std::memory_order_relaxed);
  return true;
}

void reactor::complete_all(detail::op_base* done) noexcept {
  // Outside every lock: a coroutine with an executor is scheduled; one
  // without resumes here, and may destroy the frame of an operation later
  // in the batch, whose destructor takes it out (withdraw_from_batch;
  // src/io/batch.hpp).
  if (done == nullptr) return;
  op_batches::level level(done);
  while (detail::op_base* const op = level.pop()) {
    op->in_batch.store(false, std::memory_order_relaxed);
    op->complete(op);
  }
}

void reactor::park(clock::time_point deadline) noexcept { wait(deadline, false); }

void reactor::poll() noexcept {
  if (backend_ == io::backend::io_uring) {
    // Every round: submits what the round queued (one system call for the
    // whole round) and handles the completions already in the ring (no
    // system call).
    if ((++poll_ticks_ & 15u) == 0) free_deferred();
    uring_park(clock::time_point::max(), true);
    return;
  }
  // 16: a system call per 16 rounds of ready work keeps the cost of a busy
  // loop's checks small against the work itself.
  if ((++poll_ticks_ & 15u) != 0) return;
  wait(clock::time_point::max(), true);
}

void reactor::wait(clock::time_point deadline, bool nonblocking) noexcept {
  // No batch of events is being processed now: registrations removed
  // since the last wait can go.
  free_deferred();
  if (backend_ == io::backend::io_uring) {
    uring_park(deadline, nonblocking);
    return;
  }

  epoll_event events[max_events];
  int n;
  if (nonblocking) {
    n = ::epoll_wait(epoll_fd_, events, max_events, 0);
  } else if (deadline == clock::time_point::max()) {
    n = ::epoll_wait(epoll_fd_, events, max_events, -1);
  } else {
    auto left = deadline - clock::now();
    if (left < clock::duration::zero()) left = clock::duration::zero();
    n = -1;
    if (use_pwait2_) {
      auto const s = std::chrono::duration_cast<std::chrono::seconds>(left);
      timespec ts{};
      ts.tv_sec = static_cast<time_t>(s.count());
      ts.tv_nsec = static_cast<long>(std::chrono::duration_cast<std::chrono::nanoseconds>(left - s).count());
      n = ::epoll_pwait2(epoll_fd_, events, max_events, &ts, nullptr);
      if (n < 0 && errno == ENOSYS) use_pwait2_ = false;
    }
    if (!use_pwait2_) {
      // Rounded up: a late wake is what a timer allows, an early one is not.
      auto const ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
      n = ::epoll_wait(epoll_fd_, events, max_events, ms > INT_MAX ? INT_MAX : static_cast<int>(ms));
    }
  }
  if (n <= 0) return;  // timeout, EINTR: the loop looks again

  detail::op_base* done = nullptr;
  detail::op_base** done_tail = &done;
  bool io = false;
  for (int i = 0; i < n; ++i) {
    if (events[i].data.ptr == &detail::wake_marker) {
      std::uint64_t count;
      while (::read(wake_fd_, &count, sizeof count) < 0 && errno == EINTR) {
      }
      continue;
    }
    io = true;
    dispatch(static_cast<detail::registration*>(events[i].data.ptr), events[i].events, done_tail);
  }
  if (io) readiness_wakeups_.fetch_add(1, std::memory_order_relaxed);
  // After the whole batch: events later in it may name a registration that
  // a resumed coroutine would close.
  complete_all(done);
}

}  // namespace rouse::io
