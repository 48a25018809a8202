// The io_uring backend of the reactor (rouse/io/reactor.hpp). Built when
// liburing was found (ROUSE_HAVE_LIBURING); otherwise asking for io_uring
// falls back to epoll.
#include <linux/futex.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include "batch.hpp"
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
  futex_record* next = nullptr;  // the live list; then the batch handed out
};
// The futex waits this thread is handing out (uring_park), innermost first
// (src/io/batch.hpp).
struct reactor::futex_batches : detail::batch_levels<reactor::futex_record, &reactor::futex_record::next> {};

#if ROUSE_HAVE_LIBURING

namespace {
// What the 6.1 headers lack (Linux 6.7's io_uring futex requests, futex2 flags).
constexpr int op_futex_wait = 51;                        // IORING_OP_FUTEX_WAIT
constexpr unsigned futex2_size_u32 = 0x02;               // FUTEX2_SIZE_U32
constexpr unsigned futex2_private = 128;                 // FUTEX2_PRIVATE
constexpr std::uint64_t futex_bitset_any = 0xffffffffu;  // FUTEX_BITSET_MATCH_ANY

// user_data of a futex request: the record's address with bit 0 set, bit
// 1 clear (records are aligned; registrations have neither, operations bit
// 1 only, a poll removal both; markers are compared first).
void* tag_record(void* r) noexcept { return reinterpret_cast<void*>(reinterpret_cast<std::uintptr_t>(r) | 1u); }
bool is_record(void* data) noexcept { return (reinterpret_cast<std::uintptr_t>(data) & 3u) == 1u; }

void futex_wake_one(const std::atomic<std::uint32_t>* word) noexcept {
  (void)::syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
}
}  // namespace

namespace {
// user_data of requests whose completions carry nothing (poll removals,
// cancellations).
char ignore_marker;
constexpr unsigned ring_entries = 256;
constexpr unsigned completion_entries = 4096;
// Each registration's poll: both directions, edge-triggered (the default
// of a multishot poll), hang-ups of the reading side too.
constexpr unsigned poll_mask = POLLIN | POLLOUT | POLLRDHUP;
// An abandoning destructor waits for its request's completion in slices:
// the loop may take that completion from the ring meanwhile (and release
// the operation), which does not wake this waiter. 200 µs: well above a
// cancellation's round trip (a few µs), rare enough to cost nothing.
constexpr long abandon_wait_ns = 200'000;

// user_data of an operation's request: its address with bit 1 set
// (operations are 8-aligned; records use bit 0).
constexpr std::uintptr_t op_tag = 2;
std::uint64_t tag_op(const detail::op_base* op) noexcept { return reinterpret_cast<std::uintptr_t>(op) | op_tag; }
bool is_op(void* data) noexcept { return (reinterpret_cast<std::uintptr_t>(data) & 3u) == op_tag; }
detail::op_base* op_of(void* data) noexcept {
  return reinterpret_cast<detail::op_base*>(reinterpret_cast<std::uintptr_t>(data) & ~std::uintptr_t{3});
}

// user_data of a poll removal: the registration's address with bits 0 and
// 1 set (its completion is looked at: the kernel may refuse the removal).
constexpr std::uintptr_t removal_tag = 3;
void* tag_removal(detail::registration* r) noexcept {
  return reinterpret_cast<void*>(reinterpret_cast<std::uintptr_t>(r) | removal_tag);
}
bool is_removal(void* data) noexcept { return (reinterpret_cast<std::uintptr_t>(data) & 3u) == removal_tag; }
detail::registration* removed_of(void* data) noexcept {
  return reinterpret_cast<detail::registration*>(reinterpret_cast<std::uintptr_t>(data) & ~std::uintptr_t{3});
}

// A thread's tag for reactor::driver_.
thread_local char this_thread_tag;

// A completion copied out of the ring.
struct completion {
  std::uint64_t data;
  std::int32_t res;
  std::uint32_t flags;
};
}  // namespace

struct reactor::uring_state {
  io_uring ring{};
  // The submission queue (any thread may add), the completion queue's head
  // (the loop, or an abandoning destructor, takes completions) and backlog.
  ::rouse::mutex lock;
  // Completions taken from the ring, not handled yet (under lock): an
  // abandoning destructor takes every completion to find its own.
  std::vector<completion> backlog;
  std::vector<completion> batch;  // the loop's: the completions it handles now
  reactor* owner = nullptr;

