// Tests for RFC 5321 §4.1.2 / §4.1.3 mailbox syntax with RFC 6531 UTF-8 (smtp/proto/address.h).
#include "smtp/proto/address.h"

#include <gtest/gtest.h>

#include <string>

namespace postern::smtp {
namespace {

struct MailboxCase {
  std::string input;
  bool valid;
  std::string local;  // when valid
  std::string domain;
  bool quoted = false;
  bool literal = false;
  bool utf8 = false;
};

const MailboxCase kMailboxes[] = {
    {"user@example.com", true, "user", "example.com"},
    {"first.last@example.com", true, "first.last", "example.com"},
    {"a+tag@sub.example.co.uk", true, "a+tag", "sub.example.co.uk"},
    {"!#$%&'*+-/=?^_`{|}~@x.org", true, "!#$%&'*+-/=?^_`{|}~", "x.org"},
    {"u@localhost", true, "u", "localhost"},
    {"u@123.example", true, "u", "123.example"},
    {"u@xn--bcher-kva.example", true, "u", "xn--bcher-kva.example"},
    {"\"a b\"@x.org", true, "\"a b\"", "x.org", true},
    {"\"\"@x.org", true, "\"\"", "x.org", true},
    {"\"a\\\"b\"@x.org", true, "\"a\\\"b\"", "x.org", true},
    {"\"a@b\"@x.org", true, "\"a@b\"", "x.org", true},
    {"u@[192.0.2.1]", true, "u", "[192.0.2.1]", false, true},
    {"u@[IPv6:::1]", true, "u", "[IPv6:::1]", false, true},
    {"u@[ipv6:2001:db8::1]", true, "u", "[ipv6:2001:db8::1]", false, true},
    {"u@[IPv6:2001:db8:0:0:0:0:0:1]", true, "u", "[IPv6:2001:db8:0:0:0:0:0:1]", false, true},
    {"u@[IPv6:::ffff:192.0.2.1]", true, "u", "[IPv6:::ffff:192.0.2.1]", false, true},
    {"u@[IPv6:1::]", true, "u", "[IPv6:1::]", false, true},
    {"\xc3\xbc"
     "ser@example.com",
     true,
     "\xc3\xbc"
     "ser",
     "example.com", false, false, true},
    {"u@b\xc3\xbc"
     "cher.example",
     true, "u",
     "b\xc3\xbc"
     "cher.example",
     false, false, true},
    {"\"\xc3\xbc\"@x.org", true, "\"\xc3\xbc\"", "x.org", true, false, true},
    // invalid
    {"", false, "", ""},
    {"user", false, "", ""},
    {"@example.com", false, "", ""},
    {"user@", false, "", ""},
    {"a@b@c.d", false, "", ""},
    {".user@x.org", false, "", ""},
    {"user.@x.org", false, "", ""},
    {"us..er@x.org", false, "", ""},
    {"us er@x.org", false, "", ""},
    {"us(er)@x.org", false, "", ""},
    {"user@-x.org", false, "", ""},
    {"user@x-.org", false, "", ""},
    {"user@x..org", false, "", ""},
    {"user@.x.org", false, "", ""},
    {"user@x.org.", false, "", ""},
    {"user@x_y.org", false, "", ""},
    {"user@" + std::string(64, 'a') + ".org", false, "", ""},
    {"\"a\"b@x.org", false, "", ""},
    {"\"unterminated@x.org", false, "", ""},
    {"\"a\\\"@x.org", false, "", ""},
    {"\"a\tb\"@x.org", false, "", ""},
    {"u@[192.0.2.256]", false, "", ""},
    {"u@[192.0.2]", false, "", ""},
    {"u@[192.0.2.1.5]", false, "", ""},
    {"u@[1234.0.2.1]", false, "", ""},
    {"u@192.0.2.1]", false, "", ""},
    {"u@[192.0.2.1", false, "", ""},
    {"u@[IPv6:1:2:3:4:5:6:7:8:9]", false, "", ""},
    {"u@[IPv6:1:2:3:4:5:6:7]", false, "", ""},
    {"u@[IPv6:1::2::3]", false, "", ""},
    {"u@[IPv6:12345::1]", false, "", ""},
    {"u@[IPv6:g::1]", false, "", ""},
    {"u@[IPv6::1]", false, "", ""},
    {"u@[IPv6:1:]", false, "", ""},
    {"u@[IPv6:]", false, "", ""},
    {"u@[IPv6:1:2:3:4:5:6:7:192.0.2.1]", false, "", ""},
    {"u@[x400:stuff]", false, "", ""},
    {"u@[]", false, "", ""},
    {"\xff@x.org", false, "", ""},              // not UTF-8
    {"\xc0\xaf@x.org", false, "", ""},          // overlong
    {"\xed\xa0\x80@x.org", false, "", ""},      // surrogate
    {"\xf4\x90\x80\x80@x.org", false, "", ""},  // > U+10FFFF
    {"\xc3@x.org", false, "", ""},              // truncated
    {"u@x\x80.org", false, "", ""},
};

class MailboxTest : public ::testing::TestWithParam<MailboxCase> {};

TEST_P(MailboxTest, Parses) {
  const MailboxCase& c = GetParam();
  auto m = parseMailbox(c.input);
  ASSERT_EQ(m.has_value(), c.valid) << c.input;
  if (!m) return;
  EXPECT_EQ(m->local_part, c.local);
  EXPECT_EQ(m->domain, c.domain);
  EXPECT_EQ(m->quoted_local, c.quoted);
  EXPECT_EQ(m->address_literal, c.literal);
  EXPECT_EQ(m->utf8, c.utf8);
}

INSTANTIATE_TEST_SUITE_P(Table, MailboxTest, ::testing::ValuesIn(kMailboxes));

TEST(Mailbox, Utf8OnlyWhenAllowed) {
  EXPECT_TRUE(parseMailbox("\xc3\xbc@x.org", true));
  EXPECT_FALSE(parseMailbox("\xc3\xbc@x.org", false));
  EXPECT_FALSE(parseMailbox("u@\xc3\xbc.org", false));
  EXPECT_FALSE(parseMailbox("\"\xc3\xbc\"@x.org", false));
  EXPECT_TRUE(parseMailbox("u@x.org", false));
}

TEST(Domain, Validity) {
  EXPECT_TRUE(isValidDomain("example.com"));
  EXPECT_TRUE(isValidDomain("a"));
  EXPECT_TRUE(isValidDomain("a-b.c"));
  EXPECT_TRUE(isValidDomain(std::string(63, 'a') + ".com"));
  EXPECT_FALSE(isValidDomain(std::string(64, 'a') + ".com"));
  std::string long_domain;
  for (int i = 0; i < 4; ++i) long_domain += std::string(62, 'a') + ".";
  long_domain += "abc";  // 4*63 + 3 = 255
  EXPECT_EQ(long_domain.size(), 255u);
  EXPECT_TRUE(isValidDomain(long_domain));
  EXPECT_FALSE(isValidDomain(long_domain + "d"));
  EXPECT_TRUE(isValidDomain("[192.0.2.1]"));
  EXPECT_TRUE(isValidDomain("[IPv6:::1]"));
  EXPECT_FALSE(isValidDomain(""));
  EXPECT_FALSE(isValidDomain("."));
  EXPECT_FALSE(isValidDomain("a b"));
  EXPECT_FALSE(
      isValidDomain("b\xc3\xbc"
                    "cher.example",
                    false));
  EXPECT_TRUE(
      isValidDomain("b\xc3\xbc"
                    "cher.example",
                    true));
}

TEST(DotString, Atoms) {
  EXPECT_TRUE(isDotString("a.b.c"));
  EXPECT_FALSE(isDotString(""));
  EXPECT_FALSE(isDotString("a..b"));
  EXPECT_FALSE(isDotString(".a"));
  EXPECT_FALSE(isDotString("a."));
  EXPECT_FALSE(isDotString("a\"b"));
}

TEST(Utf8, Validity) {
  EXPECT_TRUE(isValidUtf8(""));
  EXPECT_TRUE(isValidUtf8("plain"));
  EXPECT_TRUE(isValidUtf8("\xe7\x94\xa8\xf0\x9f\x93\xa7"));
  EXPECT_FALSE(isValidUtf8("\xe7\x94"));
  EXPECT_FALSE(isValidUtf8("\x80"));
  EXPECT_TRUE(hasNonAscii("a\xc3\xbc"));
  EXPECT_FALSE(hasNonAscii("abc~\x7f"));
}

TEST(Canonical, Forms) {
  auto canon = [](std::string_view s) { return canonicalAddress(*parseMailbox(s)); };
  EXPECT_EQ(canon("User@Example.COM"), "User@example.com");
  EXPECT_EQ(canon("\"user\"@x.org"), "user@x.org");
  EXPECT_EQ(canon("\"first.last\"@x.org"), "first.last@x.org");
  EXPECT_EQ(canon("\"us\\er\"@x.org"), "user@x.org");
  EXPECT_EQ(canon("\"a b\"@X.org"), "\"a b\"@x.org");
  EXPECT_EQ(canon("\"a..b\"@x.org"), "\"a..b\"@x.org");
  EXPECT_EQ(canon("\"\"@x.org"), "\"\"@x.org");
  EXPECT_EQ(canon("u@[IPv6:2001:DB8::1]"), "u@[ipv6:2001:db8::1]");
  EXPECT_EQ(canon("\xc3\x9c@B\xc3\x9c.org"), "\xc3\x9c@b\xc3\x9c.org");  // only ASCII is lowercased
}

TEST(Canonical, UnquotedLocalPart) {
  auto local = [](std::string_view s) { return unquotedLocalPart(*parseMailbox(s)); };
  EXPECT_EQ(local("User@x.org"), "User");
  EXPECT_EQ(local("a/b@x.org"), "a/b");
  EXPECT_EQ(local("\"user\"@x.org"), "user");
  EXPECT_EQ(local("\"..\"@x.org"), "..");
  EXPECT_EQ(local("\"../../x\"@x.org"), "../../x");
  EXPECT_EQ(local("\"a\\\"b\"@x.org"), "a\"b");
  EXPECT_EQ(local("\"a\\\\b\"@x.org"), "a\\b");
  EXPECT_EQ(local("\"\"@x.org"), "");
}

}  // namespace
}  // namespace postern::smtp
