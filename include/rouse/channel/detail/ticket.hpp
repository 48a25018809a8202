// rouse/channel/detail/ticket.hpp — the bounded flavour for many cores.
//
// A ring of `capacity` slots where a blocking send or receive takes its
// position with one fetch_add on its side's ticket counter and then waits on
// its own slot (the turn-sequencer idea of folly's MPMCQueue and of the
// ticket rings of LCRQ / SCQ). array.hpp's ring claims a position with a
// compare-exchange that must see the slot ready first: with many producers
// (or consumers) on many cores those compare-exchanges fail and retry on one
// cache line. Here the blocking operations never retry on a shared line;
// they meet their partner on a slot that only the two of them touch.
//
// Tickets: tail_ (sends) and head_ (receives) count up forever. Ticket t
// uses slot t % capacity in lap t / capacity. tail_'s top bit (mark_) is
// `closed`; closed_at_ holds the tail count at the close; close() then sets
// the same bit in head_, so that a receive whose ticket is past the close
// says `closed` without looking at a slot (every use of a count masks it).
//
// Slot word (32 bits, a futex word):   lap << 4 | phase << 2 | C << 1 | W
//   phase empty(L)  waiting for the send of lap L
//         full(L)   holds the value of the send of lap L
//         last(L)   full(L), and the send of lap L+1 gave up at the close:
//                   the receive of lap L leaves the slot dead
//         dead      closed, and no send of this or any later lap will come
//   W     a ticket holder sleeps on this word: whoever changes the phase
//         clears W and wakes every sleeper
//   C     close() passed here while ticket holders slept (see below)
// Laps are counted modulo 2^28: a ticket holder is never more than a few
// laps from its slot, so the compare is exact.
//
// Transitions (each one CAS on the slot word, which also reads W):
//   empty(L) -> full(L)       the sender of lap L publishes (after writing
//                             the value into the slot)
//   full(L)  -> empty(L+1)    the receiver of lap L, after moving it out
//   empty(L) -> dead          the sender of lap L gives up: it waited for
//                             the slot, and the channel closed meanwhile
//   full(L)  -> last(L)       the sender of lap L+1 gives up while the slot
//                             still holds lap L's value
//   last(L)  -> dead          the receiver of lap L, after moving it out
// Only the sender of a lap resolves its position: it publishes or gives up,
// and never both. Receivers never take a slot from a sender, so a send
// that does not wait (a try_send, or a send whose slot was free) always
// publishes, and a send that gives up has not touched its value.
// Who uses tickets: blocking send and recv without a deadline take a ticket
// at once (their A1 is the fetch_add). try_send / try_recv, timed waits and
// select claim a ticket with a compare-exchange only when its slot is ready,
// exactly as array.hpp does, so they can give up (a receive on a closed
// channel claims any position below the close: see claim_recv); they park on the sides'
// sync_wakers (waiter.hpp) as array.hpp's do, and every send and receive
// notifies the other side's (one seq_cst load while nobody is parked). A
// woken waiter whose attempt finds the neighbouring position still under
// way parks again, its wake spent; so a send (receive) that goes through
// also passes a wake on to its own side while the next position is ready
// (pass_on_senders / pass_on_receivers).
//
// Close: tail_.fetch_or(mark_), then closed_at_, then head_'s mark (which
// a receive that learns the close from tail_ first sets too). Sends fail.
// A receiver whose ticket is at or past closed_at_ gets `closed` (no sender
// holds it). Below it a sender exists and is under way (a thread inside
// send or try_send): the receiver waits for it to publish or give up, then
// takes its value, or (dead) takes the next ticket. A sender blocked on its
// slot gives its value back. So every value published before the close is
// received, and after it nothing is.
//
// Sleeping on a slot (sleep_on): set W, and, while the channel is open,
// count itself in sleepers_ and re-check the mark before the futex wait.
// close() reads sleepers_ after its fetch_or and, if any, sets C in every
// slot (fetch_or) and wakes those with W: a Dekker pairing on (sleepers_,
// tail_), both seq_cst, so either the sleeper sees the mark or close() sees
// the sleeper; the C bit changes the word the sleeper waits on, so its wait
// cannot miss the wake. After the close no close wake is owed: a sleeper
// waits for the next transition of its slot, made by an operation already
// under way (this lap's send, an earlier lap's send or receive).
//
// Memory ordering: the publish CAS pairs with the receiver's acquire load of
// the word, which orders the value's construction before its move-out; the
// receiver's CAS pairs with the next lap's sender's acquire load, which
// orders the move-out and destruction before the slot's reuse. Both CASes
// are seq_cst: they are the (A1) of the Dekker pairing with the sync_wakers,
// whose (B2) re-checks (send_ready() / recv_ready()) read the slot at the
// tail or head seq_cst (on x86 a seq_cst CAS is the same instruction).
//
// Order: values leave in ticket order, so a send that returned before
// another began is received first (one producer's values keep their order).
// A ticketed send that found its slot still full (the channel full) checks
// the close while it waits and once its slot frees: closed, it gives its
// value back untouched and resolves its position (dead, or last on the
// previous lap's value). It takes effect at that last look, if it finds
// the channel open: it then completes, also when close() comes while it
// moves its value in, and its value is drained. So a blocked send woken by
// the close, or whose slot frees only after it, gives its value back: a
// close that came from the last receiver going away (nobody frees a slot
// then) lets no blocked send complete. A send whose slot was free at once
// completes: it took effect, while open, with its fetch_add (a try_send,
// with its compare-exchange).
// try_send and try_recv never wait for another thread beyond a short spin
// (channel_wait_spin): besides `full` / `empty` as the counters show them,
// they also say so while the neighbouring position's operation is still
// under way (a ticket holder writing, or waiting for its slot) — where
// array.hpp's ring would wait for it. Once closed, try_recv does wait for
// the operations under way on its position's slot (the previous lap's
// receive, its own send): `empty` would say the channel is open, and
// `closed` could drop a value that send may still publish there.
//
// Limits: a ticket holder is at most a few laps from its slot; laps are
// compared modulo 2^28, so a thread stalled while 2^28 x capacity
// operations pass its slot could mistake a lap. (A receive on a closed
// channel takes a ticket, so head_ keeps moving after the close; no receive
// looks at a slot for a position past the close, where laps come round.)
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>

