// The coroutine frame pool (rouse/async/detail/frame_pool.hpp).
#include "rouse/async/detail/frame_pool.hpp"

#include <cstdint>
#include <cstring>
#include <new>

#include "rouse/mutex.hpp"

#if defined(__SANITIZE_ADDRESS__)
#define ROUSE_FRAME_POOL_OFF 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ROUSE_FRAME_POOL_OFF 1
#endif
#endif

namespace rouse::async::detail {

#if defined(ROUSE_FRAME_POOL_OFF)

// The aligned global allocator (the unsized delete: clang 14 does not
// declare the sized one without -fsized-deallocation).
void* frame_allocate(std::size_t n) { return ::operator new(n, std::align_val_t{frame_alignment}); }
void frame_deallocate(void* p, std::size_t) noexcept { ::operator delete(p, std::align_val_t{frame_alignment}); }
void frame_pool_trim() noexcept {}
bool frame_pool_enabled() noexcept { return false; }

#else

namespace {

constexpr std::size_t granule = frame_alignment;  // size classes are multiples of this
constexpr std::size_t classes = frame_pool_max_block / granule;  // pooled frames: up to 1 KiB
constexpr std::uint32_t local_limit = 64;    // blocks a thread caches per class
constexpr std::uint32_t batch = 32;          // blocks moved to or from the depot at once
constexpr std::uint32_t depot_limit = 64;    // batches the depot keeps per class

// A free block. The first block of a batch in the depot links the batches
// and holds the batch's length (`batch`, or fewer from an exiting thread).
struct block {
  block* next;
  block* next_batch;
  std::uint32_t length;
};
static_assert(sizeof(block) <= granule);

std::size_t class_of(std::size_t n) noexcept { return (n + granule - 1) / granule - 1; }
std::size_t class_bytes(std::size_t c) noexcept { return (c + 1) * granule; }

// Blocks from the system: `bytes` aligned to frame_alignment, carved from a
// plain ::operator new allocation `slack` bytes longer. The block starts at
// the first aligned address at least a pointer past the allocation's start
// (so at most frame_alignment past it), and the word just before the block
// keeps that start for the free; it mostly shares a cache line with the
// allocator's header word, which the free reads anyway.
constexpr std::size_t slack = frame_alignment;
static_assert(__STDCPP_DEFAULT_NEW_ALIGNMENT__ >= sizeof(void*) && (frame_alignment & (frame_alignment - 1)) == 0);

void* system_block(std::size_t bytes) {
  auto* const raw = static_cast<unsigned char*>(::operator new(bytes + slack));
  std::uintptr_t const at = reinterpret_cast<std::uintptr_t>(raw);
  std::uintptr_t const aligned = (at + sizeof(void*) + frame_alignment - 1) & ~std::uintptr_t{frame_alignment - 1};
  unsigned char* const b = raw + (aligned - at);
  std::memcpy(b - sizeof(void*), &raw, sizeof raw);
  return b;
}
// (The unsized delete: clang 14 does not declare the sized one without
// -fsized-deallocation.)
void system_free(void* b) noexcept {
  void* raw = nullptr;
  std::memcpy(&raw, static_cast<unsigned char*>(b) - sizeof(void*), sizeof raw);
  ::operator delete(raw);
}

void free_list(block* b) noexcept {
  while (b != nullptr) {
    block* const next = b->next;
    system_free(b);
    b = next;
  }
}

// Batches of `batch` blocks per class, behind one lock each.
class depot {
 public:
  // Takes `b` (a list of `length` blocks, at most `batch`), or frees it
  // when full.
  void put(std::size_t c, block* b, std::uint32_t length) noexcept {
    b->length = length;
    shelf& s = shelves_[c];
    s.lock.lock();
    if (s.count < depot_limit) {
      b->next_batch = s.top;
      s.top = b;
      ++s.count;
      b = nullptr;
    }
    s.lock.unlock();
    free_list(b);
  }
  // A list of blocks (its length in the first), or nullptr.
  block* take(std::size_t c) noexcept {
    shelf& s = shelves_[c];
    s.lock.lock();
    block* const b = s.top;
    if (b != nullptr) {
      s.top = b->next_batch;
      --s.count;
    }
    s.lock.unlock();
    return b;
  }
  void trim() noexcept {
    for (std::size_t c = 0; c < classes; ++c) {
      shelf& s = shelves_[c];
      s.lock.lock();
      block* b = s.top;
      s.top = nullptr;
      s.count = 0;
      s.lock.unlock();
      while (b != nullptr) {
        block* const next = b->next_batch;
        free_list(b);
        b = next;
      }
    }
  }

