// Must not compile, with rouse's message: a task awaited as an lvalue (it
// is awaited once, as an rvalue). Checked by tests/CMakeLists.txt.
#include "rouse/async/task.hpp"

rouse::async::task<int> child() { co_return 1; }

rouse::async::task<int> parent() {
  rouse::async::task<int> t = child();
  co_return co_await t;  // co_await std::move(t) is the right form
}
