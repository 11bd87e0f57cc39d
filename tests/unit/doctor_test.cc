// The pure parts of `postern doctor`: --through parsing and the PROXY v2 header it sends,
// checked against the server's own parser.
#include <gtest/gtest.h>

#include "cli/doctor.h"
#include "proxy/proxy_parser.h"

namespace postern::cli {
namespace {

TEST(DoctorThrough, Forms) {
  auto a = parseThrough("submissions=127.0.0.1:4650");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->listener, "submissions");
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 4650);
  auto b = parseThrough("lb.example.test:465");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->listener, "");
  EXPECT_EQ(b->host, "lb.example.test");
  auto c = parseThrough("smtp=[2001:db8::1]:25");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->host, "2001:db8::1");
  EXPECT_EQ(c->port, 25);
  for (const char* bad : {"", "host", "host:", "host:99999", "2001:db8::1:25", "smtp=", "=1.2.3.4:25"})
    EXPECT_FALSE(parseThrough(bad)) << bad;
}

TEST(DoctorProxyHeader, RoundTripsThroughTheParser) {
  for (auto [src, dst] : {std::pair{"192.0.2.7:40000", "127.0.0.1:465"}, std::pair{"[2001:db8::7]:1", "[::1]:587"}}) {
    Endpoint s = *Endpoint::parse(src), d = *Endpoint::parse(dst);
    std::string h = encodeProxyV2(s, d) + "\x16\x03\x01";   // a ClientHello would follow
    auto r = proxy::parse(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(h.data()), h.size()));
    ASSERT_EQ(r.status, proxy::Status::kDone) << r.reason;
    EXPECT_EQ(r.consumed, h.size() - 3);
    EXPECT_EQ(r.header.version, proxy::Version::kV2);
    EXPECT_EQ(r.header.command, proxy::Command::kProxy);
    EXPECT_EQ(r.header.src_addr, s.address);
    EXPECT_EQ(r.header.src_port, s.port);
    EXPECT_EQ(r.header.dst_addr, d.address);
    EXPECT_EQ(r.header.dst_port, d.port);
  }
}

}  // namespace
}  // namespace postern::cli
