// Tests for the reply builder (smtp/proto/reply.h): RFC 5321 §4.2, RFC 2034 §4.
#include "smtp/proto/reply.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace postern::smtp {
namespace {

struct ReplyCase {
  const char* name;
  int code;
  std::string enhanced;
  std::string text;
  std::string expected;
};

const ReplyCase kReplies[] = {
    {"simple", 250, "2.1.0", "Ok", "250 2.1.0 Ok\r\n"},
    {"no_enhanced", 220, "", "mail.example.com ESMTP Postern", "220 mail.example.com ESMTP Postern\r\n"},
    {"multi_line", 250, "2.0.0", "first\nsecond\nlast", "250-2.0.0 first\r\n250-2.0.0 second\r\n250 2.0.0 last\r\n"},
    {"multi_line_crlf", 550, "5.7.1", "a\r\nb", "550-5.7.1 a\r\n550 5.7.1 b\r\n"},
    {"trailing_newline_ignored", 250, "2.0.0", "one\n", "250 2.0.0 one\r\n"},
    {"empty_line_inside", 214, "2.0.0", "a\n\nb", "214-2.0.0 a\r\n214-2.0.0\r\n214 2.0.0 b\r\n"},
    {"empty_text_334", 334, "", "", "334 \r\n"},
    {"empty_text_enhanced", 250, "2.0.0", "", "250 2.0.0\r\n"},
    {"challenge", 334, "", "VXNlcm5hbWU6", "334 VXNlcm5hbWU6\r\n"},
    {"bare_cr_neutralised", 501, "5.1.3", "<a\rRCPT>", "501 5.1.3 <a?RCPT>\r\n"},
    {"nul_and_del", 500, "5.5.2", std::string("x\0y\x7f", 4), "500 5.5.2 x?y?\r\n"},
    {"tab_kept", 250, "", "a\tb", "250 a\tb\r\n"},
    {"utf8_kept", 553, "5.6.7", "<\xc3\xbc@x>", "553 5.6.7 <\xc3\xbc@x>\r\n"},
};

class ReplyTest : public ::testing::TestWithParam<ReplyCase> {};

TEST_P(ReplyTest, Builds) {
  const ReplyCase& c = GetParam();
  std::string out;
  appendReply(out, c.code, c.enhanced, c.text);
  EXPECT_EQ(out, c.expected);
}

INSTANTIATE_TEST_SUITE_P(Table, ReplyTest, ::testing::ValuesIn(kReplies),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(Reply, Appends) {
  std::string out = "250 2.1.0 Ok\r\n";
  appendReply(out, 250, "2.1.5", "Ok");
  EXPECT_EQ(out, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n");
}

TEST(Reply, Lines) {
  std::vector<std::string_view> lines = {"mail.example.com Hello", "PIPELINING", "SIZE 10485760", "8BITMIME"};
  std::string out;
  appendReplyLines(out, 250, "", lines);
  EXPECT_EQ(out, "250-mail.example.com Hello\r\n250-PIPELINING\r\n250-SIZE 10485760\r\n250 8BITMIME\r\n");
}

TEST(Reply, LinesWithEnhanced) {
  std::vector<std::string_view> lines = {"a", "b"};
  std::string out;
  appendReplyLines(out, 451, "4.3.0", lines);
  EXPECT_EQ(out, "451-4.3.0 a\r\n451 4.3.0 b\r\n");
}

TEST(Reply, LinesEmptySpan) {
  std::string out;
  appendReplyLines(out, 250, "2.0.0", {});
  EXPECT_EQ(out, "250 2.0.0\r\n");
}

TEST(Reply, LineElementWithNewlineSplits) {
  std::vector<std::string_view> lines = {"a\nb", "c"};
  std::string out;
  appendReplyLines(out, 250, "", lines);
  EXPECT_EQ(out, "250-a\r\n250-b\r\n250 c\r\n");
}

TEST(Reply, LongLineCutToLimit) {
  std::string out;
  appendReply(out, 550, "5.1.1", std::string(2000, 'x'));
  EXPECT_EQ(out.size(), kMaxReplyLine);
  EXPECT_EQ(out.substr(0, 10), "550 5.1.1 ");
  EXPECT_EQ(out.substr(out.size() - 2), "\r\n");
}

TEST(Reply, CutNeverSplitsUtf8) {
  // 550 + SP + 5.1.1 + SP = 10 bytes of prefix, so 500 bytes of room; 499 ASCII then a
  // 2-byte character that does not fit.
  std::string text = std::string(499, 'x') + "\xc3\xbc" + "tail";
  std::string out;
  appendReply(out, 550, "5.1.1", text);
  EXPECT_EQ(out, "550 5.1.1 " + std::string(499, 'x') + "\r\n");
}

}  // namespace
}  // namespace postern::smtp
