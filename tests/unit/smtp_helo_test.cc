// Tests for the RFC 5321 §4.1.1.1 / §4.1.4 EHLO/HELO argument check (smtp/proto/helo.h).
#include "smtp/proto/helo.h"

#include <gtest/gtest.h>

#include <string>

namespace postern::smtp {
namespace {

struct HeloCase {
  const char* name;
  std::string arg;
  bool ok;
};

const HeloCase kHeloCases[] = {
    // What real clients send.
    {"fqdn", "mail.example.com", true},
    {"bare_hostname", "localhost", true},
    {"single_label", "mybox", true},
    {"digits_and_hyphen", "host-1.example.com", true},
    {"upper_case", "MAIL.Example.COM", true},
    {"underscore_windows_name", "DESKTOP_4F2.corp.example", true},
    {"ipv4_literal", "[192.0.2.1]", true},
    {"ipv6_literal", "[IPv6:2001:db8::1]", true},
    {"ipv6_literal_lower_tag", "[ipv6:::1]", true},
    {"label_63", std::string(63, 'a') + ".example", true},
    {"total_255", std::string(63, 'a') + "." + std::string(63, 'b') + "." + std::string(63, 'c') + "." +
                      std::string(63, 'd'),
     true},
    // Forgeries and garbage.
    {"forged_received_tail", "x.example by mail.victim.test; Mon, 1 Jan 2024 00:00:00 +0000", false},
    {"semicolon", "x.example;date", false},
    {"parentheses", "(spoofed)", false},
    {"second_word", "example.com extra", false},
    {"tab", "example.com\textra", false},
    {"empty", "", false},
    {"trailing_dot", "example.com.", false},
    {"leading_dot", ".example.com", false},
    {"double_dot", "a..example.com", false},
    {"hyphen_first", "-a.example.com", false},
    {"hyphen_last", "a-.example.com", false},
    {"label_64", std::string(64, 'a') + ".example", false},
    {"total_256", std::string(63, 'a') + "." + std::string(63, 'b') + "." + std::string(63, 'c') + "." +
                      std::string(64, 'd'),
     false},
    {"utf8", "b\xc3\xbc" "cher.example", false},
    {"invalid_utf8", "a\xff.example", false},
    {"at_sign", "user@example.com", false},
    {"angle_brackets", "<example.com>", false},
    {"bad_ipv4_literal", "[192.0.2.256]", false},
    {"unclosed_literal", "[192.0.2.1", false},
    {"literal_with_tail", "[192.0.2.1]x", false},
    {"general_literal_tag", "[x400:abc]", false},
    {"bare_ip_no_brackets_ok_as_name", "192.0.2.1", true},
    {"crlf", "a\r\nb", false},
    {"nul", std::string("a\0b", 3), false},
};

class HeloTableTest : public ::testing::TestWithParam<HeloCase> {};

TEST_P(HeloTableTest, Validates) {
  const HeloCase& c = GetParam();
  std::string_view why = heloArgumentError(c.arg);
  EXPECT_EQ(why.empty(), c.ok) << "reason: " << why;
}

INSTANTIATE_TEST_SUITE_P(Cases, HeloTableTest, ::testing::ValuesIn(kHeloCases),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(HeloReason, NamesTheProblem) {
  EXPECT_EQ(heloArgumentError("a b"), "only one host name or address literal is allowed");
  EXPECT_EQ(heloArgumentError("a;b"), "invalid character in host name");
  EXPECT_EQ(heloArgumentError("[1.2.3]"), "invalid address literal");
  EXPECT_EQ(heloArgumentError("a..b"), "empty label in host name");
}

}  // namespace
}  // namespace postern::smtp
