// SPF, RFC 7208: the record parser (§4.5, §5, §6, ABNF §12), macro expansion (§7) and
// check_host() (§4) over auth::Dns, with the processing limits of §4.6.4 (10 DNS-querying
// terms, 2 void lookups, 10 MX/PTR names) and the results of §2.6.
// The parser is pure (table tests: tests/unit/spf_test.cc; fuzz: fuzz/spf_record.cc).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/dns.h"
#include "net/asio.h"
#include "util/ip.h"
#include "util/status.h"

namespace postern::auth {

inline constexpr size_t kSpfMaxDnsTerms = 10;      // §4.6.4
inline constexpr size_t kSpfMaxVoidLookups = 2;    // §4.6.4
inline constexpr size_t kSpfMaxNamesPerLookup = 10;   // §4.6.4 MX and PTR
inline constexpr size_t kSpfMaxRecordBytes = 4096;    // longer TXT records are permerror

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
};

struct SpfRecord {
  std::vector<SpfTerm> terms;      // mechanisms in order; redirect/exp modifiers included
};

// Parses one record ("v=spf1 ..."). A syntax error is a permerror (§4.6), reported with what
// and where: "unknown mechanism 'foo' at term 3".
Result<SpfRecord> parseSpfRecord(std::string_view text);

// Inputs of check_host() (§4.1) and of macro expansion (§7.2).
struct SpfRequest {
  IpAddress ip;                    // the real client address (after PROXY)
  std::string sender;              // MAIL FROM address; "postmaster@<helo>" when empty (§4.3)
  std::string helo;                // HELO/EHLO name
  std::string receiver;            // our host name (%{r})
  int64_t now = 0;                 // unix seconds (%{t})
};

struct SpfOutcome {
  SpfResult result = SpfResult::kNone;
  std::string domain;              // the domain checked (MAIL FROM domain, or HELO)
  std::string mechanism;           // the matching term as written, "default" when none matched
  std::string explanation;         // fail: exp= text when there is one (§6.2)
  std::string problem;             // temperror/permerror: what went wrong
  size_t dns_lookups = 0;          // terms that cost a lookup (for logs)
};

// Expands a macro-string (§7). `exp` allows the c, r, t macros (explanation only).
Result<std::string> expandSpfMacros(std::string_view macro_string, const SpfRequest& req, std::string_view domain,
                                    bool exp, const std::string& validated_ptr = {});

// check_host(ip, domain, sender) for MAIL FROM (domain = the sender's domain) or for HELO
// (sender "postmaster@helo", domain = helo), §2.3/§2.4.
net::awaitable<SpfOutcome> checkHost(Dns& dns, SpfRequest req, std::string domain);

}  // namespace postern::auth
