// The Sendmail milter protocol, version 6 (as libmilter and Postfix speak it): packets are
// u32 length (network order) | command byte | data. This file is pure: encoders for the
// MTA's commands and a parser for the filter's replies (need-more / done / error). The
// protocol has no RFC; the reference is libmilter's mfdef.h/mfapi.h constants and
// Postfix's MILTER_README, restated here in our own words.
// Tests: tests/unit/milter_protocol_test.cc; fuzz: fuzz/milter_reply_fuzz.cc.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace postern::milter {

inline constexpr uint32_t kProtocolVersion = 6;
inline constexpr size_t kMaxPacket = 1024 * 1024;      // a larger reply is an error
inline constexpr size_t kBodyChunk = 65535;            // SMFIC_BODY data per packet (MILTER_CHUNK_SIZE)

// Actions the MTA allows the filter (SMFIF_*), offered in the negotiation.
inline constexpr uint32_t kActAddHeaders = 0x01, kActChangeBody = 0x02, kActAddRcpt = 0x04, kActDeleteRcpt = 0x08,
                          kActChangeHeaders = 0x10, kActQuarantine = 0x20, kActChangeFrom = 0x40,
                          kActAddRcptPar = 0x80, kActSetSymList = 0x100;
// Protocol flags (SMFIP_*): stages the MTA leaves out, stages the filter does not answer
// (NR_*), and capabilities.
inline constexpr uint32_t kProtoNoConnect = 0x1, kProtoNoHelo = 0x2, kProtoNoMail = 0x4, kProtoNoRcpt = 0x8,
                          kProtoNoBody = 0x10, kProtoNoHeaders = 0x20, kProtoNoEoh = 0x40, kProtoNrHeader = 0x80,
                          kProtoNoUnknown = 0x100, kProtoNoData = 0x200, kProtoSkip = 0x400, kProtoRcptRej = 0x800,
                          kProtoNrConnect = 0x1000, kProtoNrHelo = 0x2000, kProtoNrMail = 0x4000,
                          kProtoNrRcpt = 0x8000, kProtoNrData = 0x10000, kProtoNrUnknown = 0x20000,
                          kProtoNrEoh = 0x40000, kProtoNrBody = 0x80000, kProtoHeaderLeadingSpace = 0x100000;

// One reply from the filter.
struct Reply {
  enum class Kind : uint8_t {
    kOptions,        // 'O' negotiation answer
    kContinue,       // 'c'
    kAccept,         // 'a' accept this message (or connection), skip the rest
    kReject,         // 'r'
    kTempFail,       // 't'
    kDiscard,        // 'd' accept and drop silently
    kReplyCode,      // 'y' "550 5.7.1 text" given by the filter
    kProgress,       // 'p' keep waiting (resets the timeout)
    kAddHeader,      // 'h' name, value
    kInsertHeader,   // 'i' index, name, value
    kChangeHeader,   // 'm' index (1-based occurrence of name), name, value (empty: delete)
    kReplaceBody,    // 'b' a piece of the new body (several in a row make the whole)
    kAddRcpt,        // '+' / '2'
    kDeleteRcpt,     // '-'
    kChangeFrom,     // 'e'
    kQuarantine,     // 'q' reason
    kShutdown,       // '4'
    kSetSymList,     // 'l'
    kSkip,           // 's' stop sending body chunks
  };
  Kind kind = Kind::kContinue;
  // kOptions
  uint32_t version = 0, actions = 0, protocol = 0;
  // kReplyCode: the whole text, e.g. "554 5.7.1 Gtube pattern"
  std::string text;
  // header operations
  uint32_t index = 0;
  std::string name, value;
  // kReplaceBody: bytes; kAddRcpt/kDeleteRcpt/kChangeFrom: address (+ args); kQuarantine: reason
  std::string data;
};

struct ParseResult {
  enum class State : uint8_t { kNeedMore, kDone, kError } state = State::kNeedMore;
  Reply reply;
  size_t consumed = 0;
  std::string error;
};
// Parses one reply packet from the start of `bytes`.
ParseResult parseReply(std::span<const uint8_t> bytes);

// Encoders: each returns the whole packet (length prefix included).
std::string encodeOptionNegotiation(uint32_t actions, uint32_t protocol);
std::string encodeMacros(char for_command, const std::vector<std::pair<std::string, std::string>>& macros);
std::string encodeConnect(std::string_view hostname, const std::optional<std::pair<std::string, uint16_t>>& inet,
                          bool ipv6);   // nullopt: unknown family ('U')
std::string encodeHelo(std::string_view helo);
std::string encodeMail(const std::vector<std::string>& args);   // "<from>", then ESMTP args
std::string encodeRcpt(const std::vector<std::string>& args);
std::string encodeData();
std::string encodeHeader(std::string_view name, std::string_view value);
std::string encodeEndOfHeaders();
std::string encodeBody(std::string_view chunk);
std::string encodeEndOfMessage();
std::string encodeAbort();
std::string encodeQuit();

}  // namespace postern::milter
