// Correct use of rouse's annotated locks: must compile cleanly with
// clang++ -Wthread-safety -Werror (tests/CMakeLists.txt, label unit).
#include <chrono>

#include "rouse/channel/select.hpp"
#include "rouse/detail/annotations.hpp"
#include "rouse/guarded.hpp"
#include "rouse/mutex.hpp"
#include "rouse/once.hpp"
#include "rouse/recursive_mutex.hpp"
#include "rouse/spin_lock.hpp"

class account {
 public:
  void deposit(long amount) ROUSE_EXCLUDES(m_) {
    m_.lock();
    add_locked(amount);
    m_.unlock();
  }
  bool try_deposit(long amount) ROUSE_EXCLUDES(m_) {
    if (!m_.try_lock_for(std::chrono::milliseconds(1))) return false;
    balance_ += amount;
    m_.unlock();
    return true;
  }
  long read() ROUSE_EXCLUDES(m_) {
    if (!m_.try_lock()) return -1;
    long const v = balance_;
    m_.unlock();
    return v;
  }
  void tick() ROUSE_EXCLUDES(s_, r_) {
    s_.lock();
    ++ticks_;
    s_.unlock();
    r_.lock();
    ++level_;
    r_.unlock();
  }

 private:
  void add_locked(long amount) ROUSE_REQUIRES(m_) { balance_ += amount; }

  rouse::mutex m_;
  long balance_ ROUSE_GUARDED_BY(m_) = 0;
  rouse::spin_lock s_;
  long ticks_ ROUSE_GUARDED_BY(s_) = 0;
  rouse::recursive_mutex r_;
  int level_ ROUSE_GUARDED_BY(r_) = 0;
};

// The channels lock internally (the rendezvous flavour's lock and the
// waiter queues' are rouse::mutex): using them must stay clean too.
void use_channels() {
  auto [tx, rx] = rouse::channel::bounded<int>(0);  // a rendezvous channel
  (void)tx.try_send(1);
  (void)rx.try_recv();
  rouse::channel::recv_case<int> r(rx);
  (void)rouse::channel::try_select(r);
}

int main() {
  use_channels();
  account a;
  a.deposit(1);
  (void)a.try_deposit(2);
  (void)a.read();
  a.tick();
  rouse::guarded<int> g;
  *g.lock() += 1;
  (void)g.with_lock([](int& v) { return v; });
  rouse::once_flag flag;
  rouse::call_once(flag, [] {});
  return 0;
}
