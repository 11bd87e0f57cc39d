// SPF, RFC 7208: the record parser (§4.5, §5, §6, ABNF §12), macro expansion (§7) and
// check_host() (§4) over auth::Dns, with the processing limits of §4.6.4 (10 DNS-querying
// terms, 2 void lookups, 10 MX/PTR names) and the results of §2.6.
// The parser and macro expansion are pure and live in auth/spf_record.h (table tests:
// tests/unit/spf_test.cc; fuzz: fuzz/spf_record_fuzz.cc).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/dns.h"
#include "auth/spf_record.h"
#include "net/asio.h"
#include "util/ip.h"
#include "util/status.h"

namespace postern::auth {

struct SpfOutcome {
  SpfResult result = SpfResult::kNone;
  std::string domain;              // the domain checked (MAIL FROM domain, or HELO)
  std::string mechanism;           // the matching term as written, "default" when none matched
  std::string explanation;         // fail: exp= text when there is one (§6.2)
  std::string problem;             // temperror/permerror: what went wrong
  size_t dns_lookups = 0;          // terms that cost a lookup (for logs)
};

// check_host(ip, domain, sender) for MAIL FROM (domain = the sender's domain) or for HELO
// (sender "postmaster@helo", domain = helo), §2.3/§2.4.
net::awaitable<SpfOutcome> checkHost(Dns& dns, SpfRequest req, std::string domain);

}  // namespace postern::auth
