// Relacy model of the handshake that ends a completion-based I/O operation
// on the io_uring backend (rouse/io/operation.hpp, reactor.hpp's op_base,
// src/io/reactor_uring.cpp): a request in the kernel names the operation,
// and exactly one of three things ends it — its completion handled by the
// loop, a stop that cancels it (the completion then says -ECANCELED, or
// brings the data that won), or the destruction of the awaiting frame, whose
// destructor cancels and waits until the kernel has given the request back.
//
// The contract checked:
//   - once an abandoning destructor has returned, or a stopped operation's
//     coroutine has resumed, the kernel never writes the buffer again and
//     nobody touches the operation (both then free it);
//   - each completion is handled once: by the loop or by the abandoning
//     destructor, never both, never neither;
//   - an abandoned operation is never completed; any other ends exactly once
//     (stopped, or with its data), and nothing hangs;
//   - the kernel's buffer write reaches whoever frees the buffer through
//     in_kernel's release (by the completion's handler) and acquire (by the
//     destructor's wait).
//
// What is modelled, and how:
//   the kernel        fake_ring's kernel side, under its own lock: each
//                     request idle / pending / running / done; running it
//                     (kernel_complete) claims a pending request, writes the
//                     buffer and posts the completion; a cancel
//                     (kernel_cancel, consumed by the submitting enter, as
//                     io_uring does) ends a pending request with -ECANCELED
//                     and cannot stop a running one; every cancel posts its
//                     own completion (ignore_marker), every unpark() a
//                     wake_marker one (the eventfd's multishot poll)
//   the ring          the completion queue (entries published by a release
//                     of the tail, taken by advancing the head), and
//                     io_uring_enter's wait for a completion: until the ring
//                     holds one (a completion that another thread took
//                     before the waiter looked does not end the wait), or,
//                     timed, until Relacy times it out (the destructor's
//                     200 µs slices); the loop thread of the model ends
//                     when every other thread is done and the ring is empty
//                     (the harness's stop, not the reactor's)
//   the reactor       a copy, since it is out-of-line code over liburing:
//                     uring_state's lock, backlog and batch and its
//                     take_completions; reactor::request_cancel,
//                     request_abandon, uring_handle_op (the branches an
//                     open object reaches: abandoned, -ECANCELED, data), the
//                     reaping and the idle wait of uring_park, complete_all
//   the operation     a copy of op_base's fields and of io_operation's
//                     destructor, on_stop (its kernel branch), complete_op
//                     and the gate. op_base cannot be compiled here: its
//                     in_kernel is a std::atomic, not the detail::atomic
//                     alias, so Relacy would not see the ordering this model
//                     is about. Its plain fields are rl::vars: an access
//                     after the frame was freed (poisoned) is a data race
//   the frame         the buffer (an rl::var the kernel writes) and the
//                     coroutine: complete_op's resume schedules it on the
//                     loop (its executor), where it runs await_resume's
//                     stop_.reset() (the stop callback slot, modelled as a
//                     lock: a running callback is waited for, a later one
//                     never runs), reads its result and frees the frame
// The copy keeps the reactor's order of locks, loads and stores, so the
// model checks the protocol as written there; a change to
// src/io/reactor_uring.cpp or operation.hpp's destructor and on_stop must
// be carried over here. Not modelled (no suite reaches them): the loop's
// other completions (polls, futex waits), closing, the -EAGAIN fallback to
// readiness, read_exact's requests for the rest, a destructor running on
// the loop's own thread (it then skips the unpark, and takes a completed
// operation out of the batch being completed: not a kernel handshake) and the reactor's
// teardown (uring_stop).
//
// The destroyer obeys docs/io.md's rule: a frame is not destroyed while a
// wake of it is in flight. It looks where the destructor looks (the gate,
// then in_kernel under the registration's lock) and, finding the completion
// already handled by the loop, lets the frame be resumed instead ("too
// late"). A destructor that finds in_kernel set abandons the operation.
//
// The suites (random searches; each explores the races it is about, or
// fails saying which it never reached):
//   destroy_races_completion   the kernel runs request A (unless the
//                              destroyer's cancel takes it first) and then a
//                              second operation B; the loop reaps; a
//                              destroyer abandons A and frees its frame. A
//                              is handled once and never resumed (or, too
//                              late, resumed once with its data); B's
//                              completion, even one the destroyer took from
//                              the ring, is handled by the loop, once
//   stop_races_completion      the kernel runs A unless the stopper's cancel
//                              takes it first; the loop reaps. A ends once,
//                              stopped exactly when the kernel never ran it,
//                              else with its data; its coroutine frees the
//                              frame
//   destroy_while_loop_holds   A is running in the kernel (no cancel can take
//                              it back); the loop may hold its completion in
//                              its batch while the destroyer abandons, and
//                              the destroyer must wait for the loop's
//                              handling (in_kernel's release) before it frees
//   stop_then_destroy          a stopper and a destroyer on two threads: the
//                              destructor waits for a running stop callback
//                              (stop_.reset()), sends no second cancel after
//                              the stop's, and waits for the completion that
//                              cancel (or the data) brings
//
// The broken variants (switched in this file's copy; src/io has no hooks):
//   abandon_reads_in_kernel_relaxed   request_abandon's check of in_kernel
//       is relaxed: the free races the loop's handling of the operation and
//       the kernel's buffer write that handling saw (destroy_while_loop_holds,
//       a data race)
//   abandon_returns_after_cancel      the destructor returns once it has
//       submitted the cancel, without waiting for the completion: the
//       kernel's write, and the loop's handling, race the free
//       (destroy_races_completion, a data race)
//   abandon_leaves_its_completion     request_abandon copies its completion
//       out of the backlog without erasing it: the loop takes it too, and
//       uring_handle_op reads the freed operation (reg, then in_kernel)
//       before its check of in_kernel can turn it away
//       (destroy_races_completion, a data race). That check is never
//       reached by the faithful copy (no schedule hands one completion to
//       both), so a variant that only drops it is not kept: nothing to catch
//   abandon_skips_unpark              request_abandon keeps other
//       completions it took for the loop without waking it: B's sits in the
//       backlog while the loop sleeps (destroy_races_completion, an
//       assertion: B never ends)
//   stop_completes_at_once            on_stop ends an operation the kernel
//       holds as stopped at once (as the readiness branch does): the
//       request's completion then finds it ended and is dropped, and the
//       data the kernel moved is lost (stop_races_completion, an assertion:
//       the completion was never handled; where the kernel writes after the
//       coroutine freed the frame it is also a data race, which the search
//       meets later)
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>

