// tests/support: an object that faults when touched after its destruction.
//
//   rouse_test::guarded_object<rouse::shared_mutex> m;
//   ... threads use *m ...
//   m.destroy();   // ~T(), then the memory becomes inaccessible
//
// The object lives alone in pages of its own (mmap). destroy() runs its
// destructor and then poisons the memory: under AddressSanitizer at once
// (a shadow write), so a read or write by any thread after that — a release
// that touches the object after the thread it let through destroyed it — is
// reported as a use-after-poison; in other builds it makes the pages
// inaccessible (PROT_NONE, a system call, which closes a narrower window:
// those builds catch only slower offenders, with SIGSEGV). A futex wake on
// the address stays legal: the kernel does not read a private futex's
// memory to wake it.
// The pages are unmapped when the guard goes out of scope, after the threads
// that used the object have been joined.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define ROUSE_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ROUSE_TEST_ASAN 1
#endif
#endif
#if defined(ROUSE_TEST_ASAN)
#include <sanitizer/asan_interface.h>
#endif

#include <cstddef>
#include <cstdlib>
#include <new>
#include <utility>

namespace rouse_test {

template <class T>
class guarded_object {
 public:
  template <class... Args>
  explicit guarded_object(Args&&... args) {
    std::size_t const page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    size_ = (sizeof(T) + page - 1) / page * page;
    void* p = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) std::abort();
    memory_ = p;
    object_ = ::new (p) T(std::forward<Args>(args)...);
  }
  guarded_object(const guarded_object&) = delete;
  guarded_object& operator=(const guarded_object&) = delete;
  ~guarded_object() {
    if (object_ != nullptr) object_->~T();
#if defined(ROUSE_TEST_ASAN)
    ASAN_UNPOISON_MEMORY_REGION(memory_, size_);
#endif
    ::munmap(memory_, size_);
  }

  T& operator*() const noexcept { return *object_; }
  T* operator->() const noexcept { return object_; }
  T* get() const noexcept { return object_; }

  // Destroys the object and makes its memory fault on any access.
  void destroy() {
    object_->~T();
    object_ = nullptr;
#if defined(ROUSE_TEST_ASAN)
    ASAN_POISON_MEMORY_REGION(memory_, size_);
#else
    if (::mprotect(memory_, size_, PROT_NONE) != 0) std::abort();
#endif
  }

 private:
  void* memory_ = nullptr;
  std::size_t size_ = 0;
  T* object_ = nullptr;
};

}  // namespace rouse_test
