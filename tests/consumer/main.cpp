// Built against an installed rouse by tests/consumer/run.cmake.
#include <rouse/platform/wait.hpp>

#include <atomic>
#include <cstdio>
#include <thread>

int main() {
  rouse::platform::word flag{0};
  std::thread waker([&] {
    flag.store(1, std::memory_order_release);
    rouse::platform::wake_all(flag);
  });
  while (flag.load(std::memory_order_acquire) == 0) rouse::platform::wait(flag, 0);
  waker.join();
  std::printf("consumer: rouse %s backend works\n", rouse::platform::backend_name());
  return 0;
}
