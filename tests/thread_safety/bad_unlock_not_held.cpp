// Must fail under clang++ -Wthread-safety -Werror: unlocks a
// rouse::recursive_mutex that this function does not hold.
#include "rouse/recursive_mutex.hpp"

struct counter {
  rouse::recursive_mutex m;
  void release() { m.unlock(); }  // error: releasing mutex 'm' that was not held
};

int main() {
  counter c;
  c.release();
  return 0;
}
