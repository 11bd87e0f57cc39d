// MTA-STS (RFC 8461) for outbound delivery: which policy applies to a recipient domain.
//
//   §3.3  policy fetch: HTTPS GET https://mta-sts.<domain>/.well-known/mta-sts.txt, the
//         certificate verified for "mta-sts.<domain>", status 200 only (redirects are not
//         followed), text/plain, body at most 64 KiB, one total timeout.
//   §5    policy discovery: the _mta-sts TXT id decides whether the cached policy is current;
//         a new id (or an expired policy) means a fetch; a failed fetch keeps an unexpired
//         cached policy (§5.1); no TXT record and nothing cached means no policy.
//   §4.1  MX host matching (mxAllowed).
//
// The syntax (TXT record, policy file, HTTP response, host patterns) is in mta_sts_policy.h.
// DNS comes in as two functions so the resolver (dns/resolver.h) plugs in directly and tests
// can answer with fixed values.
//
// HTTP: the request is HTTP/1.1 with Host and "Connection: close"; responses framed by
// Content-Length, chunked transfer coding or the close are all read.
#pragma once

#include <openssl/ssl.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "delivery/mta_sts_policy.h"
#include "dns/resolver.h"
#include "net/asio.h"
#include "util/counters.h"
#include "util/status.h"

namespace postern::net {
class Stream;
}

