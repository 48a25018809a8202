// rouse/pool/pieces.hpp — how rouse::pool cuts a large range into pieces and
// lets a participant that finished early take pieces of a slower one.
//
// rouse::detail::pool_pieces is used by rouse::pool's parallel_for (without
// a grain) and parallel_reduce; it is kept apart so the model test
// (tests/model/pool_model.cpp) runs this exact code under Relacy. Users call
// rouse::pool, never this class.
//
// Why. A static split (participant i gets the i-th of N equal pieces) ends
// when its slowest participant does. On a machine whose CPUs run at
// different speeds (a vCPU sharing its core with another guest, hybrid
// performance and efficiency cores, a CPU taking interrupts, a worker
// descheduled mid-job) that is the slow CPU's time, not the average. Pieces
// taken over from a slower participant bring such a run close to the ideal
// and cost a few percent at the smallest ranges cut when the CPUs are even
// (the measurements: docs/pool.md, "Pieces").
//
// The plan. A range of n indices split over `count` participants is cut
// into count * m pieces of nearly equal size, m = pieces_per_participant(n,
// count): 1 while a participant's share is under min_pieces * min_piece
// indices (the plain static split; none of the code below runs), else
// share / min_piece within [min_pieces, max_pieces], so no piece is
// shorter than min_piece. Piece q is static_piece(n, q, count * m).
// Participant i owns pieces i*m .. i*m + m-1 and runs them in order first,
// so with equal speeds every participant touches the same indices on every
// call, as with a static split (its caches stay warm across calls). Then it
// takes what is left of the others' pieces, starting with participant i+1.
// The pieces, and so the grouping of a reduction, depend only on n and
// count: a reduction combines the pieces' partial results in piece order,
// whoever ran them, and is reproducible bit for bit.
//
// Piece 0 of each participant is its own: nobody else takes it (why: "Two
// line moves" at run_pieces). A task that stalls after it is claimed and
// before or inside its piece 0 holds that piece back; one that stalls later
// holds back at most the piece it is in; one not yet claimed holds back
// nothing (whoever is free runs it).
//
// The cursor. Each participant's pieces 1..m-1 are handed out by one 64-bit
// word on its own 128-byte line, written only by claims (no reset per job):
//
//   bits 63..8   stamp: the job that last claimed from this cursor
//   bits  7..0   k: pieces 0..k-1 of that job are taken (1..m)
//
//   A claim reads the word; a stamp other than its job's reads as k = 1
//   (only piece 0 is taken: the word is left from an earlier job). If
//   k < m, CAS (stamp, k) -> (job stamp, k+1): piece k is the claimer's. A
//   failed CAS retries with the value it read.
//
// Every job that uses pieces takes a new stamp (next_stamp(): one relaxed
// fetch_add on the pool's counter, mapped to 1 .. 2^56-1 so that a never used
// cursor, 0, matches no job). Stamps are 56 bits: they would repeat after
// 2^56 - 1 such jobs, each of at least min_pieces * min_piece * count indices
// — over two thousand years at one job a microsecond. A claim never sees
// another job's claims mid-flight: every claim of a job happens before the
// job's call returns (a worker's before its task's report, the caller's in
// its own program order), so cursors are quiet between jobs. (Correctness
// needs only the CAS and unique stamps.)
//
// Cost. With equal speeds the owner's claims hit a line that stays in its
// cache (others write it only when they steal, and read it when they run
// out): m - 1 local CASes per job. A participant with nothing left reads each other cursor once; a
// steal moves one cursor line. No reset by the caller: resetting N cursors
// would move each line to the caller and back once per job.
//
// Memory ordering. Relaxed throughout: a cursor only hands out piece
// numbers. What a piece reads was published by the job's dispatch (the
// acquire claim of its task, rouse/pool/dispatch.hpp). What it writes
// reaches the caller through the task it ran in: the caller's own, or a
// worker's, whose release report the caller's wait reads. Participants
// claiming from one cursor are ordered by the CAS on that word alone (one
// modification order): each k is handed out once.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>

#include "rouse/config.hpp"
#include "rouse/detail/sync_types.hpp"

#if !defined(ROUSE_MODEL_RELACY)
#include "rouse/platform/cpu.hpp"
#endif

namespace rouse::detail {

class pool_pieces {
 public:
  // Every piece has at least this many indices: with the cheapest per-index
  // work there is (count.breakeven's loop), a claim (a local CAS, or a line
  // moved by a steal) stays a small part of a piece (docs/pool.md, "Pieces").
  static constexpr std::uint64_t min_piece = std::uint64_t{1} << 14;
  // Pieces per participant at least, when a range is cut at all. With 2, a
  // participant at half the others' speed is still inside its last piece
  // when they run out: nothing is left to take (no gain measured at 2).
  static constexpr unsigned min_pieces = 4;
  // Pieces per participant at most. What a slow participant holds back is
  // at most the piece it is in, 1/m of its share; with many participants
  // its m - 1 other pieces are spread over more thieves as m grows.
  static constexpr unsigned max_pieces = 8;
  static constexpr unsigned no_piece = ~0u;