  // Under lock: submits what is published, with GETEVENTS (which also
  // posts completions the kernel held for want of room). Where that fails
  // (the kernel short of memory, or its held completions still without
  // room), the completions waiting move to the backlog, for the loop,
  // which is woken for them (it may wait for the lock this thread holds,
  // or sleep on a ring it finds empty); the caller tries again. Returns
  // what io_uring_enter returned.
  int submit_making_room() noexcept {
    int const rc = io_uring_enter(static_cast<unsigned>(ring.ring_fd), flush(), 0, IORING_ENTER_GETEVENTS, nullptr);
    if (rc < 0) {
      std::size_t const waiting = backlog.size();
      take_completions();
      if (backlog.size() != waiting) owner->unpark();
    }
    return rc;
  }
  // Under lock: a free submission entry (with none, submits to make one).
  io_uring_sqe* sqe() noexcept {
    io_uring_sqe* s = io_uring_get_sqe(&ring);
    while (s == nullptr) {
      (void)submit_making_room();
      s = io_uring_get_sqe(&ring);
    }
    return s;
  }
  void arm_poll(int fd, void* data) noexcept {
    io_uring_sqe* const s = sqe();
    io_uring_prep_poll_multishot(s, fd, poll_mask);
    io_uring_sqe_set_data(s, data);
  }
  // Under lock: removes the poll armed with user_data `r`; `data` names
  // the removal's completion.
  void remove_poll(const void* r, void* data) noexcept {
    io_uring_sqe* const s = sqe();
    io_uring_prep_poll_remove(s, reinterpret_cast<std::uintptr_t>(r));
    io_uring_sqe_set_data(s, data);
  }
  // Under lock: makes the prepared entries visible to the kernel; returns
  // how many it has not consumed yet (what an io_uring_enter should submit).
  // The enter itself may run outside the lock: the kernel consumes entries
  // under its own lock, so each flusher's count covers what it published.
  unsigned flush() noexcept {
    io_uring_sq& sq = ring.sq;
    unsigned const tail = sq.sqe_tail;
    if (sq.sqe_head != tail) {
      sq.sqe_head = tail;
      io_uring_smp_store_release(sq.ktail, tail);
    }
    return tail - io_uring_smp_load_acquire(sq.khead);
  }
  // Whether the kernel has yet to take some published request (no lock:
  // an estimate, exact for what this thread published before).
  bool published_not_taken() const noexcept {
    return io_uring_smp_load_acquire(ring.sq.ktail) != io_uring_smp_load_acquire(ring.sq.khead);
  }
  // Submits `to_submit` and waits for `wait_nr` completions (bounded by
  // `ts` when given). No lock. Returns what io_uring_enter returns: the
  // count submitted, or -errno (errno is not set).
  int enter(unsigned to_submit, unsigned wait_nr, __kernel_timespec* ts) noexcept {
    unsigned flags = wait_nr > 0 || ts != nullptr ? IORING_ENTER_GETEVENTS : 0u;
    if (ts != nullptr) {
      io_uring_getevents_arg arg{};
      arg.sigmask_sz = _NSIG / 8;
      arg.ts = reinterpret_cast<std::uint64_t>(ts);
      return io_uring_enter2(static_cast<unsigned>(ring.ring_fd), to_submit, wait_nr, flags | IORING_ENTER_EXT_ARG,
                             reinterpret_cast<sigset_t*>(&arg), sizeof arg);
    }
    return io_uring_enter(static_cast<unsigned>(ring.ring_fd), to_submit, wait_nr, flags, nullptr);
  }
  // Under lock: moves the ring's completions to the backlog.
  void take_completions() {
    unsigned head;
    unsigned n = 0;
    io_uring_cqe* cqe;
    io_uring_for_each_cqe(&ring, head, cqe) {
      backlog.push_back({cqe->user_data, cqe->res, cqe->flags});
      ++n;
    }
    if (n > 0) io_uring_cq_advance(&ring, n);
  }
  // Under lock: the kernel holds completions it could not post (a full
  // completion queue); an enter with GETEVENTS flushes them.
  bool overflowed() const noexcept { return (IO_URING_READ_ONCE(*ring.sq.kflags) & IORING_SQ_CQ_OVERFLOW) != 0; }
};

