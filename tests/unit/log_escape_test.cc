// Tests for log value escaping (log/escape.h): JSON strings stay valid UTF-8 whatever
// bytes a client sent.
#include "log/escape.h"

#include <gtest/gtest.h>

#include <string>

namespace postern::log {
namespace {

// Well-formed UTF-8 per RFC 3629 §4, written independently of utf8SequenceAt().
bool wellFormed(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = s[i];
    size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    uint32_t cp = n == 1 ? c : n == 2 ? (c & 0x1F) : n == 3 ? (c & 0x0F) : (c & 0x07);
    for (size_t k = 1; k < n; ++k) {
      unsigned char d = s[i + k];
      if ((d & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n;
  }
  return true;
}

struct EscapeCase {
  const char* name;
  std::string in;
  std::string json;
};

const EscapeCase kCases[] = {
    {"ascii", "mail.example.com", "mail.example.com"},
    {"quote_backslash", "a\"b\\c", "a\\\"b\\\\c"},
    {"controls", std::string("a\r\n\t\x01\x7f\0b", 8), "a\\r\\n\\t\\u0001\\u007f\\u0000b"},
    {"utf8_2", "b\xc3\xbc" "cher", "b\xc3\xbc" "cher"},
    {"utf8_3", "\xe2\x82\xac", "\xe2\x82\xac"},
    {"utf8_4", "\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80"},
    {"max_code_point", "\xf4\x8f\xbf\xbf", "\xf4\x8f\xbf\xbf"},
    {"lone_ff", "a\xff" "b", "a\\\\xffb"},
    {"lone_continuation", "\x80", "\\\\x80"},
    {"latin1_e9", "caf\xe9", "caf\\\\xe9"},
    {"truncated_2", "\xc3", "\\\\xc3"},
    {"truncated_3_then_ascii", "\xe2\x82x", "\\\\xe2\\\\x82x"},
    {"overlong_slash", "\xc0\xaf", "\\\\xc0\\\\xaf"},
    {"overlong_3", "\xe0\x80\xaf", "\\\\xe0\\\\x80\\\\xaf"},
    {"surrogate", "\xed\xa0\x80", "\\\\xed\\\\xa0\\\\x80"},
    {"above_10ffff", "\xf4\x90\x80\x80", "\\\\xf4\\\\x90\\\\x80\\\\x80"},
    {"f5_lead", "\xf5\x80\x80\x80", "\\\\xf5\\\\x80\\\\x80\\\\x80"},
    {"bad_then_good", "\xff\xc3\xbc", "\\\\xff\xc3\xbc"},
};

class JsonEscapeTest : public ::testing::TestWithParam<EscapeCase> {};

TEST_P(JsonEscapeTest, Escapes) {
  const EscapeCase& c = GetParam();
  std::string out;
  appendJsonEscaped(out, c.in);
  EXPECT_EQ(out, c.json);
  EXPECT_TRUE(wellFormed(out));
}

INSTANTIATE_TEST_SUITE_P(Cases, JsonEscapeTest, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return std::string(info.param.name); });

// Every single byte and every byte pair gives well-formed UTF-8 with no raw controls.
TEST(JsonEscape, AllBytePairsGiveValidUtf8) {
  for (int a = 0; a < 256; ++a) {
    for (int b = 0; b < 256; ++b) {
      std::string in{static_cast<char>(a), static_cast<char>(b)};
      std::string out;
      appendJsonEscaped(out, in);
      ASSERT_TRUE(wellFormed(out)) << a << " " << b;
      for (unsigned char c : out) ASSERT_GE(c, 0x20) << a << " " << b;
    }
  }
}

TEST(TextEscape, NonAsciiAsUnicodeEscapes) {
  std::string out;
  appendTextEscaped(out, "a\"\xff\xc3\xbc\n");
  EXPECT_EQ(out, "a\\\"\\u00ff\\u00c3\\u00bc\\n");
}

}  // namespace
}  // namespace postern::log
