// Must fail under clang++ -Wthread-safety -Werror: reads guarded data
// without holding its rouse::mutex.
#include "rouse/mutex.hpp"

struct counter {
  rouse::mutex m;
  long value ROUSE_GUARDED_BY(m) = 0;
  long peek() { return value; }  // error: reading 'value' requires holding mutex 'm'
};

int main() {
  counter c;
  return static_cast<int>(c.peek());
}
