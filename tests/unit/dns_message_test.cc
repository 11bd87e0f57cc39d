// RFC 1035 message parsing from raw bytes: well-formed answers, and truncations,
// compression loops and bad lengths that must be errors, never reads past the buffer.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "dns/message.h"

namespace postern::dns {
namespace {

using Bytes = std::vector<uint8_t>;

Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

// Header: id 0x1234, QR AA RD RA, the given rcode and counts.
Bytes header(uint16_t qd, uint16_t an, uint16_t ns = 0, uint16_t ar = 0, uint8_t rcode = 0) {
  return {0x12, 0x34, 0x85, static_cast<uint8_t>(0x80 | rcode), 0, static_cast<uint8_t>(qd), 0,
          static_cast<uint8_t>(an), 0, static_cast<uint8_t>(ns), 0, static_cast<uint8_t>(ar)};
}

// "example.org" at offset 12, as the question's name.
const Bytes kExampleOrg = {7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'o', 'r', 'g', 0};
const Bytes kPtrExampleOrg = {0xc0, 0x0c};   // pointer to offset 12
const Bytes kQtypeMxIn = {0, 15, 0, 1};
const Bytes kTtl300 = {0, 0, 0x01, 0x2c};

// A record owned by "example.org" (pointer): TYPE, CLASS IN, TTL 300, the data.
Bytes rr(uint16_t type, const Bytes& data, const Bytes& ttl = kTtl300) {
  return cat({kPtrExampleOrg, {static_cast<uint8_t>(type >> 8), static_cast<uint8_t>(type), 0, 1}, ttl,
              {static_cast<uint8_t>(data.size() >> 8), static_cast<uint8_t>(data.size())}, data});
}

// One answer record of `type` with `data`, in a response to "example.org MX".
Bytes answer(uint16_t type, const Bytes& data, const Bytes& ttl = kTtl300) {
  return cat({header(1, 1), kExampleOrg, kQtypeMxIn, rr(type, data, ttl)});
}

Message parsed(const Bytes& b);

TEST(DnsMessage, AuthenticDataAndCheckingDisabledBits) {
  // RFC 4035 §3.2.3 / §3.2.2: AD is 0x20 and CD 0x10 of the second flags byte.
  Bytes b = answer(15, {0, 10, 2, 'm', 'x', 0xc0, 0x0c});
  b[3] |= 0x20;
  auto m = parseMessage(b);
  ASSERT_TRUE(m);
  EXPECT_TRUE(m->header.ad);
  EXPECT_FALSE(m->header.cd);
  EXPECT_TRUE(m->header.ra);
  b[3] = static_cast<uint8_t>((b[3] & ~0x20) | 0x10);
  m = parseMessage(b);
  ASSERT_TRUE(m);
  EXPECT_FALSE(m->header.ad);
  EXPECT_TRUE(m->header.cd);
}

Message parsed(const Bytes& b) {
  auto m = parseMessage(b);
  EXPECT_TRUE(m) << m.status().message();
  return m ? std::move(*m) : Message{};
}

TEST(DnsMessage, MxAnswerWithCompression) {
  // MX 10 mx.<pointer to example.org>
  Bytes b = answer(15, {0, 10, 2, 'm', 'x', 0xc0, 0x0c});
  Message m = parsed(b);
  EXPECT_EQ(m.header.id, 0x1234);
  EXPECT_TRUE(m.header.qr);
  EXPECT_TRUE(m.header.aa);
  EXPECT_FALSE(m.header.tc);
  EXPECT_TRUE(m.header.rd);
  EXPECT_TRUE(m.header.ra);
  EXPECT_FALSE(m.header.ad);
  EXPECT_FALSE(m.header.cd);
  EXPECT_EQ(m.header.rcode, 0);
  ASSERT_EQ(m.questions.size(), 1u);
  EXPECT_EQ(m.questions[0].name, "example.org");
  EXPECT_EQ(m.questions[0].type, 15);
  EXPECT_EQ(m.questions[0].klass, kClassIn);
  ASSERT_EQ(m.answers.size(), 1u);
  const ResourceRecord& r = m.answers[0];
  EXPECT_EQ(r.name, "example.org");
  EXPECT_EQ(r.type, 15);
  EXPECT_EQ(r.klass, 1);
  EXPECT_EQ(r.ttl, 300u);
  EXPECT_EQ(r.rdata_length, 7);
  auto mx = decodeMx(m, r);
  ASSERT_TRUE(mx);
  EXPECT_EQ(mx->preference, 10);
  EXPECT_EQ(mx->exchange, "mx.example.org");
  EXPECT_FALSE(decodeA(m, r));   // 7 bytes are not an address
}

struct ParseCase {
  const char* name;
  Bytes bytes;
  const char* error;   // nullptr: parses
};

class DnsParseTest : public ::testing::TestWithParam<ParseCase> {};

TEST_P(DnsParseTest, Parses) {
  const ParseCase& c = GetParam();
  auto m = parseMessage(c.bytes);
  if (!c.error) {
    EXPECT_TRUE(m) << m.status().message();
    return;
  }
  ASSERT_FALSE(m);
  EXPECT_NE(m.status().message().find(c.error), std::string::npos) << m.status().message();
  // Every prefix of a bad or good message is handled without reading past its end.
  for (size_t n = 0; n < c.bytes.size(); ++n) (void)parseMessage(std::span<const uint8_t>(c.bytes.data(), n));
}

INSTANTIATE_TEST_SUITE_P(
    Cases, DnsParseTest,
    ::testing::Values(
        ParseCase{"Empty", {}, "truncated header"},
        ParseCase{"ShortHeader", {0x12, 0x34, 0x81, 0x80, 0, 1}, "truncated header"},
        ParseCase{"HeaderOnly", header(0, 0), nullptr},
        ParseCase{"QuestionNameTruncated", cat({header(1, 0), {7, 'e', 'x', 'a'}}), "label runs past the end"},
        ParseCase{"QuestionNoTerminator", cat({header(1, 0), {3, 'o', 'r', 'g'}}), "truncated"},
        ParseCase{"QuestionFixedTruncated", cat({header(1, 0), kExampleOrg, {0, 15, 0}}), "question at offset 12: truncated"},
        ParseCase{"PointerToItself", cat({header(1, 0), {0xc0, 0x0c}, kQtypeMxIn}), "compression loop at offset 12"},
        ParseCase{"PointerForward", cat({header(1, 0), {0xc0, 0x0e, 0}, kQtypeMxIn}), "compression loop"},
        // Two names pointing at each other: the second points back to the first, whose
        // pointer then points forward again.
        ParseCase{"PointerCycle", cat({header(2, 0), {1, 'a', 0xc0, 0x12}, kQtypeMxIn, {0xc0, 0x0c}, kQtypeMxIn}),
                  "compression loop"},
        ParseCase{"PointerTruncated", cat({header(1, 0), {0xc0}}), "truncated pointer"},
        ParseCase{"ExtendedLabelType", cat({header(1, 0), {0x41, 0}, kQtypeMxIn}), "unsupported label type 0x41"},
        ParseCase{"AnswerCountTooHigh", cat({header(1, 2), kExampleOrg, kQtypeMxIn, rr(1, {1, 2, 3, 4})}),
                  "answer record at offset 45: name at offset 45: truncated"},
        ParseCase{"RdataPastEnd", cat({header(1, 1), kExampleOrg, kQtypeMxIn, kPtrExampleOrg, {0, 1, 0, 1}, kTtl300,
                                       {0, 4, 1, 2}}),
                  "data length 4 runs past the message"},
        ParseCase{"RdataLengthHuge", cat({header(1, 1), kExampleOrg, kQtypeMxIn, kPtrExampleOrg, {0, 1, 0, 1}, kTtl300,
                                          {0xff, 0xff, 1, 2, 3, 4}}),
                  "runs past the message"},
        ParseCase{"RecordFixedPartTruncated", cat({header(1, 1), kExampleOrg, kQtypeMxIn, kPtrExampleOrg, {0, 1, 0}}),
                  "answer record at offset 29: truncated"},
        ParseCase{"AuthorityTruncated", cat({header(1, 0, 1), kExampleOrg, kQtypeMxIn}), "authority record"},
        ParseCase{"AdditionalTruncated", cat({header(1, 0, 0, 1), kExampleOrg, kQtypeMxIn, {0}}), "additional record"},
        ParseCase{"TrailingBytesIgnored", cat({header(1, 0), kExampleOrg, kQtypeMxIn, {1, 2, 3}}), nullptr},
        ParseCase{"RootName", cat({header(1, 0), {0}, kQtypeMxIn}), nullptr}),
    [](const ::testing::TestParamInfo<ParseCase>& i) { return i.param.name; });

TEST(DnsMessage, NameLongerThan255IsRejected) {
  // 5 labels of 63 bytes: 320 bytes on the wire.
  Bytes b = header(1, 0);
  for (int i = 0; i < 5; ++i) {
    b.push_back(63);
    b.insert(b.end(), 63, 'a');
  }
  b.push_back(0);
  b.insert(b.end(), kQtypeMxIn.begin(), kQtypeMxIn.end());
  auto m = parseMessage(b);
  ASSERT_FALSE(m);
  EXPECT_NE(m.status().message().find("longer than 255 bytes"), std::string::npos) << m.status().message();

  // 4 x 63 + 3 = 255 bytes exactly (with the root): fine.
  Bytes ok = header(1, 0);
  for (int i = 0; i < 3; ++i) {
    ok.push_back(63);
    ok.insert(ok.end(), 63, 'a');
  }
  ok.push_back(61);
  ok.insert(ok.end(), 61, 'b');
  ok.push_back(0);
  ok.insert(ok.end(), kQtypeMxIn.begin(), kQtypeMxIn.end());
  EXPECT_TRUE(parseMessage(ok));
}

TEST(DnsMessage, LongBackwardPointerChainIsBounded) {
  // Offset 12: the root; then pointers each to the one before; the question's name is the last.
  Bytes b = header(1, 0);
  b.push_back(0);
  size_t prev = 12;
  for (size_t i = 0; i < kMaxPointerJumps + 5; ++i) {
    size_t here = b.size();
    b.push_back(static_cast<uint8_t>(0xc0 | (prev >> 8)));
    b.push_back(static_cast<uint8_t>(prev));
    prev = here;
  }
  // The question starts at offset 12 in the header's eyes; use readName on the last pointer.
  size_t next = 0;
  auto n = readName(b, prev, b.size(), &next);
  ASSERT_FALSE(n);
  EXPECT_NE(n.status().message().find("compression pointers"), std::string::npos) << n.status().message();
  auto shortChain = readName(b, 13 + 2 * 3, b.size(), &next);   // 4 pointers: fine
  ASSERT_TRUE(shortChain) << shortChain.status().message();
  EXPECT_EQ(*shortChain, ".");
  EXPECT_EQ(next, 13u + 2 * 3 + 2);
}

TEST(DnsMessage, NamesAreLowerCasedAndOddBytesEscaped) {
  Bytes b = cat({header(1, 0), {3, 'M', 'X', '1', 4, 'a', '.', 'b', ' ', 3, 'O', 'r', 'G', 0}, kQtypeMxIn});
  Message m = parsed(b);
  ASSERT_EQ(m.questions.size(), 1u);
  EXPECT_EQ(m.questions[0].name, "mx1.a\\046b\\032.org");
}

TEST(DnsMessage, HighTtlReadsAsZero) {
  Message m = parsed(answer(1, {192, 0, 2, 1}, {0x80, 0, 0, 1}));
  ASSERT_EQ(m.answers.size(), 1u);
  EXPECT_EQ(m.answers[0].ttl, 0u);   // RFC 2181 §8
}

struct RdataCase {
  const char* name;
  uint16_t type;
  Bytes data;
  std::string expected;   // the decoded value as text; "" : the decoder refuses it
};

std::string decodeAsText(const Message& m, const ResourceRecord& r) {
  switch (static_cast<RrType>(r.type)) {
    case RrType::kA:
      if (auto a = decodeA(m, r)) return a->toString();
      return "";
    case RrType::kAaaa:
      if (auto a = decodeAaaa(m, r)) return a->toString();
      return "";
    case RrType::kMx:
      if (auto mx = decodeMx(m, r)) return std::to_string(mx->preference) + " " + mx->exchange;
      return "";
    case RrType::kCname:
      if (auto c = decodeCname(m, r)) return *c;
      return "";
    case RrType::kTxt: {
      auto parts = decodeTxtStrings(m, r);
      auto whole = decodeTxt(m, r);
      if (!parts || !whole) return "";
      std::string s;
      for (const auto& p : *parts) s += "[" + p + "]";
      return s + "=" + *whole;
    }
    case RrType::kSoa:
      if (auto s = decodeSoa(m, r))
        return s->mname + " " + s->rname + " " + std::to_string(s->serial) + " " + std::to_string(s->refresh) + " " +
               std::to_string(s->retry) + " " + std::to_string(s->expire) + " " + std::to_string(s->minimum);
      return "";
    case RrType::kTlsa:
      if (auto t = decodeTlsa(m, r)) {
        std::string s = std::to_string(t->usage) + " " + std::to_string(t->selector) + " " +
                        std::to_string(t->matching_type) + " ";
        for (uint8_t c : t->data) s += "0123456789abcdef"[c >> 4], s += "0123456789abcdef"[c & 15];
        return s;
      }
      return "";
    default: return "";
  }
}

class DnsRdataTest : public ::testing::TestWithParam<RdataCase> {};

TEST_P(DnsRdataTest, Decodes) {
  const RdataCase& c = GetParam();
  Message m = parsed(answer(c.type, c.data));
  ASSERT_EQ(m.answers.size(), 1u);
  EXPECT_EQ(decodeAsText(m, m.answers[0]), c.expected);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, DnsRdataTest,
    ::testing::Values(
        RdataCase{"A", 1, {192, 0, 2, 1}, "192.0.2.1"},
        RdataCase{"AShort", 1, {192, 0, 2}, ""},
        RdataCase{"ALong", 1, {192, 0, 2, 1, 0}, ""},
        RdataCase{"Aaaa", 28, {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, "2001:db8::1"},
        RdataCase{"AaaaShort", 28, {0x20, 0x01}, ""},
        RdataCase{"MxInline", 15, {0, 5, 2, 'M', 'X', 0}, "5 mx"},
        RdataCase{"MxCompressed", 15, {0, 10, 0xc0, 0x0c}, "10 example.org"},
        RdataCase{"NullMx", 15, {0, 0, 0}, "0 ."},
        RdataCase{"MxNoName", 15, {0, 10}, ""},
        RdataCase{"MxNameRunsPastData", 15, {0, 10, 3, 'm', 'x'}, ""},
        RdataCase{"MxTrailingByte", 15, {0, 10, 0, 7}, ""},
        RdataCase{"MxPointerLoop", 15, {0, 10, 0xc0, 0x2b}, ""},   // points at itself (offset 43)
        RdataCase{"Cname", 5, {3, 'w', 'w', 'w', 0xc0, 0x0c}, "www.example.org"},
        RdataCase{"CnameEmpty", 5, {}, ""},
        RdataCase{"TxtOne", 16, {5, 'h', 'e', 'l', 'l', 'o'}, "[hello]=hello"},
        RdataCase{"TxtConcatenated", 16, {7, 'v', '=', 's', 'p', 'f', '1', ' ', 4, '-', 'a', 'l', 'l'},
                  "[v=spf1 ][-all]=v=spf1 -all"},
        RdataCase{"TxtEmptyString", 16, {0}, "[]="},
        RdataCase{"TxtNoString", 16, {}, ""},
        RdataCase{"TxtLengthPastData", 16, {5, 'a', 'b'}, ""},
        RdataCase{"TxtSecondLengthPastData", 16, {1, 'a', 9, 'b'}, ""},
        RdataCase{"Soa", 6, {2, 'n', 's', 0xc0, 0x0c, 4, 'h', 'o', 's', 't', 0xc0, 0x0c, 0, 0, 0, 1, 0, 0, 0x0e, 0x10, 0, 0, 2,
                             0x58, 0, 1, 0x51, 0x80, 0, 0, 0, 60},
                  "ns.example.org host.example.org 1 3600 600 86400 60"},
        RdataCase{"SoaTimersShort", 6, {0, 0, 0, 0, 0, 1, 0, 0, 0x0e, 0x10, 0, 0, 2, 0x58, 0, 1, 0x51, 0x80, 0, 0, 0}, ""},
        RdataCase{"SoaTimersLong", 6, {0, 0, 0, 0, 0, 1, 0, 0, 0x0e, 0x10, 0, 0, 2, 0x58, 0, 1, 0x51, 0x80, 0, 0, 0, 60, 1}, ""},
        RdataCase{"Tlsa", 52, {3, 1, 1, 0xab, 0xcd}, "3 1 1 abcd"},
        RdataCase{"TlsaNoData", 52, {2, 0, 0}, "2 0 0 "},
        RdataCase{"TlsaShort", 52, {3, 1}, ""}),
    [](const ::testing::TestParamInfo<RdataCase>& i) { return i.param.name; });

TEST(DnsMessage, SectionsAndRcode) {
  // NXDOMAIN with an SOA in the authority section and an OPT record in the additional one.
  Bytes soa = {0, 0, 0, 0, 0, 1, 0, 0, 0x0e, 0x10, 0, 0, 2, 0x58, 0, 1, 0x51, 0x80, 0, 0, 0, 30};
  Bytes opt = {0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 0};
  Message m = parsed(cat({header(1, 0, 1, 1, 3), kExampleOrg, kQtypeMxIn, rr(6, soa), opt}));
  EXPECT_EQ(m.header.rcode, static_cast<uint8_t>(Rcode::kNxDomain));
  EXPECT_EQ(rcodeName(m.header.rcode), "NXDOMAIN");
  EXPECT_TRUE(m.answers.empty());
  ASSERT_EQ(m.authority.size(), 1u);
  auto s = decodeSoa(m, m.authority[0]);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->mname, ".");
  EXPECT_EQ(s->minimum, 30u);
  ASSERT_EQ(m.additional.size(), 1u);
  EXPECT_EQ(m.additional[0].type, 41);
  EXPECT_EQ(m.additional[0].name, ".");
  EXPECT_EQ(rcodeName(11), "RCODE11");
  EXPECT_STREQ(rrTypeName(52), "TLSA");
}

TEST(DnsMessage, DecodersRefuseRecordsOutsideTheMessage) {
  Message m = parsed(answer(1, {192, 0, 2, 1}));
  ResourceRecord r = m.answers[0];
  r.rdata_offset = m.bytes.size() - 2;
  EXPECT_FALSE(decodeA(m, r));
  r.rdata_offset = m.bytes.size() + 10;
  EXPECT_FALSE(decodeTxt(m, r));
  EXPECT_FALSE(decodeTlsa(m, r));
}

TEST(DnsMessage, NormalizeName) {
  EXPECT_EQ(normalizeName("Example.ORG."), "example.org");
  EXPECT_EQ(normalizeName("_25._tcp.mx.example.org"), "_25._tcp.mx.example.org");
  EXPECT_EQ(normalizeName("."), ".");
  EXPECT_EQ(normalizeName("xn--bcher-kva.example"), "xn--bcher-kva.example");
  for (std::string bad : {"", "..", "a..b", ".a", "a b", "a\\.b", "bücher.example", "a/b"})
    EXPECT_FALSE(normalizeName(bad)) << bad;
  EXPECT_TRUE(normalizeName(std::string(63, 'a') + ".example"));
  EXPECT_FALSE(normalizeName(std::string(64, 'a') + ".example"));
  std::string long_name;
  while (long_name.size() < 250) long_name += "abcdefghi.";
  EXPECT_FALSE(normalizeName(long_name + "toolong"));
}

}  // namespace
}  // namespace postern::dns
