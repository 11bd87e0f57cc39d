// DMARC, RFC 7489: the record parser (§6.3, §6.4), organizational domains from the Public
// Suffix List (§3.2; libpsl with Debian's publicsuffix data), the policy discovery of §6.6.3
// (the From domain, then its organizational domain), identifier alignment (§3.1) in strict and
// relaxed modes, and the result and policy to apply (§6.6.2, pct= §6.3).
// The parser is pure (tests/unit/dmarc_test.cc; fuzz: fuzz/dmarc_record_fuzz.cc).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/dkim_verify.h"
#include "auth/dns.h"
#include "auth/spf.h"
#include "net/asio.h"
#include "util/status.h"

namespace postern::auth {

inline constexpr size_t kDmarcMaxRecordBytes = 4096;   // longer TXT records are not parsed (permerror)
inline constexpr size_t kDmarcMaxUris = 16;             // rua=/ruf= URIs kept per tag; more are dropped

enum class DmarcPolicy : uint8_t { kNone, kQuarantine, kReject };
const char* dmarcPolicyName(DmarcPolicy p);   // "none", "quarantine", "reject"

struct DmarcRecord {
  DmarcPolicy p = DmarcPolicy::kNone;
  std::optional<DmarcPolicy> sp;
  bool adkim_strict = false;
  bool aspf_strict = false;
  unsigned pct = 100;
  std::vector<std::string> rua, ruf;   // kept for reporting; not acted on
};
// "v=DMARC1; p=reject; ..." (§6.4). v must come first, p= second (a record without a valid
// p= is still usable when rua= is present: §6.6.3 step 6; then p=none).
// Errors say what: "p= missing and no valid rua=", "sp=: unknown policy 'x'".
Result<DmarcRecord> parseDmarcRecord(std::string_view text);

// True when `text` starts with the version tag "v=DMARC1" (§6.6.3 steps 2 and 4: TXT records
// at _dmarc.<domain> that do not are discarded before counting).
bool isDmarcRecord(std::string_view text);

// The organizational domain (§3.2) of `domain`: the registrable domain by the Public Suffix
// List, lower case; the domain itself when it is a public suffix or unknown.
std::string organizationalDomain(std::string_view domain);

enum class DmarcResult : uint8_t { kNone, kPass, kFail, kTempError, kPermError };
const char* dmarcResultName(DmarcResult r);

struct DmarcVerdict {
  DmarcResult result = DmarcResult::kNone;
  std::string header_from;          // the RFC5322.From domain
  DmarcPolicy policy = DmarcPolicy::kNone;   // p= or sp= as it applies to header_from
  DmarcPolicy disposition = DmarcPolicy::kNone;   // what to do: policy on fail after pct=, else none
  bool spf_aligned = false, dkim_aligned = false;
  std::string reason;               // "no record", "From domain missing", ...
};

struct DmarcInput {
  std::string header_from;          // from dkim::fromDomain; empty: no usable From (result none, reason given)
  SpfResult spf = SpfResult::kNone;
  std::string spf_domain;           // the domain SPF checked for MAIL FROM (HELO when MAIL FROM was empty)
  std::vector<DkimVerdict> dkim;
  uint32_t pct_roll = 0;            // a random 0..99 for pct= sampling (tests fix it)
};

net::awaitable<DmarcVerdict> checkDmarc(Dns& dns, DmarcInput in);

}  // namespace postern::auth
