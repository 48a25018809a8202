// The io_uring backend of the reactor (rouse/io/reactor.hpp). Built when
// liburing was found (ROUSE_HAVE_LIBURING); otherwise asking for io_uring
// falls back to epoll.
#include <poll.h>
#include <linux/futex.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>

#include "rouse/io/reactor.hpp"

#if ROUSE_HAVE_LIBURING
#include <liburing.h>
#endif

namespace rouse::io {

namespace detail {
extern char wake_marker;
}  // namespace detail

// One kernel futex wait (wait_on.hpp), owned by the reactor so that the
// awaiting frame may go away while the kernel still holds the request.
struct reactor::futex_record {
  detail::futex_wait_node* node;  // null: withdrawn (stopped, destroyed)
  const std::atomic<std::uint32_t>* word;
  futex_record* prev = nullptr;
  futex_record* next = nullptr;
};

#if ROUSE_HAVE_LIBURING

namespace {
// What the 6.1 headers lack (Linux 6.7's io_uring futex requests, futex2 flags).
constexpr int op_futex_wait = 51;                        // IORING_OP_FUTEX_WAIT
constexpr unsigned futex2_size_u32 = 0x02;               // FUTEX2_SIZE_U32
constexpr unsigned futex2_private = 128;                 // FUTEX2_PRIVATE
constexpr std::uint64_t futex_bitset_any = 0xffffffffu;  // FUTEX_BITSET_MATCH_ANY

// user_data of a futex request: the record's address with the low bit set
// (records are aligned; registrations never have it set, markers are
// compared first).
void* tag_record(void* r) noexcept { return reinterpret_cast<void*>(reinterpret_cast<std::uintptr_t>(r) | 1u); }
bool is_record(void* data) noexcept { return (reinterpret_cast<std::uintptr_t>(data) & 1u) != 0; }

void futex_wake_one(const std::atomic<std::uint32_t>* word) noexcept {
  (void)::syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
}
}  // namespace

namespace {
// user_data of requests whose completions carry nothing (poll removals).
char ignore_marker;
constexpr unsigned ring_entries = 256;
constexpr unsigned completion_entries = 4096;
// Each registration's poll: both directions, edge-triggered (the default
// of a multishot poll), hang-ups of the reading side too.
constexpr unsigned poll_mask = POLLIN | POLLOUT | POLLRDHUP;
}  // namespace

struct reactor::uring_state {
  io_uring ring{};
  ::rouse::mutex lock;  // the submission queue: any thread may add or remove