bool reactor::driven_here() const noexcept { return driver_.load(std::memory_order_relaxed) == &this_thread_tag; }

// Submits the `n` requests flush() published. A failed enter (the kernel
// short of memory, completions it could not post), or one that took only
// some of them, leaves the rest published for the loop's next enter; a
// loop that may be asleep is woken for it. (An enter of another thread may
// have taken them meanwhile: then nothing is left and nobody is woken.)
void reactor::uring_submit_published(unsigned n) noexcept {
  if (n == 0) return;
  int const rc = uring_->enter(n, 0, nullptr);
  if (rc < static_cast<int>(n) && !driven_here() && uring_->published_not_taken()) unpark();
}

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
  u->owner = this;
  u->backlog.reserve(2 * completion_entries);
  u->batch.reserve(2 * completion_entries);
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
  unsigned const to_submit = uring_->flush();
  uring_->lock.unlock();
  // Operations' requests: a closed object's were cancelled at its close;
  // wait for their completions too, so that the kernel writes into no
  // buffer after this destructor. Their coroutines are never resumed
  // (detached: their frames may be destroyed later without touching this
  // reactor).
  if (to_submit > 0) (void)uring_->enter(to_submit, 0, nullptr);
  for (;;) {
    uring_->lock.lock();
    uring_->take_completions();
    uring_->batch.swap(uring_->backlog);
    // What is published but not submitted (a submit above, or of another
    // thread, that failed) goes with this round's wait.
    unsigned const unsubmitted = uring_->flush();
    uring_->lock.unlock();
    for (completion const& c : uring_->batch) {
      void* const data = reinterpret_cast<void*>(c.data);
      if (data == &ignore_marker || data == &detail::wake_marker) continue;
      if (is_op(data)) {
        detail::op_base* const op = op_of(data);
        kernel_in_flight_.fetch_sub(1, std::memory_order_relaxed);
        detail::registration* const r = op->reg;
        r->lock.lock();
        if (op->in_kernel.load(std::memory_order_relaxed)) {
          if (op->discard) op->discard(op, c.res);
          r->in_kernel.remove(op);
          op->detached = true;
          op->in_kernel.store(false, std::memory_order_release);
        }
        r->lock.unlock();
      } else if (is_record(data)) {
        --pending;
        auto* const rec = reinterpret_cast<futex_record*>(reinterpret_cast<std::uintptr_t>(data) & ~std::uintptr_t{1});
        if (c.res == 0) futex_wake_one(rec->word);  // woken meanwhile: pass it on
      }
    }
    uring_->batch.clear();
    if (pending == 0 && !kernel_ops_pending()) break;
    // liburing returns -errno and leaves errno alone: a signal (-EINTR) or
    // a transient shortage is waited through, not taken for the end.
    int const rc = uring_->enter(unsubmitted, 1, nullptr);
    if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) break;
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
  unsigned const published = uring_->flush();
  uring_->lock.unlock();
  futex_lock_.unlock();
  // Published: a failed submit (the kernel short of memory, completions it
  // could not post yet) does not take it back, so the record stands (its
  // completion will name it) and the loop's next enter submits it.
  uring_submit_published(published);
  return true;
}

bool reactor::futex_wait_cancel(detail::futex_wait_node* n) noexcept {
  futex_lock_.lock();
  auto* const rec = static_cast<futex_record*>(n->record);
  if (rec == nullptr || rec->node != n) {
    futex_lock_.unlock();
    // Its completion was taken: it stands, unless this thread is handing it
    // out right now (a coroutine resumed earlier in the list stops it or
    // destroys its frame): then it is withdrawn here, since only this
    // thread could deliver it, and a wake it took is passed on.
    futex_record* const taken = futex_batches::withdraw([n](futex_record* r) { return r->node == n; });
    if (taken == nullptr) return false;
    if (n->result == 0) futex_wake_one(taken->word);
    delete taken;
    return true;
  }
  rec->node = nullptr;
  const std::atomic<std::uint32_t>* const word = rec->word;
  // The cancel is published while the record is surely alive (its
  // completion handler takes futex_lock_ before it frees it), and the
  // kernel consumes the ring in order: it reaches the wait it names before
  // any later request, even one whose record reuses this address. The
  // kernel removes the waiter during the submit, unless a wake took it
  // first; a failed submit leaves the cancel published for the loop's next
  // enter, and the record stands until its completion.
  uring_->lock.lock();
  io_uring_sqe* const s = uring_->sqe();
  io_uring_prep_cancel64(s, reinterpret_cast<std::uint64_t>(tag_record(rec)), 0);
  io_uring_sqe_set_data(s, &ignore_marker);
  unsigned const published = uring_->flush();
  uring_->lock.unlock();
  futex_lock_.unlock();
  uring_submit_published(published);
  // Whether a wake took the request is known only from its completion,
  // which the loop may not reap for a long time (a run_until_complete that
  // returns at once on this stop): pass one wake on now, while the word is
  // surely alive — at worst a spurious wake of another waiter. The
  // completion passes one on too if it was woken (a spurious one at worst).
  futex_wake_one(word);
  return true;
}

