// The example of README.md, built so that it stays true.
#include <functional>
#include <mutex>
#include <rouse/channel/channel.hpp>
#include <rouse/condition_variable.hpp>
#include <rouse/mutex.hpp>
#include <rouse/pool/pool.hpp>
#include <thread>

int main() {
  rouse::mutex m;                // 4 bytes; a rename of std::mutex
  rouse::condition_variable cv;  // notify_all wakes one, which wakes the next: no herd
  bool ready = false;
  std::thread t([&] {
    std::lock_guard g(m);
    ready = true;
    cv.notify_one();
  });
  {
    std::unique_lock lk(m);
    cv.wait(lk, [&] { return ready; });
  }
  t.join();

  auto [tx, rx] = rouse::channel::bounded<int>(1024);  // MPMC, Go semantics
  std::thread producer([tx = std::move(tx)]() mutable {
    for (int i = 0; i < 100; ++i) tx.send(i);
  });  // last sender gone: closed
  long sum = 0;
  for (int v : rx) sum += v;  // drains, ends on close
  producer.join();

  rouse::pool pool;  // all cores, one futex word
  long total = pool.parallel_reduce(
      0L, 1L << 20, 0L, [](long i) { return i & 1; }, std::plus<>{});
  return sum == 4950 && total == (1L << 19) ? 0 : 1;
}