#include "rouse/channel/detail/waiter.hpp"
#include "rouse/channel/result.hpp"
#include "rouse/detail/channel_slot.hpp"
#include "rouse/detail/diagnostics.hpp"

namespace rouse::channel::detail {

template <class T>
class ticket_channel {
 public:
  explicit ticket_channel(std::size_t capacity)
      : cap_(capacity), shift_(log2_if_power_of_two(capacity)), slots_(new slot[capacity]) {
    static_assert(holds_lap(full_word(5), 5) && holds_lap(last_word(5), 5) && !holds_lap(empty_word(5), 5) &&
                  !holds_lap(dead_word, 0) && !holds_lap(full_word(4), 5));
    for (std::size_t i = 0; i < cap_; ++i) slots_[i].word.store(empty_word(0), std::memory_order_relaxed);
  }
  ticket_channel(const ticket_channel&) = delete;
  ticket_channel& operator=(const ticket_channel&) = delete;

  // Only once every handle is gone: destroys the values nobody received.
  ~ticket_channel() {
    for (std::size_t i = 0; i < cap_; ++i) {
      std::uint32_t const w = slots_[i].word.load(std::memory_order_relaxed);
      if (holds_value(w)) slots_[i].value.destroy();
    }
  }

  // `v` is untouched unless it returns ok.
  status try_send(T& v) noexcept {
    status const s = claim_send(v);
    if (s == status::ok) {
      receivers_.notify_one();
      pass_on_senders();
    }
    return s;
  }
  recv_result<T> try_recv() noexcept {
    recv_result<T> r = claim_recv();
    if (r.has_value()) {
      senders_.notify_one();
      pass_on_receivers();
    }
    return r;
  }