io_result<detail::registration*> reactor::uring_add(int fd) {
  // Refused as epoll refuses it (EPERM): a regular file or a directory is
  // always "ready", never worth a poll; so is a character device without
  // poll support (/dev/null, /dev/zero), which only epoll itself can tell
  // (a registration in a throwaway epoll set: three system calls, for
  // character devices only; terminals and the like pass).
  struct stat st {};
  if (::fstat(fd, &st) != 0) return errno_code(errno);
  if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) return errno_code(EPERM);
  if (S_ISCHR(st.st_mode)) {
    int const probe = ::epoll_create1(EPOLL_CLOEXEC);
    if (probe < 0) return errno_code(errno);
    epoll_event ev{};
    ev.events = EPOLLIN;
    int const added = ::epoll_ctl(probe, EPOLL_CTL_ADD, fd, &ev);
    int const err = errno;
    ::close(probe);
    if (added != 0) return errno_code(err);
  }
  auto* const r = new detail::registration;
  r->fd = fd;
  r->owner = this;
  // The poll is armed when a readiness operation first waits
  // (arm_readiness).
  return r;
}

void reactor::arm_readiness(detail::registration* r) noexcept {
  // Under r->lock.
  if (r->poll_armed) return;
  r->poll_armed = true;
  r->poll_done = false;
  uring_->lock.lock();
  uring_->arm_poll(r->fd, r);
  unsigned const n = driven_here() ? 0 : uring_->flush();
  uring_->lock.unlock();
  uring_submit_published(n);
}

void reactor::uring_remove(detail::registration* r) noexcept {
  r->lock.lock();
  bool const armed = r->poll_armed;
  if (armed) r->poll_removing = true;  // the registration stays until its completion came
  r->lock.unlock();
  if (armed) {
    uring_->lock.lock();
    uring_->remove_poll(r, tag_removal(r));
    unsigned const n = uring_->flush();
    uring_->lock.unlock();
    uring_submit_published(n);
  }
  // The descriptor is closed (or given up) when this returns. A request
  // names it by number, which the kernel looks up when it takes the
  // request from the ring: one published but not taken yet (its submit
  // failed: the kernel short of memory, or completions it holds without
  // room; or another thread's submit not made yet) would run on whatever
  // the number names by then. So every request published so far is
  // submitted first, this object's and its cancels included.
  uring_settle();
}

void reactor::uring_settle() noexcept {
  for (;;) {
    uring_->lock.lock();
    if (uring_->flush() == 0) {  // nothing published and not taken
      uring_->lock.unlock();
      return;
    }
    int const rc = uring_->submit_making_room();
    uring_->lock.unlock();
    if (rc < 0 && rc != -EINTR) std::this_thread::yield();  // short of memory: a moment, then again
  }
}

bool reactor::kernel_ops_pending() noexcept {
  bool any = false;
  free_lock_.lock();
  for (detail::registration* r = to_free_; r && !any; r = r->free_next) {
    r->lock.lock();
    any = !r->in_kernel.empty();
    r->lock.unlock();
  }
  free_lock_.unlock();
  return any;
}

