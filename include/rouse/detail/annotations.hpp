// rouse/detail/annotations.hpp — Clang thread-safety annotations.
//
// Every lock type of rouse is a "capability" in the sense of Clang's
// thread-safety analysis (-Wthread-safety), so code that guards its data with
// a rouse lock gets the compile-time checks it would get with an annotated
// std::mutex under libc++:
//
//   class account {
//     rouse::mutex m_;
//     long balance_ ROUSE_GUARDED_BY(m_) = 0;
//    public:
//     void deposit(long x) ROUSE_EXCLUDES(m_) { m_.lock(); balance_ += x; m_.unlock(); }
//     long peek() const { return balance_; }   // -Wthread-safety: reading balance_ requires holding m_
//   };
//
// The macros expand to the attributes under Clang and to nothing elsewhere
// (g++ has no such analysis). They cost nothing at run time.
//
// Names follow Clang's documentation ("Thread Safety Analysis"), prefixed
// ROUSE_ so they never collide with a project's own macros:
//
//   ROUSE_CAPABILITY(name)          the type is a lock ("mutex", "shared_mutex", ...)
//   ROUSE_SCOPED_CAPABILITY         the type is an RAII guard of some lock
//   ROUSE_GUARDED_BY(m)             data member that needs m held to be touched
//   ROUSE_PT_GUARDED_BY(m)          the pointee of a pointer member needs m
//   ROUSE_ACQUIRED_BEFORE(...) / ROUSE_ACQUIRED_AFTER(...)   lock order
//   ROUSE_REQUIRES(...) / ROUSE_REQUIRES_SHARED(...)         caller must hold
//   ROUSE_ACQUIRE(...) / ROUSE_ACQUIRE_SHARED(...)           function locks
//   ROUSE_RELEASE(...) / ROUSE_RELEASE_SHARED(...) / ROUSE_RELEASE_GENERIC(...)
//   ROUSE_TRY_ACQUIRE(...) / ROUSE_TRY_ACQUIRE_SHARED(...)   first argument: the success value
//   ROUSE_EXCLUDES(...)                                      caller must not hold
//   ROUSE_ASSERT_CAPABILITY(x) / ROUSE_ASSERT_SHARED_CAPABILITY(x)
//   ROUSE_RETURN_CAPABILITY(x)                               function returns a reference to x
//   ROUSE_NO_THREAD_SAFETY_ANALYSIS                          opt a function out
//
// rouse's own lock implementations are opted out of the analysis inside
// their bodies (a lock() cannot "hold" itself while it is acquiring), so a
// user's -Wthread-safety -Werror build of rouse's headers is clean;
// tests/thread_safety/ proves both that and that misuse is caught.
#pragma once

#if defined(__clang__)
#define ROUSE_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define ROUSE_THREAD_ANNOTATION(x)
#endif

#define ROUSE_CAPABILITY(name) ROUSE_THREAD_ANNOTATION(capability(name))
#define ROUSE_SCOPED_CAPABILITY ROUSE_THREAD_ANNOTATION(scoped_lockable)
#define ROUSE_GUARDED_BY(x) ROUSE_THREAD_ANNOTATION(guarded_by(x))
#define ROUSE_PT_GUARDED_BY(x) ROUSE_THREAD_ANNOTATION(pt_guarded_by(x))
#define ROUSE_ACQUIRED_BEFORE(...) ROUSE_THREAD_ANNOTATION(acquired_before(__VA_ARGS__))
#define ROUSE_ACQUIRED_AFTER(...) ROUSE_THREAD_ANNOTATION(acquired_after(__VA_ARGS__))
#define ROUSE_REQUIRES(...) ROUSE_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define ROUSE_REQUIRES_SHARED(...) ROUSE_THREAD_ANNOTATION(requires_shared_capability(__VA_ARGS__))
#define ROUSE_ACQUIRE(...) ROUSE_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define ROUSE_ACQUIRE_SHARED(...) ROUSE_THREAD_ANNOTATION(acquire_shared_capability(__VA_ARGS__))
#define ROUSE_RELEASE(...) ROUSE_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define ROUSE_RELEASE_SHARED(...) ROUSE_THREAD_ANNOTATION(release_shared_capability(__VA_ARGS__))
#define ROUSE_RELEASE_GENERIC(...) ROUSE_THREAD_ANNOTATION(release_generic_capability(__VA_ARGS__))
#define ROUSE_TRY_ACQUIRE(...) ROUSE_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))
#define ROUSE_TRY_ACQUIRE_SHARED(...) ROUSE_THREAD_ANNOTATION(try_acquire_shared_capability(__VA_ARGS__))
#define ROUSE_EXCLUDES(...) ROUSE_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define ROUSE_ASSERT_CAPABILITY(x) ROUSE_THREAD_ANNOTATION(assert_capability(x))
#define ROUSE_ASSERT_SHARED_CAPABILITY(x) ROUSE_THREAD_ANNOTATION(assert_shared_capability(x))
#define ROUSE_RETURN_CAPABILITY(x) ROUSE_THREAD_ANNOTATION(lock_returned(x))
#define ROUSE_NO_THREAD_SAFETY_ANALYSIS ROUSE_THREAD_ANNOTATION(no_thread_safety_analysis)
