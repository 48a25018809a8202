// rouse::async::thread_pool's threads (rouse/async/thread_pool.hpp): the
// protocol is in the header (the model test compiles it); this is what
// starts, names and joins the workers.
#include "rouse/async/thread_pool.hpp"

#include "rouse/detail/diagnostics.hpp"

namespace rouse::async {

namespace detail {

void*& thread_pool_worker_slot() noexcept {
  thread_local void* worker = nullptr;
  return worker;
}

}  // namespace detail

thread_pool::thread_pool(unsigned workers) : core_(workers) {
  threads_.reserve(core_.size());
  try {
    for (unsigned i = 0; i < core_.size(); ++i) threads_.emplace_back([this, i] { run(i); });
  } catch (...) {
    // The workers that started run what may have been scheduled and return.
    core_.stop();
    for (auto& t : threads_) t.join();
    throw;
  }
}

thread_pool::~thread_pool() {
  ROUSE_CHECK_USAGE(detail::thread_pool_worker_slot() == nullptr ||
                        !core_.owns(*static_cast<core::worker*>(detail::thread_pool_worker_slot())),
                    "rouse::async::thread_pool", "destroyed by one of its own workers (it would join itself)");
  // A schedule() from another thread may have pushed a coroutine that ran
  // and let the owner go on, and still be waking a worker: wait for it to
  // leave (a few instructions). Ordering: acquire: pairs with its release.
  while (remote_callers_.load(std::memory_order_acquire) != 0) std::this_thread::yield();
  core_.stop();
  for (auto& t : threads_) t.join();
  ROUSE_CHECK_USAGE(core_.global_empty(), "rouse::async::thread_pool",
                    "a coroutine was scheduled after the workers stopped (a schedule raced with the destructor)");
  ROUSE_CHECK_USAGE(core_.timers_empty(), "rouse::async::thread_pool",
                    "destroyed with timers pending (their coroutines would never resume)");
}

void thread_pool::run(unsigned index) noexcept {
  current_executor_scope scope(this);
  core::worker& w = core_.worker_at(index);
  detail::thread_pool_worker_slot() = &w;
  core_.run_worker(w);
  detail::thread_pool_worker_slot() = nullptr;
}

}  // namespace rouse::async
