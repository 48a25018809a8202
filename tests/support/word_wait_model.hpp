// tests/model support for the models of a coroutine's futex wait
// (rouse/async/detail/word_wait.hpp), compiled with ROUSE_MODEL_RELACY like
// model.hpp: the protocol both models drive.
//
//   rouse_model::token_protocol p(tokens);   step() takes a token, or asks
//                                            to wait while the word is 0
#pragma once

#include <cstdint>

#include "model.hpp"
#include "rouse/async/detail/word_wait.hpp"

namespace rouse_model {

// Takes a token, or waits while there is none (the shape of the semaphore's
// and the mutex's steps). leave() takes nothing.
struct token_protocol : rouse::async::detail::wait_protocol {
  rouse::detail::atomic<std::uint32_t>* tokens;
  bool took = false;  // written by the thread that drives the end
  explicit token_protocol(rouse::detail::atomic<std::uint32_t>& t) noexcept : tokens(&t) { word = &t; }
  bool step(std::uint32_t& value) noexcept override {
    // Ordering: acquire: pairs with the waker's release.
    std::uint32_t v = tokens->load(std::memory_order_acquire);
    while (v > 0) {
      if (tokens->compare_exchange_strong(v, v - 1, std::memory_order_acquire, std::memory_order_acquire)) {
        took = true;
        return true;
      }
    }
    value = 0;
    return false;
  }
};

}  // namespace rouse_model
