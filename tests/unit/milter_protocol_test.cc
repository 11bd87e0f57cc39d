// Milter protocol packets (milter/protocol.h): encoders byte for byte, and the reply parser
// over every reply kind, truncated, oversized and malformed packets.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "milter/protocol.h"

namespace postern::milter {
namespace {

using namespace std::string_literals;
using K = Reply::Kind;
using State = ParseResult::State;

// length (4 bytes BE, command byte included) | cmd | data
std::string pkt(char cmd, const std::string& data) {
  uint32_t len = static_cast<uint32_t>(data.size() + 1);
  std::string out;
  out.push_back(char(len >> 24));
  out.push_back(char((len >> 16) & 0xff));
  out.push_back(char((len >> 8) & 0xff));
  out.push_back(char(len & 0xff));
  out.push_back(cmd);
  return out + data;
}

std::string u32(uint32_t v) {
  return std::string{char(v >> 24), char((v >> 16) & 0xff), char((v >> 8) & 0xff), char(v & 0xff)};
}

ParseResult parse(const std::string& s) {
  return parseReply(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(s.data()), s.size()));
}

TEST(MilterProtocolTest, FlagValuesMatchLibmilter) {
  // mfdef.h values; a wrong bit would make the filter skip or expect the wrong stages.
  EXPECT_EQ(kActAddHeaders, 0x01u);
  EXPECT_EQ(kActChangeBody, 0x02u);
  EXPECT_EQ(kActQuarantine, 0x20u);
  EXPECT_EQ(kActSetSymList, 0x100u);
  EXPECT_EQ(kProtoNoConnect, 0x1u);
  EXPECT_EQ(kProtoNoBody, 0x10u);
  EXPECT_EQ(kProtoNrHeader, 0x80u);
  EXPECT_EQ(kProtoSkip, 0x400u);
  EXPECT_EQ(kProtoNrConnect, 0x1000u);
  EXPECT_EQ(kProtoNrBody, 0x80000u);
  EXPECT_EQ(kProtoHeaderLeadingSpace, 0x100000u);
}

TEST(MilterProtocolTest, EncodersAreByteExact) {
  struct Case {
    const char* what;
    std::string got, want;
  };
  const Case cases[] = {
      {"optneg", encodeOptionNegotiation(0x1ff, 0x1fffff), "\0\0\0\x0dO\0\0\0\x06\0\0\x01\xff\0\x1f\xff\xff"s},
      {"macros", encodeMacros('C', {{"j", "mx.test"}, {"{i}", "ABC"}}), pkt('D', "Cj\0mx.test\0{i}\0ABC\0"s)},
      {"macros none", encodeMacros('T', {}), pkt('D', "T")},
      {"connect v4", encodeConnect("[192.0.2.1]", std::make_pair("192.0.2.1"s, uint16_t(4242)), false),
       pkt('C', "[192.0.2.1]\0" "4\x10\x92" "192.0.2.1\0"s)},
      {"connect v6", encodeConnect("h.test", std::make_pair("2001:db8::1"s, uint16_t(25)), true),
       pkt('C', "h.test\0" "6\0\x19" "2001:db8::1\0"s)},
      {"connect unknown", encodeConnect("localhost", std::nullopt, false), pkt('C', "localhost\0U"s)},
      {"helo", encodeHelo("client.test"), pkt('H', "client.test\0"s)},
      {"mail", encodeMail({"<a@b.test>", "SIZE=10"}), pkt('M', "<a@b.test>\0SIZE=10\0"s)},
      {"rcpt", encodeRcpt({"<c@d.test>"}), pkt('R', "<c@d.test>\0"s)},
      {"data", encodeData(), pkt('T', "")},
      {"header", encodeHeader("Subject", " hi"), pkt('L', "Subject\0 hi\0"s)},
      {"eoh", encodeEndOfHeaders(), pkt('N', "")},
      {"body", encodeBody("line\r\n"), pkt('B', "line\r\n")},
      {"eom", encodeEndOfMessage(), pkt('E', "")},
      {"abort", encodeAbort(), pkt('A', "")},
      {"quit", encodeQuit(), pkt('Q', "")},
  };
  for (const auto& c : cases) EXPECT_EQ(c.got, c.want) << c.what;
}

TEST(MilterProtocolTest, ParsesEveryReplyKind) {
  struct Case {
    std::string bytes;
    K kind;
    std::string text, name, value, data;
    uint32_t index = 0;
  };
  const Case cases[] = {
      {pkt('c', ""), K::kContinue},
      {pkt('a', ""), K::kAccept},
      {pkt('r', ""), K::kReject},
      {pkt('t', ""), K::kTempFail},
      {pkt('d', ""), K::kDiscard},
      {pkt('p', ""), K::kProgress},
      {pkt('4', ""), K::kShutdown},
      {pkt('s', ""), K::kSkip},
      {pkt('y', "554 5.7.1 Gtube pattern\0"s), K::kReplyCode, "554 5.7.1 Gtube pattern"},
      {pkt('y', "451 4.7.1 later"), K::kReplyCode, "451 4.7.1 later"},   // NUL missing: tolerated
      {pkt('y', "550\0"s), K::kReplyCode, "550"},
      {pkt('h', "X-Spam\0Yes\0"s), K::kAddHeader, "", "X-Spam", "Yes"},
      {pkt('h', "X-Empty\0\0"s), K::kAddHeader, "", "X-Empty", ""},
      {pkt('i', u32(2) + "X-Top\0 v\0"s), K::kInsertHeader, "", "X-Top", " v", "", 2},
      {pkt('m', u32(1) + "Subject\0\0"s), K::kChangeHeader, "", "Subject", "", "", 1},
      {pkt('b', "new body\r\n"), K::kReplaceBody, "", "", "", "new body\r\n"},
      {pkt('b', ""), K::kReplaceBody},
      {pkt('+', "<x@y.test>\0"s), K::kAddRcpt, "", "", "", "<x@y.test>"},
      {pkt('2', "<x@y.test>\0NOTIFY=NEVER\0"s), K::kAddRcpt, "", "", "", "<x@y.test> NOTIFY=NEVER"},
      {pkt('-', "<x@y.test>\0"s), K::kDeleteRcpt, "", "", "", "<x@y.test>"},
      {pkt('e', "<new@y.test>\0"s), K::kChangeFrom, "", "", "", "<new@y.test>"},
      {pkt('q', "spam\0"s), K::kQuarantine, "", "", "", "spam"},
      {pkt('l', u32(3) + "{i}\0"s), K::kSetSymList, "", "", "", "{i}\0"s, 3},
  };
  for (const auto& c : cases) {
    ParseResult r = parse(c.bytes);
    ASSERT_EQ(r.state, State::kDone) << c.bytes << ": " << r.error;
    EXPECT_EQ(r.consumed, c.bytes.size());
    EXPECT_EQ(r.reply.kind, c.kind) << c.bytes;
    EXPECT_EQ(r.reply.text, c.text);
    EXPECT_EQ(r.reply.name, c.name);
    EXPECT_EQ(r.reply.value, c.value);
    EXPECT_EQ(r.reply.data, c.data);
    EXPECT_EQ(r.reply.index, c.index);
  }
}

TEST(MilterProtocolTest, ParsesOptionsAndIgnoresMacroLists) {
  std::string o = pkt('O', u32(6) + u32(0x21) + u32(0x1000) + u32(1) + "{client_addr}\0"s);
  ParseResult r = parse(o);
  ASSERT_EQ(r.state, State::kDone) << r.error;
  EXPECT_EQ(r.reply.kind, K::kOptions);
  EXPECT_EQ(r.reply.version, 6u);
  EXPECT_EQ(r.reply.actions, 0x21u);
  EXPECT_EQ(r.reply.protocol, 0x1000u);
  EXPECT_EQ(r.consumed, o.size());
}

TEST(MilterProtocolTest, TruncatedPacketsNeedMore) {
  const std::string whole = pkt('h', "X-Spam\0Yes\0"s);
  for (size_t n = 0; n < whole.size(); ++n) {
    ParseResult r = parse(whole.substr(0, n));
    EXPECT_EQ(r.state, State::kNeedMore) << n;
    EXPECT_EQ(r.consumed, 0u);
  }
}

TEST(MilterProtocolTest, ConsumesOnePacketOfSeveral) {
  std::string two = pkt('h', "A\0b\0"s) + pkt('c', "");
  ParseResult r = parse(two);
  ASSERT_EQ(r.state, State::kDone);
  EXPECT_EQ(r.consumed, two.size() - 5);
  EXPECT_EQ(r.reply.kind, K::kAddHeader);
}

TEST(MilterProtocolTest, MalformedRepliesAreErrorsWithAReason) {
  const std::string cases[] = {
      "\0\0\0\0"s,                                  // zero length: no command
      u32(uint32_t(kMaxPacket) + 1) + "c",          // over the limit (rejected before the data arrives)
      u32(0xffffffff),
      pkt('Z', ""),                                 // unknown command
      pkt('\x01', ""),
      pkt('O', u32(6) + u32(0)),                    // options shorter than 12 bytes
      pkt('y', "hello\0"s),                         // no reply code
      pkt('y', "254 ok\0"s),                        // not 4xx/5xx
      pkt('y', "55"),
      pkt('y', "554x text"),
      pkt('y', "554 a\0b\0"s),                      // NUL inside the text
      pkt('h', "X-Spam\0Yes"s),                     // value not terminated
      pkt('h', "X-Spam"),                           // no value
      pkt('h', "\0v\0"s),                           // empty name
      pkt('i', "\0\0"s),                            // index shorter than 4 bytes
      pkt('m', u32(1) + "Subject\0"s),              // value missing
      pkt('+', ""),                                 // no address
      pkt('-', "\0"s),
      pkt('2', "<a@b>\0args"s),                     // args not terminated
      pkt('e', ""),
      pkt('q', "a\0b\0"s),
      pkt('l', "ab"),
  };
  for (const auto& c : cases) {
    ParseResult r = parse(c);
    EXPECT_EQ(r.state, State::kError) << testing::PrintToString(c);
    EXPECT_FALSE(r.error.empty());
  }
}

TEST(MilterProtocolTest, LargestPacketIsAccepted) {
  std::string body(kMaxPacket - 1, 'x');
  ParseResult r = parse(pkt('b', body));
  ASSERT_EQ(r.state, State::kDone);
  EXPECT_EQ(r.reply.data.size(), kMaxPacket - 1);
}

}  // namespace
}  // namespace postern::milter