void reactor::request_start(detail::op_base* op) noexcept {
  // Under op->reg->lock.
  detail::registration* const r = op->reg;
  detail::kernel_request k;
  op->describe(op, k);
  uring_->lock.lock();
  io_uring_sqe* const s = uring_->sqe();
  switch (k.opcode) {
    case detail::kernel_opcode::recv:
      io_uring_prep_recv(s, r->fd, k.data, k.size, k.flags);
      break;
    case detail::kernel_opcode::send:
      io_uring_prep_send(s, r->fd, k.data, k.size, k.flags);
      break;
    case detail::kernel_opcode::read:
      io_uring_prep_read(s, r->fd, k.data, k.size, static_cast<std::uint64_t>(-1));
      break;
    case detail::kernel_opcode::write:
      io_uring_prep_write(s, r->fd, k.data, k.size, static_cast<std::uint64_t>(-1));
      break;
    case detail::kernel_opcode::accept:
      io_uring_prep_accept(s, r->fd, nullptr, nullptr, k.flags);
      break;
    case detail::kernel_opcode::recvmsg:
      io_uring_prep_recvmsg(s, r->fd, static_cast<msghdr*>(k.data), static_cast<unsigned>(k.flags));
      break;
    case detail::kernel_opcode::sendmsg:
      io_uring_prep_sendmsg(s, r->fd, static_cast<const msghdr*>(k.data), static_cast<unsigned>(k.flags));
      break;
    case detail::kernel_opcode::connect:
      io_uring_prep_connect(s, r->fd, static_cast<const sockaddr*>(k.data), static_cast<socklen_t>(k.size));
      break;
    case detail::kernel_opcode::poll_out:
      io_uring_prep_poll_add(s, r->fd, POLLOUT);
      break;
  }
  io_uring_sqe_set_data64(s, tag_op(op));
  // The loop's own requests go with its next poll() or park(), together
  // (unless set_submit_at_once()).
  unsigned const n = driven_here() && !submit_at_once_ ? 0 : uring_->flush();
  uring_->lock.unlock();
  uring_submit_published(n);
  kernel_requests_.fetch_add(1, std::memory_order_relaxed);
  kernel_in_flight_.fetch_add(1, std::memory_order_relaxed);
}

void reactor::request_cancel(detail::op_base* op) noexcept {
  // Under op->reg->lock, while op->in_kernel. Submitted at once, together
  // with the request itself if it is still queued.
  uring_->lock.lock();
  io_uring_sqe* const s = uring_->sqe();
  io_uring_prep_cancel64(s, tag_op(op), 0);
  io_uring_sqe_set_data(s, &ignore_marker);
  unsigned const n = uring_->flush();
  uring_->lock.unlock();
  uring_submit_published(n);
}

void reactor::request_abandon(detail::op_base* op) noexcept {
  std::uint64_t const mine = tag_op(op);
  for (;;) {
    // Ordering: acquire: pairs with the release of whoever handled the
    // completion; the kernel is done with the buffer.
    if (!op->in_kernel.load(std::memory_order_acquire)) return;
    bool found = false;
    bool others = false;
    uring_->lock.lock();
    uring_->take_completions();
    int res = 0;
    for (std::size_t i = 0; i < uring_->backlog.size(); ++i) {
      if (uring_->backlog[i].data == mine) {
        res = uring_->backlog[i].res;
        uring_->backlog.erase(uring_->backlog.begin() + static_cast<std::ptrdiff_t>(i));
        found = true;
        break;
      }
    }
    others = !uring_->backlog.empty();
    // The cancel (or the request itself) may still be published only, its
    // own submit having failed: this wait submits it.
    unsigned const unsubmitted = found ? 0 : uring_->flush();
    uring_->lock.unlock();
    if (found) {
      kernel_in_flight_.fetch_sub(1, std::memory_order_relaxed);
      detail::registration* const r = op->reg;
      r->lock.lock();
      if (op->in_kernel.load(std::memory_order_relaxed)) {
        if (op->discard) op->discard(op, res);
        r->in_kernel.remove(op);
        op->in_kernel.store(false, std::memory_order_release);
      }
      r->lock.unlock();
    }
    // Completions taken for the loop: a parked loop would not see them.
    if (others && !driven_here()) unpark();
    if (found) return;
    __kernel_timespec ts{};
    ts.tv_nsec = abandon_wait_ns;
    (void)uring_->enter(unsubmitted, 1, &ts);
  }
}