  // Blocking send until `deadline` (no_deadline: forever, on a ticket).
  // `v` is untouched unless it returns ok.
  template <class Deadline>
  status send(T& v, const Deadline& deadline) noexcept {
    if constexpr (!Deadline::timed()) {
      // Ordering: seq_cst, an (A1) for the receivers' B2 re-checks. No load
      // first: the fetch_add says closed itself, and a ticket taken after
      // the close is never used (a load would only add a trip for the line).
      std::uint64_t const t = tail_.fetch_add(1, std::memory_order_seq_cst);
      if (t & mark_) return status::closed;
      status const s = put(t, v);
      if (s == status::ok) {
        receivers_.notify_one();
        pass_on_senders();
      }
      return s;
    } else {
      return attempt_until(
          senders_, deadline, [&] { return try_send(v); }, [&] { return send_ready(); });
    }
  }

  template <class Deadline>
  recv_result<T> recv(const Deadline& deadline) noexcept {
    if constexpr (!Deadline::timed()) {
      for (;;) {
        // Ordering: seq_cst, an (A1) for the senders' B2 re-checks; reads
        // close()'s mark on head_ (and, through it, closed_at_).
        std::uint64_t const h = head_.fetch_add(1, std::memory_order_seq_cst);
        if ((h & mark_) && ahead(h, closed_at()) >= 0) return recv_result<T>(status::closed);  // no slot touched
        taken r = take(h);
        if (r.outcome == taken::value) {
          senders_.notify_one();
          pass_on_receivers();
          return std::move(r.result);
        }
        if (r.outcome == taken::closed) return recv_result<T>(status::closed);
        // A hole left by a send that gave up at the close: the next ticket.
      }
    } else {
      return attempt_until(
          receivers_, deadline, [&] { return try_recv(); }, [&] { return recv_ready(); });
    }
  }

  // Returns true for the call that closed it. Wakes every blocked operation.
  bool close() noexcept {
    // Ordering: seq_cst, an (A1) for both sides' waiters, and the closer's
    // half of the Dekker pairing with sleep_on() on (sleepers_, tail_).
    std::uint64_t const tail = tail_.fetch_or(mark_, std::memory_order_seq_cst);
    if (tail & mark_) return false;
    // Ordering: release pairs with closed_at()'s acquire load.
    closed_at_.store(tail, std::memory_order_release);
    // The receivers' mark: a receive past the close learns it from its own
    // fetch_add and takes no slot's turn. Ordering: seq_cst (release: the
    // store above before it).
    if (!d::model_fault_on(d::model_fault::ticket_close_skips_head_mark))
      head_.fetch_or(mark_, std::memory_order_seq_cst);
    if (sleepers_.load(std::memory_order_seq_cst) != 0) {
      for (std::size_t i = 0; i < cap_; ++i) {
        // Ordering: seq_cst; sees the W of every sleeper close() counted.
        std::uint32_t const w = slots_[i].word.fetch_or(closed_bit, std::memory_order_seq_cst);
        if (w & wait_bit) d::wake_all(slots_[i].word);
      }
    }
    senders_.close();
    receivers_.close();
    return true;
  }

  [[nodiscard]] bool is_closed() const noexcept {
    // Ordering: seq_cst, a (B2) re-check.
    return (tail_.load(std::memory_order_seq_cst) & mark_) != 0;
  }
  // Snapshots. Once closed they count the values still to be received: in
  // the ring, or still to come from a send under way below the close (one
  // that waited may yet give up: a receive may then find one fewer), so
  // is_empty() holds only once every receive would say closed.
  [[nodiscard]] bool is_empty() const noexcept { return size() == 0; }
  [[nodiscard]] bool is_full() const noexcept { return size() == cap_; }
  [[nodiscard]] std::size_t size() const noexcept {
    for (;;) {
      // Ordering: seq_cst so the two loads see one moment when tail_ is stable.
      std::uint64_t const tail = tail_.load(std::memory_order_seq_cst);
      std::uint64_t const head = head_.load(std::memory_order_seq_cst);
      if (tail_.load(std::memory_order_seq_cst) != tail) continue;
      if (tail & mark_) return still_to_receive(head, closed_at());
      std::int64_t const n = ahead(tail, head);
      if (n <= 0) return 0;
      return static_cast<std::uint64_t>(n) < cap_ ? static_cast<std::size_t>(n) : cap_;
    }
  }
  [[nodiscard]] std::size_t capacity() const noexcept { return cap_; }
  // receiver::skip_receives_for_testing: `n` receives past the close.
  void skip_receives_for_testing(std::uint64_t n) noexcept {
    ROUSE_CHECK_USAGE(is_closed() && ahead(head_.load(std::memory_order_relaxed), closed_at()) >= 0, "rouse::channel",
                      "skip_receives_for_testing before every position below the close was taken");
    // Ordering: relaxed; a test's own thread.
    head_.fetch_add(n, std::memory_order_relaxed);
  }