#include "model.hpp"
#include "rouse/mutex.hpp"

namespace {

namespace rd = rouse::detail;

enum class broken {
  none,
  abandon_reads_in_kernel_relaxed,
  abandon_returns_after_cancel,
  abandon_leaves_its_completion,
  abandon_skips_unpark,
  stop_completes_at_once,
};
broken active_break = broken::none;
bool broken_on(broken b) noexcept { return active_break == b; }

struct broken_scope {
  explicit broken_scope(broken b) noexcept { active_break = b; }
  ~broken_scope() { active_break = broken::none; }
  broken_scope(const broken_scope&) = delete;
  broken_scope& operator=(const broken_scope&) = delete;
};

constexpr int res_canceled = -125;  // -ECANCELED: a cancel took the request
constexpr int res_already = -114;   // -EALREADY: the cancel found it running
constexpr int res_not_found = -2;   // -ENOENT: the cancel found it done
constexpr int bytes_a = 7;          // what A's read moves
constexpr int bytes_b = 3;
constexpr int poison = -1;  // a freed frame's fields

// A completion's user_data: a marker, or an operation (its index + 2).
constexpr int tag_ignore = 0;  // ignore_marker: a cancel's own completion
constexpr int tag_wake = 1;    // wake_marker: unpark()'s eventfd poll
constexpr int tag_a = 2;
constexpr int tag_b = 3;
constexpr int tags = 4;

// Over each search: how often the races of interest were reached.
struct explored {
  unsigned long destroyer_found_its_own = 0;  // request_abandon took its completion
  unsigned long loop_released_abandoned = 0;  // uring_handle_op's abandoned branch
  unsigned long destroyer_took_others = 0;    // ...and kept others for the loop
  unsigned long destroy_too_late = 0;         // the loop had handled it: resumed instead
  unsigned long stopped = 0;                  // the cancel took the request
  unsigned long data_despite_stop = 0;        // a stop's cancel lost to the data
  unsigned long abandoned_after_stop = 0;     // the destructor relied on the stop's cancel
};
explored seen;

struct registration {
  rouse::mutex lock;  // closed: never, in these suites
};

// op_base's fields, io_operation's gate and result, and the frame.
struct model_op {
  int tag = 0;
  rd::unsync<registration*> reg{nullptr};
  rd::unsync<bool> listed{false};  // in the registration's in_kernel list
  rd::unsync<bool> stop_wanted{false};
  rd::unsync<bool> abandoned{false};
  rd::unsync<bool> stopped{false};
  // Ordering: release (under the lock) when the completion is handled;
  // acquire in an abandoning destructor's wait.
  rd::atomic<bool> in_kernel{false};
  rd::atomic<int> gate{2};
  rd::unsync<int> result{0};  // what finish() stored
  rd::unsync<int> buffer{0};  // the kernel writes it
  // The stop callback slot (stop_slot): a callback runs under it; reset()
  // takes it and unregisters.
  rouse::mutex stop_slot;
  bool stop_registered = true;  // under stop_slot
  // complete_op's resume, scheduled on the loop: the coroutine runs there.
  rd::atomic<std::uint32_t> scheduled{0};
  // Bookkeeping, read in after().
  int handled = 0;  // completions handled (past the in_kernel check)
  int resumes = 0;  // gate reached 0
  int ran = 0;      // the coroutine ran on after the operation
  int cancels = 0;  // request_cancel calls
  bool ended_stopped = false;
  bool destroyed = false;

