// Tests for the client's reply parser (smtp/client/reply_parser.h): RFC 5321 §4.2 replies,
// RFC 2034/3463 enhanced codes, EHLO keywords, RFC 3461 xtext; every input also split byte
// by byte.
#include "smtp/client/reply_parser.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "smtp/client/client.h"

namespace postern::smtp::client {
namespace {

struct ParseCase {
  const char* name;
  std::string input;
  bool ok;                          // a reply (else an error)
  int code;
  std::string enhanced;
  std::vector<std::string> lines;
  size_t consumed;                  // bytes used by the first reply (ok) or the error
};

const ParseCase kCases[] = {
    {"single", "250 OK\r\n", true, 250, "", {"OK"}, 8},
    {"enhanced", "550 5.1.1 no such user\r\n", true, 550, "5.1.1", {"5.1.1 no such user"}, 24},
    {"enhanced_three_digits", "451 4.123.456 x\r\n", true, 451, "4.123.456", {"4.123.456 x"}, 17},
    {"enhanced_only", "250 2.0.0\r\n", true, 250, "2.0.0", {"2.0.0"}, 11},
    {"enhanced_wrong_class", "550 4.1.1 odd\r\n", true, 550, "", {"4.1.1 odd"}, 15},
    {"enhanced_too_long", "550 5.1234.1 x\r\n", true, 550, "", {"5.1234.1 x"}, 16},
    {"enhanced_glued", "550 5.1.1x\r\n", true, 550, "", {"5.1.1x"}, 12},
    {"not_enhanced_version", "220 host ESMTP 1.2.3\r\n", true, 220, "", {"host ESMTP 1.2.3"}, 22},
    {"multi", "250-mx.example.org\r\n250-PIPELINING\r\n250 SIZE 100\r\n", true, 250, "",
     {"mx.example.org", "PIPELINING", "SIZE 100"}, 50},
    {"multi_enhanced_from_first", "550-5.7.1 a\r\n550 5.7.1 b\r\n", true, 550, "5.7.1", {"5.7.1 a", "5.7.1 b"}, 26},
    {"bare_code", "250\r\n", true, 250, "", {""}, 5},
    {"bare_code_continued", "250-\r\n250 x\r\n", true, 250, "", {"", "x"}, 13},
    {"bare_lf", "250-a\n250 b\n", true, 250, "", {"a", "b"}, 12},
    {"rest_left", "250 a\r\n354 go\r\n", true, 250, "", {"a"}, 7},
    {"mixed_codes", "250-a\r\n251 b\r\n", false, 0, "", {}, 14},
    {"garbage", "hello\r\n", false, 0, "", {}, 7},
    {"bad_separator", "250+x\r\n", false, 0, "", {}, 7},
    {"code_too_low", "199 x\r\n", false, 0, "", {}, 7},
    {"code_too_high", "600 x\r\n", false, 0, "", {}, 7},
    {"short", "25\r\n", false, 0, "", {}, 4},
    {"tls_record", std::string("\x16\x03\x01\x00\x05hello\n", 11), false, 0, "", {}, 11},
    {"too_long", "250 " + std::string(kMaxClientReplyLine, 'x') + "\r\n", false, 0, "", {},
     kMaxClientReplyLine + 1},
    {"longest_line", "250 " + std::string(kMaxClientReplyLine - 6, 'x') + "\r\n", true, 250, "",
     {std::string(kMaxClientReplyLine - 6, 'x')}, kMaxClientReplyLine},
};

std::string manyLines(size_t n) {
  std::string s;
  for (size_t i = 0; i + 1 < n; ++i) s += "250-x\r\n";
  return s + "250 x\r\n";
}

class ReplyParseTest : public ::testing::TestWithParam<ParseCase> {};

void expectCase(const ParseCase& c, const ReplyParser::Step& s, size_t consumed) {
  if (c.ok) {
    ASSERT_EQ(s.state, ReplyParser::State::kDone) << s.error;
    EXPECT_EQ(s.reply.code, c.code);
    EXPECT_EQ(s.reply.enhanced, c.enhanced);
    EXPECT_EQ(s.reply.lines, c.lines);
  } else {
    EXPECT_EQ(s.state, ReplyParser::State::kError);
    EXPECT_FALSE(s.error.empty());
  }
  EXPECT_EQ(consumed, c.consumed);
}

TEST_P(ReplyParseTest, Whole) {
  const ParseCase& c = GetParam();
  ReplyParser p;
  ReplyParser::Step s = p.feed(c.input);
  expectCase(c, s, s.consumed);
}

TEST_P(ReplyParseTest, ByteByByte) {
  const ParseCase& c = GetParam();
  ReplyParser p;
  ReplyParser::Step s;
  size_t total = 0;
  for (size_t i = 0; i < c.input.size(); ++i) {
    s = p.feed(std::string_view(c.input).substr(i, 1));
    total += s.consumed;
    if (s.state != ReplyParser::State::kNeedMore) break;
    EXPECT_EQ(s.consumed, 1u);
  }
  expectCase(c, s, total);
}

INSTANTIATE_TEST_SUITE_P(Table, ReplyParseTest, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(ReplyParser, NeedMoreKeepsPartial) {
  ReplyParser p;
  auto s = p.feed("250-mx\r\n25");
  EXPECT_EQ(s.state, ReplyParser::State::kNeedMore);
  EXPECT_EQ(s.consumed, 10u);
  s = p.feed("0 OK\r\n");
  ASSERT_EQ(s.state, ReplyParser::State::kDone);
  EXPECT_EQ(s.consumed, 6u);
  EXPECT_EQ(s.reply.lines, (std::vector<std::string>{"mx", "OK"}));
}

TEST(ReplyParser, PipelinedRepliesOneAfterAnother) {
  const std::string in = "250 2.1.0 ok\r\n550 5.1.1 no\r\n451-4.3.0 later\r\n451 4.3.0 later\r\n354 go\r\n";
  ReplyParser p;
  std::string_view rest = in;
  std::vector<int> codes;
  while (!rest.empty()) {
    auto s = p.feed(rest);
    ASSERT_EQ(s.state, ReplyParser::State::kDone);
    codes.push_back(s.reply.code);
    rest.remove_prefix(s.consumed);
  }
  EXPECT_EQ(codes, (std::vector<int>{250, 550, 451, 354}));
}

TEST(ReplyParser, LineLimits) {
  ReplyParser p;
  auto s = p.feed(manyLines(kMaxClientReplyLines));
  EXPECT_EQ(s.state, ReplyParser::State::kDone);
  EXPECT_EQ(s.reply.lines.size(), kMaxClientReplyLines);
  ReplyParser q;
  s = q.feed(manyLines(kMaxClientReplyLines + 1));
  EXPECT_EQ(s.state, ReplyParser::State::kError);
  // A long line arriving in pieces is refused once it passes the limit.
  ReplyParser r;
  std::string chunk(1000, 'x');
  s = r.feed("250 ");
  for (int i = 0; i < 5 && s.state == ReplyParser::State::kNeedMore; ++i) s = r.feed(chunk);
  EXPECT_EQ(s.state, ReplyParser::State::kError);
}

TEST(Reply, Text) {
  Reply r;
  r.code = 550;
  r.lines = {"5.1.1 no such user"};
  EXPECT_EQ(r.text(), "550 5.1.1 no such user");
  r.lines = {"5.7.1 first", "5.7.1 second"};
  EXPECT_EQ(r.text(), "550 5.7.1 first / 5.7.1 second");
  r.lines = {""};
  EXPECT_EQ(r.text(), "550");
  r.lines.clear();
  EXPECT_EQ(r.text(), "550");
  EXPECT_TRUE(r.permanent());
  r.code = 451;
  EXPECT_TRUE(r.transient());
  r.code = 250;
  EXPECT_TRUE(r.positive());
}

Reply ehlo(std::vector<std::string> lines, int code = 250) {
  Reply r;
  r.code = code;
  r.lines = std::move(lines);
  return r;
}

TEST(ParseEhlo, Keywords) {
  Capabilities c = parseEhlo(ehlo({"mx.example.org Hello", "pipelining", "SIZE 10485760", "8BITMIME", "STARTTLS",
                                   "SmtpUtf8", "CHUNKING", "DSN", "ENHANCEDSTATUSCODES", "AUTH PLAIN login XOAUTH2"}));
  EXPECT_TRUE(c.esmtp);
  EXPECT_TRUE(c.pipelining);
  EXPECT_TRUE(c.starttls);
  EXPECT_TRUE(c.eightbitmime);
  EXPECT_TRUE(c.smtputf8);
  EXPECT_TRUE(c.chunking);
  EXPECT_TRUE(c.dsn);
  EXPECT_TRUE(c.enhanced_status);
  ASSERT_TRUE(c.size);
  EXPECT_EQ(*c.size, 10485760u);
  EXPECT_EQ(c.auth, (std::vector<std::string>{"PLAIN", "LOGIN", "XOAUTH2"}));
}

TEST(ParseEhlo, FirstLineIsNotAKeyword) {
  Capabilities c = parseEhlo(ehlo({"PIPELINING"}));
  EXPECT_TRUE(c.esmtp);
  EXPECT_FALSE(c.pipelining);
}

TEST(ParseEhlo, SizeForms) {
  EXPECT_EQ(parseEhlo(ehlo({"x", "SIZE"})).size, std::optional<uint64_t>(0));
  EXPECT_EQ(parseEhlo(ehlo({"x", "SIZE 0"})).size, std::optional<uint64_t>(0));
  EXPECT_EQ(parseEhlo(ehlo({"x", "SIZE 52428800"})).size, std::optional<uint64_t>(52428800));
  EXPECT_EQ(parseEhlo(ehlo({"x", "SIZE junk"})).size, std::optional<uint64_t>(0));
  EXPECT_EQ(parseEhlo(ehlo({"x", "SIZE 99999999999999999999999"})).size, std::optional<uint64_t>(0));
  EXPECT_FALSE(parseEhlo(ehlo({"x", "SIZED 5"})).size);
  EXPECT_FALSE(parseEhlo(ehlo({"x"})).size);
}

TEST(ParseEhlo, OldAuthForm) {
  Capabilities c = parseEhlo(ehlo({"x", "AUTH=PLAIN LOGIN", "AUTH PLAIN CRAM-MD5"}));
  EXPECT_EQ(c.auth, (std::vector<std::string>{"PLAIN", "LOGIN", "CRAM-MD5"}));
}

TEST(ParseEhlo, NotEsmtp) {
  Capabilities c = parseEhlo(ehlo({"x", "PIPELINING"}, 502));
  EXPECT_FALSE(c.esmtp);
  EXPECT_FALSE(c.pipelining);
}

struct XtextCase {
  std::string in, out;
};

TEST(Xtext, Encodes) {
  const XtextCase cases[] = {
      {"", ""},
      {"plain", "plain"},
      {"a+b=c", "a+2Bb+3Dc"},
      {"sp ace", "sp+20ace"},
      {"tab\tcr\rlf\n", "tab+09cr+0Dlf+0A"},
      {"~!", "~!"},
      {"\x7f\x80\xff", "+7F+80+FF"},
      {"<id@host>", "<id@host>"},
  };
  for (const auto& c : cases) EXPECT_EQ(xtext(c.in), c.out) << c.in;
}

TEST(DotStuff, Table) {
  const XtextCase cases[] = {
      {"", ".\r\n"},
      {"a\r\n", "a\r\n.\r\n"},
      {"a", "a\r\n.\r\n"},
      {".\r\n", "..\r\n.\r\n"},
      {"a\r\n.b\r\n..c\r\n", "a\r\n..b\r\n...c\r\n.\r\n"},
      {"a.\r\n.", "a.\r\n..\r\n.\r\n"},
      // Bare LF and CR become CRLF, so no receiver can see an end of data we did not mean.
      {"a\n.\nb", "a\r\n..\r\nb\r\n.\r\n"},
      {"a\r.\r\n", "a\r\n..\r\n.\r\n"},
      {"a\r\n\r\n", "a\r\n\r\n.\r\n"},
  };
  for (const auto& c : cases) EXPECT_EQ(dotStuff(c.in), c.out) << c.in;
}

}  // namespace
}  // namespace postern::smtp::client
