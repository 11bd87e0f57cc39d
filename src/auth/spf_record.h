// SPF, RFC 7208, the pure half: the record parser (§4.6, §5, §6, ABNF §12) and macro
// expansion (§7). No DNS, sockets or clocks, so the fuzz build compiles it on its own
// (fuzz/spf_record_fuzz.cc); check_host() over DNS is in auth/spf.h, which includes this.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/ip.h"
#include "util/status.h"

namespace postern::auth {

inline constexpr size_t kSpfMaxDnsTerms = 10;      // §4.6.4
inline constexpr size_t kSpfMaxVoidLookups = 2;    // §4.6.4
inline constexpr size_t kSpfMaxNamesPerLookup = 10;   // §4.6.4 MX and PTR
inline constexpr size_t kSpfMaxRecordBytes = 4096;    // longer TXT records are permerror
inline constexpr size_t kSpfMaxDomainLength = 253;    // §7.3: expanded names are cut to this (from the left)
inline constexpr size_t kSpfMaxLabelLength = 63;      // RFC 1035 §2.3.4
inline constexpr unsigned kSpfMaxTransformerParts = 128;   // §7.3 "at least 128"; larger counts mean "all"
inline constexpr size_t kSpfMaxTerms = 512;           // far above any real record; bounds parser output

enum class SpfResult : uint8_t { kNone, kNeutral, kPass, kFail, kSoftFail, kTempError, kPermError };
const char* spfResultName(SpfResult r);   // RFC 8601 / RFC 7208 §2.6 names: "none", "neutral", "pass", ...

enum class SpfQualifier : uint8_t { kPass, kFail, kSoftFail, kNeutral };   // + - ~ ?

struct SpfTerm {
  enum class Kind : uint8_t { kAll, kInclude, kA, kMx, kPtr, kIp4, kIp6, kExists, kRedirect, kExp, kUnknownModifier };
  Kind kind = Kind::kAll;
  SpfQualifier qualifier = SpfQualifier::kPass;
  std::string domain_spec;         // unexpanded macro-string; empty: the current domain
  std::optional<IpAddress> ip;     // ip4/ip6
  unsigned cidr4 = 32, cidr6 = 128;
  std::string name, value;         // unknown modifier
  std::string text;                // the term as written in the record ("-all", "include:_spf.example.org")
};

struct SpfRecord {
  std::vector<SpfTerm> terms;      // mechanisms in order; redirect/exp modifiers included
};

// Parses one record ("v=spf1 ..."). A syntax error is a permerror (§4.6), reported with what
// and where: "unknown mechanism 'foo' at term 3".
Result<SpfRecord> parseSpfRecord(std::string_view text);

// True when a TXT record is an SPF record: "v=spf1" (any case) then a space or the end (§4.5).
bool isSpfRecord(std::string_view txt);

// True when `domain` may be checked (§4.3): a multi-label name, labels of 1..63 letters,
// digits, '-' or '_', at most 253 octets (a trailing dot is allowed), and a top label that
// is not all digits (so neither an address nor a domain literal).
bool isValidSpfDomain(std::string_view domain);

// Inputs of check_host() (§4.1) and of macro expansion (§7.2).
struct SpfRequest {
  IpAddress ip;                    // the real client address (after PROXY)
  std::string sender;              // MAIL FROM address; "postmaster@<helo>" when empty (§4.3)
  std::string helo;                // HELO/EHLO name
  std::string receiver;            // our host name (%{r})
  int64_t now = 0;                 // unix seconds (%{t})
};

// Expands a macro-string (§7). `exp` allows the c, r, t macros (explanation only); without
// it the result is a domain name and is cut from the left to kSpfMaxDomainLength (§7.3).
Result<std::string> expandSpfMacros(std::string_view macro_string, const SpfRequest& req, std::string_view domain,
                                    bool exp, const std::string& validated_ptr = {});

// True when a macro-string uses %{p} (so the caller must validate the client's PTR names first).
bool spfMacrosNeedPtr(std::string_view macro_string);

}  // namespace postern::auth
