// Must fail under clang++ -Wthread-safety -Werror: calls a function that
// requires a rouse::mutex without holding it.
#include "rouse/mutex.hpp"

struct counter {
  rouse::mutex m;
  long value ROUSE_GUARDED_BY(m) = 0;
  void bump_locked() ROUSE_REQUIRES(m) { ++value; }
  void bump() { bump_locked(); }  // error: calling function 'bump_locked' requires holding mutex 'm'
};

int main() {
  counter c;
  c.bump();
  return 0;
}
