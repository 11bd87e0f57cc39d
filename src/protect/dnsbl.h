// DNS blocklist lookups (RFC 5782): the client address, IPv4 octets or IPv6 nibbles reversed,
// is looked up as an A record under each configured zone (RFC 5782 §2.1, §2.4); an answer in
// 127.0.0.0/8 means "listed" (§2.3), NXDOMAIN means "not listed". Lookups run asynchronously
// with c-ares on one dedicated thread, so no event-loop thread ever waits for DNS.
//
// Failing open: a zone that times out, SERVFAILs, is refused, or answers with something that is
// not a listing code (outside 127.0.0.0/8, or 127.255.255.x, the code list operators such as
// Spamhaus return to resolvers they refuse to serve) is ignored for that check and logged;
// the verdict still comes from the zones that did answer.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
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
  // Initialises c-ares (ares_library_init, once per process), a channel that uses
  // cfg.resolver over UDP or, when unset, the servers in /etc/resolv.conf, and the lookup
  // thread. `cfg` is copied. With no zones configured there is no channel and no thread.
  static Result<std::unique_ptr<Dnsbl>> create(const config::Dnsbl& cfg);

  // Stops the lookup thread and cancels every pending query. Every check still pending gets
  // its `done` called (on the lookup thread, before the destructor returns) with the answers
  // received so far and `failed_open` set: `done` is called exactly once, even at shutdown.
  // REQUIRES: no concurrent check(); not called from inside a `done` callback.
  ~Dnsbl();

  Dnsbl(const Dnsbl&) = delete;
  Dnsbl& operator=(const Dnsbl&) = delete;

  // Queries every zone in parallel for `client` (an IPv4-mapped IPv6 address is looked up as
  // IPv4). Calls `done` exactly once, on the lookup thread, at the latest timeout_ms (plus
  // scheduling slack) after the call; `done` must not block for long, as it holds up every
  // other lookup. With no zones configured, `done` runs inline, before check() returns.
  // Thread-safe.
  void check(const IpAddress& client, std::function<void(DnsblVerdict)> done);

 private:
  class Loop;  // the lookup thread and its state (c-ares channel, pending checks); dnsbl.cc
  explicit Dnsbl(std::unique_ptr<Loop> loop);
  std::unique_ptr<Loop> loop_;  // null when no zones are configured
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