  // The frame is freed: every field a late access would touch is poisoned
  // (reg: to a registration nobody uses, whose lock still works).
  void free_frame(registration* graveyard) {
    rd::unsync_store(buffer, poison);
    rd::unsync_store(result, poison);
    rd::unsync_store(reg, graveyard);
    rd::unsync_store(listed, false);
    rd::unsync_store(stop_wanted, false);
    rd::unsync_store(abandoned, false);
    rd::unsync_store(stopped, false);
  }
};

struct completion {
  int tag;
  int res;
};

// The kernel, the ring and the reactor's ring state (uring_state).
struct fake_ring {
  static constexpr int capacity = 64;  // posts of one run; see post_locked
  enum request_state { idle, pending, running, done };

  // The kernel's side.
  rouse::mutex kernel_lock;
  request_state request[tags] = {};
  bool ran[tags] = {};  // the kernel ran the request (wrote the buffer)
  struct entry {
    rd::unsync<int> tag{0};
    rd::unsync<int> res{0};
  };
  entry cq[capacity];
  // Ordering: release by the kernel after the entry; acquire by a reader.
  rd::atomic<std::uint32_t> cq_tail{0};
  // Written under `lock` (release: the entries before it were read).
  rd::atomic<std::uint32_t> cq_head{0};
  // io_uring_enter's wait queue: bumped after every post (and by the
  // harness's stop, which ends the loop thread of the model).
  rd::atomic<std::uint32_t> events{0};
  rd::atomic<std::uint32_t> harness_stop{0};

  // uring_state: its lock, the backlog and the loop's batch.
  rouse::mutex lock;
  completion backlog[capacity] = {};
  int backlog_size = 0;
  completion batch[capacity] = {};
  int batch_size = 0;

  // Under kernel_lock. A run posts a few completions, plus a wake per slice
  // the destructor waits with others in the backlog: 64 leaves room for
  // ~50 slices, far past what a random schedule gives.
  void post_locked(int tag, int res) {
    std::uint32_t const t = cq_tail.load(std::memory_order_relaxed);
    RL_ASSERT(t < capacity);
    rd::unsync_store(cq[t].tag, tag);
    rd::unsync_store(cq[t].res, res);
    cq_tail.store(t + 1, std::memory_order_release);
  }
  void ring_bell() {
    events.fetch_add(1, std::memory_order_release);
    rd::wake_all(events);
  }
  void post(int tag, int res) {
    kernel_lock.lock();
    post_locked(tag, res);
    kernel_lock.unlock();
    ring_bell();
  }

