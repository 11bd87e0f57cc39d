// Tests for RFC 5321 §2.3.8 / §4.5.3.1.4 command line framing (smtp/proto/line.h).
#include "smtp/proto/line.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace postern::smtp {
namespace {

using S = LineStatus;

struct LineCase {
  const char* name;
  std::string buf;
  size_t max;
  LineStatus status;
  std::string line;
  size_t consumed;
};

const std::string k510(510, 'x');
const std::string k511(511, 'x');

const LineCase kLineCases[] = {
    {"empty", "", kMaxCommandLine, S::kNeedMore, "", 0},
    {"partial", "EHLO exa", kMaxCommandLine, S::kNeedMore, "", 0},
    {"line", "EHLO example.com\r\n", kMaxCommandLine, S::kLine, "EHLO example.com", 18},
    {"empty_line", "\r\n", kMaxCommandLine, S::kLine, "", 2},
    {"pipelined_first", "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n", kMaxCommandLine, S::kLine, "MAIL FROM:<a@b>", 17},
    {"cr_at_end_waits", "QUIT\r", kMaxCommandLine, S::kNeedMore, "", 0},
    {"bare_lf", "QUIT\nNOOP\r\n", kMaxCommandLine, S::kBareNewline, "QUIT", 5},
    {"bare_lf_first_byte", "\nQUIT\r\n", kMaxCommandLine, S::kBareNewline, "", 1},
    {"bare_cr", "QUIT\rNOOP\r\n", kMaxCommandLine, S::kBareNewline, "QUIT", 5},
    {"cr_cr_lf", "QUIT\r\r\n", kMaxCommandLine, S::kBareNewline, "QUIT", 5},
    {"lf_cr", "QUIT\n\r\n", kMaxCommandLine, S::kBareNewline, "QUIT", 5},
    {"nul", std::string("NO\0OP\r\nQUIT\r\n", 13), kMaxCommandLine, S::kNul, std::string("NO\0OP", 5), 7},
    {"nul_incomplete_waits", std::string("NO\0OP", 5), kMaxCommandLine, S::kNeedMore, "", 0},
    {"max_exact_fits", k510 + "\r\n", kMaxCommandLine, S::kLine, k510, 512},
    {"one_over", k511 + "\r\n", kMaxCommandLine, S::kTooLong, "", 511},
    {"too_long_no_crlf", std::string(600, 'x'), kMaxCommandLine, S::kTooLong, "", 511},
    {"exactly_max_no_crlf_yet", k511, kMaxCommandLine, S::kNeedMore, "", 0},
    {"max_bytes_no_crlf", k511 + "x", kMaxCommandLine, S::kTooLong, "", 511},
    {"cr_at_max_minus_one", k511 + "\r", kMaxCommandLine, S::kTooLong, "", 511},
    {"bare_lf_beyond_limit_is_too_long", std::string(520, 'x') + "\n", kMaxCommandLine, S::kTooLong, "", 511},
    {"bare_lf_within_long_line", "abc\n" + std::string(600, 'x'), kMaxCommandLine, S::kBareNewline, "abc", 4},
    {"small_max", "abcd\r\n", 6, S::kLine, "abcd", 6},
    {"small_max_over", "abcde\r\n", 6, S::kTooLong, "", 5},
};

class LineTableTest : public ::testing::TestWithParam<LineCase> {};

TEST_P(LineTableTest, Frames) {
  const LineCase& c = GetParam();
  LineResult r = nextLine(c.buf, c.max);
  EXPECT_EQ(r.status, c.status);
  EXPECT_EQ(std::string(r.line), c.line);
  EXPECT_EQ(r.consumed, c.consumed);
  EXPECT_LE(r.consumed, c.buf.size());
}

INSTANTIATE_TEST_SUITE_P(Cases, LineTableTest, ::testing::ValuesIn(kLineCases),
                         [](const auto& info) { return std::string(info.param.name); });

// Drives nextLine()/discardUntilCrlf() the way the session does and records what happens.
// Each element of `reads` is appended to the buffer as one network read.
std::vector<std::string> frame(const std::vector<std::string>& reads, size_t max = kMaxCommandLine) {
  std::vector<std::string> events;
  std::string in;
  bool discarding = false;
  bool too_long = false;
  for (const std::string& chunk : reads) {
    in += chunk;
    for (;;) {
      if (discarding) {
        bool found = false;
        size_t n = discardUntilCrlf(in, found);
        EXPECT_LE(n, in.size());
        in.erase(0, n);
        if (!found) break;
        discarding = false;
        if (too_long) events.push_back("TOOLONG");
        continue;
      }
      LineResult r = nextLine(in, max);
      EXPECT_LE(r.consumed, in.size());
      if (r.status == S::kNeedMore) {
        EXPECT_EQ(r.consumed, 0u);
        break;
      }
      EXPECT_GT(r.consumed, 0u);
      switch (r.status) {
        case S::kLine: events.push_back("L:" + std::string(r.line)); break;
        case S::kBareNewline:
          events.push_back("BARE");
          discarding = true;
          too_long = false;
          break;
        case S::kNul: events.push_back("NUL"); break;
        case S::kTooLong:
          discarding = true;
          too_long = true;
          break;
        case S::kNeedMore: break;
      }
      in.erase(0, r.consumed);
    }
  }
  return events;
}

struct StreamCase {
  const char* name;
  std::string stream;
  std::vector<std::string> events;
};

const StreamCase kStreams[] = {
    {"pipelined",
     "EHLO a\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n",
     {"L:EHLO a", "L:MAIL FROM:<a@b>", "L:RCPT TO:<c@d>", "L:DATA"}},
    {"too_long_then_command", std::string(700, 'x') + "\r\nQUIT\r\n", {"TOOLONG", "L:QUIT"}},
    {"too_long_with_bare_lf_inside", std::string(600, 'x') + "\nstill\r\nQUIT\r\n", {"TOOLONG", "L:QUIT"}},
    {"too_long_by_one", std::string(511, 'x') + "\r\nNOOP\r\n", {"TOOLONG", "L:NOOP"}},
    {"longest_ok", std::string(510, 'x') + "\r\nNOOP\r\n", {"L:" + std::string(510, 'x'), "L:NOOP"}},
    // The text after a bare LF or CR belongs to the refused line: never a command.
    {"bare_lf_then_command", "NOOP\nQUIT\r\nNOOP\r\n", {"BARE", "L:NOOP"}},
    {"bare_cr_then_command", "NOOP\rQUIT\r\nNOOP\r\n", {"BARE", "L:NOOP"}},
    {"bare_lf_smuggled_rcpt", "RCPT TO:<a@x>\nRCPT TO:<b@x>\r\nQUIT\r\n", {"BARE", "L:QUIT"}},
    {"bare_lf_then_crlf", "NOOP\n\r\nQUIT\r\n", {"BARE", "L:QUIT"}},
    {"two_bare_lfs_one_line", "A\nB\nC\r\nQUIT\r\n", {"BARE", "L:QUIT"}},
    {"nul_line_dropped_whole", std::string("MAIL FROM:<a\0@b>\r\nQUIT\r\n", 24), {"NUL", "L:QUIT"}},
    {"empty_lines", "\r\n\r\nQUIT\r\n", {"L:", "L:", "L:QUIT"}},
};

class StreamTest : public ::testing::TestWithParam<StreamCase> {};

TEST_P(StreamTest, OneRead) {
  EXPECT_EQ(frame({GetParam().stream}), GetParam().events);
}

// The same events whatever the split into two reads.
TEST_P(StreamTest, SplitAtEveryOffset) {
  const std::string& s = GetParam().stream;
  for (size_t k = 0; k <= s.size(); ++k) {
    SCOPED_TRACE(k);
    EXPECT_EQ(frame({s.substr(0, k), s.substr(k)}), GetParam().events);
  }
}

TEST_P(StreamTest, ByteByByte) {
  const std::string& s = GetParam().stream;
  std::vector<std::string> reads;
  for (char c : s) reads.emplace_back(1, c);
  EXPECT_EQ(frame(reads), GetParam().events);
}

INSTANTIATE_TEST_SUITE_P(Streams, StreamTest, ::testing::ValuesIn(kStreams),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(DiscardUntilCrlf, KeepsTrailingCr) {
  bool found = true;
  EXPECT_EQ(discardUntilCrlf("abc\r", found), 3u);
  EXPECT_FALSE(found);
  EXPECT_EQ(discardUntilCrlf("\r\nQUIT\r\n", found), 2u);
  EXPECT_TRUE(found);
  EXPECT_EQ(discardUntilCrlf("ab\ncd", found), 5u);
  EXPECT_FALSE(found);
  EXPECT_EQ(discardUntilCrlf("", found), 0u);
  EXPECT_FALSE(found);
  EXPECT_EQ(discardUntilCrlf("\n\r\n", found), 3u);
  EXPECT_TRUE(found);
}

}  // namespace
}  // namespace postern::smtp
