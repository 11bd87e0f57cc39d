// DMARC, RFC 7489: the record parser (§6.3, §6.4), organizational domains from the Public
// Suffix List (§3.2; libpsl with Debian's publicsuffix data), the policy discovery of §6.6.3
// (the From domain, then its organizational domain), identifier alignment (§3.1) in strict and
// relaxed modes, and the result and policy to apply (§6.6.2, pct= §6.3).
// The parser is pure and declared in auth/dmarc_record.h (tests/unit/dmarc_test.cc; fuzz:
// fuzz/dmarc_record_fuzz.cc).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/dkim_verify.h"
#include "auth/dmarc_record.h"
#include "auth/dns.h"
#include "auth/spf.h"
#include "net/asio.h"
#include "util/status.h"

namespace postern::auth {

// The organizational domain (§3.2) of `domain`: the registrable domain by the Public Suffix
// List, lower case; the domain itself when it is a public suffix or unknown.
std::string organizationalDomain(std::string_view domain);

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
