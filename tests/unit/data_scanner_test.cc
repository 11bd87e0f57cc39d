// Tests for DATA and BDAT text framing (smtp/proto/data_scanner.h): RFC 5321 §4.1.1.4,
// §4.5.2, §2.3.8, §4.5.3.1.6; RFC 3030 §2; and the SMTP smuggling variants.
#include "smtp/proto/data_scanner.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace postern::smtp {
namespace {

using Mode = BareNewlines;

struct Scan {
  std::string out;
  size_t consumed = 0;
  bool done = false;
  bool bare = false;
  size_t bare_count = 0;
  bool too_long = false;
  bool nul = false;
};

// Feeds `pieces` one after the other, stopping at done, like the session does.
Scan scan(const std::vector<std::string>& pieces, Mode mode, size_t max_line = kMaxTextLine) {
  DataScanner s(mode, max_line);
  Scan r;
  for (const std::string& p : pieces) {
    auto res = s.feed(p, r.out);
    EXPECT_LE(res.consumed, p.size());
    if (!res.done) {
      EXPECT_EQ(res.consumed, p.size());
    }
    r.consumed += res.consumed;
    if (res.done) {
      r.done = true;
      break;
    }
  }
  r.bare = s.bareNewline();
  r.bare_count = s.bareNewlineCount();
  r.too_long = s.lineTooLong();
  r.nul = s.sawNul();
  EXPECT_EQ(s.bytesOut(), r.out.size());
  EXPECT_EQ(s.messageSize(), r.out.size());
  EXPECT_EQ(s.done(), r.done);
  return r;
}

Scan scan1(const std::string& in, Mode mode, size_t max_line = kMaxTextLine) {
  return scan({in}, mode, max_line);
}

// ---- Ordinary messages, dot-stuffing, terminator -------------------------------------------

struct DataCase {
  const char* name;
  std::string in;
  std::string out;
  bool done;
  size_t consumed;  // SIZE_MAX: all of `in`
};

const DataCase kDataCases[] = {
    {"empty_message", ".\r\n", "", true, 3},
    {"empty_message_then_command", ".\r\nQUIT\r\n", "", true, 3},
    {"simple", "Subject: x\r\n\r\nbody\r\n.\r\n", "Subject: x\r\n\r\nbody\r\n", true, SIZE_MAX},
    {"stuffed_first_line", "..x\r\n.\r\n", ".x\r\n", true, SIZE_MAX},
    {"stuffed_dot_line", "a\r\n..\r\n.\r\n", "a\r\n.\r\n", true, SIZE_MAX},
    {"stuffed_two_dots", "...\r\n.\r\n", "..\r\n", true, SIZE_MAX},
    {"unstuffed_leading_dot_removed", ".x\r\n.\r\n", "x\r\n", true, SIZE_MAX},  // §4.5.2 receiver rule
    {"dot_inside_line", "a.b\r\n.\r\n", "a.b\r\n", true, SIZE_MAX},
    {"space_dot", " .\r\n.\r\n", " .\r\n", true, SIZE_MAX},
    {"empty_line_then_end", "\r\n.\r\n", "\r\n", true, SIZE_MAX},
    {"no_crlf_before_dot", "abc.\r\n", "abc.\r\n", false, SIZE_MAX},
    {"dot_space_is_text", ". \r\n.\r\n", " \r\n", true, SIZE_MAX},
    {"dot_dot_cr_lf", "x\r\n..\r\n", "x\r\n.\r\n", false, SIZE_MAX},
    {"unfinished", "line one\r\nline two", "line one\r\nline two", false, SIZE_MAX},
    {"held_cr_not_emitted", "line\r", "line", false, SIZE_MAX},
    {"held_dot_not_emitted", "line\r\n.", "line\r\n", false, SIZE_MAX},
    {"held_dot_cr_not_emitted", "line\r\n.\r", "line\r\n", false, SIZE_MAX},
    {"bytes_after_end_untouched", "a\r\n.\r\nMAIL FROM:<x@y>\r\n.\r\n", "a\r\n", true, 6},
    {"nul_passes", std::string("a\0b\r\n.\r\n", 8), std::string("a\0b\r\n", 5), true, SIZE_MAX},
    {"binary_8bit", "\xff\xfe\x80\r\n.\r\n", "\xff\xfe\x80\r\n", true, SIZE_MAX},
    {"crcrlf_dot_crlf_is_a_real_end", "a\r\r\n.\r\n", "a\r\n\r\n", true, SIZE_MAX},
    {"lf_crlf_dot_crlf_is_a_real_end", "a\n\r\n.\r\n", "a\r\n\r\n", true, SIZE_MAX},
};

class DataTableTest : public ::testing::TestWithParam<std::tuple<DataCase, Mode>> {};

TEST_P(DataTableTest, OneFeed) {
  const auto& [c, mode] = GetParam();
  Scan r = scan1(c.in, mode);
  EXPECT_EQ(r.out, c.out);
  EXPECT_EQ(r.done, c.done);
  EXPECT_EQ(r.consumed, c.consumed == SIZE_MAX ? c.in.size() : c.consumed);
}

// Every split into two feeds gives the same result as one feed.
TEST_P(DataTableTest, EverySplit) {
  const auto& [c, mode] = GetParam();
  Scan whole = scan1(c.in, mode);
  for (size_t k = 0; k <= c.in.size(); ++k) {
    SCOPED_TRACE(k);
    Scan r = scan({c.in.substr(0, k), c.in.substr(k)}, mode);
    EXPECT_EQ(r.out, whole.out);
    EXPECT_EQ(r.done, whole.done);
    EXPECT_EQ(r.consumed, whole.consumed);
    EXPECT_EQ(r.bare_count, whole.bare_count);
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, DataTableTest,
                         ::testing::Combine(::testing::ValuesIn(kDataCases),
                                            ::testing::Values(Mode::kReject, Mode::kNormalize)),
                         [](const auto& info) {
                           return std::string(std::get<0>(info.param).name) +
                                  (std::get<1>(info.param) == Mode::kReject ? "_reject" : "_normalize");
                         });

TEST(DataScanner, NulFlag) {
  EXPECT_TRUE(scan1(std::string("a\0b\r\n.\r\n", 8), Mode::kReject).nul);
  EXPECT_FALSE(scan1("ab\r\n.\r\n", Mode::kReject).nul);
  // A NUL after the terminator belongs to the next command, not to the message.
  EXPECT_FALSE(scan1(std::string(".\r\n\0", 4), Mode::kReject).nul);
}

// ---- Terminator split at every byte offset (parameterised) ---------------------------------

const std::string kMessage =
    "From: a@b.example\r\nSubject: split\r\n\r\n..leading dot\r\nmiddle . dot\r\n.\r\nQUIT\r\n";
const std::string kMessageOut = "From: a@b.example\r\nSubject: split\r\n\r\n.leading dot\r\nmiddle . dot\r\n";
const size_t kMessageEnd = kMessage.size() - 6;  // "QUIT\r\n" stays

class TerminatorSplitTest : public ::testing::TestWithParam<size_t> {};

TEST_P(TerminatorSplitTest, TwoFeeds) {
  size_t k = GetParam();
  for (Mode mode : {Mode::kReject, Mode::kNormalize}) {
    Scan r = scan({kMessage.substr(0, k), kMessage.substr(k)}, mode);
    EXPECT_TRUE(r.done);
    EXPECT_EQ(r.consumed, kMessageEnd);
    EXPECT_EQ(r.out, kMessageOut);
    EXPECT_FALSE(r.bare);
  }
}

INSTANTIATE_TEST_SUITE_P(Offsets, TerminatorSplitTest, ::testing::Range<size_t>(0, kMessage.size() + 1));

TEST(DataScanner, ByteByByte) {
  std::vector<std::string> pieces;
  for (char c : kMessage) pieces.emplace_back(1, c);
  Scan r = scan(pieces, Mode::kReject);
  EXPECT_TRUE(r.done);
  EXPECT_EQ(r.consumed, kMessageEnd);
  EXPECT_EQ(r.out, kMessageOut);
}

TEST(DataScanner, EveryThreeWaySplit) {
  const std::string& m = kMessage;
  Scan whole = scan1(m, Mode::kNormalize);
  for (size_t i = 0; i <= m.size(); ++i) {
    for (size_t j = i; j <= m.size(); ++j) {
      Scan r = scan({m.substr(0, i), m.substr(i, j - i), m.substr(j)}, Mode::kNormalize);
      ASSERT_EQ(r.out, whole.out) << i << "," << j;
      ASSERT_EQ(r.consumed, whole.consumed) << i << "," << j;
    }
  }
}

TEST(DataScanner, DoneStaysDone) {
  DataScanner s(Mode::kReject);
  std::string out;
  EXPECT_TRUE(s.feed(".\r\n", out).done);
  auto r = s.feed("more\r\n.\r\n", out);
  EXPECT_TRUE(r.done);
  EXPECT_EQ(r.consumed, 0u);
  EXPECT_TRUE(out.empty());
}

TEST(DataScanner, EmptyFeeds) {
  DataScanner s(Mode::kReject);
  std::string out;
  EXPECT_EQ(s.feed("", out).consumed, 0u);
  EXPECT_FALSE(s.feed("a\r", out).done);
  EXPECT_FALSE(s.feed("", out).done);
  EXPECT_FALSE(s.feed("\n.", out).done);
  EXPECT_FALSE(s.feed("", out).done);
  auto r = s.feed("\r\n", out);
  EXPECT_TRUE(r.done);
  EXPECT_EQ(r.consumed, 2u);
  EXPECT_EQ(out, "a\r\n");
  EXPECT_FALSE(s.bareNewline());
}

TEST(DataScanner, ResetStartsOver) {
  DataScanner s(Mode::kReject, 10);
  s.setSizeLimit(100);
  std::string out;
  s.feed("a\nxxxxxxxxxxxxxxxx\r\n.\r\n", out);
  EXPECT_TRUE(s.done());
  EXPECT_TRUE(s.bareNewline());
  EXPECT_TRUE(s.lineTooLong());
  s.reset();
  out.clear();
  EXPECT_FALSE(s.done());
  EXPECT_FALSE(s.bareNewline());
  EXPECT_FALSE(s.lineTooLong());
  EXPECT_EQ(s.bareNewlineCount(), 0u);
  EXPECT_EQ(s.bytesOut(), 0u);
  auto r = s.feed("..b\r\n.\r\n", out);
  EXPECT_TRUE(r.done);
  EXPECT_EQ(out, ".b\r\n");
}

// ---- Bare CR / LF and the SMTP smuggling variants -----------------------------------------
//
// Each variant sits between "a" and "b\r\n.\r\n"; none of them may end the message. The
// output is the same in both modes: every bare CR/LF becomes CRLF and a dot at the start
// of any line is removed. Only kReject sets bareNewline().

struct BareCase {
  const char* name;
  std::string variant;
  std::string out;  // output for "a" + variant + "b\r\n.\r\n"
  size_t bare_count;
};

const BareCase kBareCases[] = {
    {"lf_dot_lf", "\n.\n", "a\r\n\r\nb\r\n", 2},
    {"lf_dot_crlf", "\n.\r\n", "a\r\n\r\nb\r\n", 1},
    {"cr_dot_cr", "\r.\r", "a\r\n\r\nb\r\n", 2},
    {"crlf_dot_lf", "\r\n.\n", "a\r\n\r\nb\r\n", 1},
    {"crlf_dot_cr", "\r\n.\r", "a\r\n\r\nb\r\n", 1},
    {"lf_dot_cr", "\n.\r", "a\r\n\r\nb\r\n", 2},
    {"cr_dot_lf", "\r.\n", "a\r\n\r\nb\r\n", 2},
    {"cr_dot_crlf", "\r.\r\n", "a\r\n\r\nb\r\n", 1},
    {"crlf_dot_cr_cr_lf", "\r\n.\r\r\n", "a\r\n\r\n\r\nb\r\n", 1},
    {"lf_lf_dot_lf_lf", "\n\n.\n\n", "a\r\n\r\n\r\n\r\nb\r\n", 4},
    {"crlf_dot_nul_crlf", std::string("\r\n.\0\r\n", 6), std::string("a\r\n\0\r\nb\r\n", 9), 0},
    {"crlf_space_dot_crlf", "\r\n .\r\n", "a\r\n .\r\nb\r\n", 0},
    {"bare_lf_only", "\n", "a\r\nb\r\n", 1},
    {"bare_cr_only", "\r", "a\r\nb\r\n", 1},
    {"lf_dotdot_x", "\n..x\r\n", "a\r\n.x\r\nb\r\n", 1},
    {"lf_dot_crlf_x", "\n.\r\nx\r\n", "a\r\n\r\nx\r\nb\r\n", 1},
};

class BareTest : public ::testing::TestWithParam<std::tuple<BareCase, Mode>> {};

TEST_P(BareTest, NeverEndsAndNormalises) {
  const auto& [c, mode] = GetParam();
  const std::string in = "a" + c.variant + "b\r\n.\r\n" + "RSET\r\n";
  const size_t end = in.size() - 6;
  Scan r = scan1(in, mode);
  EXPECT_TRUE(r.done);
  EXPECT_EQ(r.consumed, end);
  EXPECT_EQ(r.out, c.out);
  EXPECT_EQ(r.bare_count, c.bare_count);
  EXPECT_EQ(r.bare, mode == Mode::kReject && c.bare_count > 0);
  for (size_t k = 0; k <= in.size(); ++k) {
    Scan s = scan({in.substr(0, k), in.substr(k)}, mode);
    EXPECT_EQ(s.out, r.out) << k;
    EXPECT_EQ(s.consumed, end) << k;
    EXPECT_EQ(s.bare_count, c.bare_count) << k;
  }
}

// Without the final real terminator the variant alone never ends DATA.
TEST_P(BareTest, VariantAloneDoesNotEnd) {
  const auto& [c, mode] = GetParam();
  const std::string in = "a" + c.variant + "b" + c.variant;
  Scan r = scan1(in, mode);
  EXPECT_FALSE(r.done);
  EXPECT_EQ(r.consumed, in.size());
}

INSTANTIATE_TEST_SUITE_P(Variants, BareTest,
                         ::testing::Combine(::testing::ValuesIn(kBareCases),
                                            ::testing::Values(Mode::kReject, Mode::kNormalize)),
                         [](const auto& info) {
                           return std::string(std::get<0>(info.param).name) +
                                  (std::get<1>(info.param) == Mode::kReject ? "_reject" : "_normalize");
                         });

TEST(DataScanner, BareLfAtVeryStart) {
  // The first line starts after the DATA command's CRLF; "\n.\r\n" there is a bare LF,
  // then a soft-start "." line that does not end the message.
  Scan r = scan1("\n.\r\n", Mode::kNormalize);
  EXPECT_FALSE(r.done);
  EXPECT_EQ(r.out, "\r\n\r\n");
  EXPECT_EQ(r.bare_count, 1u);
  EXPECT_FALSE(r.bare);
}

// ---- Line length and size limit -----------------------------------------------------------

TEST(DataScanner, LineLength) {
  const std::string l998(998, 'x');
  EXPECT_FALSE(scan1(l998 + "\r\n.\r\n", Mode::kReject).too_long);
  EXPECT_TRUE(scan1(l998 + "y\r\n.\r\n", Mode::kReject).too_long);
  // The dot added for transparency does not count (§4.5.3.1.6).
  EXPECT_FALSE(scan1("." + l998 + "\r\n.\r\n", Mode::kReject).too_long);
  EXPECT_TRUE(scan1(".." + l998 + "\r\n.\r\n", Mode::kReject).too_long);
  // Split across feeds.
  EXPECT_TRUE(scan({std::string(600, 'x'), std::string(400, 'x') + "\r\n.\r\n"}, Mode::kReject).too_long);
  EXPECT_FALSE(scan({std::string(600, 'x') + "\r\n", std::string(600, 'x') + "\r\n.\r\n"}, Mode::kReject).too_long);
  // A bare newline ends an output line too.
  EXPECT_FALSE(scan1(std::string(600, 'x') + "\n" + std::string(600, 'x') + "\r\n.\r\n", Mode::kNormalize).too_long);
  // Configurable, and 0 means no limit.
  EXPECT_TRUE(scan1("12345\r\n.\r\n", Mode::kReject, 6).too_long);
  EXPECT_FALSE(scan1("1234\r\n.\r\n", Mode::kReject, 6).too_long);
  EXPECT_FALSE(scan1(std::string(5000, 'x') + "\r\n.\r\n", Mode::kReject, 0).too_long);
  // The line is still copied whole.
  Scan r = scan1(l998 + "yz\r\n.\r\n", Mode::kReject);
  EXPECT_EQ(r.out, l998 + "yz\r\n");
}

TEST(DataScanner, SizeLimit) {
  DataScanner s(Mode::kReject);
  s.setSizeLimit(5);
  std::string out;
  auto r = s.feed("hello world\r\n..x\r\n.\r\nNOOP\r\n", out);
  EXPECT_TRUE(r.done);
  EXPECT_EQ(r.consumed, 21u);
  EXPECT_EQ(out, "hello");
  EXPECT_TRUE(s.overLimit());
  EXPECT_EQ(s.bytesOut(), 5u);
  EXPECT_EQ(s.messageSize(), 17u);  // "hello world\r\n.x\r\n"
}

TEST(DataScanner, SizeLimitExact) {
  DataScanner s(Mode::kReject);
  s.setSizeLimit(4);
  std::string out;
  EXPECT_TRUE(s.feed("ab\r\n.\r\n", out).done);
  EXPECT_FALSE(s.overLimit());
  EXPECT_EQ(out, "ab\r\n");
}

TEST(DataScanner, SizeLimitAcrossFeeds) {
  DataScanner s(Mode::kNormalize);
  s.setSizeLimit(10);
  std::string out;
  s.feed("12345678", out);
  EXPECT_FALSE(s.overLimit());
  s.feed("\n9\r\n", out);  // 8 + CRLF (normalised) = 10, then "9" is over
  EXPECT_TRUE(s.overLimit());
  EXPECT_EQ(out, "12345678\r\n");
  EXPECT_TRUE(s.feed(".\r\n", out).done);
  EXPECT_EQ(s.messageSize(), 13u);
}

// ---- BDAT text (TextChecker) ---------------------------------------------------------------

struct ChunkCase {
  const char* name;
  std::vector<std::string> chunks;
  std::string out;
  size_t bare_count;
};

const ChunkCase kChunkCases[] = {
    {"plain", {"Subject: x\r\n\r\nbody\r\n"}, "Subject: x\r\n\r\nbody\r\n", 0},
    {"no_unstuffing", {".\r\n..x\r\n"}, ".\r\n..x\r\n", 0},
    {"crlf_split", {"a\r", "\nb"}, "a\r\nb", 0},
    {"crlf_split_with_empty_chunk", {"a\r", "", "\nb"}, "a\r\nb", 0},
    {"cr_then_other", {"a\r", "b"}, "a\r\nb", 1},
    {"trailing_cr_is_bare_at_finish", {"a\r"}, "a\r\n", 1},
    {"bare_lf", {"a\nb"}, "a\r\nb", 1},
    {"lf_at_chunk_start", {"a", "\nb"}, "a\r\nb", 1},
    {"cr_cr_lf", {"a\r\r\n"}, "a\r\n\r\n", 1},
    {"no_final_crlf", {"abc"}, "abc", 0},
    {"empty", {}, "", 0},
};

class ChunkTest : public ::testing::TestWithParam<std::tuple<ChunkCase, Mode>> {};

TEST_P(ChunkTest, Checks) {
  const auto& [c, mode] = GetParam();
  TextChecker t(mode);
  std::string out;
  for (const auto& chunk : c.chunks) t.feed(chunk, out);
  t.finish(out);
  EXPECT_EQ(out, c.out);
  EXPECT_EQ(t.bareNewlineCount(), c.bare_count);
  EXPECT_EQ(t.bareNewline(), mode == Mode::kReject && c.bare_count > 0);
  EXPECT_EQ(t.bytesOut(), out.size());
}

TEST_P(ChunkTest, AnyChunkingGivesTheSameOutput) {
  const auto& [c, mode] = GetParam();
  std::string all;
  for (const auto& chunk : c.chunks) all += chunk;
  for (size_t k = 0; k <= all.size(); ++k) {
    TextChecker t(mode);
    std::string out;
    t.feed(all.substr(0, k), out);
    t.feed(all.substr(k), out);
    t.finish(out);
    EXPECT_EQ(out, c.out) << k;
    EXPECT_EQ(t.bareNewlineCount(), c.bare_count) << k;
  }
}

INSTANTIATE_TEST_SUITE_P(Chunks, ChunkTest,
                         ::testing::Combine(::testing::ValuesIn(kChunkCases),
                                            ::testing::Values(Mode::kReject, Mode::kNormalize)),
                         [](const auto& info) {
                           return std::string(std::get<0>(info.param).name) +
                                  (std::get<1>(info.param) == Mode::kReject ? "_reject" : "_normalize");
                         });

TEST(TextChecker, LineLengthAcrossChunks) {
  TextChecker t(Mode::kReject, 10);
  std::string out;
  t.feed("12345", out);
  t.feed("678", out);
  EXPECT_FALSE(t.lineTooLong());
  t.feed("9\r\n", out);
  EXPECT_TRUE(t.lineTooLong());
  TextChecker u(Mode::kReject, 10);
  u.feed("12345678\r", out);
  u.feed("\n12345678\r\n", out);
  EXPECT_FALSE(u.lineTooLong());
}

TEST(TextChecker, NulAndReset) {
  TextChecker t(Mode::kReject);
  std::string out;
  t.feed(std::string("a\0\n", 3), out);
  EXPECT_TRUE(t.sawNul());
  EXPECT_TRUE(t.bareNewline());
  t.reset();
  EXPECT_FALSE(t.sawNul());
  EXPECT_FALSE(t.bareNewline());
  out.clear();
  t.feed("ok\r", out);
  t.reset();  // a held CR is forgotten too
  t.feed("x", out);
  t.finish(out);
  EXPECT_EQ(out, "okx");
  EXPECT_FALSE(t.bareNewline());
}

}  // namespace
}  // namespace postern::smtp
