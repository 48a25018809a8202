// Must fail under clang++ -Wthread-safety -Werror: locks a rouse::spin_lock
// it already holds (a self-deadlock).
#include "rouse/spin_lock.hpp"

struct counter {
  rouse::spin_lock s;
  long value ROUSE_GUARDED_BY(s) = 0;
  void bump() {
    s.lock();
    s.lock();  // error: acquiring mutex 's' that is already held
    ++value;
    s.unlock();
  }
};

int main() {
  counter c;
  c.bump();
  return 0;
}