  // The kernel runs `op`'s request (data has come): claims it unless a
  // cancel took it first, moves the data into the buffer, completes it.
  void kernel_complete(model_op& op, int bytes) {
    kernel_lock.lock();
    bool const run = request[op.tag] == pending || request[op.tag] == running;
    if (run) request[op.tag] = running;
    kernel_lock.unlock();
    if (!run) return;
    ran[op.tag] = true;
    rd::unsync_store(op.buffer, bytes);
    kernel_lock.lock();
    request[op.tag] = done;
    post_locked(op.tag, bytes);
    kernel_lock.unlock();
    ring_bell();
  }
  // IORING_OP_ASYNC_CANCEL, consumed by the enter that submits it.
  void kernel_cancel(int tag) {
    kernel_lock.lock();
    int own;
    if (request[tag] == pending) {
      request[tag] = done;
      post_locked(tag, res_canceled);
      own = 0;
    } else {
      own = request[tag] == running ? res_already : res_not_found;
    }
    post_locked(tag_ignore, own);
    kernel_lock.unlock();
    ring_bell();
  }

  // io_uring_enter(GETEVENTS, min_complete 1): returns once the ring holds
  // a completion; timed, also when Relacy times the wait out. False: the
  // harness stopped the loop thread (the ring was empty).
  bool wait_for_completion(bool timed) {
    for (;;) {
      std::uint32_t const e = events.load(std::memory_order_acquire);
      bool const stop = harness_stop.load(std::memory_order_acquire) != 0;
      if (cq_tail.load(std::memory_order_acquire) != cq_head.load(std::memory_order_acquire)) return true;
      if (stop) return false;
      if (timed) {
        if (rd::wait_until(events, e, std::chrono::steady_clock::time_point::max()) == rd::wait_result::timed_out)
          return true;
      } else {
        rd::wait(events, e);
      }
    }
  }

  // uring_state::take_completions. Under lock.
  void take_completions() {
    std::uint32_t h = cq_head.load(std::memory_order_relaxed);
    std::uint32_t const t = cq_tail.load(std::memory_order_acquire);
    for (; h != t; ++h) {
      RL_ASSERT(backlog_size < capacity);
      backlog[backlog_size++] = {rd::unsync_load(cq[h].tag), rd::unsync_load(cq[h].res)};
    }
    cq_head.store(t, std::memory_order_release);
  }
  void erase_backlog(int i) {  // under lock
    for (int j = i; j + 1 < backlog_size; ++j) backlog[j] = backlog[j + 1];
    --backlog_size;
  }
};

// The threads of a suite: each runs one role; the loop is thread 0.
enum class role { loop, kernel, stopper, destroyer };

// One suite's world: the ring, a registration, the operations, and the
// reactor's and the operation's code (copies, see the header comment).
struct world {
  fake_ring ring;
  registration reg;
  registration graveyard;
  model_op ops[2];                            // A, B
  bool has_b = false;                         // B's request is in the kernel too
  rd::atomic<std::uint32_t> participants{0};  // threads other than the loop, still running

  model_op& op_of(int tag) { return ops[tag - tag_a]; }
  model_op& a() { return ops[0]; }
  model_op& b() { return ops[1]; }

  // The operation's await_suspend is done: its request is in the kernel.
  void start(int tag, fake_ring::request_state state) {
    model_op& op = op_of(tag);
    op.tag = tag;
    rd::unsync_store(op.reg, &reg);
    rd::unsync_store(op.listed, true);
    op.in_kernel.store(true, std::memory_order_relaxed);
    op.gate.store(1, std::memory_order_relaxed);
    ring.request[tag] = state;
  }

  // Before the threads: A's request (and B's) in the kernel; `others`
  // threads besides the loop.
  void begin(std::uint32_t others, fake_ring::request_state a_state, bool with_b) {
    start(tag_a, a_state);
    has_b = with_b;
    if (with_b) start(tag_b, fake_ring::pending);
    participants.store(others, std::memory_order_relaxed);
  }

