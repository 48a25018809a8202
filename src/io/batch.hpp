// src/io/batch.hpp — the completions a thread is handing out, kept where a
// frame's destructor on that thread can take its own out.
//
// The reactor completes a batch outside its locks; a coroutine without an
// executor resumes inline and may destroy the frame of another whose
// completion is later in the same batch (completed by the kernel, not yet
// handed out). That frame's destructor, on this thread, must find its node
// here and take it out, or the batch would later touch freed memory (an
// operation) or the destructor would wait for a completion that only this
// thread can deliver (a futex wait).
//
// A batch handed out inside another (a resumed coroutine closes a
// descriptor, whose waiting operations complete at once) is a level of its
// own: it runs to its end, then the outer one goes on. Single-threaded: the
// levels are the calling thread's.
#pragma once

namespace rouse::io::detail {

// Node: the batch's element; Next: its link within the batch.
template <class Node, Node* Node::*Next>
class batch_levels {
 public:
  // One batch being handed out by this thread, innermost first.
  class level {
   public:
    explicit level(Node* first) noexcept : left_(first), outer_(top) { top = this; }
    ~level() { top = outer_; }
    level(const level&) = delete;
    level& operator=(const level&) = delete;

    // The next node to hand out (taken off the batch), or null at its end.
    Node* pop() noexcept {
      Node* const n = left_;
      if (n != nullptr) left_ = n->*Next;
      return n;
    }

   private:
    friend class batch_levels;
    Node* left_;
    level* outer_;
  };

  // Takes the first node for which match(node) holds out of any batch this
  // thread is handing out; null when none holds one.
  template <class Match>
  static Node* withdraw(Match match) noexcept {
    for (level* l = top; l != nullptr; l = l->outer_) {
      for (Node** at = &l->left_; *at != nullptr; at = &((*at)->*Next)) {
        Node* const n = *at;
        if (match(n)) {
          *at = n->*Next;
          return n;
        }
      }
    }
    return nullptr;
  }

 private:
  static inline thread_local level* top = nullptr;
};

}  // namespace rouse::io::detail
