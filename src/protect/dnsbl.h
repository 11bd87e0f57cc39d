// DNS blocklist lookups (RFC 5782): the client address, IPv4 octets or IPv6 nibbles reversed,
// is looked up as an A record under each configured zone (RFC 5782 §2.1, §2.4); an answer in
// 127.0.0.0/8 means "listed" (§2.3), NXDOMAIN means "not listed". The lookups go through the
// shared DNS layer (dns::Resolver: its thread, cache honouring the list's TTLs, negative
// caching, coalescing of identical queries), so no event-loop thread ever waits for DNS.
//
// Failing open: a zone that times out, SERVFAILs, is refused, or answers with something that is
// not a listing code (outside 127.0.0.0/8, or 127.255.255.x, the code list operators such as
// Spamhaus return to resolvers they refuse to serve) is ignored for that check and logged;
// the verdict still comes from the zones that did answer.
//
// Deadline: every check ends at the latest timeout_ms after check() was called, whatever the
// resolver's own timeout ([dns] timeout may be longer): a small thread of the Dnsbl's own
// ("postern-dnsbl") sleeps until the earliest deadline and fails open the zones still
// unanswered then. Their late answers still reach the resolver's cache, and are dropped here.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "dns/resolver.h"
#include "util/ip.h"
#include "util/status.h"

namespace postern::protect {

struct DnsblVerdict {
  bool reject = false;              // listed in a reject zone, or the score reached the threshold
  std::string zone;                 // the zone that decided (for the reply text); empty unless reject
  int score = 0;                    // sum of the scores of the listing "score" zones
  std::vector<std::string> listed;  // "zone=127.0.0.2" for every listing answer, in zone order
  bool failed_open = false;         // some zone gave no usable answer (timeout, SERVFAIL, REFUSED,
                                    // 127.255.255.x, non-127/8): ignored, logged
};

class Dnsbl {
 public:
  // With cfg.resolver set, lookups go to a dns::Resolver of the Dnsbl's own that asks that
  // server alone (its timeout timeout_ms, its own cache); otherwise to `shared` (the resolver
  // of [dns]), which must outlive the Dnsbl. `cfg` is copied. With no zones configured there
  // is no resolver and no thread.
  static Result<std::unique_ptr<Dnsbl>> create(const config::Dnsbl& cfg, dns::Resolver& shared);

  // Stops the deadline thread. Every check still pending gets its `done` called (on the
  // destroying thread, before the destructor returns) with the answers received so far and
  // `failed_open` set; a `done` already running on another thread has returned by then, and
  // none runs afterwards: `done` is called exactly once, even at shutdown. Answers that reach
  // the shared resolver later are dropped.
  // REQUIRES: no concurrent check(); not called from inside a `done` callback.
  ~Dnsbl();

  Dnsbl(const Dnsbl&) = delete;
  Dnsbl& operator=(const Dnsbl&) = delete;

  // Queries every zone in parallel for `client` (an IPv4-mapped IPv6 address is looked up as
  // IPv4). Calls `done` exactly once, at the latest timeout_ms (plus scheduling slack) after
  // the call: on the resolver thread (the last zone answered), on the deadline thread (the
  // deadline passed), or inline before check() returns (every zone answered from the
  // resolver's cache, or no zones configured). `done` must be quick: it holds up other
  // lookups. It may call check() again. Thread-safe.
  void check(const IpAddress& client, std::function<void(DnsblVerdict)> done);

 private:
  class Impl;  // the deadline thread, the pending checks, the resolver in use; dnsbl.cc
  explicit Dnsbl(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;  // null when no zones are configured
};

// The name looked up for `client` in `zone`: "5.2.0.192.zen.example" for 192.0.2.5,
// 32 reversed nibbles for IPv6 (RFC 5782 §2.4). A trailing dot on `zone` is dropped.
std::string queryName(const IpAddress& client, std::string_view zone);

// The meaning of one A record in a zone's answer.
enum class Answer {
  kListed,           // a listing code for this zone (zone.codes, or any 127/8 when codes is empty)
  kNotListed,        // 127/8 but not one of zone.codes
  kResolverRefused,  // 127.255.255.x: the list operator refuses our resolver (e.g. Spamhaus via public DNS)
  kInvalid,          // not in 127.0.0.0/8 (RFC 5782 §2.3): a wildcarding resolver, or a dead list
};
Answer classify(const config::DnsblZone& zone, const IpAddress& a);

}  // namespace postern::protect
