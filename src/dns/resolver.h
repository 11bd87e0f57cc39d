// The DNS layer shared by outbound routing (MX, A/AAAA), and later SPF/DKIM/DMARC (TXT) and
// DANE (TLSA): c-ares on one dedicated thread, a bounded cache that honours TTLs and caches
// negative answers (RFC 2308), per-query timeouts, and servers that can be configured
// ([dns] servers; default /etc/resolv.conf). No event-loop thread ever waits for DNS.
//
// Callbacks run on the resolver thread and must be quick; coroutines use the awaitable
// wrappers at the end, which resume on the caller's executor.
//
// DNSSEC: nothing here validates signatures. Queries set the AD bit (RFC 6840 §5.7) and
// answers carry `authenticated`, the AD bit of the response (RFC 4035 §3.2.3), but only when
// every server is a loopback address (127.0.0.0/8, ::1): a validating resolver on the same
// host, whose answers cannot be altered on the way (RFC 6698 §A.3, RFC 7672 §2.1). With any
// other server `authenticated` is always false (see Resolver::trustsAd).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "dns/message.h"
#include "net/asio.h"
#include "util/ip.h"
#include "util/status.h"

namespace postern::dns {

// How a lookup ended. kNxDomain and kNoData are answers (cached, RFC 2308); kTempFail
// (timeout, SERVFAIL, REFUSED, network) means "try again later"; kPermFail means the
// name itself is unusable (e.g. not a valid DNS name).
enum class Outcome : uint8_t { kOk, kNxDomain, kNoData, kTempFail, kPermFail };
const char* outcomeName(Outcome o);   // "ok", "nxdomain", "nodata", "tempfail", "permfail"

struct MxHost {
  uint16_t preference = 0;
  std::string host;   // lower case, no trailing dot
};

struct MxAnswer {
  Outcome outcome = Outcome::kTempFail;
  std::vector<MxHost> hosts;   // as received (order them with orderMx)
  bool null_mx = false;        // RFC 7505: exactly one MX, preference 0, host "." -> no mail
  std::string error;           // for kTempFail/kPermFail: what failed ("timeout", "SERVFAIL", ...)
  bool authenticated = false;  // DNSSEC-validated (AD from a loopback resolver), NXDOMAIN/NODATA included
};

struct AddressAnswer {
  Outcome outcome = Outcome::kTempFail;   // kOk when at least one address came back
  std::vector<IpAddress> addresses;       // IPv6 first, then IPv4 (RFC 6724's usual preference)
  std::string error;
  bool authenticated = false;             // both the A and the AAAA answers were authenticated
};

struct TxtAnswer {
  Outcome outcome = Outcome::kTempFail;
  std::vector<std::string> records;   // each record's strings concatenated (RFC 7208 §3.3)
  std::string error;
  bool authenticated = false;
};

// PTR answers (RFC 1035 §3.5): the names an address maps to.
struct NameAnswer {
  Outcome outcome = Outcome::kTempFail;
  std::vector<std::string> names;   // lower case, no trailing dot
  std::string error;
  bool authenticated = false;
};

// RFC 6698 records for DANE. DANE uses them only when `authenticated` (RFC 7672 §2.2).
struct TlsaAnswer {
  Outcome outcome = Outcome::kTempFail;
  std::vector<TlsaData> records;
  std::string error;
  bool authenticated = false;
};

struct ResolverOptions {
  std::vector<Endpoint> servers;                 // empty: /etc/resolv.conf
  std::chrono::milliseconds timeout{5000};       // per lookup, retries included
  size_t cache_entries = 10'000;                 // least recently used dropped beyond this
  std::chrono::seconds max_ttl{86400};           // TTLs are capped at this
  std::chrono::seconds negative_ttl{300};        // cap for NXDOMAIN/NODATA (RFC 2308 SOA minimum otherwise)
};

class Resolver {
 public:
  static Result<std::unique_ptr<Resolver>> create(ResolverOptions options);
  // Stops the thread; every pending lookup gets its callback (kTempFail, "shutting down").
  ~Resolver();
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  // Each calls `done` exactly once, on the resolver thread (or inline for a cache hit or an
  // invalid name). Names are case-insensitive; a trailing dot is optional. CNAMEs are followed.
  void mx(const std::string& domain, std::function<void(MxAnswer)> done);
  // A and AAAA together (one answer when both have come back).
  void addresses(const std::string& host, std::function<void(AddressAnswer)> done);
  // One address family only (SPF's a/mx mechanisms, RFC 7208 §5.3; DNSBL zones, RFC 5782):
  // the answer's outcome is that query's own (kNoData when only the other family exists).
  void a(const std::string& host, std::function<void(AddressAnswer)> done);
  void aaaa(const std::string& host, std::function<void(AddressAnswer)> done);
  void txt(const std::string& name, std::function<void(TxtAnswer)> done);
  // The PTR records of `address` (in-addr.arpa / ip6.arpa; RFC 1035 §3.5, RFC 3596 §2.5).
  void ptr(const IpAddress& address, std::function<void(NameAnswer)> done);
  // TLSA of e.g. "_25._tcp.mx.example.org" (RFC 7672 §2.2).
  void tlsa(const std::string& name, std::function<void(TlsaAnswer)> done);

  // True when every server is a loopback address, so that the AD bit of its answers is
  // believed (answers may then be `authenticated`). Fixed at create().
  bool trustsAd() const;

  struct Stats {
    uint64_t queries = 0;     // sent to a server
    uint64_t cache_hits = 0;
    uint64_t failures = 0;    // kTempFail results
    uint64_t coalesced = 0;   // lookups that joined an identical query already in flight
    uint64_t cache_entries = 0;
  };
  Stats stats();

 private:
  class Loop;
  explicit Resolver(std::unique_ptr<Loop> loop);
  std::unique_ptr<Loop> loop_;
};

// MX hosts in the order to try them (RFC 5321 §5.1): ascending preference, random order
// among equal preferences (`seed` drives the shuffle; tests pass a fixed one).
std::vector<MxHost> orderMx(std::vector<MxHost> hosts, uint64_t seed);

// Coroutine forms: resume on the awaiting coroutine's executor. The result is posted to that
// executor from the resolver thread, so the Resolver must be destroyed (its thread joined)
// before the io_contexts whose coroutines await it.
net::awaitable<MxAnswer> asyncMx(Resolver& r, std::string domain);
net::awaitable<AddressAnswer> asyncAddresses(Resolver& r, std::string host);
net::awaitable<AddressAnswer> asyncA(Resolver& r, std::string host);
net::awaitable<AddressAnswer> asyncAaaa(Resolver& r, std::string host);
net::awaitable<TxtAnswer> asyncTxt(Resolver& r, std::string name);
net::awaitable<NameAnswer> asyncPtr(Resolver& r, IpAddress address);

// The reverse-lookup name of `address`: "5.2.0.192.in-addr.arpa" or 32 nibbles + ".ip6.arpa".
// An IPv4-mapped IPv6 address is written as IPv4.
std::string reverseName(const IpAddress& address);
net::awaitable<TlsaAnswer> asyncTlsa(Resolver& r, std::string name);

}  // namespace postern::dns