  // select's hooks, as array.hpp's.
  void register_sender(waiter_node& n) noexcept { senders_.push(n); }
  void unregister_sender(waiter_node& n) noexcept { senders_.remove(n); }
  void register_receiver(waiter_node& n) noexcept { receivers_.push(n); }
  void unregister_receiver(waiter_node& n) noexcept { receivers_.remove(n); }
  // The (B2) re-checks: whether the position at the tail (head) has its slot
  // ready, or the channel is closed. Ordering: seq_cst loads, against the
  // seq_cst CASes that make a slot ready and the close.
  [[nodiscard]] bool send_ready() const noexcept {
    std::uint64_t const tail = tail_.load(std::memory_order_seq_cst);
    if (tail & mark_) return true;
    auto [s, lap] = at(tail);
    return state(s.word.load(std::memory_order_seq_cst)) == empty_word(lap);
  }
  [[nodiscard]] bool recv_ready() const noexcept {
    std::uint64_t const head = head_.load(std::memory_order_seq_cst);
    auto [s, lap] = at(head);
    if (holds_lap(s.word.load(std::memory_order_seq_cst), lap)) return true;
    return is_closed();
  }

 private:
  static constexpr std::uint64_t mark_ = std::uint64_t{1} << 63;
  static constexpr std::uint64_t not_closed = ~std::uint64_t{0};
  static constexpr std::uint32_t wait_bit = 1;
  static constexpr std::uint32_t closed_bit = 2;
  static constexpr std::uint32_t phase_empty = 0;
  static constexpr std::uint32_t phase_full = 1;
  static constexpr std::uint32_t phase_dead = 2;
  static constexpr std::uint32_t phase_last = 3;
  static constexpr std::uint32_t lap_mask = (std::uint32_t{1} << 28) - 1;

  static constexpr std::uint32_t empty_word(std::uint32_t lap) noexcept { return (lap & lap_mask) << 4; }
  static constexpr std::uint32_t full_word(std::uint32_t lap) noexcept {
    return (lap & lap_mask) << 4 | phase_full << 2;
  }
  static constexpr std::uint32_t last_word(std::uint32_t lap) noexcept {
    return (lap & lap_mask) << 4 | phase_last << 2;
  }
  static constexpr std::uint32_t dead_word = phase_dead << 2;
  // The word without W and C: lap and phase.
  static constexpr std::uint32_t state(std::uint32_t w) noexcept { return w & ~(wait_bit | closed_bit); }
  static constexpr std::uint32_t phase(std::uint32_t w) noexcept { return (w >> 2) & 3; }
  // full or last: the slot holds a value (of the lap in the word).
  static constexpr bool holds_value(std::uint32_t w) noexcept { return (phase(w) & phase_full) != 0; }
  // The slot holds the value of `lap`.
  // (full is 01 and last 11: without the high bit of the phase both are
  // full_word; empty 00 and dead 10 become 00.)
  static constexpr bool holds_lap(std::uint32_t w, std::uint32_t lap) noexcept {
    return (state(w) & ~(phase_dead << 2)) == full_word(lap);
  }

  // How far count `a` is ahead of count `b` (marks ignored; counts never
  // come within 2^62 of each other).
  static std::int64_t ahead(std::uint64_t a, std::uint64_t b) noexcept {
    return static_cast<std::int64_t>((a & ~mark_) - (b & ~mark_));
  }

  struct slot {
    d::atomic<std::uint32_t> word{0};
    d::channel_slot<T> value;
  };

