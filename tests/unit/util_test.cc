#include <gtest/gtest.h>

#include "util/crc32c.h"
#include "util/ip.h"
#include "util/strings.h"

namespace postern {
namespace {

TEST(Crc32c, KnownVectors) {
  // RFC 3720 appendix B.4 test vectors.
  std::string zeros(32, '\0');
  EXPECT_EQ(crc32c(0, zeros.data(), zeros.size()), 0x8A9136AAu);
  std::string ones(32, '\xff');
  EXPECT_EQ(crc32c(0, ones.data(), ones.size()), 0x62A8AB43u);
  EXPECT_EQ(crc32c(0, "123456789", 9), 0xE3069283u);
  // Incremental equals one-shot.
  EXPECT_EQ(crc32c(crc32c(0, "1234", 4), "56789", 5), 0xE3069283u);
  EXPECT_EQ(crc32cTable(0, "123456789", 9), 0xE3069283u);
}

// The hardware and table versions agree on every length and alignment.
TEST(Crc32c, HardwareMatchesTables) {
  std::string data;
  for (int i = 0; i < 300; ++i) data.push_back(static_cast<char>(i * 37 + 11));
  for (size_t off = 0; off < 9; ++off)
    for (size_t n = 0; n + off <= data.size(); n += 7)
      ASSERT_EQ(crc32c(0x1234u, data.data() + off, n), crc32cTable(0x1234u, data.data() + off, n)) << off << "+" << n;
}

TEST(Ip, ParseAndFormat) {
  EXPECT_EQ(IpAddress::parse("192.0.2.1")->toString(), "192.0.2.1");
  EXPECT_EQ(IpAddress::parse("2001:db8::1")->toString(), "2001:db8::1");
  for (const char* bad : {"", "1.2.3", "256.1.1.1", "01.2.3.4", "1.2.3.4 ", "::g", "1:2:3:4:5:6:7:8:9"})
    EXPECT_FALSE(IpAddress::parse(bad)) << bad;
  EXPECT_EQ(IpAddress::parse("::ffff:192.0.2.1")->unmapped().toString(), "192.0.2.1");
  EXPECT_FALSE(IpAddress::parse(std::string_view("1.2.3.4\0garbage", 15)));
  EXPECT_FALSE(IpAddress::parse(std::string_view("::1\0x", 5)));
  EXPECT_EQ(IpAddress::parse("192.0.2.5")->reversedForDns(), "5.2.0.192");
  EXPECT_EQ(IpAddress::parse("2001:db8::1")->reversedForDns().substr(0, 8), "1.0.0.0.");
}

TEST(Ip, Cidr) {
  auto n = Cidr::parse("10.0.0.0/8");
  ASSERT_TRUE(n);
  EXPECT_TRUE(n->contains(*IpAddress::parse("10.9.8.7")));
  EXPECT_FALSE(n->contains(*IpAddress::parse("11.0.0.1")));
  EXPECT_TRUE(n->contains(*IpAddress::parse("::ffff:10.1.1.1")));
  EXPECT_FALSE(Cidr::parse("10.1.0.0/8"));   // host bits set
  EXPECT_FALSE(Cidr::parse("10.0.0.0/33"));
  EXPECT_FALSE(Cidr::parse("10.0.0.0/+8"));
  EXPECT_TRUE(Cidr::parse("::/0")->isEverything());
  EXPECT_TRUE(Cidr::parse("::1/128")->contains(*IpAddress::parse("::1")));
  EXPECT_EQ(Cidr::parse("192.0.2.1")->toString(), "192.0.2.1/32");
}

TEST(Ip, Endpoint) {
  EXPECT_EQ(Endpoint::parse("127.0.0.1:25")->toString(), "127.0.0.1:25");
  EXPECT_EQ(Endpoint::parse("[::1]:587")->toString(), "[::1]:587");
  for (const char* bad : {"127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "::1:25", "[::1]25", "host:25"})
    EXPECT_FALSE(Endpoint::parse(bad)) << bad;
}

TEST(Strings, DurationsAndSizes) {
  EXPECT_EQ(parseDurationMs("5s"), 5000u);
  EXPECT_EQ(parseDurationMs("250ms"), 250u);
  EXPECT_EQ(parseDurationMs("2h"), 7'200'000u);
  EXPECT_EQ(parseDurationMs("30"), 30'000u);
  EXPECT_FALSE(parseDurationMs("-1s"));
  EXPECT_FALSE(parseDurationMs("5 parsecs"));
  EXPECT_EQ(parseSize("25MiB"), 25u * 1024 * 1024);
  EXPECT_EQ(parseSize("10KiB"), 10240u);
  EXPECT_FALSE(parseSize("lots"));
  EXPECT_EQ(formatDurationMs(300000), "5m");
}

TEST(Strings, DidYouMean) {
  std::vector<std::string> c = {"smtp", "submission", "submissions"};
  EXPECT_EQ(didYouMean("submision", c), "submission");
  EXPECT_EQ(didYouMean("smpt", c), "smtp");
  EXPECT_FALSE(didYouMean("zzzzzzzz", c));
}

}  // namespace
}  // namespace postern

TEST(SplitLines, Table) {
  struct Case {
    std::string_view in;
    std::vector<std::pair<size_t, std::string_view>> want;
  } cases[] = {
      {"", {}},
      {"a", {{1, "a"}}},
      {"a\n", {{1, "a"}}},
      {"a\r\nb", {{1, "a"}, {2, "b"}}},
      {"\n\n", {{1, ""}, {2, ""}}},
      {"\xEF\xBB\xBFx\ny\r", {{1, "x"}, {2, "y"}}},   // BOM dropped, lone final '\r' dropped
      {"a\rb\n", {{1, "a\rb"}}},                          // a '\r' inside a line stays
  };
  for (const auto& c : cases) {
    auto got = postern::splitLines(c.in);
    ASSERT_EQ(got.size(), c.want.size()) << c.in;
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].number, c.want[i].first) << c.in;
      EXPECT_EQ(got[i].text, c.want[i].second) << c.in;
    }
  }
}
