// PROXY protocol v1/v2 parser (haproxy doc/proxy-protocol.txt sections 2.1, 2.2, 2.2.1-2.2.7):
// valid headers of every form, then every error path, with v2 headers written as raw bytes.
// CRC32C values were computed independently (bitwise CRC-32C in Python), not with util/crc32c.
#include "proxy/proxy_parser.h"

#include <gtest/gtest.h>

#include <climits>
#include <cstdint>
#include <cstdio>
#include <ostream>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace postern::proxy {
namespace {

using namespace std::string_view_literals;
using Bytes = std::vector<uint8_t>;

Bytes bytesOf(std::string_view s) {
  return Bytes(s.begin(), s.end());
}

Bytes concat(Bytes a, const Bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

ParseResult parseBytes(const Bytes& b, size_t n) {
  return parse(std::span<const uint8_t>(b.data(), n));
}
ParseResult parseBytes(const Bytes& b) {
  return parseBytes(b, b.size());
}

// A v2 header around `body`: signature, ver_cmd, fam, big-endian length. For generated cases only;
// the headers whose decoding is checked field by field are spelled out byte by byte below.
Bytes v2(uint8_t ver_cmd, uint8_t fam, const Bytes& body) {
  Bytes h = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};  // signature
  h.insert(h.end(), {ver_cmd, fam, static_cast<uint8_t>(body.size() >> 8), static_cast<uint8_t>(body.size())});
  return concat(h, body);
}

Bytes tlv(uint8_t type, const Bytes& value) {
  Bytes t = {type, static_cast<uint8_t>(value.size() >> 8), static_cast<uint8_t>(value.size())};
  return concat(t, value);
}

IpAddress ip(std::string_view text) {
  return *IpAddress::parse(text);
}

bool inside(std::string_view v, const Bytes& b) {
  if (v.empty()) return true;
  const auto* p = reinterpret_cast<const uint8_t*>(v.data());
  return p >= b.data() && p + v.size() <= b.data() + b.size();
}

// Parses every prefix of `input` (including the empty one and `input` itself) and checks that the
// decision never depends on how the bytes were split: undecided prefixes are kNeedMore, and from
// the first decided prefix on, every result is the one for the whole input. Returns the length of
// the shortest decided prefix (SIZE_MAX if none).
size_t checkPrefixes(const Bytes& input) {
  const ParseResult full = parseBytes(input);
  size_t decided_at = SIZE_MAX;
  for (size_t k = 0; k <= input.size(); ++k) {
    const ParseResult r = parseBytes(input, k);
    if (r.status == Status::kNeedMore) {
      EXPECT_EQ(decided_at, SIZE_MAX) << "undecided again at " << k << " after a decision at " << decided_at;
      EXPECT_EQ(r.consumed, 0u);
      EXPECT_EQ(r.error, Error::kNone);
      continue;
    }
    if (decided_at == SIZE_MAX) decided_at = k;
    EXPECT_EQ(r.status, full.status) << "prefix " << k;
    EXPECT_EQ(r.error, full.error) << "prefix " << k << ": " << r.reason;
    EXPECT_EQ(r.consumed, full.consumed) << "prefix " << k;
  }
  return decided_at;
}

// A TLS 1.2/1.3 ClientHello's first bytes, and an SMTP command, as they follow a header.
const Bytes kClientHello = {0x16, 0x03, 0x01, 0x00, 0xF4, 0x01, 0x00, 0x00, 0xF0, 0x03, 0x03, 0x5A, 0x1B};
const Bytes kEhlo = bytesOf("EHLO x\r\n");

// ---------------------------------------------------------------------------------------------
// v2 headers, byte by byte.

// clang-format off
// LOCAL, AF_UNSPEC, no address block: what HAProxy sends for health checks.
const Bytes kV2LocalUnspec = {
    0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,  // signature
    0x20,                                                                    // v2, LOCAL
    0x00,                                                                    // UNSPEC, UNSPEC
    0x00, 0x00,                                                              // length 0
};

// LOCAL with a TCP/IPv4 address block, which the receiver must ignore.
const Bytes kV2LocalInet = {
    0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,  //
    0x20, 0x11, 0x00, 0x0C,                                                  // LOCAL, TCP4, 12
    0x0A, 0x00, 0x00, 0x01, 0x0A, 0x00, 0x00, 0x02,                          // 10.0.0.1 10.0.0.2
    0x03, 0xE8, 0x00, 0x19,                                                  // 1000 25
};

// LOCAL with an unassigned family/transport byte and 4 bytes of block: skipped whole.
const Bytes kV2LocalBadFamily = {
    0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,  //
    0x20, 0xFF, 0x00, 0x04,                                                  //
    0xDE, 0xAD, 0xBE, 0xEF,                                                  //
};

// LOCAL, AF_UNSPEC, with a CRC32C TLV right after the fixed header (HAProxy's form).
const Bytes kV2LocalUnspecCrc = {
    0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,  //
    0x20, 0x00, 0x00, 0x07,                                                  //
    0x03, 0x00, 0x04, 0xA9, 0xB8, 0x7E, 0x8F,                                // CRC32C 0xA9B87E8F
};

// PROXY, AF_UNSPEC: accepted, no addresses.
const Bytes kV2ProxyUnspec = {
    0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,  //
    0x21, 0x00, 0x00, 0x00,                                                  //
};

// PROXY TCP4 192.0.2.1:56324 -> 198.51.100.7:465.
const Bytes kV2ProxyInet = {
    0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,  //
    0x21, 0x11, 0x00, 0x0C,                                                  // PROXY, TCP4, 12
    0xC0, 0x00, 0x02, 0x01,                                                  // 192.0.2.1
    0xC6, 0x33, 0x64, 0x07,                                                  // 198.51.100.7
    0xDC, 0x04, 0x01, 0xD1,                                                  // 56324 465
};

// PROXY TCP6 [2001:db8::1]:40000 -> [2001:db8::25]:25.
const Bytes kV2ProxyInet6 = {
    0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,  //
    0x21, 0x21, 0x00, 0x24,                                                  // PROXY, TCP6, 36
    0x20, 0x01, 0x0D, 0xB8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
    0x20, 0x01, 0x0D, 0xB8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x25,
    0x9C, 0x40, 0x00, 0x19,  // 40000 25
};

// PROXY with AF_INET but transport UNSPEC (0x10): accepted, address information ignored.
const Bytes kV2ProxyInetNoTransport = {
    0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,  //
    0x21, 0x10, 0x00, 0x0C,                                                  //
    0xC0, 0x00, 0x02, 0x01, 0xC6, 0x33, 0x64, 0x07, 0xDC, 0x04, 0x01, 0xD1,  //
};

// kV2ProxyInet plus PP2_TYPE_CRC32C.
const Bytes kV2ProxyInetCrc = {
    0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,  //
    0x21, 0x11, 0x00, 0x13,                                                  // length 19
    0xC0, 0x00, 0x02, 0x01, 0xC6, 0x33, 0x64, 0x07, 0xDC, 0x04, 0x01, 0xD1,  //
    0x03, 0x00, 0x04, 0x13, 0x19, 0x41, 0x86,                                // CRC32C 0x13194186
};

// kV2ProxyInet with every TLV kind; the CRC32C covers it all.
const Bytes kV2ProxyInetAllTlvs = {
    0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,  //
    0x21, 0x11, 0x00, 0xB1,                                                  // length 177
    0xC0, 0x00, 0x02, 0x01, 0xC6, 0x33, 0x64, 0x07, 0xDC, 0x04, 0x01, 0xD1,  //
    0x01, 0x00, 0x04, 'i', 'm', 'a', 'p',                                    // ALPN
    0x02, 0x00, 0x10, 'm', 'a', 'i', 'l', '.', 'e', 'x', 'a', 'm', 'p', 'l', 'e', '.', 'c', 'o', 'm',  // AUTHORITY
    0x05, 0x00, 0x10, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17,        // UNIQUE_ID (16 bytes)
    0x18, 0x19, 0x1A, 0x1B, 0x1C, 0x1D, 0x1E, 0x1F,                          //
    0x20, 0x00, 0x54,                                                        // SSL, 84 bytes
    0x07,                                                                    //   client SSL|CERT_CONN|CERT_SESS
    0x00, 0x00, 0x00, 0x00,                                                  //   verify 0
    0x21, 0x00, 0x07, 'T', 'L', 'S', 'v', '1', '.', '3',                     //   VERSION
    0x22, 0x00, 0x12, 'c', 'l', 'i', 'e', 'n', 't', '.', 'e', 'x', 'a', 'm', 'p', 'l', 'e', '.', 'c', 'o', 'm',
    0x23, 0x00, 0x16, 'T', 'L', 'S', '_', 'A', 'E', 'S', '_', '2', '5', '6', '_', 'G', 'C', 'M', '_', 'S', 'H',
    'A', '3', '8', '4',                                               //   CIPHER
    0x24, 0x00, 0x0A, 'R', 'S', 'A', '-', 'S', 'H', 'A', '2', '5', '6',  //   SIG_ALG
    0x25, 0x00, 0x07, 'R', 'S', 'A', '2', '0', '4', '8',                 //   KEY_ALG
    0x30, 0x00, 0x04, 'b', 'l', 'u', 'e',                                // NETNS
    0x04, 0x00, 0x03, 0x00, 0x00, 0x00,                                  // NOOP
    0xEA, 0x00, 0x0A, 0x01, 'v', 'p', 'c', 'e', '-', '0', '1', '2', '3',  // custom (AWS-style), unknown
    0x03, 0x00, 0x04, 0x3E, 0xED, 0x19, 0xB4,                           // CRC32C 0x3EED19B4
};

// clang-format on
// PROXY UNIX stream: /var/run/client.sock -> /run/postern/smtp.sock, each path NUL-padded to 108.
Bytes unixPath(std::string_view path) {
  Bytes b = bytesOf(path);
  b.resize(108, 0);
  return b;
}
const Bytes kV2ProxyUnix = concat(concat(
                                      Bytes{
                                          0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,  //
                                          0x21, 0x31, 0x00, 0xD8,  // PROXY, UNIX stream, 216
                                      },
                                      unixPath("/var/run/client.sock")),
                                  unixPath("/run/postern/smtp.sock"));

// ---------------------------------------------------------------------------------------------
// v1, valid.

struct V1Valid {
  std::string_view name;
  std::string_view line;
  Family family;
  std::string_view src, dst;  // empty for UNKNOWN
  uint16_t src_port = 0, dst_port = 0;
};

void PrintTo(const V1Valid& c, std::ostream* os) {
  *os << c.name;
}

class ProxyParserV1Valid : public testing::TestWithParam<V1Valid> {};

const V1Valid kV1Valid[] = {
    {"Tcp4", "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n", Family::kInet, "192.168.0.1", "192.168.0.11", 56324,
     443},
    {"Tcp4Widest", "PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n", Family::kInet, "255.255.255.255",
     "255.255.255.255", 65535, 65535},
    {"Tcp4Zeros", "PROXY TCP4 0.0.0.0 0.0.0.0 0 0\r\n", Family::kInet, "0.0.0.0", "0.0.0.0", 0, 0},
    {"Tcp6", "PROXY TCP6 2001:db8::1 2001:db8::25 40000 25\r\n", Family::kInet6, "2001:db8::1", "2001:db8::25", 40000,
     25},
    {"Tcp6Widest",
     "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n",
     Family::kInet6, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535,
     65535},
    {"Tcp6UpperCase", "PROXY TCP6 2001:DB8::A 2001:db8::B 1 2\r\n", Family::kInet6, "2001:db8::a", "2001:db8::b", 1, 2},
    {"Tcp6Mapped", "PROXY TCP6 ::ffff:192.0.2.1 ::1 1 2\r\n", Family::kInet6, "::ffff:192.0.2.1", "::1", 1, 2},
    {"UnknownShort", "PROXY UNKNOWN\r\n", Family::kUnspec, "", ""},
    {"UnknownWithAddresses", "PROXY UNKNOWN 192.0.2.1 192.0.2.2 1 2\r\n", Family::kUnspec, "", ""},
    {"UnknownWorstCase",  // exactly 107 bytes
     "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n",
     Family::kUnspec, "", ""},
    {"UnknownAnythingBeforeCrlf", "PROXY UNKNOWN  anything\tgoes, even \x01\x7f\r\n", Family::kUnspec, "", ""},
    {"UnknownTrailingSpace", "PROXY UNKNOWN \r\n", Family::kUnspec, "", ""},
};

TEST_P(ProxyParserV1Valid, Parses) {
  const V1Valid& c = GetParam();
  const Bytes input = bytesOf(c.line);
  const ParseResult r = parseBytes(input);
  ASSERT_EQ(r.status, Status::kDone) << r.reason;
  EXPECT_EQ(r.error, Error::kNone);
  EXPECT_EQ(r.consumed, c.line.size());
  EXPECT_LE(r.consumed, kV1MaxLength);
  const Header& h = r.header;
  EXPECT_EQ(h.version, Version::kV1);
  EXPECT_EQ(h.command, Command::kProxy);
  EXPECT_EQ(h.family, c.family);
  if (c.family == Family::kUnspec) {
    EXPECT_FALSE(h.hasAddresses());
    EXPECT_EQ(h.src_port, 0);
    EXPECT_EQ(h.dst_port, 0);
  } else {
    EXPECT_TRUE(h.hasAddresses());
    EXPECT_EQ(h.src_addr, ip(c.src));
    EXPECT_EQ(h.dst_addr, ip(c.dst));
    EXPECT_EQ(h.src_port, c.src_port);
    EXPECT_EQ(h.dst_port, c.dst_port);
  }
  EXPECT_FALSE(h.crc32c.has_value());
  EXPECT_FALSE(h.ssl.present);
}

TEST_P(ProxyParserV1Valid, EveryTruncationNeedsMore) {
  EXPECT_EQ(checkPrefixes(bytesOf(GetParam().line)), GetParam().line.size());
}

TEST_P(ProxyParserV1Valid, LeavesFollowingBytesAlone) {
  for (const Bytes& after : {kClientHello, kEhlo}) {
    const Bytes input = concat(bytesOf(GetParam().line), after);
    const ParseResult r = parseBytes(input);
    ASSERT_EQ(r.status, Status::kDone) << r.reason;
    EXPECT_EQ(r.consumed, GetParam().line.size());
  }
}

INSTANTIATE_TEST_SUITE_P(Lines, ProxyParserV1Valid, testing::ValuesIn(kV1Valid),
                         [](const auto& info) { return std::string(info.param.name); });

// ---------------------------------------------------------------------------------------------
// v1, invalid. `decided_by` is the shortest prefix that already decides: the parser must say
// kNeedMore for anything shorter and this error from there on.

struct V1Invalid {
  std::string_view name;
  std::string_view input;
  Error error;
  std::string_view decided_by;
};

void PrintTo(const V1Invalid& c, std::ostream* os) {
  *os << c.name;
}

class ProxyParserV1Invalid : public testing::TestWithParam<V1Invalid> {};

// 100 'x' after "PROXY UNKNOWN ": no CRLF within 107 bytes.
const std::string kUnknownNoCrlf = "PROXY UNKNOWN " + std::string(100, 'x');
// 108 bytes with the CR as the 107th: one byte too long.
const std::string kUnknown108 = "PROXY UNKNOWN " + std::string(92, 'x') + "\r\n";
const std::string kTcp6TooLong =
    "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255 ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255 65535 "
    "65535\r\n";

const V1Invalid kV1Invalid[] = {
    // Signature.
    {"LowerCase", "proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n", Error::kNotProxy, "p"},
    {"Misspelt", "PROXZ TCP4 1.2.3.4 5.6.7.8 1 2\r\n", Error::kNotProxy, "PROXZ"},
    {"Short", "PRXY", Error::kNotProxy, "PRX"},
    // Spacing and field count.
    {"NoSpaceAfterProxy", "PROXYTCP4 1.2.3.4 5.6.7.8 1 2\r\n", Error::kV1BadSyntax, "PROXYT"},
    {"TabAfterProxy", "PROXY\tTCP4 1.2.3.4 5.6.7.8 1 2\r\n", Error::kV1BadSyntax, "PROXY\t"},
    {"ProxyCrlf", "PROXY\r\n", Error::kV1BadSyntax, "PROXY\r"},
    {"ProxySpaceCrlf", "PROXY \r\n", Error::kV1BadSyntax, "PROXY \r"},
    {"DoubleSpaceBeforeProtocol", "PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n", Error::kV1BadSyntax, "PROXY  "},
    {"DoubleSpaceBeforeSource", "PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n", Error::kV1BadSyntax, "PROXY TCP4  "},
    {"DoubleSpaceBeforeDestination", "PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n", Error::kV1BadSyntax,
     "PROXY TCP4 1.2.3.4  "},
    {"DoubleSpaceBeforePort", "PROXY TCP4 1.2.3.4 5.6.7.8  1 2\r\n", Error::kV1BadSyntax,
     "PROXY TCP4 1.2.3.4 5.6.7.8  "},
    {"TrailingSpace", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", Error::kV1BadSyntax, "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 "},
    {"ExtraField", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", Error::kV1BadSyntax, "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 "},
    {"NoAddresses", "PROXY TCP4\r\n", Error::kV1BadSyntax, "PROXY TCP4\r"},
    {"NoPorts", "PROXY TCP4 1.2.3.4 5.6.7.8\r\n", Error::kV1BadSyntax, "PROXY TCP4 1.2.3.4 5.6.7.8\r"},
    {"OnePort", "PROXY TCP6 ::1 ::1 1\r\n", Error::kV1BadSyntax, "PROXY TCP6 ::1 ::1 1\r"},
    // Protocol.
    {"Tcp5", "PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", Error::kV1BadProtocol, "PROXY TCP5"},
    {"LowerCaseProtocol", "PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n", Error::kV1BadProtocol, "PROXY t"},
    {"Udp4", "PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", Error::kV1BadProtocol, "PROXY UD"},
    {"Tcp", "PROXY TCP 1.2.3.4 5.6.7.8 1 2\r\n", Error::kV1BadProtocol, "PROXY TCP "},
    {"UnknownSuffix", "PROXY UNKNOWNX\r\n", Error::kV1BadProtocol, "PROXY UNKNOWNX"},
    {"UnknownCut", "PROXY UNKNOW\r\n", Error::kV1BadProtocol, "PROXY UNKNOW\r"},
    // Addresses.
    {"Ipv6InTcp4", "PROXY TCP4 ::1 ::1 1 2\r\n", Error::kV1BadAddress, "PROXY TCP4 :"},
    {"Ipv4InTcp6", "PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n", Error::kV1BadAddress, "PROXY TCP6 1.2.3.4 "},
    {"OctetTooLarge", "PROXY TCP4 256.1.1.1 1.1.1.1 1 2\r\n", Error::kV1BadAddress, "PROXY TCP4 256.1.1.1 "},
    {"ThreeOctets", "PROXY TCP4 1.2.3 1.1.1.1 1 2\r\n", Error::kV1BadAddress, "PROXY TCP4 1.2.3 "},
    {"FiveOctets", "PROXY TCP4 1.2.3.4.5 1.1.1.1 1 2\r\n", Error::kV1BadAddress, "PROXY TCP4 1.2.3.4.5 "},
    {"OctetLeadingZero", "PROXY TCP4 01.2.3.4 1.1.1.1 1 2\r\n", Error::kV1BadAddress, "PROXY TCP4 01.2.3.4 "},
    {"Ipv4TooLong", "PROXY TCP4 1.2.3.4 0000000000000001 1 2\r\n", Error::kV1BadAddress,
     "PROXY TCP4 1.2.3.4 0000000000000001"},
    {"Ipv4Letter", "PROXY TCP4 1.2.3.4 5.6.7.8x 1 2\r\n", Error::kV1BadAddress, "PROXY TCP4 1.2.3.4 5.6.7.8x"},
    {"Ipv4Nul", "PROXY TCP4 1.2.3.4\0 5.6.7.8 1 2\r\n"sv, Error::kV1BadAddress, "PROXY TCP4 1.2.3.4\0"sv},
    {"Ipv6Scope", "PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n", Error::kV1BadAddress, "PROXY TCP6 fe80::1%"},
    {"Ipv6TwoDoubleColons", "PROXY TCP6 2001::1::2 ::1 1 2\r\n", Error::kV1BadAddress, "PROXY TCP6 2001::1::2 "},
    {"Ipv6NotHex", "PROXY TCP6 fe80::g ::1 1 2\r\n", Error::kV1BadAddress, "PROXY TCP6 fe80::g"},
    {"Ipv6Bracketed", "PROXY TCP6 [::1] ::1 1 2\r\n", Error::kV1BadAddress, "PROXY TCP6 ["},
    // Ports: decimal 0..65535, no sign, no leading zero ("0" itself is fine).
    {"Port65536", "PROXY TCP4 1.2.3.4 5.6.7.8 65536 25\r\n", Error::kV1BadPort, "PROXY TCP4 1.2.3.4 5.6.7.8 65536 "},
    {"Port99999", "PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n", Error::kV1BadPort, "PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r"},
    {"PortSixDigits", "PROXY TCP4 1.2.3.4 5.6.7.8 123456 25\r\n", Error::kV1BadPort,
     "PROXY TCP4 1.2.3.4 5.6.7.8 123456"},
    {"PortMinus", "PROXY TCP4 1.2.3.4 5.6.7.8 -1 25\r\n", Error::kV1BadPort, "PROXY TCP4 1.2.3.4 5.6.7.8 -"},
    {"PortPlus", "PROXY TCP4 1.2.3.4 5.6.7.8 +1 25\r\n", Error::kV1BadPort, "PROXY TCP4 1.2.3.4 5.6.7.8 +"},
    {"PortLeadingZero", "PROXY TCP4 1.2.3.4 5.6.7.8 01 25\r\n", Error::kV1BadPort, "PROXY TCP4 1.2.3.4 5.6.7.8 01"},
    {"PortDoubleZero", "PROXY TCP4 1.2.3.4 5.6.7.8 00 25\r\n", Error::kV1BadPort, "PROXY TCP4 1.2.3.4 5.6.7.8 00"},
    {"DstPortLeadingZero", "PROXY TCP4 1.2.3.4 5.6.7.8 1 025\r\n", Error::kV1BadPort,
     "PROXY TCP4 1.2.3.4 5.6.7.8 1 02"},
    {"PortHex", "PROXY TCP4 1.2.3.4 5.6.7.8 1 0x19\r\n", Error::kV1BadPort, "PROXY TCP4 1.2.3.4 5.6.7.8 1 0x"},
    {"PortLetter", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2a\r\n", Error::kV1BadPort, "PROXY TCP4 1.2.3.4 5.6.7.8 1 2a"},
    // Line ends.
    {"BareLf", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", Error::kV1MissingCrlf, "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"},
    {"CrCr", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r\n", Error::kV1MissingCrlf, "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r"},
    {"CrThenText", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rEHLO x\r\n", Error::kV1MissingCrlf,
     "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rE"},
    {"LfInAddress", "PROXY TCP4 1.2.\n", Error::kV1MissingCrlf, "PROXY TCP4 1.2.\n"},
    {"UnknownBareLf", "PROXY UNKNOWN\n", Error::kV1MissingCrlf, "PROXY UNKNOWN\n"},
    {"UnknownLfInside", "PROXY UNKNOWN foo\nbar\r\n", Error::kV1MissingCrlf, "PROXY UNKNOWN foo\n"},
    {"UnknownCrInside", "PROXY UNKNOWN foo\rbar\r\n", Error::kV1MissingCrlf, "PROXY UNKNOWN foo\rb"},
    // Length.
    {"NoCrlfIn107", kUnknownNoCrlf, Error::kV1TooLong, std::string_view(kUnknownNoCrlf).substr(0, kV1MaxLength)},
    {"Line108", kUnknown108, Error::kV1TooLong, std::string_view(kUnknown108).substr(0, kV1MaxLength)},
    {"Tcp6Over107", kTcp6TooLong, Error::kV1TooLong, std::string_view(kTcp6TooLong).substr(0, kV1MaxLength)},
};

TEST_P(ProxyParserV1Invalid, RejectsAsSoonAsDecided) {
  const V1Invalid& c = GetParam();
  ASSERT_EQ(c.input.substr(0, c.decided_by.size()), c.decided_by) << "bad test case";
  const Bytes input = bytesOf(c.input);
  const ParseResult r = parseBytes(input);
  ASSERT_EQ(r.status, Status::kError);
  EXPECT_EQ(r.error, c.error) << errorName(r.error) << ": " << r.reason;
  EXPECT_FALSE(r.reason.empty());
  EXPECT_EQ(r.consumed, 0u);
  EXPECT_EQ(checkPrefixes(input), c.decided_by.size());
}

INSTANTIATE_TEST_SUITE_P(Lines, ProxyParserV1Invalid, testing::ValuesIn(kV1Invalid),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(ProxyParserV1, ReasonsNameTheProblem) {
  EXPECT_EQ(parseBytes(bytesOf("PROXY TCP4 1.2.3.4 5.6.7.8 65536 25\r\n")).reason, "v1 port out of range");
  EXPECT_EQ(parseBytes(bytesOf("PROXY TCP4 1.2.3.4 5.6.7.8 01 25\r\n")).reason, "v1 port has a leading zero");
  EXPECT_EQ(parseBytes(bytesOf("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n")).reason, "v1 line ends with a bare LF");
}

// ---------------------------------------------------------------------------------------------
// v2, valid.

TEST(ProxyParserV2, LocalUnspec) {
  const ParseResult r = parseBytes(kV2LocalUnspec);
  ASSERT_EQ(r.status, Status::kDone) << r.reason;
  EXPECT_EQ(r.consumed, 16u);
  EXPECT_EQ(r.header.version, Version::kV2);
  EXPECT_EQ(r.header.command, Command::kLocal);
  EXPECT_EQ(r.header.family, Family::kUnspec);
  EXPECT_FALSE(r.header.hasAddresses());
}

TEST(ProxyParserV2, LocalIgnoresAddresses) {
  const ParseResult r = parseBytes(kV2LocalInet);
  ASSERT_EQ(r.status, Status::kDone) << r.reason;
  EXPECT_EQ(r.consumed, kV2LocalInet.size());
  EXPECT_EQ(r.header.command, Command::kLocal);
  EXPECT_FALSE(r.header.hasAddresses());
  EXPECT_EQ(r.header.src_addr, IpAddress());
  EXPECT_EQ(r.header.src_port, 0);
}

TEST(ProxyParserV2, LocalAcceptsAnyFamily) {
  const ParseResult r = parseBytes(kV2LocalBadFamily);
  ASSERT_EQ(r.status, Status::kDone) << r.reason;
  EXPECT_EQ(r.consumed, kV2LocalBadFamily.size());
  EXPECT_EQ(r.header.command, Command::kLocal);
  EXPECT_EQ(r.header.family, Family::kUnspec);
  // LOCAL with a TCP4 family but an empty address block: nothing to skip, still valid.
  const ParseResult empty = parseBytes(v2(0x20, 0x11, {}));
  ASSERT_EQ(empty.status, Status::kDone) << empty.reason;
  EXPECT_EQ(empty.consumed, 16u);
  // And a DGRAM transport is no business of ours on LOCAL.
  EXPECT_EQ(parseBytes(v2(0x20, 0x12, Bytes(12))).status, Status::kDone);
}

TEST(ProxyParserV2, ProxyUnspec) {
  const ParseResult r = parseBytes(kV2ProxyUnspec);
  ASSERT_EQ(r.status, Status::kDone) << r.reason;
  EXPECT_EQ(r.consumed, 16u);
  EXPECT_EQ(r.header.command, Command::kProxy);
  EXPECT_EQ(r.header.family, Family::kUnspec);
  EXPECT_FALSE(r.header.hasAddresses());
}

TEST(ProxyParserV2, ProxyInet) {
  const ParseResult r = parseBytes(kV2ProxyInet);
  ASSERT_EQ(r.status, Status::kDone) << r.reason;
  EXPECT_EQ(r.consumed, 28u);
  const Header& h = r.header;
  EXPECT_EQ(h.version, Version::kV2);
  EXPECT_EQ(h.command, Command::kProxy);
  EXPECT_EQ(h.family, Family::kInet);
  EXPECT_TRUE(h.hasAddresses());
  EXPECT_EQ(h.src_addr, ip("192.0.2.1"));
  EXPECT_EQ(h.dst_addr, ip("198.51.100.7"));
  EXPECT_EQ(h.src_port, 56324);
  EXPECT_EQ(h.dst_port, 465);
  EXPECT_TRUE(h.alpn.empty());
  EXPECT_FALSE(h.crc32c.has_value());
  EXPECT_EQ(h.unknown_tlvs, 0);
}

TEST(ProxyParserV2, ProxyInet6) {
  const ParseResult r = parseBytes(kV2ProxyInet6);
  ASSERT_EQ(r.status, Status::kDone) << r.reason;
  EXPECT_EQ(r.consumed, 52u);
  const Header& h = r.header;
  EXPECT_EQ(h.family, Family::kInet6);
  EXPECT_TRUE(h.hasAddresses());
  EXPECT_EQ(h.src_addr, ip("2001:db8::1"));
  EXPECT_EQ(h.dst_addr, ip("2001:db8::25"));
  EXPECT_EQ(h.src_port, 40000);
  EXPECT_EQ(h.dst_port, 25);
}

TEST(ProxyParserV2, ProxyUnix) {
  const ParseResult r = parseBytes(kV2ProxyUnix);
  ASSERT_EQ(r.status, Status::kDone) << r.reason;
  EXPECT_EQ(r.consumed, 232u);
  const Header& h = r.header;
  EXPECT_EQ(h.family, Family::kUnix);
  EXPECT_FALSE(h.hasAddresses());
  EXPECT_EQ(h.unix_src, "/var/run/client.sock");
  EXPECT_EQ(h.unix_dst, "/run/postern/smtp.sock");
  EXPECT_TRUE(inside(h.unix_src, kV2ProxyUnix));
}

TEST(ProxyParserV2, UnixPathWithoutNulFillsAll108Bytes) {
  const Bytes full(108, 'a');
  const Bytes input = v2(0x21, 0x31, concat(full, unixPath("/b")));
  const ParseResult r = parseBytes(input);
  ASSERT_EQ(r.status, Status::kDone) << r.reason;
  EXPECT_EQ(r.header.unix_src, std::string(108, 'a'));
  EXPECT_EQ(r.header.unix_dst, "/b");
}

TEST(ProxyParserV2, ProxyWithUnspecTransportIgnoresAddresses) {
  const ParseResult r = parseBytes(kV2ProxyInetNoTransport);
  ASSERT_EQ(r.status, Status::kDone) << r.reason;
  EXPECT_EQ(r.consumed, kV2ProxyInetNoTransport.size());
  EXPECT_EQ(r.header.command, Command::kProxy);
  EXPECT_EQ(r.header.family, Family::kUnspec);
  EXPECT_FALSE(r.header.hasAddresses());
}

TEST(ProxyParserV2, AddressBlockLongerThanFamilyIsFine) {
  // Extra bytes after the addresses are TLVs: here one NOOP.
  const Bytes block = concat(Bytes(kV2ProxyInet.begin() + 16, kV2ProxyInet.end()), tlv(0x04, {}));
  const ParseResult r = parseBytes(v2(0x21, 0x11, block));
  ASSERT_EQ(r.status, Status::kDone) << r.reason;
  EXPECT_EQ(r.header.src_port, 56324);
}

TEST(ProxyParserV2, LargestAcceptedHeader) {
  const Bytes body = concat(Bytes(kV2ProxyInet.begin() + 16, kV2ProxyInet.end()),
                            tlv(0x04, Bytes(kV2MaxAcceptedLength - 16 - 12 - 3)));
  const Bytes input = v2(0x21, 0x11, body);
  ASSERT_EQ(input.size(), kV2MaxAcceptedLength);
  const ParseResult r = parseBytes(input);
  ASSERT_EQ(r.status, Status::kDone) << r.reason;
  EXPECT_EQ(r.consumed, kV2MaxAcceptedLength);
}

// Every family x command combination, addresses and all.
struct FamilyCase {
  uint8_t fam;
  size_t addr_len;
  Family family;
};

void PrintTo(const FamilyCase& c, std::ostream* os) {
  *os << "fam " << int(c.fam);
}

class ProxyParserV2Matrix : public testing::TestWithParam<std::tuple<uint8_t, FamilyCase>> {};

TEST_P(ProxyParserV2Matrix, Parses) {
  const auto& [ver_cmd, fc] = GetParam();
  Bytes block(fc.addr_len);
  for (size_t i = 0; i < block.size(); ++i) block[i] = static_cast<uint8_t>(i + 1);
  const Bytes input = v2(ver_cmd, fc.fam, block);
  const ParseResult r = parseBytes(input);
  ASSERT_EQ(r.status, Status::kDone) << r.reason;
  EXPECT_EQ(r.consumed, input.size());
  EXPECT_EQ(checkPrefixes(input), input.size());
  const bool local = ver_cmd == 0x20;
  EXPECT_EQ(r.header.command, local ? Command::kLocal : Command::kProxy);
  EXPECT_EQ(r.header.family, fc.family);
  EXPECT_EQ(r.header.hasAddresses(), !local && (fc.family == Family::kInet || fc.family == Family::kInet6));
  if (!local && fc.family == Family::kInet) {
    EXPECT_EQ(r.header.src_addr, ip("1.2.3.4"));
    EXPECT_EQ(r.header.dst_addr, ip("5.6.7.8"));
    EXPECT_EQ(r.header.src_port, 0x090A);
    EXPECT_EQ(r.header.dst_port, 0x0B0C);
  } else if (!local && fc.family == Family::kInet6) {
    EXPECT_EQ(r.header.src_addr, ip("102:304:506:708:90a:b0c:d0e:f10"));
    EXPECT_EQ(r.header.dst_addr, ip("1112:1314:1516:1718:191a:1b1c:1d1e:1f20"));
    EXPECT_EQ(r.header.src_port, 0x2122);
    EXPECT_EQ(r.header.dst_port, 0x2324);
  } else {
    EXPECT_EQ(r.header.src_addr, IpAddress());
    EXPECT_EQ(r.header.src_port, 0);
  }
  if (!local && fc.family == Family::kUnix) {
    EXPECT_EQ(r.header.unix_src.size(), 108u);  // no NUL in 1..108
    EXPECT_EQ(r.header.unix_dst.size(), 108u);
  } else {
    EXPECT_TRUE(r.header.unix_src.empty());
  }
}

std::string matrixName(const testing::TestParamInfo<std::tuple<uint8_t, FamilyCase>>& info) {
  char name[32];
  std::snprintf(name, sizeof name, "%s_fam%02X", std::get<0>(info.param) == 0x20 ? "Local" : "Proxy",
                std::get<1>(info.param).fam);
  return name;
}

INSTANTIATE_TEST_SUITE_P(
    FamilyByCommand, ProxyParserV2Matrix,
    testing::Combine(testing::Values(uint8_t{0x20}, uint8_t{0x21}),
                     testing::Values(FamilyCase{0x00, 0, Family::kUnspec}, FamilyCase{0x01, 0, Family::kUnspec},
                                     FamilyCase{0x11, 12, Family::kInet}, FamilyCase{0x21, 36, Family::kInet6},
                                     FamilyCase{0x31, 216, Family::kUnix})),
    matrixName);

// ---------------------------------------------------------------------------------------------
// v2 TLVs.

TEST(ProxyParserTlv, EveryKind) {
  const ParseResult r = parseBytes(kV2ProxyInetAllTlvs);
  ASSERT_EQ(r.status, Status::kDone) << r.reason;
  EXPECT_EQ(r.consumed, kV2ProxyInetAllTlvs.size());
  const Header& h = r.header;
  EXPECT_EQ(h.src_addr, ip("192.0.2.1"));
  EXPECT_EQ(h.dst_port, 465);
  EXPECT_EQ(h.alpn, "imap");
  EXPECT_EQ(h.authority, "mail.example.com");
  EXPECT_EQ(h.unique_id, std::string_view("\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f", 16));
  EXPECT_EQ(h.netns, "blue");
  ASSERT_TRUE(h.crc32c.has_value());
  EXPECT_EQ(*h.crc32c, 0x3EED19B4u);
  EXPECT_TRUE(h.ssl.present);
  EXPECT_EQ(h.ssl.client, 0x07);
  EXPECT_EQ(h.ssl.verify, 0u);
  EXPECT_EQ(h.ssl.version, "TLSv1.3");
  EXPECT_EQ(h.ssl.cn, "client.example.com");
  EXPECT_EQ(h.ssl.cipher, "TLS_AES_256_GCM_SHA384");
  EXPECT_EQ(h.ssl.sig_alg, "RSA-SHA256");
  EXPECT_EQ(h.ssl.key_alg, "RSA2048");
  EXPECT_EQ(h.unknown_tlvs, 1);  // the 0xEA custom TLV
  for (std::string_view v :
       {h.alpn, h.authority, h.unique_id, h.netns, h.ssl.version, h.ssl.cn, h.ssl.cipher, h.ssl.sig_alg, h.ssl.key_alg})
    EXPECT_TRUE(inside(v, kV2ProxyInetAllTlvs));
}

TEST(ProxyParserTlv, Crc32cGood) {
  const ParseResult r = parseBytes(kV2ProxyInetCrc);
  ASSERT_EQ(r.status, Status::kDone) << r.reason;
  ASSERT_TRUE(r.header.crc32c.has_value());
  EXPECT_EQ(*r.header.crc32c, 0x13194186u);
  const ParseResult local = parseBytes(kV2LocalUnspecCrc);
  ASSERT_EQ(local.status, Status::kDone) << local.reason;
  EXPECT_EQ(local.header.command, Command::kLocal);
  ASSERT_TRUE(local.header.crc32c.has_value());
  EXPECT_EQ(*local.header.crc32c, 0xA9B87E8Fu);
}

TEST(ProxyParserTlv, Crc32cBad) {
  // Any flipped bit in the addresses, ports or checksum is caught by the checksum; one in the CRC
  // TLV's length breaks the TLV structure. (A flipped TLV type byte turns the checksum into another
  // TLV, which no receiver can tell from a header sent without checksum.)
  for (size_t i = 16; i < kV2ProxyInetCrc.size(); ++i) {
    if (i == 28) continue;  // the CRC32C TLV's type
    for (uint8_t bit = 1; bit != 0; bit = static_cast<uint8_t>(bit << 1)) {
      Bytes input = kV2ProxyInetCrc;
      input[i] ^= bit;
      const ParseResult r = parseBytes(input);
      EXPECT_EQ(r.status, Status::kError) << "byte " << i << " bit " << int(bit);
      if (i < 28 || i >= 31) {
        EXPECT_EQ(r.error, Error::kV2BadCrc) << "byte " << i << " bit " << int(bit);
      }
    }
  }
  Bytes local = kV2LocalUnspecCrc;
  local.back() ^= 1;
  EXPECT_EQ(parseBytes(local).error, Error::kV2BadCrc);
  // The ver_cmd and fam bytes are covered too: LOCAL -> PROXY keeps a valid structure.
  local = kV2LocalUnspecCrc;
  local[12] = 0x21;
  EXPECT_EQ(parseBytes(local).error, Error::kV2BadCrc);
}

TEST(ProxyParserTlv, Crc32cWrongLength) {
  const Bytes addr(kV2ProxyInet.begin() + 16, kV2ProxyInet.end());
  EXPECT_EQ(parseBytes(v2(0x21, 0x11, concat(addr, tlv(0x03, Bytes(3))))).error, Error::kV2BadTlv);
  EXPECT_EQ(parseBytes(v2(0x21, 0x11, concat(addr, tlv(0x03, Bytes(5))))).error, Error::kV2BadTlv);
  EXPECT_EQ(parseBytes(v2(0x21, 0x11, concat(addr, tlv(0x03, {})))).error, Error::kV2BadTlv);
}

TEST(ProxyParserTlv, NoopAndUnknownAreSkipped) {
  const Bytes addr(kV2ProxyInet.begin() + 16, kV2ProxyInet.end());
  Bytes body = addr;
  body = concat(body, tlv(0x04, {}));
  body = concat(body, tlv(0x04, Bytes(10)));
  body = concat(body, tlv(0xE0, bytesOf("custom")));
  body = concat(body, tlv(0xF7, {}));
  body = concat(body, tlv(0x21, bytesOf("SSL subtype at top level")));
  const ParseResult r = parseBytes(v2(0x21, 0x11, body));
  ASSERT_EQ(r.status, Status::kDone) << r.reason;
  EXPECT_EQ(r.header.unknown_tlvs, 3);
  EXPECT_EQ(r.header.src_port, 56324);
}

TEST(ProxyParserTlv, SslMinimalAndUnknownSubTlv) {
  const Bytes addr(kV2ProxyInet.begin() + 16, kV2ProxyInet.end());
  // client = PP2_CLIENT_SSL, verify = 1 (no verified certificate), only a CN and an unknown 0x26.
  const Bytes ssl =
      concat(concat(Bytes{0x01, 0x00, 0x00, 0x00, 0x01}, tlv(0x22, bytesOf("cn"))), tlv(0x26, bytesOf("x25519")));
  const Bytes input = v2(0x21, 0x11, concat(addr, tlv(0x20, ssl)));  // outlives the views into it
  const ParseResult r = parseBytes(input);
  ASSERT_EQ(r.status, Status::kDone) << r.reason;
  EXPECT_TRUE(r.header.ssl.present);
  EXPECT_EQ(r.header.ssl.client, 0x01);
  EXPECT_EQ(r.header.ssl.verify, 1u);
  EXPECT_EQ(r.header.ssl.cn, "cn");
  EXPECT_TRUE(r.header.ssl.version.empty());
  EXPECT_EQ(r.header.unknown_tlvs, 1);
  // Only the fixed part.
  const ParseResult bare = parseBytes(v2(0x21, 0x11, concat(addr, tlv(0x20, {0x00, 0xFF, 0xFF, 0xFF, 0xFF}))));
  ASSERT_EQ(bare.status, Status::kDone) << bare.reason;
  EXPECT_EQ(bare.header.ssl.verify, 0xFFFFFFFFu);
}

TEST(ProxyParserTlv, UniqueIdLimit) {
  const Bytes addr(kV2ProxyInet.begin() + 16, kV2ProxyInet.end());
  const ParseResult max = parseBytes(v2(0x21, 0x11, concat(addr, tlv(0x05, Bytes(kV2MaxUniqueIdLength, 'u')))));
  ASSERT_EQ(max.status, Status::kDone) << max.reason;
  EXPECT_EQ(max.header.unique_id.size(), kV2MaxUniqueIdLength);
  const ParseResult over = parseBytes(v2(0x21, 0x11, concat(addr, tlv(0x05, Bytes(kV2MaxUniqueIdLength + 1)))));
  EXPECT_EQ(over.error, Error::kV2UniqueIdTooLong);
}

TEST(ProxyParserTlv, AuthorityLimit) {
  const Bytes addr(kV2ProxyInet.begin() + 16, kV2ProxyInet.end());
  EXPECT_EQ(parseBytes(v2(0x21, 0x11, concat(addr, tlv(0x02, Bytes(255, 'a'))))).status, Status::kDone);
  EXPECT_EQ(parseBytes(v2(0x21, 0x11, concat(addr, tlv(0x02, Bytes(256, 'a'))))).error, Error::kV2BadTlv);
}

TEST(ProxyParserTlv, LocalTlvsAreParsedWhenTheLayoutIsKnown) {
  // HAProxy's health check form: LOCAL, UNSPEC, TLVs right after the fixed header.
  const Bytes input = v2(0x20, 0x00, tlv(0x05, bytesOf("id-1")));
  const ParseResult r = parseBytes(input);
  ASSERT_EQ(r.status, Status::kDone) << r.reason;
  EXPECT_EQ(r.header.unique_id, "id-1");
  EXPECT_EQ(parseBytes(v2(0x20, 0x00, {0x05, 0x00})).error, Error::kV2TlvOverrun);
}

// ---------------------------------------------------------------------------------------------
// v2, invalid.

struct V2Invalid {
  std::string_view name;
  Bytes input;
  Error error;
  size_t decided_at;  // shortest decided prefix
};

void PrintTo(const V2Invalid& c, std::ostream* os) {
  *os << c.name;
}

class ProxyParserV2Invalid : public testing::TestWithParam<V2Invalid> {};

Bytes inetWith(const Bytes& tlvs) {
  return v2(0x21, 0x11, concat(Bytes(kV2ProxyInet.begin() + 16, kV2ProxyInet.end()), tlvs));
}

// clang-format off
const V2Invalid kV2Invalid[] = {
    {"Version1",
     {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x11, 0x11, 0x00, 0x0C, 0xC0, 0x00,
      0x02, 0x01, 0xC6, 0x33, 0x64, 0x07, 0xDC, 0x04, 0x01, 0xD1},
     Error::kV2BadVersion, 13},
    {"Version3", {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x31, 0x00, 0x00, 0x00},
     Error::kV2BadVersion, 13},
    {"Version0", {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x01, 0x00, 0x00, 0x00},
     Error::kV2BadVersion, 13},
    {"Command2", {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x22, 0x00, 0x00, 0x00},
     Error::kV2BadCommand, 13},
    {"CommandF", {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x2F, 0x11, 0x00, 0x0C},
     Error::kV2BadCommand, 13},
    {"Family4", {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x21, 0x41, 0x00, 0x00},
     Error::kV2BadFamily, 14},
    {"FamilyF", {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x21, 0xF1, 0x00, 0x00},
     Error::kV2BadFamily, 14},
    {"UdpOverIpv4", {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x21, 0x12, 0x00, 0x0C},
     Error::kV2BadTransport, 14},
    {"UdpOverIpv6", {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x21, 0x22, 0x00, 0x24},
     Error::kV2BadTransport, 14},
    {"UnixDgram", {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x21, 0x32, 0x00, 0xD8},
     Error::kV2BadTransport, 14},
    {"UnspecDgram", {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x21, 0x02, 0x00, 0x00},
     Error::kV2BadTransport, 14},
    {"Transport3", {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x21, 0x13, 0x00, 0x0C},
     Error::kV2BadTransport, 14},
    {"InetBlockTooShort",
     {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x21, 0x11, 0x00, 0x0B, 0xC0, 0x00,
      0x02, 0x01, 0xC6, 0x33, 0x64, 0x07, 0xDC, 0x04, 0x01},
     Error::kV2BadLength, 16},
    {"Inet6BlockTooShort", {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x21, 0x21, 0x00, 0x23},
     Error::kV2BadLength, 16},
    {"UnixBlockTooShort", {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x21, 0x31, 0x00, 0xD7},
     Error::kV2BadLength, 16},
    {"InetLengthZero", {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x21, 0x11, 0x00, 0x00},
     Error::kV2BadLength, 16},
    {"LengthAboveCap", {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x21, 0x11, 0x10, 0x01},
     Error::kV2BadLength, 16},
    {"LengthMax", {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x20, 0x00, 0xFF, 0xFF},
     Error::kV2BadLength, 16},
    // TLV structure.
    {"TlvValueOverrun", inetWith({0x01, 0x00, 0x05, 'i', 'm', 'a', 'p'}), Error::kV2TlvOverrun, 35},
    {"TlvHeaderOverrunOneByte", inetWith({0x01}), Error::kV2TlvOverrun, 29},
    {"TlvHeaderOverrunTwoBytes", inetWith({0x01, 0x00}), Error::kV2TlvOverrun, 30},
    {"TlvLengthFFFF", inetWith({0x04, 0xFF, 0xFF, 0x00}), Error::kV2TlvOverrun, 32},
    {"SslShorterThanFixedPart", inetWith({0x20, 0x00, 0x04, 0x01, 0x00, 0x00, 0x00}), Error::kV2BadTlv, 35},
    {"SslSubTlvOverrun", inetWith(tlv(0x20, {0x01, 0x00, 0x00, 0x00, 0x00, 0x21, 0x00, 0x08, 'T', 'L', 'S', 'v', '1'})),
     Error::kV2TlvOverrun, 44},
    {"SslSubTlvHeaderOverrun", inetWith(tlv(0x20, {0x01, 0x00, 0x00, 0x00, 0x00, 0x21, 0x00})), Error::kV2TlvOverrun,
     38},
    {"SslSubTlvRunsIntoNextTlv",  // the sub-TLV fits the header but not its SSL TLV
     inetWith(concat(tlv(0x20, {0x01, 0x00, 0x00, 0x00, 0x00, 0x21, 0x00, 0x04, 'T', 'L'}), tlv(0x04, {'S', 'v'}))),
     Error::kV2TlvOverrun, 46},
    {"Crc32cShort", inetWith(tlv(0x03, {0, 0, 0})), Error::kV2BadTlv, 34},
    {"DuplicateAlpn", inetWith(concat(tlv(0x01, bytesOf("a")), tlv(0x01, bytesOf("b")))), Error::kV2BadTlv, 36},
    {"DuplicateSsl", inetWith(concat(tlv(0x20, Bytes(5)), tlv(0x20, Bytes(5)))), Error::kV2BadTlv, 44},
    {"DuplicateSslCn",
     inetWith(tlv(0x20, concat(concat(Bytes(5), tlv(0x22, bytesOf("a"))), tlv(0x22, bytesOf("b"))))),
     Error::kV2BadTlv, 44},
    {"DuplicateUniqueId", inetWith(concat(tlv(0x05, {}), tlv(0x05, {}))), Error::kV2BadTlv, 34},
    {"UniqueIdTooLong", inetWith(tlv(0x05, Bytes(129, 'u'))), Error::kV2UniqueIdTooLong, 28 + 3 + 129},
};

// clang-format on
TEST_P(ProxyParserV2Invalid, RejectsAsSoonAsDecided) {
  const V2Invalid& c = GetParam();
  const ParseResult r = parseBytes(c.input);
  ASSERT_EQ(r.status, Status::kError);
  EXPECT_EQ(r.error, c.error) << errorName(r.error) << ": " << r.reason;
  EXPECT_FALSE(r.reason.empty());
  EXPECT_EQ(checkPrefixes(c.input), c.decided_at);
}

INSTANTIATE_TEST_SUITE_P(Headers, ProxyParserV2Invalid, testing::ValuesIn(kV2Invalid),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(ProxyParserV2, DgramReasonSaysWhy) {
  const ParseResult r = parseBytes(v2(0x21, 0x12, Bytes(12)));
  EXPECT_EQ(r.error, Error::kV2BadTransport);
  EXPECT_NE(r.reason.find("DGRAM"), std::string_view::npos) << r.reason;
  EXPECT_NE(r.reason.find("mail server"), std::string_view::npos) << r.reason;
}

TEST(ProxyParserV2, OversizedHeaderIsRejectedBeforeItsBody) {
  // A peer announcing 64 KiB is turned away after 16 bytes: nobody buffers the rest.
  const Bytes fixed = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x21, 0x11, 0xFF, 0xFF};
  const ParseResult r = parseBytes(fixed);
  EXPECT_EQ(r.status, Status::kError);
  EXPECT_EQ(r.error, Error::kV2BadLength);
  // One byte past the cap.
  const Bytes body(kV2MaxAcceptedLength - 16 + 1);
  EXPECT_EQ(parseBytes(v2(0x21, 0x11, body)).error, Error::kV2BadLength);
}

// ---------------------------------------------------------------------------------------------
// Properties shared by all valid headers.

struct Named {
  std::string_view name;
  const Bytes* bytes;
};

void PrintTo(const Named& c, std::ostream* os) {
  *os << c.name;
}

class ProxyParserValid : public testing::TestWithParam<Named> {};

const Named kValidV2[] = {
    {"LocalUnspec", &kV2LocalUnspec},
    {"LocalInet", &kV2LocalInet},
    {"LocalBadFamily", &kV2LocalBadFamily},
    {"LocalUnspecCrc", &kV2LocalUnspecCrc},
    {"ProxyUnspec", &kV2ProxyUnspec},
    {"ProxyInet", &kV2ProxyInet},
    {"ProxyInet6", &kV2ProxyInet6},
    {"ProxyUnix", &kV2ProxyUnix},
    {"ProxyInetNoTransport", &kV2ProxyInetNoTransport},
    {"ProxyInetCrc", &kV2ProxyInetCrc},
    {"ProxyInetAllTlvs", &kV2ProxyInetAllTlvs},
};

TEST_P(ProxyParserValid, EveryTruncationNeedsMore) {
  const Bytes& b = *GetParam().bytes;
  EXPECT_EQ(checkPrefixes(b), b.size());
}

TEST_P(ProxyParserValid, LeavesFollowingBytesAlone) {
  const Bytes& b = *GetParam().bytes;
  const ParseResult alone = parseBytes(b);
  ASSERT_EQ(alone.status, Status::kDone) << alone.reason;
  for (const Bytes& after : {kClientHello, kEhlo}) {
    const Bytes input = concat(b, after);
    const ParseResult r = parseBytes(input);
    ASSERT_EQ(r.status, Status::kDone) << r.reason;
    EXPECT_EQ(r.consumed, b.size());
    EXPECT_EQ(r.header.family, alone.header.family);
    EXPECT_EQ(r.header.src_addr, alone.header.src_addr);
    EXPECT_EQ(r.header.crc32c, alone.header.crc32c);
  }
}

TEST_P(ProxyParserValid, SignatureByteFlipsAreRejectedAtOnce) {
  const Bytes& b = *GetParam().bytes;
  for (size_t i = 0; i < kV2SignatureLength; ++i) {
    Bytes input = b;
    input[i] ^= 0xFF;
    const ParseResult r = parseBytes(input);
    EXPECT_EQ(r.status, Status::kError) << "byte " << i;
    EXPECT_EQ(r.error, Error::kNotProxy) << "byte " << i;
    EXPECT_EQ(checkPrefixes(input), i + 1) << "byte " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Headers, ProxyParserValid, testing::ValuesIn(kValidV2),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(ProxyParserV1, SignatureByteFlipsAreRejectedAtOnce) {
  const Bytes line = bytesOf("PROXY TCP4 192.0.2.1 198.51.100.7 56324 465\r\n");
  for (size_t i = 0; i < 5; ++i) {
    Bytes input = line;
    input[i] ^= 0x20;  // case flip: "pROXY", "PrOXY", ...
    EXPECT_EQ(parseBytes(input).error, Error::kNotProxy) << "byte " << i;
    EXPECT_EQ(checkPrefixes(input), i + 1) << "byte " << i;
  }
}

TEST(ProxyParser, EmptyInputNeedsMore) {
  const ParseResult r = parse({});
  EXPECT_EQ(r.status, Status::kNeedMore);
  EXPECT_EQ(r.consumed, 0u);
}

TEST(ProxyParser, OtherProtocolsAreNotProxy) {
  for (const Bytes& b : {kClientHello, kEhlo, bytesOf("GET / HTTP/1.1\r\n"), bytesOf("\r\nQUIT\r\n"), Bytes{0x00}}) {
    const ParseResult r = parseBytes(b);
    EXPECT_EQ(r.status, Status::kError);
    EXPECT_EQ(r.error, Error::kNotProxy);
    EXPECT_EQ(r.consumed, 0u);
  }
}

TEST(ProxyParser, FailedParseLeavesNoHalfHeader) {
  const Bytes input = inetWith(tlv(0x01, bytesOf("imap")));
  Bytes broken = input;
  broken[30] = 0x09;  // ALPN length 9 with 4 bytes left: an overrun after the addresses were read
  const ParseResult r = parseBytes(broken);
  ASSERT_EQ(r.status, Status::kError);
  EXPECT_EQ(r.header.src_port, 0);
  EXPECT_TRUE(r.header.alpn.empty());
}

TEST(ProxyParser, ErrorNamesAreStableAndDistinct) {
  EXPECT_STREQ(errorName(Error::kV1BadPort), "v1_bad_port");
  EXPECT_STREQ(errorName(Error::kNotProxy), "not_proxy");
  EXPECT_STREQ(errorName(Error::kV2BadCrc), "v2_bad_crc");
  std::set<std::string> names;
  for (int e = 0; e <= static_cast<int>(Error::kV2UniqueIdTooLong); ++e) {
    const std::string name = errorName(static_cast<Error>(e));
    EXPECT_NE(name, "unknown");
    for (char c : name) EXPECT_TRUE((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_') << name;
    EXPECT_TRUE(names.insert(name).second) << name;
  }
}

// ---------------------------------------------------------------------------------------------
// Diagnostics.

struct SignatureCase {
  std::string_view name;
  Bytes input;
  Signature expected;
};

void PrintTo(const SignatureCase& c, std::ostream* os) {
  *os << c.name;
}

class ProxyParserDetectSignature : public testing::TestWithParam<SignatureCase> {};

const SignatureCase kSignatureCases[] = {
    {"Empty", {}, Signature::kNeedMore},
    {"P", bytesOf("P"), Signature::kNeedMore},
    {"PROX", bytesOf("PROX"), Signature::kNeedMore},
    {"PROXY", bytesOf("PROXY"), Signature::kV1},
    {"V1Line", bytesOf("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), Signature::kV1},
    {"V1Garbage", bytesOf("PROXYgarbage"), Signature::kV1},
    {"Proxz", bytesOf("PROXZ"), Signature::kNone},
    {"Ehlo", bytesOf("EHLO x\r\n"), Signature::kNone},
    {"ClientHello", kClientHello, Signature::kNone},
    {"V2OneByte", {0x0D}, Signature::kNeedMore},
    {"V2ElevenBytes", {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54}, Signature::kNeedMore},
    {"V2Signature", {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A}, Signature::kV2},
    {"V2Header", kV2ProxyInet, Signature::kV2},
    {"V2BadVersionStillV2Signature",
     {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x11},
     Signature::kV2},
    {"CrlfQuit", bytesOf("\r\nQUIT\n"), Signature::kNone},
    {"V2LastByteWrong", {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0D}, Signature::kNone},
};

TEST_P(ProxyParserDetectSignature, Detects) {
  EXPECT_EQ(detectSignature(GetParam().input), GetParam().expected);
}

INSTANTIATE_TEST_SUITE_P(Inputs, ProxyParserDetectSignature, testing::ValuesIn(kSignatureCases),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(ProxyParserDetectSignature, AgreesWithParse) {
  // parse() says kNotProxy exactly when detectSignature() says kNone.
  for (const SignatureCase& c : kSignatureCases) {
    const bool none = detectSignature(c.input) == Signature::kNone;
    EXPECT_EQ(parseBytes(c.input).error == Error::kNotProxy, none) << c.name;
  }
}

struct DescribeCase {
  std::string_view name;
  Bytes input;
  std::string_view expected;
};

void PrintTo(const DescribeCase& c, std::ostream* os) {
  *os << c.name;
}

class ProxyParserDescribe : public testing::TestWithParam<DescribeCase> {};

const DescribeCase kDescribeCases[] = {
    {"Nothing", {}, "no data"},
    {"ClientHello", kClientHello, "a TLS ClientHello"},
    {"ClientHelloFirstByte", {0x16}, "a TLS ClientHello"},
    {"TlsServerHello", {0x16, 0x03, 0x03, 0x00, 0x50, 0x02, 0x00}, "a TLS handshake record (not a ClientHello)"},
    {"TlsAlert", {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28}, "a TLS record"},
    {"Sslv2ClientHello", {0x80, 0x2E, 0x01, 0x03, 0x01, 0x00, 0x15}, "an SSLv2-format ClientHello"},
    {"Ehlo", bytesOf("EHLO client.example.com\r\n"), "an SMTP command (EHLO)"},
    {"EhloLowerCase", bytesOf("ehlo x\r\n"), "an SMTP command (EHLO)"},
    {"Helo", bytesOf("HELO x\r\n"), "an SMTP command (HELO)"},
    {"Starttls", bytesOf("STARTTLS\r\n"), "an SMTP command (STARTTLS)"},
    {"Quit", bytesOf("QUIT\r\n"), "an SMTP command (QUIT)"},
    {"MailFrom", bytesOf("MAIL FROM:<a@example.com>\r\n"), "an SMTP command (MAIL)"},
    {"EhloGlued", bytesOf("EHLOX\r\n"), "plain text"},
    {"ImapLogin", bytesOf("a001 LOGIN user pass\r\n"), "an IMAP command"},
    {"ImapCapability", bytesOf("1 capability\r\n"), "an IMAP command"},
    {"Pop3User", bytesOf("USER bob\r\n"), "a POP3 command (USER)"},
    {"Pop3Capa", bytesOf("CAPA\r\n"), "a POP3 command (CAPA)"},
    {"HttpGet", bytesOf("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), "an HTTP request (GET)"},
    {"HttpPost", bytesOf("POST /submit HTTP/1.1\r\n"), "an HTTP request (POST)"},
    {"Http2", bytesOf("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), "an HTTP/2 connection preface"},
    {"Ssh", bytesOf("SSH-2.0-OpenSSH_9.2p1\r\n"), "an SSH client banner"},
    {"Text", bytesOf("hello there\r\n"), "plain text"},
    {"Binary", {0x00, 0x01, 0x02, 0xFF}, "binary data"},
    {"ProxyV1", bytesOf("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), "a PROXY v1 header"},
    {"ProxyV2", kV2ProxyInet, "a PROXY v2 header"},
};

TEST_P(ProxyParserDescribe, Describes) {
  EXPECT_EQ(describeNonProxy(GetParam().input), GetParam().expected);
}

INSTANTIATE_TEST_SUITE_P(Inputs, ProxyParserDescribe, testing::ValuesIn(kDescribeCases),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace postern::proxy
