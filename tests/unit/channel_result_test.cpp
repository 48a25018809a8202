// Unit tests of rouse/channel/result.hpp.
#include "rouse/channel/result.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace channel_result_test {
namespace {

namespace ch = rouse::channel;

struct no_default {
  explicit no_default(int v) : value(v) {}
  int value;
};

TEST(channel_result, status_names) {
  EXPECT_EQ(std::string_view(ch::to_string(ch::status::ok)), "ok");
  EXPECT_EQ(std::string_view(ch::to_string(ch::status::empty)), "empty");
  EXPECT_EQ(std::string_view(ch::to_string(ch::status::full)), "full");
  EXPECT_EQ(std::string_view(ch::to_string(ch::status::closed)), "closed");
  EXPECT_EQ(std::string_view(ch::to_string(ch::status::timed_out)), "timed_out");
}

TEST(channel_result, recv_result_with_a_value_is_ok) {
  ch::recv_result<std::string> r(std::in_place, "hello");
  EXPECT_TRUE(r);
  EXPECT_TRUE(r.has_value());
  EXPECT_EQ(r.status(), ch::status::ok);
  EXPECT_EQ(*r, "hello");
  EXPECT_EQ(r->size(), 5u);
  EXPECT_EQ(r.value(), "hello");
  std::string moved = std::move(r).value();
  EXPECT_EQ(moved, "hello");
}

TEST(channel_result, recv_result_without_a_value_says_why) {
  for (auto why : {ch::status::empty, ch::status::closed, ch::status::timed_out}) {
    ch::recv_result<int> r(why);
    EXPECT_FALSE(r);
    EXPECT_FALSE(r.has_value());
    EXPECT_EQ(r.status(), why);
    EXPECT_THROW((void)r.value(), std::bad_optional_access);
    EXPECT_EQ(r.value_or(7), 7);
  }
  EXPECT_TRUE(ch::recv_result<int>(ch::status::closed).is_closed());
  EXPECT_TRUE(ch::recv_result<int>(ch::status::empty).is_empty());
  EXPECT_TRUE(ch::recv_result<int>(ch::status::timed_out).is_timed_out());
}

TEST(channel_result, recv_result_holds_move_only_non_default_constructible_values) {
  ch::recv_result<std::unique_ptr<no_default>> r(std::in_place, std::make_unique<no_default>(3));
  ASSERT_TRUE(r);
  std::unique_ptr<no_default> p = *std::move(r);
  EXPECT_EQ(p->value, 3);
  ch::recv_result<no_default> q(std::in_place, 4);
  EXPECT_EQ(q->value, 4);
  std::optional<no_default> o = std::move(q).as_optional();
  EXPECT_EQ(o->value, 4);
}

TEST(channel_result, send_result_success_holds_nothing) {
  ch::send_result<std::unique_ptr<int>> r;
  EXPECT_TRUE(r);
  EXPECT_TRUE(r.ok());
  EXPECT_FALSE(r.has_value());
  EXPECT_EQ(r.status(), ch::status::ok);
}

TEST(channel_result, send_result_failure_hands_the_value_back) {
  ch::send_result<std::unique_ptr<int>> r(ch::status::closed, std::make_unique<int>(9));
  EXPECT_FALSE(r);
  EXPECT_TRUE(r.is_closed());
  ASSERT_TRUE(r.has_value());
  std::unique_ptr<int> back = std::move(r).value();
  EXPECT_EQ(*back, 9);
  EXPECT_TRUE(ch::send_result<int>(ch::status::full, 1).is_full());
  EXPECT_TRUE(ch::send_result<int>(ch::status::timed_out, 1).is_timed_out());
}

#if ROUSE_DEBUG_CHECKS && !defined(ROUSE_SANITIZER_thread)
TEST(channel_result_death, dereferencing_an_empty_result_is_diagnosed) {
  ch::recv_result<int> r(ch::status::closed);
  EXPECT_DEATH((void)*r, "recv_result: misuse");
}
TEST(channel_result_death, value_of_a_successful_send_is_diagnosed) {
  ch::send_result<int> r;
  EXPECT_DEATH((void)r.value(), "send_result: misuse");
}
#endif

}  // namespace

namespace {
struct not_assignable {
  explicit not_assignable(int v) : value(v) {}
  not_assignable(not_assignable&&) noexcept = default;
  not_assignable& operator=(not_assignable&&) = delete;
  int value;
};

TEST(channel_result, results_are_assignable_when_the_value_type_is_not) {
  ch::recv_result<not_assignable> r(ch::status::empty);
  r = ch::recv_result<not_assignable>(std::in_place, 3);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->value, 3);
  r = ch::recv_result<not_assignable>(ch::status::closed);
  EXPECT_TRUE(r.is_closed());
  EXPECT_FALSE(r.has_value());
  ch::send_result<not_assignable> s(ch::status::full, not_assignable(4));
  s = ch::send_result<not_assignable>(ch::status::timed_out, not_assignable(5));
  EXPECT_EQ(s.value().value, 5);
  s = ch::send_result<not_assignable>();
  EXPECT_TRUE(s);
  ch::recv_result<int> a(std::in_place, 1), b(ch::status::empty);
  b = a;
  EXPECT_EQ(*b, 1);
}
}  // namespace
}  // namespace channel_result_test