void reactor::uring_handle_op(detail::op_base* op, int res, detail::op_base**& done_tail) noexcept {
  kernel_in_flight_.fetch_sub(1, std::memory_order_relaxed);
  detail::registration* const r = op->reg;
  r->lock.lock();
  if (!op->in_kernel.load(std::memory_order_relaxed)) {  // an abandoning destructor took it
    r->lock.unlock();
    return;
  }
  bool done = true;
  if (op->abandoned) {
    done = false;  // released below, never completed
  } else if (res == -ECANCELED) {
    if (op->stop_wanted)
      op->stopped = true;
    else if (r->closed)
      op->fail(op, ECANCELED);
    else
      done = false;  // nobody here asked: its submitting thread exited, or a
                     // cancellation meant for an earlier request at this
                     // address came late. Ask again.
  } else if (res == -EAGAIN) {
    // The kernel would not wait (a descriptor it does not poll): wait for
    // readiness instead, as the readiness backend does.
    if (op->stop_wanted) {
      op->stopped = true;
    } else if (r->closed) {
      op->fail(op, ECANCELED);
    } else if (!op->perform(op, r->fd)) {
      r->in_kernel.remove(op);
      op->in_kernel.store(false, std::memory_order_release);
      r->waiting[op->direction].push_back(op);
      arm_readiness(r);
      r->lock.unlock();
      return;
    }
  } else {
    done = op->finish(op, res);
  }
  if (op->abandoned) {
    if (op->discard) op->discard(op, res);
    r->in_kernel.remove(op);
    op->in_kernel.store(false, std::memory_order_release);
    r->lock.unlock();
    return;
  }
  if (!done) {
    // The rest of a read_exact / write_all, or a retry.
    if (op->stop_wanted) {
      op->stopped = true;
      done = true;
    } else if (r->closed) {
      op->fail(op, ECANCELED);
      done = true;
    } else {
      request_start(op);
      r->lock.unlock();
      return;
    }
  }
  r->in_kernel.remove(op);
  // Ordering: release: pairs with the acquire in request_abandon (not
  // waited on here: the operation completes through its gate).
  op->in_kernel.store(false, std::memory_order_release);
  op->done_next = nullptr;
  op->in_batch.store(true, std::memory_order_relaxed);
  *done_tail = op;
  done_tail = &op->done_next;
  r->lock.unlock();
}