  // A participant (kernel, destroyer, stopper) is done; the last one lets
  // the loop thread end once it has nothing left to reap.
  void participant_done() {
    if (participants.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    ring.harness_stop.store(1, std::memory_order_release);
    ring.ring_bell();
  }

  // reactor::unpark: the eventfd write; its poll posts a wake completion.
  void unpark() { ring.post(tag_wake, 1); }

  // reactor::request_cancel. Under op.reg->lock, while in_kernel.
  void request_cancel(model_op& op) {
    ++op.cancels;
    ring.lock.lock();  // the cancel's entry, flushed
    ring.lock.unlock();
    ring.kernel_cancel(op.tag);  // the enter
  }

  // reactor::request_abandon (the destroyer is never the loop's thread).
  void request_abandon(model_op& op) {
    for (;;) {
      // Ordering: acquire: pairs with the release of whoever handled the
      // completion; the kernel is done with the buffer.
      std::memory_order const mo =
          broken_on(broken::abandon_reads_in_kernel_relaxed) ? std::memory_order_relaxed : std::memory_order_acquire;
      if (!op.in_kernel.load(mo)) return;
      bool found = false;
      int res = 0;
      ring.lock.lock();
      ring.take_completions();
      for (int i = 0; i < ring.backlog_size; ++i) {
        if (ring.backlog[i].tag == op.tag) {
          res = ring.backlog[i].res;
          if (!broken_on(broken::abandon_leaves_its_completion)) ring.erase_backlog(i);
          found = true;
          break;
        }
      }
      bool const others = ring.backlog_size != 0;
      bool other_op = false;  // bookkeeping: an operation's completion kept for the loop
      for (int i = 0; i < ring.backlog_size; ++i)
        if (ring.backlog[i].tag >= tag_a && ring.backlog[i].tag != op.tag) other_op = true;
      ring.lock.unlock();
      (void)res;  // discard(): a read has nothing to release
      if (found) {
        registration* const r = rd::unsync_load(op.reg);
        r->lock.lock();
        if (op.in_kernel.load(std::memory_order_relaxed)) {
          ++op.handled;
          ++seen.destroyer_found_its_own;
          rd::unsync_store(op.listed, false);
          op.in_kernel.store(false, std::memory_order_release);
        }
        r->lock.unlock();
      }
      if (other_op) ++seen.destroyer_took_others;
      // Completions taken for the loop: a parked loop would not see them.
      if (others && !broken_on(broken::abandon_skips_unpark)) unpark();
      if (found) return;
      (void)ring.wait_for_completion(true);  // a 200 µs slice
    }
  }

  // io_operation's destructor. False: a wake of the frame is in flight
  // (the loop handled the completion), and docs/io.md forbids destroying
  // it now: the frame is left to its resumption.
  bool destroy(model_op& op) {
    if (op.gate.load(std::memory_order_acquire) == 0) return false;
    stop_reset(op);  // waits for a stop callback running on another thread
    // The destructor reads op.reg; the model takes the same pointer from
    // the world, so that the look of a destroyer that turns out too late
    // is no access to a frame its coroutine may already be freeing.
    registration* const r = &reg;
    r->lock.lock();
    if (op.in_kernel.load(std::memory_order_relaxed)) {
      rd::unsync_store(op.abandoned, true);
      if (!rd::unsync_load(op.stop_wanted))
        request_cancel(op);
      else
        ++seen.abandoned_after_stop;
      r->lock.unlock();
      if (!broken_on(broken::abandon_returns_after_cancel)) request_abandon(op);
      return true;
    }
    r->lock.unlock();  // not linked for readiness either
    return false;
  }

  // io_operation::complete_op. The resume schedules the coroutine on its
  // executor, the loop: from another thread that wakes the loop.
  void complete_op(model_op& op, bool on_loop) {
    // Ordering: acq_rel: the completion's result reaches the coroutine.
    if (op.gate.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    ++op.resumes;
    op.scheduled.store(1, std::memory_order_release);
    if (!on_loop) unpark();
  }

  // io_operation::on_stop, run under the stop slot by the stopper.
  void on_stop(model_op& op) {
    registration* const r = rd::unsync_load(op.reg);
    r->lock.lock();
    if (op.in_kernel.load(std::memory_order_relaxed)) {
      if (broken_on(broken::stop_completes_at_once)) {
        rd::unsync_store(op.listed, false);
        rd::unsync_store(op.stopped, true);
        op.in_kernel.store(false, std::memory_order_release);
        r->lock.unlock();
        complete_op(op, false);
        return;
      }
      // The request's completion decides: -ECANCELED (stopped) or data.
      if (!rd::unsync_load(op.stop_wanted)) {
        rd::unsync_store(op.stop_wanted, true);
        request_cancel(op);
      }
      r->lock.unlock();
      return;
    }
    r->lock.unlock();  // the reactor completed it first: that stands
  }

  // reactor::uring_handle_op, the branches of an open object.
  void handle_op(model_op& op, int res, model_op** done, int& done_size) {
    registration* const r = rd::unsync_load(op.reg);
    r->lock.lock();
    // Never true in a schedule of the faithful copy: no suite hands a
    // completion to both the loop and the destructor. A broken variant that
    // does reaches it having already read a freed operation.
    if (!op.in_kernel.load(std::memory_order_relaxed)) {  // an abandoning destructor took it
      r->lock.unlock();
      return;
    }
    ++op.handled;
    bool finished = true;
    if (rd::unsync_load(op.abandoned)) {
      finished = false;  // released below, never completed
    } else if (res == res_canceled) {
      if (rd::unsync_load(op.stop_wanted))
        rd::unsync_store(op.stopped, true);
      else
        finished = false;  // nobody here asked: ask again
    } else {
      rd::unsync_store(op.result, res);  // finish(): a read_some is done
    }
    if (rd::unsync_load(op.abandoned)) {
      ++seen.loop_released_abandoned;
      rd::unsync_store(op.listed, false);
      op.in_kernel.store(false, std::memory_order_release);
      r->lock.unlock();
      return;
    }
    if (!finished) {
      if (rd::unsync_load(op.stop_wanted)) {
        rd::unsync_store(op.stopped, true);
      } else {
        RL_ASSERT(!"a request asked again: no suite reaches request_start from here");
      }
    }
    rd::unsync_store(op.listed, false);
    // Ordering: release: pairs with the acquire in request_abandon.
    op.in_kernel.store(false, std::memory_order_release);
    done[done_size++] = &op;
    r->lock.unlock();
  }

  // uring_park(max, false): the idle wait, the reaping, the handling and
  // complete_all. False: the harness ended the loop thread.
  bool park() {
    ring.lock.lock();
    bool const ready = ring.backlog_size != 0 ||
                       ring.cq_tail.load(std::memory_order_acquire) != ring.cq_head.load(std::memory_order_relaxed);
    ring.lock.unlock();
    if (!ready && !ring.wait_for_completion(false)) return false;
    ring.lock.lock();
    ring.take_completions();
    for (int i = 0; i < ring.backlog_size; ++i) ring.batch[i] = ring.backlog[i];
    ring.batch_size = ring.backlog_size;
    ring.backlog_size = 0;
    ring.lock.unlock();
    model_op* done[2] = {};
    int done_size = 0;
    for (int i = 0; i < ring.batch_size; ++i) {
      completion const c = ring.batch[i];
      if (c.tag == tag_ignore || c.tag == tag_wake) continue;
      handle_op(op_of(c.tag), c.res, done, done_size);
    }
    ring.batch_size = 0;
    for (int i = 0; i < done_size; ++i) complete_op(*done[i], true);
    return true;
  }

  // stop_.reset() (the destructor's, await_resume's): waits for a callback
  // running on another thread; none runs after it.
  void stop_reset(model_op& op) {
    op.stop_slot.lock();
    op.stop_registered = false;
    op.stop_slot.unlock();
  }
  // The coroutine, resumed on the loop: await_resume (stop_.reset(), the
  // result), then the frame ends.
  void run_coroutine(model_op& op) {
    stop_reset(op);
    ++op.ran;
    if (rd::unsync_load(op.stopped)) {
      op.ended_stopped = true;
    } else {
      int const expected = op.tag == tag_a ? bytes_a : bytes_b;
      RL_ASSERT(rd::unsync_load(op.result) == expected);
      RL_ASSERT(rd::unsync_load(op.buffer) == expected);
    }
    op.free_frame(&graveyard);
  }
  void run_ready() {  // the run_loop's ready work, between parks
    for (model_op& op : ops)
      if (op.scheduled.exchange(0, std::memory_order_acquire) != 0) run_coroutine(op);
  }

  void loop_thread() {
    for (;;) {
      run_ready();
      if (!park()) break;
    }
    run_ready();
  }

  // The stopper: request_stop() runs the callback if it is still registered.
  void stop(model_op& op) {
    op.stop_slot.lock();
    if (op.stop_registered) on_stop(op);
    op.stop_slot.unlock();
  }

  // The destroyer: destroys A's frame if the contract allows, then frees it.
  void destroyer_thread() {
    model_op& a = this->a();
    if (destroy(a)) {
      a.destroyed = true;
      a.free_frame(&graveyard);
    } else {
      ++seen.destroy_too_late;
    }
  }

  void play(role r);

  // A was abandoned and released once, or (too late) resumed once: with
  // its data, or stopped exactly when a cancel took the request.
  void check_a_after_destroy() {
    model_op& a = this->a();
    RL_ASSERT(!a.in_kernel.load(std::memory_order_relaxed));
    RL_ASSERT(a.handled == 1);  // by the loop or by the destructor, once
    RL_ASSERT(ring.request[tag_a] == fake_ring::done);
    if (a.destroyed) {
      RL_ASSERT(a.resumes == 0 && a.ran == 0);  // never completed
    } else {
      RL_ASSERT(a.resumes == 1 && a.ran == 1);
      RL_ASSERT(a.ended_stopped == !ring.ran[tag_a]);
    }
  }
};

void world::play(role r) {
  switch (r) {
    case role::loop:
      loop_thread();
      return;
    case role::kernel:  // A's read, then B's if B is in the kernel
      ring.kernel_complete(a(), bytes_a);
      if (has_b) ring.kernel_complete(b(), bytes_b);
      break;
    case role::stopper:
      stop(a());
      break;
    case role::destroyer:
      destroyer_thread();
      break;
  }
  participant_done();
}

template <class Suite, int Threads>
struct world_suite : rl::test_suite<Suite, Threads> {
  world w;
  void thread(unsigned index) { w.play(Suite::roles[index]); }
};

// (1) A destroyer abandons A while the kernel runs it (or the cancel takes
// it) and then completes B; the loop reaps.
struct destroy_races_completion : world_suite<destroy_races_completion, 3> {
  static constexpr role roles[] = {role::loop, role::kernel, role::destroyer};
  void before() { w.begin(2, fake_ring::pending, true); }
  void after() {
    w.check_a_after_destroy();
    model_op& b = w.b();
    RL_ASSERT(b.handled == 1 && b.resumes == 1 && b.ran == 1 && !b.ended_stopped);
  }
};

// (2) A stopper stops A while the kernel runs it (or the cancel takes it);
// the loop reaps and the coroutine frees the frame.
struct stop_races_completion : world_suite<stop_races_completion, 3> {
  static constexpr role roles[] = {role::loop, role::kernel, role::stopper};
  void before() { w.begin(2, fake_ring::pending, false); }
  void after() {
    model_op& a = w.a();
    RL_ASSERT(!a.in_kernel.load(std::memory_order_relaxed));
    RL_ASSERT(a.handled == 1);  // the request's completion, by the loop
    RL_ASSERT(a.resumes == 1 && a.ran == 1);
    // Stopped exactly when the cancel took the request before the kernel ran it.
    RL_ASSERT(a.ended_stopped == !w.ring.ran[tag_a]);
    if (a.ended_stopped) ++seen.stopped;
    if (!a.ended_stopped && a.cancels > 0) ++seen.data_despite_stop;
  }
};

// (3) A is running in the kernel (the read is under way); the loop may
// take its completion into its batch while the destroyer abandons it.
struct destroy_while_loop_holds : world_suite<destroy_while_loop_holds, 3> {
  static constexpr role roles[] = {role::loop, role::kernel, role::destroyer};
  void before() { w.begin(2, fake_ring::running, false); }
  void after() { w.check_a_after_destroy(); }
};

// (4) A stop's cancel is in flight when the frame is destroyed: the
// destructor waits for the running callback, submits no second cancel,
// and waits for the completion the stop's cancel (or the data) brings.
struct stop_then_destroy : world_suite<stop_then_destroy, 4> {
  static constexpr role roles[] = {role::loop, role::kernel, role::stopper, role::destroyer};
  void before() { w.begin(3, fake_ring::pending, false); }
  void after() {
    w.check_a_after_destroy();
    RL_ASSERT(w.a().cancels <= 1);  // the destructor sends none after the stop's
  }
};

// A suite must pass, and must have reached each race it is about.
struct reached {
  const char* what;
  unsigned long explored::*count;
};
template <class Suite>
int must_pass(const char* name, std::initializer_list<reached> races, unsigned long iterations) {
  seen = {};
  int failures = rouse_model::expect_pass<Suite>(name, iterations);
  for (reached const& r : races) {
    std::printf("model %s: %lu times: %s\n", name, seen.*r.count, r.what);
    if (seen.*r.count == 0) {
      std::printf("model %s: never explored: %s\n", name, r.what);
      ++failures;
    }
  }
  return failures;
}

// A broken variant the suite must catch, with `expected`.
template <class Suite>
int must_catch(const char* name, broken b, rl::test_result_e expected, unsigned long iterations) {
  broken_scope scope(b);
  return rouse_model::expect_failure<Suite>(name, expected, iterations);
}

}  // namespace

int main(int argc, char** argv) {
  // Random searches (the destructor's timed waits make a full search
  // unbounded); each passing suite takes about a second per 100000.
  unsigned long const iterations = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 200000;
  reached const found_own{"the destructor took its own completion", &explored::destroyer_found_its_own};
  reached const loop_released{"the loop released the abandoned operation", &explored::loop_released_abandoned};
  int failures = 0;
  failures += must_pass<destroy_races_completion>(
      "io_uring_op.destroy_races_completion",
      {found_own,
       loop_released,
       {"the destructor kept B's completion for the loop", &explored::destroyer_took_others},
       {"the destroyer came too late (resumed instead)", &explored::destroy_too_late}},
      iterations);
  failures += must_pass<stop_races_completion>("io_uring_op.stop_races_completion",
                                               {{"the cancel took the request", &explored::stopped},
                                                {"the data won over the stop's cancel", &explored::data_despite_stop}},
                                               iterations);
  failures += must_pass<destroy_while_loop_holds>("io_uring_op.destroy_while_loop_holds", {found_own, loop_released},
                                                  iterations);
  failures += must_pass<stop_then_destroy>(
      "io_uring_op.stop_then_destroy",
      {found_own, loop_released, {"the destructor relied on the stop's cancel", &explored::abandoned_after_stop}},
      iterations);

  failures += must_catch<destroy_while_loop_holds>("io_uring_op.broken_abandon_reads_in_kernel_relaxed",
                                                   broken::abandon_reads_in_kernel_relaxed, rl::test_result_data_race,
                                                   iterations);
  failures +=
      must_catch<destroy_races_completion>("io_uring_op.broken_abandon_returns_after_cancel",
                                           broken::abandon_returns_after_cancel, rl::test_result_data_race, iterations);
  failures += must_catch<destroy_races_completion>("io_uring_op.broken_abandon_leaves_its_completion",
                                                   broken::abandon_leaves_its_completion, rl::test_result_data_race,
                                                   iterations);
  failures +=
      must_catch<destroy_races_completion>("io_uring_op.broken_abandon_skips_unpark", broken::abandon_skips_unpark,
                                           rl::test_result_user_assert_failed, iterations);
  failures +=
      must_catch<stop_races_completion>("io_uring_op.broken_stop_completes_at_once", broken::stop_completes_at_once,
                                        rl::test_result_user_assert_failed, iterations);
  return failures == 0 ? 0 : 1;
}