namespace postern::delivery {

// The TXT records of a name (e.g. [](std::string n) { return dns::asyncTxt(resolver, n); }).
using TxtLookup = std::function<net::awaitable<dns::TxtAnswer>(std::string name)>;
// The addresses of a host (e.g. dns::asyncAddresses).
using AddressLookup = std::function<net::awaitable<dns::AddressAnswer>(std::string host)>;

// §3.3 suggests a one-minute limit for the whole fetch; half that keeps a queue run moving.
inline constexpr std::chrono::milliseconds kStsDefaultFetchTimeout{30'000};
inline constexpr uint16_t kStsDefaultPort = 443;
// Cached domains beyond this: expired ones are dropped first, then the oldest fetches.
inline constexpr size_t kStsDefaultMaxEntries = 10'000;
// A cache file larger than this is not read (10k entries of modest policies fit easily).
inline constexpr size_t kStsMaxCacheFileBytes = 64 * 1024 * 1024;

struct MtaStsOptions {
  TxtLookup txt;                                                      // REQUIRES: set
  AddressLookup addresses;                                            // REQUIRES: set
  uint16_t port = kStsDefaultPort;                                    // tests point this at a local server
  std::chrono::milliseconds fetch_timeout = kStsDefaultFetchTimeout;  // connect to last byte
  std::string ca_file;       // extra trust anchors (PEM), used beside the system's
  bool system_trust = true;  // the system's default CA paths
  std::string cache_file;    // e.g. <data_dir>/mta-sts-cache.json; empty: memory only
  size_t max_entries = kStsDefaultMaxEntries;
  // Wall clock for policy ages (they outlive restarts); empty: system_clock::now.
  std::function<std::chrono::system_clock::time_point()> now;
  Counters* counters = nullptr;  // optional; outlives the MtaSts
  // Runs the cache file write (temporary file, fsync, rename) somewhere other than the
  // calling event loop; empty: on the calling thread. REQUIRES: the work it was given has
  // run before the MtaSts is destroyed.
  std::function<void(std::function<void()>)> offload;
};

enum class PolicySource : uint8_t {
  kNone,     // no policy applies (no record, or nothing usable and nothing cached)
  kCache,    // the cached policy (id unchanged, or kept after a failed refresh)
  kFetched,  // fetched just now
};
const char* policySourceName(PolicySource s);  // "none", "cache", "fetched"

// What applies to one recipient domain.
struct Policy {
  StsMode mode = StsMode::kNone;  // kNone also when there is no policy at all (source kNone)
  std::vector<std::string> mx;    // patterns, lower case ("mx1.example.net", "*.example.net")
  std::string id;                 // the TXT id the policy was fetched under
  uint32_t max_age = 0;           // seconds
  PolicySource source = PolicySource::kNone;
  // Why the result is not a freshly validated policy: the TXT lookup failed, the record was
  // malformed, the fetch failed (and the cached policy was kept or there was none), ...
  // Empty when everything went as expected. For logs and TLS-RPT, not for decisions.
  std::string error;
};

// §4.1 / §5: may delivery go to MX host `mx_host` under `p`? No policy or mode none: yes.
// Enforce and testing: whether a pattern matches (case-insensitive, trailing dots ignored).
// In testing mode a false means "report but deliver anyway" (§5): the caller checks p.mode.
bool mxAllowed(const Policy& p, std::string_view mx_host);

// One cached policy as stored in the cache file.
struct CachedPolicy {
  std::string domain;
  std::string id;
  StsPolicyText policy;
  std::chrono::system_clock::time_point fetched;
  std::chrono::system_clock::time_point expires() const { return fetched + std::chrono::seconds(policy.max_age); }
};
// The cache file: {"version":1,"policies":[{"domain","id","mode","mx":[...],"max_age","fetched"}]}
// ("fetched" in Unix seconds). Parsing checks every field; a bad entry fails the whole file.
std::string formatStsCache(const std::vector<CachedPolicy>& entries);
Result<std::vector<CachedPolicy>> parseStsCache(std::string_view text);

// The policy cache and fetcher; one per process. Thread-safe: policyFor may run on several
// event-loop threads at once (the cache is behind a mutex never held across a co_await).
// Concurrent lookups of one domain share one fetch; a waiting caller is woken on its own
// executor. REQUIRES: each caller's executor runs on one thread (an io_context per thread,
// as the server has) or is a strand.
// With a cache file, each change to the cache (a policy fetched, an expired one dropped)
// rewrites the file (temporary file, fsync, rename) on the calling thread: a few KiB, and
// only when a policy changes, never on a cache hit.
class MtaSts {
 public:
  // Builds the TLS client context and loads the cache file if there is one. A cache file
  // that cannot be parsed is logged and ignored (policies are refetched), not an error.
  static Result<std::unique_ptr<MtaSts>> create(MtaStsOptions options);
  ~MtaSts();
  MtaSts(const MtaSts&) = delete;
  MtaSts& operator=(const MtaSts&) = delete;

  // §5: the policy for mail to `domain` (a recipient domain, e.g. "example.org"). Never
  // fails: problems end in a Policy with source kNone or a kept cached one, plus `error`.
  // Runs on the caller's executor.
  net::awaitable<Policy> policyFor(std::string domain);

  // §3.3: fetches and parses the policy of `domain` from
  // https://mta-sts.<domain>/.well-known/mta-sts.txt, no cache involved. The addresses are
  // tried in order until one accepts a verified TLS connection; that server's answer stands.
  // REQUIRES: `domain` is normalized (normalizeDomain), e.g. "example.org".
  net::awaitable<Result<StsPolicyText>> fetch(std::string domain);

  // The cached entry for a domain (tests, `postern` diagnostics).
  std::optional<CachedPolicy> cached(const std::string& domain) const;
  size_t cacheSize() const;

 private:
  explicit MtaSts(MtaStsOptions options);
  std::chrono::system_clock::time_point now() const;
  // One address: connect, TLS, request, response. `answered`: a verified server responded, so
  // its answer stands (no other address is tried).
  struct FetchAttempt {
    Result<StsPolicyText> result;
    bool answered = false;
  };
  net::awaitable<FetchAttempt> fetchFrom(const std::string& host, const IpAddress& address,
                                         std::chrono::steady_clock::time_point deadline);
  net::awaitable<void> exchange(net::Stream& stream, const std::string& host, const std::string& where,
                                FetchAttempt& attempt);
  void store(CachedPolicy entry);
  void forget(const std::string& domain);
  // A policy fetch in progress for one domain, and the callers waiting for it.
  struct Inflight {
    std::vector<std::shared_ptr<asio::steady_timer>> waiters;  // each on its caller's executor
    bool done = false;
    std::optional<StsPolicyText> policy;  // when done: the result, or none and `error`
    std::string error;
  };
  // Records the result, removes the entry and wakes the waiters.
  void finishFetch(const std::string& domain, std::optional<StsPolicyText> policy, std::string error);
  std::string snapshotLocked() const;  // REQUIRES: mu_ held. The cache file's text.
  void persist(const std::string& text, uint64_t generation);
  void persistSoon(std::string text, uint64_t generation);
  void count(EventId e) {
    if (options_.counters) options_.counters->inc(e);
  }

  MtaStsOptions options_;
  SSL_CTX* tls_ = nullptr;  // owned
  mutable std::mutex mu_;
  std::unordered_map<std::string, CachedPolicy> cache_;                  // by domain; guarded by mu_
  std::unordered_map<std::string, std::shared_ptr<Inflight>> inflight_;  // by domain; mu_
  uint64_t generation_ = 0;                                              // snapshots taken; guarded by mu_
  std::mutex file_mu_;                                                   // held while writing the cache file
  uint64_t written_generation_ = 0;                                      // newest snapshot on disk; file_mu_
};

}  // namespace postern::delivery