  struct position {
    slot& s;
    std::uint32_t lap;
  };
  position at(std::uint64_t ticket) const noexcept {
    ticket &= ~mark_;
    if (shift_ >= 0)  // a power-of-two capacity: no division
      return {slots_[ticket & (cap_ - 1)], static_cast<std::uint32_t>(ticket >> shift_)};
    return {slots_[ticket % cap_], static_cast<std::uint32_t>(ticket / cap_)};
  }
  static int log2_if_power_of_two(std::size_t n) noexcept {
    if ((n & (n - 1)) != 0) return -1;
    int k = 0;
    while ((std::size_t{1} << k) != n) ++k;
    return k;
  }

  struct taken {
    enum kind : std::uint8_t { value, closed, hole };
    kind outcome;
    recv_result<T> result;
  };

  // Of the positions [head, end) below the close (at most a capacity of
  // them), those whose value is in the ring or may still come: all but the
  // ones whose send gave up (dead, or last on an earlier lap's value).
  std::size_t still_to_receive(std::uint64_t head, std::uint64_t end) const noexcept {
    std::size_t n = 0;
    for (std::size_t i = 0; i < cap_ && ahead(end, head) > 0; ++i, ++head) {
      auto [s, lap] = at(head);
      // Ordering: acquire, a snapshot.
      std::uint32_t const w = s.word.load(std::memory_order_acquire);
      if (phase(w) < phase_dead || holds_lap(w, lap)) ++n;
    }
    return n;
  }

  // After a send (receive) went through. A parked waiter that a notify woke
  // may have found the position at the tail (head) still under way (a
  // ticket holder writing, or waiting for its slot), said full (empty) and
  // parked again, its wake spent; the position this operation took may have
  // made the next one ready. So while one is ready and a waiter is parked on
  // this side, a wake goes on to it: one seq_cst load while nobody is parked.
  // Ordering: the (A1) before it is this operation's seq_cst CAS; a waiter
  // that registers after this load sees the ready slot in its re-check.
  void pass_on_senders() noexcept {
    if (d::model_fault_on(d::model_fault::ticket_skips_pass_on)) return;
    if (senders_.has_waiters() && send_ready()) senders_.notify_one();
  }
  void pass_on_receivers() noexcept {
    if (d::model_fault_on(d::model_fault::ticket_skips_pass_on)) return;
    if (receivers_.has_waiters() && recv_ready()) receivers_.notify_one();
  }

  // The tail count at the close; only called once the mark is seen.
  std::uint64_t closed_at() const noexcept {
    for (;;) {
      // Ordering: acquire pairs with close()'s release store.
      std::uint64_t const c = closed_at_.load(std::memory_order_acquire);
      if (c != not_closed) return c;
      d::spin_pause();  // the closer is between its fetch_or and this store
      d::yield();
    }
  }

  // Sleeps on `s` whose word was `w` (not the phase this thread waits for),
  // unless the word changes first. `closed`: the mark was seen already, so
  // no close wake is owed.
  void sleep_on(slot& s, std::uint32_t w, bool closed) noexcept {
    if (!(w & wait_bit)) {
      // Ordering: seq_cst; close() sees this W if it sees the count below.
      if (!s.word.compare_exchange_strong(w, w | wait_bit, std::memory_order_seq_cst, std::memory_order_relaxed))
        return;  // changed: the caller re-reads
      w |= wait_bit;
    }
    if (closed || (w & closed_bit)) {
      d::wait(s.word, w);
      return;
    }
    // Ordering: seq_cst, the sleeper's half of the pairing with close().
    sleepers_.fetch_add(1, std::memory_order_seq_cst);
    if (!(tail_.load(std::memory_order_seq_cst) & mark_)) d::wait(s.word, w);
    // Ordering: relaxed; a stale count only makes a close scan the slots.
    sleepers_.fetch_sub(1, std::memory_order_relaxed);
  }