  // A free submission entry; submits what is queued when there is none.
  io_uring_sqe* sqe() noexcept {
    io_uring_sqe* s = io_uring_get_sqe(&ring);
    while (s == nullptr) {
      (void)io_uring_submit(&ring);
      s = io_uring_get_sqe(&ring);
    }
    return s;
  }
  void arm_poll(int fd, void* data) noexcept {
    io_uring_sqe* const s = sqe();
    io_uring_prep_poll_multishot(s, fd, poll_mask);
    io_uring_sqe_set_data(s, data);
  }
};

bool reactor::io_uring_available() noexcept {
  io_uring ring;
  if (io_uring_queue_init(2, &ring, 0) != 0) return false;
  bool const ok = (ring.features & IORING_FEAT_RSRC_TAGS) != 0 && (ring.features & IORING_FEAT_EXT_ARG) != 0;
  io_uring_queue_exit(&ring);
  return ok;
}

bool reactor::uring_start() noexcept {
  auto* const u = new (std::nothrow) uring_state;
  if (u == nullptr) return false;
  io_uring_params params{};
  params.flags = IORING_SETUP_CQSIZE;
  params.cq_entries = completion_entries;
  if (io_uring_queue_init_params(ring_entries, &u->ring, &params) != 0) {
    delete u;
    return false;
  }
  // Multishot poll (5.13, probed by a feature of the same release) and a
  // wait with a timeout that needs no timeout request (5.11).
  if ((u->ring.features & IORING_FEAT_RSRC_TAGS) == 0 || (u->ring.features & IORING_FEAT_EXT_ARG) == 0) {
    io_uring_queue_exit(&u->ring);
    delete u;
    return false;
  }
  if (io_uring_probe* const probe = io_uring_get_probe_ring(&u->ring)) {
    futex_native_ = io_uring_opcode_supported(probe, op_futex_wait) != 0;
    io_uring_free_probe(probe);
  }
  u->arm_poll(wake_fd_, &detail::wake_marker);
  if (io_uring_submit(&u->ring) < 0) {
    io_uring_queue_exit(&u->ring);
    delete u;
    return false;
  }
  uring_ = u;
  return true;
}

void reactor::uring_stop() noexcept {
  // Waits still pending: their coroutines will never be resumed, and their
  // frames must not reach back into this reactor.
  futex_lock_.lock();
  futex_record* live = futex_live_;
  futex_live_ = nullptr;
  for (futex_record* r = live; r; r = r->next)
    if (r->node) r->node->detached = true;
  futex_lock_.unlock();
  // Withdraw the futex waits now: the kernel tears a closed ring down later,
  // in its own time, and until then the waiter would stay on the word (a
  // wake-one would be spent on it). A cancel removes the waiter during its
  // submit; then reap each wait's own completion.
  unsigned pending = 0;
  uring_->lock.lock();
  for (futex_record* r = live; r; r = r->next) {
    io_uring_sqe* const s = uring_->sqe();
    io_uring_prep_cancel64(s, reinterpret_cast<std::uint64_t>(tag_record(r)), 0);
    io_uring_sqe_set_data(s, &ignore_marker);
    ++pending;
  }
  if (pending > 0) (void)io_uring_submit(&uring_->ring);
  uring_->lock.unlock();
  while (pending > 0) {
    io_uring_cqe* cqe = nullptr;
    if (io_uring_wait_cqe(&uring_->ring, &cqe) != 0 || cqe == nullptr) break;
    void* const data = io_uring_cqe_get_data(cqe);
    if (data != &ignore_marker && data != &detail::wake_marker && is_record(data)) {
      --pending;
      auto* const rec = reinterpret_cast<futex_record*>(reinterpret_cast<std::uintptr_t>(data) & ~std::uintptr_t{1});
      if (cqe->res == 0) futex_wake_one(rec->word);  // woken meanwhile: pass it on
    }
    io_uring_cqe_seen(&uring_->ring, cqe);
  }
  // Closing the ring ends every other request: no completion will name a
  // registration any more.
  io_uring_queue_exit(&uring_->ring);
  delete uring_;
  uring_ = nullptr;
  while (live) {
    futex_record* const next = live->next;
    delete live;
    live = next;
  }
}

bool reactor::futex_wait_start(detail::futex_wait_node* n, const std::atomic<std::uint32_t>* word,
                               std::uint32_t expected) noexcept {
  if (!futex_native_) return false;
  auto* const rec = new (std::nothrow) futex_record{n, word};
  if (rec == nullptr) return false;
  futex_lock_.lock();
  rec->next = futex_live_;
  if (futex_live_) futex_live_->prev = rec;
  futex_live_ = rec;
  n->record = rec;
  uring_->lock.lock();
  io_uring_sqe* const s = uring_->sqe();
  // Filled by hand: liburing 2.3 predates the futex helpers. fd holds the
  // futex2 flags, addr the word, off (addr2) the expected value, addr3 the
  // wake bitset; len and the request's own flags must be 0.
  io_uring_prep_rw(op_futex_wait, s, static_cast<int>(futex2_size_u32 | futex2_private), word, 0, expected);
  s->addr3 = futex_bitset_any;
  io_uring_sqe_set_data(s, tag_record(rec));
  int const rc = io_uring_submit(&uring_->ring);
  uring_->lock.unlock();
  if (rc < 0) {
    if (rec->prev)
      rec->prev->next = rec->next;
    else
      futex_live_ = rec->next;
    if (rec->next) rec->next->prev = rec->prev;
    n->record = nullptr;
    futex_lock_.unlock();
    delete rec;
    return false;
  }
  futex_lock_.unlock();
  return true;
}

bool reactor::futex_wait_cancel(detail::futex_wait_node* n) noexcept {
  futex_lock_.lock();
  auto* const rec = static_cast<futex_record*>(n->record);
  if (rec == nullptr || rec->node != n) {  // its completion was taken: it stands
    futex_lock_.unlock();
    return false;
  }
  rec->node = nullptr;
  // Cancelled while the record is surely alive (its completion handler
  // takes futex_lock_ before it frees it); the kernel removes the waiter
  // during this submit.
  uring_->lock.lock();
  io_uring_sqe* const s = uring_->sqe();
  io_uring_prep_cancel64(s, reinterpret_cast<std::uint64_t>(tag_record(rec)), 0);
  io_uring_sqe_set_data(s, &ignore_marker);
  (void)io_uring_submit(&uring_->ring);
  uring_->lock.unlock();
  futex_lock_.unlock();
  return true;
}

io_result<detail::registration*> reactor::uring_add(int fd) {
  // Refused as epoll refuses it (EPERM): a regular file or a directory is
  // always "ready", never worth a poll.
  struct stat st{};
  if (::fstat(fd, &st) != 0) return errno_code(errno);
  if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) return errno_code(EPERM);
  auto* const r = new detail::registration;
  r->fd = fd;
  uring_->lock.lock();
  uring_->arm_poll(fd, r);
  int const rc = io_uring_submit(&uring_->ring);
  uring_->lock.unlock();
  if (rc < 0) {
    delete r;
    return errno_code(-rc);
  }
  return r;
}