void reactor::uring_park(clock::time_point deadline, bool nonblocking) noexcept {
  uring_state& u = *uring_;
  // Ordering: relaxed: only this thread compares with its own tag.
  if (driver_.load(std::memory_order_relaxed) != &this_thread_tag)
    driver_.store(&this_thread_tag, std::memory_order_relaxed);
  u.lock.lock();
  unsigned const to_submit = u.flush();
  bool const overflow = u.overflowed();
  bool const ready = !u.backlog.empty() || io_uring_cq_ready(&u.ring) != 0;
  u.lock.unlock();
  // A busy round that queued nothing and has nothing to handle: no system
  // call, no second lock.
  if (nonblocking && !ready && to_submit == 0 && !overflow) return;
  if (nonblocking || ready) {
    // One system call submits the round's requests; completions already
    // in the ring need none.
    if (to_submit > 0 || overflow)
      (void)io_uring_enter(static_cast<unsigned>(u.ring.ring_fd), to_submit, 0, overflow ? IORING_ENTER_GETEVENTS : 0u,
                           nullptr);
  } else if (deadline == clock::time_point::max()) {
    (void)u.enter(to_submit, 1, nullptr);
  } else {
    auto left = deadline - clock::now();
    if (left < clock::duration::zero()) left = clock::duration::zero();
    auto const secs = std::chrono::duration_cast<std::chrono::seconds>(left);
    __kernel_timespec ts{};
    ts.tv_sec = secs.count();
    ts.tv_nsec = std::chrono::duration_cast<std::chrono::nanoseconds>(left - secs).count();
    (void)u.enter(to_submit, 1, &ts);
  }
  // A completion names a registration or an operation that another thread
  // made and submitted under this lock; taking the lock orders its
  // construction before our use (the kernel's ring orders it too, but
  // ThreadSanitizer cannot see through it).
  u.lock.lock();
  u.take_completions();
  u.batch.swap(u.backlog);
  u.lock.unlock();
  if (u.batch.empty()) return;

  detail::op_base* done = nullptr;
  detail::op_base** done_tail = &done;
  bool io = false;
  bool rearm_wake = false;
  futex_record* futex_done = nullptr;  // in completion order
  futex_record** futex_done_tail = &futex_done;
  for (completion const& c : u.batch) {
    void* const data = reinterpret_cast<void*>(c.data);
    bool const more = (c.flags & IORING_CQE_F_MORE) != 0;
    if (data == &ignore_marker) continue;
    if (data == &detail::wake_marker) {
      std::uint64_t count;
      while (::read(wake_fd_, &count, sizeof count) < 0 && errno == EINTR) {
      }
      if (!more) rearm_wake = true;
      continue;
    }
    if (is_op(data)) {
      io = true;
      uring_handle_op(op_of(data), c.res, done_tail);
      continue;
    }
    if (is_removal(data)) {
      // -EALREADY: the kernel was handling a wake-up of the poll and kept
      // it armed (a multishot poll re-arms): the descriptor's file would
      // stay open, its peer never see the close. Asked again (submitted
      // with the next poll() or park()) until the poll has ended.
      detail::registration* const r = removed_of(data);
      r->lock.lock();
      if (c.res == -EALREADY && !r->poll_done) {
        u.lock.lock();
        u.remove_poll(r, tag_removal(r));
        u.lock.unlock();
      } else {
        r->poll_removing = false;
      }
      r->lock.unlock();
      continue;
    }
    if (is_record(data)) {
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
        // Kept until handed out: a frame destroyed before then withdraws
        // it (futex_wait_cancel) and needs the word.
        node->result = c.res;
        rec->next = nullptr;
        *futex_done_tail = rec;
        futex_done_tail = &rec->next;
        continue;
      }
      // Withdrawn (node null): futex_wait_cancel passed a wake on already;
      // a wake the request took is passed on again (a cancel whose submit
      // failed left the request queued, and it may have taken one since):
      // at worst a spurious wake.
      if (c.res == 0) futex_wake_one(rec->word);
      delete rec;
      continue;
    }
    auto* const r = static_cast<detail::registration*>(data);
    if (c.res > 0) {
      io = true;
      dispatch(r, static_cast<std::uint32_t>(c.res), done_tail);
    } else if (c.res < 0 && c.res != -ECANCELED && !more) {
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
        u.lock.lock();
        u.arm_poll(r->fd, r);
        u.lock.unlock();
      }
      r->lock.unlock();
    }
  }
  u.batch.clear();
  if (rearm_wake) {
    u.lock.lock();
    u.arm_poll(wake_fd_, &detail::wake_marker);
    u.lock.unlock();
  }
  // Re-arms and the rest of read_exact / write_all requests are submitted
  // with the next poll() or park().
  if (io) readiness_wakeups_.fetch_add(1, std::memory_order_relaxed);
  // As complete_all: a coroutine resumed inline (by an operation's
  // completion, or a futex wait's) may destroy the frame of a futex wait
  // in this batch, whose abandon() withdraws it from the level
  // (futex_wait_cancel) instead of waiting for this thread: the level
  // stands before the first resumption.
  futex_batches::level level(futex_done);
  complete_all(done);
  while (futex_record* const rec = level.pop()) {
    detail::futex_wait_node* const node = rec->node;
    delete rec;
    node->complete(node);
  }
}

#else  // !ROUSE_HAVE_LIBURING: compiled out; requests fall back to epoll

struct reactor::uring_state {};
bool reactor::io_uring_available() noexcept { return false; }
bool reactor::uring_start() noexcept { return false; }
void reactor::uring_stop() noexcept {}
io_result<detail::registration*> reactor::uring_add(int) { return errno_code(ENOSYS); }
void reactor::uring_remove(detail::registration*) noexcept {}
void reactor::uring_settle() noexcept {}
void reactor::uring_park(clock::time_point, bool) noexcept {}
void reactor::arm_readiness(detail::registration*) noexcept {}
void reactor::request_start(detail::op_base*) noexcept {}
void reactor::request_cancel(detail::op_base*) noexcept {}
void reactor::request_abandon(detail::op_base*) noexcept {}
void reactor::uring_handle_op(detail::op_base*, int, detail::op_base**&) noexcept {}
bool reactor::kernel_ops_pending() noexcept { return false; }
bool reactor::driven_here() const noexcept { return false; }
bool reactor::futex_wait_start(detail::futex_wait_node*, const std::atomic<std::uint32_t>*, std::uint32_t) noexcept {
  return false;
}
bool reactor::futex_wait_cancel(detail::futex_wait_node*) noexcept { return false; }

#endif

}  // namespace rouse::io