  // Puts `v` in the slot of ticket t, waiting for its lap (a ticket claimed
  // by compare-exchange finds its slot ready). ok, or closed with `v`
  // untouched: a send that waited gives up once closed.
  status put(std::uint64_t t, T& v) noexcept {
    auto [s, lap] = at(t);
    std::uint32_t const want = empty_word(lap);
    d::spinner b(d::channel_wait_spin);
    bool waited = false;  // found the channel full: a blocked send
    bool closed = false;
    // Ordering: acquire pairs with the release CAS of the receiver of the
    // previous lap: its move-out is done before this write.
    std::uint32_t w = s.word.load(std::memory_order_acquire);
    for (;;) {
      // last or dead: an earlier lap's send gave up, and the slot ends dead.
      if (phase(w) >= phase_dead) return status::closed;
      if (state(w) == want) {
        // Ordering: seq_cst, against close()'s fetch_or (or its C, acquire).
        if (waited && !closed) closed = (w & closed_bit) || (tail_.load(std::memory_order_seq_cst) & mark_);
        if (!closed) break;
        // A blocked send whose slot frees once the channel is closed gives
        // its value back untouched, as a blocked send of array.hpp's ring
        // does: no value enters a channel closed while it waited, which may
        // have closed because every receiver is gone.
        if (give_up(s, w, dead_word)) return status::closed;
        continue;
      }
      if (closed && (state(w) == full_word(lap - 1) || d::model_fault_on(d::model_fault::ticket_give_up_any_lap))) {
        if (give_up(s, w, last_word(lap - 1))) return status::closed;
        continue;
      }
      // The channel is full: the previous lap's value is still here, or an
      // earlier lap's send is under way (closed: it too resolves without
      // waiting for a receive, so this wait ends).
      waited = true;
      if (!closed && b.next()) {
        w = s.word.load(std::memory_order_acquire);
        continue;
      }
      if (!closed) {
        closed = (w & closed_bit) || (tail_.load(std::memory_order_seq_cst) & mark_);
        if (closed) continue;
      }
      sleep_on(s, w, closed);
      w = s.word.load(std::memory_order_acquire);
    }
    // The slot is this send's until it publishes: no receive or send
    // changes its phase meanwhile (close() sets C, a receive W).
    s.value.construct(std::move(v));
    for (;;) {
      if (d::model_fault_on(d::model_fault::ticket_receive_kills_slot) && phase(w) == phase_dead) {
        std::destroy_at(std::addressof(v));  // killed: moved back (the old rule)
        std::construct_at(std::addressof(v), std::move(s.value.get()));
        s.value.destroy();
        return status::closed;
      }
      if (d::model_fault_on(d::model_fault::ticket_publish_blind_store)) {
        s.word.store(full_word(lap) | (w & closed_bit), std::memory_order_release);
        if (w & wait_bit) d::wake_all(s.word);
        return status::ok;
      }
      // Ordering: release pairs with take()'s acquire load: the value
      // before the phase; seq_cst as (A1) for recv_ready(). A failure
      // reloads `w` (W or C set).
      if (s.word.compare_exchange_weak(w, full_word(lap) | (w & closed_bit), std::memory_order_seq_cst,
                                       std::memory_order_relaxed)) {
        if (w & wait_bit) d::wake_all(s.word);
        return status::ok;
      }
    }
  }

  // A blocked send's give-up once closed: the slot from `w` (empty for its
  // lap, or full with the previous lap's value) to `to` (dead, or last),
  // keeping C; clears W and wakes the sleepers (this lap's receive, a later
  // lap's send). false: the word changed (reloaded into `w`).
  bool give_up(slot& s, std::uint32_t& w, std::uint32_t to) noexcept {
    // Ordering: release, so that whoever reads dead (or last, then the
    // dead its receive leaves) sees tail_'s mark and reads closed_at_.
    if (!s.word.compare_exchange_strong(w, to | (w & closed_bit), std::memory_order_release,
                                        std::memory_order_acquire))
      return false;
    if (w & wait_bit) d::wake_all(s.word);
    return true;
  }

