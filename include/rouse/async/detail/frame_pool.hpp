// rouse/async/detail/frame_pool.hpp — where rouse's coroutine frames come from.
//
//   frame_allocate(n)        a block of n bytes for a coroutine frame,
//                            aligned to frame_alignment (64 bytes)
//   frame_deallocate(p, n)   gives it back (any thread; n as allocated)
//   frame_pool_trim()        the calling thread's cached blocks and the shared
//                            depot go back to the system allocator
//   frame_pool_enabled()     false where the pool is off (AddressSanitizer)
//
// Every rouse coroutine type (task, the spawn and when drivers, the hop
// frame) takes its frame from here through its promise's operator new.
// Frames are short-lived and come in few sizes, and in the patterns async
// code has they are often freed on another thread than the one that made
// them (a task spawned by one worker and run by another): the system
// allocator then serializes both threads on one arena lock. The pool keeps
// freed frames per thread and moves them between threads in batches.
//
// Shape: size classes of 64 bytes up to 1 KiB (larger frames go to
// ::operator new). Each thread caches up to `local_limit` blocks per class
// in a singly linked list (no atomics, no lock). A free past that limit
// moves `batch` blocks to a shared depot per class (one lock acquisition per
// batch); an allocation from an empty cache takes a batch from the depot,
// else calls ::operator new. The depot keeps at most `depot_limit` batches
// per class and frees the rest, so a burst of a million frames returns its
// memory once it is over (bounded cache: 64 KiB per thread per class at
// most, 2 MiB per class in the depot). A thread's cache goes to the depot
// when the thread exits.
//
// Alignment: every block, pooled or not, is aligned to `frame_alignment`
// (a cache line). C++20 passes a frame's allocation no alignment, and g++
// lays a frame out from its base as if the base were aligned for all of it,
// so at new's 16 bytes a task's alignas(64) local or result sat misaligned
// (clang pads its frames itself, though not for 256 bytes in clang 14).
// Beyond 64 bytes frames may stay misaligned: the language has no way to
// ask. A block new to the pool is carved from a plain allocation 64 bytes
// longer (the aligned operator new, glibc's memalign, costs more): a warm
// pool pays nothing for alignment, a burst of new blocks 64 bytes each
// (docs/async.md, "Costs").
//
// Cost: an allocation or a free is a thread-local list push or pop; one
// lock per `batch` blocks moves between threads. Under AddressSanitizer the
// pool is off (every frame is a plain ::operator new, so use-after-free of a
// frame stays visible). Thread safety: any thread may free a block another
// thread allocated.
#pragma once

#include <cstddef>

namespace rouse::async::detail {

// Throws std::bad_alloc when the system allocator does.
void* frame_allocate(std::size_t n);
void frame_deallocate(void* p, std::size_t n) noexcept;
void frame_pool_trim() noexcept;
// False in builds where the pool is off (AddressSanitizer).
bool frame_pool_enabled() noexcept;
// Blocks of up to this many bytes are pooled; larger ones are not.
inline constexpr std::size_t frame_pool_max_block = 1024;
// Every block frame_allocate returns is aligned to this.
inline constexpr std::size_t frame_alignment = 64;

// What a promise type adds to draw its frames from the pool.
struct pooled_frame {
  static void* operator new(std::size_t n) { return frame_allocate(n); }
  static void operator delete(void* p, std::size_t n) noexcept { frame_deallocate(p, n); }
};

}  // namespace rouse::async::detail
