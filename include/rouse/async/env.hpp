// rouse/async/env.hpp — environment queries: who runs me, and who may stop me.
//
// C++26's std::execution names an awaiting coroutine's context through its
// promise's `get_env()`, an object answering queries. rouse follows that
// convention without depending on an implementation, so that an adapter to
// std::execution stays thin:
//
//   get_env(promise)          promise.get_env() if it has one, else an empty env
//   get_scheduler(env)        env.query(get_scheduler) — required when used
//   get_stop_token(env)       env.query(get_stop_token), else never_stop_token
//
// A rouse task's env answers both (rouse/async/task.hpp). A foreign
// coroutine type may answer either, neither, or both; rouse's awaitables use
// what it answers: a rouse scheduler says where a woken waiter resumes
// (without one it resumes on the waker's thread), any stoppable token
// (rouse/async/stop_token.hpp) says when to give up.
#pragma once

#include <concepts>
#include <type_traits>

#include "rouse/async/stop_token.hpp"

namespace rouse::async {

struct empty_env {};

struct get_env_t {
  template <class T>
  decltype(auto) operator()(const T& t) const noexcept {
    if constexpr (requires { t.get_env(); })
      return t.get_env();
    else
      return empty_env{};
  }
};
inline constexpr get_env_t get_env{};

struct get_scheduler_t {
  template <class Env>
    requires requires(const Env& e, const get_scheduler_t& q) { e.query(q); }
  auto operator()(const Env& e) const noexcept {
    return e.query(*this);
  }
};
inline constexpr get_scheduler_t get_scheduler{};

struct get_stop_token_t {
  template <class Env>
  auto operator()(const Env& e) const noexcept {
    if constexpr (requires { e.query(*this); })
      return e.query(*this);
    else
      return never_stop_token{};
  }
};
inline constexpr get_stop_token_t get_stop_token{};

// The env of an awaiting coroutine's promise.
template <class Promise>
using env_of_t = std::remove_cvref_t<decltype(get_env(std::declval<const Promise&>()))>;
template <class Env>
using stop_token_of_t = std::remove_cvref_t<decltype(get_stop_token(std::declval<const Env&>()))>;

}  // namespace rouse::async