 private:
  struct alignas(64) shelf {
    ::rouse::mutex lock;
    block* top = nullptr;
    std::uint32_t count = 0;
  };
  shelf shelves_[classes];
};

// Never destroyed: threads may free frames after static destruction began.
depot& the_depot() noexcept {
  static depot* const d = new depot;
  return *d;
}

struct thread_cache {
  block* head[classes] = {};
  std::uint32_t count[classes] = {};

  // Moves `batch` blocks from the front of class c's list to the depot.
  void spill(std::size_t c) noexcept {
    block* const first = head[c];
    block* last = first;
    for (std::uint32_t i = 1; i < batch; ++i) last = last->next;
    head[c] = last->next;
    last->next = nullptr;
    count[c] -= batch;
    the_depot().put(c, first, batch);
  }
  // Everything to the depot (a last, shorter batch too).
  void flush() noexcept {
    for (std::size_t c = 0; c < classes; ++c) {
      while (count[c] >= batch) spill(c);
      if (head[c] != nullptr) the_depot().put(c, head[c], count[c]);
      head[c] = nullptr;
      count[c] = 0;
    }
  }
  ~thread_cache();
};

// This thread's cache: never used (0), alive (1), destroyed (2). Trivially
// destructible, so still readable while the thread's other thread_local
// objects are destroyed, which may free frames.
thread_local std::uint8_t cache_state = 0;
thread_local thread_cache cache;

thread_cache::~thread_cache() {
  cache_state = 2;
  flush();
}

// nullptr once the thread is exiting and its cache is gone.
thread_cache* my_cache() noexcept {
  if (cache_state == 1) [[likely]]
    return &cache;
  if (cache_state == 2) return nullptr;
  cache_state = 1;
  return &cache;  // constructed here, on the thread's first use
}

}  // namespace

void* frame_allocate(std::size_t n) {
  if (n == 0 || n > classes * granule) return system_block(n);
  std::size_t const c = class_of(n);
  thread_cache* const tc = my_cache();
  if (tc != nullptr) {
    block* b = tc->head[c];
    if (b == nullptr) {
      b = the_depot().take(c);
      if (b != nullptr) tc->count[c] = b->length;
    }
    if (b != nullptr) {
      tc->head[c] = b->next;
      --tc->count[c];
      return b;
    }
  }
  return system_block(class_bytes(c));
}

void frame_deallocate(void* p, std::size_t n) noexcept {
  if (n == 0 || n > classes * granule) {
    system_free(p);
    return;
  }
  std::size_t const c = class_of(n);
  thread_cache* const tc = my_cache();
  if (tc == nullptr) {
    system_free(p);
    return;
  }
  auto* const b = static_cast<block*>(p);
  b->next = tc->head[c];
  tc->head[c] = b;
  if (++tc->count[c] > local_limit) tc->spill(c);
}

void frame_pool_trim() noexcept {
  if (thread_cache* const tc = my_cache()) tc->flush();  // into the depot,
  the_depot().trim();                                   // then all of it out
}

bool frame_pool_enabled() noexcept { return true; }

#endif

}  // namespace rouse::async::detail
