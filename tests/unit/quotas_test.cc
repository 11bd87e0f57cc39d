// The dovecot-quotas.cf parser: sizes, and every error path with its FILE:LINE message.
#include "directory/quotas.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>

namespace postern::directory {
namespace {

TEST(DirectoryQuotas, Sizes) {
  struct Case {
    const char* text;
    std::optional<uint64_t> bytes;
  } cases[] = {
      {"0", 0},
      {"1048576", 1048576},
      {"12B", 12},
      {"1k", 1024},
      {"1K", 1024},
      {"50M", 50ull << 20},
      {"50m", 50ull << 20},
      {"2G", 2ull << 30},
      {"3T", 3ull << 40},
      {" 5 M ", 5ull << 20},
      {"1048576T", 1ull << 60},
      {"1048577T", std::nullopt},   // past kMaxQuotaBytes
      {"", std::nullopt},
      {"M", std::nullopt},
      {"-1", std::nullopt},
      {"1.5G", std::nullopt},
      {"10MB", std::nullopt},
      {"10X", std::nullopt},
      {"10%", std::nullopt},
      {"99999999999999999999999", std::nullopt},
  };
  for (const auto& c : cases) EXPECT_EQ(parseQuotaSize(c.text), c.bytes) << "'" << c.text << "'";
}

TEST(DirectoryQuotas, ParsesDockerMailserverFile) {
  std::string text =
      "\xEF\xBB\xBF# written by setup quota set\n"
      "Alice@Example.com:50M\n"
      "\n"
      "  # indented comment\n"
      "bob@example.com:1G\r\n"
      "free@example.org:0";   // no final newline
  auto r = parseQuotas(text, "dovecot-quotas.cf");
  ASSERT_TRUE(r.isOk()) << r.status().message();
  ASSERT_EQ(r->entries.size(), 3u);
  EXPECT_EQ(r->entries[0].address, "alice@example.com");
  EXPECT_EQ(r->entries[0].bytes, 50ull << 20);
  EXPECT_EQ(r->entries[0].line, 2u);
  EXPECT_EQ(r->entries[1].address, "bob@example.com");
  EXPECT_EQ(r->entries[1].bytes, 1ull << 30);
  EXPECT_EQ(r->entries[1].line, 5u);
  EXPECT_EQ(r->entries[2].bytes, 0u);
  EXPECT_EQ(r->entries[2].line, 6u);
}

TEST(DirectoryQuotas, Errors) {
  struct Case {
    std::string text, message;
  } cases[] = {
      {"ok@example.com:1M\nno-colon\n", "q.cf:2: error: expected ADDRESS:SIZE such as user@example.com:50M, found no ':'"},
      {"nodomain:1M\n", "q.cf:1: error: invalid address 'nodomain': the address has no '@' (expected local@domain)"},
      {"a@example.com:\n", "q.cf:1: error: bad size '' (expected bytes or a number with B, k, M, G or T such as 50M; "
                           "0 means no limit)"},
      {"a@example.com:50X\n", "q.cf:1: error: bad size '50X' (expected bytes or a number with B, k, M, G or T such "
                              "as 50M; 0 means no limit)"},
      {"a@example.com:1M\nA@example.com:2M\n",
       "q.cf:2: error: duplicate quota for a@example.com (first set on line 1)"},
      {"a@b@example.com:1M\n", "q.cf:1: error: invalid address 'a@b@example.com': the address has more than one '@'"},
      {std::string("a@example.com:") + std::string(2000, '1') + "\n", "q.cf:1: error: line longer than 1024 bytes"},
  };
  for (const auto& c : cases) {
    auto r = parseQuotas(c.text, "q.cf");
    ASSERT_FALSE(r.isOk()) << c.text;
    EXPECT_EQ(r.status().message(), c.message);
  }
}

}  // namespace
}  // namespace postern::directory
