// Must not compile, with rouse's message: a join_handle awaited as an
// lvalue (it is awaited once, as an rvalue). Checked by tests/CMakeLists.txt.
#include "rouse/async/run_loop.hpp"
#include "rouse/async/spawn.hpp"
#include "rouse/async/task.hpp"

rouse::async::task<int> child() { co_return 1; }

rouse::async::task<int> parent(rouse::async::run_loop& loop) {
  auto h = rouse::async::spawn(loop, child());
  co_return co_await h;  // co_await std::move(h) is the right form
}
