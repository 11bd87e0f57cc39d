// Table tests for the bans file parser (src/protect/bans_file.h).
#include <gtest/gtest.h>

#include "protect/bans_file.h"

namespace postern::protect {
namespace {

struct BansCase {
  const char* name;
  std::string text;
  bool ok;
  size_t count = 0;
  std::string first_key, first_reason;   // when count > 0
  int64_t first_until = 0;
  unsigned first_level = 0;
  std::string error = {};                // substring, when !ok
};

class BansFileTest : public ::testing::TestWithParam<BansCase> {};

TEST_P(BansFileTest, Parses) {
  const BansCase& c = GetParam();
  auto r = parseBans(c.text);
  ASSERT_EQ(static_cast<bool>(r), c.ok) << (r ? "" : r.status().message());
  if (!c.ok) {
    EXPECT_NE(r.status().message().find(c.error), std::string::npos) << r.status().message();
    return;
  }
  ASSERT_EQ(r->size(), c.count);
  if (c.count == 0) return;
  const Ban& b = r->front();
  EXPECT_EQ(b.key, c.first_key);
  EXPECT_EQ(b.until, c.first_until);
  EXPECT_EQ(b.level, c.first_level);
  EXPECT_EQ(b.reason, c.first_reason);
}

INSTANTIATE_TEST_SUITE_P(
    Table, BansFileTest,
    ::testing::Values(
        BansCase{"Empty", "", true, 0},
        BansCase{"CommentsAndBlankLines", "# header\n\n   \n# another\n", true, 0},
        BansCase{"OneBan", "203.0.113.5 1800000000 0 5 auth_failures in 10m\n", true, 1, "203.0.113.5",
                 "5 auth_failures in 10m", 1800000000, 0},
        BansCase{"Ipv6Prefix", "2001:db8:1:2::/64 1800000000 3 relay\n", true, 1, "2001:db8:1:2::/64", "relay",
                 1800000000, 3},
        BansCase{"NoReason", "198.51.100.1 1800000000 1\n", true, 1, "198.51.100.1", "", 1800000000, 1},
        BansCase{"ExtraBlanksBetweenFields", "198.51.100.1   1800000000\t2   spaced  reason \n", true, 1,
                 "198.51.100.1", "spaced  reason", 1800000000, 2},
        BansCase{"CrLfLines", "198.51.100.1 1800000000 0 x\r\n198.51.100.2 1800000001 0 y\r\n", true, 2,
                 "198.51.100.1", "x", 1800000000, 0},
        BansCase{"NoNewlineAtEnd", "198.51.100.1 1 0 r", true, 1, "198.51.100.1", "r", 1, 0},
        BansCase{"OnlyKey", "onlykey\n", false, 0, "", "", 0, 0, "bans:1: expected"},
        BansCase{"KeyAndUntil", "# c\n198.51.100.1 1800000000\n", false, 0, "", "", 0, 0, "bans:2: expected"},
        BansCase{"UntilNotANumber", "198.51.100.1 soon 0 x\n", false, 0, "", "", 0, 0, "bans:1: bad number"},
        BansCase{"NegativeUntil", "198.51.100.1 -5 0 x\n", false, 0, "", "", 0, 0, "bad number"},
        BansCase{"LevelTooHigh", "198.51.100.1 1 1001 x\n", false, 0, "", "", 0, 0, "bad number"},
        BansCase{"UntilOverflows", "198.51.100.1 99999999999999999999 0 x\n", false, 0, "", "", 0, 0, "bad number"},
        BansCase{"BadLineAfterGoodOnes", "198.51.100.1 1 0 x\n198.51.100.2 1 0 y\nbroken\n", false, 0, "", "", 0, 0,
                 "bans:3:"}),
    [](const ::testing::TestParamInfo<BansCase>& i) { return i.param.name; });

TEST(BansFile, FormatParsesBack) {
  std::vector<Ban> in = {{"198.51.100.1", 1800000000, 2, "5 auth_failures in 10m (x)"},
                         {"2001:db8::/64", 1, 0, ""},
                         {"203.0.113.9", 1800000000, 1000, "manual ban from the command line"}};
  auto out = parseBans(formatBans(in));
  ASSERT_TRUE(out);
  ASSERT_EQ(out->size(), in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    EXPECT_EQ((*out)[i].key, in[i].key);
    EXPECT_EQ((*out)[i].until, in[i].until);
    EXPECT_EQ((*out)[i].level, in[i].level);
    EXPECT_EQ((*out)[i].reason, in[i].reason);
  }
}

}  // namespace
}  // namespace postern::protect
