// Must fail under clang++ -Wthread-safety -Werror: a function returns with
// a rouse::mutex still locked.
#include "rouse/mutex.hpp"

struct counter {
  rouse::mutex m;
  long value ROUSE_GUARDED_BY(m) = 0;
  void bump() {
    m.lock();
    ++value;
  }  // error: mutex 'm' is still held at the end of function
};

int main() {
  counter c;
  c.bump();
  return 0;
}