  // A ticket at or past the close, found so through tail_'s mark: close()
  // may not have marked head_ yet (it is between its fetch_or on tail_ and
  // that on head_), and until then every receive takes a ticket and looks
  // at its slot; in 2^28 laps of them one would match the lap of a value a
  // stalled receive below the close is moving out. So the first receive
  // that learns the close this way marks head_ itself (the mark is all a
  // receive past the close reads; closed_at_, which this thread has seen,
  // is stored before it). Ordering: seq_cst, as close()'s.
  taken past_the_close() noexcept {
    if (!d::model_fault_on(d::model_fault::ticket_take_skips_head_mark) &&
        !d::model_fault_on(d::model_fault::ticket_close_skips_head_mark) &&
        (head_.load(std::memory_order_relaxed) & mark_) == 0)
      head_.fetch_or(mark_, std::memory_order_seq_cst);
    return {taken::closed, recv_result<T>(status::closed)};
  }

  // Takes the value of ticket h, waiting for it: value, closed (h is at or
  // past the close), or hole (its send gave up at the close).
  taken take(std::uint64_t h) noexcept {
    auto [s, lap] = at(h);
    d::spinner b(d::channel_wait_spin);
    bool first_miss = true;
    // Ordering: acquire pairs with put()'s release CAS.
    std::uint32_t w = s.word.load(std::memory_order_acquire);
    for (;;) {
      if (holds_lap(w, lap)) {
        taken r{taken::value, recv_result<T>(std::in_place, std::move(s.value.get()))};
        s.value.destroy();
        // Ordering: release pairs with the next lap's put(): the move-out
        // and destruction before its write; seq_cst as (A1) for
        // send_ready(). Keeps C; clears W. A failure reloads `w`: W, C, or
        // the next lap's send giving up (full -> last).
        while (!s.word.compare_exchange_weak(
            w, (phase(w) == phase_last ? dead_word : empty_word(lap + 1)) | (w & closed_bit),
            std::memory_order_seq_cst, std::memory_order_relaxed)) {
        }
        if (w & wait_bit) d::wake_all(s.word);
        return r;
      }
      if (phase(w) == phase_dead) {  // closed: a hole, or past the last send
        if (ahead(h, closed_at()) >= 0) return past_the_close();
        return {taken::hole, recv_result<T>(status::closed)};
      }
      // Spin, then sleep; the mark is looked at on the first miss (so that a
      // receive after the close does not spin first) and before a sleep.
      bool closed = (w & closed_bit) != 0;
      if (!closed && !first_miss && b.next()) {
        w = s.word.load(std::memory_order_acquire);
        continue;
      }
      // Ordering: seq_cst, against close()'s fetch_or.
      if (!closed) closed = (tail_.load(std::memory_order_seq_cst) & mark_) != 0;
      if (!closed && first_miss) {
        first_miss = false;
        w = s.word.load(std::memory_order_acquire);
        continue;
      }
      first_miss = false;
      // Closed below the close: this position's send is under way (it
      // publishes, or gives up because it waited), or an earlier lap's
      // operation is; each resolves without waiting for this thread.
      if (closed && ahead(h, closed_at()) >= 0) return past_the_close();
      if (d::model_fault_on(d::model_fault::ticket_receive_kills_slot) && closed &&
          state(w) == empty_word(lap)) {
        // The rule before senders resolved their own positions: the receive
        // takes the slot from its send (which then moves its value back).
        if (s.word.compare_exchange_strong(w, dead_word | (w & closed_bit), std::memory_order_acq_rel,
                                           std::memory_order_acquire)) {
          if (w & wait_bit) d::wake_all(s.word);
          return {taken::hole, recv_result<T>(status::closed)};
        }
        continue;
      }
      sleep_on(s, w, closed);
      w = s.word.load(std::memory_order_acquire);
    }
  }