void reactor::uring_remove(detail::registration* r) noexcept {
  uring_->lock.lock();
  io_uring_sqe* const s = uring_->sqe();
  io_uring_prep_poll_remove(s, reinterpret_cast<std::uintptr_t>(r));
  io_uring_sqe_set_data(s, &ignore_marker);
  (void)io_uring_submit(&uring_->ring);
  uring_->lock.unlock();
}

void reactor::uring_park(clock::time_point deadline, bool nonblocking) noexcept {
  io_uring_cqe* cqe = nullptr;
  int rc;
  if (nonblocking) {
    // A zero timeout still enters the kernel, which runs the task work
    // that posts poll completions.
    __kernel_timespec ts{};
    rc = io_uring_wait_cqe_timeout(&uring_->ring, &cqe, &ts);
  } else if (deadline == clock::time_point::max()) {
    rc = io_uring_wait_cqe(&uring_->ring, &cqe);
  } else {
    auto left = deadline - clock::now();
    if (left < clock::duration::zero()) left = clock::duration::zero();
    auto const s = std::chrono::duration_cast<std::chrono::seconds>(left);
    __kernel_timespec ts{};
    ts.tv_sec = s.count();
    ts.tv_nsec = std::chrono::duration_cast<std::chrono::nanoseconds>(left - s).count();
    rc = io_uring_wait_cqe_timeout(&uring_->ring, &cqe, &ts);
  }
  if (rc < 0 && io_uring_cq_ready(&uring_->ring) == 0) return;  // timeout, EINTR
  // A completion names a registration that another thread made and
  // submitted under this lock; taking the lock once orders its
  // construction before our use (the kernel's ring orders it too, but
  // ThreadSanitizer cannot see through it).
  // Only the completions counted while holding it are handled in this
  // batch (later ones wait for the next wait).
  uring_->lock.lock();
  unsigned const ready = io_uring_cq_ready(&uring_->ring);
  uring_->lock.unlock();

  detail::op_base* done = nullptr;
  detail::op_base** done_tail = &done;
  bool io = false;
  bool rearm_wake = false;
  detail::futex_wait_node* futex_done = nullptr;
  for (unsigned seen = 0; seen < ready; ++seen) {
    if (io_uring_peek_cqe(&uring_->ring, &cqe) != 0 || cqe == nullptr) break;
    struct advance {
      io_uring* ring;
      ~advance() { io_uring_cq_advance(ring, 1); }
    } const advance_one{&uring_->ring};
    void* const data = io_uring_cqe_get_data(cqe);
    bool const more = (cqe->flags & IORING_CQE_F_MORE) != 0;
    if (data == &ignore_marker) continue;
    if (data != &detail::wake_marker && is_record(data)) {
      auto* const rec = reinterpret_cast<futex_record*>(reinterpret_cast<std::uintptr_t>(data) & ~std::uintptr_t{1});
      futex_lock_.lock();
      detail::futex_wait_node* const node = rec->node;
      if (rec->prev)
        rec->prev->next = rec->next;
      else
        futex_live_ = rec->next;
      if (rec->next) rec->next->prev = rec->prev;
      if (node) node->record = nullptr;
      futex_lock_.unlock();
      if (node) {
        node->result = cqe->res;
        node->done_next = futex_done;
        futex_done = node;
      } else if (cqe->res == 0) {
        futex_wake_one(rec->word);  // a wake the withdrawn wait took: pass it on
      }
      delete rec;
      continue;
    }
    if (data == &detail::wake_marker) {
      std::uint64_t count;
      while (::read(wake_fd_, &count, sizeof count) < 0 && errno == EINTR) {
      }
      if (!more) rearm_wake = true;
      continue;
    }
    auto* const r = static_cast<detail::registration*>(data);
    if (cqe->res > 0) {
      io = true;
      dispatch(r, static_cast<std::uint32_t>(cqe->res), done_tail);
    } else if (cqe->res < 0 && cqe->res != -ECANCELED && !more) {
      // The poll failed: let the operations find the error themselves.
      dispatch(r, EPOLLIN | EPOLLOUT | EPOLLERR, done_tail);
    }
    if (!more) {
      // The poll ended: removed (closed), or ended by the kernel (an
      // overflowing completion queue ends multishot requests): re-arm.
      // Under the registration's lock: a remove() after this check queues
      // its poll removal after the re-arm, so it finds it.
      r->lock.lock();
      if (r->closed) {
        r->poll_done = true;
      } else {
        uring_->lock.lock();
        uring_->arm_poll(r->fd, r);
        uring_->lock.unlock();
      }
      r->lock.unlock();
    }
  }
  if (rearm_wake) {
    uring_->lock.lock();
    uring_->arm_poll(wake_fd_, &detail::wake_marker);
    uring_->lock.unlock();
  }
  uring_->lock.lock();
  (void)io_uring_submit(&uring_->ring);  // the re-arms
  uring_->lock.unlock();
  if (io) readiness_wakeups_.fetch_add(1, std::memory_order_relaxed);
  complete_all(done);
  while (futex_done) {
    detail::futex_wait_node* const next = futex_done->done_next;
    futex_done->complete(futex_done);
    futex_done = next;
  }
}

#else  // !ROUSE_HAVE_LIBURING: compiled out; requests fall back to epoll

struct reactor::uring_state {};
bool reactor::io_uring_available() noexcept { return false; }
bool reactor::uring_start() noexcept { return false; }
void reactor::uring_stop() noexcept {}
io_result<detail::registration*> reactor::uring_add(int) { return errno_code(ENOSYS); }
void reactor::uring_remove(detail::registration*) noexcept {}
void reactor::uring_park(clock::time_point, bool) noexcept {}
bool reactor::futex_wait_start(detail::futex_wait_node*, const std::atomic<std::uint32_t>*, std::uint32_t) noexcept {
  return false;
}
bool reactor::futex_wait_cancel(detail::futex_wait_node*) noexcept { return false; }

#endif

}  // namespace rouse::io
