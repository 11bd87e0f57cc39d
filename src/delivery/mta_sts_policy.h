// MTA-STS syntax (RFC 8461): the pure parts, no I/O.
//
//   §3.1  the "_mta-sts" TXT record:  v=STSv1; id=20160831085700Z;
//   §3.2  the policy file:            version: STSv1 / mode: enforce / mx: ... / max_age: ...
//   §3.3  the HTTPS response that carries it (status 200, text/plain, body size limit)
//   §4.1  matching an MX host name against the policy's "mx" patterns
//
// Every function only looks at the bytes it is given and never throws; bad input gives an
// error value naming what was wrong. The fetching, caching and policy decisions are in
// delivery/mta_sts.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace postern::delivery {

// §3.1 ABNF: sts-id = 1*32(ALPHA / DIGIT).
inline constexpr size_t kStsMaxIdLength = 32;
// §3.2: max_age "MUST be representable as an integer between 0 and 31557600".
inline constexpr uint32_t kStsMaxAge = 31'557'600;
// §3.3 suggests senders limit the policy body; 64 KiB is the figure it gives.
inline constexpr size_t kStsMaxPolicyBytes = 64 * 1024;
// A policy with more patterns than this is refused (no sane MX set is that large).
inline constexpr size_t kStsMaxMxPatterns = 1000;
// The HTTP response head (status line + header fields) is refused beyond this.
inline constexpr size_t kStsMaxHttpHeadBytes = 16 * 1024;
// Chunked framing may add overhead to the body; the raw response is refused beyond this.
inline constexpr size_t kStsMaxHttpResponseBytes = kStsMaxHttpHeadBytes + 2 * kStsMaxPolicyBytes;
// A domain name (RFC 1035 §2.3.4): 253 characters without the trailing dot, labels of 63.
inline constexpr size_t kMaxDomainLength = 253;
inline constexpr size_t kMaxLabelLength = 63;

enum class StsMode : uint8_t { kNone, kTesting, kEnforce };
const char* stsModeName(StsMode m);  // "none", "testing", "enforce"

// ---- §3.1 TXT record ------------------------------------------------------------------------

// The TXT lookup for _mta-sts.<domain>, reduced to what §3.1 makes of it.
struct StsRecord {
  enum class Kind : uint8_t {
    kNone,     // no record beginning with "v=STSv1": the domain publishes no MTA-STS
    kValid,    // exactly one STSv1 record, syntactically valid: `id` is set
    kInvalid,  // more than one STSv1 record, or the one is malformed: treated as none
  };
  Kind kind = Kind::kNone;
  std::string id;
  std::string error;  // for kInvalid: why
};

// One TXT record's text (its strings already concatenated) against the §3.1 ABNF:
//   sts-text-record = sts-version 1*(sts-sep sts-field) [sts-sep]
//   sts-version = %s"v=STSv1"    sts-sep = *WSP ";" *WSP
//   sts-id = %s"id=" 1*32(ALPHA / DIGIT)
//   sts-extension = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".") "=" 1*(%x21-3A / %x3C / %x3E-7E)
// Unknown fields (extensions) are ignored. The id is required; when it appears twice the
// first counts (§3.2's rule for repeated fields). Trailing blanks are tolerated.
// Returns the id, or an error saying what is malformed.
Result<std::string> parseStsRecord(std::string_view text);

// True when `text` is an STSv1 record candidate: starts with "v=STSv1" followed by the end,
// a blank or ";". §3.1: records that do not are discarded before counting.
bool isStsRecordCandidate(std::string_view text);

// §3.1 over all TXT records of _mta-sts.<domain>: candidates are counted; not exactly one,
// or one that does not parse, means "assume no policy" (kInvalid, with the reason).
StsRecord selectStsRecord(const std::vector<std::string>& records);

// ---- §3.2 policy file -----------------------------------------------------------------------

struct StsPolicyText {
  StsMode mode = StsMode::kNone;
  std::vector<std::string> mx;  // patterns as published, lower case, no trailing dot
  uint32_t max_age = 0;         // seconds, <= kStsMaxAge
};

// The policy body: "key: value" lines ended by LF or CRLF (the last one may lack it).
// version (must be "STSv1"), mode (enforce|testing|none) and max_age (0..kStsMaxAge, at most
// 10 digits per the ABNF) are required; mx is repeated and required unless mode is none
// (§3.2); unknown keys are ignored; for a repeated non-mx key the first occurrence counts.
// Keys are case-sensitive (%s in the ABNF). Blank lines and blanks around values are
// tolerated. Each mx value must be a domain name, optionally with a leading "*.".
// REQUIRES: nothing; bodies over kStsMaxPolicyBytes are refused here too.
Result<StsPolicyText> parseStsPolicy(std::string_view body);

// ---- §4.1 MX matching -----------------------------------------------------------------------

// A lower-cased host name without its trailing dot, if `name` is a syntactically valid
// domain name (LDH labels of 1..63, total <= 253; no empty labels); else empty.
std::string normalizeDomain(std::string_view name);

// §4.1: does MX host `mx_host` match `pattern`? Case-insensitive, trailing dots ignored.
// "mail.example.com" matches only itself; "*.example.net" matches a name with exactly one
// more label on the left ("mx1.example.net", not "example.net" nor "a.b.example.net").
bool stsMxMatches(std::string_view pattern, std::string_view mx_host);
// True when any pattern matches.
bool stsMxMatchesAny(const std::vector<std::string>& patterns, std::string_view mx_host);

// ---- §3.3 HTTPS response --------------------------------------------------------------------

// The request this module sends (HTTP/1.1, Host, Connection: close, no caching).
std::string stsPolicyRequest(std::string_view policy_host);

struct StsHttpResponse {
  int status = 0;            // 200, 301, 404, ...
  std::string content_type;  // the media type only, lower case ("text/plain")
  std::string location;      // for 3xx: where it pointed (reported, never followed)
  std::string body;          // de-chunked
};

// Parses an HTTP/1.x response accumulated so far in `buf`. `eof` says the peer has closed
// the connection (a body without Content-Length or chunking ends there).
// Bodies: Content-Length, "Transfer-Encoding: chunked" (extensions and trailers skipped),
// or up to the close. Limits: head kStsMaxHttpHeadBytes, body kStsMaxPolicyBytes, whole
// response kStsMaxHttpResponseBytes. Only looks at buf[0..size).
struct StsHttpParse {
  enum class State : uint8_t { kNeedMore, kDone, kError };
  State state = State::kNeedMore;
  StsHttpResponse response;  // for kDone
  std::string error;         // for kError
};
StsHttpParse parseStsHttpResponse(std::string_view buf, bool eof);

// §3.3's checks on a complete response: status 200 (redirects are not followed, their
// Location is named in the error), media type text/plain (parameters such as charset
// allowed). Returns the body to hand to parseStsPolicy.
Result<std::string> checkStsHttpResponse(const StsHttpResponse& r);

}  // namespace postern::delivery