  // try_send's claim: a position by compare-exchange, only when its slot is
  // ready, so that it never waits for a receiver.
  status claim_send(T& v) noexcept {
    d::spinner cas(d::channel_cas_spin);  // after a lost compare-exchange
    d::spinner b(d::channel_wait_spin);   // while another thread acts
    // Ordering: relaxed; the slot's acquire load below validates it.
    std::uint64_t tail = tail_.load(std::memory_order_relaxed);
    for (;;) {
      if (tail & mark_) return status::closed;
      auto [s, lap] = at(tail);
      // Ordering: acquire, as put()'s.
      std::uint32_t const w = s.word.load(std::memory_order_acquire);
      if (state(w) == empty_word(lap)) {
        // Ordering: seq_cst, an (A1) for the receivers' B2 re-checks.
        if (tail_.compare_exchange_weak(tail, tail + 1, std::memory_order_seq_cst, std::memory_order_relaxed))
          return put(tail, v);
        (void)cas.next();
        continue;
      }
      bool const gave_up = phase(w) >= phase_dead;  // last or dead: closed
      if (!gave_up) {
        // Ordering: seq_cst, so that `full` as the counters say is exact.
        std::uint64_t const head = head_.load(std::memory_order_seq_cst);
        if (ahead(tail, head) >= static_cast<std::int64_t>(cap_)) return status::full;
      }
      // A receive of the previous lap is under way, or (last, dead) the
      // close, which this thread's next load of tail_ shows.
      if (!b.next() && !gave_up) return status::full;
      tail = tail_.load(std::memory_order_relaxed);
    }
  }

  // try_recv's claim: a position by compare-exchange, only when its value is
  // there, or, once closed, any position below the close: its slot resolves
  // without a new operation, so take() waits at most for the operations
  // under way on it (its send, which publishes or, if it waited, gives up;
  // the previous lap's receive); `empty` would say "not closed".
  recv_result<T> claim_recv() noexcept {
    d::spinner cas(d::channel_cas_spin);
    d::spinner b(d::channel_wait_spin);
    // Ordering: relaxed; the slot's acquire load below validates it.
    std::uint64_t head = head_.load(std::memory_order_relaxed);
    for (;;) {
      // Past the close (head_ carries close()'s mark): no slot is ours. Each
      // receive on a closed channel moves head_ on, so its laps come round
      // again: a slot's lap must not be compared there, or a value that a
      // stalled receiver below the close is taking would match.
      if ((head & mark_) && ahead(head, closed_at()) >= 0) return recv_result<T>(status::closed);
      auto [s, lap] = at(head);
      // Ordering: acquire, as take()'s.
      std::uint32_t const w = s.word.load(std::memory_order_acquire);
      bool const ready = holds_lap(w, lap);
      // Ordering: seq_cst, so that `empty` as the counters say is exact.
      std::uint64_t const tail = ready ? 0 : tail_.load(std::memory_order_seq_cst);
      bool const closed = !ready && (tail & mark_);
      if (closed && ahead(head, closed_at()) >= 0) return recv_result<T>(status::closed);
      if (d::model_fault_on(d::model_fault::ticket_closed_claim_says_empty) && closed && state(w) != empty_word(lap) &&
          phase(w) != phase_dead) {
        if (!b.next()) return recv_result<T>(status::empty);
        head = head_.load(std::memory_order_relaxed);
        continue;
      }
      if (ready || closed) {
        // Ordering: seq_cst, an (A1) for the senders' B2 re-checks.
        if (head_.compare_exchange_weak(head, head + 1, std::memory_order_seq_cst, std::memory_order_relaxed)) {
          // Ready: at once. Closed: a value, a hole, or a wait for the
          // operations under way on the slot.
          taken r = take(head);
          if (r.outcome == taken::value) return std::move(r.result);
          if (r.outcome == taken::closed) return recv_result<T>(status::closed);
          head = head_.load(std::memory_order_relaxed);  // a hole: on to the next
          continue;
        }
        (void)cas.next();
        continue;
      }
      if (ahead(tail, head) <= 0) return recv_result<T>(status::empty);
      // Open, and the send of this position (or the receive of the previous
      // lap) is under way: a short spin, then `empty` rather than a wait.
      if (!b.next()) return recv_result<T>(status::empty);
      head = head_.load(std::memory_order_relaxed);
    }
  }

  alignas(64) d::atomic<std::uint64_t> head_{0};
  alignas(64) d::atomic<std::uint64_t> tail_{0};
  alignas(64) std::size_t const cap_;
  int const shift_;  // log2(cap_) for a power of two, else -1
  std::unique_ptr<slot[]> slots_;
  d::atomic<std::uint64_t> closed_at_{not_closed};
  alignas(64) d::atomic<std::uint32_t> sleepers_{0};
  alignas(64) sync_waker senders_;
  alignas(64) sync_waker receivers_;
};

}  // namespace rouse::channel::detail