  // A multiplication decides the common case (small n: 1) without dividing.
  static constexpr unsigned pieces_per_participant(std::uint64_t n, unsigned count) noexcept {
    if (count == 0 || n < std::uint64_t{count} * (min_pieces * min_piece)) return 1;
    return static_cast<unsigned>(std::min<std::uint64_t>(n / count / min_piece, max_pieces));
  }

  // `participants` cursors, all unused.
  explicit pool_pieces(unsigned participants) : count_(participants), cursors_(new cursor[participants]) {}
  pool_pieces(const pool_pieces&) = delete;
  pool_pieces& operator=(const pool_pieces&) = delete;

  unsigned participants() const noexcept { return count_; }

  // A stamp no earlier job of this object used. Call once per job, before
  // publishing it; the job passes it to every claim.
  std::uint64_t next_stamp() noexcept {
    // Ordering: relaxed: only uniqueness matters (one modification order).
    // 1 .. 2^56-1: never 0, the value of a cursor nobody has claimed from.
    return stamps_.fetch_add(1, std::memory_order_relaxed) % stamp_mask + 1;
  }

  // Claims the next unclaimed piece of participant `owner` in job `stamp`
  // (m pieces each, piece 0 reserved for the owner): returns its number
  // within the owner's pieces, 1..m-1, or no_piece if all are claimed.
  unsigned claim(unsigned owner, std::uint64_t stamp, unsigned m) noexcept {
    detail::atomic<std::uint64_t>& word = cursors_[owner].word;
    // Ordering: relaxed load and CAS: see "Memory ordering" above.
    std::uint64_t seen = word.load(std::memory_order_relaxed);
    for (;;) {
      std::uint64_t const taken = (seen >> count_bits) == stamp ? (seen & count_mask) : 1;
      if (taken >= m) return no_piece;
      if (word.compare_exchange_weak(seen, (stamp << count_bits) | (taken + 1), std::memory_order_relaxed,
                                     std::memory_order_relaxed))
        return static_cast<unsigned>(taken);
    }
  }

  // Participant `self` of `count` (== participants()) runs its own pieces,
  // then everyone else's that are left, calling run(q) with each piece's
  // global number q = owner * m + k, until none is left or stop() is true.
  //
  // Two line moves kept off the critical path:
  // - The owner's first claim would wait for its cursor line, which the
  //   others read at the end of the previous job. So piece 0 is the
  //   owner's without a claim (thieves start at 1), and the line is
  //   fetched for writing while piece 0 runs.
  // - A participant out of pieces reads the others' cursors; they are
  //   fetched while its last own piece runs (the others have claimed their
  //   last pieces by then unless they are slower, and then the read finds
  //   a piece to take anyway).
  template <class Run, class Stop>
  void run_pieces(unsigned self, std::uint64_t stamp, unsigned m, Run&& run, Stop&& stop) {
    prefetch(&cursors_[self], for_write);
    if (stop()) return;
    run(self * m);
    for (unsigned i = 0; i < count_; ++i) {
      unsigned const owner = self + i < count_ ? self + i : self + i - count_;
      for (;;) {
        if (stop()) return;
        unsigned const k = claim(owner, stamp, m);
        if (k == no_piece) break;
        if (i == 0 && k + 1 == m)
          for (unsigned other = 1; other < count_; ++other)
            prefetch(&cursors_[self + other < count_ ? self + other : self + other - count_], for_read);
        run(owner * m + k);
      }
    }
  }

 private:
  static constexpr unsigned count_bits = 8;
  static constexpr std::uint64_t count_mask = (std::uint64_t{1} << count_bits) - 1;
  static constexpr std::uint64_t stamp_mask = ~std::uint64_t{0} >> count_bits;
  static_assert(max_pieces <= count_mask);
  static_assert(2 <= min_pieces && min_pieces <= max_pieces);

  enum access { for_read = 0, for_write = 1 };
  // A prefetch for writing must take the line exclusive to help a CAS.
  // __builtin_prefetch(p, 1) is a plain read prefetch unless the target
  // has PRFCHW (not in the x86-64 baseline), so on x86-64 PREFETCHW is
  // issued directly when the CPU has it (platform::has_prefetchw);
  // elsewhere, or without it, a read prefetch.
  static void prefetch(const void* line, access a) noexcept {
#if defined(ROUSE_MODEL_RELACY)
    (void)line;
    (void)a;
#elif defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (a == for_write && platform::has_prefetchw())
      asm volatile("prefetchw %0" : : "m"(*static_cast<const char*>(line)));
    else
      __builtin_prefetch(line, 0);
#elif defined(__GNUC__)
    __builtin_prefetch(line, a == for_write ? 1 : 0);
#else
    (void)line;
    (void)a;
#endif
  }

  // 128 bytes: see dispatch.hpp ("Size") on the adjacent-line prefetcher.
  struct alignas(128) cursor {
    detail::atomic<std::uint64_t> word{0};
  };

  unsigned const count_;
  std::unique_ptr<cursor[]> cursors_;
  // Its own line: the caller's fetch_add must not take away the line that
  // every participant reads count_ and cursors_ from.
  alignas(128) detail::atomic<std::uint64_t> stamps_{0};
};

}  // namespace rouse::detail
